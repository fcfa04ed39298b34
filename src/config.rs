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
    /// `upgrade_protocols`: the `Upgrade` protocols forwarded to backends (lowercase), so the
    /// only ones a `101` can turn into a tunnel; empty (`none`): no upgrades at all.
    pub upgrade_protocols: Vec<String>,
    /// `splice on|off`: relay large plain bodies with splice(2) (Linux only; elsewhere they are
    /// always copied through the buffer).
    pub splice: bool,
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
            upgrade_protocols: crate::http::request::DEFAULT_UPGRADE_PROTOCOLS
                .iter()
                .map(|p| p.to_string())
                .collect(),
            splice: true,
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
            // Only `backend` may repeat: a second value of anything else is a mistake (two
            // edits of one file), not something to resolve silently by keeping the last one.
            match cfg.line_of(name) {
                0 => cfg.lines.push((name, line_no)),
                first if name != "backend" => {
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
                "listen" => cfg.listen = parse_addr(name, one()?, true).map_err(addr_at)?,
                "admin" => {
                    let v = one()?;
                    cfg.admin = if v == "off" {
                        None
                    } else {
                        Some(parse_addr(name, v, true).map_err(addr_at)?)
                    };
                }
                "backend" => {
                    let v = one()?;
                    let addr = parse_addr(name, v, false).map_err(addr_at)?;
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
                "splice" => cfg.splice = parse_switch(one()?).map_err(at)?,
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
                other => return Err(err(line_no, unknown_directive(other))),
            }
        }
        if cfg.backends.is_empty() {
            return Err(err(
                0,
                "no backend: add at least one line 'backend HOST:PORT'".to_string(),
            ));
        }
        cfg.check_consistency()?;
        Ok(cfg)
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
            if same_address(admin, self.listen) {
                return Err(self.error_at(
                    "admin",
                    format!(
                        "admin {admin} and listen {} are the same address: give the admin \
                         listener a port of its own",
                        self.listen
                    ),
                ));
            }
        }
        Ok(())
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

    /// What `pibl --check` prints: every setting in effect, defaults included, one line each in
    /// the file's own syntax, so any line can be pasted back into a config. Lines starting with
    /// `#` say what a setting left unset amounts to.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "# config {} is valid; the settings in effect, defaults included:\n",
            self.path.display()
        );
        let mut put = |line: String| {
            s.push_str(&line);
            s.push('\n');
        };
        put(format!("listen {}", self.listen));
        for b in &self.backends {
            if b.name == b.addr.to_string() {
                put(format!("backend {}", b.name));
            } else {
                put(format!("backend {}  # {}", b.name, b.addr));
            }
        }
        match self.workers {
            Some(n) => put(format!("workers {n}")),
            None => put(format!("workers auto  # {}", self.worker_count())),
        }
        put(match self.admin {
            Some(a) => format!("admin {a}"),
            None => "admin off".to_string(),
        });
        put(format!("log_file {}", self.log_file.display()));
        put(format!("access_log {}", switch(self.access_log)));
        put(format!("log_stdout {}", switch(self.log_stdout)));
        let l = &self.limits;
        put(format!("max_connections {}", l.max_connections));
        match l.max_connections_per_worker {
            Some(n) => put(format!("max_connections_per_worker {n}")),
            None => put(format!(
                "# max_connections_per_worker unset: {} (max_connections / workers)",
                self.per_worker_connections()
            )),
        }
        put(format!("buffer_size {}", format_size(l.buffer_size as u64)));
        put(format!(
            "max_header_bytes {}",
            format_size(l.max_header_bytes as u64)
        ));
        put(format!("max_headers {}", l.max_headers));
        put(format!("upstream_pool_size {}", l.upstream_pool_size));
        put(if self.upgrade_protocols.is_empty() {
            "upgrade_protocols none".to_string()
        } else {
            format!("upgrade_protocols {}", self.upgrade_protocols.join(" "))
        });
        put(format!("splice {}", switch(self.splice)));
        put(match l.max_body_size {
            Some(n) => format!("max_body_size {}", format_size(n)),
            None => "max_body_size off".to_string(),
        });
        let t = &self.timeouts;
        for (name, d) in [
            ("client_header_timeout", t.client_header),
            ("keepalive_timeout", t.keepalive),
            ("client_timeout", t.client_idle),
            ("connect_timeout", t.connect),
            ("upstream_timeout", t.upstream),
            ("pool_idle_timeout", t.pool_idle),
            ("shutdown_timeout", t.shutdown),
        ] {
            put(format!("{name} {}", format_duration(d)));
        }
        let h = &self.health;
        put(format!("max_fails {}", h.max_fails));
        put(format!("fail_timeout {}", format_duration(h.fail_timeout)));
        put(format!("max_retries {}", h.max_retries));
        put(match &h.check {
            Some(c) => format!("health_check {} {}", c.path, format_duration(c.interval)),
            None => "health_check off".to_string(),
        });
        let c = &self.cache;
        let on = self.cache_config().is_some();
        put(format!("cache {}", switch(on)));
        match (c.ttl, on) {
            (Some(ttl), _) => put(format!("cache_ttl {}", format_duration(ttl))),
            (None, true) => put(format!("cache_ttl {}", format_duration(DEFAULT_CACHE_TTL))),
            (None, false) => put("# cache_ttl unset".to_string()),
        }
        put(format!("cache_dir {}", c.dir.display()));
        put(format!("cache_max_bytes {}", format_size(c.max_bytes)));
        put(format!("cache_max_object {}", format_size(c.max_object)));
        put(format!("cache_heuristic {}", switch(c.heuristic)));
        put(format!(
            "cdn_cache_control {}",
            if c.cdn_cache_control_pass {
                "pass"
            } else {
                "strip"
            }
        ));
        s
    }
}

/// Every directive, in the order docs/config.md lists them.
const DIRECTIVES: &[&str] = &[
    "listen",
    "backend",
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

/// `1 worker`, `2 workers`: a count with its noun, for messages that read as sentences.
pub fn counted(n: usize, singular: &str, plural: &str) -> String {
    format!("{n} {}", if n == 1 { singular } else { plural })
}

fn switch(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}

/// Whether a listener on `a` would take the same connections as one on `b`: same port, and the
/// same IP or either one the wildcard. Port 0 (pick a free port) never clashes.
fn same_address(a: SocketAddr, b: SocketAddr) -> bool {
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
fn parse_addr(directive: &str, v: &str, may_pick_port: bool) -> Result<SocketAddr, String> {
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

fn parse_count(v: &str, min: usize, max: usize) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if n >= min && n <= max => Ok(n),
        _ => Err(format!("'{v}' is not a number from {min} to {max}")),
    }
}

/// `none`, or protocol names (HTTP tokens, as in `Upgrade: websocket`), kept lowercase.
fn parse_upgrade_protocols(args: &[&str]) -> Result<Vec<String>, String> {
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
        assert_eq!(
            e.message,
            "backend: port 99999 in '127.0.0.1:99999' is out of range (1 to 65535)"
        );
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
    fn upgrade_protocols_default_list_and_none() {
        let cfg = parse("backend 127.0.0.1:2\n").unwrap();
        assert_eq!(cfg.upgrade_protocols, ["websocket"]);
        assert_eq!(cfg.limits.max_headers, 256);
        let cfg = parse("backend 127.0.0.1:2\nupgrade_protocols WebSocket h2c\n").unwrap();
        assert_eq!(cfg.upgrade_protocols, ["websocket", "h2c"]);
        let cfg = parse("backend 127.0.0.1:2\nupgrade_protocols none\n").unwrap();
        assert!(cfg.upgrade_protocols.is_empty());
        for bad in ["", " none websocket", " web/socket", " a,b"] {
            let e = parse(&format!("backend 127.0.0.1:2\nupgrade_protocols{bad}\n")).unwrap_err();
            assert!(
                e.to_string()
                    .starts_with("test.conf:2: upgrade_protocols: "),
                "{bad:?}: {e}"
            );
        }
    }

    #[test]
    fn admin_is_off_unless_configured_and_errors_are_located() {
        let cfg = parse("backend 127.0.0.1:2\n").unwrap();
        assert_eq!(cfg.admin, None);
        assert!(cfg.summary().contains("\nadmin off\n"), "{}", cfg.summary());
        let cfg = parse("backend 127.0.0.1:2\nadmin 127.0.0.1:9901\n").unwrap();
        assert_eq!(cfg.admin, Some("127.0.0.1:9901".parse().unwrap()));
        assert!(cfg.summary().contains("\nadmin 127.0.0.1:9901\n"));
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

    #[test]
    fn a_single_value_directive_given_twice_names_both_lines() {
        for directive in [
            "workers 2",
            "log_file a.log",
            "connect_timeout 1s",
            "cache_ttl 10s",
            "max_connections 5",
            "health_check /h 1s",
        ] {
            let e = parse(&format!(
                "backend 127.0.0.1:2\n{directive}\n\n{directive}\n"
            ))
            .unwrap_err();
            let name = directive.split(' ').next().unwrap();
            assert_eq!(
                e.to_string(),
                format!("test.conf:4: duplicate '{name}' (first on line 2)")
            );
        }
        let cfg = parse("backend 127.0.0.1:2\nbackend 127.0.0.1:3\n").unwrap();
        assert_eq!(cfg.backends.len(), 2, "backend stays repeatable");
    }

    #[test]
    fn unknown_directives_suggest_the_nearest_one() {
        let e = parse("bakend 127.0.0.1:2\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "test.conf:1: unknown directive 'bakend' (did you mean 'backend'?)"
        );
        let e = parse("backend 127.0.0.1:2\nkeepalive_timout 5s\n").unwrap_err();
        assert!(
            e.message.ends_with("(did you mean 'keepalive_timeout'?)"),
            "{e}"
        );
        let e = parse("backend 127.0.0.1:2\nttl 5s\n").unwrap_err();
        assert_eq!(e.message, "unknown directive 'ttl'");
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn addresses_say_what_is_wrong_with_them() {
        let e = parse("backend http://127.0.0.1:8081/\n").unwrap_err();
        assert!(
            e.message
                .starts_with("backend takes HOST:PORT, not a URL: 'http://127.0.0.1:8081/'"),
            "{e}"
        );
        let e = parse("backend 127.0.0.1:2\nlisten localhost:70000\n").unwrap_err();
        assert_eq!(
            e.message,
            "listen: port 70000 in 'localhost:70000' is out of range (1 to 65535)"
        );
        let e = parse("backend 127.0.0.1:0\n").unwrap_err();
        assert!(
            e.message.starts_with("backend: port 0 in '127.0.0.1:0'"),
            "{e}"
        );
        // Where pibl listens, port 0 asks the kernel for a free port.
        assert_eq!(
            parse("backend 127.0.0.1:2\nlisten 127.0.0.1:0\n")
                .unwrap()
                .listen
                .port(),
            0
        );
    }

    #[test]
    fn absurd_values_are_refused_with_the_reason() {
        let e = parse("backend 127.0.0.1:2\nhealth_check /h 1ms\n").unwrap_err();
        assert!(e.message.contains("flood"), "{e}");
        let e =
            parse("backend 127.0.0.1:2\ncache_max_bytes 1m\ncache_max_object 2m\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "test.conf:3: cache_max_object 2m is larger than cache_max_bytes 1m: no response \
             that size could ever be stored"
        );
        // The default cache_max_object (64m) shrinks to a smaller cache_max_bytes.
        let cfg = parse("backend 127.0.0.1:2\ncache_max_bytes 1m\n").unwrap();
        assert_eq!(cfg.cache.max_object, 1 << 20);
        let e =
            parse("listen 0.0.0.0:8080\nbackend 127.0.0.1:2\nadmin 127.0.0.1:8080\n").unwrap_err();
        assert!(
            e.to_string().starts_with(
                "test.conf:3: admin 127.0.0.1:8080 and listen 0.0.0.0:8080 are the same address"
            ),
            "{e}"
        );
        assert!(parse("listen 127.0.0.1:0\nbackend 127.0.0.1:2\nadmin 127.0.0.1:0\n").is_ok());
    }

    #[test]
    fn cache_ttl_is_whole_seconds_in_the_duration_syntax() {
        let e = parse("backend 127.0.0.1:2\ncache_ttl 500ms\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("test.conf:2: cache_ttl: '500ms' is not a whole number"),
            "{e}"
        );
        let cfg = parse("backend 127.0.0.1:2\ncache_ttl 2m\n").unwrap();
        assert_eq!(cfg.cache.ttl, Some(Duration::from_secs(120)));
        assert_eq!(parse_ttl("1500ms").map_err(|_| ()), Err(()));
        assert_eq!(parse_ttl("2000ms"), Ok(Duration::from_secs(2)));
    }

    #[test]
    fn the_summary_lists_every_setting_and_reads_back_as_the_same_config() {
        let text = "listen 127.0.0.1:9\nbackend 127.0.0.1:81\nbackend localhost:82\nworkers 3\n\
                    connect_timeout 250ms\nkeepalive_timeout 2m\nmax_body_size 1m\n\
                    health_check /health 2s\ncache_ttl 1h\nadmin 127.0.0.1:9901\n";
        let cfg = parse(text).unwrap();
        let summary = cfg.summary();
        for line in [
            "workers 3",
            "connect_timeout 250ms",
            "keepalive_timeout 2m",
            "client_header_timeout 10s",
            "max_connections 16384",
            "buffer_size 16k",
            "max_body_size 1m",
            "health_check /health 2s",
            "cache on",
            "cache_ttl 1h",
            "cache_max_bytes 1g",
            "backend localhost:82  # ",
        ] {
            assert!(summary.contains(&format!("\n{line}")), "{line}: {summary}");
        }
        let mut again = parse(&summary).unwrap();
        // `cache on` is written out; the file left it implied by the TTL.
        assert_eq!(again.cache_config(), cfg.cache_config());
        again.cache.enabled = cfg.cache.enabled;
        assert_eq!(
            Config {
                path: cfg.path.clone(),
                lines: Vec::new(),
                ..again
            },
            Config {
                lines: Vec::new(),
                ..cfg
            }
        );
        // Defaults read back too (the cache stays off, per-worker connections stay derived).
        let cfg = parse("backend 127.0.0.1:2\n").unwrap();
        let again = parse(&cfg.summary()).unwrap();
        assert_eq!(again.cache_config(), None);
        assert_eq!(again.limits, cfg.limits);
        assert_eq!(again.timeouts, cfg.timeouts);
        assert_eq!(again.health, cfg.health);
    }

    #[test]
    fn counted_nouns_agree_with_their_number() {
        assert_eq!(counted(1, "worker", "workers"), "1 worker");
        assert_eq!(counted(0, "entry", "entries"), "0 entries");
        assert_eq!(format_size(1536), "1536");
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
    }
}
