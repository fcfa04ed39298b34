//! The event loop: one per worker thread, each with its own `mio::Poll`, its own SO_REUSEPORT
//! listener, a slab of client sessions and a pool of upstream connections. Workers share nothing
//! on the request path but the round-robin counter and the connection count (both atomics).
//!
//! Reload: once per loop tick a worker compares `Shared::generation` with the generation of the
//! settings it holds (one atomic load); only when they differ does it take the settings lock,
//! switch, and rebuild what depends on them ([`Worker::refresh_settings`]).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::event::Event;
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use super::session::{Ctx, Session};
use super::shared::{Settings, Shared};
use super::transport::ClientTransport;
use super::upstream::{Owner, UpstreamPool, UPSTREAM_BIT};
use crate::buffer::{BufferPool, HeadPool};
use crate::clock::Clock;
use crate::logging::AccessLog;
use crate::net::{accepted, interrupted, would_block};

pub const WAKER: Token = Token(usize::MAX - 2);
/// Listener `i` of a worker has token `FIRST_LISTENER + i` (below `WAKER`; these tokens have
/// the upstream bit set, so they are matched first).
const FIRST_LISTENER: usize = WAKER.0 - MAX_LISTENERS;
/// The `listen` lines the config allows (`config::MAX_LISTENERS`).
const MAX_LISTENERS: usize = crate::config::MAX_LISTENERS;

/// One of a worker's listening sockets.
pub struct Listener {
    pub socket: TcpListener,
    /// Its clients speak TLS.
    pub tls: bool,
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
                &mut l.socket,
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
            log,
            shared,
            settings,
            accept_paused: false,
            stop_deadline: None,
            expired: Vec::new(),
            waiters: Vec::new(),
            cache_generation: 0,
        })
    }

    pub fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        loop {
            let wake_at = match self.log.due() {
                Some(due) => due.min(self.next_sweep),
                None => self.next_sweep,
            };
            let timeout = wake_at.saturating_duration_since(Instant::now());
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
                    Token(t) if (FIRST_LISTENER..WAKER.0).contains(&t) => {
                        self.accept(t - FIRST_LISTENER)
                    }
                    Token(t) if t & UPSTREAM_BIT != 0 => {
                        self.upstream_event(t & !UPSTREAM_BIT, event)
                    }
                    Token(k) => self.client_event(k, event),
                }
            }
            self.wake_cache_waiters();
            if self.shared.stop.load(Ordering::Relaxed) && self.stop_deadline.is_none() {
                self.begin_stop();
            }
            if self.clock.now >= self.next_sweep {
                self.sweep();
            }
            self.log.flush_if_due(self.clock.now);
            if let Some(deadline) = self.stop_deadline {
                if self.sessions.is_empty() || self.clock.now >= deadline {
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
        let header_timeout = self.settings.config.timeouts.client_header;
        let Some(listener) = self.listeners.get(i) else {
            return;
        };
        loop {
            let open = self.shared.connections.load(Ordering::Relaxed);
            if open >= max || self.sessions.len() >= self.max_sessions {
                // Leave new clients in the kernel backlog until a connection closes.
                if !self.accept_paused && self.shared.stats.max_connections_reached(self.clock.now)
                {
                    log_limit_reached(open, max, self.max_sessions);
                }
                self.accept_paused = true;
                return;
            }
            match listener.socket.accept() {
                Ok((mut stream, peer)) => {
                    accepted(&stream);
                    let tls = match (listener.tls, &self.settings.tls) {
                        (false, _) => None,
                        (true, Some(tls)) => {
                            match rustls::ServerConnection::new(tls.config.clone()) {
                                Ok(conn) => Some(conn),
                                Err(e) => {
                                    log::error!("cannot start TLS for client {peer}: {e}");
                                    continue;
                                }
                            }
                        }
                        (true, None) => continue, // refused at start: never happens
                    };
                    let entry = self.sessions.vacant_entry();
                    let key = entry.key();
                    if let Err(e) = self.poll.registry().register(
                        &mut stream,
                        Token(key),
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        log::error!("cannot register client {peer}: {e}");
                        continue;
                    }
                    let client = match tls {
                        None => ClientTransport::plain(stream),
                        Some(conn) => ClientTransport::tls(stream, conn, self.settings.config.hsts),
                    };
                    let now = self.clock.now;
                    entry.insert(Session::with_transport(client, peer, now, header_timeout));
                    self.shared.connections.fetch_add(1, Ordering::Relaxed);
                    self.shared.stats.connection_accepted();
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
        };
        f(session, &mut ctx);
        if session.is_closed() {
            if let Some(phase) = session.client().tls_phase() {
                self.shared.stats.tls_closed(phase);
            }
            // Closing the socket takes it out of the epoll set: no deregister call needed.
            drop(self.sessions.remove(key));
            self.shared.connections.fetch_sub(1, Ordering::Relaxed);
            if self.accept_paused {
                self.accept_all();
            }
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
        self.expired = expired;
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
        self.accept_all();
        for mut l in std::mem::take(&mut self.listeners) {
            let _ = self.poll.registry().deregister(&mut l.socket);
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
