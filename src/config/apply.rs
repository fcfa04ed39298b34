//! One top-level directive applied to the [`Config`]: the directive list, the repeatable ones,
//! and the words of every directive that is not a block (`pool`, `site`: `routing.rs`).

use std::net::SocketAddr;
use std::path::PathBuf;

use super::blocks::Statement;
use super::values::{parse_addr, parse_count, parse_switch, parse_upgrade_protocols, same_address};
use super::{
    format_duration, parse_duration, parse_size, parse_ttl, routing, Config, ConfigError,
    HealthCheck, Listen, UnixListen, MAX_LISTENERS, MIN_HEALTH_CHECK_INTERVAL, TLS_LISTEN_LINE,
};

impl Config {
    /// Applies one top-level directive.
    pub(super) fn apply(&mut self, s: &Statement) -> Result<(), ConfigError> {
        let cfg = self;
        let line_no = s.line;
        let err = |line: usize, message: String| ConfigError {
            file: s.file.to_path_buf(),
            line,
            message,
        };
        let directive = s.name();
        let args = s.args();
        let Some(&name) = known_directives().find(|d| **d == directive) else {
            return Err(err(line_no, unknown_directive(directive)));
        };
        // Only `backend`, `certificate`, `allow`, `deny`, `error_page`, `listen` (see below) and
        // the header rules may repeat: a second value of anything else is a mistake (two edits
        // of one file), not something to resolve silently by keeping the last one.
        match cfg.line_of(name) {
            0 => {
                cfg.lines.push((name, line_no));
                if *s.file != *cfg.path {
                    cfg.lines_elsewhere.push((name, s.file.to_path_buf()));
                }
            }
            first if !repeatable(name) => {
                let elsewhere = cfg.lines_elsewhere.iter().find(|(d, _)| *d == name);
                let at = match elsewhere {
                    Some((_, f)) => format!("{}:{first}", f.display()),
                    None if *s.file != *cfg.path => {
                        format!("{}:{first}", cfg.path.display())
                    }
                    None => format!("line {first}"),
                };
                return Err(err(line_no, format!("duplicate '{name}' (first on {at})")));
            }
            _ => {}
        }
        let one = || -> Result<&str, ConfigError> {
            match args.as_slice() {
                [v] => Ok(v),
                [] => Err(err(line_no, format!("'{directive}' needs a value"))),
                _ => Err(err(
                    line_no,
                    format!("'{directive}' takes one value, got {}", args.len()),
                )),
            }
        };
        let at = |m: String| err(line_no, format!("{directive}: {m}"));
        // Address errors name the directive themselves ("backend takes HOST:PORT ...").
        let addr_at = |m: String| err(line_no, m);
        match name {
            "listen" => {
                let usage = "'listen' takes ADDR:PORT or ADDR:PORT tls (or unix:PATH), \
                             with proxy_protocol, http2 on|off";
                let [v, flags @ ..] = args.as_slice() else {
                    return Err(err(line_no, usage.to_string()));
                };
                let mut unix = match v.strip_prefix("unix:") {
                    Some("") => return Err(at("unix: needs a path (unix:/run/pibl.sock)".into())),
                    Some(path) => Some(UnixListen {
                        path: PathBuf::from(path),
                        mode: None,
                    }),
                    None => None,
                };
                let (mut tls, mut proxy_protocol, mut http2) = (false, false, None);
                let mut words = flags.iter();
                while let Some(&flag) = words.next() {
                    let seen = match (flag, &mut unix) {
                        ("tls", _) => std::mem::replace(&mut tls, true),
                        ("proxy_protocol", _) => std::mem::replace(&mut proxy_protocol, true),
                        ("http2", _) => {
                            let on = words.next().ok_or_else(|| {
                                at(format!("listen {v}: 'http2' takes on or off"))
                            })?;
                            let on = parse_switch(on).map_err(at)?;
                            http2.replace(on).is_some()
                        }
                        (_, Some(u)) if flag.starts_with("mode=") => {
                            let mode = u32::from_str_radix(&flag[5..], 8)
                                .ok()
                                .filter(|m| *m <= 0o777)
                                .ok_or_else(|| at(format!("{flag}: an octal mode such as 0660")))?;
                            u.mode.replace(mode).is_some()
                        }
                        _ => return Err(err(line_no, format!("{usage}, not '{flag}'"))),
                    };
                    if seen {
                        return Err(err(line_no, format!("listen {v}: '{flag}' given twice")));
                    }
                }
                if http2.is_some() && !tls {
                    return Err(at(format!(
                        "listen {v}: 'http2' is for a tls listener (ALPN); plain listeners \
                         take HTTP/2 with 'h2c on'"
                    )));
                }
                if let Some(u) = unix {
                    if cfg.listeners.len() == MAX_LISTENERS {
                        return Err(err(
                            line_no,
                            format!(
                                "listen {v}: pibl listens on at most {MAX_LISTENERS} addresses"
                            ),
                        ));
                    }
                    if cfg
                        .listeners
                        .iter()
                        .any(|l| l.unix.as_ref().is_some_and(|o| o.path == u.path))
                    {
                        return Err(err(line_no, format!("listen {v}: already a listener")));
                    }
                    if tls && cfg.line_of(TLS_LISTEN_LINE) == 0 {
                        cfg.lines.push((TLS_LISTEN_LINE, line_no));
                    }
                    cfg.listeners.push(Listen {
                        tls,
                        proxy_protocol,
                        http2,
                        unix: Some(u),
                        ..Listen::tcp(SocketAddr::from(([0, 0, 0, 0], 0)))
                    });
                    return Ok(());
                }
                let addr = parse_addr(name, v, true).map_err(addr_at)?;
                if cfg.listeners.len() == MAX_LISTENERS {
                    return Err(err(
                        line_no,
                        format!("listen {v}: pibl listens on at most {MAX_LISTENERS} addresses"),
                    ));
                }
                // Plain and TLS listeners side by side; the same address twice is two edits
                // of one file.
                let mut tcp = cfg.listeners.iter().filter(|l| l.unix.is_none());
                if let Some(l) = tcp.clone().find(|l| same_address(l.addr, addr)) {
                    return Err(err(
                        line_no,
                        format!("listen {v}: {} is already a listener", l.addr),
                    ));
                }
                if tcp.next().is_none() {
                    cfg.listen = addr;
                }
                if tls && cfg.line_of(TLS_LISTEN_LINE) == 0 {
                    cfg.lines.push((TLS_LISTEN_LINE, line_no));
                }
                cfg.listeners.push(Listen {
                    tls,
                    proxy_protocol,
                    http2,
                    ..Listen::tcp(addr)
                });
            }
            "certificate" => {
                let [chain, key] = args.as_slice() else {
                    return Err(err(
                        line_no,
                        "'certificate' takes CHAIN.pem KEY.pem (e.g. certbot's                              fullchain.pem privkey.pem)"
                            .to_string(),
                    ));
                };
                cfg.certificates.push(crate::tls::server::CertificateSpec {
                    chain: PathBuf::from(chain),
                    key: PathBuf::from(key),
                });
            }
            "redirect_https" => cfg.redirect_https = parse_switch(one()?).map_err(at)?,
            "hsts" => {
                let v = one()?;
                cfg.hsts = if v == "off" {
                    None
                } else {
                    Some(parse_duration(v).map_err(at)?.as_secs())
                };
            }
            "tls_session_cache" => {
                cfg.tls_session_cache = parse_count(one()?, 0, 10_000_000).map_err(at)?
            }
            "admin" => {
                let v = one()?;
                cfg.admin = if v == "off" {
                    None
                } else {
                    Some(parse_addr(name, v, true).map_err(addr_at)?)
                };
            }
            "backend" => routing::parse_backend(s, &mut cfg.backends)?,
            "balance" => cfg.balance = routing::parse_balance(s)?,
            "backend_proxy_protocol" => {
                cfg.backend_proxy_protocol = Some(routing::parse_proxy_version(one()?).map_err(at)?)
            }
            "no_site" => cfg.no_site = routing::parse_no_site(s)?,
            "tls_server_name" => {
                let v = one()?;
                crate::tls::client::server_name(v).map_err(at)?;
                cfg.tls_server_name = Some(v.to_string());
            }
            "backend_ca" => cfg.backend_ca = Some(PathBuf::from(one()?)),
            "backend_tls_verify" => cfg.backend_tls_verify = parse_switch(one()?).map_err(at)?,
            "workers" => {
                let v = one()?;
                cfg.workers = if v == "auto" {
                    None
                } else {
                    Some(parse_count(v, 1, 1024).map_err(at)?)
                };
            }
            "log_file" => cfg.log_file = PathBuf::from(one()?),
            "access_log" => cfg.access_log = parse_switch(one()?).map_err(at)?,
            "splice" => cfg.splice = parse_switch(one()?).map_err(at)?,
            "http2" => cfg.http2.tls = parse_switch(one()?).map_err(at)?,
            "h2c" => cfg.http2.h2c = parse_switch(one()?).map_err(at)?,
            "http2_max_concurrent_streams" => {
                cfg.http2.max_concurrent_streams =
                    parse_count(one()?, 1, 10_000).map_err(at)? as u32
            }
            "http2_initial_window" => {
                cfg.http2.initial_window =
                    parse_size(one()?, 1024, (1 << 31) - 1).map_err(at)? as u32;
            }
            "http2_max_frame_size" => {
                // RFC 9113 §6.5.2's bounds of SETTINGS_MAX_FRAME_SIZE.
                use crate::h2::{frame::DEFAULT_MAX_FRAME_SIZE, settings::MAX_MAX_FRAME_SIZE};
                let (min, max) = (DEFAULT_MAX_FRAME_SIZE as usize, MAX_MAX_FRAME_SIZE as usize);
                cfg.http2.max_frame_size = parse_size(one()?, min, max).map_err(at)? as u32;
            }
            "http2_max_header_list_size" => {
                cfg.http2.max_header_list_size =
                    parse_size(one()?, 1024, 1 << 20).map_err(at)? as u32;
            }
            "allow" => cfg
                .access
                .add_rule(crate::access::Verdict::Allow, one()?)
                .map_err(at)?,
            "deny" => cfg
                .access
                .add_rule(crate::access::Verdict::Deny, one()?)
                .map_err(at)?,
            "rate_limit" => {
                cfg.access.rate_limit = Some(crate::access::RateLimit::parse(&args).map_err(at)?)
            }
            "error_page" => cfg.access.error_pages.add(&args).map_err(at)?,
            "rate_limit_table" => {
                cfg.access.rate_limit_table = parse_count(one()?, 1, 100_000_000).map_err(at)?
            }
            "log_stdout" => cfg.log_stdout = parse_switch(one()?).map_err(at)?,
            "buffer_size" => {
                cfg.limits.buffer_size = parse_size(one()?, 1024, 16 << 20).map_err(at)?;
            }
            "max_header_bytes" => {
                cfg.limits.max_header_bytes = parse_size(one()?, 1024, 16 << 20).map_err(at)?;
            }
            "max_headers" => cfg.limits.max_headers = parse_count(one()?, 1, 1000).map_err(at)?,
            "max_connections" => {
                cfg.limits.max_connections = parse_count(one()?, 1, 10_000_000).map_err(at)?;
            }
            "max_connections_per_worker" => {
                cfg.limits.max_connections_per_worker =
                    Some(parse_count(one()?, 1, 10_000_000).map_err(at)?);
            }
            "max_body_size" => {
                let v = one()?;
                cfg.limits.max_body_size = if v == "off" {
                    None
                } else {
                    Some(parse_size(v, 0, usize::MAX).map_err(at)? as u64)
                };
            }
            "max_fails" => {
                cfg.health.max_fails = parse_count(one()?, 0, 1_000_000).map_err(at)? as u32
            }
            "fail_timeout" => cfg.health.fail_timeout = parse_duration(one()?).map_err(at)?,
            "max_retries" => {
                cfg.health.max_retries = parse_count(one()?, 0, 64).map_err(at)? as u32
            }
            "health_check" => {
                if args.as_slice() == ["off"] {
                    cfg.health.check = None;
                    return Ok(());
                }
                let [path, interval] = args.as_slice() else {
                    return Err(err(
                        line_no,
                        "'health_check' takes PATH INTERVAL, e.g. 'health_check /health 2s', \
                         or 'off'"
                            .to_string(),
                    ));
                };
                if !path.starts_with('/') || !path.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(at(format!("'{path}' is not a path starting with '/'")));
                }
                let interval = parse_duration(interval).map_err(at)?;
                if interval < MIN_HEALTH_CHECK_INTERVAL {
                    return Err(at(format!(
                        "an interval of {} would flood every backend with probes; \
                         use {} or more",
                        format_duration(interval),
                        format_duration(MIN_HEALTH_CHECK_INTERVAL)
                    )));
                }
                cfg.health.check = Some(HealthCheck {
                    path: path.to_string(),
                    interval,
                });
            }
            "upstream_pool_size" => {
                cfg.limits.upstream_pool_size = parse_count(one()?, 0, 100_000).map_err(at)?;
            }
            "client_header_timeout" => {
                cfg.timeouts.client_header = parse_duration(one()?).map_err(at)?
            }
            "keepalive_timeout" => cfg.timeouts.keepalive = parse_duration(one()?).map_err(at)?,
            "client_timeout" => cfg.timeouts.client_idle = parse_duration(one()?).map_err(at)?,
            "connect_timeout" => cfg.timeouts.connect = parse_duration(one()?).map_err(at)?,
            "upstream_timeout" => cfg.timeouts.upstream = parse_duration(one()?).map_err(at)?,
            "pool_idle_timeout" => cfg.timeouts.pool_idle = parse_duration(one()?).map_err(at)?,
            "shutdown_timeout" => cfg.timeouts.shutdown = parse_duration(one()?).map_err(at)?,
            "cache" => cfg.cache.enabled = Some(parse_switch(one()?).map_err(at)?),
            "cache_dir" => cfg.cache.dir = PathBuf::from(one()?),
            "cache_ttl" => cfg.cache.ttl = Some(parse_ttl(one()?).map_err(at)?),
            "cache_heuristic" => cfg.cache.heuristic = parse_switch(one()?).map_err(at)?,
            "cache_max_bytes" => {
                cfg.cache.max_bytes = parse_size(one()?, 0, usize::MAX).map_err(at)? as u64;
            }
            "cdn_cache_control" => {
                cfg.cache.cdn_cache_control_pass = match one()? {
                    "pass" => true,
                    "strip" => false,
                    v => return Err(err(line_no, format!("expected pass or strip, got '{v}'"))),
                }
            }
            "cache_max_object" => {
                cfg.cache.max_object = parse_size(one()?, 0, usize::MAX).map_err(at)? as u64;
            }
            "upgrade_protocols" => {
                cfg.upgrade_protocols = parse_upgrade_protocols(&args).map_err(at)?
            }
            _ if super::COMPRESS_DIRECTIVES.contains(&name) => {
                cfg.compress.parse_directive(name, &args).map_err(at)?
            }
            _ if crate::edge::EDGE_DIRECTIVES.contains(&name) => {
                cfg.edge.parse_directive(name, &args).map_err(at)?
            }
            other => return Err(err(line_no, unknown_directive(other))),
        }
        Ok(())
    }
}

/// The directives parsed here, in the order docs/config.md lists them.
const DIRECTIVES: &[&str] = &[
    "listen",
    "certificate",
    "tls_session_cache",
    "redirect_https",
    "hsts",
    "http2",
    "h2c",
    "http2_max_concurrent_streams",
    "http2_initial_window",
    "http2_max_frame_size",
    "http2_max_header_list_size",
    "backend",
    "tls_server_name",
    "backend_ca",
    "backend_tls_verify",
    "backend_proxy_protocol",
    "balance",
    "pool",
    "site",
    "route",
    "no_site",
    "include",
    "workers",
    "admin",
    "log_file",
    "access_log",
    "log_stdout",
    "max_connections",
    "buffer_size",
    "max_header_bytes",
    "max_headers",
    "upstream_pool_size",
    "upgrade_protocols",
    "splice",
    "allow",
    "deny",
    "rate_limit",
    "rate_limit_table",
    "error_page",
    "max_connections_per_worker",
    "max_body_size",
    "client_header_timeout",
    "keepalive_timeout",
    "client_timeout",
    "connect_timeout",
    "upstream_timeout",
    "pool_idle_timeout",
    "shutdown_timeout",
    "max_fails",
    "fail_timeout",
    "health_check",
    "max_retries",
    "cache",
    "cache_ttl",
    "cache_dir",
    "cache_max_bytes",
    "cache_max_object",
    "cache_heuristic",
    "cdn_cache_control",
];

/// Every directive: [`DIRECTIVES`], the header and log rules ([`crate::edge::EDGE_DIRECTIVES`])
/// and the compression ones ([`super::COMPRESS_DIRECTIVES`]), each listed once, where parsed.
fn known_directives() -> impl Iterator<Item = &'static &'static str> {
    DIRECTIVES
        .iter()
        .chain(crate::edge::EDGE_DIRECTIVES)
        .chain(&super::COMPRESS_DIRECTIVES)
}

/// Directives that may be given more than once, besides the scoped lists
/// (`routing::repeatable_in_scope`).
const REPEATABLE: &[&str] = &["backend", "listen", "certificate"];

/// A directive that may be given more than once at top level.
fn repeatable(name: &str) -> bool {
    REPEATABLE.contains(&name) || routing::repeatable_in_scope(name)
}

/// `unknown directive 'bakend' (did you mean 'backend'?)`: the nearest directive within two
/// edits, if there is one.
fn unknown_directive(word: &str) -> String {
    let nearest = known_directives()
        .map(|d| (edit_distance(word, d), *d))
        .min()
        .filter(|&(distance, _)| distance <= 2 && distance < word.len());
    match nearest {
        Some((_, d)) => format!("unknown directive '{word}' (did you mean '{d}'?)"),
        None => format!("unknown directive '{word}'"),
    }
}

/// Levenshtein distance (insertions, deletions, substitutions), over bytes.
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.as_bytes().iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != cb))
                .min(above + 1)
                .min(row[j] + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}
