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

/// The demo listens for HTTPS too, and the `curl --cacert ...` line its banner prints works as
/// printed (run from the demo's directory, where the CA file is).
#[test]
fn demo_https_banner_curl_line_works() {
    let have_curl = std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_curl {
        eprintln!("skipped: curl is not installed");
        return;
    }
    let dir = TempDir::new("demo-https");
    let p = Pibl::start_in(dir, &["--demo", "--port", "0"]);
    assert!(p.wait_for_line("curl --cacert", std::time::Duration::from_secs(10)));
    let out = p.stdout.lock().unwrap().join("\n");
    let line = out
        .lines()
        .find(|l| l.contains("curl --cacert"))
        .expect("the banner's curl line");
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| *w == "curl")
        .expect("curl in the line");
    let (ca, url) = (words[at + 2], words[at + 3]);
    assert!(url.starts_with("https://localhost:"), "{line}");
    let dir = p.conf_path().parent().expect("demo dir").to_path_buf();
    let run = std::process::Command::new("curl")
        .current_dir(&dir)
        .args(["-sS", "--max-time", "20", "-D", "-", "--cacert", ca, url])
        .output()
        .expect("run curl");
    let got = String::from_utf8_lossy(&run.stdout);
    // The demo's TLS listener offers h2 by ALPN, which curl prefers.
    assert!(
        got.starts_with("HTTP/2 200"),
        "{line}\nstdout: {got}\nstderr: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(got.contains("origin-"), "{got}");
}
