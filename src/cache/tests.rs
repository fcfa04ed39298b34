//! Unit tests of the cache index: keys, purges, eviction order, the Vary match, shards under
//! concurrent use.

use super::*;

#[test]
fn primary_key_has_scheme_host_port_and_full_target() {
    assert_eq!(
        primary_key("Example.com", "/a?b=1"),
        "GET http://example.com:80/a?b=1"
    );
    assert_eq!(primary_key("a:8080", "/"), "GET http://a:8080/");
    assert_eq!(primary_key("[::1]", "/"), "GET http://[::1]:80/");
    assert_eq!(primary_key("[::1]:81", "/"), "GET http://[::1]:81/");
}

/// Stores a fresh 200 for `host` and `target` with `body`, as a fill would.
fn store(cache: &Cache, host: &str, target: &str, body: &[u8]) {
    let meta = EntryMeta {
        primary: primary_key(host, target),
        vary: vec![],
        status: 200,
        headers: Vec::new(),
        stored_at: unix_now(),
        initial_age: 0,
        lifetime: 60,
        always_revalidate: false,
    };
    let mut p = cache.begin_store(meta, false).unwrap();
    p.append(body);
    cache.publish(p);
}

#[test]
fn purges_drop_by_url_by_path_on_every_host_and_all() {
    let dir = std::env::temp_dir().join(format!("pibl-purge-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let cache = Cache::open(CacheConfig {
        dir: dir.clone(),
        ttl: Duration::from_secs(60),
        heuristic: true,
        max_bytes: 1 << 20,
        max_object: 1 << 20,
        fill_wait: Duration::from_secs(1),
    })
    .unwrap();
    let store = |host: &str, target: &str| store(&cache, host, target, b"body");
    store("a:81", "/x?q=1");
    store("b:82", "/x?q=1");
    store("a:81", "/y");
    store("a:81", "/z");
    assert_eq!(cache.stats().0, 4);
    assert_eq!(
        cache.purge(&primary_key("A:81", "/y")),
        vec!["GET http://a:81/y".to_string()]
    );
    assert!(cache.purge(&primary_key("a:81", "/y")).is_empty());
    let mut dropped = cache.purge_target("/x?q=1");
    dropped.sort();
    assert_eq!(dropped, ["GET http://a:81/x?q=1", "GET http://b:82/x?q=1"]);
    assert!(
        cache.purge_target("/x").is_empty(),
        "the query is part of the target"
    );
    let (entries, bytes) = cache.stats();
    assert_eq!(entries, 1);
    let files = || fs::read_dir(&dir).unwrap().count();
    assert_eq!(files(), 2, "one entry left: body and sidecar");
    assert_eq!(cache.purge_all(), 1);
    assert_eq!(cache.stats(), (0, 0));
    assert!(bytes > 0);
    assert_eq!(files(), 0);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn eviction_drops_the_least_recently_used_entry() {
    let dir = std::env::temp_dir().join(format!("pibl-lru-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let open = |max_bytes| {
        Cache::open(CacheConfig {
            dir: dir.clone(),
            ttl: Duration::from_secs(60),
            heuristic: true,
            max_bytes,
            max_object: 1 << 20,
            fill_wait: Duration::from_secs(1),
        })
        .unwrap()
    };
    let store = |cache: &Cache, target: &str| store(cache, "h", target, &[b'x'; 1000]);
    let hit = |cache: &Cache, target: &str| {
        matches!(
            cache.lookup(&primary_key("h", target), &[], unix_now()),
            Lookup::Fresh(_)
        )
    };
    let pause = || std::thread::sleep(Duration::from_millis(3));
    // Measure one entry's size on disk, then allow three.
    let probe = open(1 << 20);
    store(&probe, "/probe");
    let one = probe.stats().1;
    assert_eq!(probe.purge_all(), 1);
    drop(probe);
    let cache = open(3 * one + one / 2);
    for t in ["/a", "/b", "/c"] {
        store(&cache, t);
        pause();
    }
    assert!(hit(&cache, "/a"), "/a is used again: now the most recent");
    pause();
    store(&cache, "/d");
    assert!(hit(&cache, "/a"), "kept: used most recently");
    assert!(!hit(&cache, "/b"), "evicted: least recently used");
    assert!(hit(&cache, "/c") && hit(&cache, "/d"));
    // After a restart, entries found on disk rank below any used since.
    drop(cache);
    let cache = open(3 * one + one / 2);
    assert!(hit(&cache, "/c"));
    pause();
    store(&cache, "/e");
    assert!(hit(&cache, "/c"), "used since the restart: kept");
    assert_eq!(cache.stats().0, 3);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn vary_values_join_repeated_headers() {
    let hs = [
        httparse::Header {
            name: "Accept",
            value: b"a",
        },
        httparse::Header {
            name: "accept",
            value: b" b ",
        },
    ];
    assert_eq!(
        vary_values(&["accept".into(), "x".into()], &hs),
        vec![
            ("accept".into(), "a, b".into()),
            ("x".into(), String::new())
        ]
    );
}

#[test]
fn vary_match_in_place_agrees_with_vary_values() {
    let h = |name, value| httparse::Header { name, value };
    let requests: [&[httparse::Header<'_>]; 7] = [
        &[],
        &[h("Accept-Encoding", b"gzip")],
        &[h("accept-encoding", b" gzip "), h("X", b"y")],
        &[h("Accept-Encoding", b"gzip"), h("ACCEPT-ENCODING", b"br")],
        &[h("Accept-Encoding", b"")],
        &[
            h("Accept-Encoding", b"caf\xe9 \xff\xfe"),
            h("Accept-Encoding", b"br"),
        ],
        &[h("Accept-Encoding", b"\xc3\xa9\xc3")],
    ];
    let stored = [
        "",
        "gzip",
        "gzip, br",
        "gzip,br",
        "gzip, ",
        "gzi",
        "gzipx",
        ", gzip",
        "br",
        "caf\u{FFFD} \u{FFFD}\u{FFFD}, br",
        "caf\u{FFFD} \u{FFFD}, br",
        "\u{e9}\u{FFFD}",
    ];
    let names = ["accept-encoding".to_string()];
    for request in requests {
        let built = &vary_values(&names, request)[0].1;
        assert!(vary_value_is(&names[0], built, request), "{built:?}");
        for s in stored {
            assert_eq!(
                vary_value_is(&names[0], s, request),
                built == s,
                "stored {s:?}, request builds {built:?}"
            );
        }
    }
}

#[test]
fn lookups_on_many_threads_meet_publishes_and_purges() {
    let dir = std::env::temp_dir().join(format!("pibl-shards-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let cache = Cache::open(CacheConfig {
        dir: dir.clone(),
        ttl: Duration::from_secs(60),
        heuristic: true,
        max_bytes: 1 << 24,
        max_object: 1 << 20,
        fill_wait: Duration::from_secs(1),
    })
    .unwrap();
    // Enough keys to land in most shards.
    let targets: Vec<String> = (0..600).map(|i| format!("/k{i}")).collect();
    for t in &targets {
        store(&cache, "h", t, b"v");
    }
    assert_eq!(cache.stats().0, targets.len());
    let used: std::collections::HashSet<usize> = targets
        .iter()
        .map(|t| (Cache::slot(&primary_key("h", t)) >> 24) as usize)
        .collect();
    assert!(used.len() > SHARDS / 2, "{} shards used", used.len());
    std::thread::scope(|s| {
        for n in 0..4 {
            let (cache, targets) = (&cache, &targets);
            s.spawn(move || {
                for round in 0..3 {
                    for t in targets.iter().skip(n) {
                        let key = primary_key("h", t);
                        match cache.lookup(&key, &[], unix_now()) {
                            Lookup::Fresh(e) => assert_eq!(e.meta.primary, key),
                            Lookup::Miss => {}
                            Lookup::Stale(_) => panic!("fresh for a minute"),
                        }
                    }
                    if n == 0 && round == 1 {
                        cache.purge_all();
                    }
                }
            });
        }
        for t in targets.iter().step_by(7) {
            store(&cache, "h", t, b"again");
        }
    });
    let (entries, bytes) = cache.stats();
    assert!(entries <= targets.len());
    assert_eq!(cache.purge_all(), entries);
    assert_eq!(cache.stats(), (0, 0));
    assert!(bytes > 0 || entries == 0);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn url_key_joins_the_primary_key_on_the_stack_or_in_a_string() {
    let long_host = format!("{}.Example.COM", "Ab".repeat(300));
    for (host, target) in [
        ("Example.com", "/a?b=1"),
        ("a:8080", "/"),
        ("[::1]", "/"),
        ("[::1]:81", "/x"),
        (long_host.as_str(), "/long"),
    ] {
        let key = primary_key(host, target);
        let url = UrlKey::get(host, target);
        assert_eq!(url.with_key(str::to_string), key, "{host}");
        assert_eq!(url.head_only().to_key(), head_key(&key), "{host}");
        assert_eq!(url.head_only().with_key(str::to_string), head_key(&key));
    }
}

/// A cache in a fresh directory named by `tag`.
fn open_cache(tag: &str, fresh: bool) -> (Cache, PathBuf) {
    let dir = std::env::temp_dir().join(format!("pibl-{tag}-{}", std::process::id()));
    if fresh {
        let _ = fs::remove_dir_all(&dir);
    }
    let cache = Cache::open(CacheConfig {
        dir: dir.clone(),
        ttl: Duration::from_secs(60),
        heuristic: true,
        max_bytes: 1 << 20,
        max_object: 1 << 20,
        fill_wait: Duration::from_secs(1),
    })
    .unwrap();
    (cache, dir)
}

fn fresh_entry(cache: &Cache, target: &str) -> Arc<CacheEntry> {
    match cache.lookup(&primary_key("h", target), &[], unix_now()) {
        Lookup::Fresh(e) => e,
        other => panic!("not fresh: {other:?}"),
    }
}

/// Makes `identity`'s variant in `coding` with `body` as its compressed bytes.
fn make_variant(cache: &Cache, identity: &Arc<CacheEntry>, coding: Coding, body: &[u8]) {
    let mut w = cache.begin_variant(identity, coding).expect("a writer");
    w.body().append(body);
    cache.publish_variant(w);
}

#[test]
fn variants_are_written_once_found_after_their_entry_and_go_with_it() {
    let (cache, dir) = open_cache("variants", true);
    store(&cache, "h", "/v", b"identity body");
    let identity = fresh_entry(&cache, "/v");
    assert!(cache.lookup_variant(&identity, Coding::Br).is_none());
    // One writer per entry and coding.
    let writer = cache.begin_variant(&identity, Coding::Br).expect("first");
    assert!(cache.begin_variant(&identity, Coding::Br).is_none());
    assert!(cache.begin_variant(&identity, Coding::Gzip).is_some());
    drop(writer);
    make_variant(&cache, &identity, Coding::Br, b"br bytes");
    let v = cache.lookup_variant(&identity, Coding::Br).expect("stored");
    assert_eq!(v.body(), b"br bytes");
    assert_eq!(v.meta.header("content-encoding"), Some("br"));
    assert!(cache.lookup_variant(&identity, Coding::Zstd).is_none());
    // A lookup of the URL finds the identity entry, never a variant.
    assert_eq!(fresh_entry(&cache, "/v").body(), b"identity body");
    assert_eq!(cache.stats().0, 2, "the variant counts as an entry");
    // Loaded again from disk: still there, still agreeing.
    drop((identity, v, cache));
    let (cache, _) = open_cache("variants", false);
    let identity = fresh_entry(&cache, "/v");
    let v = cache
        .lookup_variant(&identity, Coding::Br)
        .expect("after a restart");
    assert_eq!(v.body(), b"br bytes");
    // A refresh of the identity entry drops its variants.
    let refreshed = cache.refresh(&identity, identity.meta.clone()).unwrap();
    assert!(cache.lookup_variant(&refreshed, Coding::Br).is_none());
    assert_eq!(cache.stats().0, 1);
    assert!(!v.path.with_extension("meta").exists());
    // Invalidation (an unsafe request) drops both.
    make_variant(&cache, &refreshed, Coding::Gzip, b"gz bytes");
    assert_eq!(cache.stats().0, 2);
    cache.invalidate(&primary_key("h", "/v"));
    assert_eq!(cache.stats(), (0, 0));
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_variant_of_a_replaced_entry_is_refused_and_dropped() {
    let (cache, dir) = open_cache("variant-stale", true);
    store(&cache, "h", "/s", b"first");
    let old = fresh_entry(&cache, "/s");
    make_variant(&cache, &old, Coding::Zstd, b"zstd of first");
    // Being written while the entry is stored again with another body: refused at publish.
    let mut late = cache.begin_variant(&old, Coding::Gzip).unwrap();
    store(&cache, "h", "/s", b"second");
    let new = fresh_entry(&cache, "/s");
    assert!(
        cache.lookup_variant(&new, Coding::Zstd).is_none(),
        "dropped"
    );
    late.body().append(b"gzip of first");
    cache.publish_variant(late);
    assert!(
        cache.lookup_variant(&new, Coding::Gzip).is_none(),
        "refused"
    );
    assert_eq!(cache.stats().0, 1);
    // A variant left on disk without its entry is removed at start-up.
    make_variant(&cache, &new, Coding::Br, b"br of second");
    new.remove_files();
    drop((old, new, cache));
    let (cache, _) = open_cache("variant-stale", false);
    assert_eq!(cache.stats(), (0, 0));
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
    fs::remove_dir_all(&dir).unwrap();
}
