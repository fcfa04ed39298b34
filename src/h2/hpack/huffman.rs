//! The HPACK Huffman code (RFC 7541 §5.2, Appendix B): encoding, and decoding by the code's
//! canonical form (codes of one length are consecutive numbers), so the decoder needs only a
//! limit per length and the symbols sorted by (length, symbol), both computed at compile time.

/// Why a Huffman string was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HuffmanError {
    /// The EOS symbol inside the string (RFC 7541 §5.2: a decoding error).
    EosInString,
    /// Padding longer than 7 bits, or padding that is not the most significant bits of EOS.
    BadPadding,
}

const MAX_LEN: usize = 30;

/// For each code length L: one past the last code of length L, as an L-bit number.
/// A peeked L-bit prefix below it (and at or above the previous lengths' range) is a symbol.
const LIMITS: [u32; MAX_LEN + 1] = limits();
/// For each code length L: the first code of length L.
const FIRST_CODE: [u32; MAX_LEN + 1] = first_codes();
/// For each code length L: where its symbols start in `SORTED`.
const OFFSET: [u16; MAX_LEN + 1] = offsets();
/// The symbols sorted by (code length, symbol): the canonical order.
const SORTED: [u16; 257] = sorted_symbols();

const fn counts() -> [u16; MAX_LEN + 1] {
    let mut counts = [0u16; MAX_LEN + 1];
    let mut s = 0;
    while s < 257 {
        counts[CODES[s].1 as usize] += 1;
        s += 1;
    }
    counts
}

const fn first_codes() -> [u32; MAX_LEN + 1] {
    let counts = counts();
    let mut first = [0u32; MAX_LEN + 1];
    let mut code = 0u32;
    let mut len = 1;
    while len <= MAX_LEN {
        first[len] = code;
        code = (code + counts[len] as u32) << 1;
        len += 1;
    }
    first
}

const fn limits() -> [u32; MAX_LEN + 1] {
    let counts = counts();
    let first = first_codes();
    let mut limits = [0u32; MAX_LEN + 1];
    let mut len = 1;
    while len <= MAX_LEN {
        limits[len] = first[len] + counts[len] as u32;
        len += 1;
    }
    limits
}

const fn offsets() -> [u16; MAX_LEN + 1] {
    let counts = counts();
    let mut offsets = [0u16; MAX_LEN + 1];
    let mut len = 1;
    let mut at = 0u16;
    while len <= MAX_LEN {
        offsets[len] = at;
        at += counts[len];
        len += 1;
    }
    offsets
}

const fn sorted_symbols() -> [u16; 257] {
    let mut sorted = [0u16; 257];
    let mut at = 0;
    let mut len = 1;
    while len <= MAX_LEN {
        let mut s = 0;
        while s < 257 {
            if CODES[s].1 as usize == len {
                sorted[at] = s as u16;
                at += 1;
            }
            s += 1;
        }
        len += 1;
    }
    sorted
}

/// The symbol and length of the code each 8-bit prefix begins with, when that code has 8 bits
/// or fewer (length 0: a longer code). The common characters all take this one lookup.
const BYTE_LOOKUP: [(u8, u8); 256] = byte_lookup();

const fn byte_lookup() -> [(u8, u8); 256] {
    let mut table = [(0u8, 0u8); 256];
    let mut s = 0;
    while s < 256 {
        let (code, len) = CODES[s];
        if len <= 8 {
            let first = (code << (8 - len)) as usize;
            let mut i = 0;
            while i < 1 << (8 - len) {
                table[first + i] = (s as u8, len);
                i += 1;
            }
        }
        s += 1;
    }
    table
}

/// The shortest code (5 bits): no symbol is decoded from fewer.
const MIN_LEN: usize = 5;
const EOS: u16 = 256;

/// The length in bytes of `input` Huffman-encoded (with its padding).
pub fn encoded_len(input: &[u8]) -> usize {
    let bits: usize = input.iter().map(|&b| CODES[b as usize].1 as usize).sum();
    bits.div_ceil(8)
}

/// Appends `input` Huffman-encoded to `out`, padded with the most significant bits of EOS (ones).
pub fn encode(input: &[u8], out: &mut Vec<u8>) {
    out.reserve(encoded_len(input));
    let mut acc: u64 = 0;
    let mut bits: u32 = 0;
    for &b in input {
        let (code, len) = CODES[b as usize];
        acc = (acc << len) | u64::from(code);
        bits += u32::from(len);
        while bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    if bits > 0 {
        let pad = 8 - bits;
        out.push(((acc << pad) as u8) | ((1u8 << pad) - 1));
    }
}

/// Appends the decoding of the Huffman string `input` to `out`.
pub fn decode(input: &[u8], out: &mut Vec<u8>) -> Result<(), HuffmanError> {
    // `acc` holds `bits` unread bits, the oldest at bit `bits - 1`.
    let mut acc: u64 = 0;
    let mut bits: usize = 0;
    let mut next = 0;
    loop {
        while bits <= 56 && next < input.len() {
            acc = (acc << 8) | u64::from(input[next]);
            bits += 8;
            next += 1;
        }
        if bits < MIN_LEN {
            break;
        }
        if bits >= 8 {
            let (symbol, len) = BYTE_LOOKUP[((acc >> (bits - 8)) & 0xff) as usize];
            if len != 0 {
                out.push(symbol);
                bits -= len as usize;
                continue;
            }
        }
        let mut found = None;
        let mut len = MIN_LEN;
        while len <= MAX_LEN && len <= bits {
            let code = ((acc >> (bits - len)) & ((1u64 << len) - 1)) as u32;
            if code < LIMITS[len] {
                let index = OFFSET[len] as usize + (code - FIRST_CODE[len]) as usize;
                found = Some((SORTED[index], len));
                break;
            }
            len += 1;
        }
        match found {
            Some((EOS, _)) => return Err(HuffmanError::EosInString),
            Some((symbol, len)) => {
                out.push(symbol as u8);
                bits -= len;
            }
            // Fewer bits left than the code they begin: only padding may remain.
            None => break,
        }
    }
    if bits > 7 {
        return Err(HuffmanError::BadPadding);
    }
    let mask = (1u64 << bits) - 1;
    if acc & mask != mask {
        return Err(HuffmanError::BadPadding);
    }
    Ok(())
}

/// RFC 7541 Appendix B: (code, bit length) for each symbol 0..=255, then EOS (256).
pub(super) const CODES: [(u32, u8); 257] = [
    (0x1ff8, 13),
    (0x7fffd8, 23),
    (0xfffffe2, 28),
    (0xfffffe3, 28),
    (0xfffffe4, 28),
    (0xfffffe5, 28),
    (0xfffffe6, 28),
    (0xfffffe7, 28),
    (0xfffffe8, 28),
    (0xffffea, 24),
    (0x3ffffffc, 30),
    (0xfffffe9, 28),
    (0xfffffea, 28),
    (0x3ffffffd, 30),
    (0xfffffeb, 28),
    (0xfffffec, 28),
    (0xfffffed, 28),
    (0xfffffee, 28),
    (0xfffffef, 28),
    (0xffffff0, 28),
    (0xffffff1, 28),
    (0xffffff2, 28),
    (0x3ffffffe, 30),
    (0xffffff3, 28),
    (0xffffff4, 28),
    (0xffffff5, 28),
    (0xffffff6, 28),
    (0xffffff7, 28),
    (0xffffff8, 28),
    (0xffffff9, 28),
    (0xffffffa, 28),
    (0xffffffb, 28),
    (0x14, 6),
    (0x3f8, 10),
    (0x3f9, 10),
    (0xffa, 12),
    (0x1ff9, 13),
    (0x15, 6),
    (0xf8, 8),
    (0x7fa, 11),
    (0x3fa, 10),
    (0x3fb, 10),
    (0xf9, 8),
    (0x7fb, 11),
    (0xfa, 8),
    (0x16, 6),
    (0x17, 6),
    (0x18, 6),
    (0x0, 5),
    (0x1, 5),
    (0x2, 5),
    (0x19, 6),
    (0x1a, 6),
    (0x1b, 6),
    (0x1c, 6),
    (0x1d, 6),
    (0x1e, 6),
    (0x1f, 6),
    (0x5c, 7),
    (0xfb, 8),
    (0x7ffc, 15),
    (0x20, 6),
    (0xffb, 12),
    (0x3fc, 10),
    (0x1ffa, 13),
    (0x21, 6),
    (0x5d, 7),
    (0x5e, 7),
    (0x5f, 7),
    (0x60, 7),
    (0x61, 7),
    (0x62, 7),
    (0x63, 7),
    (0x64, 7),
    (0x65, 7),
    (0x66, 7),
    (0x67, 7),
    (0x68, 7),
    (0x69, 7),
    (0x6a, 7),
    (0x6b, 7),
    (0x6c, 7),
    (0x6d, 7),
    (0x6e, 7),
    (0x6f, 7),
    (0x70, 7),
    (0x71, 7),
    (0x72, 7),
    (0xfc, 8),
    (0x73, 7),
    (0xfd, 8),
    (0x1ffb, 13),
    (0x7fff0, 19),
    (0x1ffc, 13),
    (0x3ffc, 14),
    (0x22, 6),
    (0x7ffd, 15),
    (0x3, 5),
    (0x23, 6),
    (0x4, 5),
    (0x24, 6),
    (0x5, 5),
    (0x25, 6),
    (0x26, 6),
    (0x27, 6),
    (0x6, 5),
    (0x74, 7),
    (0x75, 7),
    (0x28, 6),
    (0x29, 6),
    (0x2a, 6),
    (0x7, 5),
    (0x2b, 6),
    (0x76, 7),
    (0x2c, 6),
    (0x8, 5),
    (0x9, 5),
    (0x2d, 6),
    (0x77, 7),
    (0x78, 7),
    (0x79, 7),
    (0x7a, 7),
    (0x7b, 7),
    (0x7ffe, 15),
    (0x7fc, 11),
    (0x3ffd, 14),
    (0x1ffd, 13),
    (0xffffffc, 28),
    (0xfffe6, 20),
    (0x3fffd2, 22),
    (0xfffe7, 20),
    (0xfffe8, 20),
    (0x3fffd3, 22),
    (0x3fffd4, 22),
    (0x3fffd5, 22),
    (0x7fffd9, 23),
    (0x3fffd6, 22),
    (0x7fffda, 23),
    (0x7fffdb, 23),
    (0x7fffdc, 23),
    (0x7fffdd, 23),
    (0x7fffde, 23),
    (0xffffeb, 24),
    (0x7fffdf, 23),
    (0xffffec, 24),
    (0xffffed, 24),
    (0x3fffd7, 22),
    (0x7fffe0, 23),
    (0xffffee, 24),
    (0x7fffe1, 23),
    (0x7fffe2, 23),
    (0x7fffe3, 23),
    (0x7fffe4, 23),
    (0x1fffdc, 21),
    (0x3fffd8, 22),
    (0x7fffe5, 23),
    (0x3fffd9, 22),
    (0x7fffe6, 23),
    (0x7fffe7, 23),
    (0xffffef, 24),
    (0x3fffda, 22),
    (0x1fffdd, 21),
    (0xfffe9, 20),
    (0x3fffdb, 22),
    (0x3fffdc, 22),
    (0x7fffe8, 23),
    (0x7fffe9, 23),
    (0x1fffde, 21),
    (0x7fffea, 23),
    (0x3fffdd, 22),
    (0x3fffde, 22),
    (0xfffff0, 24),
    (0x1fffdf, 21),
    (0x3fffdf, 22),
    (0x7fffeb, 23),
    (0x7fffec, 23),
    (0x1fffe0, 21),
    (0x1fffe1, 21),
    (0x3fffe0, 22),
    (0x1fffe2, 21),
    (0x7fffed, 23),
    (0x3fffe1, 22),
    (0x7fffee, 23),
    (0x7fffef, 23),
    (0xfffea, 20),
    (0x3fffe2, 22),
    (0x3fffe3, 22),
    (0x3fffe4, 22),
    (0x7ffff0, 23),
    (0x3fffe5, 22),
    (0x3fffe6, 22),
    (0x7ffff1, 23),
    (0x3ffffe0, 26),
    (0x3ffffe1, 26),
    (0xfffeb, 20),
    (0x7fff1, 19),
    (0x3fffe7, 22),
    (0x7ffff2, 23),
    (0x3fffe8, 22),
    (0x1ffffec, 25),
    (0x3ffffe2, 26),
    (0x3ffffe3, 26),
    (0x3ffffe4, 26),
    (0x7ffffde, 27),
    (0x7ffffdf, 27),
    (0x3ffffe5, 26),
    (0xfffff1, 24),
    (0x1ffffed, 25),
    (0x7fff2, 19),
    (0x1fffe3, 21),
    (0x3ffffe6, 26),
    (0x7ffffe0, 27),
    (0x7ffffe1, 27),
    (0x3ffffe7, 26),
    (0x7ffffe2, 27),
    (0xfffff2, 24),
    (0x1fffe4, 21),
    (0x1fffe5, 21),
    (0x3ffffe8, 26),
    (0x3ffffe9, 26),
    (0xffffffd, 28),
    (0x7ffffe3, 27),
    (0x7ffffe4, 27),
    (0x7ffffe5, 27),
    (0xfffec, 20),
    (0xfffff3, 24),
    (0xfffed, 20),
    (0x1fffe6, 21),
    (0x3fffe9, 22),
    (0x1fffe7, 21),
    (0x1fffe8, 21),
    (0x7ffff3, 23),
    (0x3fffea, 22),
    (0x3fffeb, 22),
    (0x1ffffee, 25),
    (0x1ffffef, 25),
    (0xfffff4, 24),
    (0xfffff5, 24),
    (0x3ffffea, 26),
    (0x7ffff4, 23),
    (0x3ffffeb, 26),
    (0x7ffffe6, 27),
    (0x3ffffec, 26),
    (0x3ffffed, 26),
    (0x7ffffe7, 27),
    (0x7ffffe8, 27),
    (0x7ffffe9, 27),
    (0x7ffffea, 27),
    (0x7ffffeb, 27),
    (0xffffffe, 28),
    (0x7ffffec, 27),
    (0x7ffffed, 27),
    (0x7ffffee, 27),
    (0x7ffffef, 27),
    (0x7fffff0, 27),
    (0x3ffffee, 26),
    (0x3fffffff, 30),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_symbol_round_trips_alone_and_together() {
        let all: Vec<u8> = (0..=255u8).collect();
        for b in 0..=255u8 {
            let mut enc = Vec::new();
            encode(&[b], &mut enc);
            assert_eq!(enc.len(), encoded_len(&[b]));
            let mut dec = Vec::new();
            decode(&enc, &mut dec).expect("decodes");
            assert_eq!(dec, [b]);
        }
        let mut enc = Vec::new();
        encode(&all, &mut enc);
        let mut dec = Vec::new();
        decode(&enc, &mut dec).expect("decodes");
        assert_eq!(dec, all);
    }

    #[test]
    fn rfc_7541_c4_1_www_example_com() {
        let mut enc = Vec::new();
        encode(b"www.example.com", &mut enc);
        assert_eq!(
            enc,
            [0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff]
        );
    }

    #[test]
    fn padding_rules() {
        // Eight bits of padding (a whole 0xff byte after a complete string) is refused.
        let mut enc = Vec::new();
        encode(b"a", &mut enc); // 'a' is 00011 (5 bits) + 111 padding
        assert_eq!(enc, [0x1f]);
        let mut out = Vec::new();
        assert_eq!(
            decode(&[0x1f, 0xff], &mut out),
            Err(HuffmanError::BadPadding)
        );
        // Padding of zeros is not EOS's prefix.
        assert_eq!(decode(&[0x18], &mut out), Err(HuffmanError::BadPadding));
        // EOS itself (30 ones) inside a string.
        assert_eq!(
            decode(&[0xff, 0xff, 0xff, 0xff], &mut out),
            Err(HuffmanError::EosInString)
        );
        // Empty input is the empty string.
        out.clear();
        assert_eq!(decode(&[], &mut out), Ok(()));
        assert!(out.is_empty());
    }
}
