//! Signals and lifecycle, against the real binary: graceful stop and the second signal, SIGHUP
//! reload, SIGUSR1 log reopening, `--check`, and a zero-downtime upgrade (a second pibl on the
//! same port while the first drains).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{pattern, Backend, Conn, Pibl, TempDir};

/// Waits (bounded) until the backend has seen `n` requests.
fn wait_seen(b: &Backend, n: usize) {
    let until = Instant::now() + Duration::from_secs(5);
    while b.count() < n && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(b.count() >= n, "backend saw {} of {n} requests", b.count());
}

/// Polls until a connect to `addr` is refused (bounded).
fn refused_within(addr: SocketAddr, within: Duration) -> bool {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if TcpStream::connect(addr).is_err() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn sigterm_just_after_start_is_a_clean_stop() {
    let b = Backend::start("l0");
    for _ in 0..5 {
        let mut p = Pibl::start(&[b.addr], "");
        // At once, on the "listening" line: the handler must already be installed.
        assert_eq!(p.stop(), Some(0), "killed by the default SIGTERM action");
    }
}

#[test]
fn graceful_stop_finishes_the_request_in_flight_refuses_new_and_closes_idle() {
    let b = Backend::start("l1");
    let mut p = Pibl::start(&[b.addr], "shutdown_timeout 10s\n");
    let mut idle = Conn::open(p.addr);
    assert_eq!(idle.get("/first").status, 200);
    let n = 200_000;
    let mut slow = Conn::open(p.addr);
    slow.send(format!("GET /slow?head_ms=600&n={n} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    wait_seen(&b, 2);

    p.signal(libc::SIGTERM);
    assert!(p.wait_for_line("stopping", Duration::from_secs(5)));
    assert!(idle.is_closed(), "an idle keep-alive connection is closed");
    assert!(
        refused_within(p.addr, Duration::from_secs(5)),
        "new connections are refused once the stop began"
    );
    let r = slow
        .read_response(false)
        .expect("the request in flight completes");
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), n);
    assert_eq!(crc32fast::hash(&r.body), crc32fast::hash(&pattern(n)));
    assert_eq!(
        r.header("connection"),
        Some("close"),
        "a response finished during the drain says the connection closes"
    );
    assert!(slow.is_closed());
    assert_eq!(p.wait_exit(Duration::from_secs(10)), Some(0));
    let log = p.log_file();
    assert!(log.contains("\"GET /slow?head_ms=600"), "{log}");
    assert!(log.contains("stopped"), "{log}");
}

#[test]
fn a_client_queued_in_the_backlog_when_the_stop_begins_is_served_not_reset() {
    let b = Backend::start("l1q");
    let mut p = Pibl::start(&[b.addr], "workers 1\nmax_connections 1\n");
    // The one slot is held by an idle keep-alive client; the next waits in the kernel backlog.
    let mut idle = Conn::open(p.addr);
    assert_eq!(idle.get("/hold").status, 200);
    let mut queued = Conn::open(p.addr);
    queued.send(b"GET /queued HTTP/1.1\r\nHost: t\r\n\r\n");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(b.count(), 1, "the second client is not accepted yet");

    p.signal(libc::SIGTERM);
    let r = queued.read_response(false).expect("served, not reset");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(idle.is_closed());
    assert_eq!(p.wait_exit(Duration::from_secs(10)), Some(0));
}

#[test]
fn second_stop_signal_during_a_long_drain_exits_at_once_with_status_1() {
    let b = Backend::start("l2");
    let mut p = Pibl::start(&[b.addr], "shutdown_timeout 60s\n");
    let mut c = Conn::open(p.addr);
    c.send(b"GET /slow-head HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_seen(&b, 1);
    p.signal(libc::SIGTERM);
    assert!(p.wait_for_line("stopping", Duration::from_secs(5)));
    assert_eq!(
        p.wait_exit(Duration::from_millis(300)),
        None,
        "still draining"
    );
    let started = Instant::now();
    p.signal(libc::SIGINT);
    assert_eq!(p.wait_exit(Duration::from_secs(3)), Some(1));
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(p.log_file().contains("second stop signal"));
}

#[test]
fn sighup_switches_backends_for_new_requests_and_keeps_the_one_in_flight() {
    let old = Backend::start("old");
    let new = Backend::start("new");
    let p = Pibl::start(&[old.addr], "");
    let mut kept = Conn::open(p.addr);
    assert_eq!(kept.get("/before").header("x-backend"), Some("old"));
    let mut slow = Conn::open(p.addr);
    slow.send(b"GET /slow?head_ms=800&n=50000 HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_seen(&old, 2);

    let conf = std::fs::read_to_string(p.conf_path()).unwrap();
    let conf = conf.replace(
        &format!("backend {}", old.addr),
        &format!("backend {}", new.addr),
    );
    std::fs::write(p.conf_path(), conf).unwrap();
    p.signal(libc::SIGHUP);
    assert!(p.wait_for_line("reloaded pibl.conf: 1 backend (", Duration::from_secs(5)));

    // The request in flight finishes on the old backend, whole.
    let r = slow.read_response(false).expect("in-flight response");
    assert_eq!(
        (r.status, r.header("x-backend"), r.body.len()),
        (200, Some("old"), 50_000)
    );
    // New requests go to the new backend, on a kept-alive connection and on a new one.
    assert_eq!(kept.get("/after").header("x-backend"), Some("new"));
    assert_eq!(slow.get("/after2").header("x-backend"), Some("new"));
    assert_eq!(
        Conn::open(p.addr).get("/after3").header("x-backend"),
        Some("new")
    );
    let lines = p.wait_for_log("/slow?head_ms=800", 1);
    assert!(
        lines[0].contains(&old.addr.to_string()),
        "logged against the backend it started on: {lines:?}"
    );
}

#[test]
fn reload_with_an_error_keeps_the_running_config_and_names_file_and_line() {
    let b = Backend::start("l4");
    let other = Backend::start("l4-other");
    // -w on the command line wins over the file, at start and at every reload.
    let dir = TempDir::new("reload");
    let conf = format!("listen 127.0.0.1:0\nworkers 2\nbackend {}\n", b.addr);
    std::fs::write(dir.path().join("pibl.conf"), &conf).unwrap();
    let p = Pibl::start_in(dir, &["-c", "pibl.conf", "-w", "1"]);

    std::fs::write(
        p.conf_path(),
        format!("{conf}backend {}\nfrobnicate 3\n", other.addr),
    )
    .unwrap();
    p.signal(libc::SIGHUP);
    assert!(p.wait_for_line(
        "reload failed: pibl.conf:5: unknown directive 'frobnicate'",
        Duration::from_secs(5)
    ));
    for _ in 0..4 {
        assert_eq!(Conn::open(p.addr).get("/x").header("x-backend"), Some("l4"));
    }

    // A good file that also changes what needs a restart: applied, with those parts ignored.
    let listen = "listen 127.0.0.1:1\n";
    std::fs::write(
        p.conf_path(),
        format!("{listen}workers 2\nbackend {}\n", other.addr),
    )
    .unwrap();
    p.signal(libc::SIGHUP);
    assert!(p.wait_for_line("reloaded pibl.conf", Duration::from_secs(5)));
    let log = p.log_file();
    assert!(
        log.contains("reload: listen address 127.0.0.1:")
            && log.contains("-> 127.0.0.1:1 is applied at the next restart"),
        "{log}"
    );
    assert!(!log.contains("reload: workers"), "-w still applies: {log}");
    assert_eq!(
        Conn::open(p.addr).get("/y").header("x-backend"),
        Some("l4-other"),
        "still listening on the old address, with the new backend"
    );
}

#[test]
fn sigusr1_reopens_the_log_file_after_it_was_renamed() {
    let b = Backend::start("l5");
    let p = Pibl::start(&[b.addr], "");
    assert_eq!(Conn::open(p.addr).get("/before-rotate").status, 200);
    assert_eq!(p.wait_for_log("/before-rotate", 1).len(), 1);
    let log = p.dir.path().join("pibl.log");
    let rotated = p.dir.path().join("pibl.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    p.signal(libc::SIGUSR1);
    let until = Instant::now() + Duration::from_secs(5);
    while !p.log_file().contains("reopened log file") && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(Conn::open(p.addr).get("/after-rotate").status, 200);
    assert_eq!(p.wait_for_log("/after-rotate", 1).len(), 1);
    let old = std::fs::read_to_string(&rotated).unwrap();
    assert!(old.contains("/before-rotate"), "{old}");
    assert!(!old.contains("/after-rotate"), "{old}");
    assert!(!p.log_file().contains("/before-rotate"));
}

#[test]
fn check_reads_pibl_conf_by_default_and_reports_file_and_line() {
    let run = |dir: &TempDir, args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_pibl"))
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    let dir = TempDir::new("check");
    std::fs::write(
        dir.path().join("pibl.conf"),
        "listen 127.0.0.1:0\nbackend 127.0.0.1:9\n",
    )
    .unwrap();
    let (code, out, _) = run(&dir, &["--check"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("# config pibl.conf is valid"), "{out}");
    std::fs::write(
        dir.path().join("other.conf"),
        "backend 127.0.0.1:9\nttl x\n",
    )
    .unwrap();
    let (code, out, err) = run(&dir, &["-c", "other.conf", "--check"]);
    assert_eq!(code, Some(1));
    assert!(out.is_empty(), "{out}");
    assert_eq!(err.trim(), "pibl: other.conf:2: unknown directive 'ttl'");
}

// ---- zero-downtime upgrade --------------------------------------------------------------------

/// What one load thread saw.
#[derive(Debug, Default)]
struct Tally {
    ok: usize,
    /// Requests sent again because a reused connection closed before any response byte.
    retried: usize,
    /// Fresh connections reset before any response byte: the residual without
    /// `tcp_migrate_req` (a connection queued on a listener as it closed).
    fresh_resets: usize,
    errors: Vec<String>,
}

/// How one attempt ended.
enum Attempt {
    Done {
        close: bool,
    },
    /// Nothing of a response arrived before the connection closed or failed.
    NoResponse(String),
    Bad(String),
}

fn attempt(conn: &mut Conn, target: &str, expect: &str) -> Attempt {
    let req = format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n");
    if let Err(e) = conn.stream.write_all(req.as_bytes()) {
        return Attempt::NoResponse(format!("write: {e}"));
    }
    match conn.read_response(false) {
        Some(r) if r.status == 200 && r.text() == expect => Attempt::Done {
            close: r
                .header("connection")
                .is_some_and(|v| v.eq_ignore_ascii_case("close")),
        },
        Some(r) => Attempt::Bad(format!("{target}: {} {:?}", r.status, r.text())),
        None if conn.buf.is_empty() => {
            // Distinguish a reset from a clean close, for the report.
            let mut b = [0u8; 1];
            Attempt::NoResponse(match conn.stream.read(&mut b) {
                Err(e) => format!("{e}"),
                Ok(_) => "closed".into(),
            })
        }
        None => Attempt::Bad(format!("{target}: truncated response {:?}", conn.buf)),
    }
}

/// A keep-alive client like a browser or curl: honours `Connection: close`, opens a new
/// connection every 10 requests, and sends a request again only when a *reused* connection
/// closed before any byte of the response.
fn load(addr: SocketAddr, id: usize, stop: &AtomicBool) -> Tally {
    let mut t = Tally::default();
    let mut conn: Option<(Conn, usize)> = None;
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) && t.errors.len() < 5 {
        i += 1;
        let target = format!("/u/{id}/{i}");
        let expect = format!("backend up: GET {target}\n");
        let mut sent_fresh = false;
        loop {
            let (c, uses) = match conn.as_mut() {
                Some(c) => c,
                None => match TcpStream::connect(addr) {
                    Ok(s) => {
                        s.set_read_timeout(Some(Duration::from_secs(10))).ok();
                        conn.insert((
                            Conn {
                                stream: s,
                                buf: Vec::new(),
                            },
                            0,
                        ))
                    }
                    Err(e) => {
                        t.errors.push(format!("{target}: connect: {e}"));
                        break;
                    }
                },
            };
            let reused = *uses > 0;
            *uses += 1;
            match attempt(c, &target, &expect) {
                Attempt::Done { close } => {
                    t.ok += 1;
                    if close || *uses >= 10 {
                        conn = None;
                    }
                    break;
                }
                Attempt::NoResponse(why) if reused && !sent_fresh => {
                    conn = None;
                    sent_fresh = true;
                    t.retried += 1;
                    let _ = why;
                }
                Attempt::NoResponse(why) => {
                    conn = None;
                    t.fresh_resets += 1;
                    t.errors.push(format!("{target}: fresh connection: {why}"));
                    break;
                }
                Attempt::Bad(why) => {
                    conn = None;
                    t.errors.push(why);
                    break;
                }
            }
        }
    }
    t
}

/// Turns on `net.ipv4.tcp_migrate_req` when we may (root): connections that complete their
/// handshake on a closing listener then move to another listener on the port instead of being
/// reset. Returns whether it is on. `PIBL_NO_MIGRATE=1` leaves the setting alone, to measure
/// the residual without it (after `sysctl net.ipv4.tcp_migrate_req=0`).
fn migrate_requests() -> bool {
    let path = "/proc/sys/net/ipv4/tcp_migrate_req";
    if std::env::var_os("PIBL_NO_MIGRATE").is_some() {
        return std::fs::read_to_string(path).is_ok_and(|v| v.trim() == "1");
    }
    if std::fs::read_to_string(path).is_ok_and(|v| v.trim() == "1") {
        return true;
    }
    std::fs::write(path, "1").is_ok()
        && std::fs::read_to_string(path).is_ok_and(|v| v.trim() == "1")
}

#[test]
fn upgrade_under_load_loses_no_request() {
    let migrating = migrate_requests();
    let b = Backend::start("up");
    let mut a = Pibl::start(&[b.addr], "shutdown_timeout 10s\n");
    let addr = a.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..6)
        .map(|id| {
            let stop = stop.clone();
            std::thread::spawn(move || load(addr, id, &stop))
        })
        .collect();
    let until = Instant::now() + Duration::from_secs(5);
    while b.count() < 500 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }

    // B: same config, same port; ready once it logged "listening" (Pibl::start_in waits).
    let dir = TempDir::new("upgrade-b");
    std::fs::write(
        dir.path().join("pibl.conf"),
        format!(
            "listen {addr}\nworkers 2\nbackend {}\nshutdown_timeout 10s\n",
            b.addr
        ),
    )
    .unwrap();
    // --upgrade: sharing A's port is the intent (without it B refuses to start).
    let mut b_pibl = Pibl::start_in(dir, &["-c", "pibl.conf", "--upgrade"]);
    assert_eq!(b_pibl.addr, addr);
    // Both take new connections for a while (the clients reconnect every 10 requests).
    let both_from = b.count();
    let until = Instant::now() + Duration::from_secs(5);
    while b.count() < both_from + 1000 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }

    a.signal(libc::SIGTERM);
    assert_eq!(
        a.wait_exit(Duration::from_secs(15)),
        Some(0),
        "A stops cleanly"
    );
    let served_when_a_left = b.count();
    let until = Instant::now() + Duration::from_secs(5);
    while b.count() < served_when_a_left + 1000 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::Relaxed);
    let tallies: Vec<Tally> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(b_pibl.stop(), Some(0));

    let ok: usize = tallies.iter().map(|t| t.ok).sum();
    let retried: usize = tallies.iter().map(|t| t.retried).sum();
    let fresh_resets: usize = tallies.iter().map(|t| t.fresh_resets).sum();
    let errors: Vec<&String> = tallies.iter().flat_map(|t| &t.errors).collect();
    let count = |log: &str| log.lines().filter(|l| l.contains("\"GET /u/")).count();
    let (by_a, by_b) = (count(&a.log_file()), count(&b_pibl.log_file()));
    eprintln!(
        "upgrade: {ok} ok, {retried} retried on a fresh connection, A served {by_a}, \
         B served {by_b}, migration {}",
        if migrating { "on" } else { "off" }
    );
    assert!(by_a > 0 && by_b > 0, "both served: A {by_a}, B {by_b}");
    assert_eq!(by_a + by_b, ok, "every answered request was logged once");
    if migrating {
        assert!(errors.is_empty(), "client errors: {errors:?}");
    } else {
        // Without tcp_migrate_req a connection that lands in A's accept queue in the instant
        // between A's last accept and its close is reset (docs/operations.md). Nothing else.
        assert_eq!(errors.len(), fresh_resets, "client errors: {errors:?}");
    }
}

/// `X-Cache` of a GET on a fresh connection.
fn x_cache(addr: SocketAddr, path: &str) -> String {
    let r = Conn::open(addr).get(path);
    assert_eq!(r.status, 200);
    r.header("X-Cache").unwrap_or("-").to_string()
}

#[test]
fn sighup_changes_the_cache_ttl_for_new_entries_and_keeps_the_cache() {
    let b = Backend::start("ttl");
    let dir = TempDir::new("reload-ttl");
    let conf = |ttl: &str| {
        format!(
            "listen 127.0.0.1:0\nworkers 1\nbackend {}\ncache on\ncache_ttl {ttl}\n",
            b.addr
        )
    };
    std::fs::write(dir.path().join("pibl.conf"), conf("600s")).unwrap();
    let p = Pibl::start_in(dir, &["-c", "pibl.conf"]);
    assert_eq!(x_cache(p.addr, "/long"), "MISS");
    assert_eq!(x_cache(p.addr, "/long"), "HIT");

    // 3 s, not 1 s: on a loaded machine the two requests below can be a second apart.
    std::fs::write(p.conf_path(), conf("3s")).unwrap();
    p.signal(libc::SIGHUP);
    assert!(p.wait_for_line("reloaded pibl.conf", Duration::from_secs(5)));
    assert_eq!(x_cache(p.addr, "/short"), "MISS");
    assert_eq!(x_cache(p.addr, "/short"), "HIT");
    // Time has to pass for an entry to expire; this waits for that, not for pibl.
    std::thread::sleep(Duration::from_millis(3100));
    assert_eq!(
        x_cache(p.addr, "/short"),
        "MISS",
        "stored under the new 3 s TTL"
    );
    assert_eq!(
        x_cache(p.addr, "/long"),
        "HIT",
        "the cache stayed across the reload"
    );
    assert_eq!(b.count(), 3);
}
