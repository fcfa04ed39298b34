//! The admin pages as text: one [`Snapshot`] of the proxy's state, rendered as an HTML page and
//! as JSON (and as Prometheus text in `metrics.rs`). Pure functions over the snapshot, so they
//! are tested without sockets; the snapshot is taken once per request, so the views of it agree
//! with themselves.

use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::charts::{self, Chart, Style};
use super::series::{Range, SeriesView, NO_LATENCY};
use crate::compress::Coding;
use crate::http::{html_escape, json_escape};
use crate::proxy::shared::Shared;
use crate::stats::{HistogramSnapshot, RATE_WINDOW};

/// Everything the pages show, read from the atomics once.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub version: &'static str,
    pub uptime: Duration,
    pub connections: usize,
    pub accepted: u64,
    /// Times a worker reached its connection limit and stopped accepting.
    pub max_connections_reached: u64,
    pub requests: u64,
    pub rate: f64,
    /// 1xx to 5xx.
    pub responses: [u64; 5],
    pub backends: Vec<BackendView>,
    /// Entries and bytes, when the cache is on.
    pub cache: Option<(usize, u64)>,
    pub cache_hits: u64,
    pub cache_misses: u64,
    /// Response compression: (bytes before, bytes after) per coding, in `Coding::PREFERENCE`
    /// order (`Stats::compress`).
    pub compression: [(u64, u64); 3],
    /// TLS connections closed, by how far they got.
    pub tls: TlsView,
    /// HTTP/2 connections and streams (`Stats::h2`).
    pub h2: H2View,
    /// The certificates TLS listeners serve (the first is the default).
    pub certificates: Vec<CertView>,
    /// The last minutes, from the admin thread's rings (`series.rs`): the page's charts.
    pub series: SeriesView,
}

/// The TLS counters (`Stats::tls`).
#[derive(Debug, Clone, Copy, Default)]
pub struct TlsView {
    pub handshakes: u64,
    pub handshake_failures: u64,
    pub handshakes_incomplete: u64,
    pub plain_http: u64,
    pub not_tls: u64,
}

/// The HTTP/2 counters (`Stats::h2`): connections open now and since start, streams since
/// start (each one request).
#[derive(Debug, Clone, Copy, Default)]
pub struct H2View {
    pub connections_open: u64,
    pub connections: u64,
    pub streams: u64,
}

/// One certificate as status pages show it.
#[derive(Debug, Clone)]
pub struct CertView {
    pub file: String,
    pub names: Vec<String>,
    pub not_after: String,
    /// Negative once expired.
    pub expires_in_seconds: i64,
}

#[derive(Debug, Clone)]
pub struct BackendView {
    pub name: String,
    /// Its pool; `None` in a flat config (one implicit pool), whose pages stay as they were.
    pub pool: Option<String>,
    pub addr: SocketAddr,
    pub up: bool,
    pub requests: u64,
    pub errors: u64,
    pub latency: HistogramSnapshot,
}

impl Snapshot {
    pub fn take(shared: &Shared, series: SeriesView) -> Snapshot {
        let s = &shared.stats;
        let now = Instant::now();
        let settings = shared.settings();
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        Snapshot {
            version: env!("CARGO_PKG_VERSION"),
            uptime: now.saturating_duration_since(shared.started),
            connections: shared.connections.load(Ordering::Relaxed),
            accepted: load(&s.accepted),
            max_connections_reached: load(&s.max_connections_reached),
            requests: load(&s.requests),
            rate: s.request_rate(now),
            responses: s.responses.each_ref().map(load),
            backends: settings
                .backends
                .backends()
                .iter()
                .enumerate()
                .map(|(i, b)| BackendView {
                    name: b.name.clone(),
                    pool: settings
                        .backends
                        .pool_of(i)
                        .filter(|_| !settings.config.pools.is_empty())
                        .map(|p| p.name.to_string()),
                    addr: b.addr,
                    up: settings.backends.is_up(i),
                    requests: load(&b.stats.requests),
                    errors: load(&b.stats.errors),
                    latency: b.stats.latency.snapshot(),
                })
                .collect(),
            cache: shared.cache.as_ref().map(|c| c.stats()),
            cache_hits: load(&s.cache_hits),
            cache_misses: load(&s.cache_misses),
            compression: Coding::PREFERENCE.map(|c| s.compress.totals(c)),
            tls: TlsView {
                handshakes: load(&s.tls.handshakes),
                handshake_failures: load(&s.tls.handshake_failures),
                handshakes_incomplete: load(&s.tls.handshakes_incomplete),
                plain_http: load(&s.tls.plain_http),
                not_tls: load(&s.tls.not_tls),
            },
            h2: H2View {
                connections_open: load(&s.h2.connections_open),
                connections: load(&s.h2.connections),
                streams: load(&s.h2.streams),
            },
            certificates: settings.tls.as_ref().map_or_else(Vec::new, |t| {
                let now = std::time::SystemTime::now();
                t.certs
                    .iter()
                    .map(|c| CertView {
                        file: c.chain_path.display().to_string(),
                        names: c.names.clone(),
                        not_after: c.not_after_text(),
                        expires_in_seconds: c.expires_in(now),
                    })
                    .collect()
            }),
            series,
        }
    }

    /// Hits over lookups, `None` before the first lookup.
    pub fn hit_ratio(&self) -> Option<f64> {
        let total = self.cache_hits + self.cache_misses;
        (total > 0).then(|| self.cache_hits as f64 / total as f64)
    }
}

pub(super) const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

// ---- HTML -------------------------------------------------------------------------------------

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:1.2em auto;max-width:1240px;\
padding:0 1.2em;color:#222;background:#fff}\
h1{font-size:1.4em;margin:0 0 .3em}h2{font-size:1.1em;margin:1.4em 0 .4em}\
table{border-collapse:collapse}th,td{padding:.25em .8em;border-bottom:1px solid #ddd;text-align:right}\
#backends th:nth-child(-n+3),td:first-child,td.address,td.state{text-align:left}th{background:#f4f4f4}\
.up{color:#0a7a2f;font-weight:bold}.down{color:#b3261e;font-weight:bold}\
.summary span{font-weight:bold}.foot{color:#777;margin-top:2em}\
.range{margin:.6em 0;color:#555}.range .legend{display:inline-block;margin-left:.6em}.range a{padding:.15em .6em;border:1px solid #ccc;border-radius:4px;\
color:#235;text-decoration:none}.range a[aria-current]{background:#235;color:#fff;border-color:#235}\
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,480px),1fr));\
gap:1.2em 2em;margin:1em 0}\
figure{margin:0;min-width:0}figcaption{font-weight:600;display:flex;justify-content:space-between;\
gap:1em}figcaption .now{font-weight:normal;color:#444;white-space:nowrap}\
.legend{margin:.15em 0 .3em;font-size:12px;color:#444}.key{white-space:nowrap;margin-right:.9em}\
.sw{display:inline-block;width:.85em;height:.85em;border-radius:2px;vertical-align:-.08em;\
margin-right:.3em}.sw.dashed{height:.22em;vertical-align:.22em}\
svg.chart{display:block;width:100%;height:auto}.scroll{overflow-x:auto}\
@media (max-width:600px){body{padding:0 .6em;margin:.6em auto}th,td{padding:.2em .45em}}";

/// The charts above the tables: the range switch, then one figure per chart.
fn html_charts(o: &mut String, v: &SeriesView) {
    let link = |r: Range, words: &str| {
        let current = if v.range == r {
            " aria-current=\"page\""
        } else {
            ""
        };
        format!(
            "<a href=\"/status?range={}\"{current}>{words}</a>",
            r.as_str()
        )
    };
    let _ = writeln!(
        o,
        "<nav class=\"range\" aria-label=\"time range\">Last {} {} \
         <span class=\"legend\"><span class=\"key\"><span class=\"sw\" \
         style=\"background:#c8362f\"></span>backend down</span><span class=\"key\">\
         <span class=\"sw\" style=\"background:#e0a030\"></span>excluded \
         (failures)</span></span></nav>\n<div class=\"charts\">",
        link(Range::FiveMinutes, "5 minutes"),
        link(Range::Hour, "hour"),
    );
    for c in charts::status_charts(v) {
        let now = latest(&c)
            .map(|x| format!("<span class=\"now\">{}</span>", html_escape(&x)))
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "<figure id=\"{}\"><figcaption>{}{now}</figcaption>{}{}</figure>",
            c.id,
            html_escape(c.title),
            charts::legend(&c),
            charts::svg(&c, v.range)
        );
    }
    o.push_str("</div>\n");
}

/// The newest value a chart's caption shows: the total of a stacked chart, the value of a
/// one-line chart.
fn latest(c: &Chart) -> Option<String> {
    let last = |l: &charts::Line| l.values.last().copied().flatten();
    let (v, unit) = match (c.style, c.lines.as_slice()) {
        (Style::Stacked, lines) if !lines.is_empty() => {
            (lines.iter().filter_map(last).sum::<f64>(), "/s")
        }
        (Style::Lines, [one]) => (last(one)?, if c.fixed_max.is_some() { "%" } else { "" }),
        _ => return None,
    };
    Some(format!("{}{unit} now", charts::compact(v)))
}

/// The status page: readable at a glance, no script, refreshes itself.
pub fn html(s: &Snapshot) -> String {
    let mut o = String::with_capacity(4096);
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"5\"><title>pibl status</title>\
         <style>{STYLE}</style></head>\n<body>\n<h1>pibl {}</h1>\n\
         <p class=\"summary\">up <span id=\"uptime\">{}</span> · \
         <span id=\"connections\">{}</span> client connections open · \
         <span id=\"requests\">{}</span> requests · \
         <span id=\"rate\">{:.1}</span> requests/s (average of the last {RATE_WINDOW} complete \
         seconds)</p>\n",
        html_escape(s.version),
        human_duration(s.uptime),
        s.connections,
        s.requests,
        s.rate
    );
    if s.h2.connections > 0 {
        let _ = writeln!(
            o,
            "<p id=\"http2\">HTTP/2: <span id=\"h2-open\">{}</span> of the client connections \
             open · {} since start · <span id=\"h2-streams\">{}</span> streams</p>",
            s.h2.connections_open, s.h2.connections, s.h2.streams
        );
    }
    html_charts(&mut o, &s.series);
    o.push_str(
        "<h2>Backends</h2>\n<div class=\"scroll\"><table id=\"backends\"><thead><tr><th>backend</th><th>address</th>\
         <th>state</th><th>requests</th><th>errors</th><th>median</th><th>p99</th></tr></thead>\
         <tbody>\n",
    );
    for b in &s.backends {
        let state = if b.up { "up" } else { "down" };
        let name = match &b.pool {
            Some(pool) => html_escape(&format!("{pool}/{}", b.name)),
            None => html_escape(&b.name),
        };
        let _ = writeln!(
            o,
            "<tr data-backend=\"{name}\"><td class=\"name\">{name}</td>\
             <td class=\"address\">{}</td><td class=\"state {state}\">{state}</td>\
             <td class=\"requests\">{}</td><td class=\"errors\">{}</td>\
             <td class=\"median\">{}</td><td class=\"p99\">{}</td></tr>",
            b.addr,
            b.requests,
            b.errors,
            ms(b.latency.quantile(0.5)),
            ms(b.latency.quantile(0.99)),
        );
    }
    o.push_str(
        "</tbody></table></div>\n<h2>Responses</h2>\n<div class=\"scroll\">\
         <table id=\"responses\"><tr>",
    );
    for c in CLASSES {
        let _ = write!(o, "<th>{c}</th>");
    }
    o.push_str("</tr><tr>");
    for (c, n) in CLASSES.iter().zip(s.responses) {
        let _ = write!(o, "<td class=\"r{c}\">{n}</td>");
    }
    o.push_str("</tr></table></div>\n<h2>Cache</h2>\n<table id=\"cache\">\n");
    let row = |o: &mut String, class: &str, label: &str, value: String| {
        let _ = writeln!(
            o,
            "<tr><th>{label}</th><td class=\"{class}\">{value}</td></tr>"
        );
    };
    match s.cache {
        Some((entries, bytes)) => {
            row(&mut o, "enabled", "cache", "on".into());
            row(&mut o, "entries", "entries", entries.to_string());
            row(&mut o, "bytes", "bytes", bytes.to_string());
        }
        None => row(&mut o, "enabled", "cache", "off".into()),
    }
    row(&mut o, "hits", "hits", s.cache_hits.to_string());
    row(&mut o, "misses", "misses", s.cache_misses.to_string());
    let ratio = s
        .hit_ratio()
        .map_or_else(|| "-".to_string(), |r| format!("{:.1}%", r * 100.0));
    row(&mut o, "hit-ratio", "hit ratio", ratio);
    o.push_str("</table>\n");
    html_compression(&mut o, s);
    if !s.certificates.is_empty() {
        o.push_str(
            "<h2>Certificates</h2>\n<div class=\"scroll\"><table id=\"certificates\"><thead><tr><th>names</th>\
             <th>file</th><th>expires</th><th>days left</th></tr></thead><tbody>\n",
        );
        for c in &s.certificates {
            let _ = writeln!(
                o,
                "<tr><td class=\"names\">{}</td><td class=\"file\">{}</td>\
                 <td class=\"expires\">{}</td><td class=\"days\">{}</td></tr>",
                html_escape(&c.names.join(", ")),
                html_escape(&c.file),
                html_escape(&c.not_after),
                c.expires_in_seconds / 86_400
            );
        }
        o.push_str("</tbody></table></div>\n");
    }
    let t = &s.tls;
    if !s.certificates.is_empty() {
        let _ = writeln!(
            o,
            "<p id=\"tls\">TLS: {} handshakes, {} failed, {} not completed, {} plain HTTP \
             to the TLS port, {} not TLS</p>",
            t.handshakes, t.handshake_failures, t.handshakes_incomplete, t.plain_http, t.not_tls
        );
    }
    o.push_str(
        "<p class=\"foot\">Refreshes every 5 s. The same as \
         <a href=\"/status?json\">JSON</a> and <a href=\"/metrics\">Prometheus metrics</a>.</p>\n\
         </body></html>\n",
    );
    o
}

fn ms(d: Option<Duration>) -> String {
    match d {
        Some(d) => format!("{:.2} ms", d.as_secs_f64() * 1000.0),
        None => "-".to_string(),
    }
}

fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h {:02}m", s / 3600, s / 60 % 60),
        _ => format!("{}d {:02}h", s / 86400, s / 3600 % 24),
    }
}

/// The compression table: bytes before and after, and their ratio, per coding.
fn html_compression(o: &mut String, s: &Snapshot) {
    o.push_str(
        "<h2>Compression</h2>\n<table id=\"compression\"><thead><tr><th>coding</th>\
         <th>bytes in</th><th>bytes out</th><th>ratio</th></tr></thead><tbody>\n",
    );
    for (c, (before, after)) in Coding::PREFERENCE.iter().zip(s.compression) {
        let ratio = if after > 0 {
            format!("{:.2}", before as f64 / after as f64)
        } else {
            "-".to_string()
        };
        let _ = writeln!(
            o,
            "<tr><th>{}</th><td>{before}</td><td>{after}</td><td>{ratio}</td></tr>",
            c.token()
        );
    }
    o.push_str("</tbody></table>\n");
}

// ---- JSON -------------------------------------------------------------------------------------

/// A JSON string literal.
fn json_str(s: &str) -> String {
    format!("\"{}\"", json_escape(s))
}

/// A finite number, or `null`.
fn json_num(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{}", (v * 1000.0).round() / 1000.0),
        _ => "null".to_string(),
    }
}

/// The status as JSON; the field names are documented in `docs/operations.md` and stable.
pub fn json(s: &Snapshot) -> String {
    let mut o = String::with_capacity(1024);
    let _ = write!(
        o,
        "{{\"version\":{},\"uptime_seconds\":{},\"connections_open\":{},\
         \"connections_accepted\":{},\"http2\":{{\"connections_open\":{},\
         \"connections\":{},\"streams\":{}}},\"requests\":{},\"requests_per_second\":{},\
         \"rate_window_seconds\":{RATE_WINDOW},\"responses\":{{",
        json_str(s.version),
        json_num(Some(s.uptime.as_secs_f64())),
        s.connections,
        s.accepted,
        s.h2.connections_open,
        s.h2.connections,
        s.h2.streams,
        s.requests,
        json_num(Some(s.rate)),
    );
    for (i, (c, n)) in CLASSES.iter().zip(s.responses).enumerate() {
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(o, "{sep}\"{c}\":{n}");
    }
    o.push_str("},\"backends\":[");
    for (i, b) in s.backends.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        let q = |q: f64| json_num(b.latency.quantile(q).map(|d| d.as_secs_f64() * 1000.0));
        let _ = write!(
            o,
            "{sep}{{\"name\":{},{}\"address\":{},\"state\":\"{}\",\"requests\":{},\
             \"errors\":{},\"latency_median_ms\":{},\"latency_p99_ms\":{}}}",
            json_str(&b.name),
            b.pool
                .as_ref()
                .map_or_else(String::new, |p| format!("\"pool\":{},", json_str(p))),
            json_str(&b.addr.to_string()),
            if b.up { "up" } else { "down" },
            b.requests,
            b.errors,
            q(0.5),
            q(0.99),
        );
    }
    let (enabled, entries, bytes) = match s.cache {
        Some((e, b)) => (true, e, b),
        None => (false, 0, 0),
    };
    let _ = write!(
        o,
        "],\"cache\":{{\"enabled\":{enabled},\"entries\":{entries},\"bytes\":{bytes},\
         \"hits\":{},\"misses\":{},\"hit_ratio\":{}}}",
        s.cache_hits,
        s.cache_misses,
        json_num(s.hit_ratio()),
    );
    o.push_str(",\"compression\":{");
    for (i, (c, (before, after))) in Coding::PREFERENCE.iter().zip(s.compression).enumerate() {
        let comma = if i > 0 { "," } else { "" };
        let _ = write!(
            o,
            "{comma}\"{}\":{{\"bytes_in\":{before},\"bytes_out\":{after}}}",
            c.token()
        );
    }
    o.push('}');
    o.push_str(",\"series\":");
    json_series(&mut o, &s.series);
    let t = &s.tls;
    let _ = write!(
        o,
        ",\"tls\":{{\"handshakes\":{},\"handshake_failures\":{},\"handshakes_incomplete\":{},\
         \"plain_http\":{},\"not_tls\":{}}},\"certificates\":[",
        t.handshakes, t.handshake_failures, t.handshakes_incomplete, t.plain_http, t.not_tls
    );
    for (i, c) in s.certificates.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        let names: Vec<String> = c.names.iter().map(|n| json_str(n)).collect();
        let _ = write!(
            o,
            "{sep}{{\"file\":{},\"names\":[{}],\"not_after\":{},\"expires_in_seconds\":{},\
             \"expires_in_days\":{}}}",
            json_str(&c.file),
            names.join(","),
            json_str(&c.not_after),
            c.expires_in_seconds,
            c.expires_in_seconds / 86_400
        );
    }
    o.push_str("]}\n");
    o
}

/// `items` as a JSON array.
fn json_array<T: std::fmt::Display>(o: &mut String, items: impl Iterator<Item = T>) {
    o.push('[');
    for (i, x) in items.enumerate() {
        let _ = write!(o, "{}{x}", if i == 0 { "" } else { "," });
    }
    o.push(']');
}

/// The rings' range as columns, oldest first (the shape is in `docs/status.md`).
fn json_series(o: &mut String, v: &SeriesView) {
    let _ = write!(
        o,
        "{{\"range\":\"{}\",\"step_seconds\":{},\"end_uptime_seconds\":{},\"samples\":{},\
         \"responses\":{{",
        v.range.as_str(),
        v.range.step_seconds(),
        v.end_second,
        v.samples.len()
    );
    for (c, name) in CLASSES.iter().enumerate() {
        let _ = write!(o, "{}\"{name}\":", if c == 0 { "" } else { "," });
        json_array(o, v.samples.iter().map(|s| s.responses[c]));
    }
    o.push_str("},\"errors\":");
    json_array(o, v.samples.iter().map(|s| s.errors));
    o.push_str(",\"cache_hits\":");
    json_array(o, v.samples.iter().map(|s| s.cache_hits));
    o.push_str(",\"cache_misses\":");
    json_array(o, v.samples.iter().map(|s| s.cache_misses));
    o.push_str(",\"connections\":");
    json_array(o, v.samples.iter().map(|s| s.connections));
    o.push_str(",\"bytes_to_clients\":");
    json_array(o, v.samples.iter().map(|s| s.bytes_to_clients));
    o.push_str(",\"bytes_to_backends\":");
    json_array(o, v.samples.iter().map(|s| s.bytes_to_backends));
    o.push_str(",\"backends\":[");
    let ms = |us: u32| json_num((us != NO_LATENCY).then(|| f64::from(us) / 1000.0));
    for (i, b) in v.backends.iter().enumerate() {
        let _ = write!(
            o,
            "{}{{\"name\":{},{}\"requests\":",
            if i == 0 { "" } else { "," },
            json_str(&b.name),
            b.pool
                .as_ref()
                .map_or_else(String::new, |p| format!("\"pool\":{},", json_str(p))),
        );
        json_array(o, b.samples.iter().map(|s| s.requests));
        o.push_str(",\"errors\":");
        json_array(o, b.samples.iter().map(|s| s.errors));
        o.push_str(",\"latency_p50_ms\":");
        json_array(o, b.samples.iter().map(|s| ms(s.p50_us)));
        o.push_str(",\"latency_p99_ms\":");
        json_array(o, b.samples.iter().map(|s| ms(s.p99_us)));
        o.push_str(",\"state\":");
        json_array(o, b.samples.iter().map(|s| json_str(s.mark.as_str())));
        o.push('}');
    }
    o.push_str("]}");
}

// ---- Prometheus -------------------------------------------------------------------------------

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
