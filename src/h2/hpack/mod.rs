//! HPACK (RFC 7541), sans-io: a header block in, a bounded header list out, and the reverse.
//!
//! Written here rather than taken from a crate: the Rust HPACK crates that run without an async
//! runtime (`hpack`, last released 2015; `hpack_codec`, 2019) are unmaintained and bound neither
//! the decoded header list nor the table-size updates as pibl needs (see docs/http2.md).
//!
//! - `decoder.rs`: [`Decoder`], with the bounds (header-list size, table-size updates, integers).
//! - `encoder.rs`: [`Encoder`]: table matches, literals with the indexing the caller asks for.
//! - `table.rs`: the static table and the dynamic table (a byte ring).
//! - `huffman.rs`: the Appendix B code.

mod decoder;
mod encoder;
pub mod huffman;
pub mod table;
#[cfg(test)]
mod tests;

pub use decoder::{DecodedHeaders, Decoder, Field};
pub use encoder::{Encoder, Indexing};

use super::error::ErrorCode;

/// Why a header block could not be decoded. Every one of them leaves the decoder's dynamic table
/// out of step with the peer's encoder, so each ends the connection (RFC 9113 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HpackError {
    /// The block ends inside a representation.
    Truncated,
    /// An integer longer than pibl accepts (above u32::MAX or too many continuation bytes).
    IntegerOverflow,
    /// Index 0, or an index past the static and dynamic tables.
    BadIndex,
    /// A Huffman string that is not valid (EOS inside, bad padding).
    BadHuffman,
    /// A dynamic table size update above the limit pibl advertised (SETTINGS_HEADER_TABLE_SIZE).
    TableSizeAboveLimit,
    /// A dynamic table size update after the first field of the block (RFC 7541 §4.2).
    TableSizeUpdateNotAtStart,
    /// The decoded list is larger than its bound (name + value + 32 per field): the HPACK bomb
    /// defence, counted on the output, not the input.
    HeaderListTooLarge,
}

impl HpackError {
    /// The connection error to send: COMPRESSION_ERROR, or ENHANCE_YOUR_CALM for the bound.
    pub fn code(self) -> ErrorCode {
        match self {
            HpackError::HeaderListTooLarge => ErrorCode::ENHANCE_YOUR_CALM,
            _ => ErrorCode::COMPRESSION_ERROR,
        }
    }
}

/// RFC 7541 §5.1: decodes an integer with an `prefix_bits`-bit prefix from `input[*at..]`,
/// advancing `at`. Values above u32::MAX are refused.
pub fn decode_integer(input: &[u8], at: &mut usize, prefix_bits: u8) -> Result<u32, HpackError> {
    let first = *input.get(*at).ok_or(HpackError::Truncated)?;
    *at += 1;
    let max_prefix = (1u32 << prefix_bits) - 1;
    let mut value = u32::from(first) & max_prefix;
    if value < max_prefix {
        return Ok(value);
    }
    let mut shift = 0u32;
    loop {
        let byte = *input.get(*at).ok_or(HpackError::Truncated)?;
        *at += 1;
        // Five continuation bytes carry 35 bits: past that no u32 can follow.
        if shift > 28 {
            return Err(HpackError::IntegerOverflow);
        }
        let add = u64::from(byte & 0x7f) << shift;
        let sum = u64::from(value) + add;
        value = u32::try_from(sum).map_err(|_| HpackError::IntegerOverflow)?;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
        shift += 7;
    }
}

/// RFC 7541 §5.1: appends `value` with an `prefix_bits`-bit prefix; `flags` fills the first
/// byte's high bits.
pub fn encode_integer(value: usize, prefix_bits: u8, flags: u8, out: &mut Vec<u8>) {
    let max_prefix = (1usize << prefix_bits) - 1;
    if value < max_prefix {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | max_prefix as u8);
    let mut rest = value - max_prefix;
    while rest >= 0x80 {
        out.push((rest as u8 & 0x7f) | 0x80);
        rest >>= 7;
    }
    out.push(rest as u8);
}
