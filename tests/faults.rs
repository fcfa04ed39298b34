//! Backends that misbehave on purpose: silent, resetting, truncating, garbage, dying and coming
//! back. Each is a small std::net server in this file; pibl is the real binary.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{get, Backend, Conn, Pibl};

/// A loopback server running `handler` on each accepted connection, in its own thread.
struct Bad {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
}

impl Bad {
    fn start(handler: impl Fn(TcpStream) + Send + Sync + 'static) -> Bad {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        let handler = Arc::new(handler);
        std::thread::spawn(move || {
            for s in listener.incoming().map_while(Result::ok) {
                count.fetch_add(1, Ordering::SeqCst);
                let h = handler.clone();
                std::thread::spawn(move || h(s));
            }
        });
        Bad { addr, accepted }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Reads one request head (and nothing more); returns it, or None on EOF.
fn read_head(s: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => return None,
        }
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// Closes with SO_LINGER 0: the peer gets a reset, not a FIN.
fn reset(s: TcpStream) {
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &l as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(s);
}

fn silent() -> Bad {
    Bad::start(|mut s| {
        let mut buf = [0; 4096];
        while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
    })
}

fn resets_mid_head() -> Bad {
    Bad::start(|mut s| {
        if read_head(&mut s).is_some() {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-");
            std::thread::sleep(Duration::from_millis(20));
        }
        reset(s);
    })
}

fn post(c: &mut Conn, path: &str, body: &str) -> Option<common::Response> {
    c.send(
        format!(
            "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    c.read_response(false)
}

#[test]
fn silent_backend_gives_504_after_upstream_timeout_and_nothing_hangs() {
    let s = silent();
    let p = Pibl::start(&[s.addr], "upstream_timeout 1s\n");
    let started = Instant::now();
    let r = get(p.addr, "/quiet");
    assert_eq!(r.status, 504, "{}", r.text());
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(6),
        "{took:?}"
    );
    // A POST is never retried: one more connection only.
    let before = s.accepted();
    let mut c = Conn::open(p.addr);
    assert_eq!(post(&mut c, "/p", "data").unwrap().status, 504);
    assert_eq!(s.accepted(), before + 1);
}

#[test]
fn idempotent_request_is_retried_once_after_a_head_timeout() {
    let s = silent();
    let good = Backend::start("good");
    // Workers 1 and a fresh rotation: the first request goes to the silent backend.
    let p = Pibl::start(&[s.addr, good.addr], "workers 1\nupstream_timeout 1s\n");
    let r = get(p.addr, "/slow-then-good");
    assert_eq!((r.status, r.header("X-Backend")), (200, Some("good")));
    assert_eq!(s.accepted(), 1);
    // A POST that reached the silent backend is not replayed on the good one: of two POSTs,
    // the one that went to the silent backend gets 504, the other 200.
    let mut statuses: Vec<u16> = (0..2)
        .map(|_| post(&mut Conn::open(p.addr), "/echo", "once").map_or(0, |r| r.status))
        .collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 504]);
    assert_eq!(good.seen().iter().filter(|x| x.method == "POST").count(), 1);
    assert_eq!(s.accepted(), 2);
}

#[test]
fn reset_mid_head_is_502_for_one_backend_and_a_retry_for_get() {
    let r1 = resets_mid_head();
    let p = Pibl::start(&[r1.addr], "");
    let r = get(p.addr, "/reset");
    assert_eq!(r.status, 502, "{}", r.text());

    let r2 = resets_mid_head();
    let good = Backend::start("good");
    let p = Pibl::start(&[r2.addr, good.addr], "workers 1\nmax_fails 0\n");
    let mut c = Conn::open(p.addr);
    for i in 0..6 {
        let r = c.get(&format!("/g/{i}"));
        assert_eq!(
            (r.status, r.header("X-Backend")),
            (200, Some("good")),
            "{i}"
        );
    }
    assert!(
        r2.accepted() >= 3,
        "the resetting backend was in the rotation"
    );
    // POST bodies that reached the resetting backend are never replayed.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let mut c = Conn::open(p.addr);
        statuses.push(post(&mut c, "/echo", "payload").map_or(0, |r| r.status));
    }
    let to_good = good.seen().iter().filter(|x| x.method == "POST").count();
    assert_eq!(statuses.iter().filter(|&&s| s == 200).count(), to_good);
    assert_eq!(statuses.iter().filter(|&&s| s == 502).count(), 4 - to_good);
    assert!(to_good < 4, "{statuses:?}");
}

#[test]
fn backend_closing_mid_body_truncates_the_client_connection() {
    let b = Bad::start(|mut s| {
        if read_head(&mut s).is_some() {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
            let _ = s.write_all(&[b'x'; 100]);
        }
    });
    let p = Pibl::start(&[b.addr], "");
    let mut s = TcpStream::connect(p.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /short HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut all = Vec::new();
    let ended = s.read_to_end(&mut all);
    assert!(
        ended.is_ok(),
        "the connection must end, not hang: {ended:?}"
    );
    let text = String::from_utf8_lossy(&all);
    let head_end = text.find("\r\n\r\n").expect("a head") + 4;
    assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
    assert!(text.contains("Content-Length: 1000"), "{text}");
    assert_eq!(all.len() - head_end, 100, "short body, then EOF");
    p.wait_for_log("\" 502 ", 1);
}

#[test]
fn garbage_or_oversized_response_heads_are_502() {
    let garbage = Bad::start(|mut s| {
        if read_head(&mut s).is_some() {
            let _ = s.write_all(b"SSH-2.0-OpenSSH_9.6\r\n\r\n");
        }
    });
    let huge = Bad::start(|mut s| {
        if read_head(&mut s).is_some() {
            let big = format!(
                "HTTP/1.1 200 OK\r\nX-Big: {}\r\n\r\n",
                "b".repeat(100 * 1024)
            );
            let _ = s.write_all(big.as_bytes());
        }
    });
    for (bad, what) in [(garbage, "garbage"), (huge, "oversized head")] {
        let p = Pibl::start(&[bad.addr], "");
        let r = get(p.addr, "/x");
        assert_eq!(r.status, 502, "{what}: {}", r.text());
    }
}

/// Resets every connection while `broken`, else answers 200 and closes.
fn switchable(broken: Arc<AtomicBool>, hits: Arc<AtomicUsize>) -> Bad {
    Bad::start(move |mut s| {
        let Some(head) = read_head(&mut s) else {
            return;
        };
        if broken.load(Ordering::SeqCst) {
            return reset(s);
        }
        if !head.starts_with("GET /health ") {
            hits.fetch_add(1, Ordering::SeqCst);
        }
        let _ = s.write_all(
            b"HTTP/1.1 200 OK\r\nX-Backend: flaky\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n",
        );
    })
}

#[test]
fn failing_backend_is_marked_down_skipped_and_comes_back_after_fail_timeout() {
    let broken = Arc::new(AtomicBool::new(true));
    let hits = Arc::new(AtomicUsize::new(0));
    let flaky = switchable(broken.clone(), hits.clone());
    let good = Backend::start("good");
    let p = Pibl::start(
        &[flaky.addr, good.addr],
        "max_fails 2\nfail_timeout 2s\nupstream_pool_size 0\n",
    );
    let mut c = Conn::open(p.addr);
    for i in 0..20 {
        let r = c.get(&format!("/d/{i}"));
        assert_eq!(
            (r.status, r.header("X-Backend")),
            (200, Some("good")),
            "{i}"
        );
    }
    // Two failures marked it down; the rest of the rotation skipped it.
    assert_eq!(flaky.accepted(), 2);
    assert!(p.wait_for_line(
        &format!("backend {} is down", flaky.addr),
        Duration::from_secs(5)
    ));
    broken.store(false, Ordering::SeqCst);
    // After fail_timeout it is tried again and, answering, is up again.
    let until = Instant::now() + Duration::from_secs(10);
    while hits.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < until, "never tried again");
        assert_eq!(c.get("/back").status, 200);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(p.wait_for_line(
        &format!("backend {} is up again", flaky.addr),
        Duration::from_secs(5)
    ));
    let before = hits.load(Ordering::SeqCst);
    for _ in 0..10 {
        assert_eq!(c.get("/rr").status, 200);
    }
    assert_eq!(
        hits.load(Ordering::SeqCst) - before,
        5,
        "exact rotation again"
    );
    let down_lines = p.log_file().matches("is down").count();
    assert_eq!(down_lines, 1, "each change logged once");
}

#[test]
fn health_check_takes_a_backend_out_and_brings_it_back() {
    let broken = Arc::new(AtomicBool::new(false));
    let hits = Arc::new(AtomicUsize::new(0));
    let flaky = switchable(broken.clone(), hits.clone());
    let good = Backend::start("good");
    // Passive marking off: only the probes decide.
    let p = Pibl::start(
        &[flaky.addr, good.addr],
        "max_fails 0\nhealth_check /health 200ms\n",
    );
    broken.store(true, Ordering::SeqCst);
    assert!(p.wait_for_line(
        &format!("backend {} is down", flaky.addr),
        Duration::from_secs(5)
    ));
    let mut c = Conn::open(p.addr);
    for i in 0..10 {
        let r = c.get(&format!("/h/{i}"));
        assert_eq!(
            (r.status, r.header("X-Backend")),
            (200, Some("good")),
            "{i}"
        );
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0);
    broken.store(false, Ordering::SeqCst);
    assert!(p.wait_for_line(
        &format!("backend {} is up again", flaky.addr),
        Duration::from_secs(5)
    ));
    for _ in 0..10 {
        assert_eq!(c.get("/back").status, 200);
    }
    assert_eq!(hits.load(Ordering::SeqCst), 5);
    assert!(good.seen().iter().any(|s| s.target == "/health"));
}

#[test]
fn killed_backend_restarted_on_its_port_rejoins() {
    let a = Backend::start("a");
    let b = Backend::start("b");
    let b_addr = b.addr;
    let p = Pibl::start(&[a.addr, b_addr], "max_fails 1\nfail_timeout 1s\n");
    b.kill();
    for _ in 0..10 {
        assert_eq!(get(p.addr, "/while-down").header("X-Backend"), Some("a"));
    }
    let b2 = Backend::start_at("b", b_addr);
    let until = Instant::now() + Duration::from_secs(10);
    while b2.count() == 0 {
        assert!(Instant::now() < until, "b never rejoined");
        assert_eq!(get(p.addr, "/later").status, 200);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(p.wait_for_line("is up again", Duration::from_secs(5)));
}

#[test]
fn max_retries_bounds_the_backends_tried() {
    let dead: Vec<Backend> = (0..4).map(|i| Backend::start(&format!("d{i}"))).collect();
    for d in &dead {
        d.kill();
    }
    let addrs: Vec<SocketAddr> = dead.iter().map(|d| d.addr).collect();
    let p = Pibl::start(&addrs, "workers 1\nmax_retries 1\nmax_fails 0\n");
    assert_eq!(get(p.addr, "/x").status, 502);
    // One try and one retry: exactly two connect failures logged.
    let until = Instant::now() + Duration::from_secs(5);
    let count = |p: &Pibl| {
        let log = p.log_file();
        log.matches("refused or failed the connection").count()
            + log.matches("cannot connect to backend").count()
    };
    while count(&p) < 2 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(count(&p), 2, "{}", p.log_file());
}
