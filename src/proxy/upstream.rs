//! Upstream connections and the per-worker pool of idle ones.
//!
//! Every upstream socket lives in one slab for its whole life and keeps one poll token, whether a
//! session is using it or it sits idle in the pool: moving it between the two is a change of owner,
//! not an `epoll_ctl`. Idle sockets stay registered, so a backend closing one (or sending bytes
//! nobody asked for) is seen at once and the socket is evicted before anyone reuses it.
//!
//! A TLS backend's socket is a `Stream::Tls` (a rustls `ClientConnection` over the socket, the
//! same sans-io stream as a TLS listener's); its handshake runs in the connecting state, so a
//! failed one is a failed connect. Pooled TLS connections are reused like plain ones.
//!
//! Backend indices belong to one generation of settings (see `Settings`). After a reload the
//! worker calls [`UpstreamPool::reset`]: idle connections are closed and the idle lists are
//! rebuilt for the new backend list; connections still used by requests of the old generation
//! finish their exchange and are then closed instead of pooled ([`UpstreamPool::checkin`]).

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use slab::Slab;

use super::transport::Stream;
use crate::tls::stream::TlsStream;

/// Upstream tokens have this bit set; client tokens do not.
pub const UPSTREAM_BIT: usize = 1 << (usize::BITS - 2);

/// One exchange of one session: what an upstream socket in use belongs to. An HTTP/1 session
/// has one exchange at a time; a multiplexed one (HTTP/2) has many, and an upstream event must
/// reach the exchange it is for, not just the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExchangeKey {
    /// The session's slab key in the worker.
    pub session: usize,
    /// The exchange's id within its session.
    pub exchange: u32,
}

/// Who is using an upstream socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// An exchange is connecting or exchanging on it.
    Exchange(ExchangeKey),
    /// Idle in the pool since the instant given.
    Pool(Instant),
}

#[derive(Debug)]
pub struct Upstream {
    /// Plain TCP, or TLS to a `https` backend.
    pub stream: Stream,
    /// Index in the backend list of `generation`.
    pub backend: usize,
    /// The settings generation this connection was opened for.
    pub generation: u64,
    pub owner: Owner,
    /// Edge-triggered readiness not yet consumed.
    pub readable: bool,
    pub writable: bool,
    /// The backend closed its sending side (seen by the event loop).
    pub hup: bool,
    /// The TCP handshake finished.
    pub connected: bool,
    /// Requests sent on this connection so far.
    pub uses: u32,
    /// The client address its PROXY protocol header announced (a `proxy_protocol` pool): it
    /// may be reused only for that client ([`UpstreamPool::checkout_for_client`]).
    pub proxied_for: Option<SocketAddr>,
}

impl Upstream {
    /// Sends a PROXY protocol header as the first bytes of a connection that has just
    /// connected (before any TLS), for `client`. The socket's send buffer is empty then, so the
    /// few dozen bytes go in one write; anything short of that fails the connect.
    pub fn send_proxy_header(&mut self, header: &[u8], client: SocketAddr) -> io::Result<()> {
        use std::io::Write;
        let Some(mut sock) = self.stream.socket() else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        match sock.write(header) {
            Ok(n) if n == header.len() => {
                self.proxied_for = Some(client);
                Ok(())
            }
            Ok(_) => Err(io::Error::other("a short write")),
            Err(e) => Err(e),
        }
    }
}

/// All upstream sockets of a worker, and the idle ones per backend.
#[derive(Debug)]
pub struct UpstreamPool {
    pub conns: Slab<Upstream>,
    /// Idle connection keys per backend, most recently used last.
    idle: Vec<Vec<usize>>,
    max_idle_per_backend: usize,
    idle_timeout: Duration,
    /// The settings generation whose backend list `idle` is indexed by.
    generation: u64,
}

impl UpstreamPool {
    pub fn new(backends: usize, max_idle_per_backend: usize, idle_timeout: Duration) -> Self {
        UpstreamPool {
            conns: Slab::new(),
            idle: vec![Vec::new(); backends],
            max_idle_per_backend,
            idle_timeout,
            generation: 0,
        }
    }

    /// Switches to the backend list of a new settings generation: closes every idle
    /// connection (they belong to the old list) and takes the new pool limits.
    pub fn reset(
        &mut self,
        registry: &Registry,
        generation: u64,
        backends: usize,
        max_idle_per_backend: usize,
        idle_timeout: Duration,
    ) {
        self.close_idle(registry);
        self.idle = vec![Vec::new(); backends];
        self.max_idle_per_backend = max_idle_per_backend;
        self.idle_timeout = idle_timeout;
        self.generation = generation;
    }

    /// Starts a non-blocking connect; the socket reports writable when the TCP handshake ends.
    /// With `tls`, the TLS handshake follows on the same socket (see `Upstream::stream`).
    pub fn connect(
        &mut self,
        registry: &Registry,
        generation: u64,
        backend: usize,
        addr: SocketAddr,
        owner: ExchangeKey,
        tls: Option<rustls::ClientConnection>,
    ) -> io::Result<usize> {
        let mut sock = TcpStream::connect(addr)?;
        sock.set_nodelay(true).ok();
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        registry.register(
            &mut sock,
            Token(key | UPSTREAM_BIT),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let stream = match tls {
            Some(conn) => Stream::Tls(Box::new(TlsStream::client(sock, conn))),
            None => Stream::Plain(sock),
        };
        entry.insert(Upstream {
            stream,
            backend,
            generation,
            owner: Owner::Exchange(owner),
            readable: false,
            writable: false,
            hup: false,
            connected: false,
            uses: 0,
            proxied_for: None,
        });
        Ok(key)
    }

    /// Takes the most recently used idle connection to `backend` of settings `generation`, if
    /// a live one is there (never for an older generation: its indices mean other backends).
    pub fn checkout(
        &mut self,
        registry: &Registry,
        generation: u64,
        backend: usize,
        owner: ExchangeKey,
    ) -> Option<usize> {
        if generation != self.generation {
            return None;
        }
        while let Some(key) = self.idle.get_mut(backend)?.pop() {
            let Some(up) = self.conns.get_mut(key) else {
                continue;
            };
            if up.readable {
                // The backend closed it or sent something unasked: never reuse it.
                self.close(registry, key);
                continue;
            }
            up.owner = Owner::Exchange(owner);
            return Some(key);
        }
        None
    }

    /// [`Self::checkout`] for a `proxy_protocol` backend: only a connection whose header
    /// announced `client` will do (HAProxy's private connections), since the backend took
    /// every request on it to come from that client.
    pub fn checkout_for_client(
        &mut self,
        registry: &Registry,
        generation: u64,
        backend: usize,
        owner: ExchangeKey,
        client: SocketAddr,
    ) -> Option<usize> {
        if generation != self.generation {
            return None;
        }
        let list = self.idle.get_mut(backend)?;
        let conns = &self.conns;
        let at = list
            .iter()
            .rposition(|&k| conns.get(k).is_some_and(|u| u.proxied_for == Some(client)))?;
        let key = list.remove(at);
        let up = self.conns.get_mut(key)?;
        if up.readable {
            self.close(registry, key);
            return None;
        }
        up.owner = Owner::Exchange(owner);
        Some(key)
    }

    /// Gives a connection back after a complete exchange; closes it when the pool is full or it
    /// was opened for an older settings generation.
    pub fn checkin(&mut self, registry: &Registry, key: usize, now: Instant) {
        let Some(up) = self.conns.get_mut(key) else {
            return;
        };
        if up.readable {
            // The relay stops reading at the end of a response, not at WouldBlock, so the flag
            // may be stale: look without consuming. Anything there (bytes or EOF) disqualifies.
            let mut probe = [0u8; 1];
            match up.stream.socket().map(|s| s.peek(&mut probe)) {
                Some(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => up.readable = false,
                _ => {}
            }
        }
        // TLS output still held, or decrypted input nobody asked for, makes it unfit to pool.
        let held = !up.stream.is_flushed() || up.stream.holds_input();
        let list = match self.idle.get_mut(up.backend) {
            Some(list) if up.generation == self.generation => list,
            _ => {
                self.close(registry, key);
                return;
            }
        };
        if list.len() >= self.max_idle_per_backend || up.readable || held {
            self.close(registry, key);
            return;
        }
        up.owner = Owner::Pool(now);
        list.push(key);
    }

    /// Deregisters and closes a connection, wherever it is.
    pub fn close(&mut self, registry: &Registry, key: usize) {
        if let Some(mut up) = self.conns.try_remove(key) {
            if let Some(sock) = up.stream.socket_mut() {
                let _ = registry.deregister(sock);
            }
            if let (Owner::Pool(_), Some(list)) = (up.owner, self.idle.get_mut(up.backend)) {
                list.retain(|&k| k != key);
            }
        }
    }

    /// An event on an idle socket: the backend closed it or misbehaved. Evict it.
    pub fn on_idle_event(&mut self, registry: &Registry, key: usize) {
        self.close(registry, key);
    }

    /// Closes idle connections older than the idle timeout.
    pub fn expire(&mut self, registry: &Registry, now: Instant) {
        let timeout = self.idle_timeout;
        let mut stale = Vec::new();
        for list in &self.idle {
            for &key in list {
                if let Some(Upstream {
                    owner: Owner::Pool(since),
                    ..
                }) = self.conns.get(key)
                {
                    if now.duration_since(*since) >= timeout {
                        stale.push(key);
                    }
                }
            }
        }
        for key in stale {
            self.close(registry, key);
        }
    }

    /// Idle connections held, for tests and status.
    pub fn idle_count(&self) -> usize {
        self.idle.iter().map(Vec::len).sum()
    }

    /// Closes every idle connection (shutdown).
    pub fn close_idle(&mut self, registry: &Registry) {
        let keys: Vec<usize> = self.idle.iter().flatten().copied().collect();
        for key in keys {
            self.close(registry, key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket handed from one exchange to the pool and on to another is owned by each in
    /// turn: events reach the exchange using it, never one that let it go.
    #[test]
    fn ownership_follows_the_exchange_through_the_pool() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a local listener");
        let addr = listener.local_addr().expect("its address");
        let poll = mio::Poll::new().expect("an event loop");
        let mut pool = UpstreamPool::new(1, 4, Duration::from_secs(60));
        let first = ExchangeKey {
            session: 3,
            exchange: 0,
        };
        let key = pool
            .connect(poll.registry(), 0, 0, addr, first, None)
            .expect("a connect started");
        assert_eq!(pool.conns[key].owner, Owner::Exchange(first));
        pool.checkin(poll.registry(), key, Instant::now());
        assert!(matches!(pool.conns[key].owner, Owner::Pool(_)));
        let next = ExchangeKey {
            session: 3,
            exchange: 1,
        };
        assert_eq!(pool.checkout(poll.registry(), 0, 0, next), Some(key));
        assert_eq!(pool.conns[key].owner, Owner::Exchange(next));
        pool.close(poll.registry(), key);
        assert!(pool.conns.is_empty());
    }
}
