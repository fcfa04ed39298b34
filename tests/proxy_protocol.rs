//! The PROXY protocol with the real binary (issue 20): `listen ... proxy_protocol` takes v1 and
//! v2 headers (the address they carry is the client's in the access log, X-Forwarded-For and
//! ACLs; a broken or missing header closes the connection), a plain listener answers a PROXY
//! line with 400, TLS after the header; and `proxy_protocol v1|v2` on a pool sends one to
//! backends that parse it.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::tls_origin::TestCa;
use common::{Backend, Conn, Pibl, TempDir};

/// The listener of a running pibl whose start-up line gives it `proxy_protocol`.
fn proxied_listener(pibl: &Pibl) -> SocketAddr {
    let lines = pibl.stdout.lock().expect("stdout").clone();
    let rest = lines
        .iter()
        .find_map(|l| l.split("listening on ").nth(1).map(str::to_string))
        .expect("the start-up line");
    let rest = rest.split(" with ").next().unwrap_or("").to_string();
    rest.split(" and ")
        .find(|l| l.contains("proxy_protocol"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no proxy_protocol listener in {rest:?}"))
}

fn v1(source: &str, port: u16) -> Vec<u8> {
    let family = if source.contains(':') { "TCP6" } else { "TCP4" };
    let dest = if source.contains(':') {
        "::1"
    } else {
        "127.0.0.1"
    };
    format!("PROXY {family} {source} {dest} {port} 80\r\n").into_bytes()
}

fn v2_ipv4(source: [u8; 4], port: u16) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.extend_from_slice(&[0x21, 0x11, 0, 12 + 7]);
    h.extend_from_slice(&source);
    h.extend_from_slice(&[127, 0, 0, 1]);
    h.extend_from_slice(&port.to_be_bytes());
    h.extend_from_slice(&80u16.to_be_bytes());
    // A TLV (PP2_TYPE_AUTHORITY "a.b"), skipped.
    h.extend_from_slice(&[0x02, 0, 4, b'a', b'.', b'b', b'c']);
    h
}

fn get_on(conn: &mut Conn, path: &str) -> common::Response {
    conn.get(path)
}

/// Everything the server sends until it closes (or 5 s pass).
fn read_all(s: &mut TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

#[test]
fn v1_and_v2_headers_give_the_client_address_to_the_log_the_backend_and_acls() {
    let backend = Backend::start("pp");
    let pibl = Pibl::start(
        &[backend.addr],
        "workers 1\nlisten 127.0.0.1:0 proxy_protocol\ndeny 198.51.100.0/24\n",
    );
    let at = proxied_listener(&pibl);

    // v1, then a keep-alive second request on the same connection.
    let mut c = Conn::open(at);
    c.send(&v1("203.0.113.7", 40001));
    assert_eq!(get_on(&mut c, "/v1").status, 200);
    assert_eq!(get_on(&mut c, "/v1-again").status, 200);
    // v2 with a TLV, the request in the same write.
    let mut c = Conn::open(at);
    let mut first = v2_ipv4([192, 0, 2, 44], 40002);
    first.extend_from_slice(b"GET /v2 HTTP/1.1\r\nHost: t\r\n\r\n");
    c.send(&first);
    assert_eq!(c.read_response(false).expect("a response").status, 200);
    // v1 over IPv6.
    let mut c = Conn::open(at);
    c.send(&v1("2001:db8::9", 40003));
    assert_eq!(get_on(&mut c, "/v6").status, 200);
    // UNKNOWN keeps the socket's address.
    let mut c = Conn::open(at);
    c.send(b"PROXY UNKNOWN\r\n");
    assert_eq!(get_on(&mut c, "/unknown").status, 200);
    // An address the ACL denies: 403, from the header's address, not the socket's.
    let mut c = Conn::open(at);
    c.send(&v1("198.51.100.5", 40004));
    assert_eq!(get_on(&mut c, "/denied").status, 403);

    let xff = |path: &str| {
        backend
            .seen()
            .iter()
            .find(|s| s.target == path)
            .and_then(|s| s.header("x-forwarded-for").map(str::to_string))
            .unwrap_or_else(|| panic!("{path} did not reach the backend"))
    };
    assert_eq!(xff("/v1"), "203.0.113.7");
    assert_eq!(xff("/v1-again"), "203.0.113.7");
    assert_eq!(xff("/v2"), "192.0.2.44");
    assert_eq!(xff("/v6"), "2001:db8::9");
    assert_eq!(xff("/unknown"), "127.0.0.1");
    assert!(backend.seen().iter().all(|s| s.target != "/denied"));

    let lines = pibl.wait_for_log("\"GET /denied ", 1);
    assert!(lines[0].contains(" 198.51.100.5:40004 "), "{}", lines[0]);
    let log = pibl.log_file();
    for (path, client) in [
        ("/v1", "203.0.113.7:40001"),
        ("/v2", "192.0.2.44:40002"),
        ("/v6", "[2001:db8::9]:40003"),
    ] {
        let line = log
            .lines()
            .find(|l| l.contains(&format!("\"GET {path} ")))
            .unwrap_or_else(|| panic!("no line for {path} in {log}"));
        assert!(line.contains(&format!(" {client} ")), "{line}");
    }
}

#[test]
fn a_header_split_over_several_writes_is_read_whole() {
    let backend = Backend::start("split");
    let pibl = Pibl::start(&[backend.addr], "listen 127.0.0.1:0 proxy_protocol\n");
    let at = proxied_listener(&pibl);
    for header in [v1("203.0.113.8", 5000), v2_ipv4([203, 0, 113, 8], 5000)] {
        let mut c = Conn::open(at);
        c.stream.set_nodelay(true).expect("nodelay");
        for piece in header.chunks(5) {
            c.send(piece);
            std::thread::sleep(Duration::from_millis(15));
        }
        assert_eq!(get_on(&mut c, "/split").status, 200);
    }
    let seen = backend.seen();
    assert_eq!(seen.len(), 2);
    assert!(seen
        .iter()
        .all(|s| s.header("x-forwarded-for") == Some("203.0.113.8")));
}

#[test]
fn a_broken_truncated_or_missing_header_closes_the_connection() {
    let backend = Backend::start("broken");
    let pibl = Pibl::start(
        &[backend.addr],
        "listen 127.0.0.1:0 proxy_protocol\nclient_header_timeout 1s\n",
    );
    let at = proxied_listener(&pibl);
    let cases: [&[u8]; 5] = [
        b"GET / HTTP/1.1\r\nHost: t\r\n\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n",
        b"PROXY TCP4 300.2.3.4 5.6.7.8 1 2\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n",
        b"\r\n\r\n\0\r\nQUIT\n\x31\x11\0\x0c",
        b"\x16\x03\x01\x00\x05hello",
    ];
    for raw in cases {
        let mut s = TcpStream::connect(at).expect("connect");
        s.write_all(raw).expect("send");
        assert_eq!(read_all(&mut s), b"", "{raw:?}");
    }
    // Truncated: part of a header, then the client closes its side.
    let mut s = TcpStream::connect(at).expect("connect");
    s.write_all(b"PROXY TCP4 1.2.3.4 ").expect("send");
    s.shutdown(std::net::Shutdown::Write).expect("shutdown");
    assert_eq!(read_all(&mut s), b"");
    // Part of a header, then nothing: closed at the header timeout.
    let mut s = TcpStream::connect(at).expect("connect");
    s.write_all(b"\r\n\r\n\0\r\nQUIT\n\x21").expect("send");
    let began = std::time::Instant::now();
    assert_eq!(read_all(&mut s), b"");
    assert!(began.elapsed() < Duration::from_secs(4));
    assert_eq!(backend.count(), 0);
    // Still serving.
    let mut c = Conn::open(at);
    c.send(&v1("203.0.113.1", 1));
    assert_eq!(get_on(&mut c, "/after").status, 200);
}

#[test]
fn a_proxy_line_on_a_listener_without_proxy_protocol_is_a_bad_request() {
    let backend = Backend::start("plain");
    let pibl = Pibl::start(&[backend.addr], "");
    let mut s = TcpStream::connect(pibl.addr).expect("connect");
    s.write_all(&v1("203.0.113.7", 1)).expect("send");
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("send");
    let out = String::from_utf8_lossy(&read_all(&mut s)).into_owned();
    assert!(out.starts_with("HTTP/1.1 400 "), "{out}");
    let mut s = TcpStream::connect(pibl.addr).expect("connect");
    s.write_all(&v2_ipv4([1, 2, 3, 4], 1)).expect("send");
    let out = String::from_utf8_lossy(&read_all(&mut s)).into_owned();
    assert!(out.starts_with("HTTP/1.1 400 "), "{out}");
    assert_eq!(backend.count(), 0);
}

/// A CA, and a certificate for `localhost` written as a `certificate` line.
fn certs() -> (TestCa, String, TempDir) {
    let ca = TestCa::new("pp CA");
    let cert = ca.issue(&["localhost", "127.0.0.1"]);
    let dir = TempDir::new("pp-certs");
    let (cp, kp) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    std::fs::write(&cp, &cert.chain_pem).expect("chain");
    std::fs::write(&kp, &cert.key_pem).expect("key");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&kp, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let line = format!("certificate {} {}\n", cp.display(), kp.display());
    (ca, line, dir)
}

#[test]
fn on_a_tls_listener_the_header_comes_before_the_handshake() {
    let backend = Backend::start("tls");
    let (ca, line, _dir) = certs();
    let pibl = Pibl::start(
        &[backend.addr],
        &format!("listen 127.0.0.1:0 tls proxy_protocol\n{line}"),
    );
    let at = proxied_listener(&pibl);
    let config = pibl::tls::client::client_config(
        &pibl::tls::client::Trust::CaFile(ca.cert_path.clone()),
        &[b"http/1.1"],
    )
    .expect("a client config");
    let conn = rustls::ClientConnection::new(config, "localhost".try_into().expect("name"))
        .expect("a TLS client");
    let mut sock = TcpStream::connect(at).expect("connect");
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    sock.write_all(&v2_ipv4([192, 0, 2, 99], 443))
        .expect("header");
    let mut s = rustls::StreamOwned::new(conn, sock);
    s.write_all(b"GET /over-tls HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .expect("request");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 200 "), "{out}");
    let seen = backend.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].header("x-forwarded-for"), Some("192.0.2.99"));
    assert_eq!(seen[0].header("x-forwarded-proto"), Some("https"));
}
