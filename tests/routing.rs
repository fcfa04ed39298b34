//! Sites, routes and pools against the real binary and real loopback backends: which backend
//! answered says where a request was routed.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use common::{Backend, Conn, Pibl, Response, TempDir};

/// `GET target` with `Host: host` on a fresh connection.
fn get(p: &Pibl, host: &str, target: &str) -> Response {
    let mut c = Conn::open(p.addr);
    c.send(format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes());
    c.read_response(false).expect("response")
}

fn who(p: &Pibl, host: &str, target: &str) -> String {
    let r = get(p, host, target);
    assert_eq!(r.status, 200, "{host}{target}: {}", r.text());
    r.header("X-Backend").unwrap_or("-").to_string()
}

fn routed_config(app: &Backend, files: &Backend, api: &Backend, extra: &str) -> String {
    format!(
        "pool app {{ backend {} }}\n\
         pool files {{ backend {} }}\n\
         pool api {{ backend {} }}\n\
         site example.com www.example.com {{\n\
             route /static/  files\n\
             route = /exact  api\n\
             route /         app\n\
         }}\n\
         site *.example.com {{ route / api }}\n\
         site api.test {{ route /v1/ api; route / files }}\n{extra}",
        app.addr, files.addr, api.addr
    )
}

#[test]
fn hosts_pick_sites_exact_wildcard_default_absolute_form_and_port() {
    let (app, files, api) = (
        Backend::start("app"),
        Backend::start("files"),
        Backend::start("api"),
    );
    let p = Pibl::start(&[], &routed_config(&app, &files, &api, ""));
    assert_eq!(who(&p, "example.com", "/"), "app");
    assert_eq!(who(&p, "WWW.EXAMPLE.COM:8080", "/x"), "app");
    assert_eq!(who(&p, "a.example.com", "/"), "api");
    assert_eq!(who(&p, "api.test", "/v1/users"), "api");
    assert_eq!(who(&p, "api.test", "/v2/users"), "files");
    assert_eq!(
        who(&p, "unknown.test", "/"),
        "app",
        "the first site is the default"
    );
    // Absolute form: the URL's authority is the host, whatever Host says.
    assert_eq!(who(&p, "example.com", "http://api.test/v1/x"), "api");
}

#[test]
fn paths_longest_prefix_and_exact() {
    let (app, files, api) = (
        Backend::start("app"),
        Backend::start("files"),
        Backend::start("api"),
    );
    let p = Pibl::start(&[], &routed_config(&app, &files, &api, ""));
    assert_eq!(who(&p, "example.com", "/static/a.css"), "files");
    assert_eq!(who(&p, "example.com", "/staticx"), "app");
    assert_eq!(who(&p, "example.com", "/exact"), "api");
    assert_eq!(who(&p, "example.com", "/exact?x=1"), "api");
    assert_eq!(who(&p, "example.com", "/exactly"), "app");
}

#[test]
fn no_site_answers_404_or_421_and_a_site_without_the_path_404() {
    let b = Backend::start("b");
    for status in [404u16, 421] {
        let p = Pibl::start(
            &[],
            &format!(
                "pool p {{ backend {} }}\nno_site {status}\nsite a.test {{ route /only/ p }}\n",
                b.addr
            ),
        );
        assert_eq!(get(&p, "b.test", "/only/").status, status);
        assert_eq!(get(&p, "a.test", "/elsewhere").status, 404);
        assert_eq!(who(&p, "a.test", "/only/x"), "b");
    }
    assert_eq!(b.count(), 2, "refused requests never reach a backend");
}

#[test]
fn a_default_site_takes_unknown_hosts_under_no_site() {
    let (a, d) = (Backend::start("a"), Backend::start("d"));
    let p = Pibl::start(
        &[],
        &format!(
            "pool a {{ backend {} }}\npool d {{ backend {} }}\nno_site 421\n\
             site a.test {{ route / a }}\nsite d.test {{ default; route / d }}\n",
            a.addr, d.addr
        ),
    );
    assert_eq!(who(&p, "zzz", "/"), "d");
    assert_eq!(who(&p, "a.test", "/"), "a");
}

#[test]
fn weights_give_exact_shares() {
    let (a, b, c) = (
        Backend::start("a"),
        Backend::start("b"),
        Backend::start("c"),
    );
    let p = Pibl::start(
        &[],
        &format!(
            "pool w {{ backend {} weight=5; backend {} weight=2; backend {} }}\n\
             site any {{ route / w }}\n",
            a.addr, b.addr, c.addr
        ),
    );
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut conn = Conn::open(p.addr);
    for _ in 0..800 {
        let r = conn.get("/");
        *counts
            .entry(r.header("X-Backend").unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(counts["a"], 500, "{counts:?}");
    assert_eq!(counts["b"], 200, "{counts:?}");
    assert_eq!(counts["c"], 100, "{counts:?}");
}

#[test]
fn a_backup_takes_over_when_every_primary_is_down_and_gives_back() {
    let primary = Backend::start("primary");
    let backup = Backend::start("backup");
    let primary_addr = primary.addr;
    let p = Pibl::start(
        &[],
        &format!(
            "max_fails 1\nfail_timeout 1s\n\
             pool p {{ backend {} ; backend {} backup }}\nsite any {{ route / p }}\n",
            primary.addr, backup.addr
        ),
    );
    for _ in 0..5 {
        assert_eq!(who(&p, "any", "/"), "primary");
    }
    primary.kill();
    drop(primary);
    for _ in 0..5 {
        assert_eq!(who(&p, "any", "/"), "backup");
    }
    let primary = Backend::start_at("primary", primary_addr);
    std::thread::sleep(Duration::from_millis(1200));
    let back: Vec<String> = (0..5).map(|_| who(&p, "any", "/")).collect();
    assert!(back.iter().all(|w| w == "primary"), "{back:?}");
    drop(primary);
}

#[test]
fn flat_backends_still_one_pool_next_to_sites() {
    let (flat, other) = (Backend::start("flat"), Backend::start("other"));
    let p = Pibl::start(
        &[flat.addr],
        &format!(
            "pool other {{ backend {} }}\nsite o.test {{ route / other }}\n\
             site f.test {{ route / default }}\n",
            other.addr
        ),
    );
    assert_eq!(who(&p, "o.test", "/"), "other");
    assert_eq!(who(&p, "f.test", "/"), "flat");
}

#[test]
fn include_reads_other_files_relative_to_the_config() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let dir = TempDir::new("routing-include");
    std::fs::create_dir(dir.path().join("conf.d")).unwrap();
    std::fs::write(
        dir.path().join("conf.d/a.conf"),
        format!(
            "pool a {{ backend {} }}\nsite a.test {{ route / a }}\n",
            a.addr
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("conf.d/b.conf"),
        format!(
            "pool b {{ backend {} }}\nsite b.test {{ route / b }}\n",
            b.addr
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("pibl.conf"),
        "listen 127.0.0.1:0\nworkers 1\ninclude conf.d/*.conf\n",
    )
    .unwrap();
    let p = Pibl::start_in(dir, &["-c", "pibl.conf"]);
    assert_eq!(who(&p, "a.test", "/"), "a");
    assert_eq!(who(&p, "b.test", "/"), "b");
}

fn check(dir: &TempDir) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pibl"))
        .args(["-c", "pibl.conf", "--check"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn a_bad_block_is_a_file_and_line_error_even_when_included() {
    let dir = TempDir::new("routing-bad");
    std::fs::write(
        dir.path().join("pibl.conf"),
        "listen 127.0.0.1:0\nbackend 127.0.0.1:9\ninclude sites.conf\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("sites.conf"),
        "site a.test {\n  route / nowhere\n}\n",
    )
    .unwrap();
    let (ok, text) = check(&dir);
    assert!(!ok, "{text}");
    assert!(
        text.contains("sites.conf:2: route /: no pool is named 'nowhere'"),
        "{text}"
    );

    std::fs::write(
        dir.path().join("sites.conf"),
        "site a.test {\n  route / default\n",
    )
    .unwrap();
    let (ok, text) = check(&dir);
    assert!(!ok && text.contains("sites.conf:1:"), "{text}");
}

#[test]
fn check_prints_the_routing_table() {
    let dir = TempDir::new("routing-check");
    std::fs::write(
        dir.path().join("pibl.conf"),
        "listen 127.0.0.1:0\n\
         pool app { backend 127.0.0.1:9001 weight=2; backend 127.0.0.1:9002 backup }\n\
         site example.com *.example.com { route / app; route = /x app }\n",
    )
    .unwrap();
    let (ok, text) = check(&dir);
    assert!(ok, "{text}");
    assert!(text.contains("pool app {"), "{text}");
    assert!(text.contains("backend 127.0.0.1:9001 weight=2"), "{text}");
    assert!(text.contains("backend 127.0.0.1:9002 backup"), "{text}");
    assert!(text.contains("site example.com *.example.com {"), "{text}");
    assert!(text.contains("route = /x app"), "{text}");
}

#[test]
fn reload_changes_routes_under_load_without_losing_a_request() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let conf = |pool: &str| {
        format!(
            "pool a {{ backend {} }}\npool b {{ backend {} }}\nsite any {{ route / {pool} }}\n",
            a.addr, b.addr
        )
    };
    let p = Pibl::start(&[], &conf("a"));
    let addr = p.addr;
    let load = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for _ in 0..400 {
            let mut c = Conn::open(addr);
            c.send(b"GET / HTTP/1.1\r\nHost: any\r\nConnection: close\r\n\r\n");
            let r = c.read_response(false).expect("every request answered");
            assert_eq!(r.status, 200);
            seen.push(r.header("X-Backend").unwrap().to_string());
        }
        seen
    });
    std::thread::sleep(Duration::from_millis(100));
    let text = std::fs::read_to_string(p.conf_path()).unwrap();
    let text = text.replace("route / a", "route / b");
    std::fs::write(p.conf_path(), text).unwrap();
    p.signal(libc::SIGHUP);
    assert!(p.wait_for_line("reloaded pibl.conf", Duration::from_secs(5)));
    let seen = load.join().unwrap();
    assert_eq!(seen.len(), 400);
    assert_eq!(who(&p, "any", "/"), "b");
    let _ = conf;
}

/// A backend that answers every request only after `hold`, counting those it has received.
fn slow_backend(
    hold: Duration,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let received = std::sync::Arc::new(AtomicUsize::new(0));
    let count = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let count = count.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                count.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(hold);
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\nX-Backend: slow\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            });
        }
    });
    (addr, received)
}

#[test]
fn least_conn_avoids_the_backend_still_busy() {
    use std::sync::atomic::Ordering;
    let fast = Backend::start("fast");
    let (slow, received) = slow_backend(Duration::from_secs(3));
    let p = Pibl::start(
        &[],
        &format!(
            "pool lc {{ backend {slow}; backend {}; balance least_conn }}\nsite any {{ route / lc }}\n",
            fast.addr
        ),
    );
    // Keep sending until one request sits on the slow backend.
    let mut waiting = Vec::new();
    while received.load(Ordering::SeqCst) == 0 && waiting.len() < 10 {
        let addr = p.addr;
        waiting.push(std::thread::spawn(move || {
            let mut c = Conn::open(addr);
            c.send(b"GET /wait HTTP/1.1\r\nHost: any\r\n\r\n");
            c.read_response(false).map(|r| r.status)
        }));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(received.load(Ordering::SeqCst), 1);
    let mut conn = Conn::open(p.addr);
    for _ in 0..20 {
        assert_eq!(conn.get("/").header("X-Backend"), Some("fast"));
    }
    for w in waiting {
        assert_eq!(w.join().unwrap(), Some(200));
    }
}

#[test]
fn hashing_keeps_a_key_on_one_backend_and_spreads_keys() {
    let bs: Vec<Backend> = ["h0", "h1", "h2"]
        .iter()
        .map(|n| Backend::start(n))
        .collect();
    let list: String = bs.iter().map(|b| format!("backend {}; ", b.addr)).collect();
    let p = Pibl::start(
        &[],
        &format!(
            "pool u {{ {list}balance hash uri }}\npool h {{ {list}balance hash header:X-User }}\n\
             site uri.test {{ route / u }}\nsite user.test {{ route / h }}\n"
        ),
    );
    let mut used = std::collections::HashSet::new();
    for k in 0..30 {
        let target = format!("/item/{k}");
        let first = who(&p, "uri.test", &target);
        for _ in 0..3 {
            assert_eq!(who(&p, "uri.test", &target), first, "{target}");
        }
        used.insert(first);
    }
    assert_eq!(used.len(), 3, "30 keys over 3 backends: {used:?}");
    let mut used = std::collections::HashSet::new();
    for k in 0..30 {
        let mut c = Conn::open(p.addr);
        let ask = |c: &mut Conn, path: &str| {
            c.send(
                format!("GET {path} HTTP/1.1\r\nHost: user.test\r\nX-User: user{k}\r\n\r\n")
                    .as_bytes(),
            );
            c.read_response(false)
                .unwrap()
                .header("X-Backend")
                .unwrap()
                .to_string()
        };
        let first = ask(&mut c, "/a");
        assert_eq!(
            ask(&mut c, "/b"),
            first,
            "the path does not matter, the header does"
        );
        used.insert(first);
    }
    assert_eq!(used.len(), 3, "{used:?}");
}
