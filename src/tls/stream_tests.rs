//! `TlsStream` driven against a rustls peer through memory (no sockets).

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
