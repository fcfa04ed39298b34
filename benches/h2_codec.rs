//! The HTTP/2 codec's hot paths (issue 17): HPACK decoding of a browser's request header block,
//! first on a connection (literals, Huffman, table insertions) and repeated (mostly indexed),
//! frame parsing of a HEADERS/DATA mix, and a stream's translation both ways (the request head
//! written as HTTP/1.1, a typical HTTP/1 response head read back). No sockets: bytes in memory.
//!
//! Run: `cargo bench --bench h2_codec` (add `-- --quick` for a fast run). docs/http2.md has
//! the figures.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use pibl::h2::frame::{parse_frame, write_data, write_headers, Parsed, DEFAULT_MAX_FRAME_SIZE};
use pibl::h2::hpack::{DecodedHeaders, Decoder, Encoder, Indexing};
use pibl::h2::request::{validate, BlockKind};
use pibl::h2::translate::{write_h1_request, H1ResponseReader, ResponsePart};

/// A browser's navigation request, as Chromium sends it (fields as on the wire, lower case).
const REQUEST: &[(&[u8], &[u8])] = &[
    (b":method", b"GET"),
    (b":authority", b"www.example.com"),
    (b":scheme", b"https"),
    (b":path", b"/articles/2024/http2-in-a-proxy?ref=home"),
    (b"sec-ch-ua", b"\"Chromium\";v=\"131\", \"Not_A Brand\";v=\"24\""),
    (b"sec-ch-ua-mobile", b"?0"),
    (b"sec-ch-ua-platform", b"\"Linux\""),
    (b"upgrade-insecure-requests", b"1"),
    (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"),
    (b"accept", b"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"),
    (b"sec-fetch-site", b"none"),
    (b"sec-fetch-mode", b"navigate"),
    (b"sec-fetch-user", b"?1"),
    (b"sec-fetch-dest", b"document"),
    (b"accept-encoding", b"gzip, deflate, br, zstd"),
    (b"accept-language", b"en-GB,en;q=0.9"),
    (b"cookie", b"session=3f1a9c0e5b7d4e2a8c6b; theme=dark"),
    (b"priority", b"u=0, i"),
];

/// The request block as a browser's encoder writes it: every literal indexed.
fn encode(encoder: &mut Encoder) -> Vec<u8> {
    let mut block = Vec::new();
    encoder.begin_block(&mut block);
    for (name, value) in REQUEST {
        encoder.encode_field(name, value, Indexing::Incremental, &mut block);
    }
    block
}

fn hpack(c: &mut Criterion) {
    let mut encoder = Encoder::default();
    let first = encode(&mut encoder);
    let repeat = encode(&mut encoder);
    let mut group = c.benchmark_group("hpack_decode");
    group.throughput(Throughput::Elements(1));
    group.bench_function("first_request", |b| {
        let mut list = DecodedHeaders::new();
        b.iter(|| {
            // A fresh table each time: what the first request on a connection costs.
            let mut decoder = Decoder::new(4096, 64 * 1024);
            decoder
                .decode(black_box(&first), &mut list)
                .expect("decodes");
            black_box(list.len())
        })
    });
    group.bench_function("repeat_request", |b| {
        let mut decoder = Decoder::new(4096, 64 * 1024);
        let mut list = DecodedHeaders::new();
        decoder.decode(&first, &mut list).expect("decodes");
        b.iter(|| {
            decoder
                .decode(black_box(&repeat), &mut list)
                .expect("decodes");
            black_box(list.len())
        })
    });
    group.finish();
    println!(
        "request block: {} bytes first, {} bytes repeated",
        first.len(),
        repeat.len()
    );
}

fn frames(c: &mut Criterion) {
    // 100 streams: HEADERS (the repeated block) and two DATA frames of 4 KiB and 100 bytes.
    let mut encoder = Encoder::default();
    let _ = encode(&mut encoder);
    let block = encode(&mut encoder);
    let mut input = Vec::new();
    for i in 0..100u32 {
        let stream_id = 2 * i + 1;
        write_headers(&mut input, stream_id, &block, false, DEFAULT_MAX_FRAME_SIZE);
        write_data(&mut input, stream_id, &[b'x'; 4096], false);
        write_data(&mut input, stream_id, &[b'y'; 100], true);
    }
    let mut group = c.benchmark_group("frame_parse");
    group.throughput(Throughput::Elements(300));
    group.bench_function("headers_data_mix_300_frames", |b| {
        b.iter(|| {
            let mut at = 0;
            let mut frames = 0;
            while let Ok(Parsed::Frame { frame, consumed }) =
                parse_frame(&input[at..], DEFAULT_MAX_FRAME_SIZE)
            {
                black_box(frame);
                at += consumed;
                frames += 1;
            }
            assert_eq!(frames, 300);
        })
    });
    group.finish();
}

/// A response head as a session writes it to its client (nginx-like static file response).
const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nServer: pibl\r\nDate: Wed, 02 Dec 2026 06:00:00 GMT\r\n\
    Content-Type: text/html; charset=utf-8\r\nContent-Length: 4096\r\n\
    Last-Modified: Tue, 01 Dec 2026 12:00:00 GMT\r\nConnection: keep-alive\r\n\
    ETag: \"5f1a-1000\"\r\nCache-Control: max-age=60\r\nVia: 1.1 pibl\r\n\
    Accept-Ranges: bytes\r\n\r\n";

fn translate(c: &mut Criterion) {
    let mut encoder = Encoder::default();
    let block = encode(&mut encoder);
    let mut list = DecodedHeaders::new();
    Decoder::new(4096, 64 * 1024)
        .decode(&block, &mut list)
        .expect("decodes");
    let head = validate(&list, BlockKind::Request).expect("a valid request");
    let mut group = c.benchmark_group("translate");
    group.throughput(Throughput::Elements(1));
    group.bench_function("request_head_to_h1", |b| {
        let mut out = Vec::with_capacity(2048);
        b.iter(|| {
            out.clear();
            let body = write_h1_request(black_box(&head), true, &mut out).expect("writes");
            black_box((body, out.len()))
        })
    });
    group.bench_function("response_head_from_h1", |b| {
        b.iter(|| {
            let mut reader = H1ResponseReader::new(false);
            match reader.next(black_box(RESPONSE), false) {
                Ok((_, Some(ResponsePart::Head { fields, .. }))) => black_box(fields.len()),
                other => panic!("{other:?}"),
            }
        })
    });
    group.finish();
}

criterion_group!(benches, hpack, frames, translate);
criterion_main!(benches);
