//! The upstream side of an exchange, as functions over the connection part (`Conn`) and the
//! exchange (`&mut Exchange`, handed over by `Session::drive`): pick a backend, connect, send
//! the request (head and body), read the response head (1xx relayed in place), relay the body
//! (buffered, or spliced), and finish: log, recycle the upstream connection, next request.
//! Failures, retries and proxy-made responses are in `failure.rs`; compression in
//! `compressing.rs`.

use super::cached::{self, CacheLabel};
use super::compressing::{
    compressed_head, pump_compressed, start_compressor, CompressFrom, PumpError,
};
use super::exchange::Exchange;
use super::h1::{self, ClientGone, H1Codec};
use super::session::{head_limits, Conn, Ctx, State, Step};
#[cfg(target_os = "linux")]
use super::splice::{SplicePipe, Spliced};
use super::transport::Stream;
use super::upstream::ExchangeKey;
use super::upstream_failure::Phase;
use crate::balance::key_hash;
use crate::buffer::Buffer;
use crate::compress::{BodyCompressor, Coding, CompressedHead};
use crate::config::HashKey;
use crate::http::body::{BodyKind, BodyRelay};
use crate::http::response::ResponseInfo;
use crate::http::Version;
use crate::net::proxy_protocol;
use crate::routing::{header_value, Routed};
use crate::tls::client::TlsFailure;

impl Conn {
    /// Chooses the next backend for the current request and starts talking to it.
    pub(super) fn pick_backend(&mut self, x: &mut Exchange, ctx: &mut Ctx<'_>) -> Step {
        let pool = match x.route.routed {
            Routed::Pool(pool) => pool as usize,
            Routed::Refuse(status) => {
                return self.fail(Some(x), ctx, status, "no site or route", false)
            }
        };
        let backends = &x.settings.backends;
        let key = match backends.hash_key(pool) {
            None => 0,
            Some(HashKey::Uri) => key_hash(self.line.target.as_bytes()),
            Some(HashKey::Header(name)) => {
                key_hash(header_value(&self.to_upstream.bytes, name).unwrap_or_default())
            }
        };
        if let Some(previous) = x.backend.take() {
            backends.release(previous);
        }
        let Some(b) = backends.pick_in(pool, x.tried, key) else {
            let (status, why) = if x.timed_out {
                (504, "no backend answered in time")
            } else {
                (502, "no backend could be reached")
            };
            return self.fail(Some(x), ctx, status, why, false);
        };
        x.backend = Some(b);
        x.upstream_began.get_or_insert(ctx.clock.now);
        let generation = x.settings.generation;
        let owner = ExchangeKey {
            session: ctx.key,
            exchange: x.id,
        };
        let pooled = match backends.get(b).proxy_protocol {
            None => ctx.upstreams.checkout(ctx.registry, generation, b, owner),
            Some(_) => {
                let client = self.peer;
                ctx.upstreams
                    .checkout_for_client(ctx.registry, generation, b, owner, client)
            }
        };
        if let Some(key) = pooled {
            x.reused = true;
            self.to_upstream.rewind();
            return self.enter_sending(x, key, ctx);
        }
        self.connect(x, ctx, b)
    }

    /// Opens a fresh connection to backend `b`.
    pub(super) fn connect(&mut self, x: &mut Exchange, ctx: &mut Ctx<'_>, b: usize) -> Step {
        let backend = x.settings.backends.get(b);
        let (generation, addr) = (x.settings.generation, backend.addr);
        let owner = ExchangeKey {
            session: ctx.key,
            exchange: x.id,
        };
        // A TLS backend: the rustls client for it (the config is shared, built at load).
        let tls = match (&backend.tls_name, &x.settings.config.backend_tls) {
            (Some(name), Some(client)) => {
                match rustls::ClientConnection::new(client.config.clone(), name.clone()) {
                    Ok(conn) => Some(conn),
                    Err(e) => {
                        self.upstream_event(x, Phase::Connect, format_args!("TLS refused: {e}"));
                        x.backend_failed("cannot connect");
                        return self.retry_elsewhere(x, ctx);
                    }
                }
            }
            _ => None,
        };
        match ctx
            .upstreams
            .connect(ctx.registry, generation, b, addr, owner, tls)
        {
            Ok(key) => {
                x.reused = false;
                self.to_upstream.rewind();
                self.enter(State::Connecting { upstream: key }, ctx)
            }
            Err(e) => {
                self.upstream_event(x, Phase::Connect, format_args!("cannot open a socket: {e}"));
                x.backend_failed("cannot connect");
                self.retry_elsewhere(x, ctx)
            }
        }
    }

    pub(super) fn connecting(&mut self, x: &mut Exchange, ctx: &mut Ctx<'_>, key: usize) -> Step {
        let Some(up) = ctx.upstreams.conns.get_mut(key) else {
            return self.enter(State::Closed, ctx);
        };
        if !up.writable && !up.readable {
            return Step::Wait;
        }
        if up.connected {
            // TCP is up; a TLS backend's handshake is under way.
            return self.tls_handshake(x, ctx, key);
        }
        let Some(sock) = up.stream.socket() else {
            return self.enter(State::Closed, ctx);
        };
        let failure = match sock.take_error() {
            Ok(Some(e)) | Err(e) => Some(e),
            Ok(None) => match sock.peer_addr() {
                Ok(_) => None,
                Err(e) if e.kind() == std::io::ErrorKind::NotConnected => {
                    // A stale event from the socket that used this token before: keep waiting.
                    up.writable = false;
                    up.readable = false;
                    return Step::Wait;
                }
                Err(e) => Some(e),
            },
        };
        match failure {
            None => {
                up.connected = true;
                let proxy_protocol = x.settings.backends.get(up.backend).proxy_protocol;
                if let Some(version) = proxy_protocol {
                    let client = self.peer;
                    // A unix-socket client has no address to announce: UNKNOWN / LOCAL.
                    let addrs = (client != crate::net::UNIX_CLIENT).then(|| {
                        let dest = self.destination;
                        (client, dest.unwrap_or_else(|| self.client.local_addr()))
                    });
                    let header = proxy_protocol::Header::new(version, addrs);
                    if let Err(e) = up.send_proxy_header(header.as_bytes(), client) {
                        self.upstream_event(
                            x,
                            Phase::Connect,
                            format_args!("could not send the PROXY protocol header: {e}"),
                        );
                        x.backend_failed("PROXY protocol header not sent");
                        return self.retry_elsewhere(x, ctx);
                    }
                }
                if matches!(up.stream, Stream::Tls(_)) {
                    return self.tls_handshake(x, ctx, key);
                }
                self.enter_sending(x, key, ctx)
            }
            Some(e) => {
                self.upstream_event(
                    x,
                    Phase::Connect,
                    format_args!("refused or failed the connection: {e}"),
                );
                x.backend_failed("connection refused or failed");
                self.retry_elsewhere(x, ctx)
            }
        }
    }

    /// A TLS backend's handshake, still in the connecting state: its failure (a refused
    /// certificate, no common version, a plain HTTP port) is a failed connect, tried elsewhere
    /// and logged with rustls's reason; the connect deadline covers it. Leaving `Connecting`
    /// releases the connection (`Conn::enter`).
    fn tls_handshake(&mut self, x: &mut Exchange, ctx: &mut Ctx<'_>, key: usize) -> Step {
        let Some(up) = ctx.upstreams.conns.get_mut(key) else {
            return self.enter(State::Closed, ctx);
        };
        let Stream::Tls(tls) = &mut up.stream else {
            return self.enter_sending(x, key, ctx);
        };
        match tls.handshake(&mut up.readable, &mut up.writable) {
            Ok(true) => self.enter_sending(x, key, ctx),
            Ok(false) => Step::Wait,
            Err(e) => {
                let name = x
                    .backend
                    .map(|b| x.settings.backends.get(b))
                    .map_or_else(String::new, |b| b.name.clone());
                match TlsFailure::from_io(&e, &name) {
                    Some(why) => {
                        self.upstream_event(x, Phase::Connect, format_args!("TLS handshake: {why}"))
                    }
                    None => {
                        self.upstream_event(x, Phase::Connect, format_args!("TLS handshake: {e}"))
                    }
                }
                x.backend_failed("TLS handshake failed");
                self.retry_elsewhere(x, ctx)
            }
        }
    }

    pub(super) fn send_request(&mut self, x: &mut Exchange, ctx: &mut Ctx<'_>, key: usize) -> Step {
        let max_body = ctx.settings.config.limits.max_body_size;
        let Some(up) = ctx.upstreams.conns.get_mut(key) else {
            return self.enter(State::Closed, ctx);
        };
        let buf = self.client_in.get_or_insert_with(|| ctx.buffers.get());
        let mut progress = false;

        // Request body from the client, only up to what the framing says is this request's.
        if !x.req_body.is_complete() {
            match self.client.fill(buf) {
                Ok(f) => {
                    progress |= f.bytes > 0;
                    if f.eof && buf.len() == x.req_body.ready() {
                        self.client.set_eof();
                    }
                }
                Err(_) => self.client.set_eof(),
            }
            if let Err(e) = x.req_body.scan(buf) {
                log::info!("bad request body from {}: {e}", self.peer);
                return self.fail(Some(x), ctx, 400, "malformed chunked request body", true);
            }
            if x.body_over(max_body) {
                return self.fail(Some(x), ctx, 413, "request body larger than allowed", true);
            }
            if self.client.eof() && !x.req_body.is_complete() && x.req_body.ready() == 0 {
                // The client gave up mid-body; nothing sensible can reach the backend.
                self.log_exchange(Some(x), ctx, 499);
                return self.enter(State::Closed, ctx);
            }
        }

        let ready = x.req_body.ready();
        match up.stream.flush(
            &mut up.writable,
            &mut self.to_upstream,
            &buf.data()[..ready],
        ) {
            Ok(w) => {
                buf.consume(w.body);
                x.req_body.sent(w.body);
                x.upstream_sent += w.total as u64;
                progress |= w.total > 0;
            }
            Err(e) => return self.upstream_failed(x, ctx, Phase::Send, format_args!("{e}")),
        }
        if progress {
            self.touch(x, ctx);
        }

        // A backend may answer (100 Continue, or a final response) before the body is sent; a
        // relayed 100 still queued for the client must go out, or the client never sends the body.
        if self.upstream_has_input(ctx, key) || !self.to_client.is_empty() {
            let step = self.read_response_head(x, ctx, key);
            if self.state != (State::SendRequest { upstream: key }) {
                return step;
            }
            progress |= step == Step::Again;
        }
        if self.to_upstream.is_empty() && x.req_body.is_complete() {
            return self.enter(State::ReadResponseHead { upstream: key }, ctx);
        }
        if progress {
            Step::Again
        } else {
            Step::Wait
        }
    }

    fn upstream_has_input(&self, ctx: &Ctx<'_>, key: usize) -> bool {
        ctx.upstreams.conns.get(key).is_some_and(|u| u.readable)
            || self.upstream_in.as_ref().is_some_and(|b| !b.is_empty())
    }

    /// Reads and handles response heads. Used in ReadResponseHead and, for early answers, in
    /// SendRequest.
    pub(super) fn read_response_head(
        &mut self,
        x: &mut Exchange,
        ctx: &mut Ctx<'_>,
        key: usize,
    ) -> Step {
        let limits = head_limits(ctx);
        let mut codec = H1Codec::new(
            &mut self.client,
            &mut self.to_client,
            &mut self.client_framing,
            &mut x.client_bytes,
        );
        // An interim response being written goes out before the next head is parsed over it.
        if !codec.nothing_queued() {
            match codec.push() {
                Ok(true) => {}
                Ok(false) => return Step::Wait,
                Err(ClientGone) => {
                    self.log_exchange(Some(x), ctx, 499);
                    return self.enter(State::Closed, ctx);
                }
            }
        }
        let Some(up) = ctx.upstreams.conns.get_mut(key) else {
            return self.enter(State::Closed, ctx);
        };
        let buf = self.upstream_in.get_or_insert_with(|| ctx.buffers.get());
        loop {
            if !buf.is_empty() {
                let side = h1::client_side(x, ctx.stopping);
                let mut codec = H1Codec::new(
                    &mut self.client,
                    &mut self.to_client,
                    &mut self.client_framing,
                    &mut x.client_bytes,
                );
                let cache = ctx.shared.cache.as_ref();
                // The cache reads the head as parsed for the client: it is parsed once.
                let mut refreshed = None;
                let mut compressing = None;
                let parsed =
                    codec.head(buf.data(), limits, side, &mut |head, info, client_head| {
                        if let Some(cache) = cache.filter(|_| !info.is_interim()) {
                            refreshed = x.cache.on_response_head(
                                cache,
                                x.settings.config.freshness(),
                                &x.info,
                                head,
                                &self.req_head,
                                &self.line,
                                client_head,
                            );
                        }
                        // `Exchange::scope`, spelt by field: the codec holds `x.client_bytes`.
                        let edge = &x.settings.router.scope(x.route.scope).edge;
                        edge.finish_client_head(client_head, info.status, &self.facts);
                        // `compress off`, or a client asking for no coding: this one branch.
                        if x.asked.coding.is_some() && !info.is_interim() {
                            compressing = compressed_head(
                                x.asked,
                                head,
                                info.body,
                                &x.settings.config,
                                side,
                                client_head,
                            );
                        }
                    });
                match parsed {
                    Ok(Some(mut info)) => {
                        buf.consume(info.head_len);
                        if info.is_interim() {
                            x.client_head_bytes += codec.queued_len();
                            return Step::Again;
                        }
                        x.settings.backends.report_success(up.backend);
                        if let Some(entry) = refreshed {
                            // A 304 to our revalidation: the stored body is good, serve it.
                            codec.discard();
                            let not_modified = cached::client_not_modified(&self.req_head, &entry);
                            return self.begin_serving(
                                x,
                                ctx,
                                entry,
                                CacheLabel::Revalidated,
                                not_modified,
                                info.upstream_reusable,
                            );
                        }
                        if let Some(CompressFrom::MinLength(coding)) = compressing {
                            x.compress_held = Some(coding);
                        }
                        if let Some(CompressFrom::Head(coding)) = compressing {
                            match start_compressor(&x.settings.config, coding) {
                                Ok(compressor) => {
                                    x.compressor = Some(compressor);
                                    info.client_keep_alive &= side.version == Version::Http11;
                                }
                                Err(e) => {
                                    codec.discard();
                                    log::warn!("cannot start a {} encoder: {e}", coding.token());
                                    let why = "the response could not be compressed";
                                    return self.fail(Some(x), ctx, 500, why, true);
                                }
                            }
                        }
                        x.client_head_bytes += codec.queued_len();
                        return self.start_response(x, ctx, info, key);
                    }
                    Ok(None) if buf.is_full() => buf.grow(limits.max_header_bytes),
                    Ok(None) => {}
                    Err(bad) => {
                        codec.discard();
                        self.upstream_event(
                            x,
                            Phase::Head,
                            format_args!("sent an invalid response head: {}", bad.0),
                        );
                        x.backend_failed("sent an invalid response");
                        return self.fail(
                            Some(x),
                            ctx,
                            502,
                            "the backend sent an invalid response",
                            true,
                        );
                    }
                }
            }
            match up
                .stream
                .fill(&mut up.readable, &mut up.writable, up.hup, buf)
            {
                Ok(f) if f.bytes > 0 => x.response_started = true,
                Ok(f) if !f.eof => return Step::Wait,
                Ok(_) => {
                    return self.upstream_failed(
                        x,
                        ctx,
                        Phase::Head,
                        format_args!("closed the connection before a complete response head"),
                    )
                }
                Err(e) => return self.upstream_failed(x, ctx, Phase::Head, format_args!("{e}")),
            }
        }
    }

    fn start_response(
        &mut self,
        x: &mut Exchange,
        ctx: &mut Ctx<'_>,
        info: ResponseInfo,
        key: usize,
    ) -> Step {
        // Plain data when the cache stores it (as it is, never decoded again); otherwise the
        // codec may take the backend's chunks as they are.
        let mut codec = H1Codec::new(
            &mut self.client,
            &mut self.to_client,
            &mut self.client_framing,
            &mut x.client_bytes,
        );
        let dechunk = if x.compressor.is_some() {
            codec.begin_compressed_body(&info, x.info.version)
        } else if x.compress_held.is_some() {
            // Plain data while held; the client's framing is set at the decision.
            info.body == BodyKind::Chunked
        } else {
            codec.begin_body(&info, x.cache.is_storing())
        };
        x.resp_body = BodyRelay::new(info.body, dechunk);
        let switching = info.status == 101;
        x.resp = Some(info);
        if switching {
            return self.enter(State::Tunnel { upstream: key }, ctx);
        }
        self.enter(State::RelayResponse { upstream: key }, ctx)
    }

    pub(super) fn relay_response(
        &mut self,
        x: &mut Exchange,
        ctx: &mut Ctx<'_>,
        key: usize,
    ) -> Step {
        if let Some(step) = self.relay_spliced(x, ctx, key) {
            return step;
        }
        let Some(up) = ctx.upstreams.conns.get_mut(key) else {
            return self.enter(State::Closed, ctx);
        };
        let buf = self.upstream_in.get_or_insert_with(|| ctx.buffers.get());
        let mut truncated = false;
        let mut progress = false;
        if !x.resp_body.is_complete() {
            let filled = up
                .stream
                .fill(&mut up.readable, &mut up.writable, up.hup, buf);
            // Scan what arrived before acting on an EOF that came with it.
            let before = x.resp_body.ready();
            if x.resp_body.scan(buf).is_err() {
                truncated = true;
            }
            x.cache.store_body(&buf.data()[before..x.resp_body.ready()]);
            match filled {
                Ok(f) => {
                    progress |= f.bytes > 0;
                    if f.eof && !x.resp_body.on_eof() {
                        truncated = true;
                    }
                }
                Err(_) => truncated = true,
            }
        }
        if x.resp_body.has_ended() && !truncated {
            // Stored whole: publish before the client can have its last byte, so a request it
            // sends next, on any connection and worker, finds the entry.
            x.cache.publish();
        }
        // A body of unknown length that would be compressed: held until the decision.
        let buf = if let Some(coding) = x.compress_held {
            let long_enough = x.resp_body.ready() as u64 >= x.settings.config.compress.min_length;
            let ended = x.resp_body.has_ended() || truncated;
            if !long_enough && !ended && !buf.is_full() {
                return if progress { Step::Again } else { Step::Wait };
            }
            // A buffer full before the minimum (a small `buffer_size`) compresses too.
            let compress = long_enough || !ended;
            if let Err(step) = self.decide_held(x, ctx, coding, compress) {
                return step;
            }
            self.upstream_in.get_or_insert_with(|| ctx.buffers.get())
        } else {
            buf
        };
        let ready = x.resp_body.ready();
        let sent_before = x.client_bytes;
        let mut codec = H1Codec::new(
            &mut self.client,
            &mut self.to_client,
            &mut self.client_framing,
            &mut x.client_bytes,
        );
        let mut compressed_took = 0;
        let ended = if let Some(compressor) = x.compressor.as_deref_mut() {
            let last = x.resp_body.has_ended();
            match pump_compressed(&mut codec, compressor, &buf.data()[..ready], last, None) {
                Ok(pumped) => {
                    buf.consume(pumped.took);
                    x.resp_body.sent(pumped.took);
                    progress |= pumped.took > 0;
                    compressed_took = pumped.took;
                    Ok(pumped.ended)
                }
                Err(PumpError::ClientGone) => Err(ClientGone),
                Err(PumpError::Encoder(e)) => {
                    log::warn!("compressing a response failed: {e}");
                    self.log_exchange(Some(x), ctx, 502);
                    return self.enter(State::Closed, ctx);
                }
            }
        } else {
            match codec.body(&buf.data()[..ready]) {
                Ok(taken) => {
                    buf.consume(taken);
                    x.resp_body.sent(taken);
                }
                Err(ClientGone) => {
                    // The client went away; the upstream connection is mid-response, so drop it.
                    self.log_exchange(Some(x), ctx, 499);
                    return self.enter(State::Closed, ctx);
                }
            }
            if x.resp_body.is_complete() {
                codec.end()
            } else {
                Ok(false)
            }
        };
        progress |= x.client_bytes != sent_before;
        match ended {
            Ok(true) => return self.finish_exchange(x, ctx),
            Ok(false) => {}
            Err(ClientGone) => {
                self.log_exchange(Some(x), ctx, 499);
                return self.enter(State::Closed, ctx);
            }
        }
        if truncated {
            // Flush what arrived, then close: the client sees a short body, never a clean end.
            self.upstream_event(
                x,
                Phase::Body,
                format_args!("closed before the end of the response"),
            );
            if let Some(b) = x.backend {
                x.settings.backends.report_failure(b, "closed mid-response");
            }
            self.log_exchange(Some(x), ctx, 502);
            return self.enter(State::Closing { linger: true }, ctx);
        }
        if progress {
            self.touch(x, ctx);
            // An uncompressed relay leaves the budget whole: always `Again`.
            self.again_within_budget(compressed_took)
        } else {
            Step::Wait
        }
    }

    /// The held response's decision (`Exchange::compress_held`), its head still queued:
    /// compressed (the head rewritten, the compressor started, the body chunked anew or to the
    /// close), or as the backend sent it (a chunked body chunked again, as when it is stored).
    fn decide_held(
        &mut self,
        x: &mut Exchange,
        ctx: &mut Ctx<'_>,
        coding: Coding,
        compress: bool,
    ) -> Result<(), Step> {
        x.compress_held = None;
        let mut codec = H1Codec::new(
            &mut self.client,
            &mut self.to_client,
            &mut self.client_framing,
            &mut x.client_bytes,
        );
        let Some(resp) = x.resp.as_ref() else {
            return Err(self.enter(State::Closed, ctx));
        };
        if !compress {
            codec.begin_body(resp, true);
            return Ok(());
        }
        match start_compressor(&x.settings.config, coding) {
            Ok(compressor) => {
                self.begin_compressing(x, coding, compressor);
                Ok(())
            }
            Err(e) => {
                codec.discard();
                log::warn!("cannot start a {} encoder: {e}", coding.token());
                let why = "the response could not be compressed";
                Err(self.fail(Some(x), ctx, 500, why, true))
            }
        }
    }

    /// The response (`x.resp`), its head queued and counted, is compressed in `coding` from here
    /// on: the head rewritten for it (its length, and the count, change), an HTTP/1.0 client's
    /// connection closed after the body, the body framed anew (chunked, or to the close), and
    /// `compressor` made the exchange's. A miss's held body and a cache hit both start so.
    pub(super) fn begin_compressing(
        &mut self,
        x: &mut Exchange,
        coding: Coding,
        compressor: Box<BodyCompressor>,
    ) {
        let Some(resp) = x.resp.as_mut() else {
            return;
        };
        let version = x.info.version;
        let before = self.to_client.bytes.len() as u64;
        CompressedHead::new(coding, version).rewrite(&mut self.to_client.bytes);
        let after = self.to_client.bytes.len() as u64;
        x.client_head_bytes = (x.client_head_bytes + after).saturating_sub(before);
        resp.client_keep_alive &= version == Version::Http11;
        let mut codec = H1Codec::new(
            &mut self.client,
            &mut self.to_client,
            &mut self.client_framing,
            &mut x.client_bytes,
        );
        codec.begin_compressed_body(resp, version);
        x.compressor = Some(compressor);
    }

    /// The response is delivered: log, recycle the upstream connection, and either wait for the
    /// next request or close.
    pub(super) fn finish_exchange(&mut self, x: &mut Exchange, ctx: &mut Ctx<'_>) -> Step {
        let status = x.resp.as_ref().map_or(0, |r| r.status);
        let reusable = x.resp.as_ref().is_some_and(|r| r.upstream_reusable)
            && x.req_body.is_complete()
            && self.upstream_in.as_ref().is_none_or(Buffer::is_empty);
        let keep_alive = x.resp.as_ref().is_some_and(|r| r.client_keep_alive) && !ctx.stopping;
        // The client said this was its last request and sent all of it: no lingering needed.
        let client_done =
            !x.info.keep_alive && x.req_body.is_complete() && !self.has_buffered_input();
        x.cache.publish();
        self.log_exchange(Some(x), ctx, status);
        self.served = true;
        // The exchange itself ends as this state leads to the next request or the close
        // (`Session::drive`).
        if keep_alive {
            self.enter_returning_upstream(State::ReadRequestHead, ctx, reusable)
        } else {
            self.enter_returning_upstream(
                State::Closing {
                    linger: !client_done,
                },
                ctx,
                reusable,
            )
        }
    }

    /// Lets go of upstream connection `key` as the state holding it is left (only
    /// `Conn::enter` calls it): back to the pool when `reusable`, else closed. What was read
    /// from it and not relayed goes with it.
    pub(super) fn release_upstream(&mut self, ctx: &mut Ctx<'_>, key: usize, reusable: bool) {
        if reusable {
            if let Some(up) = ctx.upstreams.conns.get_mut(key) {
                up.uses += 1;
            }
            ctx.upstreams.checkin(ctx.registry, key, ctx.clock.now);
        } else {
            ctx.upstreams.close(ctx.registry, key);
        }
        if let Some(b) = self.upstream_in.take() {
            ctx.buffers.put(b);
        }
    }

    /// Relays the rest of the response body with splice(2) when that applies (`splice.rs`).
    /// `None` means it does not: the caller relays through the buffer.
    #[cfg(target_os = "linux")]
    fn relay_spliced(&mut self, x: &mut Exchange, ctx: &mut Ctx<'_>, key: usize) -> Option<Step> {
        // A TLS backend's bytes must be decrypted: no splice from it.
        let upstream_fd = ctx.upstreams.conns.get(key)?.stream.splice_fd()?;
        if x.splice.is_none() {
            if x.compressor.is_some() || x.compress_held.is_some() {
                // The compressor needs the data (or may: the decision waits for it).
                return None;
            }
            // The codec allows it: the data goes out as it is, with nothing queued before it.
            let codec = H1Codec::new(
                &mut self.client,
                &mut self.to_client,
                &mut self.client_framing,
                &mut x.client_bytes,
            );
            x.splice = Some(SplicePipe::for_body(
                x.settings.config.splice,
                x.resp_body.unscanned_length(),
                self.upstream_in.as_ref().is_some_and(|b| !b.is_empty()),
                x.cache.is_storing(),
                codec.splice_client()?,
            )?);
        }
        let up = ctx.upstreams.conns.get_mut(key)?;
        let pipe = x.splice.as_mut()?;
        let outcome = pipe.relay(
            &upstream_fd,
            &mut up.readable,
            &mut self.client,
            &mut x.resp_body,
            &mut x.client_bytes,
        );
        Some(match outcome {
            Spliced::Done => {
                x.splice = None;
                self.finish_exchange(x, ctx)
            }
            Spliced::Broken => {
                self.upstream_event(
                    x,
                    Phase::Body,
                    format_args!("closed before the end of the response (spliced)"),
                );
                self.log_exchange(Some(x), ctx, 502);
                self.enter(State::Closed, ctx)
            }
            Spliced::ClientGone => {
                // As in the buffered relay: logged with the bytes the client got.
                self.log_exchange(Some(x), ctx, 499);
                self.enter(State::Closed, ctx)
            }
            Spliced::Blocked { progress: true } => {
                self.touch(x, ctx);
                Step::Wait
            }
            Spliced::Blocked { progress: false } => Step::Wait,
        })
    }

    /// No splice on this platform: the caller relays the body through the buffer.
    #[cfg(not(target_os = "linux"))]
    fn relay_spliced(
        &mut self,
        _x: &mut Exchange,
        _ctx: &mut Ctx<'_>,
        _key: usize,
    ) -> Option<Step> {
        None
    }
}
