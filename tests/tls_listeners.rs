//! TLS listeners with real clients (issue 14): several `listen` lines, plain and TLS side by
//! side, every worker accepting on all of them; a WebSocket tunnel through a TLS listener; and
//! pibl-client over https through pibl.

mod client_support;
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use client_support::Client;
use common::tls_listener::{first_tls, listeners, write_cert_pair};
use common::tls_origin::TestCa;
use common::{get, Backend, Pibl, TempDir};

/// A CA, and a certificate for `localhost` and `127.0.0.1` written as a `certificate` line.
struct Certs {
    ca: TestCa,
    line: String,
    _dir: TempDir,
}

fn certs() -> Certs {
    let ca = TestCa::new("listeners CA");
    let cert = ca.issue(&["localhost", "127.0.0.1"]);
    let dir = TempDir::new("listeners-certs");
    let line = write_cert_pair(dir.path(), "c", &cert.chain_pem, &cert.key_pem);
    Certs {
        ca,
        line,
        _dir: dir,
    }
}

#[test]
fn two_plain_and_two_tls_listeners_all_serve() {
    let backend = Backend::start("many");
    let certs = certs();
    let pibl = Pibl::start(
        &[backend.addr],
        &format!(
            "listen 127.0.0.1:0\nlisten 127.0.0.1:0 tls\nlisten 127.0.0.1:0 tls\n{}",
            certs.line
        ),
    );
    let all = listeners(&pibl);
    assert_eq!(
        all.iter().map(|&(_, tls)| tls).collect::<Vec<_>>(),
        vec![false, false, true, true],
        "{all:?}"
    );
    for &(addr, _) in all.iter().filter(|(_, tls)| !tls) {
        let r = get(addr, "/plain");
        assert_eq!(r.status, 200, "plain listener {addr}");
        assert_eq!(r.text(), "backend many: GET /plain\n");
    }
    let have_curl = Command::new("curl").arg("--version").output().is_ok();
    if !have_curl {
        eprintln!("skipped the TLS half: curl is not installed");
        return;
    }
    for &(addr, _) in all.iter().filter(|(_, tls)| *tls) {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "20", "--cacert"])
            .arg(&certs.ca.cert_path)
            .arg(format!("https://127.0.0.1:{}/tls", addr.port()))
            .output()
            .expect("curl");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "backend many: GET /tls\n",
            "TLS listener {addr}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Reads from `s` until `marker` has arrived; everything read.
fn read_until<S: Read>(s: &mut S, marker: &[u8]) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    while !got.windows(marker.len()).any(|w| w == marker) {
        let n = s.read(&mut buf).expect("read");
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    got
}

#[test]
fn websocket_through_a_tls_listener() {
    let backend = Backend::start("ws");
    let certs = certs();
    let pibl = Pibl::start(
        &[backend.addr],
        &format!("listen 127.0.0.1:0 tls\n{}", certs.line),
    );
    let tls = first_tls(&pibl);
    let config = pibl::tls::client::client_config(
        &pibl::tls::client::Trust::CaFile(certs.ca.cert_path.clone()),
        &[b"http/1.1"],
    )
    .expect("client config");
    let conn = rustls::ClientConnection::new(config, "localhost".try_into().expect("name"))
        .expect("client connection");
    let sock = TcpStream::connect(tls).expect("connect");
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut s = rustls::StreamOwned::new(conn, sock);
    s.write_all(
        b"GET /upgrade HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
          Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
          Sec-WebSocket-Version: 13\r\n\r\n",
    )
    .expect("upgrade request");
    let head = read_until(&mut s, b"\r\n\r\n");
    assert!(
        head.starts_with(b"HTTP/1.1 101 "),
        "{}",
        String::from_utf8_lossy(&head)
    );
    s.write_all(b"ping").expect("ping");
    assert!(read_until(&mut s, b"ping").ends_with(b"ping"));
    // More than one buffer and one TLS record each way: it all comes back, in order.
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let mut marked = big.clone();
    marked.extend_from_slice(b"END-OF-BIG");
    s.write_all(&marked).expect("big write");
    let echoed = read_until(&mut s, b"END-OF-BIG");
    assert_eq!(echoed.len(), marked.len());
    assert!(echoed == marked, "the echo differs");
    let ws = backend
        .seen()
        .into_iter()
        .find(|s| s.target == "/upgrade")
        .expect("the upgrade reached the backend");
    assert_eq!(ws.header("Upgrade"), Some("websocket"));
}

#[test]
fn pibl_client_fetches_over_https_through_pibl() {
    let backend = Backend::start("b1");
    let certs = certs();
    let pibl = Pibl::start(
        &[backend.addr],
        &format!("listen 127.0.0.1:0 tls\n{}", certs.line),
    );
    let tls = first_tls(&pibl);
    let client = Client::new();
    let cacert = certs.ca.cert_path.to_str().expect("path");
    let url = format!("https://localhost:{}/hello", tls.port());
    let run = client.fetch(&["--cacert", cacert, "--no-cache"], &url);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout_text(), "backend b1: GET /hello\n");
    let seen = backend.seen();
    assert_eq!(seen[0].header("X-Forwarded-Proto"), Some("https"));
}
