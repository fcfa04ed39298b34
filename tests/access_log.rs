//! What the access and event logs say: one access line for every response pibl sends (made by
//! pibl or relayed, whole or cut short), with what of the request line was parsed; 408 on a
//! head timeout; one event line per upstream failure; `log_stdout off`.
//!
//! Each pibl here runs one worker: its access lines reach the file in the order the responses
//! ended, so once the line of a last "sentinel" request is in the file, every earlier line is.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::{get, raw_exchange, Backend, Conn, Pibl};

/// Asks `path` on a fresh connection and waits until its access line is in the file, so every
/// line logged before it is there too.
fn sentinel(p: &Pibl, path: &str) {
    let _ = get(p.addr, path);
    let access_line = format!("\"GET {path} HTTP/1.1\"");
    assert_eq!(p.wait_for_log(&access_line, 1).len(), 1, "{}", p.log_file());
}

/// The access lines containing `needle`.
fn lines_with(p: &Pibl, needle: &str) -> Vec<String> {
    p.log_file()
        .lines()
        .filter(|l| l.contains(needle))
        .map(String::from)
        .collect()
}

/// Status code of a raw response.
fn status_of(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a response: {response:?}"))
}

/// A backend address that refuses connections.
fn dead_backend() -> SocketAddr {
    let b = Backend::start("dead");
    b.kill();
    b.addr
}

#[test]
fn every_response_pibl_makes_is_logged_once_with_the_request_line_it_parsed() {
    let p = Pibl::start(
        &[dead_backend()],
        "workers 1\nmax_fails 0\nmax_body_size 1k\nmax_header_bytes 2k\n",
    );
    let long_target = format!("/{}", "t".repeat(3000));
    let big_header = format!("X-Big: {}", "h".repeat(3000));
    // (request, what the access line says of the request line)
    let cases: Vec<(String, &str)> = vec![
        (
            "GET /negative HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n".into(),
            "\"GET /negative HTTP/1.1\"",
        ),
        (
            "POST /both HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc"
                .into(),
            "\"POST /both HTTP/1.1\"",
        ),
        ("BROKEN\r\n\r\n".into(), "\"- - HTTP/1.1\""),
        (
            format!("GET {long_target} HTTP/1.1\r\nHost: t\r\n\r\n"),
            "\"- - HTTP/1.1\"",
        ),
        (
            format!("GET /fat-head HTTP/1.1\r\nHost: t\r\n{big_header}\r\n\r\n"),
            "\"- - HTTP/1.1\"",
        ),
        (
            "POST /too-big HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n".into(),
            "\"POST /too-big HTTP/1.1\"",
        ),
        (
            "GET /no-backend HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".into(),
            "\"GET /no-backend HTTP/1.1\"",
        ),
    ];
    let mut expected = Vec::new();
    for (request, logged) in &cases {
        let response = raw_exchange(p.addr, request.as_bytes());
        let status = status_of(&response);
        assert!(
            matches!(status, 400 | 413 | 414 | 431 | 502),
            "{request:.40}: {response}"
        );
        expected.push(format!("{logged} {status} {} ", response.len()));
    }
    sentinel(&p, "/sentinel");
    let log = p.log_file();
    for (want, (request, _)) in expected.iter().zip(&cases) {
        // Two refusals may look alike (a long target and a long header, both 431 today).
        let alike = expected.iter().filter(|w| *w == want).count();
        assert_eq!(
            lines_with(&p, want).len(),
            alike,
            "{request:.40}: want {alike} line(s) with {want:?} in\n{log}"
        );
    }
    // Nothing else: one line per response, sentinel included.
    let access_lines = log.lines().filter(|l| l.contains(" \"")).count();
    assert_eq!(access_lines, cases.len() + 1, "{log}");
}

#[test]
fn head_timeout_sends_408_when_a_request_began_and_closes_silently_when_nothing_came() {
    let b = Backend::start("b");
    let p = Pibl::start(
        &[b.addr],
        "workers 1\nclient_header_timeout 1s\nkeepalive_timeout 1s\n",
    );
    let read_all = |s: &mut TcpStream| {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    };
    // Part of a head, then nothing: 408, then close.
    let mut began = TcpStream::connect(p.addr).unwrap();
    began
        .write_all(b"GET /slow-head HTTP/1.1\r\nHost: t\r\n")
        .unwrap();
    let answered = read_all(&mut began);
    assert!(answered.starts_with("HTTP/1.1 408 "), "{answered:?}");
    // Nothing at all: closed without a response.
    let mut silent = TcpStream::connect(p.addr).unwrap();
    assert_eq!(read_all(&mut silent), "");
    // An idle keep-alive connection after a request: closed by keepalive_timeout, no line.
    let mut kept = Conn::open(p.addr);
    assert_eq!(kept.get("/kept").status, 200);
    assert!(kept.is_closed());
    sentinel(&p, "/sentinel");
    let log = p.log_file();
    let timeouts = lines_with(&p, "\" 408 ");
    assert_eq!(timeouts.len(), 2, "{log}");
    let answered_line = format!("\"GET /slow-head HTTP/1.1\" 408 {} - ", answered.len());
    assert_eq!(lines_with(&p, &answered_line).len(), 1, "{log}");
    assert_eq!(
        lines_with(&p, "\"- - HTTP/1.1\" 408 0 - ").len(),
        1,
        "{log}"
    );
    assert_eq!(lines_with(&p, "/kept").len(), 1, "{log}");
}

#[test]
fn client_gone_mid_response_is_logged_once_with_the_bytes_it_got() {
    let b = Backend::start("b");
    let p = Pibl::start(&[b.addr], "workers 1\n");
    let size = 16 << 20;
    let path = format!("/big?n={size}");
    let mut s = TcpStream::connect(p.addr).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
        .unwrap();
    let mut got = vec![0u8; 256 * 1024];
    let mut n = 0;
    while n < got.len() {
        match s.read(&mut got[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    assert!(n > 0);
    drop(s); // unread bytes: the close is a reset
    sentinel(&p, "/sentinel");
    let lines = lines_with(&p, &path);
    assert_eq!(lines.len(), 1, "{}", p.log_file());
    let fields: Vec<&str> = lines[0].split(' ').collect();
    assert_eq!(fields[5], "499", "{}", lines[0]);
    let bytes: u64 = fields[6].parse().unwrap();
    assert!(
        bytes >= n as u64 && bytes < size,
        "logged {bytes} bytes; the client read {n} of {size}: {}",
        lines[0]
    );
}

#[test]
fn backend_closing_before_the_head_logs_one_event_line_with_backend_phase_and_cause() {
    let b = Backend::start("closer");
    b.drop_nth_request
        .store(1, std::sync::atomic::Ordering::SeqCst);
    let p = Pibl::start(&[b.addr], "workers 1\nmax_fails 0\n");
    assert_eq!(get(p.addr, "/hangs-up").status, 502);
    sentinel(&p, "/sentinel");
    let events = lines_with(&p, "[WARN] backend");
    let want = format!(
        "backend {} failed at head for GET /hangs-up: closed the connection before a complete \
         response head",
        b.addr
    );
    let about_it: Vec<&String> = events.iter().filter(|l| l.contains("/hangs-up")).collect();
    assert_eq!(about_it.len(), 1, "{}", p.log_file());
    assert!(about_it[0].contains(&want), "{}", p.log_file());
}

#[test]
fn with_every_backend_down_a_request_logs_one_failure_line_not_one_per_backend() {
    let (d1, d2) = (dead_backend(), dead_backend());
    let p = Pibl::start(&[d1, d2], "workers 1\nmax_fails 1\nfail_timeout 60s\n");
    // The first request marks both down (one line each: they were up).
    assert_eq!(get(p.addr, "/marks-down").status, 502);
    assert!(p.wait_for_line("is down", Duration::from_secs(10)));
    for i in 0..3 {
        assert_eq!(get(p.addr, &format!("/all-down/{i}")).status, 502);
    }
    sentinel(&p, "/sentinel");
    let log = p.log_file();
    for i in 0..3 {
        let path = format!("GET /all-down/{i}:");
        let events = log.lines().filter(|l| l.contains(&path)).count();
        assert_eq!(events, 1, "{path}\n{log}");
    }
    let first = log
        .lines()
        .filter(|l| l.contains("failed at connect for GET /marks-down:"))
        .count();
    assert_eq!(first, 2, "{log}");
}

#[test]
fn log_stdout_off_keeps_access_lines_off_stdout_but_in_the_file() {
    let b = Backend::start("b");
    let p = Pibl::start(&[b.addr], "workers 1\nlog_stdout off\n");
    assert_eq!(get(p.addr, "/file-only").status, 200);
    assert_eq!(p.wait_for_log("/file-only", 1).len(), 1);
    // Event lines still reach stdout: a reload's line comes after the access line.
    p.signal(libc::SIGHUP);
    assert!(p.wait_for_stdout("reloaded", 1), "no reload line on stdout");
    let stdout = p.stdout.lock().unwrap().clone();
    assert!(
        !stdout.iter().any(|l| l.contains("/file-only")),
        "{stdout:?}"
    );
    // Switched back on by a reload: access lines on stdout again.
    let conf = std::fs::read_to_string(p.conf_path()).unwrap();
    std::fs::write(
        p.conf_path(),
        conf.replace("log_stdout off", "log_stdout on"),
    )
    .unwrap();
    p.signal(libc::SIGHUP);
    assert!(p.wait_for_stdout("reloaded", 2));
    assert_eq!(get(p.addr, "/echoed").status, 200);
    assert!(p.wait_for_stdout("/echoed", 1), "access line not on stdout");
}

/// The stamps of the lines that have one, in the order given.
fn out_of_order(lines: &[String]) -> Vec<(String, String)> {
    let stamps: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.get(..24).filter(|s| s.ends_with('Z')))
        .collect();
    stamps
        .windows(2)
        .filter(|w| w[1] < w[0])
        .map(|w| (w[0].to_string(), w[1].to_string()))
        .collect()
}

#[test]
fn lines_reach_the_file_and_stdout_in_time_order_across_workers_and_event_lines() {
    let good = Backend::start("good");
    let dead = dead_backend();
    // A GET that meets the dead backend is retried on the good one and logs an event line.
    let p = Pibl::start(&[good.addr, dead], "workers 2\nmax_fails 0\n");
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let addr = p.addr;
            std::thread::spawn(move || {
                for i in 0..40 {
                    // A connection each: the kernel spreads them over both workers.
                    assert_eq!(get(addr, &format!("/order/{t}/{i}")).status, 200);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(p.wait_for_log("\"GET /order/", 240).len(), 240);
    assert!(p.wait_for_stdout("\"GET /order/", 240));
    let file: Vec<String> = p.log_file().lines().map(String::from).collect();
    assert!(file.iter().any(|l| l.contains("failed at connect")));
    let wrong = out_of_order(&file);
    assert!(
        wrong.is_empty(),
        "{} out of order in the file: {wrong:?}",
        wrong.len()
    );
    let stdout = p.stdout.lock().unwrap().clone();
    let wrong = out_of_order(&stdout);
    assert!(
        wrong.is_empty(),
        "{} out of order on stdout: {wrong:?}",
        wrong.len()
    );
}

#[test]
fn a_request_cut_by_the_stop_deadline_is_logged() {
    let b = Backend::start("slow");
    let mut p = Pibl::start(&[b.addr], "workers 1\nshutdown_timeout 1s\n");
    let mut c = Conn::open(p.addr);
    c.send(b"GET /slow?head_ms=8000 HTTP/1.1\r\nHost: t\r\n\r\n");
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while b.count() == 0 {
        assert!(
            std::time::Instant::now() < until,
            "request never reached the backend"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(p.stop(), Some(0));
    // Nothing reached the client: 503 with 0 bytes, once.
    let lines = lines_with(&p, "\"GET /slow?head_ms=8000 HTTP/1.1\"");
    assert_eq!(lines.len(), 1, "{}", p.log_file());
    assert!(lines[0].contains("\" 503 0 "), "{}", lines[0]);
}
