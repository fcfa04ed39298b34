//! RFC 7541 Appendix C, every example: the decoded list and the dynamic table after each block;
//! the Huffman examples (C.4, C.6) also re-encoded byte for byte. Then round trips, the bounds,
//! and random input that must never panic.

use super::*;
use crate::h2::test_rng::XorShift;

type Fields = &'static [(&'static [u8], &'static [u8])];

/// One block of an example: its bytes, the list it decodes to, the table size and entries after it.
struct Step {
    block: &'static [u8],
    list: Fields,
    table_size: usize,
    table: Fields,
}

const C2_1: (usize, &[Step]) = (
    4096,
    &[
        // C.2.1
        Step {
            block: &[
                0x40, 0x0a, 0x63, 0x75, 0x73, 0x74, 0x6f, 0x6d, 0x2d, 0x6b, 0x65, 0x79, 0x0d, 0x63,
                0x75, 0x73, 0x74, 0x6f, 0x6d, 0x2d, 0x68, 0x65, 0x61, 0x64, 0x65, 0x72,
            ],
            list: &[(b"custom-key", b"custom-header")],
            table_size: 55,
            table: &[(b"custom-key", b"custom-header")],
        },
    ],
);

const C2_2: (usize, &[Step]) = (
    4096,
    &[
        // C.2.2
        Step {
            block: &[
                0x04, 0x0c, 0x2f, 0x73, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2f, 0x70, 0x61, 0x74, 0x68,
            ],
            list: &[(b":path", b"/sample/path")],
            table_size: 0,
            table: &[],
        },
    ],
);

const C2_3: (usize, &[Step]) = (
    4096,
    &[
        // C.2.3
        Step {
            block: &[
                0x10, 0x08, 0x70, 0x61, 0x73, 0x73, 0x77, 0x6f, 0x72, 0x64, 0x06, 0x73, 0x65, 0x63,
                0x72, 0x65, 0x74,
            ],
            list: &[(b"password", b"secret")],
            table_size: 0,
            table: &[],
        },
    ],
);

const C2_4: (usize, &[Step]) = (
    4096,
    &[
        // C.2.4
        Step {
            block: &[0x82],
            list: &[(b":method", b"GET")],
            table_size: 0,
            table: &[],
        },
    ],
);

const C3: (usize, &[Step]) = (
    4096,
    &[
        // C.3.1
        Step {
            block: &[
                0x82, 0x86, 0x84, 0x41, 0x0f, 0x77, 0x77, 0x77, 0x2e, 0x65, 0x78, 0x61, 0x6d, 0x70,
                0x6c, 0x65, 0x2e, 0x63, 0x6f, 0x6d,
            ],
            list: &[
                (b":method", b"GET"),
                (b":scheme", b"http"),
                (b":path", b"/"),
                (b":authority", b"www.example.com"),
            ],
            table_size: 57,
            table: &[(b":authority", b"www.example.com")],
        },
        // C.3.2
        Step {
            block: &[
                0x82, 0x86, 0x84, 0xbe, 0x58, 0x08, 0x6e, 0x6f, 0x2d, 0x63, 0x61, 0x63, 0x68, 0x65,
            ],
            list: &[
                (b":method", b"GET"),
                (b":scheme", b"http"),
                (b":path", b"/"),
                (b":authority", b"www.example.com"),
                (b"cache-control", b"no-cache"),
            ],
            table_size: 110,
            table: &[
                (b"cache-control", b"no-cache"),
                (b":authority", b"www.example.com"),
            ],
        },
        // C.3.3
        Step {
            block: &[
                0x82, 0x87, 0x85, 0xbf, 0x40, 0x0a, 0x63, 0x75, 0x73, 0x74, 0x6f, 0x6d, 0x2d, 0x6b,
                0x65, 0x79, 0x0c, 0x63, 0x75, 0x73, 0x74, 0x6f, 0x6d, 0x2d, 0x76, 0x61, 0x6c, 0x75,
                0x65,
            ],
            list: &[
                (b":method", b"GET"),
                (b":scheme", b"https"),
                (b":path", b"/index.html"),
                (b":authority", b"www.example.com"),
                (b"custom-key", b"custom-value"),
            ],
            table_size: 164,
            table: &[
                (b"custom-key", b"custom-value"),
                (b"cache-control", b"no-cache"),
                (b":authority", b"www.example.com"),
            ],
        },
    ],
);

const C4: (usize, &[Step]) = (
    4096,
    &[
        // C.4.1
        Step {
            block: &[
                0x82, 0x86, 0x84, 0x41, 0x8c, 0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab,
                0x90, 0xf4, 0xff,
            ],
            list: &[
                (b":method", b"GET"),
                (b":scheme", b"http"),
                (b":path", b"/"),
                (b":authority", b"www.example.com"),
            ],
            table_size: 57,
            table: &[(b":authority", b"www.example.com")],
        },
        // C.4.2
        Step {
            block: &[
                0x82, 0x86, 0x84, 0xbe, 0x58, 0x86, 0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf,
            ],
            list: &[
                (b":method", b"GET"),
                (b":scheme", b"http"),
                (b":path", b"/"),
                (b":authority", b"www.example.com"),
                (b"cache-control", b"no-cache"),
            ],
            table_size: 110,
            table: &[
                (b"cache-control", b"no-cache"),
                (b":authority", b"www.example.com"),
            ],
        },
        // C.4.3
        Step {
            block: &[
                0x82, 0x87, 0x85, 0xbf, 0x40, 0x88, 0x25, 0xa8, 0x49, 0xe9, 0x5b, 0xa9, 0x7d, 0x7f,
                0x89, 0x25, 0xa8, 0x49, 0xe9, 0x5b, 0xb8, 0xe8, 0xb4, 0xbf,
            ],
            list: &[
                (b":method", b"GET"),
                (b":scheme", b"https"),
                (b":path", b"/index.html"),
                (b":authority", b"www.example.com"),
                (b"custom-key", b"custom-value"),
            ],
            table_size: 164,
            table: &[
                (b"custom-key", b"custom-value"),
                (b"cache-control", b"no-cache"),
                (b":authority", b"www.example.com"),
            ],
        },
    ],
);

const C5: (usize, &[Step]) = (
    256,
    &[
        // C.5.1
        Step {
            block: &[
                0x48, 0x03, 0x33, 0x30, 0x32, 0x58, 0x07, 0x70, 0x72, 0x69, 0x76, 0x61, 0x74, 0x65,
                0x61, 0x1d, 0x4d, 0x6f, 0x6e, 0x2c, 0x20, 0x32, 0x31, 0x20, 0x4f, 0x63, 0x74, 0x20,
                0x32, 0x30, 0x31, 0x33, 0x20, 0x32, 0x30, 0x3a, 0x31, 0x33, 0x3a, 0x32, 0x31, 0x20,
                0x47, 0x4d, 0x54, 0x6e, 0x17, 0x68, 0x74, 0x74, 0x70, 0x73, 0x3a, 0x2f, 0x2f, 0x77,
                0x77, 0x77, 0x2e, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x63, 0x6f, 0x6d,
            ],
            list: &[
                (b":status", b"302"),
                (b"cache-control", b"private"),
                (b"date", b"Mon, 21 Oct 2013 20:13:21 GMT"),
                (b"location", b"https://www.example.com"),
            ],
            table_size: 222,
            table: &[
                (b"location", b"https://www.example.com"),
                (b"date", b"Mon, 21 Oct 2013 20:13:21 GMT"),
                (b"cache-control", b"private"),
                (b":status", b"302"),
            ],
        },
        // C.5.2
        Step {
            block: &[0x48, 0x03, 0x33, 0x30, 0x37, 0xc1, 0xc0, 0xbf],
            list: &[
                (b":status", b"307"),
                (b"cache-control", b"private"),
                (b"date", b"Mon, 21 Oct 2013 20:13:21 GMT"),
                (b"location", b"https://www.example.com"),
            ],
            table_size: 222,
            table: &[
                (b":status", b"307"),
                (b"location", b"https://www.example.com"),
                (b"date", b"Mon, 21 Oct 2013 20:13:21 GMT"),
                (b"cache-control", b"private"),
            ],
        },
        // C.5.3
        Step {
            block: &[
                0x88, 0xc1, 0x61, 0x1d, 0x4d, 0x6f, 0x6e, 0x2c, 0x20, 0x32, 0x31, 0x20, 0x4f, 0x63,
                0x74, 0x20, 0x32, 0x30, 0x31, 0x33, 0x20, 0x32, 0x30, 0x3a, 0x31, 0x33, 0x3a, 0x32,
                0x32, 0x20, 0x47, 0x4d, 0x54, 0xc0, 0x5a, 0x04, 0x67, 0x7a, 0x69, 0x70, 0x77, 0x38,
                0x66, 0x6f, 0x6f, 0x3d, 0x41, 0x53, 0x44, 0x4a, 0x4b, 0x48, 0x51, 0x4b, 0x42, 0x5a,
                0x58, 0x4f, 0x51, 0x57, 0x45, 0x4f, 0x50, 0x49, 0x55, 0x41, 0x58, 0x51, 0x57, 0x45,
                0x4f, 0x49, 0x55, 0x3b, 0x20, 0x6d, 0x61, 0x78, 0x2d, 0x61, 0x67, 0x65, 0x3d, 0x33,
                0x36, 0x30, 0x30, 0x3b, 0x20, 0x76, 0x65, 0x72, 0x73, 0x69, 0x6f, 0x6e, 0x3d, 0x31,
            ],
            list: &[
                (b":status", b"200"),
                (b"cache-control", b"private"),
                (b"date", b"Mon, 21 Oct 2013 20:13:22 GMT"),
                (b"location", b"https://www.example.com"),
                (b"content-encoding", b"gzip"),
                (
                    b"set-cookie",
                    b"foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
                ),
            ],
            table_size: 215,
            table: &[
                (
                    b"set-cookie",
                    b"foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
                ),
                (b"content-encoding", b"gzip"),
                (b"date", b"Mon, 21 Oct 2013 20:13:22 GMT"),
            ],
        },
    ],
);

const C6: (usize, &[Step]) = (
    256,
    &[
        // C.6.1
        Step {
            block: &[
                0x48, 0x82, 0x64, 0x02, 0x58, 0x85, 0xae, 0xc3, 0x77, 0x1a, 0x4b, 0x61, 0x96, 0xd0,
                0x7a, 0xbe, 0x94, 0x10, 0x54, 0xd4, 0x44, 0xa8, 0x20, 0x05, 0x95, 0x04, 0x0b, 0x81,
                0x66, 0xe0, 0x82, 0xa6, 0x2d, 0x1b, 0xff, 0x6e, 0x91, 0x9d, 0x29, 0xad, 0x17, 0x18,
                0x63, 0xc7, 0x8f, 0x0b, 0x97, 0xc8, 0xe9, 0xae, 0x82, 0xae, 0x43, 0xd3,
            ],
            list: &[
                (b":status", b"302"),
                (b"cache-control", b"private"),
                (b"date", b"Mon, 21 Oct 2013 20:13:21 GMT"),
                (b"location", b"https://www.example.com"),
            ],
            table_size: 222,
            table: &[
                (b"location", b"https://www.example.com"),
                (b"date", b"Mon, 21 Oct 2013 20:13:21 GMT"),
                (b"cache-control", b"private"),
                (b":status", b"302"),
            ],
        },
        // C.6.2
        Step {
            block: &[0x48, 0x83, 0x64, 0x0e, 0xff, 0xc1, 0xc0, 0xbf],
            list: &[
                (b":status", b"307"),
                (b"cache-control", b"private"),
                (b"date", b"Mon, 21 Oct 2013 20:13:21 GMT"),
                (b"location", b"https://www.example.com"),
            ],
            table_size: 222,
            table: &[
                (b":status", b"307"),
                (b"location", b"https://www.example.com"),
                (b"date", b"Mon, 21 Oct 2013 20:13:21 GMT"),
                (b"cache-control", b"private"),
            ],
        },
        // C.6.3
        Step {
            block: &[
                0x88, 0xc1, 0x61, 0x96, 0xd0, 0x7a, 0xbe, 0x94, 0x10, 0x54, 0xd4, 0x44, 0xa8, 0x20,
                0x05, 0x95, 0x04, 0x0b, 0x81, 0x66, 0xe0, 0x84, 0xa6, 0x2d, 0x1b, 0xff, 0xc0, 0x5a,
                0x83, 0x9b, 0xd9, 0xab, 0x77, 0xad, 0x94, 0xe7, 0x82, 0x1d, 0xd7, 0xf2, 0xe6, 0xc7,
                0xb3, 0x35, 0xdf, 0xdf, 0xcd, 0x5b, 0x39, 0x60, 0xd5, 0xaf, 0x27, 0x08, 0x7f, 0x36,
                0x72, 0xc1, 0xab, 0x27, 0x0f, 0xb5, 0x29, 0x1f, 0x95, 0x87, 0x31, 0x60, 0x65, 0xc0,
                0x03, 0xed, 0x4e, 0xe5, 0xb1, 0x06, 0x3d, 0x50, 0x07,
            ],
            list: &[
                (b":status", b"200"),
                (b"cache-control", b"private"),
                (b"date", b"Mon, 21 Oct 2013 20:13:22 GMT"),
                (b"location", b"https://www.example.com"),
                (b"content-encoding", b"gzip"),
                (
                    b"set-cookie",
                    b"foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
                ),
            ],
            table_size: 215,
            table: &[
                (
                    b"set-cookie",
                    b"foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
                ),
                (b"content-encoding", b"gzip"),
                (b"date", b"Mon, 21 Oct 2013 20:13:22 GMT"),
            ],
        },
    ],
);

fn table_entries(table: &table::DynamicTable) -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..table.len())
        .map(|i| {
            let mut bytes = Vec::new();
            let (name_len, _) = table.copy_entry(i, &mut bytes).expect("entry");
            let value = bytes.split_off(name_len);
            (bytes, value)
        })
        .collect()
}

fn owned(fields: Fields) -> Vec<(Vec<u8>, Vec<u8>)> {
    fields
        .iter()
        .map(|(n, v)| (n.to_vec(), v.to_vec()))
        .collect()
}

fn decoded(list: &DecodedHeaders) -> Vec<(Vec<u8>, Vec<u8>)> {
    list.iter()
        .map(|f| (f.name.to_vec(), f.value.to_vec()))
        .collect()
}

/// Decodes each step on one decoder, checking the list and the table after it.
fn check_decoding((table_size, steps): (usize, &[Step])) {
    let mut decoder = Decoder::new(table_size, 64 * 1024);
    let mut list = DecodedHeaders::new();
    for (n, step) in steps.iter().enumerate() {
        decoder.decode(step.block, &mut list).expect("decodes");
        assert_eq!(decoded(&list), owned(step.list), "step {n}");
        assert_eq!(decoder.table().size(), step.table_size, "step {n}");
        assert_eq!(
            table_entries(decoder.table()),
            owned(step.table),
            "step {n}"
        );
    }
}

/// Encodes each step's list the RFC's way (indexing every literal) and compares the bytes.
fn check_encoding((table_size, steps): (usize, &[Step])) {
    let mut encoder = Encoder::new(table_size);
    for (n, step) in steps.iter().enumerate() {
        let mut block = Vec::new();
        encoder.begin_block(&mut block);
        for (name, value) in step.list {
            encoder.encode_field(name, value, Indexing::Incremental, &mut block);
        }
        assert_eq!(block, step.block, "step {n}");
        assert_eq!(
            table_entries(encoder.table()),
            owned(step.table),
            "step {n}"
        );
    }
}

#[test]
fn rfc_7541_c2_literal_and_indexed_fields() {
    for case in [C2_1, C2_2, C2_3, C2_4] {
        check_decoding(case);
    }
    let mut decoder = Decoder::new(4096, 4096);
    let mut list = DecodedHeaders::new();
    decoder.decode(C2_3.1[0].block, &mut list).expect("decodes");
    assert!(list.get(0).expect("one field").never_indexed);
}

#[test]
fn rfc_7541_c3_requests_without_huffman() {
    check_decoding(C3);
}

#[test]
fn rfc_7541_c4_requests_with_huffman() {
    check_decoding(C4);
    check_encoding(C4);
}

#[test]
fn rfc_7541_c5_responses_without_huffman_with_eviction() {
    check_decoding(C5);
}

#[test]
fn rfc_7541_c6_responses_with_huffman_with_eviction() {
    check_decoding(C6);
    check_encoding(C6);
}

#[test]
fn integers_rfc_7541_c1_and_overflow() {
    let mut out = Vec::new();
    encode_integer(10, 5, 0, &mut out);
    assert_eq!(out, [0x0a]);
    out.clear();
    encode_integer(1337, 5, 0, &mut out);
    assert_eq!(out, [0x1f, 0x9a, 0x0a]);
    out.clear();
    encode_integer(42, 8, 0, &mut out);
    assert_eq!(out, [0x2a]);
    let mut at = 0;
    assert_eq!(decode_integer(&[0x1f, 0x9a, 0x0a], &mut at, 5), Ok(1337));
    assert_eq!(at, 3);
    for value in [0usize, 30, 31, 127, 128, 16_383, 1 << 20, u32::MAX as usize] {
        let mut out = Vec::new();
        encode_integer(value, 7, 0x80, &mut out);
        let mut at = 0;
        assert_eq!(decode_integer(&out, &mut at, 7), Ok(value as u32));
        assert_eq!(at, out.len());
    }
    // One past u32::MAX, and an endless continuation.
    let mut out = Vec::new();
    encode_integer(u32::MAX as usize + 1, 7, 0, &mut out);
    assert_eq!(
        decode_integer(&out, &mut 0, 7),
        Err(HpackError::IntegerOverflow)
    );
    let endless = [0x7f, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01];
    assert_eq!(
        decode_integer(&endless, &mut 0, 7),
        Err(HpackError::IntegerOverflow)
    );
    assert_eq!(
        decode_integer(&[0x7f, 0x80], &mut 0, 7),
        Err(HpackError::Truncated)
    );
}

#[test]
fn round_trip_with_every_indexing() {
    let fields: Fields = &[
        (b":method", b"GET"),
        (b":path", b"/a/b?c=d"),
        (b":authority", b"example.com"),
        (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64)"),
        (b"cookie", b"a=1"),
        (b"cookie", b"b=2"),
        (b"x-empty", b""),
        (b"x-binary", b"\x00\x01\xff"),
    ];
    for indexing in [Indexing::Without, Indexing::Incremental, Indexing::Never] {
        let mut encoder = Encoder::default();
        let mut decoder = Decoder::new(4096, 16 * 1024);
        let mut list = DecodedHeaders::new();
        // Twice: the second block finds the first one's entries when indexing.
        for _ in 0..2 {
            let mut block = Vec::new();
            encoder.begin_block(&mut block);
            for (name, value) in fields {
                encoder.encode_field(name, value, indexing, &mut block);
            }
            decoder.decode(&block, &mut list).expect("decodes");
            assert_eq!(decoded(&list), owned(fields));
            assert_eq!(
                table_entries(decoder.table()),
                table_entries(encoder.table())
            );
        }
        if indexing == Indexing::Never {
            assert!(list.iter().all(|f| f.never_indexed || f.name == b":method"));
        }
    }
}

#[test]
fn table_size_updates_are_bounded_and_only_at_the_start() {
    let mut decoder = Decoder::new(4096, 4096);
    let mut list = DecodedHeaders::new();
    // Two updates at the start (shrink, then grow back) are allowed.
    decoder
        .decode(&[0x20, 0x3f, 0xe1, 0x1f, 0x82], &mut list)
        .expect("decodes");
    assert_eq!(decoder.table().max_size(), 4096);
    // 4097: above the advertised limit.
    let mut above = Vec::new();
    encode_integer(4097, 5, 0x20, &mut above);
    assert_eq!(
        decoder.decode(&above, &mut list),
        Err(HpackError::TableSizeAboveLimit)
    );
    // After a field.
    assert_eq!(
        decoder.decode(&[0x82, 0x20], &mut list),
        Err(HpackError::TableSizeUpdateNotAtStart)
    );
    // Shrinking evicts: an entry, then size 0.
    decoder.decode(C2_1.1[0].block, &mut list).expect("decodes");
    assert_eq!(decoder.table().len(), 1);
    decoder.decode(&[0x20], &mut list).expect("decodes");
    assert_eq!(decoder.table().len(), 0);
    assert_eq!(
        decoder.decode(&[0xbe], &mut list),
        Err(HpackError::BadIndex)
    );
}

#[test]
fn bad_indexes_and_truncation() {
    let mut decoder = Decoder::new(4096, 4096);
    let mut list = DecodedHeaders::new();
    assert_eq!(
        decoder.decode(&[0x80], &mut list),
        Err(HpackError::BadIndex)
    );
    assert_eq!(
        decoder.decode(&[0xbe], &mut list),
        Err(HpackError::BadIndex)
    );
    assert_eq!(
        decoder.decode(&[0x7e, 0x01, b'x'], &mut list),
        Err(HpackError::BadIndex)
    );
    assert_eq!(
        decoder.decode(&[0x40, 0x05, b'a'], &mut list),
        Err(HpackError::Truncated)
    );
    assert_eq!(
        decoder.decode(&[0x04], &mut list),
        Err(HpackError::Truncated)
    );
    assert_eq!(
        decoder.decode(&[0x04, 0x81, 0x00], &mut list),
        Err(HpackError::BadHuffman)
    );
}

/// The HPACK bomb: one 4 KB entry, then a block of 4,000 one-byte references to it (8 MB if
/// decoded). The list bound stops it after a few copies, whatever the input's small size.
#[test]
fn hpack_bomb_is_stopped_by_the_list_bound() {
    let mut decoder = Decoder::new(4096, 64 * 1024);
    let mut list = DecodedHeaders::new();
    let mut block = Vec::new();
    let mut encoder = Encoder::default();
    encoder.encode_field(b"x", &[b'a'; 4000], Indexing::Incremental, &mut block);
    decoder
        .decode(&block, &mut list)
        .expect("one entry decodes");
    assert_eq!(decoder.table().len(), 1);
    let bomb = vec![0xbe; 4000];
    assert_eq!(
        decoder.decode(&bomb, &mut list),
        Err(HpackError::HeaderListTooLarge)
    );
    assert_eq!(
        HpackError::HeaderListTooLarge.code(),
        crate::h2::error::ErrorCode::ENHANCE_YOUR_CALM
    );
    assert!(list.list_size() <= 64 * 1024 + 4033);
    assert!(list.len() <= 16);
}

#[test]
fn random_blocks_never_panic_and_stay_bounded() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut decoder = Decoder::new(4096, 8 * 1024);
    let mut list = DecodedHeaders::new();
    let mut block = Vec::new();
    for round in 0..20_000 {
        block.clear();
        let len = rng.below(64);
        for _ in 0..len {
            block.push(rng.next() as u8);
        }
        // Bias some rounds towards valid-looking prefixes so deeper paths run.
        if round % 3 == 0 && !block.is_empty() {
            block[0] = [0x82, 0x40, 0x00, 0x10, 0x3f, 0xbe][rng.below(6)];
        }
        if decoder.decode(&block, &mut list).is_err() {
            decoder = Decoder::new(4096, 8 * 1024);
        }
        assert!(list.list_size() <= 8 * 1024 + 4096 + 64);
        assert!(decoder.table().size() <= 4096);
    }
}

#[test]
fn random_huffman_never_panics() {
    let mut rng = XorShift(12345);
    let mut out = Vec::new();
    for _ in 0..20_000 {
        let bytes: Vec<u8> = (0..rng.below(16)).map(|_| rng.next() as u8).collect();
        out.clear();
        let _ = huffman::decode(&bytes, &mut out);
        assert!(out.len() <= bytes.len() * 8 / 5 + 1);
    }
}

/// Blocks written by another implementation (Python's `hpack` 4.2, Huffman on, every literal
/// indexed), decoded in sequence on one decoder: the third starts with a table size update to
/// 256 and inserts a field larger than the whole table (which empties it, RFC 7541 §4.4).
#[test]
fn blocks_from_another_encoder_decode() {
    const BLOCKS: [&str; 3] = [
        "828741882f91d35d055cf64d847a89afd2673d4b4f58c9d75383f963e7",
        "8287c044876109f541572211c0538e497ca582211f5f2c7cfdf6800b8760831c11ff",
        "3fe101838741882f91d35d055cf64d448562dae838e45f8b1d75d0620d263d4c7441ea4085f2b507aa6fff8801efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7f",
    ];
    let long = vec![b'v'; 300];
    let expected: [Vec<(&[u8], &[u8])>; 3] = [
        vec![
            (b":method", b"GET"),
            (b":scheme", b"https"),
            (b":authority", b"example.org"),
            (b":path", b"/"),
            (b"user-agent", b"python-hpack"),
            (b"accept", b"*/*"),
        ],
        vec![
            (b":method", b"GET"),
            (b":scheme", b"https"),
            (b":authority", b"example.org"),
            (b":path", b"/style.css"),
            (b"user-agent", b"python-hpack"),
            (b"accept", b"text/css,*/*;q=0.1"),
            (b"cookie", b"a=b"),
        ],
        vec![
            (b":method", b"POST"),
            (b":scheme", b"https"),
            (b":authority", b"example.org"),
            (b":path", b"/upload"),
            (b"content-type", b"application/json"),
            (b"x-long", &long),
        ],
    ];
    let mut decoder = Decoder::new(4096, 16 * 1024);
    let mut list = DecodedHeaders::new();
    for (hex, want) in BLOCKS.iter().zip(expected.iter()) {
        let block: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect();
        decoder.decode(&block, &mut list).expect("decodes");
        let got: Vec<(&[u8], &[u8])> = list.iter().map(|f| (f.name, f.value)).collect();
        assert_eq!(&got, want);
    }
    assert_eq!(decoder.table().max_size(), 256);
    assert!(decoder.table().size() <= 256);
}

/// RFC 7541 §4.2: a size lowered then raised between two blocks is announced as both, the
/// smallest first, so the peer's table evicts as the encoder's did; a single change is one update.
#[test]
fn encoder_signals_the_smallest_table_size_of_an_interval() {
    let mut encoder = Encoder::default();
    let mut decoder = Decoder::new(4096, 16 * 1024);
    let mut list = DecodedHeaders::new();
    let mut block = Vec::new();
    encoder.begin_block(&mut block);
    encoder.encode_field(b"x-a", b"1", Indexing::Incremental, &mut block);
    decoder.decode(&block, &mut list).expect("decodes");
    assert_eq!(decoder.table().len(), 1);

    encoder.set_table_size(0);
    encoder.set_table_size(4096);
    block.clear();
    encoder.begin_block(&mut block);
    // 0, then 4096 (31 + 4065: 0x3f 0xe1 0x1f).
    assert_eq!(block, [0x20, 0x3f, 0xe1, 0x1f]);
    encoder.encode_field(b"x-b", b"2", Indexing::Incremental, &mut block);
    decoder.decode(&block, &mut list).expect("decodes");
    assert_eq!(decoded(&list), owned(&[(b"x-b", b"2")]));
    assert_eq!(
        table_entries(decoder.table()),
        table_entries(encoder.table())
    );
    assert_eq!(decoder.table().len(), 1, "the size 0 update evicted x-a");

    // Raised then lowered: the smallest is the last, one update.
    encoder.set_table_size(4096);
    encoder.set_table_size(100);
    block.clear();
    encoder.begin_block(&mut block);
    assert_eq!(block, [0x3f, 0x45]);
    // Nothing pending any more.
    block.clear();
    encoder.begin_block(&mut block);
    assert!(block.is_empty());
}

/// Many blocks of random fields through one encoder and decoder with a small table: insertions,
/// evictions and the byte ring wrapping around, and every list comes back as it went in.
#[test]
fn random_lists_round_trip_through_a_small_table() {
    let mut rng = XorShift(0xdead_beef);
    let names: [&[u8]; 6] = [
        b"x-a",
        b"x-bb",
        b"cookie",
        b":path",
        b"accept",
        b"x-long-name",
    ];
    for table_size in [0usize, 64, 256, 4096] {
        let mut encoder = Encoder::new(4096);
        encoder.set_table_size(table_size);
        let mut decoder = Decoder::new(4096, 1 << 20);
        let mut list = DecodedHeaders::new();
        for _ in 0..300 {
            let fields: Vec<(Vec<u8>, Vec<u8>)> = (0..1 + rng.below(8))
                .map(|_| {
                    let name = names[rng.below(names.len())].to_vec();
                    let value = (0..rng.below(90))
                        .map(|_| b"abc/=;0123456789"[rng.below(16)])
                        .collect();
                    (name, value)
                })
                .collect();
            let mut block = Vec::new();
            encoder.begin_block(&mut block);
            for (name, value) in &fields {
                let indexing =
                    [Indexing::Incremental, Indexing::Without, Indexing::Never][rng.below(3)];
                encoder.encode_field(name, value, indexing, &mut block);
            }
            decoder.decode(&block, &mut list).expect("decodes");
            assert_eq!(decoded(&list), fields);
            assert_eq!(
                table_entries(decoder.table()),
                table_entries(encoder.table())
            );
            assert!(decoder.table().size() <= table_size);
        }
    }
}
