//! `pibl.conf`: one `directive value...` per line, `#` starts a comment.
//!
//! Every error names the file, the line and what is wrong, and is found before anything binds, so a
//! typo never reaches production as a half-configured proxy. The reference is `docs/config.md`.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod summary;
#[cfg(test)]
mod tests;
mod values;

pub use summary::certificates as certificate_summary;
pub use values::{format_duration, format_size, parse_duration, parse_size, parse_ttl};
use values::{parse_addr, parse_count, parse_switch, parse_upgrade_protocols, same_address};

/// A `listen ADDR [tls]` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen {
    pub addr: SocketAddr,
    /// `tls`: clients speak TLS; the `certificate`s are served.
    pub tls: bool,
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.tls {
            write!(f, "{} tls", self.addr)
        } else {
            write!(f, "{}", self.addr)
        }
    }
}

/// An upstream server as written in the config and as resolved at load time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendSpec {
    /// The address as the user wrote it, for logs.
    pub name: String,
    pub addr: SocketAddr,
    /// `backend https://HOST:PORT` or `backend HOST:PORT tls`: the name TLS sends (SNI) and
    /// checks the certificate against (HOST, or `tls_server_name`); `None`: plain HTTP.
    pub tls_name: Option<rustls::pki_types::ServerName<'static>>,
}

/// The rustls client settings every TLS backend shares, built once at load from `backend_ca`
/// and `backend_tls_verify`. Compared by what they trust (the built config has no equality).
#[derive(Debug, Clone)]
pub struct BackendTls {
    pub trust: crate::tls::client::Trust,
    pub config: std::sync::Arc<rustls::ClientConfig>,
}

impl PartialEq for BackendTls {
    fn eq(&self, other: &BackendTls) -> bool {
        self.trust == other.trust
    }
}

impl Eq for BackendTls {}

/// Limits on what one connection may hold or send; every buffer has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Size of each I/O buffer (one per direction, only while a connection is busy).
    pub buffer_size: usize,
    /// Largest request or response head (request line + header section): 431 / 502 beyond.
    pub max_header_bytes: usize,
    /// Most header fields in one head: 431 / 502 beyond.
    pub max_headers: usize,
    /// Client connections open at once, across all workers.
    pub max_connections: usize,
    /// Idle upstream connections kept per backend, per worker.
    pub upstream_pool_size: usize,
    /// Client connections one worker holds at once; `None`: `max_connections` / workers.
    pub max_connections_per_worker: Option<usize>,
    /// Largest request body accepted (413 beyond); `None`: no limit.
    pub max_body_size: Option<u64>,
}

/// Passive and active health checking, and retries on other backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// Consecutive failures that mark a backend down; 0 disables passive marking.
    pub max_fails: u32,
    /// How long a backend marked down by failures is skipped.
    pub fail_timeout: Duration,
    /// `health_check PATH INTERVAL`: probe every backend with `GET PATH`.
    pub check: Option<HealthCheck>,
    /// Further backends one request may be tried on after its first fails.
    pub max_retries: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    pub path: String,
    pub interval: Duration,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            max_fails: 3,
            fail_timeout: Duration::from_secs(10),
            check: None,
            max_retries: 2,
        }
    }
}

/// Deadlines; each connection state arms one of these on entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeouts {
    /// Whole request head must arrive within this, however slowly it trickles.
    pub client_header: Duration,
    /// Idle client keep-alive connection between requests.
    pub keepalive: Duration,
    /// Gap between two reads of a request body, or between two writes to the client.
    pub client_idle: Duration,
    /// Establishing an upstream TCP connection.
    pub connect: Duration,
    /// Waiting for the response head, and between two reads of the response body.
    pub upstream: Duration,
    /// An idle pooled upstream connection is closed after this; keep it below the backends' own
    /// keep-alive timeout (Node: 5 s) so the backend never closes one just as it is reused.
    pub pool_idle: Duration,
    /// How long a stopping worker waits for requests in flight.
    pub shutdown: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The file this was read from, for messages.
    pub path: PathBuf,
    /// The first listener's address: what the demo, the tests and messages about "the" address
    /// use. [`Config::listeners`] is the whole list (this one first).
    pub listen: SocketAddr,
    /// Every `listen` line, plain and TLS, in order (no address twice).
    pub listeners: Vec<Listen>,
    /// `certificate CHAIN KEY` lines, in order: the first is served when SNI names no other.
    pub certificates: Vec<crate::tls::server::CertificateSpec>,
    /// `tls_session_cache N`: TLS 1.2 sessions kept for resumption (0: none).
    pub tls_session_cache: usize,
    /// `redirect_https on`: the plain listener answers every request with a 308 to https.
    pub redirect_https: bool,
    /// `hsts SECONDS`: responses on TLS listeners carry `Strict-Transport-Security`.
    pub hsts: Option<u64>,
    pub backends: Vec<BackendSpec>,
    /// `tls_server_name NAME`: the name sent to every TLS backend instead of its host.
    pub tls_server_name: Option<String>,
    /// `backend_ca FILE`: TLS backends are verified against these CAs, not the system roots.
    pub backend_ca: Option<PathBuf>,
    /// `backend_tls_verify on|off`: off accepts any backend certificate (warned at start).
    pub backend_tls_verify: bool,
    /// Built from the three above when any backend speaks TLS; `None` otherwise.
    pub backend_tls: Option<BackendTls>,
    /// Worker threads; `None` means one per core.
    pub workers: Option<usize>,
    pub log_file: PathBuf,
    pub access_log: bool,
    /// Access lines also go to stdout (`log_stdout`); the file gets them either way.
    pub log_stdout: bool,
    pub limits: Limits,
    pub timeouts: Timeouts,
    pub cache: CacheSettings,
    pub health: Health,
    /// `admin ADDR:PORT`: the status, metrics and purge listener; `None` (the default): not bound.
    pub admin: Option<SocketAddr>,
    /// `upgrade_protocols`: the `Upgrade` protocols forwarded to backends (lowercase), so the
    /// only ones a `101` can turn into a tunnel; empty (`none`): no upgrades at all.
    pub upgrade_protocols: Vec<String>,
    /// `splice on|off`: relay large plain bodies with splice(2) (Linux only; elsewhere they are
    /// always copied through the buffer).
    pub splice: bool,
    /// Header rules, request ids and the access-log format (`crate::edge`).
    pub edge: crate::edge::EdgeRules,
    /// `allow`/`deny` and `rate_limit`: who may send requests, and how fast.
    pub access: crate::access::AccessRules,
    /// The line each directive was set on (the first `backend` line for `backend`), so checks
    /// made after parsing (`pibl --check`, start-up) can still name FILE:LINE.
    pub lines: Vec<(&'static str, usize)>,
}

/// The `cache*` directives as written; [`Config::cache_config`] turns them into a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSettings {
    /// `cache on|off`; unset means on exactly when a TTL is given (`-t` or `cache_ttl`).
    pub enabled: Option<bool>,
    pub dir: PathBuf,
    /// `cache_ttl`, or `-t SECONDS`, which wins.
    pub ttl: Option<Duration>,
    pub heuristic: bool,
    pub max_bytes: u64,
    pub max_object: u64,
    /// `cdn_cache_control pass`: clients get `CDN-Cache-Control` (default `strip`: removed).
    pub cdn_cache_control_pass: bool,
}

/// TTL when the cache is switched on without one.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(60);

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            enabled: None,
            dir: PathBuf::from("cache"),
            ttl: None,
            heuristic: true,
            max_bytes: 1 << 30,
            max_object: 64 << 20,
            cdn_cache_control_pass: false,
        }
    }
}

/// A config problem, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based; 0 when the problem is the file as a whole.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";

impl Default for Limits {
    fn default() -> Self {
        Limits {
            buffer_size: 16 * 1024,
            max_header_bytes: 64 * 1024,
            max_headers: 256,
            max_connections: 16_384,
            upstream_pool_size: 128,
            max_connections_per_worker: None,
            max_body_size: None,
        }
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            client_header: Duration::from_secs(10),
            keepalive: Duration::from_secs(60),
            client_idle: Duration::from_secs(60),
            connect: Duration::from_secs(3),
            upstream: Duration::from_secs(60),
            pool_idle: Duration::from_secs(4),
            shutdown: Duration::from_secs(10),
        }
    }
}

impl Config {
    /// A config with defaults and the given backends; what tests and the demo build on.
    pub fn with_backends(listen: SocketAddr, backends: &[SocketAddr]) -> Config {
        Config {
            path: PathBuf::from("<built-in>"),
            listen,
            listeners: vec![Listen {
                addr: listen,
                tls: false,
            }],
            certificates: Vec::new(),
            tls_session_cache: crate::tls::server::DEFAULT_SESSION_CACHE,
            redirect_https: false,
            hsts: None,
            backends: backends
                .iter()
                .map(|a| BackendSpec {
                    name: a.to_string(),
                    addr: *a,
                    tls_name: None,
                })
                .collect(),
            tls_server_name: None,
            backend_ca: None,
            backend_tls_verify: true,
            backend_tls: None,
            workers: None,
            log_file: PathBuf::from("pibl.log"),
            access_log: true,
            log_stdout: true,
            limits: Limits::default(),
            timeouts: Timeouts::default(),
            cache: CacheSettings::default(),
            health: Health::default(),
            admin: None,
            upgrade_protocols: crate::http::request::DEFAULT_UPGRADE_PROTOCOLS
                .iter()
                .map(|p| p.to_string())
                .collect(),
            splice: true,
            edge: crate::edge::EdgeRules::default(),
            access: crate::access::AccessRules::default(),
            lines: Vec::new(),
        }
    }

    /// The line `directive` was set on; 0 when it was left at its default.
    pub fn line_of(&self, directive: &str) -> usize {
        self.lines
            .iter()
            .find(|(d, _)| *d == directive)
            .map_or(0, |&(_, line)| line)
    }

    /// A problem with `directive` found after parsing, located at its line (or the file as a
    /// whole when it was left at its default).
    pub fn error_at(&self, directive: &str, message: String) -> ConfigError {
        ConfigError {
            file: self.path.clone(),
            line: self.line_of(directive),
            message,
        }
    }

    /// The cache as configured, or `None` when it is off.
    pub fn cache_config(&self) -> Option<crate::cache::CacheConfig> {
        let c = &self.cache;
        let on = c.enabled.unwrap_or(c.ttl.is_some());
        on.then(|| crate::cache::CacheConfig {
            dir: c.dir.clone(),
            ttl: c.ttl.unwrap_or(DEFAULT_CACHE_TTL),
            heuristic: c.heuristic,
            max_bytes: c.max_bytes,
            max_object: c.max_object,
            fill_wait: self.timeouts.upstream.min(Duration::from_secs(10)),
        })
    }

    /// Freshness rules for responses stored from now on. Read per request from the current
    /// settings, so a reload changes the TTL without reopening the cache.
    pub fn freshness(&self) -> crate::cache::Freshness {
        crate::cache::Freshness {
            ttl: self.cache.ttl.unwrap_or(DEFAULT_CACHE_TTL),
            heuristic: self.cache.heuristic,
            pass_cdn_cache_control: self.cache.cdn_cache_control_pass,
        }
    }

    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let bytes = std::fs::read(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            line: 0,
            message: format!("cannot read config file: {e}"),
        })?;
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            let good = &bytes[..e.valid_up_to()];
            let line_start = good.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            ConfigError {
                file: path.to_path_buf(),
                line: good.iter().filter(|&&b| b == b'\n').count() + 1,
                message: format!(
                    "byte 0x{:02x} at column {} is not UTF-8 text",
                    bytes[e.valid_up_to()],
                    e.valid_up_to() - line_start + 1
                ),
            }
        })?;
        Config::parse(path, text)
    }

    /// Parses config text; `path` is only used in messages.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let err = |line: usize, message: String| ConfigError {
            file: path.to_path_buf(),
            line,
            message,
        };
        let mut cfg =
            Config::with_backends(DEFAULT_LISTEN.parse().expect("default listen address"), &[]);
        cfg.path = path.to_path_buf();
        cfg.listeners.clear();
        for (idx, raw) in text.lines().enumerate() {
            let line_no = idx + 1;
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut words = line.split_whitespace();
            let directive = words.next().unwrap_or("");
            let args: Vec<&str> = words.collect();
            let Some(&name) = DIRECTIVES.iter().find(|d| **d == directive) else {
                return Err(err(line_no, unknown_directive(directive)));
            };
            // Only `backend`, `certificate`, `allow`, `deny`, `error_page`, `listen` (see below) and
            // the header rules may repeat: a second value of anything else is a mistake (two edits
            // of one file), not something to resolve silently by keeping the last one.
            match cfg.line_of(name) {
                0 => cfg.lines.push((name, line_no)),
                first
                    if !REPEATABLE.contains(&name)
                        && !crate::edge::REPEATABLE_EDGE_DIRECTIVES.contains(&name) =>
                {
                    return Err(err(
                        line_no,
                        format!("duplicate '{name}' (first on line {first})"),
                    ));
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
                    let (v, tls) = match args.as_slice() {
                        [v] => (*v, false),
                        [v, "tls"] => (*v, true),
                        _ => {
                            return Err(err(
                                line_no,
                                "'listen' takes ADDR:PORT, or ADDR:PORT tls".to_string(),
                            ))
                        }
                    };
                    let addr = parse_addr(name, v, true).map_err(addr_at)?;
                    if cfg.listeners.len() == MAX_LISTENERS {
                        return Err(err(
                            line_no,
                            format!(
                                "listen {v}: pibl listens on at most {MAX_LISTENERS} addresses"
                            ),
                        ));
                    }
                    // Plain and TLS listeners side by side; the same address twice is two edits
                    // of one file.
                    if let Some(l) = cfg.listeners.iter().find(|l| same_address(l.addr, addr)) {
                        return Err(err(
                            line_no,
                            format!("listen {v}: {} is already a listener", l.addr),
                        ));
                    }
                    if cfg.listeners.is_empty() {
                        cfg.listen = addr;
                    }
                    if tls && cfg.line_of(TLS_LISTEN_LINE) == 0 {
                        cfg.lines.push((TLS_LISTEN_LINE, line_no));
                    }
                    cfg.listeners.push(Listen { addr, tls });
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
                "backend" => {
                    // `HOST:PORT`, `HOST:PORT tls`, or `https://HOST[:PORT]` (port 443).
                    let (v, tls) =
                        match args.as_slice() {
                            [v] => (*v, false),
                            [v, "tls"] => (*v, true),
                            [] => return Err(err(line_no, "'backend' needs a value".to_string())),
                            _ => return Err(err(
                                line_no,
                                "'backend' takes HOST:PORT, HOST:PORT tls, or https://HOST:PORT"
                                    .to_string(),
                            )),
                        };
                    let (hostport, tls) = match v.strip_prefix("https://") {
                        Some(rest) if !tls => {
                            let rest = rest.strip_suffix('/').unwrap_or(rest);
                            let has_port = rest.rsplit_once(':').is_some_and(|(_, p)| {
                                !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())
                            }) && !rest.ends_with(']');
                            if has_port {
                                (rest.to_string(), true)
                            } else {
                                (format!("{rest}:443"), true)
                            }
                        }
                        _ => (v.to_string(), tls),
                    };
                    let addr = parse_addr(name, &hostport, false).map_err(addr_at)?;
                    if cfg.backends.iter().any(|b| b.addr == addr) {
                        return Err(err(line_no, format!("backend {v} is listed twice")));
                    }
                    let tls_name = if tls {
                        let host = hostport
                            .rsplit_once(':')
                            .map_or(hostport.as_str(), |(h, _)| h);
                        let host = host.trim_start_matches('[').trim_end_matches(']');
                        Some(crate::tls::client::server_name(host).map_err(at)?)
                    } else {
                        None
                    };
                    cfg.backends.push(BackendSpec {
                        name: v.to_string(),
                        addr,
                        tls_name,
                    });
                }
                "tls_server_name" => {
                    let v = one()?;
                    crate::tls::client::server_name(v).map_err(at)?;
                    cfg.tls_server_name = Some(v.to_string());
                }
                "backend_ca" => cfg.backend_ca = Some(PathBuf::from(one()?)),
                "backend_tls_verify" => {
                    cfg.backend_tls_verify = parse_switch(one()?).map_err(at)?
                }
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
                "allow" => cfg
                    .access
                    .add_rule(crate::access::Verdict::Allow, one()?)
                    .map_err(at)?,
                "deny" => cfg
                    .access
                    .add_rule(crate::access::Verdict::Deny, one()?)
                    .map_err(at)?,
                "rate_limit" => {
                    cfg.access.rate_limit =
                        Some(crate::access::RateLimit::parse(&args).map_err(at)?)
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
                "max_headers" => {
                    cfg.limits.max_headers = parse_count(one()?, 1, 1000).map_err(at)?
                }
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
                        continue;
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
                "keepalive_timeout" => {
                    cfg.timeouts.keepalive = parse_duration(one()?).map_err(at)?
                }
                "client_timeout" => {
                    cfg.timeouts.client_idle = parse_duration(one()?).map_err(at)?
                }
                "connect_timeout" => cfg.timeouts.connect = parse_duration(one()?).map_err(at)?,
                "upstream_timeout" => cfg.timeouts.upstream = parse_duration(one()?).map_err(at)?,
                "pool_idle_timeout" => {
                    cfg.timeouts.pool_idle = parse_duration(one()?).map_err(at)?
                }
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
                        v => {
                            return Err(err(line_no, format!("expected pass or strip, got '{v}'")))
                        }
                    }
                }
                "cache_max_object" => {
                    cfg.cache.max_object = parse_size(one()?, 0, usize::MAX).map_err(at)? as u64;
                }
                "upgrade_protocols" => {
                    cfg.upgrade_protocols = parse_upgrade_protocols(&args).map_err(at)?
                }
                _ if crate::edge::EDGE_DIRECTIVES.contains(&name) => {
                    cfg.edge.parse_directive(name, &args).map_err(at)?
                }
                other => return Err(err(line_no, unknown_directive(other))),
            }
        }
        if cfg.listeners.is_empty() {
            cfg.listeners.push(Listen {
                addr: cfg.listen,
                tls: false,
            });
        }
        if cfg.backends.is_empty() {
            return Err(err(
                0,
                "no backend: add at least one line 'backend HOST:PORT'".to_string(),
            ));
        }
        cfg.check_consistency()?;
        cfg.build_backend_tls()?;
        Ok(cfg)
    }

    /// When a backend speaks TLS: applies `tls_server_name` and builds the one rustls client
    /// config all TLS backends share (reading `backend_ca` now, so `--check` finds a bad file).
    fn build_backend_tls(&mut self) -> Result<(), ConfigError> {
        if !self.backends.iter().any(|b| b.tls_name.is_some()) {
            return Ok(());
        }
        if let Some(name) = &self.tls_server_name {
            let name = crate::tls::client::server_name(name)
                .map_err(|m| self.error_at("tls_server_name", format!("tls_server_name: {m}")))?;
            for b in self.backends.iter_mut().filter(|b| b.tls_name.is_some()) {
                b.tls_name = Some(name.clone());
            }
        }
        let (trust, directive) = match (&self.backend_ca, self.backend_tls_verify) {
            (_, false) => (crate::tls::client::Trust::Insecure, "backend_tls_verify"),
            (Some(path), true) => (
                crate::tls::client::Trust::CaFile(path.clone()),
                "backend_ca",
            ),
            (None, true) => (crate::tls::client::Trust::SystemRoots, "backend"),
        };
        let config = crate::tls::client::client_config(&trust, &[b"http/1.1"])
            .map_err(|e| self.error_at(directive, format!("{directive}: {e}")))?;
        self.backend_tls = Some(BackendTls { trust, config });
        Ok(())
    }

    /// What the operator must hear at every start and in `--check`, though pibl runs: settings
    /// that weaken security.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.backend_tls.as_ref().map(|t| &t.trust) == Some(&crate::tls::client::Trust::Insecure)
        {
            out.push(
                self.error_at(
                    "backend_tls_verify",
                    "backend_tls_verify off: TLS backends' certificates are not checked; \
                     anyone on the path to them can read and change the traffic"
                        .to_string(),
                )
                .to_string(),
            );
        }
        out
    }

    /// What no single line shows: settings that contradict each other.
    fn check_consistency(&mut self) -> Result<(), ConfigError> {
        if self.cache.max_object > self.cache.max_bytes && self.line_of("cache_max_object") == 0 {
            // Only the default is larger: a small cache stores objects up to its size.
            self.cache.max_object = self.cache.max_bytes;
        }
        if self.cache.max_object > self.cache.max_bytes {
            return Err(self.error_at(
                "cache_max_object",
                format!(
                    "cache_max_object {} is larger than cache_max_bytes {}: no response that \
                     size could ever be stored",
                    format_size(self.cache.max_object),
                    format_size(self.cache.max_bytes)
                ),
            ));
        }
        if let Some(admin) = self.admin {
            if let Some(l) = self.listeners.iter().find(|l| same_address(admin, l.addr)) {
                return Err(self.error_at(
                    "admin",
                    format!(
                        "admin {admin} and listen {} are the same address: give the admin \
                         listener a port of its own",
                        l.addr
                    ),
                ));
            }
        }
        if self.redirect_https {
            match self.listeners.iter().find(|l| l.tls) {
                None => {
                    return Err(self.error_at(
                        "redirect_https",
                        "redirect_https on: there is no TLS listener to redirect to \
                         (add 'listen ADDR:PORT tls')"
                            .to_string(),
                    ))
                }
                Some(l) if l.addr.port() == 0 => {
                    return Err(self.error_at(
                        "redirect_https",
                        format!(
                            "redirect_https on: the TLS listener {} has no fixed port to \
                             redirect to",
                            l.addr
                        ),
                    ))
                }
                Some(_) => {}
            }
        }
        if self.certificates.is_empty() {
            if let Some(l) = self.listeners.iter().find(|l| l.tls) {
                return Err(self.error_at(
                    TLS_LISTEN_LINE,
                    format!(
                        "listen {l}: a TLS listener needs a certificate: add \
                         'certificate CHAIN.pem KEY.pem'"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The port to redirect a request that came in over `scheme` to, under `redirect_https on`
    /// (`None`: proxy it).
    #[inline]
    pub fn https_redirect(&self, scheme: &str) -> Option<u16> {
        if !self.redirect_https || scheme != "http" {
            return None;
        }
        self.listeners.iter().find(|l| l.tls).map(|l| l.addr.port())
    }

    /// A TLS listener is configured.
    pub fn has_tls(&self) -> bool {
        self.listeners.iter().any(|l| l.tls)
    }

    /// How many worker threads to run.
    pub fn worker_count(&self) -> usize {
        self.workers.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
    }

    /// Client connections one worker may hold.
    pub fn per_worker_connections(&self) -> usize {
        self.limits.max_connections_per_worker.unwrap_or_else(|| {
            self.limits
                .max_connections
                .div_ceil(self.worker_count().max(1))
        })
    }
}

/// Every directive, in the order docs/config.md lists them.
const DIRECTIVES: &[&str] = &[
    "listen",
    "certificate",
    "tls_session_cache",
    "redirect_https",
    "hsts",
    "backend",
    "tls_server_name",
    "backend_ca",
    "backend_tls_verify",
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
    "request_header",
    "response_header",
    "forward_real_ip",
    "forward_host",
    "request_id",
    "log_format",
];

/// `listen` lines allowed (each worker gives each listener a poll token of its own).
pub const MAX_LISTENERS: usize = 16;

/// Where `Config::lines` records the TLS `listen` line (errors about it name that line).
const TLS_LISTEN_LINE: &str = "listen tls";

/// Directives that may be given more than once.
const REPEATABLE: &[&str] = &[
    "backend",
    "listen",
    "certificate",
    "allow",
    "deny",
    "error_page",
];

/// Probing more often than this is a typo (`1ms` for `1s`), not a health check.
pub const MIN_HEALTH_CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// `unknown directive 'bakend' (did you mean 'backend'?)`: the nearest directive within two
/// edits, if there is one.
fn unknown_directive(word: &str) -> String {
    let nearest = DIRECTIVES
        .iter()
        .map(|d| (edit_distance(word, d), *d))
        .min()
        .filter(|&(distance, _)| distance <= 2 && distance < word.len());
    match nearest {
        Some((_, d)) => format!("unknown directive '{word}' (did you mean '{d}'?)"),
        None => format!("unknown directive '{word}'"),
    }
}

/// Levenshtein distance (insertions, deletions, substitutions), over bytes.
fn edit_distance(a: &str, b: &str) -> usize {
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
