//! HTTP/2 for clients (issue 17), with the real binary and real clients: curl
//! (`--http2-prior-knowledge` over `h2c on`, `--http2` over TLS) and nghttp (many streams on one
//! connection, a small window). Each stream is one request to the HTTP/1.1 test backends.
//! A test that needs a tool that is not installed says so and is skipped (never in CI, which
//! installs them: `.ci/run`).

mod common;

use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::tls_listener::{first_tls, listeners, write_cert_pair};
use common::{have, pattern, Backend, Pibl, TempDir};
use pibl::tls::selfsigned::DemoCa;

fn run(tool: &str, args: &[&str]) -> Output {
    Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {tool}: {e}"))
}

fn curl(args: &[&str]) -> Output {
    let mut all = vec!["-sS", "--max-time", "20"];
    all.extend_from_slice(args);
    run("curl", &all)
}

fn text(out: &Output) -> String {
    format!(
        "{}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn h2c_url(p: &Pibl, path: &str) -> String {
    format!("http://{}{path}", p.addr)
}

/// pibl with `h2c on` before these backends.
fn h2c_pibl(backends: &[SocketAddr], extra: &str) -> Pibl {
    Pibl::start(backends, &format!("h2c on\n{extra}"))
}

#[test]
fn prior_knowledge_streams_round_robin_and_are_logged_as_http2() {
    if !have("curl") || !have("nghttp") {
        return;
    }
    let (b1, b2) = (Backend::start("b1"), Backend::start("b2"));
    let p = h2c_pibl(&[b1.addr, b2.addr], "");
    let out = curl(&[
        "--http2-prior-knowledge",
        "-w",
        "\n%{http_version}",
        &h2c_url(&p, "/first"),
    ]);
    assert!(
        text(&out).ends_with("GET /first\n\n2\nstderr: "),
        "{}",
        text(&out)
    );
    // Four requests on one connection (nghttp: one connection for all its URLs; curl 7.88
    // fails to reuse a prior-knowledge connection, curl#10634): four streams, alternating.
    let urls: Vec<String> = (0..4).map(|i| h2c_url(&p, &format!("/r{i}"))).collect();
    let args: Vec<&str> = urls.iter().map(String::as_str).collect();
    let out = run("nghttp", &args);
    let got = text(&out);
    assert!(out.status.success(), "{got}");
    for i in 0..4 {
        assert!(got.contains(&format!("GET /r{i}")), "{got}");
    }
    let from = |b: &str| got.matches(&format!("backend {b}: GET /r")).count();
    assert_eq!((from("b1"), from("b2")), (2, 2), "{got}");

    // The backends saw ordinary HTTP/1.1 requests from pibl, forwarded for the client.
    let seen: Vec<_> = b1.seen().into_iter().chain(b2.seen()).collect();
    assert_eq!(seen.len(), 5);
    for s in &seen {
        assert_eq!(s.header("x-forwarded-for"), Some("127.0.0.1"), "{s:?}");
        assert!(s.header("via").is_some_and(|v| v.contains("pibl")), "{s:?}");
        assert_eq!(s.header("host"), Some(p.addr.to_string().as_str()), "{s:?}");
        assert_eq!(s.header("x-forwarded-proto"), Some("http"), "{s:?}");
    }
    // One access line per stream, with the version the client spoke.
    let lines = p.wait_for_log("HTTP/2.0\" 200", 5);
    assert_eq!(lines.len(), 5, "{}", p.log_file());
}

#[test]
fn request_bodies_reach_the_backend_byte_exact() {
    if !have("curl") {
        return;
    }
    let b = Backend::start("b1");
    let p = h2c_pibl(&[b.addr], "");
    let dir = TempDir::new("h2-body");
    let body = pattern(300_000);
    let file = dir.path().join("body.bin");
    std::fs::write(&file, &body).expect("write body");
    let at = format!("@{}", file.display());

    // With a length (curl sends content-length).
    let out = curl(&[
        "--http2-prior-knowledge",
        "--data-binary",
        &at,
        &h2c_url(&p, "/echo"),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        out.stdout == body,
        "echoed body differs ({} bytes)",
        out.stdout.len()
    );

    // Without one (an upload from a file of unknown size): chunked to the backend.
    let out = curl(&[
        "--http2-prior-knowledge",
        "-X",
        "POST",
        "-H",
        "content-length:",
        "-T",
        &file.display().to_string(),
        &h2c_url(&p, "/echo"),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        out.stdout == body,
        "echoed body differs ({} bytes)",
        out.stdout.len()
    );
    let seen = b.seen();
    assert_eq!(seen.len(), 2);
    for s in &seen {
        assert_eq!(s.body_len, body.len(), "{s:?}");
        assert_eq!(s.body_crc, seen[0].body_crc);
    }
}

#[test]
fn head_404_chunked_and_close_delimited_responses() {
    if !have("curl") {
        return;
    }
    let b = Backend::start("b1");
    let p = h2c_pibl(&[b.addr], "");
    let out = curl(&["--http2-prior-knowledge", "-I", &h2c_url(&p, "/big?n=5000")]);
    let got = text(&out);
    assert!(got.starts_with("HTTP/2 200"), "{got}");
    assert!(got.contains("content-length: 5000"), "{got}");
    assert!(
        !got.contains("connection:"),
        "hop-by-hop fields dropped: {got}"
    );

    let out = curl(&[
        "--http2-prior-knowledge",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{http_version}",
        &h2c_url(&p, "/res?status=404"),
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "404 2",
        "{}",
        text(&out)
    );

    let out = curl(&["--http2-prior-knowledge", &h2c_url(&p, "/chunked")]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello chunked world");
    let out = curl(&["--http2-prior-knowledge", &h2c_url(&p, "/close")]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "until close from b1");
    let out = curl(&["--http2-prior-knowledge", &h2c_url(&p, "/big?n=1048576")]);
    assert!(out.stdout == pattern(1 << 20), "{} bytes", out.stdout.len());
}

#[test]
fn a_cache_hit_is_served_without_the_backend() {
    if !have("curl") {
        return;
    }
    let b = Backend::start("b1");
    let dir = TempDir::new("h2-cache");
    let conf = format!(
        "listen 127.0.0.1:0\nworkers 1\nbackend {}\nh2c on\n",
        b.addr
    );
    std::fs::write(dir.path().join("pibl.conf"), conf).expect("conf");
    let p = Pibl::start_in(dir, &["-c", "pibl.conf", "-t", "600"]);
    let url = h2c_url(&p, "/res?h=Cache-Control:max-age%3D600");
    let first = curl(&["--http2-prior-knowledge", &url]);
    assert!(first.status.success(), "{}", text(&first));
    // The entry is published as the body ends; the next stream finds it.
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let again = curl(&["--http2-prior-knowledge", &url]);
        assert_eq!(again.stdout, first.stdout, "{}", text(&again));
        if b.count() == 1 && p.log_file().contains(" HIT") {
            break;
        }
        assert!(Instant::now() < until, "no hit: {}", p.log_file());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(b.count(), 1);
}

#[test]
fn without_h2c_a_preface_is_a_bad_request() {
    let b = Backend::start("b1");
    let p = Pibl::start(&[b.addr], "");
    let got = common::raw_exchange(p.addr, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    // The HTTP/1 parser's answer to `PRI * HTTP/2.0`, as before h2c existed.
    assert!(got.starts_with("HTTP/1.1 505"), "{got}");
    assert_eq!(b.count(), 0);
}

#[test]
fn many_streams_on_one_connection_and_a_small_window() {
    if !have("nghttp") {
        return;
    }
    let b = Backend::start("b1");
    let p = h2c_pibl(&[b.addr], "");
    // 50 concurrent streams of the same request: all 200, all the right size.
    let out = run(
        "nghttp",
        &["-n", "-s", "-m", "50", &h2c_url(&p, "/big?n=20000")],
    );
    let got = text(&out);
    assert!(out.status.success(), "{got}");
    let rows: Vec<&str> = got.lines().filter(|l| l.contains("/big?n=20000")).collect();
    assert_eq!(rows.len(), 50, "{got}");
    assert!(rows.iter().all(|r| r.contains(" 200 ")), "{got}");
    assert_eq!(b.count(), 50);

    // 1 MiB to a client whose windows are 2^16 bytes (-w 16 -W 16): it arrives whole.
    let out = run(
        "nghttp",
        &["-w", "16", "-W", "16", &h2c_url(&p, "/big?n=1048576")],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(out.stdout == pattern(1 << 20), "{} bytes", out.stdout.len());
}

#[test]
fn graceful_stop_lets_a_stream_in_flight_finish() {
    if !have("curl") {
        return;
    }
    let b = Backend::start("b1");
    let mut p = h2c_pibl(&[b.addr], "");
    let url = h2c_url(&p, "/slow?head_ms=600&n=1000");
    let client = std::thread::spawn(move || curl(&["--http2-prior-knowledge", &url]));
    // The request is at the backend when the stop begins.
    let until = Instant::now() + Duration::from_secs(5);
    while b.count() == 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    p.signal(libc::SIGTERM);
    let out = client.join().expect("curl thread");
    assert!(out.status.success(), "{}", text(&out));
    assert!(out.stdout == pattern(1000), "{}", text(&out));
    assert_eq!(p.wait_exit(Duration::from_secs(10)), Some(0));
}

/// pibl with a TLS listener (and `extra`), a CA file to trust it.
fn tls_pibl(backends: &[SocketAddr], extra: &str) -> (Pibl, SocketAddr, TempDir) {
    let certs = TempDir::new("h2-certs");
    let ca = DemoCa::generate("pibl h2 test CA").expect("ca");
    std::fs::write(certs.path().join("ca.pem"), &ca.cert_pem).expect("write ca");
    let leaf = ca
        .issue(&["localhost"], Duration::from_secs(86_400))
        .expect("leaf");
    let cert = write_cert_pair(certs.path(), "localhost", &leaf.chain_pem, &leaf.key_pem);
    let pibl = Pibl::start(backends, &format!("listen 127.0.0.1:0 tls\n{cert}{extra}"));
    let tls = first_tls(&pibl);
    (pibl, tls, certs)
}

fn tls_curl(tls: SocketAddr, certs: &TempDir, extra: &[&str], path: &str) -> Output {
    let ca = certs.path().join("ca.pem");
    let resolve = format!("localhost:{}:127.0.0.1", tls.port());
    let url = format!("https://localhost:{}{path}", tls.port());
    let mut args = vec![
        "--cacert",
        ca.to_str().expect("path"),
        "--resolve",
        &resolve,
        "-w",
        "\n%{http_version}",
    ];
    args.extend_from_slice(extra);
    args.push(&url);
    curl(&args)
}

#[test]
fn tls_listeners_offer_h2_by_alpn_unless_http2_off() {
    if !have("curl") {
        return;
    }
    let b = Backend::start("b1");
    let (p, tls, certs) = tls_pibl(&[b.addr], "");
    let out = tls_curl(tls, &certs, &["--http2"], "/over-h2");
    let got = text(&out);
    assert!(out.status.success(), "{got}");
    assert!(got.contains("backend b1: GET /over-h2\n\n2"), "{got}");
    assert_eq!(b.seen()[0].header("x-forwarded-proto"), Some("https"));
    assert_eq!(p.wait_for_log("HTTP/2.0\" 200", 1).len(), 1);

    // `hsts` reaches HTTP/2 responses too (the child's transport says what its connection's does).
    let b = Backend::start("b1");
    let (_p, tls, certs) = tls_pibl(&[b.addr], "hsts 600\ncache on\ncache_ttl 60\n");
    for _ in 0..2 {
        // A miss, then a hit.
        let out = tls_curl(tls, &certs, &["--http2", "-D", "-"], "/hsts");
        let got = text(&out);
        assert!(
            got.contains("\r\nstrict-transport-security: max-age=600\r\n"),
            "{got}"
        );
    }

    let b = Backend::start("b1");
    let (_p, tls, certs) = tls_pibl(&[b.addr], "http2 off\n");
    let out = tls_curl(tls, &certs, &["--http2"], "/over-h1");
    let got = text(&out);
    assert!(out.status.success(), "{got}");
    assert!(got.contains("backend b1: GET /over-h1\n\n1.1"), "{got}");
}

/// `http2 off` on one listen line: that TLS listener offers http/1.1 alone while another,
/// beside it, offers h2; `http2` on a plain listener is an error naming its line.
#[test]
fn http2_off_on_one_listener_only() {
    if !have("curl") {
        return;
    }
    let b = Backend::start("b1");
    let (p, h2_tls, certs) = tls_pibl(&[b.addr], "listen 127.0.0.1:0 tls http2 off\n");
    let tls: Vec<SocketAddr> = listeners(&p)
        .into_iter()
        .filter_map(|(a, tls)| tls.then_some(a))
        .collect();
    assert_eq!(tls.len(), 2, "{tls:?}");
    let h1_tls = tls
        .into_iter()
        .find(|&a| a != h2_tls)
        .expect("the http2 off listener");
    let got = text(&tls_curl(h2_tls, &certs, &["--http2"], "/a"));
    assert!(got.contains("backend b1: GET /a\n\n2"), "{got}");
    let got = text(&tls_curl(h1_tls, &certs, &["--http2"], "/b"));
    assert!(got.contains("backend b1: GET /b\n\n1.1"), "{got}");

    let dir = TempDir::new("h2-listen-check");
    let conf = dir.path().join("pibl.conf");
    std::fs::write(&conf, "backend 127.0.0.1:9\nlisten 127.0.0.1:0 http2 off\n").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_pibl"))
        .args(["-c", conf.to_str().expect("path"), "--check"])
        .output()
        .expect("run pibl --check");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("pibl.conf:2"), "{err}");
    assert!(err.contains("'http2' is for a tls listener"), "{err}");
}

#[test]
fn status_and_metrics_count_http2_connections_and_streams() {
    if !have("nghttp") {
        return;
    }
    let b = Backend::start("b1");
    let p = h2c_pibl(&[b.addr], "admin 127.0.0.1:0\n");
    let out = run("nghttp", &["-n", &h2c_url(&p, "/a"), &h2c_url(&p, "/b")]);
    assert!(out.status.success(), "{}", text(&out));
    let admin = p.admin_addr();
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let json = common::get(admin, "/status?json").text();
        let metrics = common::get(admin, "/metrics").text();
        let counted = json
            .contains("\"http2\":{\"connections_open\":0,\"connections\":1,\"streams\":2}")
            && metrics.contains("pibl_http2_streams_total 2\n")
            && metrics.contains("pibl_http2_connections_total 1\n");
        if counted {
            break;
        }
        assert!(Instant::now() < until, "{json}\n{metrics}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let page = common::get(admin, "/status").text();
    assert!(
        page.contains("<span id=\"h2-streams\">2</span> streams"),
        "{page}"
    );
}

/// A stream the client resets before its response is complete is logged 499, as an HTTP/1
/// client that went away (and as nginx logs a client that went first); the connection goes on.
#[test]
fn a_stream_reset_before_its_response_is_logged_499() {
    let Some(python) = common::python_with_h2() else {
        return;
    };
    let b = Backend::start("b1");
    let p = h2c_pibl(&[b.addr], "workers 1\n");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/h2/reset_before_head.py");
    let out = Command::new(python)
        .args([script, "127.0.0.1", &p.addr.port().to_string()])
        .output()
        .expect("run reset_before_head.py");
    let got = text(&out);
    assert!(out.status.success(), "{got}");
    assert!(got.contains("stream 3 served"), "{got}");
    let lines = p.wait_for_log("\"GET /slow-head HTTP/2.0\" 499 ", 1);
    assert_eq!(lines.len(), 1, "{}", p.log_file());
    assert_eq!(
        p.wait_for_log("\"GET /after-early-reset HTTP/2.0\" 200 ", 1)
            .len(),
        1
    );
}

/// A client's RST_STREAM aborts the stream's child: its upstream connection is closed, not
/// pooled mid-response, and the client's connection goes on.
#[test]
fn a_client_reset_closes_the_streams_upstream_connection() {
    let Some(python) = common::python_with_h2() else {
        return;
    };
    let b = Backend::start("b1");
    let p = h2c_pibl(&[b.addr], "workers 1\n");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/h2/client_reset.py");
    let port = p.addr.port().to_string();
    let child = Command::new(python)
        .args([script, "127.0.0.1", &port])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run client_reset.py");
    // The head went out, the body is still coming: the backend holds pibl's connection.
    let until = Instant::now() + Duration::from_secs(10);
    while b.count() == 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(b.open_connections(), 1);
    let out = child.wait_with_output().expect("client_reset.py");
    let got = text(&out);
    assert!(out.status.success(), "{got}");
    assert!(got.contains("stream 3 served"), "{got}");
    assert_eq!(p.wait_for_log("\"GET /slow?", 1).len(), 1);
    assert!(
        p.wait_for_log("\"GET /slow?", 1)[0].contains(" HTTP/2.0\" 499 "),
        "{}",
        p.log_file()
    );
    let seen = b.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[1].target, "/after-reset");
    // The second request (1.5 s after the reset, before the first body's 3 s were up) needed
    // a connection of its own: the first was closed, not pooled mid-response.
    assert_eq!(b.accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
}
