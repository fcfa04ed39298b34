//! The event loop: one per worker thread, each with its own `mio::Poll`, its own SO_REUSEPORT
//! listener, a slab of client sessions and a pool of upstream connections. Workers share nothing
//! on the request path but the round-robin counter and the connection count (both atomics).
//!
//! Reload: once per loop tick a worker compares `Shared::generation` with the generation of the
//! settings it holds (one atomic load); only when they differ does it take the settings lock,
//! switch, and rebuild what depends on them ([`Worker::refresh_settings`]).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::event::Event;
use mio::net::{TcpListener, UnixListener};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use super::h2_session::{H2Session, StreamSpares};
use super::proxy_header::{AwaitingHeader, HeaderRead};
use super::session::{Ctx, Session};
use super::shared::{Settings, Shared};
use super::transport::{ClientSocket, ClientTls, ClientTransport};
use super::upstream::{Owner, UpstreamPool, UPSTREAM_BIT};
use crate::buffer::{BufferPool, HeadPool};
use crate::clock::Clock;
use crate::logging::AccessLog;
use crate::net::{accepted, interrupted, would_block};
use h2::Drive;

mod h2;

pub const WAKER: Token = Token(usize::MAX - 2);
/// Listener `i` of a worker has token `FIRST_LISTENER + i` (below `WAKER`; these tokens have
/// the upstream bit set, so they are matched first, with those below).
const FIRST_LISTENER: usize = WAKER.0 - MAX_LISTENERS;
/// A client awaiting its PROXY header (`proxy_header.rs`) has token `FIRST_AWAITING + key`,
/// just below the listeners' (far above every upstream token): one compare tells both apart
/// from client and upstream events.
const FIRST_AWAITING: usize = FIRST_LISTENER - MAX_AWAITING;
/// Clients awaiting a header a worker may hold at once (far above any connection limit).
const MAX_AWAITING: usize = 1 << (usize::BITS - 4);
/// An HTTP/2 connection (`h2_session.rs`) has token `FIRST_H2 + key`, below the awaiting
/// clients' (far above every upstream token): the loop's first compare covers it too, so an
/// HTTP/1 client's event pays nothing for it.
const FIRST_H2: usize = FIRST_AWAITING - MAX_H2;
/// HTTP/2 connections a worker may hold at once (far above any connection limit).
const MAX_H2: usize = 1 << (usize::BITS - 4);
/// Drive-queue entries run per loop tick before the loop polls again (without waiting).
const MAX_QUEUED_DRIVES: usize = 4096;
/// Sweeps per HTTP/2 rate window (rapid reset, empty frames): one second.
const SWEEPS_PER_RATE_WINDOW: u32 = 10;

/// The `listen` lines the config allows (`config::MAX_LISTENERS`).
const MAX_LISTENERS: usize = crate::config::MAX_LISTENERS;

/// A listening socket: TCP (one per worker, SO_REUSEPORT), or a unix-domain socket (one
/// socket, a descriptor of it per worker: all workers accept from it).
pub enum ListenSocket {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl ListenSocket {
    /// The next client, and its address (`net::UNIX_CLIENT` for a unix socket's).
    fn accept(&self) -> std::io::Result<(ClientSocket, SocketAddr)> {
        match self {
            ListenSocket::Tcp(l) => l.accept().map(|(s, peer)| {
                accepted(&s);
                (ClientSocket::Tcp(s), peer)
            }),
            ListenSocket::Unix(l) => l
                .accept()
                .map(|(s, _)| (ClientSocket::Unix(s), crate::net::UNIX_CLIENT)),
        }
    }

    fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            ListenSocket::Tcp(l) => l,
            ListenSocket::Unix(l) => l,
        }
    }
}

/// One of a worker's listening sockets.
pub struct Listener {
    pub socket: ListenSocket,
    /// What its clients speak under HTTP.
    pub tls: ClientTls,
    /// Its clients begin with a PROXY protocol header (`proxy_header.rs`).
    pub proxy_protocol: bool,
}

/// How often deadlines are checked; timeouts fire up to this late.
const SWEEP_INTERVAL: Duration = Duration::from_millis(100);
/// Free buffers a worker keeps for reuse.
const POOLED_BUFFERS: usize = 1024;

pub struct Worker {
    poll: Poll,
    /// Emptied when stopping.
    listeners: Vec<Listener>,
    sessions: Slab<Session>,
    /// HTTP/2 connections; their streams' children are in `sessions`.
    h2_sessions: Slab<H2Session>,
    /// What ended streams leave for the next ones.
    h2_spares: StreamSpares,
    /// Sessions in `sessions` that are h2 streams' children (not client connections).
    children: usize,
    /// Sessions to run because a pipe between them moved (`Drive`), run after each event.
    drive_queue: VecDeque<Drive>,
    /// Sweeps since the h2 connections' rate windows last started.
    sweeps: u32,
    /// Clients of `proxy_protocol` listeners whose header is not read yet (empty otherwise).
    awaiting_header: Slab<AwaitingHeader>,
    upstreams: UpstreamPool,
    buffers: BufferPool,
    heads: HeadPool,
    clock: Clock,
    log: AccessLog,
    shared: Arc<Shared>,
    /// The newest settings this worker has seen; new requests start with them.
    settings: Arc<Settings>,
    /// Not accepting: at the connection limit or out of file descriptors.
    accept_paused: bool,
    /// Client connections this worker may hold (`max_connections_per_worker`).
    max_sessions: usize,
    /// Set once shutdown began; in-flight requests finish by this instant.
    stop_deadline: Option<Instant>,
    next_sweep: Instant,
    expired: Vec<usize>,
    /// Sessions waiting for another request to fill the cache.
    waiters: Vec<usize>,
    /// Cache generation these waiters last looked at.
    cache_generation: u64,
    /// Sessions that yielded with work left (a compressed response's budget for one drive
    /// spent): driven again after each turn's events, the poll not waiting while there are any.
    drive_again: Vec<usize>,
}

impl Worker {
    pub fn new(
        poll: Poll,
        mut listeners: Vec<Listener>,
        shared: Arc<Shared>,
        log: AccessLog,
    ) -> std::io::Result<Worker> {
        listeners.truncate(MAX_LISTENERS);
        for (i, l) in listeners.iter_mut().enumerate() {
            poll.registry().register(
                l.socket.source(),
                Token(FIRST_LISTENER + i),
                Interest::READABLE,
            )?;
        }
        let settings = shared.settings();
        let cfg = &settings.config;
        let clock = Clock::new();
        let max_sessions = cfg.per_worker_connections();
        Ok(Worker {
            max_sessions,
            upstreams: UpstreamPool::new(
                settings.backends.len(),
                cfg.limits.upstream_pool_size,
                cfg.timeouts.pool_idle,
            ),
            buffers: BufferPool::new(cfg.limits.buffer_size, POOLED_BUFFERS),
            heads: HeadPool::new(POOLED_BUFFERS),
            next_sweep: clock.now + SWEEP_INTERVAL,
            clock,
            poll,
            listeners,
            sessions: Slab::new(),
            h2_sessions: Slab::new(),
            h2_spares: StreamSpares::default(),
            children: 0,
            drive_queue: VecDeque::new(),
            sweeps: 0,
            awaiting_header: Slab::new(),
            log,
            shared,
            settings,
            accept_paused: false,
            stop_deadline: None,
            expired: Vec::new(),
            waiters: Vec::new(),
            cache_generation: 0,
            drive_again: Vec::new(),
        })
    }

    pub fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        loop {
            let wake_at = match self.log.due() {
                Some(due) => due.min(self.next_sweep),
                None => self.next_sweep,
            };
            // Queued drives (pipes that moved) and yielded sessions (compression's budget)
            // run before waiting again.
            let timeout = if self.drive_queue.is_empty() && self.drive_again.is_empty() {
                wake_at.saturating_duration_since(Instant::now())
            } else {
                Duration::ZERO
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if !interrupted(&e) {
                    log::error!("event loop failed: {e}");
                    break;
                }
            }
            self.clock.tick();
            self.refresh_settings();
            for event in events.iter() {
                match event.token() {
                    WAKER => {}
                    Token(t) if t >= FIRST_H2 => {
                        if t >= FIRST_LISTENER {
                            self.accept(t - FIRST_LISTENER)
                        } else if t >= FIRST_AWAITING {
                            self.header_event(t - FIRST_AWAITING, event)
                        } else {
                            self.h2_event(t - FIRST_H2, event)
                        }
                    }
                    Token(t) if t & UPSTREAM_BIT != 0 => {
                        self.upstream_event(t & !UPSTREAM_BIT, event)
                    }
                    Token(k) => self.client_event(k, event),
                }
            }
            self.run_drive_queue();
            self.wake_cache_waiters();
            self.drive_yielded();
            if self.shared.stop.load(Ordering::Relaxed) && self.stop_deadline.is_none() {
                self.begin_stop();
            }
            if self.clock.now >= self.next_sweep {
                self.sweep();
            }
            self.log.flush_if_due(self.clock.now);
            if let Some(deadline) = self.stop_deadline {
                let empty = self.sessions.is_empty()
                    && self.awaiting_header.is_empty()
                    && self.h2_sessions.is_empty();
                if empty || self.clock.now >= deadline {
                    break;
                }
            }
        }
        // Requests still in flight at the stop deadline are cut: each still gets its line.
        let in_flight: Vec<usize> = self.sessions.iter().map(|(k, _)| k).collect();
        for key in in_flight {
            self.run_session(key, Session::log_cut_at_stop);
        }
        self.log.flush();
    }

    /// Accepts on every listener (after a pause, or when stopping).
    fn accept_all(&mut self) {
        for i in 0..self.listeners.len() {
            self.accept(i);
        }
    }

    /// Accepts on listener `i` until it would block or a limit is reached.
    fn accept(&mut self, i: usize) {
        let max = self.settings.config.limits.max_connections;
        let Some(&Listener {
            tls,
            proxy_protocol,
            ..
        }) = self.listeners.get(i)
        else {
            return;
        };
        loop {
            let open = self.shared.connections.load(Ordering::Relaxed);
            let held = self.sessions.len().saturating_sub(self.children)
                + self.h2_sessions.len()
                + self.awaiting_header.len();
            if open >= max || held >= self.max_sessions {
                // Leave new clients in the kernel backlog until a connection closes.
                if !self.accept_paused && self.shared.stats.max_connections_reached(self.clock.now)
                {
                    log_limit_reached(open, max, self.max_sessions);
                }
                self.accept_paused = true;
                return;
            }
            let Some(listener) = self.listeners.get(i) else {
                return;
            };
            match listener.socket.accept() {
                Ok((stream, peer)) => {
                    let now = self.clock.now;
                    let started = if proxy_protocol {
                        self.await_header(stream, peer, tls, now)
                    } else {
                        self.start_session(stream, peer, tls, now, false).is_some()
                    };
                    if started {
                        self.shared.connections.fetch_add(1, Ordering::Relaxed);
                        self.shared.stats.connection_accepted();
                    }
                }
                Err(e) if would_block(&e) => {
                    self.accept_paused = false;
                    return;
                }
                Err(e) if interrupted(&e) => {}
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
                    ) =>
                {
                    // Out of descriptors or memory: stop accepting until the next sweep, when
                    // some connections may have closed. Clients wait in the backlog meanwhile.
                    if !self.accept_paused {
                        log::error!("cannot accept connections: {e}; retrying shortly");
                    }
                    self.accept_paused = true;
                    return;
                }
                Err(_) => {} // ECONNABORTED and the like: that client is gone, try the next
            }
        }
    }

    /// Makes the session of an accepted client (`began`: when it was accepted) and registers
    /// its socket under the session's token (`reregister`: moved from another token). `None`:
    /// it could not start (logged), and the socket is dropped.
    fn start_session(
        &mut self,
        mut stream: ClientSocket,
        peer: SocketAddr,
        tls: ClientTls,
        began: Instant,
        reregister: bool,
    ) -> Option<usize> {
        let tls = match (tls, &self.settings.tls) {
            (ClientTls::Plain, _) => None,
            (ClientTls::Tls { h2 }, Some(tls)) => {
                let h2 = h2.unwrap_or(self.settings.config.http2.tls);
                match rustls::ServerConnection::new(tls.config_for(h2)) {
                    Ok(conn) => Some(conn),
                    Err(e) => {
                        log::error!("cannot start TLS for client {peer}: {e}");
                        return None;
                    }
                }
            }
            (ClientTls::Tls { .. }, None) => return None, // refused at start: never happens
        };
        let entry = self.sessions.vacant_entry();
        let key = entry.key();
        let registry = self.poll.registry();
        let interest = Interest::READABLE | Interest::WRITABLE;
        let registered = if reregister {
            registry.reregister(stream.source(), Token(key), interest)
        } else {
            registry.register(stream.source(), Token(key), interest)
        };
        if let Err(e) = registered {
            log::error!("cannot register client {peer}: {e}");
            return None;
        }
        let hsts = self.settings.config.hsts;
        let plain = tls.is_none();
        let mut client = ClientTransport::accepted(stream, tls.map(|conn| (conn, hsts)));
        if plain && self.settings.config.http2.h2c {
            client.allow_h2c();
        }
        let header_timeout = self.settings.config.timeouts.client_header;
        entry.insert(Session::with_transport(client, peer, began, header_timeout));
        Some(key)
    }

    /// Holds a client of a `proxy_protocol` listener until its header is read; false when it
    /// could not be registered (logged; the socket is dropped).
    fn await_header(
        &mut self,
        mut stream: ClientSocket,
        peer: SocketAddr,
        tls: ClientTls,
        now: Instant,
    ) -> bool {
        let entry = self.awaiting_header.vacant_entry();
        if entry.key() >= MAX_AWAITING {
            return false;
        }
        let token = Token(FIRST_AWAITING + entry.key());
        if let Err(e) = self
            .poll
            .registry()
            .register(stream.source(), token, Interest::READABLE)
        {
            log::error!("cannot register client {peer}: {e}");
            return false;
        }
        entry.insert(AwaitingHeader {
            socket: stream,
            peer,
            tls,
            accepted: now,
            hup: false,
        });
        true
    }

    /// An event for a client awaiting its PROXY header: read it, and start its session when it
    /// is whole, as the header's source; close it when it is broken.
    fn header_event(&mut self, key: usize, event: &Event) {
        let Some(waiting) = self.awaiting_header.get_mut(key) else {
            return;
        };
        waiting.hup |= event.is_read_closed() || event.is_error();
        match waiting.read() {
            HeaderRead::Wait => {}
            HeaderRead::Ready { client, dest } => {
                let w = self.awaiting_header.remove(key);
                match self.start_session(w.socket, client, w.tls, w.accepted, true) {
                    Some(session) => {
                        if let Some(s) = self.sessions.get_mut(session) {
                            s.announce_destination(dest);
                            // What followed the header may be waiting already.
                            s.on_client_event(true, true, w.hup);
                        }
                        self.drive(session, false);
                    }
                    None => self.connection_closed(),
                }
            }
            HeaderRead::Refused(why) => {
                let w = self.awaiting_header.remove(key);
                log::info!("client {}: {why}; connection closed", w.peer);
                self.connection_closed();
            }
        }
    }

    /// Closes the clients that sent no whole PROXY header within `client_header_timeout`.
    fn expire_awaiting_header(&mut self) {
        let wait = self.settings.config.timeouts.client_header;
        let now = self.clock.now;
        let late: Vec<usize> = self
            .awaiting_header
            .iter()
            .filter(|(_, w)| now.duration_since(w.accepted) >= wait)
            .map(|(k, _)| k)
            .collect();
        for key in late {
            let w = self.awaiting_header.remove(key);
            log::info!(
                "client {}: no PROXY protocol header within {wait:?}; connection closed",
                w.peer
            );
            self.connection_closed();
        }
    }

    /// A connection ended outside a session's life (before one started).
    fn connection_closed(&mut self) {
        self.shared.connections.fetch_sub(1, Ordering::Relaxed);
        if self.accept_paused {
            self.accept_all();
        }
    }

    fn client_event(&mut self, key: usize, event: &Event) {
        if let Some(s) = self.sessions.get_mut(key) {
            let (r, w) = readiness(event);
            s.on_client_event(r, w, event.is_read_closed());
            self.drive(key, false);
        }
    }

    fn upstream_event(&mut self, key: usize, event: &Event) {
        let Some(up) = self.upstreams.conns.get_mut(key) else {
            return;
        };
        let (r, w) = readiness(event);
        up.hup |= event.is_read_closed();
        up.readable |= r;
        up.writable |= w;
        match up.owner {
            // An HTTP/1 session runs one exchange at a time: the session drives it.
            Owner::Exchange(owner) => self.drive(owner.session, false),
            Owner::Pool(_) if r => self.upstreams.on_idle_event(self.poll.registry(), key),
            Owner::Pool(_) => {}
        }
    }

    /// Runs one session's state machine (or its timeout), then removes it if it closed.
    fn drive(&mut self, key: usize, timed_out: bool) {
        self.run_session(key, |session, ctx| {
            if timed_out {
                session.on_timeout(ctx);
            }
            session.drive(ctx);
        });
    }

    /// Lends session `key` and the worker's context to `f`, then removes the session if it
    /// closed.
    fn run_session(&mut self, key: usize, f: impl FnOnce(&mut Session, &mut Ctx<'_>)) {
        let Some(session) = self.sessions.get_mut(key) else {
            return;
        };
        let mut ctx = Ctx {
            registry: self.poll.registry(),
            upstreams: &mut self.upstreams,
            buffers: &mut self.buffers,
            heads: &mut self.heads,
            clock: &mut self.clock,
            shared: &self.shared,
            settings: &self.settings,
            log: &mut self.log,
            key,
            stopping: self.stop_deadline.is_some(),
            waiters: &mut self.waiters,
            drive_again: &mut self.drive_again,
        };
        f(session, &mut ctx);
        let closed = session.is_closed();
        if closed {
            return self.session_closed(key);
        }
        if let Some(pipe) = session.client_mut().pipe_mut() {
            if pipe.take_moved() {
                // An h2 stream's child read or wrote its pipe: its connection acts on it.
                let (parent, link, id) = (pipe.parent, pipe.link, pipe.stream_id);
                if let Some(h2) = self.h2_sessions.get_mut(parent) {
                    h2.child_moved(link, id);
                }
                self.queue_h2(parent);
            }
        }
    }

    /// Takes a closed session out of the slab: an h2 stream's child gives its pipe back to its
    /// connection; a connection that agreed HTTP/2 becomes an `H2Session`; any other ends.
    fn session_closed(&mut self, key: usize) {
        let mut session = self.sessions.remove(key);
        if let Some(parent) = session.client().pipe_parent() {
            self.children = self.children.saturating_sub(1);
            self.h2_spares
                .put_line(std::mem::take(&mut session.conn.line));
            if let (Some(h2), Some(pipe)) = (
                self.h2_sessions.get_mut(parent),
                session.into_client().into_pipe(),
            ) {
                h2.child_closed(pipe);
                self.queue_h2(parent);
            }
            return;
        }
        if let Some(read) = session.take_h2_handover() {
            let peer = session.peer();
            return self.start_h2(session.into_client(), peer, read);
        }
        if let Some(phase) = session.client().tls_phase() {
            self.shared.stats.tls_closed(phase);
        }
        // Closing the socket takes it out of the epoll set: no deregister call needed.
        drop(session);
        self.connection_closed();
    }

    /// Drives the sessions that yielded in this turn (compression's budget spent) once more,
    /// each once, after the other events and the drive queue: unlike the queue, which carries
    /// a pipe's progress between an h2 connection and its streams within the turn, a session
    /// that yields again waits for the next turn, so other clients' events come between.
    fn drive_yielded(&mut self) {
        if self.drive_again.is_empty() {
            return;
        }
        let mut yielded = std::mem::take(&mut self.drive_again);
        yielded.sort_unstable();
        yielded.dedup();
        for &key in &yielded {
            self.drive(key, false);
        }
        if self.drive_again.is_empty() {
            // Keep the list's allocation for the next turn.
            yielded.clear();
            self.drive_again = yielded;
        }
    }

    /// Re-runs the sessions waiting for a cache fill when the cache changed.
    fn wake_cache_waiters(&mut self) {
        let Some(cache) = &self.shared.cache else {
            return;
        };
        let generation = cache.generation();
        if generation == self.cache_generation || self.waiters.is_empty() {
            return;
        }
        self.cache_generation = generation;
        let mut waiting = std::mem::take(&mut self.waiters);
        waiting.sort_unstable();
        waiting.dedup();
        for key in waiting {
            self.drive(key, false);
        }
    }

    /// Fires expired deadlines, closes stale pooled connections, retries a paused accept.
    fn sweep(&mut self) {
        let now = self.clock.now;
        self.next_sweep = now + SWEEP_INTERVAL;
        let mut expired = std::mem::take(&mut self.expired);
        expired.extend(
            self.sessions
                .iter()
                .filter(|(_, s)| s.deadline() <= now)
                .map(|(k, _)| k),
        );
        for &key in &expired {
            self.drive(key, true);
        }
        expired.clear();
        if !self.h2_sessions.is_empty() {
            self.sweeps += 1;
            let new_window = self.sweeps >= SWEEPS_PER_RATE_WINDOW;
            if new_window {
                self.sweeps = 0;
            }
            for (key, h2) in self.h2_sessions.iter_mut() {
                if new_window {
                    h2.start_rate_window();
                }
                if h2.deadline() <= now {
                    expired.push(key);
                }
            }
            for &key in &expired {
                self.drive_h2(key, true);
            }
            expired.clear();
        }
        self.expired = expired;
        if !self.awaiting_header.is_empty() {
            self.expire_awaiting_header();
        }
        self.upstreams.expire(self.poll.registry(), now);
        if self.accept_paused {
            self.accept_all();
        }
    }

    /// Switches to newer settings if a reload published some. Sessions keep what they pinned
    /// (see `Exchange::settings`); the worker rebuilds its upstream pool for the new backend
    /// list, its buffer pool if `buffer_size` changed, and takes the new limits.
    fn refresh_settings(&mut self) {
        if self.shared.generation.load(Ordering::Acquire) == self.settings.generation {
            return;
        }
        let new = self.shared.settings();
        let cfg = &new.config;
        self.upstreams.reset(
            self.poll.registry(),
            new.generation,
            new.backends.len(),
            cfg.limits.upstream_pool_size,
            cfg.timeouts.pool_idle,
        );
        if cfg.limits.buffer_size != self.buffers.buffer_size() {
            // Buffers of the old size still in use are freed when they come back.
            self.buffers = BufferPool::new(cfg.limits.buffer_size, POOLED_BUFFERS);
        }
        self.max_sessions = cfg.per_worker_connections();
        self.log.set_enabled(cfg.access_log);
        self.settings = new;
        // HTTP/2 clients reconnect for the new settings (certificates, SETTINGS): GOAWAY with
        // the last stream id, the streams in flight finish.
        let h2: Vec<usize> = self.h2_sessions.iter().map(|(k, _)| k).collect();
        for key in h2 {
            if let Some(h2) = self.h2_sessions.get_mut(key) {
                h2.go_away();
            }
            self.queue_h2(key);
        }
        if self.accept_paused {
            self.accept_all();
        }
    }

    /// Stops accepting, closes idle clients and pooled connections; requests in flight go on.
    ///
    /// Clients the kernel already queued on this worker's listener are accepted and served
    /// first: closing a listener resets the connections in its queue, and those clients have
    /// sent a request they would not retry. Idle connections close before that, so their slots
    /// go to queued clients even at `max_connections`. (With `net.ipv4.tcp_migrate_req = 1`
    /// the kernel moves connections that complete their handshake after the last accept to
    /// another listener on the port, e.g. a new pibl's; see docs/operations.md.)
    fn begin_stop(&mut self) {
        self.stop_deadline = Some(self.clock.now + self.settings.config.timeouts.shutdown);
        self.upstreams.close_idle(self.poll.registry());
        let idle: Vec<usize> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.is_idle())
            .map(|(k, _)| k)
            .collect();
        for key in idle {
            self.drive(key, false);
        }
        // HTTP/2: GOAWAY with the last stream id; the streams in flight finish.
        let h2: Vec<usize> = self.h2_sessions.iter().map(|(k, _)| k).collect();
        for key in h2 {
            if let Some(h2) = self.h2_sessions.get_mut(key) {
                h2.go_away();
            }
            self.drive_h2(key, false);
        }
        self.accept_all();
        for mut l in std::mem::take(&mut self.listeners) {
            let _ = self.poll.registry().deregister(l.socket.source());
        }
    }
}

/// The event line for reaching the connection limit (at most one a second, see
/// `Stats::max_connections_reached`): which limit, and what clients meet meanwhile.
#[cold]
fn log_limit_reached(open: usize, max: usize, per_worker: usize) {
    if open >= max {
        log::warn!(
            "max_connections {max} reached: new clients wait in the listen backlog until a \
             connection closes"
        );
    } else {
        log::warn!(
            "a worker reached max_connections_per_worker {per_worker} ({open} of \
             max_connections {max} open): clients queued on its listener wait until one of \
             its connections closes"
        );
    }
}

/// Readiness an event reports. Errors and hang-ups count as both, so the next read or write
/// meets the error and the state machine handles it where it would any other.
fn readiness(event: &Event) -> (bool, bool) {
    let err = event.is_error();
    (
        event.is_readable() || event.is_read_closed() || err,
        event.is_writable() || event.is_write_closed() || err,
    )
}
