//! Building the request head: default headers a server expects from a well-behaved client,
//! overridable (or removable, with an empty value) by `-H`.

use super::error::ClientError;
use super::url::Url;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Headers pibl-client manages itself; `-H` may not set them.
pub const RESERVED_HEADERS: [&str; 3] = ["content-length", "transfer-encoding", "connection"];

/// A request body from `-d`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodySource {
    Bytes(Vec<u8>),
    /// `-d @FILE`: read when sending, so a redirect that keeps the body can resend it.
    File(PathBuf),
}

impl BodySource {
    /// Opens the body for streaming; the length is known up front for Content-Length.
    pub fn open(&self) -> Result<OpenBody<'_>, ClientError> {
        match self {
            BodySource::Bytes(b) => Ok(OpenBody {
                length: b.len() as u64,
                reader: Box::new(b.as_slice()),
                path: None,
            }),
            BodySource::File(path) => {
                let cannot_read =
                    |e| ClientError::local_io("cannot read request body file", path, e);
                let file = File::open(path).map_err(cannot_read)?;
                let length = file.metadata().map_err(cannot_read)?.len();
                Ok(OpenBody {
                    length,
                    reader: Box::new(file.take(length)),
                    path: Some(path),
                })
            }
        }
    }
}

/// A request body ready to be streamed.
pub struct OpenBody<'a> {
    pub length: u64,
    reader: Box<dyn Read + 'a>,
    /// The `-d @FILE` path, for error messages.
    path: Option<&'a Path>,
}

impl OpenBody<'_> {
    /// Streams exactly `length` bytes to `send`.
    pub fn stream(
        mut self,
        send: &mut dyn FnMut(&[u8]) -> Result<(), ClientError>,
    ) -> Result<(), ClientError> {
        let path = self.path.unwrap_or(Path::new("-d"));
        let mut buf = vec![0u8; 64 * 1024];
        let mut sent = 0u64;
        while sent < self.length {
            let n = match self.reader.read(&mut buf) {
                Ok(0) => {
                    let shrank = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the file shrank while sending",
                    );
                    return Err(ClientError::local_io(
                        "cannot read request body file",
                        path,
                        shrank,
                    ));
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(ClientError::local_io(
                        "cannot read request body file",
                        path,
                        e,
                    ))
                }
            };
            send(&buf[..n])?;
            sent += n as u64;
        }
        Ok(())
    }
}

/// One request to send.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub url: Url,
    /// `-H` headers in order; an empty value removes a default header.
    pub headers: Vec<(String, String)>,
    pub body: Option<BodySource>,
}

impl Request {
    /// True if `-H` set the header `name` (with any value).
    pub fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// The value the request head carries for the header `name` (case-insensitive): a default
    /// (`Host`, `User-Agent`, `Accept`) or what `-H` made of it; `None` when it is not sent. The
    /// cache keys and matches stored responses on these values.
    pub fn sent_header(&self, name: &str) -> Option<String> {
        sent_headers(self, &[], None)
            .into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    }
}

/// Serialises the head. `through_proxy` selects the absolute-form target; `extra` are headers
/// added by the client (conditional requests); `body_len` is the Content-Length to announce.
pub fn encode_head(
    request: &Request,
    through_proxy: bool,
    extra: &[(String, String)],
    body_len: Option<u64>,
) -> Vec<u8> {
    let target = if through_proxy {
        request.url.absolute()
    } else {
        request.url.target().to_string()
    };
    let mut headers = sent_headers(request, extra, body_len);
    let needs_length = body_len.is_some()
        || request.method.eq_ignore_ascii_case("POST")
        || request.method.eq_ignore_ascii_case("PUT");
    if needs_length {
        headers.push(("Content-Length".into(), body_len.unwrap_or(0).to_string()));
    }
    headers.push(("Connection".into(), "close".into()));
    let mut out = format!("{} {target} HTTP/1.1\r\n", request.method);
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// The headers the request head carries, except the framing ones the client adds last
/// (`Content-Length`, `Connection`): the defaults, replaced or removed by `-H`, then `extra`.
fn sent_headers(
    request: &Request,
    extra: &[(String, String)],
    body_len: Option<u64>,
) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = vec![
        ("Host".into(), request.url.host_header()),
        (
            "User-Agent".into(),
            format!("pibl-client/{}", env!("CARGO_PKG_VERSION")),
        ),
        ("Accept".into(), "*/*".into()),
    ];
    if body_len.is_some() && !request.has_header("content-type") {
        headers.push((
            "Content-Type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
    }
    for (name, value) in request.headers.iter().chain(extra) {
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        if !value.is_empty() {
            headers.push((name.clone(), value.clone()));
        }
    }
    headers
}

/// Parses `-H 'Name: value'`, rejecting what would break the request framing.
pub fn parse_header_arg(arg: &str) -> Result<(String, String), ClientError> {
    let usage = |why: &str| ClientError::Usage(format!("invalid header '{arg}': {why}"));
    let (name, value) = arg
        .split_once(':')
        .ok_or_else(|| usage("expected 'Name: value'"))?;
    let name = name.trim();
    let value = value.trim();
    let is_token_char = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(is_token_char) {
        return Err(usage(
            "the name may only contain letters, digits and !#$%&'*+-.^_`|~",
        ));
    }
    if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(usage("the value may not contain line breaks"));
    }
    if RESERVED_HEADERS
        .iter()
        .any(|r| name.eq_ignore_ascii_case(r))
    {
        return Err(usage("pibl-client sets this header itself"));
    }
    Ok((name.to_string(), value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, headers: &[(&str, &str)]) -> Request {
        Request {
            method: method.into(),
            url: Url::parse("http://example.com:8080/p?q").unwrap(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: None,
        }
    }

    #[test]
    fn encodes_defaults_and_overrides() {
        let head = encode_head(
            &request("GET", &[("accept", "text/html"), ("User-Agent", "")]),
            false,
            &[],
            None,
        );
        let text = String::from_utf8(head).unwrap();
        assert!(text.starts_with("GET /p?q HTTP/1.1\r\nHost: example.com:8080\r\n"));
        assert!(text.contains("accept: text/html\r\n"));
        assert!(!text.contains("User-Agent"));
        assert!(!text.contains("Content-Length"));
        assert!(text.ends_with("Connection: close\r\n\r\n"));
    }

    #[test]
    fn proxy_form_and_bodies() {
        let text =
            String::from_utf8(encode_head(&request("POST", &[]), true, &[], Some(5))).unwrap();
        assert!(text.starts_with("POST http://example.com:8080/p?q HTTP/1.1\r\n"));
        assert!(text.contains("Content-Length: 5\r\n"));
        assert!(text.contains("Content-Type: application/x-www-form-urlencoded\r\n"));
        let text = String::from_utf8(encode_head(&request("PUT", &[]), false, &[], None)).unwrap();
        assert!(text.contains("Content-Length: 0\r\n"));
    }

    #[test]
    fn header_arguments_are_validated() {
        assert_eq!(
            parse_header_arg("X-A:  b c ").unwrap(),
            ("X-A".to_string(), "b c".to_string())
        );
        assert_eq!(parse_header_arg("X-Empty:").unwrap().1, "");
        for bad in [
            "NoColon",
            ": v",
            "Bad Name: v",
            "Content-Length: 3",
            "connection: keep-alive",
        ] {
            assert!(parse_header_arg(bad).is_err(), "{bad}");
        }
    }
}
