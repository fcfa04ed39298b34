//! Header rules (`request_header`, `response_header`, `forward_real_ip`, `forward_host`) and
//! request ids (`request_id on`), against the real binary and a real backend: what reaches the
//! backend and what the client gets, exactly; refused rules name their file and line.

mod common;

use std::process::Command;

use common::{get, Backend, Conn, Pibl, TempDir};

const RULES: &str = "workers 1\n\
    request_header set X-Env prod\n\
    request_header add X-Tag added\n\
    request_header remove X-Secret\n\
    response_header set X-Backend hidden\n\
    response_header remove Content-Type\n\
    response_header add X-Frame-Options DENY\n\
    forward_real_ip on\n\
    forward_host on\n";

#[test]
fn request_rules_set_add_and_remove_what_the_backend_sees() {
    let b = Backend::start("b1");
    let p = Pibl::start(&[b.addr], RULES);
    let mut c = Conn::open(p.addr);
    c.send(
        b"GET /r HTTP/1.1\r\nHost: shop.example:8080\r\nX-Env: dev\r\nX-Env: test\r\n\
          X-Tag: theirs\r\nX-Secret: s3cret\r\nX-Real-IP: 6.6.6.6\r\n\
          X-Forwarded-Host: evil\r\nAccept: */*\r\n\r\n",
    );
    let r = c.read_response(false).expect("response");
    assert_eq!(r.status, 200);
    let seen = b.seen();
    let s = seen.last().expect("the backend saw the request");
    // set replaces every field of the name with one.
    assert_eq!(s.header_count("X-Env"), 1);
    assert_eq!(s.header("X-Env"), Some("prod"));
    // add appends: the client's field stays, ours follows it.
    let tags: Vec<&str> = s
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("x-tag"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(tags, ["theirs", "added"]);
    assert_eq!(s.header("X-Secret"), None);
    // The client's own X-Real-IP and X-Forwarded-Host are replaced, not trusted.
    assert_eq!(s.header_count("X-Real-IP"), 1);
    assert_eq!(s.header("X-Real-IP"), Some("127.0.0.1"));
    assert_eq!(s.header_count("X-Forwarded-Host"), 1);
    assert_eq!(s.header("X-Forwarded-Host"), Some("shop.example:8080"));
    // Everything else as before.
    assert_eq!(s.header("Accept"), Some("*/*"));
    assert_eq!(s.header("Host"), Some("shop.example:8080"));
    assert_eq!(s.header("X-Forwarded-For"), Some("127.0.0.1"));
    assert_eq!(s.header("Via"), Some("1.1 pibl"));
}

#[test]
fn response_rules_reach_the_client_on_proxied_cached_and_error_responses() {
    let b = Backend::start("b1");
    let dir = TempDir::new("rules");
    std::fs::write(
        dir.path().join("pibl.conf"),
        format!("listen 127.0.0.1:0\nbackend {}\n{RULES}", b.addr),
    )
    .unwrap();
    let p = Pibl::start_in(dir, &["-c", "pibl.conf", "-t", "600"]);
    let mut c = Conn::open(p.addr);
    for expected_cache in ["MISS", "HIT"] {
        let r = c.get("/cached");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("X-Cache"), Some(expected_cache));
        assert_eq!(r.header("X-Backend"), Some("hidden"), "{expected_cache}");
        assert_eq!(r.header("Content-Type"), None, "{expected_cache}");
        assert_eq!(
            r.header("X-Frame-Options"),
            Some("DENY"),
            "{expected_cache}"
        );
        let length = r.body.len().to_string();
        assert_eq!(r.header("Content-Length"), Some(length.as_str()));
        assert!(r.text().contains("b1"), "{}", r.text());
        let x_backends = r
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("x-backend"))
            .count();
        assert_eq!(x_backends, 1);
    }
    // pibl's own responses get them too.
    let mut c = Conn::open(p.addr);
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
    let r = c.read_response(false).expect("response");
    assert_eq!(r.status, 400);
    assert_eq!(r.header("X-Frame-Options"), Some("DENY"));
}

#[test]
fn no_rules_change_nothing() {
    let b = Backend::start("b1");
    let p = Pibl::start(&[b.addr], "");
    let r = get(p.addr, "/plain");
    assert_eq!(r.header("X-Backend"), Some("b1"));
    assert_eq!(r.header("X-Request-ID"), None);
    let seen = b.seen();
    let s = seen.last().unwrap();
    for absent in ["X-Real-IP", "X-Forwarded-Host", "X-Request-ID"] {
        assert_eq!(s.header(absent), None, "{absent}");
    }
}

fn is_generated_id(v: &str) -> bool {
    v.len() == 32
        && v.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

#[test]
fn request_ids_are_generated_kept_or_replaced_forwarded_returned_and_logged() {
    let b = Backend::start("b1");
    let p = Pibl::start(&[b.addr], "workers 1\nrequest_id on\n");
    let mut c = Conn::open(p.addr);
    let mut ask = |extra: &str| {
        c.send(format!("GET /id HTTP/1.1\r\nHost: t\r\n{extra}\r\n").as_bytes());
        let r = c.read_response(false).expect("response");
        let returned = r
            .header("X-Request-ID")
            .expect("an id returned")
            .to_string();
        let seen = b.seen();
        let s = seen.last().unwrap();
        assert_eq!(s.header_count("X-Request-ID"), 1);
        assert_eq!(s.header("X-Request-ID"), Some(returned.as_str()));
        returned
    };
    let first = ask("");
    let second = ask("");
    assert!(
        is_generated_id(&first) && is_generated_id(&second),
        "{first} {second}"
    );
    assert_ne!(first, second);
    // A valid one is kept.
    assert_eq!(ask("X-Request-ID: trace-42.a_b\r\n"), "trace-42.a_b");
    // Invalid ones are replaced: a space, too long, two of them.
    for bad in [
        "X-Request-ID: has space\r\n".to_string(),
        format!("X-Request-ID: {}\r\n", "a".repeat(129)),
        "X-Request-ID: a\r\nX-Request-ID: b\r\n".to_string(),
    ] {
        let id = ask(&bad);
        assert!(is_generated_id(&id), "{bad:?} gave {id}");
    }
    // A fresh pibl (another "restart") makes other ids.
    let p2 = Pibl::start(&[b.addr], "workers 1\nrequest_id on\n");
    let other = get(p2.addr, "/id");
    let other = other.header("X-Request-ID").unwrap();
    assert!(is_generated_id(other) && other != first && other != second);
    // The id is in the access log (JSON has a field for it; here the client's kept one).
    drop(p2);
    let p = Pibl::start(&[b.addr], "workers 1\nrequest_id on\nlog_format json\n");
    let mut c = Conn::open(p.addr);
    c.send(b"GET /logged HTTP/1.1\r\nHost: t\r\nX-Request-ID: find-me-1\r\n\r\n");
    c.read_response(false).expect("response");
    let lines = p.wait_for_log("\"request_id\":\"find-me-1\"", 1);
    assert_eq!(lines.len(), 1, "{}", p.log_file());
}

/// `pibl --check` on a config with `line` after a backend: the exit code and stderr.
fn check(line: &str) -> (Option<i32>, String) {
    let dir = TempDir::new("hcheck");
    std::fs::write(
        dir.path().join("pibl.conf"),
        format!("backend 127.0.0.1:9\n{line}\n"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pibl"))
        .args(["-c", "pibl.conf", "--check"])
        .current_dir(dir.path())
        .output()
        .expect("run pibl --check");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout),
    )
}

#[test]
fn refused_rules_name_their_file_and_line() {
    for (line, says) in [
        ("request_header set Content-Length 10", "Content-Length"),
        (
            "request_header set Transfer-Encoding chunked",
            "Transfer-Encoding",
        ),
        ("request_header remove Connection", "Connection"),
        ("request_header set Host other", "Host"),
        (
            "response_header add Proxy-Authenticate Basic",
            "Proxy-Authenticate",
        ),
        ("response_header set Upgrade h2c", "Upgrade"),
        ("request_header set X-Request-ID 1", "request_id on"),
        ("request_header set X-Real-IP 1.2.3.4", "forward_real_ip on"),
        ("request_header set X-A", "needs a value"),
        ("request_header frob X-A 1", "expected"),
        ("request_header set Bad:Name 1", "not a valid header name"),
        ("request_id maybe", "on or off"),
        ("log_format apache", "expected pibl, combined or json"),
    ] {
        let (code, err) = check(line);
        assert_eq!(code, Some(1), "{line}: {err}");
        assert!(err.contains("pibl.conf:2:"), "{line}: {err}");
        assert!(err.contains(says), "{line}: {err}");
    }
    // A second `set` of one name, on line 3, names that line.
    let (code, err) = check("request_header set X-A 1\nrequest_header set x-a 2");
    assert_eq!(code, Some(1));
    assert!(
        err.contains("pibl.conf:3:") && err.contains("already set"),
        "{err}"
    );
    // Good rules pass, and --check prints them back.
    let (code, out) = check(
        "request_header set X-A one two\nrequest_header add X-B 1\nresponse_header remove Server\n\
         forward_real_ip on\nrequest_id on\nlog_format json",
    );
    assert_eq!(code, Some(0), "{out}");
    for printed in [
        "request_header set X-A one two",
        "request_header add X-B 1",
        "response_header remove Server",
        "forward_real_ip on",
        "forward_host off",
        "request_id on",
        "log_format json",
    ] {
        assert!(out.contains(printed), "{printed}: {out}");
    }
}

#[test]
fn rules_ids_and_the_log_format_change_on_reload() {
    let b = Backend::start("b1");
    let p = Pibl::start(&[b.addr], "workers 1\n");
    let mut kept = Conn::open(p.addr);
    let before = kept.get("/before");
    assert_eq!(before.header("X-Request-ID"), None);
    let conf = std::fs::read_to_string(p.conf_path()).unwrap();
    std::fs::write(
        p.conf_path(),
        format!("{conf}response_header add X-Reloaded yes\nrequest_id on\nlog_format json\n"),
    )
    .unwrap();
    p.signal(libc::SIGHUP);
    assert!(p.wait_for_line("reloaded pibl.conf", std::time::Duration::from_secs(5)));
    // A kept-alive connection's next request takes the new settings.
    let after = kept.get("/after");
    assert_eq!(after.header("X-Reloaded"), Some("yes"));
    assert!(is_generated_id(after.header("X-Request-ID").unwrap()));
    let lines = p.wait_for_log("\"path\":\"/after\"", 1);
    assert_eq!(lines.len(), 1, "{}", p.log_file());
    assert!(lines[0].starts_with("{\"time\":"), "{}", lines[0]);
}
