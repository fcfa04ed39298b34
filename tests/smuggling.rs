//! Request-smuggling shapes and other bad input on raw sockets. Each case carries a second,
//! smuggled request after the bad one: the proxy must refuse the first (and close), the backend
//! must never see the smuggled one, and the proxy must still serve normal requests afterwards.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{get, raw_exchange, Backend, Pibl};

const SMUGGLED: &str = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n";

/// Sends `bad` followed by a smuggled request; expects `status` and a closed connection.
fn refused(p: &Pibl, b: &Backend, bad: &str, status: u16) {
    let raw = format!("{bad}{SMUGGLED}");
    let out = raw_exchange(p.addr, raw.as_bytes());
    let expected = format!("HTTP/1.1 {status} ");
    assert!(out.starts_with(&expected), "{bad:?} -> {out:?}");
    assert!(out.contains("Connection: close"), "{bad:?} -> {out:?}");
    // Exactly one response: the smuggled request was not answered either.
    assert_eq!(
        out.matches("Server: pibl\r\n").count(),
        1,
        "{bad:?} -> {out:?}"
    );
    assert!(
        b.seen().iter().all(|s| s.target != "/smuggled"),
        "{bad:?}: the backend saw the smuggled request"
    );
    let r = get(p.addr, "/after");
    assert_eq!(r.status, 200, "{bad:?}: proxy no longer serves");
}

fn setup() -> (Backend, Pibl) {
    let b = Backend::start("s");
    let p = Pibl::start(&[b.addr], "");
    (b, p)
}

#[test]
fn content_length_and_transfer_encoding_together() {
    let (b, p) = setup();
    for bad in [
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
    ] {
        refused(&p, &b, bad, 400);
    }
    assert!(b.seen().iter().all(|s| s.method != "POST"));
}

#[test]
fn bad_or_duplicate_content_length() {
    let (b, p) = setup();
    for cl in [
        "Content-Length: 3\r\nContent-Length: 4",
        "Content-Length: +3",
        "Content-Length: 3 3",
        "Content-Length: 1,1",
        "Content-Length: 0x3",
        "Content-Length: -1",
        "Content-Length: ",
        "Content-Length: 99999999999999999999999",
    ] {
        refused(
            &p,
            &b,
            &format!("POST / HTTP/1.1\r\nHost: a\r\n{cl}\r\n\r\nabc"),
            400,
        );
    }
    assert!(b.seen().iter().all(|s| s.method != "POST"));
}

#[test]
fn transfer_encoding_not_ending_in_chunked() {
    let (b, p) = setup();
    for te in ["chunked, identity", "chunked, gzip", "identity", "gzip", ""] {
        refused(
            &p,
            &b,
            &format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: {te}\r\n\r\n0\r\n\r\n"),
            400,
        );
    }
    refused(
        &p,
        &b,
        "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    );
    assert!(b.seen().iter().all(|s| s.method != "POST"));
}

#[test]
fn header_syntax_control_bytes_obs_fold_and_space_before_colon() {
    let (b, p) = setup();
    for bad in [
        "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n folded: yes\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\tfolded\r\n\r\n",
        "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n",
        "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
        "\x16\x03\x01garbage\r\n\r\n",
    ] {
        refused(&p, &b, bad, 400);
    }
    assert_eq!(b.seen().iter().filter(|s| s.target != "/after").count(), 0);
}

#[test]
fn host_rules() {
    let (b, p) = setup();
    for bad in [
        "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
    ] {
        refused(&p, &b, bad, 400);
    }
    assert_eq!(b.seen().iter().filter(|s| s.target != "/after").count(), 0);
}

#[test]
fn chunked_framing_bare_lf_bad_size_and_overflow() {
    let (b, p) = setup();
    let head = "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    for body in [
        "5\nhello\r\n0\r\n\r\n",
        "5\r\nhello\n0\r\n\r\n",
        "5\r\nhello\r\n0\n\r\n",
        "5\r\nhelloXX0\r\n\r\n",
        "zz\r\nhello\r\n0\r\n\r\n",
        "-5\r\nhello\r\n0\r\n\r\n",
        "ffffffffffffffffff\r\nx\r\n0\r\n\r\n",
        "10000000000000000\r\nx\r\n0\r\n\r\n",
    ] {
        refused(&p, &b, &format!("{head}{body}"), 400);
    }
    // The head may have been forwarded, but no complete POST body ever was.
    assert!(b
        .seen()
        .iter()
        .filter(|s| s.method == "POST")
        .all(|s| s.body_len < 5));
}

#[test]
fn version_length_and_count_limits() {
    let (b, p) = setup();
    refused(&p, &b, "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505);
    refused(
        &p,
        &b,
        "GET / HTTP/1.1\r\nHost: a\r\nX: ]\r\n\r\n"
            .replace(']', &"x".repeat(70 * 1024))
            .as_str(),
        431,
    );
    let many: String = (0..300).map(|i| format!("X-{i}: v\r\n")).collect();
    refused(
        &p,
        &b,
        &format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n"),
        431,
    );
    refused(
        &p,
        &b,
        &format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "u".repeat(70 * 1024)),
        414,
    );
    refused(&p, &b, "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 405);
    assert_eq!(b.seen().iter().filter(|s| s.target != "/after").count(), 0);
}

#[test]
fn a_malformed_version_is_400_and_an_unsupported_one_505() {
    let (b, p) = setup();
    for bad in [
        "HTTP/1.x",
        "HTTP/1.",
        "HTTP/2",
        "HTTP/11.1",
        "http/1.1",
        "HTTP/ 1.1",
        "HTTPS/1.1",
    ] {
        refused(&p, &b, &format!("GET / {bad}\r\nHost: a\r\n\r\n"), 400);
    }
    for unsupported in ["HTTP/2.0", "HTTP/3.0"] {
        refused(
            &p,
            &b,
            &format!("GET / {unsupported}\r\nHost: a\r\n\r\n"),
            505,
        );
    }
    // A version that arrives in pieces is judged once its line has ended.
    let mut s = TcpStream::connect(p.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET / HTTP/2").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 512];
    assert!(s.read(&mut buf).is_err(), "answered before the line ended");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b".0\r\nHost: a\r\n\r\n").unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 505 "), "{out}");
    assert_eq!(b.seen().iter().filter(|s| s.target != "/after").count(), 0);
}

#[test]
fn a_request_line_over_max_header_bytes_is_414_whatever_the_limit() {
    let b = Backend::start("s414");
    let p = Pibl::start(&[b.addr], "max_header_bytes 2k\n");
    let target = "u".repeat(10 * 1024);
    refused(
        &p,
        &b,
        &format!("GET /{target} HTTP/1.1\r\nHost: a\r\n\r\n"),
        414,
    );
    // The line never ends: the head buffer fills first.
    let out = raw_exchange(p.addr, format!("GET /{target}").as_bytes());
    assert!(out.starts_with("HTTP/1.1 414 "), "{out}");
    // A request line that fits, with header fields that do not: 431.
    refused(
        &p,
        &b,
        &format!(
            "GET /{} HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
            "u".repeat(1500),
            "x".repeat(1000)
        ),
        431,
    );
    assert_eq!(b.seen().iter().filter(|s| s.target != "/after").count(), 0);
}
