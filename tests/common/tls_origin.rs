//! A test origin behind TLS: a thread accepting on 127.0.0.1:0, a rustls `ServerConnection`
//! over each blocking `TcpStream`, answering a fixed response or forwarding the plaintext to a
//! plain backend (as a TLS terminator would). For pibl-client's https tests and for the proxy's
//! TLS-backend tests.
//!
//! ```ignore
//! let ca = TestCa::new("test CA");
//! let backend = Backend::start("b1");
//! let origin = TlsOrigin::start(&ca.issue(&["localhost", "127.0.0.1"]), TlsReply::ForwardTo(backend.addr));
//! // trust ca.cert_path (--cacert, backend_ca) and fetch origin.url("localhost", "/")
//! ```

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pibl::tls::selfsigned::{DemoCa, IssuedCert};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::TempDir;

/// A generated CA whose certificate is written to a file a client can trust (`--cacert`).
pub struct TestCa {
    pub ca: DemoCa,
    /// The CA certificate, PEM, in a temporary directory.
    pub cert_path: PathBuf,
    _dir: TempDir,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let ca = DemoCa::generate(name).expect("generate test CA");
        let dir = TempDir::new("tls-ca");
        let cert_path = dir.path().join("ca.pem");
        std::fs::write(&cert_path, &ca.cert_pem).expect("write CA file");
        TestCa {
            ca,
            cert_path,
            _dir: dir,
        }
    }

    /// A server certificate for `names`, valid for a day.
    pub fn issue(&self, names: &[&str]) -> IssuedCert {
        self.ca
            .issue(names, Duration::from_secs(86_400))
            .expect("issue test certificate")
    }

    /// A server certificate for `names` that expired yesterday.
    pub fn issue_expired(&self, names: &[&str]) -> IssuedCert {
        let now = time::OffsetDateTime::now_utc();
        let validity = (
            now - time::Duration::days(30),
            now - time::Duration::days(1),
        );
        self.ca
            .issue_between(names, validity)
            .expect("issue expired certificate")
    }
}

/// What the origin does once the handshake is done.
#[derive(Clone)]
pub enum TlsReply {
    /// Read one request (head and Content-Length body), write these bytes, close.
    Fixed(Vec<u8>),
    /// Relay plaintext both ways to this plain backend until either side closes.
    ForwardTo(SocketAddr),
}

/// A TLS server on 127.0.0.1:0; one thread per connection. Stops accepting on drop.
pub struct TlsOrigin {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    handshakes: Arc<AtomicUsize>,
    server_names: Arc<Mutex<Vec<Option<String>>>>,
}

impl TlsOrigin {
    /// Serves `cert` (ALPN `http/1.1`, TLS 1.2 and 1.3) and answers with `reply`.
    pub fn start(cert: &IssuedCert, reply: TlsReply) -> TlsOrigin {
        let config = server_config(cert);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind TLS test origin");
        let addr = listener.local_addr().expect("local addr");
        let origin = TlsOrigin {
            addr,
            stop: Arc::default(),
            handshakes: Arc::default(),
            server_names: Arc::default(),
        };
        let (stop, handshakes, names) = (
            origin.stop.clone(),
            origin.handshakes.clone(),
            origin.server_names.clone(),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (config, reply) = (config.clone(), reply.clone());
                let (handshakes, names) = (handshakes.clone(), names.clone());
                std::thread::spawn(move || {
                    let Some(tls) = handshake(stream, config) else {
                        return;
                    };
                    handshakes.fetch_add(1, Ordering::SeqCst);
                    let sni = tls.conn.server_name().map(str::to_string);
                    names.lock().unwrap().push(sni);
                    match reply {
                        TlsReply::Fixed(bytes) => answer(tls, &bytes),
                        TlsReply::ForwardTo(backend) => forward(tls, backend),
                    }
                });
            }
        });
        origin
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `https://HOST:PORT{path}`, `host` being what the client should ask for (SNI, Host).
    pub fn url(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.addr.port())
    }

    /// Handshakes completed so far.
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }

    /// The SNI each completed handshake carried (`None`: none, as for an IP address).
    pub fn server_names(&self) -> Vec<Option<String>> {
        self.server_names.lock().unwrap().clone()
    }
}

impl Drop for TlsOrigin {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

type TlsStream = StreamOwned<ServerConnection, TcpStream>;

fn server_config(cert: &IssuedCert) -> Arc<ServerConfig> {
    let chain = CertificateDer::pem_slice_iter(cert.chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("certificate chain");
    let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).expect("private key");
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(pibl::tls::provider);
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server certificate");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// The handshake, within 5 s; `None` when the client gave up or refused the certificate.
fn handshake(stream: TcpStream, config: Arc<ServerConfig>) -> Option<TlsStream> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let conn = ServerConnection::new(config).ok()?;
    let mut tls = StreamOwned::new(conn, stream);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).ok()?;
    }
    Some(tls)
}

/// Reads one request, writes `bytes`, closes with close_notify.
fn answer(mut tls: TlsStream, bytes: &[u8]) {
    let mut request = Vec::new();
    let mut chunk = [0u8; 8192];
    let body_end = loop {
        if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break end + 4 + length;
        }
        match tls.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&chunk[..n]),
        }
    };
    while request.len() < body_end {
        match tls.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&chunk[..n]),
        }
    }
    let _ = tls.write_all(bytes);
    tls.conn.send_close_notify();
    let _ = tls.flush();
}

/// Relays plaintext both ways between the TLS client and a plain backend, polling each side
/// with a short read timeout (one thread, blocking sockets), until one side closes or nothing
/// moves for 10 s.
fn forward(mut tls: TlsStream, backend: SocketAddr) {
    let Ok(mut plain) = TcpStream::connect(backend) else {
        return;
    };
    let tick = Some(Duration::from_millis(5));
    if tls.sock.set_read_timeout(tick).is_err() || plain.set_read_timeout(tick).is_err() {
        return;
    }
    let mut buf = vec![0u8; 64 * 1024];
    let mut last_progress = Instant::now();
    let mut client_done = false;
    while last_progress.elapsed() < Duration::from_secs(10) {
        if !client_done {
            match tls.read(&mut buf) {
                Ok(0) => {
                    client_done = true;
                    let _ = plain.shutdown(Shutdown::Write);
                }
                Ok(n) => {
                    if plain.write_all(&buf[..n]).is_err() {
                        return;
                    }
                    last_progress = Instant::now();
                }
                Err(e) if would_block(&e) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    client_done = true;
                    let _ = plain.shutdown(Shutdown::Write);
                }
                Err(_) => return,
            }
        }
        match plain.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if tls.write_all(&buf[..n]).and_then(|()| tls.flush()).is_err() {
                    return;
                }
                last_progress = Instant::now();
            }
            Err(e) if would_block(&e) => {}
            Err(_) => break,
        }
    }
    tls.conn.send_close_notify();
    let _ = tls.flush();
}

fn would_block(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}
