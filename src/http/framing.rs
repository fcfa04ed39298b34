//! Body framing rules (RFC 9112 §6.1-6.3): how long a request's or a response's body is, decided
//! from its head. One set of rules for the proxy, the origin and the client.
//!
//! [`Declared::parse`] reads Content-Length and Transfer-Encoding strictly;
//! [`Declared::request_body`] and [`Declared::response_body`] then apply §6.3 for the two kinds
//! of message.

use super::body::BodyKind;
use super::{name_is, Field, Version};

/// Why the framing headers of a message cannot be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramingError {
    /// Both Content-Length and Transfer-Encoding (§6.3 item 3: "ought to be handled as an error";
    /// a proxy that forwarded both would invite request smuggling).
    Both,
    /// Content-Length that is not 1*DIGIT, overflows, or disagrees with another. A list such as
    /// `5, 5` is refused too (RFC 9110 §8.6 allows either refusing or repairing it).
    BadLength,
    /// Transfer-Encoding whose final coding is not chunked in a request (§6.3 item 4: 400), or
    /// a Transfer-Encoding field that lists no coding.
    NotChunked,
    /// Chunked in an HTTP/1.0 request, which cannot carry a transfer coding (§6.1).
    ChunkedInHttp10,
}

impl FramingError {
    pub fn reason(self) -> &'static str {
        match self {
            FramingError::Both => "both Content-Length and Transfer-Encoding",
            FramingError::BadLength => "invalid Content-Length",
            FramingError::NotChunked => "Transfer-Encoding does not end in chunked",
            FramingError::ChunkedInHttp10 => "Transfer-Encoding in an HTTP/1.0 request",
        }
    }
}

/// What a message's framing headers declare, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Declared {
    /// Neither Content-Length nor Transfer-Encoding.
    Nothing,
    Length(u64),
    /// Transfer-Encoding whose final coding is chunked.
    Chunked,
    /// Transfer-Encoding whose final coding is something else (`gzip`, `identity`, ...).
    OtherCoding,
}

impl Declared {
    /// Reads Content-Length and Transfer-Encoding strictly (RFC 9112 §6.1-6.3, RFC 9110 §8.6).
    /// Inlined: it runs for every request and response head (as the copy it replaced was).
    #[inline]
    pub fn parse(fields: &[impl Field]) -> Result<Declared, FramingError> {
        let mut length: Option<u64> = None;
        let mut te_seen = false;
        let mut last_coding_chunked = false;
        for f in fields {
            if name_is(f.name(), "content-length") {
                let v = parse_length(f.value()).ok_or(FramingError::BadLength)?;
                if length.is_some_and(|l| l != v) {
                    return Err(FramingError::BadLength);
                }
                length = Some(v);
            } else if name_is(f.name(), "transfer-encoding") {
                for coding in f.value().split(|&b| b == b',') {
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
            (None, true) if last_coding_chunked => Ok(Declared::Chunked),
            (None, true) => Ok(Declared::OtherCoding),
            (Some(n), false) => Ok(Declared::Length(n)),
            (None, false) => Ok(Declared::Nothing),
        }
    }

    /// A request's body (§6.3 items 4-7): none without framing headers; a transfer coding must
    /// end in chunked, and HTTP/1.0 has none.
    pub fn request_body(self, version: Version) -> Result<BodyKind, FramingError> {
        match self {
            Declared::Nothing => Ok(BodyKind::Empty),
            Declared::Length(n) => Ok(BodyKind::Length(n)),
            Declared::OtherCoding => Err(FramingError::NotChunked),
            Declared::Chunked if version == Version::Http10 => Err(FramingError::ChunkedInHttp10),
            Declared::Chunked => Ok(BodyKind::Chunked),
        }
    }

    /// A response's body (§6.3 items 1, 4, 5, 7): none for HEAD and 1xx/204/304 whatever the
    /// headers say; a final coding other than chunked, or no framing at all, runs until close.
    pub fn response_body(self, status: u16, head_request: bool) -> BodyKind {
        if is_bodiless(status, head_request) {
            return BodyKind::Empty;
        }
        match self {
            Declared::Length(n) => BodyKind::Length(n),
            Declared::Chunked => BodyKind::Chunked,
            Declared::Nothing | Declared::OtherCoding => BodyKind::UntilClose,
        }
    }
}

/// A response that never has a body: to a HEAD request, or 1xx, 204, 304 (§6.3 item 1).
pub fn is_bodiless(status: u16, head_request: bool) -> bool {
    head_request || (100..200).contains(&status) || status == 204 || status == 304
}

/// The body of a request with these header fields (the proxy and the origin).
#[inline]
pub fn request_body(version: Version, fields: &[impl Field]) -> Result<BodyKind, FramingError> {
    Declared::parse(fields)?.request_body(version)
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

#[cfg(test)]
mod tests {
    use super::*;

    use crate::http::test_field as h;

    #[test]
    fn framing_is_strict() {
        assert_eq!(
            Declared::parse(&[h("Content-Length", "12")]),
            Ok(Declared::Length(12))
        );
        assert_eq!(
            Declared::parse(&[h("content-length", "5"), h("Content-Length", "5")]),
            Ok(Declared::Length(5))
        );
        for bad in [
            "",
            "+5",
            "5 ",
            "0x10",
            "1,1",
            "5, 5",
            "99999999999999999999",
        ] {
            assert_eq!(
                Declared::parse(&[h("Content-Length", bad)]),
                Err(FramingError::BadLength),
                "{bad:?}"
            );
        }
        assert_eq!(
            Declared::parse(&[h("Content-Length", "5"), h("Content-Length", "6")]),
            Err(FramingError::BadLength)
        );
        assert_eq!(
            Declared::parse(&[h("Transfer-Encoding", "gzip, chunked")]),
            Ok(Declared::Chunked)
        );
        assert_eq!(
            Declared::parse(&[h("Transfer-Encoding", "chunked, gzip")]),
            Ok(Declared::OtherCoding)
        );
        assert_eq!(
            Declared::parse(&[h("Transfer-Encoding", "")]),
            Err(FramingError::NotChunked)
        );
        assert_eq!(
            Declared::parse(&[h("Transfer-Encoding", "chunked"), h("Content-Length", "3")]),
            Err(FramingError::Both)
        );
    }

    #[test]
    fn requests_need_chunked_last_and_http11() {
        let body = |v, fields: &[httparse::Header<'_>]| request_body(v, fields);
        assert_eq!(body(Version::Http11, &[]), Ok(BodyKind::Empty));
        assert_eq!(
            body(Version::Http11, &[h("Transfer-Encoding", "chunked")]),
            Ok(BodyKind::Chunked)
        );
        assert_eq!(
            body(Version::Http10, &[h("Transfer-Encoding", "chunked")]),
            Err(FramingError::ChunkedInHttp10)
        );
        assert_eq!(
            body(Version::Http11, &[h("Transfer-Encoding", "chunked, gzip")]),
            Err(FramingError::NotChunked)
        );
        assert_eq!(
            body(Version::Http10, &[h("Content-Length", "3")]),
            Ok(BodyKind::Length(3))
        );
    }

    #[test]
    fn responses_follow_the_order_of_precedence() {
        let length = Declared::Length(5);
        assert_eq!(length.response_body(200, false), BodyKind::Length(5));
        for (status, head) in [(200, true), (101, false), (204, false), (304, false)] {
            assert_eq!(length.response_body(status, head), BodyKind::Empty);
        }
        assert_eq!(
            Declared::Nothing.response_body(200, false),
            BodyKind::UntilClose
        );
        // §6.3 item 4: a response whose final coding is not chunked runs until the server
        // closes (a request like it is refused).
        assert_eq!(
            Declared::OtherCoding.response_body(200, false),
            BodyKind::UntilClose
        );
        assert_eq!(
            Declared::Chunked.response_body(200, false),
            BodyKind::Chunked
        );
    }
}
