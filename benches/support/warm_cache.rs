//! A cache warmed with 10,000 small entries, for the benches that measure lookups
//! (`hot_paths`'s `cache_lookup`, `cache_concurrency`): one fixture, so both measure the same index.

use std::path::PathBuf;
use std::time::Duration;

use pibl::cache::{primary_key, unix_now, Cache, CacheConfig, EntryMeta};

/// Entries in the index.
pub const ENTRIES: usize = 10_000;

/// A cache in a fresh temp directory (`remove_dir_all` it when done) holding `ENTRIES` fresh
/// entries for `http://bench.example/item/{i}?page=1`; with `vary_half`, the even ones vary on
/// `Accept-Encoding: gzip, br`. Returns the cache, its directory and the time they were stored.
pub fn warm_cache(name: &str, vary_half: bool) -> (Cache, PathBuf, u64) {
    let dir = std::env::temp_dir().join(format!("pibl-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cache = Cache::open(CacheConfig {
        dir: dir.clone(),
        ttl: Duration::from_secs(3600),
        heuristic: true,
        max_bytes: 1 << 30,
        max_object: 1 << 20,
        fill_wait: Duration::from_secs(1),
    })
    .expect("open bench cache");
    let now = unix_now();
    for i in 0..ENTRIES {
        let meta = EntryMeta {
            primary: primary_key("bench.example", &format!("/item/{i}?page=1")),
            vary: if vary_half && i % 2 == 0 {
                vec![("accept-encoding".into(), "gzip, br".into())]
            } else {
                vec![]
            },
            status: 200,
            headers: b"Content-Type: text/html\r\nETag: \"x\"\r\n".to_vec(),
            stored_at: now,
            initial_age: 0,
            lifetime: 3600,
            always_revalidate: false,
        };
        let mut p = cache.begin_store(meta, false).expect("store");
        p.append(b"<html>body</html>");
        cache.publish(p);
    }
    (cache, dir, now)
}
