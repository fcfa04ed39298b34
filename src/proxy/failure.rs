//! How an exchange fails: retries and failover when a backend cannot be used, responses the
//! proxy makes itself, and the one access-log line every exchange ends with. Functions over
//! the connection part (`Conn`) and the exchange, as in `relay.rs`; a response pibl makes and
//! its access line also serve a request refused before it became an exchange (`x` is `None`).

use std::fmt;
use std::time::{Duration, Instant};

use super::cached::CacheLabel;
use super::exchange::Exchange;
use super::h1;
use super::session::{Conn, Ctx, State, Step};
use super::shared::Settings;
use super::upstream_failure::{log_failure, EarlierFailures, HeldFailure, Phase};
use crate::http::request::Method;
use crate::http::Version;
use crate::logging::{AccessDetails, AccessEntry, LogFormat};
use crate::routing::{Scope, ScopeId};
use crate::stats::Stats;

/// The rules for the current request: its route's, or the top level's when it failed before it
/// was routed (no exchange: a bad or incomplete head).
#[inline]
pub(super) fn scope_of<'a>(x: Option<&'a Exchange>, settings: &'a Settings) -> &'a Scope {
    match x {
        Some(x) => x.scope(),
        None => settings.router.scope(ScopeId::TOP),
    }
}

impl Conn {
    /// Logs one upstream failure as an event line: backend, phase, cause and the request. A
    /// failure on a backend already marked down (tried because every backend was) is held
    /// instead (see [`HeldFailure`]) and logged when the exchange ends. Called before the
    /// failure is reported, so "down" is never this failure's own doing.
    pub(super) fn upstream_event(&self, x: &mut Exchange, phase: Phase, cause: fmt::Arguments<'_>) {
        let Some(b) = x.backend else {
            return;
        };
        if !x.settings.backends.is_up(b) {
            let earlier = x.held.as_ref().map_or(0, |h| h.earlier + 1);
            x.held = Some(HeldFailure {
                backend: b,
                phase,
                cause: cause.to_string(),
                earlier,
            });
            return;
        }
        log_failure(
            &x.settings.backends.get(b).name,
            phase,
            or_dash(&self.line.method),
            or_dash(&self.line.target),
            cause,
        );
    }

    /// The upstream connection failed (reset, closed, write error) before a complete response
    /// head arrived, at `phase` because of `cause`.
    pub(super) fn upstream_failed(
        &mut self,
        x: &mut Exchange,
        ctx: &mut Ctx<'_>,
        phase: Phase,
        cause: fmt::Arguments<'_>,
    ) -> Step {
        let may_retry = x.may_retry();
        let backend = x.backend;
        let stale_retry = may_retry && x.reused && !x.stale_retried;
        if stale_retry {
            x.stale_retried = true;
        }
        if let (true, Some(b)) = (stale_retry, backend) {
            // The keep-alive race: the backend closed a pooled connection as we reused it.
            // That says nothing about the backend; send again on a fresh connection.
            log::info!(
                "backend {} closed a reused connection at {} for {} {}: {cause}; sending again \
                 on a new connection",
                x.backend_name().unwrap_or("-"),
                phase.as_str(),
                or_dash(&self.line.method),
                or_dash(&self.line.target)
            );
            return self.connect(x, ctx, b);
        }
        self.upstream_event(x, phase, cause);
        x.backend_failed("closed or reset the connection before answering");
        if may_retry {
            return self.retry_elsewhere(x, ctx);
        }
        self.fail(Some(x), ctx, 502, "the backend closed the connection", true)
    }

    /// The response head did not come in time. An idempotent request with nothing sent to the
    /// client is tried once more on another backend; otherwise 504.
    pub(super) fn response_timed_out(&mut self, x: &mut Exchange, ctx: &mut Ctx<'_>) -> Step {
        let retry = x.may_retry() && x.info.method.is_idempotent() && !x.timeout_retried;
        let waiting_for_head = matches!(self.state, State::ReadResponseHead { .. });
        let wait = ctx.settings.config.timeouts.upstream;
        if waiting_for_head {
            self.upstream_event(
                x,
                Phase::Head,
                format_args!("no response head within {wait:?}"),
            );
        } else {
            self.upstream_event(
                x,
                Phase::Send,
                format_args!("did not take the request within {wait:?}"),
            );
        }
        x.timed_out = true;
        x.timeout_retried = true;
        if waiting_for_head || retry {
            // Slow request bodies are the client's doing, not the backend's.
            x.backend_failed("did not answer in time");
        }
        if retry {
            self.retry_elsewhere(x, ctx)
        } else {
            self.fail(
                Some(x),
                ctx,
                504,
                "the backend did not answer in time",
                true,
            )
        }
    }

    /// Sends the request to the next backend, within `max_retries`.
    pub(super) fn retry_elsewhere(&mut self, x: &mut Exchange, ctx: &mut Ctx<'_>) -> Step {
        x.retries += 1;
        if x.retries > ctx.settings.config.health.max_retries {
            let (status, why) = if x.timed_out {
                (504, "no backend answered in time")
            } else {
                (502, "no backend could be reached")
            };
            return self.fail(Some(x), ctx, status, why, false);
        }
        self.pick_backend(x, ctx)
    }

    /// Answers the client with a response the proxy makes. The connection closes afterwards when
    /// asked, or when the request's body was not read (its bytes would be taken for a request).
    /// `x`: the exchange, when the request got that far.
    pub(super) fn fail(
        &mut self,
        x: Option<&mut Exchange>,
        ctx: &mut Ctx<'_>,
        status: u16,
        detail: &str,
        close: bool,
    ) -> Step {
        self.fail_with(x, ctx, status, detail, close, "")
    }

    /// [`Conn::fail`] with `extra` header lines (each ending in CRLF): `Retry-After`.
    pub(super) fn fail_with(
        &mut self,
        x: Option<&mut Exchange>,
        ctx: &mut Ctx<'_>,
        status: u16,
        detail: &str,
        close: bool,
        extra: &str,
    ) -> Step {
        let close = h1::error_closes(x.as_deref(), close, ctx.stopping);
        if x.as_ref().is_some_and(|x| x.client_bytes > 0) {
            // Part of a response already went out; another one cannot follow it.
            self.log_exchange(x, ctx, status);
            return self.enter(State::Closed, ctx);
        }
        h1::queue_error(
            &mut self.to_client,
            status,
            detail,
            close,
            ctx.clock.http_date(),
            extra,
            scope_of(x.as_deref(), ctx.settings)
                .access
                .error_pages
                .get(status),
        );
        // Only a request whose head was read has an id; the rules apply to every error.
        let edge = &scope_of(x.as_deref(), ctx.settings).edge;
        edge.finish_client_head(&mut self.to_client.bytes, status, &self.facts);
        let head_request = match x {
            Some(x) => x.info.method == Method::Head,
            // Refused right after its head was parsed (an ACL, a rate limit): the line is its.
            None => self.line.method == "HEAD",
        };
        if head_request {
            // RFC 9110 9.3.2: no content in a response to HEAD (its Content-Length stays, as a
            // GET's would be); a body here would be read as the next response on keep-alive.
            h1::drop_body(&mut self.to_client);
        }
        self.enter(State::SendError { close, status }, ctx)
    }

    /// Logs the response the proxy made (`SendError`) once it ended, with the bytes the client
    /// got: all of them, or what was written before it went away or stopped reading.
    pub(super) fn log_error_response(
        &mut self,
        mut x: Option<&mut Exchange>,
        ctx: &mut Ctx<'_>,
        status: u16,
    ) {
        if let Some(x) = x.as_deref_mut() {
            let sent = self.to_client.pos;
            x.client_bytes += sent as u64;
            x.client_head_bytes += h1::head_len(&self.to_client).min(sent) as u64;
        }
        self.log_exchange(x, ctx, status);
    }

    /// Writes the access line of the exchange (once), or, with no exchange (a request refused
    /// before its head was complete or valid), of the response pibl made in `to_client`.
    pub(super) fn log_exchange(
        &mut self,
        x: Option<&mut Exchange>,
        ctx: &mut Ctx<'_>,
        status: u16,
    ) {
        let x: Option<&Exchange> = match x {
            Some(x) if x.logged => return,
            Some(x) => {
                x.logged = true;
                if let Some(h) = x.held.take() {
                    log_failure(
                        &x.settings.backends.get(h.backend).name,
                        h.phase,
                        or_dash(&self.line.method),
                        or_dash(&self.line.target),
                        format_args!("{}{}", h.cause, EarlierFailures(h.earlier)),
                    );
                }
                // Whatever the cache was doing for this request ends with it.
                x.cache.abandon();
                Some(x)
            }
            None => None,
        };
        let (started, bytes, head_bytes, backend, version, cache) = match x {
            Some(x) => (
                x.started,
                x.client_bytes,
                x.client_head_bytes,
                x.backend,
                x.info.version,
                x.cache.label,
            ),
            None => (
                self.head_began,
                self.to_client.pos as u64,
                h1::head_len(&self.to_client) as u64,
                None,
                Version::Http11,
                None,
            ),
        };
        let Ctx {
            clock,
            log,
            shared,
            settings: shared_settings,
            ..
        } = ctx;
        let entry = AccessEntry {
            client: self.peer,
            method: or_dash(&self.line.method),
            target: or_dash(&self.line.target),
            version: self.client.log_version(version),
            status,
            bytes,
            backend: backend.and_then(|b| Some(x?.settings.backends.get(b).name.as_str())),
            duration: clock.now.saturating_duration_since(started),
            cache: cache.map(CacheLabel::as_str),
        };
        record_stats(&shared.stats, x, status, entry.duration, clock.now);
        let format = scope_of(x, shared_settings).edge.log_format;
        if format == LogFormat::Pibl {
            // The default line needs none of the details: nothing more per request.
            return log.record(clock.log_stamp(), &entry);
        }
        let details = AccessDetails {
            format,
            host: &self.line.host,
            body_bytes: bytes.saturating_sub(head_bytes),
            request_id: self.facts.request_id(),
            referer: self.facts.referer(),
            user_agent: self.facts.user_agent(),
            upstream_time: x
                .and_then(|x| x.upstream_began)
                .filter(|_| backend.is_some())
                .map(|t| clock.now.saturating_duration_since(t)),
        };
        log.record_with(clock.log_stamp(), &entry, &details);
    }

    /// The deadline of an exchange state passed: the next backend, a 504 or 408, or the close.
    pub(super) fn exchange_timed_out(&mut self, x: &mut Exchange, ctx: &mut Ctx<'_>) -> Step {
        match self.state {
            State::Connecting { .. } => {
                let wait = ctx.settings.config.timeouts.connect;
                self.upstream_event(
                    x,
                    Phase::Connect,
                    format_args!("did not accept a connection within {wait:?}"),
                );
                x.timed_out = true;
                x.backend_failed("connect timed out");
                self.retry_elsewhere(x, ctx)
            }
            State::SendRequest { .. } if x.waiting_for_request_body() => {
                // The client stopped sending its body: its doing, not the backend's.
                self.fail(Some(x), ctx, 408, "request body not received in time", true)
            }
            State::SendRequest { .. } | State::ReadResponseHead { .. } => {
                self.response_timed_out(x, ctx)
            }
            State::RelayResponse { .. } => {
                let wait = ctx.settings.config.timeouts.upstream;
                self.upstream_event(
                    x,
                    Phase::Body,
                    format_args!("the response made no progress for {wait:?}"),
                );
                self.log_exchange(Some(x), ctx, 504);
                self.enter(State::Closed, ctx)
            }
            State::AwaitFill => {
                // The request filling the cache is slow: fetch for ourselves.
                x.cache.stop_waiting();
                self.pick_backend(x, ctx)
            }
            _ => {
                // `Tunnel`, `ServeCached`.
                self.log_exchange(Some(x), ctx, 504);
                self.enter(State::Closed, ctx)
            }
        }
    }
}

impl Exchange {
    /// Whether the current request may go to another backend (or again to the same one): nothing
    /// of it reached a backend yet, or it is idempotent, its body (if any) was not consumed, and
    /// nothing was sent to the client yet. A POST whose bytes reached a backend is never replayed.
    pub(super) fn may_retry(&self) -> bool {
        self.upstream_sent == 0
            || (self.info.method.is_idempotent() && self.replayable() && self.client_bytes == 0)
    }

    /// Excludes the current backend for this request and counts a failure against it, unless
    /// the connection came from the pool (a dead pooled connection says nothing about the
    /// backend).
    pub(super) fn backend_failed(&mut self, why: &str) {
        if let Some(b) = self.backend {
            self.tried |= 1u64.checked_shl(b as u32).unwrap_or(0);
            if !self.reused {
                self.settings.backends.report_failure(b, why);
            }
        }
    }

    /// The backend of the current request, named as in the settings it started with.
    pub(super) fn backend_name(&self) -> Option<&str> {
        Some(self.settings.backends.get(self.backend?).name.as_str())
    }
}

/// Counts a finished exchange for the admin listener (`src/stats.rs`): a few relaxed atomic
/// adds. Every backend this request failed on (`tried`) gets a failed attempt; the one that
/// answered gets the latency, and an error when the client got a 5xx.
fn record_stats(stats: &Stats, x: Option<&Exchange>, status: u16, took: Duration, now: Instant) {
    let hit = match x.and_then(|x| x.cache.label) {
        Some(CacheLabel::Hit) => Some(true),
        Some(CacheLabel::Miss | CacheLabel::Revalidated) => Some(false),
        Some(CacheLabel::Bypass) | None => None,
    };
    stats.record_exchange(status, hit, now);
    let Some(x) = x else {
        return;
    };
    stats.record_bytes(x.client_bytes, x.upstream_sent);
    if let Some(c) = x.compressor.as_deref() {
        let (before, after) = c.totals();
        stats.compress.record(c.coding(), before, after);
    }
    let backends = &x.settings.backends;
    let (tried, mut failed) = (x.tried, x.tried);
    if let Some(b) = x.backend {
        let bit = 1u64.checked_shl(b as u32).unwrap_or(0);
        failed &= !bit;
        let error = status >= 500 || tried & bit != 0;
        backends.get(b).stats.record(error, took);
    }
    while failed != 0 {
        let i = failed.trailing_zeros() as usize;
        failed &= failed - 1;
        if i < backends.len() {
            backends.get(i).stats.record_failed_attempt();
        }
    }
}

/// A log field that may be empty (a request too broken to have a method or target).
fn or_dash(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}
