//! The proxy: worker threads, each running an event loop ([`worker`]) over client sessions
//! ([`session`]) and upstream connections ([`upstream`]).

mod access_check;
mod cache_states;
mod cached;
mod compressing;
mod exchange;
mod failure;
mod h1;
mod h2_session;
mod health;
pub(crate) mod io;
mod pipe;
mod proxy_header;
mod rate_limit;
mod redirect;
mod relay;
pub mod session;
#[cfg(test)]
mod session_tests;
pub mod shared;
mod splice;
mod transport;
mod tunnel;
pub mod upstream;
mod upstream_failure;
pub mod worker;

pub use shared::{Settings, Shared};

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;

use mio::{Poll, Waker};

use crate::admin::Admin;
use crate::balance::RoundRobin;
use crate::cache::Cache;
use crate::config::{Config, Listen};
use crate::logging::LogWriter;
use crate::net;

/// A running proxy: its workers and the address they listen on.
pub struct Proxy {
    shared: Arc<Shared>,
    workers: Vec<(JoinHandle<()>, Arc<Waker>)>,
    /// The health-check thread (probing only while `health_check` is set).
    health: JoinHandle<()>,
    /// The admin listener's thread, when `admin` is set.
    admin: Option<Admin>,
    /// Each listener's address (the real port when the config said port 0), in config order.
    addrs: Vec<Listen>,
    /// The unix sockets this process made, removed at a clean stop.
    unix_files: Vec<UnixSocketFile>,
}

/// A unix socket's file, removed when pibl stops (only if it is still the one pibl made: the
/// same inode, so a file another server made since is left alone).
struct UnixSocketFile {
    path: std::path::PathBuf,
    inode: u64,
}

impl UnixSocketFile {
    fn remove(&self) {
        use std::os::unix::fs::MetadataExt;
        if std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.ino() == self.inode) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
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
        let tls = match shared::load_tls(&config).map_err(|e| e.to_string())? {
            Some((server, warnings)) => {
                for w in warnings {
                    log::warn!("{w}");
                }
                Some(Arc::new(server))
            }
            None => None,
        };
        for w in config.warnings() {
            log::warn!("{w}");
        }
        // One group per `listen` line; worker i gets the i-th listener of every group.
        let mut per_worker: Vec<Vec<worker::Listener>> = (0..count).map(|_| Vec::new()).collect();
        let mut addrs = Vec::with_capacity(config.listeners.len());
        let mut unix_files = Vec::new();
        for l in &config.listeners {
            if let Some(u) = &l.unix {
                let bound = bind_unix_group(&u.path, u.mode, count);
                let group = match bound {
                    Ok((group, file)) => {
                        unix_files.push(file);
                        group
                    }
                    Err(e) => {
                        unix_files.iter().for_each(UnixSocketFile::remove);
                        return Err(net::describe_unix_bind_error(&u.path, &e));
                    }
                };
                addrs.push(l.clone());
                for (i, socket) in group.into_iter().enumerate() {
                    per_worker[i].push(worker::Listener {
                        socket: worker::ListenSocket::Unix(socket),
                        tls: transport::ClientTls::of(l),
                        proxy_protocol: l.proxy_protocol,
                    });
                }
                continue;
            }
            let group =
                net::bind_group(l.addr, count).map_err(|e| net::describe_bind_error(l.addr, &e))?;
            let addr = group[0]
                .local_addr()
                .map_err(|e| format!("cannot read the listening address: {e}"))?;
            addrs.push(Listen { addr, ..l.clone() });
            for (i, socket) in group.into_iter().enumerate() {
                per_worker[i].push(worker::Listener {
                    socket: worker::ListenSocket::Tcp(socket),
                    tls: transport::ClientTls::of(l),
                    proxy_protocol: l.proxy_protocol,
                });
            }
        }
        let access_log = config.access_log;
        let admin_listener = config.admin.map(crate::admin::bind).transpose()?;
        let shared = Arc::new(Shared::with_tls(config, cache, tls));
        let settings = shared.settings();
        let mut workers = Vec::with_capacity(count);
        for (i, listener) in per_worker.into_iter().enumerate() {
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
        let on: Vec<String> = addrs.iter().map(Listen::to_string).collect();
        log::info!(
            "pibl {} listening on {} with {}; backends: {}",
            env!("CARGO_PKG_VERSION"),
            on.join(" and "),
            crate::text::counted(count, "worker", "workers"),
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
            addrs,
            unix_files,
        })
    }

    /// The address clients connect to (the real port when the config said port 0): the first
    /// TCP listener's (the first listener's when all are unix sockets).
    pub fn local_addr(&self) -> SocketAddr {
        let tcp = self.addrs.iter().find(|l| l.unix.is_none());
        tcp.or(self.addrs.first())
            .map_or(self.shared.settings().config.listen, |l| l.addr)
    }

    /// The TLS listener's address, when there is one (TCP).
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        let mut tls = self.addrs.iter().filter(|l| l.unix.is_none());
        tls.find(|l| l.tls).map(|l| l.addr)
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
        if new.listeners != cur.listeners {
            let show = |ls: &[Listen]| {
                let v: Vec<String> = ls.iter().map(Listen::to_string).collect();
                v.join(", ")
            };
            ignored.push(format!(
                "listen address {} -> {}",
                show(&cur.listeners),
                show(&new.listeners)
            ));
            new.listen = cur.listen;
            new.listeners = cur.listeners.clone();
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
        for w in new.warnings() {
            log::warn!("reload: {w}");
        }
        // Certificates are re-read; a bad file keeps those in use (the rest still applies).
        let tls = match shared::load_tls(&new) {
            Ok(Some((server, warnings))) => {
                for w in warnings {
                    log::warn!("reload: {w}");
                }
                Some(Arc::new(server))
            }
            // The running TLS listener stays (listeners change at restart): keep its certificates.
            Ok(None) if new.has_tls() => old.tls.clone(),
            Ok(None) => None,
            Err(e) => {
                log::error!("reload: {e}; the certificates in use are kept");
                old.tls.clone()
            }
        };
        let path = new.path.clone();
        let settings = Settings::new(
            old.generation + 1,
            new,
            Some(&old.backends),
            &self.shared.stats,
            tls,
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
            crate::text::counted(count, "backend", "backends")
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
        self.unix_files.iter().for_each(UnixSocketFile::remove);
    }
}

/// Binds a unix socket at `path` and gives each of `count` workers a descriptor of it: unix
/// sockets have no SO_REUSEPORT balancing, so all workers register the one socket and whichever
/// accepts first serves the client (the others' accepts find nothing, as off Linux for TCP).
fn bind_unix_group(
    path: &std::path::Path,
    mode: Option<u32>,
    count: usize,
) -> std::io::Result<(Vec<mio::net::UnixListener>, UnixSocketFile)> {
    use std::os::unix::fs::MetadataExt;
    let listener = net::bind_unix(path, mode)?;
    let file = UnixSocketFile {
        path: path.to_path_buf(),
        inode: std::fs::symlink_metadata(path)?.ino(),
    };
    let mut group = Vec::with_capacity(count.max(1));
    for _ in 1..count {
        group.push(mio::net::UnixListener::from_std(listener.try_clone()?));
    }
    group.push(mio::net::UnixListener::from_std(listener));
    Ok((group, file))
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
