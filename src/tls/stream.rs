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

impl Socket for mio::net::UnixStream {
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
#[path = "stream_tests.rs"]
mod tests;
