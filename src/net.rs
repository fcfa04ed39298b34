//! Socket set-up shared by the proxy and the origin server.

pub mod proxy_protocol;

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// Pending connections the kernel holds for us while we are busy or at the connection limit.
pub const LISTEN_BACKLOG: i32 = 4096;

/// A non-blocking listener with SO_REUSEPORT, so each worker can own one on the same address and
/// the kernel spreads new connections across them (and a new pibl can bind while an old one drains).
pub fn reuseport_listener(addr: SocketAddr) -> io::Result<mio::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(false).ok();
    }
    socket.set_nonblocking(true)?;
    // Accepted sockets inherit it on Linux: no setsockopt per connection (see `accepted`).
    socket.set_tcp_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(mio::net::TcpListener::from_std(socket.into()))
}

/// Fails with `AddrInUse` when something already listens on `addr`. SO_REUSEPORT would let a
/// second pibl join the first one's port silently and split the traffic with it, so before
/// binding that way pibl binds a throwaway socket without it (with SO_REUSEADDR, which passes
/// over connections in TIME_WAIT but not over a listener). Port 0 (a fresh port) never clashes.
pub fn probe_bind(addr: SocketAddr) -> io::Result<()> {
    if addr.port() == 0 {
        return Ok(());
    }
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(false).ok();
    }
    socket.bind(&addr.into())
}

/// Which process listens on TCP `port`, as `pid 1234 (pibl)`, when that can be known: on Linux
/// from the listening socket's inode in /proc/net/tcp{,6} and the process whose /proc/PID/fd
/// holds it (only processes we may inspect). Best effort, for messages: `None` otherwise.
#[cfg(target_os = "linux")]
pub fn port_holder(port: u16) -> Option<String> {
    const LISTEN: &str = "0A";
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for row in text.lines().skip(1) {
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            let fields: Vec<&str> = row.split_whitespace().collect();
            let (Some(local), Some(state), Some(inode)) =
                (fields.get(1), fields.get(3), fields.get(9))
            else {
                continue;
            };
            let local_port = local
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port) && *state == LISTEN && *inode != "0" {
                inodes.push(format!("socket:[{inode}]"));
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    for proc_entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = proc_entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(proc_entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            if inodes.iter().any(|i| target.as_os_str() == i.as_str()) {
                let comm = std::fs::read_to_string(proc_entry.path().join("comm"))
                    .map(|c| c.trim().to_string())
                    .unwrap_or_default();
                return Some(if comm.is_empty() {
                    format!("pid {pid}")
                } else {
                    format!("pid {pid} ({comm})")
                });
            }
        }
    }
    None
}

/// Which process listens on TCP `port`: not known on this system.
#[cfg(not(target_os = "linux"))]
pub fn port_holder(_port: u16) -> Option<String> {
    None
}

/// Readies a socket from `accept`: TCP_NODELAY, which Linux already copied from the listener.
pub fn accepted(stream: &mio::net::TcpStream) {
    if !cfg!(target_os = "linux") {
        stream.set_nodelay(true).ok();
    }
}

/// Binds `count` SO_REUSEPORT listeners on one address, one per worker. With port 0 the first
/// picks the port and the others join it. Only Linux spreads connections over such a group;
/// elsewhere the workers share one listener ([`shared_listener_group`]).
pub fn bind_group(addr: SocketAddr, count: usize) -> io::Result<Vec<mio::net::TcpListener>> {
    if !cfg!(target_os = "linux") {
        return shared_listener_group(addr, count);
    }
    let first = reuseport_listener(addr)?;
    let actual = first.local_addr()?;
    let mut all = vec![first];
    for _ in 1..count {
        all.push(reuseport_listener(actual)?);
    }
    Ok(all)
}

/// One listener for `count` workers, where SO_REUSEPORT does not balance (macOS, and FreeBSD,
/// whose balancing SO_REUSEPORT_LB is not used: every connection would go to one listener):
/// each worker gets its own descriptor of the same socket to register in its own poll. A new
/// connection wakes them all; the one that accepts it wins and the others' accept loops get
/// `WouldBlock`, as they do after every burst.
pub fn shared_listener_group(
    addr: SocketAddr,
    count: usize,
) -> io::Result<Vec<mio::net::TcpListener>> {
    use std::os::fd::AsFd;
    let listener = reuseport_listener(addr)?;
    let mut all = Vec::with_capacity(count.max(1));
    for _ in 1..count {
        // A dup shares the socket and its O_NONBLOCK; it gets its own FD_CLOEXEC.
        let fd = listener.as_fd().try_clone_to_owned()?;
        all.push(mio::net::TcpListener::from_std(
            std::net::TcpListener::from(fd),
        ));
    }
    all.push(listener);
    Ok(all)
}

/// The open-files limit before and after [`raise_fd_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimit {
    pub was: u64,
    pub now: u64,
}

/// Raises this process's soft open-files limit to its hard limit (capped at 1,048,576; at
/// 10,240 on macOS), as HAProxy and the Go runtime do: the common soft default of 1024 would
/// cap a server at about a thousand connections (each proxied one holds two descriptors) while
/// the hard limit allows far more.
#[allow(clippy::unnecessary_cast)] // rlim_t is u64 on Linux, not on every target
pub fn raise_fd_limit() -> io::Result<FdLimit> {
    // macOS's setrlimit(2) refuses a soft limit above OPEN_MAX (10240) with EINVAL, even when
    // the hard limit is unlimited; its default soft limit is 256.
    const CAP: u64 = if cfg!(target_os = "macos") {
        10_240
    } else {
        1 << 20
    };
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let was = lim.rlim_cur as u64;
    let want = (lim.rlim_max as u64).min(CAP);
    if want <= was {
        return Ok(FdLimit { was, now: was });
    }
    lim.rlim_cur = want as libc::rlim_t;
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(FdLimit { was, now: want })
}

pub fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

pub fn interrupted(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Interrupted
}

/// A bind failure as one line a person can act on.
pub fn describe_bind_error(addr: SocketAddr, e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::AddrInUse => {
            let who = port_holder(addr.port()).map_or_else(
                || " (another server holds the port)".to_string(),
                |h| format!(" by {h}"),
            );
            format!(
                "cannot listen on {addr}: address already in use{who}; stop it or change \
                 'listen' in the config"
            )
        }
        io::ErrorKind::PermissionDenied => format!(
            "cannot listen on {addr}: permission denied (ports below 1024 need root or \
             CAP_NET_BIND_SERVICE)"
        ),
        io::ErrorKind::AddrNotAvailable => {
            format!("cannot listen on {addr}: no such local address on this machine")
        }
        _ => format!("cannot listen on {addr}: {e}"),
    }
}

/// The client address a unix-socket client gets: it has no IP address, and pibl's client
/// address is a `SocketAddr` everywhere (logs, X-Forwarded-For, ACLs, rate limits), so this
/// value stands for it: the unspecified IPv6 address, which no TCP peer can have. Logs and
/// X-Forwarded-For write it `unix:`, as nginx does (`http::put_ip`).
pub const UNIX_CLIENT: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), 0);

/// Binds a non-blocking unix-domain listener at `path`. A socket file already there is removed
/// first if nothing answers on it (a pibl that died without cleaning up); one something
/// answers on, or a file that is not a socket, is an error (`AddrInUse`). With `mode`, the
/// socket file gets those permissions (who may connect).
pub fn bind_unix(
    path: &std::path::Path,
    mode: Option<u32>,
) -> io::Result<std::os::unix::net::UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    if probe_unix(path)? {
        std::fs::remove_file(path)?;
    }
    let listener = std::os::unix::net::UnixListener::bind(path)?;
    listener.set_nonblocking(true)?;
    if let Some(mode) = mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(listener)
}

/// Whether pibl could listen at unix socket `path`, creating nothing (also what `--check`
/// runs): `Ok(true)` when a stale socket file is there to remove first; `AddrInUse` when a
/// server answers on it, an error when a file that is not a socket is in the way or the
/// directory does not exist.
pub fn probe_unix(path: &std::path::Path) -> io::Result<bool> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "a file that is not a socket is in the way",
        )),
        Ok(_) if std::os::unix::net::UnixStream::connect(path).is_ok() => {
            Err(io::ErrorKind::AddrInUse.into())
        }
        Ok(_) => Ok(true),
        Err(_) => match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no directory {}", dir.display()),
            )),
            _ => Ok(false),
        },
    }
}

/// A unix listener's bind failure as one line.
pub fn describe_unix_bind_error(path: &std::path::Path, e: &io::Error) -> String {
    let path = path.display();
    match e.kind() {
        io::ErrorKind::AddrInUse => format!(
            "cannot listen on unix:{path}: a server is answering on it; stop it or change \
             'listen' in the config"
        ),
        _ => format!("cannot listen on unix:{path}: {e}"),
    }
}
