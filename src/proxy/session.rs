//! One client connection: an explicit state machine that relays requests and responses between
//! the client socket and one upstream socket at a time.
//!
//! ```text
//! ReadRequestHead ─▶ Connecting ─▶ SendRequest ─▶ ReadResponseHead ─▶ RelayResponse ─▶ ReadRequestHead
//!        │               │  ▲            │   (1xx relayed in place)          │               (keep-alive)
//!        │               └──┘ next       └──── early final response ─────────┤
//!        │              backend                      101 ─▶ Tunnel           └─▶ Closing ─▶ [Lingering ─▶] Closed
//!        └─▶ SendError (4xx/5xx made by the proxy) ─▶ ReadRequestHead | Closing
//! ```
//!
//! Every transition goes through [`Session::enter`], which checks it is legal and arms the state's
//! deadline, so no state can wait without a timer. Sockets are registered once for both
//! directions, edge-triggered; the readiness each event reports is kept in flags and cleared only
//! when a call would block, and each state acts on the readiness it needs. Backpressure is
//! structural: a state reads from one side only while its buffer towards the other has room.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::Registry;

use super::cached::{self, CacheLabel, CacheWork, Consulted};
use super::io::{fill, flush, Pending};
use super::shared::{Settings, Shared};
#[cfg(target_os = "linux")]
use super::splice::SplicePipe;
use super::transport::ClientTransport;
use super::upstream::UpstreamPool;
use super::upstream_failure::{HeldFailure, Phase};
use crate::buffer::{Buffer, BufferPool, HeadPool};
use crate::clock::Clock;
use crate::http::body::{BodyKind, BodyRelay};
use crate::http::request::{self, Forwarding, HeadLimits, RequestInfo, RequestLine};
use crate::http::response::{self, ClientSide, ResponseInfo};
use crate::logging::AccessLog;

/// How long a closing connection waits for the client to finish sending before the socket is
/// dropped; closing with unread input would make the kernel reset the connection and could
/// destroy the response the client has not read yet.
const LINGER: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Waiting for a request head; also the idle keep-alive state.
    ReadRequestHead,
    /// An upstream TCP handshake is in flight.
    Connecting,
    /// Writing the request head and streaming the request body upstream.
    SendRequest,
    /// The request is sent; waiting for the response head (1xx are relayed here).
    ReadResponseHead,
    /// Streaming the response body to the client.
    RelayResponse,
    /// After `101 Switching Protocols`: raw bytes both ways.
    Tunnel,
    /// Writing a response from the disk cache (head, then the body from its memory map).
    ServeCached,
    /// Another request is fetching this URL for the cache; wait for it (bounded).
    AwaitFill,
    /// Writing a response the proxy made itself; `close` afterwards or read the next request.
    /// Its access line (`status`) is written when it ends: sent whole, or cut short.
    SendError {
        close: bool,
        status: u16,
    },
    /// Flushing the last output before closing. `linger` unless the client asked to close and
    /// sent its whole request, so that nothing more should come from it.
    Closing {
        linger: bool,
    },
    /// Output flushed, write side shut; draining the client until it closes (lingering close).
    Lingering,
    Closed,
}

impl State {
    /// The legal transitions, as data.
    fn allows(self, next: State) -> bool {
        use State::*;
        matches!(
            (self, next),
            (_, Closed)
                | (
                    ReadRequestHead,
                    Connecting
                        | SendRequest
                        | SendError { .. }
                        | Closing { .. }
                        | ServeCached
                        | AwaitFill
                )
                | (
                    AwaitFill,
                    Connecting | SendRequest | SendError { .. } | ServeCached
                )
                | (ServeCached, ReadRequestHead | Closing { .. })
                | (Connecting, Connecting | SendRequest | SendError { .. })
                | (
                    SendRequest | ReadResponseHead,
                    Connecting
                        | SendRequest
                        | ReadResponseHead
                        | RelayResponse
                        | Tunnel
                        | SendError { .. }
                        | Closing { .. }
                        | ServeCached
                )
                | (RelayResponse, ReadRequestHead | Closing { .. })
                | (SendError { .. }, ReadRequestHead | Closing { .. })
                | (Closing { .. }, Lingering)
        )
    }
}

/// What discarding a closing client's input found.
enum Discarded {
    /// The client closed (or the socket failed): nothing more will come.
    End,
    /// Nothing more to read for now; `any`: some input was dropped first.
    NothingYet { any: bool },
}

/// What a state handler tells the drive loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// Progress was made or the state changed: run the handler again.
    Again,
    /// Nothing more until a socket event or the deadline.
    Wait,
}

/// Everything a session may touch beyond itself, lent by its worker for one event.
pub struct Ctx<'a> {
    pub registry: &'a Registry,
    pub upstreams: &'a mut UpstreamPool,
    pub buffers: &'a mut BufferPool,
    pub heads: &'a mut HeadPool,
    pub clock: &'a mut Clock,
    pub shared: &'a Shared,
    /// The worker's current settings: what a new request starts with.
    pub settings: &'a Arc<Settings>,
    pub log: &'a mut AccessLog,
    /// This session's slab key.
    pub key: usize,
    pub stopping: bool,
    /// Sessions waiting for a cache fill, re-driven when the cache changes.
    pub waiters: &'a mut Vec<usize>,
}

/// One request/response exchange on the connection.
#[derive(Debug)]
pub(super) struct Exchange {
    pub(super) info: RequestInfo,
    /// The settings this request started with: `backend` and `tried` index its backend list,
    /// and failures are reported to its rotation, even if a reload happens meanwhile.
    pub(super) settings: Arc<Settings>,
    pub(super) started: Instant,
    pub(super) req_body: BodyRelay,
    pub(super) resp_body: BodyRelay,
    pub(super) resp: Option<ResponseInfo>,
    pub(super) backend: Option<usize>,
    /// Backends this request failed to reach, a bit each.
    pub(super) tried: u64,
    /// The current upstream connection came from the pool.
    pub(super) reused: bool,
    /// The one retry on a fresh connection after a pooled one failed was used.
    pub(super) stale_retried: bool,
    /// Other backends tried after the first (bounded by `max_retries`).
    pub(super) retries: u32,
    /// The one retry after a response-head timeout was used.
    pub(super) timeout_retried: bool,
    /// Bytes written upstream for this request.
    pub(super) upstream_sent: u64,
    /// The backend sent at least one byte of a response.
    pub(super) response_started: bool,
    /// Bytes written to the client for this request.
    pub(super) client_bytes: u64,
    /// Last failure reaching a backend was a timeout (504 rather than 502).
    pub(super) timed_out: bool,
    pub(super) logged: bool,
    /// A failure on a backend marked down (every backend was), logged when the exchange ends.
    pub(super) held: Option<HeldFailure>,
    /// What the cache does for this request.
    pub(super) cache: CacheWork,
    /// The pipe of a body being spliced, while it is (splice(2) is Linux-only).
    #[cfg(target_os = "linux")]
    pub(super) splice: Option<SplicePipe>,
}

impl Exchange {
    fn new(info: RequestInfo, settings: Arc<Settings>, now: Instant) -> Exchange {
        Exchange {
            settings,
            req_body: BodyRelay::new(info.body, false),
            resp_body: BodyRelay::new(BodyKind::Empty, false),
            info,
            started: now,
            resp: None,
            backend: None,
            tried: 0,
            reused: false,
            stale_retried: false,
            retries: 0,
            timeout_retried: false,
            upstream_sent: 0,
            response_started: false,
            client_bytes: 0,
            timed_out: false,
            logged: false,
            held: None,
            cache: CacheWork::default(),
            #[cfg(target_os = "linux")]
            splice: None,
        }
    }

    /// The request can be sent again: no body byte has been taken from the client.
    pub(super) fn replayable(&self) -> bool {
        matches!(self.info.body, BodyKind::Empty | BodyKind::Length(0))
    }
}

pub struct Session {
    /// The client's connection: every client read, write and shutdown goes through it.
    pub(super) client: ClientTransport,
    pub(super) peer: SocketAddr,
    pub(super) state: State,
    pub deadline: Instant,
    /// Served at least one request (keep-alive idle timeout applies, not the head timeout).
    pub(super) served: bool,
    /// When the request now being read began (accept, or its first byte on a kept-alive
    /// connection): the duration logged for a response made before its head was complete.
    pub(super) head_began: Instant,
    pub(super) client_in: Option<Buffer>,
    pub(super) upstream_in: Option<Buffer>,
    /// Key of the upstream connection in use, in the worker's [`UpstreamPool`].
    pub(super) upstream: Option<usize>,
    pub(super) to_upstream: Pending,
    pub(super) to_client: Pending,
    pub(super) line: RequestLine,
    /// A copy of the request head, kept when the cache needs its headers.
    pub(super) req_head: Vec<u8>,
    pub(super) x: Option<Exchange>,
}

impl Session {
    pub fn new(
        client: TcpStream,
        peer: SocketAddr,
        now: Instant,
        header_timeout: Duration,
    ) -> Self {
        Session {
            client: ClientTransport::plain(client),
            peer,
            state: State::ReadRequestHead,
            deadline: now + header_timeout,
            served: false,
            head_began: now,
            client_in: None,
            upstream_in: None,
            upstream: None,
            to_upstream: Pending::default(),
            to_client: Pending::default(),
            line: RequestLine::default(),
            req_head: Vec::new(),
            x: None,
        }
    }

    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Idle between requests with nothing buffered: safe to close when stopping. A connection
    /// that has not had its first request yet is not idle: its client is about to send one (it
    /// may have been accepted from the queue during the stop) and would not retry it.
    pub fn is_idle(&self) -> bool {
        self.served
            && self.state == State::ReadRequestHead
            && self.client_in.as_ref().is_none_or(Buffer::is_empty)
    }

    pub fn on_client_event(&mut self, readable: bool, writable: bool, hup: bool) {
        self.client.on_event(readable, writable, hup);
    }

    /// Runs the state machine until it waits on a socket or a deadline.
    pub fn drive(&mut self, ctx: &mut Ctx<'_>) {
        loop {
            let step = match self.state {
                State::ReadRequestHead => self.read_request_head(ctx),
                State::Connecting => self.connecting(ctx),
                State::SendRequest => self.send_request(ctx),
                State::ReadResponseHead => self.read_response_head(ctx),
                State::RelayResponse => self.relay_response(ctx),
                State::Tunnel => self.tunnel(ctx),
                State::ServeCached => self.serve_cached(ctx),
                State::AwaitFill => self.await_fill(ctx),
                State::SendError { close, status } => self.send_error(ctx, close, status),
                State::Closing { linger } => self.closing(ctx, linger),
                State::Lingering => self.lingering(ctx),
                State::Closed => Step::Wait,
            };
            if step == Step::Wait {
                break;
            }
        }
    }

    /// Moves to `next` and arms its deadline. The one place a state changes.
    pub(super) fn enter(&mut self, next: State, ctx: &mut Ctx<'_>) -> Step {
        debug_assert!(
            self.state.allows(next),
            "illegal transition {:?} -> {next:?}",
            self.state
        );
        let t = &ctx.settings.config.timeouts;
        let wait = match next {
            State::ReadRequestHead if self.served && !self.has_buffered_input() => t.keepalive,
            State::ReadRequestHead => t.client_header,
            State::Connecting => t.connect,
            State::SendRequest => self.send_wait(t),
            State::ReadResponseHead | State::RelayResponse | State::Tunnel => t.upstream,
            State::SendError { .. } | State::ServeCached => t.client_idle,
            State::AwaitFill => ctx
                .shared
                .cache
                .as_ref()
                .map_or(t.upstream, |c| c.config.fill_wait),
            State::Closing { .. } => t.client_idle,
            State::Lingering => LINGER,
            State::Closed => Duration::ZERO,
        };
        self.state = next;
        self.deadline = ctx.clock.now + wait;
        if next == State::ReadRequestHead {
            self.head_began = ctx.clock.now;
        }
        if next == State::Closed {
            self.release(ctx);
        }
        Step::Again
    }

    /// Pushes the deadline of the current state forward after progress (idle timeouts).
    pub(super) fn touch(&mut self, ctx: &Ctx<'_>) {
        let t = &ctx.settings.config.timeouts;
        let wait = match self.state {
            State::SendRequest => self.send_wait(t),
            State::RelayResponse | State::Tunnel => t.upstream.max(t.client_idle),
            State::ServeCached => t.client_idle,
            _ => return,
        };
        self.deadline = ctx.clock.now + wait;
    }

    /// In `SendRequest`, true while the request body is unfinished and nothing of it is waiting
    /// to go upstream: the session waits for the client.
    fn waiting_for_request_body(&self) -> bool {
        self.x
            .as_ref()
            .is_some_and(|x| !x.req_body.is_complete() && x.req_body.ready() == 0)
    }

    /// The deadline of `SendRequest`: the client's idle timeout while waiting for its body, the
    /// backend's while waiting for it to take what we have.
    fn send_wait(&self, t: &crate::config::Timeouts) -> Duration {
        if self.waiting_for_request_body() {
            t.client_idle
        } else {
            t.upstream
        }
    }

    pub(super) fn has_buffered_input(&self) -> bool {
        self.client_in.as_ref().is_some_and(|b| !b.is_empty())
    }

    /// The stop deadline (`shutdown_timeout`) passed with this connection open: the worker drops
    /// it now. An exchange under way gets its access line: the status the client saw, or `503`
    /// when it got nothing, and the bytes it got.
    pub fn log_cut_at_stop(&mut self, ctx: &mut Ctx<'_>) {
        if let State::SendError { status, .. } = self.state {
            self.log_error_response(ctx, status);
            return;
        }
        let Some(x) = self.x.as_ref() else {
            return;
        };
        let status = match &x.resp {
            Some(r) if x.client_bytes > 0 => r.status,
            _ => 503,
        };
        self.log_exchange(ctx, status);
    }

    /// The deadline passed.
    pub fn on_timeout(&mut self, ctx: &mut Ctx<'_>) {
        match self.state {
            State::ReadRequestHead if self.has_buffered_input() => {
                self.fail(ctx, 408, "request head not received in time", true);
            }
            State::ReadRequestHead if !self.served => {
                // A connection that sent nothing: closed without a response, as nginx does
                // (nothing to answer), but logged (408, 0 bytes) so it is not invisible.
                self.to_client.clear();
                self.log_exchange(ctx, 408);
                self.enter(State::Closed, ctx);
            }
            State::SendError { status, .. } => {
                // The client stopped reading the response pibl made.
                self.log_error_response(ctx, status);
                self.enter(State::Closed, ctx);
            }
            State::Connecting => {
                let wait = ctx.settings.config.timeouts.connect;
                self.upstream_event(
                    Phase::Connect,
                    format_args!("did not accept a connection within {wait:?}"),
                );
                if let Some(x) = self.x.as_mut() {
                    x.timed_out = true;
                }
                self.backend_failed("connect timed out");
                self.close_upstream(ctx, false);
                self.retry_elsewhere(ctx);
            }
            State::SendRequest if self.waiting_for_request_body() => {
                // The client stopped sending its body: its doing, not the backend's.
                self.close_upstream(ctx, false);
                self.fail(ctx, 408, "request body not received in time", true);
            }
            State::SendRequest | State::ReadResponseHead => self.response_timed_out(ctx),
            State::RelayResponse => {
                let wait = ctx.settings.config.timeouts.upstream;
                self.upstream_event(
                    Phase::Body,
                    format_args!("the response made no progress for {wait:?}"),
                );
                self.log_exchange(ctx, 504);
                self.enter(State::Closed, ctx);
            }
            State::Tunnel | State::ServeCached => {
                self.log_exchange(ctx, 504);
                self.enter(State::Closed, ctx);
            }
            State::AwaitFill => {
                // The request filling the cache is slow: fetch for ourselves.
                if let Some(x) = self.x.as_mut() {
                    x.cache.stop_waiting();
                }
                self.pick_backend(ctx);
            }
            _ => {
                self.enter(State::Closed, ctx);
            }
        }
    }

    // ---- states -------------------------------------------------------------------------------

    fn read_request_head(&mut self, ctx: &mut Ctx<'_>) -> Step {
        let limits = head_limits(ctx);
        loop {
            let buf = self.client_in.get_or_insert_with(|| ctx.buffers.get());
            if !buf.is_empty() {
                for head in [&mut self.to_upstream.bytes, &mut self.to_client.bytes] {
                    if head.capacity() == 0 {
                        *head = ctx.heads.get();
                    }
                }
                let fwd = Forwarding {
                    client_ip: self.peer.ip(),
                    proto: "http",
                };
                let cache = ctx.shared.cache.as_deref();
                let upstream_head = &mut self.to_upstream.bytes;
                let upgrades = &ctx.settings.config.upgrade_protocols;
                let parsed =
                    request::parse_with(buf.data(), limits, upgrades, &mut self.line, |head| {
                        let consulted = cache.map(|c| cached::consult(c, head));
                        if consulted.as_ref().is_some_and(Consulted::is_hit) {
                            upstream_head.clear();
                        } else {
                            head.write_upstream(upstream_head, &fwd);
                        }
                        consulted
                    });
                match parsed {
                    Ok(Some((info, consulted))) => {
                        if ctx.shared.cache.is_some() {
                            self.req_head.clear();
                            self.req_head
                                .extend_from_slice(&buf.data()[..info.head_len]);
                        }
                        buf.consume(info.head_len);
                        self.to_upstream.pos = 0;
                        self.x = Some(Exchange::new(info, ctx.settings.clone(), ctx.clock.now));
                        let max_body = ctx.settings.config.limits.max_body_size;
                        if self.x.as_ref().is_some_and(|x| x.body_over(max_body)) {
                            return self.fail(ctx, 413, "request body larger than allowed", true);
                        }
                        return self.begin_exchange(ctx, consulted);
                    }
                    Ok(None) if buf.is_full() => buf.grow(limits.max_header_bytes),
                    Ok(None) => {}
                    Err(e) => return self.fail(ctx, e.status, e.reason, true),
                }
            }
            // Stopping: a keep-alive connection with no request under way closes. A client
            // racing us with a new request sees the close before any response byte and retries.
            let idle_when_stopping =
                ctx.stopping && self.served && buf.is_empty() && !self.client.may_have_input();
            if self.client.eof() || idle_when_stopping {
                return self.enter(State::Closed, ctx);
            }
            let was_empty = buf.is_empty();
            match self.client.fill(buf) {
                Ok(f) => {
                    if f.bytes > 0 && was_empty && self.served {
                        // A new request began: the whole head must now arrive in time.
                        self.deadline = ctx.clock.now + ctx.settings.config.timeouts.client_header;
                        self.head_began = ctx.clock.now;
                    }
                    if f.eof {
                        self.client.set_eof();
                    } else if f.bytes == 0 {
                        if buf.is_empty() && ctx.stopping && self.served {
                            return self.enter(State::Closed, ctx);
                        }
                        if buf.is_empty() {
                            // Idle connections hold no buffer.
                            if let Some(b) = self.client_in.take() {
                                ctx.buffers.put(b);
                            }
                            ctx.heads.put(std::mem::take(&mut self.to_upstream.bytes));
                            ctx.heads.put(std::mem::take(&mut self.to_client.bytes));
                        }
                        return Step::Wait;
                    }
                }
                Err(_) => return self.enter(State::Closed, ctx),
            }
        }
    }

    /// Chooses the next backend for the current request and starts talking to it.
    pub(super) fn pick_backend(&mut self, ctx: &mut Ctx<'_>) -> Step {
        let Some(x) = self.x.as_mut() else {
            return self.enter(State::Closed, ctx);
        };
        let backends = &x.settings.backends;
        let Some(b) = backends.pick(x.tried) else {
            let (status, why) = if x.timed_out {
                (504, "no backend answered in time")
            } else {
                (502, "no backend could be reached")
            };
            return self.fail(ctx, status, why, false);
        };
        x.backend = Some(b);
        let generation = x.settings.generation;
        if let Some(key) = ctx.upstreams.checkout(ctx.registry, generation, b, ctx.key) {
            x.reused = true;
            self.upstream = Some(key);
            self.to_upstream.rewind();
            return self.enter(State::SendRequest, ctx);
        }
        self.connect(ctx, b)
    }

    /// Opens a fresh connection to backend `b`.
    pub(super) fn connect(&mut self, ctx: &mut Ctx<'_>, b: usize) -> Step {
        let Some(settings) = self.x.as_ref().map(|x| &x.settings) else {
            return self.enter(State::Closed, ctx);
        };
        let (generation, addr) = (settings.generation, settings.backends.get(b).addr);
        match ctx
            .upstreams
            .connect(ctx.registry, generation, b, addr, ctx.key)
        {
            Ok(key) => {
                if let Some(x) = self.x.as_mut() {
                    x.reused = false;
                }
                self.upstream = Some(key);
                self.to_upstream.rewind();
                self.enter(State::Connecting, ctx)
            }
            Err(e) => {
                self.upstream_event(Phase::Connect, format_args!("cannot open a socket: {e}"));
                self.backend_failed("cannot connect");
                self.retry_elsewhere(ctx)
            }
        }
    }

    fn connecting(&mut self, ctx: &mut Ctx<'_>) -> Step {
        let Some(up) = self.upstream.and_then(|k| ctx.upstreams.conns.get_mut(k)) else {
            return self.enter(State::Closed, ctx);
        };
        if !up.writable && !up.readable {
            return Step::Wait;
        }
        let failure = match up.stream.take_error() {
            Ok(Some(e)) | Err(e) => Some(e),
            Ok(None) => match up.stream.peer_addr() {
                Ok(_) => None,
                Err(e) if e.kind() == std::io::ErrorKind::NotConnected => {
                    // A stale event from the socket that used this token before: keep waiting.
                    up.writable = false;
                    up.readable = false;
                    return Step::Wait;
                }
                Err(e) => Some(e),
            },
        };
        match failure {
            None => {
                up.connected = true;
                self.enter(State::SendRequest, ctx)
            }
            Some(e) => {
                self.upstream_event(
                    Phase::Connect,
                    format_args!("refused or failed the connection: {e}"),
                );
                self.backend_failed("connection refused or failed");
                self.close_upstream(ctx, false);
                self.retry_elsewhere(ctx)
            }
        }
    }

    fn send_request(&mut self, ctx: &mut Ctx<'_>) -> Step {
        let max_body = ctx.settings.config.limits.max_body_size;
        let (Some(x), Some(key)) = (self.x.as_mut(), self.upstream) else {
            return self.enter(State::Closed, ctx);
        };
        let Some(up) = ctx.upstreams.conns.get_mut(key) else {
            return self.enter(State::Closed, ctx);
        };
        let buf = self.client_in.get_or_insert_with(|| ctx.buffers.get());
        let mut progress = false;

        // Request body from the client, only up to what the framing says is this request's.
        if !x.req_body.is_complete() {
            match self.client.fill(buf) {
                Ok(f) => {
                    progress |= f.bytes > 0;
                    if f.eof && buf.len() == x.req_body.ready() {
                        self.client.set_eof();
                    }
                }
                Err(_) => self.client.set_eof(),
            }
            if let Err(e) = x.req_body.scan(buf) {
                log::info!("bad request body from {}: {e}", self.peer);
                self.close_upstream(ctx, false);
                return self.fail(ctx, 400, "malformed chunked request body", true);
            }
            if x.body_over(max_body) {
                self.close_upstream(ctx, false);
                return self.fail(ctx, 413, "request body larger than allowed", true);
            }
            if self.client.eof() && !x.req_body.is_complete() && x.req_body.ready() == 0 {
                // The client gave up mid-body; nothing sensible can reach the backend.
                self.close_upstream(ctx, false);
                self.log_exchange(ctx, 499);
                return self.enter(State::Closed, ctx);
            }
        }

        let ready = x.req_body.ready();
        match flush(
            &mut up.stream,
            &mut up.writable,
            &mut self.to_upstream,
            &buf.data()[..ready],
        ) {
            Ok(w) => {
                buf.consume(w.body);
                x.req_body.sent(w.body);
                x.upstream_sent += w.total as u64;
                progress |= w.total > 0;
            }
            Err(e) => return self.upstream_failed(ctx, Phase::Send, format_args!("{e}")),
        }
        if progress {
            self.touch(ctx);
        }

        // A backend may answer (100 Continue, or a final response) before the body is sent; a
        // relayed 100 still queued for the client must go out, or the client never sends the body.
        if self.upstream_has_input(ctx) || !self.to_client.is_empty() {
            let step = self.read_response_head(ctx);
            if self.state != State::SendRequest {
                return step;
            }
            progress |= step == Step::Again;
        }
        let Some(x) = self.x.as_ref() else {
            return Step::Wait;
        };
        if self.to_upstream.is_empty() && x.req_body.is_complete() {
            return self.enter(State::ReadResponseHead, ctx);
        }
        if progress {
            Step::Again
        } else {
            Step::Wait
        }
    }

    fn upstream_has_input(&self, ctx: &Ctx<'_>) -> bool {
        self.upstream
            .and_then(|k| ctx.upstreams.conns.get(k))
            .is_some_and(|u| u.readable)
            || self.upstream_in.as_ref().is_some_and(|b| !b.is_empty())
    }

    /// Reads and handles response heads. Used in ReadResponseHead and, for early answers, in
    /// SendRequest.
    fn read_response_head(&mut self, ctx: &mut Ctx<'_>) -> Step {
        // An interim response being written goes out before the next head is parsed over it.
        if !self.to_client.is_empty() {
            match self.client.flush(&mut self.to_client, &[]) {
                Ok(w) => {
                    if let Some(x) = self.x.as_mut() {
                        x.client_bytes += w.total as u64;
                    }
                }
                Err(_) => {
                    self.close_upstream(ctx, false);
                    self.log_exchange(ctx, 499);
                    return self.enter(State::Closed, ctx);
                }
            }
            if !self.to_client.is_empty() {
                return Step::Wait;
            }
        }
        let limits = head_limits(ctx);
        let (Some(x), Some(key)) = (self.x.as_mut(), self.upstream) else {
            return self.enter(State::Closed, ctx);
        };
        let Some(up) = ctx.upstreams.conns.get_mut(key) else {
            return self.enter(State::Closed, ctx);
        };
        let buf = self.upstream_in.get_or_insert_with(|| ctx.buffers.get());
        loop {
            if !buf.is_empty() {
                let client = ClientSide {
                    version: x.info.version,
                    head_request: x.info.method == request::Method::Head,
                    keep_alive: x.info.keep_alive && x.req_body.is_complete() && !ctx.stopping,
                    upgrade: x.info.upgrade,
                };
                match response::parse(buf.data(), limits, client, &mut self.to_client.bytes) {
                    Ok(Some(info)) => {
                        let mut refreshed = None;
                        if !info.is_interim() {
                            if let Some(cache) = ctx.shared.cache.as_ref() {
                                let head = &buf.data()[..info.head_len];
                                refreshed = x.cache.on_response_head(
                                    cache,
                                    x.settings.config.freshness(),
                                    &x.info,
                                    &info,
                                    head,
                                    &self.req_head,
                                    &self.line,
                                    &mut self.to_client.bytes,
                                );
                            }
                        }
                        buf.consume(info.head_len);
                        self.to_client.pos = 0;
                        if info.is_interim() {
                            return Step::Again;
                        }
                        x.settings.backends.report_success(up.backend);
                        if let Some(entry) = refreshed {
                            // A 304 to our revalidation: the stored body is good, serve it.
                            self.to_client.clear();
                            self.close_upstream(ctx, info.upstream_reusable);
                            let not_modified = self.client_not_modified(&entry);
                            return self.begin_serving(
                                ctx,
                                entry,
                                CacheLabel::Revalidated,
                                not_modified,
                            );
                        }
                        return self.start_response(ctx, info);
                    }
                    Ok(None) if buf.is_full() => buf.grow(limits.max_header_bytes),
                    Ok(None) => {}
                    Err(bad) => {
                        self.upstream_event(
                            Phase::Head,
                            format_args!("sent an invalid response head: {}", bad.0),
                        );
                        self.to_client.clear();
                        self.backend_failed("sent an invalid response");
                        self.close_upstream(ctx, false);
                        return self.fail(ctx, 502, "the backend sent an invalid response", true);
                    }
                }
            }
            match fill(&mut up.stream, &mut up.readable, up.hup, buf) {
                Ok(f) if f.bytes > 0 => x.response_started = true,
                Ok(f) if !f.eof => return Step::Wait,
                Ok(_) => {
                    return self.upstream_failed(
                        ctx,
                        Phase::Head,
                        format_args!("closed the connection before a complete response head"),
                    )
                }
                Err(e) => return self.upstream_failed(ctx, Phase::Head, format_args!("{e}")),
            }
        }
    }

    fn start_response(&mut self, ctx: &mut Ctx<'_>, info: ResponseInfo) -> Step {
        let Some(x) = self.x.as_mut() else {
            return self.enter(State::Closed, ctx);
        };
        x.resp_body = BodyRelay::new(info.body, info.dechunk);
        let switching = info.status == 101;
        x.resp = Some(info);
        if switching {
            return self.enter(State::Tunnel, ctx);
        }
        self.enter(State::RelayResponse, ctx)
    }

    fn relay_response(&mut self, ctx: &mut Ctx<'_>) -> Step {
        if let Some(step) = self.relay_spliced(ctx) {
            return step;
        }
        let (Some(x), Some(key)) = (self.x.as_mut(), self.upstream) else {
            return self.enter(State::Closed, ctx);
        };
        let Some(up) = ctx.upstreams.conns.get_mut(key) else {
            return self.enter(State::Closed, ctx);
        };
        let buf = self.upstream_in.get_or_insert_with(|| ctx.buffers.get());
        let mut truncated = false;
        let mut progress = false;
        if !x.resp_body.is_complete() {
            let filled = fill(&mut up.stream, &mut up.readable, up.hup, buf);
            // Scan what arrived before acting on an EOF that came with it.
            let before = x.resp_body.ready();
            if x.resp_body.scan(buf).is_err() {
                truncated = true;
            }
            x.cache.store_body(&buf.data()[before..x.resp_body.ready()]);
            match filled {
                Ok(f) => {
                    progress |= f.bytes > 0;
                    if f.eof && !x.resp_body.on_eof() {
                        truncated = true;
                    }
                }
                Err(_) => truncated = true,
            }
        }
        if x.resp_body.has_ended() && !truncated {
            // Stored whole: publish before the client can have its last byte, so a request it
            // sends next, on any connection and worker, finds the entry.
            x.cache.publish();
        }
        let ready = x.resp_body.ready();
        match self.client.flush(&mut self.to_client, &buf.data()[..ready]) {
            Ok(w) => {
                buf.consume(w.body);
                x.resp_body.sent(w.body);
                x.client_bytes += w.total as u64;
                progress |= w.total > 0;
            }
            Err(_) => {
                // The client went away; the upstream connection is mid-response, so drop it.
                self.close_upstream(ctx, false);
                self.log_exchange(ctx, 499);
                return self.enter(State::Closed, ctx);
            }
        }
        if self.client.all_out(&self.to_client) && x.resp_body.is_complete() {
            return self.finish_exchange(ctx);
        }
        if truncated {
            // Flush what arrived, then close: the client sees a short body, never a clean end.
            self.upstream_event(
                Phase::Body,
                format_args!("closed before the end of the response"),
            );
            if let Some((x, b)) = self.x.as_ref().and_then(|x| Some((x, x.backend?))) {
                x.settings.backends.report_failure(b, "closed mid-response");
            }
            self.close_upstream(ctx, false);
            self.log_exchange(ctx, 502);
            return self.enter(State::Closing { linger: true }, ctx);
        }
        if progress {
            self.touch(ctx);
            Step::Again
        } else {
            Step::Wait
        }
    }

    /// The response is delivered: log, recycle the upstream connection, and either wait for the
    /// next request or close.
    pub(super) fn finish_exchange(&mut self, ctx: &mut Ctx<'_>) -> Step {
        let Some(x) = self.x.as_ref() else {
            return self.enter(State::Closed, ctx);
        };
        let status = x.resp.as_ref().map_or(0, |r| r.status);
        let reusable = x.resp.as_ref().is_some_and(|r| r.upstream_reusable)
            && x.req_body.is_complete()
            && self.upstream_in.as_ref().is_none_or(Buffer::is_empty);
        let keep_alive = x.resp.as_ref().is_some_and(|r| r.client_keep_alive) && !ctx.stopping;
        // The client said this was its last request and sent all of it: no lingering needed.
        let client_done =
            !x.info.keep_alive && x.req_body.is_complete() && !self.has_buffered_input();
        if let Some(x) = self.x.as_mut() {
            x.cache.publish();
        }
        self.log_exchange(ctx, status);
        self.close_upstream(ctx, reusable);
        self.served = true;
        self.x = None;
        if keep_alive {
            self.enter(State::ReadRequestHead, ctx)
        } else {
            self.enter(
                State::Closing {
                    linger: !client_done,
                },
                ctx,
            )
        }
    }

    fn send_error(&mut self, ctx: &mut Ctx<'_>, close: bool, status: u16) -> Step {
        match self.client.flush(&mut self.to_client, &[]) {
            Ok(_) if !self.client.all_out(&self.to_client) => Step::Wait,
            Ok(_) if close => {
                self.log_error_response(ctx, status);
                self.enter(State::Closing { linger: true }, ctx)
            }
            Ok(_) => {
                self.log_error_response(ctx, status);
                self.served = true;
                self.x = None;
                self.enter(State::ReadRequestHead, ctx)
            }
            Err(_) => {
                self.log_error_response(ctx, status);
                self.enter(State::Closed, ctx)
            }
        }
    }

    fn closing(&mut self, ctx: &mut Ctx<'_>, linger: bool) -> Step {
        if !self.client.all_out(&self.to_client) {
            match self.client.flush(&mut self.to_client, &[]) {
                Ok(_) if !self.client.all_out(&self.to_client) => return Step::Wait,
                Ok(_) => {}
                Err(_) => return self.enter(State::Closed, ctx),
            }
        }
        if !linger {
            // Close at once, as nginx does, when nothing is waiting to be read (no read at all
            // when no readiness was reported since the last one).
            match self.discard_client_input(ctx) {
                Discarded::End | Discarded::NothingYet { any: false } => {
                    return self.enter(State::Closed, ctx)
                }
                Discarded::NothingYet { any: true } => {} // unexpected input: linger after all
            }
        }
        self.client.shutdown_write();
        self.enter(State::Lingering, ctx)
    }

    /// Drains and discards until the client closes its side too, so that closing with unread
    /// input does not make the kernel reset the connection and destroy the response.
    fn lingering(&mut self, ctx: &mut Ctx<'_>) -> Step {
        match self.discard_client_input(ctx) {
            Discarded::End => self.enter(State::Closed, ctx),
            Discarded::NothingYet { .. } => Step::Wait,
        }
    }

    /// Reads and drops whatever the client has sent, until its socket would block or ends.
    fn discard_client_input(&mut self, ctx: &mut Ctx<'_>) -> Discarded {
        let buf = self.client_in.get_or_insert_with(|| ctx.buffers.get());
        let mut any = false;
        loop {
            buf.clear();
            match self.client.fill(buf) {
                Ok(f) if f.eof => return Discarded::End,
                Ok(f) if f.bytes == 0 => return Discarded::NothingYet { any },
                Ok(_) => any = true,
                Err(_) => return Discarded::End,
            }
        }
    }

    // ---- resources ----------------------------------------------------------------------------

    /// Lets go of the upstream connection: back to the pool when `reusable`, else closed.
    pub(super) fn close_upstream(&mut self, ctx: &mut Ctx<'_>, reusable: bool) {
        if let Some(key) = self.upstream.take() {
            if reusable {
                if let Some(up) = ctx.upstreams.conns.get_mut(key) {
                    up.uses += 1;
                }
                ctx.upstreams.checkin(ctx.registry, key, ctx.clock.now);
            } else {
                ctx.upstreams.close(ctx.registry, key);
            }
        }
        if let Some(b) = self.upstream_in.take() {
            ctx.buffers.put(b);
        }
    }

    /// Returns everything borrowed from the worker; the socket itself is dropped by the worker.
    pub(super) fn release(&mut self, ctx: &mut Ctx<'_>) {
        self.close_upstream(ctx, false);
        if let Some(b) = self.client_in.take() {
            ctx.buffers.put(b);
        }
        ctx.heads.put(std::mem::take(&mut self.to_upstream.bytes));
        ctx.heads.put(std::mem::take(&mut self.to_client.bytes));
    }
}

fn head_limits(ctx: &Ctx<'_>) -> HeadLimits {
    HeadLimits {
        max_header_bytes: ctx.settings.config.limits.max_header_bytes,
        max_headers: ctx.settings.config.limits.max_headers,
    }
}
