//! The HTTP/1 client codec: where an exchange's response becomes bytes for an HTTP/1 client.
//!
//! The exchange (`relay.rs`, and a cache hit in `cache_states.rs`) delivers its response as events,
//! method calls on [`H1Codec`]: the backend's head ([`H1Codec::head`]) or a stored one
//! ([`H1Codec::stored_head`]), how its body comes ([`H1Codec::begin_body`]), body bytes
//! ([`H1Codec::body`]), the end of the body ([`H1Codec::end`]), queued bytes pushed out
//! ([`H1Codec::push`]), and an error ([`queue_error`]); the exchange never touches the client's
//! transport or output queue itself. The codec owns the client-side decisions: which framing
//! and keep-alive the client gets ([`client_side`], turned into the client's head by
//! `response::parse`), and framing the body for it ([`ClientFraming`]). The exchange hands over
//! plain data (its `BodyRelay` cut the backend's chunked framing out) whenever something needs
//! the data itself (the cache storing it; a compressor or an HTTP/2 codec later): a chunked
//! body is then chunked again here, each piece of data offered one chunk (the backend's chunk
//! extensions and trailers are dropped). Otherwise a Content-Length or close-delimited body,
//! and a chunked one for an HTTP/1.1 client, go out byte for byte as the backend sent them; an
//! HTTP/1.0 client gets a chunked body de-chunked and close-delimited; HEAD has no body. An
//! HTTP/2 codec (issue 13) or a compressor (issue 15) would take the same calls.
//!
//! The codec is a few borrowed fields of the session, built for the call: no allocation, and
//! a head and body still leave in one vectored write (a chunk's size line is queued ahead of
//! its data the same way).

use std::io::Write;

use super::cached::CacheLabel;
use super::exchange::Exchange;
use super::io::Pending;
use super::transport::ClientTransport;
use crate::cache::CacheEntry;
use crate::http::body::BodyKind;
use crate::http::head::ResponseHead;
use crate::http::request::{HeadLimits, Method};
use crate::http::response::{self, reason_phrase, BadResponse, ClientSide, ResponseInfo};
use crate::http::{put_header, put_header_decimal, put_status_line, Version};

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
/// writes it out. `extra`: header lines (each ending in CRLF), e.g. `Retry-After`; `page`: an
/// `error_page` file to send as the body.
pub(super) fn queue_error(
    queued: &mut Pending,
    status: u16,
    detail: &str,
    close: bool,
    date: &str,
    extra: &str,
    page: Option<&[u8]>,
) {
    response::write_error_with(&mut queued.bytes, status, detail, close, date, extra, page);
    queued.pos = 0;
}

/// Cuts a queued response down to its head (the bytes up to and including the blank line), for
/// a response to HEAD.
pub(super) fn drop_body(queued: &mut Pending) {
    let end = head_len(queued);
    queued.bytes.truncate(end);
}

/// The length of the head of a queued response (all of it when it has no blank line).
pub(super) fn head_len(queued: &Pending) -> usize {
    memchr::memmem::find(&queued.bytes, b"\r\n\r\n").map_or(queued.bytes.len(), |end| end + 4)
}

/// How the body the client gets is framed on the wire, and how far into that framing the
/// response is: the codec's one piece of state between events, kept by the session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum ClientFraming {
    /// The bytes go out as they are: a Content-Length body, a close-delimited one (HTTP/1.0
    /// clients, backends that close), none at all (HEAD, 204, 304, a cache hit's 304), or a
    /// chunked body whose data nothing needs (see [`H1Codec::begin_body`]): the backend's
    /// chunks, passed through byte for byte.
    #[default]
    AsIs,
    /// Chunked: `left` bytes of the chunk being written are still to go; `open`: a chunk was
    /// begun whose closing CRLF is owed (queued with the next size line or the last chunk).
    Chunked { left: usize, open: bool },
    /// The last chunk is queued: the body has ended.
    ChunkedEnded,
}

/// The HTTP/1 client side of one exchange's response, borrowed from the session for a call.
pub(super) struct H1Codec<'a> {
    client: &'a mut ClientTransport,
    /// Bytes queued for the client ahead of body data: a response head, a chunk's size line.
    queued: &'a mut Pending,
    /// How the body is framed for the client, and where it is.
    framing: &'a mut ClientFraming,
    /// Bytes written to the client for this exchange (what the access log reports).
    sent: &'a mut u64,
}

impl<'a> H1Codec<'a> {
    #[inline]
    pub(super) fn new(
        client: &'a mut ClientTransport,
        queued: &'a mut Pending,
        framing: &'a mut ClientFraming,
        sent: &'a mut u64,
    ) -> H1Codec<'a> {
        H1Codec {
            client,
            queued,
            framing,
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
        if let Ok(Some(info)) = &parsed {
            self.queued.pos = 0;
            if info.status >= 200 {
                self.add_hsts();
            }
        }
        parsed
    }

    /// The body of the final response (`info`, from [`Self::head`]) begins. `plain`: the
    /// exchange must hand over plain data because something needs the data itself (today the
    /// cache storing it; a compressor or an HTTP/2 codec later). A chunked body is then chunked
    /// again here; otherwise, for an HTTP/1.1 client, the backend's chunks pass through byte
    /// for byte, which costs nothing (de-chunking moves every buffered byte after each chunk's
    /// framing). Returns whether the exchange de-chunks the body (`BodyRelay`'s `dechunk`).
    #[inline]
    pub(super) fn begin_body(&mut self, info: &ResponseInfo, plain: bool) -> bool {
        let chunked = info.body == BodyKind::Chunked;
        *self.framing = if chunked && plain && !info.dechunk {
            ClientFraming::Chunked {
                left: 0,
                open: false,
            }
        } else {
            ClientFraming::AsIs
        };
        chunked && (plain || info.dechunk)
    }

    /// The body of a compressed response begins (its head rewritten by `CompressedHead`):
    /// the compressor's output is chunked for an HTTP/1.1 client and goes to the close for an
    /// HTTP/1.0 one. Returns whether the exchange de-chunks the backend's body: the compressor
    /// takes plain data.
    #[inline]
    pub(super) fn begin_compressed_body(&mut self, info: &ResponseInfo, client: Version) -> bool {
        *self.framing = if client == Version::Http11 {
            ClientFraming::Chunked {
                left: 0,
                open: false,
            }
        } else {
            ClientFraming::AsIs
        };
        info.body == BodyKind::Chunked
    }

    /// The head of a response served from the cache (`resp`, from `cached::hit_response`),
    /// written from the entry's stored head fields and queued ahead of its body. The body, if
    /// any, is the stored one, of its known length: its data goes out as it is.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(super) fn stored_head(
        &mut self,
        entry: &CacheEntry,
        resp: &ResponseInfo,
        label: CacheLabel,
        version: Version,
        cdn_cache_control_pass: bool,
        now: u64,
    ) {
        let out = &mut self.queued.bytes;
        out.clear();
        put_status_line(out, resp.status, reason_phrase(resp.status).as_bytes());
        out.extend_from_slice(entry.client_headers(cdn_cache_control_pass));
        put_header_decimal(out, "Age", entry.age(now));
        // A head-only entry's stored headers carry its Content-Length.
        if let BodyKind::Length(n) = resp.body {
            put_header_decimal(out, "Content-Length", n);
        }
        put_header(out, "Via", b"1.1 pibl");
        put_header(out, "X-Cache", label.as_str().as_bytes());
        if !resp.client_keep_alive {
            put_header(out, "Connection", b"close");
        } else if version == Version::Http10 {
            put_header(out, "Connection", b"keep-alive");
        }
        out.extend_from_slice(b"\r\n");
        self.queued.pos = 0;
        *self.framing = ClientFraming::AsIs;
        self.add_hsts();
    }

    /// `hsts SECONDS` on a TLS connection: Strict-Transport-Security joins the final head just
    /// queued (proxied and cached responses; not the ones pibl makes, as nginx's `add_header`).
    #[inline]
    fn add_hsts(&mut self) {
        let Some(max_age) = self.client.hsts() else {
            return;
        };
        let out = &mut self.queued.bytes;
        if out.ends_with(b"\r\n\r\n") {
            out.truncate(out.len() - 2);
            // Into the head buffer: no allocation.
            let _ = write!(out, "Strict-Transport-Security: max-age={max_age}\r\n\r\n");
        }
    }

    /// Drops the queued head: another response (a stored one, or one pibl makes) replaces it.
    #[inline]
    pub(super) fn discard(&mut self) {
        self.queued.clear();
    }

    /// The length of what is queued: a head just parsed and written, whole.
    #[inline]
    pub(super) fn queued_len(&self) -> u64 {
        self.queued.bytes.len() as u64
    }

    /// Nothing is queued ahead of the body.
    #[inline]
    pub(super) fn nothing_queued(&self) -> bool {
        self.queued.is_empty()
    }

    /// Body data (plain bytes, not framed), written after whatever is queued until done or
    /// the client would block. Returns how many of `data` were taken; the rest is offered
    /// again (at the start of `data`) on writability.
    #[inline]
    pub(super) fn body(&mut self, data: &[u8]) -> Result<usize, ClientGone> {
        let offered = match *self.framing {
            ClientFraming::AsIs => data,
            ClientFraming::Chunked { left, open } => {
                if left == 0 && !data.is_empty() {
                    self.queue_framing(open, data.len(), b"\r\n");
                    *self.framing = ClientFraming::Chunked {
                        left: data.len(),
                        open: true,
                    };
                }
                &data[..data.len().min(self.chunk_left())]
            }
            ClientFraming::ChunkedEnded => &[],
        };
        let taken = self.write(offered)?;
        if let ClientFraming::Chunked { left, .. } = self.framing {
            *left -= taken;
        }
        Ok(taken)
    }

    /// The body has ended and all of its data was taken: the framing's end is queued (the
    /// last chunk) and everything written. True when all of the response has really left.
    #[inline]
    pub(super) fn end(&mut self) -> Result<bool, ClientGone> {
        if let ClientFraming::Chunked { left: 0, open } = *self.framing {
            self.queue_framing(open, 0, b"\r\n\r\n");
            *self.framing = ClientFraming::ChunkedEnded;
        }
        if !self.queued.is_empty() {
            self.write(&[])?;
        }
        Ok(self.all_out())
    }

    /// Bytes of the chunk being written still to go.
    fn chunk_left(&self) -> usize {
        match *self.framing {
            ClientFraming::Chunked { left, .. } => left,
            _ => 0,
        }
    }

    /// Queues a chunk's size line (`size` in hex, then `after`), after the CRLF that closes
    /// the chunk before it when one is `open`. Bytes already written are dropped from the
    /// queue first, so it never grows with the body.
    fn queue_framing(&mut self, open: bool, size: usize, after: &[u8]) {
        if self.queued.is_empty() {
            self.queued.clear();
        }
        let out = &mut self.queued.bytes;
        if open {
            out.extend_from_slice(b"\r\n");
        }
        put_hex(out, size);
        out.extend_from_slice(after);
    }

    /// Writes what is queued, then `bytes`, in one vectored write per attempt.
    #[inline]
    fn write(&mut self, bytes: &[u8]) -> Result<usize, ClientGone> {
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
        self.write(&[])?;
        Ok(self.queued.is_empty())
    }

    /// The client's transport, for a body whose rest may bypass the codec (splice, Linux):
    /// its data goes out as it is (no framing to add) and nothing is queued ahead of it. The
    /// transport itself still says whether its raw socket may be used (`splice_fd`).
    #[cfg(target_os = "linux")]
    #[inline]
    pub(super) fn splice_client(&self) -> Option<&ClientTransport> {
        (*self.framing == ClientFraming::AsIs && self.queued.is_empty()).then_some(&*self.client)
    }

    /// Everything delivered so far has really left: with the body complete, the response
    /// has ended.
    #[inline]
    pub(super) fn all_out(&self) -> bool {
        self.client.all_out(self.queued)
    }
}

/// Appends `n` in lower-case hex, as a chunk-size line writes it.
fn put_hex(out: &mut Vec<u8>, n: usize) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 2 * std::mem::size_of::<usize>()];
    let mut at = digits.len();
    let mut rest = n;
    loop {
        at -= 1;
        digits[at] = DIGITS[rest & 0xf];
        rest >>= 4;
        if rest == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

#[cfg(test)]
mod tests {
    //! The codec turning response events into client bytes, against a fake transport: the
    //! head the client gets, and the body, which the exchange's `BodyRelay` hands over as
    //! plain data and the codec frames for that client, for each framing.

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
        deliver_as(upstream, client, backend_closes, false)
    }

    /// [`deliver`], with the exchange handing over plain data when `plain` (as it does when
    /// the cache stores the response).
    fn deliver_as(
        upstream: &[u8],
        client: ClientSide,
        backend_closes: bool,
        plain: bool,
    ) -> (String, ResponseInfo, bool) {
        let mut transport = ClientTransport::fake();
        transport.on_event(false, true, false);
        let mut queued = Pending::default();
        let mut framing = ClientFraming::AsIs;
        let mut sent = 0u64;
        let mut codec = H1Codec::new(&mut transport, &mut queued, &mut framing, &mut sent);
        let info = codec
            .head(upstream, LIMITS, client, &mut |_, _, _| {})
            .expect("a valid head")
            .expect("a complete head");
        let mut buf = Buffer::with_capacity(upstream.len().max(16));
        buf.extend(&upstream[info.head_len..]);
        let dechunk = codec.begin_body(&info, plain);
        let mut relay = BodyRelay::new(info.body, dechunk);
        relay.scan(&mut buf).expect("a well-framed body");
        if backend_closes {
            relay.on_eof();
        }
        let ready = relay.ready();
        let taken = codec
            .body(&buf.data()[..ready])
            .expect("the client is there");
        relay.sent(taken);
        let ended = relay.is_complete() && codec.end().expect("the client is there");
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
        let mut framing = ClientFraming::AsIs;
        let mut sent = 0u64;
        let mut codec = H1Codec::new(&mut transport, &mut queued, &mut framing, &mut sent);
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
        let mut framing = ClientFraming::AsIs;
        let mut sent = 0u64;
        let mut codec = H1Codec::new(&mut transport, &mut queued, &mut framing, &mut sent);
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
        let mut codec = H1Codec::new(&mut transport, &mut queued, &mut framing, &mut sent);
        assert_eq!(codec.body(b"ok"), Ok(2));
        assert!(codec.all_out());
        let out = String::from_utf8_lossy(&transport.peer().output).into_owned();
        assert!(out.ends_with("\r\n\r\nok"), "{out}");
    }

    /// Unless plain data is needed, the backend's chunks reach an HTTP/1.1 client byte for
    /// byte, extensions and trailers included.
    #[test]
    fn a_chunked_body_nothing_reads_passes_through_byte_for_byte() {
        let body = "3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n";
        let (out, _, ended) = deliver(
            format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{body}").as_bytes(),
            side(Version::Http11, false, true),
            false,
        );
        assert!(out.ends_with(&format!("\r\n\r\n{body}")), "{out}");
        assert!(ended);
    }

    #[test]
    fn a_chunked_body_is_chunked_again_without_the_backends_extensions_and_trailers() {
        let (out, info, ended) = deliver_as(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
              3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n",
            side(Version::Http11, false, true),
            false,
            true,
        );
        assert!(!info.dechunk);
        assert!(out.contains("Transfer-Encoding: chunked\r\n"), "{out}");
        assert!(out.ends_with("\r\n\r\n5\r\nabcde\r\n0\r\n\r\n"), "{out}");
        assert!(ended);
    }

    /// Data offered in pieces to a client that takes a few bytes at a time: each piece is one
    /// chunk, a chunk cut short is finished before the next begins, and the last chunk follows
    /// the data once the body has ended.
    #[test]
    fn chunks_survive_partial_writes() {
        let mut transport = ClientTransport::fake();
        transport.on_event(false, true, false);
        let mut queued = Pending::default();
        let mut framing = ClientFraming::AsIs;
        let mut sent = 0u64;
        let mut codec = H1Codec::new(&mut transport, &mut queued, &mut framing, &mut sent);
        codec
            .head(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                LIMITS,
                side(Version::Http11, false, true),
                &mut |_, _, _| {},
            )
            .expect("valid")
            .expect("complete");
        let info = ResponseInfo {
            status: 200,
            body: BodyKind::Chunked,
            dechunk: false,
            upstream_reusable: true,
            client_keep_alive: true,
            head_len: 0,
        };
        assert!(codec.begin_body(&info, true), "plain data: de-chunked");
        let head_len = queued.bytes.len();
        // The pieces the exchange has buffered, and what is left of them to offer.
        let mut pending: Vec<u8> = Vec::new();
        let mut ended = false;
        for (piece, last) in [(&b"hello "[..], false), (b"chunked", false), (b"", true)] {
            pending.extend_from_slice(piece);
            loop {
                transport.peer().room = 3;
                transport.on_event(false, true, false);
                let mut codec = H1Codec::new(&mut transport, &mut queued, &mut framing, &mut sent);
                let taken = codec.body(&pending).expect("the client is there");
                pending.drain(..taken);
                if pending.is_empty() && last {
                    if codec.end().expect("the client is there") {
                        ended = true;
                        break;
                    }
                } else if pending.is_empty() && codec.all_out() {
                    break;
                }
            }
        }
        assert!(ended);
        let out = transport.peer().output[head_len..].to_vec();
        let out = String::from_utf8_lossy(&out);
        // Each offer starts a chunk of what was buffered then: "hello " is offered first whole.
        assert!(out.starts_with("6\r\nhello \r\n"), "{out}");
        assert!(out.ends_with("\r\n0\r\n\r\n"), "{out}");
        let (decoded, _) = crate::http::chunked::decode_all(out.as_bytes()).expect("valid chunked");
        assert_eq!(decoded, b"hello chunked");
        assert_eq!(sent, transport.peer().output.len() as u64);
    }

    #[test]
    fn a_cache_hit_gets_its_stored_head_and_its_body_as_it_is() {
        use crate::cache::{EntryMeta, PendingEntry};
        let dir = std::env::temp_dir().join(format!("pibl-h1-hit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let meta = EntryMeta {
            primary: "GET http://a:80/".into(),
            vary: vec![],
            status: 200,
            headers: b"Content-Type: text/plain\r\n".to_vec(),
            stored_at: crate::cache::unix_now(),
            initial_age: 0,
            lifetime: 60,
            always_revalidate: false,
        };
        let mut pending = PendingEntry::create(&dir, meta, false, 100).expect("an entry");
        pending.append(b"stored body");
        let entry = pending.publish().expect("published");
        let req = crate::http::request::parse(
            b"GET / HTTP/1.0\r\nHost: a\r\n\r\n",
            LIMITS,
            &crate::http::request::Forwarding {
                client_ip: "192.0.2.1".parse().expect("an address"),
                proto: "http",
                h2: false,
            },
            &mut Vec::new(),
            &mut crate::http::request::RequestLine::default(),
        )
        .expect("valid")
        .expect("complete");
        let (resp, with_body) = super::super::cached::hit_response(&entry, false, &req, false);
        assert!(with_body);
        let mut transport = ClientTransport::fake();
        transport.on_event(false, true, false);
        let mut queued = Pending::default();
        let mut framing = ClientFraming::Chunked {
            left: 0,
            open: false,
        };
        let mut sent = 0u64;
        let mut codec = H1Codec::new(&mut transport, &mut queued, &mut framing, &mut sent);
        codec.stored_head(&entry, &resp, CacheLabel::Hit, req.version, false, 0);
        let body = entry.body();
        assert_eq!(codec.body(body), Ok(body.len()));
        assert_eq!(codec.end(), Ok(true));
        let out = String::from_utf8_lossy(&transport.peer().output).into_owned();
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(out.contains("Content-Type: text/plain\r\n"), "{out}");
        assert!(out.contains("Content-Length: 11\r\n"), "{out}");
        assert!(out.contains("X-Cache: HIT\r\n"), "{out}");
        assert!(!out.contains("chunked"), "{out}");
        assert!(out.ends_with("\r\n\r\nstored body"), "{out}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn hex_sizes() {
        for (n, hex) in [(0, "0"), (5, "5"), (255, "ff"), (4096, "1000")] {
            let mut out = Vec::new();
            put_hex(&mut out, n);
            assert_eq!(out, hex.as_bytes());
        }
    }
}
