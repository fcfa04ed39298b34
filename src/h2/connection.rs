//! The HTTP/2 server connection, sans-io: the client's bytes go in through
//! [`H2Connection::receive`], what happened comes out of [`H2Connection::poll_event`], and what
//! to write is [`H2Connection::output`]. No socket, no clock: the worker (a later phase) reads,
//! writes and times; this file keeps RFC 9113's rules, the stream table and the defences.
//!
//! Stream states (RFC 9113 §5.1): a stream in the table is open, half-closed (remote) or
//! half-closed (local); an id above the highest the client opened is idle, any other id not in
//! the table is closed. A stream leaves the table when both sides have ended it or on a reset.
//!
//! `connection/receive.rs` is the reading half (frames acted on), `connection/send.rs` the
//! writing half.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::Range;

use super::error::{ConnectionError, ErrorCode};
use super::flow::Window;
use super::frame::{
    announced_len, check_client_preface, parse_frame, write_data, write_goaway, write_headers,
    write_ping, write_rst_stream, write_settings, write_settings_ack, write_window_update,
    Assembled, Frame, HeaderBlockAssembler, HeaderBlockLimits, Parsed, CLIENT_PREFACE,
    DEFAULT_MAX_FRAME_SIZE, FRAME_HEADER_LEN,
};
use super::hpack::{DecodedHeaders, Decoder, Encoder, Indexing};
use super::request::{validate, validate_into, BlockKind, RequestHead};
use super::settings::Settings;

/// The connection's limits; the SETTINGS pibl advertises are in `settings`.
#[derive(Debug, Clone, Copy)]
pub struct H2Config {
    /// pibl's SETTINGS. `max_concurrent_streams` bounds the stream table (128 when `None`).
    pub settings: Settings,
    /// Output bytes queued before `receive` stops reading and `send_data` takes nothing.
    pub max_output: usize,
    /// SETTINGS and PING ACKs queued while the output is not drained: past it, the client is
    /// flooding (ENHANCE_YOUR_CALM).
    pub max_queued_acks: usize,
    /// Streams reset by the client, or refused, per rate window (see
    /// [`H2Connection::start_rate_window`]): past it, the rapid-reset defence (CVE-2023-44487)
    /// ends the connection with ENHANCE_YOUR_CALM.
    pub max_resets_per_window: u32,
    /// DATA frames without data or END_STREAM per rate window (CVE-2019-9518's empty-frame
    /// flood: work for no bytes): past it, ENHANCE_YOUR_CALM.
    pub max_empty_frames_per_window: u32,
    pub header_block: HeaderBlockLimits,
}

/// The streams pibl accepts at once when its settings name no number.
pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 128;
/// The decoded header list's bound when the settings name none.
pub const DEFAULT_MAX_HEADER_LIST: u32 = 64 * 1024;
/// The SETTINGS_MAX_HEADER_LIST_SIZE pibl advertises and enforces unless configured
/// (`http2_max_header_list_size`).
pub const DEFAULT_HEADER_LIST_SIZE: u32 = 32 * 1024;
/// The read buffer a connection needs while the client's frames are no larger than the RFC's
/// default: two frames with their headers (one being parsed, the next arriving).
pub const DEFAULT_INPUT_CAPACITY: usize = 2 * (DEFAULT_MAX_FRAME_SIZE as usize + FRAME_HEADER_LEN);

impl Default for H2Config {
    fn default() -> Self {
        H2Config {
            settings: Settings {
                enable_push: false,
                max_concurrent_streams: Some(DEFAULT_MAX_CONCURRENT_STREAMS),
                max_header_list_size: Some(DEFAULT_HEADER_LIST_SIZE),
                ..Settings::default()
            },
            max_output: 256 * 1024,
            max_queued_acks: 64,
            max_resets_per_window: 200,
            max_empty_frames_per_window: 1000,
            header_block: HeaderBlockLimits::default(),
        }
    }
}

/// What the client did, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A valid request head on a new stream.
    Request {
        stream: u32,
        head: RequestHead,
        end_stream: bool,
    },
    /// Request body bytes: read them with [`H2Connection::data`] before the next `receive`, and
    /// [`H2Connection::release`] them once consumed (that re-opens the stream's window).
    Data {
        stream: u32,
        bytes: Range<usize>,
        end_stream: bool,
    },
    /// Request trailers (they end the stream).
    Trailers { stream: u32, fields: RequestHead },
    /// A stream announced by `Request` ended early: by the client's RST_STREAM, or by pibl for
    /// the client's error (`code` says which).
    Reset { stream: u32, code: ErrorCode },
    /// The client is going away: streams above `last_stream_id` were not processed by it.
    GoAway {
        last_stream_id: u32,
        code: ErrorCode,
    },
}

/// A send refused because of the stream's state (the caller's mistake or a race with a reset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// Not in the table: closed, reset or never opened.
    NoSuchStream,
    /// pibl already ended its side of the stream.
    AlreadyEnded,
}

/// A stream's state as RFC 9113 §5.1 names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamState {
    Idle,
    Open,
    HalfClosedRemote,
    HalfClosedLocal,
    Closed,
}

#[derive(Debug)]
struct Stream {
    state: StreamState,
    send_window: Window,
    recv_window: Window,
    /// Bytes received and released (or padding) not yet given back by WINDOW_UPDATE.
    pending_update: u32,
    content_length: Option<u64>,
    data_received: u64,
}

/// The connection's own lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnState {
    /// Waiting for the 24-byte client preface.
    Preface,
    /// The preface came; the first frame must be the client's SETTINGS (RFC 9113 §3.4).
    FirstSettings,
    Open,
    /// A connection error was sent: nothing more is read.
    Failed(ConnectionError),
}

/// One client's HTTP/2 connection, server side.
#[derive(Debug)]
pub struct H2Connection {
    config: H2Config,
    state: ConnState,
    peer: Settings,
    max_streams: u32,
    streams: HashMap<u32, Stream, BuildHasherDefault<StreamIdHasher>>,
    /// A send window grew or output was written since `take_capacity_grown`.
    capacity_grew: bool,
    /// The highest stream id the client opened (ids at or below it are no longer idle).
    last_client_stream: u32,
    conn_send_window: Window,
    conn_recv_window: Window,
    conn_pending_update: u32,
    assembler: HeaderBlockAssembler,
    decoder: Decoder,
    decoded: DecodedHeaders,
    encoder: Encoder,
    block_buf: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    events: VecDeque<Event>,
    /// DATA bytes of queued `Event::Data`; cleared once the events are all taken.
    event_bytes: Vec<u8>,
    queued_acks: usize,
    resets_in_window: u32,
    empty_frames_in_window: u32,
    /// GOAWAY pibl sent: streams above this id are ignored.
    goaway_sent: Option<u32>,
    goaway_received: bool,
    /// The last [`RECENTLY_RESET`] streams reset, by either side.
    recently_reset: VecDeque<u32>,
    /// A request head given back ([`H2Connection::recycle_head`]): the next request's is
    /// written into its allocations.
    spare_head: Option<RequestHead>,
    /// pibl's SETTINGS were sent and the client has not acknowledged them yet: the session
    /// times that (RFC 9113 §6.5.3, SETTINGS_TIMEOUT), this file has no clock.
    settings_unacked: bool,
    /// The largest payload a client frame has announced (at least the RFC's default), so the
    /// read buffer grows to hold frames above 16384 only for a client that sends them.
    largest_frame: u32,
}

/// The stream table's hash: ids must increase (RFC 9113 §5.1.1) and at most
/// `max_concurrent_streams` are open, so a client cannot pile them into one bucket; SipHash's
/// flooding resistance costs more per lookup than it buys here.
#[derive(Debug, Default)]
struct StreamIdHasher(u64);

impl Hasher for StreamIdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u32(u32::from(b) ^ (self.0 as u32).rotate_left(8));
        }
    }

    fn write_u32(&mut self, id: u32) {
        // Fibonacci hashing; the fold brings the product's high bits into the low ones, which
        // pick the bucket (client ids are all odd).
        let h = u64::from(id).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = h ^ (h >> 29);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// How many reset stream ids are remembered.
const RECENTLY_RESET: usize = 32;

fn conn_err(code: ErrorCode, reason: &'static str) -> ConnectionError {
    ConnectionError::new(code, reason)
}

impl H2Connection {
    /// A server connection; pibl's SETTINGS are queued in the output at once (RFC 9113 §3.4).
    pub fn new(config: H2Config) -> Self {
        let mut out = Vec::new();
        write_settings(&mut out, &config.settings.to_params());
        let max_list = config
            .settings
            .max_header_list_size
            .unwrap_or(DEFAULT_MAX_HEADER_LIST) as usize;
        H2Connection {
            state: ConnState::Preface,
            peer: Settings::default(),
            max_streams: config
                .settings
                .max_concurrent_streams
                .unwrap_or(DEFAULT_MAX_CONCURRENT_STREAMS),
            streams: HashMap::default(),
            capacity_grew: false,
            last_client_stream: 0,
            conn_send_window: Window::new(65_535),
            conn_recv_window: Window::new(65_535),
            conn_pending_update: 0,
            assembler: HeaderBlockAssembler::new(config.header_block),
            decoder: Decoder::new(config.settings.header_table_size as usize, max_list),
            decoded: DecodedHeaders::new(),
            encoder: Encoder::default(),
            block_buf: Vec::new(),
            out,
            out_pos: 0,
            events: VecDeque::new(),
            event_bytes: Vec::new(),
            queued_acks: 0,
            resets_in_window: 0,
            empty_frames_in_window: 0,
            goaway_sent: None,
            goaway_received: false,
            recently_reset: VecDeque::with_capacity(RECENTLY_RESET),
            spare_head: None,
            settings_unacked: true,
            largest_frame: DEFAULT_MAX_FRAME_SIZE,
            config,
        }
    }

    // ---- reading ----

    /// Consumes the preface and whole frames from `input`; returns the bytes taken (a partial
    /// frame is left for the next call, with more bytes after it). Stops early while the output
    /// holds `max_output` bytes or more. On a connection error, GOAWAY is queued in the output
    /// and every later call returns the same error.
    pub fn receive(&mut self, input: &[u8]) -> Result<usize, ConnectionError> {
        if let ConnState::Failed(e) = self.state {
            return Err(e);
        }
        if self.events.is_empty() {
            self.event_bytes.clear();
        }
        match self.read_frames(input) {
            Ok(n) => Ok(n),
            Err(e) => {
                self.fail(e);
                Err(e)
            }
        }
    }

    /// The client ended its side of the stream.
    fn end_remote(&mut self, stream_id: u32) {
        if let Some(stream) = self.streams.get_mut(&stream_id) {
            match stream.state {
                StreamState::HalfClosedLocal => {
                    self.streams.remove(&stream_id);
                }
                _ => stream.state = StreamState::HalfClosedRemote,
            }
        }
    }

    /// pibl ended its side of the stream.
    fn end_local(&mut self, stream_id: u32) {
        if let Some(stream) = self.streams.get_mut(&stream_id) {
            match stream.state {
                StreamState::HalfClosedRemote => {
                    self.streams.remove(&stream_id);
                }
                _ => stream.state = StreamState::HalfClosedLocal,
            }
        }
    }

    /// A stream error (RFC 9113 §5.4.2): RST_STREAM; the caller hears of it if it knew the
    /// stream. Counted with the client's resets: invalid requests cost a decode and a reset
    /// each, the same work as a rapid reset.
    fn stream_error(&mut self, stream_id: u32, code: ErrorCode) -> Result<(), ConnectionError> {
        write_rst_stream(&mut self.out, stream_id, code);
        if self.streams.remove(&stream_id).is_some() {
            self.events.push_back(Event::Reset {
                stream: stream_id,
                code,
            });
        }
        self.remember_reset(stream_id);
        self.count_reset()
    }

    /// Frames the client sent before it saw a reset are ignored, not connection errors
    /// (RFC 9113 §5.1): the last few reset ids are kept to tell them from unexpected ids.
    fn remember_reset(&mut self, stream_id: u32) {
        if self.recently_reset.len() == RECENTLY_RESET {
            self.recently_reset.pop_front();
        }
        self.recently_reset.push_back(stream_id);
    }

    fn count_reset(&mut self) -> Result<(), ConnectionError> {
        self.resets_in_window += 1;
        if self.resets_in_window > self.config.max_resets_per_window {
            return Err(conn_err(
                ErrorCode::ENHANCE_YOUR_CALM,
                "too many streams reset (rapid reset)",
            ));
        }
        Ok(())
    }

    fn count_ack(&mut self) -> Result<(), ConnectionError> {
        self.queued_acks += 1;
        if self.queued_acks > self.config.max_queued_acks {
            return Err(conn_err(
                ErrorCode::ENHANCE_YOUR_CALM,
                "SETTINGS or PING flood",
            ));
        }
        Ok(())
    }

    fn is_idle(&self, stream_id: u32) -> bool {
        stream_id > self.last_client_stream
    }

    fn fail(&mut self, error: ConnectionError) {
        write_goaway(
            &mut self.out,
            self.last_client_stream,
            error.code,
            error.reason.as_bytes(),
        );
        self.streams.clear();
        self.state = ConnState::Failed(error);
    }

    /// The next thing the client did, in order.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The bytes of an `Event::Data`, valid until the next `receive`.
    pub fn data(&self, bytes: Range<usize>) -> &[u8] {
        self.event_bytes.get(bytes).unwrap_or(&[])
    }

    /// The caller consumed `n` bytes of the stream's body: the stream's window re-opens
    /// (WINDOW_UPDATE once half the window is due, so updates stay few).
    pub fn release(&mut self, stream_id: u32, n: usize) {
        let half = (self.config.settings.initial_window_size / 2).max(1);
        let Some(stream) = self.streams.get_mut(&stream_id) else {
            return;
        };
        stream.pending_update = stream
            .pending_update
            .saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
        if !matches!(
            stream.state,
            StreamState::Open | StreamState::HalfClosedLocal
        ) {
            return;
        }
        let due = stream.pending_update;
        if due >= half && stream.recv_window.increase(due).is_ok() {
            write_window_update(&mut self.out, stream_id, due);
            stream.pending_update = 0;
        }
    }

    /// The most request-body bytes a stream can have in flight unreleased: what the caller
    /// must be ready to buffer per stream (pibl's INITIAL_WINDOW_SIZE).
    pub fn stream_buffer_bound(&self) -> u32 {
        self.config.settings.initial_window_size
    }

    /// A request head from an `Event::Request` (or any spare), done with: the next request's
    /// head reuses its allocations.
    pub fn recycle_head(&mut self, head: RequestHead) {
        self.spare_head = Some(head);
    }

    pub fn has_spare_head(&self) -> bool {
        self.spare_head.is_some()
    }

    /// The spare head, for a connection going idle to give back.
    pub fn take_spare_head(&mut self) -> Option<RequestHead> {
        self.spare_head.take()
    }

    /// Whether pibl's SETTINGS still wait for the client's ACK: the caller gives the client a
    /// bounded time (it has the clock), then calls [`H2Connection::settings_timed_out`].
    pub fn awaits_settings_ack(&self) -> bool {
        self.settings_unacked && !matches!(self.state, ConnState::Failed(_))
    }

    /// The client did not acknowledge pibl's SETTINGS in time: the connection error
    /// SETTINGS_TIMEOUT (RFC 9113 §6.5.3), GOAWAY queued. Nothing if the ACK came.
    pub fn settings_timed_out(&mut self) {
        if self.awaits_settings_ack() {
            self.fail(conn_err(
                ErrorCode::SETTINGS_TIMEOUT,
                "SETTINGS not acknowledged in time",
            ));
        }
    }

    /// The read buffer `receive` needs: two frames of the largest size the client has started
    /// to send, within pibl's SETTINGS_MAX_FRAME_SIZE ([`DEFAULT_INPUT_CAPACITY`] until a
    /// client sends a frame above 16384 bytes). A buffer smaller than this may never hold a
    /// whole frame.
    pub fn input_capacity(&self) -> usize {
        2 * (self.largest_frame as usize + FRAME_HEADER_LEN)
    }

    /// Starts a new rate window for the reset and empty-frame counts; the worker calls it on a
    /// timer (until then the counts are per connection).
    pub fn start_rate_window(&mut self) {
        self.resets_in_window = 0;
        self.empty_frames_in_window = 0;
    }
}

/// The preface's length, for callers that sniff h2c prior knowledge.
pub const PREFACE_LEN: usize = CLIENT_PREFACE.len();

mod receive;
mod send;

#[cfg(test)]
#[path = "connection_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "connection_defence_tests.rs"]
mod defence_tests;

#[cfg(test)]
#[path = "connection_settings_tests.rs"]
mod settings_tests;
