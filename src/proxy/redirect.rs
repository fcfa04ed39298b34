//! `redirect_https on`: a plain listener answers every request with `308 Permanent Redirect` to
//! the same URL on the TLS listener, instead of proxying it. One hook in `read_request_head`
//! (after the head is parsed) leads here.

use std::io::Write;

use super::exchange::Exchange;
use super::session::{Conn, Ctx, State, Step};
use crate::http::response::reason_phrase;
use crate::http::target::split_absolute;

impl Conn {
    /// Queues the 308 for the request just parsed (`self.line`) and sends it like any response
    /// pibl makes (`SendError`: logged when sent; closes when the request body was not read).
    pub(super) fn redirect_to_https(
        &mut self,
        x: &mut Exchange,
        ctx: &mut Ctx<'_>,
        port: u16,
    ) -> Step {
        let host = host_without_port(&self.line.host);
        if host.is_empty() {
            return self.fail(Some(x), ctx, 400, "no Host to redirect to https", true);
        }
        let path = match split_absolute(&self.line.target) {
            Some(url) if url.rest.starts_with('/') => url.rest,
            Some(_) => "/",
            None if self.line.target.starts_with('/') => self.line.target.as_str(),
            None => "/",
        };
        let close = super::h1::error_closes(Some(x), false, ctx.stopping);
        let out = &mut self.to_client.bytes;
        out.clear();
        let _ = write!(
            out,
            "HTTP/1.1 308 {}\r\nDate: {}\r\nServer: pibl\r\nLocation: https://{host}",
            reason_phrase(308),
            ctx.clock.http_date()
        );
        if port != 443 {
            let _ = write!(out, ":{port}");
        }
        let _ = write!(out, "{path}\r\nContent-Length: 0\r\n");
        if close {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        self.to_client.pos = 0;
        self.enter(State::SendError { close, status: 308 }, ctx)
    }
}

/// `example.com` from `example.com:8080`, `[::1]` from `[::1]:8080`.
fn host_without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::host_without_port;

    #[test]
    fn the_port_is_dropped_from_the_host() {
        assert_eq!(host_without_port("example.com:8080"), "example.com");
        assert_eq!(host_without_port("example.com"), "example.com");
        assert_eq!(host_without_port("[::1]:8080"), "[::1]");
        assert_eq!(host_without_port("127.0.0.1:80"), "127.0.0.1");
    }
}
