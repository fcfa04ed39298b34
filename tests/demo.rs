//! `pibl --demo`: one command brings up three origins and the proxy with the cache on.

mod common;

use std::collections::HashSet;

use common::{Conn, Pibl, TempDir};

#[test]
fn demo_balances_over_three_origins_and_caches() {
    let dir = TempDir::new("demo");
    let p = Pibl::start_in(dir, &["--demo", "--port", "0"]);
    // /api/info is never cached, so successive requests rotate over the origins.
    let mut c = Conn::open(p.addr);
    let served: Vec<String> = (0..3)
        .map(|_| {
            let r = c.get("/api/info");
            assert_eq!(r.status, 200);
            r.header("X-Served-By").unwrap().to_string()
        })
        .collect();
    let distinct: HashSet<&String> = served.iter().collect();
    assert_eq!(distinct.len(), 3, "{served:?}");
    // The index page names the origin; a second GET of a static file is a cache HIT.
    let index = c.get("/");
    assert!(index.text().contains("origin-"), "{}", index.text());
    let first = c.get("/style.css");
    let second = c.get("/style.css");
    assert_eq!(first.header("X-Cache"), Some("MISS"));
    assert_eq!(second.header("X-Cache"), Some("HIT"));
    assert_eq!(first.body, second.body);
    // What to try is printed, the live status page among it, and it shows the traffic.
    assert!(p.wait_for_line("/status   live status", std::time::Duration::from_secs(5)));
    let status = common::get(p.admin_addr(), "/status");
    assert_eq!(status.status, 200);
    assert!(status.text().contains("origin") || status.text().contains("127.0.0.1"));
    let out = p.stdout.lock().unwrap().join("\n");
    assert!(out.contains("listening on"), "{out}");
}

#[test]
fn demo_on_a_taken_port_says_how_to_pick_another() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port().to_string();
    let dir = TempDir::new("demo");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pibl"))
        .args(["--demo", "--port", &port])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is taken") && err.contains("--port"), "{err}");
}
