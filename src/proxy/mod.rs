//! The proxy: worker threads, each running an event loop ([`worker`]) over client sessions
//! ([`session`]) and upstream connections ([`upstream`]).

mod cached;
mod failure;
mod health;
mod io;
pub mod session;
mod splice;
mod transport;
mod tunnel;
pub mod upstream;
mod upstream_failure;
pub mod worker;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
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

/// What a reload replaces: the config and the backend rotation built from it. Immutable once
/// published. A worker holds the newest one it has seen; each request pins the one it started
/// with, so its backend indices, failure reports and log line stay about the same backend list.
#[derive(Debug)]
pub struct Settings {
    /// 0 at start, one more per successful reload. Upstream connections carry the generation
    /// they were opened for, so a connection to an old backend list is never pooled for a new one.
    pub generation: u64,
    pub config: Config,
    pub backends: RoundRobin,
}

impl Settings {
    /// Builds the rotation for `config`; after a reload, the health of backends still listed
    /// (same address) carries over from `previous`.
    fn new(
        generation: u64,
        config: Config,
        previous: Option<&RoundRobin>,
        stats: &Stats,
    ) -> Settings {
        let mut backends = RoundRobin::new(&config.backends)
            .with_failover(config.health.max_fails, config.health.fail_timeout)
            .with_stats(stats);
        if let Some(old) = previous {
            backends = backends.inherit(old, config.health.check.is_some());
        }
        Settings {
            generation,
            config,
            backends,
        }
    }
}

/// What all workers share: the current settings, the cache, and a few counters.
#[derive(Debug)]
pub struct Shared {
    /// The current settings. Read (a lock) only when `generation` says they changed, so the
    /// request path never takes this lock.
    settings: RwLock<Arc<Settings>>,
    /// `settings.generation`, for workers to compare once per loop tick.
    pub generation: AtomicU64,
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

impl Shared {
    /// Generation 0 of the settings, built from `config`, with fresh counters.
    pub fn new(config: Config, cache: Option<Arc<Cache>>) -> Shared {
        let stats = Arc::new(Stats::new());
        let settings = Arc::new(Settings::new(0, config, None, &stats));
        Shared {
            settings: RwLock::new(settings),
            generation: AtomicU64::new(0),
            cache,
            connections: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            stats,
            started: Instant::now(),
        }
    }

    /// The current settings.
    pub fn settings(&self) -> Arc<Settings> {
        self.settings
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Makes `settings` current; workers switch at their next loop tick.
    fn publish(&self, settings: Settings) {
        let generation = settings.generation;
        *self
            .settings
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(settings);
        self.generation.store(generation, Ordering::Release);
    }
}

/// A running proxy: its workers and the address they listen on.
pub struct Proxy {
    shared: Arc<Shared>,
    workers: Vec<(JoinHandle<()>, Arc<Waker>)>,
    /// The health-check thread (probing only while `health_check` is set).
    health: JoinHandle<()>,
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
        let access_log = config.access_log;
        let admin_listener = config.admin.map(crate::admin::bind).transpose()?;
        let shared = Arc::new(Shared::new(config, cache));
        let settings = shared.settings();
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
            let w =
                worker::Worker::new(poll, listener, shared.clone(), logs.access_log(access_log))
                    .map_err(|e| format!("cannot start worker {i}: {e}"))?;
            let handle = std::thread::Builder::new()
                .name(format!("pibl-worker-{i}"))
                .spawn(move || w.run())
                .map_err(|e| format!("cannot start worker thread {i}: {e}"))?;
            workers.push((handle, waker));
        }
        // Always running, so a reload can turn `health_check` on; it idles while it is off.
        let health = health::start(shared.clone())
            .map_err(|e| format!("cannot start the health-check thread: {e}"))?;
        log::info!(
            "pibl {} listening on {addr} with {}; backends: {}",
            env!("CARGO_PKG_VERSION"),
            crate::config::counted(count, "worker", "workers"),
            backend_names(&settings.backends)
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

    /// Replaces the settings with `new` (already loaded and validated) for requests that start
    /// from now on; requests in flight finish with the settings they started with. What cannot
    /// change without a restart keeps its running value, and each such change is logged.
    pub fn reload(&self, mut new: Config) {
        let old = self.shared.settings();
        let cur = &old.config;
        let mut ignored = Vec::new();
        if new.listen != cur.listen {
            ignored.push(format!("listen address {} -> {}", cur.listen, new.listen));
            new.listen = cur.listen;
        }
        if new.worker_count() != cur.worker_count() {
            ignored.push(format!(
                "workers {} -> {}",
                cur.worker_count(),
                new.worker_count()
            ));
        }
        new.workers = cur.workers;
        if new.admin != cur.admin {
            let show =
                |a: Option<SocketAddr>| a.map_or_else(|| "off".to_string(), |a| a.to_string());
            ignored.push(format!(
                "admin address {} -> {}",
                show(cur.admin),
                show(new.admin)
            ));
            new.admin = cur.admin;
        }
        if new.log_file != cur.log_file {
            ignored.push(format!(
                "log_file {} -> {}",
                cur.log_file.display(),
                new.log_file.display()
            ));
            new.log_file = cur.log_file.clone();
        }
        let (was_on, now_on) = (cur.cache_config().is_some(), new.cache_config().is_some());
        if was_on != now_on {
            let word = |on: bool| if on { "on" } else { "off" };
            ignored.push(format!("cache {} -> {}", word(was_on), word(now_on)));
            new.cache.enabled = Some(was_on);
            if was_on && new.cache.ttl.is_none() {
                new.cache.ttl = cur.cache.ttl;
            }
        }
        if new.cache.dir != cur.cache.dir {
            ignored.push(format!(
                "cache_dir {} -> {}",
                cur.cache.dir.display(),
                new.cache.dir.display()
            ));
        }
        for (name, was, now) in [
            ("cache_max_bytes", cur.cache.max_bytes, new.cache.max_bytes),
            (
                "cache_max_object",
                cur.cache.max_object,
                new.cache.max_object,
            ),
        ] {
            if was != now {
                let size = crate::config::format_size;
                ignored.push(format!("{name} {} -> {}", size(was), size(now)));
            }
        }
        new.cache.dir = cur.cache.dir.clone();
        new.cache.max_bytes = cur.cache.max_bytes;
        new.cache.max_object = cur.cache.max_object;
        for what in &ignored {
            log::warn!("reload: {what} is applied at the next restart");
        }
        let path = new.path.clone();
        let settings = Settings::new(
            old.generation + 1,
            new,
            Some(&old.backends),
            &self.shared.stats,
        );
        let (generation, count) = (settings.generation, settings.backends.len());
        let names = backend_names(&settings.backends);
        self.shared.publish(settings);
        for (_, waker) in &self.workers {
            let _ = waker.wake();
        }
        log::info!(
            "reloaded {}: {} ({names}); generation {generation}",
            path.display(),
            crate::config::counted(count, "backend", "backends")
        );
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
        let _ = self.health.join();
    }
}

/// `a, b, c` for log lines.
fn backend_names(backends: &RoundRobin) -> String {
    let names: Vec<&str> = backends
        .backends()
        .iter()
        .map(|b| b.name.as_str())
        .collect();
    names.join(", ")
}
