//! The last minutes as numbers: fixed rings of samples the admin thread takes from the
//! lock-free counters (`src/stats.rs`), for the status page's charts and `/status?json`.
//!
//! Once a second the admin thread reads the counters and keeps the difference from the last
//! reading as one per-second sample ([`SECOND_SLOTS`]: five minutes); every ten seconds the ten
//! per-second samples are added up into one per-10-second sample ([`TEN_SECOND_SLOTS`]: an
//! hour). The workers do nothing more: the rings are the admin thread's own, and what they read
//! are the counters the workers bump anyway. A backend's latency for a sample is the p50/p99 of
//! the difference of its latency histogram, so a quiet second after a slow minute reads as
//! quiet.
//!
//! Memory is fixed: the global rings are allocated once, and each backend's rings when it is
//! first seen, for at most [`MAX_BACKEND_SERIES`] backends. Backends are keyed by pool and name,
//! so a reload that keeps a backend keeps its series; one a reload removes is kept (marked
//! absent) until it has been gone an hour, or its slot is needed.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::proxy::shared::Shared;
use crate::stats::HistogramSnapshot;

/// Per-second samples kept: five minutes.
pub const SECOND_SLOTS: usize = 300;
/// Per-10-second samples kept: one hour.
pub const TEN_SECOND_SLOTS: usize = 360;
/// Seconds in one roll-up sample.
pub const ROLL_UP: u64 = 10;
/// Backends with a series of their own; a config with more shows the first ones.
pub const MAX_BACKEND_SERIES: usize = 32;
/// Longest gap in the readings (the admin thread held up, the process stopped) spread over the
/// seconds it covers; after a longer one the rings start again.
const MAX_GAP: u64 = ROLL_UP * TEN_SECOND_SLOTS as u64;
/// A sample's latency when the backend answered nothing in it.
pub const NO_LATENCY: u32 = u32::MAX;

/// What the proxy as a whole did in one sample (a second or ten).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sample {
    /// Responses by status class, 1xx to 5xx.
    pub responses: [u32; 5],
    /// Failed attempts and 5xx of all backends (their `errors` counters).
    pub errors: u32,
    pub cache_hits: u32,
    pub cache_misses: u32,
    /// Client connections open: when the second was read; for ten seconds, the most of them.
    pub connections: u32,
    /// Bytes exchanges sent to clients and to backends (u64: ten seconds of a fast link pass
    /// 4 GiB).
    pub bytes_to_clients: u64,
    pub bytes_to_backends: u64,
}

impl Sample {
    pub fn requests(&self) -> u32 {
        self.responses
            .iter()
            .fold(0u32, |a, &n| a.saturating_add(n))
    }
}

/// Whether the rotation used a backend during a sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mark {
    /// Not in the config then (before a reload added it, or after one removed it).
    #[default]
    Absent,
    Up,
    /// Skipped for `fail_timeout` after `max_fails` failures in a row.
    Excluded,
    /// Failed its health probe: out until a probe succeeds.
    Down,
}

impl Mark {
    pub fn as_str(self) -> &'static str {
        match self {
            Mark::Absent => "absent",
            Mark::Up => "up",
            Mark::Excluded => "excluded",
            Mark::Down => "down",
        }
    }
}

/// One backend in one sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackendSample {
    pub requests: u32,
    pub errors: u32,
    /// Median and 99th percentile in microseconds; [`NO_LATENCY`] when it answered nothing.
    pub p50_us: u32,
    pub p99_us: u32,
    /// Its state when read (the worst of the ten seconds, for a roll-up).
    pub mark: Mark,
}

/// The newest `N` samples, one per step, without gaps: the sample of step `s` is at
/// `s % N` while `s` is among the newest `N` pushed.
#[derive(Debug)]
pub struct Ring<T, const N: usize> {
    slots: Box<[T; N]>,
    /// Steps held (up to `N`).
    len: usize,
    /// The step of the newest sample; meaningful when `len > 0`.
    newest: u64,
}

impl<T: Copy + Default, const N: usize> Ring<T, N> {
    pub fn new() -> Self {
        Ring {
            slots: Box::new([T::default(); N]),
            len: 0,
            newest: 0,
        }
    }

    /// Appends the sample of step `step`, which follows the newest (steps skipped in between
    /// hold the default); an older step is ignored.
    pub fn push(&mut self, step: u64, value: T) {
        if self.len > 0 {
            if step <= self.newest {
                return;
            }
            for skipped in (self.newest + 1..step).take(N) {
                self.slots[(skipped % N as u64) as usize] = T::default();
            }
            self.len = (self.len as u64 + (step - self.newest)).min(N as u64) as usize;
        } else {
            self.len = 1;
        }
        self.newest = step;
        self.slots[(step % N as u64) as usize] = value;
    }

    /// The sample of step `step`, if the ring still holds it.
    pub fn get(&self, step: u64) -> Option<&T> {
        let oldest = (self.newest + 1).checked_sub(self.len as u64)?;
        (self.len > 0 && step >= oldest && step <= self.newest)
            .then(|| &self.slots[(step % N as u64) as usize])
    }

    pub fn newest(&self) -> Option<u64> {
        (self.len > 0).then_some(self.newest)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }
}

impl<T: Copy + Default, const N: usize> Default for Ring<T, N> {
    fn default() -> Self {
        Ring::new()
    }
}

/// One backend as read at a tick.
#[derive(Debug, Clone)]
pub struct BackendReading<'a> {
    /// `None` in a flat config (its one implicit pool).
    pub pool: Option<&'a str>,
    pub name: &'a str,
    pub requests: u64,
    pub errors: u64,
    pub latency: HistogramSnapshot,
    pub mark: Mark,
}

/// The counters at one tick.
#[derive(Debug, Clone, Default)]
pub struct Reading<'a> {
    pub responses: [u64; 5],
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub connections: u64,
    pub bytes_to_clients: u64,
    pub bytes_to_backends: u64,
    pub backends: Vec<BackendReading<'a>>,
}

/// One backend's rings and the counters they are differences of.
#[derive(Debug)]
pub struct BackendSeries {
    pub pool: Option<String>,
    pub name: String,
    last_requests: u64,
    last_errors: u64,
    /// The histogram at the last tick, and at the last roll-up.
    last_latency: HistogramSnapshot,
    roll_up_latency: HistogramSnapshot,
    /// Its place in the config at the last tick it was listed (the pages' order).
    position: usize,
    /// The last second it was listed.
    last_listed: u64,
    pub seconds: Ring<BackendSample, SECOND_SLOTS>,
    pub tens: Ring<BackendSample, TEN_SECOND_SLOTS>,
}

impl BackendSeries {
    /// Whether this is the series of backend `name` of `pool`.
    fn is(&self, pool: Option<&str>, name: &str) -> bool {
        self.pool.as_deref() == pool && self.name == name
    }
}

/// Every ring, and the last reading they are differences from.
#[derive(Debug)]
pub struct Series {
    /// Second 0 starts here.
    epoch: Instant,
    /// The second of the last reading; `None` before the first.
    last_second: Option<u64>,
    last: Totals,
    pub seconds: Ring<Sample, SECOND_SLOTS>,
    pub tens: Ring<Sample, TEN_SECOND_SLOTS>,
    /// In config order, then the ones a reload removed.
    pub backends: Vec<BackendSeries>,
}

/// The global counters at the last reading.
#[derive(Debug, Clone, Copy, Default)]
struct Totals {
    responses: [u64; 5],
    cache_hits: u64,
    cache_misses: u64,
    bytes_to_clients: u64,
    bytes_to_backends: u64,
}

impl Totals {
    fn of(r: &Reading) -> Totals {
        Totals {
            responses: r.responses,
            cache_hits: r.cache_hits,
            cache_misses: r.cache_misses,
            bytes_to_clients: r.bytes_to_clients,
            bytes_to_backends: r.bytes_to_backends,
        }
    }
}

/// `total` spread evenly over `parts` seconds: part `k`'s share (they add up to `total`).
fn share64(total: u64, parts: u64, k: u64) -> u64 {
    let parts = u128::from(parts.max(1));
    let (total, k) = (u128::from(total), u128::from(k));
    let s = total * (k + 1) / parts - total * k / parts;
    u64::try_from(s).unwrap_or(u64::MAX)
}

/// [`share64`] as a count of one sample.
fn share(total: u64, parts: u64, k: u64) -> u32 {
    u32::try_from(share64(total, parts, k)).unwrap_or(u32::MAX)
}

fn micros(d: Option<Duration>) -> u32 {
    d.map_or(NO_LATENCY, |d| {
        u32::try_from(d.as_micros()).unwrap_or(NO_LATENCY - 1)
    })
}

impl Series {
    pub fn new(epoch: Instant) -> Series {
        Series {
            epoch,
            last_second: None,
            last: Totals::default(),
            seconds: Ring::new(),
            tens: Ring::new(),
            backends: Vec::new(),
        }
    }

    /// The second (since the epoch) `now` falls in.
    pub fn second_of(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_secs()
    }

    /// When the next second begins: the admin thread's next tick.
    pub fn next_tick(&self, now: Instant) -> Instant {
        self.epoch + Duration::from_secs(self.second_of(now) + 1)
    }

    /// Reads the counters of `shared` and, when a second has passed, adds its sample.
    pub fn sample(&mut self, shared: &Shared, now: Instant) {
        let second = self.second_of(now);
        if self.last_second.is_some_and(|last| second <= last) {
            return;
        }
        let settings = shared.settings();
        let rr = &settings.backends;
        let named_pools = !settings.config.pools.is_empty();
        let stats = &shared.stats;
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let reading = Reading {
            responses: stats.responses.each_ref().map(load),
            cache_hits: load(&stats.cache_hits),
            cache_misses: load(&stats.cache_misses),
            connections: shared.connections.load(Ordering::Relaxed) as u64,
            bytes_to_clients: load(&stats.bytes_to_clients),
            bytes_to_backends: load(&stats.bytes_to_backends),
            backends: rr
                .backends()
                .iter()
                .enumerate()
                .map(|(i, b)| BackendReading {
                    pool: rr
                        .pool_of(i)
                        .filter(|_| named_pools)
                        .map(|p| p.name.as_ref()),
                    name: &b.name,
                    requests: load(&b.stats.requests),
                    errors: load(&b.stats.errors),
                    latency: b.stats.latency.snapshot(),
                    mark: if rr.is_up(i) {
                        Mark::Up
                    } else if rr.is_down_until_probed(i) {
                        Mark::Down
                    } else {
                        Mark::Excluded
                    },
                })
                .collect(),
        };
        self.tick(second, &reading);
    }

    /// Folds `reading`, taken early in second `second`, into the rings: the difference from
    /// the last reading is the sample of the seconds from that one's to the one before this
    /// (spread evenly when the admin thread missed some). The first reading only sets where differences start. A second at or
    /// before the last one (a clock that went back) is ignored.
    pub fn tick(&mut self, second: u64, reading: &Reading) {
        let Some(last) = self.last_second else {
            self.start(second, reading);
            return;
        };
        if second <= last {
            return;
        }
        let gap = second - last;
        if gap > MAX_GAP {
            // Nothing useful to spread over an hour: start again.
            self.seconds.clear();
            self.tens.clear();
            for b in &mut self.backends {
                b.seconds.clear();
                b.tens.clear();
            }
            self.start(second, reading);
            return;
        }
        let t = Totals::of(reading);
        let diff = |now: u64, then: u64| now.saturating_sub(then);
        let responses: [u64; 5] =
            std::array::from_fn(|c| diff(t.responses[c], self.last.responses[c]));
        let (hits, misses) = (
            diff(t.cache_hits, self.last.cache_hits),
            diff(t.cache_misses, self.last.cache_misses),
        );
        let (to_clients, to_backends) = (
            diff(t.bytes_to_clients, self.last.bytes_to_clients),
            diff(t.bytes_to_backends, self.last.bytes_to_backends),
        );
        self.track_backends(second, reading);
        let mut errors = 0u64;
        for b in &mut self.backends {
            let listed = reading.backends.iter().find(|r| b.is(r.pool, r.name));
            let (requests, errs, latency, mark) = match listed {
                Some(r) => {
                    let d = r.latency.since(&b.last_latency);
                    let out = (
                        diff(r.requests, b.last_requests),
                        diff(r.errors, b.last_errors),
                        (micros(d.quantile(0.5)), micros(d.quantile(0.99))),
                        r.mark,
                    );
                    b.last_requests = r.requests;
                    b.last_errors = r.errors;
                    b.last_latency = r.latency.clone();
                    out
                }
                None => (0, 0, (NO_LATENCY, NO_LATENCY), Mark::Absent),
            };
            errors += errs;
            for k in 0..gap {
                b.seconds.push(
                    last + k,
                    BackendSample {
                        requests: share(requests, gap, k),
                        errors: share(errs, gap, k),
                        p50_us: latency.0,
                        p99_us: latency.1,
                        mark,
                    },
                );
            }
        }
        let connections = u32::try_from(reading.connections).unwrap_or(u32::MAX);
        for k in 0..gap {
            let s = last + k;
            self.seconds.push(
                s,
                Sample {
                    responses: responses.map(|n| share(n, gap, k)),
                    errors: share(errors, gap, k),
                    cache_hits: share(hits, gap, k),
                    cache_misses: share(misses, gap, k),
                    connections,
                    bytes_to_clients: share64(to_clients, gap, k),
                    bytes_to_backends: share64(to_backends, gap, k),
                },
            );
            if (s + 1) % ROLL_UP == 0 {
                self.roll_up(s / ROLL_UP, reading);
            }
        }
        self.last = t;
        self.last_second = Some(second);
    }

    fn start(&mut self, second: u64, reading: &Reading) {
        self.last = Totals::of(reading);
        self.last_second = Some(second);
        self.track_backends(second, reading);
        for b in &mut self.backends {
            if let Some(r) = reading.backends.iter().find(|r| b.is(r.pool, r.name)) {
                b.last_requests = r.requests;
                b.last_errors = r.errors;
                b.last_latency = r.latency.clone();
                b.roll_up_latency = r.latency.clone();
            }
        }
    }

    /// Adds a series for each backend listed for the first time, records where each listed
    /// one is, drops those gone for an hour, and keeps the list in config order.
    fn track_backends(&mut self, second: u64, reading: &Reading) {
        self.backends
            .retain(|b| second.saturating_sub(b.last_listed) <= MAX_GAP);
        for (position, r) in reading.backends.iter().enumerate() {
            if let Some(b) = self.backends.iter_mut().find(|b| b.is(r.pool, r.name)) {
                b.position = position;
                b.last_listed = second;
                continue;
            }
            if self.backends.len() >= MAX_BACKEND_SERIES {
                // Make room by dropping the one removed longest ago, if any was removed.
                let Some(gone) = self
                    .backends
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| b.last_listed < second)
                    .min_by_key(|(_, b)| b.last_listed)
                    .map(|(i, _)| i)
                else {
                    continue;
                };
                self.backends.remove(gone);
            }
            // Counting starts now: what it did before (its counters live on across reloads,
            // by name) is not this second's traffic.
            self.backends.push(BackendSeries {
                pool: r.pool.map(str::to_string),
                name: r.name.to_string(),
                last_requests: r.requests,
                last_errors: r.errors,
                last_latency: r.latency.clone(),
                roll_up_latency: r.latency.clone(),
                position,
                last_listed: second,
                seconds: Ring::new(),
                tens: Ring::new(),
            });
        }
        // Listed ones first, in config order; then the removed, most recently listed first.
        self.backends.sort_by_key(|b| {
            (
                std::cmp::Reverse(b.last_listed),
                if b.last_listed == second {
                    b.position
                } else {
                    0
                },
            )
        });
    }

    /// The ten seconds of roll-up step `ten` are in: add them up.
    fn roll_up(&mut self, ten: u64, reading: &Reading) {
        let seconds = ten * ROLL_UP..(ten + 1) * ROLL_UP;
        let mut sum = Sample::default();
        for s in seconds.clone() {
            if let Some(x) = self.seconds.get(s) {
                for (a, b) in sum.responses.iter_mut().zip(x.responses) {
                    *a = a.saturating_add(b);
                }
                sum.errors = sum.errors.saturating_add(x.errors);
                sum.cache_hits = sum.cache_hits.saturating_add(x.cache_hits);
                sum.cache_misses = sum.cache_misses.saturating_add(x.cache_misses);
                sum.connections = sum.connections.max(x.connections);
                sum.bytes_to_clients = sum.bytes_to_clients.saturating_add(x.bytes_to_clients);
                sum.bytes_to_backends = sum.bytes_to_backends.saturating_add(x.bytes_to_backends);
            }
        }
        self.tens.push(ten, sum);
        for b in &mut self.backends {
            let mut out = BackendSample {
                p50_us: NO_LATENCY,
                p99_us: NO_LATENCY,
                ..BackendSample::default()
            };
            for s in seconds.clone() {
                if let Some(x) = b.seconds.get(s) {
                    out.requests = out.requests.saturating_add(x.requests);
                    out.errors = out.errors.saturating_add(x.errors);
                    out.mark = out.mark.max(x.mark);
                }
            }
            if let Some(r) = reading.backends.iter().find(|r| b.is(r.pool, r.name)) {
                let d = r.latency.since(&b.roll_up_latency);
                out.p50_us = micros(d.quantile(0.5));
                out.p99_us = micros(d.quantile(0.99));
                b.roll_up_latency = r.latency.clone();
            }
            b.tens.push(ten, out);
        }
    }

    /// The newest `range` of samples, copied for one page.
    pub fn view(&self, range: Range) -> SeriesView {
        match range {
            Range::FiveMinutes => view(range, &self.seconds, &self.backends, |b| &b.seconds),
            Range::Hour => view(range, &self.tens, &self.backends, |b| &b.tens),
        }
    }
}

fn view<const N: usize>(
    range: Range,
    ring: &Ring<Sample, N>,
    backends: &[BackendSeries],
    rings: impl Fn(&BackendSeries) -> &Ring<BackendSample, N>,
) -> SeriesView {
    let Some(end) = ring.newest() else {
        return SeriesView {
            range,
            ..SeriesView::default()
        };
    };
    let steps = (end + 1 - ring.len() as u64)..=end;
    SeriesView {
        range,
        end_second: (end + 1) * range.step_seconds(),
        samples: steps.clone().filter_map(|s| ring.get(s).copied()).collect(),
        backends: backends
            .iter()
            .map(|b| BackendSeriesView {
                pool: b.pool.clone(),
                name: b.name.clone(),
                samples: steps
                    .clone()
                    .map(|s| rings(b).get(s).copied().unwrap_or_default())
                    .collect(),
            })
            .filter(|b| b.samples.iter().any(|s| s.mark != Mark::Absent))
            .collect(),
    }
}

/// What the page shows: the last five minutes by the second, or the last hour by ten seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Range {
    #[default]
    FiveMinutes,
    Hour,
}

impl Range {
    /// As in `?range=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Range::FiveMinutes => "5m",
            Range::Hour => "1h",
        }
    }

    pub fn parse(s: &str) -> Option<Range> {
        match s {
            "5m" => Some(Range::FiveMinutes),
            "1h" => Some(Range::Hour),
            _ => None,
        }
    }

    pub fn step_seconds(self) -> u64 {
        match self {
            Range::FiveMinutes => 1,
            Range::Hour => ROLL_UP,
        }
    }

    /// Samples across the whole range.
    pub fn slots(self) -> usize {
        match self {
            Range::FiveMinutes => SECOND_SLOTS,
            Range::Hour => TEN_SECOND_SLOTS,
        }
    }

    /// In words: "5 minutes", "hour".
    pub fn words(self) -> &'static str {
        match self {
            Range::FiveMinutes => "5 minutes",
            Range::Hour => "hour",
        }
    }
}

/// A range of samples copied out of the rings, oldest first, ending with the newest complete
/// step; shorter than the range while the proxy is young.
#[derive(Debug, Clone, Default)]
pub struct SeriesView {
    pub range: Range,
    /// Seconds since start at the end of the newest sample.
    pub end_second: u64,
    pub samples: Vec<Sample>,
    /// Backends present at some time in the range; samples aligned with `samples`.
    pub backends: Vec<BackendSeriesView>,
}

#[derive(Debug, Clone)]
pub struct BackendSeriesView {
    pub pool: Option<String>,
    pub name: String,
    pub samples: Vec<BackendSample>,
}

impl BackendSeriesView {
    /// `POOL/NAME`, or `NAME` in a flat config: as the tables name it.
    pub fn label(&self) -> String {
        match &self.pool {
            Some(p) => format!("{p}/{}", self.name),
            None => self.name.clone(),
        }
    }
}

#[cfg(test)]
#[path = "series_tests.rs"]
mod tests;
