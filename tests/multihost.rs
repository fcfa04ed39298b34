//! pibl and three pibl-origin servers on separate hosts: each program runs in its own network
//! namespace, the namespaces joined by veth pairs, like the EC2 deployment in `docs/deploy.md`
//! (one client, one proxy, three web servers).
//!
//! ```text
//!  client 10.203.100.2 ──── 10.203.100.1 proxy 10.203.1.1 ──── 10.203.1.2 o1   (pibl-origin o1)
//!                                         10.203.2.1 ──── 10.203.2.2 o2   (pibl-origin o2)
//!                                         10.203.3.1 ──── 10.203.3.2 o3   (pibl-origin o3)
//! ```
//!
//! Needs root and iproute2 (`ip netns`); otherwise it says so on stderr and passes. Namespaces are
//! named `pibl-t<pid>-<scenario>-<host>`, so concurrent runs do not clash, and a guard removes them (and
//! stops every process) even when the test panics. The addresses exist only inside the
//! namespaces.
//!
//! The client cannot run in-process (a thread of the test harness must not change namespace), so
//! it is this test binary run again inside the client namespace: `netns_client` below does nothing
//! unless `PIBL_MULTIHOST_CLIENT` is set.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::TempDir;

const CLIENT_ENV: &str = "PIBL_MULTIHOST_CLIENT";
const PROXY_ADDR: &str = "10.203.100.1:8080";
const ORIGINS: [&str; 3] = ["o1", "o2", "o3"];

fn origin_ip(i: usize) -> String {
    format!("10.203.{}.2", i + 1)
}

// ---- the lab: namespaces, links, processes ------------------------------------------------------

/// Runs `ip ARGS`, returning stderr on failure.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn must(args: &[&str]) {
    if let Err(e) = ip(args) {
        panic!("{e}");
    }
}

/// Removes namespaces left by earlier runs that were killed before their guard ran (their pid is
/// gone). Only names of the form `pibl-t<pid>-*` are touched.
fn remove_stale_namespaces() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix("pibl-t") else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

/// Network namespaces and the processes in them; dropping it stops the processes and deletes the
/// namespaces (which deletes the veth pairs with them).
struct Lab {
    prefix: String,
    namespaces: Vec<String>,
    children: Vec<Child>,
}

impl Lab {
    fn new(tag: &str) -> Lab {
        Lab {
            prefix: format!("pibl-t{}-{tag}", std::process::id()),
            namespaces: Vec::new(),
            children: Vec::new(),
        }
    }

    fn ns(&self, host: &str) -> String {
        format!("{}-{host}", self.prefix)
    }

    /// A new host: a namespace with its loopback up.
    fn add_host(&mut self, host: &str) -> Result<(), String> {
        let ns = self.ns(host);
        ip(&["netns", "add", &ns])?;
        self.namespaces.push(ns.clone());
        ip(&["-n", &ns, "link", "set", "lo", "up"])
    }

    /// A point-to-point link: `a_dev` with `a_addr` on host a, `b_dev` with `b_addr` on host b.
    fn link(&self, a: &str, a_dev: &str, a_addr: &str, b: &str, b_dev: &str, b_addr: &str) {
        let (na, nb) = (self.ns(a), self.ns(b));
        must(&[
            "-n", &na, "link", "add", a_dev, "type", "veth", "peer", "name", b_dev, "netns", &nb,
        ]);
        must(&["-n", &na, "addr", "add", a_addr, "dev", a_dev]);
        must(&["-n", &nb, "addr", "add", b_addr, "dev", b_dev]);
        must(&["-n", &na, "link", "set", a_dev, "up"]);
        must(&["-n", &nb, "link", "set", b_dev, "up"]);
    }

    fn set_link(&self, host: &str, dev: &str, up: bool) {
        let state = if up { "up" } else { "down" };
        must(&["-n", &self.ns(host), "link", "set", dev, state]);
    }

    /// Starts `program ARGS` on `host` and returns its stdout and stdin (the child is kept).
    fn spawn(
        &mut self,
        host: &str,
        program: &str,
        args: &[&str],
        cwd: &std::path::Path,
        env: &[(&str, &str)],
    ) -> (std::process::ChildStdout, ChildStdin) {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns(host), program])
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start {program}: {e}"));
        let out = child.stdout.take().unwrap();
        let inp = child.stdin.take().unwrap();
        self.children.push(child);
        (out, inp)
    }

    /// Starts a server that prints `... listening on ADDR` and waits for that line; the rest of
    /// its stdout is kept in the returned buffer.
    fn start_server(
        &mut self,
        host: &str,
        program: &str,
        args: &[&str],
        cwd: &std::path::Path,
    ) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
        let (out, _stdin) = self.spawn(host, program, args, cwd, &[]);
        let mut lines = BufReader::new(out).lines();
        let kept = Arc::new(Mutex::new(Vec::new()));
        let mut addr = None;
        for line in lines.by_ref() {
            let line = line.unwrap_or_default();
            kept.lock().unwrap().push(line.clone());
            if let Some(rest) = line.split("listening on ").nth(1) {
                addr = rest.split_whitespace().next().and_then(|a| a.parse().ok());
                break;
            }
        }
        let addr = addr.unwrap_or_else(|| {
            panic!(
                "{program} on {host} did not report its address; output: {:?}",
                kept.lock().unwrap()
            )
        });
        let sink = kept.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        (addr, kept)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in self.namespaces.drain(..).rev() {
            let _ = ip(&["netns", "del", &ns]);
        }
    }
}

// ---- the client, run inside the client namespace ------------------------------------------------

/// One request's outcome as the client helper reports it: `MH <status|ERR> <served-by> <ms>`.
#[derive(Debug, Clone)]
struct Outcome {
    status: Option<u16>,
    served_by: String,
    ms: u64,
    line: String,
}

fn parse_outcome(line: &str) -> Option<Outcome> {
    // libtest may have started a line ("test netns_client ... ") before the helper prints.
    let start = line.find("MH ")?;
    let mut f = line[start + 3..].split_whitespace();
    let status = f.next()?.parse().ok();
    let served_by = f.next()?.to_string();
    let ms = f.next()?.parse().ok()?;
    Some(Outcome {
        status,
        served_by,
        ms,
        line: line.to_string(),
    })
}

/// Keep-alive client connection; reconnects after a close.
struct Client {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

impl Client {
    fn get(&mut self, path: &str) -> Result<(u16, String), String> {
        if self.stream.is_none() {
            let s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))
                .map_err(|e| format!("connect: {e}"))?;
            s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
            s.set_nodelay(true).unwrap();
            self.stream = Some(s);
            self.buf.clear();
        }
        let s = self.stream.as_mut().unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: pibl\r\nUser-Agent: multihost\r\n\r\n");
        let result = Self::exchange(s, &mut self.buf, req.as_bytes());
        if !matches!(result, Ok((_, _, true))) {
            self.stream = None;
        }
        result.map(|(status, by, _)| (status, by))
    }

    /// Sends a request and reads the response (Content-Length bodies only, which is what
    /// pibl-origin and pibl's own responses use). Returns status, X-Served-By, keep-alive.
    fn exchange(
        s: &mut TcpStream,
        buf: &mut Vec<u8>,
        req: &[u8],
    ) -> Result<(u16, String, bool), String> {
        s.write_all(req).map_err(|e| format!("send: {e}"))?;
        let mut tmp = [0u8; 16384];
        loop {
            let mut hs = [httparse::EMPTY_HEADER; 64];
            let mut resp = httparse::Response::new(&mut hs);
            let parsed = resp.parse(buf).map_err(|e| format!("bad response: {e}"))?;
            if let httparse::Status::Complete(n) = parsed {
                let status = resp.code.unwrap_or(0);
                let get = |name: &str| {
                    resp.headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .map(|h| String::from_utf8_lossy(h.value).into_owned())
                };
                let by = get("x-served-by").unwrap_or_else(|| "-".into());
                let close = get("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
                let len: usize = get("content-length")
                    .and_then(|v| v.parse().ok())
                    .ok_or("response without Content-Length")?;
                while buf.len() < n + len {
                    match s.read(&mut tmp) {
                        Ok(0) => return Err("EOF in body".into()),
                        Ok(k) => buf.extend_from_slice(&tmp[..k]),
                        Err(e) => return Err(format!("read body: {e}")),
                    }
                }
                buf.drain(..n + len);
                return Ok((status, by, !close));
            }
            match s.read(&mut tmp) {
                Ok(0) => return Err("EOF before the response head".into()),
                Ok(k) => buf.extend_from_slice(&tmp[..k]),
                Err(e) => return Err(format!("read head: {e}")),
            }
        }
    }
}

/// Not a test by itself: the client half of `requests_survive_a_dead_origin_host`, which runs
/// this binary again inside the client namespace with `PIBL_MULTIHOST_CLIENT=ADDR`. It reads a
/// count per stdin line, makes that many `GET /api/info` requests and prints one line each
/// (`MH <status|ERR> <X-Served-By> <ms>`), then `MH-DONE`. Without the variable it returns.
#[test]
fn netns_client() {
    let Ok(addr) = std::env::var(CLIENT_ENV) else {
        return;
    };
    let mut client = Client {
        addr: addr.parse().expect("client address"),
        stream: None,
        buf: Vec::new(),
    };
    let stdout = std::io::stdout();
    for line in std::io::stdin().lock().lines() {
        let Ok(n) = line.unwrap_or_default().trim().parse::<usize>() else {
            break;
        };
        for _ in 0..n {
            let t = Instant::now();
            let r = client.get("/api/info");
            let ms = t.elapsed().as_millis();
            let mut out = stdout.lock();
            let _ = match r {
                Ok((status, by)) => writeln!(out, "MH {status} {by} {ms}"),
                Err(e) => writeln!(out, "MH ERR - {ms} {e}"),
            };
        }
        let _ = writeln!(stdout.lock(), "MH-DONE");
    }
}

/// The test's handle on the client helper.
struct Driver {
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl Driver {
    fn request(&mut self, n: usize) {
        writeln!(self.stdin, "{n}").expect("write to the client helper");
    }

    /// The next outcome, or `None` at `MH-DONE`.
    fn next(&self) -> Option<Outcome> {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(20)) {
                Ok(l) if l.contains("MH-DONE") => return None,
                Ok(l) => {
                    if let Some(o) = parse_outcome(&l) {
                        return Some(o);
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!("the client helper went silent"),
                Err(RecvTimeoutError::Disconnected) => panic!("the client helper exited"),
            }
        }
    }

    fn run(&mut self, n: usize) -> Vec<Outcome> {
        self.request(n);
        std::iter::from_fn(|| self.next()).collect()
    }
}

// ---- the test -----------------------------------------------------------------------------------

fn skip_reason() -> Option<String> {
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root".into());
    }
    match Command::new("ip")
        .args(["netns", "list"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => None,
        Ok(s) => Some(format!("`ip netns list` failed ({s})")),
        Err(e) => Some(format!("cannot run `ip`: {e}")),
    }
}

/// Fresh upstream connections (`upstream_pool_size 0`): o2's link goes down between two batches
/// of requests on the client's keep-alive connection. Each request that meets o2 waits for
/// `connect_timeout` and goes to the next host; the client sees only 200s.
#[test]
fn requests_survive_a_dead_origin_host() {
    scenario("fresh", "upstream_pool_size 0\n", false);
}

/// The same with pibl's default upstream keep-alive, the link cut while requests are running.
///
/// Ignored because pibl fails it today: the request that goes to o2 on a pooled keep-alive
/// connection (or is in flight when the link dies) has already been written, so no connect
/// fails; pibl waits `upstream_timeout` for the response head and answers `504`, without trying
/// another backend although the request is idempotent and nothing was relayed. Run it with
/// `cargo test --test multihost -- --ignored` once that is fixed.
#[test]
#[ignore = "pibl answers 504 after upstream_timeout for a request sent on a connection to a host that died"]
fn pooled_requests_survive_a_dead_origin_host() {
    scenario("pool", "", true);
}

/// pibl with `extra` config lines; o2's link goes down mid-loop (`mid_loop`) or between batches.
fn scenario(tag: &str, extra: &str, mid_loop: bool) {
    if std::env::var(CLIENT_ENV).is_ok() {
        return;
    }
    if let Some(why) = skip_reason() {
        eprintln!("multihost: skipped: needs root and iproute2 (ip netns): {why}");
        return;
    }
    remove_stale_namespaces();
    let started = Instant::now();
    let mut lab = Lab::new(tag);
    if let Err(e) = lab.add_host("proxy") {
        eprintln!("multihost: skipped: needs root and iproute2 (ip netns): {e}");
        return;
    }
    for host in ["client", "o1", "o2", "o3"] {
        lab.add_host(host).unwrap_or_else(|e| panic!("{e}"));
    }
    lab.link(
        "client",
        "eth0",
        "10.203.100.2/30",
        "proxy",
        "cl0",
        "10.203.100.1/30",
    );
    for (i, o) in ORIGINS.iter().enumerate() {
        let n = i + 1;
        lab.link(
            "proxy",
            &format!("o{n}"),
            &format!("10.203.{n}.1/30"),
            o,
            "eth0",
            &format!("10.203.{n}.2/30"),
        );
    }

    // Three web servers, one per host.
    let tmp = TempDir::new("multihost");
    for (i, o) in ORIGINS.iter().enumerate() {
        let listen = format!("{}:8081", origin_ip(i));
        let (addr, _) = lab.start_server(
            o,
            env!("CARGO_BIN_EXE_pibl-origin"),
            &["--listen", &listen, "--name", o],
            tmp.path(),
        );
        assert_eq!(addr.to_string(), listen);
    }

    // The proxy, on its own host, with the origins' addresses as backends.
    let mut conf = format!(
        "listen {PROXY_ADDR}\nworkers 2\nconnect_timeout 300ms\nupstream_timeout 5s\nfail_timeout 1s\n\
         log_file {}\n{extra}",
        tmp.path().join("pibl.log").display()
    );
    for i in 0..ORIGINS.len() {
        conf.push_str(&format!("backend {}:8081\n", origin_ip(i)));
    }
    let conf_path = tmp.path().join("pibl.conf");
    std::fs::write(&conf_path, &conf).unwrap();
    let (addr, pibl_out) = lab.start_server(
        "proxy",
        env!("CARGO_BIN_EXE_pibl"),
        &["-c", conf_path.to_str().unwrap()],
        tmp.path(),
    );
    assert_eq!(addr.to_string(), PROXY_ADDR);

    // pibl-client from the client host, as docs/deploy.md verifies a deployment.
    let out = Command::new("ip")
        .args(["netns", "exec", &lab.ns("client")])
        .arg(env!("CARGO_BIN_EXE_pibl-client"))
        .args(["--no-cache", "-i", "--timeout", "10"])
        .arg(tmp.path().join("client.log"))
        .arg(format!("http://{PROXY_ADDR}/health"))
        .output()
        .expect("run pibl-client");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.starts_with("HTTP/1.1 200") && text.contains("X-Served-By"),
        "pibl-client through pibl: {:?} {text} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );

    // The client helper, on the client host.
    let exe = std::env::current_exe().unwrap();
    let (out, stdin) = lab.spawn(
        "client",
        exe.to_str().unwrap(),
        &["--exact", "netns_client", "--nocapture", "--test-threads=1"],
        tmp.path(),
        &[(CLIENT_ENV, PROXY_ADDR)],
    );
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        // Read to the end even after the driver is gone, so the helper's last lines (libtest's
        // summary) never meet a closed pipe.
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut client = Driver { stdin, lines: rx };

    // Round robin across the three hosts, in turn.
    let rr = client.run(9);
    let names: Vec<&str> = rr.iter().map(|o| o.served_by.as_str()).collect();
    assert!(
        rr.iter().all(|o| o.status == Some(200)),
        "round robin: {rr:?}"
    );
    for o in ORIGINS {
        assert_eq!(
            names.iter().filter(|n| **n == o).count(),
            3,
            "each origin serves a third: {names:?}"
        );
    }
    assert!(
        names
            .windows(3)
            .all(|w| w[0] != w[1] && w[1] != w[2] && w[0] != w[2]),
        "strict rotation: {names:?}"
    );

    // o2's link goes down; every request must still succeed.
    let mut during = if mid_loop {
        client.request(60);
        (0..12).map(|_| client.next().expect("outcome")).collect()
    } else {
        client.run(12)
    };
    lab.set_link("o2", "eth0", false);
    let down_at = during.len();
    if mid_loop {
        during.extend(std::iter::from_fn(|| client.next()));
    } else {
        during.extend(client.run(48));
    }
    let failed: Vec<&Outcome> = during.iter().filter(|o| o.status != Some(200)).collect();
    let log = std::fs::read_to_string(tmp.path().join("pibl.log")).unwrap_or_default();
    let report = || {
        format!(
            "o2 went down after request {down_at}; outcomes:\n{}\npibl log, all but the 200 lines:\n{}\npibl stdout \
             lines: {}",
            during
                .iter()
                .map(|o| o.line.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
            log.lines()
                .filter(|l| l.contains('[') || !l.contains("\" 200 "))
                .take(40)
                .collect::<Vec<_>>()
                .join("\n"),
            pibl_out.lock().unwrap().len()
        )
    };
    assert!(
        failed.is_empty(),
        "{} of {} requests failed with o2's link down\n{}",
        failed.len(),
        during.len(),
        report()
    );
    // Once o2's failure is seen, the other two serve everything.
    let after: Vec<&str> = during[down_at + 3..]
        .iter()
        .map(|o| o.served_by.as_str())
        .collect();
    assert!(
        !after.contains(&"o2") && after.contains(&"o1") && after.contains(&"o3"),
        "after o2 went down: {after:?}\n{}",
        report()
    );
    // A request that met the dead host waited for connect_timeout, then went elsewhere.
    let slowest = during.iter().map(|o| o.ms).max().unwrap_or(0);
    assert!(slowest < 2500, "slowest request {slowest} ms\n{}", report());
    assert!(
        log.contains("did not accept a connection within"),
        "pibl should log the connect timeouts\n{}",
        report()
    );

    // The link comes back: once its fail_timeout (1 s) has passed, o2 is in the rotation again.
    lab.set_link("o2", "eth0", true);
    std::thread::sleep(Duration::from_millis(1300));
    let back = client.run(9);
    assert!(back.iter().all(|o| o.status == Some(200)), "{back:?}");
    assert!(
        back.iter().any(|o| o.served_by == "o2"),
        "o2 back in the rotation: {back:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}
