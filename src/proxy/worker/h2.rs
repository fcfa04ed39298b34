//! The worker's HTTP/2 side: a connection that agreed h2 becomes an `H2Session` in its own slab
//! (tokens from `FIRST_H2`), and the drive queue carries a pipe's progress between an h2
//! connection and its streams' child sessions within a turn.

use std::net::SocketAddr;

use mio::event::Event;
use mio::{Interest, Token};

use super::{readiness, Worker, FIRST_H2, MAX_H2, MAX_QUEUED_DRIVES};
use crate::proxy::h2_session::{H2Ctx, H2Session, H2Work};
use crate::proxy::session::Session;
use crate::proxy::transport::ClientTransport;

/// A session to run because another moved bytes through a pipe between them.
#[derive(Debug, Clone, Copy)]
pub(super) enum Drive {
    /// An h2 stream's child session (its pipe was fed or drained).
    Child(usize),
    /// An h2 connection (one of its children made progress).
    H2(usize),
}
impl Worker {
    /// A connection that agreed HTTP/2 (ALPN `h2`, or `h2c on` and the preface): its socket
    /// moves to an `H2Session`'s token.
    pub(super) fn start_h2(
        &mut self,
        mut client: ClientTransport,
        peer: SocketAddr,
        read: crate::buffer::Buffer,
    ) {
        let entry = self.h2_sessions.vacant_entry();
        let key = entry.key();
        let interest = Interest::READABLE | Interest::WRITABLE;
        let registered = match client.source_mut() {
            Some(source) if key < MAX_H2 => {
                self.poll
                    .registry()
                    .reregister(source, Token(FIRST_H2 + key), interest)
            }
            _ => Err(std::io::ErrorKind::Unsupported.into()),
        };
        if let Err(e) = registered {
            log::error!("cannot register HTTP/2 client {peer}: {e}");
            self.buffers.put(read);
            self.connection_closed();
            return;
        }
        // Readiness is kept by the transport: what arrived may be waiting already.
        client.on_event(true, true, false);
        let now = self.clock.now;
        entry.insert(H2Session::new(
            client,
            peer,
            read,
            &self.settings.config,
            now,
        ));
        self.shared.stats.h2_connection_opened();
        self.queue_h2(key);
    }

    pub(super) fn h2_event(&mut self, key: usize, event: &Event) {
        if let Some(h2) = self.h2_sessions.get_mut(key) {
            let (r, w) = readiness(event);
            h2.on_client_event(r, w, event.is_read_closed());
            self.drive_h2(key, false);
        }
    }

    /// Puts h2 connection `key` in the drive queue (once).
    pub(super) fn queue_h2(&mut self, key: usize) {
        if let Some(h2) = self.h2_sessions.get_mut(key) {
            if !h2.queued {
                h2.queued = true;
                self.drive_queue.push_back(Drive::H2(key));
            }
        }
    }

    /// Runs h2 connection `key` (or its timeout), then the children it woke and aborted; removes
    /// it if it closed.
    pub(super) fn drive_h2(&mut self, key: usize, timed_out: bool) {
        let Some(h2) = self.h2_sessions.get_mut(key) else {
            return;
        };
        let mut work = H2Work::default();
        let mut ctx = H2Ctx {
            sessions: &mut self.sessions,
            buffers: &mut self.buffers,
            heads: &mut self.heads,
            spares: &mut self.h2_spares,
            config: &self.settings.config,
            stats: &self.shared.stats,
            now: self.clock.now,
            key,
            stopping: self.stop_deadline.is_some(),
        };
        if timed_out {
            h2.on_timeout(ctx.now, ctx.config, &mut work);
        }
        let before = ctx.sessions.len();
        h2.drive(&mut ctx, &mut work);
        // Children started by this drive (a child is never removed during it).
        self.children += self.sessions.len() - before;
        for child in work.abort {
            self.run_session(child, Session::abort);
        }
        for child in work.drive {
            self.drive_queue.push_back(Drive::Child(child));
        }
        if work.again {
            self.queue_h2(key);
        }
        let Some(h2) = self.h2_sessions.get_mut(key) else {
            return;
        };
        if h2.is_closed() {
            let mut h2 = self.h2_sessions.remove(key);
            h2.release(&mut self.buffers);
            if let Some(phase) = h2.client().tls_phase() {
                self.shared.stats.tls_closed(phase);
            }
            self.shared.stats.h2_connection_closed();
            drop(h2);
            self.connection_closed();
        }
    }

    /// Runs the sessions queued because a pipe between them moved: each child driven may queue
    /// its h2 connection, which may queue children in turn, until nothing moves (bounded per
    /// tick: the rest waits for the next, which then polls without waiting).
    pub(super) fn run_drive_queue(&mut self) {
        for _ in 0..MAX_QUEUED_DRIVES {
            let Some(next) = self.drive_queue.pop_front() else {
                return;
            };
            match next {
                Drive::Child(key) => self.drive(key, false),
                Drive::H2(key) => {
                    if let Some(h2) = self.h2_sessions.get_mut(key) {
                        h2.queued = false;
                        self.drive_h2(key, false);
                    }
                }
            }
        }
    }
}
