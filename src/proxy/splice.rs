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
//! `relay::relay_spliced` declines and the body is copied through the session's buffer, the
//! path every chunked, cached or small body takes anyway.

#[cfg(target_os = "linux")]
pub(super) use linux::{SplicePipe, Spliced};

#[cfg(target_os = "linux")]
mod linux {
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    use crate::http::body::BodyRelay;
    use crate::proxy::transport::ClientTransport;

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
        /// A pipe for the rest of a response body, when splicing it applies: `splice` is on,
        /// the rest is a known length (`left`) worth a pipe, nothing of it is `buffered` yet,
        /// the cache is not `storing` a copy, and the client's codec (which has nothing queued
        /// and no framing to add) and transport let its raw socket be used (`client`).
        pub fn for_body(
            splice: bool,
            left: Option<u64>,
            buffered: bool,
            storing: bool,
            client: &ClientTransport,
        ) -> Option<SplicePipe> {
            let left = left?;
            if !splice || left < SPLICE_MIN || buffered || storing {
                return None;
            }
            client.splice_fd()?;
            SplicePipe::new().ok()
        }

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

    /// What a splice pass ended with: the session acts on it.
    pub enum Spliced {
        /// Nothing more can move until an event.
        Blocked { progress: bool },
        /// The body is complete and the pipe empty.
        Done,
        /// The backend closed early or its socket failed.
        Broken,
        /// Writing to the client failed: it went away.
        ClientGone,
    }

    impl SplicePipe {
        /// Moves body bytes from the backend socket `src` (readiness `src_readable`) through
        /// the pipe to the client until something would block or the body is done. `sent`
        /// counts the bytes written to the client.
        pub fn relay(
            &mut self,
            src: &impl AsRawFd,
            src_readable: &mut bool,
            client: &mut ClientTransport,
            body: &mut BodyRelay,
            sent: &mut u64,
        ) -> Spliced {
            let Some(dst) = client.splice_fd() else {
                return Spliced::ClientGone;
            };
            let src = src.as_raw_fd();
            let mut progress = false;
            loop {
                let left = body.unscanned_length().unwrap_or(0);
                let mut moved = false;
                if left > 0 && *src_readable && self.in_pipe < PIPE_CHUNK {
                    let want = (PIPE_CHUNK - self.in_pipe).min(left as usize);
                    match splice(src, self.write.as_raw_fd(), want) {
                        Ok(Some(0)) => return Spliced::Broken,
                        Ok(Some(n)) => {
                            self.in_pipe += n;
                            body.take_direct(n);
                            moved = true;
                        }
                        Ok(None) => *src_readable = false,
                        Err(_) => return Spliced::Broken,
                    }
                }
                if self.in_pipe > 0 && client.writable() {
                    match splice(self.read.as_raw_fd(), dst, self.in_pipe) {
                        Ok(Some(n)) => {
                            self.in_pipe -= n;
                            body.sent_direct(n);
                            *sent += n as u64;
                            moved |= n > 0;
                        }
                        Ok(None) => client.splice_blocked(),
                        Err(_) => return Spliced::ClientGone,
                    }
                }
                if self.in_pipe == 0 && body.is_complete() {
                    return Spliced::Done;
                }
                if !moved {
                    return Spliced::Blocked { progress };
                }
                progress = true;
            }
        }
    }
}
