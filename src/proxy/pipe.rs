//! An HTTP/2 stream as its child session's client transport (`Stream::Pipe`): bytes in memory
//! between the h2 connection (`h2_session.rs`) and the ordinary HTTP/1 `Session` that runs the
//! stream's exchange.

use std::io;

use super::io::{fill, flush, Filled, Flushed, Pending};
use crate::buffer::Buffer;

/// One HTTP/2 stream as its child session's client transport: the HTTP/1.1 request bytes the h2
/// side wrote (`inbound`, then its end) and the HTTP/1 response bytes the session wrote
/// (`outbound`, bounded: a full pipe makes the session's flush block, so a stream whose window
/// is shut holds at most this much and its backend is not read). The h2 side reaches it through
/// the child session in the worker's slab; neither side reads readiness flags.
#[derive(Debug)]
pub struct Pipe {
    inbound: Vec<u8>,
    inbound_read: usize,
    /// No more request bytes will come: the session's next read past them is EOF.
    inbound_ended: bool,
    outbound: Vec<u8>,
    outbound_taken: usize,
    outbound_bound: usize,
    /// The h2 session's slab key, the stream's key in that session's table, and its id.
    pub parent: usize,
    pub link: usize,
    pub stream_id: u32,
    /// The session read or wrote since the h2 side last asked ([`Self::take_moved`]): only then
    /// has the h2 side anything new to do for this stream.
    moved: bool,
    /// The h2 connection's (the session's `X-Forwarded-Proto`, HSTS and PROXY header).
    pub(super) scheme: &'static str,
    pub(super) hsts: Option<u64>,
    pub(super) local: std::net::SocketAddr,
    /// The session shut its sending side (it closes).
    pub shut: bool,
}

/// What a stream's child session sees of its h2 connection: read once per connection (the
/// local address is a system call), copied into each stream's pipe.
#[derive(Debug, Clone, Copy)]
pub struct PipeOrigin {
    pub scheme: &'static str,
    pub hsts: Option<u64>,
    pub local: std::net::SocketAddr,
}

impl Pipe {
    /// An empty pipe for stream `stream_id` (`link` in its table) of h2 session `parent`, whose
    /// connection is `origin`, its output bounded to `outbound_bound` bytes. `buffers` are the
    /// two directions' (empty) allocations, from the worker's pool ([`Self::into_buffers`]).
    pub fn new(
        parent: usize,
        link: usize,
        stream_id: u32,
        origin: PipeOrigin,
        outbound_bound: usize,
        buffers: [Vec<u8>; 2],
    ) -> Pipe {
        let [mut inbound, mut outbound] = buffers;
        inbound.clear();
        outbound.clear();
        Pipe {
            inbound,
            inbound_read: 0,
            inbound_ended: false,
            outbound,
            outbound_taken: 0,
            outbound_bound: outbound_bound.max(1),
            parent,
            link,
            stream_id,
            moved: false,
            scheme: origin.scheme,
            hsts: origin.hsts,
            local: origin.local,
            shut: false,
        }
    }

    /// The pipe's two allocations, for the next stream.
    pub fn into_buffers(self) -> [Vec<u8>; 2] {
        [self.inbound, self.outbound]
    }

    /// Whether the session read or wrote since the last call.
    pub fn take_moved(&mut self) -> bool {
        std::mem::take(&mut self.moved)
    }

    /// Request bytes not yet read by the session.
    pub fn inbound_unread(&self) -> usize {
        self.inbound.len() - self.inbound_read
    }

    /// Appends request bytes for the session.
    pub fn push_inbound(&mut self, bytes: &[u8]) {
        self.inbound_mut().extend_from_slice(bytes);
    }

    /// Where to append request bytes for the session (the translation writes straight into it).
    pub fn inbound_mut(&mut self) -> &mut Vec<u8> {
        if self.inbound_read == self.inbound.len() {
            self.inbound.clear();
            self.inbound_read = 0;
        }
        &mut self.inbound
    }

    /// The request is whole: after its bytes the session reads EOF.
    pub fn end_inbound(&mut self) {
        self.inbound_ended = true;
    }

    pub fn inbound_ended(&self) -> bool {
        self.inbound_ended
    }

    /// Response bytes the session wrote and the h2 side has not taken.
    pub fn outbound(&self) -> &[u8] {
        &self.outbound[self.outbound_taken..]
    }

    /// The h2 side took `n` bytes of [`Self::outbound`].
    pub fn take_outbound(&mut self, n: usize) {
        self.outbound_taken = (self.outbound_taken + n).min(self.outbound.len());
        if self.outbound_taken == self.outbound.len() {
            self.outbound.clear();
            self.outbound_taken = 0;
        }
    }

    pub(super) fn fill(&mut self, buf: &mut Buffer) -> io::Result<Filled> {
        // Readiness is the pipe's own state: no flags, read until it would block.
        let mut always = true;
        fill(self, &mut always, true, buf)
    }

    pub(super) fn flush(&mut self, head: &mut Pending, body: &[u8]) -> io::Result<Flushed> {
        let mut always = true;
        flush(self, &mut always, head, body)
    }

    pub(super) fn holds_input(&self) -> bool {
        self.inbound_unread() > 0 || self.inbound_ended
    }
}

impl io::Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let unread = &self.inbound[self.inbound_read..];
        if unread.is_empty() {
            return if self.inbound_ended {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        let n = unread.len().min(buf.len());
        buf[..n].copy_from_slice(&unread[..n]);
        self.inbound_read += n;
        self.moved = true;
        Ok(n)
    }
}

impl io::Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.outbound_taken > 0 && self.outbound_taken == self.outbound.len() {
            self.outbound.clear();
            self.outbound_taken = 0;
        }
        let room = self
            .outbound_bound
            .saturating_sub(self.outbound.len() - self.outbound_taken);
        if room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = room.min(buf.len());
        self.outbound.extend_from_slice(&buf[..n]);
        self.moved |= n > 0;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
