//! An HTTP/2 client connection (issue 17): the client's transport, one sans-io
//! [`H2Connection`] and a table of its streams. Each stream is an ordinary HTTP/1 [`Session`]
//! in the worker's slab (its "child") whose client transport is an in-memory [`Pipe`]: the
//! request goes into the pipe as HTTP/1.1 bytes, the child runs the same exchange code as any
//! HTTP/1 client (routing, cache, upstream pool, retries, limits, access log), and the HTTP/1
//! response it writes into the pipe is read back here and sent as HEADERS and DATA.
//!
//! Backpressure both ways is the pipe's bound and the h2 windows: request body bytes are
//! released to the client's window only once the child has read what went before them; response
//! bytes leave the pipe only as the stream's send window allows, so a stalled client makes the
//! child's flush block and its backend is not read further.
//!
//! The worker drives this session on its socket's events and whenever a child made progress;
//! the children it must drive or abort in turn are handed back in [`H2Work`] (no recursion).

use std::net::SocketAddr;
use std::time::Instant;

use slab::Slab;

use super::io::Pending;
use super::pipe::{Pipe, PipeOrigin};
use super::session::Session;
use super::transport::ClientTransport;
use crate::buffer::{Buffer, BufferPool, HeadPool};
use crate::config::Config;
use crate::h2::connection::{Event, H2Config, H2Connection, StreamState};
use crate::h2::frame::HeaderBlockLimits;
use crate::h2::request::RequestHead;
use crate::h2::translate::{
    write_h1_request, BodyKind, ChunkWriter, H1ResponseReader, ResponseFields, ResponsePart,
    TranslateError,
};
use crate::h2::ErrorCode;
use crate::http::request::RequestLine;
use crate::stats::Stats;

/// Response bytes a stream's pipe holds before its child's flush blocks.
const PIPE_OUTBOUND: usize = 64 * 1024;
/// Rounds of read / receive / pump / write per drive before the session yields to others.
const MAX_ROUNDS: usize = 16;

/// The worker's parts an h2 session uses while it is driven.
pub(super) struct H2Ctx<'a> {
    /// The worker's sessions: the children live there.
    pub sessions: &'a mut Slab<Session>,
    pub buffers: &'a mut BufferPool,
    /// Where pipes' buffers come from and go back to.
    pub heads: &'a mut HeadPool,
    pub spares: &'a mut StreamSpares,
    pub config: &'a Config,
    pub stats: &'a Stats,
    pub now: Instant,
    /// This session's key in the worker's h2 slab.
    pub key: usize,
    pub stopping: bool,
}

/// What an ended stream leaves for the worker's next ones (on any connection): its child's
/// request line strings and its response head's field list, so a stream's start and head
/// allocate nothing once the worker has run a few. Bounded; idle connections hold none.
#[derive(Debug, Default)]
pub(super) struct StreamSpares {
    lines: Vec<RequestLine>,
    fields: Vec<ResponseFields>,
    /// Request heads: a connection holds one while it has streams, and gives it back here
    /// when it goes idle.
    heads: Vec<RequestHead>,
}

/// Spares of each kind a worker keeps.
const MAX_SPARES: usize = 256;

impl StreamSpares {
    pub(super) fn put_line(&mut self, mut line: RequestLine) {
        if self.lines.len() < MAX_SPARES && line.method.capacity() > 0 {
            line.method.clear();
            line.target.clear();
            line.host.clear();
            self.lines.push(line);
        }
    }

    fn put_fields(&mut self, fields: ResponseFields) {
        if self.fields.len() < MAX_SPARES {
            self.fields.push(fields);
        }
    }

    fn put_head(&mut self, head: RequestHead) {
        if self.heads.len() < MAX_SPARES {
            self.heads.push(head);
        }
    }
}

/// Children the worker must drive (their pipe moved) or abort (their stream was reset or the
/// connection ended), and children started (the worker counts them).
#[derive(Debug, Default)]
pub(super) struct H2Work {
    pub drive: Vec<usize>,
    pub abort: Vec<usize>,
    /// The session wants another turn (it stopped after `MAX_ROUNDS` with work left).
    pub again: bool,
}

/// Where a stream's child is.
#[derive(Debug)]
enum Child {
    /// Running in the worker's slab under this key.
    Running(usize),
    /// It closed; what it wrote and was not yet sent is drained from its pipe here.
    Closed(Box<Pipe>),
}

/// One stream: its child and the two directions' progress.
#[derive(Debug)]
struct StreamLink {
    id: u32,
    child: Child,
    /// How the request's body goes into the pipe (`translate::write_h1_request` said): as it
    /// is, chunk-framed (`ChunkWriter`), or none.
    body: BodyKind,
    /// Request body bytes received and not yet in the pipe (not yet released to the client's
    /// window: bounded by it).
    pending: Vec<u8>,
    /// The client ended the request (END_STREAM or trailers).
    request_ended: bool,
    /// The client's trailers, for a chunked request body's trailer section.
    trailers: Option<RequestHead>,
    /// The pipe has the whole request and its end.
    end_written: bool,
    /// The child's HTTP/1 response, read back from the pipe.
    response: H1ResponseReader,
    /// The last pump left response bytes in the pipe because the client's window is shut.
    blocked_on_window: bool,
    /// In the session's `ready` list: something changed that the next pump acts on.
    ready: bool,
}

/// What pumping a stream found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pumped {
    Wait,
    Progress,
    /// The stream is over on both sides: forget it.
    Finished,
    /// The child's response cannot be completed: reset the stream.
    Broken,
}

/// The connection's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum H2State {
    Open,
    /// GOAWAY sent (stop, reload, idle, error): streams in flight finish, then close.
    GoingAway,
    Closed,
}

pub struct H2Session {
    client: ClientTransport,
    peer: SocketAddr,
    /// What its streams' children see of it (scheme, HSTS, the address the client connected to).
    origin: PipeOrigin,
    conn: H2Connection,
    input: Option<Buffer>,
    /// The open streams; a stream's key here is its pipe's `link`.
    streams: Slab<StreamLink>,
    /// Streams to pump (their child moved, the client sent on them, they are new), so a drive
    /// costs what changed, not the number of open streams. Streams waiting for window join
    /// when the connection says capacity grew.
    ready: Vec<usize>,
    /// `ready` taken for a pump (kept to reuse its allocation).
    pumping: Vec<usize>,
    state: H2State,
    deadline: Instant,
    /// When the client must have acknowledged pibl's SETTINGS (`client_header_timeout` after
    /// the connection became HTTP/2): past it, GOAWAY SETTINGS_TIMEOUT.
    settings_ack_by: Instant,
    /// Always empty: the output is the connection's own buffer, written as the "body".
    no_head: Pending,
    /// In the worker's drive queue already.
    pub(super) queued: bool,
}

/// The connection's limits from the config.
pub fn h2_config(config: &Config) -> H2Config {
    let ours = &config.http2;
    let mut h2 = H2Config::default();
    h2.settings.max_concurrent_streams = Some(ours.max_concurrent_streams);
    h2.settings.initial_window_size = ours.initial_window;
    h2.settings.max_frame_size = ours.max_frame_size;
    h2.settings.max_header_list_size = Some(ours.max_header_list_size);
    h2.header_block = HeaderBlockLimits::fitting(ours.max_frame_size, ours.max_header_list_size);
    h2
}

impl H2Session {
    /// A connection that agreed HTTP/2; `read` is what was read of it already (the preface).
    pub(super) fn new(
        client: ClientTransport,
        peer: SocketAddr,
        read: Buffer,
        config: &Config,
        now: Instant,
    ) -> H2Session {
        H2Session {
            origin: PipeOrigin {
                scheme: client.scheme(),
                hsts: client.hsts(),
                local: client.local_addr(),
            },
            client,
            peer,
            conn: H2Connection::new(h2_config(config)),
            input: Some(read),
            streams: Slab::new(),
            ready: Vec::new(),
            pumping: Vec::new(),
            state: H2State::Open,
            deadline: now + config.timeouts.client_header,
            settings_ack_by: now + config.timeouts.client_header,
            no_head: Pending::default(),
            queued: false,
        }
    }

    /// The next time `on_timeout` has work: the connection's deadline, or sooner the SETTINGS
    /// acknowledgement's while it is awaited.
    pub fn deadline(&self) -> Instant {
        if self.conn.awaits_settings_ack() {
            self.deadline.min(self.settings_ack_by)
        } else {
            self.deadline
        }
    }

    pub fn is_closed(&self) -> bool {
        self.state == H2State::Closed
    }

    pub fn on_client_event(&mut self, readable: bool, writable: bool, hup: bool) {
        self.client.on_event(readable, writable, hup);
    }

    pub(super) fn client(&self) -> &ClientTransport {
        &self.client
    }

    /// Graceful GOAWAY (stop, reload): streams the client opened finish, no new ones start.
    pub(super) fn go_away(&mut self) {
        if self.state == H2State::Open {
            self.conn
                .go_away(self.conn.last_client_stream(), ErrorCode::NO_ERROR);
            self.state = H2State::GoingAway;
        }
    }

    /// Starts the connection's next rate window (rapid reset, empty frames).
    pub(super) fn start_rate_window(&mut self) {
        self.conn.start_rate_window();
    }

    /// The deadline passed: nothing moved for `client_timeout` (`keepalive_timeout` with no
    /// stream). Streams that cannot send because the client keeps its window shut (or their
    /// child is gone and they still wait for window) are reset (CANCEL) and their children
    /// aborted: a zero-window stall holds a bounded pipe for a bounded time. Streams waiting on
    /// their backend keep their children's own deadlines. With no stream left: GOAWAY, close.
    /// First, though: a client that has not acknowledged pibl's SETTINGS by `settings_ack_by`
    /// gets GOAWAY SETTINGS_TIMEOUT (RFC 9113 §6.5.3) and the connection closes, its streams
    /// aborted.
    pub(super) fn on_timeout(&mut self, now: Instant, config: &Config, work: &mut H2Work) {
        if self.conn.awaits_settings_ack() && self.settings_ack_by <= now {
            log::info!(
                "client {}: HTTP/2 SETTINGS not acknowledged within client_header_timeout",
                self.peer
            );
            self.conn.settings_timed_out();
            return self.close(work);
        }
        let Self { streams, conn, .. } = self;
        streams.retain(|_, link| {
            let stalled = link.blocked_on_window;
            if stalled {
                conn.reset(link.id, ErrorCode::CANCEL);
                if let Child::Running(key) = link.child {
                    work.abort.push(key);
                }
            }
            !stalled
        });
        self.deadline = now + config.timeouts.client_idle;
        if self.streams.is_empty() {
            self.go_away();
            self.state = H2State::GoingAway;
            self.close(work);
        }
    }

    /// Runs the connection: reads frames, starts and feeds children, sends their responses,
    /// writes; until nothing moves (or `MAX_ROUNDS`).
    pub(super) fn drive(&mut self, ctx: &mut H2Ctx<'_>, work: &mut H2Work) {
        if self.state == H2State::Closed {
            return;
        }
        if ctx.stopping {
            self.go_away();
        }
        let mut moved_any = false;
        let mut rounds = 0;
        loop {
            let mut moved = self.read(ctx);
            moved |= self.take_events(ctx, work);
            moved |= self.pump_streams(ctx, work);
            match self.write() {
                Ok(wrote) => moved |= wrote,
                Err(()) => return self.close(work),
            }
            if !moved {
                break;
            }
            moved_any = true;
            rounds += 1;
            if rounds == MAX_ROUNDS {
                work.again = true;
                break;
            }
        }
        if self.streams.is_empty() {
            self.shed(ctx);
        }
        let t = &ctx.config.timeouts;
        if moved_any {
            let wait = if self.streams.is_empty() {
                t.keepalive
            } else {
                t.client_idle
            };
            self.deadline = ctx.now + wait;
        }
        let out_empty = self.conn.output().is_empty() && self.client.is_flushed();
        let finished = self.conn.is_finished() && out_empty;
        let client_gone = self.client.eof() && self.conn.output().is_empty();
        if finished
            || client_gone
            || (self.state == H2State::GoingAway && self.streams.is_empty() && out_empty)
        {
            self.close(work);
        }
    }

    /// The connection has no stream: what it kept for the next ones goes back to the worker or
    /// is freed, so an idle connection holds only its HPACK tables and its transport.
    fn shed(&mut self, ctx: &mut H2Ctx<'_>) {
        if let Some(head) = self.conn.take_spare_head() {
            ctx.spares.put_head(head);
        }
        if self.streams.capacity() > 0 {
            self.streams = Slab::new();
            self.ready = Vec::new();
            self.pumping = Vec::new();
        }
    }

    /// Ends the connection: every child still running is aborted, the socket shut.
    fn close(&mut self, work: &mut H2Work) {
        for link in self.streams.drain() {
            if let Child::Running(key) = link.child {
                work.abort.push(key);
            }
        }
        let _ = self.write();
        self.client.shutdown_write();
        self.state = H2State::Closed;
    }

    /// Gives the input buffer back when the worker drops the session.
    pub(super) fn release(&mut self, buffers: &mut BufferPool) {
        if let Some(b) = self.input.take() {
            buffers.put(b);
        }
    }

    /// Reads what the socket has and hands whole frames to the connection.
    fn read(&mut self, ctx: &mut H2Ctx<'_>) -> bool {
        if !self.conn.has_spare_head() {
            if let Some(head) = ctx.spares.heads.pop() {
                self.conn.recycle_head(head);
            }
        }
        let buf = self.input.get_or_insert_with(|| ctx.buffers.get());
        // Room for two whole frames of the largest size the client sends, within pibl's
        // SETTINGS_MAX_FRAME_SIZE (a smaller `buffer_size` could never hold one).
        buf.grow(self.conn.input_capacity());
        let mut moved = false;
        if !self.client.eof() && !buf.is_full() {
            match self.client.fill(buf) {
                Ok(f) => {
                    moved |= f.bytes > 0;
                    if f.eof {
                        self.client.set_eof();
                    }
                }
                Err(_) => self.client.set_eof(),
            }
        }
        if !buf.is_empty() {
            match self.conn.receive(buf.data()) {
                Ok(n) => {
                    buf.consume(n);
                    moved |= n > 0;
                }
                Err(e) => {
                    log::info!(
                        "client {}: HTTP/2 connection error {:?}: {}",
                        self.peer,
                        e.code,
                        e.reason
                    );
                    buf.clear();
                    self.client.set_eof();
                    self.state = H2State::GoingAway;
                    moved = true;
                }
            }
        }
        moved
    }

    /// Acts on what the client did: new streams start children, body bytes and trailers are
    /// kept for the pipes, resets abort children.
    fn take_events(&mut self, ctx: &mut H2Ctx<'_>, work: &mut H2Work) -> bool {
        let mut moved = false;
        while let Some(event) = self.conn.poll_event() {
            moved = true;
            match event {
                Event::Request {
                    stream,
                    head,
                    end_stream,
                } => {
                    self.start_stream(ctx, work, stream, &head, end_stream);
                    self.conn.recycle_head(head);
                }
                Event::Data {
                    stream,
                    bytes,
                    end_stream,
                } => {
                    let n = bytes.len();
                    match self.find(stream) {
                        Some(key) if !self.streams[key].request_ended => {
                            let link = &mut self.streams[key];
                            link.pending.extend_from_slice(self.conn.data(bytes));
                            link.request_ended = end_stream;
                            self.mark_ready(key);
                        }
                        // Nobody reads it: give the window back at once.
                        _ => self.conn.release(stream, n),
                    }
                }
                Event::Trailers { stream, fields } => {
                    if let Some(key) = self.find(stream) {
                        let link = &mut self.streams[key];
                        link.trailers = Some(fields);
                        link.request_ended = true;
                        self.mark_ready(key);
                    }
                }
                Event::Reset { stream, .. } => {
                    if let Some(key) = self.find(stream) {
                        if let Child::Running(child) = self.streams.remove(key).child {
                            work.abort.push(child);
                        }
                    }
                }
                Event::GoAway { .. } => {}
            }
        }
        moved
    }

    /// A new stream: its child session starts with the request head in its pipe.
    fn start_stream(
        &mut self,
        ctx: &mut H2Ctx<'_>,
        work: &mut H2Work,
        id: u32,
        head: &RequestHead,
        end_stream: bool,
    ) {
        let link = self.streams.vacant_key();
        let buffers = [ctx.heads.get(), ctx.heads.get()];
        let mut pipe = Pipe::new(ctx.key, link, id, self.origin, PIPE_OUTBOUND, buffers);
        let body = match write_h1_request(head, end_stream, pipe.inbound_mut()) {
            Ok(body) => body,
            Err(TranslateError::NoHost) => {
                // As HTTP/1.1 without Host: the child's parser answers 400 (and logs it).
                pipe.inbound_mut().extend_from_slice(b"\r\n");
                BodyKind::Empty
            }
            Err(TranslateError::Malformed(why)) => {
                log::info!("client {}: HTTP/2 stream {id}: {why}", self.peer);
                self.conn.reset(id, ErrorCode::PROTOCOL_ERROR);
                return;
            }
        };
        let no_body = body == BodyKind::Empty;
        if no_body {
            pipe.end_inbound();
        }
        let timeout = ctx.config.timeouts.client_header;
        let mut session =
            Session::with_transport(ClientTransport::pipe(pipe), self.peer, ctx.now, timeout);
        if let Some(line) = ctx.spares.lines.pop() {
            session.conn.line = line;
        }
        let spare_fields = ctx.spares.fields.pop().unwrap_or_default();
        let key = ctx.sessions.insert(session);
        ctx.stats.h2_stream_started();
        work.drive.push(key);
        self.streams.insert(StreamLink {
            id,
            child: Child::Running(key),
            body,
            pending: Vec::new(),
            // A body the HTTP/1 request does not carry is not waited for.
            request_ended: end_stream || no_body,
            trailers: None,
            end_written: no_body,
            response: H1ResponseReader::with_spare(head.method() == b"HEAD", spare_fields),
            blocked_on_window: false,
            ready: false,
        });
        self.mark_ready(link);
    }

    /// The key of stream `id` in the table.
    fn find(&self, id: u32) -> Option<usize> {
        self.streams
            .iter()
            .find_map(|(key, link)| (link.id == id).then_some(key))
    }

    /// Stream `key` has something for the next pump.
    fn mark_ready(&mut self, key: usize) {
        if let Some(link) = self.streams.get_mut(key) {
            set_ready(&mut self.ready, key, link);
        }
    }

    /// A running child read or wrote its pipe (`link`, stream `id`).
    pub(super) fn child_moved(&mut self, link: usize, id: u32) {
        if self.streams.get(link).is_some_and(|l| l.id == id) {
            self.mark_ready(link);
        }
    }

    /// A child closed: its pipe stays here until what it wrote is sent.
    pub(super) fn child_closed(&mut self, pipe: Box<Pipe>) {
        let key = pipe.link;
        if let Some(link) = self.streams.get_mut(key) {
            // The key may have gone to a newer stream if this one was reset.
            if link.id == pipe.stream_id {
                link.child = Child::Closed(pipe);
                self.mark_ready(key);
            }
        }
    }

    /// Moves request bytes into the ready streams' pipes and their responses out of them.
    fn pump_streams(&mut self, ctx: &mut H2Ctx<'_>, work: &mut H2Work) -> bool {
        if self.conn.take_capacity_grown() {
            let Self { streams, ready, .. } = self;
            for (key, link) in streams.iter_mut().filter(|(_, l)| l.blocked_on_window) {
                set_ready(ready, key, link);
            }
        }
        let mut moved = false;
        std::mem::swap(&mut self.ready, &mut self.pumping);
        for key in self.pumping.drain(..) {
            let Self { streams, conn, .. } = self;
            let Some(link) = streams.get_mut(key) else {
                continue;
            };
            link.ready = false;
            // Taken out for the pumps, which borrow the rest of the link.
            let mut child = std::mem::replace(&mut link.child, Child::Running(usize::MAX));
            let (pipe, running) = match &mut child {
                Child::Running(child_key) => match ctx
                    .sessions
                    .get_mut(*child_key)
                    .and_then(|s| s.client_mut().pipe_mut())
                {
                    Some(p) => (p, Some(*child_key)),
                    None => {
                        // Not there: a bug; the stream cannot go on.
                        conn.reset(link.id, ErrorCode::INTERNAL_ERROR);
                        streams.remove(key);
                        continue;
                    }
                },
                Child::Closed(p) => (&mut **p, None),
            };
            let fed = pump_request(link, pipe, conn);
            let sent = match fed {
                Ok(_) => pump_response(link, pipe, conn, running.is_none(), ctx.spares),
                Err(()) => Pumped::Broken,
            };
            let fed = fed == Ok(true);
            link.child = child;
            if fed || sent == Pumped::Progress {
                moved = true;
                if let Some(child_key) = running {
                    work.drive.push(child_key);
                }
            }
            match sent {
                Pumped::Finished => {
                    if conn.stream_state(link.id) != StreamState::Closed {
                        // The response is whole; the rest of the request is not wanted.
                        conn.reset(link.id, ErrorCode::NO_ERROR);
                    }
                    if let Child::Closed(pipe) = streams.remove(key).child {
                        for buffer in pipe.into_buffers() {
                            ctx.heads.put(buffer);
                        }
                    }
                    moved = true;
                }
                Pumped::Broken => {
                    conn.reset(link.id, ErrorCode::INTERNAL_ERROR);
                    if let Some(child_key) = running {
                        work.abort.push(child_key);
                    }
                    streams.remove(key);
                    moved = true;
                }
                Pumped::Wait | Pumped::Progress => {}
            }
        }
        moved
    }

    /// Writes what the connection has to send. `Err`: the client is gone.
    fn write(&mut self) -> Result<bool, ()> {
        if self.conn.output().is_empty() && self.client.is_flushed() {
            return Ok(false);
        }
        match self.client.flush(&mut self.no_head, self.conn.output()) {
            Ok(f) => {
                self.conn.advance_output(f.body);
                Ok(f.total > 0)
            }
            Err(_) => Err(()),
        }
    }
}

/// Puts stream `key` on the `ready` list, once.
fn set_ready(ready: &mut Vec<usize>, key: usize, link: &mut StreamLink) {
    if !link.ready {
        link.ready = true;
        ready.push(key);
    }
}

/// Moves the body bytes received into the pipe once the child has read all it had (so the
/// pipe holds at most one window's worth), releasing them to the client's window; then the
/// request's end (the last chunk and trailers when chunked). `Ok(true)`: something moved;
/// `Err`: the trailers cannot be written as HTTP/1 (the stream is reset).
fn pump_request(
    link: &mut StreamLink,
    pipe: &mut Pipe,
    conn: &mut H2Connection,
) -> Result<bool, ()> {
    if link.end_written || pipe.inbound_unread() > 0 {
        return Ok(false);
    }
    let mut moved = false;
    if !link.pending.is_empty() {
        let n = link.pending.len();
        match link.body {
            BodyKind::Chunked => ChunkWriter.data(&link.pending, pipe.inbound_mut()),
            _ => pipe.push_inbound(&link.pending),
        }
        link.pending.clear();
        conn.release(link.id, n);
        moved = true;
    }
    if link.request_ended {
        if link.body == BodyKind::Chunked {
            ChunkWriter
                .finish(link.trailers.as_ref(), pipe.inbound_mut())
                .map_err(|_| ())?;
        }
        pipe.end_inbound();
        link.end_written = true;
        moved = true;
    }
    Ok(moved)
}

/// Reads the child's HTTP/1 response from the pipe (`H1ResponseReader`) and sends it on the
/// stream as far as the windows allow. `child_closed`: nothing more will be written to the pipe.
fn pump_response(
    link: &mut StreamLink,
    pipe: &mut Pipe,
    conn: &mut H2Connection,
    child_closed: bool,
    spares: &mut StreamSpares,
) -> Pumped {
    let mut moved = false;
    let waiting = |moved: bool| {
        if moved {
            Pumped::Progress
        } else {
            Pumped::Wait
        }
    };
    loop {
        if link.response.is_finished() {
            let rest = pipe.outbound().len();
            if rest > 0 {
                // Nothing may follow a whole response on a stream.
                pipe.take_outbound(rest);
            }
            return if child_closed {
                Pumped::Finished
            } else {
                waiting(moved)
            };
        }
        let out = pipe.outbound();
        let window = conn.send_capacity(link.id);
        let (n, part) = match link.response.next_limited(out, child_closed, window) {
            Ok(next) => next,
            Err(_) => return Pumped::Broken,
        };
        link.blocked_on_window = false;
        let sent = match part {
            None if n == 0 => {
                link.blocked_on_window = window == 0 && !out.is_empty();
                return waiting(moved);
            }
            None => Ok(()),
            // An interim response (100, 103 Early Hints) is a HEADERS frame of its own before
            // the final one (RFC 9113 §8.1).
            Some(ResponsePart::Informational { status, fields }) => {
                conn.send_response_fields(link.id, status, fields.iter(), false)
            }
            Some(ResponsePart::Head {
                status,
                fields,
                end_stream,
            }) => {
                let sent = conn.send_response_fields(link.id, status, fields.iter(), end_stream);
                spares.put_fields(fields);
                sent
            }
            Some(ResponsePart::Data { bytes, end_stream }) => {
                let data = out.get(bytes).unwrap_or(&[]);
                match conn.send_data(link.id, data, end_stream) {
                    // The reader gave no more than the window takes.
                    Ok(sent) if sent == data.len() => Ok(()),
                    _ => return Pumped::Broken,
                }
            }
            Some(ResponsePart::Trailers(fields)) => {
                conn.send_trailer_fields(link.id, fields.iter())
            }
            Some(ResponsePart::End) => conn.send_data(link.id, &[], true).map(|_| ()),
        };
        if sent.is_err() {
            return Pumped::Broken;
        }
        pipe.take_outbound(n);
        moved = true;
    }
}
