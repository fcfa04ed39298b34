//! Test support: loopback backends that record what reaches them, the real `pibl` binary run
//! against them, and a small raw HTTP client.
#![allow(dead_code)]

/// A test origin behind TLS (rustls over blocking sockets, a generated CA).
pub mod chromium;
pub mod tls_listener;
pub mod tls_origin;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A request as a backend received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body_len: usize,
    pub body_crc: u32,
    pub peer: SocketAddr,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn header_count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count()
    }
}

/// Deterministic body bytes for `/big?n=`.
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

/// A keep-alive HTTP/1.1 test backend on 127.0.0.1:0, one thread per connection.
///
/// Paths: `/echo` answers the request body; `/big?n=N` N pattern bytes; `/chunked` a chunked
/// body; `/trailers` a cacheable, compressible chunked body with a trailer (`X-Checksum: 42`,
/// announced by `Trailer`); `/early-hints` a `103 Early Hints` with a `Link`, then a 200;
/// `/close` a close-delimited body; `/upgrade` answers 101 then echoes raw bytes;
/// `/slow-head` never answers; `/slow?head_ms=H&body_ms=B&n=N` waits H ms, sends the head, waits
/// B ms, then sends N pattern bytes (a request that is in flight for a while); `/continue` sends `100 Continue` before reading the body, then
/// echoes it; anything else a short text naming the backend.
pub struct Backend {
    pub name: String,
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    pub accepted: Arc<AtomicUsize>,
    /// Connections currently open.
    open: Arc<AtomicUsize>,
    /// Close each connection, without answering, when its Nth request arrives (0 = never).
    pub drop_nth_request: Arc<AtomicUsize>,
}

impl Backend {
    pub fn start(name: &str) -> Backend {
        Backend::start_at(name, "127.0.0.1:0".parse().unwrap())
    }

    /// Starts on a given address: the same port again after `kill`, for "comes back" tests.
    pub fn start_at(name: &str, addr: SocketAddr) -> Backend {
        let until = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match TcpListener::bind(addr) {
                Ok(l) => break l,
                Err(e) if Instant::now() > until => panic!("bind test backend {addr}: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        let addr = listener.local_addr().unwrap();
        let b = Backend {
            name: name.to_string(),
            addr,
            seen: Arc::default(),
            stop: Arc::default(),
            conns: Arc::default(),
            accepted: Arc::default(),
            open: Arc::default(),
            drop_nth_request: Arc::default(),
        };
        let open = b.open.clone();
        let (name, seen, stop, conns, accepted, drop_nth) = (
            b.name.clone(),
            b.seen.clone(),
            b.stop.clone(),
            b.conns.clone(),
            b.accepted.clone(),
            b.drop_nth_request.clone(),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                accepted.fetch_add(1, Ordering::SeqCst);
                if let Ok(c) = stream.try_clone() {
                    conns.lock().unwrap().push(c);
                }
                let (name, seen, drop_nth) = (name.clone(), seen.clone(), drop_nth.clone());
                let open = open.clone();
                open.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    serve(stream, &name, &seen, &drop_nth);
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        b
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Connections open right now (the peer has not closed them).
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// Stops listening and cuts every open connection: the backend is gone.
    pub fn kill(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
        // Wait until the port refuses connections.
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            match TcpStream::connect(self.addr) {
                Err(_) => return,
                Ok(s) => {
                    drop(s);
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(stream: TcpStream, name: &str, seen: &Mutex<Vec<Seen>>, drop_nth: &AtomicUsize) {
    let _ = stream.set_nodelay(true);
    let closer = stream.try_clone().unwrap();
    serve_requests(stream, name, seen, drop_nth);
    // Other clones of the socket (kept for kill()) must not hold the connection open.
    let _ = closer.shutdown(Shutdown::Both);
}

fn serve_requests(stream: TcpStream, name: &str, seen: &Mutex<Vec<Seen>>, drop_nth: &AtomicUsize) {
    let peer = stream.peer_addr().unwrap();
    let mut out = stream.try_clone().unwrap();
    let mut r = BufReader::with_capacity(64 * 1024, stream);
    let mut nth = 0;
    loop {
        let Some((method, target, headers)) = read_head(&mut r) else {
            return;
        };
        nth += 1;
        if target.starts_with("/continue")
            && out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_err()
        {
            return;
        }
        let n = drop_nth.load(Ordering::SeqCst);
        if n != 0 && nth == n {
            return;
        }
        let get = |h: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(h))
                .map(|(_, v)| v.clone())
        };
        let body = if get("transfer-encoding").is_some() {
            read_chunked(&mut r)
        } else {
            let n: usize = get("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let mut b = vec![0; n];
            if r.read_exact(&mut b).is_err() {
                return;
            }
            b
        };
        seen.lock().unwrap().push(Seen {
            method: method.clone(),
            target: target.clone(),
            headers: headers.clone(),
            body_len: body.len(),
            body_crc: crc32fast::hash(&body),
            peer,
        });
        let head_only = method == "HEAD";
        let path = target.split('?').next().unwrap_or("");
        let query: HashMap<&str, &str> = target
            .split_once('?')
            .map(|(_, q)| q.split('&').filter_map(|kv| kv.split_once('=')).collect())
            .unwrap_or_default();
        let result = match path {
            "/echo" | "/continue" => {
                respond(&mut out, name, "application/octet-stream", &body, head_only)
            }
            "/big" => {
                let n = query.get("n").and_then(|v| v.parse().ok()).unwrap_or(0);
                respond(
                    &mut out,
                    name,
                    "application/octet-stream",
                    &pattern(n),
                    head_only,
                )
            }
            "/chunked" => {
                let mut s = format!(
                    "HTTP/1.1 200 OK\r\nX-Backend: {name}\r\nTransfer-Encoding: chunked\r\n\r\n"
                );
                for part in ["hello ", "chunked ", "world"] {
                    s.push_str(&format!("{:x}\r\n{part}\r\n", part.len()));
                }
                s.push_str("0\r\n\r\n");
                out.write_all(s.as_bytes())
            }
            "/early-hints" => out.write_all(
                format!(
                    "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n\
                     HTTP/1.1 200 OK\r\nX-Backend: {name}\r\nContent-Length: 5\r\n\r\nfinal"
                )
                .as_bytes(),
            ),
            "/trailers" => out.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nX-Backend: {name}\r\nContent-Type: text/html\r\n\
                     Cache-Control: max-age=60\r\nTrailer: X-Checksum\r\n\
                     Transfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n8\r\ntrailers\r\n\
                     0\r\nX-Checksum: 42\r\n\r\n"
                )
                .as_bytes(),
            ),
            "/close" => {
                let _ = out.write_all(
                    format!("HTTP/1.1 200 OK\r\nX-Backend: {name}\r\nConnection: close\r\n\r\nuntil close from {name}").as_bytes(),
                );
                return;
            }
            "/upgrade" => {
                let _ = out.write_all(
                    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n",
                );
                // Raw echo from here on, starting with whatever was already buffered.
                let buffered = r.buffer().to_vec();
                let _ = out.write_all(&buffered);
                let mut inner = r.into_inner();
                let mut buf = [0; 4096];
                while let Ok(n) = inner.read(&mut buf) {
                    if n == 0 || out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                return;
            }
            "/res" => {
                // Response shaped by the query: status=N, h=Name:Value (repeatable).
                let mut status = 200;
                let mut extra = String::new();
                for (k, v) in target
                    .split_once('?')
                    .map(|(_, q)| {
                        q.split('&')
                            .filter_map(|kv| kv.split_once('='))
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default()
                {
                    match k {
                        "status" => status = v.parse().unwrap_or(200),
                        "h" => {
                            extra.push_str(&percent_decode(v));
                            extra.push_str("\r\n");
                        }
                        _ => {}
                    }
                }
                let ours = |n: &str| {
                    extra
                        .lines()
                        .filter_map(|l| l.split_once(':'))
                        .find(|(k, _)| k.trim().eq_ignore_ascii_case(n))
                        .map(|(_, v)| v.trim().to_string())
                };
                let validated = (get("if-none-match").is_some()
                    && get("if-none-match") == ours("etag"))
                    || (get("if-modified-since").is_some()
                        && get("if-modified-since") == ours("last-modified"));
                let n = seen.lock().unwrap().len();
                let msg = if validated {
                    format!("HTTP/1.1 304 Not Modified\r\nX-Backend: {name}\r\n{extra}\r\n")
                        .into_bytes()
                } else {
                    let body = format!("backend {name}: {method} {target} #{n}\n");
                    let mut m = format!(
                        "HTTP/1.1 {status} Whatever\r\nX-Backend: {name}\r\n{extra}Content-Length: {}\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    if !head_only {
                        m.extend_from_slice(body.as_bytes());
                    }
                    m
                };
                out.write_all(&msg)
            }
            "/slow" => {
                let num =
                    |k: &str| -> u64 { query.get(k).and_then(|v| v.parse().ok()).unwrap_or(0) };
                let body = pattern(num("n") as usize);
                std::thread::sleep(Duration::from_millis(num("head_ms")));
                let head = format!(
                    "HTTP/1.1 200 OK\r\nX-Backend: {name}\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                if out.write_all(head.as_bytes()).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(num("body_ms")));
                out.write_all(&body)
            }
            "/slow-head" => {
                std::thread::sleep(Duration::from_secs(30));
                return;
            }
            _ => {
                let text = format!("backend {name}: {method} {target}\n");
                respond(&mut out, name, "text/plain", text.as_bytes(), head_only)
            }
        };
        if result.is_err() {
            return;
        }
    }
}

fn respond(
    out: &mut TcpStream,
    name: &str,
    ctype: &str,
    body: &[u8],
    head_only: bool,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 200 OK\r\nX-Backend: {name}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut msg = head.into_bytes();
    if !head_only {
        msg.extend_from_slice(body);
    }
    out.write_all(&msg)
}

/// `%XX` and `+` decoding for test query values.
pub fn percent_decode(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

type Head = (String, String, Vec<(String, String)>);

fn read_head<R: BufRead>(r: &mut R) -> Option<Head> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut l = String::new();
        if r.read_line(&mut l).ok()? == 0 {
            return None;
        }
        let l = l.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':')?;
        headers.push((k.to_string(), v.trim().to_string()));
    }
    Some((method, target, headers))
}

fn read_chunked<R: BufRead>(r: &mut R) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return body;
        }
        let size =
            usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16).unwrap_or(0);
        if size == 0 {
            // Trailers until the empty line.
            loop {
                let mut t = String::new();
                if r.read_line(&mut t).unwrap_or(0) == 0 || t.trim().is_empty() {
                    return body;
                }
            }
        }
        let mut chunk = vec![0; size + 2];
        if r.read_exact(&mut chunk).is_err() {
            return body;
        }
        body.extend_from_slice(&chunk[..size]);
    }
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "pibl-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Hands the directory over: the returned value owns (and will remove) it.
    pub fn take(&mut self) -> TempDir {
        TempDir(std::mem::take(&mut self.0))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.0.as_os_str().is_empty() {
            return;
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The real `pibl` binary, started on an ephemeral port in a temp directory.
pub struct Pibl {
    child: Child,
    pub addr: SocketAddr,
    pub dir: TempDir,
    pub stdout: Arc<Mutex<Vec<String>>>,
    /// With [`Pibl::start_stdout_unread`]: stdout's pipe, held open and never read.
    _unread_stdout: Option<std::io::Lines<BufReader<std::process::ChildStdout>>>,
}

impl Pibl {
    /// Starts pibl with `listen 127.0.0.1:0`, the given backends and extra config lines.
    pub fn start(backends: &[SocketAddr], extra: &str) -> Pibl {
        Pibl::spawn(Pibl::conf_dir(backends, extra), &["-c", "pibl.conf"], true)
    }

    /// Like [`Pibl::start`], but once pibl has said where it listens nothing reads its stdout
    /// again: the pipe fills up, as under a supervisor or a script that never drains it.
    pub fn start_stdout_unread(backends: &[SocketAddr], extra: &str) -> Pibl {
        Pibl::spawn(Pibl::conf_dir(backends, extra), &["-c", "pibl.conf"], false)
    }

    /// Like [`Pibl::start`], with the soft open-files limit set to `soft` for pibl, as a
    /// shell's `ulimit -Sn` would (the hard limit is left as it is).
    pub fn start_with_soft_fd_limit(backends: &[SocketAddr], extra: &str, soft: u64) -> Pibl {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pibl"));
        // SAFETY: between fork and exec, only setrlimit (async-signal-safe) runs.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(move || {
                let mut r = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 {
                    r.rlim_cur = soft as libc::rlim_t;
                    libc::setrlimit(libc::RLIMIT_NOFILE, &r);
                }
                Ok(())
            });
        }
        Pibl::spawn_command(
            cmd,
            Pibl::conf_dir(backends, extra),
            &["-c", "pibl.conf"],
            true,
        )
    }

    /// A temp dir holding `pibl.conf` for these backends.
    fn conf_dir(backends: &[SocketAddr], extra: &str) -> TempDir {
        let dir = TempDir::new("proxy");
        // A directive may be given once: `extra` may set its own `workers`.
        let mut conf = String::from("listen 127.0.0.1:0\n");
        if !extra
            .lines()
            .any(|l| l.trim_start().starts_with("workers "))
        {
            conf.push_str("workers 2\n");
        }
        for b in backends {
            conf.push_str(&format!("backend {b}\n"));
        }
        conf.push_str(extra);
        std::fs::write(dir.path().join("pibl.conf"), conf).unwrap();
        dir
    }

    pub fn start_in(dir: TempDir, args: &[&str]) -> Pibl {
        Pibl::spawn(dir, args, true)
    }

    fn spawn(dir: TempDir, args: &[&str], read_stdout: bool) -> Pibl {
        let cmd = Command::new(env!("CARGO_BIN_EXE_pibl"));
        Pibl::spawn_command(cmd, dir, args, read_stdout)
    }

    fn spawn_command(mut cmd: Command, dir: TempDir, args: &[&str], read_stdout: bool) -> Pibl {
        let mut child = cmd
            .args(args)
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start pibl");
        let out = child.stdout.take().unwrap();
        let mut lines = BufReader::new(out).lines();
        let mut addr = None;
        let stdout = Arc::new(Mutex::new(Vec::new()));
        for line in lines.by_ref() {
            let line = line.unwrap();
            stdout.lock().unwrap().push(line.clone());
            if let Some(rest) = line.split("listening on ").nth(1) {
                addr = rest.split_whitespace().next().and_then(|a| a.parse().ok());
                break;
            }
        }
        let addr = addr.expect("pibl did not report its listening address");
        let mut unread = None;
        if read_stdout {
            let sink = stdout.clone();
            std::thread::spawn(move || {
                for line in lines.map_while(Result::ok) {
                    sink.lock().unwrap().push(line);
                }
            });
        } else {
            unread = Some(lines);
        }
        Pibl {
            child,
            addr,
            dir,
            stdout,
            _unread_stdout: unread,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (`libc::SIGHUP`, ...) without waiting.
    pub fn signal(&self, sig: i32) {
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    /// Waits (bounded) for the process to exit; its exit code, `None` if it is still running
    /// or was killed by a signal.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let until = Instant::now() + within;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status.code(),
                Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(10)),
                _ => return None,
            }
        }
    }

    /// The config file it was started with (by `Pibl::start`), to rewrite before a SIGHUP.
    pub fn conf_path(&self) -> PathBuf {
        self.dir.path().join("pibl.conf")
    }

    /// Waits (bounded, 10 s) until stdout has `n` lines containing `needle`; whether it did.
    pub fn wait_for_stdout(&self, needle: &str, n: usize) -> bool {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let seen = self
                .stdout
                .lock()
                .unwrap()
                .iter()
                .filter(|l| l.contains(needle))
                .count();
            if seen >= n {
                return true;
            }
            if Instant::now() > until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (bounded) until stdout or the log file has a line containing `needle`.
    pub fn wait_for_line(&self, needle: &str, within: Duration) -> bool {
        let until = Instant::now() + within;
        loop {
            if self
                .stdout
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains(needle))
                || self.log_file().contains(needle)
            {
                return true;
            }
            if Instant::now() > until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The admin listener's address, from the `admin listening on ADDR` start-up line (the
    /// real port when the config said `admin 127.0.0.1:0`). Panics when it is not configured.
    pub fn admin_addr(&self) -> SocketAddr {
        let needle = "admin listening on ";
        assert!(
            self.wait_for_line(needle, Duration::from_secs(10)),
            "pibl did not report an admin address"
        );
        let lines = self.stdout.lock().unwrap().clone();
        lines
            .iter()
            .chain(
                self.log_file()
                    .lines()
                    .map(String::from)
                    .collect::<Vec<_>>()
                    .iter(),
            )
            .find_map(|l| l.split(needle).nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|a| a.parse().ok())
            .expect("admin address in the start-up line")
    }

    pub fn log_file(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pibl.log")).unwrap_or_default()
    }

    /// Waits (bounded) until the log file has `n` access lines matching `needle`.
    pub fn wait_for_log(&self, needle: &str, n: usize) -> Vec<String> {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let lines: Vec<String> = self
                .log_file()
                .lines()
                .filter(|l| l.contains(needle))
                .map(String::from)
                .collect();
            if lines.len() >= n || Instant::now() > until {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL (no chance to clean up), then hands over the working directory for a restart.
    pub fn kill9(mut self) -> TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.dir.take()
    }

    /// SIGTERM, then waits; returns the exit code.
    pub fn stop(&mut self) -> Option<i32> {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        self.child.wait().ok().and_then(|s| s.code())
    }
}

impl Drop for Pibl {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A client connection with a read buffer, for keep-alive and pipelining.
pub struct Conn {
    pub stream: TcpStream,
    pub buf: Vec<u8>,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect to pibl");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, raw: &[u8]) {
        self.stream.write_all(raw).expect("send request");
    }

    /// Sends `GET path` with keep-alive and reads the response.
    pub fn get(&mut self, path: &str) -> Response {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes());
        self.read_response(false).expect("response")
    }

    fn fill(&mut self) -> bool {
        let mut tmp = [0u8; 65536];
        match self.stream.read(&mut tmp) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                true
            }
        }
    }

    /// Reads one response; `head_request` means no body whatever the headers say.
    pub fn read_response(&mut self, head_request: bool) -> Option<Response> {
        loop {
            let mut hs = [httparse::EMPTY_HEADER; 64];
            let mut resp = httparse::Response::new(&mut hs);
            if let Ok(httparse::Status::Complete(n)) = resp.parse(&self.buf) {
                let status = resp.code.unwrap();
                let headers: Vec<(String, String)> = resp
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_string(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                self.buf.drain(..n);
                let get = |k: &str| {
                    headers
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case(k))
                        .map(|(_, v)| v.clone())
                };
                let body = if head_request || status == 204 || status == 304 || status < 200 {
                    Vec::new()
                } else if get("transfer-encoding").is_some() {
                    loop {
                        if let Ok((body, used)) = pibl::http::chunked::decode_all(&self.buf) {
                            self.buf.drain(..used);
                            break body;
                        }
                        if !self.fill() {
                            return None;
                        }
                    }
                } else if let Some(n) = get("content-length").and_then(|v| v.parse::<usize>().ok())
                {
                    while self.buf.len() < n {
                        if !self.fill() {
                            return None;
                        }
                    }
                    self.buf.drain(..n).collect()
                } else {
                    while self.fill() {}
                    std::mem::take(&mut self.buf)
                };
                return Some(Response {
                    status,
                    headers,
                    body,
                });
            }
            if !self.fill() {
                return None;
            }
        }
    }

    /// True when the server closed the connection (EOF with nothing more to read).
    pub fn is_closed(&mut self) -> bool {
        self.buf.is_empty() && !self.fill()
    }
}

/// Raises this process's open-file limit to its hard limit (children inherit it); returns it.
pub fn raise_fd_limit() -> u64 {
    pibl::net::raise_fd_limit().map_or(1024, |l| l.now)
}

/// One request on a fresh connection.
pub fn get(addr: SocketAddr, path: &str) -> Response {
    Conn::open(addr).get(path)
}

/// Sends raw bytes on a fresh connection and reads everything until the server closes.
pub fn raw_exchange(addr: SocketAddr, raw: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(raw).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// A Python with the `h2` library (Debian's `python3-h2` is for the system Python, which may
/// not be the first `python3` on PATH, e.g. under pyenv); `None`, said as a skip, without one.
pub fn python_with_h2() -> Option<&'static str> {
    let found = ["python3", "/usr/bin/python3"].into_iter().find(|py| {
        Command::new(py)
            .args(["-c", "import h2, hpack"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if found.is_none() {
        eprintln!("skipped: no python3 with the h2 library (Debian: python3-h2)");
    }
    found
}

/// Whether `tool` is installed (it answers `--version`, `version` for openssl); when not, says
/// the calling test is skipped.
pub fn have(tool: &str) -> bool {
    let arg = if tool == "openssl" {
        "version"
    } else {
        "--version"
    };
    let ok = Command::new(tool)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: {tool} is not installed");
    }
    ok
}
