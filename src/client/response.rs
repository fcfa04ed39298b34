//! Reading a response: the head with httparse, then the body by Content-Length, chunked
//! (through the crate's strict [`ChunkedDecoder`]) or until the server closes.

use super::connection::Source;
use super::error::ClientError;
use crate::http::body::BodyKind;
use crate::http::chunked::{ChunkedDecoder, Piece};
use crate::http::framing::Declared;
use crate::http::Field;

/// Largest response head accepted, so a broken server cannot make us buffer forever.
const MAX_HEAD: usize = 64 * 1024;
/// Most header fields accepted in one response: as many as pibl relays by default
/// (`max_headers`; a long `Set-Cookie` list is no reason to fail).
const MAX_HEADERS: usize = 256;
/// Read buffer size for bodies.
const READ_CHUNK: usize = 64 * 1024;

/// One header field; the value is kept as text (invalid UTF-8 replaced).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: String,
}

impl Header {
    pub fn new(name: &str, value: &str) -> Self {
        Header {
            name: name.to_string(),
            value: value.to_string(),
        }
    }
}

impl Field for Header {
    fn name(&self) -> &str {
        &self.name
    }

    fn value(&self) -> &[u8] {
        self.value.as_bytes()
    }
}

/// The status line and header fields of a final (non-1xx) response.
#[derive(Debug, Clone)]
pub struct ResponseHead {
    /// Minor HTTP version: 0 or 1.
    pub version: u8,
    pub status: u16,
    pub reason: String,
    pub headers: Vec<Header>,
}

impl ResponseHead {
    /// First value of the header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The head as text, for `-i`.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "HTTP/1.{} {} {}\r\n",
            self.version, self.status, self.reason
        );
        for h in &self.headers {
            out.push_str(&format!("{}: {}\r\n", h.name, h.value));
        }
        out.push_str("\r\n");
        out
    }
}

/// First value of the header `name` (case-insensitive) in `headers`.
pub fn find_header<'a>(headers: &'a [Header], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

/// Reads the final response head, skipping 1xx interim responses (except 101). Bytes read past
/// the head stay in `buf` for the body.
pub fn read_head(source: &mut dyn Source, buf: &mut Vec<u8>) -> Result<ResponseHead, ClientError> {
    let mut chunk = vec![0u8; 8192];
    loop {
        match parse_head(buf)? {
            Some((head, used)) => {
                buf.drain(..used);
                if (100..200).contains(&head.status) && head.status != 101 {
                    continue;
                }
                return Ok(head);
            }
            None => {
                if buf.len() > MAX_HEAD {
                    return Err(ClientError::Malformed(format!(
                        "response head is larger than {} KiB",
                        MAX_HEAD / 1024
                    )));
                }
                let n = source.receive(&mut chunk)?;
                if n == 0 {
                    return Err(ClientError::Malformed(if buf.is_empty() {
                        "the server closed the connection without sending a response".into()
                    } else {
                        "the connection closed in the middle of the response head".into()
                    }));
                }
                buf.extend_from_slice(&chunk[..n]);
            }
        }
    }
}

/// Parses a complete head at the start of `buf`; `None` when more bytes are needed.
fn parse_head(buf: &[u8]) -> Result<Option<(ResponseHead, usize)>, ClientError> {
    if buf.is_empty() {
        return Ok(None);
    }
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut fields);
    match response.parse(buf) {
        Ok(httparse::Status::Partial) => Ok(None),
        Ok(httparse::Status::Complete(used)) => {
            let head = ResponseHead {
                version: response.version.unwrap_or(1),
                status: response.code.unwrap_or(0),
                reason: response.reason.unwrap_or("").to_string(),
                headers: response
                    .headers
                    .iter()
                    .map(|h| Header {
                        name: h.name.to_string(),
                        value: String::from_utf8_lossy(h.value).trim().to_string(),
                    })
                    .collect(),
            };
            Ok(Some((head, used)))
        }
        Err(e) => {
            let start: String = String::from_utf8_lossy(&buf[..buf.len().min(40)])
                .chars()
                .map(|c| if c.is_control() { '.' } else { c })
                .collect();
            Err(ClientError::Malformed(format!(
                "not an HTTP/1.x response ({e}); it starts with \"{start}\""
            )))
        }
    }
}

/// Decides the framing of a response to a `method` request, by the rules the proxy uses
/// ([`Declared`]).
pub fn body_framing(method: &str, head: &ResponseHead) -> Result<BodyKind, ClientError> {
    let declared = Declared::parse(&head.headers)
        .map_err(|e| ClientError::Malformed(format!("invalid response framing: {}", e.reason())))?;
    Ok(declared.response_body(head.status, method.eq_ignore_ascii_case("HEAD")))
}

/// Streams the body to `on_data`, starting with the bytes already in `buf`. Returns the number of
/// body bytes delivered (without chunk framing).
pub fn copy_body(
    source: &mut dyn Source,
    mut buf: Vec<u8>,
    framing: BodyKind,
    on_data: &mut dyn FnMut(&[u8]) -> Result<(), ClientError>,
) -> Result<u64, ClientError> {
    let mut chunk = vec![0u8; READ_CHUNK];
    match framing {
        BodyKind::Empty => Ok(0),
        BodyKind::Length(total) => {
            let mut left = total;
            let first = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            if first > 0 {
                on_data(&buf[..first])?;
                left -= first as u64;
            }
            while left > 0 {
                let n = source.receive(&mut chunk)?;
                if n == 0 {
                    return Err(ClientError::Malformed(format!(
                        "the connection closed after {} of {total} body bytes",
                        total - left
                    )));
                }
                let take = n.min(usize::try_from(left).unwrap_or(usize::MAX));
                on_data(&chunk[..take])?;
                left -= take as u64;
            }
            Ok(total)
        }
        BodyKind::UntilClose => {
            let mut total = buf.len() as u64;
            if !buf.is_empty() {
                on_data(&buf)?;
            }
            loop {
                let n = source.receive(&mut chunk)?;
                if n == 0 {
                    return Ok(total);
                }
                on_data(&chunk[..n])?;
                total += n as u64;
            }
        }
        BodyKind::Chunked => {
            let mut decoder = ChunkedDecoder::new();
            let mut total = 0u64;
            let mut pos = 0;
            loop {
                if pos == buf.len() {
                    let n = source.receive(&mut chunk)?;
                    if n == 0 {
                        return Err(ClientError::Malformed(
                            "the connection closed inside the chunked body".into(),
                        ));
                    }
                    buf.clear();
                    buf.extend_from_slice(&chunk[..n]);
                    pos = 0;
                }
                let piece = decoder
                    .next(&buf[pos..])
                    .map_err(|e| ClientError::Malformed(format!("bad chunked body: {e}")))?;
                match piece {
                    Piece::Data(n) => {
                        on_data(&buf[pos..pos + n])?;
                        total += n as u64;
                        pos += n;
                    }
                    Piece::Framing(n) => pos += n,
                    Piece::Done(_) => return Ok(total),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(raw: &[u8], method: &str) -> Result<(ResponseHead, Vec<u8>), ClientError> {
        let mut source: &[u8] = raw;
        let mut buf = Vec::new();
        let head = read_head(&mut source, &mut buf)?;
        let framing = body_framing(method, &head)?;
        let mut body = Vec::new();
        copy_body(&mut source, buf, framing, &mut |d| {
            body.extend_from_slice(d);
            Ok(())
        })?;
        Ok((head, body))
    }

    #[test]
    fn reads_length_chunked_and_close_delimited_bodies() {
        let (head, body) = read_all(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcEXTRA",
            "GET",
        )
        .unwrap();
        assert_eq!((head.status, body.as_slice()), (200, &b"abc"[..]));
        let (_, body) = read_all(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
            "GET",
        )
        .unwrap();
        assert_eq!(body, b"abcde");
        let (_, body) = read_all(b"HTTP/1.0 200 OK\r\n\r\nuntil close", "GET").unwrap();
        assert_eq!(body, b"until close");
    }

    #[test]
    fn skips_interim_responses_and_knows_bodiless_ones() {
        let (head, body) = read_all(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
            "POST",
        )
        .unwrap();
        assert_eq!((head.status, body.len()), (204, 0));
        let (_, body) = read_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "HEAD").unwrap();
        assert!(body.is_empty());
    }

    #[test]
    fn rejects_garbage_truncation_and_bad_lengths() {
        for raw in [
            &b"garbage\r\n\r\n"[..],
            b"",
            b"HTTP/1.1 200 OK\r\nContent-",
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
        ] {
            let err = read_all(raw, "GET").unwrap_err();
            assert_eq!(err.exit_code(), 7, "{raw:?}: {err}");
        }
    }

    /// The client reads framing by the proxy's rules (`http::framing`): a response with both
    /// Content-Length and Transfer-Encoding is refused (RFC 9112 §6.3 item 3: "ought to be
    /// handled as an error"; it used to let Transfer-Encoding win), as is a repeated-value list
    /// `5, 5` (RFC 9110 §8.6 allows refusing it); a final coding other than chunked still
    /// reads until close (§6.3 item 4).
    #[test]
    fn framing_follows_the_shared_rules() {
        for raw in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                [..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc",
        ] {
            let err = read_all(raw, "GET").unwrap_err();
            assert_eq!(err.exit_code(), 7, "{raw:?}: {err}");
        }
        let (_, body) = read_all(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nuntil close",
            "GET",
        )
        .unwrap();
        assert_eq!(body, b"until close");
    }
}
