//! One event loop per worker thread: its own `mio::Poll`, its own SO_REUSEPORT listener, a slab
//! of connections and a file cache. Workers share only the read-only site and two atomics.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use super::conn::{Conn, Ctx};
use super::routes::RouteCtx;
use super::site::Files;
use super::Shared;
use crate::buffer::BufferPool;
use crate::clock::Clock;
use crate::net::{accepted, interrupted, would_block};

pub const LISTENER: Token = Token(usize::MAX - 1);
pub const WAKER: Token = Token(usize::MAX - 2);

/// Input buffer size, which is also the largest request head accepted.
const BUFFER_SIZE: usize = 16 * 1024;
/// Free buffers kept for reuse.
const POOLED_BUFFERS: usize = 256;
/// How often idle connections are looked for.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// How long a stopping worker lets requests in flight finish.
const STOP_GRACE: Duration = Duration::from_secs(3);

pub struct Worker {
    poll: Poll,
    listener: Option<TcpListener>,
    conns: Slab<Conn>,
    files: Files,
    buffers: BufferPool,
    clock: Clock,
    shared: Arc<Shared>,
    /// Reused for sanitised file names.
    path: String,
    next_sweep: Instant,
    stop_deadline: Option<Instant>,
    finished: Vec<usize>,
}

impl Worker {
    pub fn new(
        poll: Poll,
        mut listener: TcpListener,
        shared: Arc<Shared>,
    ) -> std::io::Result<Worker> {
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let clock = Clock::new();
        Ok(Worker {
            files: Files::new(shared.site.clone(), shared.name.clone()),
            next_sweep: clock.now + SWEEP_INTERVAL,
            clock,
            poll,
            listener: Some(listener),
            conns: Slab::new(),
            buffers: BufferPool::new(BUFFER_SIZE, POOLED_BUFFERS),
            shared,
            path: String::new(),
            stop_deadline: None,
            finished: Vec::new(),
        })
    }

    pub fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self.next_sweep.saturating_duration_since(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if !interrupted(&e) {
                    eprintln!("pibl-origin: event loop failed: {e}");
                    return;
                }
            }
            self.clock.tick();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    WAKER => {}
                    Token(key) => {
                        if let Some(conn) = self.conns.get_mut(key) {
                            conn.on_event(
                                event.is_readable(),
                                event.is_writable(),
                                event.is_read_closed() || event.is_error(),
                            );
                            self.drive(key);
                        }
                    }
                }
            }
            if self.shared.stop.load(Ordering::Relaxed) && self.stop_deadline.is_none() {
                self.begin_stop();
            }
            if self.clock.now >= self.next_sweep || self.stop_deadline.is_some() {
                self.sweep();
            }
            if let Some(deadline) = self.stop_deadline {
                if self.conns.is_empty() || self.clock.now >= deadline {
                    return;
                }
            }
        }
    }

    fn accept(&mut self) {
        let Some(listener) = self.listener.as_ref() else {
            return;
        };
        loop {
            match listener.accept() {
                Ok((mut stream, _peer)) => {
                    accepted(&stream);
                    let entry = self.conns.vacant_entry();
                    let key = entry.key();
                    let registered = self.poll.registry().register(
                        &mut stream,
                        Token(key),
                        Interest::READABLE | Interest::WRITABLE,
                    );
                    if registered.is_ok() {
                        entry.insert(Conn::new(stream, self.clock.now));
                    }
                }
                Err(e) if would_block(&e) => return,
                Err(e) if interrupted(&e) => {}
                // Out of descriptors or a connection reset before accept: try again on the next
                // event rather than spinning.
                Err(_) => return,
            }
        }
    }

    /// Lets connection `key` do what it can; removes it when it is finished.
    fn drive(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let now = self.clock.now;
        let mut ctx = Ctx {
            clock: &mut self.clock,
            buffers: &mut self.buffers,
            route: RouteCtx {
                shared: &self.shared,
                files: &mut self.files,
                now,
                path: &mut self.path,
            },
        };
        if !conn.drive(&mut ctx) {
            self.close(key);
        }
    }

    fn close(&mut self, key: usize) {
        // Dropping the socket closes it, which takes it out of the epoll set.
        if let Some(mut conn) = self.conns.try_remove(key) {
            conn.release(&mut self.buffers);
        }
    }

    fn begin_stop(&mut self) {
        self.stop_deadline = Some(self.clock.now + STOP_GRACE);
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
    }

    /// Closes connections that stopped making progress (and idle ones when stopping).
    fn sweep(&mut self) {
        let now = self.clock.now;
        let stopping = self.stop_deadline.is_some();
        self.finished.extend(
            self.conns
                .iter()
                .filter(|(_, c)| c.is_expired(now) || (stopping && c.is_idle()))
                .map(|(key, _)| key),
        );
        let mut finished = std::mem::take(&mut self.finished);
        for key in finished.drain(..) {
            self.close(key);
        }
        self.finished = finished;
        self.next_sweep = now + SWEEP_INTERVAL;
        // An accept that failed (say, out of descriptors) gets no new edge; retry it here.
        self.accept();
    }
}
