//! End-to-end tests of the `pibl-client` binary against loopback servers started per test.

mod client_support;

use client_support::{pattern, response, text, Client, Reply, TempDir, TestServer};
use std::net::TcpListener;
use std::time::Duration;

fn assert_ok(run: &client_support::Run) {
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
}

#[test]
fn get_prints_text_and_sends_sensible_headers() {
    let server = TestServer::start(|_| text("hello\n"));
    let client = Client::new();
    let run = client.fetch(&[], &server.url("/greeting?x=1"));
    assert_ok(&run);
    assert_eq!(run.stdout, b"hello\n");
    let seen = server.requests();
    assert_eq!(seen.len(), 1);
    let req = &seen[0];
    assert_eq!(
        (req.method.as_str(), req.target.as_str()),
        ("GET", "/greeting?x=1")
    );
    assert_eq!(req.header("host"), Some(server.addr().to_string().as_str()));
    assert!(req
        .header("user-agent")
        .unwrap()
        .starts_with("pibl-client/"));
    assert_eq!(req.header("connection"), Some("close"));
    assert_eq!(req.header("content-length"), None);
}

#[test]
fn head_reads_no_body_and_prints_the_head() {
    let server = TestServer::start(|_| {
        Reply::Bytes(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nX-Test: yes\r\n\r\n".to_vec())
    });
    let client = Client::new();
    let run = client.fetch(&["-X", "HEAD"], &server.url("/"));
    assert_ok(&run);
    assert!(run.stdout_text().starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(run.stdout_text().contains("X-Test: yes"));
    assert_eq!(server.requests()[0].method, "HEAD");
    assert!(client.log().contains(" HEAD "));
}

#[test]
fn post_sends_the_body_and_data_implies_post() {
    let server = TestServer::start(|r| text(&format!("got {} bytes", r.body.len())));
    let client = Client::new();
    let run = client.fetch(&["-d", "name=pibl&x=1"], &server.url("/form"));
    assert_ok(&run);
    assert_eq!(run.stdout_text(), "got 13 bytes");
    let req = &server.requests()[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.body, b"name=pibl&x=1");
    assert_eq!(req.header("content-length"), Some("13"));
    assert_eq!(
        req.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
}

#[test]
fn post_body_from_file_is_byte_identical() {
    let server = TestServer::start(|_| text("ok"));
    let client = Client::new();
    let body = pattern(1024);
    std::fs::write(client.cwd.path().join("body.bin"), &body).unwrap();
    let run = client.fetch(
        &[
            "-d",
            "@body.bin",
            "-H",
            "Content-Type: application/octet-stream",
        ],
        &server.url("/upload"),
    );
    assert_ok(&run);
    let req = &server.requests()[0];
    assert_eq!(req.body, body);
    assert_eq!(req.header("content-type"), Some("application/octet-stream"));
}

#[test]
fn other_methods_are_passed_through() {
    let server = TestServer::start(|r| text(&format!("{} done", r.method)));
    let client = Client::new();
    let run = client.fetch(&["-X", "PUT", "-d", "new"], &server.url("/doc"));
    assert_ok(&run);
    assert_eq!(run.stdout_text(), "PUT done");
    assert_eq!(server.requests()[0].body, b"new");
    let run = client.fetch(&["-X", "DELETE"], &server.url("/doc"));
    assert_ok(&run);
    assert_eq!(server.requests()[1].method, "DELETE");
}

#[test]
fn bodies_of_several_sizes_arrive_byte_identical() {
    for size in [0, 1024, 1024 * 1024] {
        let body = pattern(size);
        let served = body.clone();
        let server = TestServer::start(move |_| {
            response(
                "200 OK",
                &[("Content-Type", "application/octet-stream")],
                &served,
            )
        });
        let client = Client::new();
        let run = client.fetch(&["-o", "out.bin"], &server.url("/blob"));
        assert_ok(&run);
        let saved = std::fs::read(client.cwd.path().join("out.bin")).unwrap();
        assert!(saved == body, "size {size}: saved {} bytes", saved.len());
        assert!(
            client.log().contains(&format!(" 200 {size}B ")),
            "{}",
            client.log()
        );
    }
}

#[test]
fn large_text_body_streams_to_stdout() {
    let body: String = (0..40_000).map(|i| format!("line {i}\n")).collect();
    let served = body.clone();
    let server = TestServer::start(move |_| text(&served));
    let run = Client::new().fetch(&[], &server.url("/big.txt"));
    assert_ok(&run);
    assert!(run.stdout == body.as_bytes());
}

#[test]
fn chunked_response_is_decoded() {
    let body = pattern(200_000);
    let mut wire = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for piece in body.chunks(7_777) {
        wire.extend_from_slice(format!("{:x};ext=1\r\n", piece.len()).as_bytes());
        wire.extend_from_slice(piece);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"0\r\nX-Trailer: t\r\n\r\n");
    let server = TestServer::start(move |_| Reply::Bytes(wire.clone()));
    let client = Client::new();
    let run = client.fetch(&["-o", "chunked.bin"], &server.url("/c"));
    assert_ok(&run);
    assert!(std::fs::read(client.cwd.path().join("chunked.bin")).unwrap() == body);
}

#[test]
fn close_delimited_response_is_read_to_the_end() {
    let server = TestServer::start(|_| {
        Reply::Bytes(
            b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the server closes".to_vec(),
        )
    });
    let run = Client::new().fetch(&[], &server.url("/"));
    assert_ok(&run);
    assert_eq!(run.stdout_text(), "until the server closes");
}

#[test]
fn interim_and_bodiless_responses() {
    let server = TestServer::start(|_| {
        Reply::Bytes(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nX-A: b\r\n\r\n".to_vec(),
        )
    });
    let client = Client::new();
    let run = client.fetch(&["-i", "-d", "x"], &server.url("/"));
    assert_ok(&run);
    assert!(run.stdout_text().starts_with("HTTP/1.1 204 No Content\r\n"));
    assert!(client.log().contains(" POST ") && client.log().contains(" 204 0B "));
}

#[test]
fn include_prints_the_head_before_the_body() {
    let server = TestServer::start(|_| {
        response("404 Not Found", &[("Content-Type", "text/plain")], b"nope")
    });
    let run = Client::new().fetch(&["-i"], &server.url("/missing"));
    assert_eq!(run.code, 0, "any HTTP response exits 0");
    let out = run.stdout_text();
    assert!(out.starts_with("HTTP/1.1 404 Not Found\r\n"), "{out}");
    assert!(out.contains("Content-Type: text/plain\r\n"));
    assert!(out.ends_with("\r\n\r\nnope"));
}

#[test]
fn output_option_saves_text_to_a_file() {
    let server = TestServer::start(|_| text("saved text"));
    let client = Client::new();
    let run = client.fetch(&["-o", "page.txt"], &server.url("/page"));
    assert_ok(&run);
    assert!(run.stdout.is_empty());
    let saved = std::fs::read_to_string(client.cwd.path().join("page.txt")).unwrap();
    assert_eq!(saved, "saved text");
}

#[test]
fn binary_body_is_saved_under_the_url_name() {
    let png = [b"\x89PNG\r\n\x1a\n".as_slice(), &pattern(5000)].concat();
    let served = png.clone();
    let server =
        TestServer::start(move |_| response("200 OK", &[("Content-Type", "image/png")], &served));
    let client = Client::new();
    let run = client.fetch(&[], &server.url("/img/logo.png?v=3"));
    assert_ok(&run);
    assert!(run.stdout.is_empty(), "binary must not reach the terminal");
    assert!(run.stderr.contains("logo.png"), "{}", run.stderr);
    assert!(std::fs::read(client.cwd.path().join("logo.png")).unwrap() == png);
    let run = client.fetch(&["--no-cache"], &server.url("/"));
    assert_ok(&run);
    assert!(std::fs::read(client.cwd.path().join("index.bin")).unwrap() == png);
}

#[test]
fn untyped_bodies_are_sniffed() {
    let server = TestServer::start(|r| {
        let body: Vec<u8> = if r.target == "/text" {
            "plain UTF-8 café".into()
        } else {
            vec![0, 159, 146, 150, 0, 1, 2]
        };
        let mut wire =
            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        wire.extend_from_slice(&body);
        Reply::Bytes(wire)
    });
    let client = Client::new();
    let run = client.fetch(&[], &server.url("/text"));
    assert_eq!(run.stdout_text(), "plain UTF-8 café");
    let run = client.fetch(&[], &server.url("/data.raw"));
    assert_ok(&run);
    assert!(run.stdout.is_empty());
    assert_eq!(
        std::fs::read(client.cwd.path().join("data.raw")).unwrap(),
        vec![0, 159, 146, 150, 0, 1, 2]
    );
}

#[test]
fn redirects_are_followed_with_location_flag() {
    let server = TestServer::start(|r| match r.target.as_str() {
        "/old" => response("301 Moved Permanently", &[("Location", "/new")], b""),
        "/new" => response("302 Found", &[("Location", "final")], b""),
        "/final" => text("arrived"),
        _ => response("404 Not Found", &[], b""),
    });
    let client = Client::new();
    let run = client.fetch(&[], &server.url("/old"));
    assert_ok(&run);
    assert_eq!(server.count(), 1, "no -L: no follow");
    let run = client.fetch(&["-L", "--no-cache"], &server.url("/old"));
    assert_ok(&run);
    assert_eq!(run.stdout_text(), "arrived");
    let targets: Vec<String> = server.requests().iter().map(|r| r.target.clone()).collect();
    assert_eq!(targets, ["/old", "/old", "/new", "/final"]);
    let log = client.log();
    assert!(log.contains(" 301 0B ") && log.contains(" 302 0B ") && log.contains(" 200 7B "));
}

#[test]
fn see_other_after_post_switches_to_get() {
    let server = TestServer::start(|r| match r.target.as_str() {
        "/submit" => response("303 See Other", &[("Location", "/result")], b""),
        _ => text(&format!("{} {}", r.method, r.body.len())),
    });
    let run = Client::new().fetch(&["-L", "-d", "a=1"], &server.url("/submit"));
    assert_ok(&run);
    assert_eq!(run.stdout_text(), "GET 0");
    let seen = server.requests();
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[1].method, "GET");
}

#[test]
fn redirect_loops_stop_with_exit_9() {
    let server = TestServer::start(|_| response("302 Found", &[("Location", "/loop")], b""));
    let run = Client::new().fetch(&["-L", "--max-redirs", "3"], &server.url("/loop"));
    assert_eq!(run.code, 9, "{}", run.stderr);
    assert_eq!(server.count(), 4);
}

#[test]
fn log_lines_are_appended() {
    let server = TestServer::start(|_| text("12345"));
    let client = Client::new();
    std::fs::write(client.log_path(), "earlier line\n").unwrap();
    assert_ok(&client.fetch(&["--no-cache"], &server.url("/a")));
    assert_ok(&client.fetch(&["--no-cache", "-X", "POST"], &server.url("/b")));
    let log = client.log();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 3, "{log}");
    assert_eq!(lines[0], "earlier line");
    let fields: Vec<&str> = lines[1].split(' ').collect();
    assert_eq!(fields.len(), 8, "{}", lines[1]);
    assert_eq!(fields[0].len(), 10, "date {}", fields[0]);
    assert_eq!(fields[1].len(), 8, "time {}", fields[1]);
    assert_eq!(&fields[2..5], ["GET", server.url("/a").as_str(), "200"]);
    assert_eq!(fields[5], "5B");
    assert!(fields[6].ends_with("ms"));
    assert_eq!(fields[7], "network");
    assert!(lines[2].contains(" POST "));
}

#[test]
fn second_get_is_served_from_the_cache() {
    let server = TestServer::start(|_| {
        response(
            "200 OK",
            &[
                ("Content-Type", "text/plain"),
                ("Cache-Control", "max-age=300"),
            ],
            b"cached body",
        )
    });
    let client = Client::new();
    assert_ok(&client.fetch(&[], &server.url("/c")));
    let run = client.fetch(&[], &server.url("/c"));
    assert_ok(&run);
    assert_eq!(run.stdout_text(), "cached body");
    assert!(
        run.stderr.contains("served from local cache (age 0s)"),
        "{}",
        run.stderr
    );
    assert_eq!(server.count(), 1);
    let log = client.log();
    assert!(log.lines().next().unwrap().ends_with(" network"));
    let hit = log.lines().nth(1).unwrap();
    assert!(
        hit.contains(" 200 11B ") && hit.ends_with("ms cache"),
        "{hit}"
    );
    // Another query string is another URL.
    assert_ok(&client.fetch(&[], &server.url("/c?other")));
    assert_eq!(server.count(), 2);
}

#[test]
fn no_cache_flag_and_no_store_bypass_the_cache() {
    let server = TestServer::start(|r| {
        let cc = if r.target == "/private" {
            "no-store"
        } else {
            "max-age=300"
        };
        response(
            "200 OK",
            &[("Content-Type", "text/plain"), ("Cache-Control", cc)],
            b"x",
        )
    });
    let client = Client::new();
    assert_ok(&client.fetch(&["--no-cache"], &server.url("/a")));
    assert_ok(&client.fetch(&["--no-cache"], &server.url("/a")));
    assert_eq!(server.count(), 2);
    assert_eq!(std::fs::read_dir(client.cache.path()).unwrap().count(), 0);
    assert_ok(&client.fetch(&[], &server.url("/private")));
    assert_ok(&client.fetch(&[], &server.url("/private")));
    assert_eq!(server.count(), 4);
}

#[test]
fn entries_expire_after_their_lifetime() {
    let server = TestServer::start(|_| text("short-lived"));
    let client = Client::new();
    assert_ok(&client.fetch(&["--ttl", "1"], &server.url("/e")));
    assert_ok(&client.fetch(&["--ttl", "1"], &server.url("/e")));
    assert_eq!(server.count(), 1);
    std::thread::sleep(Duration::from_millis(1100));
    let run = client.fetch(&["--ttl", "1"], &server.url("/e"));
    assert_ok(&run);
    assert!(!run.stderr.contains("served from local cache"));
    assert_eq!(server.count(), 2);
}

#[test]
fn stale_entries_are_revalidated_with_etag() {
    let server = TestServer::start(|r| {
        if r.header("if-none-match") == Some("\"v1\"") {
            response(
                "304 Not Modified",
                &[("ETag", "\"v1\""), ("Cache-Control", "max-age=0")],
                b"",
            )
        } else {
            response(
                "200 OK",
                &[
                    ("Content-Type", "text/plain"),
                    ("ETag", "\"v1\""),
                    ("Cache-Control", "max-age=0"),
                ],
                b"validated body",
            )
        }
    });
    let client = Client::new();
    assert_ok(&client.fetch(&[], &server.url("/v")));
    let run = client.fetch(&[], &server.url("/v"));
    assert_ok(&run);
    assert_eq!(run.stdout_text(), "validated body");
    assert!(
        run.stderr.contains("served from local cache"),
        "{}",
        run.stderr
    );
    let seen = server.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].header("if-none-match"), None);
    assert_eq!(seen[1].header("if-none-match"), Some("\"v1\""));
    let log = client.log();
    let revalidated = log.lines().nth(1).unwrap();
    assert!(
        revalidated.contains(" 200 14B ") && revalidated.ends_with("ms revalidated"),
        "{log}"
    );
}

#[test]
fn corrupt_entries_are_ignored() {
    let server = TestServer::start(|_| text("fresh copy"));
    let client = Client::new();
    assert_ok(&client.fetch(&[], &server.url("/k")));
    for entry in std::fs::read_dir(client.cache.path()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    }
    let run = client.fetch(&[], &server.url("/k"));
    assert_ok(&run);
    assert_eq!(run.stdout_text(), "fresh copy");
    assert_eq!(server.count(), 2);
}

#[test]
fn host_header_override_has_its_own_cache_entry() {
    let server = TestServer::start(|r| text(&format!("site {}", r.header("host").unwrap_or("-"))));
    let client = Client::new();
    let url = server.url("/page");
    let own_site = format!("site {}", server.addr());
    let run = client.fetch(&[], &url);
    assert_ok(&run);
    assert_eq!(run.stdout_text(), own_site);
    // Same URL, another site on the same server: not the first site's stored page.
    let run = client.fetch(&["-H", "Host: other.example"], &url);
    assert_ok(&run);
    assert_eq!(run.stdout_text(), "site other.example");
    assert!(
        !run.stderr.contains("served from local cache"),
        "{}",
        run.stderr
    );
    assert_eq!(server.count(), 2);
    assert_eq!(server.requests()[1].header("host"), Some("other.example"));
    // Each site's copy is then served from the cache (the Host compared case-insensitively).
    let run = client.fetch(&["-H", "Host: OTHER.example"], &url);
    assert_eq!(run.stdout_text(), "site other.example");
    assert!(
        run.stderr.contains("served from local cache"),
        "{}",
        run.stderr
    );
    let run = client.fetch(&[], &url);
    assert_eq!(run.stdout_text(), own_site);
    assert!(
        run.stderr.contains("served from local cache"),
        "{}",
        run.stderr
    );
    assert_eq!(server.count(), 2);
}

#[test]
fn stored_responses_are_reused_only_when_their_vary_headers_match() {
    let server = TestServer::start(|r| {
        let lang = r.header("accept-language").unwrap_or("none").to_string();
        let mut headers = vec![("Content-Type", "text/plain"), ("Vary", "Accept-Language")];
        if r.target == "/stale" {
            headers.push(("Cache-Control", "max-age=0"));
            headers.push(("ETag", "\"v1\""));
        }
        if r.target == "/star" {
            headers[1] = ("Vary", "*");
        }
        response("200 OK", &headers, format!("lang {lang}").as_bytes())
    });
    let client = Client::new();
    let fetch = |lang: Option<&str>, path: &str| {
        let header = lang.map(|l| format!("Accept-Language: {l}"));
        let options: Vec<&str> = match &header {
            Some(h) => vec!["-H", h],
            None => vec![],
        };
        let run = client.fetch(&options, &server.url(path));
        assert_ok(&run);
        let cached = run.stderr.contains("served from local cache (age");
        (run.stdout_text(), cached)
    };
    assert_eq!(fetch(Some("en"), "/v"), ("lang en".to_string(), false));
    assert_eq!(fetch(Some("en"), "/v"), ("lang en".to_string(), true));
    assert_eq!(fetch(Some("de"), "/v"), ("lang de".to_string(), false));
    // Not sending the header is a value of its own.
    assert_eq!(fetch(None, "/v"), ("lang none".to_string(), false));
    assert_eq!(fetch(None, "/v"), ("lang none".to_string(), true));
    assert_eq!(fetch(Some("de"), "/v"), ("lang de".to_string(), false));
    assert_eq!(server.count(), 4);

    // A stale entry stored for another value is not revalidated for this request.
    assert_eq!(fetch(Some("en"), "/stale"), ("lang en".to_string(), false));
    assert_eq!(fetch(Some("de"), "/stale"), ("lang de".to_string(), false));
    let last = server.requests().pop().unwrap();
    assert_eq!(
        (last.target.as_str(), last.header("if-none-match")),
        ("/stale", None)
    );

    // Vary: * never matches.
    assert_eq!(fetch(Some("en"), "/star"), ("lang en".to_string(), false));
    assert_eq!(fetch(Some("en"), "/star"), ("lang en".to_string(), false));
    assert_eq!(server.count(), 8);
}

#[test]
fn flush_empties_the_cache_and_reports_it() {
    let server = TestServer::start(|_| text("0123456789"));
    let client = Client::new();
    assert_ok(&client.fetch(&[], &server.url("/1")));
    assert_ok(&client.fetch(&[], &server.url("/2")));
    let cache_dir = client.cache.path().display().to_string();
    let run = client.run(&["flush", "--cache-dir", &cache_dir]);
    assert_ok(&run);
    let out = run.stdout_text();
    assert!(out.starts_with("flushed 2 cache entries ("), "{out}");
    assert!(!out.contains("(0 bytes)"));
    assert_eq!(std::fs::read_dir(client.cache.path()).unwrap().count(), 0);
    assert_ok(&client.fetch(&[], &server.url("/1")));
    assert_eq!(server.count(), 3);
    let run = client.run(&["flush", "--cache-dir", &cache_dir]);
    assert!(run.stdout_text().starts_with("flushed 1 cache entry ("));
    let run = client.run(&["flush", "--cache-dir", &cache_dir]);
    assert!(run
        .stdout_text()
        .starts_with("flushed 0 cache entries (0 bytes)"));
}

#[test]
fn flush_of_a_missing_cache_directory_is_a_local_error() {
    let client = Client::new();
    let missing = client.cwd.path().join("no-such-cache");
    let run = client.run(&["flush", "--cache-dir", &missing.display().to_string()]);
    assert_eq!(run.code, 8, "stdout: {}", run.stdout_text());
    assert!(run.stdout.is_empty(), "{}", run.stdout_text());
    assert!(
        run.stderr.starts_with("pibl-client: error: ")
            && run.stderr.contains(&missing.display().to_string()),
        "{}",
        run.stderr
    );
    assert!(!missing.exists(), "flush must not create the directory");
    // An existing, empty directory is not an error.
    let empty = client.cache.path().display().to_string();
    let run = client.run(&["flush", "--cache-dir", &empty]);
    assert_ok(&run);
    assert!(run
        .stdout_text()
        .starts_with("flushed 0 cache entries (0 bytes) from "));
}

#[test]
fn forward_proxy_gets_absolute_form() {
    let proxy = TestServer::start(|_| text("via proxy"));
    let run = Client::new().fetch(
        &["-x", &proxy.addr().to_string()],
        "http://origin.invalid:8081/path?q=1",
    );
    assert_ok(&run);
    assert_eq!(run.stdout_text(), "via proxy");
    let req = &proxy.requests()[0];
    assert_eq!(req.target, "http://origin.invalid:8081/path?q=1");
    assert_eq!(req.header("host"), Some("origin.invalid:8081"));
}

#[test]
fn ipv6_literals_work() {
    let Some(server) = TestServer::start_on("[::1]:0", |_| text("over v6")) else {
        eprintln!("no IPv6 loopback here; skipping");
        return;
    };
    let run = Client::new().fetch(&[], &server.url("/"));
    assert_ok(&run);
    assert_eq!(run.stdout_text(), "over v6");
    let host = server.requests()[0].header("host").unwrap().to_string();
    assert_eq!(host, format!("[::1]:{}", server.addr().port()));
}

#[test]
fn refused_connection_exits_5() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let client = Client::new();
    let run = client.fetch(&[], &format!("http://127.0.0.1:{port}/"));
    assert_eq!(run.code, 5);
    assert!(
        run.stderr
            .starts_with("pibl-client: error: connection refused"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1);
    assert!(client.log().contains(" ERR 0B "), "{}", client.log());
}

#[test]
fn unknown_host_exits_4() {
    let client = Client::new();
    let run = client.fetch(&[], "http://no-such-host.invalid/");
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(run
        .stderr
        .contains("cannot resolve host name 'no-such-host.invalid'"));
    assert!(client.log().contains(" ERR "));
}

#[test]
fn silent_server_times_out_with_exit_6() {
    let server = TestServer::start(|_| Reply::Hang);
    let client = Client::new();
    let started = std::time::Instant::now();
    let run = client.fetch(&["--timeout", "1"], &server.url("/slow"));
    assert_eq!(run.code, 6, "{}", run.stderr);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(run.stderr.contains("timed out"), "{}", run.stderr);
    assert!(client.log().contains(" ERR "));
}

#[test]
fn garbage_response_exits_7() {
    let server = TestServer::start(|_| Reply::Bytes(b"SSH-2.0-OpenSSH\r\n\r\n".to_vec()));
    let run = Client::new().fetch(&[], &server.url("/"));
    assert_eq!(run.code, 7, "{}", run.stderr);
    assert!(run
        .stderr
        .starts_with("pibl-client: error: malformed response"));
    let server = TestServer::start(|_| {
        Reply::Bytes(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort".to_vec())
    });
    let run = Client::new().fetch(&[], &server.url("/"));
    assert_eq!(run.code, 7, "{}", run.stderr);
}

#[test]
fn unsupported_schemes_and_bad_urls_exit_3() {
    let client = Client::new();
    let run = client.fetch(&[], "ftp://example.com/");
    assert_eq!(run.code, 3);
    assert!(run.stderr.contains("unsupported URL scheme 'ftp'"));
    assert_eq!(client.fetch(&[], "http://bad host/").code, 3);
    assert!(client.log().lines().all(|l| l.contains(" ERR ")));
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    let client = Client::new();
    let run = client.run(&["only-one-arg"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.starts_with("pibl-client: error: "));
    assert!(run.stderr.contains("Usage:"));
    assert_eq!(
        client.run(&["--no-such-option", "log", "http://h/"]).code,
        2
    );
    let run = client.run(&["-h"]);
    assert_eq!(run.code, 0);
    assert!(run.stdout_text().contains("Exit status"));
}

#[test]
fn unwritable_files_exit_8() {
    let server = TestServer::start(|_| text("x"));
    let client = Client::new();
    let missing = TempDir::new("gone");
    let bad_log = missing.path().join("no/such/dir/log");
    let run = client.run(&[bad_log.to_str().unwrap(), &server.url("/")]);
    assert_eq!(run.code, 8, "{}", run.stderr);
    let run = client.fetch(&["-d", "@does-not-exist"], &server.url("/"));
    assert_eq!(run.code, 8, "{}", run.stderr);
    let run = client.fetch(&["-o", "no/such/dir/out"], &server.url("/"));
    assert_eq!(run.code, 8, "{}", run.stderr);
}

#[test]
fn temporary_redirect_resends_method_and_body() {
    let server = TestServer::start(|r| match r.target.as_str() {
        "/a" => response("307 Temporary Redirect", &[("Location", "/b")], b""),
        _ => text(&format!(
            "{} {}",
            r.method,
            String::from_utf8_lossy(&r.body)
        )),
    });
    let client = Client::new();
    std::fs::write(client.cwd.path().join("payload"), "from file").unwrap();
    let run = client.fetch(&["-L", "-X", "PUT", "-d", "@payload"], &server.url("/a"));
    assert_ok(&run);
    assert_eq!(run.stdout_text(), "PUT from file");
}

#[test]
fn credentials_are_not_sent_to_another_host() {
    let other = TestServer::start(|r| text(&format!("auth={:?}", r.header("authorization"))));
    let target = other.url("/elsewhere");
    let server =
        TestServer::start(move |_| response("302 Found", &[("Location", target.as_str())], b""));
    let run = Client::new().fetch(
        &["-L", "-H", "Authorization: Bearer secret"],
        &server.url("/"),
    );
    assert_ok(&run);
    assert_eq!(run.stdout_text(), "auth=None");
    assert_eq!(
        server.requests()[0].header("authorization"),
        Some("Bearer secret")
    );
}

#[test]
fn stale_entries_are_revalidated_with_last_modified() {
    const STAMP: &str = "Sun, 06 Nov 1994 08:49:37 GMT";
    let server = TestServer::start(|r| {
        if r.header("if-modified-since") == Some(STAMP) {
            response("304 Not Modified", &[], b"")
        } else {
            response(
                "200 OK",
                &[
                    ("Content-Type", "text/plain"),
                    ("Last-Modified", STAMP),
                    ("Cache-Control", "no-cache"),
                ],
                b"dated body",
            )
        }
    });
    let client = Client::new();
    assert_ok(&client.fetch(&[], &server.url("/d")));
    let run = client.fetch(&["-i"], &server.url("/d"));
    assert_ok(&run);
    assert!(
        run.stdout_text().starts_with("HTTP/1.1 200 OK\r\n"),
        "{}",
        run.stdout_text()
    );
    assert!(run.stdout_text().ends_with("\r\n\r\ndated body"));
    assert_eq!(
        server.requests()[1].header("if-modified-since"),
        Some(STAMP)
    );
}

#[test]
fn unsafe_requests_invalidate_the_cached_entry() {
    let server = TestServer::start(|r| {
        response(
            "200 OK",
            &[
                ("Content-Type", "text/plain"),
                ("Cache-Control", "max-age=300"),
            ],
            format!("{} #{}", r.method, r.body.len()).as_bytes(),
        )
    });
    let client = Client::new();
    assert_ok(&client.fetch(&[], &server.url("/doc")));
    assert_ok(&client.fetch(&["-d", "change"], &server.url("/doc")));
    let run = client.fetch(&[], &server.url("/doc"));
    assert_ok(&run);
    assert!(!run.stderr.contains("served from local cache"));
    assert_eq!(server.count(), 3);
}
