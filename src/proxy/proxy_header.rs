//! A client of a `proxy_protocol` listener before its PROXY protocol header is read: the worker
//! holds it here, not as a session, so neither the session nor the plain path knows the phase
//! exists. Its socket is registered under a token of its own (`worker.rs`: just below the
//! listeners' tokens, so the event loop tells them apart with the compare it already makes for
//! the listeners, and client and upstream events pay nothing); when the
//! header is complete the worker makes the session (plain or TLS) with the header's source as
//! the client's address and moves the socket to the session's token.
//!
//! The header is read with `MSG_PEEK` and then exactly its length is taken off the socket, so
//! the bytes after it (the HTTP request, or the TLS ClientHello) stay in the socket for the
//! session: nothing is copied or handed over, and a TLS stream starts on a clean socket.
//! A broken header, a connection that ends inside one, or none within `client_header_timeout`:
//! the connection is closed without a response, as HAProxy and nginx do (whatever sent it is
//! not speaking HTTP to pibl yet, and a TLS client could not read a plain `400` anyway).

use std::io::{self, Read};
use std::net::SocketAddr;
use std::time::Instant;

use super::transport::ClientSocket;
use crate::net::proxy_protocol::{self, Parsed, MAX_HEADER};

/// An accepted client whose PROXY header has not arrived whole.
#[derive(Debug)]
pub struct AwaitingHeader {
    pub socket: ClientSocket,
    /// The socket's peer: the balancer in front of pibl (`net::UNIX_CLIENT` on a unix socket).
    pub peer: SocketAddr,
    /// The listener's clients speak TLS (after the header).
    pub tls: bool,
    pub accepted: Instant,
    /// The client closed its sending side (seen by the event loop).
    pub hup: bool,
}

/// What reading the header found.
#[derive(Debug, PartialEq, Eq)]
pub enum HeaderRead {
    /// Not all there yet: wait for the next readable event.
    Wait,
    /// Taken off the socket: the client's address (the socket's for `LOCAL`/`UNKNOWN`), and
    /// the destination the header announced (passed on by a pool's own PROXY header).
    Ready {
        client: SocketAddr,
        dest: Option<SocketAddr>,
    },
    /// Close the connection, for this reason.
    Refused(&'static str),
}

impl AwaitingHeader {
    /// Looks at what has arrived; takes the header off the socket once it is whole.
    pub fn read(&mut self) -> HeaderRead {
        let mut buf = [0u8; MAX_HEADER];
        let n = loop {
            match self.socket.peek(&mut buf) {
                Ok(0) => return HeaderRead::Refused("closed before its PROXY protocol header"),
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return HeaderRead::Wait,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return HeaderRead::Refused("failed before its PROXY protocol header"),
            }
        };
        match proxy_protocol::parse(&buf[..n]) {
            Parsed::Incomplete if self.hup => {
                HeaderRead::Refused("closed inside its PROXY protocol header")
            }
            Parsed::Incomplete => HeaderRead::Wait,
            Parsed::Invalid(why) => HeaderRead::Refused(why),
            Parsed::Done {
                source,
                dest,
                consumed,
            } => match self.take(&mut buf[..consumed]) {
                Ok(()) => HeaderRead::Ready {
                    client: source.unwrap_or(self.peer),
                    dest: source.and(dest),
                },
                Err(_) => HeaderRead::Refused("failed reading its PROXY protocol header"),
            },
        }
    }

    /// Reads exactly `into.len()` bytes, which a peek has shown are there.
    fn take(&mut self, into: &mut [u8]) -> io::Result<()> {
        let mut got = 0;
        while got < into.len() {
            match self.socket.read(&mut into[got..]) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
