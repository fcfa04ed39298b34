//! Access-log formats (`log_format pibl|combined|json`): pibl's own line (`format_line`, the
//! default), nginx's `combined`, and one JSON object per line with every field named.
//!
//! Lines in another format than pibl's do not begin with the stamp the writer thread orders
//! lines by, so [`put_sort_key`] writes the stamp and [`SORT_KEY_MARK`] ahead of such a line;
//! the writer cuts that key off when it writes the line ([`line_without_key`]).

use std::time::Duration;

use super::{AccessEntry, STAMP_LEN};
use crate::http::{put_decimal, put_ip};

/// How access lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// `STAMP CLIENT "METHOD TARGET VERSION" STATUS BYTES BACKEND DURATION CACHE` (the default).
    #[default]
    Pibl,
    /// nginx's `combined`.
    Combined,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    pub fn parse(v: &str) -> Result<LogFormat, String> {
        match v {
            "pibl" => Ok(LogFormat::Pibl),
            "combined" => Ok(LogFormat::Combined),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("expected pibl, combined or json, got '{v}'")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Pibl => "pibl",
            LogFormat::Combined => "combined",
            LogFormat::Json => "json",
        }
    }

    /// The format logs the request's Referer and User-Agent: only then are they kept.
    pub fn needs_agent(self) -> bool {
        self != LogFormat::Pibl
    }
}

/// What the other formats log beyond [`AccessEntry`].
#[derive(Debug, Clone, Copy, Default)]
pub struct AccessDetails<'a> {
    pub format: LogFormat,
    /// The Host of the request (from an absolute-form target, else the Host field).
    pub host: &'a str,
    /// Of the entry's bytes, the body's (nginx's `$body_bytes_sent`): all of them but the
    /// response heads'.
    pub body_bytes: u64,
    pub request_id: Option<&'a [u8]>,
    pub referer: Option<&'a [u8]>,
    pub user_agent: Option<&'a [u8]>,
    /// From the first connection attempt to the backend to the end of the exchange.
    pub upstream_time: Option<Duration>,
}

/// Marks a line that begins with a sort key (the stamp and this byte) to be cut off: a line of
/// pibl's format has a space there, and no line contains a NUL byte (they are escaped).
pub(super) const SORT_KEY_MARK: u8 = 0;

/// Writes the writer thread's sort key for a line whose format does not begin with the stamp.
pub(super) fn put_sort_key(out: &mut Vec<u8>, stamp: &str) {
    out.extend_from_slice(stamp.as_bytes());
    out.push(SORT_KEY_MARK);
}

/// The line as it is written: without its sort key, if it has one.
pub(super) fn line_without_key(line: &[u8]) -> &[u8] {
    if line.len() > STAMP_LEN && line[STAMP_LEN] == SORT_KEY_MARK {
        &line[STAMP_LEN + 1..]
    } else {
        line
    }
}

/// nginx's `combined`: `$remote_addr - $remote_user [$time_local] "$request" $status
/// $body_bytes_sent "$http_referer" "$http_user_agent"`, escaped as nginx does (`"`, `\`,
/// control and non-ASCII bytes as `\xXX`, upper-case hex). `$time_local` is UTC (`+0000`); the bytes are the
/// body's, as nginx's (the head's are not counted).
pub fn format_combined(out: &mut Vec<u8>, stamp: &str, e: &AccessEntry<'_>, d: &AccessDetails<'_>) {
    put_ip(out, e.client.ip());
    out.extend_from_slice(b" - - [");
    put_time_local(out, stamp);
    out.extend_from_slice(b"] \"");
    put_nginx_escaped(out, e.method.as_bytes());
    out.push(b' ');
    put_nginx_escaped(out, e.target.as_bytes());
    out.push(b' ');
    out.extend_from_slice(e.version.as_bytes());
    out.extend_from_slice(b"\" ");
    put_decimal(out, u64::from(e.status));
    out.push(b' ');
    put_decimal(out, d.body_bytes);
    for field in [d.referer, d.user_agent] {
        out.extend_from_slice(b" \"");
        match field {
            Some(v) if !v.is_empty() => put_nginx_escaped(out, v),
            _ => out.push(b'-'),
        }
        out.push(b'"');
    }
    out.push(b'\n');
}

/// One JSON object: every field named, absent ones `null`.
pub fn format_json(out: &mut Vec<u8>, stamp: &str, e: &AccessEntry<'_>, d: &AccessDetails<'_>) {
    out.extend_from_slice(b"{\"time\":\"");
    put_json_escaped(out, stamp.as_bytes());
    out.extend_from_slice(b"\",\"client\":\"");
    put_ip(out, e.client.ip());
    out.extend_from_slice(b"\",\"client_port\":");
    put_decimal(out, u64::from(e.client.port()));
    put_json_field(out, "method", Some(e.method.as_bytes()));
    put_json_field(
        out,
        "host",
        Some(d.host.as_bytes()).filter(|h| !h.is_empty()),
    );
    put_json_field(out, "path", Some(e.target.as_bytes()));
    put_json_field(out, "version", Some(e.version.as_bytes()));
    out.extend_from_slice(b",\"status\":");
    put_decimal(out, u64::from(e.status));
    out.extend_from_slice(b",\"bytes\":");
    put_decimal(out, e.bytes);
    out.extend_from_slice(b",\"body_bytes\":");
    put_decimal(out, d.body_bytes);
    out.extend_from_slice(b",\"duration_ms\":");
    put_millis(out, e.duration);
    put_json_field(out, "upstream", e.backend.map(str::as_bytes));
    out.extend_from_slice(b",\"upstream_time_ms\":");
    match d.upstream_time {
        Some(t) => put_millis(out, t),
        None => out.extend_from_slice(b"null"),
    }
    put_json_field(out, "cache", e.cache.map(str::as_bytes));
    put_json_field(out, "request_id", d.request_id);
    put_json_field(out, "user_agent", d.user_agent);
    put_json_field(out, "referer", d.referer);
    out.extend_from_slice(b"}\n");
}

/// `,"name":"value"` or `,"name":null`.
fn put_json_field(out: &mut Vec<u8>, name: &str, value: Option<&[u8]>) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
    match value {
        Some(v) => {
            out.push(b'"');
            put_json_escaped(out, v);
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// JSON string content: `"` and `\` escaped, control bytes as `\u00XX`, valid UTF-8 as it is,
/// and a byte that is not UTF-8 as the `\u00XX` of its value (Latin-1), so the line is always
/// valid JSON and no byte is lost.
fn put_json_escaped(out: &mut Vec<u8>, v: &[u8]) {
    for chunk in v.utf8_chunks() {
        for &b in chunk.valid().as_bytes() {
            match b {
                b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                0..0x20 | 0x7f => put_u00(out, b),
                _ => out.push(b),
            }
        }
        for &b in chunk.invalid() {
            put_u00(out, b);
        }
    }
}

fn put_u00(out: &mut Vec<u8>, b: u8) {
    out.extend_from_slice(&[
        b'\\',
        b'u',
        b'0',
        b'0',
        HEX[usize::from(b >> 4)],
        HEX[usize::from(b & 15)],
    ]);
}

/// nginx's escaping of logged values: `"`, `\`, control bytes and bytes over 0x7e as `\xXX`.
fn put_nginx_escaped(out: &mut Vec<u8>, v: &[u8]) {
    const UPPER: &[u8; 16] = b"0123456789ABCDEF";
    for &b in v {
        if b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b) {
            out.extend_from_slice(&[
                b'\\',
                b'x',
                UPPER[usize::from(b >> 4)],
                UPPER[usize::from(b & 15)],
            ]);
        } else {
            out.push(b);
        }
    }
}

/// `23/Nov/2026:19:04:10 +0000` from the log stamp `2026-11-23T19:04:10.123Z` (formatted once
/// per tick already); a stamp of another shape is written as it is.
fn put_time_local(out: &mut Vec<u8>, stamp: &str) {
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let s = stamp.as_bytes();
    let month = s
        .get(5..7)
        .and_then(|m| std::str::from_utf8(m).ok())
        .and_then(|m| m.parse::<usize>().ok())
        .filter(|m| (1..=12).contains(m));
    match (month, s.len() >= 19) {
        (Some(m), true) => {
            out.extend_from_slice(&s[8..10]);
            out.push(b'/');
            out.extend_from_slice(MONTHS[m - 1]);
            out.push(b'/');
            out.extend_from_slice(&s[0..4]);
            out.push(b':');
            out.extend_from_slice(&s[11..19]);
            out.extend_from_slice(b" +0000");
        }
        _ => out.extend_from_slice(s),
    }
}

/// Milliseconds with three decimals, rounded to the microsecond (as pibl's line writes them).
pub(super) fn put_millis(out: &mut Vec<u8>, d: Duration) {
    let micros = (d.as_nanos() + 500) / 1000;
    put_decimal(out, u64::try_from(micros / 1000).unwrap_or(u64::MAX));
    out.push(b'.');
    let frac = (micros % 1000) as u16;
    out.extend_from_slice(&[
        b'0' + (frac / 100) as u8,
        b'0' + (frac / 10 % 10) as u8,
        b'0' + (frac % 10) as u8,
    ]);
}

/// An entry for the tests: a relayed `GET` from `client`.
#[cfg(test)]
fn entry<'a>(client: std::net::SocketAddr, target: &'a str) -> AccessEntry<'a> {
    AccessEntry {
        client,
        method: "GET",
        target,
        version: "HTTP/1.1",
        status: 200,
        bytes: 42,
        backend: Some("127.0.0.1:8081"),
        duration: Duration::from_micros(1500),
        cache: Some("MISS"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAMP: &str = "2026-11-23T19:04:10.123Z";

    #[test]
    fn combined_follows_nginx() {
        let mut out = Vec::new();
        let d = AccessDetails {
            format: LogFormat::Combined,
            body_bytes: 30,
            referer: Some(b"http://a/\"x\""),
            user_agent: Some(b"curl/8 \xff"),
            ..AccessDetails::default()
        };
        format_combined(
            &mut out,
            STAMP,
            &entry("10.0.0.1:5000".parse().unwrap(), "/p?q"),
            &d,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "10.0.0.1 - - [23/Nov/2026:19:04:10 +0000] \"GET /p?q HTTP/1.1\" 200 30 \
             \"http://a/\\x22x\\x22\" \"curl/8 \\xFF\"\n"
        );
    }

    #[test]
    fn json_escapes_everything() {
        let mut out = Vec::new();
        let d = AccessDetails {
            format: LogFormat::Json,
            host: "a.example",
            body_bytes: 30,
            request_id: Some(b"abc"),
            referer: None,
            user_agent: Some(b"q\"\\\x01\xff\xc3\xa9"),
            upstream_time: Some(Duration::from_micros(1200)),
        };
        format_json(
            &mut out,
            STAMP,
            &entry("[::1]:7".parse().unwrap(), "/\n"),
            &d,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"time\":\"2026-11-23T19:04:10.123Z\",\"client\":\"::1\",\"client_port\":7,\
             \"method\":\"GET\",\"host\":\"a.example\",\"path\":\"/\\n\",\"version\":\"HTTP/1.1\",\
             \"status\":200,\"bytes\":42,\"body_bytes\":30,\"duration_ms\":1.500,\"upstream\":\"127.0.0.1:8081\",\
             \"upstream_time_ms\":1.200,\"cache\":\"MISS\",\"request_id\":\"abc\",\
             \"user_agent\":\"q\\\"\\\\\\u0001\\u00ffé\",\"referer\":null}\n"
        );
    }

    #[test]
    fn sort_keys_are_cut() {
        let mut line = Vec::new();
        put_sort_key(&mut line, STAMP);
        line.extend_from_slice(b"{}\n");
        assert_eq!(line_without_key(&line), b"{}\n");
        let pibl = format!("{STAMP} 1.2.3.4:5 ...\n");
        assert_eq!(line_without_key(pibl.as_bytes()), pibl.as_bytes());
    }
}
