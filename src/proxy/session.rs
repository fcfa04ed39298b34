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

use super::cached::{self, CacheLabel, Consulted, KeptRequest};
use super::exchange::Exchange;
use super::h1::{ClientFraming, ClientGone, H1Codec};
use super::io::Pending;
use super::shared::{Settings, Shared};
use super::transport::ClientTransport;
use super::upstream::UpstreamPool;
use super::upstream_failure::Phase;
use crate::buffer::{Buffer, BufferPool, HeadPool};
use crate::cache::{unix_now, CacheEntry};
use crate::clock::Clock;
use crate::edge::RequestFacts;
use crate::http::request::{self, Forwarding, HeadLimits, RequestLine};
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
    Connecting {
        upstream: usize,
    },
    /// Writing the request head and streaming the request body upstream.
    SendRequest {
        upstream: usize,
    },
    /// The request is sent; waiting for the response head (1xx are relayed here).
    ReadResponseHead {
        upstream: usize,
    },
    /// Streaming the response body to the client.
    RelayResponse {
        upstream: usize,
    },
    /// After `101 Switching Protocols`: raw bytes both ways.
    Tunnel {
        upstream: usize,
    },
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
    /// The legal transitions, as data. A response comes on the connection its request went
    /// on: only a state that opens or takes a connection (`Connecting`, `SendRequest`) may
    /// hold another upstream than the state before it.
    fn allows(self, next: State) -> bool {
        use State::*;
        let same_upstream = match next {
            ReadResponseHead { upstream } | RelayResponse { upstream } | Tunnel { upstream } => {
                self.upstream().is_none_or(|key| key == upstream)
            }
            _ => true,
        };
        if !same_upstream {
            return false;
        }
        matches!(
            (self, next),
            (_, Closed)
                | (
                    ReadRequestHead,
                    Connecting { .. }
                        | SendRequest { .. }
                        | SendError { .. }
                        | Closing { .. }
                        | ServeCached
                        | AwaitFill
                )
                | (
                    AwaitFill,
                    Connecting { .. } | SendRequest { .. } | SendError { .. } | ServeCached
                )
                | (ServeCached, ReadRequestHead | Closing { .. })
                | (
                    Connecting { .. },
                    Connecting { .. } | SendRequest { .. } | SendError { .. }
                )
                | (
                    SendRequest { .. } | ReadResponseHead { .. },
                    Connecting { .. }
                        | SendRequest { .. }
                        | ReadResponseHead { .. }
                        | RelayResponse { .. }
                        | Tunnel { .. }
                        | SendError { .. }
                        | Closing { .. }
                        | ServeCached
                )
                | (RelayResponse { .. }, ReadRequestHead | Closing { .. })
                | (SendError { .. }, ReadRequestHead | Closing { .. })
                | (Closing { .. }, Lingering)
        )
    }

    /// The key of the upstream connection this state holds, in the worker's [`UpstreamPool`]:
    /// the states from `Connecting` to `Tunnel` hold one, the others none.
    #[inline]
    pub(super) fn upstream(self) -> Option<usize> {
        match self {
            State::Connecting { upstream }
            | State::SendRequest { upstream }
            | State::ReadResponseHead { upstream }
            | State::RelayResponse { upstream }
            | State::Tunnel { upstream } => Some(upstream),
            _ => None,
        }
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
    pub(super) to_upstream: Pending,
    pub(super) to_client: Pending,
    /// How the response's body is framed for the client (the HTTP/1 codec's state).
    pub(super) client_framing: ClientFraming,
    pub(super) line: RequestLine,
    /// A copy of the request head and where its fields lie, kept when the cache needs them.
    pub(super) req_head: KeptRequest,
    /// The current request's id, Referer and User-Agent, as the edge rules keep them.
    pub(super) facts: RequestFacts,
    pub(super) x: Option<Exchange>,
    /// Exchanges begun on this connection: the next one's id.
    pub(super) exchanges: u32,
}

impl Session {
    pub fn new(
        client: TcpStream,
        peer: SocketAddr,
        now: Instant,
        header_timeout: Duration,
    ) -> Self {
        Session::with_transport(ClientTransport::plain(client), peer, now, header_timeout)
    }

    /// A session over any client transport (a fake one in unit tests).
    pub(super) fn with_transport(
        client: ClientTransport,
        peer: SocketAddr,
        now: Instant,
        header_timeout: Duration,
    ) -> Self {
        Session {
            client,
            peer,
            state: State::ReadRequestHead,
            deadline: now + header_timeout,
            served: false,
            head_began: now,
            client_in: None,
            upstream_in: None,
            to_upstream: Pending::default(),
            to_client: Pending::default(),
            client_framing: ClientFraming::AsIs,
            line: RequestLine::default(),
            req_head: KeptRequest::default(),
            facts: RequestFacts::default(),
            x: None,
            exchanges: 0,
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
                State::Connecting { upstream } => self.connecting(ctx, upstream),
                State::SendRequest { upstream } => self.send_request(ctx, upstream),
                State::ReadResponseHead { upstream } => self.read_response_head(ctx, upstream),
                State::RelayResponse { upstream } => self.relay_response(ctx, upstream),
                State::Tunnel { upstream } => self.tunnel(ctx, upstream),
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
    /// An illegal transition is a bug: it is logged and the connection closed (in every build,
    /// never a panic), rather than letting a state run without the data it expects.
    /// An upstream connection the state holds and `next` does not is closed here (see
    /// [`Session::enter_returning_upstream`] for one that may be used again), so none can leak.
    // Inlined: every call site names its next state, so the match below folds away.
    #[inline(always)]
    pub(super) fn enter(&mut self, next: State, ctx: &mut Ctx<'_>) -> Step {
        self.enter_returning_upstream(next, ctx, false)
    }

    /// [`Session::enter`], with the upstream connection the state holds and `next` does not
    /// going back to the pool when `reusable` (the response ended cleanly on it).
    #[inline(always)]
    pub(super) fn enter_returning_upstream(
        &mut self,
        mut next: State,
        ctx: &mut Ctx<'_>,
        reusable: bool,
    ) -> Step {
        if !self.state.allows(next) {
            self.illegal_transition(next);
            next = State::Closed;
        }
        let t = &ctx.settings.config.timeouts;
        let wait = match next {
            State::ReadRequestHead if self.served && !self.has_buffered_input() => t.keepalive,
            State::ReadRequestHead => t.client_header,
            State::Connecting { .. } => t.connect,
            State::SendRequest { .. } => self.send_wait(t),
            State::ReadResponseHead { .. } | State::RelayResponse { .. } | State::Tunnel { .. } => {
                t.upstream
            }
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
        if let Some(key) = self.state.upstream() {
            if next.upstream() != Some(key) {
                self.release_upstream(ctx, key, reusable);
            }
        }
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

    /// Logs a transition `State::allows` forbids (a bug), out of the hot path.
    #[cold]
    #[inline(never)]
    fn illegal_transition(&self, next: State) {
        log::error!(
            "client {}: illegal state transition {:?} -> {next:?}; closing the connection",
            self.peer,
            self.state
        );
    }

    /// Pushes the deadline of the current state forward after progress (idle timeouts).
    pub(super) fn touch(&mut self, ctx: &Ctx<'_>) {
        let t = &ctx.settings.config.timeouts;
        let wait = match self.state {
            State::SendRequest { .. } => self.send_wait(t),
            State::RelayResponse { .. } | State::Tunnel { .. } => t.upstream.max(t.client_idle),
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
            State::Connecting { .. } => {
                let wait = ctx.settings.config.timeouts.connect;
                self.upstream_event(
                    Phase::Connect,
                    format_args!("did not accept a connection within {wait:?}"),
                );
                if let Some(x) = self.x.as_mut() {
                    x.timed_out = true;
                }
                self.backend_failed("connect timed out");
                self.retry_elsewhere(ctx);
            }
            State::SendRequest { .. } if self.waiting_for_request_body() => {
                // The client stopped sending its body: its doing, not the backend's.
                self.fail(ctx, 408, "request body not received in time", true);
            }
            State::SendRequest { .. } | State::ReadResponseHead { .. } => {
                self.response_timed_out(ctx)
            }
            State::RelayResponse { .. } => {
                let wait = ctx.settings.config.timeouts.upstream;
                self.upstream_event(
                    Phase::Body,
                    format_args!("the response made no progress for {wait:?}"),
                );
                self.log_exchange(ctx, 504);
                self.enter(State::Closed, ctx);
            }
            State::Tunnel { .. } | State::ServeCached => {
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
                    proto: self.client.scheme(),
                };
                let cache = ctx.shared.cache.as_deref();
                let upstream_head = &mut self.to_upstream.bytes;
                let kept = &mut self.req_head;
                let input = buf.data();
                let upgrades = &ctx.settings.config.upgrade_protocols;
                let router = &ctx.settings.router;
                let facts = &mut self.facts;
                facts.clear();
                let parsed = request::parse_with(input, limits, upgrades, &mut self.line, |head| {
                    // Routed once, here: the rules of its site or route apply from now on.
                    let route = router.lookup(&head.line.host, &head.line.target);
                    let edge = &router.scope(route.scope).edge;
                    edge.read_request(head.headers, facts);
                    let upstream = edge.upstream(facts);
                    let consulted = cache.map(|c| cached::consult(c, head));
                    match &consulted {
                        Some(c) if c.is_hit() => {
                            upstream_head.clear();
                            kept.forget_fields();
                        }
                        Some(_) => {
                            // The miss paths read its fields again, without a parse.
                            kept.record_fields(input, head.headers);
                            head.write_upstream_with(upstream_head, &fwd, &upstream);
                        }
                        None => head.write_upstream_with(upstream_head, &fwd, &upstream),
                    }
                    (consulted, route)
                });
                match parsed {
                    Ok(Some((info, (consulted, route)))) => {
                        if ctx.shared.cache.is_some() {
                            self.req_head.keep(&buf.data()[..info.head_len]);
                        }
                        buf.consume(info.head_len);
                        self.to_upstream.pos = 0;
                        let id = self.exchanges;
                        self.exchanges = id.wrapping_add(1);
                        self.x = Some(Exchange::new(
                            id,
                            info,
                            ctx.settings.clone(),
                            route,
                            ctx.clock.now,
                        ));
                        let max_body = ctx.settings.config.limits.max_body_size;
                        if self.x.as_ref().is_some_and(|x| x.body_over(max_body)) {
                            return self.fail(ctx, 413, "request body larger than allowed", true);
                        }
                        if let Some(refused) = self.refused_by_access_rules(ctx) {
                            return refused;
                        }
                        if let Some(port) = ctx.settings.config.https_redirect(self.client.scheme())
                        {
                            return self.redirect_to_https(ctx, port);
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

    // ---- the cache's states ----------------------------------------------------------------

    /// A request head was parsed (and the cache consulted, when there is one): serve, wait, or
    /// go to a backend, as the cache decides (`cached.rs`).
    fn begin_exchange(&mut self, ctx: &mut Ctx<'_>, consulted: Option<Consulted>) -> Step {
        let (Some(cache), Some(consulted)) = (ctx.shared.cache.clone(), consulted) else {
            return self.pick_backend(ctx);
        };
        let Some(x) = self.x.as_mut() else {
            return self.enter(State::Closed, ctx);
        };
        let method = x.info.method;
        let next = x.cache.begin(
            cache,
            consulted,
            method,
            &self.req_head,
            &mut self.to_upstream.bytes,
        );
        self.follow_cache(ctx, next)
    }

    /// The handler of `AwaitFill`, run again whenever the cache changes: is the entry there now,
    /// or may this request fetch it?
    fn await_fill(&mut self, ctx: &mut Ctx<'_>) -> Step {
        let Some(x) = self.x.as_mut() else {
            return self.enter(State::Closed, ctx);
        };
        let next = x
            .cache
            .await_fill(&self.req_head, &mut self.to_upstream.bytes);
        self.follow_cache(ctx, next)
    }

    #[inline]
    fn follow_cache(&mut self, ctx: &mut Ctx<'_>, next: cached::Next) -> Step {
        match next {
            cached::Next::Backend => self.pick_backend(ctx),
            cached::Next::Serve(e, not_modified) => {
                self.begin_serving(ctx, e, CacheLabel::Hit, not_modified, false)
            }
            cached::Next::Wait => {
                ctx.waiters.push(ctx.key);
                if self.state != State::AwaitFill {
                    self.enter(State::AwaitFill, ctx);
                }
                Step::Wait
            }
        }
    }

    /// Prepares the head of a response from `entry` and moves to `ServeCached`; the upstream
    /// connection of a revalidation goes back to the pool when `upstream_reusable`.
    #[inline]
    pub(super) fn begin_serving(
        &mut self,
        ctx: &mut Ctx<'_>,
        entry: Arc<CacheEntry>,
        label: CacheLabel,
        not_modified: bool,
        upstream_reusable: bool,
    ) -> Step {
        let Some(x) = self.x.as_mut() else {
            return self.enter(State::Closed, ctx);
        };
        let (resp, with_body) = cached::hit_response(&entry, not_modified, &x.info, ctx.stopping);
        let mut codec = H1Codec::new(
            &mut self.client,
            &mut self.to_client,
            &mut self.client_framing,
            &mut x.client_bytes,
        );
        codec.stored_head(
            &entry,
            &resp,
            label,
            x.info.version,
            x.settings.config.cache.cdn_cache_control_pass,
            unix_now(),
        );
        let edge = &x.scope().edge;
        edge.finish_client_head(&mut self.to_client.bytes, resp.status, &self.facts);
        x.cache.serve(entry, label, with_body);
        x.resp = Some(resp);
        self.enter_returning_upstream(State::ServeCached, ctx, upstream_reusable)
    }

    /// Writes the cached head, then the body straight from the entry's map.
    fn serve_cached(&mut self, ctx: &mut Ctx<'_>) -> Step {
        let Some(x) = self.x.as_mut() else {
            return self.enter(State::Closed, ctx);
        };
        let sent_before = x.client_bytes;
        let mut codec = H1Codec::new(
            &mut self.client,
            &mut self.to_client,
            &mut self.client_framing,
            &mut x.client_bytes,
        );
        let Ok(taken) = codec.body(x.cache.hit_body()) else {
            self.log_exchange(ctx, 499);
            return self.enter(State::Closed, ctx);
        };
        x.cache.hit_sent(taken);
        let ended = if x.cache.hit_body().is_empty() {
            codec.end()
        } else {
            Ok(false)
        };
        match ended {
            Ok(true) => return self.finish_exchange(ctx),
            Ok(false) => {}
            Err(ClientGone) => {
                self.log_exchange(ctx, 499);
                return self.enter(State::Closed, ctx);
            }
        }
        if x.client_bytes != sent_before {
            self.deadline = ctx.clock.now + ctx.settings.config.timeouts.client_idle;
        }
        Step::Wait
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

    /// Returns everything borrowed from the worker; the socket itself is dropped by the worker.
    /// (The upstream connection was released as its state was left, in `enter`.)
    pub(super) fn release(&mut self, ctx: &mut Ctx<'_>) {
        if let Some(b) = self.client_in.take() {
            ctx.buffers.put(b);
        }
        if let Some(b) = self.upstream_in.take() {
            ctx.buffers.put(b);
        }
        ctx.heads.put(std::mem::take(&mut self.to_upstream.bytes));
        ctx.heads.put(std::mem::take(&mut self.to_client.bytes));
    }
}

pub(super) fn head_limits(ctx: &Ctx<'_>) -> HeadLimits {
    HeadLimits {
        max_header_bytes: ctx.settings.config.limits.max_header_bytes,
        max_headers: ctx.settings.config.limits.max_headers,
    }
}
