use super::*;
use crate::stats::Histogram;

fn reading<'a>(ok: u64, backends: Vec<BackendReading<'a>>) -> Reading<'a> {
    Reading {
        responses: [0, ok, 0, 0, 0],
        cache_hits: 0,
        cache_misses: 0,
        connections: 3,
        bytes_to_clients: ok * 100,
        bytes_to_backends: ok * 10,
        backends,
    }
}

fn backend<'a>(name: &'a str, requests: u64, latency: &Histogram) -> BackendReading<'a> {
    BackendReading {
        pool: Some("app"),
        name,
        requests,
        errors: 0,
        latency: latency.snapshot(),
        mark: Mark::Up,
    }
}

#[test]
fn memory_is_fixed_and_small() {
    use std::mem::size_of;
    let global = (SECOND_SLOTS + TEN_SECOND_SLOTS) * size_of::<Sample>();
    let backend = (SECOND_SLOTS + TEN_SECOND_SLOTS) * size_of::<BackendSample>()
        + 2 * size_of::<HistogramSnapshot>();
    assert!(global <= 37 * 1024, "{global}");
    assert!(backend <= 14 * 1024 + 512, "{backend}");
}

#[test]
fn ring_wraps_around_keeping_the_newest() {
    let mut r: Ring<u32, 4> = Ring::new();
    assert_eq!(r.get(0), None);
    for s in 10..17 {
        r.push(s, s as u32);
    }
    assert_eq!(r.len(), 4);
    assert_eq!(r.newest(), Some(16));
    assert_eq!(r.get(12), None, "overwritten");
    assert_eq!(r.get(13), Some(&13));
    assert_eq!(r.get(16), Some(&16));
    assert_eq!(r.get(17), None);
    r.push(15, 99); // older than the newest: ignored
    assert_eq!(r.get(15), Some(&15));
    r.push(18, 18); // 17 skipped: default
    assert_eq!(r.get(17), Some(&0));
    r.push(1000, 1); // far ahead: only it is left of the old
    assert_eq!(
        (r.get(999), r.get(1000), r.get(18)),
        (Some(&0), Some(&1), None)
    );
}

#[test]
fn seconds_are_differences_and_ten_roll_up_into_one() {
    let mut s = Series::new(Instant::now());
    s.tick(0, &reading(0, vec![]));
    assert!(s.seconds.is_empty());
    for second in 1..=25u64 {
        s.tick(second, &reading(second * 2, vec![]));
    }
    assert_eq!(s.seconds.get(0).map(|x| x.responses[1]), Some(2));
    assert_eq!(s.seconds.get(24).map(|x| x.requests()), Some(2));
    assert_eq!(s.seconds.newest(), Some(24));
    assert_eq!(s.tens.newest(), Some(1));
    assert_eq!(s.tens.get(0).map(|x| x.requests()), Some(20));
    assert_eq!(s.tens.get(1).map(|x| x.requests()), Some(20));
    assert_eq!(s.tens.get(1).map(|x| x.connections), Some(3));
    assert_eq!(s.tens.get(1).map(|x| x.bytes_to_clients), Some(2000));
    assert_eq!(s.seconds.get(3).map(|x| x.bytes_to_backends), Some(20));
    let v = s.view(Range::Hour);
    assert_eq!((v.samples.len(), v.end_second), (2, 20));
    let v = s.view(Range::FiveMinutes);
    assert_eq!((v.samples.len(), v.end_second), (25, 25));
}

#[test]
fn a_missed_second_is_spread_and_a_clock_going_back_is_ignored() {
    let mut s = Series::new(Instant::now());
    s.tick(5, &reading(0, vec![]));
    s.tick(6, &reading(10, vec![]));
    s.tick(9, &reading(17, vec![])); // readings of 7 and 8 missed: 7 over three seconds
    let got: Vec<u32> = (5..=8)
        .filter_map(|x| s.seconds.get(x).map(|x| x.requests()))
        .collect();
    assert_eq!(got, vec![10, 2, 2, 3]);
    s.tick(3, &reading(1000, vec![])); // back in time: nothing
    s.tick(9, &reading(1000, vec![]));
    assert_eq!(s.seconds.newest(), Some(8));
    s.tick(10, &reading(1000, vec![]));
    assert_eq!(s.seconds.get(9).map(|x| x.requests()), Some(983));
    // A gap of more than an hour starts again.
    s.tick(10 + MAX_GAP + 1, &reading(2000, vec![]));
    assert!(s.seconds.is_empty() && s.tens.is_empty());
    s.tick(12 + MAX_GAP, &reading(2001, vec![]));
    assert_eq!(s.seconds.len(), 1);
}

#[test]
fn backend_latency_is_of_the_second_and_a_new_backend_joins_later() {
    let (ha, hb) = (Histogram::new(), Histogram::new());
    let mut s = Series::new(Instant::now());
    s.tick(0, &reading(0, vec![backend("a", 0, &ha)]));
    for _ in 0..10 {
        ha.record(Duration::from_millis(100));
    }
    s.tick(1, &reading(10, vec![backend("a", 10, &ha)]));
    ha.record(Duration::from_millis(2));
    s.tick(2, &reading(11, vec![backend("a", 11, &ha)]));
    let a = &s.backends[0];
    let p50 = a.seconds.get(1).map(|x| x.p50_us).unwrap_or(0);
    assert!((1_600..=2_000).contains(&p50), "only this second's: {p50}");
    assert_eq!(a.seconds.get(0).map(|x| x.requests), Some(10));
    // A reload adds b (its counters already count 50 from before: not this second's).
    for _ in 0..3 {
        hb.record(Duration::from_millis(5));
    }
    let b_reading = |n| backend("b", n, &hb);
    s.tick(3, &reading(11, vec![b_reading(50), backend("a", 11, &ha)]));
    s.tick(4, &reading(13, vec![b_reading(52), backend("a", 11, &ha)]));
    assert_eq!(s.backends[0].name, "b", "config order");
    assert_eq!(s.backends[0].seconds.get(3).map(|x| x.requests), Some(2));
    assert_eq!(s.backends[0].seconds.get(1), None, "not there before");
    assert_eq!(
        s.backends[0].seconds.get(3).map(|x| x.p50_us),
        Some(NO_LATENCY)
    );
    // a is removed by a reload: absent, kept until an hour passes.
    s.tick(5, &reading(13, vec![b_reading(52)]));
    assert_eq!(s.backends[1].name, "a");
    assert_eq!(s.backends[1].seconds.get(3).map(|x| x.mark), Some(Mark::Up));
    assert_eq!(
        s.backends[1].seconds.get(4).map(|x| x.mark),
        Some(Mark::Absent)
    );
    let v = s.view(Range::FiveMinutes);
    assert_eq!(v.backends.len(), 2);
    assert_eq!(v.backends[0].label(), "app/b");
    assert_eq!(v.backends[0].samples.len(), v.samples.len());
    assert_eq!(v.backends[0].samples[0].mark, Mark::Absent);
    s.tick(5 + MAX_GAP, &reading(13, vec![b_reading(52)]));
    s.tick(6 + MAX_GAP, &reading(13, vec![b_reading(52)]));
    assert_eq!(s.backends.len(), 1, "a dropped after an hour away");
}

#[test]
fn backend_series_are_bounded() {
    let h = Histogram::new();
    let names: Vec<String> = (0..MAX_BACKEND_SERIES + 5)
        .map(|i| format!("b{i}"))
        .collect();
    let all: Vec<BackendReading> = names.iter().map(|n| backend(n, 0, &h)).collect();
    let mut s = Series::new(Instant::now());
    s.tick(0, &reading(0, all.clone()));
    s.tick(1, &reading(0, all));
    assert_eq!(s.backends.len(), MAX_BACKEND_SERIES);
    // A reload to other backends: the removed make room.
    let fresh: Vec<BackendReading> = names[..3]
        .iter()
        .map(|n| BackendReading {
            pool: None,
            ..backend(n, 0, &h)
        })
        .collect();
    s.tick(2, &reading(0, fresh));
    assert_eq!(s.backends.len(), MAX_BACKEND_SERIES);
    assert_eq!(
        (s.backends[0].pool.as_deref(), s.backends[0].name.as_str()),
        (None, "b0")
    );
}

#[test]
fn roll_up_marks_the_worst_state_and_its_own_latency() {
    let h = Histogram::new();
    let mut s = Series::new(Instant::now());
    s.tick(9, &reading(0, vec![backend("a", 0, &h)]));
    for second in 10..20u64 {
        h.record(Duration::from_millis(second));
        let mut b = backend("a", second - 9, &h);
        if second == 14 {
            b.mark = Mark::Excluded;
        }
        s.tick(second, &reading(second - 9, vec![b]));
    }
    s.tick(20, &reading(11, vec![backend("a", 11, &h)]));
    let ten = s.backends[0].tens.get(1).copied().unwrap_or_default();
    assert_eq!(ten.mark, Mark::Excluded);
    assert_eq!(ten.requests, 10);
    assert!(ten.p99_us >= 15_000 && ten.p99_us <= 20_000, "{ten:?}");
}
