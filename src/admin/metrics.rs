//! `/metrics`: the [`Snapshot`] in Prometheus text exposition format 0.0.4. A histogram's `+Inf`
//! bucket equals its `_count`, because the snapshot is taken once per request.

use std::fmt::Write;

use super::render::{BackendView, Snapshot, CLASSES};
use crate::compress::Coding;
use crate::stats::{exposed_bounds, LATENCY_BOUNDS_NS};

/// `backend="NAME"`, and `,pool="POOL"` when the config names pools.
fn backend_labels(b: &BackendView) -> String {
    match &b.pool {
        Some(pool) => format!(
            "backend=\"{}\",pool=\"{}\"",
            label_escape(&b.name),
            label_escape(pool)
        ),
        None => format!("backend=\"{}\"", label_escape(&b.name)),
    }
}

/// A label value escaped for the text format: backslash, double quote and newline.
pub fn label_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Nanoseconds as decimal seconds without exponent or trailing zeros (`5000000` → `0.005`).
pub(super) fn seconds(ns: u64) -> String {
    let (whole, frac) = (ns / 1_000_000_000, ns % 1_000_000_000);
    if frac == 0 {
        return whole.to_string();
    }
    let f = format!("{frac:09}");
    format!("{whole}.{}", f.trim_end_matches('0'))
}

fn family(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// The metrics in Prometheus text exposition format 0.0.4.
pub fn prometheus(s: &Snapshot) -> String {
    let mut o = String::with_capacity(8192);
    family(&mut o, "pibl_info", "gauge", "pibl build information.");
    let _ = writeln!(o, "pibl_info{{version=\"{}\"}} 1", label_escape(s.version));
    family(
        &mut o,
        "pibl_uptime_seconds",
        "gauge",
        "Seconds since pibl started.",
    );
    let _ = writeln!(o, "pibl_uptime_seconds {}", s.uptime.as_secs_f64());
    family(
        &mut o,
        "pibl_connections",
        "gauge",
        "Client connections open now.",
    );
    let _ = writeln!(o, "pibl_connections {}", s.connections);
    family(
        &mut o,
        "pibl_connections_accepted_total",
        "counter",
        "Client connections accepted.",
    );
    let _ = writeln!(o, "pibl_connections_accepted_total {}", s.accepted);
    family(
        &mut o,
        "pibl_http2_connections",
        "gauge",
        "Client connections open now that speak HTTP/2.",
    );
    let _ = writeln!(o, "pibl_http2_connections {}", s.h2.connections_open);
    family(
        &mut o,
        "pibl_http2_connections_total",
        "counter",
        "Client connections that spoke HTTP/2 (ALPN h2 or h2c).",
    );
    let _ = writeln!(o, "pibl_http2_connections_total {}", s.h2.connections);
    family(
        &mut o,
        "pibl_http2_streams_total",
        "counter",
        "HTTP/2 streams begun (each one request).",
    );
    let _ = writeln!(o, "pibl_http2_streams_total {}", s.h2.streams);
    family(
        &mut o,
        "pibl_max_connections_reached_total",
        "counter",
        "Times a worker reached max_connections and stopped accepting (clients wait in the backlog).",
    );
    let _ = writeln!(
        o,
        "pibl_max_connections_reached_total {}",
        s.max_connections_reached
    );
    family(
        &mut o,
        "pibl_requests_total",
        "counter",
        "Requests answered, cache hits and responses made by pibl included.",
    );
    let _ = writeln!(o, "pibl_requests_total {}", s.requests);
    family(
        &mut o,
        "pibl_responses_total",
        "counter",
        "Responses sent to clients, by status class.",
    );
    for (c, n) in CLASSES.iter().zip(s.responses) {
        let _ = writeln!(o, "pibl_responses_total{{class=\"{c}\"}} {n}");
    }
    family(
        &mut o,
        "pibl_backend_up",
        "gauge",
        "1 when the backend is in the rotation, 0 when it is marked down.",
    );
    for b in &s.backends {
        let _ = writeln!(
            o,
            "pibl_backend_up{{{}}} {}",
            backend_labels(b),
            u8::from(b.up)
        );
    }
    family(
        &mut o,
        "pibl_backend_requests_total",
        "counter",
        "Requests sent to the backend, failed attempts included.",
    );
    for b in &s.backends {
        let _ = writeln!(
            o,
            "pibl_backend_requests_total{{{}}} {}",
            backend_labels(b),
            b.requests
        );
    }
    family(
        &mut o,
        "pibl_backend_errors_total",
        "counter",
        "Failed attempts (connect refused or timed out, reset, response timeout, invalid \
         response) and 5xx responses for the backend.",
    );
    for b in &s.backends {
        let _ = writeln!(
            o,
            "pibl_backend_errors_total{{{}}} {}",
            backend_labels(b),
            b.errors
        );
    }
    let h = "pibl_backend_response_seconds";
    family(
        &mut o,
        h,
        "histogram",
        "Time from the complete request head to the end of the response, per backend that \
         answered.",
    );
    for b in &s.backends {
        let label = backend_labels(b);
        for i in exposed_bounds() {
            let _ = writeln!(
                o,
                "{h}_bucket{{{label},le=\"{}\"}} {}",
                seconds(LATENCY_BOUNDS_NS[i]),
                b.latency.cumulative(i)
            );
        }
        let count = b.latency.count();
        let _ = writeln!(o, "{h}_bucket{{{label},le=\"+Inf\"}} {count}");
        let _ = writeln!(o, "{h}_sum{{{label}}} {}", seconds(b.latency.sum_ns));
        let _ = writeln!(o, "{h}_count{{{label}}} {count}");
    }
    family(
        &mut o,
        "pibl_cache_enabled",
        "gauge",
        "1 when the disk cache is on.",
    );
    let _ = writeln!(o, "pibl_cache_enabled {}", u8::from(s.cache.is_some()));
    let (entries, bytes) = s.cache.unwrap_or((0, 0));
    family(
        &mut o,
        "pibl_cache_entries",
        "gauge",
        "Entries in the cache.",
    );
    let _ = writeln!(o, "pibl_cache_entries {entries}");
    family(
        &mut o,
        "pibl_cache_bytes",
        "gauge",
        "Bytes the cache holds on disk.",
    );
    let _ = writeln!(o, "pibl_cache_bytes {bytes}");
    family(
        &mut o,
        "pibl_cache_hits_total",
        "counter",
        "Requests served from the cache.",
    );
    let _ = writeln!(o, "pibl_cache_hits_total {}", s.cache_hits);
    family(
        &mut o,
        "pibl_cache_misses_total",
        "counter",
        "Cacheable requests that went to a backend (misses and revalidations).",
    );
    let _ = writeln!(o, "pibl_cache_misses_total {}", s.cache_misses);
    family(
        &mut o,
        "pibl_compress_bytes_in_total",
        "counter",
        "Response body bytes fed to the compressor, per coding.",
    );
    for (c, (before, _)) in Coding::PREFERENCE.iter().zip(s.compression) {
        let _ = writeln!(
            o,
            "pibl_compress_bytes_in_total{{coding=\"{}\"}} {before}",
            c.token()
        );
    }
    family(
        &mut o,
        "pibl_compress_bytes_out_total",
        "counter",
        "Compressed bytes the compressor made, per coding.",
    );
    for (c, (_, after)) in Coding::PREFERENCE.iter().zip(s.compression) {
        let _ = writeln!(
            o,
            "pibl_compress_bytes_out_total{{coding=\"{}\"}} {after}",
            c.token()
        );
    }
    family(
        &mut o,
        "pibl_tls_connections_total",
        "counter",
        "TLS connections closed, by how far they got: handshake (completed), \
         handshake_failed, handshake_incomplete (stalled or abandoned), plain_http (answered \
         400), not_tls.",
    );
    let t = &s.tls;
    for (outcome, n) in [
        ("handshake", t.handshakes),
        ("handshake_failed", t.handshake_failures),
        ("handshake_incomplete", t.handshakes_incomplete),
        ("plain_http", t.plain_http),
        ("not_tls", t.not_tls),
    ] {
        let _ = writeln!(o, "pibl_tls_connections_total{{outcome=\"{outcome}\"}} {n}");
    }
    family(
        &mut o,
        "pibl_tls_handshake_failures_total",
        "counter",
        "TLS handshakes that failed or never completed (stalled, abandoned, not TLS).",
    );
    let _ = writeln!(
        o,
        "pibl_tls_handshake_failures_total {}",
        t.handshake_failures + t.handshakes_incomplete + t.plain_http + t.not_tls
    );
    family(
        &mut o,
        "pibl_certificate_expiry_seconds",
        "gauge",
        "Seconds until each served certificate expires (negative once expired).",
    );
    for c in &s.certificates {
        for name in &c.names {
            let _ = writeln!(
                o,
                "pibl_certificate_expiry_seconds{{name=\"{}\",file=\"{}\"}} {}",
                label_escape(name),
                label_escape(&c.file),
                c.expires_in_seconds
            );
        }
    }
    o
}
