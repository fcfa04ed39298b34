//! HTTP/2 frames (RFC 9113 §4, §6), sans-io: [`parse_frame`] reads one frame from the front of
//! a byte buffer (borrowing its payload, no copy) or says more bytes are needed; the `write_*`
//! functions append frames to a `Vec<u8>`. [`HeaderBlockAssembler`] joins HEADERS and
//! CONTINUATION into one header block under a size bound (the CONTINUATION-flood defence).
//!
//! Errors are split as RFC 9113 §5.4 does: a [`ConnectionError`] ends the connection; a
//! [`StreamError`] (in [`Parsed::StreamError`]) resets one stream and the connection goes on.

use super::error::{ConnectionError, ErrorCode, StreamError};

/// The client connection preface (RFC 9113 §3.4), before the client's first SETTINGS.
pub const CLIENT_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The frame header: length (24 bits), type, flags, reserved bit + stream id (31 bits).
pub const FRAME_HEADER_LEN: usize = 9;
/// SETTINGS_MAX_FRAME_SIZE's initial value and floor (RFC 9113 §6.5.2).
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 16_384;

/// Frame types (RFC 9113 §6).
pub mod kind {
    pub const DATA: u8 = 0x0;
    pub const HEADERS: u8 = 0x1;
    pub const PRIORITY: u8 = 0x2;
    pub const RST_STREAM: u8 = 0x3;
    pub const SETTINGS: u8 = 0x4;
    pub const PUSH_PROMISE: u8 = 0x5;
    pub const PING: u8 = 0x6;
    pub const GOAWAY: u8 = 0x7;
    pub const WINDOW_UPDATE: u8 = 0x8;
    pub const CONTINUATION: u8 = 0x9;
}

/// Frame flags (RFC 9113 §6).
pub mod flag {
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const PADDED: u8 = 0x8;
    pub const PRIORITY: u8 = 0x20;
}

/// The (deprecated, accepted and ignored) priority fields of HEADERS and PRIORITY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Priority {
    pub exclusive: bool,
    pub depends_on: u32,
    pub weight: u8,
}

/// One parsed frame; payloads borrow the input buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    Data {
        stream_id: u32,
        end_stream: bool,
        /// The data without padding.
        data: &'a [u8],
        /// The whole payload, padding included: what flow control counts (RFC 9113 §6.1).
        flow_len: u32,
    },
    Headers {
        stream_id: u32,
        end_stream: bool,
        end_headers: bool,
        /// Present when the PRIORITY flag is set. A dependency on the stream itself is a stream
        /// error the session raises after decoding the block (to keep HPACK in step).
        priority: Option<Priority>,
        /// The header block fragment, without padding.
        fragment: &'a [u8],
    },
    Priority {
        stream_id: u32,
        priority: Priority,
    },
    RstStream {
        stream_id: u32,
        code: ErrorCode,
    },
    /// A SETTINGS frame's parameters (6 bytes each), checked in length only; `settings.rs`
    /// reads and validates them.
    Settings {
        ack: bool,
        params: &'a [u8],
    },
    Ping {
        ack: bool,
        payload: [u8; 8],
    },
    GoAway {
        last_stream_id: u32,
        code: ErrorCode,
        debug_data: &'a [u8],
    },
    WindowUpdate {
        /// 0 for the connection's window.
        stream_id: u32,
        increment: u32,
    },
    Continuation {
        stream_id: u32,
        end_headers: bool,
        fragment: &'a [u8],
    },
    /// An extension frame type: ignored (RFC 9113 §4.1, §5.5), skipped by its length.
    Unknown {
        frame_type: u8,
        stream_id: u32,
    },
}

/// The result of [`parse_frame`] on a buffer that held no connection error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// Not a whole frame yet: read more (the buffer never needs more than 9 + max frame size).
    Incomplete,
    /// A frame, and the bytes it took from the front of the buffer.
    Frame { frame: Frame<'a>, consumed: usize },
    /// A frame whose error ends only its stream: reset that stream, skip `consumed` bytes.
    StreamError { error: StreamError, consumed: usize },
}

fn conn_err(code: ErrorCode, reason: &'static str) -> ConnectionError {
    ConnectionError::new(code, reason)
}

fn read_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Checks the client connection preface at the front of `buf`: `Ok(None)` if more bytes are
/// needed, `Ok(Some(len))` once it is whole, an error as soon as a byte differs.
pub fn check_client_preface(buf: &[u8]) -> Result<Option<usize>, ConnectionError> {
    let n = buf.len().min(CLIENT_PREFACE.len());
    if buf[..n] != CLIENT_PREFACE[..n] {
        return Err(conn_err(
            ErrorCode::PROTOCOL_ERROR,
            "not the HTTP/2 client preface",
        ));
    }
    Ok((n == CLIENT_PREFACE.len()).then_some(n))
}

/// The payload length the frame at the front of `buf` announces, once its header is there: what
/// a caller waiting on [`Parsed::Incomplete`] must be able to buffer (9 more bytes than this).
pub fn announced_len(buf: &[u8]) -> Option<u32> {
    let header = buf.get(..3)?;
    (buf.len() >= FRAME_HEADER_LEN)
        .then(|| u32::from_be_bytes([0, header[0], header[1], header[2]]))
}

/// Parses one frame from the front of `buf`. `max_frame_size` is the SETTINGS_MAX_FRAME_SIZE
/// pibl advertised: a larger frame is refused from its header alone, before its payload arrives.
pub fn parse_frame(buf: &[u8], max_frame_size: u32) -> Result<Parsed<'_>, ConnectionError> {
    if buf.len() < FRAME_HEADER_LEN {
        return Ok(Parsed::Incomplete);
    }
    let len = u32::from_be_bytes([0, buf[0], buf[1], buf[2]]);
    let frame_type = buf[3];
    let flags = buf[4];
    // RFC 9113 §4.1: the reserved bit is ignored.
    let stream_id = read_u32(&buf[5..9]) & 0x7fff_ffff;
    if len > max_frame_size {
        // §4.2: a connection error for any frame that could alter the connection's state;
        // pibl makes it one for every frame (simpler, and allowed).
        return Err(conn_err(
            ErrorCode::FRAME_SIZE_ERROR,
            "frame larger than SETTINGS_MAX_FRAME_SIZE",
        ));
    }
    let consumed = FRAME_HEADER_LEN + len as usize;
    let Some(payload) = buf.get(FRAME_HEADER_LEN..consumed) else {
        return Ok(Parsed::Incomplete);
    };
    let frame = match frame_type {
        kind::DATA => {
            if stream_id == 0 {
                return Err(conn_err(ErrorCode::PROTOCOL_ERROR, "DATA on stream 0"));
            }
            let data = strip_padding(flags, payload)?;
            Frame::Data {
                stream_id,
                end_stream: flags & flag::END_STREAM != 0,
                data,
                flow_len: len,
            }
        }
        kind::HEADERS => {
            if stream_id == 0 {
                return Err(conn_err(ErrorCode::PROTOCOL_ERROR, "HEADERS on stream 0"));
            }
            let unpadded = strip_padding(flags, payload)?;
            let (priority, fragment) = if flags & flag::PRIORITY != 0 {
                if unpadded.len() < 5 {
                    return Err(conn_err(
                        ErrorCode::FRAME_SIZE_ERROR,
                        "HEADERS too short for its priority",
                    ));
                }
                (Some(read_priority(&unpadded[..5])), &unpadded[5..])
            } else {
                (None, unpadded)
            };
            Frame::Headers {
                stream_id,
                end_stream: flags & flag::END_STREAM != 0,
                end_headers: flags & flag::END_HEADERS != 0,
                priority,
                fragment,
            }
        }
        kind::PRIORITY => {
            if stream_id == 0 {
                return Err(conn_err(ErrorCode::PROTOCOL_ERROR, "PRIORITY on stream 0"));
            }
            if len != 5 {
                return Ok(stream_error(
                    stream_id,
                    ErrorCode::FRAME_SIZE_ERROR,
                    "PRIORITY not 5 bytes",
                    consumed,
                ));
            }
            let priority = read_priority(payload);
            if priority.depends_on == stream_id {
                return Ok(stream_error(
                    stream_id,
                    ErrorCode::PROTOCOL_ERROR,
                    "stream depends on itself",
                    consumed,
                ));
            }
            Frame::Priority {
                stream_id,
                priority,
            }
        }
        kind::RST_STREAM => {
            if stream_id == 0 {
                return Err(conn_err(
                    ErrorCode::PROTOCOL_ERROR,
                    "RST_STREAM on stream 0",
                ));
            }
            if len != 4 {
                return Err(conn_err(
                    ErrorCode::FRAME_SIZE_ERROR,
                    "RST_STREAM not 4 bytes",
                ));
            }
            Frame::RstStream {
                stream_id,
                code: ErrorCode(read_u32(payload)),
            }
        }
        kind::SETTINGS => {
            if stream_id != 0 {
                return Err(conn_err(ErrorCode::PROTOCOL_ERROR, "SETTINGS on a stream"));
            }
            let ack = flags & flag::ACK != 0;
            if ack && len != 0 {
                return Err(conn_err(
                    ErrorCode::FRAME_SIZE_ERROR,
                    "SETTINGS ACK with a payload",
                ));
            }
            if !len.is_multiple_of(6) {
                return Err(conn_err(
                    ErrorCode::FRAME_SIZE_ERROR,
                    "SETTINGS not a multiple of 6 bytes",
                ));
            }
            Frame::Settings {
                ack,
                params: payload,
            }
        }
        kind::PUSH_PROMISE => {
            // §8.4: a client cannot push; pibl never enables push either.
            return Err(conn_err(
                ErrorCode::PROTOCOL_ERROR,
                "PUSH_PROMISE from a client",
            ));
        }
        kind::PING => {
            if stream_id != 0 {
                return Err(conn_err(ErrorCode::PROTOCOL_ERROR, "PING on a stream"));
            }
            let Ok(payload) = <[u8; 8]>::try_from(payload) else {
                return Err(conn_err(ErrorCode::FRAME_SIZE_ERROR, "PING not 8 bytes"));
            };
            Frame::Ping {
                ack: flags & flag::ACK != 0,
                payload,
            }
        }
        kind::GOAWAY => {
            if stream_id != 0 {
                return Err(conn_err(ErrorCode::PROTOCOL_ERROR, "GOAWAY on a stream"));
            }
            if len < 8 {
                return Err(conn_err(
                    ErrorCode::FRAME_SIZE_ERROR,
                    "GOAWAY shorter than 8 bytes",
                ));
            }
            Frame::GoAway {
                last_stream_id: read_u32(&payload[..4]) & 0x7fff_ffff,
                code: ErrorCode(read_u32(&payload[4..8])),
                debug_data: &payload[8..],
            }
        }
        kind::WINDOW_UPDATE => {
            if len != 4 {
                return Err(conn_err(
                    ErrorCode::FRAME_SIZE_ERROR,
                    "WINDOW_UPDATE not 4 bytes",
                ));
            }
            let increment = read_u32(payload) & 0x7fff_ffff;
            if increment == 0 {
                if stream_id == 0 {
                    return Err(conn_err(
                        ErrorCode::PROTOCOL_ERROR,
                        "WINDOW_UPDATE of 0 on the connection",
                    ));
                }
                return Ok(stream_error(
                    stream_id,
                    ErrorCode::PROTOCOL_ERROR,
                    "WINDOW_UPDATE of 0",
                    consumed,
                ));
            }
            Frame::WindowUpdate {
                stream_id,
                increment,
            }
        }
        kind::CONTINUATION => {
            if stream_id == 0 {
                return Err(conn_err(
                    ErrorCode::PROTOCOL_ERROR,
                    "CONTINUATION on stream 0",
                ));
            }
            Frame::Continuation {
                stream_id,
                end_headers: flags & flag::END_HEADERS != 0,
                fragment: payload,
            }
        }
        frame_type => Frame::Unknown {
            frame_type,
            stream_id,
        },
    };
    Ok(Parsed::Frame { frame, consumed })
}

fn stream_error(
    stream_id: u32,
    code: ErrorCode,
    reason: &'static str,
    consumed: usize,
) -> Parsed<'static> {
    Parsed::StreamError {
        error: StreamError {
            stream_id,
            code,
            reason,
        },
        consumed,
    }
}

/// §6.1, §6.2: the payload without its Pad Length byte and padding, when PADDED is set.
fn strip_padding(flags: u8, payload: &[u8]) -> Result<&[u8], ConnectionError> {
    if flags & flag::PADDED == 0 {
        return Ok(payload);
    }
    let Some((&pad_len, rest)) = payload.split_first() else {
        return Err(conn_err(
            ErrorCode::FRAME_SIZE_ERROR,
            "PADDED frame without its Pad Length",
        ));
    };
    let pad_len = pad_len as usize;
    if pad_len > rest.len() {
        // "padding longer than the payload": the length of the padding is the length of the
        // frame payload or greater.
        return Err(conn_err(
            ErrorCode::PROTOCOL_ERROR,
            "padding longer than the payload",
        ));
    }
    Ok(&rest[..rest.len() - pad_len])
}

fn read_priority(b: &[u8]) -> Priority {
    let word = read_u32(&b[..4]);
    Priority {
        exclusive: word & 0x8000_0000 != 0,
        depends_on: word & 0x7fff_ffff,
        weight: b[4],
    }
}

// ---- writers ----

/// Appends a frame header. `len` must fit 24 bits (callers split at the peer's max frame size).
pub fn write_frame_header(
    out: &mut Vec<u8>,
    len: usize,
    frame_type: u8,
    flags: u8,
    stream_id: u32,
) {
    debug_assert!(len < 1 << 24);
    let len = len as u32;
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(frame_type);
    out.push(flags);
    out.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
}

/// DATA without padding.
pub fn write_data(out: &mut Vec<u8>, stream_id: u32, data: &[u8], end_stream: bool) {
    let flags = if end_stream { flag::END_STREAM } else { 0 };
    write_frame_header(out, data.len(), kind::DATA, flags, stream_id);
    out.extend_from_slice(data);
}

/// A header block as HEADERS + CONTINUATION frames of at most `max_frame_size` bytes each.
pub fn write_headers(
    out: &mut Vec<u8>,
    stream_id: u32,
    block: &[u8],
    end_stream: bool,
    max_frame_size: u32,
) {
    let max = (max_frame_size as usize).max(1);
    let mut chunks = block.chunks(max);
    let first = chunks.next().unwrap_or(&[]);
    let mut flags = if end_stream { flag::END_STREAM } else { 0 };
    let more = block.len() > first.len();
    if !more {
        flags |= flag::END_HEADERS;
    }
    write_frame_header(out, first.len(), kind::HEADERS, flags, stream_id);
    out.extend_from_slice(first);
    let mut rest = chunks.peekable();
    while let Some(chunk) = rest.next() {
        let flags = if rest.peek().is_none() {
            flag::END_HEADERS
        } else {
            0
        };
        write_frame_header(out, chunk.len(), kind::CONTINUATION, flags, stream_id);
        out.extend_from_slice(chunk);
    }
}

pub fn write_priority(out: &mut Vec<u8>, stream_id: u32, priority: Priority) {
    write_frame_header(out, 5, kind::PRIORITY, 0, stream_id);
    let word = priority.depends_on & 0x7fff_ffff | if priority.exclusive { 0x8000_0000 } else { 0 };
    out.extend_from_slice(&word.to_be_bytes());
    out.push(priority.weight);
}

pub fn write_rst_stream(out: &mut Vec<u8>, stream_id: u32, code: ErrorCode) {
    write_frame_header(out, 4, kind::RST_STREAM, 0, stream_id);
    out.extend_from_slice(&code.0.to_be_bytes());
}

/// SETTINGS with the given (identifier, value) parameters.
pub fn write_settings(out: &mut Vec<u8>, params: &[(u16, u32)]) {
    write_frame_header(out, params.len() * 6, kind::SETTINGS, 0, 0);
    for (id, value) in params {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&value.to_be_bytes());
    }
}

pub fn write_settings_ack(out: &mut Vec<u8>) {
    write_frame_header(out, 0, kind::SETTINGS, flag::ACK, 0);
}

pub fn write_ping(out: &mut Vec<u8>, payload: [u8; 8], ack: bool) {
    write_frame_header(out, 8, kind::PING, if ack { flag::ACK } else { 0 }, 0);
    out.extend_from_slice(&payload);
}

pub fn write_goaway(out: &mut Vec<u8>, last_stream_id: u32, code: ErrorCode, debug_data: &[u8]) {
    write_frame_header(out, 8 + debug_data.len(), kind::GOAWAY, 0, 0);
    out.extend_from_slice(&(last_stream_id & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(&code.0.to_be_bytes());
    out.extend_from_slice(debug_data);
}

pub fn write_window_update(out: &mut Vec<u8>, stream_id: u32, increment: u32) {
    write_frame_header(out, 4, kind::WINDOW_UPDATE, 0, stream_id);
    out.extend_from_slice(&(increment & 0x7fff_ffff).to_be_bytes());
}

pub fn write_continuation(out: &mut Vec<u8>, stream_id: u32, fragment: &[u8], end_headers: bool) {
    let flags = if end_headers { flag::END_HEADERS } else { 0 };
    write_frame_header(out, fragment.len(), kind::CONTINUATION, flags, stream_id);
    out.extend_from_slice(fragment);
}

// ---- header blocks ----

/// The assembler's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderBlockLimits {
    /// The largest header block (all fragments together) accepted, in bytes.
    pub max_block_len: usize,
    /// The most CONTINUATION frames after one HEADERS: empty CONTINUATIONs grow no block but
    /// cost a frame each, so their number is bounded too.
    pub max_continuations: usize,
}

impl Default for HeaderBlockLimits {
    fn default() -> Self {
        HeaderBlockLimits {
            max_block_len: 64 * 1024,
            max_continuations: 32,
        }
    }
}

impl HeaderBlockLimits {
    /// The bounds for a connection that advertised `max_frame_size` and
    /// `max_header_list_size`: a block as large as the list it may decode to (an encoder sends
    /// no field longer than its literal), and enough CONTINUATIONs to carry it in frames of
    /// that size; never below the defaults, which hold pibl's default SETTINGS.
    pub fn fitting(max_frame_size: u32, max_header_list_size: u32) -> Self {
        let floor = HeaderBlockLimits::default();
        let max_block_len = floor.max_block_len.max(max_header_list_size as usize);
        let frames = max_block_len.div_ceil((max_frame_size as usize).max(1));
        HeaderBlockLimits {
            max_block_len,
            max_continuations: floor.max_continuations.max(frames),
        }
    }
}

/// A whole header block and the HEADERS frame's facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderBlock<'a> {
    pub stream_id: u32,
    pub end_stream: bool,
    pub priority: Option<Priority>,
    pub block: &'a [u8],
}

/// What the assembler made of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assembled<'a> {
    /// Not a header frame: the caller handles it.
    Other(Frame<'a>),
    /// The fragment was kept; more CONTINUATION must follow.
    Pending,
    /// A whole block: borrowed from the frame when it came in one HEADERS, else from the
    /// assembler's buffer.
    Block(HeaderBlock<'a>),
}

/// The assembler's state: idle, or collecting one stream's block.
#[derive(Debug)]
enum AssemblyState {
    Idle,
    Collecting {
        stream_id: u32,
        end_stream: bool,
        priority: Option<Priority>,
        continuations: usize,
    },
}

/// Joins HEADERS and its CONTINUATION frames (RFC 9113 §6.10). Every frame of the connection
/// passes through it: while a block is open, any other frame, or a CONTINUATION for another
/// stream, is a connection PROTOCOL_ERROR, and so is a CONTINUATION with no block open. The
/// size bound is checked before a fragment is copied, so a flood never grows the buffer past it.
#[derive(Debug)]
pub struct HeaderBlockAssembler {
    limits: HeaderBlockLimits,
    state: AssemblyState,
    /// The fragments so far; kept (cleared) between blocks so its memory is reused.
    buf: Vec<u8>,
}

impl HeaderBlockAssembler {
    pub fn new(limits: HeaderBlockLimits) -> Self {
        HeaderBlockAssembler {
            limits,
            state: AssemblyState::Idle,
            buf: Vec::new(),
        }
    }

    /// The stream whose block is open, if any.
    pub fn open_stream(&self) -> Option<u32> {
        match self.state {
            AssemblyState::Idle => None,
            AssemblyState::Collecting { stream_id, .. } => Some(stream_id),
        }
    }

    /// Takes the connection's next frame.
    pub fn accept<'a>(&'a mut self, frame: Frame<'a>) -> Result<Assembled<'a>, ConnectionError> {
        match (&mut self.state, frame) {
            (
                AssemblyState::Idle,
                Frame::Headers {
                    stream_id,
                    end_stream,
                    end_headers,
                    priority,
                    fragment,
                },
            ) => {
                if fragment.len() > self.limits.max_block_len {
                    return Err(too_large());
                }
                if end_headers {
                    return Ok(Assembled::Block(HeaderBlock {
                        stream_id,
                        end_stream,
                        priority,
                        block: fragment,
                    }));
                }
                self.buf.clear();
                self.buf.extend_from_slice(fragment);
                self.state = AssemblyState::Collecting {
                    stream_id,
                    end_stream,
                    priority,
                    continuations: 0,
                };
                Ok(Assembled::Pending)
            }
            (AssemblyState::Idle, Frame::Continuation { .. }) => Err(conn_err(
                ErrorCode::PROTOCOL_ERROR,
                "CONTINUATION without HEADERS",
            )),
            (AssemblyState::Idle, other) => Ok(Assembled::Other(other)),
            (
                AssemblyState::Collecting {
                    stream_id: open,
                    continuations,
                    ..
                },
                Frame::Continuation {
                    stream_id,
                    end_headers,
                    fragment,
                },
            ) => {
                if stream_id != *open {
                    return Err(conn_err(
                        ErrorCode::PROTOCOL_ERROR,
                        "CONTINUATION for another stream",
                    ));
                }
                *continuations += 1;
                if *continuations > self.limits.max_continuations
                    || self.buf.len() + fragment.len() > self.limits.max_block_len
                {
                    return Err(too_large());
                }
                self.buf.extend_from_slice(fragment);
                if !end_headers {
                    return Ok(Assembled::Pending);
                }
                let AssemblyState::Collecting {
                    stream_id,
                    end_stream,
                    priority,
                    ..
                } = std::mem::replace(&mut self.state, AssemblyState::Idle)
                else {
                    return Err(conn_err(ErrorCode::INTERNAL_ERROR, "header block state"));
                };
                Ok(Assembled::Block(HeaderBlock {
                    stream_id,
                    end_stream,
                    priority,
                    block: &self.buf,
                }))
            }
            (AssemblyState::Collecting { .. }, _) => Err(conn_err(
                ErrorCode::PROTOCOL_ERROR,
                "a frame inside a header block",
            )),
        }
    }
}

/// The CONTINUATION-flood answer: ENHANCE_YOUR_CALM (RFC 9113 §5.4.1's choice for abuse).
fn too_large() -> ConnectionError {
    conn_err(ErrorCode::ENHANCE_YOUR_CALM, "header block over its bound")
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
