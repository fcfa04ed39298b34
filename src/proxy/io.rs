//! The two socket operations every state uses: fill a buffer from a socket, and write a head plus
//! body bytes to a socket. Both run until the socket would block and record that in the caller's
//! readiness flag, because with edge-triggered polling no further event comes until then.

use std::io::{self, IoSlice, Read, Write};

use crate::buffer::{Buffer, ReadEnd};
use crate::net::interrupted;

/// Bytes queued for a socket (a rewritten head or a response the proxy made), written from `pos`.
#[derive(Debug, Default)]
pub struct Pending {
    pub bytes: Vec<u8>,
    pub pos: usize,
}

impl Pending {
    pub fn remaining(&self) -> &[u8] {
        &self.bytes[self.pos..]
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    /// Makes the queued bytes writable again from the start (replaying a request head).
    pub fn rewind(&mut self) {
        self.pos = 0;
    }

    pub fn clear(&mut self) {
        self.bytes.clear();
        self.pos = 0;
    }
}

/// What one fill did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filled {
    pub bytes: usize,
    pub eof: bool,
}

/// Reads from `src` into `buf` if the socket is readable and the buffer has room. `hup` says
/// the event loop saw the peer close its side (see [`Buffer::read_from`]).
pub fn fill<R: Read>(
    src: &mut R,
    readable: &mut bool,
    hup: bool,
    buf: &mut Buffer,
) -> io::Result<Filled> {
    if !*readable || buf.is_full() {
        return Ok(Filled {
            bytes: 0,
            eof: false,
        });
    }
    match buf.read_from(src, !hup) {
        Ok((bytes, end)) => {
            if end == ReadEnd::WouldBlock {
                *readable = false;
            }
            Ok(Filled {
                bytes,
                eof: end == ReadEnd::Eof,
            })
        }
        Err(e) => {
            *readable = false;
            Err(e)
        }
    }
}

/// What one flush wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flushed {
    /// All bytes written (head and body).
    pub total: usize,
    /// Body bytes written, already consumed from the buffer.
    pub body: usize,
}

/// Writes `head`, then `body`, with one writev per attempt. The caller consumes the body bytes
/// written (`Flushed::body`) from wherever they live.
pub fn flush<W: Write>(
    dst: &mut W,
    writable: &mut bool,
    head: &mut Pending,
    body: &[u8],
) -> io::Result<Flushed> {
    let mut done = Flushed::default();
    while *writable {
        let h = head.remaining();
        let b = &body[done.body..];
        if h.is_empty() && b.is_empty() {
            break;
        }
        let (hl, bl) = (h.len(), b.len());
        let res = if hl == 0 {
            dst.write(b)
        } else if bl == 0 {
            dst.write(h)
        } else {
            dst.write_vectored(&[IoSlice::new(h), IoSlice::new(b)])
        };
        match res {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                let from_head = n.min(hl);
                head.pos += from_head;
                done.total += n;
                done.body += n - from_head;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => *writable = false,
            Err(e) if interrupted(&e) => {}
            Err(e) => {
                *writable = false;
                return Err(e);
            }
        }
    }
    Ok(done)
}
