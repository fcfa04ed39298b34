//! The HTTP/2 server connection, sans-io: the client's bytes go in through
//! [`H2Connection::receive`], what happened comes out of [`H2Connection::poll_event`], and what
//! to write is [`H2Connection::output`]. No socket, no clock: the worker (a later phase) reads,
//! writes and times; this file keeps RFC 9113's rules, the stream table and the defences.
//!
//! Stream states (RFC 9113 §5.1): a stream in the table is open, half-closed (remote) or
//! half-closed (local); an id above the highest the client opened is idle, any other id not in
//! the table is closed. A stream leaves the table when both sides have ended it or on a reset.

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

    fn read_frames(&mut self, input: &[u8]) -> Result<usize, ConnectionError> {
        let mut at = 0;
        if self.state == ConnState::Preface {
            match check_client_preface(input)? {
                None => return Ok(0),
                Some(n) => {
                    at = n;
                    self.state = ConnState::FirstSettings;
                }
            }
        }
        while self.output().len() < self.config.max_output {
            let max_frame = self.config.settings.max_frame_size;
            match parse_frame(&input[at..], max_frame)? {
                Parsed::Incomplete => {
                    // Within the advertised size (parse_frame refused larger ones).
                    if let Some(len) = announced_len(&input[at..]) {
                        self.largest_frame = self.largest_frame.max(len);
                    }
                    break;
                }
                Parsed::StreamError { error, consumed } => {
                    at += consumed;
                    if self.state == ConnState::FirstSettings {
                        return Err(conn_err(
                            ErrorCode::PROTOCOL_ERROR,
                            "first frame not SETTINGS",
                        ));
                    }
                    if self.assembler.open_stream().is_some() {
                        return Err(conn_err(
                            ErrorCode::PROTOCOL_ERROR,
                            "a frame inside a header block",
                        ));
                    }
                    self.stream_error(error.stream_id, error.code)?;
                }
                Parsed::Frame { frame, consumed } => {
                    at += consumed;
                    if self.state == ConnState::FirstSettings {
                        if !matches!(frame, Frame::Settings { ack: false, .. }) {
                            return Err(conn_err(
                                ErrorCode::PROTOCOL_ERROR,
                                "first frame not SETTINGS",
                            ));
                        }
                        self.state = ConnState::Open;
                    }
                    let is_header_frame =
                        matches!(frame, Frame::Headers { .. } | Frame::Continuation { .. });
                    if !is_header_frame && self.assembler.open_stream().is_none() {
                        self.on_frame(frame)?;
                        continue;
                    }
                    // Decoded before anything else, even for a stream that will be refused:
                    // HPACK's table must stay in step with the client's.
                    let whole = match self.assembler.accept(frame)? {
                        Assembled::Pending | Assembled::Other(_) => None,
                        Assembled::Block(block) => {
                            self.decoder
                                .decode(block.block, &mut self.decoded)
                                .map_err(|e| conn_err(e.code(), "header block not decodable"))?;
                            let self_dependent = block
                                .priority
                                .is_some_and(|p| p.depends_on == block.stream_id);
                            Some((block.stream_id, block.end_stream, self_dependent))
                        }
                    };
                    if let Some((stream_id, end_stream, self_dependent)) = whole {
                        self.on_headers(stream_id, end_stream, self_dependent)?;
                    }
                }
            }
        }
        Ok(at)
    }

    fn on_frame(&mut self, frame: Frame<'_>) -> Result<(), ConnectionError> {
        match frame {
            Frame::Data {
                stream_id,
                end_stream,
                data,
                flow_len,
            } => self.on_data(stream_id, end_stream, data, flow_len),
            Frame::Headers { .. } | Frame::Continuation { .. } => Err(conn_err(
                ErrorCode::INTERNAL_ERROR,
                "header frame past the assembler",
            )),
            // Deprecated by RFC 9113 §5.3.2: accepted and ignored.
            Frame::Priority { .. } => Ok(()),
            Frame::RstStream { stream_id, code } => {
                if self.is_idle(stream_id) {
                    return Err(conn_err(
                        ErrorCode::PROTOCOL_ERROR,
                        "RST_STREAM on an idle stream",
                    ));
                }
                if self.streams.remove(&stream_id).is_some() {
                    self.events.push_back(Event::Reset {
                        stream: stream_id,
                        code,
                    });
                    self.remember_reset(stream_id);
                    self.count_reset()?;
                }
                Ok(())
            }
            Frame::Settings { ack: true, .. } => {
                // pibl sends one SETTINGS frame; an ACK with none outstanding is ignored.
                self.settings_unacked = false;
                Ok(())
            }
            Frame::Settings { ack: false, params } => {
                let change = self.peer.apply(params)?;
                if let Some((old, new)) = change.initial_window_size {
                    self.capacity_grew = true;
                    for stream in self.streams.values_mut() {
                        stream
                            .send_window
                            .apply_initial_change(old, new)
                            .map_err(|e| {
                                conn_err(e.code(), "INITIAL_WINDOW_SIZE overflows a window")
                            })?;
                    }
                }
                if let Some(size) = change.header_table_size {
                    // pibl's encoder indexes a few repeated response fields: 4 KiB is plenty.
                    self.encoder.set_table_size(size.min(4096) as usize);
                }
                write_settings_ack(&mut self.out);
                self.count_ack()
            }
            Frame::Ping { ack: true, .. } => Ok(()),
            Frame::Ping {
                ack: false,
                payload,
            } => {
                write_ping(&mut self.out, payload, true);
                self.count_ack()
            }
            Frame::GoAway {
                last_stream_id,
                code,
                ..
            } => {
                self.goaway_received = true;
                self.events.push_back(Event::GoAway {
                    last_stream_id,
                    code,
                });
                Ok(())
            }
            Frame::WindowUpdate {
                stream_id: 0,
                increment,
            } => {
                self.capacity_grew = true;
                self.conn_send_window
                    .increase(increment)
                    .map_err(|e| conn_err(e.code(), "connection window past 2^31-1"))
            }
            Frame::WindowUpdate {
                stream_id,
                increment,
            } => {
                if self.is_idle(stream_id) {
                    return Err(conn_err(
                        ErrorCode::PROTOCOL_ERROR,
                        "WINDOW_UPDATE on an idle stream",
                    ));
                }
                let overflow = self
                    .streams
                    .get_mut(&stream_id)
                    .is_some_and(|s| s.send_window.increase(increment).is_err());
                if overflow {
                    return self.stream_error(stream_id, ErrorCode::FLOW_CONTROL_ERROR);
                }
                self.capacity_grew = true;
                Ok(())
            }
            Frame::Unknown { .. } => Ok(()),
        }
    }

    fn on_headers(
        &mut self,
        stream_id: u32,
        end_stream: bool,
        self_dependent: bool,
    ) -> Result<(), ConnectionError> {
        if let Some(stream) = self.streams.get(&stream_id) {
            // A second block on a live stream: trailers, which must end it.
            if !matches!(
                stream.state,
                StreamState::Open | StreamState::HalfClosedLocal
            ) {
                return self.stream_error(stream_id, ErrorCode::STREAM_CLOSED);
            }
            if !end_stream {
                return self.stream_error(stream_id, ErrorCode::PROTOCOL_ERROR);
            }
            let fields = match validate(&self.decoded, BlockKind::Trailers) {
                Ok(fields) => fields,
                Err(_) => {
                    return self.stream_error(stream_id, ErrorCode::PROTOCOL_ERROR);
                }
            };
            let (cl, received) = (stream.content_length, stream.data_received);
            if cl.is_some_and(|cl| cl != received) {
                return self.stream_error(stream_id, ErrorCode::PROTOCOL_ERROR);
            }
            self.events.push_back(Event::Trailers {
                stream: stream_id,
                fields,
            });
            self.end_remote(stream_id);
            return Ok(());
        }
        if stream_id.is_multiple_of(2) {
            return Err(conn_err(
                ErrorCode::PROTOCOL_ERROR,
                "even stream id from a client",
            ));
        }
        if stream_id <= self.last_client_stream {
            if self.recently_reset.contains(&stream_id) {
                return Ok(());
            }
            return Err(conn_err(
                ErrorCode::PROTOCOL_ERROR,
                "HEADERS on a closed or lower stream id",
            ));
        }
        self.last_client_stream = stream_id;
        if self.goaway_sent.is_some_and(|last| stream_id > last) {
            // RFC 9113 §6.8: streams after our GOAWAY's last id are ignored.
            return Ok(());
        }
        if self.streams.len() >= self.max_streams as usize {
            return self.stream_error(stream_id, ErrorCode::REFUSED_STREAM);
        }
        if self_dependent {
            return self.stream_error(stream_id, ErrorCode::PROTOCOL_ERROR);
        }
        let spare = self.spare_head.take().unwrap_or_default();
        let head = match validate_into(spare, &self.decoded, BlockKind::Request) {
            Ok(head) => head,
            Err(_) => {
                return self.stream_error(stream_id, ErrorCode::PROTOCOL_ERROR);
            }
        };
        if end_stream && head.content_length.is_some_and(|cl| cl != 0) {
            return self.stream_error(stream_id, ErrorCode::PROTOCOL_ERROR);
        }
        self.streams.insert(
            stream_id,
            Stream {
                state: if end_stream {
                    StreamState::HalfClosedRemote
                } else {
                    StreamState::Open
                },
                send_window: Window::new(self.peer.initial_window_size),
                recv_window: Window::new(self.config.settings.initial_window_size),
                pending_update: 0,
                content_length: head.content_length,
                data_received: 0,
            },
        );
        self.events.push_back(Event::Request {
            stream: stream_id,
            head,
            end_stream,
        });
        Ok(())
    }

    fn on_data(
        &mut self,
        stream_id: u32,
        end_stream: bool,
        data: &[u8],
        flow_len: u32,
    ) -> Result<(), ConnectionError> {
        // The connection window counts every DATA frame, whatever its stream's fate; it is given
        // back at once: the per-stream windows are the backpressure, so one slow stream does not
        // stall the others.
        self.conn_recv_window
            .receive(flow_len)
            .map_err(|e| conn_err(e.code(), "DATA beyond the connection window"))?;
        self.conn_pending_update += flow_len;
        if self.conn_pending_update >= 65_535 / 2 {
            write_window_update(&mut self.out, 0, self.conn_pending_update);
            let _ = self.conn_recv_window.increase(self.conn_pending_update);
            self.conn_pending_update = 0;
        }
        if self.is_idle(stream_id) {
            return Err(conn_err(
                ErrorCode::PROTOCOL_ERROR,
                "DATA on an idle stream",
            ));
        }
        let Some(stream) = self.streams.get_mut(&stream_id) else {
            // A closed stream (perhaps one pibl reset): ignored (RFC 9113 §5.1).
            return Ok(());
        };
        if !matches!(
            stream.state,
            StreamState::Open | StreamState::HalfClosedLocal
        ) {
            return self.stream_error(stream_id, ErrorCode::STREAM_CLOSED);
        }
        if stream.recv_window.receive(flow_len).is_err() {
            return self.stream_error(stream_id, ErrorCode::FLOW_CONTROL_ERROR);
        }
        // Padding is nobody's to release: given back with the next update.
        stream.pending_update += flow_len - data.len() as u32;
        stream.data_received += data.len() as u64;
        let length_wrong = stream.content_length.is_some_and(|cl| {
            stream.data_received > cl || (end_stream && stream.data_received != cl)
        });
        if length_wrong {
            return self.stream_error(stream_id, ErrorCode::PROTOCOL_ERROR);
        }
        if data.is_empty() && !end_stream {
            self.empty_frames_in_window += 1;
            if self.empty_frames_in_window > self.config.max_empty_frames_per_window {
                return Err(conn_err(
                    ErrorCode::ENHANCE_YOUR_CALM,
                    "empty DATA frame flood",
                ));
            }
            return Ok(());
        }
        let start = self.event_bytes.len();
        self.event_bytes.extend_from_slice(data);
        self.events.push_back(Event::Data {
            stream: stream_id,
            bytes: start..self.event_bytes.len(),
            end_stream,
        });
        if end_stream {
            self.end_remote(stream_id);
        }
        Ok(())
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
