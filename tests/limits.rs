//! Resource limits under load: many idle connections, slowloris, per-worker connection limit,
//! request body size limit. `idle_connection_memory` (ignored) measures RSS per idle connection.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{get, raise_fd_limit, raw_exchange, Backend, Conn, Pibl};

/// Opens `n` keep-alive connections, each having made one request (so each is an idle
/// keep-alive session holding no buffers).
fn idle_connections(p: &Pibl, n: usize) -> Vec<Conn> {
    (0..n)
        .map(|i| {
            let mut c = Conn::open(p.addr);
            let r = c.get(&format!("/idle/{i}"));
            assert_eq!(r.status, 200, "connection {i}");
            c
        })
        .collect()
}

#[test]
fn a_thousand_idle_connections_do_not_stop_new_clients() {
    let limit = raise_fd_limit();
    let n = 1000.min((limit as usize).saturating_sub(200) / 2);
    let b = Backend::start("idle");
    let p = Pibl::start(&[b.addr], "");
    let mut idle = idle_connections(&p, n);
    for i in 0..20 {
        let started = Instant::now();
        assert_eq!(get(p.addr, &format!("/new/{i}")).status, 200);
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    // The idle ones are still usable.
    for c in idle.iter_mut().step_by(97) {
        assert_eq!(c.get("/still-here").status, 200);
    }
}

#[test]
fn a_low_soft_open_files_limit_is_raised_at_start() {
    raise_fd_limit();
    let b = Backend::start("fd");
    let p = Pibl::start_with_soft_fd_limit(&[b.addr], "", 256);
    // 300 clients at once, each with a request under way and its connection kept open: more
    // than 600 descriptors in pibl, over the 256 it was started with.
    let mut conns: Vec<Conn> = (0..300).map(|_| Conn::open(p.addr)).collect();
    for (i, c) in conns.iter_mut().enumerate() {
        c.send(format!("GET /fd/{i} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    }
    for (i, c) in conns.iter_mut().enumerate() {
        let r = c.read_response(false).expect("a response");
        assert_eq!(r.status, 200, "connection {i}");
        assert!(
            r.text().ends_with(&format!("GET /fd/{i}\n")),
            "{}",
            r.text()
        );
    }
    assert!(p.wait_for_line(
        "open files limit raised from 256 to",
        Duration::from_secs(5)
    ));
}

#[test]
fn slowloris_connections_time_out_while_normal_clients_are_served() {
    raise_fd_limit();
    let b = Backend::start("slow");
    let p = Pibl::start(&[b.addr], "client_header_timeout 2s\n");
    let mut slow: Vec<Option<TcpStream>> = (0..300)
        .map(|_| {
            let s = TcpStream::connect(p.addr).unwrap();
            s.set_nonblocking(true).unwrap();
            Some(s)
        })
        .collect();
    let head = b"GET /slowloris HTTP/1.1\r\nHost: a\r\nX-Trickle: ";
    let addr = p.addr;
    let normal = std::thread::spawn(move || {
        let mut worst = Duration::ZERO;
        for i in 0..40 {
            let started = Instant::now();
            let r = get(addr, &format!("/normal/{i}"));
            assert_eq!(r.status, 200);
            worst = worst.max(started.elapsed());
            std::thread::sleep(Duration::from_millis(100));
        }
        worst
    });
    // A byte every 200 ms on every slow connection, for up to 5 s.
    let started = Instant::now();
    let mut answers = Vec::new();
    let mut first_done = None;
    let mut step = 0;
    while started.elapsed() < Duration::from_secs(5) && slow.iter().any(Option::is_some) {
        for slot in slow.iter_mut() {
            let Some(s) = slot else { continue };
            let byte = head.get(step).copied().unwrap_or(b'x');
            let mut got = [0u8; 512];
            match s.read(&mut got) {
                Ok(n) => {
                    // Answered (408) or closed: this one is done.
                    answers.push(String::from_utf8_lossy(&got[..n]).into_owned());
                    *slot = None;
                    continue;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => {
                    answers.push(String::new());
                    *slot = None;
                    continue;
                }
            }
            if s.write_all(&[byte]).is_err() {
                answers.push(String::new());
                *slot = None;
            }
        }
        step += 1;
        if first_done.is_none() && !answers.is_empty() {
            first_done = Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let all_done = started.elapsed();
    let worst = normal.join().unwrap();
    let still_open = slow.iter().filter(|s| s.is_some()).count();
    assert_eq!(
        still_open, 0,
        "slow connections outlived the header timeout"
    );
    let timed_out = answers
        .iter()
        .filter(|a| a.starts_with("HTTP/1.1 408 ") || a.is_empty())
        .count();
    assert_eq!(timed_out, 300, "{:?}", &answers[..answers.len().min(3)]);
    assert!(
        worst < Duration::from_secs(2),
        "a normal client waited {worst:?}"
    );
    assert!(b.seen().iter().all(|s| s.target != "/slowloris"));
    eprintln!(
        "slowloris: 300 connections answered 408 or closed between {:?} and {:?}; \
         slowest of 40 normal requests {worst:?}",
        first_done.unwrap_or_default(),
        all_done
    );
}

#[test]
fn per_worker_connection_limit_holds_new_clients_in_the_backlog() {
    let b = Backend::start("pw");
    let p = Pibl::start(&[b.addr], "workers 1\nmax_connections_per_worker 2\n");
    let first = idle_connections(&p, 2);
    // The kernel completes the handshake, but pibl does not accept the third client yet.
    let mut third = TcpStream::connect(p.addr).unwrap();
    third
        .set_read_timeout(Some(Duration::from_millis(600)))
        .unwrap();
    third
        .write_all(b"GET /third HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 1024];
    let waited = third.read(&mut buf);
    assert!(
        matches!(&waited, Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "served over the limit: {waited:?}"
    );
    drop(first);
    third
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let n = third.read(&mut buf).unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200 "),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
}

#[test]
fn max_body_size_gives_413_for_declared_and_growing_bodies() {
    let b = Backend::start("body");
    let p = Pibl::start(&[b.addr], "max_body_size 1k\n");
    let out = raw_exchange(
        p.addr,
        format!(
            "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2000\r\n\r\n{}",
            "x".repeat(2000)
        )
        .as_bytes(),
    );
    assert!(out.starts_with("HTTP/1.1 413 "), "{out}");
    assert!(out.contains("Connection: close"), "{out}");
    assert_eq!(b.count(), 0);
    // A chunked body that grows past the limit.
    let chunk = format!("258\r\n{}\r\n", "y".repeat(600));
    let out = raw_exchange(
        p.addr,
        format!(
            "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n{chunk}{chunk}{chunk}0\r\n\r\n"
        )
        .as_bytes(),
    );
    assert!(out.starts_with("HTTP/1.1 413 "), "{out}");
    assert!(b.seen().iter().all(|s| s.body_len < 1200));
    // Under the limit is fine, and the limit is off by default.
    let mut c = Conn::open(p.addr);
    c.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1024\r\n\r\n");
    c.send(&[b'z'; 1024]);
    assert_eq!(c.read_response(false).unwrap().body.len(), 1024);
    let p2 = Pibl::start(&[b.addr], "");
    let mut c = Conn::open(p2.addr);
    c.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n");
    c.send(&vec![b'q'; 100_000]);
    assert_eq!(c.read_response(false).unwrap().body.len(), 100_000);
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// `cargo test --test limits idle_connection_memory -- --ignored --nocapture`;
/// `PIBL_IDLE_N` sets the number of connections (default 5000).
#[test]
#[ignore]
fn idle_connection_memory() {
    raise_fd_limit();
    let n: usize = std::env::var("PIBL_IDLE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let b = Backend::start("mem");
    let p = Pibl::start(&[b.addr], "");
    // Warm up the pools with a few busy connections first.
    drop(idle_connections(&p, 50));
    std::thread::sleep(Duration::from_millis(300));
    let before = rss_kib(p.pid());
    let idle = idle_connections(&p, n);
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_kib(p.pid());
    eprintln!(
        "RSS {before} KiB -> {after} KiB with {n} idle keep-alive connections: {:.2} KiB each",
        after.saturating_sub(before) as f64 / n as f64
    );
    drop(idle);
}

#[test]
fn a_hundred_headers_pass_and_thousands_of_tiny_ones_get_431() {
    let b = Backend::start("hdrs");
    let p = Pibl::start(&[b.addr], "");
    for n in [100, 250] {
        let fields: String = (0..n)
            .map(|i| format!("X-Field-{i}: value {i}\r\n"))
            .collect();
        let mut c = Conn::open(p.addr);
        c.send(format!("GET /fields/{n} HTTP/1.1\r\nHost: a\r\n{fields}\r\n").as_bytes());
        assert_eq!(c.read_response(false).unwrap().status, 200, "{n} fields");
        let seen = b
            .seen()
            .into_iter()
            .find(|s| s.target == format!("/fields/{n}"));
        let seen = seen.expect("the request reached the backend");
        assert_eq!(
            seen.header(&format!("X-Field-{}", n - 1)),
            Some(&*format!("value {}", n - 1))
        );
        assert_eq!(
            seen.headers
                .iter()
                .filter(|(k, _)| k.starts_with("X-Field-"))
                .count(),
            n
        );
    }
    // Thousands of tiny fields, well under max_header_bytes: the count guard refuses them.
    let tiny: String = (0..5000).map(|_| "a:1\r\n").collect();
    let out = raw_exchange(
        p.addr,
        format!("GET /tiny HTTP/1.1\r\nHost: a\r\n{tiny}\r\n").as_bytes(),
    );
    assert!(out.starts_with("HTTP/1.1 431 "), "{out}");
    assert!(out.contains("Connection: close\r\n"), "{out}");
    assert!(b.seen().iter().all(|s| s.target != "/tiny"));
}

#[test]
fn a_response_with_150_set_cookie_fields_is_relayed_intact() {
    let b = Backend::start("cookies");
    let p = Pibl::start(&[b.addr], "");
    let query: String = (0..150)
        .map(|i| format!("&h=Set-Cookie:c{i}=v{i}"))
        .collect();
    let out = raw_exchange(
        p.addr,
        format!("GET /res?status=200{query} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    let mut fields = [httparse::EMPTY_HEADER; 512];
    let mut resp = httparse::Response::new(&mut fields);
    let parsed = resp.parse(out.as_bytes());
    assert!(matches!(parsed, Ok(httparse::Status::Complete(_))), "{out}");
    assert_eq!(resp.code, Some(200), "{out}");
    let cookies: Vec<&[u8]> = resp
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("set-cookie"))
        .map(|h| h.value)
        .collect();
    let expected: Vec<String> = (0..150).map(|i| format!("c{i}=v{i}")).collect();
    assert_eq!(
        cookies,
        expected.iter().map(String::as_bytes).collect::<Vec<_>>()
    );
    assert!(out.ends_with("#1\n"), "{out}");
}
