//! Unit tests of the request-head parser and the head written upstream.

use super::*;

const LIMITS: HeadLimits = HeadLimits {
    max_header_bytes: 8192,
    max_headers: 100,
};

fn run(input: &str) -> Result<Option<(RequestInfo, String, RequestLine)>, RequestError> {
    let fwd = Forwarding {
        client_ip: "10.1.2.3".parse().unwrap(),
        proto: "http",
        h2: false,
    };
    let mut out = Vec::new();
    let mut line = RequestLine::default();
    let r = parse(input.as_bytes(), LIMITS, &fwd, &mut out, &mut line)?;
    Ok(r.map(|info| (info, String::from_utf8(out).unwrap(), line)))
}

fn ok(input: &str) -> (RequestInfo, String, RequestLine) {
    run(input).unwrap().unwrap()
}

fn status(input: &str) -> u16 {
    run(input).unwrap_err().status
}

#[test]
fn rewrites_proxy_headers_and_strips_hop_by_hop() {
    let (info, head, line) = ok(
        "GET /a?b=1 HTTP/1.1\nHost: ex.com\nConnection: keep-alive, X-Hop\n\
         X-Hop: 1\nKeep-Alive: 5\nTE: trailers\nX-Forwarded-For: 1.1.1.1\n\
         X-Forwarded-Proto: https\nAccept: */*\n\n",
    );
    assert_eq!(
        head,
        "GET /a?b=1 HTTP/1.1\r\nHost: ex.com\r\nX-Forwarded-For: 1.1.1.1, 10.1.2.3\r\n\
         Accept: */*\r\nX-Forwarded-Proto: http\r\nVia: 1.1 pibl\r\n\r\n"
    );
    assert!(info.keep_alive);
    assert_eq!(info.body, BodyKind::Empty);
    assert_eq!(line.target, "/a?b=1");
    assert_eq!(line.host, "ex.com");
}

#[test]
fn absolute_form_becomes_origin_form_with_uri_host() {
    let (_, head, line) = ok("GET http://other.example:81/p HTTP/1.1\r\nHost: wrong\r\n\r\n");
    assert!(
        head.starts_with("GET /p HTTP/1.1\r\nHost: other.example:81\r\n"),
        "{head}"
    );
    assert_eq!(line.host, "other.example:81");
}

#[test]
fn http10_defaults_to_close_and_gets_a_host() {
    let (info, head, _) = ok("GET / HTTP/1.0\r\n\r\n");
    assert!(!info.keep_alive);
    assert!(head.contains("Host: localhost\r\n"));
    assert!(head.contains("Via: 1.0 pibl\r\n"));
    let (info, _, _) = ok("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert!(info.keep_alive);
}

#[test]
fn upgrade_is_forwarded_only_when_connection_says_so() {
    let (info, head, _) =
        ok("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
    assert!(info.upgrade);
    assert!(head.ends_with("Connection: upgrade\r\nUpgrade: websocket\r\n\r\n"));
    let (info, head, _) = ok("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n");
    assert!(!info.upgrade);
    assert!(!head.contains("Upgrade"));
}

#[test]
fn partial_heads_wait_and_oversized_ones_fail() {
    assert!(run("GET / HTTP/1.1\r\nHost: a\r\n").unwrap().is_none());
    let long_line = format!("GET /{} HTTP/1.1", "a".repeat(9000));
    assert_eq!(status(&long_line), 414);
    let big = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n", "b".repeat(9000));
    assert_eq!(status(&big), 431);
    let many: String = (0..101).map(|i| format!("X-{i}: v\r\n")).collect();
    assert_eq!(
        status(&format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n")),
        431
    );
    // Exactly max_headers fields, Host included, pass.
    let (_, head, _) = ok(&format!(
        "GET / HTTP/1.1\r\nHost: a\r\n{}\r\n",
        &many[..many.rfind("X-99:").unwrap()]
    ));
    assert!(
        head.contains("X-98: v\r\n") && !head.contains("X-99"),
        "{head}"
    );
}

#[test]
fn the_request_line_alone_over_the_limit_is_414() {
    let small = HeadLimits {
        max_header_bytes: 2048,
        ..LIMITS
    };
    let mut line = RequestLine::default();
    let mut status = |input: String| {
        parse_with(input.as_bytes(), small, &[], &mut line, |_| ())
            .err()
            .map(|e| e.status)
    };
    let target = "u".repeat(10 * 1024);
    // Whole, and cut before the line ends.
    assert_eq!(
        status(format!("GET /{target} HTTP/1.1\r\nHost: a\r\n\r\n")),
        Some(414)
    );
    assert_eq!(status(format!("GET /{target}")), Some(414));
    assert_eq!(
        status(format!("GET /{target} HTTP/1.1\r\nHost: a\r\n")),
        Some(414)
    );
    // A short line with too much after it is the header section's fault.
    let field = "h".repeat(3000);
    assert_eq!(
        status(format!("GET / HTTP/1.1\r\nHost: a\r\nX: {field}\r\n\r\n")),
        Some(431)
    );
    assert_eq!(status(format!("GET / HTTP/1.1\r\nX: {field}")), Some(431));
}

#[test]
fn version_is_http_digit_dot_digit_or_the_line_is_malformed() {
    for bad in [
        "HTTP/1.x",
        "http/1.1",
        "HTTP/11.1",
        "HTTP/2",
        "HTTP/1.",
        "HTTPS/1.1",
    ] {
        assert_eq!(
            status(&format!("GET / {bad}\r\nHost: a\r\n\r\n")),
            400,
            "{bad}"
        );
    }
    assert_eq!(status("GET / HTTP/1.1 x\r\nHost: a\r\n\r\n"), 400);
    assert_eq!(status("GET / HTTP/2.0 x\r\nHost: a\r\n\r\n"), 400);
    for unsupported in ["HTTP/2.0", "HTTP/3.0", "HTTP/0.9", "HTTP/1.2"] {
        assert_eq!(
            status(&format!("GET / {unsupported}\r\nHost: a\r\n\r\n")),
            505,
            "{unsupported}"
        );
        assert_eq!(status(&format!("GET / {unsupported}\nHost: a\n\n")), 505);
    }
    // Until the line ends, a version that may still be well-formed waits for more.
    for prefix in [
        "GET / HTTP/2",
        "GET / HTTP/2.",
        "GET / HTTP/2.0",
        "GET / HTTP/2.0\r",
    ] {
        assert!(run(prefix).unwrap().is_none(), "{prefix:?}");
    }
    assert_eq!(status("GET / HTTP/2x"), 400);
    assert_eq!(status("GET / HTTP/2.0x"), 400);
}

#[test]
fn only_allowed_upgrade_protocols_are_forwarded() {
    let fwd = Forwarding {
        client_ip: "10.1.2.3".parse().unwrap(),
        proto: "http",
        h2: false,
    };
    let upstream = |input: &str, allowed: &[&str]| {
        let allowed: Vec<String> = allowed.iter().map(|p| p.to_string()).collect();
        let mut out = Vec::new();
        let mut line = RequestLine::default();
        let (info, ()) = parse_with(input.as_bytes(), LIMITS, &allowed, &mut line, |h| {
            h.write_upstream(&mut out, &fwd)
        })
        .unwrap()
        .unwrap();
        (info.upgrade, String::from_utf8(out).unwrap())
    };
    let h2c = "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n\
               Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n";
    let (upgrade, head) = upstream(h2c, &["websocket"]);
    assert!(!upgrade);
    assert!(
        !head.to_ascii_lowercase().contains("upgrade") && !head.contains("HTTP2-Settings"),
        "{head}"
    );
    let (upgrade, head) = upstream(h2c, &["websocket", "h2c"]);
    assert!(upgrade);
    assert!(
        head.ends_with(
            "Connection: upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\
             HTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n"
        ),
        "{head}"
    );
    // Several offers: only the allowed ones stay, in the client's order.
    let offers = "GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\
                  Upgrade: h2c, WebSocket/13\r\nUpgrade: foo, websocket\r\n\r\n";
    let (upgrade, head) = upstream(offers, &["websocket"]);
    assert!(upgrade);
    assert!(
        head.ends_with("Connection: upgrade\r\nUpgrade: WebSocket/13, websocket\r\n\r\n"),
        "{head}"
    );
    let (upgrade, head) = upstream(offers, &[]);
    assert!(
        !upgrade && !head.to_ascii_lowercase().contains("upgrade"),
        "{head}"
    );
    // A stray HTTP2-Settings is never forwarded.
    let (_, head) = upstream(
        "GET / HTTP/1.1\r\nHost: a\r\nHTTP2-Settings: AAMA\r\n\r\n",
        &["h2c"],
    );
    assert!(!head.contains("HTTP2-Settings"), "{head}");
}

#[test]
fn smuggling_shapes_are_refused() {
    let cases = [
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
        "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n folded\r\n\r\n",
        "GET nope HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
        "\u{1}\u{2}garbage\r\n\r\n",
    ];
    for c in cases {
        assert_eq!(status(c), 400, "{c:?}");
    }
    assert_eq!(status("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), 505);
    assert_eq!(status("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n"), 405);
}

#[test]
fn rules_set_add_remove_and_forward_in_the_upstream_head() {
    use crate::http::header_rules::HeaderRules;
    let mut headers = HeaderRules::default();
    for rule in [
        &["set", "X-Env", "prod"][..],
        &["add", "X-Tag", "b"],
        &["remove", "X-Secret"],
    ] {
        headers.parse(rule).unwrap();
    }
    let rules = UpstreamRules {
        headers: &headers,
        real_ip: true,
        forwarded_host: true,
        request_id: Some(b"id-1"),
    };
    let fwd = Forwarding {
        client_ip: "10.1.2.3".parse().unwrap(),
        proto: "http",
        h2: false,
    };
    let input = "GET / HTTP/1.1\r\nHost: h:81\r\nX-Env: dev\r\nX-Tag: a\r\nX-Secret: s\r\n\
                 X-Real-IP: 6.6.6.6\r\nX-Request-ID: old\r\n\r\n";
    let mut out = Vec::new();
    let mut line = RequestLine::default();
    parse_with(input.as_bytes(), LIMITS, &[], &mut line, |h| {
        h.write_upstream_with(&mut out, &fwd, &rules)
    })
    .unwrap()
    .unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "GET / HTTP/1.1\r\nHost: h:81\r\nX-Tag: a\r\nX-Forwarded-For: 10.1.2.3\r\n\
         X-Forwarded-Proto: http\r\nVia: 1.1 pibl\r\nX-Env: prod\r\nX-Tag: b\r\n\
         X-Real-IP: 10.1.2.3\r\nX-Forwarded-Host: h:81\r\nX-Request-ID: id-1\r\n\r\n"
    );
}

#[test]
fn bodies_are_framed() {
    let (info, head, _) = ok("POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello");
    assert_eq!(info.body, BodyKind::Length(5));
    assert!(head.contains("Content-Length: 5\r\n"));
    let (info, head, _) = ok("POST /f HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_eq!(info.body, BodyKind::Chunked);
    assert!(head.contains("Transfer-Encoding: chunked\r\n"));
}
