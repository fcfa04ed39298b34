//! `pibl.conf`: one `directive value...` per line, `#` starts a comment.
//!
//! Every error names the file, the line and what is wrong, and is found before anything binds, so a
//! typo never reaches production as a half-configured proxy. The reference is `docs/config.md`.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod apply;
mod blocks;
mod compress;
#[cfg(test)]
mod listener_tests;
mod routing;
mod summary;
#[cfg(test)]
mod tests;
mod values;

use blocks::Statement;
pub use compress::{CompressSettings, COMPRESS_DIRECTIVES};
pub use routing::{
    Balance, HashKey, NoSite, PoolSpec, RouteSpec, ScopeSettings, SiteSpec, DEFAULT_POOL,
};
pub use summary::certificates as certificate_summary;
pub use values::{format_duration, format_size, parse_duration, parse_size, parse_ttl};
use values::{parse_addr, same_address};

/// A `listen ADDR [tls] [proxy_protocol] [http2 on|off]` (or `listen unix:PATH [mode=0660] ...`)
/// line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    /// The TCP address (`0.0.0.0:0`, unused, for a unix socket).
    pub addr: SocketAddr,
    /// `tls`: clients speak TLS; the `certificate`s are served.
    pub tls: bool,
    /// `proxy_protocol`: every connection begins with a PROXY protocol header (v1 or v2, before
    /// any TLS), whose source address is the client's for logs, X-Forwarded-For and ACLs.
    pub proxy_protocol: bool,
    /// `unix:PATH`: a unix-domain socket instead of `addr`.
    pub unix: Option<UnixListen>,
    /// `http2 on|off` on the line: whether this TLS listener offers HTTP/2 (ALPN `h2`);
    /// `None`: as the top-level `http2` says.
    pub http2: Option<bool>,
}

/// HTTP/2 for clients (docs/http2.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Http2Settings {
    /// `http2 on|off`: TLS listeners offer ALPN `h2` before `http/1.1` (on by default).
    pub tls: bool,
    /// `h2c on|off`: plain listeners take HTTP/2 with prior knowledge (the client preface);
    /// off by default, when a preface is answered 400 as any bad request.
    pub h2c: bool,
    /// `http2_max_concurrent_streams N`: streams one connection may have open (128).
    pub max_concurrent_streams: u32,
    /// `http2_initial_window SIZE`: each stream's receive window, the request body bytes a
    /// stream may have in flight unread (65535, the RFC's initial value).
    pub initial_window: u32,
    /// `http2_max_frame_size SIZE`: the largest frame payload pibl accepts
    /// (SETTINGS_MAX_FRAME_SIZE; 16384, the RFC's initial value); larger is FRAME_SIZE_ERROR.
    pub max_frame_size: u32,
    /// `http2_max_header_list_size SIZE`: the largest decoded request header list
    /// (SETTINGS_MAX_HEADER_LIST_SIZE, name + value + 32 per field; 32k); larger ends the
    /// connection (ENHANCE_YOUR_CALM).
    pub max_header_list_size: u32,
}

impl Default for Http2Settings {
    fn default() -> Self {
        Http2Settings {
            tls: true,
            h2c: false,
            max_concurrent_streams: crate::h2::connection::DEFAULT_MAX_CONCURRENT_STREAMS,
            initial_window: 65_535,
            max_frame_size: crate::h2::frame::DEFAULT_MAX_FRAME_SIZE,
            max_header_list_size: crate::h2::connection::DEFAULT_HEADER_LIST_SIZE,
        }
    }
}

/// A unix-domain socket to listen on: its path and, with `mode=`, its permissions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnixListen {
    pub path: PathBuf,
    /// `mode=0660` (octal); `None`: as the umask leaves it.
    pub mode: Option<u32>,
}

impl Listen {
    /// A TCP listener on `addr`, plain, without PROXY protocol.
    pub fn tcp(addr: SocketAddr) -> Listen {
        Listen {
            addr,
            tls: false,
            proxy_protocol: false,
            unix: None,
            http2: None,
        }
    }

    /// Whether this listener's TLS clients are offered HTTP/2, the top-level `http2` being
    /// `default`.
    pub fn offers_h2(&self, default: bool) -> bool {
        self.tls && self.http2.unwrap_or(default)
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.unix {
            Some(u) => {
                write!(f, "unix:{}", u.path.display())?;
                if let Some(mode) = u.mode {
                    write!(f, " mode={mode:04o}")?;
                }
            }
            None => write!(f, "{}", self.addr)?,
        }
        if self.tls {
            write!(f, " tls")?;
        }
        if self.proxy_protocol {
            write!(f, " proxy_protocol")?;
        }
        if let Some(on) = self.http2 {
            write!(f, " http2 {}", if on { "on" } else { "off" })?;
        }
        Ok(())
    }
}

/// An upstream server as written in the config and as resolved at load time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendSpec {
    /// The address as the user wrote it, for logs.
    pub name: String,
    pub addr: SocketAddr,
    /// `weight=N`: its share of requests against the pool's other backends (1 by default).
    pub weight: u32,
    /// `backup`: used only while every other backend of its pool is down.
    pub backup: bool,
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
    /// The top-level `backend` lines: the implicit pool [`DEFAULT_POOL`].
    pub backends: Vec<BackendSpec>,
    /// Top-level `balance`: how the implicit pool balances.
    pub balance: Balance,
    /// Top-level `backend_proxy_protocol v1|v2`: the implicit pool's backends get a PROXY
    /// protocol header on every new connection (a pool block says `proxy_protocol`).
    pub backend_proxy_protocol: Option<crate::net::proxy_protocol::Version>,
    /// `pool NAME { ... }` blocks, in order.
    pub pools: Vec<PoolSpec>,
    /// `site HOST... { ... }` blocks, in order; none: every request goes to the implicit pool.
    pub sites: Vec<SiteSpec>,
    /// `no_site 404|421`: what a host no site names gets when no site is `default`.
    pub no_site: NoSite,
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
    /// `compress*`: response compression (`crate::compress`, docs/compression.md).
    pub compress: CompressSettings,
    pub health: Health,
    /// `admin ADDR:PORT`: the status, metrics and purge listener; `None` (the default): not bound.
    pub admin: Option<SocketAddr>,
    /// `upgrade_protocols`: the `Upgrade` protocols forwarded to backends (lowercase), so the
    /// only ones a `101` can turn into a tunnel; empty (`none`): no upgrades at all.
    pub upgrade_protocols: Vec<String>,
    /// HTTP/2 for clients (`http2`, `h2c`, `http2_*`; docs/http2.md).
    pub http2: Http2Settings,
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
    /// The directives of [`Config::lines`] set in an included file, with that file.
    pub lines_elsewhere: Vec<(&'static str, PathBuf)>,
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
            listeners: vec![Listen::tcp(listen)],
            certificates: Vec::new(),
            tls_session_cache: crate::tls::server::DEFAULT_SESSION_CACHE,
            redirect_https: false,
            hsts: None,
            backends: backends
                .iter()
                .map(|a| BackendSpec {
                    name: a.to_string(),
                    addr: *a,
                    weight: 1,
                    backup: false,
                    tls_name: None,
                })
                .collect(),
            balance: Balance::default(),
            backend_proxy_protocol: None,
            pools: Vec::new(),
            sites: Vec::new(),
            no_site: NoSite::default(),
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
            compress: CompressSettings::default(),
            health: Health::default(),
            admin: None,
            upgrade_protocols: crate::http::request::DEFAULT_UPGRADE_PROTOCOLS
                .iter()
                .map(|p| p.to_string())
                .collect(),
            http2: Http2Settings::default(),
            splice: true,
            edge: crate::edge::EdgeRules::default(),
            access: crate::access::AccessRules::default(),
            lines: Vec::new(),
            lines_elsewhere: Vec::new(),
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
        let file = self.lines_elsewhere.iter().find(|(d, _)| *d == directive);
        ConfigError {
            file: file.map_or_else(|| self.path.clone(), |(_, f)| f.clone()),
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

    /// Parses config text; `path` names it in messages, and `include`s are found relative to
    /// it.
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
        let mut site_at = Vec::new();
        let mut pool_at: Vec<Statement> = Vec::new();
        for s in blocks::statements(path, text)? {
            match (s.name(), &s.block) {
                ("pool", Some(block)) => {
                    let pool = routing::parse_pool(&s, block)?;
                    if let Some(first) = pool_at
                        .iter()
                        .zip(&cfg.pools)
                        .find(|(_, p)| p.name == pool.name)
                        .map(|(at, _)| at)
                    {
                        return Err(s.error(format!(
                            "pool {} is already defined at {}:{}",
                            pool.name,
                            first.file.display(),
                            first.line
                        )));
                    }
                    cfg.pools.push(pool);
                    pool_at.push(s.clone());
                }
                ("site", Some(block)) => {
                    cfg.sites.push(routing::parse_site(&s, block)?);
                    site_at.push(s.clone());
                }
                ("pool" | "site", None) => {
                    return Err(s.error(format!(
                        "'{}' needs a block: {} {{ ... }}",
                        s.name(),
                        s.words.join(" ")
                    )))
                }
                ("route" | "default", _) => {
                    return Err(s.error(format!("'{}' goes inside a site block", s.name())))
                }
                (name, Some(_)) => {
                    return Err(s.error(format!("'{name}' takes no block at top level")))
                }
                // The top level's scoped directives are `edge` and `access` (see
                // `ScopeSettings::top_level`).
                _ => cfg.apply(&s)?,
            }
        }
        if cfg.listeners.is_empty() {
            cfg.listeners.push(Listen::tcp(cfg.listen));
        }
        if cfg.backends.is_empty() && cfg.pools.is_empty() {
            return Err(err(
                0,
                "no backend: add at least one line 'backend HOST:PORT'".to_string(),
            ));
        }
        if !cfg.backends.is_empty() && cfg.backends.iter().all(|b| b.backup) {
            return Err(cfg.error_at(
                "backend",
                "every top-level backend is a backup: add one that is not".to_string(),
            ));
        }
        cfg.check_routing(&pool_at, &site_at)?;
        cfg.check_consistency()?;
        cfg.build_backend_tls()?;
        Ok(cfg)
    }

    /// When a backend speaks TLS: applies `tls_server_name` and builds the one rustls client
    /// config all TLS backends share (reading `backend_ca` now, so `--check` finds a bad file).
    /// Pools' backends count as the top-level ones do.
    fn build_backend_tls(&mut self) -> Result<(), ConfigError> {
        if !self.all_backends().any(|b| b.tls_name.is_some()) {
            return Ok(());
        }
        if let Some(name) = &self.tls_server_name {
            let name = crate::tls::client::server_name(name)
                .map_err(|m| self.error_at("tls_server_name", format!("tls_server_name: {m}")))?;
            let pools = self.pools.iter_mut().flat_map(|p| p.backends.iter_mut());
            for b in self.backends.iter_mut().chain(pools) {
                if b.tls_name.is_some() {
                    b.tls_name = Some(name.clone());
                }
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

    /// Every backend: the top-level ones, then each pool's.
    pub fn all_backends(&self) -> impl Iterator<Item = &BackendSpec> {
        let pools = self.pools.iter().flat_map(|p| p.backends.iter());
        self.backends.iter().chain(pools)
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
            let tcp = self.listeners.iter().filter(|l| l.unix.is_none());
            if let Some(l) = tcp.clone().find(|l| same_address(admin, l.addr)) {
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
            match self.listeners.iter().find(|l| l.tls && l.unix.is_none()) {
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
        self.listeners
            .iter()
            .find(|l| l.tls && l.unix.is_none())
            .map(|l| l.addr.port())
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

/// `listen` lines allowed (each worker gives each listener a poll token of its own).
pub const MAX_LISTENERS: usize = 16;

/// Where `Config::lines` records the TLS `listen` line (errors about it name that line).
pub(super) const TLS_LISTEN_LINE: &str = "listen tls";

/// Probing more often than this is a typo (`1ms` for `1s`), not a health check.
pub const MIN_HEALTH_CHECK_INTERVAL: Duration = Duration::from_millis(100);
