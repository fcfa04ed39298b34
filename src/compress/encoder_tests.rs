//! The encoders against the crates' own decoders: every coding, empty and 1 MiB bodies, input
//! and output cut at random places, output room of one byte, flushes mid-stream.

use std::io::Read;

use super::{Coding, Encoder, Levels, STEP_INPUT};

/// A small xorshift: deterministic "random" splits without a dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Text that compresses like a web page: words from a small vocabulary, some markup.
fn page(len: usize) -> Vec<u8> {
    let words = [
        "<div class=\"item\">",
        "proxy",
        "cache",
        "the",
        "request",
        "</div>\n",
        "response",
        "<a href=\"/x\">",
        "</a>",
        "backend",
        "compress",
        "of",
        "and",
        "a",
        "stream",
    ];
    let mut rng = Rng(42);
    let mut out = Vec::with_capacity(len + 32);
    while out.len() < len {
        out.extend_from_slice(words[rng.below(words.len())].as_bytes());
        out.push(b' ');
    }
    out.truncate(len);
    out
}

/// The coding undone by the crates' own decoders (the other compress tests use it too).
pub(super) fn decode(coding: Coding, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match coding {
        Coding::Gzip => {
            flate2::read::GzDecoder::new(data)
                .read_to_end(&mut out)
                .expect("gzip decodes");
        }
        Coding::Br => {
            brotli::Decompressor::new(data, 4096)
                .read_to_end(&mut out)
                .expect("brotli decodes");
        }
        Coding::Zstd => out = zstd::stream::decode_all(data).expect("zstd decodes"),
    }
    out
}

/// Encodes `input` feeding at most `max_in` bytes and giving at most `max_out` bytes of room
/// per call (each cut chosen at random below those when `rng` is given); flushes every
/// `flush_every` calls when set.
fn encode(
    coding: Coding,
    input: &[u8],
    max_in: usize,
    max_out: usize,
    mut rng: Option<&mut Rng>,
    flush_every: Option<usize>,
) -> Vec<u8> {
    let mut enc = Encoder::new(coding, Levels::DEFAULT.of(coding)).expect("encoder");
    assert_eq!(enc.coding(), coding);
    let mut out = Vec::new();
    let mut room = vec![0u8; max_out];
    let mut at = 0;
    let mut calls = 0;
    let cut = |n: usize, rng: &mut Option<&mut Rng>| match rng {
        Some(r) => 1 + r.below(n),
        None => n,
    };
    while at < input.len() {
        let take = cut(max_in, &mut rng).min(input.len() - at);
        let give = cut(max_out, &mut rng);
        let p = enc
            .compress(&input[at..at + take], &mut room[..give])
            .expect("compress");
        assert!(p.consumed <= take.min(STEP_INPUT) && p.written <= give);
        at += p.consumed;
        out.extend_from_slice(&room[..p.written]);
        calls += 1;
        assert!(calls < 100 * (input.len() + 100), "no progress");
        if flush_every.is_some_and(|n| calls % n == 0) {
            loop {
                let give = cut(max_out, &mut rng);
                let d = enc.flush(&mut room[..give]).expect("flush");
                out.extend_from_slice(&room[..d.written]);
                if d.done {
                    break;
                }
            }
            // Everything fed so far decodes now (a flushed prefix of a stream): checked by
            // the streaming decoders reading what they can.
            assert!(
                prefix_decodes(coding, &out, &input[..at]),
                "{coding:?} flush at {at}"
            );
        }
    }
    loop {
        let give = cut(max_out, &mut rng);
        let d = enc.finish(&mut room[..give]).expect("finish");
        out.extend_from_slice(&room[..d.written]);
        if d.done {
            break;
        }
        calls += 1;
        assert!(
            calls < 100 * (input.len() + 100),
            "finish makes no progress"
        );
    }
    out
}

/// Whether a stream cut after a flush decodes to `expected` (the decoder stops at the cut).
fn prefix_decodes(coding: Coding, stream: &[u8], expected: &[u8]) -> bool {
    let mut got = vec![0u8; expected.len()];
    let read = |r: &mut dyn Read, got: &mut [u8]| r.read_exact(got).is_ok();
    let ok = match coding {
        Coding::Gzip => read(&mut flate2::read::GzDecoder::new(stream), &mut got),
        Coding::Br => read(&mut brotli::Decompressor::new(stream, 4096), &mut got),
        Coding::Zstd => match zstd::stream::read::Decoder::new(stream) {
            Ok(mut d) => read(&mut d, &mut got),
            Err(_) => false,
        },
    };
    ok && got == expected
}

#[test]
fn every_coding_round_trips_a_page() {
    let input = page(100_000);
    for c in Coding::PREFERENCE {
        let out = encode(c, &input, 1 << 20, 16 * 1024, None, None);
        assert_eq!(decode(c, &out), input, "{c:?}");
        assert!(out.len() * 3 < input.len(), "{c:?}: {} bytes", out.len());
    }
}

#[test]
fn an_empty_body_is_a_valid_empty_stream() {
    for c in Coding::PREFERENCE {
        let out = encode(c, &[], 1, 4096, None, None);
        assert!(!out.is_empty(), "{c:?}");
        assert_eq!(decode(c, &out), b"", "{c:?}");
    }
}

#[test]
fn one_mib_in_steps_of_at_most_step_input() {
    let input = page(1 << 20);
    for c in Coding::PREFERENCE {
        let out = encode(c, &input, 1 << 20, 16 * 1024, None, None);
        assert_eq!(decode(c, &out), input, "{c:?}");
    }
}

#[test]
fn random_splits_of_input_and_output_room() {
    let input = page(200_000);
    for (seed, c) in Coding::PREFERENCE.into_iter().enumerate() {
        let mut rng = Rng(seed as u64 + 7);
        let out = encode(c, &input, 5000, 3000, Some(&mut rng), None);
        assert_eq!(decode(c, &out), input, "{c:?}");
    }
}

#[test]
fn one_byte_of_room_at_a_time() {
    let input = page(20_000);
    for c in Coding::PREFERENCE {
        let out = encode(c, &input, 700, 1, None, None);
        assert_eq!(decode(c, &out), input, "{c:?}");
    }
}

#[test]
fn flushes_make_what_was_fed_decodable() {
    let input = page(60_000);
    for (seed, c) in Coding::PREFERENCE.into_iter().enumerate() {
        let mut rng = Rng(seed as u64 + 99);
        let out = encode(c, &input, 4000, 2000, Some(&mut rng), Some(5));
        assert_eq!(decode(c, &out), input, "{c:?}");
    }
}

#[test]
fn binary_input_round_trips() {
    let mut rng = Rng(3);
    let input: Vec<u8> = (0..50_000).map(|_| rng.below(256) as u8).collect();
    for c in Coding::PREFERENCE {
        let out = encode(c, &input, 9000, 4096, None, None);
        assert_eq!(decode(c, &out), input, "{c:?}");
    }
}

#[test]
fn every_level_in_range_makes_an_encoder() {
    for c in Coding::PREFERENCE {
        for level in Levels::range(c) {
            let mut e = Encoder::new(c, level).expect("level in range");
            let mut out = [0u8; 64];
            assert!(e.compress(b"x", &mut out).is_ok(), "{c:?} {level}");
        }
    }
}
