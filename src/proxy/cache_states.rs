//! The exchange's cache states, as functions over the connection part (`Conn`) and the exchange
//! (as in `relay.rs`): the cache's decision when a request begins (`cached::Next`: a backend,
//! serve an entry, or wait for a fill), `AwaitFill`, and `ServeCached` (a stored head, then the
//! body from the entry's memory map). The decisions themselves are `cached.rs`'s.

use std::sync::Arc;

use super::cached::{self, CacheLabel, Consulted};
use super::exchange::Exchange;
use super::h1::{ClientGone, H1Codec};
use super::session::{Conn, Ctx, State, Step};
use crate::cache::{unix_now, CacheEntry};

impl Conn {
    /// A request head was parsed (and the cache consulted, when there is one): serve, wait, or
    /// go to a backend, as the cache decides (`cached.rs`).
    pub(super) fn begin_exchange(
        &mut self,
        x: &mut Exchange,
        ctx: &mut Ctx<'_>,
        consulted: Option<Consulted>,
    ) -> Step {
        let (Some(cache), Some(consulted)) = (ctx.shared.cache.clone(), consulted) else {
            return self.pick_backend(x, ctx);
        };
        let method = x.info.method;
        let next = x.cache.begin(
            cache,
            consulted,
            method,
            &self.req_head,
            &mut self.to_upstream.bytes,
        );
        self.follow_cache(x, ctx, next)
    }

    /// The handler of `AwaitFill`, run again whenever the cache changes: is the entry there now,
    /// or may this request fetch it?
    pub(super) fn await_fill(&mut self, x: &mut Exchange, ctx: &mut Ctx<'_>) -> Step {
        let next = x
            .cache
            .await_fill(&self.req_head, &mut self.to_upstream.bytes);
        self.follow_cache(x, ctx, next)
    }

    #[inline]
    fn follow_cache(&mut self, x: &mut Exchange, ctx: &mut Ctx<'_>, next: cached::Next) -> Step {
        match next {
            cached::Next::Backend => self.pick_backend(x, ctx),
            cached::Next::Serve(e, not_modified) => {
                self.begin_serving(x, ctx, e, CacheLabel::Hit, not_modified, false)
            }
            cached::Next::Wait => {
                ctx.waiters.push(ctx.key);
                if self.state != State::AwaitFill {
                    self.enter(State::AwaitFill, ctx);
                }
                Step::Wait
            }
        }
    }

    /// Prepares the head of a response from `entry` and moves to `ServeCached`; the upstream
    /// connection of a revalidation goes back to the pool when `upstream_reusable`.
    #[inline]
    pub(super) fn begin_serving(
        &mut self,
        x: &mut Exchange,
        ctx: &mut Ctx<'_>,
        entry: Arc<CacheEntry>,
        label: CacheLabel,
        not_modified: bool,
        upstream_reusable: bool,
    ) -> Step {
        let (resp, with_body) = cached::hit_response(&entry, not_modified, &x.info, ctx.stopping);
        let mut codec = H1Codec::new(
            &mut self.client,
            &mut self.to_client,
            &mut self.client_framing,
            &mut x.client_bytes,
        );
        codec.stored_head(
            &entry,
            &resp,
            label,
            x.info.version,
            x.settings.config.cache.cdn_cache_control_pass,
            unix_now(),
        );
        let edge = &x.scope().edge;
        edge.finish_client_head(&mut self.to_client.bytes, resp.status, &self.facts);
        x.cache.serve(entry, label, with_body);
        x.resp = Some(resp);
        self.enter_returning_upstream(State::ServeCached, ctx, upstream_reusable)
    }

    /// Writes the cached head, then the body straight from the entry's map.
    pub(super) fn serve_cached(&mut self, x: &mut Exchange, ctx: &mut Ctx<'_>) -> Step {
        let sent_before = x.client_bytes;
        let mut codec = H1Codec::new(
            &mut self.client,
            &mut self.to_client,
            &mut self.client_framing,
            &mut x.client_bytes,
        );
        let Ok(taken) = codec.body(x.cache.hit_body()) else {
            self.log_exchange(Some(x), ctx, 499);
            return self.enter(State::Closed, ctx);
        };
        x.cache.hit_sent(taken);
        let ended = if x.cache.hit_body().is_empty() {
            codec.end()
        } else {
            Ok(false)
        };
        match ended {
            Ok(true) => return self.finish_exchange(x, ctx),
            Ok(false) => {}
            Err(ClientGone) => {
                self.log_exchange(Some(x), ctx, 499);
                return self.enter(State::Closed, ctx);
            }
        }
        if x.client_bytes != sent_before {
            self.deadline = ctx.clock.now + ctx.settings.config.timeouts.client_idle;
        }
        Step::Wait
    }
}
