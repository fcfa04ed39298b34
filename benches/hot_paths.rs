//! Micro-benchmarks of the per-request hot paths (issue 7).
//!
//! Run: `cargo bench --bench hot_paths` (add `-- --quick` for a fast smoke run, or a filter such as
//! `-- request_head`). See `docs/performance.md` for what the figures mean.
//!
//! Every bench reuses its output buffers across iterations, as a worker does for a connection, so
//! the figures measure parsing and formatting, not the allocator.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

#[path = "support/warm_cache.rs"]
mod warm_cache;

use pibl::http::chunked::ChunkedDecoder;
use pibl::http::request::{self, Forwarding, HeadLimits, RequestLine};
use pibl::http::response::{self, ClientSide};
use pibl::http::Version;
use pibl::logging::{format_line, AccessEntry};

/// pibl's defaults (`max_header_bytes 64k`, `max_headers 100`, docs/config.md).
const LIMITS: HeadLimits = HeadLimits {
    max_header_bytes: 64 * 1024,
    max_headers: 100,
};

/// What wrk sends: the smallest valid HTTP/1.1 head.
const WRK_HEAD: &[u8] = b"GET /small HTTP/1.1\r\nHost: 127.0.0.1:18080\r\n\r\n";

/// A typical browser navigation: 11 header fields, a cookie, a query string.
const BROWSER_HEAD: &[u8] =
    b"GET /articles/2026/11/load-balancing.html?ref=home&utm_source=feed HTTP/1.1\r\n\
Host: www.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n\
Accept-Language: en-GB,en;q=0.7,de;q=0.3\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Referer: https://www.example.com/\r\n\
Connection: keep-alive\r\n\
Cookie: session=8f14e45fceea167a5a36dedd4bea2543; theme=dark; consent=1\r\n\
Upgrade-Insecure-Requests: 1\r\n\
Sec-Fetch-Dest: document\r\n\
Sec-Fetch-Mode: navigate\r\n\r\n";

/// What nginx answers for `/4k` in `benches/compare.sh`.
const RESPONSE_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\n\
Server: nginx/1.22.1\r\n\
Date: Mon, 23 Nov 2026 19:27:12 GMT\r\n\
Content-Type: application/octet-stream\r\n\
Content-Length: 4096\r\n\
Last-Modified: Mon, 23 Nov 2026 19:20:00 GMT\r\n\
Connection: keep-alive\r\n\
ETag: \"6741e9c0-1000\"\r\n\
Accept-Ranges: bytes\r\n\r\n";

fn forwarding() -> Forwarding {
    Forwarding {
        client_ip: "127.0.0.1".parse().unwrap(),
        proto: "http",
        h2: false,
    }
}

/// Request head: parse, validate and write the upstream head (`request::parse` does all three).
fn request_head(c: &mut Criterion) {
    let fwd = forwarding();
    let mut g = c.benchmark_group("request_head");
    for (name, head) in [("wrk", WRK_HEAD), ("browser", BROWSER_HEAD)] {
        let mut out = Vec::with_capacity(4096);
        let mut line = RequestLine::default();
        // Fail loudly here rather than benchmark an error path.
        let info = request::parse(head, LIMITS, &fwd, &mut out, &mut line)
            .expect("bench head is valid")
            .expect("bench head is complete");
        assert_eq!(info.head_len, head.len());
        g.throughput(Throughput::Bytes(head.len() as u64));
        g.bench_with_input(BenchmarkId::new("parse", name), head, |b, head| {
            b.iter(|| {
                let r = request::parse(black_box(head), LIMITS, &fwd, &mut out, &mut line);
                black_box(r.unwrap());
                black_box(out.len());
            })
        });
    }
    g.finish();
}

/// Response head from a backend: parse and write the client's head.
fn response_head(c: &mut Criterion) {
    let client = ClientSide {
        version: Version::Http11,
        head_request: false,
        keep_alive: true,
        upgrade: false,
    };
    let mut out = Vec::with_capacity(4096);
    let info = response::parse(RESPONSE_HEAD, LIMITS, client, &mut out)
        .expect("bench head is valid")
        .expect("bench head is complete");
    assert_eq!(info.head_len, RESPONSE_HEAD.len());
    let mut g = c.benchmark_group("response_head");
    g.throughput(Throughput::Bytes(RESPONSE_HEAD.len() as u64));
    g.bench_function("parse/nginx_4k", |b| {
        b.iter(|| {
            let r = response::parse(black_box(RESPONSE_HEAD), LIMITS, client, &mut out);
            black_box(r.unwrap());
            black_box(out.len());
        })
    });
    g.finish();
}

/// A chunked body of `total` data bytes in chunks of `chunk` bytes, with the last chunk.
fn chunked_body(total: usize, chunk: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(total + total / chunk * 16 + 8);
    let mut left = total;
    while left > 0 {
        let n = left.min(chunk);
        body.extend_from_slice(format!("{n:x}\r\n").as_bytes());
        body.extend(std::iter::repeat_n(b'x', n));
        body.extend_from_slice(b"\r\n");
        left -= n;
    }
    body.extend_from_slice(b"0\r\n\r\n");
    body
}

/// Finding the end of a chunked body, as the relay does for every buffer it forwards.
fn chunked_scan(c: &mut Criterion) {
    let mut g = c.benchmark_group("chunked_scan");
    for (name, chunk) in [("64KiB_in_4KiB_chunks", 4096), ("64KiB_in_64B_chunks", 64)] {
        let body = chunked_body(64 * 1024, chunk);
        let mut check = ChunkedDecoder::new();
        assert_eq!(check.scan(&body).unwrap(), (body.len(), true));
        g.throughput(Throughput::Bytes(body.len() as u64));
        // Whole body in one buffer.
        g.bench_with_input(BenchmarkId::new("one_buffer", name), &body, |b, body| {
            b.iter(|| {
                let mut d = ChunkedDecoder::new();
                black_box(d.scan(black_box(body)).unwrap())
            })
        });
        // As it arrives through pibl's default 16 KiB buffers: split points fall mid-chunk.
        g.bench_with_input(BenchmarkId::new("16KiB_reads", name), &body, |b, body| {
            b.iter(|| {
                let mut d = ChunkedDecoder::new();
                let mut done = false;
                for piece in black_box(body).chunks(16 * 1024) {
                    let (_, end) = d.scan(piece).unwrap();
                    done = end;
                }
                black_box(done)
            })
        });
    }
    g.finish();
}

/// One access-log line, as every request writes.
fn access_log_line(c: &mut Criterion) {
    let client: SocketAddr = "127.0.0.1:48754".parse().unwrap();
    let entry = AccessEntry {
        client,
        method: "GET",
        target: "/articles/2026/11/load-balancing.html?ref=home",
        version: "HTTP/1.1",
        status: 200,
        bytes: 4382,
        backend: Some("127.0.0.1:18081"),
        duration: Duration::from_micros(2722),
        cache: Some("MISS"),
    };
    let stamp = "2026-11-23T19:15:33.944Z";
    let mut out = Vec::with_capacity(64 * 1024);
    c.bench_function("access_log/format_line", |b| {
        b.iter(|| {
            out.clear();
            format_line(&mut out, black_box(stamp), black_box(&entry));
            black_box(out.len())
        })
    });
}

/// The cache lookup path of a hit: key from the request line, index lookup with the full-key
/// compare and Vary check, over a warmed index of 10,000 entries; and a miss.
fn cache_lookup(c: &mut Criterion) {
    use pibl::cache::primary_key;
    let (cache, dir, now) = warm_cache::warm_cache("cache", false);
    let headers = [httparse::Header {
        name: "Host",
        value: b"bench.example",
    }];
    let mut g = c.benchmark_group("cache_lookup");
    g.bench_function("hit", |b| {
        b.iter(|| {
            let key = primary_key("bench.example", black_box("/item/4242?page=1"));
            black_box(cache.lookup(&key, &headers, now))
        })
    });
    g.bench_function("miss", |b| {
        b.iter(|| {
            let key = primary_key("bench.example", black_box("/item/none?page=1"));
            black_box(cache.lookup(&key, &headers, now))
        })
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A route lookup in a table of 50 sites and 200 routes (host by hash, then the longest prefix
/// by a walk down the site's byte trie), against the flat config's one site; nothing is
/// allocated.
fn route_lookup(c: &mut Criterion) {
    use pibl::config::Config;
    use pibl::routing::Router;
    let mut text = String::from("backend 127.0.0.1:1\n");
    for i in 0..50 {
        text.push_str(&format!("pool p{i} {{ backend 127.0.0.1:{} }}\n", 2 + i));
    }
    for i in 0..50 {
        text.push_str(&format!(
            "site site{i}.example.com www.site{i}.example.com {{ route / p{i}; route /s p{i}; \
             route /static/ p{i}; route = /exact p{i} }}\n"
        ));
    }
    let path = std::path::Path::new("bench.conf");
    let routed = Router::new(&Config::parse(path, &text).expect("bench config"));
    let flat = Router::new(&Config::parse(path, "backend 127.0.0.1:1\n").expect("flat config"));
    let mut g = c.benchmark_group("route_lookup");
    g.bench_function("flat", |b| {
        b.iter(|| black_box(flat.route(black_box("Site25.Example.com:8080"), "/static/app.css")))
    });
    g.bench_function("50_sites_200_routes", |b| {
        b.iter(|| black_box(routed.route(black_box("Site25.Example.com:8080"), "/static/app.css")))
    });
    g.bench_function("50_sites_wildcard_miss", |b| {
        b.iter(|| black_box(routed.route(black_box("a.b.unknown.test"), "/x")))
    });
    g.finish();
}

criterion_group!(
    benches,
    route_lookup,
    cache_lookup,
    request_head,
    response_head,
    chunked_scan,
    access_log_line
);
criterion_main!(benches);
