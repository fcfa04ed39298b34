//! `pibl.conf`: one `directive value...` per line, `#` starts a comment.
//!
//! Every error names the file, the line and what is wrong, and is found before anything binds, so a
//! typo never reaches production as a half-configured proxy. The reference is `docs/config.md`.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// An upstream server as written in the config and as resolved at load time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendSpec {
    /// The address as the user wrote it, for logs.
    pub name: String,
    pub addr: SocketAddr,
}

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
    pub listen: SocketAddr,
    pub backends: Vec<BackendSpec>,
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
            max_headers: 100,
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
            backends: backends
                .iter()
                .map(|a| BackendSpec {
                    name: a.to_string(),
                    addr: *a,
                })
                .collect(),
            workers: None,
            log_file: PathBuf::from("pibl.log"),
            access_log: true,
            log_stdout: true,
            limits: Limits::default(),
            timeouts: Timeouts::default(),
            cache: CacheSettings::default(),
            health: Health::default(),
            admin: None,
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
        }
    }

    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            line: 0,
            message: format!("cannot read config file: {e}"),
        })?;
        Config::parse(path, &text)
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
        let mut listen_line = None;
        let mut admin_line = None;
        for (idx, raw) in text.lines().enumerate() {
            let line_no = idx + 1;
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut words = line.split_whitespace();
            let directive = words.next().unwrap_or("");
            let args: Vec<&str> = words.collect();
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
            match directive {
                "listen" => {
                    if let Some(first) = listen_line {
                        return Err(err(
                            line_no,
                            format!("duplicate 'listen' (first on line {first})"),
                        ));
                    }
                    cfg.listen = parse_addr(one()?).map_err(at)?;
                    listen_line = Some(line_no);
                }
                "admin" => {
                    if let Some(first) = admin_line {
                        return Err(err(
                            line_no,
                            format!("duplicate 'admin' (first on line {first})"),
                        ));
                    }
                    let v = one()?;
                    cfg.admin = if v == "off" {
                        None
                    } else {
                        Some(parse_addr(v).map_err(at)?)
                    };
                    admin_line = Some(line_no);
                }
                "backend" => {
                    let v = one()?;
                    let addr = parse_addr(v).map_err(at)?;
                    if cfg.backends.iter().any(|b| b.addr == addr) {
                        return Err(err(line_no, format!("backend {v} is listed twice")));
                    }
                    cfg.backends.push(BackendSpec {
                        name: v.to_string(),
                        addr,
                    });
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
                    let [path, interval] = args.as_slice() else {
                        return Err(err(
                            line_no,
                            "'health_check' takes PATH INTERVAL, e.g. 'health_check /health 2s'"
                                .to_string(),
                        ));
                    };
                    if !path.starts_with('/') || !path.bytes().all(|b| b.is_ascii_graphic()) {
                        return Err(at(format!("'{path}' is not a path starting with '/'")));
                    }
                    cfg.health.check = Some(HealthCheck {
                        path: path.to_string(),
                        interval: parse_duration(interval).map_err(at)?,
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
                "cache_ttl" => cfg.cache.ttl = Some(parse_duration(one()?).map_err(at)?),
                "cache_heuristic" => cfg.cache.heuristic = parse_switch(one()?).map_err(at)?,
                "cache_max_bytes" => {
                    cfg.cache.max_bytes = parse_size(one()?, 0, usize::MAX).map_err(at)? as u64;
                }
                "cache_max_object" => {
                    cfg.cache.max_object = parse_size(one()?, 0, usize::MAX).map_err(at)? as u64;
                }
                other => return Err(err(line_no, format!("unknown directive '{other}'"))),
            }
        }
        if cfg.backends.is_empty() {
            return Err(err(
                0,
                "no backend: add at least one line 'backend HOST:PORT'".to_string(),
            ));
        }
        Ok(cfg)
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

    /// A short human summary, printed by `pibl --check`.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "config {} is valid\n  listen     {}\n  workers    {}\n  log_file   {}\n",
            self.path.display(),
            self.listen,
            self.worker_count(),
            self.log_file.display()
        );
        for b in &self.backends {
            s.push_str(&format!("  backend    {} ({})\n", b.name, b.addr));
        }
        match self.cache_config() {
            Some(c) => s.push_str(&format!(
                "  cache      on, dir {}, ttl {}s, max {} bytes\n",
                c.dir.display(),
                c.ttl.as_secs(),
                c.max_bytes
            )),
            None => s.push_str("  cache      off\n"),
        }
        match self.admin {
            Some(a) => s.push_str(&format!(
                "  admin      {a} (/status, /metrics, PURGE /cache)\n"
            )),
            None => s.push_str("  admin      off\n"),
        }
        s
    }
}

/// `IP:PORT`, `[IPv6]:PORT` or `name:PORT` (resolved now, first address wins).
fn parse_addr(v: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = v.parse::<SocketAddr>() {
        return Ok(a);
    }
    let Some((host, port)) = v.rsplit_once(':') else {
        return Err(format!("bad address '{v}': expected HOST:PORT"));
    };
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(format!("bad address '{v}': expected HOST:PORT"));
    }
    match v.to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| format!("bad address '{v}': name has no address")),
        Err(e) => Err(format!("bad address '{v}': {e}")),
    }
}

fn parse_count(v: &str, min: usize, max: usize) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if n >= min && n <= max => Ok(n),
        _ => Err(format!("'{v}' is not a number from {min} to {max}")),
    }
}

fn parse_switch(v: &str) -> Result<bool, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("test.conf"), text)
    }

    #[test]
    fn repository_config_is_valid() {
        let text = include_str!("../pibl.conf");
        let cfg = parse(text).unwrap();
        assert_eq!(cfg.listen, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(cfg.backends.len(), 3);
        assert_eq!(cfg.backends[2].addr, "127.0.0.1:8083".parse().unwrap());
    }

    #[test]
    fn errors_name_file_line_and_problem() {
        let e = parse("listen 127.0.0.1:1\nbackend 127.0.0.1:2\nfrobnicate 3\n").unwrap_err();
        assert_eq!(e.to_string(), "test.conf:3: unknown directive 'frobnicate'");
        let e = parse("# c\nbackend\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("needs a value"), "{e}");
        let e = parse("backend 127.0.0.1\n").unwrap_err();
        assert!(e.message.contains("bad address"), "{e}");
        let e = parse("backend 127.0.0.1:99999\n").unwrap_err();
        assert!(e.message.contains("bad address"), "{e}");
        let e = parse("listen 127.0.0.1:1\n").unwrap_err();
        assert!(e.message.contains("no backend"), "{e}");
        let e = parse("listen 127.0.0.1:1\nbackend 127.0.0.1:2\nlisten 127.0.0.1:3\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.message.contains("duplicate 'listen'"), "{e}");
        let e = parse("backend 127.0.0.1:2\nkeepalive_timeout soon\n").unwrap_err();
        assert!(
            e.to_string().starts_with("test.conf:2: keepalive_timeout:"),
            "{e}"
        );
    }

    #[test]
    fn values_and_units() {
        let cfg = parse(
            "backend 127.0.0.1:2 # trailing comment\nworkers 3\nbuffer_size 32k\n\
             connect_timeout 250ms\nkeepalive_timeout 2m\naccess_log off\n",
        )
        .unwrap();
        assert_eq!(cfg.workers, Some(3));
        assert_eq!(cfg.limits.buffer_size, 32 * 1024);
        assert_eq!(cfg.timeouts.connect, Duration::from_millis(250));
        assert_eq!(cfg.timeouts.keepalive, Duration::from_secs(120));
        assert!(!cfg.access_log);
        assert_eq!(parse_size("1MiB", 0, usize::MAX), Ok(1 << 20));
        assert!(parse_duration("0s").is_err());
    }

    #[test]
    fn health_and_limit_directives() {
        let cfg = parse("backend 127.0.0.1:2\n").unwrap();
        assert_eq!(cfg.health, Health::default());
        assert_eq!(cfg.limits.max_body_size, None);
        let cfg = parse(
            "backend 127.0.0.1:2\nworkers 4\nmax_connections 10\nmax_fails 0\n\
             fail_timeout 500ms\nmax_retries 5\nhealth_check /health 2s\nmax_body_size 1m\n",
        )
        .unwrap();
        assert_eq!(cfg.health.max_fails, 0);
        assert_eq!(cfg.health.fail_timeout, Duration::from_millis(500));
        assert_eq!(cfg.health.max_retries, 5);
        let check = cfg.health.check.clone().unwrap();
        assert_eq!(
            (check.path.as_str(), check.interval),
            ("/health", Duration::from_secs(2))
        );
        assert_eq!(cfg.limits.max_body_size, Some(1 << 20));
        assert_eq!(cfg.per_worker_connections(), 3);
        let cfg = parse("backend 127.0.0.1:2\nmax_connections_per_worker 7\n").unwrap();
        assert_eq!(cfg.per_worker_connections(), 7);
        let e = parse("backend 127.0.0.1:2\nhealth_check /h\n").unwrap_err();
        assert!(e.message.contains("PATH INTERVAL"), "{e}");
        let e = parse("backend 127.0.0.1:2\nhealth_check health 2s\n").unwrap_err();
        assert!(e.message.contains("path"), "{e}");
    }

    #[test]
    fn admin_is_off_unless_configured_and_errors_are_located() {
        let cfg = parse("backend 127.0.0.1:2\n").unwrap();
        assert_eq!(cfg.admin, None);
        assert!(
            cfg.summary().contains("admin      off"),
            "{}",
            cfg.summary()
        );
        let cfg = parse("backend 127.0.0.1:2\nadmin 127.0.0.1:9901\n").unwrap();
        assert_eq!(cfg.admin, Some("127.0.0.1:9901".parse().unwrap()));
        assert!(cfg.summary().contains("admin      127.0.0.1:9901"));
        assert_eq!(
            parse("backend 127.0.0.1:2\nadmin off\n").unwrap().admin,
            None
        );
        let e = parse("backend 127.0.0.1:2\nadmin 9901\n").unwrap_err();
        assert!(
            e.to_string().starts_with("test.conf:2: admin: bad address"),
            "{e}"
        );
        let e = parse("backend 127.0.0.1:2\nadmin\n").unwrap_err();
        assert_eq!(
            (e.line, e.message.contains("needs a value")),
            (2, true),
            "{e}"
        );
        let e = parse("admin 127.0.0.1:1\nbackend 127.0.0.1:2\nadmin 127.0.0.1:3\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(
            e.message.contains("duplicate 'admin' (first on line 1)"),
            "{e}"
        );
    }
}
