//! One TCP connection per request (`Connection: close`), plain or TLS, with socket and TLS
//! errors turned into [`ClientError`]s that say which peer failed and how.

use super::error::ClientError;
use crate::tls::client::{server_name, TlsFailure};
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

/// Something response bytes can be received from: a socket, or a byte slice in tests.
pub trait Source {
    /// Reads some bytes; `Ok(0)` means the peer closed the connection.
    fn receive(&mut self, buf: &mut [u8]) -> Result<usize, ClientError>;
}

impl Source for &[u8] {
    fn receive(&mut self, buf: &mut [u8]) -> Result<usize, ClientError> {
        Ok(self.read(buf).unwrap_or(0))
    }
}

/// The bytes' path: the socket itself, or TLS over it (blocking: rustls reads and writes the
/// socket as the caller reads and writes plaintext, so the socket's timeouts still apply).
enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// An open connection to the origin server or to the forward proxy.
pub struct Connection {
    stream: Stream,
    /// `host:port` we connected to, for messages.
    peer: String,
    timeout: Option<Duration>,
}

impl Connection {
    /// Resolves `host` and connects to the first address that accepts, within `timeout` each.
    pub fn open(host: &str, port: u16, timeout: Option<Duration>) -> Result<Self, ClientError> {
        let peer = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let addrs: Vec<SocketAddr> = match (host, port).to_socket_addrs() {
            Ok(addrs) => addrs.collect(),
            Err(e) => {
                return Err(ClientError::Dns {
                    host: host.to_string(),
                    detail: e.to_string(),
                })
            }
        };
        if addrs.is_empty() {
            return Err(ClientError::Dns {
                host: host.to_string(),
                detail: "no addresses found".into(),
            });
        }
        let mut last_error = None;
        for addr in &addrs {
            let attempt = match timeout {
                Some(t) => TcpStream::connect_timeout(addr, t),
                None => TcpStream::connect(addr),
            };
            match attempt {
                Ok(stream) => {
                    let configured = stream
                        .set_read_timeout(timeout)
                        .and_then(|()| stream.set_write_timeout(timeout));
                    if let Err(source) = configured {
                        return Err(ClientError::Connect { peer, source });
                    }
                    return Ok(Connection {
                        stream: Stream::Plain(stream),
                        peer,
                        timeout,
                    });
                }
                Err(e) => last_error = Some(e),
            }
        }
        let source = last_error.unwrap_or_else(|| io::Error::other("no address to connect to"));
        if is_timeout(&source) {
            return Err(ClientError::Timeout(format!(
                "timed out connecting to {peer} after {}",
                describe(timeout)
            )));
        }
        Err(ClientError::Connect { peer, source })
    }

    /// `host:port` this connection goes to.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// Starts TLS over this connection (at once, or after a proxy's `CONNECT`) and completes
    /// the handshake: SNI and the certificate's check are for `host` (a name or an IP literal).
    pub fn start_tls(self, config: Arc<ClientConfig>, host: &str) -> Result<Self, ClientError> {
        let Connection {
            stream,
            peer,
            timeout,
        } = self;
        let Stream::Plain(socket) = stream else {
            return Err(ClientError::Tls {
                peer,
                failure: TlsFailure::Handshake("TLS is already on".into()),
            });
        };
        // The handshake's last flight and the request are separate small writes: without
        // NODELAY, Nagle holds the request until the server's delayed ACK (40 ms).
        if let Err(source) = socket.set_nodelay(true) {
            return Err(ClientError::Connect { peer, source });
        }
        let name = server_name(host).map_err(ClientError::BadUrl)?;
        let tls = match ClientConnection::new(config, name) {
            Ok(tls) => tls,
            Err(e) => {
                let failure = TlsFailure::from_rustls(&e, host);
                return Err(ClientError::Tls { peer, failure });
            }
        };
        let mut tls = StreamOwned::new(tls, socket);
        while tls.conn.is_handshaking() {
            match tls.conn.complete_io(&mut tls.sock) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let connection = Connection {
                        stream: Stream::Tls(Box::new(tls)),
                        peer,
                        timeout,
                    };
                    return Err(connection.error(e, host, "in the TLS handshake"));
                }
            }
        }
        Ok(Connection {
            stream: Stream::Tls(Box::new(tls)),
            peer,
            timeout,
        })
    }

    /// Sends all of `bytes` (over TLS: encrypted and written out before returning).
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.stream
            .write_all(bytes)
            .and_then(|()| self.stream.flush())
            .map_err(|e| self.error(e, "", "sending the request"))
    }

    /// A TLS failure when the error is one (`name`: the server name asked for), else a
    /// network error.
    fn error(&self, e: io::Error, name: &str, doing: &str) -> ClientError {
        let tls = matches!(self.stream, Stream::Tls(_));
        match TlsFailure::from_io(&e, name).filter(|_| tls) {
            Some(failure) => ClientError::Tls {
                peer: self.peer.clone(),
                failure,
            },
            None => self.network_error(e, doing),
        }
    }

    fn network_error(&self, e: io::Error, doing: &str) -> ClientError {
        if is_timeout(&e) {
            ClientError::Timeout(format!(
                "timed out {doing} ({} without progress from {})",
                describe(self.timeout),
                self.peer
            ))
        } else {
            ClientError::Connect {
                peer: self.peer.clone(),
                source: e,
            }
        }
    }
}

impl Source for Connection {
    fn receive(&mut self, buf: &mut [u8]) -> Result<usize, ClientError> {
        loop {
            match self.stream.read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A TLS peer that closes without close_notify (many servers do): the end of
                // the response, as for plain TCP; the body's framing still catches truncation.
                Err(e)
                    if e.kind() == io::ErrorKind::UnexpectedEof
                        && matches!(self.stream, Stream::Tls(_)) =>
                {
                    return Ok(0)
                }
                Err(e) => return Err(self.error(e, "", "waiting for the response")),
            }
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

fn describe(timeout: Option<Duration>) -> String {
    match timeout {
        Some(t) => format!("{}s", t.as_secs_f64()),
        None => "the system timeout".into(),
    }
}
