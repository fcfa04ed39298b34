//! HTTP/1.x framing, free of sockets so it can be tested by feeding it bytes.
//!
//! - [`request`]: parse and validate a request head, write the head sent upstream.
//! - [`response`]: parse a response head, write the head sent to the client; canned responses.
//! - [`body`]: how long a body is, and relaying it through a buffer.
//! - [`chunked`]: the strict incremental chunked decoder.

pub mod body;
pub mod chunked;
pub mod date;
pub mod request;
pub mod response;

use body::BodyKind;

/// The HTTP versions spoken on either side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

impl Version {
    /// The version of an `HTTP/1.<minor>` message as httparse reports it.
    pub fn from_minor(minor: u8) -> Version {
        if minor == 0 {
            Version::Http10
        } else {
            Version::Http11
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// Case-insensitive header-name comparison.
pub fn name_is(name: &str, wanted: &str) -> bool {
    name.eq_ignore_ascii_case(wanted)
}

/// Whether a comma-separated header value lists `token` (case-insensitive).
pub fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// Headers that describe one connection and are never forwarded (RFC 9110 §7.6.1), apart from
/// Transfer-Encoding, which the relay keeps because it forwards chunked bodies as they are.
/// `HTTP2-Settings` belongs to an h2c upgrade of this one connection (RFC 7540 §3.2.1).
pub fn is_hop_by_hop(name: &str) -> bool {
    const HOP: [&str; 8] = [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "proxy-authenticate",
        "http2-settings",
    ];
    HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
}

/// Whether any `Connection` header lists an option other than `close` and `keep-alive`, which
/// name no header a proxy could forward. Lets the per-header [`named_by_connection`] scan be
/// skipped for nearly every message.
pub fn connection_names_headers(headers: &[httparse::Header<'_>]) -> bool {
    headers
        .iter()
        .filter(|h| name_is(h.name, "connection"))
        .flat_map(|h| h.value.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .any(|t| {
            !t.is_empty()
                && !t.eq_ignore_ascii_case(b"close")
                && !t.eq_ignore_ascii_case(b"keep-alive")
        })
}

/// Whether a header is named by any `Connection` header (and so is hop-by-hop too).
pub fn named_by_connection(name: &str, headers: &[httparse::Header<'_>]) -> bool {
    headers
        .iter()
        .filter(|h| name_is(h.name, "connection"))
        .any(|h| has_token(h.value, name))
}

/// Why the framing headers of a message cannot be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramingError {
    /// Both Content-Length and Transfer-Encoding.
    Both,
    /// Content-Length that is not 1*DIGIT, overflows, or disagrees with another.
    BadLength,
    /// Transfer-Encoding whose final coding is not chunked.
    NotChunked,
}

impl FramingError {
    pub fn reason(self) -> &'static str {
        match self {
            FramingError::Both => "both Content-Length and Transfer-Encoding",
            FramingError::BadLength => "invalid Content-Length",
            FramingError::NotChunked => "Transfer-Encoding does not end in chunked",
        }
    }
}

/// Reads Content-Length and Transfer-Encoding strictly (RFC 9112 §6.1-6.3). Returns `None`
/// when the message carries neither.
pub fn framing(headers: &[httparse::Header<'_>]) -> Result<Option<BodyKind>, FramingError> {
    let mut length: Option<u64> = None;
    let mut te_seen = false;
    let mut last_coding_chunked = false;
    for h in headers {
        if name_is(h.name, "content-length") {
            let v = parse_length(h.value).ok_or(FramingError::BadLength)?;
            if length.is_some_and(|l| l != v) {
                return Err(FramingError::BadLength);
            }
            length = Some(v);
        } else if name_is(h.name, "transfer-encoding") {
            for coding in h.value.split(|&b| b == b',') {
                let c = coding.trim_ascii();
                if c.is_empty() {
                    continue;
                }
                te_seen = true;
                last_coding_chunked = c.eq_ignore_ascii_case(b"chunked");
            }
            if !te_seen {
                return Err(FramingError::NotChunked);
            }
        }
    }
    match (length, te_seen) {
        (Some(_), true) => Err(FramingError::Both),
        (None, true) if last_coding_chunked => Ok(Some(BodyKind::Chunked)),
        (None, true) => Err(FramingError::NotChunked),
        (Some(n), false) => Ok(Some(BodyKind::Length(n))),
        (None, false) => Ok(None),
    }
}

/// `1*DIGIT` that fits in a u64.
fn parse_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    v.iter().try_fold(0u64, |acc, d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// Appends `n` in decimal. Heads and log lines are built per request; this avoids the
/// formatting machinery (`write!`), which costs several times more.
pub fn put_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Appends an IP address as `Display` writes it, IPv4 without the formatting machinery.
pub fn put_ip(out: &mut Vec<u8>, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(v4) => {
            // Into one stack buffer, then one copy: this runs for every request (X-Forwarded-For
            // and the access-log line).
            let mut text = [0u8; 15];
            let mut len = 0;
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    text[len] = b'.';
                    len += 1;
                }
                if octet >= 100 {
                    text[len] = b'0' + octet / 100;
                    len += 1;
                }
                if octet >= 10 {
                    text[len] = b'0' + octet / 10 % 10;
                    len += 1;
                }
                text[len] = b'0' + octet % 10;
                len += 1;
            }
            out.extend_from_slice(&text[..len]);
        }
        std::net::IpAddr::V6(v6) => {
            use std::io::Write;
            let _ = write!(out, "{v6}");
        }
    }
}

/// Appends `HTTP/1.1 <status> <reason>\r\n`.
pub(crate) fn put_status_line(out: &mut Vec<u8>, status: u16, reason: &[u8]) {
    out.extend_from_slice(b"HTTP/1.1 ");
    put_decimal(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(reason);
    out.extend_from_slice(b"\r\n");
}

/// Appends `Name: <decimal>\r\n`.
#[inline]
pub(crate) fn put_header_decimal(out: &mut Vec<u8>, name: &str, value: u64) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    put_decimal(out, value);
    out.extend_from_slice(b"\r\n");
}

/// Escapes text for HTML element content and attribute values (the origin's pages, the admin
/// status page).
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Escapes a string for a JSON string literal.
pub fn json_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ =
                    std::fmt::Write::write_fmt(&mut out, format_args!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out
}

/// Appends `Name: value\r\n`.
#[inline]
pub(crate) fn put_header(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_html_escaping() {
        assert_eq!(json_escape("a\"b\\c\n"), "a\\\"b\\\\c\\u000a");
        assert_eq!(
            html_escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }

    #[test]
    fn decimal_and_ip_match_display() {
        for n in [0u64, 7, 10, 99, 100, 65535, 1_000_000_007, u64::MAX] {
            let mut out = Vec::new();
            put_decimal(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
        for ip in ["0.0.0.0", "127.0.0.1", "255.255.10.1", "::1", "fe80::1:2"] {
            let ip: std::net::IpAddr = ip.parse().unwrap();
            let mut out = Vec::new();
            put_ip(&mut out, ip);
            assert_eq!(out, ip.to_string().as_bytes());
        }
    }

    fn h<'a>(name: &'a str, value: &'a str) -> httparse::Header<'a> {
        httparse::Header {
            name,
            value: value.as_bytes(),
        }
    }

    #[test]
    fn framing_is_strict() {
        assert_eq!(
            framing(&[h("Content-Length", "12")]),
            Ok(Some(BodyKind::Length(12)))
        );
        assert_eq!(
            framing(&[h("content-length", "5"), h("Content-Length", "5")]),
            Ok(Some(BodyKind::Length(5)))
        );
        for bad in ["", "+5", "5 ", "0x10", "1,1", "99999999999999999999"] {
            assert_eq!(
                framing(&[h("Content-Length", bad)]),
                Err(FramingError::BadLength),
                "{bad:?}"
            );
        }
        assert_eq!(
            framing(&[h("Content-Length", "5"), h("Content-Length", "6")]),
            Err(FramingError::BadLength)
        );
        assert_eq!(
            framing(&[h("Transfer-Encoding", "gzip, chunked")]),
            Ok(Some(BodyKind::Chunked))
        );
        assert_eq!(
            framing(&[h("Transfer-Encoding", "chunked, gzip")]),
            Err(FramingError::NotChunked)
        );
        assert_eq!(
            framing(&[h("Transfer-Encoding", "")]),
            Err(FramingError::NotChunked)
        );
        assert_eq!(
            framing(&[h("Transfer-Encoding", "chunked"), h("Content-Length", "3")]),
            Err(FramingError::Both)
        );
    }

    #[test]
    fn tokens_and_hop_by_hop() {
        assert!(has_token(b"keep-alive, Upgrade", "upgrade"));
        assert!(!has_token(b"keep-alive-ish", "keep-alive"));
        assert!(is_hop_by_hop("Keep-Alive"));
        assert!(!is_hop_by_hop("Content-Type"));
        let hs = [h("Connection", "close, X-Secret")];
        assert!(named_by_connection("x-secret", &hs));
        assert!(connection_names_headers(&hs));
        let plain = [h("Connection", "Keep-Alive"), h("connection", " close ,")];
        assert!(!connection_names_headers(&plain));
        assert!(!connection_names_headers(&[h("Content-Type", "x")]));
    }
}
