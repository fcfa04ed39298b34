//! The proxy end to end: real loopback backends, the real `pibl` binary, real sockets.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{get, pattern, raw_exchange, Backend, Conn, Pibl};

fn three_backends() -> (Vec<Backend>, Pibl) {
    let backends: Vec<Backend> = ["a", "b", "c"].iter().map(|n| Backend::start(n)).collect();
    let addrs: Vec<_> = backends.iter().map(|b| b.addr).collect();
    let pibl = Pibl::start(&addrs, "");
    (backends, pibl)
}

#[test]
fn get_head_and_post_reach_the_backend_with_query_and_body_intact() {
    let b = Backend::start("only");
    let p = Pibl::start(&[b.addr], "");
    let mut c = Conn::open(p.addr);

    let r = c.get("/path/x?q=1&r=two");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "backend only: GET /path/x?q=1&r=two\n");

    c.send(b"HEAD /h?x=y HTTP/1.1\r\nHost: test\r\n\r\n");
    let r = c.read_response(true).unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert_eq!(r.header("Content-Length"), Some("26"));

    c.send(b"POST /echo?z=9 HTTP/1.1\r\nHost: test\r\nContent-Length: 11\r\n\r\nhello world");
    let r = c.read_response(false).unwrap();
    assert_eq!(r.body, b"hello world");

    for m in ["PUT", "DELETE", "PATCH", "OPTIONS"] {
        c.send(
            format!("{m} /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 3\r\n\r\nabc").as_bytes(),
        );
        let r = c.read_response(false).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"abc"[..]), "{m}");
    }
    let seen = b.seen();
    let methods: Vec<&str> = seen.iter().map(|s| s.method.as_str()).collect();
    assert_eq!(
        methods,
        ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
    );
    assert_eq!(seen[1].target, "/h?x=y");
    assert_eq!(seen[2].target, "/echo?z=9");
    assert_eq!(seen[2].body_len, 11);
}

#[test]
fn round_robin_is_exact_over_three_backends_across_connections() {
    let (backends, p) = three_backends();
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let addr = p.addr;
            std::thread::spawn(move || {
                let mut c = Conn::open(addr);
                for _ in 0..40 {
                    assert_eq!(c.get("/rr").status, 200);
                }
                // And some on fresh connections.
                for _ in 0..10 {
                    assert_eq!(get(addr, "/rr").status, 200);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let counts: Vec<usize> = backends.iter().map(Backend::count).collect();
    assert_eq!(counts, vec![100, 100, 100]);
}

#[test]
fn consecutive_requests_rotate_through_backends_in_order() {
    let (_backends, p) = three_backends();
    let mut c = Conn::open(p.addr);
    let names: Vec<String> = (0..6)
        .map(|_| c.get("/").header("X-Backend").unwrap().to_string())
        .collect();
    assert_eq!(names[0..3], names[3..6]);
    let mut distinct = names[0..3].to_vec();
    distinct.sort();
    assert_eq!(distinct, ["a", "b", "c"]);
}

#[test]
fn thousand_requests_on_one_keepalive_connection() {
    let b = Backend::start("k");
    let p = Pibl::start(&[b.addr], "");
    let mut c = Conn::open(p.addr);
    for i in 0..1000 {
        let r = c.get(&format!("/n/{i}"));
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), format!("backend k: GET /n/{i}\n"));
    }
    // Upstream keep-alive: far fewer backend connections than requests.
    assert!(b.accepted.load(std::sync::atomic::Ordering::SeqCst) < 10);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let (_b, p) = three_backends();
    let mut c = Conn::open(p.addr);
    let mut batch = Vec::new();
    for i in 0..20 {
        batch.extend_from_slice(format!("GET /p/{i} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    }
    batch.extend_from_slice(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nbody");
    batch.extend_from_slice(b"GET /last HTTP/1.1\r\nHost: t\r\n\r\n");
    c.send(&batch);
    for i in 0..20 {
        let r = c.read_response(false).unwrap();
        assert!(r.text().ends_with(&format!("GET /p/{i}\n")), "{}", r.text());
    }
    assert_eq!(c.read_response(false).unwrap().body, b"body");
    assert!(c
        .read_response(false)
        .unwrap()
        .text()
        .ends_with("GET /last\n"));
}

#[test]
fn chunked_bodies_are_relayed_both_ways() {
    let b = Backend::start("c");
    let p = Pibl::start(&[b.addr], "");
    let mut c = Conn::open(p.addr);
    let r = c.get("/chunked");
    assert_eq!(r.header("Transfer-Encoding"), Some("chunked"));
    assert_eq!(r.text(), "hello chunked world");

    c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n3;x=y\r\nefg\r\n0\r\nX-Trailer: 1\r\n\r\n");
    let r = c.read_response(false).unwrap();
    assert_eq!(r.body, b"abcdefg");
    // And the connection is still in step.
    assert_eq!(c.get("/after").status, 200);
}

#[test]
fn http10_client_gets_a_dechunked_body_and_a_close() {
    let b = Backend::start("old");
    let p = Pibl::start(&[b.addr], "");
    let out = raw_exchange(p.addr, b"GET /chunked HTTP/1.0\r\n\r\n");
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(!out.contains("Transfer-Encoding"), "{out}");
    assert!(out.contains("Connection: close"), "{out}");
    assert!(out.ends_with("\r\n\r\nhello chunked world"), "{out}");
    // HTTP/1.0 with keep-alive stays open.
    let mut c = Conn::open(p.addr);
    c.send(b"GET /one HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let r = c.read_response(false).unwrap();
    assert_eq!(r.header("Connection"), Some("keep-alive"));
    c.send(b"GET /two HTTP/1.0\r\n\r\n");
    assert!(c.read_response(false).unwrap().text().ends_with("/two\n"));
    assert!(c.is_closed());
}

/// Reads until the server closes; an error (a reset) fails the test: a reset can destroy a
/// response the client has not read yet.
fn read_until_clean_close(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    s.read_to_end(&mut out)
        .expect("the connection ends with a FIN, not a reset");
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn connection_close_ends_cleanly_even_with_input_after_the_last_request() {
    let b = Backend::start("cc");
    let p = Pibl::start(&[b.addr], "");
    // The client's last request: pibl closes first (the client never half-closes here).
    for i in 0..20 {
        let mut s = TcpStream::connect(p.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(
            format!("GET /last/{i} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .unwrap();
        let out = read_until_clean_close(&mut s);
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        assert!(out.contains("\r\nConnection: close\r\n"), "{out}");
        assert!(out.ends_with(&format!("GET /last/{i}\n")), "{out}");
    }
    // A client that sends more after the request that said close: the response still arrives
    // whole and the end is clean (pibl lingers), and the extra request goes nowhere.
    let mut s = TcpStream::connect(p.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        b"GET /first HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\nGET /second HTTP/1.1\r\nHost: t\r\n\r\n",
    )
    .unwrap();
    let out = read_until_clean_close(&mut s);
    assert!(out.ends_with("GET /first\n"), "{out}");
    assert_eq!(out.matches("HTTP/1.1 ").count(), 1, "{out}");
    let targets: Vec<String> = b.seen().into_iter().map(|s| s.target).collect();
    assert_eq!(targets.len(), 21);
    assert_eq!(targets.last().map(String::as_str), Some("/first"));
}

#[test]
fn close_delimited_response_is_relayed_then_closed() {
    let b = Backend::start("cl");
    let p = Pibl::start(&[b.addr], "");
    let mut c = Conn::open(p.addr);
    c.send(b"GET /close HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.read_response(false).unwrap();
    assert_eq!(r.text(), "until close from cl");
    assert_eq!(r.header("Connection"), Some("close"));
}

#[test]
fn large_bodies_are_byte_identical() {
    let b = Backend::start("big");
    let p = Pibl::start(&[b.addr], "");
    // 10 MB up.
    let body = pattern(10 * 1024 * 1024);
    let mut c = Conn::open(p.addr);
    let writer = {
        let mut s = c.stream.try_clone().unwrap();
        let body = body.clone();
        std::thread::spawn(move || {
            s.write_all(
                format!(
                    "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            )
            .unwrap();
            s.write_all(&body).unwrap();
        })
    };
    let r = c.read_response(false).unwrap();
    writer.join().unwrap();
    assert_eq!(r.body.len(), body.len());
    assert_eq!(crc32fast::hash(&r.body), crc32fast::hash(&body));
    assert_eq!(b.seen()[0].body_crc, crc32fast::hash(&body));
    // 50 MB down.
    let n = 50 * 1024 * 1024;
    let r = c.get(&format!("/big?n={n}"));
    assert_eq!(r.body.len(), n);
    assert_eq!(crc32fast::hash(&r.body), crc32fast::hash(&pattern(n)));
}

#[test]
fn proxy_headers_are_rewritten() {
    let b = Backend::start("h");
    let p = Pibl::start(&[b.addr], "");
    let mut c = Conn::open(p.addr);
    c.send(
        b"GET /hdr HTTP/1.1\r\nHost: site.example:8080\r\nConnection: keep-alive, X-Private\r\n\
          X-Private: secret\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n\
          X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\nVia: 1.0 edge\r\nX-Custom: kept\r\n\r\n",
    );
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 200);
    assert!(r.header("Via").unwrap().contains("pibl"));
    let s = &b.seen()[0];
    assert_eq!(s.header("Host"), Some("site.example:8080"));
    assert_eq!(s.header("X-Forwarded-For"), Some("203.0.113.9, 127.0.0.1"));
    assert_eq!(s.header("X-Forwarded-Proto"), Some("http"));
    assert_eq!(s.header_count("X-Forwarded-Proto"), 1);
    assert_eq!(s.header("Via"), Some("1.0 edge, 1.1 pibl"));
    assert_eq!(s.header("X-Custom"), Some("kept"));
    for gone in [
        "Connection",
        "X-Private",
        "Keep-Alive",
        "Proxy-Connection",
        "TE",
    ] {
        assert_eq!(s.header(gone), None, "{gone} was forwarded");
    }
}

#[test]
fn absolute_form_target_is_sent_in_origin_form_with_its_host() {
    let b = Backend::start("abs");
    let p = Pibl::start(&[b.addr], "");
    let mut c = Conn::open(p.addr);
    c.send(b"GET http://example.org:81/a/b?c=d HTTP/1.1\r\nHost: ignored\r\n\r\n");
    assert_eq!(c.read_response(false).unwrap().status, 200);
    let s = &b.seen()[0];
    assert_eq!(s.target, "/a/b?c=d");
    assert_eq!(s.header("Host"), Some("example.org:81"));
}

#[test]
fn backend_killed_mid_test_causes_no_client_error() {
    let (backends, p) = three_backends();
    let mut c = Conn::open(p.addr);
    for _ in 0..30 {
        assert_eq!(c.get("/before").status, 200);
    }
    backends[1].kill();
    for i in 0..60 {
        let r = c.get("/after");
        assert_eq!(r.status, 200, "request {i} after the kill: {}", r.text());
        assert_ne!(r.header("X-Backend"), Some("b"));
    }
    // New connections too.
    for _ in 0..10 {
        assert_eq!(get(p.addr, "/fresh").status, 200);
    }
}

#[test]
fn all_backends_down_gives_502_at_once() {
    // All three are started before any is killed: a port freed by one could otherwise be handed
    // to the next, and a config listing one backend twice is refused.
    let backends: Vec<_> = (0..3).map(|_| Backend::start("x")).collect();
    let dead: Vec<_> = backends
        .iter()
        .map(|b| {
            b.kill();
            b.addr
        })
        .collect();
    let p = Pibl::start(&dead, "");
    let started = Instant::now();
    let mut c = Conn::open(p.addr);
    let r = c.get("/");
    assert_eq!(r.status, 502);
    assert!(r.text().contains("502"), "{}", r.text());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    // The connection stays usable for the next request (no body was left unread).
    assert_eq!(c.get("/again").status, 502);
}

#[test]
fn stale_pooled_connection_is_retried_on_a_fresh_one() {
    let b = Backend::start("stale");
    let p = Pibl::start(&[b.addr], "workers 1\n");
    let mut c = Conn::open(p.addr);
    assert_eq!(c.get("/1").status, 200);
    // From now on the backend drops each connection when its 2nd request arrives, unanswered:
    // exactly the keep-alive race, where a pooled connection dies as it is reused.
    b.drop_nth_request
        .store(2, std::sync::atomic::Ordering::SeqCst);
    for i in 0..5 {
        let r = c.get(&format!("/again/{i}"));
        assert_eq!(r.status, 200, "{}", r.text());
    }
}

#[test]
fn garbage_request_gets_400_and_close() {
    let b = Backend::start("g");
    let p = Pibl::start(&[b.addr], "");
    for garbage in [
        &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
    ] {
        let out = raw_exchange(p.addr, garbage);
        assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
        assert!(out.contains("Connection: close"), "{out}");
    }
    assert_eq!(b.count(), 0);
    assert_eq!(get(p.addr, "/fine").status, 200);
}

#[test]
fn oversized_head_gets_431_and_long_uri_414() {
    let b = Backend::start("o");
    let p = Pibl::start(&[b.addr], "");
    let big = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
        "x".repeat(70 * 1024)
    );
    let out = raw_exchange(p.addr, big.as_bytes());
    assert!(
        out.starts_with("HTTP/1.1 431 "),
        "{}",
        &out[..out.len().min(200)]
    );
    let long = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "u".repeat(70 * 1024));
    let out = raw_exchange(p.addr, long.as_bytes());
    assert!(
        out.starts_with("HTTP/1.1 414 "),
        "{}",
        &out[..out.len().min(200)]
    );
    // A head over 16 KiB but under the limit is fine.
    let mid = format!(
        "GET /mid HTTP/1.1\r\nHost: a\r\nX-Mid: {}\r\n\r\n",
        "m".repeat(30 * 1024)
    );
    let mut c = Conn::open(p.addr);
    c.send(mid.as_bytes());
    assert_eq!(c.read_response(false).unwrap().status, 200);
    assert_eq!(b.seen()[0].header("X-Mid").map(str::len), Some(30 * 1024));
}

/// `threads` keep-alive connections each GET `path(thread, i)` for i in 0..`each`, all 200.
fn get_in_parallel(
    addr: std::net::SocketAddr,
    threads: usize,
    each: usize,
    path: impl Fn(usize, usize) -> String + Clone + Send + 'static,
) {
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut c = Conn::open(addr);
                for i in 0..each {
                    assert_eq!(c.get(&path(t, i)).status, 200);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn a_stdout_nobody_reads_stalls_neither_the_proxy_nor_the_log_file() {
    let b = Backend::start("quiet");
    let p = Pibl::start_stdout_unread(&[b.addr], "");
    // About 3 MB of log lines (long targets), far more than a pipe holds (64 KiB) or pibl
    // queues for stdout: writing them must not wait for the reader that never comes.
    let pad = "p".repeat(300);
    get_in_parallel(p.addr, 4, 2000, move |t, i| {
        format!("/unread/{t}/{i}?{pad}")
    });
    // Every line is in the file, and the file says stdout fell behind.
    assert_eq!(p.wait_for_log("\"GET /unread/", 8000).len(), 8000);
    assert!(p.wait_for_line("stdout is not keeping up", Duration::from_secs(5)));
    assert_eq!(b.count(), 8000);
}

#[test]
fn a_log_file_that_cannot_be_written_does_not_stop_the_proxy() {
    // /dev/full fails every write with ENOSPC, as a full disk does.
    let b = Backend::start("full");
    let p = Pibl::start(&[b.addr], "log_file /dev/full\n");
    get_in_parallel(p.addr, 4, 500, |t, i| format!("/full/{t}/{i}"));
    assert_eq!(b.count(), 2000);
    // The lines still reach stdout.
    assert!(
        p.wait_for_stdout("\"GET /full/", 2000),
        "stdout lacks access lines"
    );
}

#[test]
fn every_request_gets_an_access_log_line_in_file_and_stdout() {
    let b = Backend::start("log");
    let p = Pibl::start(&[b.addr], "");
    let mut c = Conn::open(p.addr);
    for i in 0..5 {
        c.get(&format!("/logged/{i}"));
    }
    raw_exchange(p.addr, b"BROKEN\r\n\r\n");
    let lines = p.wait_for_log("\"GET /logged/", 5);
    assert_eq!(lines.len(), 5, "{lines:?}");
    let l = &lines[0];
    // stamp client "METHOD target VERSION" status bytes backend duration
    let fields: Vec<&str> = l.split(' ').collect();
    assert!(fields[0].ends_with('Z') && fields[0].contains('T'), "{l}");
    assert!(fields[1].starts_with("127.0.0.1:"), "{l}");
    assert_eq!(fields[2..5], ["\"GET", "/logged/0", "HTTP/1.1\""]);
    assert_eq!(fields[5], "200");
    assert_eq!(fields[7], b.addr.to_string());
    assert!(fields[8].ends_with("ms"), "{l}");
    assert_eq!(p.wait_for_log("\" 400 ", 1).len(), 1);
    // The same lines on stdout.
    assert!(
        p.wait_for_stdout("/logged/", 5),
        "stdout lacks access lines"
    );
}

#[test]
fn upgrade_becomes_a_tunnel_only_after_101() {
    let b = Backend::start("ws");
    let p = Pibl::start(&[b.addr], "");
    let mut s = TcpStream::connect(p.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // Bytes after the head are sent at once; they must reach the backend only after its 101.
    s.write_all(b"GET /upgrade HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nearly-bytes")
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0; 1024];
    while !String::from_utf8_lossy(&got).contains("early-bytes") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    assert!(text.starts_with("HTTP/1.1 101 "), "{text}");
    assert!(text.contains("\r\n\r\nearly-bytes"), "{text}");
    s.write_all(b"ping").unwrap();
    let n = s.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"ping");
    let seen = &b.seen()[0];
    assert_eq!(seen.header("Upgrade"), Some("websocket"));
    assert_eq!(seen.body_len, 0);
}

#[test]
fn expect_100_continue_is_relayed() {
    let b = Backend::start("exp");
    let p = Pibl::start(&[b.addr], "");
    let mut c = Conn::open(p.addr);
    c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    c.send(b"12345");
    let r = c.read_response(false).unwrap();
    assert_eq!(r.body, b"12345");
}

#[test]
fn backend_100_continue_reaches_the_client_before_the_final_response() {
    let b = Backend::start("cont");
    let p = Pibl::start(&[b.addr], "");
    let mut s = TcpStream::connect(p.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        b"POST /continue HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
    )
    .unwrap();
    // The body goes only after the 100 arrived, as a real client waiting for it would do.
    let mut got = Vec::new();
    let mut buf = [0; 1024];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    assert!(text.starts_with("HTTP/1.1 100 Continue\r\n"), "{text}");
    s.write_all(b"12345").unwrap();
    let mut c = Conn {
        stream: s,
        buf: got[text.find("\r\n\r\n").unwrap() + 4..].to_vec(),
    };
    let r = c.read_response(false).unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, &b"12345"[..]));
    assert_eq!(b.seen()[0].header("Expect"), Some("100-continue"));
}

#[test]
fn sigterm_stops_cleanly_and_flushes_the_log() {
    let b = Backend::start("term");
    let mut p = Pibl::start(&[b.addr], "");
    let mut idle = Conn::open(p.addr);
    for i in 0..3 {
        assert_eq!(idle.get(&format!("/t/{i}")).status, 200);
    }
    assert_eq!(p.stop(), Some(0));
    // Idle keep-alive connections are closed, and every line reached the file.
    assert!(idle.is_closed());
    assert_eq!(
        p.log_file()
            .lines()
            .filter(|l| l.contains("\"GET /t/"))
            .count(),
        3
    );
    assert!(p.log_file().contains("stopped"));
    assert!(TcpStream::connect(p.addr).is_err());
}

#[test]
fn a_head_request_gets_pibls_own_error_without_a_body() {
    // RFC 9110 9.3.2: a response to HEAD has no content. A body after pibl's 502 head would be
    // read as the next response on the keep-alive connection.
    let b = Backend::start("x");
    b.kill();
    let p = Pibl::start(&[b.addr], "");
    let raw = raw_exchange(
        p.addr,
        b"HEAD /a HTTP/1.1\r\nHost: x\r\n\r\nHEAD /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(raw.matches("HTTP/1.1 502 ").count(), 2, "{raw}");
    // Each response is its head alone: the second status line follows the first blank line.
    let first_end = raw.find("\r\n\r\n").expect("a head") + 4;
    assert!(raw[first_end..].starts_with("HTTP/1.1 502 "), "{raw}");
    assert!(raw.ends_with("\r\n\r\n"), "{raw}");
    assert!(raw.contains("Content-Length: "), "{raw}");
}
