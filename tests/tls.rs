//! TLS at the edge (issue 14), with the real binary and real clients: curl and openssl
//! s_client (each test that needs one is skipped, with a message, when it is not installed).
//! Certificates come from `pibl::tls::selfsigned` (a CA made per test).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::tls_listener::{first_tls, write_cert_pair};
use common::{have, pattern, Backend, Pibl, TempDir};
use pibl::tls::selfsigned::DemoCa;

const DAY: Duration = Duration::from_secs(86_400);

/// A CA, and files for it and for server certificates, in `dir`.
struct Pki {
    ca: DemoCa,
    ca_file: PathBuf,
}

impl Pki {
    fn new(dir: &Path, tag: &str) -> Pki {
        let ca = DemoCa::generate(&format!("pibl test CA {tag}")).expect("ca");
        let ca_file = dir.join(format!("ca-{tag}.pem"));
        std::fs::write(&ca_file, &ca.cert_pem).expect("write ca");
        Pki { ca, ca_file }
    }

    /// Writes `NAME.pem` (chain) and `NAME.key` for `names`; returns the config line.
    fn issue(&self, dir: &Path, file: &str, names: &[&str]) -> String {
        let c = self.ca.issue(names, 90 * DAY).expect("leaf");
        write_cert_pair(dir, file, &c.chain_pem, &c.key_pem)
    }
}

/// pibl with a plain and a TLS listener; certificates are written beside its config.
struct TlsPibl {
    pibl: Pibl,
    tls: SocketAddr,
    pki: Pki,
    /// Keeps the certificate files until the test ends.
    _certs: TempDir,
}

fn start(backends: &[SocketAddr], extra: &str) -> TlsPibl {
    let certs = TempDir::new("tls-certs");
    let pki = Pki::new(certs.path(), "a");
    let cert = pki.issue(certs.path(), "localhost", &["localhost", "127.0.0.1"]);
    let pibl = Pibl::start(backends, &format!("listen 127.0.0.1:0 tls\n{cert}{extra}"));
    let tls = first_tls(&pibl);
    TlsPibl {
        pibl,
        tls,
        pki,
        _certs: certs,
    }
}

/// curl over HTTP/1.1: these tests read HTTP/1.1 heads (HTTP/2 by ALPN is tests/http2.rs's).
fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "20", "--http1.1"])
        .args(args)
        .output()
        .expect("run curl")
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("https://localhost:{}{path}", addr.port())
}

fn resolve(addr: SocketAddr) -> String {
    format!("localhost:{}:127.0.0.1", addr.port())
}

#[test]
fn curl_get_and_post_through_tls_reach_the_backend_as_https() {
    if !have("curl") {
        return;
    }
    let backend = Backend::start("b1");
    let p = start(&[backend.addr], "");
    let ca = p.pki.ca_file.to_str().expect("path");
    let out = curl(&[
        "--cacert",
        ca,
        "--resolve",
        &resolve(p.tls),
        "-D",
        "-",
        &url(p.tls, "/hello"),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("b1"), "{text}");
    let seen = backend.seen();
    assert_eq!(seen[0].header("x-forwarded-proto"), Some("https"));

    let body = "a=1&b=2".repeat(1000);
    let out = curl(&[
        "--cacert",
        ca,
        "--resolve",
        &resolve(p.tls),
        "--data-binary",
        &body,
        &url(p.tls, "/echo"),
    ]);
    assert!(out.status.success());
    assert_eq!(out.stdout, body.as_bytes());
    assert_eq!(backend.seen()[1].method, "POST");

    // The plain listener beside it still says http.
    let r = common::get(p.pibl.addr, "/plain");
    assert_eq!(r.status, 200);
    assert_eq!(backend.seen()[2].header("x-forwarded-proto"), Some("http"));
}

#[test]
fn a_mebibyte_each_way_is_byte_exact() {
    if !have("curl") {
        return;
    }
    let backend = Backend::start("b1");
    let p = start(&[backend.addr], "");
    let dir = TempDir::new("tls-big");
    let ca = p.pki.ca_file.to_str().expect("path");
    let n = 1 << 20;
    let out = curl(&[
        "--cacert",
        ca,
        "--resolve",
        &resolve(p.tls),
        &url(p.tls, &format!("/big?n={n}")),
    ]);
    assert!(out.status.success());
    assert!(
        out.stdout == pattern(n),
        "download differs ({} bytes)",
        out.stdout.len()
    );

    let upload = dir.path().join("up.bin");
    std::fs::write(&upload, pattern(n)).expect("write");
    let out = curl(&[
        "--cacert",
        ca,
        "--resolve",
        &resolve(p.tls),
        "--data-binary",
        &format!("@{}", upload.display()),
        &url(p.tls, "/echo"),
    ]);
    assert!(out.status.success());
    assert!(
        out.stdout == pattern(n),
        "echo differs ({} bytes)",
        out.stdout.len()
    );
}

fn s_client(addr: SocketAddr, args: &[&str], input: &[u8]) -> (bool, String) {
    let mut child = Command::new("openssl")
        .arg("s_client")
        .arg("-connect")
        .arg(addr.to_string())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl");
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    let out = child.wait_with_output().expect("openssl output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

const CLOSE_REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

#[test]
fn openssl_sees_versions_alpn_sni_and_resumption() {
    if !have("openssl") {
        return;
    }
    let backend = Backend::start("b1");
    let certs = TempDir::new("tls-sni");
    let pki = Pki::new(certs.path(), "sni");
    let main = pki.issue(certs.path(), "main", &["example.test"]);
    let api = pki.issue(certs.path(), "api", &["api.example.test"]);
    let wild = pki.issue(certs.path(), "wild", &["*.wild.test"]);
    let pibl = Pibl::start(
        &[backend.addr],
        &format!("listen 127.0.0.1:0 tls\n{main}{api}{wild}"),
    );
    let tls = first_tls(&pibl);

    for old in ["-tls1", "-tls1_1"] {
        let (ok, text) = s_client(tls, &[old, "-cipher", "DEFAULT@SECLEVEL=0"], b"");
        assert!(!ok, "{old} was accepted: {text}");
        assert!(!text.contains("New, TLSv1"), "{old}: {text}");
    }

    let (ok, text) = s_client(tls, &["-alpn", "http/1.1", "-ign_eof"], CLOSE_REQUEST);
    assert!(ok, "{text}");
    assert!(text.contains("ALPN protocol: http/1.1"), "{text}");
    assert!(text.contains("HTTP/1.1 200 OK"), "{text}");

    for (sni, cn) in [
        ("api.example.test", "api.example.test"),
        ("example.test", "example.test"),
        ("x.wild.test", "*.wild.test"),
        ("unknown.test", "example.test"),
    ] {
        let (ok, text) = s_client(tls, &["-servername", sni], b"");
        assert!(ok, "{text}");
        let subject = text
            .lines()
            .find(|l| l.starts_with("subject="))
            .unwrap_or_default()
            .to_string();
        assert!(
            subject.ends_with(&format!("CN = {cn}")) || subject.ends_with(&format!("CN={cn}")),
            "SNI {sni}: {subject}"
        );
    }

    let sess = certs.path().join("session.pem");
    let sess = sess.to_str().expect("path");
    for version in ["-tls1_3", "-tls1_2"] {
        let (ok, text) = s_client(
            tls,
            &[version, "-sess_out", sess, "-ign_eof"],
            CLOSE_REQUEST,
        );
        assert!(ok && text.contains("New, TLSv1"), "{version}: {text}");
        let (ok, text) = s_client(tls, &[version, "-sess_in", sess, "-ign_eof"], CLOSE_REQUEST);
        assert!(ok, "{text}");
        assert!(
            text.contains("Reused, TLSv1"),
            "{version} not resumed: {text}"
        );
    }
}

#[test]
fn plain_http_to_the_tls_port_gets_a_readable_400_and_a_close() {
    let backend = Backend::start("b1");
    let p = start(&[backend.addr], "admin 127.0.0.1:0\n");
    let mut s = TcpStream::connect(p.tls).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send");
    let mut got = Vec::new();
    s.read_to_end(&mut got).expect("the server closes");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
    assert!(text.contains("Connection: close\r\n"), "{text}");
    assert!(
        text.ends_with("plain HTTP sent to an HTTPS port\n"),
        "{text}"
    );
    assert_eq!(backend.count(), 0);

    // Garbage is closed without an answer; both are counted.
    let mut s = TcpStream::connect(p.tls).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(b"\x00\x01\x02 not tls").expect("send");
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    assert!(got.is_empty());
    let admin = p.pibl.admin_addr();
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let m = common::get(admin, "/metrics").text();
        if m.contains("pibl_tls_connections_total{outcome=\"plain_http\"} 1")
            && m.contains("pibl_tls_connections_total{outcome=\"not_tls\"} 1")
        {
            assert!(
                m.contains("pibl_certificate_expiry_seconds{name=\"localhost\""),
                "{m}"
            );
            break;
        }
        assert!(Instant::now() < until, "{m}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_stalled_handshake_is_closed_at_the_head_deadline() {
    let backend = Backend::start("b1");
    let p = start(&[backend.addr], "client_header_timeout 1s\n");
    for sent in [
        &b""[..],
        &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"[..],
    ] {
        let cpu_before = cpu_time(p.pibl.pid());
        let began = Instant::now();
        let mut s = TcpStream::connect(p.tls).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s.write_all(sent).expect("send");
        let mut buf = [0u8; 64];
        let r = s.read(&mut buf);
        let took = began.elapsed();
        assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
        assert!(
            took >= Duration::from_millis(800) && took < Duration::from_secs(4),
            "closed after {took:?}"
        );
        // Waiting for the rest of a handshake costs nothing: no loop on readiness it cannot use.
        let spent = cpu_time(p.pibl.pid()).saturating_sub(cpu_before);
        assert!(
            spent < Duration::from_millis(300),
            "pibl used {spent:?} of CPU"
        );
    }
}

/// User plus system CPU time of process `pid` (from /proc; zero where there is none).
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name (which may hold spaces): utime and stime are the 12th
    // and 13th of them.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    // SAFETY: sysconf only reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_millis(ticks * 1000 / hz)
}

#[test]
fn a_reload_swaps_the_certificate_while_a_download_goes_on() {
    if !have("curl") {
        return;
    }
    let backend = Backend::start("b1");
    let p = start(&[backend.addr], "");
    let dir = p.pibl.dir.path().to_path_buf();
    let old_ca = p.pki.ca_file.to_str().expect("path").to_string();
    let n = 2 << 20;
    let download = {
        let (tls, ca) = (p.tls, old_ca.clone());
        std::thread::spawn(move || {
            curl(&[
                "--cacert",
                &ca,
                "--resolve",
                &resolve(tls),
                "--limit-rate",
                "1M",
                &url(tls, &format!("/big?n={n}")),
            ])
        })
    };
    // The download is under way once the backend has the request.
    let until = Instant::now() + Duration::from_secs(10);
    while backend.count() == 0 {
        assert!(Instant::now() < until, "the download did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    let new_pki = Pki::new(&dir, "b");
    let new_cert = new_pki.ca.issue(&["localhost"], 90 * DAY).expect("leaf");
    let conf = std::fs::read_to_string(p.pibl.conf_path()).expect("conf");
    let line = conf
        .lines()
        .find(|l| l.starts_with("certificate "))
        .expect("certificate line")
        .to_string();
    let words: Vec<&str> = line.split_whitespace().collect();
    std::fs::write(words[1], &new_cert.chain_pem).expect("chain");
    std::fs::write(words[2], &new_cert.key_pem).expect("key");
    p.pibl.signal(libc::SIGHUP);
    assert!(p
        .pibl
        .wait_for_line("generation 1", Duration::from_secs(10)));

    let fresh = |ca: &str| {
        curl(&[
            "--cacert",
            ca,
            "--resolve",
            &resolve(p.tls),
            &url(p.tls, "/after"),
        ])
    };
    assert!(fresh(new_pki.ca_file.to_str().expect("path"))
        .status
        .success());
    assert!(
        !fresh(&old_ca).status.success(),
        "the old certificate is still served"
    );

    let out = download.join().expect("download thread");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout == pattern(n),
        "download differs ({} bytes)",
        out.stdout.len()
    );

    // A bad file on reload keeps the certificate in use.
    std::fs::write(words[2], "not a key").expect("key");
    p.pibl.signal(libc::SIGHUP);
    assert!(p
        .pibl
        .wait_for_line("the certificates in use are kept", Duration::from_secs(10)));
    assert!(fresh(new_pki.ca_file.to_str().expect("path"))
        .status
        .success());
}

fn check(dir: &Path, conf: &str) -> (bool, String) {
    std::fs::write(dir.join("pibl.conf"), conf).expect("conf");
    let out = Command::new(env!("CARGO_BIN_EXE_pibl"))
        .args(["--check", "-c", "pibl.conf"])
        .current_dir(dir)
        .output()
        .expect("pibl --check");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn check_names_the_file_of_a_bad_certificate() {
    let dir = TempDir::new("tls-check");
    let d = dir.path();
    let pki = Pki::new(d, "c");
    let good = pki.issue(d, "good", &["good.test", "www.good.test"]);
    let other = pki.ca.issue(&["other.test"], 90 * DAY).expect("other");
    std::fs::write(d.join("other.key"), &other.key_pem).expect("key");
    let base = "listen 127.0.0.1:0\nlisten 127.0.0.1:0 tls\nbackend 127.0.0.1:9\n";

    let (ok, text) = check(d, &format!("{base}{good}"));
    assert!(ok, "{text}");
    assert!(text.contains("listen 127.0.0.1:0 tls\n"), "{text}");
    assert!(text.contains("good.test, www.good.test; expires"), "{text}");
    assert!(
        text.contains("(in 89 days)") || text.contains("(in 90 days)"),
        "{text}"
    );

    let (ok, text) = check(
        d,
        &format!(
            "{base}certificate {} {}\n",
            d.join("good.pem").display(),
            d.join("other.key").display()
        ),
    );
    assert!(!ok);
    assert!(text.contains("other.key: the key does not match"), "{text}");

    let now = time::OffsetDateTime::now_utc();
    let old = pki
        .ca
        .issue_between(
            &["old.test"],
            (
                now - time::Duration::days(30),
                now - time::Duration::days(1),
            ),
        )
        .expect("old");
    let expired = write_cert_pair(d, "old", &old.chain_pem, &old.key_pem);
    let (ok, text) = check(d, &format!("{base}{expired}"));
    assert!(!ok);
    assert!(
        text.contains("old.pem: the certificate expired on"),
        "{text}"
    );

    let (ok, text) = check(d, &format!("{base}certificate missing.pem missing.key\n"));
    assert!(!ok);
    assert!(
        text.contains("missing.pem: cannot read the certificate file"),
        "{text}"
    );

    let (ok, text) = check(d, base);
    assert!(!ok);
    assert!(
        text.contains("pibl.conf:2: listen 127.0.0.1:0 tls: a TLS listener needs a certificate"),
        "{text}"
    );
}

#[test]
fn redirect_https_answers_plain_requests_with_308_to_the_tls_port() {
    let backend = Backend::start("b1");
    let certs = TempDir::new("tls-redirect");
    let pki = Pki::new(certs.path(), "r");
    let cert = pki.issue(certs.path(), "localhost", &["localhost"]);
    // redirect_https needs the TLS listener's real port: take a free one.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let pibl = Pibl::start(
        &[backend.addr],
        &format!("listen 127.0.0.1:{port} tls\n{cert}redirect_https on\n"),
    );
    let text = common::raw_exchange(
        pibl.addr,
        b"GET /a/b?c=1 HTTP/1.1\r\nHost: example.test:8080\r\nConnection: close\r\n\r\n",
    );
    assert!(
        text.starts_with("HTTP/1.1 308 Permanent Redirect\r\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "\r\nLocation: https://example.test:{port}/a/b?c=1\r\n"
        )),
        "{text}"
    );
    assert_eq!(
        backend.count(),
        0,
        "nothing is proxied from the plain listener"
    );

    if have("curl") {
        let out = curl(&[
            "--cacert",
            pki.ca_file.to_str().expect("path"),
            "-L",
            &format!("http://localhost:{}/followed", pibl.addr.port()),
            "--resolve",
            &format!("localhost:{port}:127.0.0.1"),
            "--resolve",
            &format!("localhost:{}:127.0.0.1", pibl.addr.port()),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(backend.seen()[0].target, "/followed");
        assert_eq!(backend.seen()[0].header("x-forwarded-proto"), Some("https"));
    }
}

#[test]
fn hsts_is_announced_on_tls_responses_only() {
    if !have("curl") {
        return;
    }
    let backend = Backend::start("b1");
    let p = start(&[backend.addr], "hsts 31536000\ncache on\ncache_ttl 60\n");
    let ca = p.pki.ca_file.to_str().expect("path");
    for _ in 0..2 {
        // A miss, then a hit from the cache: both carry it.
        let out = curl(&[
            "--cacert",
            ca,
            "--resolve",
            &resolve(p.tls),
            "-D",
            "-",
            "-o",
            "/dev/null",
            &url(p.tls, "/cached"),
        ]);
        let head = String::from_utf8_lossy(&out.stdout);
        assert!(
            head.contains("\r\nStrict-Transport-Security: max-age=31536000\r\n"),
            "{head}"
        );
    }
    let r = common::get(p.pibl.addr, "/plain");
    assert_eq!(r.header("strict-transport-security"), None);
}
