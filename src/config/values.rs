//! Values as the config file writes them: addresses, counts, sizes, durations, switches; read
//! and written back the same way.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

pub(super) fn switch(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}

/// Whether a listener on `a` would take the same connections as one on `b`: same port, and the
/// same IP or either one the wildcard. Port 0 (pick a free port) never clashes.
pub(super) fn same_address(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() != 0
        && a.port() == b.port()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// A size as the config writes it: the largest of `g`, `m`, `k` that divides it exactly.
pub fn format_size(n: u64) -> String {
    for (unit, suffix) in [(1u64 << 30, "g"), (1 << 20, "m"), (1 << 10, "k")] {
        if n != 0 && n.is_multiple_of(unit) {
            return format!("{}{suffix}", n / unit);
        }
    }
    n.to_string()
}

/// A duration as the config writes it: `250ms`, `10s`, `2m`, `1h`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    if s != 0 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s != 0 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// `IP:PORT`, `[IPv6]:PORT` or `name:PORT` (resolved now, first address wins). Port 0 (the
/// kernel picks one) only where pibl listens (`may_pick_port`): nothing can be reached there.
/// Messages start with the directive's name.
pub(super) fn parse_addr(
    directive: &str,
    v: &str,
    may_pick_port: bool,
) -> Result<SocketAddr, String> {
    if v.contains("://") {
        return Err(format!(
            "{directive} takes HOST:PORT, not a URL: '{v}' (for example 10.0.1.11:80)"
        ));
    }
    let addr = match v.parse::<SocketAddr>() {
        Ok(a) => a,
        Err(_) => {
            let bad = || format!("{directive}: bad address '{v}': expected HOST:PORT");
            let (host, port) = v.rsplit_once(':').ok_or_else(bad)?;
            if host.is_empty() || port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            if port.parse::<u16>().is_err() {
                return Err(format!(
                    "{directive}: port {port} in '{v}' is out of range (1 to 65535)"
                ));
            }
            match v.to_socket_addrs() {
                Ok(mut addrs) => addrs.next().ok_or_else(|| {
                    format!("{directive}: bad address '{v}': name has no address")
                })?,
                Err(e) => return Err(format!("{directive}: bad address '{v}': {e}")),
            }
        }
    };
    if addr.port() == 0 && !may_pick_port {
        return Err(format!(
            "{directive}: port 0 in '{v}': give the port the server listens on (1 to 65535)"
        ));
    }
    Ok(addr)
}

pub(super) fn parse_count(v: &str, min: usize, max: usize) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if n >= min && n <= max => Ok(n),
        _ => Err(format!("'{v}' is not a number from {min} to {max}")),
    }
}

/// `none`, or protocol names (HTTP tokens, as in `Upgrade: websocket`), kept lowercase.
pub(super) fn parse_upgrade_protocols(args: &[&str]) -> Result<Vec<String>, String> {
    match args {
        [] => Err("needs 'none' or one or more protocol names (e.g. websocket)".to_string()),
        ["none"] => Ok(Vec::new()),
        _ => args
            .iter()
            .map(|&p| {
                let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
                if p == "none" {
                    Err("'none' cannot be combined with protocol names".to_string())
                } else if !p.bytes().all(tchar) {
                    Err(format!("'{p}' is not a protocol name (e.g. websocket)"))
                } else {
                    Ok(p.to_ascii_lowercase())
                }
            })
            .collect(),
    }
}

pub(super) fn parse_switch(v: &str) -> Result<bool, String> {
    match v {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("'{v}' is not 'on' or 'off'")),
    }
}

/// Bytes with an optional `k`, `m` or `g` suffix (powers of 1024).
pub fn parse_size(v: &str, min: usize, max: usize) -> Result<usize, String> {
    let lower = v.to_ascii_lowercase();
    let (digits, mult) = match lower.trim_end_matches('b').trim_end_matches('i') {
        d if d.ends_with('k') => (&d[..d.len() - 1], 1usize << 10),
        d if d.ends_with('m') => (&d[..d.len() - 1], 1 << 20),
        d if d.ends_with('g') => (&d[..d.len() - 1], 1 << 30),
        d => (d, 1),
    };
    let n = digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("'{v}' is not a size (examples: 512, 16k, 1m)"))?;
    if n < min || n > max {
        return Err(format!("'{v}' is out of range ({min} to {max} bytes)"));
    }
    Ok(n)
}

/// A duration: `250ms`, `10s`, `2m`, `1h`, or plain seconds.
pub fn parse_duration(v: &str) -> Result<Duration, String> {
    let bad = || format!("'{v}' is not a duration (examples: 500ms, 10s, 2m)");
    let (digits, unit_ms) = if let Some(d) = v.strip_suffix("ms") {
        (d, 1u64)
    } else if let Some(d) = v.strip_suffix('s') {
        (d, 1000)
    } else if let Some(d) = v.strip_suffix('m') {
        (d, 60_000)
    } else if let Some(d) = v.strip_suffix('h') {
        (d, 3_600_000)
    } else {
        (v, 1000)
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let ms = n.checked_mul(unit_ms).ok_or_else(bad)?;
    if ms == 0 {
        return Err(format!("'{v}' must be more than zero"));
    }
    Ok(Duration::from_millis(ms))
}

/// A cache lifetime (`cache_ttl`, `-t`): the duration syntax, in whole seconds, since the cache
/// counts ages and lifetimes in seconds (RFC 9111); `500ms` would silently become 0.
pub fn parse_ttl(v: &str) -> Result<Duration, String> {
    let d = parse_duration(v)?;
    if d.subsec_millis() != 0 {
        return Err(format!(
            "'{v}' is not a whole number of seconds (cache lifetimes are counted in seconds)"
        ));
    }
    Ok(d)
}
