//! The session's side of the disk cache: deciding at the request head whether to serve a hit,
//! revalidate, wait for another request's fill or fetch; storing a response while it is relayed;
//! and writing a hit straight from the entry's memory map.

use std::mem::MaybeUninit;
use std::sync::Arc;

use crate::cache::policy::{
    is_cacheable_status, request_rule, response_rule, RequestRule, ResponseRule,
};
use crate::cache::{
    head_key, primary_key, unix_now, vary_values, Cache, CacheEntry, EntryMeta, FillGuard,
    Freshness, Lookup, PendingEntry, UrlKey, VariantWriter,
};
use crate::compress::Coding;
use crate::http::body::BodyKind;
use crate::http::date::parse_http_date;
use crate::http::head::ResponseHead;
use crate::http::request::{Head, Method, RequestInfo, RequestLine, HEADERS_CAP};
use crate::http::response::ResponseInfo;
use crate::http::{is_hop_by_hop, name_is, named_by_connection, put_header};

// Declared here rather than in `proxy/mod.rs`: the request head the cache keeps is its own.
#[path = "kept_request.rs"]
mod kept_request;
pub(super) use kept_request::KeptRequest;

/// What the cache did for a request; sent as `X-Cache` and logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheLabel {
    Hit,
    Miss,
    Revalidated,
    Bypass,
}

impl CacheLabel {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheLabel::Hit => "HIT",
            CacheLabel::Miss => "MISS",
            CacheLabel::Revalidated => "REVALIDATED",
            CacheLabel::Bypass => "BYPASS",
        }
    }
}

/// The cache's part of one exchange.
#[derive(Debug, Default)]
pub struct CacheWork {
    pub label: Option<CacheLabel>,
    cache: Option<Arc<Cache>>,
    primary: String,
    /// A stored entry being revalidated with a conditional request.
    revalidating: Option<Arc<CacheEntry>>,
    /// The response being written to disk as it is relayed.
    store: Option<PendingEntry>,
    /// This request is the one fetching `primary` for everybody.
    fill: Option<FillGuard>,
    /// Counted among the requests waiting for a fill.
    waiting: bool,
    /// The entry being served, and how much of its body was written.
    hit: Option<Arc<CacheEntry>>,
    hit_pos: usize,
    /// The compressed variant this hit is making as it compresses the entry (the first
    /// compressed hit of a coding), published when its body is whole.
    variant: Option<VariantWriter>,
    /// A successful unsafe request invalidates what is stored for its URL.
    invalidate: bool,
}

impl CacheWork {
    /// Handles a final response head from the backend, as parsed for the client (not parsed
    /// again). Returns the refreshed entry when the backend confirmed a stored one with 304;
    /// otherwise may start storing the response, and adds `X-Cache` to the client's head.
    #[allow(clippy::too_many_arguments)]
    pub fn on_response_head(
        &mut self,
        cache: &Arc<Cache>,
        fresh: Freshness,
        req: &RequestInfo,
        head: &ResponseHead<'_>,
        req_head: &KeptRequest,
        line: &RequestLine,
        client_head: &mut Vec<u8>,
    ) -> Option<Arc<CacheEntry>> {
        let label = self.label?;
        let now = unix_now();
        let (status, headers) = (head.status, head.fields);
        let refreshed = 'decided: {
            if self.invalidate && (200..400).contains(&status) {
                cache.invalidate(&primary_key(&line.host, &line.target));
                for h in headers {
                    if name_is(h.name, "location") || name_is(h.name, "content-location") {
                        if let Some((host, target)) = resolve(&line.host, h.value) {
                            cache.invalidate(&primary_key(&host, &target));
                        }
                    }
                }
            }
            if let Some(old) = self.revalidating.take() {
                if status == 304 {
                    break 'decided Some(refresh(cache, &old, headers, fresh, now));
                }
            }
            if !fresh.pass_cdn_cache_control && head.has("cdn-cache-control") {
                remove_header_lines(client_head, "cdn-cache-control");
            }
            if head.has("pibl-cache-control") {
                remove_header_lines(client_head, "pibl-cache-control");
            }
            if !matches!(req.method, Method::Get | Method::Head) || label == CacheLabel::Bypass {
                break 'decided None;
            }
            match response_rule(status, headers, false, fresh, now) {
                ResponseRule::Store {
                    lifetime,
                    initial_age,
                    always_revalidate,
                    vary,
                } => {
                    // A HEAD response is stored as a head-only entry, under its own key.
                    let head_only = req.method == Method::Head;
                    let meta = EntryMeta {
                        // Taken, not cloned: nothing after the response head needs it.
                        primary: if head_only {
                            head_key(&self.primary)
                        } else {
                            std::mem::take(&mut self.primary)
                        },
                        vary: req_head.with_fields(|rh| vary_values(&vary, rh)),
                        status,
                        headers: stored_headers(headers, head_only),
                        stored_at: now,
                        initial_age: initial_age.as_secs(),
                        lifetime: lifetime.as_secs(),
                        always_revalidate,
                    };
                    // A body being stored is relayed as plain data, whatever the backend's
                    // framing (`H1Codec::begin_body`): stored as relayed, never decoded again.
                    self.store = cache.begin_store(meta, false);
                }
                ResponseRule::NoStore(_) => {
                    // A 304 or 206 says nothing about the URL (the request was conditional or
                    // partial); headers that forbid storing do.
                    if self.fill.is_some() && is_cacheable_status(status) {
                        // Waiting requests for this URL would only queue behind one another.
                        cache.mark_uncacheable(&self.primary, now);
                    }
                }
            }
            None
        };
        if refreshed.is_none() {
            add_header_before_end(client_head, "X-Cache", label.as_str().as_bytes());
        }
        refreshed
    }

    /// A copy of the response is being written to the cache: the body is relayed as plain
    /// data (de-chunked), and not spliced.
    pub fn is_storing(&self) -> bool {
        self.store.is_some()
    }

    /// Copies relayed body bytes into the entry being stored.
    pub fn store_body(&mut self, relayed: &[u8]) {
        if let Some(st) = self.store.as_mut() {
            st.append(relayed);
            if st.is_failed() {
                self.store = None;
            }
        }
    }

    /// The response arrived whole: publish it, then release the fill so waiters find it.
    pub fn publish(&mut self) {
        // Asked before `take`, which would copy the large empty option on every exchange.
        if self.store.is_some() {
            if let (Some(st), Some(cache)) = (self.store.take(), self.cache.as_ref()) {
                cache.publish(st);
            }
        }
        self.fill = None;
    }

    /// The stored variant of a fresh `entry` in `coding`, if one was made (served as it is,
    /// no compression work).
    pub(super) fn variant(&self, entry: &CacheEntry, coding: Coding) -> Option<Arc<CacheEntry>> {
        self.cache.as_ref()?.lookup_variant(entry, coding)
    }

    /// This hit compresses `entry` on the fly: its output is also written as the entry's
    /// variant in `coding`, unless another exchange is already writing it.
    pub(super) fn begin_variant(&mut self, entry: &Arc<CacheEntry>, coding: Coding) {
        if let Some(cache) = &self.cache {
            self.variant = cache.begin_variant(entry, coding);
        }
    }

    /// The exchange ended: drop an unfinished entry, release the fill, stop waiting.
    pub fn abandon(&mut self) {
        self.store = None;
        self.variant = None;
        self.fill = None;
        self.stop_waiting();
    }

    pub fn stop_waiting(&mut self) {
        if self.waiting {
            self.waiting = false;
            if let Some(c) = &self.cache {
                c.set_waiting(-1);
            }
        }
    }
}

/// A compressed hit's output is also the variant being written, if any (`cache_states.rs`
/// lends the `CacheWork` to the pump as its `Tee`).
impl CacheWork {
    /// Compressed bytes the client took: appended to the variant (one over `max_object`, or
    /// whose file fails, is given up and its temporary file goes).
    pub(super) fn variant_taken(&mut self, bytes: &[u8]) {
        if let Some(writer) = self.variant.as_mut() {
            let body = writer.body();
            body.append(bytes);
            if body.is_failed() {
                self.variant = None;
            }
        }
    }

    /// The compressed body is whole: the variant is published, so the next hit in its coding
    /// is served from it.
    pub(super) fn variant_complete(&mut self) {
        if let (Some(writer), Some(cache)) = (self.variant.take(), self.cache.as_ref()) {
            cache.publish_variant(writer);
        }
    }
}

/// What to do with a request, decided at its head.
enum Decision {
    /// Not for the cache; `invalidate`: an unsafe method, so stored responses for its URL go.
    Bypass {
        invalidate: bool,
    },
    /// Serve the entry; `true`: as a 304, the client's validators match it.
    Serve(Arc<CacheEntry>, bool),
    Revalidate(Arc<CacheEntry>),
    /// Fetch from a backend and store the response. `shared`: a GET may wait for (or become)
    /// the one fill of its URL; false when the request forbids using a stored response without
    /// validation (`no-cache`) and there is nothing to validate, so it goes straight to a backend.
    Fetch {
        shared: bool,
    },
}

/// What the cache says of a request, decided while its head is parsed: before the upstream
/// head is written, which a hit does not need, and without parsing the head a second time.
pub(super) struct Consulted {
    primary: String,
    decision: Decision,
}

impl Consulted {
    /// Answered from the cache as it stands: no backend, so no upstream head.
    pub(super) fn is_hit(&self) -> bool {
        matches!(self.decision, Decision::Serve(..))
    }
}

/// Consults the cache for a parsed request head.
pub(super) fn consult(cache: &Cache, head: &Head<'_>) -> Consulted {
    let method = head.info.method;
    if !matches!(method, Method::Get | Method::Head) {
        // RFC 9111 §4.4: every unsafe method invalidates, extension methods included; the safe
        // ones are GET, HEAD, OPTIONS and TRACE (RFC 9110 §9.2.1).
        let invalidate = method != Method::Options && head.line.method != "TRACE";
        return Consulted {
            primary: String::new(),
            decision: Decision::Bypass { invalidate },
        };
    }
    // Looked up by its parts: a hit builds no key string.
    let url = UrlKey::get(&head.line.host, &head.line.target);
    let headers = head.headers;
    let now = unix_now();
    let decision = match request_rule(headers) {
        RequestRule::Bypass(_) => Decision::Bypass { invalidate: false },
        rule => {
            let found = match url.with_key(|key| cache.lookup(key, headers, now)) {
                // A HEAD is answered from the GET entry, else from a head-only one.
                Lookup::Miss if method == Method::Head => url
                    .head_only()
                    .with_key(|key| cache.lookup(key, headers, now)),
                found => found,
            };
            match found {
                Lookup::Fresh(e) if rule == RequestRule::Normal => {
                    let not_modified = answers_not_modified(&e, headers);
                    Decision::Serve(e, not_modified)
                }
                Lookup::Fresh(e) | Lookup::Stale(e) if e.has_validator() => Decision::Revalidate(e),
                _ => Decision::Fetch {
                    shared: rule == RequestRule::Normal,
                },
            }
        }
    };
    let primary = match decision {
        // Served as it stands: nothing is stored, filled or invalidated under the key.
        Decision::Serve(..) => String::new(),
        _ => url.to_key(),
    };
    Consulted { primary, decision }
}

/// What the session does next for a request, as the cache decided.
pub(super) enum Next {
    /// Fetch from a backend (with validators in the upstream head when revalidating).
    Backend,
    /// Serve this entry as a hit; `true`: as a 304, the client's validators match it.
    Serve(Arc<CacheEntry>, bool),
    /// Another request is fetching this URL: wait until the cache changes, then ask again
    /// ([`CacheWork::await_fill`]).
    Wait,
}

impl CacheWork {
    /// Takes what [`consult`] said of a request whose head was just parsed.
    #[inline]
    pub(super) fn begin(
        &mut self,
        cache: Arc<Cache>,
        consulted: Consulted,
        method: Method,
        req_head: &KeptRequest,
        upstream_head: &mut Vec<u8>,
    ) -> Next {
        let Consulted { primary, decision } = consulted;
        self.cache = Some(cache);
        self.primary = primary;
        match decision {
            Decision::Bypass { invalidate } => {
                self.label = Some(CacheLabel::Bypass);
                self.invalidate = invalidate;
                Next::Backend
            }
            Decision::Serve(e, not_modified) => Next::Serve(e, not_modified),
            Decision::Revalidate(e) => {
                self.label = Some(CacheLabel::Miss);
                set_conditionals(upstream_head, &e);
                self.revalidating = Some(e);
                Next::Backend
            }
            Decision::Fetch { shared } => {
                self.label = Some(CacheLabel::Miss);
                if shared && method == Method::Get {
                    self.await_fill(req_head, upstream_head)
                } else {
                    Next::Backend
                }
            }
        }
    }

    /// Fetch for the cache unless another request already is; else wait for its result.
    /// Asked again whenever the cache changes while the session waits (`AwaitFill`).
    pub(super) fn await_fill(
        &mut self,
        req_head: &KeptRequest,
        upstream_head: &mut Vec<u8>,
    ) -> Next {
        let Some(cache) = self.cache.clone() else {
            return Next::Backend;
        };
        let now = unix_now();
        let primary = &self.primary;
        let (found, not_modified) = req_head.with_fields(|h| {
            let found = cache.lookup(primary, h, now);
            let not_modified = matches!(&found, Lookup::Fresh(e) if answers_not_modified(e, h));
            (found, not_modified)
        });
        match found {
            Lookup::Fresh(e) => {
                self.stop_waiting();
                return Next::Serve(e, not_modified);
            }
            Lookup::Stale(e) => {
                // Published meanwhile, but to be revalidated before use.
                self.stop_waiting();
                set_conditionals(upstream_head, &e);
                self.revalidating = Some(e);
                return Next::Backend;
            }
            Lookup::Miss => {}
        }
        if cache.is_uncacheable(&self.primary, now) {
            self.stop_waiting();
            return Next::Backend;
        }
        if cache.try_begin_fill(&self.primary) {
            self.stop_waiting();
            self.fill = Some(FillGuard::new(cache, self.primary.clone()));
            return Next::Backend;
        }
        if !self.waiting {
            self.waiting = true;
            cache.set_waiting(1);
        }
        Next::Wait
    }

    /// Serves `entry` (its head already written by the codec, from [`hit_response`]): its
    /// body, if `with_body`, then comes from [`Self::hit_body`].
    #[inline]
    pub(super) fn serve(&mut self, entry: Arc<CacheEntry>, label: CacheLabel, with_body: bool) {
        self.label = Some(label);
        self.hit = with_body.then_some(entry);
        self.hit_pos = 0;
    }

    /// The part of the served entry's body not yet written (from its memory map).
    pub(super) fn hit_body(&self) -> &[u8] {
        self.hit
            .as_ref()
            .map_or(&[][..], |e| &e.body()[self.hit_pos..])
    }

    /// `n` more bytes of [`Self::hit_body`] were written; the entry is let go at its end.
    pub(super) fn hit_sent(&mut self, n: usize) {
        self.hit_pos += n;
        if self.hit_body().is_empty() {
            self.hit = None;
        }
    }
}

/// The facts of a response served from `entry`, as a backend's would be: its status (304
/// when the client's validators match), whether the connection stays open, and whether a
/// body follows the head (the stored one, from the map).
#[inline]
pub(super) fn hit_response(
    entry: &CacheEntry,
    not_modified: bool,
    req: &RequestInfo,
    stopping: bool,
) -> (ResponseInfo, bool) {
    let status = if not_modified { 304 } else { entry.meta.status };
    let has_body = !matches!(status, 204 | 304);
    // A request body left unread would be taken for the next request: close afterwards.
    let keep_alive =
        req.keep_alive && matches!(req.body, BodyKind::Empty | BodyKind::Length(0)) && !stopping;
    let info = ResponseInfo {
        status,
        body: if has_body && !entry.meta.is_head_only() {
            BodyKind::Length(entry.body_len)
        } else {
            BodyKind::Empty
        },
        dechunk: false,
        upstream_reusable: false,
        client_keep_alive: keep_alive,
        head_len: 0,
    };
    (info, has_body && req.method != Method::Head)
}

/// Whether the client's validators in `req_head` match `entry`, so it gets a 304: for the
/// paths that no longer have the parsed head at hand (after a 304 to a revalidation).
pub(super) fn client_not_modified(req_head: &KeptRequest, entry: &CacheEntry) -> bool {
    req_head.with_fields(|h| answers_not_modified(entry, h))
}

/// Builds the refreshed entry after a 304: stored headers updated with the 304's, freshness
/// recomputed from now. If the new headers forbid storing, the entry is dropped, but this one
/// response may still be served from it (the backend just confirmed it).
fn refresh(
    cache: &Cache,
    old: &Arc<CacheEntry>,
    headers: &[httparse::Header<'_>],
    fresh: Freshness,
    now: u64,
) -> Arc<CacheEntry> {
    let merged = merge_headers(&old.meta.headers, headers);
    let rule = with_stored_headers(&merged, |hs| {
        response_rule(old.meta.status, hs, false, fresh, now)
    });
    match rule {
        ResponseRule::Store {
            lifetime,
            initial_age,
            always_revalidate,
            ..
        } => {
            let meta = EntryMeta {
                headers: merged,
                stored_at: now,
                initial_age: initial_age.as_secs(),
                lifetime: lifetime.as_secs(),
                always_revalidate,
                ..old.meta.clone()
            };
            cache.refresh(old, meta).unwrap_or_else(|| old.clone())
        }
        ResponseRule::NoStore(_) => {
            cache.invalidate(&old.meta.primary);
            old.clone()
        }
    }
}

/// Headers worth storing: end-to-end ones, without framing, age or our own additions (a
/// head-only entry keeps `Content-Length`: it is the one thing its missing body would say).
/// The targeted cache-control fields are kept (they decide again after a 304); the entry puts
/// them last, where a hit leaves them out with one slice (`CacheEntry::client_headers`).
fn stored_headers(headers: &[httparse::Header<'_>], head_only: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for h in headers {
        let keep = head_only && name_is(h.name, "content-length");
        if keep || !skip_when_storing(h.name, headers) {
            put_header(&mut out, h.name, h.value);
        }
    }
    out
}

fn skip_when_storing(name: &str, headers: &[httparse::Header<'_>]) -> bool {
    [
        "transfer-encoding",
        "content-length",
        "age",
        "via",
        "x-cache",
        "set-cookie",
    ]
    .iter()
    .any(|n| name_is(name, n))
        || is_hop_by_hop(name)
        || named_by_connection(name, headers)
}

/// Removes the `name:` lines from a serialised head, in place.
fn remove_header_lines(head: &mut Vec<u8>, name: &str) {
    let (mut read, mut write) = (0, 0);
    while read < head.len() {
        let end = head[read..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(head.len(), |i| read + i + 1);
        let line = &head[read..end];
        let named = line
            .iter()
            .position(|&b| b == b':')
            .is_some_and(|colon| line[..colon].eq_ignore_ascii_case(name.as_bytes()));
        if !named {
            head.copy_within(read..end, write);
            write += end - read;
        }
        read = end;
    }
    head.truncate(write);
}

/// Stored header lines with those the 304 carries replaced by its values (RFC 9111 §4.3.4).
fn merge_headers(stored: &[u8], update: &[httparse::Header<'_>]) -> Vec<u8> {
    let fresh: Vec<&httparse::Header<'_>> = update
        .iter()
        .filter(|h| !skip_when_storing(h.name, update))
        .collect();
    let mut out = Vec::new();
    with_stored_headers(stored, |old| {
        for h in old {
            if !fresh.iter().any(|f| name_is(f.name, h.name)) {
                put_header(&mut out, h.name, h.value);
            }
        }
    });
    for h in fresh {
        put_header(&mut out, h.name, h.value);
    }
    out
}

/// Whether the client's own conditional request is satisfied by `entry` (RFC 9110 §13.1).
fn answers_not_modified(entry: &CacheEntry, request: &[httparse::Header<'_>]) -> bool {
    if entry.meta.status != 200 {
        return false;
    }
    let is_inm = |h: &&httparse::Header<'_>| name_is(h.name, "if-none-match");
    if request.iter().any(|h| is_inm(&h)) {
        let inm: Vec<&[u8]> = request.iter().filter(is_inm).map(|h| h.value).collect();
        let Some(etag) = entry.meta.header_bytes("etag") else {
            return false;
        };
        let weak = |t: &[u8]| t.strip_prefix(b"W/").unwrap_or(t).to_vec();
        let ours = weak(etag);
        return inm.iter().any(|v| {
            v.split(|&b| b == b',')
                .map(<[u8]>::trim_ascii)
                .any(|t| t == b"*" || weak(t) == ours)
        });
    }
    // Most requests carry no validator: answer without looking at the stored headers.
    let Some(ims) = request
        .iter()
        .find(|h| name_is(h.name, "if-modified-since"))
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .and_then(parse_http_date)
    else {
        return false;
    };
    let lm = entry.meta.header("last-modified").and_then(parse_http_date);
    matches!(lm, Some(lm) if lm <= ims)
}

/// Replaces the client's validators in the upstream head with the stored entry's. Works on the
/// head's bytes in place: every other field reaches the backend exactly as the client sent it
/// (obs-text included), and the pooled buffer is kept.
fn set_conditionals(head: &mut Vec<u8>, entry: &CacheEntry) {
    remove_header_lines(head, "if-none-match");
    remove_header_lines(head, "if-modified-since");
    if let Some(etag) = entry.meta.header_bytes("etag") {
        add_header_before_end(head, "If-None-Match", etag);
    }
    if let Some(lm) = entry.meta.header_bytes("last-modified") {
        add_header_before_end(head, "If-Modified-Since", lm);
    }
}

/// Inserts `Name: value` before the blank line that ends a serialised head.
fn add_header_before_end(head: &mut Vec<u8>, name: &str, value: &[u8]) {
    if head.ends_with(b"\r\n\r\n") {
        head.truncate(head.len() - 2);
        put_header(head, name, value);
        head.extend_from_slice(b"\r\n");
    }
}

/// Host and origin-form target of a Location / Content-Location value, on our own host only.
fn resolve(host: &str, value: &[u8]) -> Option<(String, String)> {
    let v = std::str::from_utf8(value).ok()?.trim();
    if v.starts_with('/') {
        return Some((host.to_string(), v.to_string()));
    }
    let rest = v.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    authority
        .eq_ignore_ascii_case(host)
        .then(|| (authority.to_string(), path.to_string()))
}

/// Runs `f` over the status and header fields of a response head.
fn with_response_headers<R>(head: &[u8], f: impl FnOnce(u16, &[httparse::Header<'_>]) -> R) -> R {
    let mut storage = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; HEADERS_CAP];
    let mut resp = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut resp,
        head,
        &mut storage,
    );
    match parsed {
        Ok(httparse::Status::Complete(_)) => f(resp.code.unwrap_or(0), resp.headers),
        _ => f(0, &[]),
    }
}

/// Runs `f` over stored `Name: value\r\n` lines.
fn with_stored_headers<R>(stored: &[u8], f: impl FnOnce(&[httparse::Header<'_>]) -> R) -> R {
    let mut head = Vec::with_capacity(stored.len() + 32);
    head.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    head.extend_from_slice(stored);
    head.extend_from_slice(b"\r\n");
    with_response_headers(&head, |_, hs| f(hs))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::http::test_field as h;

    #[test]
    fn stored_headers_drop_framing_and_hop_by_hop() {
        let hs = [
            h("Content-Type", "text/plain"),
            h("Content-Length", "5"),
            h("Connection", "close, X-Hop"),
            h("X-Hop", "1"),
            h("Age", "3"),
            h("ETag", "\"a\""),
        ];
        assert_eq!(
            stored_headers(&hs, false),
            b"Content-Type: text/plain\r\nETag: \"a\"\r\n".to_vec()
        );
    }

    #[test]
    fn merge_replaces_updated_fields() {
        let merged = merge_headers(
            b"Content-Type: text/plain\r\nETag: \"a\"\r\nCache-Control: max-age=1\r\n",
            &[h("Cache-Control", "max-age=60"), h("Content-Length", "0")],
        );
        assert_eq!(
            String::from_utf8(merged).unwrap(),
            "Content-Type: text/plain\r\nETag: \"a\"\r\nCache-Control: max-age=60\r\n"
        );
    }

    #[test]
    fn conditionals_replace_the_clients() {
        let mut head = b"GET / HTTP/1.1\r\nHost: a\r\nIf-None-Match: \"old\"\r\n\r\n".to_vec();
        let meta = EntryMeta {
            primary: "GET http://a:80/".into(),
            vary: vec![],
            status: 200,
            headers: b"ETag: \"v2\"\r\nLast-Modified: Mon, 23 Nov 2026 19:00:00 GMT\r\n".to_vec(),
            stored_at: 0,
            initial_age: 0,
            lifetime: 0,
            always_revalidate: true,
        };
        let dir = std::env::temp_dir().join(format!("pibl-cond-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let e = PendingEntry::create(&dir, meta, false, 10)
            .unwrap()
            .publish()
            .unwrap();
        set_conditionals(&mut head, &e);
        assert_eq!(
            String::from_utf8(head).unwrap(),
            "GET / HTTP/1.1\r\nHost: a\r\nIf-None-Match: \"v2\"\r\n\
             If-Modified-Since: Mon, 23 Nov 2026 19:00:00 GMT\r\n\r\n"
        );
        assert!(answers_not_modified(
            &e,
            &[h("If-None-Match", "\"x\", W/\"v2\"")]
        ));
        assert!(!answers_not_modified(&e, &[h("If-None-Match", "\"x\"")]));
        assert!(answers_not_modified(
            &e,
            &[h("If-Modified-Since", "Mon, 23 Nov 2026 19:00:00 GMT")]
        ));
        assert!(!answers_not_modified(
            &e,
            &[h("If-Modified-Since", "Mon, 23 Nov 2026 18:00:00 GMT")]
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn locations_resolve_on_our_host_only() {
        assert_eq!(resolve("a:80", b"/x"), Some(("a:80".into(), "/x".into())));
        assert_eq!(
            resolve("a:80", b"http://a:80/y"),
            Some(("a:80".into(), "/y".into()))
        );
        assert_eq!(resolve("a:80", b"http://evil/y"), None);
    }

    #[test]
    fn targeted_fields_are_removed_from_a_head() {
        let mut head =
            b"HTTP/1.1 200 OK\r\nCDN-Cache-Control: max-age=5\r\nA: b\r\ncdn-cache-control: x\r\n\r\n"
                .to_vec();
        remove_header_lines(&mut head, "cdn-cache-control");
        assert_eq!(head, b"HTTP/1.1 200 OK\r\nA: b\r\n\r\n");
    }

    #[test]
    fn x_cache_goes_before_the_blank_line() {
        let mut head = b"HTTP/1.1 200 OK\r\nA: b\r\n\r\n".to_vec();
        add_header_before_end(&mut head, "X-Cache", b"MISS");
        assert_eq!(head, b"HTTP/1.1 200 OK\r\nA: b\r\nX-Cache: MISS\r\n\r\n");
    }
}
