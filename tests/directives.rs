//! Every config directive does what docs/config.md says: one test each for those not covered
//! by the proxy, cache, fault and limit tests.

mod common;

use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{get, pattern, raw_exchange, Backend, Conn, Pibl};

fn accepted(b: &Backend) -> usize {
    b.accepted.load(Ordering::SeqCst)
}

#[test]
fn access_log_off_writes_no_access_lines_but_keeps_events() {
    let b = Backend::start("d1");
    let p = Pibl::start(&[b.addr], "access_log off\n");
    let mut c = Conn::open(p.addr);
    assert_eq!(c.get("/quiet").status, 200);
    drop(c);
    let mut p = p;
    assert_eq!(p.stop(), Some(0));
    let log = p.log_file();
    assert!(log.contains("listening on"), "{log}");
    assert!(!log.contains("/quiet"), "{log}");
}

#[test]
fn log_file_sets_where_lines_go() {
    let b = Backend::start("d2");
    let mut p = Pibl::start(&[b.addr], "log_file custom.log\n");
    Conn::open(p.addr).get("/custom");
    assert_eq!(p.stop(), Some(0));
    let custom = std::fs::read_to_string(p.dir.path().join("custom.log")).unwrap();
    assert!(custom.contains("\"GET /custom HTTP/1.1\" 200"), "{custom}");
    assert!(!p.dir.path().join("pibl.log").exists());
}

#[test]
fn keepalive_timeout_closes_idle_clients() {
    let b = Backend::start("d3");
    let p = Pibl::start(&[b.addr], "keepalive_timeout 300ms\n");
    let mut c = Conn::open(p.addr);
    assert_eq!(c.get("/ka").status, 200);
    let started = Instant::now();
    assert!(c.is_closed(), "the idle connection should be closed");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
}

#[test]
fn max_header_bytes_and_max_headers_bound_the_head() {
    let b = Backend::start("d4");
    let p = Pibl::start(&[b.addr], "max_header_bytes 2k\nmax_headers 5\n");
    let big = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
        "x".repeat(3000)
    );
    assert!(raw_exchange(p.addr, big.as_bytes()).starts_with("HTTP/1.1 431 "));
    let many = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n";
    assert!(raw_exchange(p.addr, many.as_bytes()).starts_with("HTTP/1.1 431 "));
    let fine = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n";
    let mut c = Conn::open(p.addr);
    c.send(fine.as_bytes());
    assert_eq!(c.read_response(false).unwrap().status, 200);
}

#[test]
fn upstream_pool_size_0_opens_a_connection_per_request() {
    let b = Backend::start("d5");
    let p = Pibl::start(&[b.addr], "upstream_pool_size 0\n");
    let mut c = Conn::open(p.addr);
    for _ in 0..5 {
        assert_eq!(c.get("/np").status, 200);
    }
    assert_eq!(accepted(&b), 5);
}

#[test]
fn pool_idle_timeout_retires_idle_upstream_connections() {
    let b = Backend::start("d6");
    let p = Pibl::start(&[b.addr], "workers 1\npool_idle_timeout 200ms\n");
    let mut c = Conn::open(p.addr);
    assert_eq!(c.get("/a").status, 200);
    assert_eq!(c.get("/b").status, 200);
    assert_eq!(
        accepted(&b),
        1,
        "the second request reuses the pooled connection"
    );
    // Wait (bounded) until pibl closes the idle pooled connection.
    let until = Instant::now() + Duration::from_secs(5);
    while b.open_connections() > 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(c.get("/c").status, 200);
    assert_eq!(accepted(&b), 2, "a fresh connection after the idle timeout");
}

#[test]
fn small_buffer_size_still_relays_large_bodies_intact() {
    let b = Backend::start("d7");
    let p = Pibl::start(&[b.addr], "buffer_size 1k\n");
    let mut c = Conn::open(p.addr);
    let n = 300_000;
    let r = c.get(&format!("/big?n={n}"));
    assert_eq!(crc32fast::hash(&r.body), crc32fast::hash(&pattern(n)));
    let body = pattern(100_000);
    c.send(
        format!(
            "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    c.send(&body);
    assert_eq!(c.read_response(false).unwrap().body, body);
}

#[test]
fn max_connections_holds_extra_clients_until_a_slot_frees() {
    let b = Backend::start("d8");
    let p = Pibl::start(
        &[b.addr],
        "workers 1\nmax_connections 2\nadmin 127.0.0.1:0\n",
    );
    let reached = || {
        let metrics = get(p.admin_addr(), "/metrics").text();
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("pibl_max_connections_reached_total "))
            .map(|v| v.parse::<u64>().expect("a count"))
            .expect("pibl_max_connections_reached_total in /metrics")
    };
    assert_eq!(reached(), 0);
    let mut c1 = Conn::open(p.addr);
    let mut c2 = Conn::open(p.addr);
    assert_eq!(c1.get("/1").status, 200);
    assert_eq!(c2.get("/2").status, 200);
    // The third connects (kernel backlog) but is served only once a slot frees.
    let mut c3 = Conn::open(p.addr);
    c3.stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    c3.send(b"GET /3 HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(
        c3.read_response(false).is_none(),
        "served beyond max_connections"
    );
    // Said in the log (at most once a second) and counted.
    assert!(
        p.wait_for_line(
            "max_connections 2 reached: new clients wait",
            Duration::from_secs(5)
        ),
        "{}",
        p.log_file()
    );
    assert!(reached() >= 1);
    drop(c1);
    c3.stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(c3.read_response(false).unwrap().status, 200);
}

#[test]
fn client_timeout_closes_a_stalled_request_body() {
    let b = Backend::start("d9");
    let p = Pibl::start(&[b.addr], "client_timeout 300ms\n");
    let mut c = Conn::open(p.addr);
    c.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc");
    let started = Instant::now();
    assert!(c.read_response(false).is_none_or(|r| r.status >= 400));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn shutdown_timeout_bounds_the_wait_for_requests_in_flight() {
    let b = Backend::start("d10");
    let mut p = Pibl::start(&[b.addr], "shutdown_timeout 500ms\n");
    let mut c = Conn::open(p.addr);
    // A request that never gets an answer (the backend sleeps 30 s on /slow-head).
    c.stream
        .write_all(b"GET /slow-head HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let until = Instant::now() + Duration::from_secs(5);
    while b.count() == 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    let started = Instant::now();
    assert_eq!(p.stop(), Some(0));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
