//! One TCP connection per request (`Connection: close`), with socket errors turned into
//! [`ClientError`]s that say which peer failed and how.

use super::error::ClientError;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
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

/// An open connection to the origin server or to the forward proxy.
pub struct Connection {
    stream: TcpStream,
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
                        stream,
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

    /// Sends all of `bytes`.
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.stream
            .write_all(bytes)
            .map_err(|e| self.network_error(e, "sending the request"))
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
                Err(e) => return Err(self.network_error(e, "waiting for the response")),
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
