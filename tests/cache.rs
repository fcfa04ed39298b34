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
fn ttl_expiry_with_t_1() {
    let b = Backend::start("c2");
    let p = cached_pibl(&[b.addr], 1, "");
    let url = res("ttl", &[]);
    get_with(p.addr, &url, "");
    assert_eq!(x_cache(&get_with(p.addr, &url, "")), "HIT");
    std::thread::sleep(Duration::from_millis(2100));
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
