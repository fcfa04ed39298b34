//! Concurrent cache lookups (issue 18, section 5): 1, 2, 4 and 8 threads each looking up hot keys
//! in one shared `Cache`, as the workers of a many-core pibl do for cache hits.
//!
//! Run: `cargo bench --bench cache_concurrency -- --measurement-time 3 --warm-up-time 1`.
//! Each iteration is one lookup by every thread, so criterion's time is the wall time of a round
//! of `threads` lookups and its throughput the aggregate lookups per second. Three key sets:
//! `64_keys` (each thread walks 64 hot keys from its own offset: different keys land in different
//! parts of the index), `1_key` (every thread looks up the same entry: its `Arc` count is one
//! shared cache line whatever the index does) and `64_misses` (keys never stored: the index alone,
//! without the `stat` of the body file that dominates a hit). A machine with fewer cores than
//! threads shows time-slicing, not contention; see `docs/performance.md`.

use std::hint::black_box;
use std::sync::Barrier;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use pibl::cache::{primary_key, Lookup};

#[path = "support/warm_cache.rs"]
mod warm_cache;
use warm_cache::warm_cache;

fn concurrent_lookups(c: &mut Criterion) {
    // Half the entries vary on Accept-Encoding, so the Vary match is on the path.
    let (cache, dir, now) = warm_cache("conc", true);
    let headers = [
        httparse::Header {
            name: "Host",
            value: b"bench.example",
        },
        httparse::Header {
            name: "Accept-Encoding",
            value: b"gzip, br",
        },
    ];
    // Keys built once: the bench measures the index, not `primary_key`.
    let hot: Vec<String> = (0..64)
        .map(|i| primary_key("bench.example", &format!("/item/{}?page=1", i * 97)))
        .collect();
    for k in &hot {
        assert!(matches!(cache.lookup(k, &headers, now), Lookup::Fresh(_)));
    }
    // Keys never stored: the index alone (shard lock and map probe), without the body file's
    // `stat` and the entry's `Arc` count that a hit adds.
    let missing: Vec<String> = (0..64)
        .map(|i| primary_key("bench.example", &format!("/none/{i}?page=1")))
        .collect();
    for k in &missing {
        assert!(matches!(cache.lookup(k, &headers, now), Lookup::Miss));
    }
    let mut g = c.benchmark_group("cache_concurrent_lookup");
    for (set, keys) in [
        ("64_keys", &hot[..]),
        ("1_key", &hot[..1]),
        ("64_misses", &missing[..]),
    ] {
        for threads in [1usize, 2, 4, 8] {
            g.throughput(Throughput::Elements(threads as u64));
            g.bench_with_input(BenchmarkId::new(set, threads), &threads, |b, &threads| {
                b.iter_custom(|iters| {
                    let start = Barrier::new(threads + 1);
                    std::thread::scope(|s| {
                        for t in 0..threads {
                            let (cache, start) = (&cache, &start);
                            s.spawn(move || {
                                start.wait();
                                let mut k = t * 7;
                                for _ in 0..iters {
                                    k = (k + 1) % keys.len();
                                    black_box(cache.lookup(&keys[k], &headers, now));
                                }
                            });
                        }
                        start.wait();
                        // Timed from the barrier to the last thread's join.
                        Instant::now()
                    })
                    .elapsed()
                })
            });
        }
    }
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, concurrent_lookups);
criterion_main!(benches);
