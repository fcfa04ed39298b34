//! The proxy: worker threads, each running an event loop ([`worker`]) over client sessions
//! ([`session`]) and upstream connections ([`upstream`]).

mod cached;
mod failure;
mod health;
mod io;
pub mod session;
mod splice;
mod tunnel;
pub mod upstream;
pub mod worker;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use mio::{Poll, Waker};

use crate::admin::Admin;
use crate::balance::RoundRobin;
use crate::cache::Cache;
use crate::config::Config;
use crate::logging::LogWriter;
use crate::net;
use crate::stats::Stats;

/// What all workers share: read-only config, the rotation, and a few counters.
#[derive(Debug)]
pub struct Shared {
    pub config: Config,
    pub backends: RoundRobin,
    /// The disk cache, when it is on.
    pub cache: Option<Arc<Cache>>,
    /// Client connections open across all workers.
    pub connections: AtomicUsize,
    /// Set to begin a graceful stop.
    pub stop: AtomicBool,
    /// Counters for the admin listener; per-backend ones are reached through `backends`.
    pub stats: Arc<Stats>,
    /// When the proxy started (uptime).
    pub started: Instant,
}

/// A running proxy: its workers and the address they listen on.
pub struct Proxy {
    shared: Arc<Shared>,
    workers: Vec<(JoinHandle<()>, Arc<Waker>)>,
    /// The active health-check thread, when `health_check` is set.
    health: Option<JoinHandle<()>>,
    /// The admin listener's thread, when `admin` is set.
    admin: Option<Admin>,
    addr: SocketAddr,
}

impl Proxy {
    /// Binds the listeners (failing before any thread starts) and starts one worker per
    /// listener.
    pub fn start(config: Config, logs: &LogWriter) -> Result<Proxy, String> {
        let count = config.worker_count();
        let cache = match config.cache_config() {
            Some(c) => Some(Arc::new(Cache::open(c)?)),
            None => None,
        };
        let listeners = net::bind_group(config.listen, count)
            .map_err(|e| net::describe_bind_error(config.listen, &e))?;
        let addr = listeners[0]
            .local_addr()
            .map_err(|e| format!("cannot read the listening address: {e}"))?;
        let admin_listener = config.admin.map(crate::admin::bind).transpose()?;
        let stats = Arc::new(Stats::new());
        let shared = Arc::new(Shared {
            backends: RoundRobin::new(&config.backends)
                .with_failover(config.health.max_fails, config.health.fail_timeout)
                .with_stats(&stats),
            cache,
            config,
            connections: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            stats,
            started: Instant::now(),
        });
        let mut workers = Vec::with_capacity(count);
        for (i, listener) in listeners.into_iter().enumerate() {
            let poll = Poll::new().map_err(|e| format!("cannot create an event loop: {e}"))?;
            let waker = Arc::new(
                Waker::new(poll.registry(), worker::WAKER)
                    .map_err(|e| format!("cannot create an event loop waker: {e}"))?,
            );
            if let Some(c) = &shared.cache {
                c.add_waker(waker.clone());
            }
            let w = worker::Worker::new(
                poll,
                listener,
                shared.clone(),
                logs.access_log(shared.config.access_log),
            )
            .map_err(|e| format!("cannot start worker {i}: {e}"))?;
            let handle = std::thread::Builder::new()
                .name(format!("pibl-worker-{i}"))
                .spawn(move || w.run())
                .map_err(|e| format!("cannot start worker thread {i}: {e}"))?;
            workers.push((handle, waker));
        }
        let health = match shared.config.health.check.clone() {
            Some(check) => Some(
                health::start(shared.clone(), check)
                    .map_err(|e| format!("cannot start the health-check thread: {e}"))?,
            ),
            None => None,
        };
        let names: Vec<&str> = shared
            .backends
            .backends()
            .iter()
            .map(|b| b.name.as_str())
            .collect();
        log::info!(
            "pibl {} listening on {addr} with {count} workers; backends: {}",
            env!("CARGO_PKG_VERSION"),
            names.join(", ")
        );
        let admin = match admin_listener {
            Some(l) => {
                let a = Admin::start(l, shared.clone())?;
                log::info!("admin listening on {}", a.local_addr());
                Some(a)
            }
            None => None,
        };
        Ok(Proxy {
            shared,
            workers,
            health,
            admin,
            addr,
        })
    }

    /// The address clients connect to (the real port when the config said port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The admin listener's address, when `admin` is configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(Admin::local_addr)
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Graceful stop: no new connections, requests in flight finish (bounded by
    /// `shutdown_timeout`), then the workers exit. Returns when they have.
    pub fn shutdown(self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for (_, waker) in &self.workers {
            let _ = waker.wake();
        }
        if let Some(a) = self.admin {
            a.stop();
        }
        for (handle, _) in self.workers {
            let _ = handle.join();
        }
        if let Some(h) = self.health {
            let _ = h.join();
        }
    }
}
