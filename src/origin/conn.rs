//! One client connection: an explicit [`Phase`] machine whose transitions all live in
//! [`Conn::step`], with socket readiness kept in software because mio is edge-triggered.
//!
//! Output is independent of the phase: response heads (and small bodies) queue in `out`, a file
//! body waits in `file`, and both go out together with one `writev` whenever the socket is
//! writable. Pipelined requests are answered in order: while more requests are already buffered,
//! their responses are batched into `out`; otherwise the connection waits for its output to
//! drain before reading the next request.

use std::io::{IoSlice, Write};
use std::net::Shutdown;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;

use super::head::{self, RequestHead};
use super::routes::{self, Reply, RouteCtx};
use super::site::StaticFile;
use crate::buffer::{Buffer, BufferPool, ReadEnd};
use crate::clock::Clock;
use crate::http::body::{BodyKind, BodyRelay};
use crate::http::Version;
use crate::net::{interrupted, would_block};

/// Largest request body accepted (413 beyond).
pub const MAX_BODY: usize = 1024 * 1024;
/// Responses batched for pipelined requests before the connection stops to write them.
const MAX_BATCH: usize = 64 * 1024;
/// Connections that make no progress for this long are closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a closing connection reads (and drops) what the client still sends, so the kernel
/// does not reset the connection before the client has read our last response.
const LINGER_TIMEOUT: Duration = Duration::from_secs(2);

/// Where a connection is in its request/response cycle.
#[derive(Debug)]
enum Phase {
    /// Waiting for (the rest of) a request head.
    Head,
    /// Reading a request body; `keep` is false for bodies the route does not use.
    Body { relay: BodyRelay, keep: bool },
    /// Responses are queued; the next step waits until they are written.
    Send { then: After },
    /// The last response is written and our side is shut; reading until the client closes.
    Linger,
    /// Finished: the worker drops the connection.
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    NextRequest,
    Close,
}

/// Whether a step changed anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Progress,
    /// Needs socket readiness (or nothing to do).
    Wait,
}

/// What a worker lends a connection while driving it.
pub struct Ctx<'a> {
    pub clock: &'a mut Clock,
    pub buffers: &'a mut BufferPool,
    pub route: RouteCtx<'a>,
}

pub struct Conn {
    stream: TcpStream,
    phase: Phase,
    /// Borrowed from the pool only while there is input to hold.
    input: Option<Buffer>,
    out: Vec<u8>,
    out_sent: usize,
    /// A file body sent after `out`.
    file: Option<Arc<StaticFile>>,
    file_sent: usize,
    request: RequestHead,
    /// The body of the current request, when the route uses it.
    body: Vec<u8>,
    readable: bool,
    writable: bool,
    peer_closed: bool,
    last_progress: Instant,
}

impl Conn {
    pub fn new(stream: TcpStream, now: Instant) -> Conn {
        Conn {
            stream,
            phase: Phase::Head,
            input: None,
            out: Vec::new(),
            out_sent: 0,
            file: None,
            file_sent: 0,
            request: RequestHead::default(),
            body: Vec::new(),
            readable: false,
            writable: false,
            peer_closed: false,
            last_progress: now,
        }
    }

    /// Records readiness from an event; the flags stay set until a call would block.
    pub fn on_event(&mut self, readable: bool, writable: bool, closed: bool) {
        self.readable |= readable || closed;
        self.writable |= writable;
    }

    /// Between requests with nothing buffered: safe to close for shutdown.
    pub fn is_idle(&self) -> bool {
        matches!(self.phase, Phase::Head)
            && self.input.as_ref().is_none_or(Buffer::is_empty)
            && !self.has_output()
    }

    /// No progress for longer than the phase allows.
    pub fn is_expired(&self, now: Instant) -> bool {
        let limit = match self.phase {
            Phase::Linger => LINGER_TIMEOUT,
            _ => IDLE_TIMEOUT,
        };
        now.duration_since(self.last_progress) > limit
    }

    /// Does all the work readiness allows. Returns false when the connection is finished.
    pub fn drive(&mut self, ctx: &mut Ctx<'_>) -> bool {
        loop {
            if self.writable && self.has_output() && !self.flush() {
                self.phase = Phase::Closed;
            }
            if self.wants_input() && self.readable && !self.peer_closed {
                self.fill(ctx.buffers);
            }
            if self.step(ctx) == Step::Wait {
                break;
            }
            self.last_progress = ctx.clock.now;
        }
        if matches!(self.phase, Phase::Closed) {
            self.release(ctx.buffers);
            return false;
        }
        if self.input.as_ref().is_some_and(Buffer::is_empty) {
            self.release(ctx.buffers);
        }
        true
    }

    /// Gives the input buffer back to the pool.
    pub fn release(&mut self, pool: &mut BufferPool) {
        if let Some(buf) = self.input.take() {
            pool.put(buf);
        }
    }

    fn wants_input(&self) -> bool {
        matches!(self.phase, Phase::Head | Phase::Body { .. } | Phase::Linger)
    }

    fn has_output(&self) -> bool {
        self.out_sent < self.out.len() || self.file.is_some()
    }

    /// The phase transitions, all of them.
    fn step(&mut self, ctx: &mut Ctx<'_>) -> Step {
        match &mut self.phase {
            Phase::Closed => Step::Wait,
            Phase::Linger => {
                if self.peer_closed {
                    self.phase = Phase::Closed;
                    return Step::Progress;
                }
                match self.input.as_mut() {
                    Some(buf) if !buf.is_empty() => {
                        buf.clear();
                        Step::Progress
                    }
                    _ => Step::Wait,
                }
            }
            Phase::Send { then } => {
                let then = *then;
                if self.has_output() {
                    return Step::Wait;
                }
                self.out.clear();
                self.out_sent = 0;
                self.phase = match then {
                    After::NextRequest => Phase::Head,
                    After::Close => {
                        let _ = self.stream.shutdown(Shutdown::Write);
                        Phase::Linger
                    }
                };
                Step::Progress
            }
            Phase::Head => self.read_head(ctx),
            Phase::Body { relay, keep } => {
                let keep = *keep;
                let Some(buf) = self.input.as_mut() else {
                    return self.waiting_for_input();
                };
                if let Err(e) = relay.scan(buf) {
                    self.refuse(400, &e.to_string(), ctx);
                    return Step::Progress;
                }
                let ready = relay.ready();
                if ready > 0 {
                    if self.body.len() + ready > MAX_BODY {
                        self.refuse(413, "request body larger than 1 MiB", ctx);
                        return Step::Progress;
                    }
                    if keep {
                        self.body.extend_from_slice(&buf.data()[..ready]);
                    }
                    buf.consume(ready);
                    relay.sent(ready);
                }
                if relay.is_complete() {
                    self.answer(ctx);
                    return Step::Progress;
                }
                if ready > 0 {
                    Step::Progress
                } else {
                    self.waiting_for_input()
                }
            }
        }
    }

    /// In `Head`: parses the next request if it is all here.
    fn read_head(&mut self, ctx: &mut Ctx<'_>) -> Step {
        let Some(buf) = self.input.as_mut() else {
            return self.waiting_for_input();
        };
        match head::parse(buf.data(), &mut self.request) {
            Ok(Some(len)) => {
                buf.consume(len);
                ctx.route.shared.requests.fetch_add(1, Ordering::Relaxed);
                self.body.clear();
                match self.request.body {
                    BodyKind::Length(n) if n > MAX_BODY as u64 => {
                        self.refuse(413, "request body larger than 1 MiB", ctx)
                    }
                    BodyKind::Empty | BodyKind::Length(0) => self.answer(ctx),
                    kind => self.start_body(kind),
                }
                Step::Progress
            }
            Ok(None) if buf.is_full() => {
                self.refuse(431, "request head too large", ctx);
                Step::Progress
            }
            Ok(None) => self.waiting_for_input(),
            Err(bad) => {
                self.refuse(bad.status, bad.reason, ctx);
                Step::Progress
            }
        }
    }

    fn start_body(&mut self, kind: BodyKind) {
        let keep = self.request.method == "POST";
        if self.request.expect_continue && self.request.version == Version::Http11 {
            self.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        self.phase = Phase::Body {
            relay: BodyRelay::new(kind, true),
            keep,
        };
    }

    /// Nothing to parse: wait for input, or finish when the client has gone.
    fn waiting_for_input(&mut self) -> Step {
        if !self.peer_closed {
            return Step::Wait;
        }
        self.phase = if self.has_output() {
            Phase::Send { then: After::Close }
        } else {
            Phase::Closed
        };
        Step::Progress
    }

    /// Routes the request now that its body (if any) is in, then decides what comes next.
    fn answer(&mut self, ctx: &mut Ctx<'_>) {
        let close = !self.request.keep_alive;
        let mut reply = Reply {
            out: &mut self.out,
            date: ctx.clock.http_date(),
            name: &ctx.route.shared.name,
            close,
            keep_alive_10: !close && self.request.version == Version::Http10,
            head_only: self.request.is_head(),
        };
        let file = routes::respond(&self.request, &self.body, &mut reply, &mut ctx.route);
        if self.body.capacity() > 64 * 1024 {
            self.body = Vec::new();
        }
        let pipelined = self.input.as_ref().is_some_and(|b| !b.is_empty());
        let small = file.as_ref().is_none_or(|f| f.bytes.len() <= MAX_BATCH);
        if !close && pipelined && small && self.out.len() < MAX_BATCH {
            // More requests are already here: batch this response and parse the next.
            if let Some(f) = file {
                self.out.extend_from_slice(&f.bytes);
            }
            self.phase = Phase::Head;
            return;
        }
        self.file = file;
        self.file_sent = 0;
        let then = if close {
            After::Close
        } else {
            After::NextRequest
        };
        self.phase = Phase::Send { then };
    }

    /// Answers an unusable request with `status` and closes.
    fn refuse(&mut self, status: u16, reason: &str, ctx: &mut Ctx<'_>) {
        let mut reply = Reply {
            out: &mut self.out,
            date: ctx.clock.http_date(),
            name: &ctx.route.shared.name,
            close: true,
            keep_alive_10: false,
            head_only: false,
        };
        reply.text(status, "", reason);
        self.phase = Phase::Send { then: After::Close };
    }

    /// Reads until the socket would block, the buffer is full, or the client closes.
    fn fill(&mut self, pool: &mut BufferPool) {
        let buf = self.input.get_or_insert_with(|| pool.get());
        match buf.read_from(&mut self.stream, false) {
            Ok((_, ReadEnd::WouldBlock)) => self.readable = false,
            Ok((_, ReadEnd::Full)) => {}
            Ok((_, ReadEnd::Eof)) => self.peer_closed = true,
            Err(_) => {
                self.peer_closed = true;
                self.phase = Phase::Closed;
            }
        }
    }

    /// Writes queued output with as few syscalls as possible. Returns false on a socket error.
    fn flush(&mut self) -> bool {
        loop {
            let head = &self.out[self.out_sent..];
            let body = self
                .file
                .as_ref()
                .map_or(&[][..], |f| &f.bytes[self.file_sent..]);
            if head.is_empty() && body.is_empty() {
                self.file = None;
                self.file_sent = 0;
                self.out.clear();
                self.out_sent = 0;
                return true;
            }
            let result = if body.is_empty() {
                self.stream.write(head)
            } else {
                self.stream
                    .write_vectored(&[IoSlice::new(head), IoSlice::new(body)])
            };
            match result {
                Ok(0) => return false,
                Ok(mut n) => {
                    let from_head = n.min(head.len());
                    self.out_sent += from_head;
                    n -= from_head;
                    self.file_sent += n;
                }
                Err(e) if would_block(&e) => {
                    self.writable = false;
                    return true;
                }
                Err(e) if interrupted(&e) => {}
                Err(_) => return false,
            }
        }
    }
}
