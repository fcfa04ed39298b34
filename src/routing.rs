//! The routing table, prepared at load: a request's host picks a site, its path a route, the
//! route a pool. Lookups allocate nothing and never scan the table: hosts and path prefixes are
//! sorted once and found by binary search.
//!
//! Hosts compare case-insensitively without a lowercase copy: the table is lowercase and
//! [`cmp_lower`] lowers the request's bytes as it compares. A `*.example.com` site matches any
//! name ending `.example.com` (not `example.com` itself); the longest such suffix wins. Paths
//! compare as bytes: `route = /x` is that path alone (query excluded), `route /x` any path
//! starting with `/x`, the longest that does winning.

use std::cmp::Ordering;

use crate::config::{Config, NoSite, DEFAULT_POOL};
use crate::http::target::split_absolute;

/// Where a request goes: a pool (an index into [`Router::pool_names`]) or a status pibl answers
/// itself (no site for its host, no route for its path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routed {
    Pool(u16),
    Refuse(u16),
}

#[derive(Debug)]
pub struct Router {
    /// Exact host names, lowercase and sorted, with their site.
    exact: Vec<(Box<str>, u16)>,
    /// Wildcard suffixes (`.example.com` for `*.example.com`), lowercase and sorted.
    wildcard: Vec<(Box<str>, u16)>,
    sites: Vec<SiteRoutes>,
    /// The site of a host no site names; `None`: answer `no_site`.
    default_site: Option<u16>,
    no_site: u16,
    /// Pool names in [`Config::pool_names`] order: what `Routed::Pool` indexes.
    pool_names: Vec<Box<str>>,
    /// A flat config (no `site`): every request goes to this pool, nothing is looked at.
    only_pool: Option<u16>,
}

#[derive(Debug, Default)]
struct SiteRoutes {
    /// `route = PATH`: sorted paths and their pools.
    exact: Vec<(Box<str>, u16)>,
    /// `route PATH`: sorted prefixes, their pool, and the index of the longest other prefix
    /// in this list that is a prefix of it (its parent), for the longest-prefix walk.
    prefix: Vec<(Box<str>, u16, Option<u16>)>,
}

impl Router {
    /// The table for `config`: with no `site` block, one default site sending every path to the
    /// implicit pool (today's single pool).
    pub fn new(config: &Config) -> Router {
        let pool_names: Vec<Box<str>> = config.pool_names().map(Box::from).collect();
        let pool = |name: &str| pool_names.iter().position(|p| &**p == name).unwrap_or(0) as u16;
        let mut router = Router {
            exact: Vec::new(),
            wildcard: Vec::new(),
            sites: Vec::new(),
            default_site: Some(0),
            no_site: 404,
            pool_names: pool_names.clone(),
            only_pool: None,
        };
        if config.sites.is_empty() {
            router.only_pool = Some(pool(DEFAULT_POOL));
            router.sites.push(SiteRoutes {
                exact: Vec::new(),
                prefix: vec![(Box::from("/"), pool(DEFAULT_POOL), None)],
            });
            return router;
        }
        for (i, site) in config.sites.iter().enumerate() {
            let i = i as u16;
            for host in &site.hosts {
                match host.strip_prefix('*') {
                    Some(suffix) => router.wildcard.push((Box::from(suffix), i)),
                    None => router.exact.push((Box::from(host.as_str()), i)),
                }
            }
            let mut routes = SiteRoutes::default();
            for r in &site.routes {
                let entry = (Box::from(r.path.as_str()), pool(&r.pool));
                if r.exact {
                    routes.exact.push(entry);
                } else {
                    routes.prefix.push((entry.0, entry.1, None));
                }
            }
            routes.exact.sort();
            routes.prefix.sort();
            for j in 0..routes.prefix.len() {
                // Sorted, so every prefix of entry j comes before it; the nearest is the longest.
                let parent = (0..j)
                    .rev()
                    .find(|&k| routes.prefix[j].0.starts_with(&*routes.prefix[k].0));
                routes.prefix[j].2 = parent.map(|k| k as u16);
            }
            router.sites.push(routes);
        }
        // The order cmp_lower searches in.
        router.exact.sort_by(|a, b| cmp_lower(&a.0, &b.0));
        router.wildcard.sort_by(|a, b| cmp_lower(&a.0, &b.0));
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

    /// The pool names `Routed::Pool` indexes.
    pub fn pool_names(&self) -> &[Box<str>] {
        &self.pool_names
    }

    /// Where a request for `host` (as received: any case, maybe a port) and `target` (origin or
    /// absolute form) goes.
    #[inline]
    pub fn route(&self, host: &str, target: &str) -> Routed {
        if let Some(pool) = self.only_pool {
            return Routed::Pool(pool);
        }
        let Some(site) = self.site(strip_port(host)) else {
            return Routed::Refuse(self.no_site);
        };
        let path = match target.as_bytes().first() {
            Some(b'/') => target,
            _ => split_absolute(target).map_or(target, |url| url.rest),
        };
        match self.sites[site as usize].route(path) {
            Some(pool) => Routed::Pool(pool),
            None => Routed::Refuse(404),
        }
    }

    /// The site serving `host` (no port).
    fn site(&self, host: &str) -> Option<u16> {
        if let Ok(i) = self.exact.binary_search_by(|(h, _)| cmp_lower(h, host)) {
            return Some(self.exact[i].1);
        }
        if !self.wildcard.is_empty() {
            // Longest suffix first: from the first dot on.
            for (at, _) in host.match_indices('.') {
                let suffix = &host[at..];
                if let Ok(i) = self
                    .wildcard
                    .binary_search_by(|(h, _)| cmp_lower(h, suffix))
                {
                    return Some(self.wildcard[i].1);
                }
            }
        }
        self.default_site
    }
}

impl SiteRoutes {
    fn route(&self, target: &str) -> Option<u16> {
        let path = memchr::memchr(b'?', target.as_bytes()).map_or(target, |q| &target[..q]);
        if !self.exact.is_empty() {
            if let Ok(i) = self.exact.binary_search_by(|(p, _)| (**p).cmp(path)) {
                return Some(self.exact[i].1);
            }
        }
        // The greatest prefix <= path: every route that is a prefix of `path` sorts between
        // itself and `path`, so it is this entry or one of its parents.
        let mut at = match self.prefix.binary_search_by(|(p, _, _)| (**p).cmp(path)) {
            Ok(i) => return Some(self.prefix[i].1),
            Err(0) => return None,
            Err(i) => i - 1,
        };
        loop {
            let (p, pool, parent) = &self.prefix[at];
            if path.starts_with(&**p) {
                return Some(*pool);
            }
            at = (*parent)? as usize;
        }
    }
}

/// `table` (lowercase) against `key` lowered byte by byte, shorter first: most names differ in
/// length, so most comparisons of a binary search end before the first byte.
fn cmp_lower(table: &str, key: &str) -> Ordering {
    let (a, b) = (table.as_bytes(), key.as_bytes());
    if a.len() != b.len() {
        return a.len().cmp(&b.len());
    }
    for (x, y) in a.iter().zip(b) {
        match x.cmp(&y.to_ascii_lowercase()) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    a.len().cmp(&b.len())
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
}
