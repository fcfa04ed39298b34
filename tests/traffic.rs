//! Traffic control with the real binary: `allow`/`deny` (403) and `rate_limit` (429 with
//! `Retry-After`), checked on the client's address.

mod common;

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Backend, Conn, Pibl};
use pibl::config::Config;

/// A connection to pibl from the source address `source` (127.0.0.2 and so on: on Linux the
/// whole of 127.0.0.0/8 is local).
fn conn_from(source: &str, to: SocketAddr) -> Conn {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let from: SocketAddr = format!("{source}:0").parse().unwrap();
    socket.bind(&from.into()).unwrap();
    socket.connect(&to.into()).unwrap();
    let stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    Conn {
        stream,
        buf: Vec::new(),
    }
}

#[test]
fn deny_answers_403_and_the_first_matching_rule_wins() {
    let b = Backend::start("acl1");
    let mut p = Pibl::start(&[b.addr], "allow 127.0.0.2\ndeny 127.0.0.0/8\n");
    let mut denied = Conn::open(p.addr);
    let r = denied.get("/secret");
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("403 Forbidden"), "{}", r.text());
    // nginx keeps the connection after a 403: so does pibl.
    assert_eq!(denied.get("/secret-again").status, 403);
    let mut allowed = conn_from("127.0.0.2", p.addr);
    assert_eq!(allowed.get("/open").status, 200);
    assert_eq!(b.count(), 1, "denied requests never reach a backend");
    assert_eq!(p.stop(), Some(0));
    let log = p.log_file();
    assert!(log.contains("\"GET /secret HTTP/1.1\" 403"), "{log}");
}

#[test]
fn deny_all_refuses_everyone_not_allowed_before_it() {
    let b = Backend::start("acl2");
    let p = Pibl::start(&[b.addr], "allow 10.0.0.0/8\ndeny all\n");
    assert_eq!(Conn::open(p.addr).get("/").status, 403);
    assert_eq!(b.count(), 0);
}

#[test]
fn rate_limit_answers_429_after_the_burst_and_recovers() {
    let b = Backend::start("rl1");
    let p = Pibl::start(&[b.addr], "rate_limit 1/s burst=2 per=client_ip\n");
    let mut c = Conn::open(p.addr);
    let started = Instant::now();
    assert_eq!(c.get("/1").status, 200);
    assert_eq!(c.get("/2").status, 200);
    let refused = c.get("/3");
    assert_eq!(refused.status, 429, "{}", refused.text());
    // One token a second, so the next is back within a second: `1` (rounded up).
    assert_eq!(refused.header("Retry-After"), Some("1"));
    // Another client has a bucket of its own.
    assert_eq!(conn_from("127.0.0.2", p.addr).get("/other").status, 200);
    // The connection is kept after a 429 (its request had no body), and after Retry-After the
    // client is served again. A bounded wait: the rate is one a second.
    let retry = Duration::from_secs(1);
    std::thread::sleep(retry.saturating_sub(started.elapsed()) + Duration::from_millis(50));
    assert_eq!(c.get("/4").status, 200);
    assert_eq!(c.get("/5").status, 429);
    assert_eq!(b.count(), 4);
}

#[test]
fn a_refused_request_with_a_body_closes_the_connection() {
    let b = Backend::start("rl2");
    let p = Pibl::start(&[b.addr], "rate_limit 1/m burst=1\n");
    let mut c = Conn::open(p.addr);
    assert_eq!(c.get("/").status, 200);
    c.send(b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello");
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 429);
    // 1/m: the token is back in a minute.
    assert_eq!(r.header("Retry-After"), Some("60"));
    assert_eq!(r.header("Connection"), Some("close"));
    assert!(c.is_closed());
}

fn parse(text: &str) -> Result<Config, String> {
    let text = format!("{text}backend 127.0.0.1:9\n");
    Config::parse(Path::new("t.conf"), &text).map_err(|e| e.to_string())
}

#[test]
fn access_directives_are_checked_and_located() {
    let cfg = parse("allow 10.0.0.0/8\ndeny ::1\ndeny all\nrate_limit 5/s burst=10\n").unwrap();
    assert_eq!(cfg.access.acl.len(), 3);
    assert!(cfg
        .summary()
        .contains("\nallow 10.0.0.0/8\ndeny ::1/128\ndeny all\n"));
    assert!(cfg
        .summary()
        .contains("\nrate_limit 5/s burst=10 per=client_ip\n"));
    let again = Config::parse(Path::new("t.conf"), &cfg.summary()).unwrap();
    assert_eq!(again.access, cfg.access);
    for (text, needle) in [
        (
            "allow 10.0.0.1/8\n",
            "t.conf:1: allow: '10.0.0.1/8' has bits set",
        ),
        (
            "\ndeny 300.0.0.0\n",
            "t.conf:2: deny: '300.0.0.0' is not an address",
        ),
        (
            "rate_limit 5/s\n",
            "t.conf:1: rate_limit: burst=N is missing",
        ),
        ("rate_limit 5/h burst=1\n", "per second (/s) or minute (/m)"),
        (
            "rate_limit 5/s burst=1\nrate_limit 6/s burst=1\n",
            "t.conf:2: duplicate 'rate_limit'",
        ),
        ("rate_limit_table 0\n", "t.conf:1: rate_limit_table"),
    ] {
        let e = parse(text).unwrap_err();
        assert!(e.contains(needle), "{text:?}: {e}");
    }
}

#[test]
fn error_page_replaces_pibls_own_error_responses_only() {
    let b = Backend::start("ep1");
    let dir = common::TempDir::new("error-page");
    let page = dir.path().join("5xx.html");
    std::fs::write(&page, "<h1>we are down</h1>\n").unwrap();
    let forbidden = dir.path().join("403.html");
    std::fs::write(&forbidden, "<h1>not you</h1>\n").unwrap();
    let extra = format!(
        "error_page 502 504 {}\nerror_page 403 {}\ndeny 127.0.0.2\nmax_fails 0\n",
        page.display(),
        forbidden.display()
    );
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let p = Pibl::start(&[dead_addr], &extra);
    let r = Conn::open(p.addr).get("/");
    assert_eq!(r.status, 502);
    assert_eq!(r.header("Content-Type"), Some("text/html"));
    assert_eq!(r.text(), "<h1>we are down</h1>\n");
    let r = conn_from("127.0.0.2", p.addr).get("/");
    assert_eq!(r.status, 403);
    assert_eq!(r.text(), "<h1>not you</h1>\n");
    // A status without a page keeps the text body.
    let bad = common::raw_exchange(p.addr, b"GET / HTTP/1.1\r\n\r\n");
    assert!(bad.starts_with("HTTP/1.1 400 "), "{bad}");
    assert!(bad.contains("text/plain"), "{bad}");
    // A backend's own 502 is relayed as it is, never replaced.
    let p2 = Pibl::start(&[b.addr], &extra);
    let r = Conn::open(p2.addr).get("/res?status=502");
    assert_eq!(r.status, 502);
    assert!(r.text().starts_with("backend ep1: GET"), "{}", r.text());
}

#[test]
fn a_missing_error_page_is_a_config_error_naming_it() {
    let e = parse("error_page 502 /nonexistent/pibl-5xx.html\n").unwrap_err();
    assert!(
        e.contains("t.conf:1: error_page: cannot read /nonexistent/pibl-5xx.html"),
        "{e}"
    );
    let e = parse("error_page /x.html\n").unwrap_err();
    assert!(e.contains("t.conf:1: error_page: takes one or more"), "{e}");
}
