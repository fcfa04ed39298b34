//! `listen unix:PATH` with the real binary (issue 20): requests over a unix-domain socket
//! (std's `UnixStream` and `curl --unix-socket`), keep-alive, the access line and
//! X-Forwarded-For (`unix:`), `mode=`, a stale socket file replaced at start and the file removed
//! at a clean stop, and a PROXY header on a unix listener.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Backend, Pibl, TempDir};

/// Starts pibl in a fresh directory with `conf` (plus a plain TCP listener first, so the
/// harness finds its start-up line); `before` runs in the directory first.
fn start(backend: &Backend, conf: &str, before: impl FnOnce(&Path)) -> Pibl {
    let dir = TempDir::new("unix");
    before(dir.path());
    let conf = format!(
        "listen 127.0.0.1:0\nworkers 2\nbackend {}\n{conf}",
        backend.addr
    );
    std::fs::write(dir.path().join("pibl.conf"), conf).expect("config");
    Pibl::start_in(dir, &["-c", "pibl.conf"])
}

fn sock(p: &Pibl) -> PathBuf {
    p.dir.path().join("pibl.sock")
}

/// Sends `raw` on a fresh unix connection and reads until pibl closes.
fn exchange(path: &Path, raw: &[u8]) -> String {
    let mut s = UnixStream::connect(path).expect("connect to the unix socket");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(raw).expect("send");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn requests_over_a_unix_socket_with_keep_alive_log_and_forwarding() {
    let backend = Backend::start("unix");
    let p = start(&backend, "listen unix:pibl.sock mode=0660\n", |_| {});
    let path = sock(&p);
    let mode = std::fs::metadata(&path)
        .expect("the socket file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o660);

    // Two requests on one connection, the second closing it.
    let out = exchange(
        &path,
        b"GET /one HTTP/1.1\r\nHost: t\r\n\r\nGET /two HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(out.matches("HTTP/1.1 200 ").count(), 2, "{out}");
    let seen = backend.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].header("x-forwarded-for"), Some("unix:"));
    assert_eq!(seen[1].target, "/two");

    let lines = p.wait_for_log("\"GET /two ", 1);
    assert!(lines[0].contains(" unix: \"GET /two"), "{}", lines[0]);

    // curl speaks to it too.
    let curl = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--unix-socket",
        ])
        .arg(&path)
        .arg("http://localhost/curl")
        .output();
    if let Ok(out) = curl {
        assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
        assert!(backend.seen().iter().any(|s| s.target == "/curl"));
    }
    // The TCP listener beside it is unaffected.
    assert_eq!(common::get(p.addr, "/tcp").status, 200);
}

#[test]
fn a_stale_socket_file_is_replaced_and_the_file_goes_at_a_clean_stop() {
    let backend = Backend::start("stale");
    let mut p = start(&backend, "listen unix:pibl.sock\n", |dir| {
        // A socket nobody listens on any more, as a killed pibl leaves.
        let stale = std::os::unix::net::UnixListener::bind(dir.join("pibl.sock")).expect("bind");
        drop(stale);
    });
    let path = sock(&p);
    let out = exchange(
        &path,
        b"GET /fresh HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert!(out.starts_with("HTTP/1.1 200 "), "{out}");
    assert_eq!(p.stop(), Some(0));
    assert!(!path.exists(), "the socket file is removed at a clean stop");
}

#[test]
fn a_file_in_the_way_is_not_removed() {
    let dir = TempDir::new("unix-in-the-way");
    let path = dir.path().join("pibl.sock");
    std::fs::write(&path, "not a socket").expect("a file");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pibl"))
        .current_dir(dir.path())
        .args(["-w", "1"])
        .arg("-c")
        .arg({
            let conf = dir.path().join("pibl.conf");
            std::fs::write(&conf, "listen unix:pibl.sock\nbackend 127.0.0.1:9\n").expect("conf");
            conf
        })
        .output()
        .expect("run pibl");
    assert_eq!(out.status.code(), Some(1));
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("unix:pibl.sock"), "{said}");
    assert_eq!(
        std::fs::read_to_string(&path).expect("still there"),
        "not a socket"
    );
}

#[test]
fn a_proxy_header_on_a_unix_listener_gives_the_client_address() {
    let backend = Backend::start("unix-pp");
    let p = start(&backend, "listen unix:pibl.sock proxy_protocol\n", |_| {});
    let out = exchange(
        &sock(&p),
        b"PROXY TCP4 203.0.113.77 127.0.0.1 5555 80\r\nGET /pp HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert!(out.starts_with("HTTP/1.1 200 "), "{out}");
    assert_eq!(
        backend.seen()[0].header("x-forwarded-for"),
        Some("203.0.113.77")
    );
    let lines = p.wait_for_log("\"GET /pp ", 1);
    assert!(lines[0].contains(" 203.0.113.77:5555 "), "{}", lines[0]);
    // Without the header: closed, nothing proxied.
    let out = exchange(&sock(&p), b"GET /no-header HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(out, "");
    assert_eq!(backend.seen().len(), 1);
}

#[test]
fn tls_over_a_unix_socket_and_a_reload_keeps_the_listener() {
    let backend = Backend::start("unix-tls");
    let ca = common::tls_origin::TestCa::new("unix CA");
    let cert = ca.issue(&["localhost"]);
    let p = start(
        &backend,
        "listen unix:pibl.sock tls\ncertificate c.pem k.pem\n",
        |dir| {
            std::fs::write(dir.join("c.pem"), &cert.chain_pem).expect("chain");
            std::fs::write(dir.join("k.pem"), &cert.key_pem).expect("key");
            std::fs::set_permissions(dir.join("k.pem"), std::fs::Permissions::from_mode(0o600))
                .expect("chmod");
        },
    );
    let fetch = |path: &str| {
        let config = pibl::tls::client::client_config(
            &pibl::tls::client::Trust::CaFile(ca.cert_path.clone()),
            &[b"http/1.1"],
        )
        .expect("a client config");
        let conn = rustls::ClientConnection::new(config, "localhost".try_into().expect("name"))
            .expect("a TLS client");
        let sock = UnixStream::connect(sock(&p)).expect("connect");
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut s = rustls::StreamOwned::new(conn, sock);
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .expect("request");
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    };
    let out = fetch("/tls-unix");
    assert!(out.starts_with("HTTP/1.1 200 "), "{out}");
    let seen = backend.seen();
    let last = seen.last().expect("a request");
    assert_eq!(last.header("x-forwarded-proto"), Some("https"));
    assert_eq!(last.header("x-forwarded-for"), Some("unix:"));
    p.signal(libc::SIGHUP);
    assert!(p.wait_for_line("reloaded pibl.conf", Duration::from_secs(5)));
    let out = fetch("/after-reload");
    assert!(out.starts_with("HTTP/1.1 200 "), "{out}");
    assert!(sock(&p).exists());
}

#[test]
fn check_prints_unix_listeners_with_their_flags_and_refuses_what_a_start_would() {
    let dir = TempDir::new("unix-check");
    let conf = dir.path().join("pibl.conf");
    let run = |text: &str| {
        std::fs::write(&conf, text).expect("conf");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_pibl"))
            .current_dir(dir.path())
            .args(["-c", "pibl.conf", "--check"])
            .output()
            .expect("run pibl --check");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (code, out) = run(
        "listen 127.0.0.1:0 proxy_protocol\nlisten unix:pibl.sock mode=0600 proxy_protocol\n\
         backend 127.0.0.1:9\n",
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("listen 127.0.0.1:0 proxy_protocol\n"), "{out}");
    assert!(
        out.contains("listen unix:pibl.sock mode=0600 proxy_protocol\n"),
        "{out}"
    );
    assert!(
        !dir.path().join("pibl.sock").exists(),
        "--check creates nothing"
    );
    let (code, out) = run("listen unix:no/such/dir/pibl.sock\nbackend 127.0.0.1:9\n");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("no directory no/such/dir"), "{out}");
}
