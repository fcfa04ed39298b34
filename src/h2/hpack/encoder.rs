//! The HPACK encoder: the static table where a field matches it, otherwise a literal without
//! indexing (stateless, so nothing a peer does can grow it), or with indexing when asked;
//! Huffman coding for a string when it is shorter.

use super::table::{static_find, DynamicTable};
use super::{encode_integer, huffman};

/// Whether a literal field may enter the dynamic table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Indexing {
    /// §6.2.2: the default, the table untouched.
    Without,
    /// §6.2.1: inserted in both ends' tables (for fields repeated on every response).
    Incremental,
    /// §6.2.3: never indexed, by pibl nor by any intermediary after it (secrets).
    Never,
}

/// Table size changes made since the last block, to announce at the start of the next one.
#[derive(Debug, Clone, Copy)]
struct PendingSizeUpdate {
    /// RFC 7541 §4.2: the smallest size set in the interval must be signalled (the peer's table
    /// evicts down to it, as ours did), then the final one if it is larger.
    smallest: usize,
    last: usize,
}

/// One connection's HPACK encoding context.
#[derive(Debug)]
pub struct Encoder {
    table: DynamicTable,
    pending_size_update: Option<PendingSizeUpdate>,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new(4096)
    }
}

impl Encoder {
    /// An encoder whose dynamic table may use `table_size` bytes (the peer's
    /// SETTINGS_HEADER_TABLE_SIZE, 4096 until it says otherwise).
    pub fn new(table_size: usize) -> Self {
        Encoder {
            table: DynamicTable::new(table_size),
            pending_size_update: None,
        }
    }

    pub fn table(&self) -> &DynamicTable {
        &self.table
    }

    /// The peer changed SETTINGS_HEADER_TABLE_SIZE: the table follows, and the next block says so.
    pub fn set_table_size(&mut self, size: usize) {
        self.table.set_max_size(size);
        let smallest = self
            .pending_size_update
            .map_or(size, |pending| pending.smallest.min(size));
        self.pending_size_update = Some(PendingSizeUpdate {
            smallest,
            last: size,
        });
    }

    /// Call before the first field of each block: emits the pending table size updates.
    pub fn begin_block(&mut self, out: &mut Vec<u8>) {
        if let Some(PendingSizeUpdate { smallest, last }) = self.pending_size_update.take() {
            if smallest < last {
                encode_integer(smallest, 5, 0x20, out);
            }
            encode_integer(last, 5, 0x20, out);
        }
    }

    /// Appends one field to the block in `out`.
    pub fn encode_field(
        &mut self,
        name: &[u8],
        value: &[u8],
        indexing: Indexing,
        out: &mut Vec<u8>,
    ) {
        let (static_name, static_both) = static_find(name, value);
        if let (Some(index), Indexing::Without | Indexing::Incremental) = (static_both, indexing) {
            encode_integer(index, 7, 0x80, out);
            return;
        }
        let (mut name_index, mut both) = (static_name, None);
        // A field sent without indexing whose name the static table has skips the dynamic
        // table's scan: all it could add is a full match, for a pair the caller chose to index
        // before and not now (pibl's choice is by name, so never).
        let skip_table = indexing == Indexing::Without && static_name.is_some();
        if !self.table.is_empty() && indexing != Indexing::Never && !skip_table {
            let (dyn_name, dyn_both) = self.table.find(name, value);
            both = dyn_both.map(|i| i + 62);
            if name_index.is_none() {
                name_index = dyn_name.map(|i| i + 62);
            }
        }
        if let Some(index) = both {
            encode_integer(index, 7, 0x80, out);
            return;
        }
        let (prefix_bits, flags) = match indexing {
            Indexing::Incremental => (6, 0x40),
            Indexing::Without => (4, 0x00),
            Indexing::Never => (4, 0x10),
        };
        match name_index {
            Some(index) => encode_integer(index, prefix_bits, flags, out),
            None => {
                out.push(flags);
                encode_string(name, out);
            }
        }
        encode_string(value, out);
        if indexing == Indexing::Incremental {
            self.table.insert(name, value);
        }
    }
}

/// RFC 7541 §5.2: a string literal, Huffman-coded unless that is longer (the RFC's examples
/// take Huffman at equal length too).
pub fn encode_string(s: &[u8], out: &mut Vec<u8>) {
    let huffman_len = huffman::encoded_len(s);
    if !s.is_empty() && huffman_len <= s.len() {
        encode_integer(huffman_len, 7, 0x80, out);
        huffman::encode(s, out);
    } else {
        encode_integer(s.len(), 7, 0x00, out);
        out.extend_from_slice(s);
    }
}
