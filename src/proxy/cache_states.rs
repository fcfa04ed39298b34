//! The exchange's cache states, as functions over the connection part (`Conn`) and the exchange
//! (as in `relay.rs`): the cache's decision when a request begins (`cached::Next`: a backend,
//! serve an entry, or wait for a fill), `AwaitFill`, and `ServeCached` (a stored head, then the
//! body from the entry's memory map). The decisions themselves are `cached.rs`'s.

use std::sync::Arc;

use super::cached::{self, CacheLabel, Consulted};
use super::compressing::{pump_compressed, start_compressor, PumpError, Tee};
use super::exchange::Exchange;
use super::h1::{ClientGone, H1Codec};
use super::session::{Conn, Ctx, State, Step};
use crate::cache::{unix_now, CacheEntry};
use crate::compress::{decide_stored, Coding, Decision};
use crate::http::body::BodyKind;
use std::os::unix::fs::FileExt;

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
    /// connection of a revalidation goes back to the pool when `upstream_reusable`. A client
    /// that gets the entry compressed is served its stored variant when there is one (as any
    /// hit: no compression work), else the entry compressed on the fly.
    #[inline]
    pub(super) fn begin_serving(
        &mut self,
        x: &mut Exchange,
        ctx: &mut Ctx<'_>,
        mut entry: Arc<CacheEntry>,
        label: CacheLabel,
        not_modified: bool,
        upstream_reusable: bool,
    ) -> Step {
        let (mut resp, with_body) =
            cached::hit_response(&entry, not_modified, &x.info, ctx.stopping);
        let mut on_the_fly = None;
        // `compress off`, or a client asking for no coding: this one branch.
        if with_body && x.asked.coding.is_some() {
            match hit_coding(x, &entry) {
                HitCoding::Variant(variant) => {
                    resp = cached::hit_response(&variant, false, &x.info, ctx.stopping).0;
                    entry = variant;
                }
                HitCoding::OnTheFly(coding) => on_the_fly = Some(coding),
                HitCoding::Identity => {}
            }
        }
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
        x.client_head_bytes += self.to_client.bytes.len() as u64;
        x.resp = Some(resp);
        if let Some(coding) = on_the_fly {
            self.compress_hit(x, &entry, coding);
        }
        x.cache.serve(entry, label, with_body);
        self.enter_returning_upstream(State::ServeCached, ctx, upstream_reusable)
    }

    /// A hit compressed on the fly (no variant of its coding yet): its head rewritten for the
    /// coding, its body read from the entry's file through a `BodyCompressor`, and the output
    /// also written as the entry's variant (`CacheWork::begin_variant`). When the file cannot
    /// be opened or the encoder made, it is served as stored.
    fn compress_hit(&mut self, x: &mut Exchange, entry: &Arc<CacheEntry>, coding: Coding) {
        let Some(file) = entry.open_body() else {
            return;
        };
        let Ok(compressor) = start_compressor(&x.settings.config, coding) else {
            return;
        };
        self.begin_compressing(x, coding, compressor);
        x.compressed_hit = Some(file);
        x.cache.begin_variant(entry, coding);
    }

    /// Writes the cached head, then the body straight from the entry's map.
    pub(super) fn serve_cached(&mut self, x: &mut Exchange, ctx: &mut Ctx<'_>) -> Step {
        if x.compressor.is_some() {
            return self.serve_cached_compressed(x, ctx);
        }
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

    /// A compressed hit: the body read from the entry's file (`pread`, a bounded piece per
    /// round, at the offset the hit has reached) and pumped through the compressor.
    fn serve_cached_compressed(&mut self, x: &mut Exchange, ctx: &mut Ctx<'_>) -> Step {
        let (Some(compressor), Some(file)) = (x.compressor.as_deref_mut(), &x.compressed_hit)
        else {
            return self.enter(State::Closed, ctx);
        };
        let total = match x.resp.as_ref().map(|r| r.body) {
            Some(BodyKind::Length(n)) => n,
            _ => 0,
        };
        let remaining = x.cache.hit_body().len();
        let offset = total.saturating_sub(remaining as u64);
        let mut piece = [0u8; HIT_PIECE];
        let wanted = remaining.min(piece.len());
        let read = match file.read_at(&mut piece[..wanted], offset) {
            Ok(n) if n > 0 || wanted == 0 => n,
            Ok(_) | Err(_) => {
                log::warn!("a cached body being compressed could not be read; closing");
                self.log_exchange(Some(x), ctx, 500);
                return self.enter(State::Closed, ctx);
            }
        };
        let sent_before = x.client_bytes;
        let mut codec = H1Codec::new(
            &mut self.client,
            &mut self.to_client,
            &mut self.client_framing,
            &mut x.client_bytes,
        );
        let last = read == remaining;
        let pumped = pump_compressed(
            &mut codec,
            compressor,
            &piece[..read],
            last,
            Some(&mut x.cache),
        );
        match pumped {
            Ok(pumped) => {
                if pumped.took > 0 {
                    x.cache.hit_sent(pumped.took);
                }
                if pumped.ended {
                    return self.finish_exchange(x, ctx);
                }
                if pumped.took > 0 || x.client_bytes != sent_before {
                    self.deadline = ctx.clock.now + ctx.settings.config.timeouts.client_idle;
                    return self.again_within_budget(pumped.took);
                }
                Step::Wait
            }
            Err(PumpError::ClientGone) => {
                self.log_exchange(Some(x), ctx, 499);
                self.enter(State::Closed, ctx)
            }
            Err(PumpError::Encoder(e)) => {
                log::warn!("compressing a cached response failed: {e}");
                self.log_exchange(Some(x), ctx, 500);
                self.enter(State::Closed, ctx)
            }
        }
    }
}

/// Bytes of a cached body read per round of a compressed hit (on the stack).
const HIT_PIECE: usize = 16 * 1024;

/// A compressed hit's output also goes to the variant its `CacheWork` may be writing.
impl Tee for cached::CacheWork {
    fn taken(&mut self, bytes: &[u8]) {
        self.variant_taken(bytes);
    }

    fn complete(&mut self) {
        self.variant_complete();
    }
}

/// How a hit whose client accepts a coding is served.
enum HitCoding {
    /// The entry's stored variant in the coding: an ordinary hit of that entry.
    Variant(Arc<CacheEntry>),
    /// The entry compressed as it is sent (no variant yet).
    OnTheFly(Coding),
    /// As stored (`decide_stored` says no).
    Identity,
}

/// Whether the stored response qualifies for the client's coding (`decide_stored`: stored
/// `Content-Encoding`, `no-transform`, type, length), and if so, whether its variant is stored.
fn hit_coding(x: &Exchange, entry: &CacheEntry) -> HitCoding {
    let settings = &x.settings.config.compress;
    let decision = decide_stored(
        x.asked,
        entry.meta.status,
        |name| entry.meta.header_bytes(name),
        entry.body_len,
        &settings.types,
        settings.min_length,
    );
    let Decision::Compress(coding) = decision else {
        return HitCoding::Identity;
    };
    match x.cache.variant(entry, coding) {
        Some(variant) => HitCoding::Variant(variant),
        None => HitCoding::OnTheFly(coding),
    }
}
