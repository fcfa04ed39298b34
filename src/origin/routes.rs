//! What each request gets: `/health`, `/api/info`, `/echo`, and static files for the rest.
//! Responses are written into the connection's output buffer; a file body is handed back to be
//! sent after the head (one `writev`), not copied.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use super::head::RequestHead;
use super::path::{sanitize, target_path};
use super::site::{Files, Missing, StaticFile};
use super::Shared;
use crate::http::json_escape;
use crate::http::response::reason_phrase;

const ALLOW_READ: &str = "GET, HEAD";
const ALLOW_POST: &str = "POST";

/// A response head (and small body) being written into `out`, with what every response carries.
pub struct Reply<'a> {
    pub out: &'a mut Vec<u8>,
    pub date: &'a str,
    pub name: &'a str,
    /// Send `Connection: close` and close after this response.
    pub close: bool,
    /// An HTTP/1.0 client asked for keep-alive, so say `Connection: keep-alive`.
    pub keep_alive_10: bool,
    /// HEAD: headers as for GET, no body.
    pub head_only: bool,
}

impl Reply<'_> {
    /// Status line and the headers every response has.
    fn start(&mut self, status: u16) {
        let out = &mut *self.out;
        let _ = write!(
            out,
            "HTTP/1.1 {status} {}\r\nDate: {}\r\nServer: pibl-origin\r\nX-Served-By: {}\r\n",
            reason_phrase(status),
            self.date,
            self.name
        );
    }

    /// Connection header and the blank line.
    fn end_head(&mut self) {
        if self.close {
            self.out.extend_from_slice(b"Connection: close\r\n");
        } else if self.keep_alive_10 {
            self.out.extend_from_slice(b"Connection: keep-alive\r\n");
        }
        self.out.extend_from_slice(b"\r\n");
    }

    /// A complete response with a body held in memory; `extra` is preformatted header lines.
    pub fn payload(&mut self, status: u16, content_type: &str, extra: &str, body: &[u8]) {
        self.start(status);
        let _ = write!(
            self.out,
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n{extra}",
            body.len()
        );
        self.end_head();
        if !self.head_only {
            self.out.extend_from_slice(body);
        }
    }

    /// A short plain-text response, used for errors.
    pub fn text(&mut self, status: u16, extra: &str, detail: &str) {
        let body = format!("{status} {}: {detail}\n", reason_phrase(status));
        self.payload(status, "text/plain; charset=utf-8", extra, body.as_bytes());
    }

    fn not_allowed(&mut self, allow: &str) {
        self.text(405, &format!("Allow: {allow}\r\n"), &format!("use {allow}"));
    }

    /// A file's head; returns the file when its body should follow.
    fn file(&mut self, file: Arc<StaticFile>, not_modified: bool) -> Option<Arc<StaticFile>> {
        if not_modified {
            self.start(304);
            self.out
                .extend_from_slice(file.validator_headers.as_bytes());
            self.end_head();
            return None;
        }
        self.start(200);
        self.out.extend_from_slice(file.entity_headers.as_bytes());
        self.out
            .extend_from_slice(file.validator_headers.as_bytes());
        self.end_head();
        (!self.head_only).then_some(file)
    }
}

/// Per-worker state the routes use.
pub struct RouteCtx<'a> {
    pub shared: &'a Shared,
    pub files: &'a mut Files,
    pub now: Instant,
    /// Reused for the sanitised file name.
    pub path: &'a mut String,
}

/// Answers one request. `body` is the request body (for `/echo`). Returns a file whose bytes
/// must be sent after what was written to the reply.
pub fn respond(
    req: &RequestHead,
    body: &[u8],
    reply: &mut Reply<'_>,
    ctx: &mut RouteCtx<'_>,
) -> Option<Arc<StaticFile>> {
    let path = target_path(&req.target);
    match path {
        "/health" if req.is_get_or_head() => reply.payload(
            200,
            "text/plain; charset=utf-8",
            "Cache-Control: no-store\r\n",
            b"ok",
        ),
        "/api/info" if req.is_get_or_head() => api_info(reply, ctx.shared),
        "/echo" if req.method == "POST" => echo(req, body, reply),
        "/health" | "/api/info" => reply.not_allowed(ALLOW_READ),
        "/echo" => reply.not_allowed(ALLOW_POST),
        _ => return static_file(req, path, reply, ctx),
    }
    None
}

fn static_file(
    req: &RequestHead,
    path: &str,
    reply: &mut Reply<'_>,
    ctx: &mut RouteCtx<'_>,
) -> Option<Arc<StaticFile>> {
    if let Err(e) = sanitize(path, ctx.path) {
        reply.text(e.status(), "", "this path names no file of the site");
        return None;
    }
    match ctx.files.get(ctx.path, ctx.now) {
        Err(Missing::NotFound) => reply.text(404, "", "no such file"),
        Err(Missing::Forbidden) => reply.text(403, "", "not served"),
        Ok(_) if !req.is_get_or_head() => reply.not_allowed(ALLOW_READ),
        Ok(file) => {
            let fresh = file.not_modified(
                req.if_none_match.as_deref(),
                req.if_modified_since.as_deref(),
            );
            return reply.file(file, fresh);
        }
    }
    None
}

fn api_info(reply: &mut Reply<'_>, shared: &Shared) {
    let unix = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let body = format!(
        "{{\"server\":\"{}\",\"time\":\"{}\",\"unix_time\":{unix},\"requests\":{},\"pid\":{}}}\n",
        json_escape(reply.name),
        reply.date,
        shared.requests.load(Ordering::Relaxed),
        std::process::id()
    );
    reply.payload(
        200,
        "application/json",
        "Cache-Control: no-store\r\n",
        body.as_bytes(),
    );
}

/// Echoes the body with the request's Content-Type, except that an HTML form post is shown as
/// text so a browser displays it instead of downloading it.
fn echo(req: &RequestHead, body: &[u8], reply: &mut Reply<'_>) {
    let received = if req.content_type.is_empty() {
        "application/octet-stream"
    } else {
        req.content_type.as_str()
    };
    let is_form = received.split(';').next().is_some_and(|t| {
        t.trim()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    });
    let shown = if is_form {
        "text/plain; charset=utf-8"
    } else {
        received
    };
    let extra = format!(
        "X-Echo-Content-Type: {received}\r\nX-Echo-Version: {}\r\nCache-Control: no-store\r\n",
        req.version.as_str()
    );
    reply.payload(200, shown, &extra, body);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_heads_carry_the_standard_headers() {
        let mut out = Vec::new();
        let mut r = Reply {
            out: &mut out,
            date: "Mon, 23 Nov 2026 19:04:10 GMT",
            name: "o1",
            close: true,
            keep_alive_10: false,
            head_only: true,
        };
        r.not_allowed(ALLOW_READ);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
        for line in [
            "Allow: GET, HEAD",
            "X-Served-By: o1",
            "Server: pibl-origin",
            "Connection: close",
        ] {
            assert!(text.contains(line), "{line}");
        }
        assert!(text.ends_with("\r\n\r\n"), "HEAD has no body");

        let mut out = Vec::new();
        let mut r = Reply {
            out: &mut out,
            date: "Mon, 23 Nov 2026 19:04:10 GMT",
            name: "o1",
            close: false,
            keep_alive_10: true,
            head_only: false,
        };
        r.text(403, "", "outside the root");
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 403 Forbidden\r\n"));
        assert!(text.contains("Connection: keep-alive\r\n"));
        assert!(text.ends_with("\r\n\r\n403 Forbidden: outside the root\n"));
    }
}
