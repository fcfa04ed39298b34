//! Incremental decoder for the chunked transfer coding (RFC 9112 §7.1).
//!
//! The proxy relays chunked bodies as they are, so it only needs to know where the body ends; a
//! client that cannot read chunked (HTTP/1.0) needs the data without the framing. One sans-io
//! decoder serves both: [`ChunkedDecoder::next`] splits the input into framing and data pieces,
//! [`ChunkedDecoder::scan`] just counts how many input bytes belong to the body.
//!
//! Strict by design, because framing disagreements between hops are how requests are smuggled:
//! every line must end in CRLF (a bare LF is an error), the size is 1*HEXDIG without overflow, and
//! the chunk extensions and trailer section are bounded.

use std::fmt;

/// Longest chunk-size line (size plus extensions) accepted.
const MAX_SIZE_LINE: usize = 4096;
/// Largest trailer section accepted.
const MAX_TRAILERS: usize = 16 * 1024;

/// What the next bytes of the input are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece {
    /// The next `n` bytes are framing (size lines, CRLFs, trailers), consumed.
    Framing(usize),
    /// The next `n` bytes are chunk data.
    Data(usize),
    /// The next `n` bytes are framing that ends the body; anything after belongs to the next message.
    Done(usize),
}

/// Why a chunked body was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkError {
    BadSize,
    SizeOverflow,
    BareLf,
    MissingCrlf,
    LineTooLong,
    TrailersTooLarge,
    BadTrailer,
}

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            ChunkError::BadSize => "invalid chunk size",
            ChunkError::SizeOverflow => "chunk size overflows",
            ChunkError::BareLf => "bare LF in chunk framing",
            ChunkError::MissingCrlf => "chunk data not followed by CRLF",
            ChunkError::LineTooLong => "chunk size line too long",
            ChunkError::TrailersTooLarge => "trailer section too large",
            ChunkError::BadTrailer => "invalid trailer line",
        };
        f.write_str(what)
    }
}

impl std::error::Error for ChunkError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading hex digits of the chunk size; `digits` seen so far.
    Size {
        digits: u8,
    },
    /// After the size: optional whitespace and `;ext` up to CR.
    Extension,
    /// Saw CR ending the size line, expect LF.
    SizeLf,
    /// Inside chunk data.
    Data,
    /// Expect CR after chunk data.
    DataCr,
    /// Expect LF after chunk data.
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    /// Inside a trailer field line.
    TrailerLine,
    /// Saw CR ending a trailer line.
    TrailerLf,
    /// Saw CR of the final empty line.
    FinalLf,
    Done,
}

/// Decoder state for one chunked body.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    /// Chunk size being read, then data bytes left in the current chunk.
    size: u64,
    line_len: usize,
    trailer_len: usize,
    /// Chunk data bytes seen so far (the decoded body length).
    data: u64,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    pub fn new() -> Self {
        ChunkedDecoder {
            state: State::Size { digits: 0 },
            size: 0,
            line_len: 0,
            trailer_len: 0,
            data: 0,
        }
    }

    /// Chunk data bytes classified so far: the length of the decoded body up to here.
    pub fn data_len(&self) -> u64 {
        self.data
    }

    /// True once the last chunk and trailer section have been seen.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// True from the end of the last chunk's size line until the body ends: the trailer section
    /// (or the final CRLF) comes next. An HTTP/2 stream forwards trailers as a HEADERS frame,
    /// so its reader takes the section whole from here (`h2::translate`).
    pub fn in_trailers(&self) -> bool {
        matches!(
            self.state,
            State::TrailerStart | State::TrailerLine | State::TrailerLf | State::FinalLf
        )
    }

    /// Classifies the start of `input`. Returns `Framing(0)` only for empty input or after `Done`.
    pub fn next(&mut self, input: &[u8]) -> Result<Piece, ChunkError> {
        if self.state == State::Data {
            let n = (self.size.min(input.len() as u64)) as usize;
            self.size -= n as u64;
            self.data += n as u64;
            if self.size == 0 {
                self.state = State::DataCr;
            }
            return Ok(Piece::Data(n));
        }
        let mut i = 0;
        while i < input.len() {
            if self.state == State::Data || self.state == State::Done {
                break;
            }
            let b = input[i];
            i += 1;
            self.step(b)?;
        }
        if self.state == State::Done {
            Ok(Piece::Done(i))
        } else {
            Ok(Piece::Framing(i))
        }
    }

    /// Consumes as much of `input` as belongs to the body. Returns the byte count and whether the
    /// body ended within it.
    pub fn scan(&mut self, input: &[u8]) -> Result<(usize, bool), ChunkError> {
        let mut used = 0;
        while used < input.len() {
            match self.next(&input[used..])? {
                Piece::Data(n) | Piece::Framing(n) => used += n,
                Piece::Done(n) => return Ok((used + n, true)),
            }
        }
        Ok((used, self.is_done()))
    }

    fn step(&mut self, b: u8) -> Result<(), ChunkError> {
        match self.state {
            State::Size { digits } => {
                self.count_line()?;
                if let Some(d) = hex_value(b) {
                    if digits >= 16 {
                        return Err(ChunkError::SizeOverflow);
                    }
                    self.size = self
                        .size
                        .checked_mul(16)
                        .and_then(|s| s.checked_add(u64::from(d)))
                        .ok_or(ChunkError::SizeOverflow)?;
                    self.state = State::Size { digits: digits + 1 };
                } else if digits == 0 {
                    return Err(ChunkError::BadSize);
                } else {
                    match b {
                        b'\r' => self.state = State::SizeLf,
                        b';' | b' ' | b'\t' => self.state = State::Extension,
                        b'\n' => return Err(ChunkError::BareLf),
                        _ => return Err(ChunkError::BadSize),
                    }
                }
            }
            State::Extension => {
                self.count_line()?;
                match b {
                    b'\r' => self.state = State::SizeLf,
                    b'\n' => return Err(ChunkError::BareLf),
                    b'\t' => {}
                    0..=0x1f | 0x7f => return Err(ChunkError::BadSize),
                    _ => {}
                }
            }
            State::SizeLf => {
                if b != b'\n' {
                    return Err(ChunkError::BareLf);
                }
                self.line_len = 0;
                self.state = if self.size == 0 {
                    State::TrailerStart
                } else {
                    State::Data
                };
            }
            State::DataCr => {
                if b != b'\r' {
                    return Err(ChunkError::MissingCrlf);
                }
                self.state = State::DataLf;
            }
            State::DataLf => {
                if b != b'\n' {
                    return Err(ChunkError::MissingCrlf);
                }
                self.size = 0;
                self.state = State::Size { digits: 0 };
            }
            State::TrailerStart => match b {
                b'\r' => self.state = State::FinalLf,
                b'\n' => return Err(ChunkError::BareLf),
                b' ' | b'\t' | b':' => return Err(ChunkError::BadTrailer),
                _ => {
                    self.count_trailer()?;
                    self.state = State::TrailerLine;
                }
            },
            State::TrailerLine => {
                self.count_trailer()?;
                match b {
                    b'\r' => self.state = State::TrailerLf,
                    b'\n' => return Err(ChunkError::BareLf),
                    0 => return Err(ChunkError::BadTrailer),
                    _ => {}
                }
            }
            State::TrailerLf => {
                if b != b'\n' {
                    return Err(ChunkError::BareLf);
                }
                self.state = State::TrailerStart;
            }
            State::FinalLf => {
                if b != b'\n' {
                    return Err(ChunkError::BareLf);
                }
                self.state = State::Done;
            }
            State::Data | State::Done => unreachable!("handled by next()"),
        }
        Ok(())
    }

    fn count_line(&mut self) -> Result<(), ChunkError> {
        self.line_len += 1;
        if self.line_len > MAX_SIZE_LINE {
            return Err(ChunkError::LineTooLong);
        }
        Ok(())
    }

    fn count_trailer(&mut self) -> Result<(), ChunkError> {
        self.trailer_len += 1;
        if self.trailer_len > MAX_TRAILERS {
            return Err(ChunkError::TrailersTooLarge);
        }
        Ok(())
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes a whole chunked body held in memory; for tests and small bodies.
pub fn decode_all(input: &[u8]) -> Result<(Vec<u8>, usize), ChunkError> {
    let mut dec = ChunkedDecoder::new();
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < input.len() {
        match dec.next(&input[pos..])? {
            Piece::Data(n) => {
                out.extend_from_slice(&input[pos..pos + n]);
                pos += n;
            }
            Piece::Framing(n) => pos += n,
            Piece::Done(n) => return Ok((out, pos + n)),
        }
    }
    Err(ChunkError::MissingCrlf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_simple_body_and_stops_at_end() {
        let body = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\nGET /next";
        let (data, used) = decode_all(body).unwrap();
        assert_eq!(data, b"hello world");
        assert_eq!(&body[used..], b"GET /next");
    }

    #[test]
    fn scan_byte_by_byte_matches_whole() {
        let body = b"A\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n";
        let mut dec = ChunkedDecoder::new();
        let mut total = 0;
        for i in 0..body.len() {
            let (n, done) = dec.scan(&body[i..i + 1]).unwrap();
            total += n;
            assert_eq!(done, i == body.len() - 1);
        }
        assert_eq!(total, body.len());
    }

    #[test]
    fn rejects_bare_lf_and_bad_sizes() {
        assert_eq!(
            decode_all(b"5\nhello\r\n0\r\n\r\n").unwrap_err(),
            ChunkError::BareLf
        );
        assert_eq!(decode_all(b"x\r\n").unwrap_err(), ChunkError::BadSize);
        assert_eq!(decode_all(b"-1\r\n").unwrap_err(), ChunkError::BadSize);
        assert_eq!(
            decode_all(b"11111111111111111\r\n").unwrap_err(),
            ChunkError::SizeOverflow
        );
        assert_eq!(
            decode_all(b"2\r\nabc\r\n").unwrap_err(),
            ChunkError::MissingCrlf
        );
        assert_eq!(decode_all(b"0\r\n\r\r").unwrap_err(), ChunkError::BareLf);
    }
}
