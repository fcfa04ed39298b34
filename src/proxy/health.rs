//! Active health checks: one thread probes every backend with `GET PATH` every interval, using
//! plain blocking sockets with short timeouts, so the event loops never wait on a probe.
//!
//! A 2xx or 3xx answer brings a backend back into the rotation; anything else (refused, timeout,
//! reset, another status, garbage) takes it out until a probe succeeds. Passive failure counting
//! in the sessions goes on independently (`RoundRobin::report_failure`).
//!
//! A TLS backend is probed over TLS, verified as requests to it are (`backend_ca`,
//! `backend_tls_verify`): a backend whose certificate would fail every request is down.
//!
//! The thread runs for the proxy's whole life and reads the current settings every round, so a
//! reload can add, change or remove `health_check` and the backends it probes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::shared::Shared;
use crate::net::proxy_protocol::{Header, Version};

/// Longest a single probe may take (connect, then the answer), whatever the interval.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the thread looks at the stop flag while waiting for the next round.
const STOP_POLL: Duration = Duration::from_millis(50);

/// Starts the probing thread; it ends when `shared.stop` is set.
pub fn start(shared: Arc<Shared>) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("pibl-health".to_string())
        .spawn(move || run(&shared))
}

fn run(shared: &Shared) {
    loop {
        let round = Instant::now();
        let settings = shared.settings();
        let interval = match &settings.config.health.check {
            Some(check) => {
                let timeout = check.interval.min(PROBE_TIMEOUT);
                let backends = &settings.backends;
                for (i, b) in backends.backends().iter().enumerate() {
                    if shared.stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let tls = match (&b.tls_name, &settings.config.backend_tls) {
                        (Some(name), Some(client)) => {
                            match rustls::ClientConnection::new(client.config.clone(), name.clone())
                            {
                                Ok(conn) => Some(conn),
                                Err(e) => {
                                    backends.mark_down(i, &format!("health check failed: {e}"));
                                    continue;
                                }
                            }
                        }
                        _ => None,
                    };
                    let probed =
                        probe(b.addr, &b.name, &check.path, timeout, tls, b.proxy_protocol);
                    match probed {
                        Ok(()) => backends.report_success(i),
                        Err(why) => backends.mark_down(i, &format!("health check {why}")),
                    }
                }
                check.interval
            }
            // Off: look again for a reload that turns it on.
            None => STOP_POLL,
        };
        drop(settings);
        let next = round + interval;
        while Instant::now() < next {
            if shared.stop.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(STOP_POLL.min(next.saturating_duration_since(Instant::now())));
        }
    }
}

/// One `GET path` (over TLS with `tls`): Ok for a 2xx or 3xx status line, else why not. A
/// `proxy_protocol` backend first gets a header saying the connection is pibl's own (v2
/// `LOCAL`, v1 `UNKNOWN`), before any TLS, as HAProxy's checks send.
pub fn probe(
    addr: std::net::SocketAddr,
    name: &str,
    path: &str,
    timeout: Duration,
    tls: Option<rustls::ClientConnection>,
    proxy_protocol: Option<Version>,
) -> Result<(), String> {
    let started = Instant::now();
    let sock = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("failed: {e}"))?;
    let left = timeout
        .saturating_sub(started.elapsed())
        .max(Duration::from_millis(10));
    sock.set_read_timeout(Some(left))
        .and_then(|()| sock.set_write_timeout(Some(left)))
        .map_err(|e| format!("failed: {e}"))?;
    if let Some(version) = proxy_protocol {
        (&sock)
            .write_all(Header::new(version, None).as_bytes())
            .map_err(|e| format!("failed sending the PROXY protocol header: {e}"))?;
    }
    let host = name.strip_prefix("https://").unwrap_or(name);
    let host = host.strip_suffix('/').unwrap_or(host);
    match tls {
        None => exchange(sock, host, path),
        // A refused certificate fails the write, in rustls's words ("invalid peer certificate").
        Some(conn) => exchange(rustls::StreamOwned::new(conn, sock), host, path),
    }
}

/// Sends the probe's request on `s` and reads the status line.
fn exchange<S: Read + Write>(mut s: S, host: &str, path: &str) -> Result<(), String> {
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: pibl-health\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes())
        .map_err(|e| format!("failed: {e}"))?;
    // The status line is all we need: "HTTP/1.x NNN".
    let mut head = [0u8; 64];
    let mut got = 0;
    while got < 12 {
        match s.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => return Err(format!("failed: {e}")),
        }
    }
    let line = &head[..got];
    if got < 12 || !line.starts_with(b"HTTP/1.") || line[8] != b' ' {
        return Err("got no HTTP answer".to_string());
    }
    match line[9] {
        b'2' | b'3' if line[10].is_ascii_digit() && line[11].is_ascii_digit() => Ok(()),
        _ => Err(format!(
            "got status {}",
            String::from_utf8_lossy(&line[9..12])
        )),
    }
}
