//! The HPACK tables (RFC 7541 §2.3): the static table, and the dynamic table as one byte ring
//! plus entry lengths, so inserting and evicting fields allocates nothing once the ring has grown
//! to the table's size.

use std::collections::VecDeque;

/// RFC 7541 §4.1: an entry's size is its name, its value and 32 bytes of overhead.
pub const ENTRY_OVERHEAD: usize = 32;

/// RFC 7541 Appendix A: the static table; index 1 is the first row.
pub(super) const STATIC_TABLE: [(&[u8], &[u8]); 61] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

/// The longest name in the static table (`access-control-allow-origin`).
const MAX_STATIC_NAME: usize = 27;
/// The most rows whose names share a length (7: `:method`, `:scheme`, `:status`, ...).
const MAX_ROWS_PER_LENGTH: usize = 14;

/// For each name length, how many static rows have a name that long, and which (0-based, in
/// table order): a lookup compares a handful of names, not 61.
const BY_NAME_LENGTH: [(u8, [u8; MAX_ROWS_PER_LENGTH]); MAX_STATIC_NAME + 1] = by_name_length();

const fn by_name_length() -> [(u8, [u8; MAX_ROWS_PER_LENGTH]); MAX_STATIC_NAME + 1] {
    let mut out = [(0u8, [0u8; MAX_ROWS_PER_LENGTH]); MAX_STATIC_NAME + 1];
    let mut row = 0;
    while row < STATIC_TABLE.len() {
        let len = STATIC_TABLE[row].0.len();
        let count = out[len].0 as usize;
        out[len].1[count] = row as u8;
        out[len].0 += 1;
        row += 1;
    }
    out
}

/// The static table's index of `name`, and of `name` with `value` if there is such a row.
pub fn static_find(name: &[u8], value: &[u8]) -> (Option<usize>, Option<usize>) {
    let Some((count, rows)) = BY_NAME_LENGTH.get(name.len()) else {
        return (None, None);
    };
    let mut name_at = None;
    for &row in &rows[..*count as usize] {
        let (n, v) = STATIC_TABLE[row as usize];
        // The first byte before the call to compare: most candidates differ there.
        if n.first() == name.first() && n == name {
            let index = row as usize + 1;
            if v == value {
                return (Some(index), Some(index));
            }
            name_at.get_or_insert(index);
        }
    }
    (name_at, None)
}

/// One dynamic-table entry: where its bytes start in the ring's sequence, and its lengths.
#[derive(Debug, Clone, Copy)]
struct Entry {
    start: u64,
    name_len: u32,
    value_len: u32,
}

impl Entry {
    fn size(&self) -> usize {
        self.name_len as usize + self.value_len as usize + ENTRY_OVERHEAD
    }
}

/// The dynamic table (RFC 7541 §2.3.2, §4): newest entry first for indexing, evicting the
/// oldest when an insertion or a size change needs room.
#[derive(Debug)]
pub struct DynamicTable {
    /// The entries' names and values, oldest first; byte 0 is sequence number `front_seq`.
    bytes: VecDeque<u8>,
    front_seq: u64,
    /// Oldest first (newest at the back): HPACK index 62 is the back.
    entries: VecDeque<Entry>,
    /// The sum of the entries' sizes (RFC 7541 §4.1).
    size: usize,
    max_size: usize,
}

impl DynamicTable {
    pub fn new(max_size: usize) -> Self {
        DynamicTable {
            bytes: VecDeque::new(),
            front_seq: 0,
            entries: VecDeque::new(),
            size: 0,
            max_size,
        }
    }

    pub fn size(&self) -> usize {
        self.size
    }

    pub fn max_size(&self) -> usize {
        self.max_size
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// RFC 7541 §4.3: a new maximum size, evicting until the entries fit.
    pub fn set_max_size(&mut self, max_size: usize) {
        self.max_size = max_size;
        self.evict_to(max_size);
    }

    /// RFC 7541 §4.4: evicts room for the field, then adds it; a field larger than the whole
    /// table empties it and is not added.
    pub fn insert(&mut self, name: &[u8], value: &[u8]) {
        let size = name.len() + value.len() + ENTRY_OVERHEAD;
        if size > self.max_size {
            self.evict_to(0);
            return;
        }
        self.evict_to(self.max_size - size);
        let start = self.front_seq + self.bytes.len() as u64;
        self.bytes.extend(name);
        self.bytes.extend(value);
        self.entries.push_back(Entry {
            start,
            name_len: name.len() as u32,
            value_len: value.len() as u32,
        });
        self.size += size;
    }

    fn evict_to(&mut self, target: usize) {
        while self.size > target {
            let Some(oldest) = self.entries.pop_front() else {
                break;
            };
            self.size -= oldest.size();
            let len = oldest.name_len as usize + oldest.value_len as usize;
            self.bytes.drain(..len);
            self.front_seq += len as u64;
        }
    }

    /// Entry `i` (0 is the newest, HPACK index 62): appends its name and value to `out` and
    /// returns their lengths.
    pub fn copy_entry(&self, i: usize, out: &mut Vec<u8>) -> Option<(usize, usize)> {
        let entry = self.entry(i)?;
        let at = (entry.start - self.front_seq) as usize;
        let len = entry.name_len as usize + entry.value_len as usize;
        copy_range(&self.bytes, at, len, out);
        Some((entry.name_len as usize, entry.value_len as usize))
    }

    /// Entry `i`'s name appended to `out`; its length.
    pub fn copy_name(&self, i: usize, out: &mut Vec<u8>) -> Option<usize> {
        let entry = self.entry(i)?;
        let at = (entry.start - self.front_seq) as usize;
        copy_range(&self.bytes, at, entry.name_len as usize, out);
        Some(entry.name_len as usize)
    }

    /// The index (0 = newest) of an entry equal to `name` and `value`, and of one with `name`.
    pub fn find(&self, name: &[u8], value: &[u8]) -> (Option<usize>, Option<usize>) {
        let mut name_at = None;
        for (i, entry) in self.entries.iter().rev().enumerate() {
            if entry.name_len as usize != name.len() {
                continue;
            }
            let at = (entry.start - self.front_seq) as usize;
            if range_eq(&self.bytes, at, name) {
                if entry.value_len as usize == value.len()
                    && range_eq(&self.bytes, at + name.len(), value)
                {
                    return (Some(i), Some(i));
                }
                name_at.get_or_insert(i);
            }
        }
        (name_at, None)
    }

    fn entry(&self, i: usize) -> Option<Entry> {
        let len = self.entries.len();
        if i >= len {
            return None;
        }
        self.entries.get(len - 1 - i).copied()
    }
}

fn copy_range(bytes: &VecDeque<u8>, at: usize, len: usize, out: &mut Vec<u8>) {
    let (a, b) = bytes.as_slices();
    if at >= a.len() {
        out.extend_from_slice(&b[at - a.len()..at - a.len() + len]);
    } else if at + len <= a.len() {
        out.extend_from_slice(&a[at..at + len]);
    } else {
        out.extend_from_slice(&a[at..]);
        out.extend_from_slice(&b[..len - (a.len() - at)]);
    }
}

fn range_eq(bytes: &VecDeque<u8>, at: usize, want: &[u8]) -> bool {
    if at + want.len() > bytes.len() {
        return false;
    }
    // Compared as the ring's (at most two) slices, not byte by byte.
    let (a, b) = bytes.as_slices();
    if at >= a.len() {
        let at = at - a.len();
        return b[at..at + want.len()] == *want;
    }
    let first = (a.len() - at).min(want.len());
    a[at..at + first] == want[..first] && b[..want.len() - first] == want[first..]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The by-length lookup finds what a search of the whole static table finds: every row's name
    /// and pair, and nothing for names not in it (longer than any, empty, same length but other).
    #[test]
    fn static_find_agrees_with_a_full_search() {
        let full = |name: &[u8], value: &[u8]| {
            let name_at = STATIC_TABLE.iter().position(|(n, _)| *n == name);
            let both = STATIC_TABLE
                .iter()
                .position(|(n, v)| *n == name && *v == value);
            // A full match is also the name's index (any row of the name would do).
            match both {
                Some(i) => (Some(i + 1), Some(i + 1)),
                None => (name_at.map(|i| i + 1), None),
            }
        };
        for (name, value) in STATIC_TABLE {
            assert_eq!(static_find(name, value), full(name, value), "{name:?}");
            assert_eq!(
                static_find(name, b"other"),
                full(name, b"other"),
                "{name:?}"
            );
        }
        for name in [
            &b""[..],
            b"x-origin",
            b"content-lengtx",
            b"access-control-allow-origin-and-more",
        ] {
            assert_eq!(static_find(name, b""), (None, None), "{name:?}");
        }
    }
}
