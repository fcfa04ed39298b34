//! Choosing a backend: round robin, per request, shared by every worker.
//!
//! One atomic counter serves all workers, so the rotation is exact across connections and
//! threads: 300 requests over 3 healthy backends give 100 each, however clients connect.
//!
//! Health is per backend and lock-free too: consecutive failures (`fails`) and the instant, in
//! milliseconds since the rotation was made, until which the backend is skipped (`down_until`).
//! Failures are reported by the sessions (passive) and by the health-check thread (active); a
//! backend that answers is up again. When every backend a request may use is down, it is tried
//! anyway (the one that has been down longest first) rather than failing without trying.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::BackendSpec;
use crate::stats::{BackendStats, Stats};

/// One upstream server and what the proxy has seen of it.
#[derive(Debug)]
pub struct Backend {
    pub name: String,
    pub addr: SocketAddr,
    /// A TLS backend's server name (SNI, and what its certificate must name); `None`: plain.
    pub tls_name: Option<rustls::pki_types::ServerName<'static>>,
    /// Failures in a row (reset by any good answer).
    fails: AtomicU32,
    /// Skipped by the rotation until this many ms after `RoundRobin::epoch`; 0 when up.
    down_until: AtomicU64,
    /// Marked down and not yet seen answering again (for logging each change once).
    down: AtomicBool,
    /// Counters for the admin listener, shared by name with [`Stats`] (see `with_stats`).
    pub stats: Arc<BackendStats>,
}

/// Down until a health probe succeeds.
pub const UNTIL_PROBED: u64 = u64::MAX;

/// A per-request round-robin rotation over a fixed set of backends.
#[derive(Debug)]
pub struct RoundRobin {
    backends: Vec<Backend>,
    next: AtomicUsize,
    epoch: Instant,
    /// Consecutive failures that mark a backend down; 0: never by failures.
    max_fails: u32,
    fail_timeout_ms: u64,
}

impl RoundRobin {
    pub fn new(specs: &[BackendSpec]) -> RoundRobin {
        RoundRobin {
            backends: specs
                .iter()
                .map(|s| Backend {
                    name: s.name.clone(),
                    addr: s.addr,
                    tls_name: s.tls_name.clone(),
                    fails: AtomicU32::new(0),
                    down_until: AtomicU64::new(0),
                    down: AtomicBool::new(false),
                    stats: Arc::default(),
                })
                .collect(),
            next: AtomicUsize::new(0),
            epoch: Instant::now(),
            max_fails: 3,
            fail_timeout_ms: 10_000,
        }
    }

    /// Sets when failures mark a backend down (`max_fails` in a row, 0 = never) and for how long.
    pub fn with_failover(mut self, max_fails: u32, fail_timeout: Duration) -> RoundRobin {
        self.max_fails = max_fails;
        self.fail_timeout_ms = fail_timeout.as_millis().min(u64::MAX as u128 / 2) as u64;
        self
    }

    /// Carries over, from the rotation this one replaces (a reload), what was learnt about the
    /// backends still listed (same address): failures in a row, down state and the
    /// rotation position, so a reload neither forgets a dead backend nor resets the rotation.
    /// Without `probing` (no `health_check` any more), a mark "down until a probe succeeds"
    /// becomes an ordinary `fail_timeout`, since no probe will ever lift it.
    pub fn inherit(mut self, old: &RoundRobin, probing: bool) -> RoundRobin {
        self.epoch = old.epoch;
        self.next
            .store(old.next.load(Ordering::Relaxed), Ordering::Relaxed);
        let now = self.now_ms();
        for b in &mut self.backends {
            let Some(o) = old.backends.iter().find(|o| o.addr == b.addr) else {
                continue;
            };
            let mut until = o.down_until.load(Ordering::Relaxed);
            if until == UNTIL_PROBED && !probing {
                until = now.saturating_add(self.fail_timeout_ms);
            }
            *b.down_until.get_mut() = until;
            *b.fails.get_mut() = o.fails.load(Ordering::Relaxed);
            *b.down.get_mut() = o.down.load(Ordering::Relaxed);
        }
        self
    }

    /// Records into `stats`, keyed by backend name, so a new backend list (config reload) built
    /// with the same `Stats` keeps the counters of the backends it keeps.
    pub fn with_stats(mut self, stats: &Stats) -> RoundRobin {
        for b in &mut self.backends {
            b.stats = stats.backend(&b.name);
        }
        self
    }

    /// Milliseconds since the rotation was made, never 0.
    pub fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    /// Whether the rotation uses backend `i` now.
    pub fn is_up(&self, i: usize) -> bool {
        self.backends[i].down_until.load(Ordering::Relaxed) <= self.now_ms()
    }

    /// A request to backend `i` failed (connect, reset, timeout, bad answer).
    pub fn report_failure(&self, i: usize, why: &str) {
        let b = &self.backends[i];
        if self.max_fails == 0 {
            return;
        }
        let n = b.fails.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        if n >= self.max_fails {
            let until = self.now_ms().saturating_add(self.fail_timeout_ms);
            b.down_until.fetch_max(until, Ordering::Relaxed);
            if !b.down.swap(true, Ordering::Relaxed) {
                log::warn!(
                    "backend {} is down: {why} ({} in a row); skipped for {} ms",
                    b.name,
                    crate::text::counted(n as usize, "failure", "failures"),
                    self.fail_timeout_ms
                );
            }
        }
    }

    /// A health probe of backend `i` failed: down until a probe succeeds.
    pub fn mark_down(&self, i: usize, why: &str) {
        let b = &self.backends[i];
        b.down_until.store(UNTIL_PROBED, Ordering::Relaxed);
        if !b.down.swap(true, Ordering::Relaxed) {
            log::warn!("backend {} is down: {why}", b.name);
        }
    }

    /// Backend `i` answered: it is up, and its failure count starts again.
    pub fn report_success(&self, i: usize) {
        let b = &self.backends[i];
        if b.fails.load(Ordering::Relaxed) != 0 {
            b.fails.store(0, Ordering::Relaxed);
        }
        if b.down.load(Ordering::Relaxed) {
            b.down_until.store(0, Ordering::Relaxed);
            if b.down.swap(false, Ordering::Relaxed) {
                log::info!("backend {} is up again", b.name);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.backends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.backends.is_empty()
    }

    pub fn get(&self, index: usize) -> &Backend {
        &self.backends[index]
    }

    pub fn backends(&self) -> &[Backend] {
        &self.backends
    }

    /// The next backend in the rotation that is up and not in `exclude` (a bit per backend
    /// index, for the ones this request already failed on). When every allowed backend is down,
    /// the one down longest (its `down_until` earliest) is tried anyway. `None` when every
    /// backend is excluded.
    pub fn pick(&self, exclude: u64) -> Option<usize> {
        let n = self.backends.len();
        let allowed = |i: usize| i >= 64 || exclude & (1 << i) == 0;
        let now = self.now_ms();
        for _ in 0..n {
            let i = self.next.fetch_add(1, Ordering::Relaxed) % n;
            if allowed(i) && self.backends[i].down_until.load(Ordering::Relaxed) <= now {
                return Some(i);
            }
        }
        (0..n)
            .filter(|&i| allowed(i))
            .min_by_key(|&i| self.backends[i].down_until.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rr(n: u16) -> RoundRobin {
        let specs: Vec<BackendSpec> = (0..n)
            .map(|i| BackendSpec {
                name: format!("b{i}"),
                addr: SocketAddr::from(([127, 0, 0, 1], 9000 + i)),
                tls_name: None,
            })
            .collect();
        RoundRobin::new(&specs)
    }

    #[test]
    fn rotation_is_exact_across_threads() {
        let r = std::sync::Arc::new(rr(3));
        let counts: Vec<[usize; 3]> = (0..4)
            .map(|_| {
                let r = r.clone();
                std::thread::spawn(move || {
                    let mut c = [0; 3];
                    for _ in 0..75 {
                        c[r.pick(0).unwrap()] += 1;
                    }
                    c
                })
            })
            .map(|h| h.join().unwrap())
            .collect();
        let total: Vec<usize> = (0..3).map(|i| counts.iter().map(|c| c[i]).sum()).collect();
        assert_eq!(total, vec![100, 100, 100]);
    }

    #[test]
    fn excluded_backends_are_skipped_and_all_excluded_is_none() {
        let r = rr(3);
        for _ in 0..6 {
            assert_ne!(r.pick(0b010), Some(1));
        }
        assert_eq!(r.pick(0b111), None);
    }

    #[test]
    fn failures_mark_down_and_rotation_stays_exact_among_the_healthy() {
        let r = rr(3).with_failover(2, Duration::from_secs(60));
        r.report_failure(1, "test");
        assert!(r.is_up(1), "one failure of two allowed");
        r.report_success(1);
        r.report_failure(1, "test");
        assert!(r.is_up(1), "a success resets the count");
        r.report_failure(1, "test");
        assert!(!r.is_up(1));
        let mut c = [0; 3];
        for _ in 0..100 {
            c[r.pick(0).unwrap()] += 1;
        }
        assert_eq!(c, [50, 0, 50]);
        // Excluding the healthy ones leaves the down one, tried anyway.
        assert_eq!(r.pick(0b101), Some(1));
        r.report_success(1);
        assert!(r.is_up(1));
    }

    #[test]
    fn inherit_keeps_health_of_backends_whose_address_is_unchanged() {
        let old = rr(3).with_failover(1, Duration::from_secs(60));
        old.report_failure(1, "test");
        old.mark_down(2, "probe");
        assert!(!old.is_up(1));
        // New list: 9001 stays (down), 9002 stays (probe mark), 9000 leaves, 9005 is new.
        let specs: Vec<BackendSpec> = [9005u16, 9001, 9002]
            .iter()
            .map(|p| BackendSpec {
                name: format!("n{p}"),
                addr: SocketAddr::from(([127, 0, 0, 1], *p)),
                tls_name: None,
            })
            .collect();
        let new = RoundRobin::new(&specs)
            .with_failover(1, Duration::from_secs(60))
            .inherit(&old, false);
        assert!(new.is_up(0), "a new backend starts up");
        assert!(!new.is_up(1), "a down backend stays down across a reload");
        assert!(!new.is_up(2));
        assert_ne!(
            new.backends[2].down_until.load(Ordering::Relaxed),
            UNTIL_PROBED,
            "without health checks a probe mark becomes a timed one"
        );
        for _ in 0..10 {
            assert_eq!(new.pick(0), Some(0));
        }
    }

    #[test]
    fn all_down_still_tries_the_one_down_longest_and_zero_disables() {
        let r = rr(2).with_failover(1, Duration::from_secs(60));
        r.report_failure(1, "test");
        std::thread::sleep(Duration::from_millis(5));
        r.report_failure(0, "test");
        for _ in 0..4 {
            assert_eq!(r.pick(0), Some(1));
        }
        r.mark_down(1, "probe");
        assert_eq!(r.pick(0), Some(0));
        let off = rr(2).with_failover(0, Duration::from_secs(60));
        for _ in 0..10 {
            off.report_failure(0, "test");
        }
        assert!(off.is_up(0));
    }
}
