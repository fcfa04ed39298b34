//! Per-site and per-route rules against the real binary: header rules, `allow`/`deny`,
//! `log_format`, `rate_limit` and `error_page` set in a `site` or `route` block apply to the
//! requests routed there only (nginx's inheritance: the innermost scope that sets a directive
//! wins, and a list set in a scope replaces the outer one), and a reload changes them.

mod common;

use std::time::Duration;

use common::{Backend, Conn, Pibl, Response, TempDir};

/// `GET target` with `Host: host` on a fresh connection.
fn get(p: &Pibl, host: &str, target: &str) -> Response {
    let mut c = Conn::open(p.addr);
    c.send(format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes());
    c.read_response(false).expect("response")
}

/// The header `name` of the request the backend saw for `target`.
fn seen_header(b: &Backend, target: &str, name: &str) -> Option<String> {
    let seen = b.seen();
    let request = seen
        .iter()
        .rev()
        .find(|s| s.target == target)
        .unwrap_or_else(|| panic!("the backend saw no {target}: {seen:?}"));
    request.header(name).map(String::from)
}

#[test]
fn a_header_rule_on_one_route_only() {
    let app = Backend::start("app");
    let conf = format!(
        "pool app {{ backend {} }}\n\
         site example.test {{\n\
             route / app\n\
             route /api/ app {{\n\
                 request_header set X-Scope api\n\
                 response_header set X-Route api\n\
             }}\n\
         }}\n",
        app.addr
    );
    let p = Pibl::start(&[], &conf);
    let api = get(&p, "example.test", "/api/x");
    assert_eq!(api.status, 200, "{}", api.text());
    assert_eq!(api.header("X-Route"), Some("api"));
    assert_eq!(
        seen_header(&app, "/api/x", "X-Scope").as_deref(),
        Some("api")
    );
    let other = get(&p, "example.test", "/other");
    assert_eq!(other.status, 200);
    assert_eq!(other.header("X-Route"), None);
    assert_eq!(seen_header(&app, "/other", "X-Scope"), None);
}

#[test]
fn a_site_deny_with_a_route_allow() {
    let app = Backend::start("app");
    let conf = format!(
        "pool app {{ backend {} }}\n\
         site locked.test {{\n\
             deny all\n\
             route / app\n\
             route /open/ app {{ allow all }}\n\
         }}\n\
         site free.test {{ route / app }}\n",
        app.addr
    );
    let p = Pibl::start(&[], &conf);
    assert_eq!(get(&p, "locked.test", "/secret").status, 403);
    assert_eq!(get(&p, "locked.test", "/open/page").status, 200);
    assert_eq!(get(&p, "free.test", "/secret").status, 200);
    assert_eq!(
        app.count(),
        2,
        "the denied request never reached the backend"
    );
}

#[test]
fn a_site_logs_json_while_another_logs_pibl() {
    let app = Backend::start("app");
    let conf = format!(
        "pool app {{ backend {} }}\n\
         site json.test {{ log_format json; route / app }}\n\
         site plain.test {{ route / app }}\n",
        app.addr
    );
    let mut p = Pibl::start(&[], &conf);
    assert_eq!(get(&p, "json.test", "/as-json").status, 200);
    assert_eq!(get(&p, "plain.test", "/as-pibl").status, 200);
    assert_eq!(p.stop(), Some(0));
    let log = p.log_file();
    let json = log
        .lines()
        .find(|l| l.contains("/as-json"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(json.starts_with("{\"time\":\""), "{json}");
    assert!(json.ends_with('}'), "{json}");
    assert!(json.contains("\"host\":\"json.test\""), "{json}");
    assert!(json.contains("\"status\":200"), "{json}");
    let pibl = log
        .lines()
        .find(|l| l.contains("/as-pibl"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(!pibl.starts_with('{'), "{pibl}");
    assert!(pibl.contains("\"GET /as-pibl HTTP/1.1\" 200"), "{pibl}");
}

#[test]
fn a_rate_limit_on_api_only() {
    let app = Backend::start("app");
    let conf = format!(
        "pool app {{ backend {} }}\n\
         site any.test {{\n\
             route / app\n\
             route /api/ app {{ rate_limit 1/m burst=2 }}\n\
         }}\n",
        app.addr
    );
    let p = Pibl::start(&[], &conf);
    let mut c = Conn::open(p.addr);
    let mut api = |n: usize| {
        c.send(format!("GET /api/{n} HTTP/1.1\r\nHost: any.test\r\n\r\n").as_bytes());
        c.read_response(false).expect("response")
    };
    assert_eq!(api(1).status, 200);
    assert_eq!(api(2).status, 200);
    let refused = api(3);
    assert_eq!(refused.status, 429, "{}", refused.text());
    assert!(refused.header("Retry-After").is_some());
    for i in 0..10 {
        assert_eq!(get(&p, "any.test", &format!("/page/{i}")).status, 200);
    }
}

#[test]
fn an_error_page_per_site() {
    let dir = TempDir::new("scoped-error-page");
    let page = dir.path().join("5xx.html");
    std::fs::write(&page, "<h1>shop is down</h1>\n").unwrap();
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let conf = format!(
        "max_fails 0\n\
         pool dead {{ backend {dead_addr} }}\n\
         site shop.test {{ error_page 502 {}; route / dead }}\n\
         site blog.test {{ route / dead }}\n",
        page.display()
    );
    let p = Pibl::start(&[], &conf);
    let shop = get(&p, "shop.test", "/");
    assert_eq!(shop.status, 502);
    assert_eq!(shop.header("Content-Type"), Some("text/html"));
    assert_eq!(shop.text(), "<h1>shop is down</h1>\n");
    let blog = get(&p, "blog.test", "/");
    assert_eq!(blog.status, 502);
    assert!(blog.text().contains("502 Bad Gateway"), "{}", blog.text());
    // Refused before routing (no Host): the top level's rules, no page.
    let bad = common::raw_exchange(p.addr, b"GET / HTTP/1.1\r\n\r\n");
    assert!(bad.starts_with("HTTP/1.1 400 "), "{bad}");
}

#[test]
fn a_reload_changes_a_routes_rules() {
    let app = Backend::start("app");
    let conf = |value: &str| {
        format!(
            "pool app {{ backend {} }}\n\
             site any.test {{\n\
                 route / app\n\
                 route /api/ app {{ request_header set X-Generation {value} }}\n\
             }}\n",
            app.addr
        )
    };
    let p = Pibl::start(&[], &conf("one"));
    assert_eq!(get(&p, "any.test", "/api/1").status, 200);
    assert_eq!(
        seen_header(&app, "/api/1", "X-Generation").as_deref(),
        Some("one")
    );
    let text = std::fs::read_to_string(p.conf_path()).unwrap();
    std::fs::write(
        p.conf_path(),
        text.replace("X-Generation one", "X-Generation two"),
    )
    .unwrap();
    p.signal(libc::SIGHUP);
    assert!(p.wait_for_line("reloaded pibl.conf", Duration::from_secs(5)));
    assert_eq!(get(&p, "any.test", "/api/2").status, 200);
    assert_eq!(
        seen_header(&app, "/api/2", "X-Generation").as_deref(),
        Some("two")
    );
}

#[test]
fn check_prints_each_routes_rules() {
    let dir = TempDir::new("scoped-check");
    std::fs::write(
        dir.path().join("pibl.conf"),
        "listen 127.0.0.1:0\n\
         request_id on\n\
         pool app { backend 127.0.0.1:9001 }\n\
         site example.com {\n\
             log_format json\n\
             route / app\n\
             route /api/ app { rate_limit 10/s burst=20; request_header set X-Api 1 }\n\
         }\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pibl"))
        .args(["--check", "-c"])
        .arg(dir.path().join("pibl.conf"))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("site example.com {\n    log_format json\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "    route /api/ app {\n        request_header set X-Api 1\n        \
             rate_limit 10/s burst=20 per=client_ip\n    }\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "#   in effect: request_header set X-Api 1; log_format json; \
             rate_limit 10/s burst=20 per=client_ip"
        ),
        "{text}"
    );
}

#[test]
fn scoped_mistakes_are_located() {
    use pibl::config::Config;
    let parse = |text: &str| {
        let text = format!("pool app {{ backend 127.0.0.1:9 }}\n{text}");
        Config::parse(std::path::Path::new("t.conf"), &text).map_err(|e| e.to_string())
    };
    for (text, needle) in [
        (
            "site a { log_format json\nlog_format pibl\nroute / app }\n",
            "t.conf:3: duplicate 'log_format' in this block",
        ),
        (
            "site a { route / app { rate_limit_table 5 } }\n",
            "t.conf:2: 'rate_limit_table' cannot be set in a route (only at top level)",
        ),
        (
            "site a {\nroute / app { deny 10.0.0.1/8 } }\n",
            "t.conf:3: deny: '10.0.0.1/8' has bits set",
        ),
        (
            "site a { request_header set Content-Length 1; route / app }\n",
            "t.conf:2: request_header:",
        ),
        (
            "site a { route / app { error_page 502 /nonexistent/pibl.html } }\n",
            "t.conf:2: error_page: cannot read /nonexistent/pibl.html",
        ),
    ] {
        let e = parse(text).unwrap_err();
        assert!(e.contains(needle), "{text:?}: {e}");
    }
    // Repeatable lists add up within a block; the same directive in site and route is fine.
    let cfg = parse(
        "site a { allow 10.0.0.0/8; deny all; request_id on\n\
         route / app { request_id off; response_header set X-A 1; response_header set X-B 2 } }\n",
    )
    .unwrap();
    assert_eq!(cfg.sites[0].settings.access.acl.len(), 2);
    assert_eq!(
        cfg.sites[0].routes[0]
            .settings
            .edge
            .response_headers
            .rules
            .len(),
        2
    );
}
