//! Protocol upgrades: only the protocols `upgrade_protocols` allows (WebSocket by default) reach a
//! backend, and only an upgrade pibl forwarded may become a tunnel. Anything else (h2c above all)
//! would turn the connection into a blind tunnel past pibl's routing, limits, log and cache.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{raw_exchange, Backend, Conn, Pibl, Seen};

const H2C: &str = "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\
                   HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n";

/// No trace of an upgrade reached the backend.
fn assert_not_upgraded(seen: &Seen) {
    assert_eq!(seen.header("Upgrade"), None, "{seen:?}");
    assert_eq!(seen.header("HTTP2-Settings"), None, "{seen:?}");
    assert!(
        seen.header("Connection")
            .is_none_or(|c| !c.to_ascii_lowercase().contains("upgrade")),
        "{seen:?}"
    );
}

/// Sends `raw` and reads until `marker` arrived; everything read.
fn read_until(s: &mut TcpStream, marker: &str) -> String {
    let mut got = Vec::new();
    let mut buf = [0; 4096];
    while !String::from_utf8_lossy(&got).contains(marker) {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn h2c_upgrade_is_served_as_plain_http_and_never_reaches_the_backend() {
    let b = Backend::start("h2c");
    let p = Pibl::start(&[b.addr], "");
    let mut c = Conn::open(p.addr);
    c.send(format!("GET /first HTTP/1.1\r\nHost: a\r\n{H2C}\r\n").as_bytes());
    let r = c.read_response(false).unwrap();
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "backend h2c: GET /first\n")
    );
    // The connection is still HTTP/1.1 through pibl: the next request is routed and answered.
    let r = c.get("/second");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "backend h2c: GET /second\n")
    );
    let seen = b.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].target, "/second");
    assert_not_upgraded(&seen[0]);
}

#[test]
fn unknown_upgrade_tokens_are_removed_and_allowed_ones_kept() {
    let b = Backend::start("tok");
    let p = Pibl::start(&[b.addr], "");
    let mut c = Conn::open(p.addr);
    c.send(
        b"GET /foo HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: foo/2, IRC/6.9\r\n\r\n",
    );
    assert_eq!(c.read_response(false).unwrap().status, 200);
    // A stray HTTP2-Settings, not named by Connection, is not forwarded either.
    c.send(b"GET /stray HTTP/1.1\r\nHost: a\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n");
    assert_eq!(c.read_response(false).unwrap().status, 200);
    let seen = b.seen();
    assert_not_upgraded(&seen[0]);
    assert_not_upgraded(&seen[1]);

    // Several offers: only WebSocket goes on, and the tunnel works.
    let mut s = TcpStream::connect(p.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        b"GET /upgrade HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\n\
          Upgrade: h2c, websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
          Sec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    let head = read_until(&mut s, "\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    s.write_all(b"ping").unwrap();
    assert!(read_until(&mut s, "ping").ends_with("ping"));
    let ws = b
        .seen()
        .into_iter()
        .find(|s| s.target == "/upgrade")
        .unwrap();
    assert_eq!(ws.header("Upgrade"), Some("websocket"));
    assert_eq!(ws.header("Connection"), Some("upgrade"));
    assert_eq!(
        ws.header("Sec-WebSocket-Key"),
        Some("dGhlIHNhbXBsZSBub25jZQ==")
    );
    assert_eq!(ws.header("HTTP2-Settings"), None);
}

#[test]
fn a_101_to_a_request_pibl_did_not_upgrade_is_a_502_never_a_tunnel() {
    // The test backend's /upgrade answers 101 and echoes raw bytes whatever it was asked: a
    // backend that speaks h2c (or misbehaves) switching although pibl forwarded no upgrade.
    let b = Backend::start("rogue");
    let p = Pibl::start(&[b.addr], "");
    for head in [
        format!("GET /upgrade HTTP/1.1\r\nHost: a\r\n{H2C}\r\n"),
        "GET /upgrade HTTP/1.1\r\nHost: a\r\n\r\n".to_string(),
    ] {
        // What would be the first frames of the tunnelled protocol follow the head at once.
        let raw = format!("{head}PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        let out = raw_exchange(p.addr, raw.as_bytes());
        assert!(out.starts_with("HTTP/1.1 502 "), "{out}");
        assert!(out.contains("Connection: close\r\n"), "{out}");
        assert!(!out.contains("101") && !out.contains("PRI *"), "{out}");
    }
    for seen in b.seen() {
        assert_not_upgraded(&seen);
    }
    // pibl still serves.
    let r = common::get(p.addr, "/after");
    assert_eq!(r.status, 200);
}

#[test]
fn upgrade_protocols_none_turns_websocket_off() {
    let b = Backend::start("none");
    let p = Pibl::start(&[b.addr], "upgrade_protocols none\n");
    let ws = "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n";
    let mut c = Conn::open(p.addr);
    c.send(format!("GET /plain HTTP/1.1\r\nHost: a\r\n{ws}\r\n").as_bytes());
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(c.get("/plain-again").status, 200);
    let out = raw_exchange(
        p.addr,
        format!("GET /upgrade HTTP/1.1\r\nHost: a\r\n{ws}\r\nping").as_bytes(),
    );
    assert!(out.starts_with("HTTP/1.1 502 "), "{out}");
    for seen in b.seen() {
        assert_not_upgraded(&seen);
    }
}

#[test]
fn an_operator_may_allow_h2c_with_its_settings() {
    let b = Backend::start("allow");
    let p = Pibl::start(&[b.addr], "upgrade_protocols websocket h2c\n");
    let mut s = TcpStream::connect(p.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(format!("GET /upgrade HTTP/1.1\r\nHost: a\r\n{H2C}\r\n").as_bytes())
        .unwrap();
    let head = read_until(&mut s, "\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    let seen = &b.seen()[0];
    assert_eq!(seen.header("Upgrade"), Some("h2c"));
    assert_eq!(seen.header("Connection"), Some("upgrade, HTTP2-Settings"));
    assert_eq!(
        seen.header("HTTP2-Settings"),
        Some("AAMAAABkAARAAAAAAAIAAAAA")
    );
}
