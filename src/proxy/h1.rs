//! The HTTP/1 client codec: where an exchange's response becomes bytes for an HTTP/1 client.
//!
//! The exchange (`relay.rs`) delivers its response as events, method calls on [`H1Codec`]:
//! the backend's head ([`H1Codec::head`]), body bytes ([`H1Codec::body`]), queued bytes pushed
//! out ([`H1Codec::push`]), and the question whether all of it has really left
//! ([`H1Codec::all_out`]); the exchange never touches the client's transport or output queue
//! itself. The codec owns the client-side decisions: which framing and keep-alive the client
//! gets ([`client_side`], turned into the client's head by `response::parse`; a chunked body
//! for an HTTP/1.0 client is de-chunked by the exchange's `BodyRelay` as the head said), and
//! writing through the [`ClientTransport`]. An HTTP/2 codec (issue 13) would offer the same
//! calls per stream.
//!
//! The codec is a few borrowed fields of the session, built for the call: no allocation, and
//! a head and body still leave in one vectored write.

use super::exchange::Exchange;
use super::io::Pending;
use super::transport::ClientTransport;
use crate::http::head::ResponseHead;
use crate::http::request::{HeadLimits, Method};
use crate::http::response::{self, BadResponse, ClientSide, ResponseInfo};

/// The client connection is gone: nothing more can be delivered on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ClientGone;

/// What the client accepts, which shapes the head written for it: its version, whether the
/// body is suppressed (HEAD), whether the connection may stay open (the client asked, its
/// request was read whole, and the worker is not stopping), and whether it asked to upgrade.
pub(super) fn client_side(x: &Exchange, stopping: bool) -> ClientSide {
    ClientSide {
        version: x.info.version,
        head_request: x.info.method == Method::Head,
        keep_alive: x.info.keep_alive && x.req_body.is_complete() && !stopping,
        upgrade: x.info.upgrade,
    }
}

/// A response pibl makes (`status`, with `detail` in its body) must close the connection:
/// when the caller says so (`asked`), when the worker is stopping, or when there is no request
/// to keep alive after (none parsed, the client did not ask, or its body was not read: its
/// bytes would be taken for the next request).
pub(super) fn error_closes(x: Option<&Exchange>, asked: bool, stopping: bool) -> bool {
    asked || stopping || x.is_none_or(|x| !x.info.keep_alive || !x.req_body.is_complete())
}

/// Queues a response pibl makes, the error event of an exchange (or of a request refused
/// before it became one), in place of anything queued; the session's `SendError` state
/// writes it out.
pub(super) fn queue_error(
    queued: &mut Pending,
    status: u16,
    detail: &str,
    close: bool,
    date: &str,
) {
    response::write_error(&mut queued.bytes, status, detail, close, date);
    queued.pos = 0;
}

/// The HTTP/1 client side of one exchange's response, borrowed from the session for a call.
pub(super) struct H1Codec<'a> {
    client: &'a mut ClientTransport,
    /// Bytes queued for the client ahead of any body: a response head.
    queued: &'a mut Pending,
    /// Bytes written to the client for this exchange (what the access log reports).
    sent: &'a mut u64,
}

impl<'a> H1Codec<'a> {
    #[inline]
    pub(super) fn new(
        client: &'a mut ClientTransport,
        queued: &'a mut Pending,
        sent: &'a mut u64,
    ) -> H1Codec<'a> {
        H1Codec {
            client,
            queued,
            sent,
        }
    }

    /// A response head from the backend, at the start of `upstream`: parsed, and the client's
    /// head queued in its place (an interim 1xx too; the final head follows it). `Ok(None)`
    /// while the head is incomplete.
    #[inline]
    pub(super) fn head(
        &mut self,
        upstream: &[u8],
        limits: HeadLimits,
        side: ClientSide,
        then: &mut dyn FnMut(&ResponseHead<'_>, &ResponseInfo, &mut Vec<u8>),
    ) -> Result<Option<ResponseInfo>, BadResponse> {
        let parsed = response::parse_with(upstream, limits, side, &mut self.queued.bytes, then);
        if let Ok(Some(_)) = parsed {
            self.queued.pos = 0;
        }
        parsed
    }

    /// Drops the queued head: another response (a stored one, or one pibl makes) replaces it.
    #[inline]
    pub(super) fn discard(&mut self) {
        self.queued.clear();
    }

    /// Nothing is queued ahead of the body.
    #[inline]
    pub(super) fn nothing_queued(&self) -> bool {
        self.queued.is_empty()
    }

    /// Body bytes, written after whatever is queued until done or the client would block.
    /// Returns how many of `bytes` were taken; the rest is offered again on writability.
    #[inline]
    pub(super) fn body(&mut self, bytes: &[u8]) -> Result<usize, ClientGone> {
        match self.client.flush(self.queued, bytes) {
            Ok(w) => {
                *self.sent += w.total as u64;
                Ok(w.body)
            }
            Err(_) => Err(ClientGone),
        }
    }

    /// Writes out what is queued (an interim head) with no body. True when it has all gone.
    #[inline]
    pub(super) fn push(&mut self) -> Result<bool, ClientGone> {
        self.body(&[])?;
        Ok(self.queued.is_empty())
    }

    /// Everything delivered so far has really left: with the body complete, the response
    /// has ended.
    #[inline]
    pub(super) fn all_out(&self) -> bool {
        self.client.all_out(self.queued)
    }
}

#[cfg(test)]
mod tests {
    //! The codec turning response events into client bytes, against a fake transport: the
    //! head the client gets, and the body as the exchange's `BodyRelay` frames it for that
    //! client, for each framing.

    use super::*;
    use crate::buffer::Buffer;
    use crate::http::body::BodyRelay;
    use crate::http::Version;

    const LIMITS: HeadLimits = HeadLimits {
        max_header_bytes: 8192,
        max_headers: 64,
    };

    fn side(version: Version, head_request: bool, keep_alive: bool) -> ClientSide {
        ClientSide {
            version,
            head_request,
            keep_alive,
            upgrade: false,
        }
    }

    /// What the client receives when the backend sends `upstream` (head and body together)
    /// and the exchange relays it through the codec: (client bytes, the parsed head, the
    /// response ended cleanly).
    fn deliver(
        upstream: &[u8],
        client: ClientSide,
        backend_closes: bool,
    ) -> (String, ResponseInfo, bool) {
        let mut transport = ClientTransport::fake();
        transport.on_event(false, true, false);
        let mut queued = Pending::default();
        let mut sent = 0u64;
        let mut codec = H1Codec::new(&mut transport, &mut queued, &mut sent);
        let info = codec
            .head(upstream, LIMITS, client, &mut |_, _, _| {})
            .expect("a valid head")
            .expect("a complete head");
        let mut buf = Buffer::with_capacity(upstream.len().max(16));
        buf.extend(&upstream[info.head_len..]);
        let mut relay = BodyRelay::new(info.body, info.dechunk);
        relay.scan(&mut buf).expect("a well-framed body");
        if backend_closes {
            relay.on_eof();
        }
        let ready = relay.ready();
        let taken = codec
            .body(&buf.data()[..ready])
            .expect("the client is there");
        relay.sent(taken);
        let ended = codec.all_out() && relay.is_complete();
        let total = sent;
        let out = String::from_utf8_lossy(&transport.peer().output).into_owned();
        assert_eq!(total, out.len() as u64, "bytes counted are bytes written");
        (out, info, ended)
    }

    #[test]
    fn a_content_length_body_follows_the_head_and_ends_the_response() {
        let (out, info, ended) = deliver(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            side(Version::Http11, false, true),
            false,
        );
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(out.contains("Content-Length: 5\r\n"), "{out}");
        assert!(out.ends_with("\r\n\r\nhello"), "{out}");
        assert!(info.client_keep_alive);
        assert!(ended);
    }

    #[test]
    fn a_chunked_body_passes_through_to_an_http11_client() {
        let body = "5\r\nhello\r\n0\r\n\r\n";
        let (out, info, ended) = deliver(
            format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{body}").as_bytes(),
            side(Version::Http11, false, true),
            false,
        );
        assert!(!info.dechunk);
        assert!(out.contains("Transfer-Encoding: chunked\r\n"), "{out}");
        assert!(out.ends_with(&format!("\r\n\r\n{body}")), "{out}");
        assert!(info.client_keep_alive);
        assert!(ended);
    }

    #[test]
    fn a_chunked_body_is_dechunked_and_close_delimited_for_an_http10_client() {
        let (out, info, ended) = deliver(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            side(Version::Http10, false, false),
            false,
        );
        assert!(info.dechunk);
        assert!(!out.contains("chunked"), "{out}");
        assert!(out.ends_with("\r\n\r\nhello"), "{out}");
        assert!(
            !info.client_keep_alive,
            "the end of the body is the end of the connection"
        );
        assert!(ended);
    }

    #[test]
    fn a_close_delimited_body_ends_when_the_backend_closes() {
        let (out, info, ended) = deliver(
            b"HTTP/1.0 200 OK\r\n\r\nuntil the end",
            side(Version::Http10, false, false),
            true,
        );
        assert!(out.ends_with("\r\n\r\nuntil the end"), "{out}");
        assert!(!info.client_keep_alive);
        assert!(!info.upstream_reusable);
        assert!(ended);
    }

    #[test]
    fn a_head_response_has_no_body_whatever_it_declares() {
        let (out, info, ended) = deliver(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
            side(Version::Http11, true, true),
            false,
        );
        assert!(out.contains("Content-Length: 1000\r\n"), "{out}");
        assert!(out.ends_with("\r\n\r\n"), "{out}");
        assert!(info.client_keep_alive);
        assert!(ended, "nothing follows the head of a response to HEAD");
    }

    #[test]
    fn an_interim_head_is_pushed_and_replaced_by_the_final_one() {
        let mut transport = ClientTransport::fake();
        transport.on_event(false, true, false);
        let mut queued = Pending::default();
        let mut sent = 0u64;
        let mut codec = H1Codec::new(&mut transport, &mut queued, &mut sent);
        let client = side(Version::Http11, false, true);
        let interim = codec
            .head(
                b"HTTP/1.1 100 Continue\r\n\r\n",
                LIMITS,
                client,
                &mut |_, _, _| {},
            )
            .expect("valid")
            .expect("complete");
        assert!(interim.is_interim());
        assert_eq!(codec.push(), Ok(true));
        let last = codec
            .head(
                b"HTTP/1.1 204 No Content\r\n\r\n",
                LIMITS,
                client,
                &mut |_, _, _| {},
            )
            .expect("valid")
            .expect("complete");
        assert_eq!(last.status, 204);
        assert_eq!(codec.push(), Ok(true));
        assert!(codec.all_out());
        let out = String::from_utf8_lossy(&transport.peer().output).into_owned();
        assert!(out.starts_with("HTTP/1.1 100 Continue\r\n"), "{out}");
        assert!(out.contains("\r\n\r\nHTTP/1.1 204 No Content\r\n"), "{out}");
    }

    #[test]
    fn a_client_that_takes_part_gets_the_rest_later() {
        let mut transport = ClientTransport::fake();
        transport.on_event(false, true, false);
        transport.peer().room = 4;
        let mut queued = Pending::default();
        let mut sent = 0u64;
        let mut codec = H1Codec::new(&mut transport, &mut queued, &mut sent);
        codec
            .head(
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n",
                LIMITS,
                side(Version::Http11, false, true),
                &mut |_, _, _| {},
            )
            .expect("valid")
            .expect("complete");
        assert_eq!(codec.body(b"ok"), Ok(0), "the head goes first");
        assert!(!codec.all_out());
        transport.peer().room = usize::MAX;
        transport.on_event(false, true, false);
        let mut codec = H1Codec::new(&mut transport, &mut queued, &mut sent);
        assert_eq!(codec.body(b"ok"), Ok(2));
        assert!(codec.all_out());
        let out = String::from_utf8_lossy(&transport.peer().output).into_owned();
        assert!(out.ends_with("\r\n\r\nok"), "{out}");
    }
}
