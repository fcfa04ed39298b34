//! pibl-client over https://, the real binary against a TLS test origin (a generated CA):
//! verification with --cacert or the system roots, -k, the errors and their exit codes, the
//! log line, the local cache and redirects across schemes.

mod client_support;
mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use client_support::{response, Client, Run, TestServer};
use common::tls_origin::{TestCa, TlsOrigin, TlsReply};
use common::Backend;

/// A TLS origin for `localhost` and `127.0.0.1` in front of a plain backend.
fn origin_behind_tls(ca: &TestCa) -> (TlsOrigin, Backend) {
    let backend = Backend::start("b1");
    let origin = TlsOrigin::start(
        &ca.issue(&["localhost", "127.0.0.1"]),
        TlsReply::ForwardTo(backend.addr),
    );
    (origin, backend)
}

/// Runs the client with the system roots taken from `roots` (rustls-native-certs reads
/// SSL_CERT_FILE), so "the system's roots" is the same on every machine.
fn fetch_with_roots(client: &Client, roots: &Path, options: &[&str], url: &str) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_pibl-client"))
        .arg("--cache-dir")
        .arg(client.cache.path())
        .args(options)
        .arg(client.log_path())
        .arg(url)
        .current_dir(client.cwd.path())
        .env("SSL_CERT_FILE", roots)
        .env_remove("SSL_CERT_DIR")
        .output()
        .expect("run pibl-client");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn one_error_line(run: &Run) -> &str {
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", run.stderr);
    assert!(
        lines[0].starts_with("pibl-client: error: "),
        "{}",
        run.stderr
    );
    lines[0]
}

#[test]
fn get_head_and_post_over_https_with_cacert() {
    let ca = TestCa::new("client test CA");
    let (origin, backend) = origin_behind_tls(&ca);
    let cacert = ca.cert_path.to_str().unwrap();
    let client = Client::new();

    let url = origin.url("localhost", "/hello");
    let run = client.fetch(&["--cacert", cacert, "--no-cache"], &url);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout_text(), "backend b1: GET /hello\n");
    let seen = backend.seen();
    assert_eq!(
        seen[0].header("host"),
        Some(&*format!("localhost:{}", origin.port()))
    );
    assert_eq!(origin.server_names(), vec![Some("localhost".to_string())]);

    let run = client.fetch(&["--cacert", cacert, "-X", "HEAD"], &url);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout_text().starts_with("HTTP/1.1 200"),
        "{}",
        run.stdout_text()
    );
    assert_eq!(backend.seen()[1].method, "HEAD");

    // An IP literal: checked against the certificate's IP addresses, and no SNI is sent.
    let body = "name=pibl&x=1";
    let url = origin.url("127.0.0.1", "/echo");
    let run = client.fetch(&["--cacert", cacert, "-d", body, "-o", "-"], &url);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout_text(), body);
    assert_eq!(backend.seen()[2].method, "POST");
    assert_eq!(origin.server_names()[2], None);

    // The log names the https URL of each request.
    let log = client.log();
    assert!(
        log.contains(&format!("GET https://localhost:{}/hello", origin.port())),
        "{log}"
    );
    assert!(
        log.contains(&format!("POST https://127.0.0.1:{}/echo", origin.port())),
        "{log}"
    );
}

#[test]
fn system_roots_are_trusted_without_cacert() {
    let ca = TestCa::new("system-like CA");
    let (origin, _backend) = origin_behind_tls(&ca);
    let client = Client::new();
    let run = fetch_with_roots(&client, &ca.cert_path, &[], &origin.url("localhost", "/"));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout_text(), "backend b1: GET /\n");
}

#[test]
fn an_unknown_authority_is_refused_with_exit_10() {
    let ca = TestCa::new("private CA");
    let other = TestCa::new("the system's CA");
    let (origin, backend) = origin_behind_tls(&ca);
    let client = Client::new();
    let run = fetch_with_roots(
        &client,
        &other.cert_path,
        &[],
        &origin.url("localhost", "/"),
    );
    assert_eq!(run.code, 10, "{}", run.stderr);
    let line = one_error_line(&run);
    assert!(
        line.ends_with("certificate signed by an unknown authority"),
        "{line}"
    );
    assert!(line.contains(&format!("127.0.0.1:{}", origin.port())) || line.contains("localhost"));
    assert_eq!(backend.count(), 0);
    assert!(client.log().contains(" ERR "), "{}", client.log());
}

#[test]
fn a_name_mismatch_and_an_expired_certificate_exit_10() {
    let ca = TestCa::new("client test CA");
    let cacert = ca.cert_path.to_str().unwrap();
    let client = Client::new();
    let elsewhere = TlsOrigin::start(
        &ca.issue(&["elsewhere.test"]),
        TlsReply::Fixed(b"HTTP/1.1 204 No Content\r\n\r\n".to_vec()),
    );
    let run = client.fetch(&["--cacert", cacert], &elsewhere.url("127.0.0.1", "/"));
    assert_eq!(run.code, 10, "{}", run.stderr);
    let line = one_error_line(&run);
    assert!(
        line.ends_with("certificate is not valid for 127.0.0.1"),
        "{line}"
    );

    let expired = TlsOrigin::start(
        &ca.issue_expired(&["localhost"]),
        TlsReply::Fixed(b"HTTP/1.1 204 No Content\r\n\r\n".to_vec()),
    );
    let run = client.fetch(&["--cacert", cacert], &expired.url("localhost", "/"));
    assert_eq!(run.code, 10, "{}", run.stderr);
    assert!(
        one_error_line(&run).ends_with("certificate has expired"),
        "{}",
        run.stderr
    );
}

#[test]
fn insecure_fetches_anyway_and_warns() {
    let stranger = TestCa::new("nobody trusts this CA");
    let origin = TlsOrigin::start(
        &stranger.issue_expired(&["elsewhere.test"]),
        TlsReply::Fixed(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nyes".to_vec(),
        ),
    );
    let client = Client::new();
    let run = client.fetch(&["-k"], &origin.url("localhost", "/"));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout_text(), "yes");
    assert!(
        run.stderr
            .contains("warning: -k/--insecure: the server's certificate is not verified"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_plain_http_server_on_the_port_exits_11() {
    // A plain server answers the ClientHello as nginx does: 400, then closes.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    let ca = TestCa::new("client test CA");
    let client = Client::new();
    let cacert = ca.cert_path.to_str().unwrap();
    let run = client.fetch(&["--cacert", cacert], &format!("https://127.0.0.1:{port}/"));
    assert_eq!(run.code, 11, "{}", run.stderr);
    let line = one_error_line(&run);
    assert!(
        line.ends_with("the server did not answer with TLS (a plain HTTP port?)"),
        "{line}"
    );
}

#[test]
fn a_stalled_handshake_times_out_with_exit_6() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().take(1).collect();
        std::thread::sleep(Duration::from_secs(10));
        drop(held);
    });
    let started = Instant::now();
    let run = Client::new().fetch(
        &["-k", "--timeout", "1"],
        &format!("https://127.0.0.1:{port}/"),
    );
    assert_eq!(run.code, 6, "{}", run.stderr);
    assert!(started.elapsed() < Duration::from_secs(8));
    assert!(run.stderr.contains("timed out"), "{}", run.stderr);
}

#[test]
fn unusable_trust_exits_12() {
    let ca = TestCa::new("client test CA");
    let (origin, _backend) = origin_behind_tls(&ca);
    let client = Client::new();
    let empty = client.cwd.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let url = origin.url("localhost", "/");
    let run = client.fetch(&["--cacert", empty.to_str().unwrap()], &url);
    assert_eq!(run.code, 12, "{}", run.stderr);
    assert!(
        one_error_line(&run).contains("no PEM certificate"),
        "{}",
        run.stderr
    );
    let run = client.fetch(&["--cacert", "/nonexistent/ca.pem"], &url);
    assert_eq!(run.code, 12, "{}", run.stderr);
    assert!(one_error_line(&run).contains("cannot read CA file /nonexistent/ca.pem"));
    let run = fetch_with_roots(&client, &empty, &[], &url);
    assert_eq!(run.code, 12, "{}", run.stderr);
    assert!(
        one_error_line(&run).contains("no trusted root certificates"),
        "{}",
        run.stderr
    );
}

#[test]
fn https_responses_are_cached_locally() {
    let ca = TestCa::new("client test CA");
    let (origin, backend) = origin_behind_tls(&ca);
    let cacert = ca.cert_path.to_str().unwrap();
    let client = Client::new();
    let url = origin.url("localhost", "/page");
    let first = client.fetch(&["--cacert", cacert], &url);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let second = client.fetch(&["--cacert", cacert], &url);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        second.stderr.contains("served from local cache"),
        "{}",
        second.stderr
    );
    assert_eq!(first.stdout, second.stdout);
    assert_eq!(backend.count(), 1);
    assert_eq!(origin.handshakes(), 1);
}

#[test]
fn redirects_cross_from_http_to_https() {
    let ca = TestCa::new("client test CA");
    let (origin, backend) = origin_behind_tls(&ca);
    let target = origin.url("localhost", "/secure");
    let plain = TestServer::start(move |_| {
        response(
            "301 Moved Permanently",
            &[("Location", target.as_str())],
            b"",
        )
    });
    let client = Client::new();
    let run = client.fetch(
        &["-L", "--cacert", ca.cert_path.to_str().unwrap()],
        &plain.url("/"),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout_text(), "backend b1: GET /secure\n");
    assert_eq!(backend.count(), 1);
    let log = client.log();
    assert!(
        log.contains("http://127.0.0.1:") && log.contains("https://localhost:"),
        "{log}"
    );
}

/// A forward proxy that answers one `CONNECT` with `status`, then (on 200) relays bytes both
/// ways to the address asked for. Returns its port and the request lines it received.
fn connect_proxy(status: &'static str) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let lines = seen.clone();
    std::thread::spawn(move || {
        for mut client in listener.incoming().flatten() {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && client.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let line = head.lines().next().unwrap_or("").to_string();
            lines.lock().unwrap().push(line.clone());
            let _ = client.write_all(format!("HTTP/1.1 {status}\r\n\r\n").as_bytes());
            if !status.starts_with("200") {
                continue;
            }
            let authority = line
                .split(' ')
                .nth(1)
                .unwrap_or("")
                .replace("localhost", "127.0.0.1");
            let Ok(upstream) = std::net::TcpStream::connect(authority) else {
                continue;
            };
            let (mut c2, mut u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
            let mut upstream = upstream;
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c2, &mut u2);
                let _ = u2.shutdown(std::net::Shutdown::Write);
            });
            let _ = std::io::copy(&mut upstream, &mut client);
        }
    });
    (port, seen)
}

#[test]
fn https_through_a_forward_proxy_uses_a_connect_tunnel() {
    let ca = TestCa::new("client test CA");
    let (origin, backend) = origin_behind_tls(&ca);
    let cacert = ca.cert_path.to_str().unwrap();
    let (port, seen) = connect_proxy("200 Connection established");
    let client = Client::new();
    let proxy = format!("127.0.0.1:{port}");
    let url = origin.url("localhost", "/via");
    let run = client.fetch(&["--cacert", cacert, "-x", &proxy], &url);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout_text(), "backend b1: GET /via\n");
    let expected = format!("CONNECT localhost:{} HTTP/1.1", origin.port());
    assert_eq!(*seen.lock().unwrap(), vec![expected]);
    // Inside the tunnel the request is the origin's own: origin-form target.
    assert_eq!(backend.seen()[0].target, "/via");

    let (port, _) = connect_proxy("403 Forbidden");
    let proxy = format!("127.0.0.1:{port}");
    let run = client.fetch(&["--cacert", cacert, "-x", &proxy, "--no-cache"], &url);
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(
        one_error_line(&run).contains("refused the tunnel"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_server_that_closes_during_the_handshake_exits_11() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut hello = [0u8; 4096];
            let _ = stream.read(&mut hello);
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    });
    let ca = TestCa::new("client test CA");
    let cacert = ca.cert_path.to_str().unwrap();
    let run = Client::new().fetch(&["--cacert", cacert], &format!("https://localhost:{port}/"));
    assert_eq!(run.code, 11, "{}", run.stderr);
    let line = one_error_line(&run);
    assert!(
        line.ends_with("the server closed the connection during the TLS handshake"),
        "{line}"
    );
}
