//! Message body framing (RFC 9112 §6): how long a body is, and relaying it without holding it.
//!
//! A [`BodyRelay`] watches the bytes of one body as they pass through a [`Buffer`] and says how
//! many at the head of the buffer may be forwarded (`ready`) and when the body has ended, so the
//! next message's bytes are never forwarded as part of this one.

use super::chunked::{ChunkError, ChunkedDecoder, Piece};
use crate::buffer::Buffer;

/// How a message's body is delimited, as decided from its head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// No body at all (GET without framing headers, HEAD responses, 1xx/204/304).
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// A response body that ends when the server closes the connection.
    UntilClose,
}

#[derive(Debug, Clone)]
enum Framing {
    /// Bytes of the body not yet scanned.
    Length(u64),
    /// Relayed as chunked; the decoder only finds the end.
    Chunked(ChunkedDecoder),
    /// Chunked on input, plain on output (for HTTP/1.0 clients): framing is cut out of the buffer.
    Dechunk(ChunkedDecoder),
    UntilClose,
}

/// Progress through one body being relayed.
#[derive(Debug, Clone)]
pub struct BodyRelay {
    framing: Framing,
    /// Bytes at the buffer head that are body and may be written out.
    ready: usize,
    /// All of the body has been scanned into `ready`.
    ended: bool,
    /// Body bytes delivered so far (after dechunking).
    delivered: u64,
}

impl BodyRelay {
    /// `dechunk` strips the chunked framing instead of relaying it.
    pub fn new(kind: BodyKind, dechunk: bool) -> BodyRelay {
        let (framing, ended) = match kind {
            BodyKind::Empty => (Framing::Length(0), true),
            BodyKind::Length(n) => (Framing::Length(n), n == 0),
            BodyKind::Chunked if dechunk => (Framing::Dechunk(ChunkedDecoder::new()), false),
            BodyKind::Chunked => (Framing::Chunked(ChunkedDecoder::new()), false),
            BodyKind::UntilClose => (Framing::UntilClose, false),
        };
        BodyRelay {
            framing,
            ready: 0,
            ended,
            delivered: 0,
        }
    }

    /// Classifies the newly buffered bytes after `ready`. Bytes past the end of the body stay in
    /// the buffer untouched.
    pub fn scan(&mut self, buf: &mut Buffer) -> Result<(), ChunkError> {
        if self.ended {
            return Ok(());
        }
        let fresh = buf.len() - self.ready;
        match &mut self.framing {
            Framing::Length(left) => {
                let n = (*left).min(fresh as u64);
                *left -= n;
                self.ready += n as usize;
                self.ended = *left == 0;
            }
            Framing::Chunked(dec) => {
                let (n, done) = dec.scan(&buf.data()[self.ready..])?;
                self.ready += n;
                self.ended = done;
            }
            Framing::Dechunk(dec) => loop {
                let rest = &buf.data()[self.ready..];
                if rest.is_empty() {
                    break;
                }
                match dec.next(rest)? {
                    Piece::Data(n) => self.ready += n,
                    Piece::Framing(n) => buf.remove(self.ready, n),
                    Piece::Done(n) => {
                        buf.remove(self.ready, n);
                        self.ended = true;
                        break;
                    }
                }
            },
            Framing::UntilClose => self.ready += fresh,
        }
        Ok(())
    }

    /// Body bytes not yet seen when the body has a known length and none of it is buffered:
    /// what may be moved around the buffer (splice).
    pub fn unscanned_length(&self) -> Option<u64> {
        match self.framing {
            Framing::Length(left) if self.ready == 0 && !self.ended => Some(left),
            _ => None,
        }
    }

    /// Records `n` body bytes moved from the peer without passing through the buffer.
    pub fn take_direct(&mut self, n: usize) {
        if let Framing::Length(left) = &mut self.framing {
            *left = left.saturating_sub(n as u64);
            self.ended = *left == 0;
        }
    }

    /// Records `n` bytes delivered without passing through the buffer.
    pub fn sent_direct(&mut self, n: usize) {
        self.delivered += n as u64;
    }

    /// Bytes at the buffer head that belong to the body and may be written.
    pub fn ready(&self) -> usize {
        self.ready
    }

    /// Records that `n` ready bytes were written (the caller consumes them from the buffer).
    pub fn sent(&mut self, n: usize) {
        debug_assert!(n <= self.ready);
        self.ready -= n;
        self.delivered += n as u64;
    }

    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// The whole body has arrived; some of it may still wait to be written.
    pub fn has_ended(&self) -> bool {
        self.ended
    }

    /// The whole body has been written.
    pub fn is_complete(&self) -> bool {
        self.ended && self.ready == 0
    }

    /// The peer closed. Returns true when that is a proper end of this body.
    pub fn on_eof(&mut self) -> bool {
        if matches!(self.framing, Framing::UntilClose) {
            self.ended = true;
        }
        self.ended
    }

    /// Decoded length of a chunked body so far (0 for other framings).
    pub fn chunked_data_len(&self) -> u64 {
        match &self.framing {
            Framing::Chunked(d) | Framing::Dechunk(d) => d.data_len(),
            _ => 0,
        }
    }

    /// Whether the body is delimited by the connection closing.
    pub fn until_close(&self) -> bool {
        matches!(self.framing, Framing::UntilClose)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buffer(bytes: &[u8]) -> Buffer {
        let mut b = Buffer::with_capacity(256);
        b.extend(bytes);
        b
    }

    #[test]
    fn length_body_stops_before_next_message() {
        let mut buf = buffer(b"helloGET /");
        let mut r = BodyRelay::new(BodyKind::Length(5), false);
        r.scan(&mut buf).unwrap();
        assert_eq!(r.ready(), 5);
        buf.consume(5);
        r.sent(5);
        assert!(r.is_complete());
        assert_eq!(buf.data(), b"GET /");
    }

    #[test]
    fn direct_transfer_accounts_for_length_bodies_only() {
        let mut r = BodyRelay::new(BodyKind::Length(100), false);
        assert_eq!(r.unscanned_length(), Some(100));
        r.take_direct(60);
        r.take_direct(40);
        r.sent_direct(100);
        assert!(r.is_complete());
        assert_eq!(r.delivered(), 100);
        assert_eq!(
            BodyRelay::new(BodyKind::Chunked, false).unscanned_length(),
            None
        );
    }

    #[test]
    fn dechunk_removes_framing_in_place() {
        let mut buf = buffer(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nNEXT");
        let mut r = BodyRelay::new(BodyKind::Chunked, true);
        r.scan(&mut buf).unwrap();
        assert_eq!(&buf.data()[..r.ready()], b"abcde");
        assert_eq!(&buf.data()[r.ready()..], b"NEXT");
        r.sent(5);
        assert!(r.is_complete());
    }

    #[test]
    fn chunked_relay_keeps_framing_and_finds_end_across_reads() {
        let mut buf = buffer(b"3\r\nab");
        let mut r = BodyRelay::new(BodyKind::Chunked, false);
        r.scan(&mut buf).unwrap();
        assert_eq!(r.ready(), 5);
        buf.extend(b"c\r\n0\r\n\r\n");
        r.scan(&mut buf).unwrap();
        assert_eq!(r.ready(), buf.len());
        r.sent(buf.len());
        assert!(r.is_complete());
    }

    #[test]
    fn until_close_ends_on_eof_only() {
        let mut buf = buffer(b"abc");
        let mut r = BodyRelay::new(BodyKind::UntilClose, false);
        r.scan(&mut buf).unwrap();
        r.sent(3);
        assert!(!r.is_complete());
        assert!(r.on_eof());
        assert!(r.is_complete());
        let mut short = BodyRelay::new(BodyKind::Length(10), false);
        assert!(!short.on_eof());
    }
}
