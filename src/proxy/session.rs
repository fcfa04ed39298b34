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
//! A session is its connection part ([`Conn`]: transport, buffers, state, deadline) and the
//! exchange under way ([`Exchange`]); the exchange's work is functions over both (`relay.rs`,
//! `failure.rs`, `cache_states.rs`, `tunnel.rs`), handed the exchange by [`Session::drive`].
//!
//! Every transition goes through [`Conn::enter`], which checks it is legal and arms the state's
//! deadline, so no state can wait without a timer. Sockets are registered once for both
//! directions, edge-triggered; the readiness each event reports is kept in flags and cleared only
//! when a call would block, and each state acts on the readiness it needs. Backpressure is
//! structural: a state reads from one side only while its buffer towards the other has room.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::Registry;

use super::cached::{self, KeptRequest};
use super::exchange::Exchange;
use super::h1::ClientFraming;
use super::io::Pending;
use super::shared::{Settings, Shared};
use super::transport::{ClientTransport, H2Start};
use super::upstream::UpstreamPool;
use crate::buffer::{Buffer, BufferPool, HeadPool};
use crate::clock::Clock;
use crate::compress::Asked;
use crate::config::Timeouts;
use crate::edge::RequestFacts;
use crate::http::request::{self, Forwarding, HeadLimits, Method, RequestLine};
use crate::logging::AccessLog;

mod state;
pub use state::State;

/// How long a closing connection waits for the client to finish sending before the socket is
/// dropped; closing with unread input would make the kernel reset the connection and could
/// destroy the response the client has not read yet.
const LINGER: Duration = Duration::from_secs(2);

/// Bytes of body input one drive of a session (one readiness event, or one turn of the
/// worker's drive-again list) may compress before the session yields (`Step::Yield`): one big
/// compressed response cannot keep its worker from the other connections' events.
pub(super) const COMPRESS_BUDGET: usize = 256 * 1024;

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
    /// Work is left but this drive's compression budget is spent (`Conn::compress_budget`):
    /// the worker drives the session again after its other events (`Ctx::drive_again`).
    Yield,
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
    /// Sessions that yielded with work left (`Step::Yield`), driven again after the worker's
    /// other events.
    pub drive_again: &'a mut Vec<usize>,
}

/// One client connection: its connection part and the exchange under way on it, apart so that
/// the exchange's functions borrow both at once (`&mut Conn`, `&mut Exchange`) and never check
/// whether there is an exchange: `drive` looks in the slot once per state handler, and the
/// states that need one are entered only by functions that hold it.
pub struct Session {
    pub(super) conn: Conn,
    /// The exchange: there in the exchange states (`Connecting` to `AwaitFill`), maybe in
    /// `SendError` (a request refused before it became one has none), gone once its state
    /// leads to the next request or the close.
    pub(super) x: Option<Exchange>,
}

/// The HTTP/1 connection part of a session: the client's transport and buffers, the state,
/// its deadline, the request head as read (line, kept copy, facts). An HTTP/2 connection would
/// hold many exchanges beside its own part.
pub(super) struct Conn {
    /// The client's connection: every client read, write and shutdown goes through it.
    pub(super) client: ClientTransport,
    pub(super) peer: SocketAddr,
    /// The destination a PROXY protocol header announced for this client, passed on in a
    /// pool's own header; `None`: the address the client connected to.
    pub(super) destination: Option<SocketAddr>,
    pub(super) state: State,
    pub(super) deadline: Instant,
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
    /// Exchanges begun on this connection: the next one's id.
    pub(super) exchanges: u32,
    /// The connection turned out to speak HTTP/2 (ALPN `h2`, or the h2c preface): what was
    /// read of it, for the worker to hand to an `H2Session` when this session closes.
    pub(super) handed_over: Option<Buffer>,
    /// Bytes of body the compressing states may still take into a compressor in this drive
    /// (`COMPRESS_BUDGET` at its start): when spent with work left, the session yields.
    pub(super) compress_budget: usize,
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
        let conn = Conn {
            client,
            peer,
            destination: None,
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
            exchanges: 0,
            handed_over: None,
            compress_budget: COMPRESS_BUDGET,
        };
        Session { conn, x: None }
    }

    /// When this connection's state times out.
    pub fn deadline(&self) -> Instant {
        self.conn.deadline
    }

    pub fn is_closed(&self) -> bool {
        self.conn.state == State::Closed
    }

    /// Idle between requests with nothing buffered: safe to close when stopping. A connection
    /// that has not had its first request yet is not idle: its client is about to send one (it
    /// may have been accepted from the queue during the stop) and would not retry it.
    pub fn is_idle(&self) -> bool {
        let c = &self.conn;
        c.served
            && c.state == State::ReadRequestHead
            && c.client_in.as_ref().is_none_or(Buffer::is_empty)
    }

    /// A PROXY protocol header announced this client's destination.
    pub fn announce_destination(&mut self, dest: Option<SocketAddr>) {
        self.conn.destination = dest;
    }

    pub fn on_client_event(&mut self, readable: bool, writable: bool, hup: bool) {
        self.conn.client.on_event(readable, writable, hup);
    }

    /// The client's transport (the worker counts how far a TLS one got when it closes).
    pub(super) fn client(&self) -> &ClientTransport {
        &self.conn.client
    }

    /// The client's transport, to move bytes in and out of an h2 stream's pipe.
    pub(super) fn client_mut(&mut self) -> &mut ClientTransport {
        &mut self.conn.client
    }

    /// What was read of a closed session's connection that speaks HTTP/2 (`None` for any
    /// other session): the worker hands it, the transport and the peer to an `H2Session`.
    pub(super) fn take_h2_handover(&mut self) -> Option<Buffer> {
        self.conn.handed_over.take()
    }

    /// The client's address.
    pub(super) fn peer(&self) -> SocketAddr {
        self.conn.peer
    }

    /// The session's transport, once it closed (an h2 stream's pipe goes back to its parent).
    pub(super) fn into_client(self) -> ClientTransport {
        self.conn.client
    }

    /// Ends the session now (its h2 stream was reset, or its connection went): an exchange
    /// under way gets its access line, `499` as for an HTTP/1 client that went before its
    /// response was complete, and its upstream connection is closed, not pooled mid-response.
    pub(super) fn abort(&mut self, ctx: &mut Ctx<'_>) {
        self.log_cut(ctx, |_| 499);
        self.x = None;
        self.conn.enter(State::Closed, ctx);
    }

    /// Runs the state machine until it waits on a socket or a deadline. The exchange states'
    /// handlers get the exchange from here, looked up once per handler run.
    pub fn drive(&mut self, ctx: &mut Ctx<'_>) {
        let Session { conn: c, x: slot } = self;
        c.compress_budget = COMPRESS_BUDGET;
        loop {
            let step = match c.state {
                State::ReadRequestHead => {
                    // The last exchange ended as its state led here: gone before the next.
                    *slot = None;
                    c.read_request_head(slot, ctx)
                }
                State::Connecting { upstream } => {
                    with_exchange(c, slot, ctx, |c, x, ctx| c.connecting(x, ctx, upstream))
                }
                State::SendRequest { upstream } => {
                    with_exchange(c, slot, ctx, |c, x, ctx| c.send_request(x, ctx, upstream))
                }
                State::ReadResponseHead { upstream } => with_exchange(c, slot, ctx, |c, x, ctx| {
                    c.read_response_head(x, ctx, upstream)
                }),
                State::RelayResponse { upstream } => {
                    with_exchange(c, slot, ctx, |c, x, ctx| c.relay_response(x, ctx, upstream))
                }
                State::Tunnel { upstream } => {
                    with_exchange(c, slot, ctx, |c, x, ctx| c.tunnel(x, ctx, upstream))
                }
                State::ServeCached => with_exchange(c, slot, ctx, Conn::serve_cached),
                State::AwaitFill => with_exchange(c, slot, ctx, Conn::await_fill),
                State::SendError { close, status } => {
                    c.send_error(slot.as_mut(), ctx, close, status)
                }
                State::Closing { linger } => {
                    // As in `ReadRequestHead`: the exchange is over.
                    *slot = None;
                    c.closing(ctx, linger)
                }
                State::Lingering => c.lingering(ctx),
                State::Closed => Step::Wait,
            };
            match step {
                Step::Again => {}
                Step::Wait => break,
                Step::Yield => {
                    ctx.drive_again.push(ctx.key);
                    break;
                }
            }
        }
    }

    /// The stop deadline (`shutdown_timeout`) passed with this connection open: the worker drops
    /// it now. An exchange under way gets its access line: the status the client saw, or `503`
    /// when it got nothing, and the bytes it got.
    pub fn log_cut_at_stop(&mut self, ctx: &mut Ctx<'_>) {
        self.log_cut(ctx, |x| match &x.resp {
            Some(r) if x.client_bytes > 0 => r.status,
            _ => 503,
        });
    }

    /// The access line of an exchange cut short: a response pibl made keeps its own status,
    /// a relayed or cached one gets `status` of its exchange.
    fn log_cut(&mut self, ctx: &mut Ctx<'_>, status: fn(&Exchange) -> u16) {
        let Session { conn: c, x: slot } = self;
        if let State::SendError { status, .. } = c.state {
            c.log_error_response(slot.as_mut(), ctx, status);
            return;
        }
        let Some(x) = slot.as_mut() else {
            return;
        };
        let status = status(x);
        c.log_exchange(Some(x), ctx, status);
    }

    /// The deadline passed.
    pub fn on_timeout(&mut self, ctx: &mut Ctx<'_>) {
        let Session { conn: c, x: slot } = self;
        match c.state {
            State::ReadRequestHead if c.has_buffered_input() => {
                c.fail(None, ctx, 408, "request head not received in time", true);
            }
            State::ReadRequestHead if !c.served => {
                // A connection that sent nothing: closed without a response, as nginx does
                // (nothing to answer), but logged (408, 0 bytes) so it is not invisible.
                c.to_client.clear();
                c.log_exchange(None, ctx, 408);
                c.enter(State::Closed, ctx);
            }
            State::SendError { status, .. } => {
                // The client stopped reading the response pibl made.
                c.log_error_response(slot.as_mut(), ctx, status);
                c.enter(State::Closed, ctx);
            }
            State::Connecting { .. }
            | State::SendRequest { .. }
            | State::ReadResponseHead { .. }
            | State::RelayResponse { .. }
            | State::Tunnel { .. }
            | State::ServeCached
            | State::AwaitFill => {
                with_exchange(c, slot, ctx, Conn::exchange_timed_out);
            }
            _ => {
                c.enter(State::Closed, ctx);
            }
        }
    }
}

/// Runs `handler` of an exchange state with the session's exchange. Every way into those
/// states holds the exchange (it is made as the request head is parsed and ends only as its
/// state leads to the next request or the close), so a missing one is a bug: logged, closed.
#[inline(always)]
fn with_exchange<'a>(
    c: &mut Conn,
    slot: &mut Option<Exchange>,
    ctx: &mut Ctx<'a>,
    handler: impl FnOnce(&mut Conn, &mut Exchange, &mut Ctx<'a>) -> Step,
) -> Step {
    match slot {
        Some(x) => handler(c, x, ctx),
        None => c.lost_exchange(ctx),
    }
}

impl Conn {
    /// After a compressing state made progress that took `took` bytes of input: run it again
    /// while this drive's budget lasts, else yield to the worker's other events.
    pub(super) fn again_within_budget(&mut self, took: usize) -> Step {
        self.compress_budget = self.compress_budget.saturating_sub(took);
        if self.compress_budget == 0 {
            Step::Yield
        } else {
            Step::Again
        }
    }

    /// Moves to `next` and arms its deadline. The one place a state changes.
    /// An illegal transition is a bug: it is logged and the connection closed (in every build,
    /// never a panic), rather than letting a state run without the data it expects.
    /// An upstream connection the state holds and `next` does not is closed here (see
    /// [`Conn::enter_returning_upstream`] for one that may be used again), so none can leak.
    /// The states that need an exchange are entered only by functions that hold it (see
    /// `with_exchange`).
    // Inlined: every call site names its next state, so the match below folds away.
    #[inline(always)]
    pub(super) fn enter(&mut self, next: State, ctx: &mut Ctx<'_>) -> Step {
        self.enter_returning_upstream(next, ctx, false)
    }

    /// [`Conn::enter`], with the upstream connection the state holds and `next` does not
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
            // While the request body is awaited, the client's: see `enter_sending`.
            State::SendRequest { .. } => t.upstream,
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

    /// Enters `SendRequest` on upstream connection `upstream`; its deadline is the client's
    /// idle timeout while the request body is awaited (`send_wait`).
    #[inline(always)]
    pub(super) fn enter_sending(
        &mut self,
        x: &Exchange,
        upstream: usize,
        ctx: &mut Ctx<'_>,
    ) -> Step {
        let step = self.enter(State::SendRequest { upstream }, ctx);
        if self.state == (State::SendRequest { upstream }) && x.waiting_for_request_body() {
            self.deadline = ctx.clock.now + ctx.settings.config.timeouts.client_idle;
        }
        step
    }

    /// Pushes the deadline of the current state forward after progress (idle timeouts).
    pub(super) fn touch(&mut self, x: &Exchange, ctx: &Ctx<'_>) {
        let t = &ctx.settings.config.timeouts;
        let wait = match self.state {
            State::SendRequest { .. } => send_wait(x, t),
            State::RelayResponse { .. } | State::Tunnel { .. } => t.upstream.max(t.client_idle),
            State::ServeCached => t.client_idle,
            _ => return,
        };
        self.deadline = ctx.clock.now + wait;
    }

    /// An exchange state without its exchange: a bug (see `with_exchange`), logged and closed.
    #[cold]
    #[inline(never)]
    fn lost_exchange(&mut self, ctx: &mut Ctx<'_>) -> Step {
        log::error!(
            "client {}: state {:?} without its exchange; closing the connection",
            self.peer,
            self.state
        );
        self.enter(State::Closed, ctx)
    }

    pub(super) fn has_buffered_input(&self) -> bool {
        self.client_in.as_ref().is_some_and(|b| !b.is_empty())
    }

    // ---- states -------------------------------------------------------------------------------

    /// Reads and parses the next request head; the exchange it begins goes into `slot`.
    fn read_request_head(&mut self, slot: &mut Option<Exchange>, ctx: &mut Ctx<'_>) -> Step {
        let limits = head_limits(ctx);
        loop {
            let buf = self.client_in.get_or_insert_with(|| ctx.buffers.get());
            // Before the first request is parsed: does the connection speak HTTP/2?
            let h2 = match self.exchanges {
                0 => self.client.speaks_h2(buf.data()),
                _ => H2Start::No,
            };
            if h2 == H2Start::Yes {
                self.handed_over = self.client_in.take();
                return self.enter(State::Closed, ctx);
            }
            if !buf.is_empty() && h2 == H2Start::No {
                for head in [&mut self.to_upstream.bytes, &mut self.to_client.bytes] {
                    if head.capacity() == 0 {
                        *head = ctx.heads.get();
                    }
                }
                let fwd = Forwarding {
                    client_ip: self.peer.ip(),
                    proto: self.client.scheme(),
                    h2: self.client.is_h2_stream(),
                };
                let cache = ctx.shared.cache.as_deref();
                let upstream_head = &mut self.to_upstream.bytes;
                let kept = &mut self.req_head;
                let input = buf.data();
                let upgrades = &ctx.settings.config.upgrade_protocols;
                let router = &ctx.settings.router;
                let facts = &mut self.facts;
                let compress = &ctx.settings.config.compress;
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
                    // `compress off`: not read at all, and the response's check is one branch.
                    let asked = if compress.enabled {
                        Asked::from_request(head.info.method == Method::Head, head.headers)
                    } else {
                        Asked::NONE
                    };
                    (consulted, route, asked)
                });
                match parsed {
                    Ok(Some((info, (consulted, route, asked)))) => {
                        if ctx.shared.cache.is_some() {
                            self.req_head.keep(&buf.data()[..info.head_len]);
                        }
                        buf.consume(info.head_len);
                        self.to_upstream.pos = 0;
                        let id = self.exchanges;
                        self.exchanges = id.wrapping_add(1);
                        let x = slot.insert(Exchange::new(
                            id,
                            info,
                            ctx.settings.clone(),
                            route,
                            ctx.clock.now,
                        ));
                        x.asked = asked;
                        let max_body = ctx.settings.config.limits.max_body_size;
                        if x.body_over(max_body) {
                            let why = "request body larger than allowed";
                            return self.fail(Some(x), ctx, 413, why, true);
                        }
                        if let Some(refused) = self.refused_by_access_rules(x, ctx) {
                            return refused;
                        }
                        if let Some(port) = ctx.settings.config.https_redirect(self.client.scheme())
                        {
                            return self.redirect_to_https(x, ctx, port);
                        }
                        return self.begin_exchange(x, ctx, consulted);
                    }
                    Ok(None) if buf.is_full() => buf.grow(limits.max_header_bytes),
                    Ok(None) => {}
                    Err(e) => return self.fail(None, ctx, e.status, e.reason, true),
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

    fn send_error(
        &mut self,
        x: Option<&mut Exchange>,
        ctx: &mut Ctx<'_>,
        close: bool,
        status: u16,
    ) -> Step {
        match self.client.flush(&mut self.to_client, &[]) {
            Ok(_) if !self.client.all_out(&self.to_client) => Step::Wait,
            Ok(_) if close => {
                self.log_error_response(x, ctx, status);
                self.enter(State::Closing { linger: true }, ctx)
            }
            Ok(_) => {
                self.log_error_response(x, ctx, status);
                self.served = true;
                self.enter(State::ReadRequestHead, ctx)
            }
            Err(_) => {
                self.log_error_response(x, ctx, status);
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

/// The deadline of `SendRequest`: the client's idle timeout while waiting for its body, the
/// backend's while waiting for it to take what we have.
fn send_wait(x: &Exchange, t: &Timeouts) -> Duration {
    if x.waiting_for_request_body() {
        t.client_idle
    } else {
        t.upstream
    }
}

pub(super) fn head_limits(ctx: &Ctx<'_>) -> HeadLimits {
    HeadLimits {
        max_header_bytes: ctx.settings.config.limits.max_header_bytes,
        max_headers: ctx.settings.config.limits.max_headers,
    }
}
