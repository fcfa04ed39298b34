//! After `101 Switching Protocols` the connection is a byte tunnel (WebSocket): bytes go both
//! ways unchanged until either side closes.

use super::exchange::Exchange;
use super::io::Pending;
use super::session::{Conn, Ctx, State, Step};

impl Conn {
    pub(super) fn tunnel(&mut self, x: &mut Exchange, ctx: &mut Ctx<'_>, key: usize) -> Step {
        let Some(up) = ctx.upstreams.conns.get_mut(key) else {
            return self.enter(State::Closed, ctx);
        };
        let cin = self.client_in.get_or_insert_with(|| ctx.buffers.get());
        let uin = self.upstream_in.get_or_insert_with(|| ctx.buffers.get());
        let mut progress = false;
        let mut no_more = Pending::default();

        let from_client = self.client.fill(cin);
        let from_upstream = up
            .stream
            .fill(&mut up.readable, &mut up.writable, up.hup, uin);
        let to_up = up.stream.flush(&mut up.writable, &mut no_more, cin.data());
        if let Ok(w) = &to_up {
            cin.consume(w.body);
        }
        let to_cl = self.client.flush(&mut self.to_client, uin.data());
        if let Ok(w) = &to_cl {
            uin.consume(w.body);
        }
        match from_client {
            Ok(f) => {
                if f.eof {
                    self.client.set_eof();
                }
                progress |= f.bytes > 0;
            }
            Err(_) => return self.end_tunnel(x, ctx),
        }
        match from_upstream {
            Ok(f) => {
                // `connected` now means "the backend may still send".
                up.connected &= !f.eof;
                progress |= f.bytes > 0;
            }
            Err(_) => return self.end_tunnel(x, ctx),
        }
        match (to_up, to_cl) {
            (Ok(a), Ok(b)) => {
                progress |= a.total + b.total > 0;
                x.client_bytes += b.total as u64;
            }
            _ => return self.end_tunnel(x, ctx),
        }
        // A side that finished sending and whose bytes are all delivered ends the tunnel: the
        // protocols tunnelled here (WebSocket) do not use half-closed connections. Delivered
        // means out of the transport too: a TLS stream may still hold ciphertext, which would
        // otherwise get only close_notify's one best-effort write.
        let client_done = self.client.eof() && cin.is_empty() && up.stream.is_flushed();
        let upstream_done = !up.connected && uin.is_empty() && self.client.all_out(&self.to_client);
        if client_done || upstream_done {
            return self.end_tunnel(x, ctx);
        }
        if progress {
            self.touch(x, ctx);
            Step::Again
        } else {
            Step::Wait
        }
    }

    pub(super) fn end_tunnel(&mut self, x: &mut Exchange, ctx: &mut Ctx<'_>) -> Step {
        self.log_exchange(Some(x), ctx, 101);
        self.enter(State::Closed, ctx)
    }
}
