//! `X-Request-ID` (`request_id on`): the client's, when it sent one valid id, else a new one:
//! 128 bits as 32 hex digits, from a random 128-bit start per worker thread plus a counter, so
//! ids are unique within a worker and, by the random start, across workers and restarts. No
//! lock, no syscall and no allocation per request.

use std::cell::Cell;
use std::hash::{BuildHasher, Hasher};

use super::header_rules::is_token_byte;
use super::name_is;

/// Longest client id kept; a longer one is replaced.
pub const MAX_REQUEST_ID: usize = 128;

/// One request's id, held inline (a session keeps one for its current request).
#[derive(Clone, Copy)]
pub struct RequestId {
    bytes: [u8; MAX_REQUEST_ID],
    len: u8,
}

impl Default for RequestId {
    fn default() -> Self {
        RequestId {
            bytes: [0; MAX_REQUEST_ID],
            len: 0,
        }
    }
}

impl std::fmt::Debug for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.as_bytes()))
    }
}

impl RequestId {
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// None yet (the request has no id: `request_id off`, or refused before its head was read).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// The client's id when it sent exactly one valid `X-Request-ID` (token characters, at most
    /// [`MAX_REQUEST_ID`] bytes), else a newly generated one.
    pub fn assign(&mut self, headers: &[httparse::Header<'_>]) {
        let mut theirs = headers.iter().filter(|h| name_is(h.name, "x-request-id"));
        if let (Some(one), None) = (theirs.next(), theirs.next()) {
            let v = one.value;
            if !v.is_empty() && v.len() <= MAX_REQUEST_ID && v.iter().all(|&b| is_token_byte(b)) {
                self.bytes[..v.len()].copy_from_slice(v);
                self.len = v.len() as u8;
                return;
            }
        }
        self.generate();
    }

    /// A new id: 32 lower-case hex digits.
    pub fn generate(&mut self) {
        let (hi, lo) = next_id();
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let n = (u128::from(hi) << 64) | u128::from(lo);
        for i in 0..32 {
            self.bytes[i] = HEX[((n >> (124 - 4 * i)) & 0xf) as usize];
        }
        self.len = 32;
    }
}

thread_local! {
    /// This thread's random start and how many ids it has made.
    static IDS: Cell<(u64, u64, u64)> = Cell::new(seed());
}

/// The next id of this thread: the random high half, and the random low half plus a counter.
fn next_id() -> (u64, u64) {
    IDS.with(|c| {
        let (hi, lo, n) = c.get();
        c.set((hi, lo, n.wrapping_add(1)));
        (hi, lo.wrapping_add(n))
    })
}

/// A random 128-bit start, from the process's random hashing keys (the OS's randomness), the
/// time, the process and the thread.
fn seed() -> (u64, u64, u64) {
    let random = std::collections::hash_map::RandomState::new();
    let half = |salt: u64| {
        let mut h = random.build_hasher();
        h.write_u64(salt);
        h.write_u32(std::process::id());
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        std::hash::Hash::hash(&std::thread::current().id(), &mut h);
        h.finish()
    };
    (half(1), half(2), 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::test_field;

    #[test]
    fn keeps_a_valid_id_and_replaces_others() {
        let mut id = RequestId::default();
        id.assign(&[test_field("X-Request-ID", "abc-123")]);
        assert_eq!(id.as_bytes(), b"abc-123");
        for bad in ["", "a b", "a\"b", &"x".repeat(129)] {
            id.assign(&[test_field("x-request-id", bad)]);
            assert_eq!(id.as_bytes().len(), 32, "{bad:?}");
        }
        id.assign(&[
            test_field("X-Request-ID", "a"),
            test_field("X-Request-ID", "b"),
        ]);
        assert_eq!(id.as_bytes().len(), 32);
        let mut other = RequestId::default();
        other.assign(&[]);
        assert!(other.as_bytes().iter().all(u8::is_ascii_hexdigit));
        let (a, b) = (id.as_bytes().to_vec(), other.as_bytes().to_vec());
        assert_ne!(a, b);
        let ids: std::collections::HashSet<Vec<u8>> = (0..1000)
            .map(|_| {
                id.generate();
                id.as_bytes().to_vec()
            })
            .collect();
        assert_eq!(ids.len(), 1000);
    }
}
