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

use crate::config::{BackendSpec, Balance, HashKey};
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
    /// `weight=`: least_conn compares requests in flight per unit of weight.
    weight: u32,
    /// Requests in flight to it, counted only in a `least_conn` pool (`counted`), so other
    /// pools pay nothing for it. Shared with the table a reload replaced (same pool, same
    /// address): the old table's requests still finishing count, and release, here too.
    in_flight: Arc<AtomicU32>,
    counted: bool,
    /// Its pool's `proxy_protocol`: each new connection to it begins with this header.
    pub proxy_protocol: Option<crate::net::proxy_protocol::Version>,
}

/// Down until a health probe succeeds.
pub const UNTIL_PROBED: u64 = u64::MAX;

/// Per-request rotations over a fixed set of backends, grouped in pools: every pool's backends
/// in one list (their health, stats and upstream connections are indexed by it), each pool a
/// rotation over its part of it.
#[derive(Debug)]
pub struct RoundRobin {
    backends: Vec<Backend>,
    pools: Vec<PoolRotation>,
    epoch: Instant,
    /// Consecutive failures that mark a backend down; 0: never by failures.
    max_fails: u32,
    fail_timeout_ms: u64,
}

/// One pool's rotation.
#[derive(Debug)]
pub struct PoolRotation {
    pub name: Box<str>,
    /// Its backends: `RoundRobin::backends[members]`.
    pub members: std::ops::Range<usize>,
    /// The primaries' order, as indices into the whole list: each backend once per unit of
    /// weight, interleaved as nginx's smooth weighted round robin does (for equal weights,
    /// simply in order), so a counter over it is the weighted rotation, lock-free.
    sequence: Vec<u16>,
    /// The `backup` backends, tried in order only when every primary is down.
    backups: Vec<u16>,
    next: AtomicUsize,
    choice: Choice,
}

/// How a pool chooses among its primaries that are up.
#[derive(Debug)]
enum Choice {
    /// The next in `sequence` (round robin, weighted).
    Rotation,
    /// The fewest requests in flight per unit of weight; ties go round robin.
    LeastConn,
    /// Consistent hashing: the first point of the ring at or after the key's hash (wrapping)
    /// whose backend is up, so a backend going down moves only its own keys.
    Hash { key: HashKey, ring: Vec<(u32, u16)> },
}

/// Points per unit of weight on a hash pool's ring.
const RING_POINTS_PER_WEIGHT: u32 = 160;

/// FNV-1a, mixed and cut to 32 bits: the hash of ring points and request keys (fast, stable across
/// builds and instances, so several pibl send a key to the same backend).
pub fn key_hash(bytes: &[u8]) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // MurmurHash3's finaliser: names that differ in their last bytes (ring points, ports)
    // would otherwise land close together on the ring.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h as u32
}

/// Longest weighted sequence one pool may have (weights are capped so that it fits).
const MAX_SEQUENCE: usize = 1 << 16;

impl PoolRotation {
    fn new(name: &str, specs: &[BackendSpec], start: usize, balance: &Balance) -> PoolRotation {
        let primaries: Vec<(usize, i64)> = specs
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.backup)
            .map(|(i, s)| (start + i, i64::from(s.weight.max(1))))
            .collect();
        let total: i64 = primaries.iter().map(|&(_, w)| w).sum();
        let length = (total as usize).min(MAX_SEQUENCE);
        let mut current = vec![0i64; primaries.len()];
        let mut sequence = Vec::with_capacity(length);
        for _ in 0..length {
            // nginx: every backend gains its weight, the largest is chosen and pays the total.
            let mut best = 0;
            for (k, &(_, w)) in primaries.iter().enumerate() {
                current[k] += w;
                if current[k] > current[best] {
                    best = k;
                }
            }
            current[best] -= total;
            sequence.push(primaries[best].0 as u16);
        }
        PoolRotation {
            name: Box::from(name),
            members: start..start + specs.len(),
            sequence,
            backups: (0..specs.len())
                .filter(|&i| specs[i].backup)
                .map(|i| (start + i) as u16)
                .collect(),
            next: AtomicUsize::new(0),
            choice: match balance {
                Balance::RoundRobin => Choice::Rotation,
                Balance::LeastConn => Choice::LeastConn,
                Balance::Hash(key) => {
                    let mut ring = Vec::new();
                    for (i, spec) in specs.iter().enumerate().filter(|(_, s)| !s.backup) {
                        for k in 0..RING_POINTS_PER_WEIGHT.saturating_mul(spec.weight.max(1)) {
                            let point = key_hash(format!("{}#{k}", spec.addr).as_bytes());
                            ring.push((point, (start + i) as u16));
                        }
                    }
                    ring.sort_unstable();
                    Choice::Hash {
                        key: key.clone(),
                        ring,
                    }
                }
            },
        }
    }
}

impl RoundRobin {
    /// One pool, [`crate::config::DEFAULT_POOL`], of `specs`.
    pub fn new(specs: &[BackendSpec]) -> RoundRobin {
        RoundRobin::with_pools(&[(crate::config::DEFAULT_POOL, specs, &Balance::RoundRobin)])
    }

    /// Every pool of `config`, in [`crate::config::Config::pool_names`] order (the indices
    /// the router gives).
    pub fn for_config(config: &crate::config::Config) -> RoundRobin {
        let mut pools: Vec<(&str, &[BackendSpec], &Balance)> = Vec::new();
        let mut proxy_protocol = Vec::new();
        if !config.backends.is_empty() {
            pools.push((
                crate::config::DEFAULT_POOL,
                &config.backends,
                &config.balance,
            ));
            proxy_protocol.push(config.backend_proxy_protocol);
        }
        for p in &config.pools {
            pools.push((&p.name, &p.backends, &p.balance));
            proxy_protocol.push(p.proxy_protocol);
        }
        let mut rr = RoundRobin::with_pools(&pools);
        for (pool, version) in rr.pools.iter().zip(proxy_protocol) {
            for b in rr
                .backends
                .get_mut(pool.members.clone())
                .unwrap_or_default()
            {
                b.proxy_protocol = version;
            }
        }
        rr
    }

    fn with_pools(pools: &[(&str, &[BackendSpec], &Balance)]) -> RoundRobin {
        let mut rotations = Vec::with_capacity(pools.len());
        let mut start = 0;
        for (name, specs, balance) in pools {
            rotations.push(PoolRotation::new(name, specs, start, balance));
            start += specs.len();
        }
        RoundRobin {
            pools: rotations,
            backends: pools
                .iter()
                .flat_map(|(_, specs, balance)| {
                    let counted = **balance == Balance::LeastConn;
                    specs.iter().map(move |s| (s, counted))
                })
                .map(|(s, counted)| Backend {
                    proxy_protocol: None,
                    weight: s.weight.max(1),
                    in_flight: Arc::default(),
                    counted,
                    name: s.name.clone(),
                    addr: s.addr,
                    tls_name: s.tls_name.clone(),
                    fails: AtomicU32::new(0),
                    down_until: AtomicU64::new(0),
                    down: AtomicBool::new(false),
                    stats: Arc::default(),
                })
                .collect(),
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
        for p in &mut self.pools {
            if let Some(o) = old.pools.iter().find(|o| o.name == p.name) {
                *p.next.get_mut() = o.next.load(Ordering::Relaxed);
            }
        }
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
        // least_conn's counts: per pool, since a backend in two pools is two backends.
        for p in &self.pools {
            let Some(o) = old.pools.iter().find(|o| o.name == p.name) else {
                continue;
            };
            for i in p.members.clone() {
                let addr = self.backends[i].addr;
                if let Some(j) = o.members.clone().find(|&j| old.backends[j].addr == addr) {
                    self.backends[i].in_flight = old.backends[j].in_flight.clone();
                }
            }
        }
        self
    }

    /// Records into `stats`, keyed by backend name, so a new backend list (config reload) built
    /// with the same `Stats` keeps the counters of the backends it keeps.
    /// A named pool's backends are counted as `POOL/NAME`, so a backend in two pools has
    /// two rows.
    pub fn with_stats(mut self, stats: &Stats) -> RoundRobin {
        for p in &self.pools {
            for b in &mut self.backends[p.members.clone()] {
                b.stats = if &*p.name == crate::config::DEFAULT_POOL {
                    stats.backend(&b.name)
                } else {
                    stats.backend(&format!("{}/{}", p.name, b.name))
                };
            }
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

    /// Whether backend `i` is out until a health probe succeeds (rather than for
    /// `fail_timeout` after failures): the status page's "down" against "excluded".
    pub fn is_down_until_probed(&self, i: usize) -> bool {
        self.backends[i].down_until.load(Ordering::Relaxed) == UNTIL_PROBED
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

    /// The pools, in the order the router indexes them.
    pub fn pools(&self) -> &[PoolRotation] {
        &self.pools
    }

    /// The pool backend `i` belongs to.
    pub fn pool_of(&self, i: usize) -> Option<&PoolRotation> {
        self.pools.iter().find(|p| p.members.contains(&i))
    }

    /// [`RoundRobin::pick_in`] the first pool (the only one of a flat config).
    pub fn pick(&self, exclude: u64) -> Option<usize> {
        self.pick_in(0, exclude, 0)
    }

    /// What pool `pool` hashes to choose (`None`: it does not hash).
    #[inline]
    pub fn hash_key(&self, pool: usize) -> Option<&HashKey> {
        match &self.pools.get(pool)?.choice {
            Choice::Hash { key, .. } => Some(key),
            _ => None,
        }
    }

    /// A backend of pool `pool` that is up and not in `exclude` (a bit per backend index, for
    /// the ones this request already failed on), chosen as the pool balances (`key`: the
    /// request's [`key_hash`] when it hashes); when no primary is, the first backup that is.
    /// When every allowed backend of the pool is down, the one down longest (its `down_until`
    /// earliest) is tried anyway. `None` when every backend is excluded (or there is no such
    /// pool). Give the choice back with [`RoundRobin::release`] when the request is done with
    /// it.
    pub fn pick_in(&self, pool: usize, exclude: u64, key: u32) -> Option<usize> {
        let p = self.pools.get(pool)?;
        let allowed = |i: usize| i >= 64 || exclude & (1 << i) == 0;
        // The clock is read only when a backend has been down (`down_until` 0 means it never
        // was, or has answered since): a pick with every backend up costs no clock read.
        let now = std::cell::Cell::new(0);
        let usable = |i: usize| {
            let until = self.backends[i].down_until.load(Ordering::Relaxed);
            allowed(i)
                && (until == 0 || {
                    if now.get() == 0 {
                        now.set(self.now_ms());
                    }
                    until <= now.get()
                })
        };
        let chosen = match &p.choice {
            Choice::Rotation => {
                let n = p.sequence.len();
                (0..n)
                    .map(|_| p.sequence[p.next.fetch_add(1, Ordering::Relaxed) % n] as usize)
                    .find(|&i| usable(i))
            }
            Choice::LeastConn => {
                // Start the scan at a rotating position, so ties spread round robin.
                let n = p.sequence.len().max(1);
                let start = p.next.fetch_add(1, Ordering::Relaxed) % n;
                let mut best: Option<(usize, u64, u64)> = None;
                for k in 0..p.sequence.len() {
                    let i = p.sequence[(start + k) % n] as usize;
                    if !usable(i) {
                        continue;
                    }
                    let b = &self.backends[i];
                    let (load, weight) = (
                        u64::from(b.in_flight.load(Ordering::Relaxed)),
                        u64::from(b.weight),
                    );
                    // load / weight < best_load / best_weight, without division.
                    if best.is_none_or(|(_, l, w)| load * w < l * weight) {
                        best = Some((i, load, weight));
                    }
                }
                best.map(|(i, _, _)| i)
            }
            Choice::Hash { ring, .. } => {
                let at = ring.partition_point(|&(point, _)| point < key);
                (0..ring.len())
                    .map(|k| ring[(at + k) % ring.len()].1 as usize)
                    .find(|&i| usable(i))
            }
        };
        let chosen = chosen
            .or_else(|| p.backups.iter().map(|&b| b as usize).find(|&b| usable(b)))
            .or_else(|| {
                p.members
                    .clone()
                    .filter(|&i| allowed(i))
                    .min_by_key(|&i| self.backends[i].down_until.load(Ordering::Relaxed))
            })?;
        let b = &self.backends[chosen];
        if b.counted {
            b.in_flight.fetch_add(1, Ordering::Relaxed);
        }
        Some(chosen)
    }

    /// The request that [`RoundRobin::pick_in`] gave backend `i` is done with it.
    #[inline]
    pub fn release(&self, i: usize) {
        if let Some(b) = self.backends.get(i).filter(|b| b.counted) {
            b.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Requests in flight to backend `i` (counted in `least_conn` pools only).
    pub fn in_flight(&self, i: usize) -> u32 {
        self.backends[i].in_flight.load(Ordering::Relaxed)
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
                weight: 1,
                backup: false,
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
                weight: 1,
                backup: false,
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

    fn pool(balance: &Balance, weights: &[(u32, bool)]) -> RoundRobin {
        let specs: Vec<BackendSpec> = weights
            .iter()
            .enumerate()
            .map(|(i, &(weight, backup))| BackendSpec {
                name: format!("b{i}"),
                addr: SocketAddr::from(([127, 0, 0, 1], 9100 + i as u16)),
                weight,
                backup,
                tls_name: None,
            })
            .collect();
        RoundRobin::with_pools(&[("p", &specs, balance)]).with_failover(1, Duration::from_secs(60))
    }

    #[test]
    fn smooth_weights_interleave_as_nginx() {
        let r = pool(&Balance::RoundRobin, &[(5, false), (1, false), (1, false)]);
        let order: Vec<usize> = (0..7).map(|_| r.pick(0).unwrap()).collect();
        assert_eq!(order, [0, 0, 1, 0, 2, 0, 0]);
    }

    #[test]
    fn backups_only_when_every_primary_is_down() {
        let r = pool(&Balance::RoundRobin, &[(1, false), (1, true)]);
        assert!((0..4).all(|_| r.pick(0) == Some(0)));
        r.report_failure(0, "test");
        assert!((0..4).all(|_| r.pick(0) == Some(1)));
        r.report_success(0);
        assert!((0..4).all(|_| r.pick(0) == Some(0)));
    }

    #[test]
    fn least_conn_counts_until_released() {
        let r = pool(&Balance::LeastConn, &[(1, false), (1, false)]);
        let a = r.pick_in(0, 0, 0).unwrap();
        let b = r.pick_in(0, 0, 0).unwrap();
        assert_ne!(a, b, "the busy one is avoided");
        r.release(a);
        assert_eq!(r.pick_in(0, 0, 0), Some(a));
        assert_eq!((r.in_flight(a), r.in_flight(b)), (1, 1));
    }

    #[test]
    fn least_conn_counts_carry_over_a_reload() {
        let old = pool(&Balance::LeastConn, &[(1, false), (1, false)]);
        let a = old.pick_in(0, 0, 0).unwrap();
        // The reloaded table sees the request still in flight on the old one...
        let new = pool(&Balance::LeastConn, &[(1, false), (1, false)]).inherit(&old, false);
        assert_eq!(new.in_flight(a), 1);
        assert_ne!(new.pick_in(0, 0, 0), Some(a), "the busy one is avoided");
        // ...and its end, released on the old table.
        old.release(a);
        assert_eq!(new.in_flight(a), 0);
    }

    #[test]
    fn a_down_backend_moves_only_its_keys() {
        let r = pool(
            &Balance::Hash(HashKey::Uri),
            &[(1, false), (1, false), (1, false)],
        );
        let keys: Vec<u32> = (0..1000)
            .map(|k| key_hash(format!("/k{k}").as_bytes()))
            .collect();
        let before: Vec<usize> = keys.iter().map(|&k| r.pick_in(0, 0, k).unwrap()).collect();
        let mut share = [0; 3];
        for &b in &before {
            share[b] += 1;
        }
        assert!(share.iter().all(|&n| n > 200), "{share:?}");
        r.report_failure(1, "test");
        for (&k, &was) in keys.iter().zip(&before) {
            let now = r.pick_in(0, 0, k).unwrap();
            if was == 1 {
                assert_ne!(now, 1);
            } else {
                assert_eq!(now, was, "a key of an up backend stays");
            }
        }
    }
}
