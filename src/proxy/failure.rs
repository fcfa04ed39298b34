//! How an exchange fails: retries and failover when a backend cannot be used, responses the
//! proxy makes itself, and the one access-log line every exchange ends with.

use super::cached::CacheLabel;
use super::session::{Ctx, Session, State, Step};
use crate::http::response;
use crate::http::Version;
use crate::logging::AccessEntry;

impl Session {
    /// The upstream connection failed before a complete response head arrived.
    pub(super) fn upstream_failed(&mut self, ctx: &mut Ctx<'_>) -> Step {
        let Some(x) = self.x.as_mut() else {
            return self.enter(State::Closed, ctx);
        };
        let backend = x.backend;
        let reused = x.reused;
        let stale_retry = !x.response_started && reused && !x.stale_retried && x.replayable();
        let other_backend = !x.response_started
            && (x.upstream_sent == 0 || (x.replayable() && x.info.method.is_idempotent()));
        if stale_retry {
            x.stale_retried = true;
        }
        self.close_upstream(ctx, false);
        if let (true, Some(b)) = (stale_retry, backend) {
            // The keep-alive race: the backend closed a pooled connection as we reused it.
            // That says nothing about the backend; send again on a fresh connection.
            return self.connect(ctx, b);
        }
        if other_backend {
            if !reused {
                self.backend_failed(ctx);
            }
            return self.pick_backend(ctx);
        }
        self.backend_failed(ctx);
        self.fail(ctx, 502, "the backend closed the connection", true)
    }

    /// Counts a failure against the current backend and excludes it for this request.
    pub(super) fn backend_failed(&mut self, ctx: &mut Ctx<'_>) {
        if let Some(x) = self.x.as_mut() {
            if let Some(b) = x.backend {
                x.tried |= 1u64.checked_shl(b as u32).unwrap_or(0);
                ctx.shared
                    .backends
                    .get(b)
                    .failures
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    /// Answers the client with a response the proxy makes. The connection closes afterwards when
    /// asked, or when the request's body was not read (its bytes would be taken for a request).
    pub(super) fn fail(
        &mut self,
        ctx: &mut Ctx<'_>,
        status: u16,
        detail: &str,
        close: bool,
    ) -> Step {
        let close = close
            || ctx.stopping
            || self
                .x
                .as_ref()
                .is_none_or(|x| !x.info.keep_alive || !x.req_body.is_complete());
        if self.x.as_ref().is_some_and(|x| x.client_bytes > 0) {
            // Part of a response already went out; another one cannot follow it.
            self.log_exchange(ctx, status);
            return self.enter(State::Closed, ctx);
        }
        self.close_upstream(ctx, false);
        response::write_error(
            &mut self.to_client.bytes,
            status,
            detail,
            close,
            ctx.clock.http_date(),
        );
        self.to_client.pos = 0;
        if let Some(x) = self.x.as_mut() {
            x.client_bytes = self.to_client.bytes.len() as u64;
        }
        self.log_exchange(ctx, status);
        self.enter(State::SendError { close }, ctx)
    }

    pub(super) fn log_exchange(&mut self, ctx: &mut Ctx<'_>, status: u16) {
        let (started, bytes, backend, version, cache) = match self.x.as_mut() {
            Some(x) if x.logged => return,
            Some(x) => {
                x.logged = true;
                // Whatever the cache was doing for this request ends with it.
                x.cache.abandon();
                (
                    x.started,
                    x.client_bytes,
                    x.backend,
                    x.info.version,
                    x.cache.label,
                )
            }
            None => (ctx.clock.now, 0, None, Version::Http11, None),
        };
        let bytes = if self.x.is_none() {
            self.to_client.bytes.len() as u64
        } else {
            bytes
        };
        let dash = |s: &str| if s.is_empty() { "-" } else { s }.to_owned();
        let (method, target) = (dash(&self.line.method), dash(&self.line.target));
        let entry = AccessEntry {
            client: self.peer,
            method: &method,
            target: &target,
            version: version.as_str(),
            status,
            bytes,
            backend: backend.map(|b| ctx.shared.backends.get(b).name.as_str()),
            duration: ctx.clock.now.saturating_duration_since(started),
            cache: cache.map(CacheLabel::as_str),
        };
        let stamp = ctx.clock.log_stamp().to_owned();
        ctx.log.record(&stamp, &entry);
    }

    pub(super) fn backend_name<'c>(&self, ctx: &'c Ctx<'_>) -> Option<&'c str> {
        let b = self.x.as_ref()?.backend?;
        Some(ctx.shared.backends.get(b).name.as_str())
    }
}
