//! One TLS connection over a non-blocking socket, sans-io: a rustls `ServerConnection` (a client
//! of a TLS listener) or `ClientConnection` (a TLS backend), both as `rustls::Connection`, so one
//! stream type serves both ends. Read and written with the same readiness rules as plain TCP
//! (`proxy/io.rs`).
//!
//! - Reading hands over decrypted bytes first, then reads ciphertext only while rustls
//!   `wants_read` (so decrypted bytes never pile up), and pushes any TLS output that processing
//!   made (handshake messages, tickets, alerts) whenever the socket is writable: a writable event
//!   makes the handshake progress in whatever state the session waits.
//! - Writing encrypts plaintext only while rustls holds less than [`CIPHERTEXT_LIMIT`] of
//!   ciphertext, and writes that out; "flushed" means no ciphertext is waiting.
//! - A readiness flag is cleared only by a call that would block, and a call that cannot
//!   progress without I/O reports no progress, so nothing spins.
//! - The first bytes decide what the peer speaks: a TLS handshake record (0x16) goes to rustls;
//!   an HTTP method gets a plain `400` ("plain HTTP sent to an HTTPS port"), as nginx answers;
//!   anything else is closed.
//!
//! Generic over the socket ([`Socket`]), so the unit tests below drive it against a rustls
//! client through memory, without sockets.

use std::io::{self, IoSlice, Read, Write};

use rustls::{ClientConnection, Connection, ServerConnection};

use crate::buffer::{Buffer, ReadEnd};
use crate::net::interrupted;
use crate::proxy::io::{Filled, Flushed, Pending};

/// Ciphertext rustls may hold before writing stops accepting plaintext: output is bounded like
/// plain output (the session's buffer), and large enough that a body leaves in big writes.
pub const CIPHERTEXT_LIMIT: usize = 64 * 1024;

/// The TLS record content type a ClientHello starts with.
const HANDSHAKE_RECORD: u8 = 0x16;

/// What pibl answers plain HTTP sent to a TLS port with, before closing.
pub const PLAIN_HTTP_RESPONSE: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
Content-Type: text/plain\r\n\
Content-Length: 33\r\n\
Connection: close\r\n\
\r\n\
plain HTTP sent to an HTTPS port\n";

/// Input bytes read and dropped after a plain-HTTP request, so that closing does not reset the
/// connection over unread input before the client reads the `400`.
const PLAIN_HTTP_DRAIN: usize = 64 * 1024;

/// The socket under a TLS connection.
pub trait Socket: Read + Write {
    fn shutdown_write(&self) -> io::Result<()>;
}

impl Socket for mio::net::TcpStream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

/// Where the connection is, for the state machine of the stream and for the stats at close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsPhase {
    /// Nothing received yet: the first byte decides what the peer speaks.
    AwaitFirstByte,
    Handshaking,
    Established,
    /// The handshake or a record failed (bad or unsupported ClientHello, a bad MAC, ...).
    Failed,
    /// Plain HTTP arrived; it got the `400` and the connection closes.
    PlainHttp,
    /// Neither TLS nor HTTP arrived; the connection closes.
    NotTls,
}

#[derive(Debug)]
pub struct TlsStream<S: Socket> {
    sock: S,
    conn: Connection,
    phase: TlsPhase,
    /// Decrypted bytes may be waiting in rustls (the last fill stopped at a full buffer).
    plaintext_waiting: bool,
    /// close_notify was queued (by [`TlsStream::close_notify`] or on drop).
    closed_notify: bool,
    /// `hsts SECONDS` as it was when the connection was accepted (read by the HTTP/1 codec).
    pub hsts: Option<u64>,
}

/// A connection that closes says so (close_notify, one best-effort write), however the session
/// ended, so a client can tell the end from a truncation (`openssl s_client` reports an
/// "unexpected eof" otherwise).
impl<S: Socket> Drop for TlsStream<S> {
    fn drop(&mut self) {
        if self.phase == TlsPhase::Established && !self.closed_notify {
            self.close_notify();
        }
    }
}

impl<S: Socket> TlsStream<S> {
    /// The server end: the first bytes decide whether the peer speaks TLS.
    pub fn new(sock: S, conn: ServerConnection) -> TlsStream<S> {
        TlsStream::over(sock, Connection::Server(conn), TlsPhase::AwaitFirstByte)
    }

    /// The client end (a TLS backend): the ClientHello waits in rustls for the first write.
    pub fn client(sock: S, conn: ClientConnection) -> TlsStream<S> {
        TlsStream::over(sock, Connection::Client(conn), TlsPhase::Handshaking)
    }

    fn over(sock: S, mut conn: Connection, phase: TlsPhase) -> TlsStream<S> {
        conn.set_buffer_limit(Some(CIPHERTEXT_LIMIT));
        TlsStream {
            sock,
            conn,
            phase,
            plaintext_waiting: false,
            closed_notify: false,
            hsts: None,
        }
    }

    pub fn phase(&self) -> TlsPhase {
        self.phase
    }

    pub fn socket(&self) -> &S {
        &self.sock
    }

    pub fn socket_mut(&mut self) -> &mut S {
        &mut self.sock
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Drives the handshake (the client end, before any request is written): writes what rustls
    /// holds while `writable`, reads while `readable`. `Ok(true)` once it is done (its last
    /// flight may still wait for [`Self::flush`]); `Ok(false)`: waiting for readiness; `Err`:
    /// the peer closed, or rustls refused the handshake (the `rustls::Error` inside, for
    /// `tls::client::TlsFailure::from_io`).
    pub fn handshake(&mut self, readable: &mut bool, writable: &mut bool) -> io::Result<bool> {
        loop {
            self.push(writable)?;
            if !self.conn.is_handshaking() {
                self.phase = TlsPhase::Established;
                return Ok(true);
            }
            if !*readable || !self.conn.wants_read() {
                return Ok(false);
            }
            match self.conn.read_tls(&mut self.sock) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(_) => self.process()?,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    *readable = false;
                    return Ok(false);
                }
                Err(e) if interrupted(&e) => {}
                Err(e) => {
                    *readable = false;
                    return Err(e);
                }
            }
        }
    }

    /// Decrypted input may be had without a readiness event.
    #[inline]
    pub fn has_plaintext(&self) -> bool {
        self.plaintext_waiting
    }

    /// No ciphertext waits to be written.
    #[inline]
    pub fn is_flushed(&self) -> bool {
        !self.conn.wants_write()
    }

    /// Hands decrypted bytes to `buf` until it is full, the socket would block, or the input ends
    /// (close_notify, or TCP FIN). Sends pending TLS output whenever `writable`.
    pub fn fill(
        &mut self,
        readable: &mut bool,
        writable: &mut bool,
        buf: &mut Buffer,
    ) -> io::Result<Filled> {
        let mut bytes = 0;
        if self.phase == TlsPhase::AwaitFirstByte {
            if !*readable {
                return Ok(Filled { bytes, eof: false });
            }
            match self.first_bytes(readable)? {
                Some(()) => {}
                None => return Ok(Filled { bytes, eof: false }),
            }
        }
        loop {
            self.push(writable)?;
            if self.plaintext_waiting || !self.conn.wants_read() {
                match buf.read_from(&mut self.conn.reader(), false) {
                    Ok((n, end)) => {
                        bytes += n;
                        match end {
                            ReadEnd::Full => {
                                self.plaintext_waiting = true;
                                return Ok(Filled { bytes, eof: false });
                            }
                            ReadEnd::Eof => return Ok(Filled { bytes, eof: true }),
                            ReadEnd::WouldBlock => self.plaintext_waiting = false,
                        }
                    }
                    // The peer closed TCP without close_notify: the end of input all the same
                    // (HTTP framing says whether a request was cut).
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        return Ok(Filled { bytes, eof: true })
                    }
                    Err(e) => return Err(e),
                }
            }
            if buf.is_full() {
                return Ok(Filled { bytes, eof: false });
            }
            if !*readable || !self.conn.wants_read() {
                // Waits for readable input, or for writable room for the output it holds.
                return Ok(Filled { bytes, eof: false });
            }
            match self.conn.read_tls(&mut self.sock) {
                Ok(0) => return Ok(Filled { bytes, eof: true }),
                Ok(_) => self.process()?,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    *readable = false;
                    return Ok(Filled { bytes, eof: false });
                }
                Err(e) if interrupted(&e) => {}
                Err(e) => {
                    *readable = false;
                    return Err(e);
                }
            }
            self.plaintext_waiting = true;
        }
    }

    /// Encrypts `head`, then `body`, while rustls holds less than [`CIPHERTEXT_LIMIT`], and
    /// writes the ciphertext until the socket would block. `Flushed` counts plaintext taken.
    pub fn flush(
        &mut self,
        writable: &mut bool,
        head: &mut Pending,
        body: &[u8],
    ) -> io::Result<Flushed> {
        let mut done = Flushed::default();
        loop {
            if self.conn.wants_write() {
                if !*writable {
                    break;
                }
                self.write_tls(writable)?;
                continue;
            }
            let h = head.remaining();
            let b = &body[done.body..];
            if h.is_empty() && b.is_empty() {
                break;
            }
            let hl = h.len();
            // One call, so a small head and body go out in one record.
            let n = self
                .conn
                .writer()
                .write_vectored(&[IoSlice::new(h), IoSlice::new(b)])?;
            if n == 0 {
                // Nothing accepted and no ciphertext to write: the handshake is not done and
                // its plaintext buffer is full. The handshake's reads make room.
                break;
            }
            let from_head = n.min(hl);
            head.pos += from_head;
            done.total += n;
            done.body += n - from_head;
        }
        Ok(done)
    }

    /// Queues close_notify and tries once to write it; the caller then shuts the socket.
    pub fn close_notify(&mut self) {
        self.closed_notify = true;
        self.conn.send_close_notify();
        let mut writable = true;
        let _ = self.push(&mut writable);
    }

    /// Writes pending ciphertext while the socket takes it.
    fn push(&mut self, writable: &mut bool) -> io::Result<()> {
        while *writable && self.conn.wants_write() {
            self.write_tls(writable)?;
        }
        Ok(())
    }

    /// One `write_tls` (a writev of the queued records); clears `writable` when it would block.
    fn write_tls(&mut self, writable: &mut bool) -> io::Result<()> {
        match self.conn.write_tls(&mut self.sock) {
            Ok(0) => {
                *writable = false;
                Err(io::ErrorKind::WriteZero.into())
            }
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                *writable = false;
                Ok(())
            }
            Err(e) if interrupted(&e) => Ok(()),
            Err(e) => {
                *writable = false;
                Err(e)
            }
        }
    }

    /// Processes the ciphertext read; a failure is answered with rustls's alert (best effort).
    fn process(&mut self) -> io::Result<()> {
        match self.conn.process_new_packets() {
            Ok(_) => {
                if self.phase == TlsPhase::Handshaking && !self.conn.is_handshaking() {
                    self.phase = TlsPhase::Established;
                }
                Ok(())
            }
            Err(e) => {
                self.phase = TlsPhase::Failed;
                let mut writable = true;
                let _ = self.push(&mut writable);
                Err(io::Error::new(io::ErrorKind::InvalidData, e))
            }
        }
    }

    /// Reads the first bytes and decides what the peer speaks. `Some`: a TLS handshake, handed
    /// to rustls; `None`: nothing yet. Plain HTTP gets its `400`; both it and garbage are `Err`
    /// (the session closes).
    fn first_bytes(&mut self, readable: &mut bool) -> io::Result<Option<()>> {
        let mut first = [0u8; 8];
        let n = loop {
            match self.sock.read(&mut first) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    *readable = false;
                    return Ok(None);
                }
                Err(e) if interrupted(&e) => {}
                Err(e) => {
                    *readable = false;
                    return Err(e);
                }
            }
        };
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let first = &first[..n];
        if first[0] == HANDSHAKE_RECORD {
            self.phase = TlsPhase::Handshaking;
            self.conn.read_tls(&mut &first[..])?;
            self.process()?;
            return Ok(Some(()));
        }
        if looks_like_http(first) {
            self.phase = TlsPhase::PlainHttp;
            self.answer_plain_http();
        } else {
            self.phase = TlsPhase::NotTls;
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a TLS handshake",
        ))
    }

    /// Writes the `400` for plain HTTP straight to the socket (it fits in any socket buffer),
    /// drops the input already there, and shuts the write side.
    fn answer_plain_http(&mut self) {
        let _ = self.sock.write_all(PLAIN_HTTP_RESPONSE);
        let mut scratch = [0u8; 4096];
        let mut drained = 0;
        while drained < PLAIN_HTTP_DRAIN {
            match self.sock.read(&mut scratch) {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
        let _ = self.sock.shutdown_write();
    }
}

/// An HTTP request line's start: a method token (uppercase letters) then a space, or only
/// uppercase letters so far.
fn looks_like_http(first: &[u8]) -> bool {
    let letters = first.iter().take_while(|b| b.is_ascii_uppercase()).count();
    letters > 0 && (letters == first.len() || first[letters] == b' ')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::selfsigned::DemoCa;
    use rustls_pki_types::pem::PemObject;
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::rc::Rc;
    use std::sync::Arc;
    use std::time::Duration;

    /// One direction of an in-memory connection, with a capacity like a socket buffer.
    #[derive(Default)]
    struct Pipe {
        bytes: VecDeque<u8>,
        closed: bool,
    }

    /// The server's end: reads what the client wrote, writes what the client reads.
    struct MemSocket {
        to_server: Rc<RefCell<Pipe>>,
        to_client: Rc<RefCell<Pipe>>,
        room: usize,
    }

    impl Read for MemSocket {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let mut p = self.to_server.borrow_mut();
            if p.bytes.is_empty() {
                return if p.closed {
                    Ok(0)
                } else {
                    Err(io::ErrorKind::WouldBlock.into())
                };
            }
            let n = buf.len().min(p.bytes.len());
            for (d, s) in buf.iter_mut().zip(p.bytes.drain(..n)) {
                *d = s;
            }
            Ok(n)
        }
    }

    impl Write for MemSocket {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut p = self.to_client.borrow_mut();
            let room = self.room.saturating_sub(p.bytes.len());
            if room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(room);
            p.bytes.extend(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Socket for MemSocket {
        fn shutdown_write(&self) -> io::Result<()> {
            self.to_client.borrow_mut().closed = true;
            Ok(())
        }
    }

    struct Peer {
        client: rustls::ClientConnection,
        server: TlsStream<MemSocket>,
        to_server: Rc<RefCell<Pipe>>,
        to_client: Rc<RefCell<Pipe>>,
        readable: bool,
        writable: bool,
    }

    /// A server config for `localhost` and a client config trusting its CA, both through memory.
    fn configs() -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
        let ca = DemoCa::generate("t").expect("ca");
        let c = ca
            .issue(&["localhost"], Duration::from_secs(86_400))
            .expect("leaf");
        let d = std::env::temp_dir().join(format!("pibl-stream-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("dir");
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (cp, kp) = (d.join(format!("c{n}.pem")), d.join(format!("k{n}.pem")));
        std::fs::write(&cp, &c.chain_pem).expect("w");
        std::fs::write(&kp, &c.key_pem).expect("w");
        let spec = crate::tls::server::CertificateSpec { chain: cp, key: kp };
        let (server, _) = crate::tls::server::TlsServer::load(&[spec], 100).expect("server config");
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pki_types::CertificateDer::pem_slice_iter(ca.cert_pem.as_bytes()) {
            roots.add(cert.expect("pem")).expect("root");
        }
        let mut cc = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        cc.alpn_protocols = vec![b"http/1.1".to_vec()];
        (server.config.clone(), Arc::new(cc))
    }

    impl Peer {
        fn new(room: usize) -> Peer {
            let (server_config, client_config) = configs();
            let client =
                rustls::ClientConnection::new(client_config, "localhost".try_into().expect("name"))
                    .expect("client");
            let to_server = Rc::new(RefCell::new(Pipe::default()));
            let to_client = Rc::new(RefCell::new(Pipe::default()));
            let sock = MemSocket {
                to_server: to_server.clone(),
                to_client: to_client.clone(),
                room,
            };
            let conn = ServerConnection::new(server_config).expect("server conn");
            Peer {
                client,
                server: TlsStream::new(sock, conn),
                to_server,
                to_client,
                readable: false,
                writable: true,
            }
        }

        /// The client writes what it has and reads what the server sent.
        fn client_io(&mut self) {
            while self.client.wants_write() {
                let mut v = Vec::new();
                self.client.write_tls(&mut v).expect("client write");
                self.to_server.borrow_mut().bytes.extend(v);
                self.readable = true;
            }
            let pending: Vec<u8> = self.to_client.borrow_mut().bytes.drain(..).collect();
            if !pending.is_empty() {
                self.writable = true;
                let mut rd = &pending[..];
                while !rd.is_empty() {
                    self.client.read_tls(&mut rd).expect("client read");
                    self.client.process_new_packets().expect("client process");
                }
            }
        }

        fn server_fill(&mut self, buf: &mut Buffer) -> io::Result<Filled> {
            self.server
                .fill(&mut self.readable, &mut self.writable, buf)
        }

        fn handshake(&mut self) {
            let mut buf = Buffer::with_capacity(1024);
            for _ in 0..10 {
                self.client_io();
                self.server_fill(&mut buf).expect("server fill");
                if !self.client.is_handshaking() && !self.server.conn.is_handshaking() {
                    self.client_io();
                    return;
                }
            }
            panic!("no handshake after 10 rounds");
        }

        fn client_plaintext(&mut self) -> Vec<u8> {
            let mut out = Vec::new();
            let _ = self.client.reader().read_to_end(&mut out);
            out
        }
    }

    #[test]
    fn handshake_request_response_and_close_notify() {
        let mut p = Peer::new(1 << 20);
        p.handshake();
        assert_eq!(p.server.phase(), TlsPhase::Established);
        assert_eq!(p.server.conn.alpn_protocol(), Some(&b"http/1.1"[..]));

        p.client
            .writer()
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("w");
        p.client_io();
        let mut buf = Buffer::with_capacity(1024);
        let f = p.server_fill(&mut buf).expect("fill");
        assert_eq!(buf.data(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(!f.eof);
        assert!(!p.readable, "the read that would block cleared readable");
        assert!(!p.server.has_plaintext());

        let mut head = Pending {
            bytes: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n".to_vec(),
            pos: 0,
        };
        let w = p
            .server
            .flush(&mut p.writable, &mut head, b"hi")
            .expect("flush");
        assert_eq!(w.body, 2);
        assert!(head.is_empty() && p.server.is_flushed());
        p.client_io();
        assert_eq!(
            p.client_plaintext(),
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
        );

        p.client.send_close_notify();
        p.client_io();
        buf.clear();
        let f = p.server_fill(&mut buf).expect("fill");
        assert!(f.eof, "close_notify ends the input");
        p.server.close_notify();
        p.client_io();
        assert!(p.to_client.borrow().bytes.is_empty());
    }

    #[test]
    fn a_full_buffer_leaves_plaintext_waiting_without_a_new_event() {
        let mut p = Peer::new(1 << 20);
        p.handshake();
        let request = vec![b'x'; 3000];
        p.client.writer().write_all(&request).expect("w");
        p.client_io();
        let mut buf = Buffer::with_capacity(1000);
        let f = p.server_fill(&mut buf).expect("fill");
        assert_eq!(f.bytes, 1000);
        assert!(p.server.has_plaintext(), "may_have_input must stay true");
        let mut got = buf.data().to_vec();
        while got.len() < 3000 {
            buf.clear();
            p.server_fill(&mut buf).expect("fill");
            assert!(!buf.is_empty(), "no progress without an event");
            got.extend_from_slice(buf.data());
        }
        assert_eq!(got, request);
        buf.clear();
        assert_eq!(p.server_fill(&mut buf).expect("fill").bytes, 0);
        assert!(!p.server.has_plaintext() && !p.readable);
    }

    #[test]
    fn writes_stop_while_ciphertext_waits_then_resume() {
        let mut p = Peer::new(16 * 1024);
        p.handshake();
        let body = vec![7u8; 1 << 20];
        let mut head = Pending::default();
        let mut sent = 0;
        let mut received = Vec::new();
        let mut rounds = 0;
        while sent < body.len() || !p.server.is_flushed() {
            let w = p
                .server
                .flush(&mut p.writable, &mut head, &body[sent..])
                .expect("flush");
            assert!(
                w.body <= CIPHERTEXT_LIMIT + 16 * 1024,
                "a blocked socket bounds what is taken: {}",
                w.body
            );
            assert!(!p.writable || p.server.is_flushed());
            sent += w.body;
            p.client_io();
            received.extend(p.client_plaintext());
            rounds += 1;
            assert!(rounds < 10_000);
        }
        assert!(rounds > 10, "the socket's room limited each round");
        assert_eq!(received.len(), body.len());
        assert!(received == body);
    }

    #[test]
    fn garbage_after_the_first_byte_fails_the_handshake() {
        let mut p = Peer::new(1 << 20);
        p.to_server
            .borrow_mut()
            .bytes
            .extend(b"\x16\x03\x01\x00\x05hello garbage");
        p.readable = true;
        let mut buf = Buffer::with_capacity(1024);
        assert!(p.server_fill(&mut buf).is_err());
        assert_eq!(p.server.phase(), TlsPhase::Failed);
    }

    #[test]
    fn plain_http_gets_a_readable_400_and_garbage_is_closed() {
        let mut p = Peer::new(1 << 20);
        p.to_server
            .borrow_mut()
            .bytes
            .extend(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        p.readable = true;
        let mut buf = Buffer::with_capacity(1024);
        assert!(p.server_fill(&mut buf).is_err());
        assert_eq!(p.server.phase(), TlsPhase::PlainHttp);
        let out: Vec<u8> = p.to_client.borrow_mut().bytes.drain(..).collect();
        assert_eq!(out, PLAIN_HTTP_RESPONSE);
        assert!(p.to_client.borrow().closed);
        assert!(p.to_server.borrow().bytes.is_empty(), "input drained");

        let mut p = Peer::new(1 << 20);
        p.to_server.borrow_mut().bytes.extend(b"\x00\x01garbage");
        p.readable = true;
        assert!(p.server_fill(&mut buf).is_err());
        assert_eq!(p.server.phase(), TlsPhase::NotTls);
        assert!(p.to_client.borrow().bytes.is_empty());
    }

    #[test]
    fn a_peer_that_closes_mid_handshake_is_the_end() {
        let mut p = Peer::new(1 << 20);
        p.client_io();
        p.to_server.borrow_mut().closed = true;
        let mut buf = Buffer::with_capacity(1024);
        let f = p.server_fill(&mut buf).expect("fill");
        assert!(f.eof);
        assert_eq!(p.server.phase(), TlsPhase::Handshaking);
    }

    #[test]
    fn handshake_output_waits_for_writable_without_spinning() {
        let mut p = Peer::new(1 << 20);
        p.client_io();
        p.writable = false;
        let mut buf = Buffer::with_capacity(1024);
        let f = p.server_fill(&mut buf).expect("fill");
        assert_eq!(f.bytes, 0);
        assert!(
            p.to_client.borrow().bytes.is_empty(),
            "not writable: nothing written"
        );
        assert!(!p.server.is_flushed());
        // A writable event alone makes the handshake progress through fill.
        p.writable = true;
        p.server_fill(&mut buf).expect("fill");
        assert!(!p.to_client.borrow().bytes.is_empty());
        p.handshake();
        assert_eq!(p.server.phase(), TlsPhase::Established);
    }

    #[test]
    fn http_methods_are_recognised() {
        assert!(looks_like_http(b"GET / HT"));
        assert!(looks_like_http(b"POST /x "));
        assert!(looks_like_http(b"OPTIONS "));
        assert!(looks_like_http(b"GE"));
        assert!(!looks_like_http(b"\x16\x03\x01"));
        assert!(!looks_like_http(b"get / "));
        assert!(!looks_like_http(b"\x00"));
    }

    /// The client end (a TLS backend's connection): the handshake runs through `handshake`
    /// with readiness flags, then a request and its answer cross in plaintext.
    #[test]
    fn client_end_handshakes_then_exchanges() {
        let (server_config, client_config) = configs();
        let (from_origin, to_origin) = (
            Rc::new(RefCell::new(Pipe::default())),
            Rc::new(RefCell::new(Pipe::default())),
        );
        // The client stream reads what the origin wrote and writes towards the origin.
        let sock = MemSocket {
            to_server: from_origin.clone(),
            to_client: to_origin.clone(),
            room: 1 << 20,
        };
        let conn = ClientConnection::new(client_config, "localhost".try_into().expect("name"))
            .expect("client conn");
        let mut client = TlsStream::client(sock, conn);
        let mut origin = ServerConnection::new(server_config).expect("server conn");
        let (mut readable, mut writable) = (false, true);
        let mut done = false;
        for _ in 0..10 {
            done = client
                .handshake(&mut readable, &mut writable)
                .expect("handshake");
            let sent: Vec<u8> = to_origin.borrow_mut().bytes.drain(..).collect();
            let mut rd = &sent[..];
            while !rd.is_empty() {
                origin.read_tls(&mut rd).expect("origin read");
                origin.process_new_packets().expect("origin process");
            }
            while origin.wants_write() {
                let mut v = Vec::new();
                origin.write_tls(&mut v).expect("origin write");
                from_origin.borrow_mut().bytes.extend(v);
                readable = true;
            }
            if done && !origin.is_handshaking() {
                break;
            }
        }
        assert!(
            done && !origin.is_handshaking(),
            "no handshake in 10 rounds"
        );
        assert_eq!(client.phase(), TlsPhase::Established);

        let mut head = Pending {
            bytes: b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            pos: 0,
        };
        client.flush(&mut writable, &mut head, b"").expect("flush");
        assert!(client.is_flushed());
        let sent: Vec<u8> = to_origin.borrow_mut().bytes.drain(..).collect();
        origin.read_tls(&mut &sent[..]).expect("origin read");
        origin.process_new_packets().expect("origin process");
        let mut got = Vec::new();
        let _ = origin.reader().read_to_end(&mut got);
        assert_eq!(got, b"GET / HTTP/1.1\r\n\r\n");

        origin
            .writer()
            .write_all(b"HTTP/1.1 200 OK\r\n\r\n")
            .expect("answer");
        let mut v = Vec::new();
        origin.write_tls(&mut v).expect("origin write");
        from_origin.borrow_mut().bytes.extend(v);
        readable = true;
        let mut buf = Buffer::with_capacity(1024);
        let f = client
            .fill(&mut readable, &mut writable, &mut buf)
            .expect("fill");
        assert_eq!(f.bytes, 19);
        assert_eq!(buf.data(), b"HTTP/1.1 200 OK\r\n\r\n");
    }
}
