//! Response heads: parse what a backend sent, write what the client gets; and the responses the
//! proxy makes itself (400, 502, ...).

use std::io::Write;
use std::mem::MaybeUninit;

use super::body::BodyKind;
use super::framing::{Declared, FramingError};
use super::head::ResponseHead;
use super::request::{HeadLimits, HEADERS_CAP};
use super::{
    connection_has, connection_names_headers, name_is, named_by_connection, put_header,
    put_status_line, FieldName, Version,
};

/// What the proxy needs to know about a backend's response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseInfo {
    pub status: u16,
    /// The body as the backend frames it.
    pub body: BodyKind,
    /// The body is chunked and the client cannot read chunked: strip the framing.
    pub dechunk: bool,
    /// The backend connection may carry another request afterwards.
    pub upstream_reusable: bool,
    /// The client connection stays open after this response.
    pub client_keep_alive: bool,
    pub head_len: usize,
}

impl ResponseInfo {
    /// 1xx other than 101: an interim response, the final one follows.
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status) && self.status != 101
    }
}

/// The client side of the exchange, which shapes the head we write.
#[derive(Debug, Clone, Copy)]
pub struct ClientSide {
    pub version: Version,
    /// The request was HEAD: the response has no body whatever it says.
    pub head_request: bool,
    /// The client connection can stay open (client asked for it, request fully read).
    pub keep_alive: bool,
    /// The upstream request asked to upgrade (to a protocol `upgrade_protocols` allows); a 101
    /// is only accepted then, any other is a bad response (502), never a tunnel.
    pub upgrade: bool,
}

/// Why a backend's response head is refused (answered with 502).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadResponse(pub &'static str);

/// Parses a response head from the start of `input` and writes the client's head into `out`.
/// Returns `Ok(None)` while incomplete.
pub fn parse(
    input: &[u8],
    limits: HeadLimits,
    client: ClientSide,
    out: &mut Vec<u8>,
) -> Result<Option<ResponseInfo>, BadResponse> {
    parse_with(input, limits, client, out, &mut |_, _, _| {})
}

/// [`parse`], then lends the parsed head, the response's facts and the client's head (in `out`)
/// to `then`: the cache reads the same parsed fields instead of parsing the head again. `then`
/// is called through `dyn`, so this hot function is compiled once, as it was before it lent.
pub fn parse_with(
    input: &[u8],
    limits: HeadLimits,
    client: ClientSide,
    out: &mut Vec<u8>,
    then: &mut dyn FnMut(&ResponseHead<'_>, &ResponseInfo, &mut Vec<u8>),
) -> Result<Option<ResponseInfo>, BadResponse> {
    let mut storage = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; HEADERS_CAP];
    let slots = &mut storage[..limits.max_headers.min(HEADERS_CAP)];
    let mut resp = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut resp, input, slots);
    let head_len = match parsed {
        Ok(httparse::Status::Complete(n)) if n <= limits.max_header_bytes => n,
        Ok(httparse::Status::Complete(_)) => return Err(BadResponse("response head too large")),
        Ok(httparse::Status::Partial) if input.len() >= limits.max_header_bytes => {
            return Err(BadResponse("response head too large"))
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(BadResponse("too many response header fields"))
        }
        Err(_) => return Err(BadResponse("malformed response head")),
    };
    let (Some(status), Some(minor)) = (resp.code, resp.version) else {
        return Err(BadResponse("malformed status line"));
    };
    if !(100..=999).contains(&status) {
        return Err(BadResponse("invalid status code"));
    }
    let headers: &[httparse::Header<'_>] = resp.headers;
    let upstream_version = Version::from_minor(minor);
    let reason = resp.reason.unwrap_or("");

    // The framing fields are checked even when the status means no body: the client gets them.
    let declared = Declared::parse(headers).map_err(|e| BadResponse(e.reason()))?;
    if declared == Declared::OtherCoding {
        // RFC 9112 §6.3 reads such a body to the close, but the proxy relays no transfer coding
        // except chunked: it could neither send it to an HTTP/1.0 client (§6.1) nor store it.
        return Err(BadResponse(FramingError::NotChunked.reason()));
    }
    let body = declared.response_body(status, client.head_request);
    let upstream_reusable = upstream_version == Version::Http11
        && !connection_has(headers, "close")
        && body != BodyKind::UntilClose
        && status != 101;
    let dechunk = body == BodyKind::Chunked && client.version == Version::Http10;
    let switching = status == 101;
    if switching && !client.upgrade {
        return Err(BadResponse("101 without an upgrade request"));
    }
    let client_keep_alive =
        client.keep_alive && !switching && body != BodyKind::UntilClose && !dechunk;

    out.clear();
    if (100..200).contains(&status) && !switching && client.version == Version::Http10 {
        // HTTP/1.0 clients do not understand interim responses; the caller drops an empty head.
    } else {
        put_status_line(out, status, reason.as_bytes());
        // Most messages have no Connection header naming others: skip the per-header scan.
        let connection_named = connection_names_headers(headers);
        let mut via_written = false;
        for h in headers {
            let n = h.name;
            let field = FieldName::of(n);
            if field == FieldName::Via {
                if !via_written {
                    via_written = true;
                    write_via(out, headers);
                }
                continue;
            }
            if field == FieldName::HopByHop
                || (connection_named && named_by_connection(n, headers))
                || (dechunk && field == FieldName::TransferEncoding)
            {
                continue;
            }
            put_header(out, n, h.value);
        }
        if !via_written {
            write_via(out, &[]);
        }
        if switching {
            put_header(out, "Connection", b"upgrade");
            if let Some(u) = headers.iter().find(|h| name_is(h.name, "upgrade")) {
                put_header(out, "Upgrade", u.value);
            }
        } else if !(100..200).contains(&status) {
            if !client_keep_alive {
                put_header(out, "Connection", b"close");
            } else if client.version == Version::Http10 {
                put_header(out, "Connection", b"keep-alive");
            }
        }
        out.extend_from_slice(b"\r\n");
    }
    let info = ResponseInfo {
        status,
        body,
        dechunk,
        upstream_reusable,
        client_keep_alive,
        head_len,
    };
    let head = ResponseHead {
        status,
        version: upstream_version,
        reason,
        fields: headers,
    };
    then(&head, &info, out);
    Ok(Some(info))
}

fn write_via(out: &mut Vec<u8>, headers: &[httparse::Header<'_>]) {
    out.extend_from_slice(b"Via: ");
    for h in headers.iter().filter(|h| name_is(h.name, "via")) {
        out.extend_from_slice(h.value.trim_ascii());
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(b"1.1 pibl\r\n");
}

/// The standard reason phrase for statuses the proxy itself produces.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        410 => "Gone",
        408 => "Request Timeout",
        413 => "Content Too Large",
        414 => "URI Too Long",
        421 => "Misdirected Request",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// Writes a complete small response made by the proxy itself, with a text body saying why.
pub fn write_error(out: &mut Vec<u8>, status: u16, detail: &str, close: bool, date: &str) {
    write_error_with(out, status, detail, close, date, "", None);
}

/// [`write_error`] with `extra` header lines (each ending in CRLF) in the head (`Retry-After`),
/// and with `page` (an `error_page` file) as a `text/html` body instead of the text saying why.
pub fn write_error_with(
    out: &mut Vec<u8>,
    status: u16,
    detail: &str,
    close: bool,
    date: &str,
    extra: &str,
    page: Option<&[u8]>,
) {
    if let Some(page) = page {
        out.clear();
        let _ = write!(
            out,
            "HTTP/1.1 {status} {}\r\nDate: {date}\r\nServer: pibl\r\n\
             Content-Type: text/html\r\nContent-Length: {}\r\n",
            reason_phrase(status),
            page.len()
        );
        if close {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(extra.as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(page);
        return;
    }
    let phrase = reason_phrase(status);
    let body_len = 3 + 1 + phrase.len() + 2 + detail.len() + 1;
    out.clear();
    let _ = write!(
        out,
        "HTTP/1.1 {status} {phrase}\r\nDate: {date}\r\nServer: pibl\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Length: {body_len}\r\n"
    );
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    if status == 405 {
        out.extend_from_slice(b"Allow: GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS\r\n");
    }
    out.extend_from_slice(extra.as_bytes());
    let _ = write!(out, "\r\n{status} {phrase}: {detail}\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: HeadLimits = HeadLimits {
        max_header_bytes: 8192,
        max_headers: 100,
    };
    const CLIENT11: ClientSide = ClientSide {
        version: Version::Http11,
        head_request: false,
        keep_alive: true,
        upgrade: false,
    };

    fn run(input: &str, client: ClientSide) -> (ResponseInfo, String) {
        let mut out = Vec::new();
        let info = parse(input.as_bytes(), LIMITS, client, &mut out)
            .unwrap()
            .unwrap();
        (info, String::from_utf8(out).unwrap())
    }

    #[test]
    fn keeps_end_to_end_headers_and_adds_via() {
        let (info, head) = run(
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\nX-A: 1\r\n\r\nhi",
            CLIENT11,
        );
        assert_eq!(info.body, BodyKind::Length(2));
        assert!(!info.upstream_reusable);
        assert!(info.client_keep_alive);
        assert_eq!(
            head,
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: 1\r\nVia: 1.1 pibl\r\n\r\n"
        );
    }

    #[test]
    fn close_delimited_body_closes_the_client() {
        let (info, head) = run("HTTP/1.0 200 OK\r\n\r\n", CLIENT11);
        assert_eq!(info.body, BodyKind::UntilClose);
        assert!(!info.client_keep_alive && !info.upstream_reusable);
        assert!(head.contains("Connection: close\r\n"));
    }

    #[test]
    fn chunked_to_http10_client_is_dechunked() {
        let client = ClientSide {
            version: Version::Http10,
            ..CLIENT11
        };
        let (info, head) = run(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            client,
        );
        assert!(info.dechunk && !info.client_keep_alive && info.upstream_reusable);
        assert!(!head.contains("Transfer-Encoding"));
    }

    #[test]
    fn bodiless_statuses_and_head() {
        let (info, _) = run(
            "HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n",
            CLIENT11,
        );
        assert_eq!(info.body, BodyKind::Empty);
        let head_req = ClientSide {
            head_request: true,
            ..CLIENT11
        };
        let (info, _) = run("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", head_req);
        assert_eq!(info.body, BodyKind::Empty);
        assert!(info.upstream_reusable);
    }

    #[test]
    fn bad_responses_are_refused() {
        let mut out = Vec::new();
        for bad in [
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            "garbage\r\n\r\n",
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
        ] {
            assert!(
                parse(bad.as_bytes(), LIMITS, CLIENT11, &mut out).is_err(),
                "{bad:?}"
            );
        }
    }

    /// RFC 9112 §6.3 reads a response whose final coding is not chunked to the close (the
    /// client does), but the proxy refuses it: it relays no other transfer coding.
    #[test]
    fn a_transfer_coding_other_than_chunked_is_refused() {
        let mut out = Vec::new();
        for te in ["gzip", "chunked, gzip", "identity"] {
            let head = format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: {te}\r\n\r\n");
            assert_eq!(
                parse(head.as_bytes(), LIMITS, CLIENT11, &mut out),
                Err(BadResponse("Transfer-Encoding does not end in chunked")),
                "{te}"
            );
        }
        let (info, _) = run(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            CLIENT11,
        );
        assert_eq!(info.body, BodyKind::Chunked);
    }

    #[test]
    fn error_response_is_well_formed() {
        let mut out = Vec::new();
        write_error(
            &mut out,
            502,
            "no backend",
            true,
            "Mon, 23 Nov 2026 19:00:00 GMT",
        );
        let text = String::from_utf8(out).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 502 Bad Gateway\r\n"));
        assert!(head.contains(&format!("Content-Length: {}\r\n", body.len())));
        assert!(head.contains("Connection: close"));
    }
}
