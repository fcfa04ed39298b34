//! Backends over TLS (issue 14): `backend https://HOST:PORT` with the real binary, in front of a
//! TLS test origin (`common::tls_origin`) that forwards to a plain test backend.

mod common;

use common::tls_origin::{TestCa, TlsOrigin, TlsReply};
use common::{get, Backend, Conn, Pibl};

/// A TLS origin for `localhost` in front of a plain backend named `name`.
fn tls_origin(ca: &TestCa, name: &str) -> (Backend, TlsOrigin) {
    let backend = Backend::start(name);
    let origin = TlsOrigin::start(
        &ca.issue(&["localhost", "127.0.0.1"]),
        TlsReply::ForwardTo(backend.addr),
    );
    (backend, origin)
}

#[test]
fn requests_reach_a_tls_backend_and_reuse_its_connection() {
    let ca = TestCa::new("backend CA");
    let (_backend, origin) = tls_origin(&ca, "secure");
    let pibl = Pibl::start(
        &[],
        &format!(
            "workers 1\nbackend https://localhost:{}\nbackend_ca {}\n",
            origin.port(),
            ca.cert_path.display()
        ),
    );
    let mut conn = Conn::open(pibl.addr);
    let r = conn.get("/a");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "backend secure: GET /a\n");
    // A second client connection: the pooled TLS connection is used again.
    let r = get(pibl.addr, "/b");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "backend secure: GET /b\n");
    assert_eq!(
        origin.handshakes(),
        1,
        "one TLS handshake for both requests"
    );
    assert_eq!(origin.server_names(), vec![Some("localhost".to_string())]);
}

#[test]
fn tls_keyword_and_tls_server_name_set_the_sni() {
    let ca = TestCa::new("backend CA");
    let (_backend, origin) = tls_origin(&ca, "named");
    let pibl = Pibl::start(
        &[],
        &format!(
            "backend 127.0.0.1:{} tls\ntls_server_name localhost\nbackend_ca {}\n",
            origin.port(),
            ca.cert_path.display()
        ),
    );
    let r = get(pibl.addr, "/x");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "backend named: GET /x\n");
    assert_eq!(origin.server_names(), vec![Some("localhost".to_string())]);
}

#[test]
fn an_untrusted_backend_certificate_is_a_502_logged_with_the_reason() {
    let ca = TestCa::new("backend CA");
    let (_backend, origin) = tls_origin(&ca, "untrusted");
    // No backend_ca: the system roots do not know the test CA.
    let pibl = Pibl::start(
        &[],
        &format!("backend https://localhost:{}\n", origin.port()),
    );
    let r = get(pibl.addr, "/");
    assert_eq!(r.status, 502);
    let lines = pibl.wait_for_log("unknown authority", 1);
    assert!(!lines.is_empty(), "log: {}", pibl.log_file());
    assert_eq!(origin.handshakes(), 0);
}

#[test]
fn a_failed_handshake_fails_over_to_the_next_backend() {
    let ca = TestCa::new("backend CA");
    let other = TestCa::new("another CA");
    // Issued by a CA pibl does not trust: its handshake fails, the plain backend answers.
    let (_b1, origin) = tls_origin(&other, "wrong-ca");
    let plain = Backend::start("plain");
    let pibl = Pibl::start(
        &[],
        &format!(
            "workers 1\nbackend https://localhost:{}\nbackend {}\nbackend_ca {}\n",
            origin.port(),
            plain.addr,
            ca.cert_path.display()
        ),
    );
    for i in 0..4 {
        let r = get(pibl.addr, &format!("/{i}"));
        assert_eq!(r.status, 200, "request {i}");
        assert_eq!(r.text(), format!("backend plain: GET /{i}\n"));
    }
}

#[test]
fn backend_tls_verify_off_accepts_any_certificate_with_a_warning() {
    let ca = TestCa::new("backend CA");
    let (_backend, origin) = tls_origin(&ca, "unverified");
    let pibl = Pibl::start(
        &[],
        &format!(
            "backend https://localhost:{}\nbackend_tls_verify off\n",
            origin.port()
        ),
    );
    let r = get(pibl.addr, "/");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "backend unverified: GET /\n");
    let warned = pibl.wait_for_log("backend_tls_verify off", 1);
    assert!(!warned.is_empty(), "log: {}", pibl.log_file());

    let check = std::process::Command::new(env!("CARGO_BIN_EXE_pibl"))
        .args(["--check", "-c"])
        .arg(pibl.conf_path())
        .output()
        .expect("pibl --check");
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(
        stderr.contains("warning") && stderr.contains("backend_tls_verify off"),
        "--check stderr: {stderr}"
    );
}

#[test]
fn health_checks_probe_a_tls_backend_over_tls() {
    let ca = TestCa::new("backend CA");
    let (backend, origin) = tls_origin(&ca, "probed");
    let pibl = Pibl::start(
        &[],
        &format!(
            "backend https://localhost:{}\nbackend_ca {}\nhealth_check /health 200ms\n",
            origin.port(),
            ca.cert_path.display()
        ),
    );
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !backend.seen().iter().any(|s| s.target == "/health") {
        assert!(
            std::time::Instant::now() < until,
            "no probe reached the backend through TLS; log: {}",
            pibl.log_file()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(origin.handshakes() >= 1);
    let r = get(pibl.addr, "/");
    assert_eq!(r.status, 200);
}
