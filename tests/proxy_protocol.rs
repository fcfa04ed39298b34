//! The PROXY protocol with the real binary (issue 20): `listen ... proxy_protocol` takes v1 and
//! v2 headers (the address they carry is the client's in the access log, X-Forwarded-For and
//! ACLs; a broken or missing header closes the connection), a plain listener answers a PROXY
//! line with 400, TLS after the header; and `proxy_protocol v1|v2` on a pool sends one to
//! backends that parse it.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::tls_listener::tls_client;
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
    let conn = tls_client(&ca.cert_path);
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

/// What a PROXY-parsing backend saw: per connection, the header's source, then the paths of
/// the requests on it.
#[derive(Default)]
struct ProxyBackendLog {
    connections: Vec<(String, Vec<String>)>,
    /// Each connection's announced destination (`-` for LOCAL).
    destinations: Vec<String>,
}

/// A backend that expects a PROXY header (v1 or v2) on every connection, records its source
/// and answers each request with 200 and keep-alive.
fn proxy_backend() -> (SocketAddr, Arc<Mutex<ProxyBackendLog>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let log = Arc::new(Mutex::new(ProxyBackendLog::default()));
    let shared = log.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let log = shared.clone();
            std::thread::spawn(move || serve_proxied(stream, &log));
        }
    });
    (addr, log)
}

fn serve_proxied(stream: TcpStream, log: &Mutex<ProxyBackendLog>) {
    let mut w = stream.try_clone().expect("clone");
    let mut r = BufReader::new(stream);
    let mut first = [0u8; 16];
    if r.read_exact(&mut first[..6]).is_err() {
        return;
    }
    let mut dest = "-".to_string();
    let source = if &first[..6] == b"PROXY " {
        let mut line = String::new();
        let _ = r.read_line(&mut line);
        let parts: Vec<&str> = line.trim_end().split(' ').collect();
        match parts.as_slice() {
            [_, src, dst, sport, dport] => {
                dest = format!("{dst}:{dport}");
                format!("v1 {src}:{sport}")
            }
            _ => format!("v1 {}", line.trim_end()),
        }
    } else {
        if r.read_exact(&mut first[6..]).is_err() {
            return;
        }
        let len = usize::from(u16::from_be_bytes([first[14], first[15]]));
        let mut rest = vec![0u8; len];
        if r.read_exact(&mut rest).is_err() {
            return;
        }
        match (first[12], first[13]) {
            (0x21, 0x11) => {
                dest = format!(
                    "{}.{}.{}.{}:{}",
                    rest[4],
                    rest[5],
                    rest[6],
                    rest[7],
                    u16::from_be_bytes([rest[10], rest[11]])
                );
                format!(
                    "v2 {}.{}.{}.{}:{}",
                    rest[0],
                    rest[1],
                    rest[2],
                    rest[3],
                    u16::from_be_bytes([rest[8], rest[9]])
                )
            }
            (0x21, 0x21) => {
                let mut ip = [0u8; 16];
                ip.copy_from_slice(&rest[..16]);
                let ip = std::net::Ipv6Addr::from(ip);
                format!("v2 [{ip}]:{}", u16::from_be_bytes([rest[32], rest[33]]))
            }
            (0x20, _) => "v2 LOCAL".to_string(),
            other => format!("v2 {other:?}"),
        }
    };
    let index = {
        let mut l = log.lock().expect("log");
        l.connections.push((source, Vec::new()));
        l.destinations.push(dest);
        l.connections.len() - 1
    };
    loop {
        let mut request_line = String::new();
        if r.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h == "\r\n" {
                break;
            }
        }
        let path = request_line
            .split(' ')
            .nth(1)
            .unwrap_or_default()
            .to_string();
        log.lock().expect("log").connections[index].1.push(path);
        if w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .is_err()
        {
            return;
        }
    }
}

fn connections(log: &Mutex<ProxyBackendLog>) -> Vec<(String, Vec<String>)> {
    log.lock().expect("log").connections.clone()
}

#[test]
fn a_pool_with_proxy_protocol_sends_the_client_address_per_connection() {
    for (version, prefix) in [("v1", "v1 "), ("v2", "v2 ")] {
        let (addr, log) = proxy_backend();
        let pibl = Pibl::start(
            &[],
            &format!(
                "workers 1\nlisten 127.0.0.1:0 proxy_protocol\n\
                 pool pp {{ backend {addr}; proxy_protocol {version} }}\n\
                 site test {{ route / pp }}\n"
            ),
        );
        let proxied = proxied_listener(&pibl);
        // A direct client (its own address goes upstream), two requests on one connection:
        // the second reuses the upstream connection made for it.
        let mut direct = Conn::open(pibl.addr);
        let port = direct.stream.local_addr().expect("local").port();
        assert_eq!(get_on(&mut direct, "/direct-1").status, 200);
        assert_eq!(get_on(&mut direct, "/direct-2").status, 200);
        // A client behind a PROXY hop: the address it carried goes on upstream, and the idle
        // connection of the direct client is not reused for it.
        let mut hop = Conn::open(proxied);
        hop.send(&v1("203.0.113.50", 41000));
        assert_eq!(get_on(&mut hop, "/hop-1").status, 200);
        assert_eq!(get_on(&mut hop, "/hop-2").status, 200);
        // Back to the direct client: its own pooled connection again.
        assert_eq!(get_on(&mut direct, "/direct-3").status, 200);
        let seen = connections(&log);
        assert_eq!(
            seen,
            [
                (
                    format!("{prefix}127.0.0.1:{port}"),
                    vec![
                        "/direct-1".to_string(),
                        "/direct-2".into(),
                        "/direct-3".into()
                    ]
                ),
                (
                    format!("{prefix}203.0.113.50:41000"),
                    vec!["/hop-1".to_string(), "/hop-2".into()]
                ),
            ],
            "{version}"
        );
    }
}

/// The destination pibl announces upstream: the address its client connected to, or, for a
/// client behind a PROXY hop, the destination that hop's header carried (as HAProxy passes
/// it on), in both versions.
#[test]
fn the_destination_of_a_proxy_hop_goes_on_upstream() {
    for version in ["v1", "v2"] {
        let (addr, log) = proxy_backend();
        let pibl = Pibl::start(
            &[],
            &format!(
                "workers 1\nlisten 127.0.0.1:0 proxy_protocol\n\
                 pool pp {{ backend {addr}; proxy_protocol {version} }}\n\
                 site test {{ route / pp }}\n"
            ),
        );
        let mut direct = Conn::open(pibl.addr);
        assert_eq!(get_on(&mut direct, "/direct").status, 200);
        let mut hop = Conn::open(proxied_listener(&pibl));
        // v1() announces 127.0.0.1:80 as the destination.
        hop.send(&v1("203.0.113.51", 41001));
        assert_eq!(get_on(&mut hop, "/hop").status, 200);
        let dests = log.lock().expect("log").destinations.clone();
        assert_eq!(
            dests,
            [pibl.addr.to_string(), "127.0.0.1:80".to_string()],
            "{version}"
        );
    }
}

#[test]
fn the_flat_pool_sends_with_backend_proxy_protocol_and_health_checks_send_local() {
    let (addr, log) = proxy_backend();
    let pibl = Pibl::start(
        &[addr],
        "workers 1\nbackend_proxy_protocol v2\nhealth_check /health 200ms\n",
    );
    let r = common::get(pibl.addr, "/flat");
    assert_eq!(r.status, 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let seen = connections(&log);
        let local = seen
            .iter()
            .any(|(s, paths)| s == "v2 LOCAL" && paths == &["/health"]);
        let flat = seen
            .iter()
            .any(|(s, paths)| s.starts_with("v2 127.0.0.1:") && paths == &["/flat"]);
        if local && flat {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{seen:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A relay in front of `to` that takes the PROXY header off each connection (recording its
/// source, as `pibl::net::proxy_protocol` reads it) and then passes bytes both ways untouched:
/// a TLS handshake through it works only if the header came before it.
fn header_stripping_relay(to: SocketAddr) -> (SocketAddr, Arc<Mutex<Vec<Option<SocketAddr>>>>) {
    use pibl::net::proxy_protocol::{parse, Parsed};
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let sources = Arc::new(Mutex::new(Vec::new()));
    let seen = sources.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut client) = stream else { continue };
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut header = Vec::new();
                let mut byte = [0u8; 1];
                let source = loop {
                    if client.read_exact(&mut byte).is_err() {
                        return;
                    }
                    header.push(byte[0]);
                    match parse(&header) {
                        Parsed::Incomplete => {}
                        Parsed::Done { source, .. } => break source,
                        Parsed::Invalid(_) => return,
                    }
                };
                seen.lock().expect("sources").push(source);
                let Ok(upstream) = TcpStream::connect(to) else {
                    return;
                };
                let (mut c2, mut u2) = (
                    client.try_clone().expect("clone"),
                    upstream.try_clone().expect("clone"),
                );
                let mut upstream = upstream;
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c2, &mut u2);
                    let _ = u2.shutdown(std::net::Shutdown::Write);
                });
                let _ = std::io::copy(&mut upstream, &mut client);
                let _ = client.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    (addr, sources)
}

#[test]
fn over_upstream_tls_the_header_comes_before_the_handshake() {
    use common::tls_origin::{TlsOrigin, TlsReply};
    let backend = Backend::start("behind-tls");
    let ca = TestCa::new("pp upstream CA");
    let origin = TlsOrigin::start(
        &ca.issue(&["localhost", "127.0.0.1"]),
        TlsReply::ForwardTo(backend.addr),
    );
    let (relay, sources) = header_stripping_relay(origin.addr);
    let pibl = Pibl::start(
        &[],
        &format!(
            "workers 1\nbackend 127.0.0.1:{} tls\nbackend_proxy_protocol v1\nbackend_ca {}\n",
            relay.port(),
            ca.cert_path.display()
        ),
    );
    let mut c = Conn::open(pibl.addr);
    let port = c.stream.local_addr().expect("local").port();
    assert_eq!(get_on(&mut c, "/through-tls").status, 200);
    assert_eq!(
        *sources.lock().expect("sources"),
        [Some(SocketAddr::from(([127, 0, 0, 1], port)))]
    );
    assert_eq!(backend.seen().len(), 1);
}
