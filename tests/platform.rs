//! The portable paths pibl takes on macOS and FreeBSD, run here on Linux so they are not
//! untested code: bodies copied through the session's buffer where there is no splice(2)
//! (`splice off` selects that path on Linux), and one listener shared by every worker where
//! SO_REUSEPORT does not spread connections (`net::shared_listener_group`).

mod common;

use mio::{Events, Interest, Poll, Token};
use pibl::net::{bind_group, shared_listener_group, would_block};
use std::net::TcpStream;
use std::time::Duration;

/// The copy path: on Linux only, where splice(2) is what `splice off` turns off.
#[cfg(target_os = "linux")]
mod without_splice {
    use crate::common::{pattern, Backend, Pibl};
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::{Duration, Instant};

    /// Pipe descriptors `pid` holds besides its standard ones (it may inherit some, such as a
    /// build tool's jobserver): a response being spliced adds the two ends of its pipe.
    fn pipes_held_by(pid: u32) -> usize {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            return 0;
        };
        fds.filter_map(Result::ok)
            .filter(|fd| {
                let n: u32 = fd.file_name().to_string_lossy().parse().unwrap_or(0);
                n > 2
            })
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .filter(|target| target.to_string_lossy().starts_with("pipe:"))
            .count()
    }

    /// Position just past the head's blank line, once `buf` holds the whole head.
    fn head_end(buf: &[u8]) -> Option<usize> {
        buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
    }

    /// Fetches a 16 MiB body through pibl with `splice on|off`, pausing after the first MiB (the
    /// client stops reading, so the body is mid-relay), and returns how many more pipe descriptors
    /// pibl held then than before the request; the whole body must arrive byte-exact.
    fn fetch_big_body_pausing(switch: &str) -> usize {
        let backend = Backend::start("big");
        let pibl = Pibl::start(&[backend.addr], &format!("splice {switch}\n"));
        let n = 16 * 1024 * 1024;
        let before = pipes_held_by(pibl.pid());
        let mut stream = TcpStream::connect(pibl.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream
            .write_all(format!("GET /big?n={n} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
            .unwrap();
        let mut received = Vec::with_capacity(n + 1024);
        let mut chunk = vec![0u8; 64 * 1024];
        let read_until =
            |stream: &mut TcpStream, received: &mut Vec<u8>, chunk: &mut [u8], want| {
                while head_end(received).is_none_or(|end| received.len() - end < want) {
                    let got = stream.read(chunk).expect("read the response");
                    assert!(got > 0, "pibl closed after {} bytes", received.len());
                    received.extend_from_slice(&chunk[..got]);
                }
            };
        read_until(&mut stream, &mut received, &mut chunk, 1 << 20);
        // The rest of the body now waits on us; a splice in progress holds its pipe until it ends.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut pipes = pipes_held_by(pibl.pid()).saturating_sub(before);
        while switch == "on" && pipes == 0 && Instant::now() < deadline {
            std::thread::yield_now();
            pipes = pipes_held_by(pibl.pid()).saturating_sub(before);
        }
        read_until(&mut stream, &mut received, &mut chunk, n);
        let end = head_end(&received).unwrap();
        let head = String::from_utf8_lossy(&received[..end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
        let body = &received[end..];
        assert_eq!(body.len(), n, "splice {switch}");
        assert!(
            body == pattern(n).as_slice(),
            "splice {switch}: body differs"
        );
        pipes
    }

    #[test]
    fn large_bodies_relay_byte_exact_through_the_buffer_with_splice_off() {
        assert_eq!(fetch_big_body_pausing("off"), 0, "splice off still spliced");
        // The same check sees the pipe when splice is on, so the 0 above means something.
        assert!(fetch_big_body_pausing("on") > 0, "splice on did not splice");
    }
}

#[test]
fn a_shared_listener_wakes_every_worker_and_one_accepts() {
    let mut group = shared_listener_group("127.0.0.1:0".parse().unwrap(), 3).unwrap();
    assert_eq!(group.len(), 3);
    let addr = group[0].local_addr().unwrap();
    assert!(group.iter().all(|l| l.local_addr().unwrap() == addr));
    let mut polls: Vec<Poll> = (0..group.len()).map(|_| Poll::new().unwrap()).collect();
    for (poll, listener) in polls.iter_mut().zip(group.iter_mut()) {
        poll.registry()
            .register(listener, Token(0), Interest::READABLE)
            .unwrap();
    }
    let client = TcpStream::connect(addr).unwrap();
    let mut events = Events::with_capacity(4);
    for poll in &mut polls {
        poll.poll(&mut events, Some(Duration::from_secs(5)))
            .unwrap();
        assert!(events.iter().any(|e| e.is_readable()), "a worker missed it");
    }
    let (accepted, peer) = group[1].accept().unwrap();
    assert_eq!(peer, client.local_addr().unwrap());
    drop(accepted);
    for other in [&group[0], &group[2]] {
        assert!(would_block(&other.accept().unwrap_err()));
    }
}

#[test]
fn bind_group_gives_every_worker_a_listener_on_one_address() {
    let group = bind_group("127.0.0.1:0".parse().unwrap(), 2).unwrap();
    assert_eq!(group.len(), 2);
    assert_eq!(
        group[0].local_addr().unwrap(),
        group[1].local_addr().unwrap()
    );
}
