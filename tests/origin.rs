//! `pibl-origin` end to end: the real binary on a free port, raw HTTP over std sockets.

mod origin_support;

use origin_support::{Client, Origin, TempDir};

fn standard_headers_present(r: &origin_support::Response, name: &str) {
    assert_eq!(r.header("X-Served-By"), Some(name));
    assert_eq!(r.header("Server"), Some("pibl-origin"));
    assert!(r.header("Date").is_some_and(|d| d.ends_with(" GMT")));
}

#[test]
fn index_shows_the_name_and_links_the_site() {
    let o = Origin::start(&["--name", "alpha"]);
    assert_eq!(o.name, "alpha");
    let r = o.get("/");
    assert_eq!(r.status, 200);
    standard_headers_present(&r, "alpha");
    assert_eq!(r.header("Content-Type"), Some("text/html; charset=utf-8"));
    let page = r.text();
    assert!(page.contains("alpha") && !page.contains("{{name}}"));
    for link in ["/style.css", "/logo.png", "/api/info", "action=\"/echo\""] {
        assert!(page.contains(link), "index links {link}");
    }
    assert_eq!(o.get("/index.html").body, r.body);
}

#[test]
fn default_name_is_origin_and_port() {
    let o = Origin::start(&[]);
    assert_eq!(o.name, format!("origin-{}", o.addr.port()));
    standard_headers_present(&o.get("/health"), &o.name);
}

#[test]
fn content_types_of_css_png_and_json() {
    let o = Origin::start(&["--name", "types"]);
    let css = o.get("/style.css");
    assert_eq!(css.header("Content-Type"), Some("text/css; charset=utf-8"));
    let png = o.get("/logo.png");
    assert_eq!(png.header("Content-Type"), Some("image/png"));
    assert!(png.body.starts_with(b"\x89PNG\r\n\x1a\n"));
    let json = o.get("/api/info");
    assert_eq!(json.header("Content-Type"), Some("application/json"));
    let text = json.text();
    assert!(text.contains("\"server\":\"types\""), "{text}");
    assert!(
        text.contains("\"requests\":") && text.contains("\"time\":"),
        "{text}"
    );
    let health = o.get("/health");
    assert_eq!((health.status, health.text().as_str()), (200, "ok"));
}

#[test]
fn head_has_the_headers_of_get_and_no_body() {
    let o = Origin::start(&["--name", "head"]);
    let mut c = o.connect();
    for path in ["/", "/style.css", "/logo.png", "/api/info", "/health"] {
        let get = c.get(path);
        c.send(format!("HEAD {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        let head = c.read_response(true).expect("HEAD response");
        assert_eq!(head.status, 200);
        for name in [
            "Content-Type",
            "Content-Length",
            "ETag",
            "Last-Modified",
            "X-Served-By",
        ] {
            assert_eq!(head.header(name), get.header(name), "{path} {name}");
        }
    }
    // Still in sync: a HEAD body would have been read as the next response.
    assert_eq!(c.get("/health").text(), "ok");
}

#[test]
fn validators_and_304() {
    let o = Origin::start(&["--name", "cond"]);
    let r = o.get("/style.css");
    let etag = r.header("ETag").expect("ETag").to_string();
    let modified = r
        .header("Last-Modified")
        .expect("Last-Modified")
        .to_string();
    let mut c = o.connect();
    let ask = |c: &mut Client, header: &str| {
        c.send(format!("GET /style.css HTTP/1.1\r\nHost: t\r\n{header}\r\n\r\n").as_bytes());
        c.read_response(false).expect("response")
    };
    let r = ask(&mut c, &format!("If-None-Match: {etag}"));
    assert_eq!(r.status, 304);
    assert_eq!(r.header("ETag"), Some(etag.as_str()));
    standard_headers_present(&r, "cond");
    assert_eq!(
        ask(&mut c, &format!("If-None-Match: \"nope\", {etag}")).status,
        304
    );
    assert_eq!(ask(&mut c, "If-None-Match: \"nope\"").status, 200);
    assert_eq!(
        ask(&mut c, &format!("If-Modified-Since: {modified}")).status,
        304
    );
    assert_eq!(
        ask(&mut c, "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT").status,
        200
    );
    // If-None-Match wins when both are sent.
    let both = format!("If-None-Match: \"nope\"\r\nIf-Modified-Since: {modified}");
    assert_eq!(ask(&mut c, &both).status, 200);
}

#[test]
fn not_found_and_method_not_allowed() {
    let o = Origin::start(&["--name", "errs"]);
    let r = o.get("/no-such-file.html");
    assert_eq!(r.status, 404);
    standard_headers_present(&r, "errs");
    let mut c = o.connect();
    for (req, allow) in [
        ("DELETE / HTTP/1.1\r\nHost: t\r\n\r\n", "GET, HEAD"),
        (
            "PUT /style.css HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nxx",
            "GET, HEAD",
        ),
        ("GET /echo HTTP/1.1\r\nHost: t\r\n\r\n", "POST"),
        (
            "POST /health HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
            "GET, HEAD",
        ),
    ] {
        c.send(req.as_bytes());
        let r = c.read_response(false).expect("response");
        assert_eq!(r.status, 405, "{req}");
        assert_eq!(r.header("Allow"), Some(allow), "{req}");
    }
    assert_eq!(c.get("/health").status, 200, "the connection stays usable");
}

#[test]
fn echo_returns_body_and_content_type() {
    let o = Origin::start(&["--name", "echo"]);
    let mut c = o.connect();
    c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"a\": [1]}\n");
    let r = c.read_response(false).expect("response");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"{\"a\": [1]}\n");
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert_eq!(r.header("X-Echo-Content-Type"), Some("application/json"));

    c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    let r = c.read_response(false).expect("response");
    assert_eq!((r.status, r.text().as_str()), (200, "hello world"));

    // A form post from the index page is shown as text.
    c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 9\r\n\r\nmessage=x");
    let r = c.read_response(false).expect("response");
    assert_eq!(r.header("Content-Type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.text(), "message=x");

    // Bodies that arrive in pieces and a large one.
    let big: Vec<u8> = (0..300_000).map(|i| (i % 251) as u8).collect();
    c.send(
        format!(
            "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
            big.len()
        )
        .as_bytes(),
    );
    for piece in big.chunks(70_000) {
        c.send(piece);
    }
    let r = c.read_response(false).expect("response");
    assert_eq!(r.body, big);
}

#[test]
fn echo_refuses_bodies_over_one_mebibyte() {
    let o = Origin::start(&["--name", "big"]);
    let mut c = o.connect();
    c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n");
    let r = c.read_response(false).expect("response");
    assert_eq!(r.status, 413);
    assert_eq!(r.header("Connection"), Some("close"));
    assert!(c.closed_by_server());

    let mut c = o.connect();
    c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    let chunk = format!("{:x}\r\n{}\r\n", 256 * 1024, "z".repeat(256 * 1024));
    let mut status = None;
    for _ in 0..5 {
        c.send(chunk.as_bytes());
    }
    if let Some(r) = c.read_response(false) {
        status = Some(r.status);
    }
    assert_eq!(status, Some(413));
}

#[test]
fn expect_100_continue_gets_a_go_ahead() {
    let o = Origin::start(&["--name", "expect"]);
    let mut c = o.connect();
    c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    let interim = c.read_response(false).expect("100 Continue");
    assert_eq!(interim.status, 100);
    c.send(b"ping");
    let r = c.read_response(false).expect("response");
    assert_eq!(r.text(), "ping");
}

#[test]
fn keep_alive_serves_100_requests_on_one_connection() {
    let o = Origin::start(&["--name", "ka"]);
    let mut c = o.connect();
    for i in 0..100 {
        let path = ["/", "/style.css", "/logo.png", "/api/info", "/health"][i % 5];
        let r = c.get(path);
        assert_eq!(r.status, 200, "request {i}");
        assert_eq!(r.header("Connection"), None);
    }
    let info = c.get("/api/info").text();
    assert!(info.contains("\"requests\":101"), "{info}");
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let o = Origin::start(&["--name", "pipe"]);
    let mut c = o.connect();
    let mut batch = String::new();
    let paths = ["/health", "/style.css", "/missing", "/logo.png", "/"];
    for _ in 0..20 {
        for p in paths {
            batch.push_str(&format!("GET {p} HTTP/1.1\r\nHost: t\r\n\r\n"));
        }
    }
    batch.push_str("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nend");
    batch.push_str("HEAD / HTTP/1.1\r\nHost: t\r\n\r\nGET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    c.send(batch.as_bytes());
    for _ in 0..20 {
        let want = [200, 200, 404, 200, 200];
        for (p, status) in paths.iter().zip(want) {
            let r = c.read_response(false).expect("response");
            assert_eq!(r.status, status, "{p}");
        }
    }
    assert_eq!(c.read_response(false).expect("echo").text(), "end");
    let head = c.read_response(true).expect("head");
    assert!(head.header("Content-Length").is_some());
    let last = c.read_response(false).expect("last");
    assert_eq!(
        (last.text().as_str(), last.header("Connection")),
        ("ok", Some("close"))
    );
    assert!(c.closed_by_server());
}

#[test]
fn http10_closes_unless_keep_alive_is_asked_for() {
    let o = Origin::start(&["--name", "old"]);
    let mut c = o.connect();
    c.send(b"GET /health HTTP/1.0\r\n\r\n");
    let r = c.read_response(false).expect("response");
    assert_eq!((r.status, r.header("Connection")), (200, Some("close")));
    assert!(c.closed_by_server());

    let mut c = o.connect();
    for _ in 0..3 {
        c.send(b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        let r = c.read_response(false).expect("response");
        assert_eq!(r.header("Connection"), Some("keep-alive"));
    }
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(c.read_response(false).expect("response").status, 200);
    assert!(c.closed_by_server());
}

#[test]
fn traversal_attempts_are_refused() {
    let o = Origin::start(&["--name", "safe"]);
    let mut c = o.connect();
    for path in [
        "/../Cargo.toml",
        "/%2e%2e/etc/passwd",
        "/..%2fetc/passwd",
        "/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/..\\..\\etc\\passwd",
        "/a/../../../../etc/passwd",
        "//etc/passwd",
        "/%00",
        "/.git/config",
    ] {
        let r = c.get(path);
        assert!(matches!(r.status, 403 | 404), "{path}: {}", r.status);
        assert!(!r.text().contains("root:"), "{path}");
    }
}

#[test]
fn root_directory_is_served_with_the_name_and_symlinks_stay_inside() {
    let root = TempDir::new("root");
    let outside = TempDir::new("outside");
    outside.write("secret.txt", b"top secret");
    root.write("index.html", b"<h1>{{name}} from disk</h1>");
    root.write("sub/data.json", b"{\"x\":1}");
    root.write("my file.txt", b"spaced");
    root.write("inner.txt", b"inner");
    #[cfg(unix)]
    {
        use std::os::unix::fs::symlink;
        symlink(
            outside.path().join("secret.txt"),
            root.path().join("leak.txt"),
        )
        .expect("symlink");
        symlink(outside.path(), root.path().join("leakdir")).expect("symlink");
        symlink(root.path().join("inner.txt"), root.path().join("alias.txt")).expect("symlink");
    }
    let dir = root.path().to_str().expect("UTF-8 temp path");
    let o = Origin::start(&["--name", "disk", "--root", dir]);
    let r = o.get("/");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "<h1>disk from disk</h1>")
    );
    let r = o.get("/sub/data.json");
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert_eq!(r.text(), "{\"x\":1}");
    assert_eq!(o.get("/my%20file.txt").text(), "spaced");
    assert_eq!(
        o.get("/style.css").status,
        404,
        "the embedded site is not mixed in"
    );
    #[cfg(unix)]
    {
        assert_eq!(
            o.get("/alias.txt").text(),
            "inner",
            "links inside the root are fine"
        );
        for path in ["/leak.txt", "/leakdir/secret.txt"] {
            let r = o.get(path);
            assert!(matches!(r.status, 403 | 404), "{path}: {}", r.status);
            assert!(!r.text().contains("top secret"));
        }
    }
    // A new file shows up without a restart.
    root.write("later.txt", b"later");
    assert_eq!(o.get("/later.txt").text(), "later");
}

#[test]
fn malformed_requests_get_400_and_close() {
    let o = Origin::start(&["--name", "bad"]);
    for junk in [
        &b"BLAH\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET /%zz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    ] {
        let mut c = o.connect();
        c.send(junk);
        let r = c.read_response(false).expect("a 400");
        assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(junk));
        standard_headers_present(&r, "bad");
        assert!(c.closed_by_server());
    }
}

#[test]
fn several_workers_serve_concurrent_clients() {
    let o = Origin::start(&["--name", "many", "--workers", "3"]);
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let addr = o.addr;
            std::thread::spawn(move || {
                let mut c = Client::open(addr);
                for _ in 0..50 {
                    assert_eq!(c.get("/").status, 200);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
}

#[test]
fn large_root_file_arrives_whole_and_head_reports_its_length() {
    let root = TempDir::new("large");
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 31 % 253) as u8).collect();
    root.write("big.bin", &big);
    let dir = root.path().to_str().expect("UTF-8 temp path");
    let o = Origin::start(&["--name", "large", "--root", dir]);
    let mut c = o.connect();
    for _ in 0..2 {
        let r = c.get("/big.bin");
        assert_eq!(r.header("Content-Type"), Some("application/octet-stream"));
        assert!(r.body == big, "body differs");
    }
    c.send(b"HEAD /big.bin HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.read_response(true).expect("HEAD");
    assert_eq!(r.header("Content-Length"), Some("3000000"));
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let o = Origin::start(&["--name", "stop"]);
    let mut idle = o.connect();
    assert_eq!(idle.get("/health").status, 200);
    let status = o.terminate();
    assert!(status.success(), "{status:?}");
    assert!(
        idle.closed_by_server(),
        "idle keep-alive connections are closed"
    );
}

#[test]
fn a_request_with_two_hundred_header_fields_is_served() {
    // pibl forwards up to 256 header fields by default (`max_headers`); its demo backend takes
    // as many, so a request with many tracing headers is not refused behind the proxy.
    let o = Origin::start(&["--name", "many"]);
    let mut c = o.connect();
    let mut req = String::from("GET /api/info HTTP/1.1\r\nHost: test\r\n");
    for i in 0..200 {
        req.push_str(&format!("X-Trace-{i}: v{i}\r\n"));
    }
    req.push_str("\r\n");
    c.send(req.as_bytes());
    let r = c.read_response(false).expect("a response");
    assert_eq!(r.status, 200);
}
