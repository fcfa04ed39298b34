//! The session's state machine driven against a fake client transport: no sockets, no threads.
//! Only paths that need no backend connection are exercised here (the integration tests in
//! `tests/` cover the upstream side with real sockets).

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
}

impl Harness {
    fn new() -> Harness {
        let listen = "127.0.0.1:0".parse().expect("address");
        let backend = "127.0.0.1:1".parse().expect("address");
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
    let peer = s.client.peer();
    peer.input.extend(bytes);
    peer.closed |= close;
    s.on_client_event(true, true, close);
    s.drive(&mut h.ctx());
}

fn output(s: &mut Session) -> String {
    String::from_utf8_lossy(&s.client.peer().output).into_owned()
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
    assert_eq!(s.state, State::Lingering);
    assert!(s.client.peer().shut);
    client_sends(&mut s, &mut h, b"more", true);
    assert!(s.is_closed());
}

#[test]
fn a_response_the_socket_takes_in_parts_is_finished_on_writability() {
    let mut h = Harness::new();
    let mut s = h.session();
    s.client.peer().room = 10;
    client_sends(&mut s, &mut h, b"GET / HTTP/1.1\r\n\r\n", false); // no Host: 400
    assert!(matches!(s.state, State::SendError { status: 400, .. }));
    assert_eq!(s.client.peer().output.len(), 10);
    // The client reads; the event loop reports the socket writable again.
    s.client.peer().room = usize::MAX;
    s.on_client_event(false, true, false);
    s.drive(&mut h.ctx());
    assert!(output(&mut s).starts_with("HTTP/1.1 400 "));
    assert!(output(&mut s).ends_with('\n'));
    assert_eq!(s.state, State::Lingering);
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
    assert!(s.client.peer().output.is_empty());
}

#[test]
fn an_incomplete_head_at_its_deadline_is_408() {
    let mut h = Harness::new();
    let mut s = h.session();
    client_sends(&mut s, &mut h, b"GET / HTTP/1.1\r\nHo", false);
    assert_eq!(s.state, State::ReadRequestHead);
    assert!(s.client.peer().output.is_empty());
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
    assert_eq!(s.state, State::ReadRequestHead);
    // No exchange, no upstream: relaying a response from here is a bug in the caller.
    s.enter(State::RelayResponse, &mut h.ctx());
    assert!(s.is_closed());
}
