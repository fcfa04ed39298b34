//! Live statistics for the admin listener (`/status`, `/metrics`).
//!
//! Everything on the request path is a relaxed atomic add: no lock, no allocation. One exchange
//! costs about nine adds ([`Stats::record_exchange`], [`Stats::record_bytes`] and
//! [`BackendStats::record`]). Readers (the admin thread) load the counters one by one, so a page
//! may mix values a few requests apart; that is fine for a status page and keeps the workers
//! free of any coordination with it.
//!
//! Per-backend statistics are kept by backend *name* in [`Stats`] and handed out as
//! `Arc<BackendStats>`, resolved once when a [`crate::balance::RoundRobin`] is built
//! (`RoundRobin::with_stats`). A config reload that builds a new backend list resolves the names
//! again and keeps the counters of backends that stay.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Seconds of history kept for the request rate; the rate shown covers the last
/// [`RATE_WINDOW`] complete seconds.
const RATE_SLOTS: usize = 8;
/// Complete seconds the request rate is averaged over.
pub const RATE_WINDOW: u64 = 5;

/// Upper bounds of the latency buckets, in nanoseconds: a decimal log scale (the R10 series,
/// ten steps per decade, about 26% apart) from 10 µs to 100 s. Fine enough for a median and p99
/// within ~13%, and every `1`, `2.5` and `5` step is a bucket bound, so the Prometheus
/// histogram ([`EXPOSED_BOUNDS`]) is exact, not interpolated.
pub const LATENCY_BOUNDS_NS: [u64; 71] = latency_bounds();
/// Buckets: one per bound, plus one for everything slower than the last bound.
const LATENCY_BUCKETS: usize = LATENCY_BOUNDS_NS.len() + 1;

const fn latency_bounds() -> [u64; 71] {
    // R10 preferred numbers, in hundredths.
    const STEPS: [u64; 10] = [100, 125, 160, 200, 250, 315, 400, 500, 630, 800];
    let mut out = [0u64; 71];
    let mut decade = 10_000u64; // 10 µs in ns
    let mut i = 0;
    while i < 70 {
        out[i] = decade * STEPS[i % 10] / 100;
        i += 1;
        if i % 10 == 0 {
            decade *= 10;
        }
    }
    out[70] = decade; // 100 s
    out
}

/// Indexes into [`LATENCY_BOUNDS_NS`] of the bounds exposed as Prometheus buckets (`le`): the
/// 1, 2.5 and 5 of every decade, 10 µs to 100 s.
pub fn exposed_bounds() -> impl Iterator<Item = usize> {
    (0..LATENCY_BOUNDS_NS.len()).filter(|i| i % 10 == 0 || i % 10 == 4 || i % 10 == 7)
}

/// TLS connections by how far they got, counted when they close.
#[derive(Debug, Default)]
pub struct TlsStats {
    /// The handshake completed.
    pub handshakes: AtomicU64,
    /// The handshake failed (unsupported version or cipher, a bad record, an alert).
    pub handshake_failures: AtomicU64,
    /// Closed before the handshake completed: stalled (the head deadline), or abandoned.
    pub handshakes_incomplete: AtomicU64,
    /// Plain HTTP sent to the TLS port (answered with a 400).
    pub plain_http: AtomicU64,
    /// Neither TLS nor HTTP.
    pub not_tls: AtomicU64,
}

/// HTTP/2 clients (issue 17): connections and streams, opened since start and open now.
#[derive(Debug, Default)]
pub struct H2Stats {
    pub connections: AtomicU64,
    pub connections_open: AtomicU64,
    pub streams: AtomicU64,
}

/// Response compression, per coding (indexed by `Coding::index`: br, zstd, gzip): the body
/// bytes that went into the encoder and the bytes that came out, added when a compressed
/// response ends (one add each per response).
#[derive(Debug, Default)]
pub struct CompressStats {
    pub bytes_in: [AtomicU64; 3],
    pub bytes_out: [AtomicU64; 3],
}

impl CompressStats {
    /// A compressed body ended: `before` bytes became `after`.
    pub fn record(&self, coding: crate::compress::Coding, before: u64, after: u64) {
        self.bytes_in[coding.index()].fetch_add(before, Ordering::Relaxed);
        self.bytes_out[coding.index()].fetch_add(after, Ordering::Relaxed);
    }

    /// (bytes before, bytes after) for one coding.
    pub fn totals(&self, coding: crate::compress::Coding) -> (u64, u64) {
        (
            self.bytes_in[coding.index()].load(Ordering::Relaxed),
            self.bytes_out[coding.index()].load(Ordering::Relaxed),
        )
    }
}

/// What all workers record into, and the admin listener reads.
#[derive(Debug)]
pub struct Stats {
    /// Exchanges finished (every access-log line, cache hits and proxy-made errors included).
    pub requests: AtomicU64,
    /// Responses by status class: 1xx, 2xx, 3xx, 4xx, 5xx (index 0 to 4).
    pub responses: [AtomicU64; 5],
    /// Client connections accepted since start.
    pub accepted: AtomicU64,
    /// Times a worker reached `max_connections` (or its `max_connections_per_worker` share) and
    /// stopped accepting; clients arriving meanwhile wait in the kernel backlog.
    pub max_connections_reached: AtomicU64,
    /// Milliseconds since `epoch` (plus one; 0: never) of the last "max_connections reached"
    /// event line, so the whole process writes at most one a second.
    limit_logged_ms: AtomicU64,
    pub cache_hits: AtomicU64,
    /// TLS connections as they closed, by how far they got.
    pub tls: TlsStats,
    /// Cache lookups that went to a backend (misses and revalidations).
    pub cache_misses: AtomicU64,
    /// Response compression: bytes before and after, per coding.
    pub compress: CompressStats,
    /// Bytes of exchanges: sent to clients (the access log's bytes), and sent to backends
    /// (request heads as rewritten, and bodies).
    pub bytes_to_clients: AtomicU64,
    pub bytes_to_backends: AtomicU64,
    pub h2: H2Stats,
    /// Requests per second: (second since `epoch`) << 32 | count, one slot per second mod
    /// `RATE_SLOTS`, so a slot is claimed for a new second with one compare-exchange.
    rate: [AtomicU64; RATE_SLOTS],
    epoch: Instant,
    /// Every backend ever resolved, by name; only locked when a backend list is built.
    backends: Mutex<BTreeMap<String, Arc<BackendStats>>>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

impl Stats {
    pub fn new() -> Stats {
        Stats {
            requests: AtomicU64::new(0),
            responses: Default::default(),
            accepted: AtomicU64::new(0),
            max_connections_reached: AtomicU64::new(0),
            limit_logged_ms: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            tls: TlsStats::default(),
            cache_misses: AtomicU64::new(0),
            compress: CompressStats::default(),
            bytes_to_clients: AtomicU64::new(0),
            bytes_to_backends: AtomicU64::new(0),
            h2: H2Stats::default(),
            rate: Default::default(),
            epoch: Instant::now(),
            backends: Mutex::default(),
        }
    }

    /// The statistics of the backend called `name`, created on first use. Call it when a
    /// backend list is built, not per request.
    pub fn backend(&self, name: &str) -> Arc<BackendStats> {
        let mut map = self.backends.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(name.to_string()).or_default().clone()
    }

    /// One finished exchange, with the status the client got; `now` is the worker's clock.
    /// `cache_hit`: `Some(true)` served from the cache, `Some(false)` the cache was consulted
    /// and a backend answered, `None` the cache was not involved.
    pub fn record_exchange(&self, status: u16, cache_hit: Option<bool>, now: Instant) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(class) = (status / 100).checked_sub(1) {
            if let Some(c) = self.responses.get(class as usize) {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
        match cache_hit {
            Some(true) => self.cache_hits.fetch_add(1, Ordering::Relaxed),
            Some(false) => self.cache_misses.fetch_add(1, Ordering::Relaxed),
            None => 0,
        };
        self.count_rate(now);
    }

    /// The bytes one exchange sent to its client and to backends.
    #[inline]
    pub fn record_bytes(&self, to_client: u64, to_backends: u64) {
        self.bytes_to_clients
            .fetch_add(to_client, Ordering::Relaxed);
        self.bytes_to_backends
            .fetch_add(to_backends, Ordering::Relaxed);
    }

    /// A TLS connection closed, in `phase` (counted once, when the worker drops it).
    pub fn tls_closed(&self, phase: crate::tls::stream::TlsPhase) {
        use crate::tls::stream::TlsPhase;
        let t = &self.tls;
        let counter = match phase {
            TlsPhase::Established => &t.handshakes,
            TlsPhase::Failed => &t.handshake_failures,
            TlsPhase::AwaitFirstByte | TlsPhase::Handshaking => &t.handshakes_incomplete,
            TlsPhase::PlainHttp => &t.plain_http,
            TlsPhase::NotTls => &t.not_tls,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A client connection turned into HTTP/2.
    pub fn h2_connection_opened(&self) {
        self.h2.connections.fetch_add(1, Ordering::Relaxed);
        self.h2.connections_open.fetch_add(1, Ordering::Relaxed);
    }

    pub fn h2_connection_closed(&self) {
        self.h2.connections_open.fetch_sub(1, Ordering::Relaxed);
    }

    /// A stream began (one request: its child session started).
    pub fn h2_stream_started(&self) {
        self.h2.streams.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_accepted(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a worker reaching its connection limit; whether to log it, which is true at most
    /// once a second across all workers (a busy proxy may sit at the limit for hours).
    pub fn max_connections_reached(&self, now: Instant) -> bool {
        self.max_connections_reached.fetch_add(1, Ordering::Relaxed);
        let ms = now.saturating_duration_since(self.epoch).as_millis() as u64 + 1;
        let last = self.limit_logged_ms.load(Ordering::Relaxed);
        (last == 0 || ms >= last + 1000)
            && self
                .limit_logged_ms
                .compare_exchange(last, ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    fn count_rate(&self, now: Instant) {
        let sec = now.saturating_duration_since(self.epoch).as_secs() & 0xffff_ffff;
        let slot = &self.rate[sec as usize % RATE_SLOTS];
        let mut seen = slot.load(Ordering::Relaxed);
        loop {
            if seen >> 32 == sec {
                slot.fetch_add(1, Ordering::Relaxed);
                return;
            }
            // The slot still holds a second RATE_SLOTS ago: claim it for this one.
            match slot.compare_exchange_weak(
                seen,
                sec << 32 | 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(v) => seen = v,
            }
        }
    }

    /// Requests per second over the last [`RATE_WINDOW`] complete seconds (fewer just after
    /// start).
    pub fn request_rate(&self, now: Instant) -> f64 {
        let sec = now.saturating_duration_since(self.epoch).as_secs();
        let window = RATE_WINDOW.min(sec);
        if window == 0 {
            return 0.0;
        }
        let total: u64 = (sec - window..sec)
            .map(|s| {
                let v = self.rate[s as usize % RATE_SLOTS].load(Ordering::Relaxed);
                if v >> 32 == s & 0xffff_ffff {
                    v & 0xffff_ffff
                } else {
                    0
                }
            })
            .sum();
        total as f64 / window as f64
    }
}

/// One backend's counters and latency histogram.
#[derive(Debug)]
pub struct BackendStats {
    /// Exchanges sent to it: the one that answered, and each backend tried before.
    pub requests: AtomicU64,
    /// Failed attempts (refused or timed-out connects, resets, response timeouts, invalid
    /// responses) and 5xx responses the client got from or for it.
    pub errors: AtomicU64,
    /// Time from the complete request head to the end of the response, for exchanges it
    /// answered.
    pub latency: Histogram,
}

impl Default for BackendStats {
    fn default() -> Self {
        BackendStats {
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            latency: Histogram::new(),
        }
    }
}

impl BackendStats {
    /// The backend answered this exchange (or was the last one tried).
    pub fn record(&self, error: bool, took: Duration) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if error {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        self.latency.record(took);
    }

    /// The backend was tried for this exchange and failed; another one answered.
    pub fn record_failed_attempt(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// A fixed log-scale histogram of durations, atomics only.
#[derive(Debug)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS],
    sum_ns: AtomicU64,
}

impl Histogram {
    pub fn new() -> Histogram {
        Histogram {
            buckets: [const { AtomicU64::new(0) }; LATENCY_BUCKETS],
            sum_ns: AtomicU64::new(0),
        }
    }

    pub fn record(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let i = LATENCY_BOUNDS_NS.partition_point(|&b| b < ns);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// A consistent-enough copy to compute from.
    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            buckets: self.buckets.each_ref().map(|b| b.load(Ordering::Relaxed)),
            sum_ns: self.sum_ns.load(Ordering::Relaxed),
        }
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

/// Bucket counts (not cumulative) read from a [`Histogram`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistogramSnapshot {
    pub buckets: [u64; LATENCY_BUCKETS],
    pub sum_ns: u64,
}

impl HistogramSnapshot {
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The observations made since `earlier` (a snapshot of the same histogram): the admin
    /// thread's per-second latency.
    pub fn since(&self, earlier: &HistogramSnapshot) -> HistogramSnapshot {
        HistogramSnapshot {
            buckets: std::array::from_fn(|i| self.buckets[i].saturating_sub(earlier.buckets[i])),
            sum_ns: self.sum_ns.saturating_sub(earlier.sum_ns),
        }
    }

    /// Observations at or below bound `i` of [`LATENCY_BOUNDS_NS`].
    pub fn cumulative(&self, i: usize) -> u64 {
        self.buckets[..=i].iter().sum()
    }

    /// The `q` quantile (0.5: median), interpolated linearly inside its bucket; `None` with no
    /// observations. Slower than the last bound reads as the last bound.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * count as f64).ceil().max(1.0) as u64;
        let mut below = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            if n > 0 && below + n >= rank {
                let Some(&hi) = LATENCY_BOUNDS_NS.get(i) else {
                    return Some(Duration::from_nanos(LATENCY_BOUNDS_NS[i - 1]));
                };
                let lo = if i == 0 { 0 } else { LATENCY_BOUNDS_NS[i - 1] };
                let frac = (rank - below) as f64 / n as f64;
                return Some(Duration::from_nanos(lo + ((hi - lo) as f64 * frac) as u64));
            }
            below += n;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_bytes_add_up_per_coding() {
        use crate::compress::Coding;
        let s = Stats::new();
        s.compress.record(Coding::Br, 100_000, 31_000);
        s.compress.record(Coding::Br, 50_000, 16_000);
        s.compress.record(Coding::Gzip, 10, 30);
        assert_eq!(s.compress.totals(Coding::Br), (150_000, 47_000));
        assert_eq!(s.compress.totals(Coding::Gzip), (10, 30));
        assert_eq!(s.compress.totals(Coding::Zstd), (0, 0));
    }

    #[test]
    fn bounds_are_increasing_and_exposed_ones_are_round() {
        assert!(LATENCY_BOUNDS_NS.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(LATENCY_BOUNDS_NS[0], 10_000);
        assert_eq!(*LATENCY_BOUNDS_NS.last().unwrap(), 100_000_000_000);
        let exposed: Vec<u64> = exposed_bounds().map(|i| LATENCY_BOUNDS_NS[i]).collect();
        assert_eq!(&exposed[..4], &[10_000, 25_000, 50_000, 100_000]);
        assert!(exposed.contains(&5_000_000), "le=0.005 is a bucket");
        assert_eq!(exposed.last(), Some(&100_000_000_000));
    }

    #[test]
    fn quantiles_land_in_the_right_bucket() {
        let h = Histogram::new();
        assert_eq!(h.snapshot().quantile(0.5), None);
        for _ in 0..98 {
            h.record(Duration::from_millis(2));
        }
        h.record(Duration::from_millis(300));
        h.record(Duration::from_secs(1000));
        let s = h.snapshot();
        assert_eq!(s.count(), 100);
        let median = s.quantile(0.5).unwrap();
        assert!(
            median > Duration::from_micros(1600) && median <= Duration::from_millis(2),
            "{median:?}"
        );
        let p99 = s.quantile(0.99).unwrap();
        assert!(
            p99 > Duration::from_millis(250) && p99 <= Duration::from_millis(315),
            "{p99:?}"
        );
        assert_eq!(s.quantile(1.0), Some(Duration::from_secs(100)));
        assert_eq!(s.cumulative(LATENCY_BOUNDS_NS.len()), 100);
    }

    #[test]
    fn backend_stats_are_shared_by_name() {
        let s = Stats::new();
        let a = s.backend("a:1");
        a.record(false, Duration::from_millis(1));
        assert_eq!(s.backend("a:1").requests.load(Ordering::Relaxed), 1);
        assert_eq!(s.backend("b:1").requests.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn rate_counts_complete_seconds_only() {
        let s = Stats::new();
        let t0 = s.epoch;
        for _ in 0..10 {
            s.record_exchange(200, None, t0 + Duration::from_millis(500));
        }
        for _ in 0..20 {
            s.record_exchange(503, Some(false), t0 + Duration::from_millis(1500));
        }
        // At 1.9 s only second 0 is complete.
        assert_eq!(s.request_rate(t0 + Duration::from_millis(1900)), 10.0);
        assert_eq!(s.request_rate(t0 + Duration::from_millis(2100)), 15.0);
        // Ten seconds later the slots are stale and count for nothing.
        assert_eq!(s.request_rate(t0 + Duration::from_secs(12)), 0.0);
        // A slot is reused for a new second.
        s.record_exchange(200, Some(true), t0 + Duration::from_millis(8100));
        assert_eq!(s.request_rate(t0 + Duration::from_millis(9000)), 0.2);
        assert_eq!(s.requests.load(Ordering::Relaxed), 31);
        assert_eq!(s.responses[4].load(Ordering::Relaxed), 20);
        assert_eq!(s.cache_hits.load(Ordering::Relaxed), 1);
        assert_eq!(s.cache_misses.load(Ordering::Relaxed), 20);
    }
}
