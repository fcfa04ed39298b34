//! What all workers (and the admin listener) share: the reloadable [`Settings`] and [`Shared`].
//! A module of its own, below both `proxy` and `admin`, so neither imports the other's top.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Instant;

use crate::balance::RoundRobin;
use crate::cache::Cache;
use crate::config::Config;
use crate::routing::Router;
use crate::stats::Stats;
use crate::tls::server::TlsServer;

/// What a reload replaces: the config and the backend rotation built from it. Immutable once
/// published. A worker holds the newest one it has seen; each request pins the one it started
/// with, so its backend indices, failure reports and log line stay about the same backend list.
#[derive(Debug)]
pub struct Settings {
    /// 0 at start, one more per successful reload. Upstream connections carry the generation
    /// they were opened for, so a connection to an old backend list is never pooled for a new one.
    pub generation: u64,
    pub config: Config,
    /// Every pool's backends and rotations.
    pub backends: RoundRobin,
    /// Which pool a request goes to (its host and path), built with `backends` from one config.
    pub router: Router,
    /// What TLS listeners serve (certificates, rustls config); `None` without certificates.
    /// A connection takes the `ServerConfig` when it is accepted and keeps it.
    pub tls: Option<Arc<TlsServer>>,
    /// The buckets of each `rate_limit` (one per scope that sets one: `Router::rate_limits`,
    /// indexed by `Scope::limiter`), shared by all workers; a reload starts them anew.
    pub rate_limiters: Vec<super::rate_limit::RateLimiter>,
}

impl Settings {
    /// Builds the rotation for `config`; after a reload, the health of backends still listed
    /// (same address) carries over from `previous`.
    pub(super) fn new(
        generation: u64,
        config: Config,
        previous: Option<&RoundRobin>,
        stats: &Stats,
        tls: Option<Arc<TlsServer>>,
    ) -> Settings {
        let mut backends = RoundRobin::for_config(&config)
            .with_failover(config.health.max_fails, config.health.fail_timeout)
            .with_stats(stats);
        if let Some(old) = previous {
            backends = backends.inherit(old, config.health.check.is_some());
        }
        let router = Router::new(&config);
        let rate_limiters = super::rate_limit::RateLimiter::for_limits(
            router.rate_limits(),
            config.access.rate_limit_table,
            std::time::Instant::now(),
        );
        Settings {
            generation,
            router,
            config,
            backends,
            tls,
            rate_limiters,
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
    /// Generation 0 of the settings, built from `config`, with fresh counters (no TLS).
    pub fn new(config: Config, cache: Option<Arc<Cache>>) -> Shared {
        Shared::with_tls(config, cache, None)
    }

    /// As [`Shared::new`], with what TLS listeners serve (loaded by [`load_tls`]).
    pub fn with_tls(
        config: Config,
        cache: Option<Arc<Cache>>,
        tls: Option<Arc<TlsServer>>,
    ) -> Shared {
        let stats = Arc::new(Stats::new());
        let settings = Arc::new(Settings::new(0, config, None, &stats, tls));
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
    pub(super) fn publish(&self, settings: Settings) {
        let generation = settings.generation;
        *self
            .settings
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(settings);
        self.generation.store(generation, Ordering::Release);
    }
}

/// Loads the config's certificates into what TLS listeners serve (`None`: no certificates).
/// An error names the certificate line and the file; the warnings (expiring soon, a key
/// readable by others) name their files, for the caller to log or print.
pub fn load_tls(
    config: &Config,
) -> Result<Option<(TlsServer, Vec<String>)>, crate::config::ConfigError> {
    if config.certificates.is_empty() {
        return Ok(None);
    }
    TlsServer::load(&config.certificates, config.tls_session_cache)
        .map(Some)
        .map_err(|why| config.error_at("certificate", format!("certificate: {why}")))
}
