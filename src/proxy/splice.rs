//! Zero-copy relay of large response bodies with splice(2), on Linux.
//!
//! When the rest of a response body is a known number of bytes that nothing needs to look at
//! (no chunked framing, no dechunking, no cache copy), bytes go from the backend socket into a
//! pipe and from the pipe to the client socket without ever being copied to user space. The
//! session owns the pipe for that response only; both ends are non-blocking and closed on drop.
//! Readiness stays the session's: a splice that would block clears the same flags a read or a
//! write would.
//!
//! splice(2) and pipe2(2) are Linux system calls, so everything that uses them is in the `linux`
//! module below. Elsewhere (macOS, the BSDs), and on Linux with `splice off` in the config,
//! [`Session::relay_spliced`] declines and the body is copied through the session's buffer, the
//! path every chunked, cached or small body takes anyway.

#[cfg(not(target_os = "linux"))]
use super::session::{Ctx, Session, Step};

#[cfg(target_os = "linux")]
pub(super) use linux::SplicePipe;

#[cfg(not(target_os = "linux"))]
impl Session {
    /// No splice on this platform: the caller relays the body through the buffer.
    pub(super) fn relay_spliced(&mut self, _ctx: &mut Ctx<'_>) -> Option<Step> {
        None
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    use crate::proxy::session::{Ctx, Session, State, Step};
    use crate::proxy::upstream_failure::Phase;

    /// Bodies with less than this left are relayed through the buffer: a pipe is not worth it.
    const SPLICE_MIN: u64 = 64 * 1024;
    /// Bytes moved per splice call (the pipe's default capacity).
    const PIPE_CHUNK: usize = 64 * 1024;

    /// A pipe carrying one response body, and how many bytes sit in it.
    #[derive(Debug)]
    pub struct SplicePipe {
        read: OwnedFd,
        write: OwnedFd,
        in_pipe: usize,
    }

    impl SplicePipe {
        fn new() -> io::Result<SplicePipe> {
            let mut fds = [0; 2];
            // SAFETY: `fds` has room for the two descriptors pipe2 writes.
            if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: pipe2 succeeded, so both are fresh descriptors we now own.
            let (read, write) =
                unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
            Ok(SplicePipe {
                read,
                write,
                in_pipe: 0,
            })
        }
    }

    /// One splice call; `Ok(None)` when it would block.
    fn splice(from: i32, to: i32, len: usize) -> io::Result<Option<usize>> {
        loop {
            // SAFETY: plain descriptors and null offsets, as splice(2) allows for sockets and pipes.
            let n = unsafe {
                libc::splice(
                    from,
                    std::ptr::null_mut(),
                    to,
                    std::ptr::null_mut(),
                    len,
                    libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
                )
            };
            if n >= 0 {
                return Ok(Some(n as usize));
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => return Ok(None),
                _ => return Err(e),
            }
        }
    }

    /// What a splice pass ended with.
    enum Spliced {
        /// Nothing more can move until an event.
        Blocked { progress: bool },
        /// The body is complete and the pipe empty.
        Done,
        /// The backend closed early or its socket failed.
        Broken,
        /// Writing to the client failed: it went away.
        ClientGone,
    }

    impl Session {
        /// Relays the rest of the response body with splice when that applies. `None` means it does
        /// not (the caller relays through the buffer).
        pub(in crate::proxy) fn relay_spliced(&mut self, ctx: &mut Ctx<'_>) -> Option<Step> {
            let x = self.x.as_mut()?;
            // The transport says whether the raw socket carries the body bytes as they are.
            let dst = self.client.splice_fd()?;
            if x.splice.is_none() {
                if !x.settings.config.splice {
                    return None;
                }
                let left = x.resp_body.unscanned_length()?;
                let buffered = self.upstream_in.as_ref().is_some_and(|b| !b.is_empty());
                if left < SPLICE_MIN
                    || buffered
                    || !self.to_client.is_empty()
                    || x.cache.is_storing()
                {
                    return None;
                }
                x.splice = Some(SplicePipe::new().ok()?);
            }
            let up = ctx.upstreams.conns.get_mut(self.upstream?)?;
            let pipe = x.splice.as_mut()?;
            let src = up.stream.as_raw_fd();
            let mut progress = false;
            let outcome = loop {
                let left = x.resp_body.unscanned_length().unwrap_or(0);
                let mut moved = false;
                if left > 0 && up.readable && pipe.in_pipe < PIPE_CHUNK {
                    let want = (PIPE_CHUNK - pipe.in_pipe).min(left as usize);
                    match splice(src, pipe.write.as_raw_fd(), want) {
                        Ok(Some(0)) => break Spliced::Broken,
                        Ok(Some(n)) => {
                            pipe.in_pipe += n;
                            x.resp_body.take_direct(n);
                            moved = true;
                        }
                        Ok(None) => up.readable = false,
                        Err(_) => break Spliced::Broken,
                    }
                }
                if pipe.in_pipe > 0 && self.client.writable() {
                    match splice(pipe.read.as_raw_fd(), dst, pipe.in_pipe) {
                        Ok(Some(n)) => {
                            pipe.in_pipe -= n;
                            x.resp_body.sent_direct(n);
                            x.client_bytes += n as u64;
                            moved |= n > 0;
                        }
                        Ok(None) => self.client.splice_blocked(),
                        Err(_) => break Spliced::ClientGone,
                    }
                }
                if pipe.in_pipe == 0 && x.resp_body.is_complete() {
                    break Spliced::Done;
                }
                if !moved {
                    break Spliced::Blocked { progress };
                }
                progress = true;
            };
            Some(match outcome {
                Spliced::Done => {
                    x.splice = None;
                    self.finish_exchange(ctx)
                }
                Spliced::Broken => {
                    self.upstream_event(
                        Phase::Body,
                        format_args!("closed before the end of the response (spliced)"),
                    );
                    self.close_upstream(ctx, false);
                    self.log_exchange(ctx, 502);
                    self.enter(State::Closed, ctx)
                }
                Spliced::ClientGone => {
                    // As in the buffered relay: logged with the bytes the client got.
                    self.close_upstream(ctx, false);
                    self.log_exchange(ctx, 499);
                    self.enter(State::Closed, ctx)
                }
                Spliced::Blocked { progress: true } => {
                    self.touch(ctx);
                    Step::Wait
                }
                Spliced::Blocked { progress: false } => Step::Wait,
            })
        }
    }
}
