//! The routing table, prepared at load: a request's host picks a site, its path a route, the
//! route a pool and its scope (the header, log and access rules in force for it). Lookups
//! allocate nothing and never scan the table.
//!
//! Exact hosts are in an open-addressing hash table, hashed over their ASCII-lowercased bytes
//! as they are read (8 at a time) and compared case-insensitively: no lowercase copy. A
//! `*.example.com` site matches any name ending `.example.com` (not `example.com` itself); the
//! longest such suffix wins (a second table of suffixes, looked up from the first dot on).
//! Paths walk a byte trie of the site's routes once, up to the query: `route = /x` is that path
//! alone (query excluded), `route /x` any path starting with `/x`, the longest that does winning.
//!
//! Scopes are resolved here too, once per load: every route gets the index of its final rule
//! set ([`Scope`]: top level, then its site, then itself, nginx's inheritance), shared by the
//! routes that set nothing of their own, so a request reads its rules with no merging.

use crate::access::{AccessRules, RateLimit};
use crate::config::{Config, NoSite, ScopeSettings, DEFAULT_POOL};
use crate::edge::EdgeRules;
use crate::http::target::split_absolute;

/// Where a request goes: a pool (an index into [`Router::pool_names`]) or a status pibl answers
/// itself (no site for its host, no route for its path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routed {
    Pool(u16),
    Refuse(u16),
}

/// The index of a resolved [`Scope`] in its [`Router`]; [`ScopeId::TOP`] is the top level's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScopeId(u32);

impl ScopeId {
    /// The top level's rules: a flat config's, and a request's that fails before it is routed
    /// or whose host no site takes.
    pub const TOP: ScopeId = ScopeId(0);
}

/// A request's destination and the rules that apply to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteMatch {
    pub routed: Routed,
    pub scope: ScopeId,
}

/// One scope's rules with inheritance applied: what a request routed to it reads.
#[derive(Debug)]
pub struct Scope {
    pub edge: EdgeRules,
    /// `acl`, `rate_limit` and `error_pages`.
    pub access: AccessRules,
    /// The rate limiter of the scope that set this one's `rate_limit` (an index into
    /// [`Router::rate_limits`]): the routes that inherit a limit share its buckets.
    pub limiter: Option<u16>,
}

#[derive(Debug)]
pub struct Router {
    /// Exact host names (lowercase) and their site.
    exact: HostTable,
    /// Wildcard suffixes (`.example.com` for `*.example.com`), lowercase, and their site.
    wildcard: HostTable,
    sites: Vec<SiteRoutes>,
    /// The site of a host no site names; `None`: answer `no_site`.
    default_site: Option<u16>,
    no_site: u16,
    /// Pool names in [`Config::pool_names`] order: what `Routed::Pool` indexes.
    pool_names: Vec<Box<str>>,
    /// A flat config (no `site`): every request goes to this pool, nothing is looked at.
    only_pool: Option<u16>,
    /// Resolved rule sets: [`ScopeId::TOP`] first, then one per site and route that sets any.
    scopes: Vec<Scope>,
    /// One per scope that sets a `rate_limit` (its buckets live in the running settings).
    rate_limits: Vec<RateLimit>,
}

/// No node, no route: the trie's empty value.
const NONE: u32 = u32::MAX;

/// A site's routes as a byte trie of their paths: node 0 is the empty path, and each node's
/// children are contiguous and sorted by their byte, so a lookup is one walk along the path.
#[derive(Debug)]
struct SiteRoutes {
    nodes: Vec<TrieNode>,
    /// What a node's `prefix`/`exact` index: the route's pool and scope.
    ends: Vec<RouteMatch>,
    /// The site's own scope: a path it has no route for is refused under its rules.
    scope: ScopeId,
}

#[derive(Debug, Clone, Copy)]
struct TrieNode {
    /// Children: `nodes[first..first + count]`.
    first: u32,
    count: u16,
    byte: u8,
    /// `route PATH` ending here (an index into `ends`), or [`NONE`].
    prefix: u32,
    /// `route = PATH` ending here, or [`NONE`].
    exact: u32,
}

impl Router {
    /// The table for `config`: with no `site` block, one default site sending every path to the
    /// implicit pool (today's single pool).
    pub fn new(config: &Config) -> Router {
        let pool_names: Vec<Box<str>> = config.pool_names().map(Box::from).collect();
        let pool = |name: &str| pool_names.iter().position(|p| &**p == name).unwrap_or(0) as u16;
        let top = ScopeSettings::top_level(config);
        let mut router = Router {
            exact: HostTable::default(),
            wildcard: HostTable::default(),
            sites: Vec::new(),
            default_site: Some(0),
            no_site: 404,
            pool_names: pool_names.clone(),
            only_pool: None,
            scopes: Vec::new(),
            rate_limits: Vec::new(),
        };
        let top_limiter = router.limiter_of(&top, None, true);
        router.push_scope(&top, top_limiter);
        if config.sites.is_empty() {
            let only = pool(DEFAULT_POOL);
            router.only_pool = Some(only);
            let routes = [(b"/".as_slice(), false, RouteMatch::pool(only, ScopeId::TOP))];
            router.sites.push(SiteRoutes::new(&routes, ScopeId::TOP));
            return router;
        }
        let (mut exact, mut wildcard) = (Vec::new(), Vec::new());
        for (i, site) in config.sites.iter().enumerate() {
            let i = i as u32;
            for host in &site.hosts {
                match host.strip_prefix('*') {
                    Some(suffix) => wildcard.push((Box::from(suffix), i)),
                    None => exact.push((Box::from(host.as_str()), i)),
                }
            }
            let (site_rules, site_scope, site_limiter) = if site.settings.sets_any() {
                let rules = site.settings.inherit(&top);
                let limiter = router.limiter_of(&site.settings, top_limiter, false);
                let id = router.push_scope(&rules, limiter);
                (rules, id, limiter)
            } else {
                (top.clone(), ScopeId::TOP, top_limiter)
            };
            let mut routes = Vec::with_capacity(site.routes.len());
            for r in &site.routes {
                let scope = if r.settings.sets_any() {
                    let rules = r.settings.inherit(&site_rules);
                    let limiter = router.limiter_of(&r.settings, site_limiter, false);
                    router.push_scope(&rules, limiter)
                } else {
                    site_scope
                };
                let end = RouteMatch::pool(pool(&r.pool), scope);
                routes.push((r.path.as_bytes(), r.exact, end));
            }
            router.sites.push(SiteRoutes::new(&routes, site_scope));
        }
        router.exact = HostTable::new(exact);
        router.wildcard = HostTable::new(wildcard);
        router.default_site = config
            .sites
            .iter()
            .position(|s| s.default)
            .map(|i| i as u16);
        match config.no_site {
            NoSite::FirstSite => router.default_site = router.default_site.or(Some(0)),
            NoSite::NotFound => router.no_site = 404,
            NoSite::Misdirected => router.no_site = 421,
        }
        router
    }

    /// The limiter of a scope: a new one when it sets `rate_limit` (`always` for the top
    /// level), else its outer scope's.
    fn limiter_of(
        &mut self,
        settings: &ScopeSettings,
        outer: Option<u16>,
        always: bool,
    ) -> Option<u16> {
        if !always && !settings.sets_rate_limit() {
            return outer;
        }
        let limit = settings.access.rate_limit?;
        self.rate_limits.push(limit);
        Some((self.rate_limits.len() - 1) as u16)
    }

    fn push_scope(&mut self, rules: &ScopeSettings, limiter: Option<u16>) -> ScopeId {
        self.scopes.push(Scope {
            edge: rules.edge.clone(),
            access: rules.access.clone(),
            limiter,
        });
        ScopeId((self.scopes.len() - 1) as u32)
    }

    /// The pool names `Routed::Pool` indexes.
    pub fn pool_names(&self) -> &[Box<str>] {
        &self.pool_names
    }

    /// Every resolved scope, [`ScopeId::TOP`] first.
    pub fn scopes(&self) -> &[Scope] {
        &self.scopes
    }

    /// The rate limits [`Scope::limiter`] indexes: one table of buckets each.
    pub fn rate_limits(&self) -> &[RateLimit] {
        &self.rate_limits
    }

    /// The rules of `id` (the top level's for an id of another table: never out of bounds).
    #[inline]
    pub fn scope(&self, id: ScopeId) -> &Scope {
        match self.scopes.get(id.0 as usize) {
            Some(scope) => scope,
            None => &self.scopes[0],
        }
    }

    /// Where a request for `host` (as received: any case, maybe a port) and `target` (origin or
    /// absolute form) goes.
    #[inline]
    pub fn route(&self, host: &str, target: &str) -> Routed {
        self.lookup(host, target).routed
    }

    /// Where a request goes, and the rules that apply to it.
    #[inline]
    pub fn lookup(&self, host: &str, target: &str) -> RouteMatch {
        if let Some(pool) = self.only_pool {
            return RouteMatch::pool(pool, ScopeId::TOP);
        }
        let Some(site) = self.site(strip_port(host)) else {
            return RouteMatch {
                routed: Routed::Refuse(self.no_site),
                scope: ScopeId::TOP,
            };
        };
        let path = match target.as_bytes().first() {
            Some(b'/') => target,
            _ => split_absolute(target).map_or(target, |url| url.rest),
        };
        match self.sites.get(site as usize) {
            Some(routes) => routes.route(path.as_bytes()),
            None => RouteMatch {
                routed: Routed::Refuse(404),
                scope: ScopeId::TOP,
            },
        }
    }

    /// The site serving `host` (no port).
    fn site(&self, host: &str) -> Option<u32> {
        if let Some(site) = self.exact.get(host.as_bytes()) {
            return Some(site);
        }
        if !self.wildcard.is_empty() {
            // Longest suffix first: from the first dot on.
            let b = host.as_bytes();
            for at in memchr::memchr_iter(b'.', b) {
                if let Some(site) = self.wildcard.get(&b[at..]) {
                    return Some(site);
                }
            }
        }
        self.default_site.map(u32::from)
    }
}

impl RouteMatch {
    fn pool(pool: u16, scope: ScopeId) -> RouteMatch {
        RouteMatch {
            routed: Routed::Pool(pool),
            scope,
        }
    }
}

impl SiteRoutes {
    /// The trie of `routes` (path, exact, where it goes).
    fn new(routes: &[(&[u8], bool, RouteMatch)], scope: ScopeId) -> SiteRoutes {
        // First as a tree of growable child lists, then laid out breadth first so that each
        // node's children are contiguous.
        struct Grow {
            children: Vec<(u8, usize)>,
            prefix: u32,
            exact: u32,
        }
        let mut grow = vec![Grow {
            children: Vec::new(),
            prefix: NONE,
            exact: NONE,
        }];
        let mut ends = Vec::with_capacity(routes.len());
        for (path, exact, end) in routes {
            let mut at = 0;
            for &b in *path {
                at = match grow[at].children.iter().find(|(c, _)| *c == b) {
                    Some(&(_, next)) => next,
                    None => {
                        grow.push(Grow {
                            children: Vec::new(),
                            prefix: NONE,
                            exact: NONE,
                        });
                        let next = grow.len() - 1;
                        grow[at].children.push((b, next));
                        next
                    }
                };
            }
            let slot = if *exact {
                &mut grow[at].exact
            } else {
                &mut grow[at].prefix
            };
            *slot = ends.len() as u32;
            ends.push(*end);
        }
        let mut nodes = vec![TrieNode {
            first: 0,
            count: 0,
            byte: 0,
            prefix: grow[0].prefix,
            exact: grow[0].exact,
        }];
        // (grown node, its laid-out index), in breadth-first order.
        let mut queue = std::collections::VecDeque::from([(0usize, 0usize)]);
        while let Some((g, n)) = queue.pop_front() {
            let mut children = std::mem::take(&mut grow[g].children);
            children.sort_unstable();
            nodes[n].first = nodes.len() as u32;
            nodes[n].count = children.len() as u16;
            for (byte, child) in children {
                queue.push_back((child, nodes.len()));
                nodes.push(TrieNode {
                    first: 0,
                    count: 0,
                    byte,
                    prefix: grow[child].prefix,
                    exact: grow[child].exact,
                });
            }
        }
        SiteRoutes { nodes, ends, scope }
    }

    /// The route of `target` (a path, maybe with a query): one walk down the trie up to the
    /// query, remembering the last prefix route passed; an exact route only where the path ends.
    #[inline]
    fn route(&self, target: &[u8]) -> RouteMatch {
        let nodes = &self.nodes[..];
        let mut node = match nodes.first() {
            Some(root) => root,
            None => return self.no_route(),
        };
        let mut best = node.prefix;
        let mut bytes = target.iter();
        loop {
            let b = match bytes.next() {
                Some(&b) if b != b'?' => b,
                _ => {
                    if node.exact != NONE {
                        best = node.exact;
                    }
                    break;
                }
            };
            let first = node.first as usize;
            let children = nodes.get(first..first + node.count as usize).unwrap_or(&[]);
            match children.iter().find(|c| c.byte == b) {
                Some(child) => node = child,
                None => break,
            }
            if node.prefix != NONE {
                best = node.prefix;
            }
        }
        match self.ends.get(best as usize) {
            Some(end) => *end,
            None => self.no_route(),
        }
    }

    fn no_route(&self) -> RouteMatch {
        RouteMatch {
            routed: Routed::Refuse(404),
            scope: self.scope,
        }
    }
}

/// Host names (or `.suffix`es) in an open-addressing table with linear probing, a power of two
/// slots at least twice the names, so a miss ends at an empty slot after few probes.
#[derive(Debug, Default)]
struct HostTable {
    /// Lowercase names and their site.
    names: Vec<(Box<str>, u32)>,
    /// Indices into `names`, or [`NONE`].
    slots: Box<[u32]>,
}

impl HostTable {
    fn new(names: Vec<(Box<str>, u32)>) -> HostTable {
        if names.is_empty() {
            return HostTable::default();
        }
        let mut slots = vec![NONE; (names.len() * 2).next_power_of_two()].into_boxed_slice();
        let mask = slots.len() - 1;
        for (i, (name, _)) in names.iter().enumerate() {
            let mut at = host_hash(name.as_bytes()) as usize & mask;
            while slots[at] != NONE {
                at = (at + 1) & mask;
            }
            slots[at] = i as u32;
        }
        HostTable { names, slots }
    }

    fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The site of `host` (any case).
    #[inline]
    fn get(&self, host: &[u8]) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut at = host_hash(host) as usize & mask;
        loop {
            let (name, site) = self.names.get(*self.slots.get(at)? as usize)?;
            if name.len() == host.len() && equal_lowered(name.as_bytes(), host) {
                return Some(*site);
            }
            at = (at + 1) & mask;
        }
    }
}

/// The 8 bytes of `b` from `at` (little-endian).
#[inline]
fn word_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// The bytes of `b` (fewer than 8) zero-extended to a word (little-endian).
#[inline]
fn short_word(b: &[u8]) -> u64 {
    b.iter().rev().fold(0, |w, &x| (w << 8) | u64::from(x))
}

/// Calls `each` with the 8-byte words of `b` in order while it returns `true`: whole words, then
/// the last 8 bytes (overlapping the one before) or, when `b` is shorter than 8, its bytes
/// zero-extended. Byte strings of one length give words at the same places.
#[inline]
fn words(b: &[u8], mut each: impl FnMut(usize, u64) -> bool) -> bool {
    if b.len() < 8 {
        return each(0, short_word(b));
    }
    let mut at = 0;
    while at + 8 < b.len() {
        if !each(at, word_at(b, at)) {
            return false;
        }
        at += 8;
    }
    each(b.len() - 8, word_at(b, b.len() - 8))
}

/// `w` with its ASCII capitals lowered, 8 bytes at once (bytes above 0x7f kept).
#[inline]
fn lower_word(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let low7 = w & !HIGH;
    // The high bit of each byte: its low 7 bits are at least 'A', and more than 'Z'.
    let from_a = low7 + ONES * u64::from(0x80 - b'A');
    let past_z = low7 + ONES * u64::from(0x7f - b'Z');
    let capital = (from_a ^ past_z) & !w & HIGH;
    w | (capital >> 2)
}

/// `table` (lowercase) equals `key` lowered, compared a word at a time; same lengths.
#[inline]
fn equal_lowered(table: &[u8], key: &[u8]) -> bool {
    if table.len() < 8 {
        return short_word(table) == lower_word(short_word(key));
    }
    words(key, |at, w| lower_word(w) == word_at(table, at))
}

/// A hash of `b` as if ASCII-lowercased, 8 bytes at a step (FxHash-like multiply and fold).
#[inline]
fn host_hash(b: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = b.len() as u64;
    words(b, |_, w| {
        h = (h ^ lower_word(w)).wrapping_mul(K);
        h ^= h >> 29;
        true
    });
    h
}

/// The value of header `name` (lowercase) in a serialised head (`\r\n` line ends), trimmed;
/// the first when it repeats. For `hash header:NAME`, read from the head going upstream.
pub fn header_value<'a>(head: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let name = name.as_bytes();
    head.split(|&b| b == b'\n').skip(1).find_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = line.iter().position(|&b| b == b':')?;
        if !line[..colon].eq_ignore_ascii_case(name) {
            return None;
        }
        Some(line[colon + 1..].trim_ascii())
    })
}

/// `host` without its `:port` (an IPv6 literal keeps its brackets). Bytes from the end, not a
/// string search: this runs for every routed request.
#[inline]
pub fn strip_port(host: &str) -> &str {
    let b = host.as_bytes();
    let mut i = b.len();
    while i > 0 && b[i - 1].is_ascii_digit() {
        i -= 1;
    }
    if i > 0 && b[i - 1] == b':' {
        &host[..i - 1]
    } else {
        host
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn router(text: &str) -> Router {
        Router::new(&Config::parse(Path::new("t.conf"), text).unwrap())
    }

    const TABLE: &str = "pool app { backend 127.0.0.1:1 }\n\
        pool files { backend 127.0.0.1:2 }\n\
        pool api { backend 127.0.0.1:3 }\n\
        site example.com www.example.com {\n route /static/ files\n route / app\n \
        route = /exact api\n route /static/api/ api }\n\
        site *.example.com { route / api }\n\
        site *.deep.example.com { route / files }\n";

    #[test]
    fn hosts_exact_wildcard_default_any_case_with_port() {
        let r = router(TABLE);
        let app = Routed::Pool(0);
        let (files, api) = (Routed::Pool(1), Routed::Pool(2));
        assert_eq!(r.route("example.com", "/x"), app);
        assert_eq!(r.route("WWW.Example.COM:8080", "/x"), app);
        assert_eq!(r.route("a.example.com", "/x"), api);
        assert_eq!(r.route("b.deep.example.com", "/x"), files);
        assert_eq!(
            r.route("other.test", "/x"),
            app,
            "the first site is the default"
        );
        assert_eq!(r.route("x", "http://a.example.com/static/"), files);
    }

    #[test]
    fn longest_prefix_and_exact_paths() {
        let r = router(TABLE);
        let (app, files, api) = (Routed::Pool(0), Routed::Pool(1), Routed::Pool(2));
        assert_eq!(r.route("example.com", "/static/a.css"), files);
        assert_eq!(r.route("example.com", "/static/api/x"), api);
        assert_eq!(r.route("example.com", "/static/b"), files);
        assert_eq!(r.route("example.com", "/staticx"), app);
        assert_eq!(r.route("example.com", "/exact"), api);
        assert_eq!(r.route("example.com", "/exact?q=1"), api);
        assert_eq!(r.route("example.com", "/exactly"), app);
    }

    #[test]
    fn no_site_and_no_route() {
        let r = router("backend 127.0.0.1:1\nno_site 421\nsite a.test { route /only/ default }\n");
        assert_eq!(r.route("b.test", "/"), Routed::Refuse(421));
        assert_eq!(r.route("a.test", "/"), Routed::Refuse(404));
        assert_eq!(r.route("a.test", "/only/x"), Routed::Pool(0));
        let flat = router("backend 127.0.0.1:1\n");
        assert_eq!(flat.route("anything", "/any"), Routed::Pool(0));
    }

    #[test]
    fn trie_walks_to_the_query_and_prefers_exact_at_the_end() {
        let r = router(
            "pool a { backend 127.0.0.1:1 }\npool b { backend 127.0.0.1:2 }\n\
             site x.test { route / a; route = / b; route /a/b/c/ b; route /a/ a; route = /a/b b }\n",
        );
        let (a, b) = (Routed::Pool(0), Routed::Pool(1));
        assert_eq!(r.route("x.test", "/"), b);
        assert_eq!(r.route("x.test", "/?q"), b);
        assert_eq!(r.route("x.test", "/a/b"), b);
        assert_eq!(r.route("x.test", "/a/b?x=/a/b/c/"), b);
        assert_eq!(r.route("x.test", "/a/b/"), a);
        assert_eq!(r.route("x.test", "/a/b/c/d"), b);
        assert_eq!(r.route("x.test", "/a/b/c?/"), a);
        assert_eq!(r.route("x.test", "http://x.test"), Routed::Refuse(404));
        assert_eq!(r.route("X.TEST", "http://x.test/a/b/c/"), b);
    }

    #[test]
    fn many_hosts_hash_apart_and_compare_in_any_case() {
        let mut text = String::from("pool p { backend 127.0.0.1:1 }\nno_site 421\n");
        for i in 0..300 {
            text.push_str(&format!(
                "site h{i}.example.com *.w{i}.test {{ route / p }}\n"
            ));
        }
        let r = router(&text);
        for i in 0..300 {
            let host = format!("H{i}.Example.COM:80");
            assert_eq!(r.lookup(&host, "/").routed, Routed::Pool(0), "{host}");
            let wild = format!("a.b.W{i}.test");
            assert_eq!(r.route(&wild, "/"), Routed::Pool(0), "{wild}");
        }
        assert_eq!(r.route("h300.example.com", "/"), Routed::Refuse(421));
        assert_eq!(r.route("w1.test", "/"), Routed::Refuse(421));
        assert_eq!(r.route("", "/"), Routed::Refuse(421));
    }

    #[test]
    fn scopes_inherit_from_top_to_site_to_route() {
        use crate::logging::LogFormat;
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let r = router(
            "request_id on\nlog_format combined\ndeny 10.0.0.0/8\nrate_limit 10/s burst=5\n\
             pool app { backend 127.0.0.1:1 }\n\
             site a.test {\n log_format json\n allow 10.0.0.0/8\n deny all\n route / app\n\
               route /api/ app { request_header set X-Api 1; rate_limit 1/s burst=1 }\n\
               route /open/ app { rate_limit off; request_id off }\n}\n\
             site b.test { route / app }\n\
             site c.test { error_page 502 Cargo.toml; route /only/ app }\n",
        );
        let top = r.scope(ScopeId::TOP);
        assert_eq!(top.edge.log_format, LogFormat::Combined);
        assert!(!top.access.admits(ip("10.1.1.1")));
        assert_eq!(
            r.lookup("b.test", "/x").scope,
            ScopeId::TOP,
            "sets nothing: shared"
        );
        let site = r.lookup("a.test", "/x").scope;
        let a = r.scope(site);
        assert_eq!(a.edge.log_format, LogFormat::Json);
        assert!(a.edge.request_id, "inherited from the top level");
        assert!(
            a.access.admits(ip("10.1.1.1")),
            "its list replaces the top level's"
        );
        assert!(!a.access.admits(ip("192.0.2.1")));
        assert_eq!(
            a.limiter, top.limiter,
            "an inherited limit shares the buckets"
        );
        let api = r.scope(r.lookup("a.test", "/api/v1").scope);
        assert_eq!(api.edge.log_format, LogFormat::Json);
        assert_eq!(api.edge.request_headers.rules.len(), 1);
        assert!(
            !api.access.admits(ip("192.0.2.1")),
            "the site's list, inherited"
        );
        assert!(api.limiter.is_some() && api.limiter != top.limiter);
        let open = r.scope(r.lookup("a.test", "/open/").scope);
        assert_eq!((open.limiter, open.edge.request_id), (None, false));
        assert_eq!(r.rate_limits().len(), 2);
        let no_route = r.lookup("c.test", "/x");
        assert_eq!(no_route.routed, Routed::Refuse(404));
        assert!(r
            .scope(no_route.scope)
            .access
            .error_pages
            .get(502)
            .is_some());
        assert_eq!(r.scopes().len(), 5);
        assert_eq!(r.scope(ScopeId(99)).edge.log_format, LogFormat::Combined);
    }

    #[test]
    fn words_lower_exactly_the_ascii_capitals() {
        for b in 0..=255u8 {
            for at in 0..8 {
                let w = u64::from(b) << (8 * at) | 0x4100_0000_0000_005a & !(0xff << (8 * at));
                let mut bytes = w.to_le_bytes();
                bytes.make_ascii_lowercase();
                assert_eq!(lower_word(w), u64::from_le_bytes(bytes), "{b:#x} at {at}");
            }
        }
        assert!(equal_lowered(b"example.com", b"ExAmPlE.CoM"));
        assert!(!equal_lowered(b"example.com", b"example.con"));
        assert!(equal_lowered(b"a.b", b"A.B") && !equal_lowered(b"a-b", b"a\rb"));
    }
}
