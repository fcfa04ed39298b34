//! The client's connection as the session sees it: the socket, its readiness flags, reading into a
//! buffer, writing a head plus body, `shutdown`, and the two questions the states ask: may more
//! input be had without waiting for readiness, and is all output really out.
//!
//! Plain TCP, or TLS (`Stream::Tls`: a rustls `ServerConnection` over the socket, sans-io, in
//! `tls/stream.rs`). A TLS stream holds plaintext and ciphertext of its own, so "the socket would
//! block" is not "drained" and "the socket took the bytes" is not "sent"; those answers live here
//! and nowhere else. An enum keeps the dispatch static (one match, inlined), so the plain path
//! costs what the bare socket did; the TLS state is boxed, so a plain session stays small.

use std::io;
#[cfg(target_os = "linux")]
use std::os::fd::{AsRawFd, RawFd};

use mio::net::{TcpStream, UnixStream};

use super::io::{fill, flush, Filled, Flushed, Pending};
use super::pipe::Pipe;
use crate::buffer::Buffer;
use crate::tls::stream::{TlsPhase, TlsStream};

/// The byte stream under a client connection.
#[derive(Debug)]
pub enum Stream {
    Plain(TcpStream),
    /// TLS terminated here (a TLS listener).
    Tls(Box<TlsStream<TcpStream>>),
    /// A client of a `listen unix:PATH` listener, plain or TLS (splice is not used for it).
    /// Boxed, its reads and writes out of line, so the TCP arms stay as the hot path had them.
    Unix(Box<UnixClient>),
    /// One stream of an HTTP/2 connection (`h2_session.rs`): the child session's client is an
    /// in-memory pipe its h2 parent fills and drains. Boxed, out of line, like `Unix`.
    Pipe(Box<Pipe>),
    /// In-memory peer for unit tests of the state machine (no sockets).
    #[cfg(test)]
    Fake(fake::FakeStream),
}

/// The byte stream's own reading and writing, for either end: a client connection
/// ([`ClientTransport`]) or an upstream one (`proxy/upstream.rs`, whose TLS stream is a rustls
/// client). The readiness flags are the owner's.
impl Stream {
    /// Reads into `buf` until the stream would block, `buf` is full or the input ends.
    // Always: the unix arm's call must not change how the TCP arms inline into their callers.
    #[inline(always)]
    pub fn fill(
        &mut self,
        readable: &mut bool,
        writable: &mut bool,
        hup: bool,
        buf: &mut Buffer,
    ) -> io::Result<Filled> {
        match self {
            Stream::Plain(s) => fill(s, readable, hup, buf),
            Stream::Tls(t) => t.fill(readable, writable, buf),
            Stream::Unix(u) => u.fill(readable, writable, hup, buf),
            Stream::Pipe(p) => p.fill(buf),
            #[cfg(test)]
            Stream::Fake(s) => fill(s, readable, hup, buf),
        }
    }

    /// Writes `head`, then `body`, until done or the stream would block.
    #[inline(always)]
    pub fn flush(
        &mut self,
        writable: &mut bool,
        head: &mut Pending,
        body: &[u8],
    ) -> io::Result<Flushed> {
        match self {
            Stream::Plain(s) => flush(s, writable, head, body),
            Stream::Tls(t) => t.flush(writable, head, body),
            Stream::Unix(u) => u.flush(writable, head, body),
            Stream::Pipe(p) => p.flush(head, body),
            #[cfg(test)]
            Stream::Fake(s) => flush(s, writable, head, body),
        }
    }

    /// The TCP socket under the stream (`None` for a unix socket and the unit tests' fake).
    pub fn socket(&self) -> Option<&TcpStream> {
        match self {
            Stream::Plain(s) => Some(s),
            Stream::Tls(t) => Some(t.socket()),
            _ => None,
        }
    }

    /// As [`Self::socket`], to register or deregister it.
    pub fn socket_mut(&mut self) -> Option<&mut TcpStream> {
        match self {
            Stream::Plain(s) => Some(s),
            Stream::Tls(t) => Some(t.socket_mut()),
            _ => None,
        }
    }

    /// Nothing is held below the caller's queue (always true for plain TCP).
    #[inline]
    pub fn is_flushed(&self) -> bool {
        match self {
            Stream::Tls(t) => t.is_flushed(),
            Stream::Unix(u) => u.is_flushed(),
            _ => true,
        }
    }

    /// Decrypted input is held (a TLS stream), to be had without a readiness event.
    #[inline]
    pub fn holds_input(&self) -> bool {
        match self {
            Stream::Tls(t) => t.has_plaintext(),
            Stream::Unix(u) => u.holds_input(),
            Stream::Pipe(p) => p.holds_input(),
            _ => false,
        }
    }

    /// The raw socket for splice(2): plain TCP only (a TLS stream must encrypt the bytes).
    #[cfg(target_os = "linux")]
    #[inline]
    pub fn splice_fd(&self) -> Option<RawFd> {
        match self {
            Stream::Plain(s) => Some(s.as_raw_fd()),
            _ => None,
        }
    }
}

/// A unix-socket client's stream: plain, or TLS terminated here.
// Always boxed (`Stream::Unix`): the TLS variant's size costs nothing elsewhere.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum UnixClient {
    Plain(UnixStream),
    Tls(TlsStream<UnixStream>),
}

impl UnixClient {
    #[inline(never)]
    fn fill(
        &mut self,
        readable: &mut bool,
        writable: &mut bool,
        hup: bool,
        buf: &mut Buffer,
    ) -> io::Result<Filled> {
        match self {
            UnixClient::Plain(s) => fill(s, readable, hup, buf),
            UnixClient::Tls(t) => t.fill(readable, writable, buf),
        }
    }

    #[inline(never)]
    fn flush(
        &mut self,
        writable: &mut bool,
        head: &mut Pending,
        body: &[u8],
    ) -> io::Result<Flushed> {
        match self {
            UnixClient::Plain(s) => flush(s, writable, head, body),
            UnixClient::Tls(t) => t.flush(writable, head, body),
        }
    }

    fn is_flushed(&self) -> bool {
        match self {
            UnixClient::Plain(_) => true,
            UnixClient::Tls(t) => t.is_flushed(),
        }
    }

    fn holds_input(&self) -> bool {
        match self {
            UnixClient::Plain(_) => false,
            UnixClient::Tls(t) => t.has_plaintext(),
        }
    }

    fn shutdown_write(&mut self) {
        match self {
            UnixClient::Plain(s) => {
                let _ = s.shutdown(std::net::Shutdown::Write);
            }
            UnixClient::Tls(t) => {
                t.close_notify();
                let _ = t.socket().shutdown(std::net::Shutdown::Write);
            }
        }
    }
}

/// The TLS handshake agreed HTTP/2 (ALPN `h2`).
fn alpn_is_h2<S: crate::tls::stream::Socket>(t: &TlsStream<S>) -> bool {
    t.connection().alpn_protocol() == Some(b"h2")
}

/// A client socket as a listener accepted it: TCP, or a unix-domain socket.
#[derive(Debug)]
pub enum ClientSocket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl ClientSocket {
    /// The socket, to register it with the event loop.
    pub fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            ClientSocket::Tcp(s) => s,
            ClientSocket::Unix(s) => s,
        }
    }

    /// Reads without taking the bytes off the socket (`MSG_PEEK`).
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            ClientSocket::Tcp(s) => s.peek(buf),
            ClientSocket::Unix(s) => {
                use std::os::fd::AsRawFd;
                // SAFETY: recv writes at most `buf.len()` bytes into `buf`.
                let n = unsafe {
                    libc::recv(
                        s.as_raw_fd(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        libc::MSG_PEEK,
                    )
                };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            }
        }
    }
}

impl io::Read for ClientSocket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            ClientSocket::Tcp(s) => s.read(buf),
            ClientSocket::Unix(s) => s.read(buf),
        }
    }
}

/// What a listener's clients speak under HTTP: plain TCP, or TLS offering HTTP/2 by ALPN or
/// not as its line says (`listen ... tls http2 off`), else as the top-level `http2` says when
/// the client arrives (`None`: a reload may switch it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientTls {
    Plain,
    Tls { h2: Option<bool> },
}

impl ClientTls {
    pub fn of(listen: &crate::config::Listen) -> ClientTls {
        match listen.tls {
            true => ClientTls::Tls { h2: listen.http2 },
            false => ClientTls::Plain,
        }
    }
}

/// One client connection: the stream and what the event loop reported about it.
#[derive(Debug)]
pub struct ClientTransport {
    stream: Stream,
    /// Readiness reported and not yet used up by a call that would block.
    readable: bool,
    writable: bool,
    /// The event loop saw the client close its sending side.
    hup: bool,
    /// The client's input ended (a read returned 0, or the session decided nothing more comes).
    eof: bool,
    /// `h2c on`: a plain client may begin with the HTTP/2 preface.
    h2c: bool,
}

/// What the first bytes of a connection say about HTTP/2 ([`ClientTransport::speaks_h2`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum H2Start {
    No,
    Yes,
    /// `h2c on` and the input so far is a prefix of the preface: wait for more.
    Undecided,
}

/// The client preface's request line and blank line (RFC 9113 §3.4): what an HTTP/1 parser
/// sees first; the whole 24-byte preface is checked by `H2Connection`.
const PREFACE_LINE: &[u8] = b"PRI * HTTP/2.0\r\n\r\n";

impl ClientTransport {
    pub fn plain(stream: TcpStream) -> ClientTransport {
        ClientTransport::new(Stream::Plain(stream))
    }

    /// An accepted client, of a TLS listener when `tls` is given (see [`Self::tls`]).
    pub fn accepted(
        socket: ClientSocket,
        tls: Option<(rustls::ServerConnection, Option<u64>)>,
    ) -> ClientTransport {
        match (socket, tls) {
            (ClientSocket::Tcp(s), None) => ClientTransport::plain(s),
            (ClientSocket::Tcp(s), Some((conn, hsts))) => ClientTransport::tls(s, conn, hsts),
            (ClientSocket::Unix(s), None) => {
                ClientTransport::new(Stream::Unix(Box::new(UnixClient::Plain(s))))
            }
            (ClientSocket::Unix(s), Some((conn, hsts))) => {
                let mut tls = TlsStream::new(s, conn);
                tls.hsts = hsts;
                ClientTransport::new(Stream::Unix(Box::new(UnixClient::Tls(tls))))
            }
        }
    }

    /// A client of a TLS listener; `conn` is made from the listener's current `ServerConfig`,
    /// which this connection keeps for its life (a reload does not change it), as it keeps
    /// `hsts` (the `hsts` max-age its responses announce, if any).
    pub fn tls(
        stream: TcpStream,
        conn: rustls::ServerConnection,
        hsts: Option<u64>,
    ) -> ClientTransport {
        let mut tls = TlsStream::new(stream, conn);
        tls.hsts = hsts;
        ClientTransport::new(Stream::Tls(Box::new(tls)))
    }

    /// `Strict-Transport-Security: max-age=N` for responses on this connection (TLS only).
    #[inline]
    pub fn hsts(&self) -> Option<u64> {
        match &self.stream {
            Stream::Tls(t) => t.hsts,
            Stream::Unix(u) => match &**u {
                UnixClient::Tls(t) => t.hsts,
                UnixClient::Plain(_) => None,
            },
            Stream::Pipe(p) => p.hsts,
            _ => None,
        }
    }

    /// The scheme the client spoke: `X-Forwarded-Proto`.
    #[inline]
    pub fn scheme(&self) -> &'static str {
        match &self.stream {
            Stream::Tls(_) => "https",
            Stream::Unix(u) if matches!(**u, UnixClient::Tls(_)) => "https",
            Stream::Pipe(p) => p.scheme,
            _ => "http",
        }
    }

    /// The address the client connected to (what a PROXY protocol header sent upstream
    /// names as the destination); unspecified when the socket cannot say.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        if let Stream::Pipe(p) = &self.stream {
            return p.local;
        }
        self.stream
            .socket()
            .and_then(|s| s.local_addr().ok())
            .unwrap_or_else(|| std::net::SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Where the TLS connection stands (`None` for plain TCP): counted when it closes.
    pub fn tls_phase(&self) -> Option<TlsPhase> {
        match &self.stream {
            Stream::Tls(t) => Some(t.phase()),
            Stream::Unix(u) => match &**u {
                UnixClient::Tls(t) => Some(t.phase()),
                UnixClient::Plain(_) => None,
            },
            _ => None,
        }
    }

    /// The client of one HTTP/2 stream: its child session reads and writes `pipe`.
    pub fn pipe(pipe: Pipe) -> ClientTransport {
        ClientTransport::new(Stream::Pipe(Box::new(pipe)))
    }

    /// The pipe of an HTTP/2 stream's child session (`None`: a real client).
    #[inline]
    pub fn pipe_mut(&mut self) -> Option<&mut Pipe> {
        match &mut self.stream {
            Stream::Pipe(p) => Some(p),
            _ => None,
        }
    }

    /// The h2 session's key, when this is the pipe of one of its streams: one compare for the
    /// HTTP/1 client, asked after every drive.
    #[inline]
    pub fn pipe_parent(&self) -> Option<usize> {
        match &self.stream {
            Stream::Pipe(p) => Some(p.parent),
            _ => None,
        }
    }

    /// The pipe itself, once its child session closed (the h2 side drains what is left).
    pub fn into_pipe(self) -> Option<Box<Pipe>> {
        match self.stream {
            Stream::Pipe(p) => Some(p),
            _ => None,
        }
    }

    /// The protocol version the access log names for a request read as `version`: an h2
    /// stream's child read an HTTP/1.1 request the h2 side wrote, but the client spoke HTTP/2.
    #[inline]
    pub fn log_version(&self, version: crate::http::Version) -> &'static str {
        match &self.stream {
            Stream::Pipe(_) => "HTTP/2.0",
            _ => version.as_str(),
        }
    }

    /// An h2 stream's pipe: the request read from it came over HTTP/2.
    #[inline]
    pub fn is_h2_stream(&self) -> bool {
        matches!(self.stream, Stream::Pipe(_))
    }

    /// Lets a plain client begin with the HTTP/2 preface (`h2c on`: prior knowledge).
    pub fn allow_h2c(&mut self) {
        self.h2c = true;
    }

    /// Whether this connection speaks HTTP/2, asked before its first request is parsed with
    /// `input` (what arrived so far): the TLS handshake agreed `h2` (ALPN), or `h2c on` and
    /// the input begins with the client preface's request line.
    pub fn speaks_h2(&self, input: &[u8]) -> H2Start {
        let alpn_h2 = match &self.stream {
            Stream::Tls(t) => alpn_is_h2(t),
            Stream::Unix(u) => match &**u {
                UnixClient::Tls(t) => alpn_is_h2(t),
                UnixClient::Plain(_) => false,
            },
            _ => false,
        };
        if alpn_h2 {
            return H2Start::Yes;
        }
        if !self.h2c || input.is_empty() {
            return H2Start::No;
        }
        let n = input.len().min(PREFACE_LINE.len());
        match input[..n] == PREFACE_LINE[..n] {
            false => H2Start::No,
            true if n == PREFACE_LINE.len() => H2Start::Yes,
            true => H2Start::Undecided,
        }
    }

    /// The socket, to register it under another token (a connection turning into HTTP/2);
    /// `None` for a pipe or the tests' fake.
    pub fn source_mut(&mut self) -> Option<&mut dyn mio::event::Source> {
        match &mut self.stream {
            Stream::Plain(s) => Some(s),
            Stream::Tls(t) => Some(t.socket_mut()),
            Stream::Unix(u) => Some(match &mut **u {
                UnixClient::Plain(s) => s,
                UnixClient::Tls(t) => t.socket_mut(),
            }),
            _ => None,
        }
    }

    fn new(stream: Stream) -> ClientTransport {
        ClientTransport {
            stream,
            readable: false,
            writable: false,
            hup: false,
            eof: false,
            h2c: false,
        }
    }

    /// Records an event's readiness; cleared only when a call would block.
    #[inline]
    pub fn on_event(&mut self, readable: bool, writable: bool, hup: bool) {
        self.hup |= hup;
        self.readable |= readable;
        self.writable |= writable;
    }

    /// Reads into `buf` until the stream would block, `buf` is full or the input ends. Plain TCP
    /// takes a short read as "drained" (see `Buffer::read_from`); a TLS stream must not, since
    /// its library may hold decrypted bytes the socket no longer signals.
    #[inline]
    pub fn fill(&mut self, buf: &mut Buffer) -> io::Result<Filled> {
        self.stream
            .fill(&mut self.readable, &mut self.writable, self.hup, buf)
    }

    /// Writes `head`, then `body`, until done or the stream would block.
    #[inline]
    pub fn flush(&mut self, head: &mut Pending, body: &[u8]) -> io::Result<Flushed> {
        self.stream.flush(&mut self.writable, head, body)
    }

    /// Shuts the sending side (the start of a lingering close). Best effort: a failure means
    /// the connection is gone, which the next read finds.
    pub fn shutdown_write(&mut self) {
        match &mut self.stream {
            Stream::Plain(s) => {
                let _ = s.shutdown(std::net::Shutdown::Write);
            }
            Stream::Tls(t) => {
                t.close_notify();
                let _ = t.socket().shutdown(std::net::Shutdown::Write);
            }
            Stream::Unix(u) => u.shutdown_write(),
            Stream::Pipe(p) => p.shut = true,
            #[cfg(test)]
            Stream::Fake(s) => s.shut = true,
        }
    }

    /// More input may be had without waiting for a readiness event. For plain TCP that is the
    /// unspent readable flag; a TLS stream also answers true while it holds decrypted bytes.
    #[inline]
    pub fn may_have_input(&self) -> bool {
        self.readable || self.stream.holds_input()
    }

    /// Everything written so far has really left: nothing is held below the session's own
    /// queue (always true for plain TCP; a TLS stream may hold ciphertext).
    #[inline]
    pub fn is_flushed(&self) -> bool {
        self.stream.is_flushed()
    }

    /// All output is out: the session's `queued` bytes and anything held below them.
    #[inline]
    pub fn all_out(&self, queued: &Pending) -> bool {
        queued.is_empty() && self.is_flushed()
    }

    /// The client's input has ended.
    #[inline]
    pub fn eof(&self) -> bool {
        self.eof
    }

    /// Nothing more will be read from the client (it closed, failed, or gave up mid-body).
    #[inline]
    pub fn set_eof(&mut self) {
        self.eof = true;
    }

    /// The raw socket for splice(2), when the bytes on the wire are the body bytes (plain TCP
    /// only: a TLS stream must encrypt them).
    #[cfg(target_os = "linux")]
    #[inline]
    pub fn splice_fd(&self) -> Option<RawFd> {
        self.stream.splice_fd()
    }

    /// Writable readiness not yet used up (for splice(2), which bypasses [`Self::flush`]).
    #[cfg(target_os = "linux")]
    #[inline]
    pub fn writable(&self) -> bool {
        self.writable
    }

    /// A splice(2) to the raw socket would block: wait for the next writable event.
    #[cfg(target_os = "linux")]
    pub fn splice_blocked(&mut self) {
        self.writable = false;
    }
}

#[cfg(test)]
pub mod fake {
    //! An in-memory client for unit tests: input is queued by the test, output collected.

    use std::collections::VecDeque;
    use std::io::{self, Read, Write};

    use super::{ClientTransport, Stream};

    #[derive(Debug, Default)]
    pub struct FakeStream {
        /// Bytes the client has sent and the session not yet read.
        pub input: VecDeque<u8>,
        /// The client closed its sending side after `input`.
        pub closed: bool,
        /// Everything the session wrote.
        pub output: Vec<u8>,
        /// Bytes the "socket" accepts before it would block.
        pub room: usize,
        /// The session shut its sending side.
        pub shut: bool,
    }

    impl Read for FakeStream {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.input.is_empty() {
                return if self.closed {
                    Ok(0)
                } else {
                    Err(io::ErrorKind::WouldBlock.into())
                };
            }
            let n = buf.len().min(self.input.len());
            for (d, s) in buf.iter_mut().zip(self.input.drain(..n)) {
                *d = s;
            }
            Ok(n)
        }
    }

    impl Write for FakeStream {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            self.output.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl ClientTransport {
        pub fn fake() -> ClientTransport {
            ClientTransport::new(Stream::Fake(FakeStream {
                room: usize::MAX,
                ..FakeStream::default()
            }))
        }

        /// The fake peer, to feed input or read output.
        pub fn peer(&mut self) -> &mut FakeStream {
            match &mut self.stream {
                Stream::Fake(s) => s,
                _ => unreachable!("a test asked a real socket for its fake peer"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_is_used_up_only_by_a_call_that_would_block() {
        let mut t = ClientTransport::fake();
        t.peer().input.extend(b"GET / HTTP/1.1\r\n\r\n");
        let mut buf = Buffer::with_capacity(64);
        // No readiness reported yet: nothing is read.
        assert_eq!(t.fill(&mut buf).map(|f| f.bytes).ok(), Some(0));
        t.on_event(true, true, false);
        assert!(t.may_have_input());
        let f = t.fill(&mut buf).ok();
        assert_eq!(f.map(|f| (f.bytes, f.eof)), Some((18, false)));
        assert!(
            !t.may_have_input(),
            "the read that would block cleared the flag"
        );

        let mut head = Pending {
            bytes: b"HTTP/1.1 200 OK\r\n\r\n".to_vec(),
            pos: 0,
        };
        t.peer().room = 5;
        let w = t.flush(&mut head, b"body").ok();
        assert_eq!(w.map(|w| w.total), Some(5));
        assert!(!t.all_out(&head));
        t.peer().room = usize::MAX;
        t.on_event(false, true, false);
        let w = t.flush(&mut head, b"body").ok();
        assert_eq!(w.map(|w| (w.total, w.body)), Some((18, 4)));
        assert!(t.all_out(&head));
        assert_eq!(t.peer().output, b"HTTP/1.1 200 OK\r\n\r\nbody");

        t.peer().closed = true;
        t.on_event(true, false, true);
        assert_eq!(t.fill(&mut buf).ok().map(|f| f.eof), Some(true));
        t.shutdown_write();
        assert!(t.peer().shut);
    }
}
