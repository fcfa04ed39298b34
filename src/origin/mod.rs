//! `pibl-origin`: the small web server the load balancer is tested and benchmarked against.
//!
//! Each copy serves the same little site (embedded, or from `--root`) with its own name shown on
//! the index page and in `X-Served-By`, so round robin is visible. See `docs/origin.md`.
//!
//! - [`worker`]: the mio event loop, one per thread, each with a SO_REUSEPORT listener.
//! - [`conn`]: the connection state machine (read head, read body, send, linger).
//! - [`head`]: request heads, parsed strictly with the shared [`crate::http`] framing rules.
//! - [`routes`]: `/health`, `/api/info`, `/echo`, and static files.
//! - [`site`]: the files, embedded or from the root, cached in memory.
//! - [`path`]: request paths to file names, refusing traversal; content types.

pub mod conn;
pub mod head;
pub mod path;
pub mod routes;
pub mod site;
pub mod worker;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use mio::{Poll, Waker};

use crate::net;
use site::Site;

/// What the command line decides.
#[derive(Debug, Clone)]
pub struct OriginConfig {
    pub listen: SocketAddr,
    /// Serve this directory instead of the embedded site.
    pub root: Option<PathBuf>,
    /// Shown on the index page and sent as `X-Served-By`; `origin-<port>` when `None`.
    pub name: Option<String>,
    pub workers: usize,
}

impl Default for OriginConfig {
    fn default() -> Self {
        OriginConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            root: None,
            name: None,
            workers: 1,
        }
    }
}

/// What all workers share.
#[derive(Debug)]
pub struct Shared {
    pub name: Arc<str>,
    pub site: Arc<Site>,
    /// Requests parsed across all workers, for `/api/info`.
    pub requests: AtomicU64,
    /// Set to begin a graceful stop.
    pub stop: AtomicBool,
}

/// A running origin server.
pub struct Origin {
    shared: Arc<Shared>,
    workers: Vec<(JoinHandle<()>, Arc<Waker>)>,
    addr: SocketAddr,
}

/// A name goes into a header and a page, so it is kept to visible ASCII.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_graphic())
}

impl Origin {
    /// Binds the listeners and starts the workers; fails before any thread starts.
    pub fn start(config: &OriginConfig) -> Result<Origin, String> {
        let workers = config.workers.max(1);
        let listeners = net::bind_group(config.listen, workers)
            .map_err(|e| net::describe_bind_error(config.listen, &e))?;
        let addr = listeners[0]
            .local_addr()
            .map_err(|e| format!("cannot read the listening address: {e}"))?;
        let name = config
            .name
            .clone()
            .unwrap_or_else(|| format!("origin-{}", addr.port()));
        if !valid_name(&name) {
            return Err(format!(
                "--name '{name}': use 1 to 64 visible ASCII characters, no spaces"
            ));
        }
        let site = match &config.root {
            Some(dir) => Site::root(dir)?,
            None => Site::embedded(&name),
        };
        let shared = Arc::new(Shared {
            name: name.into(),
            site: Arc::new(site),
            requests: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let mut handles = Vec::with_capacity(workers);
        for (i, listener) in listeners.into_iter().enumerate() {
            let poll = Poll::new().map_err(|e| format!("cannot create an event loop: {e}"))?;
            let waker = Arc::new(
                Waker::new(poll.registry(), worker::WAKER)
                    .map_err(|e| format!("cannot create an event loop waker: {e}"))?,
            );
            let w = worker::Worker::new(poll, listener, shared.clone())
                .map_err(|e| format!("cannot start worker {i}: {e}"))?;
            let handle = std::thread::Builder::new()
                .name(format!("origin-worker-{i}"))
                .spawn(move || w.run())
                .map_err(|e| format!("cannot start worker thread {i}: {e}"))?;
            handles.push((handle, waker));
        }
        Ok(Origin {
            shared,
            workers: handles,
            addr,
        })
    }

    /// The address clients connect to (the real port when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Stops accepting, lets requests in flight finish (briefly), and joins the workers.
    pub fn shutdown(self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for (_, waker) in &self.workers {
            let _ = waker.wake();
        }
        for (handle, _) in self.workers {
            let _ = handle.join();
        }
    }
}
