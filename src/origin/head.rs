//! Request heads as the origin needs them: parsed with httparse, checked by the proxy's rules
//! (Host: [`host_field`], framing: [`request_body`], keep-alive), copied into a reusable
//! [`RequestHead`] so the input buffer can move on.

use std::mem::MaybeUninit;

use crate::http::body::BodyKind;
use crate::http::framing::request_body;
use crate::http::target::host_field;
use crate::http::{name_is, request_keeps_alive, Version};

/// Header fields accepted in one request head: as many as pibl forwards by default
/// (`max_headers`), so what the proxy lets through, its demo backend takes.
const MAX_HEADERS: usize = 256;

/// One request head, owned. Strings are cleared and refilled so a connection reuses their
/// allocations from request to request.
#[derive(Debug, Clone)]
pub struct RequestHead {
    pub method: String,
    /// The request target as sent (path and query).
    pub target: String,
    pub version: Version,
    /// The client wants the connection kept open after the response.
    pub keep_alive: bool,
    pub body: BodyKind,
    /// Empty when absent.
    pub content_type: String,
    pub if_none_match: Option<String>,
    pub if_modified_since: Option<String>,
    /// `Expect: 100-continue`: the client waits for a go-ahead before sending the body.
    pub expect_continue: bool,
}

impl Default for RequestHead {
    fn default() -> Self {
        RequestHead {
            method: String::new(),
            target: String::new(),
            version: Version::Http11,
            keep_alive: true,
            body: BodyKind::Empty,
            content_type: String::new(),
            if_none_match: None,
            if_modified_since: None,
            expect_continue: false,
        }
    }
}

impl RequestHead {
    pub fn is_get_or_head(&self) -> bool {
        self.method == "GET" || self.method == "HEAD"
    }

    pub fn is_head(&self) -> bool {
        self.method == "HEAD"
    }
}

/// A request refused before routing, with the status it gets. The connection closes after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadRequest {
    pub status: u16,
    pub reason: &'static str,
}

const fn bad(status: u16, reason: &'static str) -> BadRequest {
    BadRequest { status, reason }
}

/// Parses the head at the start of `input` into `head`. Returns the head's length, or `None`
/// while it is incomplete.
pub fn parse(input: &[u8], head: &mut RequestHead) -> Result<Option<usize>, BadRequest> {
    let mut storage = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(input, &mut storage) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(bad(431, "too many header fields")),
        Err(_) => return Err(bad(400, "malformed request head")),
    };
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(bad(400, "incomplete request line"));
    };
    let headers: &[httparse::Header<'_>] = req.headers;
    let version = Version::from_minor(minor);
    if !target.is_ascii() {
        return Err(bad(400, "request target is not ASCII"));
    }
    host_field(version, headers).map_err(|why| bad(400, why))?;
    head.body = request_body(version, headers).map_err(|e| bad(400, e.reason()))?;
    head.keep_alive = request_keeps_alive(version, headers);
    head.version = version;
    head.method.clear();
    head.method.push_str(method);
    head.target.clear();
    head.target.push_str(target);
    head.content_type.clear();
    head.if_none_match = None;
    head.if_modified_since = None;
    head.expect_continue = false;
    for h in headers {
        let value = || String::from_utf8_lossy(h.value.trim_ascii()).into_owned();
        if name_is(h.name, "content-type") {
            head.content_type
                .push_str(&String::from_utf8_lossy(h.value.trim_ascii()));
        } else if name_is(h.name, "if-none-match") {
            head.if_none_match = Some(value());
        } else if name_is(h.name, "if-modified-since") {
            head.if_modified_since = Some(value());
        } else if name_is(h.name, "expect") {
            head.expect_continue = h.value.trim_ascii().eq_ignore_ascii_case(b"100-continue");
        }
    }
    Ok(Some(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &str) -> Result<Option<usize>, BadRequest> {
        parse(input.as_bytes(), &mut RequestHead::default())
    }

    #[test]
    fn parses_what_routing_needs() {
        let mut h = RequestHead::default();
        let text = "POST /echo?x HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\n\
                    Content-Length: 3\r\nIf-None-Match: \"x\"\r\n\r\nabc";
        let n = parse(text.as_bytes(), &mut h).unwrap().unwrap();
        assert_eq!(&text[n..], "abc");
        assert_eq!((h.method.as_str(), h.target.as_str()), ("POST", "/echo?x"));
        assert_eq!(h.body, BodyKind::Length(3));
        assert_eq!(h.content_type, "text/plain");
        assert_eq!(h.if_none_match.as_deref(), Some("\"x\""));
        assert!(h.keep_alive);
    }

    #[test]
    fn keep_alive_defaults_by_version() {
        let mut h = RequestHead::default();
        parse(b"GET / HTTP/1.0\r\n\r\n", &mut h).unwrap();
        assert!(!h.keep_alive);
        parse(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &mut h).unwrap();
        assert!(h.keep_alive);
        parse(
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            &mut h,
        )
        .unwrap();
        assert!(!h.keep_alive);
    }

    #[test]
    fn refuses_malformed_heads() {
        assert_eq!(run("GET / HTTP/1.1\r\nHost: a\r\n"), Ok(None));
        for text in [
            "GARBAGE\r\n\r\n",
            "GET / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
        ] {
            assert_eq!(run(text).map_err(|e| e.status), Err(400), "{text:?}");
        }
    }

    /// The origin checks Host as the proxy does (RFC 9112 §3.2: an invalid value is a 400);
    /// it used to accept any value.
    #[test]
    fn refuses_an_invalid_host_as_the_proxy_does() {
        for text in [
            "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: u@h\r\n\r\n",
            "GET / HTTP/1.0\r\nHost: a/b\r\n\r\n",
        ] {
            assert_eq!(run(text).map_err(|e| e.status), Err(400), "{text:?}");
        }
        assert!(run("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n").is_ok());
    }
}
