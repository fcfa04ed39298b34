//! `pool NAME { ... }`, `site HOST... { ... }` and `route PATH POOL`: the routing table as
//! written, checked. Today's flat file (top-level `backend` lines, no site) is one implicit pool,
//! [`DEFAULT_POOL`], and one default site sending every path to it.

use super::blocks::Statement;
use super::values::parse_count;
use super::{parse_addr, BackendSpec, Config, ConfigError};
use crate::access::{AccessRules, RateLimit, Verdict};
use crate::edge::EdgeRules;
use crate::net::proxy_protocol::Version;

/// The name of the pool the top-level `backend` lines make.
pub const DEFAULT_POOL: &str = "default";

/// Pools a config may name, and sites and routes: bounded, as every table is.
const MAX_POOLS: usize = 1024;
const MAX_SITES: usize = 4096;
const MAX_ROUTES_PER_SITE: usize = 1024;
/// Sites and routes that set a `rate_limit` of their own (each a table of buckets, sharing
/// `rate_limit_table` between them).
const MAX_RATE_LIMITS: usize = 256;
/// Largest `weight=`.
const MAX_WEIGHT: usize = 1000;

/// How a pool chooses a backend for a request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Balance {
    /// The next backend per request, over all workers (the default).
    #[default]
    RoundRobin,
    /// The backend with the fewest requests in flight.
    LeastConn,
    /// Consistent hashing on a key, so the same key goes to the same backend.
    Hash(HashKey),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashKey {
    /// The request target as sent.
    Uri,
    /// A request header's value (the name lowercase).
    Header(String),
}

impl std::fmt::Display for Balance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Balance::RoundRobin => f.write_str("round_robin"),
            Balance::LeastConn => f.write_str("least_conn"),
            Balance::Hash(HashKey::Uri) => f.write_str("hash uri"),
            Balance::Hash(HashKey::Header(h)) => write!(f, "hash header:{h}"),
        }
    }
}

/// A named group of backends and how to balance over them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSpec {
    pub name: String,
    pub backends: Vec<BackendSpec>,
    pub balance: Balance,
    /// `proxy_protocol v1|v2`: each new connection to its backends begins with a PROXY
    /// protocol header carrying the client's address.
    pub proxy_protocol: Option<Version>,
    /// Where it was defined (0: the implicit pool).
    pub line: usize,
}

/// Settings a site or a route may override: header rules, `X-Real-IP`/`X-Forwarded-Host`,
/// request ids, the log format ([`EdgeRules`]), `allow`/`deny`, `rate_limit` and `error_page`
/// ([`AccessRules`]). Inheritance is nginx's: a directive a scope does not set comes from the
/// enclosing one (top level → site → route); a list (`request_header`, `response_header`,
/// `allow`/`deny` together, `error_page`) set in a scope replaces the outer list whole.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSettings {
    pub edge: EdgeRules,
    /// `acl`, `rate_limit` and `error_pages` (`rate_limit_table` is top level only).
    pub access: AccessRules,
    /// The directives this scope sets, a bit each ([`scoped_bit`]).
    set: u16,
}

/// The directives a site or route may set, in the order of their bits in
/// [`ScopeSettings::set`]; `allow` and `deny` are one list, so one bit.
const SCOPED: &[&[&str]] = &[
    &["request_header"],
    &["response_header"],
    &["forward_real_ip"],
    &["forward_host"],
    &["request_id"],
    &["log_format"],
    &["allow", "deny"],
    &["rate_limit"],
    &["error_page"],
];

/// The bit of a scoped directive, `None` for any other.
fn scoped_bit(name: &str) -> Option<u16> {
    SCOPED
        .iter()
        .position(|names| names.contains(&name))
        .map(|i| 1 << i)
}

/// The scoped directives that may repeat (each line adds to its list), in a block or at top
/// level.
pub fn repeatable_in_scope(name: &str) -> bool {
    matches!(name, "allow" | "deny" | "error_page")
        || crate::edge::REPEATABLE_EDGE_DIRECTIVES.contains(&name)
}

impl ScopeSettings {
    /// The top level's settings (`Config::edge`, `Config::access`), as the scope every site
    /// inherits from: it sets everything.
    pub fn top_level(config: &Config) -> ScopeSettings {
        ScopeSettings {
            edge: config.edge.clone(),
            access: config.access.clone(),
            set: u16::MAX,
        }
    }

    /// `self` with what it leaves unset taken from `outer`.
    pub fn inherit(&self, outer: &ScopeSettings) -> ScopeSettings {
        let mut s = outer.clone();
        let sets = |name: &str| scoped_bit(name).is_some_and(|b| self.set & b != 0);
        let (e, a) = (&self.edge, &self.access);
        if sets("request_header") {
            s.edge.request_headers = e.request_headers.clone();
        }
        if sets("response_header") {
            s.edge.response_headers = e.response_headers.clone();
        }
        if sets("forward_real_ip") {
            s.edge.forward_real_ip = e.forward_real_ip;
        }
        if sets("forward_host") {
            s.edge.forward_host = e.forward_host;
        }
        if sets("request_id") {
            s.edge.request_id = e.request_id;
        }
        if sets("log_format") {
            s.edge.log_format = e.log_format;
        }
        if sets("allow") {
            s.access.acl = a.acl.clone();
        }
        if sets("rate_limit") {
            s.access.rate_limit = a.rate_limit;
        }
        if sets("error_page") {
            s.access.error_pages = a.error_pages.clone();
        }
        s.set = outer.set | self.set;
        s
    }

    /// The scope sets at least one directive (else it is its outer scope, shared).
    pub fn sets_any(&self) -> bool {
        self.set != 0
    }

    /// The scope sets `rate_limit` itself (its own buckets), rather than inheriting it.
    pub fn sets_rate_limit(&self) -> bool {
        scoped_bit("rate_limit").is_some_and(|b| self.set & b != 0)
    }

    /// The directives as config lines, for `--check`: only those this scope sets.
    pub fn summary_lines(&self) -> Vec<String> {
        let sets = |name: &str| scoped_bit(name).is_some_and(|b| self.set & b != 0);
        let mut lines: Vec<String> = self
            .edge
            .summary_lines()
            .into_iter()
            .filter(|l| sets(l.split(' ').next().unwrap_or("")))
            .collect();
        if sets("allow") {
            lines.extend(self.access.acl_lines());
        }
        if sets("rate_limit") {
            lines.push(match self.access.rate_limit {
                Some(r) => format!("rate_limit {r}"),
                None => "rate_limit off".to_string(),
            });
        }
        if sets("error_page") {
            lines.extend(
                self.access
                    .error_pages
                    .iter()
                    .map(|(status, file, _)| format!("error_page {status} {}", file.display())),
            );
        }
        lines
    }
}

/// A scoped directive in a site or route: applies it and returns `true`, or `false` when `s`
/// is no scoped directive. A directive given twice in one scope is an error unless it adds to
/// a list.
pub fn scope_directive(settings: &mut ScopeSettings, s: &Statement) -> Result<bool, ConfigError> {
    let name = s.name();
    let Some(bit) = scoped_bit(name) else {
        return Ok(false);
    };
    if settings.set & bit != 0 && !repeatable_in_scope(name) {
        return Err(s.error(format!("duplicate '{name}' in this block")));
    }
    settings.set |= bit;
    let args = s.args();
    let at = |m: String| s.error(format!("{name}: {m}"));
    let access = &mut settings.access;
    let one = || match args[..] {
        [v] => Ok(v),
        _ => Err(s.error(format!("'{name}' takes one value"))),
    };
    match name {
        "allow" => access.add_rule(Verdict::Allow, one()?).map_err(at)?,
        "deny" => access.add_rule(Verdict::Deny, one()?).map_err(at)?,
        // `off` cancels a limit the scope would inherit.
        "rate_limit" if args[..] == ["off"] => access.rate_limit = None,
        "rate_limit" => access.rate_limit = Some(RateLimit::parse(&args).map_err(at)?),
        "error_page" => access.error_pages.add(&args).map_err(at)?,
        _ => settings.edge.parse_directive(name, &args).map_err(at)?,
    }
    Ok(true)
}

/// `site HOST... { ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteSpec {
    /// Lowercase: `example.com`, or `*.example.com` (any name ending `.example.com`).
    pub hosts: Vec<String>,
    /// `default`: requests whose host no site names come here.
    pub default: bool,
    pub routes: Vec<RouteSpec>,
    pub settings: ScopeSettings,
    pub line: usize,
}

/// `route PATH POOL` (longest prefix) or `route = PATH POOL` (that path only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    pub path: String,
    pub exact: bool,
    pub pool: String,
    pub settings: ScopeSettings,
    pub line: usize,
}

/// What a request whose host no site names gets when there is no default site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NoSite {
    /// The first site serves it (the default).
    #[default]
    FirstSite,
    NotFound,
    /// 421 Misdirected Request.
    Misdirected,
}

/// `backend ADDR [tls] [weight=N] [backup]` or `backend https://HOST[:PORT] ...` (port 443), at
/// top level or in a pool.
pub fn parse_backend(s: &Statement, into: &mut Vec<BackendSpec>) -> Result<(), ConfigError> {
    let args = s.args();
    let Some((&v, options)) = args.split_first() else {
        return Err(s.error("'backend' needs a value".into()));
    };
    let tls = options.contains(&"tls");
    let (hostport, tls) = match v.strip_prefix("https://") {
        Some(rest) if !tls => {
            let rest = rest.strip_suffix('/').unwrap_or(rest);
            let has_port = rest
                .rsplit_once(':')
                .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                && !rest.ends_with(']');
            if has_port {
                (rest.to_string(), true)
            } else {
                (format!("{rest}:443"), true)
            }
        }
        _ => (v.to_string(), tls),
    };
    let addr = parse_addr("backend", &hostport, false).map_err(|m| s.error(m))?;
    if into.iter().any(|b| b.addr == addr) {
        return Err(s.error(format!("backend {v} is listed twice")));
    }
    let tls_name = if tls {
        let host = hostport
            .rsplit_once(':')
            .map_or(hostport.as_str(), |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        Some(crate::tls::client::server_name(host).map_err(|m| s.error(format!("backend: {m}")))?)
    } else {
        None
    };
    let mut spec = BackendSpec {
        name: v.to_string(),
        addr,
        weight: 1,
        backup: false,
        tls_name,
    };
    for &o in options {
        if o == "backup" {
            spec.backup = true;
        } else if o == "tls" {
            // Read above, with the address.
        } else if let Some(w) = o.strip_prefix("weight=") {
            spec.weight = parse_count(w, 1, MAX_WEIGHT)
                .map_err(|m| s.error(format!("backend {v}: weight: {m}")))?
                as u32;
        } else {
            return Err(s.error(format!(
                "backend {v}: unknown option '{o}' (tls, weight=N or backup); \
                 'backend' takes HOST:PORT, HOST:PORT tls, or https://HOST:PORT"
            )));
        }
    }
    into.push(spec);
    Ok(())
}

/// `balance round_robin | least_conn | hash uri | hash header:NAME`.
pub fn parse_balance(s: &Statement) -> Result<Balance, ConfigError> {
    match s.args()[..] {
        ["round_robin"] => Ok(Balance::RoundRobin),
        ["least_conn"] => Ok(Balance::LeastConn),
        ["hash", "uri"] => Ok(Balance::Hash(HashKey::Uri)),
        ["hash", key] if key.starts_with("header:") && key.len() > "header:".len() => {
            let name = &key["header:".len()..];
            let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
            if !name.bytes().all(token) {
                return Err(s.error(format!("balance: '{name}' is not a header name")));
            }
            Ok(Balance::Hash(HashKey::Header(name.to_ascii_lowercase())))
        }
        _ => Err(
            s.error("'balance' takes round_robin, least_conn, hash uri or hash header:NAME".into())
        ),
    }
}

/// `no_site 404 | 421`.
pub fn parse_no_site(s: &Statement) -> Result<NoSite, ConfigError> {
    match s.args()[..] {
        ["404"] => Ok(NoSite::NotFound),
        ["421"] => Ok(NoSite::Misdirected),
        _ => Err(s.error("'no_site' takes 404 or 421".into())),
    }
}

/// `pool NAME { backend ...; balance ... }`.
pub fn parse_pool(s: &Statement, block: &[Statement]) -> Result<PoolSpec, ConfigError> {
    let [name] = s.args()[..] else {
        return Err(s.error("'pool' takes one name: pool NAME { backend ADDR; ... }".into()));
    };
    check_name(s, "pool", name)?;
    let mut pool = PoolSpec {
        name: name.to_string(),
        backends: Vec::new(),
        balance: Balance::default(),
        proxy_protocol: None,
        line: s.line,
    };
    let mut balance_line = None;
    for d in block {
        if d.block.is_some() {
            return Err(d.error(format!("'{}' takes no block inside a pool", d.name())));
        }
        match d.name() {
            "backend" => parse_backend(d, &mut pool.backends)?,
            "balance" => {
                if let Some(first) = balance_line.replace(d.line) {
                    return Err(d.error(format!("duplicate 'balance' (first on line {first})")));
                }
                pool.balance = parse_balance(d)?;
            }
            "proxy_protocol" => {
                let [v] = d.args()[..] else {
                    return Err(d.error("'proxy_protocol' takes v1 or v2".into()));
                };
                if pool.proxy_protocol.is_some() {
                    return Err(d.error("duplicate 'proxy_protocol'".into()));
                }
                pool.proxy_protocol = Some(
                    parse_proxy_version(v).map_err(|m| d.error(format!("proxy_protocol: {m}")))?,
                );
            }
            other => {
                return Err(d.error(format!(
                    "'{other}' cannot go in a pool (backend, balance and proxy_protocol can)"
                )))
            }
        }
    }
    check_backends(s, &pool)?;
    Ok(pool)
}

/// `v1` or `v2`: the PROXY protocol header pibl sends to a pool.
pub fn parse_proxy_version(v: &str) -> Result<Version, String> {
    match v {
        "v1" => Ok(Version::V1),
        "v2" => Ok(Version::V2),
        _ => Err(format!("'{v}' is not a PROXY protocol version (v1 or v2)")),
    }
}

/// A pool needs a backend that is not a backup.
pub fn check_backends(s: &Statement, pool: &PoolSpec) -> Result<(), ConfigError> {
    if pool.backends.iter().all(|b| b.backup) {
        return Err(s.error(format!(
            "pool {} has no backend that is not a backup: add 'backend HOST:PORT'",
            pool.name
        )));
    }
    Ok(())
}

/// `site HOST... { [default] route ...; scoped directives }`.
pub fn parse_site(s: &Statement, block: &[Statement]) -> Result<SiteSpec, ConfigError> {
    let args = s.args();
    if args.is_empty() {
        return Err(
            s.error("'site' takes the host names it serves: site example.com { ... }".into())
        );
    }
    let mut site = SiteSpec {
        hosts: Vec::with_capacity(args.len()),
        default: false,
        routes: Vec::new(),
        settings: ScopeSettings::default(),
        line: s.line,
    };
    for host in args {
        let host = host.to_ascii_lowercase();
        let name = host.strip_prefix("*.").unwrap_or(&host);
        let valid = !name.is_empty()
            && name.len() <= 253
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
            && !name.starts_with('.')
            && !name.ends_with('.');
        if !valid {
            return Err(s.error(format!(
                "site: '{host}' is not a host name (example.com, or *.example.com for any \
                 name under it; no port)"
            )));
        }
        if site.hosts.contains(&host) {
            return Err(s.error(format!("site: {host} is named twice")));
        }
        site.hosts.push(host);
    }
    for d in block {
        match d.name() {
            "default" if d.words.len() == 1 && d.block.is_none() => site.default = true,
            "route" => {
                if site.routes.len() >= MAX_ROUTES_PER_SITE {
                    return Err(d.error(format!(
                        "more than {MAX_ROUTES_PER_SITE} routes in one site"
                    )));
                }
                let route = parse_route(d)?;
                if let Some(r) = site
                    .routes
                    .iter()
                    .find(|r| r.path == route.path && r.exact == route.exact)
                {
                    return Err(d.error(format!(
                        "route {}{} is already on line {}",
                        if route.exact { "= " } else { "" },
                        route.path,
                        r.line
                    )));
                }
                site.routes.push(route);
            }
            _ if d.block.is_some() => {
                return Err(d.error(format!(
                    "'{} {{' cannot go in a site (only 'route PATH POOL {{ ... }}' can)",
                    d.name()
                )))
            }
            _ => {
                if !scope_directive(&mut site.settings, d)? {
                    return Err(d.error(out_of_scope(d.name(), "a site")));
                }
            }
        }
    }
    if site.routes.is_empty() {
        return Err(s.error("this site has no route: add 'route / POOL'".into()));
    }
    Ok(site)
}

/// `route [=] PATH POOL [{ scoped directives }]`.
fn parse_route(s: &Statement) -> Result<RouteSpec, ConfigError> {
    let (exact, path, pool) = match s.args()[..] {
        ["=", path, pool] => (true, path, pool),
        [path, pool] => (false, path, pool),
        _ => {
            return Err(s.error(
                "'route' takes PATH POOL (longest prefix wins) or = PATH POOL (that path only)"
                    .into(),
            ))
        }
    };
    if !path.starts_with('/') || !path.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(s.error(format!("route: '{path}' is not a path starting with '/'")));
    }
    check_name(s, "route", pool)?;
    let mut route = RouteSpec {
        path: path.to_string(),
        exact,
        pool: pool.to_string(),
        settings: ScopeSettings::default(),
        line: s.line,
    };
    for d in s.block.iter().flatten() {
        if d.block.is_some() {
            return Err(d.error(format!("'{}' takes no block inside a route", d.name())));
        }
        if !scope_directive(&mut route.settings, d)? {
            return Err(d.error(out_of_scope(d.name(), "a route")));
        }
    }
    Ok(route)
}

fn out_of_scope(name: &str, place: &str) -> String {
    match name {
        "backend" | "balance" | "proxy_protocol" => {
            format!("'{name}' goes in a pool block, not in {place}")
        }
        "site" | "pool" => format!("'{name}' goes at top level, not in {place}"),
        _ => format!("'{name}' cannot be set in {place} (only at top level)"),
    }
}

fn check_name(s: &Statement, what: &str, name: &str) -> Result<(), ConfigError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if !valid {
        return Err(s.error(format!(
            "{what}: '{name}' is not a pool name (letters, digits, '-', '_', '.')"
        )));
    }
    Ok(())
}

impl Config {
    /// The names of every pool: the implicit one (top-level `backend` lines) first when it
    /// has backends.
    pub fn pool_names(&self) -> impl Iterator<Item = &str> {
        let implicit = (!self.backends.is_empty()).then_some(DEFAULT_POOL);
        implicit
            .into_iter()
            .chain(self.pools.iter().map(|p| p.name.as_str()))
    }

    /// Cross-checks of the routing table once every block is read: routes name pools that
    /// exist, a host belongs to one site, one default site.
    pub(super) fn check_routing(
        &self,
        pool_at: &[Statement],
        site_at: &[Statement],
    ) -> Result<(), ConfigError> {
        let sites = &self.sites;
        if let Some((_, at)) = (self.pools.iter().zip(pool_at))
            .find(|(p, _)| p.name == DEFAULT_POOL && !self.backends.is_empty())
        {
            return Err(at.error(format!(
                "pool {DEFAULT_POOL} is the pool of the top-level backend lines: \
                 name this one differently"
            )));
        }
        if sites.is_empty() && self.backends.is_empty() {
            return Err(ConfigError {
                file: self.path.clone(),
                line: 0,
                message: "pools but no site: add 'site HOST { route / POOL }', or top-level \
                          backend lines for requests no site takes"
                    .to_string(),
            });
        }
        if self.pools.len() > MAX_POOLS || sites.len() > MAX_SITES {
            return Err(ConfigError {
                file: self.path.clone(),
                line: 0,
                message: format!("more than {MAX_POOLS} pools or {MAX_SITES} sites"),
            });
        }
        let limited = sites
            .iter()
            .flat_map(|site| {
                std::iter::once(&site.settings).chain(site.routes.iter().map(|r| &r.settings))
            })
            .filter(|settings| settings.sets_rate_limit())
            .count();
        if limited > MAX_RATE_LIMITS {
            return Err(ConfigError {
                file: self.path.clone(),
                line: 0,
                message: format!(
                    "{limited} sites and routes set a rate_limit; at most {MAX_RATE_LIMITS} may \
                     (each has its own buckets)"
                ),
            });
        }
        let mut default_site: Option<usize> = None;
        for (i, (site, s)) in sites.iter().zip(site_at).enumerate() {
            for r in &site.routes {
                if !self.pool_names().any(|p| p == r.pool) {
                    let known: Vec<&str> = self.pool_names().collect();
                    return Err(ConfigError {
                        file: s.file.to_path_buf(),
                        line: r.line,
                        message: format!(
                            "route {}: no pool is named '{}' (pools: {})",
                            r.path,
                            r.pool,
                            if known.is_empty() {
                                "none".to_string()
                            } else {
                                known.join(", ")
                            }
                        ),
                    });
                }
            }
            for host in &site.hosts {
                if let Some(other) = sites[..i].iter().find(|o| o.hosts.contains(host)) {
                    return Err(s.error(format!(
                        "site: {host} already belongs to the site on line {}",
                        other.line
                    )));
                }
            }
            if site.default {
                if let Some(first) = default_site.replace(i) {
                    return Err(s.error(format!(
                        "a second default site (the first is on line {})",
                        sites[first].line
                    )));
                }
            }
        }
        Ok(())
    }
}
