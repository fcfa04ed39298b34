//! One request/response exchange on a client connection: the request's parsed facts, the
//! settings it pinned, the backend it is on and what it tried, its body framing both ways, and
//! what the cache does for it. Protocol-neutral data: the HTTP/1 session holds one at a time.

use std::sync::Arc;
use std::time::Instant;

use super::cached::CacheWork;
use super::shared::Settings;
#[cfg(target_os = "linux")]
use super::splice::SplicePipe;
use super::upstream_failure::HeldFailure;
use crate::compress::{Asked, BodyCompressor, Coding};
use crate::http::body::{BodyKind, BodyRelay};
use crate::http::request::RequestInfo;
use crate::http::response::ResponseInfo;
use crate::routing::{RouteMatch, Scope};

/// One request/response exchange on the connection.
#[derive(Debug)]
pub(super) struct Exchange {
    /// This exchange's id within its session: with the session's key, the owner of the
    /// upstream connection it uses.
    pub(super) id: u32,
    pub(super) info: RequestInfo,
    /// The settings this request started with: `backend` and `tried` index its backend list,
    /// and failures are reported to its rotation, even if a reload happens meanwhile.
    pub(super) settings: Arc<Settings>,
    /// Its pool and the rules of its site or route (`settings.router`), found once when its
    /// head was parsed.
    pub(super) route: RouteMatch,
    pub(super) started: Instant,
    pub(super) req_body: BodyRelay,
    pub(super) resp_body: BodyRelay,
    pub(super) resp: Option<ResponseInfo>,
    pub(super) backend: Option<usize>,
    /// Backends this request failed to reach, a bit each.
    pub(super) tried: u64,
    /// The current upstream connection came from the pool.
    pub(super) reused: bool,
    /// The one retry on a fresh connection after a pooled one failed was used.
    pub(super) stale_retried: bool,
    /// Other backends tried after the first (bounded by `max_retries`).
    pub(super) retries: u32,
    /// The one retry after a response-head timeout was used.
    pub(super) timeout_retried: bool,
    /// When the first connection attempt to a backend began (the log's upstream time).
    pub(super) upstream_began: Option<Instant>,
    /// Bytes written upstream for this request.
    pub(super) upstream_sent: u64,
    /// The backend sent at least one byte of a response.
    pub(super) response_started: bool,
    /// Bytes written to the client for this request.
    pub(super) client_bytes: u64,
    /// Of those, the response heads' (interim and final) as queued: the rest is the body
    /// (`combined`'s `$body_bytes_sent`).
    pub(super) client_head_bytes: u64,
    /// Last failure reaching a backend was a timeout (504 rather than 502).
    pub(super) timed_out: bool,
    pub(super) logged: bool,
    /// A failure on a backend marked down (every backend was), logged when the exchange ends.
    pub(super) held: Option<HeldFailure>,
    /// What the cache does for this request.
    pub(super) cache: CacheWork,
    /// What the request's head asked of compression (`Asked::NONE` under `compress off`),
    /// read at its parse; the response head's `decide` needs it.
    pub(super) asked: Asked,
    /// The response body's compressor, while the response is compressed (`relay.rs`).
    pub(super) compressor: Option<Box<BodyCompressor>>,
    /// A response of unknown length that `decide` would compress, held (its head queued, not
    /// sent) until `compress_min_length` bytes of its body or its end arrived (`relay.rs`).
    pub(super) compress_held: Option<Coding>,
    /// A cache hit being compressed reads its body from this file (`CacheEntry::open_body`),
    /// not from the map.
    pub(super) compressed_hit: Option<std::fs::File>,
    /// The pipe of a body being spliced, while it is (splice(2) is Linux-only).
    #[cfg(target_os = "linux")]
    pub(super) splice: Option<SplicePipe>,
}

/// The backend a request was given is released when the exchange ends, however it ends
/// (least_conn counts requests in flight).
impl Drop for Exchange {
    fn drop(&mut self) {
        if let Some(b) = self.backend {
            self.settings.backends.release(b);
        }
    }
}

impl Exchange {
    pub(super) fn new(
        id: u32,
        info: RequestInfo,
        settings: Arc<Settings>,
        route: RouteMatch,
        now: Instant,
    ) -> Exchange {
        Exchange {
            id,
            settings,
            route,
            req_body: BodyRelay::new(info.body, false),
            resp_body: BodyRelay::new(BodyKind::Empty, false),
            info,
            started: now,
            resp: None,
            backend: None,
            tried: 0,
            reused: false,
            stale_retried: false,
            retries: 0,
            timeout_retried: false,
            upstream_began: None,
            upstream_sent: 0,
            response_started: false,
            client_bytes: 0,
            client_head_bytes: 0,
            timed_out: false,
            logged: false,
            held: None,
            cache: CacheWork::default(),
            asked: Asked::NONE,
            compressor: None,
            compress_held: None,
            compressed_hit: None,
            #[cfg(target_os = "linux")]
            splice: None,
        }
    }

    /// The header, log and access rules of the request's site or route.
    #[inline]
    pub(super) fn scope(&self) -> &Scope {
        self.settings.router.scope(self.route.scope)
    }

    /// The request can be sent again: no body byte has been taken from the client.
    pub(super) fn replayable(&self) -> bool {
        matches!(self.info.body, BodyKind::Empty | BodyKind::Length(0))
    }
}

impl Exchange {
    /// The request body is larger than `max` (`max_body_size`): its declared length, or what
    /// a chunked body has grown to so far.
    pub(super) fn body_over(&self, max: Option<u64>) -> bool {
        let Some(max) = max else {
            return false;
        };
        match self.info.body {
            BodyKind::Length(n) => n > max,
            _ => self.req_body.chunked_data_len() > max,
        }
    }

    /// In `SendRequest`, true while the request body is unfinished and nothing of it is waiting
    /// to go upstream: the session waits for the client.
    pub(super) fn waiting_for_request_body(&self) -> bool {
        !self.req_body.is_complete() && self.req_body.ready() == 0
    }
}
