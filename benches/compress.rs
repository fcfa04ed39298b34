//! Compression levels on a 100 KB HTML page: MB/s (input bytes) and ratio per coding per level,
//! through pibl's own streaming `Encoder` with a 16 KiB output buffer, as the proxy uses it.
//!
//! Run: `cargo bench --bench compress` (`-- gzip` for one coding). The ratio of each level is
//! printed once before its timing. flate2's backend is the one Cargo.toml names (zlib-rs); to
//! measure miniz_oxide, give flate2 its default features there instead. docs/compression.md has
//! the figures and the levels chosen from them.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

#[path = "support/text_page.rs"]
mod text_page;

use pibl::compress::{Coding, Encoder};

/// The page size the issue's `text` scenario uses.
const PAGE: usize = 100 * 1024;

/// The levels measured: each coding's fast end, its usual default, and its slow end.
const LEVELS: [(Coding, &[i32]); 3] = [
    (Coding::Gzip, &[1, 2, 4, 6, 9]),
    (Coding::Br, &[0, 1, 3, 4, 5, 6, 9, 11]),
    (Coding::Zstd, &[1, 3, 6, 9, 12, 19]),
];

/// Compresses the whole page and returns the compressed length.
fn compress(coding: Coding, level: i32, input: &[u8], out: &mut [u8]) -> usize {
    let mut enc = Encoder::new(coding, level).expect("encoder");
    let mut total = 0;
    let mut at = 0;
    while at < input.len() {
        let p = enc.compress(&input[at..], out).expect("compress");
        at += p.consumed;
        total += p.written;
    }
    loop {
        let d = enc.finish(out).expect("finish");
        total += d.written;
        if d.done {
            return total;
        }
    }
}

fn levels(c: &mut Criterion) {
    let page = text_page::page(PAGE);
    let mut out = vec![0u8; 16 * 1024];
    let mut group = c.benchmark_group("compress_100k_html");
    group.throughput(Throughput::Bytes(page.len() as u64));
    group.sample_size(20);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    for (coding, levels) in LEVELS {
        for &level in levels {
            let size = compress(coding, level, &page, &mut out);
            println!(
                "{} level {level}: {} -> {size} bytes, ratio {:.2}",
                coding.token(),
                page.len(),
                page.len() as f64 / size as f64
            );
            group.bench_with_input(
                BenchmarkId::new(coding.token(), level),
                &level,
                |b, &level| b.iter(|| compress(coding, level, black_box(&page), &mut out)),
            );
        }
    }
    group.finish();
}

criterion_group!(benches, levels);
criterion_main!(benches);
