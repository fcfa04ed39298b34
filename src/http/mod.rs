//! HTTP/1.x framing, free of sockets so it can be tested by feeding it bytes.
//!
//! - [`request`]: parse and validate a request head, write the head sent upstream.
//! - [`response`]: parse a response head, write the head sent to the client; canned responses.
//! - [`framing`]: how long a body is (RFC 9112 §6.3), for the proxy, the origin and the client.
//! - [`body`]: relaying a body through a buffer.
//! - [`chunked`]: the strict incremental chunked decoder.
//! - [`cache_control`]: the Cache-Control directives, for the proxy's cache and the client's.
//! - [`target`]: the request target (absolute-form URLs) and the Host field.
//! - [`error_pages`]: `error_page` files, the bodies of the proxy's own error responses.

pub mod body;
pub mod cache_control;
pub mod chunked;
pub mod date;
pub mod error_pages;
pub mod framing;
pub mod head;
pub mod header_rules;
pub mod request;
pub mod request_id;
pub mod response;
pub mod target;

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

/// A header field as the shared rules ([`framing`], [`cache_control`]) read it: the borrowed
/// fields httparse gives the proxy and the origin, and the client's owned ones.
pub trait Field {
    fn name(&self) -> &str;
    fn value(&self) -> &[u8];
}

impl Field for httparse::Header<'_> {
    #[inline]
    fn name(&self) -> &str {
        self.name
    }

    #[inline]
    fn value(&self) -> &[u8] {
        self.value
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

/// Whether any `Connection` field lists `token`.
pub fn connection_has(headers: &[httparse::Header<'_>], token: &str) -> bool {
    headers
        .iter()
        .any(|h| name_is(h.name, "connection") && has_token(h.value, token))
}

/// Whether a request asks to keep the connection open (RFC 9112 §9.3): HTTP/1.1 unless it says
/// `close`, HTTP/1.0 only when it says `keep-alive`.
#[inline]
pub fn request_keeps_alive(version: Version, headers: &[httparse::Header<'_>]) -> bool {
    match version {
        Version::Http11 => !connection_has(headers, "close"),
        Version::Http10 => connection_has(headers, "keep-alive"),
    }
}

/// The header names a proxy treats specially when it copies a head, told apart by their length
/// first: the head writers ask this of every field of every message, and nearly all fields are
/// `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldName {
    Host,
    Via,
    XForwardedFor,
    XForwardedProto,
    TransferEncoding,
    /// Describes one connection and is never forwarded (RFC 9110 §7.6.1), apart from
    /// Transfer-Encoding, which the relay keeps because it forwards chunked bodies as they are.
    /// `HTTP2-Settings` belongs to an h2c upgrade of this one connection (RFC 7540 §3.2.1).
    HopByHop,
    Other,
}

impl FieldName {
    #[inline]
    pub fn of(name: &str) -> FieldName {
        let is = |wanted: &str| name.eq_ignore_ascii_case(wanted);
        match name.len() {
            2 if is("te") => FieldName::HopByHop,
            3 if is("via") => FieldName::Via,
            4 if is("host") => FieldName::Host,
            7 if is("upgrade") || is("trailer") => FieldName::HopByHop,
            10 if is("connection") || is("keep-alive") => FieldName::HopByHop,
            14 if is("http2-settings") => FieldName::HopByHop,
            15 if is("x-forwarded-for") => FieldName::XForwardedFor,
            16 if is("proxy-connection") => FieldName::HopByHop,
            17 if is("x-forwarded-proto") => FieldName::XForwardedProto,
            17 if is("transfer-encoding") => FieldName::TransferEncoding,
            18 if is("proxy-authenticate") => FieldName::HopByHop,
            _ => FieldName::Other,
        }
    }
}

/// Whether a header describes one connection only (see [`FieldName::HopByHop`]).
#[inline]
pub fn is_hop_by_hop(name: &str) -> bool {
    FieldName::of(name) == FieldName::HopByHop
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
/// A client's address as the access log and X-Forwarded-For/X-Real-IP write it. The
/// unspecified IPv6 address is a unix-socket client (`net::UNIX_CLIENT`; no TCP peer has it):
/// `unix:`, as nginx writes one (checked on the IPv6 path only, so IPv4 pays nothing).
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
        std::net::IpAddr::V6(v6) if v6.is_unspecified() => out.extend_from_slice(b"unix:"),
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
#[inline(always)]
pub(crate) fn put_header(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// A parsed header field, as httparse lends them, for unit tests.
#[cfg(test)]
pub(crate) fn test_field<'a>(name: &'a str, value: &'a str) -> httparse::Header<'a> {
    httparse::Header {
        name,
        value: value.as_bytes(),
    }
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
    fn tokens_and_hop_by_hop() {
        assert!(has_token(b"keep-alive, Upgrade", "upgrade"));
        assert!(!has_token(b"keep-alive-ish", "keep-alive"));
        assert!(is_hop_by_hop("Keep-Alive"));
        assert!(!is_hop_by_hop("Content-Type"));
        for hop in [
            "Connection",
            "keep-alive",
            "Proxy-Connection",
            "TE",
            "Trailer",
            "UPGRADE",
            "Proxy-Authenticate",
            "HTTP2-Settings",
        ] {
            assert!(is_hop_by_hop(hop), "{hop}");
        }
        for other in [
            "Transfer-Encoding",
            "Proxy-Authorization",
            "Trailers",
            "tee",
            "Host",
        ] {
            assert!(!is_hop_by_hop(other), "{other}");
        }
        assert_eq!(FieldName::of("X-Forwarded-FOR"), FieldName::XForwardedFor);
        assert_eq!(
            FieldName::of("x-forwarded-proto"),
            FieldName::XForwardedProto
        );
        assert_eq!(
            FieldName::of("transfer-encoding"),
            FieldName::TransferEncoding
        );
        assert_eq!(FieldName::of("VIA"), FieldName::Via);
        assert_eq!(FieldName::of("host"), FieldName::Host);
        assert_eq!(FieldName::of("hostx"), FieldName::Other);
        let hs = [h("Connection", "close, X-Secret")];
        assert!(named_by_connection("x-secret", &hs));
        assert!(connection_names_headers(&hs));
        let plain = [h("Connection", "Keep-Alive"), h("connection", " close ,")];
        assert!(!connection_names_headers(&plain));
        assert!(!connection_names_headers(&[h("Content-Type", "x")]));
    }
}
