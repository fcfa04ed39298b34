//! The session's state machine driven against a fake client transport: no sockets, no threads.
//! The upstream side needs a backend: the tests of upstream release give it a real loopback
//! listener (`Backend`) and report its readiness by hand; the integration tests in `tests/`
//! cover the rest of the upstream side.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use mio::Poll;

use super::session::{Ctx, Session, State};
use super::shared::{Settings, Shared};
use super::transport::ClientTransport;
use super::upstream::UpstreamPool;
use crate::buffer::{BufferPool, HeadPool};
use crate::clock::Clock;
use crate::config::Config;
use crate::logging::AccessLog;

/// What a worker lends a session, owned by the test.
struct Harness {
    poll: Poll,
    upstreams: UpstreamPool,
    buffers: BufferPool,
    heads: HeadPool,
    clock: Clock,
    shared: Shared,
    settings: Arc<Settings>,
    log: AccessLog,
    waiters: Vec<usize>,
    drive_again: Vec<usize>,
}

impl Harness {
    fn new() -> Harness {
        Harness::with_backend("127.0.0.1:1".parse().expect("address"))
    }

    fn with_backend(backend: SocketAddr) -> Harness {
        let listen = "127.0.0.1:0".parse().expect("address");
        let mut config = Config::with_backends(listen, &[backend]);
        config.limits.max_header_bytes = 1024;
        let shared = Shared::new(config, None);
        let settings = shared.settings();
        Harness {
            poll: Poll::new().expect("an event loop"),
            upstreams: UpstreamPool::new(1, 4, Duration::from_secs(60)),
            buffers: BufferPool::new(settings.config.limits.buffer_size, 4),
            heads: HeadPool::new(4),
            clock: Clock::new(),
            shared,
            settings,
            log: AccessLog::disabled(),
            waiters: Vec::new(),
            drive_again: Vec::new(),
        }
    }

    fn ctx(&mut self) -> Ctx<'_> {
        Ctx {
            registry: self.poll.registry(),
            upstreams: &mut self.upstreams,
            buffers: &mut self.buffers,
            heads: &mut self.heads,
            clock: &mut self.clock,
            shared: &self.shared,
            settings: &self.settings,
            log: &mut self.log,
            key: 0,
            stopping: false,
            waiters: &mut self.waiters,
            drive_again: &mut self.drive_again,
        }
    }

    fn session(&self) -> Session {
        let peer = "192.0.2.7:40000".parse().expect("address");
        let header_timeout = self.settings.config.timeouts.client_header;
        Session::with_transport(
            ClientTransport::fake(),
            peer,
            self.clock.now,
            header_timeout,
        )
    }
}

/// The client sends `bytes` (and closes when `close`); the event loop reports it.
fn client_sends(s: &mut Session, h: &mut Harness, bytes: &[u8], close: bool) {
    let peer = s.conn.client.peer();
    peer.input.extend(bytes);
    peer.closed |= close;
    s.on_client_event(true, true, close);
    s.drive(&mut h.ctx());
}

fn output(s: &mut Session) -> String {
    String::from_utf8_lossy(&s.conn.client.peer().output).into_owned()
}

#[test]
fn a_malformed_head_gets_400_then_a_lingering_close() {
    let mut h = Harness::new();
    let mut s = h.session();
    client_sends(&mut s, &mut h, b"GARBAGE\r\n\r\n", false);
    assert!(
        output(&mut s).starts_with("HTTP/1.1 400 "),
        "{}",
        output(&mut s)
    );
    assert!(output(&mut s).contains("Connection: close"));
    // Written whole and shut down: now draining what the client may still send.
    assert_eq!(s.conn.state, State::Lingering);
    assert!(s.conn.client.peer().shut);
    client_sends(&mut s, &mut h, b"more", true);
    assert!(s.is_closed());
}

#[test]
fn a_response_the_socket_takes_in_parts_is_finished_on_writability() {
    let mut h = Harness::new();
    let mut s = h.session();
    s.conn.client.peer().room = 10;
    client_sends(&mut s, &mut h, b"GET / HTTP/1.1\r\n\r\n", false); // no Host: 400
    assert!(matches!(s.conn.state, State::SendError { status: 400, .. }));
    assert_eq!(s.conn.client.peer().output.len(), 10);
    // The client reads; the event loop reports the socket writable again.
    s.conn.client.peer().room = usize::MAX;
    s.on_client_event(false, true, false);
    s.drive(&mut h.ctx());
    assert!(output(&mut s).starts_with("HTTP/1.1 400 "));
    assert!(output(&mut s).ends_with('\n'));
    assert_eq!(s.conn.state, State::Lingering);
}

#[test]
fn a_head_over_the_limit_is_431() {
    let mut h = Harness::new();
    let mut s = h.session();
    let mut head = b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: ".to_vec();
    head.resize(4096, b'x');
    client_sends(&mut s, &mut h, &head, false);
    assert!(
        output(&mut s).starts_with("HTTP/1.1 431 "),
        "{}",
        output(&mut s)
    );
}

#[test]
fn a_client_that_closes_before_a_request_is_closed_silently() {
    let mut h = Harness::new();
    let mut s = h.session();
    client_sends(&mut s, &mut h, b"", true);
    assert!(s.is_closed());
    assert!(s.conn.client.peer().output.is_empty());
}

#[test]
fn an_incomplete_head_at_its_deadline_is_408() {
    let mut h = Harness::new();
    let mut s = h.session();
    client_sends(&mut s, &mut h, b"GET / HTTP/1.1\r\nHo", false);
    assert_eq!(s.conn.state, State::ReadRequestHead);
    assert!(s.conn.client.peer().output.is_empty());
    s.on_timeout(&mut h.ctx());
    s.drive(&mut h.ctx());
    assert!(
        output(&mut s).starts_with("HTTP/1.1 408 "),
        "{}",
        output(&mut s)
    );
}

#[test]
fn an_illegal_transition_closes_the_connection_instead_of_panicking() {
    let mut h = Harness::new();
    let mut s = h.session();
    assert_eq!(s.conn.state, State::ReadRequestHead);
    // No exchange, no upstream: relaying a response from here is a bug in the caller.
    s.conn
        .enter(State::RelayResponse { upstream: 0 }, &mut h.ctx());
    assert!(s.is_closed());
}

#[test]
fn an_exchange_state_without_its_exchange_closes_the_connection_instead_of_panicking() {
    let mut h = Harness::new();
    let mut s = h.session();
    // A legal transition, but no request was parsed: no exchange for the state to run with.
    s.conn.enter(State::AwaitFill, &mut h.ctx());
    assert!(s.x.is_none());
    s.drive(&mut h.ctx());
    assert!(s.is_closed());
}

// ---- the upstream connection is released on every path out of the states that hold one -------

/// A backend on a loopback socket, played by the test.
struct Backend {
    listener: TcpListener,
    conn: Option<TcpStream>,
}

impl Backend {
    fn new() -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback listener");
        Backend {
            listener,
            conn: None,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("its address")
    }

    /// Accepts the proxy's connection and reads the request head it sent.
    fn accept_request(&mut self) -> String {
        let (mut conn, _) = self.listener.accept().expect("the proxy connects");
        conn.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("a read timeout");
        let mut head = Vec::new();
        let mut byte = [0u8];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(conn.read(&mut byte).expect("the request head"), 1);
            head.push(byte[0]);
        }
        self.conn = Some(conn);
        String::from_utf8_lossy(&head).into_owned()
    }

    fn send(&mut self, bytes: &[u8]) {
        let conn = self.conn.as_mut().expect("an accepted connection");
        conn.write_all(bytes).expect("the response");
    }

    /// Closes the backend's side of the connection.
    fn close(&mut self) {
        self.conn = None;
    }
}

/// Upstream connections in the worker's slab: in use or idle in the pool.
fn upstreams(h: &Harness) -> usize {
    h.upstreams.conns.len()
}

/// Reports every upstream socket ready both ways (what the event loop does on an event) and
/// drives, until `reached` holds (loopback sockets deliver at once, but not always on the
/// first look).
fn pump_until(s: &mut Session, h: &mut Harness, reached: impl Fn(&Session) -> bool) {
    for _ in 0..400 {
        for (_, up) in h.upstreams.conns.iter_mut() {
            up.readable = true;
            up.writable = true;
        }
        s.drive(&mut h.ctx());
        if reached(s) {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!(
        "the session never reached the state expected; it is in {:?}",
        s.conn.state
    );
}

fn is_sending(s: &Session) -> bool {
    matches!(s.conn.state, State::SendRequest { .. })
}

fn waits_for_head(s: &Session) -> bool {
    matches!(s.conn.state, State::ReadResponseHead { .. })
}

fn relays(s: &Session) -> bool {
    matches!(s.conn.state, State::RelayResponse { .. })
}

fn sends_error(status: u16) -> impl Fn(&Session) -> bool {
    move |s| matches!(s.conn.state, State::SendError { status: st, .. } if st == status)
}

const GET: &[u8] = b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n";

/// A GET sent whole to backend `b`: the session waits in `ReadResponseHead`.
fn request_sent(h: &mut Harness, b: &mut Backend) -> Session {
    let mut s = h.session();
    client_sends(&mut s, h, GET, false);
    assert!(
        matches!(s.conn.state, State::Connecting { .. }),
        "{:?}",
        s.conn.state
    );
    assert_eq!(upstreams(h), 1);
    pump_until(&mut s, h, waits_for_head);
    assert!(b.accept_request().starts_with("GET /x HTTP/1.1\r\n"));
    s
}

#[test]
fn a_connect_timeout_releases_the_upstream() {
    let b = Backend::new();
    let mut h = Harness::with_backend(b.addr());
    let mut s = h.session();
    client_sends(&mut s, &mut h, GET, false);
    assert!(matches!(s.conn.state, State::Connecting { .. }));
    s.on_timeout(&mut h.ctx());
    assert!(sends_error(504)(&s), "{:?}", s.conn.state);
    assert_eq!(upstreams(&h), 0);
}

#[test]
fn a_refused_connect_releases_the_upstream() {
    let addr = Backend::new().addr(); // closed again: nothing listens there
    let mut h = Harness::with_backend(addr);
    let mut s = h.session();
    client_sends(&mut s, &mut h, GET, false);
    pump_until(&mut s, &mut h, |s| s.conn.state.upstream().is_none());
    assert!(
        output(&mut s).starts_with("HTTP/1.1 502 "),
        "{}",
        output(&mut s)
    );
    assert_eq!(upstreams(&h), 0);
}

#[test]
fn a_response_head_timeout_releases_the_upstream() {
    let mut b = Backend::new();
    let mut h = Harness::with_backend(b.addr());
    let mut s = request_sent(&mut h, &mut b);
    s.on_timeout(&mut h.ctx());
    assert!(sends_error(504)(&s), "{:?}", s.conn.state);
    assert_eq!(upstreams(&h), 0);
}

#[test]
fn a_backend_closing_before_its_head_releases_the_upstream() {
    let mut b = Backend::new();
    let mut h = Harness::with_backend(b.addr());
    let mut s = request_sent(&mut h, &mut b);
    b.close();
    pump_until(&mut s, &mut h, |s| s.conn.state.upstream().is_none());
    assert!(
        output(&mut s).starts_with("HTTP/1.1 502 "),
        "{}",
        output(&mut s)
    );
    assert_eq!(upstreams(&h), 0);
}

#[test]
fn an_invalid_response_head_releases_the_upstream() {
    let mut b = Backend::new();
    let mut h = Harness::with_backend(b.addr());
    let mut s = request_sent(&mut h, &mut b);
    b.send(b"garbage\r\n\r\n");
    pump_until(&mut s, &mut h, |s| s.conn.state.upstream().is_none());
    assert!(
        output(&mut s).starts_with("HTTP/1.1 502 "),
        "{}",
        output(&mut s)
    );
    assert_eq!(upstreams(&h), 0);
}

#[test]
fn a_body_timeout_releases_the_upstream() {
    let mut b = Backend::new();
    let mut h = Harness::with_backend(b.addr());
    let mut s = request_sent(&mut h, &mut b);
    b.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc");
    pump_until(&mut s, &mut h, relays);
    s.on_timeout(&mut h.ctx());
    assert!(s.is_closed());
    assert_eq!(upstreams(&h), 0);
}

#[test]
fn a_truncated_body_releases_the_upstream() {
    let mut b = Backend::new();
    let mut h = Harness::with_backend(b.addr());
    let mut s = request_sent(&mut h, &mut b);
    b.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc");
    b.close();
    pump_until(&mut s, &mut h, |s| s.conn.state.upstream().is_none());
    assert!(
        matches!(s.conn.state, State::Lingering | State::Closed),
        "{:?}",
        s.conn.state
    );
    assert_eq!(upstreams(&h), 0);
}

#[test]
fn a_complete_response_returns_the_upstream_to_the_pool() {
    let mut b = Backend::new();
    let mut h = Harness::with_backend(b.addr());
    let mut s = request_sent(&mut h, &mut b);
    b.send(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc");
    pump_until(&mut s, &mut h, |s| s.conn.state == State::ReadRequestHead);
    assert!(
        output(&mut s).ends_with("\r\n\r\nabc"),
        "{}",
        output(&mut s)
    );
    assert_eq!(upstreams(&h), 1);
    assert_eq!(h.upstreams.idle_count(), 1);
}

#[test]
fn the_exchange_ends_with_its_response_and_the_next_request_begins_another() {
    let mut b = Backend::new();
    let mut h = Harness::with_backend(b.addr());
    let mut s = request_sent(&mut h, &mut b);
    assert_eq!(s.x.as_ref().map(|x| x.id), Some(0));
    b.send(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc");
    pump_until(&mut s, &mut h, |s| s.conn.state == State::ReadRequestHead);
    // Gone as the connection waits for the next request (least_conn's count goes with it).
    assert!(s.x.is_none());
    client_sends(&mut s, &mut h, GET, false);
    assert_eq!(s.x.as_ref().map(|x| x.id), Some(1));
}

#[test]
fn a_reused_connection_that_failed_is_released_for_the_fresh_one() {
    let mut b = Backend::new();
    let mut h = Harness::with_backend(b.addr());
    let mut s = request_sent(&mut h, &mut b);
    b.send(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc");
    pump_until(&mut s, &mut h, |s| s.conn.state == State::ReadRequestHead);
    // The backend closes the pooled connection as the next request takes it (the keep-alive
    // race): the request goes again on a new connection, and the old one is let go.
    b.close();
    client_sends(&mut s, &mut h, GET, false);
    pump_until(&mut s, &mut h, waits_for_head);
    assert_eq!(upstreams(&h), 1);
    assert!(b.accept_request().starts_with("GET /x HTTP/1.1\r\n"));
    assert_eq!(h.upstreams.idle_count(), 0);
}

#[test]
fn a_client_leaving_mid_body_releases_the_upstream() {
    let b = Backend::new();
    let mut h = Harness::with_backend(b.addr());
    let mut s = h.session();
    client_sends(
        &mut s,
        &mut h,
        b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc",
        false,
    );
    pump_until(&mut s, &mut h, is_sending);
    client_sends(&mut s, &mut h, b"", true);
    assert!(s.is_closed(), "{:?}", s.conn.state);
    assert_eq!(upstreams(&h), 0);
}

#[test]
fn a_request_body_timeout_releases_the_upstream() {
    let b = Backend::new();
    let mut h = Harness::with_backend(b.addr());
    let mut s = h.session();
    client_sends(
        &mut s,
        &mut h,
        b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc",
        false,
    );
    pump_until(&mut s, &mut h, is_sending);
    s.on_timeout(&mut h.ctx());
    assert!(sends_error(408)(&s), "{:?}", s.conn.state);
    assert_eq!(upstreams(&h), 0);
}

#[test]
fn a_tunnel_releases_the_upstream_when_either_side_ends() {
    let upgrade =
        b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
    let switching =
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
    for backend_ends in [false, true] {
        let mut b = Backend::new();
        let mut h = Harness::with_backend(b.addr());
        let mut s = h.session();
        client_sends(&mut s, &mut h, upgrade, false);
        pump_until(&mut s, &mut h, waits_for_head);
        b.accept_request();
        b.send(switching);
        pump_until(&mut s, &mut h, |s| {
            matches!(s.conn.state, State::Tunnel { .. })
        });
        if backend_ends {
            b.close();
            pump_until(&mut s, &mut h, Session::is_closed);
        } else {
            s.on_timeout(&mut h.ctx());
        }
        assert!(s.is_closed());
        assert_eq!(upstreams(&h), 0);
    }
}

#[test]
fn an_illegal_transition_from_an_upstream_state_releases_the_upstream() {
    let mut b = Backend::new();
    let mut h = Harness::with_backend(b.addr());
    let mut s = request_sent(&mut h, &mut b);
    let Some(key) = s.conn.state.upstream() else {
        panic!("no upstream in {:?}", s.conn.state);
    };
    // A response on another connection than its request's is refused like any illegal move.
    s.conn
        .enter(State::RelayResponse { upstream: key + 1 }, &mut h.ctx());
    assert!(s.is_closed());
    assert_eq!(upstreams(&h), 0);
}

/// An HTTP/2 stream's child: the request comes from a pipe, the response goes into it, bounded
/// (the child waits while the pipe is full), and the pipe's end closes the child.
#[test]
fn a_child_session_runs_an_exchange_through_its_pipe() {
    use super::pipe::{Pipe, PipeOrigin};
    let mut b = Backend::new();
    let mut h = Harness::with_backend(b.addr());
    let parent = ClientTransport::fake();
    let mut pipe = Pipe::new(
        7,
        0,
        1,
        PipeOrigin {
            scheme: parent.scheme(),
            hsts: parent.hsts(),
            local: parent.local_addr(),
        },
        16,
        Default::default(),
    );
    pipe.push_inbound(b"POST /x HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n");
    pipe.push_inbound(b"3\r\nabc\r\n0\r\n\r\n");
    pipe.end_inbound();
    let peer = "192.0.2.7:40000".parse().expect("address");
    let timeout = h.settings.config.timeouts.client_header;
    let mut s = Session::with_transport(ClientTransport::pipe(pipe), peer, h.clock.now, timeout);
    assert_eq!(s.client().pipe_parent(), Some(7));
    s.drive(&mut h.ctx());
    pump_until(&mut s, &mut h, waits_for_head);
    let head = b.accept_request();
    assert!(head.starts_with("POST /x HTTP/1.1\r\n"), "{head}");
    assert!(head.contains("X-Forwarded-For: 192.0.2.7"), "{head}");
    b.send(
        b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n0123456789012345678901234567890123456789",
    );
    // The pipe holds 16 bytes: the h2 side drains it and the child goes on.
    let mut got = Vec::new();
    for _ in 0..400 {
        let pipe = s.client_mut().pipe_mut().expect("a pipe");
        let out = pipe.outbound().to_vec();
        assert!(out.len() <= 16);
        pipe.take_outbound(out.len());
        got.extend_from_slice(&out);
        if s.is_closed() {
            break;
        }
        pump_until(&mut s, &mut h, |_| true);
    }
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
    assert!(
        got.ends_with("\r\n\r\n0123456789012345678901234567890123456789"),
        "{got}"
    );
    assert!(s.is_closed(), "the pipe's end closes the child");
    assert_eq!(
        s.client().log_version(crate::http::Version::Http11),
        "HTTP/2.0"
    );
}

/// A compressed cache hit of 1 MiB (compressible, cached), to a client that takes everything
/// at once: each drive compresses at most `COMPRESS_BUDGET` of it, then the session yields
/// (its key on the drive-again list) with the rest to do, until the response is whole.
#[test]
fn a_big_compressed_hit_yields_to_the_worker_after_its_budget() {
    use super::session::COMPRESS_BUDGET;
    use crate::cache::{primary_key, unix_now, Cache, CacheConfig, EntryMeta};

    let dir = std::env::temp_dir().join(format!("pibl-yield-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cache = Arc::new(
        Cache::open(CacheConfig {
            dir: dir.clone(),
            ttl: Duration::from_secs(60),
            heuristic: true,
            max_bytes: 16 << 20,
            max_object: 16 << 20,
            fill_wait: Duration::from_secs(1),
        })
        .expect("a cache"),
    );
    let body: Vec<u8> = (0..1 << 20).map(|i| b"pibl yields "[i % 12]).collect();
    let meta = EntryMeta {
        primary: primary_key("a", "/big"),
        vary: vec![],
        status: 200,
        headers: b"Content-Type: text/plain\r\n".to_vec(),
        stored_at: unix_now(),
        initial_age: 0,
        lifetime: 60,
        always_revalidate: false,
    };
    let mut pending = cache.begin_store(meta, false).expect("a pending entry");
    pending.append(&body);
    cache.publish(pending);

    let mut h = Harness::new();
    let mut config = h.settings.config.clone();
    config.compress.enabled = true;
    h.shared = Shared::new(config, Some(cache));
    h.settings = h.shared.settings();
    let mut s = h.session();
    client_sends(
        &mut s,
        &mut h,
        b"GET /big HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\n\r\n",
        false,
    );
    let mut drives = 1;
    while s.conn.state == State::ServeCached {
        assert_eq!(h.drive_again, [0], "drive {drives} yielded with work left");
        h.drive_again.clear();
        s.drive(&mut h.ctx());
        drives += 1;
        assert!(drives < 100, "the hit never ends");
    }
    assert!(h.drive_again.is_empty(), "nothing left once it is whole");
    let per_drive = COMPRESS_BUDGET;
    assert!(
        drives >= body.len() / per_drive,
        "{drives} drives for {} bytes",
        body.len()
    );
    let out = output(&mut s);
    assert!(out.contains("Content-Encoding: gzip"), "a compressed hit");
    assert!(out.ends_with("\r\n0\r\n\r\n"), "a whole chunked body");
    let _ = std::fs::remove_dir_all(&dir);
}
