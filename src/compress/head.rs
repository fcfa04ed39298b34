//! The response head a compressed body goes out with: what changes from the backend's fields
//! (RFC 9110 §8.4, §8.8.3, §12.5.5). Sans-io: the client's head writer offers each field to
//! [`CompressedHead::field`] and calls [`CompressedHead::finish`] before the blank line, so the
//! head is still written once, and nothing changes for a response that is not compressed.

use super::Coding;
use crate::http::{has_token, name_is, put_header, Version};

/// Rewrites one head for a compressed body.
#[derive(Debug, Clone, Copy)]
pub struct CompressedHead {
    coding: Coding,
    /// The client's version: HTTP/1.1 gets chunked, HTTP/1.0 a close-delimited body.
    client: Version,
    /// A `Vary` field already names `Accept-Encoding` (or `*`).
    vary_covers: bool,
}

impl CompressedHead {
    pub fn new(coding: Coding, client: Version) -> CompressedHead {
        CompressedHead {
            coding,
            client,
            vary_covers: false,
        }
    }

    /// Writes one backend field as the compressed response has it; returns false when the
    /// field is not this rewrite's business (the caller writes it as usual). Dropped:
    /// `Content-Length` and `Transfer-Encoding` (the body is framed anew), `Accept-Ranges`
    /// (ranges would be of the identity body). `ETag` is weakened (`W/`): the compressed bytes
    /// are not the identity bytes, so a strong validator would lie. `Vary` is kept, and noted.
    pub fn field(&mut self, out: &mut Vec<u8>, name: &str, value: &[u8]) -> bool {
        if name_is(name, "content-length")
            || name_is(name, "transfer-encoding")
            || name_is(name, "accept-ranges")
        {
            return true;
        }
        if name_is(name, "etag") {
            if value.starts_with(b"W/") {
                put_header(out, name, value);
            } else {
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b": W/");
                out.extend_from_slice(value);
                out.extend_from_slice(b"\r\n");
            }
            return true;
        }
        if name_is(name, "vary") {
            self.vary_covers |= has_token(value, "accept-encoding") || has_token(value, "*");
            put_header(out, name, value);
            return true;
        }
        false
    }

    /// The fields the compressed response adds, after the backend's: `Content-Encoding`,
    /// `Vary: Accept-Encoding` unless a `Vary` covered it (a second field line is the same list,
    /// RFC 9110 §5.3), and `Transfer-Encoding: chunked` for an HTTP/1.1 client. An HTTP/1.0
    /// client's body ends at the close: the caller sends `Connection: close`.
    pub fn finish(&self, out: &mut Vec<u8>) {
        put_header(out, "Content-Encoding", self.coding.token().as_bytes());
        if !self.vary_covers {
            put_header(out, "Vary", b"Accept-Encoding");
        }
        if self.client == Version::Http11 {
            put_header(out, "Transfer-Encoding", b"chunked");
        }
    }

    /// Rewrites a client head already written (status line, fields, blank line) for the
    /// compressed body, in place: each field offered to [`Self::field`], an HTTP/1.0 client's
    /// `Connection` replaced by `Connection: close`, then [`Self::finish`]. Only a compressed
    /// response pays for it (one copy of its head); the fields were filtered when written.
    pub fn rewrite(mut self, head: &mut Vec<u8>) {
        let written = head.clone();
        head.clear();
        let mut lines = written.split_inclusive(|&b| b == b'\n');
        if let Some(status_line) = lines.next() {
            head.extend_from_slice(status_line);
        }
        for line in lines {
            let text = line.strip_suffix(b"\n").unwrap_or(line);
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            if text.is_empty() {
                break;
            }
            let Some(colon) = text.iter().position(|&b| b == b':') else {
                head.extend_from_slice(line);
                continue;
            };
            let name = std::str::from_utf8(&text[..colon]).unwrap_or("");
            let value = text[colon + 1..].trim_ascii();
            if self.closes() && name_is(name, "connection") {
                continue;
            }
            if !self.field(head, name, value) {
                head.extend_from_slice(line);
            }
        }
        self.finish(head);
        if self.closes() {
            put_header(head, "Connection", b"close");
        }
        head.extend_from_slice(b"\r\n");
    }

    /// A cached response's stored header lines (`Name: value\r\n`, no framing fields) as its
    /// compressed variant stores them (`cache::entry`): each line offered to [`Self::field`],
    /// then `Content-Encoding` and `Vary`; no framing (a hit's `Content-Length` is the
    /// variant's own length), so the client's version does not matter here.
    pub fn stored_fields(coding: Coding, stored: &[u8]) -> Vec<u8> {
        let mut rewrite = CompressedHead::new(coding, Version::Http10);
        let mut out = Vec::with_capacity(stored.len() + 64);
        for line in stored.split_inclusive(|&b| b == b'\n') {
            let text = line.strip_suffix(b"\n").unwrap_or(line);
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            let Some(colon) = text.iter().position(|&b| b == b':') else {
                continue;
            };
            let name = std::str::from_utf8(&text[..colon]).unwrap_or("");
            let value = text[colon + 1..].trim_ascii();
            if !rewrite.field(&mut out, name, value) {
                out.extend_from_slice(line);
            }
        }
        put_header(&mut out, "Content-Encoding", coding.token().as_bytes());
        if !rewrite.vary_covers {
            put_header(&mut out, "Vary", b"Accept-Encoding");
        }
        out
    }

    /// Whether the connection must close after this response: HTTP/1.0 clients read the
    /// compressed body to the close.
    pub fn closes(&self) -> bool {
        self.client == Version::Http10
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(coding: Coding, client: Version, fields: &[(&str, &str)]) -> String {
        let mut h = CompressedHead::new(coding, client);
        let mut out = Vec::new();
        for (n, v) in fields {
            if !h.field(&mut out, n, v.as_bytes()) {
                put_header(&mut out, n, v.as_bytes());
            }
        }
        h.finish(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn length_goes_etag_weakens_vary_and_encoding_join() {
        let head = rewrite(
            Coding::Br,
            Version::Http11,
            &[
                ("Content-Type", "text/html"),
                ("Content-Length", "100000"),
                ("ETag", "\"abc\""),
                ("Accept-Ranges", "bytes"),
                ("Cache-Control", "max-age=60"),
            ],
        );
        assert_eq!(
            head,
            "Content-Type: text/html\r\nETag: W/\"abc\"\r\nCache-Control: max-age=60\r\n\
             Content-Encoding: br\r\nVary: Accept-Encoding\r\nTransfer-Encoding: chunked\r\n"
        );
    }

    #[test]
    fn a_weak_etag_stays_and_a_vary_is_merged_once() {
        let head = rewrite(
            Coding::Gzip,
            Version::Http11,
            &[
                ("etag", "W/\"x\""),
                ("Vary", "Cookie"),
                ("Transfer-Encoding", "chunked"),
            ],
        );
        assert_eq!(
            head,
            "etag: W/\"x\"\r\nVary: Cookie\r\nContent-Encoding: gzip\r\n\
             Vary: Accept-Encoding\r\nTransfer-Encoding: chunked\r\n"
        );
        for covered in ["accept-encoding, Cookie", "*"] {
            let head = rewrite(Coding::Zstd, Version::Http11, &[("Vary", covered)]);
            assert_eq!(head.matches("Vary").count(), 1, "{head}");
        }
    }

    #[test]
    fn a_variants_stored_fields_have_the_coding_and_no_framing() {
        let stored = b"Content-Type: text/html\r\nETag: \"v1\"\r\nAccept-Ranges: bytes\r\n\
                       Pibl-Cache-Control: max-age=5\r\n";
        let fields = CompressedHead::stored_fields(Coding::Br, stored);
        assert_eq!(
            String::from_utf8(fields).unwrap(),
            "Content-Type: text/html\r\nETag: W/\"v1\"\r\nPibl-Cache-Control: max-age=5\r\n\
             Content-Encoding: br\r\nVary: Accept-Encoding\r\n"
        );
        let fields = CompressedHead::stored_fields(Coding::Gzip, b"Vary: Accept-Encoding\r\n");
        assert_eq!(
            fields,
            b"Vary: Accept-Encoding\r\nContent-Encoding: gzip\r\n"
        );
    }

    #[test]
    fn http10_clients_get_a_close_delimited_body() {
        let h = CompressedHead::new(Coding::Gzip, Version::Http10);
        assert!(h.closes());
        let head = rewrite(Coding::Gzip, Version::Http10, &[("Content-Length", "5000")]);
        assert_eq!(head, "Content-Encoding: gzip\r\nVary: Accept-Encoding\r\n");
        assert!(!CompressedHead::new(Coding::Gzip, Version::Http11).closes());
    }

    #[test]
    fn a_written_head_is_rewritten_in_place() {
        let mut head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5000\r\n\
                         ETag: \"e\"\r\nConnection: keep-alive\r\nVia: 1.1 pibl\r\n\r\n"
            .to_vec();
        CompressedHead::new(Coding::Gzip, Version::Http10).rewrite(&mut head);
        assert_eq!(
            String::from_utf8(head).unwrap(),
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nETag: W/\"e\"\r\nVia: 1.1 pibl\r\n\
             Content-Encoding: gzip\r\nVary: Accept-Encoding\r\nConnection: close\r\n\r\n"
        );
        let mut head =
            b"HTTP/1.1 404 Not Found\r\nVary: Cookie\r\nContent-Length: 5000\r\n\r\n".to_vec();
        CompressedHead::new(Coding::Br, Version::Http11).rewrite(&mut head);
        assert_eq!(
            String::from_utf8(head).unwrap(),
            "HTTP/1.1 404 Not Found\r\nVary: Cookie\r\nContent-Encoding: br\r\n\
             Vary: Accept-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
    }
}
