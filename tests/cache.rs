//! The disk cache end to end: counting backends, the real `pibl` binary with `-t`, real sockets.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Backend, Conn, Pibl, Response, TempDir};

/// A `/res` URL whose response carries the given headers.
fn res(path_tag: &str, headers: &[&str]) -> String {
    let mut u = format!("/res?tag={path_tag}");
    for h in headers {
        u.push_str("&h=");
        for b in h.bytes() {
            match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' => u.push(b as char),
                _ => u.push_str(&format!("%{b:02X}")),
            }
        }
    }
    u
}

fn cached_pibl(backends: &[SocketAddr], ttl: u64, extra: &str) -> Pibl {
    let dir = TempDir::new("cache");
    let mut conf = String::from("listen 127.0.0.1:0\nworkers 2\n");
    for b in backends {
        conf.push_str(&format!("backend {b}\n"));
    }
    conf.push_str(extra);
    std::fs::write(dir.path().join("pibl.conf"), conf).unwrap();
    Pibl::start_in(dir, &["-c", "pibl.conf", "-t", &ttl.to_string()])
}

fn send(addr: SocketAddr, raw: &str) -> Response {
    let mut c = Conn::open(addr);
    c.send(raw.as_bytes());
    c.read_response(raw.starts_with("HEAD")).expect("response")
}

fn get_with(addr: SocketAddr, path: &str, headers: &str) -> Response {
    send(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: site\r\n{headers}\r\n"),
    )
}

/// Waits (bounded) until `dir` holds `n` published entries: a response reaches the client just
/// before its entry is renamed into place.
fn wait_for_entries(dir: &std::path::Path, n: usize) -> Vec<std::path::PathBuf> {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let mut metas: Vec<_> = std::fs::read_dir(dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "meta"))
                    .collect()
            })
            .unwrap_or_default();
        if metas.len() >= n || Instant::now() > until {
            metas.sort();
            return metas;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn x_cache(r: &Response) -> &str {
    r.header("X-Cache").unwrap_or("-")
}

#[test]
fn second_get_is_a_hit_without_a_backend_request() {
    let b = Backend::start("c1");
    let p = cached_pibl(&[b.addr], 120, "");
    let url = res("hit", &["Content-Type: text/plain"]);
    let first = get_with(p.addr, &url, "");
    assert_eq!((first.status, x_cache(&first)), (200, "MISS"));
    let second = get_with(p.addr, &url, "");
    assert_eq!((second.status, x_cache(&second)), (200, "HIT"));
    assert_eq!(second.body, first.body);
    assert_eq!(second.header("Content-Type"), Some("text/plain"));
    assert!(second.header("Age").is_some());
    assert_eq!(b.count(), 1);
    // HEAD is answered from the GET entry.
    let head = send(
        p.addr,
        &format!("HEAD {url} HTTP/1.1\r\nHost: site\r\n\r\n"),
    );
    assert_eq!((head.status, x_cache(&head)), (200, "HIT"));
    assert_eq!(
        head.header("Content-Length"),
        Some(first.body.len().to_string().as_str())
    );
    assert_eq!(b.count(), 1);
    // The access log says which.
    assert_eq!(p.wait_for_log(" HIT", 2).len(), 2);
    assert_eq!(p.wait_for_log(" MISS", 1).len(), 1);
}

#[test]
fn ttl_expiry_with_t_2() {
    // Ages count whole seconds, so `-t 1` keeps an entry fresh only until the clock's next
    // second: on a loaded machine the second request could cross it. Two seconds leave at
    // least one whole second for it.
    let b = Backend::start("c2");
    let p = cached_pibl(&[b.addr], 2, "");
    let url = res("ttl", &[]);
    get_with(p.addr, &url, "");
    assert_eq!(x_cache(&get_with(p.addr, &url, "")), "HIT");
    std::thread::sleep(Duration::from_millis(3100));
    let r = get_with(p.addr, &url, "");
    assert_eq!(x_cache(&r), "MISS");
    assert_eq!(b.count(), 2);
}

#[test]
fn ttl_is_a_ceiling_on_a_long_max_age_and_a_short_max_age_wins() {
    let b = Backend::start("c3");
    let p = cached_pibl(&[b.addr], 1, "");
    let long = res("long", &["Cache-Control: max-age=86400"]);
    get_with(p.addr, &long, "");
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(x_cache(&get_with(p.addr, &long, "")), "MISS");

    let p2 = cached_pibl(&[b.addr], 600, "");
    let zero = res("zero", &["Cache-Control: max-age=0"]);
    get_with(p2.addr, &zero, "");
    assert_eq!(x_cache(&get_with(p2.addr, &zero, "")), "MISS");
}

#[test]
fn never_stored_responses_and_requests() {
    let b = Backend::start("c4");
    let p = cached_pibl(&[b.addr], 120, "");
    for (tag, headers) in [
        ("nostore", vec!["Cache-Control: no-store"]),
        ("private", vec!["Cache-Control: private, max-age=60"]),
        ("cookie", vec!["Set-Cookie: s=1"]),
        ("varystar", vec!["Vary: *"]),
    ] {
        let url = res(tag, &headers);
        get_with(p.addr, &url, "");
        let r = get_with(p.addr, &url, "");
        assert_eq!(x_cache(&r), "MISS", "{tag}");
    }
    // A 500 is not cacheable.
    let url = format!("{}&status=500", res("err", &[]));
    get_with(p.addr, &url, "");
    assert_eq!(x_cache(&get_with(p.addr, &url, "")), "MISS");
    // Requests with Authorization or Cookie bypass the cache.
    let url = res("auth", &[]);
    let r = get_with(p.addr, &url, "Authorization: Basic eDp5\r\n");
    assert_eq!(x_cache(&r), "BYPASS");
    assert_eq!(x_cache(&get_with(p.addr, &url, "")), "MISS");
    let r = get_with(p.addr, &url, "Cookie: a=1\r\n");
    assert_eq!(x_cache(&r), "BYPASS");
    // POST is never a hit.
    let r = send(
        p.addr,
        "POST /echo HTTP/1.1\r\nHost: site\r\nContent-Length: 1\r\n\r\nx",
    );
    assert_eq!(x_cache(&r), "BYPASS");
}

#[test]
fn vary_keys_on_the_request_header() {
    let b = Backend::start("c5");
    let p = cached_pibl(&[b.addr], 120, "");
    let url = res("vary", &["Vary: Accept-Language"]);
    let en = get_with(p.addr, &url, "Accept-Language: en\r\n");
    let fr = get_with(p.addr, &url, "Accept-Language: fr\r\n");
    assert_eq!((x_cache(&en), x_cache(&fr)), ("MISS", "MISS"));
    assert_ne!(en.body, fr.body);
    let en2 = get_with(p.addr, &url, "Accept-Language: en\r\n");
    let fr2 = get_with(p.addr, &url, "Accept-Language: fr\r\n");
    assert_eq!((x_cache(&en2), x_cache(&fr2)), ("HIT", "HIT"));
    assert_eq!((en2.body, fr2.body), (en.body, fr.body));
    assert_eq!(b.count(), 2);
}

#[test]
fn query_strings_and_hosts_are_distinct_entries() {
    let b = Backend::start("c6");
    let p = cached_pibl(&[b.addr], 120, "");
    get_with(p.addr, "/res?q=1", "");
    assert_eq!(x_cache(&get_with(p.addr, "/res?q=2", "")), "MISS");
    assert_eq!(x_cache(&get_with(p.addr, "/res?q=1", "")), "HIT");
    let a = send(
        p.addr,
        "GET /res?host HTTP/1.1\r\nHost: one.example\r\n\r\n",
    );
    let other = send(
        p.addr,
        "GET /res?host HTTP/1.1\r\nHost: two.example\r\n\r\n",
    );
    assert_eq!((x_cache(&a), x_cache(&other)), ("MISS", "MISS"));
    assert_ne!(a.body, other.body);
    let seen = b.seen();
    assert_eq!(seen.iter().filter(|s| s.target == "/res?host").count(), 2);
}

#[test]
fn entries_survive_kill_9_and_a_restart_serves_hits_without_a_backend() {
    let b = Backend::start("c7");
    let dir = TempDir::new("persist");
    let conf = format!("listen 127.0.0.1:0\nworkers 1\nbackend {}\n", b.addr);
    std::fs::write(dir.path().join("pibl.conf"), &conf).unwrap();
    let dir_path = dir.path().to_path_buf();
    let p = Pibl::start_in(dir, &["-c", "pibl.conf", "-t", "600"]);
    let first = get_with(p.addr, "/res?persist", "");
    assert_eq!(x_cache(&first), "MISS");
    assert_eq!(wait_for_entries(&dir_path.join("cache"), 1).len(), 1);
    // kill -9: no chance to flush anything.
    let dir = p.kill9();
    b.kill();
    let p2 = Pibl::start_in(dir, &["-c", "pibl.conf", "-t", "600"]);
    let again = get_with(p2.addr, "/res?persist", "");
    assert_eq!((again.status, x_cache(&again)), (200, "HIT"));
    assert_eq!(again.body, first.body);
}

#[test]
fn forged_crc_collision_is_a_miss_not_another_urls_content() {
    let b = Backend::start("c8");
    let p = cached_pibl(&[b.addr], 600, "");
    let real = get_with(p.addr, "/res?real", "");
    assert_eq!(x_cache(&real), "MISS");
    let cache_dir = p.dir.path().join("cache");
    // Forge: rewrite the entry so its sidecar names another URL but keeps this file name.
    let meta = wait_for_entries(&cache_dir, 1).remove(0);
    let stem = meta.file_stem().unwrap().to_str().unwrap().to_string();
    let forged = pibl::cache::EntryMeta {
        primary: "GET http://site:80/res?other".into(),
        vary: vec![],
        status: 200,
        headers: b"Content-Type: text/plain\r\n".to_vec(),
        stored_at: pibl::cache::unix_now(),
        initial_age: 0,
        lifetime: 600,
        always_revalidate: false,
    };
    let staging = TempDir::new("forge");
    let mut pending =
        pibl::cache::PendingEntry::create(staging.path(), forged, false, 1 << 20).unwrap();
    pending.append(b"FORGED CONTENT");
    let e = pending.publish().unwrap();
    std::fs::copy(
        e.path.with_extension("meta"),
        cache_dir.join(format!("{stem}.meta")),
    )
    .unwrap();
    std::fs::copy(
        e.path.with_extension("body"),
        cache_dir.join(format!("{stem}.body")),
    )
    .unwrap();
    let dir = p.kill9();
    let p2 = Pibl::start_in(dir, &["-c", "pibl.conf", "-t", "600"]);
    let r = get_with(p2.addr, "/res?real", "");
    assert_eq!(x_cache(&r), "MISS");
    assert!(!r.text().contains("FORGED"));
    let other = get_with(p2.addr, "/res?other", "");
    assert!(
        !other.text().contains("FORGED"),
        "a file not named by its key was served"
    );
}

#[test]
fn truncated_body_and_corrupt_sidecar_are_never_served() {
    let b = Backend::start("c9");
    let p = cached_pibl(&[b.addr], 600, "");
    get_with(p.addr, "/res?one", "");
    get_with(p.addr, "/res?two", "");
    let cache_dir = p.dir.path().join("cache");
    let metas = wait_for_entries(&cache_dir, 2);
    assert_eq!(metas.len(), 2);
    let dir = p.kill9();
    // Truncate one body, corrupt the other sidecar; add a foreign file.
    let body = metas[0].with_extension("body");
    let len = std::fs::metadata(&body).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&body)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let mut m = std::fs::read(&metas[1]).unwrap();
    let mid = m.len() / 2;
    m[mid] ^= 0xff;
    std::fs::write(&metas[1], m).unwrap();
    std::fs::write(cache_dir.join("deadbeef.meta"), b"not a cache file").unwrap();
    let p2 = Pibl::start_in(dir, &["-c", "pibl.conf", "-t", "600"]);
    for path in ["/res?one", "/res?two"] {
        let r = get_with(p2.addr, path, "");
        assert_eq!((r.status, x_cache(&r)), (200, "MISS"), "{path}");
        assert!(r.text().starts_with("backend c9"), "{}", r.text());
    }
    assert!(!cache_dir.join("deadbeef.meta").exists());
}

#[test]
fn stampede_of_200_concurrent_misses_reaches_the_backend_at_most_twice() {
    let b = Backend::start("c10");
    let p = cached_pibl(&[b.addr], 600, "");
    let addr = p.addr;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(200));
    let threads: Vec<_> = (0..200)
        .map(|_| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut c = Conn::open(addr);
                barrier.wait();
                c.get("/res?cold")
            })
        })
        .collect();
    let results: Vec<Response> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(results.iter().all(|r| r.status == 200));
    let first = &results[0].body;
    assert!(results.iter().all(|r| &r.body == first));
    let upstream = b.seen().iter().filter(|s| s.target == "/res?cold").count();
    assert!(upstream <= 2, "backend saw {upstream} requests");
}

#[test]
fn eviction_keeps_the_cache_within_cache_max_bytes() {
    let b = Backend::start("c11");
    let p = cached_pibl(&[b.addr], 600, "cache_max_bytes 4k\n");
    for i in 0..20 {
        get_with(p.addr, &format!("/big?n=1000&i={i}"), "");
    }
    let cache_dir = p.dir.path().join("cache");
    let total: u64 = std::fs::read_dir(&cache_dir)
        .unwrap()
        .flatten()
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(total <= 4096 + 2048, "cache holds {total} bytes");
    // The most recent entry is still there.
    assert_eq!(x_cache(&get_with(p.addr, "/big?n=1000&i=19", "")), "HIT");
    assert_eq!(x_cache(&get_with(p.addr, "/big?n=1000&i=0", "")), "MISS");
}

#[test]
fn stale_entry_is_revalidated_with_etag_and_with_last_modified() {
    let b = Backend::start("c12");
    let p = cached_pibl(&[b.addr], 1, "");
    for (tag, validator) in [
        ("etag", "ETag: \"v1\""),
        ("lm", "Last-Modified: Mon, 23 Nov 2026 10:00:00 GMT"),
    ] {
        let url = res(tag, &[validator]);
        let first = get_with(p.addr, &url, "");
        std::thread::sleep(Duration::from_millis(2100));
        let r = get_with(p.addr, &url, "");
        assert_eq!((r.status, x_cache(&r)), (200, "REVALIDATED"), "{tag}");
        assert_eq!(r.body, first.body, "{tag}");
        let seen = b.seen();
        let last = seen.last().unwrap();
        let header = if tag == "etag" {
            "If-None-Match"
        } else {
            "If-Modified-Since"
        };
        assert!(last.header(header).is_some(), "{tag}: {:?}", last.headers);
        // Refreshed: fresh again.
        assert_eq!(x_cache(&get_with(p.addr, &url, "")), "HIT", "{tag}");
    }
}

#[test]
fn client_conditional_on_a_hit_gets_304_from_the_cache() {
    let b = Backend::start("c13");
    let p = cached_pibl(&[b.addr], 600, "");
    let url = res("cond", &["ETag: \"abc\""]);
    get_with(p.addr, &url, "");
    let r = get_with(p.addr, &url, "If-None-Match: \"abc\"\r\n");
    assert_eq!((r.status, x_cache(&r)), (304, "HIT"));
    assert!(r.body.is_empty());
    assert_eq!(b.count(), 1);
    // Request no-cache forces revalidation upstream.
    let r = get_with(p.addr, &url, "Cache-Control: no-cache\r\n");
    assert_eq!(x_cache(&r), "REVALIDATED");
    assert_eq!(b.count(), 2);
}

#[test]
fn heuristic_off_stores_only_validated_responses_and_revalidates_each_time() {
    let b = Backend::start("c14");
    let p = cached_pibl(&[b.addr], 600, "cache_heuristic off\n");
    let plain = res("plain", &[]);
    get_with(p.addr, &plain, "");
    assert_eq!(x_cache(&get_with(p.addr, &plain, "")), "MISS");
    let tagged = res("tagged", &["ETag: \"t\""]);
    get_with(p.addr, &tagged, "");
    let r = get_with(p.addr, &tagged, "");
    assert_eq!(x_cache(&r), "REVALIDATED");
    let explicit = res("explicit", &["Cache-Control: max-age=60"]);
    get_with(p.addr, &explicit, "");
    assert_eq!(x_cache(&get_with(p.addr, &explicit, "")), "HIT");
}

#[test]
fn unsafe_request_invalidates_the_entry() {
    let b = Backend::start("c15");
    let p = cached_pibl(&[b.addr], 600, "");
    get_with(p.addr, "/res?inv", "");
    assert_eq!(x_cache(&get_with(p.addr, "/res?inv", "")), "HIT");
    let r = send(
        p.addr,
        "POST /res?inv HTTP/1.1\r\nHost: site\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    assert_eq!(x_cache(&get_with(p.addr, "/res?inv", "")), "MISS");
}

#[test]
fn hit_with_a_request_body_never_reads_the_body_as_a_request() {
    let b = Backend::start("c16");
    let p = cached_pibl(&[b.addr], 600, "");
    get_with(p.addr, "/res?body", "");
    let mut c = Conn::open(p.addr);
    // The body looks like a request; it must not become one.
    let smuggled = "GET /res?smuggled HTTP/1.1\r\nHost: site\r\n\r\n";
    c.send(
        format!(
            "GET /res?body HTTP/1.1\r\nHost: site\r\nContent-Length: {}\r\n\r\n{smuggled}",
            smuggled.len()
        )
        .as_bytes(),
    );
    let r = c.read_response(false).unwrap();
    assert_eq!(x_cache(&r), "HIT");
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until && c.read_response(false).is_some() {}
    assert!(b.seen().iter().all(|s| s.target != "/res?smuggled"));
}

#[test]
fn cache_off_by_default_without_t() {
    let b = Backend::start("c17");
    let p = Pibl::start(&[b.addr], "");
    get_with(p.addr, "/res?off", "");
    let r = get_with(p.addr, "/res?off", "");
    assert_eq!(r.header("X-Cache"), None);
    assert_eq!(b.count(), 2);
}

/// The files of the entry for `GET path` with `Host: site` (no Vary).
fn entry_stem(p: &Pibl, path: &str) -> std::path::PathBuf {
    let key = pibl::cache::primary_key("site", path);
    let stem = format!("{:08x}", crc32fast::hash(key.as_bytes()));
    p.dir.path().join("cache").join(stem)
}

#[test]
fn no_cache_request_without_a_validator_goes_to_the_backend_and_replaces_the_entry() {
    let b = Backend::start("c18");
    let p = cached_pibl(&[b.addr], 600, "");
    let url = res("noval", &["Content-Type: text/plain"]);
    assert_eq!(x_cache(&get_with(p.addr, &url, "")), "MISS");
    assert_eq!(x_cache(&get_with(p.addr, &url, "")), "HIT");
    for (i, demand) in [
        "Cache-Control: no-cache\r\n",
        "Cache-Control: max-age=0\r\n",
        "Pragma: no-cache\r\n",
    ]
    .into_iter()
    .enumerate()
    {
        let r = get_with(p.addr, &url, demand);
        assert_eq!((r.status, x_cache(&r)), (200, "MISS"), "{demand}");
        assert_eq!(b.count(), 2 + i, "{demand}");
        let again = get_with(p.addr, &url, "");
        assert_eq!(x_cache(&again), "HIT", "{demand}");
        assert_eq!(
            again.text(),
            r.text(),
            "{demand}: the fresh response replaced the entry"
        );
    }
}

#[test]
fn a_head_sent_as_soon_as_a_cacheable_get_arrived_is_a_hit() {
    let b = Backend::start("c19");
    let p = cached_pibl(&[b.addr], 600, "");
    for i in 0..30 {
        let url = format!("/big?n=100000&i={i}");
        let r = get_with(p.addr, &url, "");
        assert_eq!((x_cache(&r), r.body.len()), ("MISS", 100_000));
        // A new connection, at once: the entry is already visible to every worker.
        let head = send(
            p.addr,
            &format!("HEAD {url} HTTP/1.1\r\nHost: site\r\n\r\n"),
        );
        assert_eq!((head.status, x_cache(&head)), (200, "HIT"), "round {i}");
        assert_eq!(head.header("Content-Length"), Some("100000"));
    }
    assert_eq!(b.count(), 30);
}

#[test]
fn repeated_heads_are_stored_head_only_and_never_answer_a_get() {
    let b = Backend::start("c20");
    let p = cached_pibl(&[b.addr], 600, "");
    let url = res("headonly", &["Content-Type: text/plain"]);
    let head = |p: &Pibl| {
        send(
            p.addr,
            &format!("HEAD {url} HTTP/1.1\r\nHost: site\r\n\r\n"),
        )
    };
    let first = head(&p);
    assert_eq!((first.status, x_cache(&first)), (200, "MISS"));
    let length = first.header("Content-Length").expect("length").to_string();
    for _ in 0..3 {
        let again = head(&p);
        assert_eq!((again.status, x_cache(&again)), (200, "HIT"));
        assert_eq!(again.header("Content-Length"), Some(length.as_str()));
        let lengths = again
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .count();
        assert_eq!(lengths, 1);
        assert_eq!(again.header("Content-Type"), Some("text/plain"));
    }
    assert_eq!(b.count(), 1, "one HEAD reached the backend");
    // A GET is never answered from the head-only entry.
    let get = get_with(p.addr, &url, "");
    assert_eq!((get.status, x_cache(&get)), (200, "MISS"));
    assert!(get.text().starts_with("backend c20: GET"), "{}", get.text());
    assert_eq!(b.count(), 2);
    // From now on HEAD is answered from the GET entry.
    let after = head(&p);
    assert_eq!(x_cache(&after), "HIT");
    let get_length = get.body.len().to_string();
    assert_eq!(after.header("Content-Length"), Some(get_length.as_str()));
    assert_eq!(b.count(), 2);
}

#[test]
fn cache_files_changed_behind_pibls_back_are_never_served() {
    let b = Backend::start("c21");
    let p = cached_pibl(&[b.addr], 600, "");
    let cases = ["truncated", "emptied", "overwritten", "deleted", "touched"];
    let mut bodies = Vec::new();
    for case in cases {
        let url = format!("/res?damage={case}");
        let r = get_with(p.addr, &url, "");
        assert_eq!(x_cache(&r), "MISS");
        assert_eq!(x_cache(&get_with(p.addr, &url, "")), "HIT");
        bodies.push(r.body);
    }
    // Not synchronisation: on kernels without multigrain timestamps, file times move in clock
    // ticks, and a same-size rewrite within the tick of the publish would look unchanged.
    std::thread::sleep(Duration::from_millis(20));
    for case in cases {
        let body = entry_stem(&p, &format!("/res?damage={case}")).with_extension("body");
        let len = std::fs::metadata(&body).unwrap().len();
        let open = || std::fs::OpenOptions::new().write(true).open(&body).unwrap();
        match case {
            "truncated" => open().set_len(len / 2).unwrap(),
            "emptied" => open().set_len(0).unwrap(),
            "overwritten" => {
                use std::io::Write;
                open().write_all(&vec![b'X'; len as usize]).unwrap()
            }
            "deleted" => {
                std::fs::remove_file(&body).unwrap();
                std::fs::remove_file(body.with_extension("meta")).unwrap();
            }
            _ => {
                // Same bytes, new mtime: the CRC check passes and the entry stays.
                let later = std::time::SystemTime::now() + Duration::from_secs(5);
                open().set_modified(later).unwrap();
            }
        }
    }
    let before = b.count();
    for (case, body) in cases.into_iter().zip(bodies) {
        let url = format!("/res?damage={case}");
        let r = get_with(p.addr, &url, "");
        assert_eq!(r.status, 200, "{case}");
        if case == "touched" {
            assert_eq!((x_cache(&r), r.body.clone()), ("HIT", body), "{case}");
        } else {
            assert_eq!(x_cache(&r), "MISS", "{case}");
            assert!(
                r.text().starts_with("backend c21: GET"),
                "{case}: {}",
                r.text()
            );
            assert_ne!(r.body, body, "{case}: a new response");
            // Stored again.
            assert_eq!(x_cache(&get_with(p.addr, &url, "")), "HIT", "{case}");
        }
    }
    assert_eq!(b.count(), before + 4);
}

#[test]
fn a_body_truncated_under_a_slow_reader_cuts_that_connection_only() {
    use std::io::{Read, Write};
    let b = Backend::start("c22");
    let p = cached_pibl(&[b.addr], 600, "");
    let n = 32 << 20;
    let url = format!("/big?n={n}");
    let first = get_with(p.addr, &url, "");
    assert_eq!((x_cache(&first), first.body.len()), ("MISS", n));
    // A hit read slowly: larger than what the socket buffers hold.
    let mut slow = std::net::TcpStream::connect(p.addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    slow.write_all(format!("GET {url} HTTP/1.1\r\nHost: site\r\n\r\n").as_bytes())
        .unwrap();
    let mut got = vec![0u8; 64 * 1024];
    slow.read_exact(&mut got).unwrap();
    assert!(String::from_utf8_lossy(&got).contains("X-Cache: HIT"));
    let body = entry_stem(&p, &url).with_extension("body");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&body)
        .unwrap()
        .set_len(4096)
        .unwrap();
    let mut total = got.len();
    let mut buf = vec![0u8; 1 << 16];
    while let Ok(k) = slow.read(&mut buf) {
        if k == 0 {
            break;
        }
        total += k;
    }
    assert!(
        total < n,
        "the cut connection cannot have had the whole body"
    );
    // pibl lives on; the damaged entry is not served again.
    let again = get_with(p.addr, &url, "");
    assert_eq!((again.status, x_cache(&again)), (200, "MISS"));
    assert!(again.body == common::pattern(n), "the full, right body");
    assert_eq!(get_with(p.addr, "/res?other", "").status, 200);
}

#[test]
fn age_is_its_first_value_and_an_invalid_one_is_ignored() {
    let b = Backend::start("c23");
    let p = cached_pibl(&[b.addr], 600, "");
    // First value 100 of max-age 60: stale on arrival, no validator: not stored.
    let list = res("agelist", &["Cache-Control: max-age=60", "Age: 100, 5"]);
    get_with(p.addr, &list, "");
    assert_eq!(x_cache(&get_with(p.addr, &list, "")), "MISS");
    // Not a non-negative integer: ignored, the response is fresh.
    let signed = res("agesign", &["Cache-Control: max-age=60", "Age: +100"]);
    get_with(p.addr, &signed, "");
    assert_eq!(x_cache(&get_with(p.addr, &signed, "")), "HIT");
}

#[test]
fn an_invalid_expires_means_already_expired() {
    let b = Backend::start("c24");
    let p = cached_pibl(&[b.addr], 600, "");
    let good = "Expires: Thu, 01 Jan 2099 00:00:00 GMT";
    for (tag, headers, second) in [
        ("good", vec![good], "HIT"),
        (
            "twospaces",
            vec!["Expires: Thu, 01 Jan 2099  00:00:00 GMT"],
            "MISS",
        ),
        (
            "onedigit",
            vec!["Expires: Thu, 01 Jan 2099 0:00:00 GMT"],
            "MISS",
        ),
        ("twolines", vec![good, good], "MISS"),
    ] {
        let url = res(tag, &headers);
        get_with(p.addr, &url, "");
        assert_eq!(x_cache(&get_with(p.addr, &url, "")), second, "{tag}");
    }
}

#[test]
fn every_unsafe_method_invalidates_extension_methods_too() {
    let b = Backend::start("c25");
    let p = cached_pibl(&[b.addr], 600, "");
    for (method, invalidates) in [
        ("M-SEARCH", true),
        ("PURGE", true),
        ("OPTIONS", false),
        ("TRACE", false),
    ] {
        let url = format!("/res?method={method}");
        get_with(p.addr, &url, "");
        assert_eq!(x_cache(&get_with(p.addr, &url, "")), "HIT", "{method}");
        let r = send(
            p.addr,
            &format!("{method} {url} HTTP/1.1\r\nHost: site\r\nContent-Length: 0\r\n\r\n"),
        );
        assert_eq!(r.status, 200, "{method} reached the backend");
        let expect = if invalidates { "MISS" } else { "HIT" };
        assert_eq!(x_cache(&get_with(p.addr, &url, "")), expect, "{method}");
    }
}

#[test]
fn targeted_cache_control_fields_decide_and_are_removed() {
    let b = Backend::start("c26");
    let p = cached_pibl(&[b.addr], 600, "");
    let fields = |r: &Response| {
        (
            r.header("Cache-Control").map(str::to_string),
            r.header("CDN-Cache-Control").map(str::to_string),
            r.header("Pibl-Cache-Control").map(str::to_string),
        )
    };
    // (headers, second request's X-Cache)
    for (tag, headers, second) in [
        (
            "cdn-stores",
            vec!["Cache-Control: no-store", "CDN-Cache-Control: max-age=60"],
            "HIT",
        ),
        (
            "cdn-forbids",
            vec!["Cache-Control: max-age=60", "CDN-Cache-Control: no-store"],
            "MISS",
        ),
        (
            "cdn-private",
            vec![
                "Cache-Control: public, max-age=60",
                "CDN-Cache-Control: private",
            ],
            "MISS",
        ),
        (
            "cdn-nocache",
            vec!["Cache-Control: max-age=60", "CDN-Cache-Control: no-cache"],
            "MISS",
        ),
        (
            "pibl-forbids",
            vec![
                "CDN-Cache-Control: max-age=60",
                "Pibl-Cache-Control: no-store",
            ],
            "MISS",
        ),
        (
            "pibl-stores",
            vec![
                "Cache-Control: private",
                "CDN-Cache-Control: no-store",
                "Pibl-Cache-Control: s-maxage=60",
            ],
            "HIT",
        ),
    ] {
        let url = res(tag, &headers);
        let first = get_with(p.addr, &url, "");
        let again = get_with(p.addr, &url, "");
        assert_eq!(
            (x_cache(&first), x_cache(&again)),
            ("MISS", second),
            "{tag}"
        );
        for r in [&first, &again] {
            let (cc, cdn, ours) = fields(r);
            assert_eq!((cdn, ours), (None, None), "{tag}: targeted fields removed");
            let sent_cc = headers
                .iter()
                .find_map(|h| h.strip_prefix("Cache-Control: "));
            assert_eq!(
                cc.as_deref(),
                sent_cc,
                "{tag}: Cache-Control is the client's"
            );
        }
    }
    // `cdn_cache_control pass`: CDN-Cache-Control reaches clients, Pibl-Cache-Control never.
    let p = cached_pibl(&[b.addr], 600, "cdn_cache_control pass\n");
    let url = res(
        "pass",
        &[
            "CDN-Cache-Control: max-age=60",
            "Pibl-Cache-Control: max-age=30",
        ],
    );
    let first = get_with(p.addr, &url, "");
    let again = get_with(p.addr, &url, "");
    assert_eq!((x_cache(&first), x_cache(&again)), ("MISS", "HIT"));
    for r in [&first, &again] {
        let (_, cdn, ours) = fields(r);
        assert_eq!((cdn.as_deref(), ours), (Some("max-age=60"), None));
    }
}

/// A backend that records each request head's raw bytes (the shared `Backend` reads heads as
/// UTF-8 text, so it cannot see obs-text). It answers a request carrying `If-None-Match` with
/// 304, any other with a 200 that has an ETag and is fresh for one second.
fn raw_head_backend() -> (SocketAddr, std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = heads.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut tmp = [0u8; 4096];
                loop {
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match stream.read(&mut tmp) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&tmp[..n]),
                        }
                        continue;
                    };
                    let head: Vec<u8> = buf.drain(..end + 4).collect();
                    let conditional = head
                        .windows(15)
                        .any(|w| w.eq_ignore_ascii_case(b"if-none-match: "));
                    seen.lock().unwrap().push(head);
                    let response: &[u8] = if conditional {
                        b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nCache-Control: max-age=1\r\n\r\n"
                    } else {
                        b"HTTP/1.1 200 OK\r\nETag: \"v1\"\r\nCache-Control: max-age=1\r\nContent-Length: 2\r\n\r\nhi"
                    };
                    if stream.write_all(response).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, heads)
}

#[test]
fn revalidation_keeps_obs_text_header_bytes_exactly() {
    let (backend, heads) = raw_head_backend();
    let p = cached_pibl(&[backend], 1, "");
    let first = get_with(p.addr, "/obs", "");
    assert_eq!((first.status, x_cache(&first)), (200, "MISS"));
    std::thread::sleep(Duration::from_millis(2100));
    let field: &[u8] = b"X-Obs: caf\xe9 \x80\xff end";
    let mut raw = b"GET /obs HTTP/1.1\r\nHost: site\r\n".to_vec();
    raw.extend_from_slice(field);
    raw.extend_from_slice(b"\r\n\r\n");
    let mut c = Conn::open(p.addr);
    c.send(&raw);
    let r = c.read_response(false).expect("response");
    assert_eq!((r.status, x_cache(&r)), (200, "REVALIDATED"));
    assert_eq!(r.body, b"hi");
    let heads = heads.lock().unwrap();
    assert_eq!(heads.len(), 2, "one fetch, one revalidation");
    let sent = &heads[1];
    let mut line = field.to_vec();
    line.extend_from_slice(b"\r\n");
    assert!(
        sent.windows(line.len()).any(|w| w == line.as_slice()),
        "the backend got {:?}",
        String::from_utf8_lossy(sent)
    );
    assert!(
        sent.windows(21).any(|w| w == b"If-None-Match: \"v1\"\r\n"),
        "the backend got {:?}",
        String::from_utf8_lossy(sent)
    );
}

/// A response that announces trailers is passed on as the backend framed it, trailer section
/// included, with the cache and compression on: it is neither stored (a stored body has no
/// trailers, and the miss's client would get the stored framing) nor compressed (a compressed
/// body is framed anew). So each request reaches the backend.
#[test]
fn a_response_with_trailers_is_passed_on_not_stored_nor_compressed() {
    let backend = Backend::start("b1");
    let pibl = cached_pibl(&[backend.addr], 60, "compress on\n");
    for _ in 0..2 {
        let raw = common::raw_exchange(
            pibl.addr,
            b"GET /trailers HTTP/1.1\r\nHost: site\r\nAccept-Encoding: gzip\r\nTE: trailers\r\n\
              Connection: close\r\n\r\n",
        );
        let lower = raw.to_ascii_lowercase();
        assert!(lower.starts_with("http/1.1 200"), "{raw}");
        assert!(lower.contains("transfer-encoding: chunked\r\n"), "{raw}");
        assert!(!lower.contains("content-encoding"), "{raw}");
        assert!(!lower.contains("x-cache: hit"), "{raw}");
        assert!(
            raw.ends_with("6\r\nhello \r\n8\r\ntrailers\r\n0\r\nX-Checksum: 42\r\n\r\n"),
            "{raw}"
        );
    }
    assert_eq!(backend.count(), 2);
}
