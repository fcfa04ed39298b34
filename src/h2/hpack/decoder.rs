//! The HPACK decoder (RFC 7541 §3, §6) with pibl's bounds: a header block decodes into a
//! reusable [`DecodedHeaders`] (one byte arena and spans: no allocation per block once warm),
//! and stops with an error as soon as the list passes its size bound.

use std::ops::Range;

use super::table::{DynamicTable, ENTRY_OVERHEAD, STATIC_TABLE};
use super::{decode_integer, huffman, HpackError};

/// One decoded field: spans into [`DecodedHeaders`]' bytes.
#[derive(Debug, Clone)]
struct FieldSpan {
    name: Range<usize>,
    value: Range<usize>,
    never_indexed: bool,
}

/// A decoded header list, kept across blocks so its buffers are reused.
#[derive(Debug, Default)]
pub struct DecodedHeaders {
    bytes: Vec<u8>,
    fields: Vec<FieldSpan>,
    /// The list's size as RFC 9113 §6.5.2 counts it: name + value + 32 per field.
    list_size: usize,
}

/// A field of a decoded list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    pub name: &'a [u8],
    pub value: &'a [u8],
    /// Sent as never-indexed (RFC 7541 §6.2.3): to be forwarded the same way.
    pub never_indexed: bool,
}

impl DecodedHeaders {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn clear(&mut self) {
        self.bytes.clear();
        self.fields.clear();
        self.list_size = 0;
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// name + value + 32 per field (RFC 9113 §6.5.2).
    pub fn list_size(&self) -> usize {
        self.list_size
    }

    pub fn get(&self, i: usize) -> Option<Field<'_>> {
        let span = self.fields.get(i)?;
        Some(Field {
            name: &self.bytes[span.name.clone()],
            value: &self.bytes[span.value.clone()],
            never_indexed: span.never_indexed,
        })
    }

    pub fn iter(&self) -> impl Iterator<Item = Field<'_>> {
        (0..self.fields.len()).filter_map(move |i| self.get(i))
    }
}

/// One connection's HPACK decoding context.
#[derive(Debug)]
pub struct Decoder {
    table: DynamicTable,
    /// The table size pibl advertised (SETTINGS_HEADER_TABLE_SIZE): updates above it are refused.
    table_size_limit: usize,
    /// The decoded list's bound (SETTINGS_MAX_HEADER_LIST_SIZE as pibl enforces it).
    max_list_size: usize,
}

impl Decoder {
    /// A decoder for a connection where pibl advertised `table_size_limit` as
    /// SETTINGS_HEADER_TABLE_SIZE (4096 by default), bounding each list to `max_list_size`.
    pub fn new(table_size_limit: usize, max_list_size: usize) -> Self {
        Decoder {
            table: DynamicTable::new(table_size_limit),
            table_size_limit,
            max_list_size,
        }
    }

    pub fn table(&self) -> &DynamicTable {
        &self.table
    }

    /// Decodes one whole header block into `out` (cleared first). On error the connection must
    /// end: the dynamic table no longer matches the peer's.
    pub fn decode(&mut self, block: &[u8], out: &mut DecodedHeaders) -> Result<(), HpackError> {
        out.clear();
        let mut at = 0;
        let mut fields_seen = false;
        while at < block.len() {
            let first = block[at];
            if first & 0x80 != 0 {
                // §6.1 indexed field.
                let index = decode_integer(block, &mut at, 7)? as usize;
                self.push_indexed(index, out)?;
            } else if first & 0x40 != 0 {
                // §6.2.1 literal with incremental indexing.
                let index = decode_integer(block, &mut at, 6)? as usize;
                let span = self.push_literal(block, &mut at, index, false, out)?;
                let name = &out.bytes[span.name.clone()];
                let value = &out.bytes[span.value.clone()];
                self.table.insert(name, value);
            } else if first & 0x20 != 0 {
                // §6.3 dynamic table size update: only before the first field.
                if fields_seen {
                    return Err(HpackError::TableSizeUpdateNotAtStart);
                }
                let size = decode_integer(block, &mut at, 5)? as usize;
                if size > self.table_size_limit {
                    return Err(HpackError::TableSizeAboveLimit);
                }
                self.table.set_max_size(size);
                continue;
            } else {
                // §6.2.2 without indexing (0000), §6.2.3 never indexed (0001).
                let never_indexed = first & 0x10 != 0;
                let index = decode_integer(block, &mut at, 4)? as usize;
                self.push_literal(block, &mut at, index, never_indexed, out)?;
            }
            fields_seen = true;
        }
        Ok(())
    }

    fn push_indexed(&self, index: usize, out: &mut DecodedHeaders) -> Result<(), HpackError> {
        let start = out.bytes.len();
        let (name_len, value_len) = self.copy_indexed(index, true, out)?;
        let name = start..start + name_len;
        let value = name.end..name.end + value_len;
        finish_field(out, name, value, false, self.max_list_size)?;
        Ok(())
    }

    /// Appends the name (and the value when `with_value`) of the field at `index` to `out`.
    fn copy_indexed(
        &self,
        index: usize,
        with_value: bool,
        out: &mut DecodedHeaders,
    ) -> Result<(usize, usize), HpackError> {
        match index {
            0 => Err(HpackError::BadIndex),
            1..=61 => {
                let (name, value) = STATIC_TABLE[index - 1];
                out.bytes.extend_from_slice(name);
                if with_value {
                    out.bytes.extend_from_slice(value);
                    return Ok((name.len(), value.len()));
                }
                Ok((name.len(), 0))
            }
            _ => {
                let i = index - 62;
                // The bound is checked after the copy: it overshoots by one entry at most,
                // and an entry is no larger than the table (4 KiB by default).
                if with_value {
                    self.table
                        .copy_entry(i, &mut out.bytes)
                        .ok_or(HpackError::BadIndex)
                } else {
                    let name_len = self
                        .table
                        .copy_name(i, &mut out.bytes)
                        .ok_or(HpackError::BadIndex)?;
                    Ok((name_len, 0))
                }
            }
        }
    }

    /// A literal field: its name from `index` (0: a literal name follows), then its value.
    fn push_literal(
        &self,
        block: &[u8],
        at: &mut usize,
        index: usize,
        never_indexed: bool,
        out: &mut DecodedHeaders,
    ) -> Result<FieldSpan, HpackError> {
        let start = out.bytes.len();
        let name_len = if index == 0 {
            decode_string(block, at, &mut out.bytes)?
        } else {
            self.copy_indexed(index, false, out)?.0
        };
        let name = start..start + name_len;
        let value_len = decode_string(block, at, &mut out.bytes)?;
        let value = name.end..name.end + value_len;
        finish_field(out, name, value, never_indexed, self.max_list_size)
    }
}

/// Counts the field against the list's bound and records it.
fn finish_field(
    out: &mut DecodedHeaders,
    name: Range<usize>,
    value: Range<usize>,
    never_indexed: bool,
    max_list_size: usize,
) -> Result<FieldSpan, HpackError> {
    let size = name.len() + value.len() + ENTRY_OVERHEAD;
    out.list_size = out.list_size.saturating_add(size);
    if out.list_size > max_list_size {
        return Err(HpackError::HeaderListTooLarge);
    }
    let span = FieldSpan {
        name,
        value,
        never_indexed,
    };
    out.fields.push(span.clone());
    Ok(span)
}

/// RFC 7541 §5.2: a string literal from `block[*at..]` appended to `out`; its decoded length.
fn decode_string(block: &[u8], at: &mut usize, out: &mut Vec<u8>) -> Result<usize, HpackError> {
    let huffman_coded = block.get(*at).ok_or(HpackError::Truncated)? & 0x80 != 0;
    let len = decode_integer(block, at, 7)? as usize;
    let end = at.checked_add(len).ok_or(HpackError::Truncated)?;
    let raw = block.get(*at..end).ok_or(HpackError::Truncated)?;
    *at = end;
    let before = out.len();
    if huffman_coded {
        huffman::decode(raw, out).map_err(|_| HpackError::BadHuffman)?;
    } else {
        out.extend_from_slice(raw);
    }
    Ok(out.len() - before)
}
