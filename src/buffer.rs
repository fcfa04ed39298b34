//! Fixed-size byte buffers and the per-worker pool they are borrowed from.
//!
//! A connection holds buffers only while it has work: an idle keep-alive connection gives them
//! back, so ten thousand idle clients cost a few hundred bytes each, not two buffers each.

use std::io::{self, Read};

/// Why [`Buffer::read_from`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadEnd {
    /// No room left; the source may have more.
    Full,
    /// The source has nothing more for now.
    WouldBlock,
    /// The source is finished.
    Eof,
}

/// A byte queue over a fixed allocation: bytes are appended at the tail and consumed at the head.
#[derive(Debug)]
pub struct Buffer {
    data: Box<[u8]>,
    start: usize,
    end: usize,
}

impl Buffer {
    pub fn with_capacity(capacity: usize) -> Buffer {
        Buffer {
            data: vec![0; capacity].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.data.len()
    }

    /// The bytes held, oldest first.
    pub fn data(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    pub fn len(&self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// True when no more bytes can be appended, even after compaction.
    pub fn is_full(&self) -> bool {
        self.len() == self.capacity()
    }

    /// Drops `n` bytes from the head.
    pub fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.len());
        self.start += n.min(self.len());
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    pub fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// Removes `len` bytes starting `at` bytes after the head, closing the gap.
    pub fn remove(&mut self, at: usize, len: usize) {
        let from = self.start + at;
        debug_assert!(at + len <= self.len());
        self.data.copy_within(from + len..self.end, from);
        self.end -= len;
    }

    /// Appends from `src` until `src` would block, the buffer is full, or `src` ends.
    /// Returns the bytes read and why reading stopped.
    ///
    /// With `short_read_drains`, a read that returns less than the room offered is taken to mean
    /// the socket is drained (a stream socket hands over everything it holds), which saves the
    /// read that would only say `WouldBlock`. Only valid while the peer has not closed: an EOF
    /// that arrived with the last bytes raises no new edge, so then reading goes on to the EOF.
    pub fn read_from<R: Read>(
        &mut self,
        src: &mut R,
        short_read_drains: bool,
    ) -> io::Result<(usize, ReadEnd)> {
        let mut total = 0;
        loop {
            if self.end == self.capacity() {
                if self.start == 0 {
                    return Ok((total, ReadEnd::Full));
                }
                self.compact();
            }
            let room = self.capacity() - self.end;
            match src.read(&mut self.data[self.end..]) {
                Ok(0) => return Ok((total, ReadEnd::Eof)),
                Ok(n) => {
                    self.end += n;
                    total += n;
                    if short_read_drains && n < room {
                        return Ok((total, ReadEnd::WouldBlock));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok((total, ReadEnd::WouldBlock))
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Appends bytes; returns how many fit.
    pub fn extend(&mut self, bytes: &[u8]) -> usize {
        if self.capacity() - self.end < bytes.len() {
            self.compact();
        }
        let n = bytes.len().min(self.capacity() - self.end);
        self.data[self.end..self.end + n].copy_from_slice(&bytes[..n]);
        self.end += n;
        n
    }

    /// Grows the allocation to `capacity`, keeping the bytes; for request heads that outgrow a
    /// normal buffer but stay within `max_header_bytes`.
    pub fn grow(&mut self, capacity: usize) {
        if capacity <= self.capacity() {
            return;
        }
        let mut data = vec![0; capacity].into_boxed_slice();
        let len = self.len();
        data[..len].copy_from_slice(self.data());
        self.data = data;
        self.start = 0;
        self.end = len;
    }

    fn compact(&mut self) {
        if self.start > 0 {
            self.data.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }
}

/// Buffers of one size, recycled so the request path does not allocate.
#[derive(Debug)]
pub struct BufferPool {
    size: usize,
    max_free: usize,
    free: Vec<Buffer>,
}

impl BufferPool {
    pub fn new(size: usize, max_free: usize) -> BufferPool {
        BufferPool {
            size,
            max_free,
            free: Vec::new(),
        }
    }

    pub fn buffer_size(&self) -> usize {
        self.size
    }

    pub fn get(&mut self) -> Buffer {
        self.free
            .pop()
            .unwrap_or_else(|| Buffer::with_capacity(self.size))
    }

    /// Returns a buffer; grown or surplus ones are freed.
    pub fn put(&mut self, mut buf: Buffer) {
        if buf.capacity() == self.size && self.free.len() < self.max_free {
            buf.clear();
            self.free.push(buf);
        }
    }
}

/// Free head buffers (`Vec<u8>`: a request head rewritten for the backend, a response head for
/// the client, the two directions of an HTTP/2 stream's pipe), sized for a typical head. A
/// connection takes two when a request arrives and gives them back when it goes idle (a stream,
/// when it ends), so idle connections hold none and a new connection's first head is not written
/// through a string of reallocations as its buffer grows.
pub struct HeadPool {
    max_free: usize,
    free: Vec<Vec<u8>>,
}

impl HeadPool {
    /// Capacity of a new head buffer: a typical head fits.
    pub const CAPACITY: usize = 512;
    /// Larger ones (an unusual head) are freed rather than kept.
    const MAX_KEPT: usize = 8 * 1024;

    pub fn new(max_free: usize) -> HeadPool {
        HeadPool {
            max_free,
            free: Vec::new(),
        }
    }

    pub fn get(&mut self) -> Vec<u8> {
        self.free
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(Self::CAPACITY))
    }

    /// Takes a head buffer back (an empty, never-allocated one is simply dropped).
    pub fn put(&mut self, mut head: Vec<u8>) {
        if head.capacity() >= Self::CAPACITY
            && head.capacity() <= Self::MAX_KEPT
            && self.free.len() < self.max_free
        {
            head.clear();
            self.free.push(head);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_until_full_and_compacts_after_consume() {
        let mut b = Buffer::with_capacity(8);
        let mut src: &[u8] = b"0123456789";
        let (n, end) = b.read_from(&mut src, false).unwrap();
        assert_eq!((n, end), (8, ReadEnd::Full));
        assert!(b.is_full());
        b.consume(5);
        let (n, _) = b.read_from(&mut src, false).unwrap();
        assert_eq!(n, 2);
        assert_eq!(b.data(), b"56789");
        let (n, end) = b.read_from(&mut src, false).unwrap();
        assert_eq!((n, end), (0, ReadEnd::Eof));
    }

    #[test]
    fn remove_closes_gap_and_grow_keeps_bytes() {
        let mut b = Buffer::with_capacity(16);
        b.extend(b"abcXYZdef");
        b.consume(1);
        b.remove(2, 3);
        assert_eq!(b.data(), b"bcdef");
        b.grow(64);
        assert_eq!(b.capacity(), 64);
        assert_eq!(b.data(), b"bcdef");
    }

    #[test]
    fn pool_recycles_only_standard_buffers() {
        let mut p = BufferPool::new(16, 4);
        let mut a = p.get();
        a.grow(32);
        p.put(a);
        assert!(p.free.is_empty());
        let b = p.get();
        p.put(b);
        assert_eq!(p.free.len(), 1);
    }

    #[test]
    fn head_pool_keeps_typical_heads_only() {
        let mut p = HeadPool::new(2);
        let mut h = p.get();
        assert!(h.capacity() >= HeadPool::CAPACITY);
        h.extend_from_slice(b"GET / HTTP/1.1\r\n");
        let ptr = h.as_ptr();
        p.put(h);
        let again = p.get();
        assert!(again.is_empty());
        assert_eq!(again.as_ptr(), ptr, "the same allocation is reused");
        p.put(Vec::new()); // a buffer given back already: nothing to keep
        p.put(Vec::with_capacity(64 * 1024)); // grown for a huge head: freed
        assert_eq!(p.free.len(), 0);
        for _ in 0..3 {
            p.put(Vec::with_capacity(HeadPool::CAPACITY));
        }
        assert_eq!(p.free.len(), 2, "bounded");
    }
}
