//! The admin listener (`admin ADDR:PORT`): `GET /status` (HTML, or JSON with `?json`),
//! `GET /metrics` (Prometheus), `PURGE /cache[/URL]` (also `DELETE`).
//!
//! It runs on its own thread, so nothing it does can stall a worker: a mio loop waits for
//! connections or the stop waker, and each connection is served to completion with blocking
//! I/O bounded by [`IO_TIMEOUT`] overall: a head of at most [`MAX_HEAD`] bytes, one request,
//! `Connection: close`. A slow admin client delays only other admin clients, for at most that
//! long. What it reads is atomics (`src/stats.rs`), the health state of the rotation, and the
//! cache index (a purge takes the index lock briefly; see `Cache::purge_all`).

pub mod charts;
pub mod metrics;
pub mod render;
pub mod series;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token, Waker};

use crate::cache::primary_key;
use crate::http::response::reason_phrase;
use crate::http::target::{split_absolute, Scheme};
use crate::net::{describe_bind_error, interrupted, would_block};
use crate::proxy::shared::Shared;
use crate::text::counted;
use render::Snapshot;
use series::{Range, Series};

/// Largest request head accepted: the admin API needs a request line and a few headers.
pub const MAX_HEAD: usize = 8 * 1024;
/// Longest a connection may take to send its head, and a write may block.
pub const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// After answering, how long unread input is drained so closing does not reset the response.
const LINGER: Duration = Duration::from_millis(500);

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);

/// The running admin thread.
pub struct Admin {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    thread: JoinHandle<()>,
}

/// Binds the admin address; called before any worker starts, so a bad address fails start-up.
/// With SO_REUSEPORT, like the proxy's listeners, so that during a handover (`pibl --upgrade`)
/// the new pibl can bind it while the old one drains; without `--upgrade` the start-up check
/// (`net::probe_bind`, in main) refuses an admin address already in use.
pub fn bind(addr: SocketAddr) -> Result<TcpListener, String> {
    crate::net::reuseport_listener(addr)
        .map(TcpListener::from)
        .map_err(|e| {
            let why = describe_bind_error(addr, &e).replace("'listen'", "'admin'");
            format!("admin: {why}")
        })
}

impl Admin {
    /// Starts serving `listener` on a thread of its own.
    pub fn start(listener: TcpListener, shared: Arc<Shared>) -> Result<Admin, String> {
        let addr = listener
            .local_addr()
            .map_err(|e| format!("admin: cannot read the listening address: {e}"))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("admin: {e}"))?;
        let mut listener = mio::net::TcpListener::from_std(listener);
        let poll = Poll::new().map_err(|e| format!("admin: cannot create an event loop: {e}"))?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(|e| format!("admin: cannot watch the listener: {e}"))?;
        let waker = Arc::new(
            Waker::new(poll.registry(), WAKER)
                .map_err(|e| format!("admin: cannot create a waker: {e}"))?,
        );
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("pibl-admin".into())
            .spawn(move || run(poll, listener, &shared, &flag))
            .map_err(|e| format!("admin: cannot start its thread: {e}"))?;
        Ok(Admin {
            addr,
            stop,
            waker,
            thread,
        })
    }

    /// The address it listens on (the real port when the config said port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and waits for the thread (at most one connection in progress).
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.waker.wake();
        let _ = self.thread.join();
    }
}

fn run(mut poll: Poll, listener: mio::net::TcpListener, shared: &Shared, stop: &AtomicBool) {
    let mut events = Events::with_capacity(16);
    let mut series = Series::new(shared.started);
    series.sample(shared, Instant::now());
    while !stop.load(Ordering::Relaxed) {
        // Wake at each new second to take its sample (`series.rs`), connections or not.
        let now = Instant::now();
        let wait = series.next_tick(now).saturating_duration_since(now);
        let polled = poll.poll(&mut events, Some(wait));
        series.sample(shared, Instant::now());
        if let Err(e) = polled {
            if interrupted(&e) {
                continue;
            }
            log::error!("admin listener stopped: {e}");
            return;
        }
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            match listener.accept() {
                Ok((stream, _)) => serve(TcpStream::from(stream), shared, &series),
                Err(e) if would_block(&e) => break,
                Err(e) if interrupted(&e) => {}
                Err(e) => {
                    // Out of descriptors and the like: the workers matter more; try again at
                    // the next connection.
                    log::warn!("admin: cannot accept a connection: {e}");
                    break;
                }
            }
        }
    }
}

/// One connection: read a head, answer, close.
fn serve(mut stream: TcpStream, shared: &Shared, series: &Series) {
    if stream.set_nonblocking(false).is_err() || stream.set_write_timeout(Some(IO_TIMEOUT)).is_err()
    {
        return;
    }
    let _ = stream.set_nodelay(true);
    let deadline = Instant::now() + IO_TIMEOUT;
    let reply = match read_head(&mut stream, deadline) {
        Ok(Some(head)) => handle(&head, shared, series),
        Ok(None) => return, // closed or timed out before sending anything
        Err(reply) => reply,
    };
    if stream.write_all(&reply).is_ok() {
        let _ = stream.flush();
        let _ = stream.shutdown(Shutdown::Write);
        drain(&mut stream);
    }
}

/// Reads until the end of a request head. `Ok(None)`: nothing arrived; `Err`: the response
/// for a head that is too large or too slow.
fn read_head(stream: &mut TcpStream, deadline: Instant) -> Result<Option<Vec<u8>>, Vec<u8>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = find_end(&buf) {
            if end <= MAX_HEAD {
                return Ok(Some(buf));
            }
        }
        if buf.len() >= MAX_HEAD {
            return Err(text(
                431,
                &format!("request head larger than {MAX_HEAD} bytes\n"),
            ));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return timed_out(buf);
        }
        match stream.read(&mut chunk) {
            Ok(0) if buf.is_empty() => return Ok(None),
            Ok(0) => return Err(text(400, "incomplete request head\n")),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return timed_out(buf);
            }
            Err(_) => return Ok(None),
        }
    }
}

fn timed_out(buf: Vec<u8>) -> Result<Option<Vec<u8>>, Vec<u8>> {
    if buf.is_empty() {
        Ok(None)
    } else {
        Err(text(408, "request head not received in time\n"))
    }
}

fn find_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

fn drain(stream: &mut TcpStream) {
    let until = Instant::now() + LINGER;
    let mut sink = [0u8; 4096];
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// `/status`'s query: `json` or `format=json|html`, and `range=5m|1h`, joined by `&`.
fn status_query(query: &str) -> Option<(bool, Range)> {
    let (mut json, mut range) = (false, Range::default());
    for param in query.split('&').filter(|p| !p.is_empty()) {
        match param.split_once('=') {
            None if param == "json" => json = true,
            Some(("format", "json")) => json = true,
            Some(("format", "html")) => json = false,
            Some(("range", r)) => range = Range::parse(r)?,
            _ => return None,
        }
    }
    Some((json, range))
}

/// Parses a complete head and answers it: the whole API, free of sockets. `series`: the
/// admin thread's rings, for the charts.
pub fn handle(head: &[u8], shared: &Shared, series: &Series) -> Vec<u8> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    let (method, target) = match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => match (req.method, req.path) {
            (Some(m), Some(t)) if t.starts_with('/') => (m, t),
            _ => {
                return text(
                    400,
                    "bad request target: expected /status, /metrics or /cache\n",
                )
            }
        },
        Ok(httparse::Status::Partial) => return text(400, "incomplete request head\n"),
        Err(e) => return text(400, &format!("malformed request: {e}\n")),
    };
    let head_only = method == "HEAD";
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut reply = match path {
        "/status" | "/metrics" if !matches!(method, "GET" | "HEAD") => {
            method_not_allowed("GET, HEAD")
        }
        "/status" => match status_query(query) {
            Some((false, range)) => {
                let mut page = respond(
                    200,
                    "text/html; charset=utf-8",
                    render::html(&Snapshot::take(shared, series.view(range))),
                );
                // No script, no external file: the page says so to the browser.
                insert_header(&mut page, STATUS_CSP);
                page
            }
            Some((true, range)) => respond(
                200,
                "application/json",
                render::json(&Snapshot::take(shared, series.view(range))),
            ),
            None => text(
                400,
                "unknown query: use /status, /status?json or /status?format=json, with \
                 &range=5m or &range=1h\n",
            ),
        },
        "/metrics" => respond(
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            metrics::prometheus(&Snapshot::take(shared, Default::default())),
        ),
        _ if target == "/cache" || target.starts_with("/cache/") => {
            if matches!(method, "PURGE" | "DELETE") {
                purge(&target["/cache".len()..], shared)
            } else {
                method_not_allowed("PURGE, DELETE")
            }
        }
        _ => text(
            404,
            "not found: the admin listener serves GET /status, GET /status?json, GET /metrics, \
             PURGE /cache and PURGE /cache/URL\n",
        ),
    };
    if head_only {
        if let Some(end) = find_end(&reply) {
            reply.truncate(end);
        }
    }
    reply
}

/// `PURGE /cache` (`url` empty): everything; `/cache/http://host:port/path?q`: that URL;
/// `/cache/path?q`: that path and query on every host.
fn purge(url: &str, shared: &Shared) -> Vec<u8> {
    let Some(cache) = &shared.cache else {
        return text(
            503,
            "the cache is off (enable it with 'cache on', 'cache_ttl' or -t): nothing to purge\n",
        );
    };
    if url.is_empty() {
        let n = cache.purge_all();
        let entries = counted(n, "entry", "entries");
        log::info!("admin: purged the whole cache ({entries})");
        return text(200, &format!("purged {entries}\n"));
    }
    // `url` starts with '/': the part after "/cache".
    let rest = &url[1..];
    let dropped = match split_absolute(rest) {
        Some(absolute) if absolute.scheme == Scheme::Http => {
            if absolute.authority.is_empty() {
                return text(400, "no host in the URL to purge\n");
            }
            // An empty path is `/` (RFC 9112 §3.2.1), as the proxy stores it.
            let target = match absolute.rest.as_bytes().first() {
                None => "/".to_string(),
                Some(b'/') => absolute.rest.to_string(),
                Some(_) => format!("/{}", absolute.rest),
            };
            cache.purge(&primary_key(absolute.authority, &target))
        }
        _ if rest.contains("://") => return text(400, "only http:// URLs are cached\n"),
        _ => cache.purge_target(url),
    };
    if dropped.is_empty() {
        return text(404, &format!("not in the cache: {url}\n"));
    }
    let entries = counted(dropped.len(), "entry", "entries");
    log::info!("admin: purged {entries} for {url}");
    let mut body = format!("purged {entries}\n");
    for key in dropped {
        body.push_str(&key);
        body.push('\n');
    }
    text(200, &body)
}

/// The status page's Content-Security-Policy: inline styles, nothing else.
const STATUS_CSP: &str =
    "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; img-src 'none'\r\n";

/// Adds a header line (with its CRLF) after the status line of a whole response.
fn insert_header(reply: &mut Vec<u8>, line: &str) {
    if let Some(at) = reply.windows(2).position(|w| w == b"\r\n") {
        reply.splice(at + 2..at + 2, line.bytes());
    }
}

fn method_not_allowed(allow: &str) -> Vec<u8> {
    let body = format!("method not allowed; use {allow}\n");
    let mut out = head(405, "text/plain; charset=utf-8", body.len(), Some(allow));
    out.extend_from_slice(body.as_bytes());
    out
}

fn text(status: u16, body: &str) -> Vec<u8> {
    respond(status, "text/plain; charset=utf-8", body.to_string())
}

fn respond(status: u16, content_type: &str, body: String) -> Vec<u8> {
    let mut out = head(status, content_type, body.len(), None);
    out.extend_from_slice(body.as_bytes());
    out
}

fn head(status: u16, content_type: &str, len: usize, allow: Option<&str>) -> Vec<u8> {
    let allow = allow.map_or(String::new(), |a| format!("Allow: {a}\r\n"));
    format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {len}\r\n\
         Cache-Control: no-store\r\n{allow}Connection: close\r\n\r\n",
        reason_phrase(status)
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn shared(cache: bool) -> Shared {
        let mut config = Config::with_backends(
            "127.0.0.1:0".parse().unwrap(),
            &["127.0.0.1:1".parse().unwrap()],
        );
        let dir = std::env::temp_dir().join(format!("pibl-admin-unit-{}", std::process::id()));
        config.cache.dir = dir;
        config.cache.enabled = Some(cache);
        let cache = config
            .cache_config()
            .map(|c| Arc::new(crate::cache::Cache::open(c).unwrap()));
        Shared::new(config, cache)
    }

    fn status_line(reply: &[u8]) -> String {
        let text = String::from_utf8_lossy(reply);
        text.lines().next().unwrap_or("").to_string()
    }

    #[test]
    fn status_query_takes_a_format_and_a_range() {
        assert_eq!(status_query(""), Some((false, Range::FiveMinutes)));
        assert_eq!(status_query("json"), Some((true, Range::FiveMinutes)));
        assert_eq!(status_query("range=1h"), Some((false, Range::Hour)));
        assert_eq!(
            status_query("format=json&range=1h"),
            Some((true, Range::Hour))
        );
        assert_eq!(status_query("range=1h&json"), Some((true, Range::Hour)));
        for bad in ["range=2h", "yaml", "json&x=1", "range", "format=xml"] {
            assert_eq!(status_query(bad), None, "{bad}");
        }
        let s = shared(false);
        let series = Series::new(Instant::now());
        let page = handle(b"GET /status?range=1h HTTP/1.1\r\n\r\n", &s, &series);
        let page = String::from_utf8_lossy(&page);
        assert!(
            page.contains("\r\nContent-Security-Policy: default-src 'none';"),
            "{page}"
        );
        assert!(page.contains("<a href=\"/status?range=1h\" aria-current=\"page\">"));
        assert_eq!(page.matches("No data yet.").count(), 4);
    }

    #[test]
    fn odd_targets_never_panic() {
        let s = shared(true);
        for target in [
            "/cache/ht\u{e9}p://x",
            "/cache/\u{e9}\u{e9}\u{e9}\u{e9}",
            "/cache/http://",
            "/cache/http:/",
            "/cache/https://a/b",
            "/cache//",
        ] {
            let head = format!("PURGE {target} HTTP/1.1\r\n\r\n");
            let series = Series::new(Instant::now());
            let line = status_line(&handle(head.as_bytes(), &s, &series));
            assert!(line.starts_with("HTTP/1.1 4"), "{target}: {line}");
        }
        let _ = std::fs::remove_dir_all(&s.settings().config.cache.dir);
    }
}
