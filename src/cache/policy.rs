//! What may be stored and for how long: RFC 9111 as a shared cache, with the launch TTL as both
//! the default lifetime and its ceiling. Pure functions over header lists, tested by feeding them
//! headers.

use std::time::Duration;

use crate::http::date::parse_http_date;
use crate::http::{has_token, name_is};

/// Statuses a cache may store without explicit freshness (RFC 9110 §15.1 "heuristically
/// cacheable").
const CACHEABLE_STATUSES: [u16; 11] = [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501];

/// Whether a status may be stored at all.
pub fn is_cacheable_status(status: u16) -> bool {
    CACHEABLE_STATUSES.contains(&status)
}

/// The Cache-Control directives pibl acts on.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CacheControl {
    pub no_store: bool,
    pub no_cache: bool,
    pub private: bool,
    pub public: bool,
    pub must_revalidate: bool,
    /// `max-age`; an invalid value reads as 0 (stale), RFC 9111 §4.2.1.
    pub max_age: Option<u64>,
    pub s_maxage: Option<u64>,
}

impl CacheControl {
    pub fn parse(headers: &[httparse::Header<'_>]) -> CacheControl {
        let mut cc = CacheControl::default();
        for h in headers.iter().filter(|h| name_is(h.name, "cache-control")) {
            for d in h.value.split(|&b| b == b',') {
                let d = d.trim_ascii();
                let (name, value) = match d.iter().position(|&b| b == b'=') {
                    Some(i) => (d[..i].trim_ascii(), Some(d[i + 1..].trim_ascii())),
                    None => (d, None),
                };
                let seconds = || {
                    value
                        .map(|v| v.strip_prefix(b"\"").unwrap_or(v))
                        .map(|v| v.strip_suffix(b"\"").unwrap_or(v))
                        .and_then(|v| std::str::from_utf8(v).ok())
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0)
                };
                match name.to_ascii_lowercase().as_slice() {
                    b"no-store" => cc.no_store = true,
                    b"no-cache" => cc.no_cache = true,
                    b"private" => cc.private = true,
                    b"public" => cc.public = true,
                    b"must-revalidate" | b"proxy-revalidate" => cc.must_revalidate = true,
                    b"max-age" => cc.max_age = Some(seconds()),
                    b"s-maxage" => cc.s_maxage = Some(seconds()),
                    _ => {}
                }
            }
        }
        cc
    }
}

/// What the request allows the cache to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestRule {
    /// Look up and store normally.
    Normal,
    /// Look up, but a stored entry must be revalidated first (`no-cache`, `max-age=0`).
    Revalidate,
    /// Neither serve from nor store into the cache, with the reason.
    Bypass(&'static str),
}

/// Decides from the request head. `Authorization` requests may still store a response that says
/// `public` or `s-maxage` (RFC 9111 §3.5), so they are answered `Revalidate`-free lookups are
/// skipped but storing is decided later by [`response_rule`].
pub fn request_rule(headers: &[httparse::Header<'_>]) -> RequestRule {
    if headers.iter().any(|h| name_is(h.name, "cookie")) {
        return RequestRule::Bypass("request has a Cookie");
    }
    if headers.iter().any(|h| name_is(h.name, "authorization")) {
        return RequestRule::Bypass("request has Authorization");
    }
    if headers.iter().any(|h| name_is(h.name, "range")) {
        // A partial response is never stored; the request goes to a backend as it is.
        return RequestRule::Bypass("range request");
    }
    let cc = CacheControl::parse(headers);
    if cc.no_store {
        return RequestRule::Bypass("request says no-store");
    }
    let pragma_no_cache = headers
        .iter()
        .any(|h| name_is(h.name, "pragma") && has_token(h.value, "no-cache"));
    if cc.no_cache || cc.max_age == Some(0) || pragma_no_cache {
        return RequestRule::Revalidate;
    }
    RequestRule::Normal
}

/// Whether and how to store a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseRule {
    NoStore(&'static str),
    Store {
        /// How long the entry is fresh, counted from when it was received, minus `initial_age`.
        lifetime: Duration,
        /// The response's own age on arrival (its `Age` header).
        initial_age: Duration,
        /// Revalidate before every reuse (`no-cache`, or no explicit freshness with heuristics off).
        always_revalidate: bool,
        /// Lower-cased names of the request headers the response varies on.
        vary: Vec<String>,
    },
}

/// Cache settings that shape [`response_rule`].
#[derive(Debug, Clone, Copy)]
pub struct Freshness {
    /// The launch TTL: the default lifetime and its ceiling.
    pub ttl: Duration,
    /// Store responses without explicit freshness for the TTL (on) or only with a validator and
    /// revalidate them before each reuse (off).
    pub heuristic: bool,
}

/// Decides for a complete GET response with `status` and `headers`. `authorized` says the request
/// carried Authorization.
pub fn response_rule(
    status: u16,
    headers: &[httparse::Header<'_>],
    authorized: bool,
    fresh: Freshness,
) -> ResponseRule {
    if !CACHEABLE_STATUSES.contains(&status) {
        return ResponseRule::NoStore("status is not cacheable");
    }
    let cc = CacheControl::parse(headers);
    if cc.no_store {
        return ResponseRule::NoStore("no-store");
    }
    if cc.private {
        return ResponseRule::NoStore("private");
    }
    if headers.iter().any(|h| name_is(h.name, "set-cookie")) {
        return ResponseRule::NoStore("Set-Cookie");
    }
    if authorized && !cc.public && cc.s_maxage.is_none() {
        return ResponseRule::NoStore("request had Authorization");
    }
    let mut vary = Vec::new();
    for h in headers.iter().filter(|h| name_is(h.name, "vary")) {
        for name in h.value.split(|&b| b == b',') {
            let name = name.trim_ascii();
            if name == b"*" {
                return ResponseRule::NoStore("Vary: *");
            }
            if !name.is_empty() {
                vary.push(String::from_utf8_lossy(name).to_ascii_lowercase());
            }
        }
    }
    vary.sort();
    vary.dedup();
    let header = |n: &str| {
        headers
            .iter()
            .find(|h| name_is(h.name, n))
            .and_then(|h| std::str::from_utf8(h.value).ok())
    };
    let has_validator = header("etag").is_some() || header("last-modified").is_some();
    let explicit = cc.s_maxage.or(cc.max_age).or_else(|| {
        header("expires").map(|e| {
            let expires = parse_http_date(e).unwrap_or(0);
            let date = header("date").and_then(parse_http_date).unwrap_or(0);
            expires.saturating_sub(date)
        })
    });
    let initial_age = header("age")
        .and_then(|a| a.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let (lifetime, mut always_revalidate) = match explicit {
        Some(secs) => (Duration::from_secs(secs).min(fresh.ttl), false),
        None if fresh.heuristic => (fresh.ttl, false),
        None => (Duration::ZERO, true),
    };
    always_revalidate |= cc.no_cache;
    let fresh_now = lifetime > Duration::from_secs(initial_age);
    if (always_revalidate || !fresh_now) && !has_validator {
        return ResponseRule::NoStore("no freshness and no validator to revalidate with");
    }
    ResponseRule::Store {
        lifetime,
        initial_age: Duration::from_secs(initial_age),
        always_revalidate,
        vary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h<'a>(name: &'a str, value: &'a str) -> httparse::Header<'a> {
        httparse::Header {
            name,
            value: value.as_bytes(),
        }
    }

    const ON: Freshness = Freshness {
        ttl: Duration::from_secs(120),
        heuristic: true,
    };
    const OFF: Freshness = Freshness {
        ttl: Duration::from_secs(120),
        heuristic: false,
    };

    fn lifetime(r: ResponseRule) -> Duration {
        match r {
            ResponseRule::Store { lifetime, .. } => lifetime,
            other => panic!("not stored: {other:?}"),
        }
    }

    #[test]
    fn ttl_is_default_and_ceiling() {
        assert_eq!(
            lifetime(response_rule(200, &[], false, ON)),
            Duration::from_secs(120)
        );
        let long = [h("Cache-Control", "max-age=86400")];
        assert_eq!(
            lifetime(response_rule(200, &long, false, ON)),
            Duration::from_secs(120)
        );
        let short = [h("Cache-Control", "max-age=5, s-maxage=7")];
        assert_eq!(
            lifetime(response_rule(200, &short, false, ON)),
            Duration::from_secs(7)
        );
        let expires = [
            h("Date", "Mon, 23 Nov 2026 19:00:00 GMT"),
            h("Expires", "Mon, 23 Nov 2026 19:00:30 GMT"),
        ];
        assert_eq!(
            lifetime(response_rule(200, &expires, false, ON)),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn never_stored() {
        for (status, headers) in [
            (200, vec![h("Cache-Control", "no-store")]),
            (200, vec![h("Cache-Control", "private, max-age=60")]),
            (200, vec![h("Set-Cookie", "a=b")]),
            (200, vec![h("Vary", "Accept, *")]),
            (500, vec![]),
            (302, vec![]),
        ] {
            assert!(
                matches!(
                    response_rule(status, &headers, false, ON),
                    ResponseRule::NoStore(_)
                ),
                "{status} {headers:?}"
            );
        }
        assert!(matches!(
            response_rule(200, &[], true, ON),
            ResponseRule::NoStore(_)
        ));
        assert!(matches!(
            response_rule(200, &[h("Cache-Control", "public")], true, ON),
            ResponseRule::Store { .. }
        ));
    }

    #[test]
    fn heuristic_off_stores_only_validated_and_revalidates_always() {
        assert!(matches!(
            response_rule(200, &[], false, OFF),
            ResponseRule::NoStore(_)
        ));
        let r = response_rule(200, &[h("ETag", "\"v1\"")], false, OFF);
        assert!(
            matches!(
                r,
                ResponseRule::Store {
                    always_revalidate: true,
                    ..
                }
            ),
            "{r:?}"
        );
        let r = response_rule(200, &[h("Cache-Control", "max-age=60")], false, OFF);
        assert!(
            matches!(
                r,
                ResponseRule::Store {
                    always_revalidate: false,
                    ..
                }
            ),
            "{r:?}"
        );
        let r = response_rule(
            200,
            &[h("Cache-Control", "no-cache"), h("ETag", "\"x\"")],
            false,
            ON,
        );
        assert!(
            matches!(
                r,
                ResponseRule::Store {
                    always_revalidate: true,
                    ..
                }
            ),
            "{r:?}"
        );
    }

    #[test]
    fn vary_names_are_collected() {
        let r = response_rule(
            200,
            &[h("Vary", "Accept-Encoding, accept-language")],
            false,
            ON,
        );
        match r {
            ResponseRule::Store { vary, .. } => {
                assert_eq!(vary, ["accept-encoding", "accept-language"])
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn request_rules() {
        assert_eq!(request_rule(&[]), RequestRule::Normal);
        assert!(matches!(
            request_rule(&[h("Cookie", "a=1")]),
            RequestRule::Bypass(_)
        ));
        assert!(matches!(
            request_rule(&[h("Authorization", "Basic x")]),
            RequestRule::Bypass(_)
        ));
        assert_eq!(
            request_rule(&[h("Cache-Control", "max-age=0")]),
            RequestRule::Revalidate
        );
        assert_eq!(
            request_rule(&[h("Pragma", "no-cache")]),
            RequestRule::Revalidate
        );
    }
}
