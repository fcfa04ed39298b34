//! What may be stored and for how long: RFC 9111 as a shared cache, with the launch TTL as both
//! the default lifetime and its ceiling. Pure functions over header lists, tested by feeding them
//! headers.

use std::time::Duration;

use crate::http::cache_control::{age_of, CacheControl};
use crate::http::date::parse_http_date;
use crate::http::{has_token, name_is};

/// Statuses a cache may store without explicit freshness (RFC 9110 §15.1 "heuristically
/// cacheable").
const CACHEABLE_STATUSES: [u16; 11] = [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501];

/// Whether a status may be stored at all.
pub fn is_cacheable_status(status: u16) -> bool {
    CACHEABLE_STATUSES.contains(&status)
}

/// The targeted cache-control fields pibl obeys (RFC 9213), most specific first. When one of them
/// is present with a non-empty value, it replaces `Cache-Control` and `Expires` for pibl's cache.
pub const TARGETED_FIELDS: [&str; 2] = ["pibl-cache-control", "cdn-cache-control"];

/// The policy for pibl's cache from a response: the most specific targeted field present
/// (`Pibl-Cache-Control`, then `CDN-Cache-Control`), else `Cache-Control`. The flag says a
/// targeted field was used, so `Expires` must be ignored (RFC 9213 §2.2).
fn pibl_cache_control(headers: &[httparse::Header<'_>]) -> (CacheControl, bool) {
    for name in TARGETED_FIELDS {
        if headers
            .iter()
            .any(|h| name_is(h.name, name) && !h.value.trim_ascii().is_empty())
        {
            return (CacheControl::parse_field(headers, name), true);
        }
    }
    (CacheControl::parse(headers), false)
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
    /// `cdn_cache_control pass`: `CDN-Cache-Control` reaches clients (else it is removed).
    pub pass_cdn_cache_control: bool,
}

/// An IMF-fixdate exactly as RFC 9110 §5.6.7 spells it (`Sun, 06 Nov 1994 08:49:37 GMT`: fixed
/// width, single spaces, two-digit fields), in Unix seconds; anything else is `None`.
pub fn strict_http_date(value: &[u8]) -> Option<u64> {
    let shape_ok = value.len() == 29
        && value.iter().enumerate().all(|(i, &b)| match i {
            0..=2 | 8..=10 => b.is_ascii_alphabetic(),
            3 => b == b',',
            4 | 7 | 11 | 16 | 25 => b == b' ',
            19 | 22 => b == b':',
            26..=28 => true,
            _ => b.is_ascii_digit(),
        })
        && value.ends_with(b" GMT");
    if !shape_ok {
        return None;
    }
    parse_http_date(std::str::from_utf8(value).ok()?)
}

/// The one value of a field that must not repeat: `None` when absent, `Some(None)` when it is
/// repeated (invalid), else `Some(Some(value))`.
fn single<'h>(headers: &[httparse::Header<'h>], name: &str) -> Option<Option<&'h [u8]>> {
    let mut lines = headers.iter().filter(|h| name_is(h.name, name));
    let first = lines.next()?;
    Some(lines.next().is_none().then_some(first.value.trim_ascii()))
}

/// Lifetime from `Expires` (RFC 9111 §5.3): `Expires` minus `Date` (the time received, `now`,
/// without a valid `Date`). An invalid `Expires` (not an IMF-fixdate, or repeated) means already
/// expired: 0.
fn expires_lifetime(headers: &[httparse::Header<'_>], now: u64) -> Option<u64> {
    let expires = single(headers, "expires")?;
    let Some(expires) = expires.and_then(strict_http_date) else {
        return Some(0);
    };
    let date = single(headers, "date")
        .flatten()
        .and_then(strict_http_date)
        .unwrap_or(now);
    Some(expires.saturating_sub(date))
}

/// Decides for a complete GET (or HEAD) response with `status` and `headers`, received at `now`
/// (Unix s). `authorized` says the request carried Authorization.
pub fn response_rule(
    status: u16,
    headers: &[httparse::Header<'_>],
    authorized: bool,
    fresh: Freshness,
    now: u64,
) -> ResponseRule {
    if !CACHEABLE_STATUSES.contains(&status) {
        return ResponseRule::NoStore("status is not cacheable");
    }
    let (cc, targeted) = pibl_cache_control(headers);
    if cc.no_store {
        return ResponseRule::NoStore("no-store");
    }
    if cc.private {
        return ResponseRule::NoStore("private");
    }
    if headers.iter().any(|h| name_is(h.name, "set-cookie")) {
        return ResponseRule::NoStore("Set-Cookie");
    }
    if headers.iter().any(|h| name_is(h.name, "trailer")) {
        // A stored body has no trailer section: storing it would drop what the response
        // announced, for the client of the miss too (its body is re-framed as it is stored).
        return ResponseRule::NoStore("Trailer");
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
        if targeted {
            None
        } else {
            expires_lifetime(headers, now)
        }
    });
    let initial_age = age_of(headers);
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

    use crate::http::test_field as h;

    const ON: Freshness = Freshness {
        ttl: Duration::from_secs(120),
        heuristic: true,
        pass_cdn_cache_control: false,
    };
    const OFF: Freshness = Freshness {
        ttl: Duration::from_secs(120),
        heuristic: false,
        pass_cdn_cache_control: false,
    };
    /// Mon, 23 Nov 2026 19:00:00 GMT
    const NOW: u64 = 1_795_460_400;

    fn lifetime(r: ResponseRule) -> Duration {
        match r {
            ResponseRule::Store { lifetime, .. } => lifetime,
            other => panic!("not stored: {other:?}"),
        }
    }

    #[test]
    fn ttl_is_default_and_ceiling() {
        assert_eq!(
            lifetime(response_rule(200, &[], false, ON, NOW)),
            Duration::from_secs(120)
        );
        let long = [h("Cache-Control", "max-age=86400")];
        assert_eq!(
            lifetime(response_rule(200, &long, false, ON, NOW)),
            Duration::from_secs(120)
        );
        let short = [h("Cache-Control", "max-age=5, s-maxage=7")];
        assert_eq!(
            lifetime(response_rule(200, &short, false, ON, NOW)),
            Duration::from_secs(7)
        );
        let expires = [
            h("Date", "Mon, 23 Nov 2026 19:00:00 GMT"),
            h("Expires", "Mon, 23 Nov 2026 19:00:30 GMT"),
        ];
        assert_eq!(
            lifetime(response_rule(200, &expires, false, ON, NOW)),
            Duration::from_secs(30)
        );
    }

    /// A response that announces trailers is passed on as it came, never stored: the stored
    /// body would have no trailer section.
    #[test]
    fn a_response_with_trailers_is_not_stored() {
        let headers = [
            h("Cache-Control", "max-age=60"),
            h("Transfer-Encoding", "chunked"),
            h("Trailer", "X-Checksum"),
        ];
        assert!(matches!(
            response_rule(200, &headers, false, ON, NOW),
            ResponseRule::NoStore("Trailer")
        ));
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
                    response_rule(status, &headers, false, ON, NOW),
                    ResponseRule::NoStore(_)
                ),
                "{status} {headers:?}"
            );
        }
        assert!(matches!(
            response_rule(200, &[], true, ON, NOW),
            ResponseRule::NoStore(_)
        ));
        assert!(matches!(
            response_rule(200, &[h("Cache-Control", "public")], true, ON, NOW),
            ResponseRule::Store { .. }
        ));
    }

    #[test]
    fn heuristic_off_stores_only_validated_and_revalidates_always() {
        assert!(matches!(
            response_rule(200, &[], false, OFF, NOW),
            ResponseRule::NoStore(_)
        ));
        let r = response_rule(200, &[h("ETag", "\"v1\"")], false, OFF, NOW);
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
        let r = response_rule(200, &[h("Cache-Control", "max-age=60")], false, OFF, NOW);
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
            NOW,
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
    fn age_first_value_counts_and_invalid_is_ignored() {
        for (v, age) in [
            ("5", 5),
            ("100, 5", 100),
            (" 7 ,x", 7),
            ("+5", 0),
            ("-1", 0),
            ("1.5", 0),
            ("", 0),
            ("99999999999999999999999", u64::MAX),
        ] {
            assert_eq!(age_of(&[h("Age", v)]), age, "{v:?}");
        }
        assert_eq!(age_of(&[h("Age", "100"), h("Age", "5")]), 100);
    }

    #[test]
    fn invalid_expires_means_expired() {
        let date = h("Date", "Mon, 23 Nov 2026 19:00:00 GMT");
        let ok = h("Expires", "Mon, 23 Nov 2026 19:00:30 GMT");
        assert_eq!(expires_lifetime(&[date, ok], 0), Some(30));
        assert_eq!(expires_lifetime(&[ok], NOW), Some(30), "no Date: now");
        for bad in [
            "Mon, 23 Nov 2026  19:00:30 GMT",
            "Mon, 23 Nov 2026 9:00:30 GMT",
            "Mon, 23 Nov 2026 19:00:30 UTC",
            "0",
            "Monday, 23-Nov-26 19:00:30 GMT",
        ] {
            assert_eq!(
                expires_lifetime(&[date, h("Expires", bad)], 0),
                Some(0),
                "{bad}"
            );
        }
        assert_eq!(expires_lifetime(&[date, ok, ok], 0), Some(0), "two lines");
        assert_eq!(expires_lifetime(&[date], 0), None);
    }

    #[test]
    fn most_specific_targeted_field_wins() {
        let cc = h("Cache-Control", "no-store");
        let cdn = h("CDN-Cache-Control", "max-age=30");
        let ours = h("Pibl-Cache-Control", "max-age=10");
        assert!(matches!(
            response_rule(200, &[cc], false, ON, NOW),
            ResponseRule::NoStore(_)
        ));
        assert_eq!(
            lifetime(response_rule(200, &[cc, cdn], false, ON, NOW)),
            Duration::from_secs(30)
        );
        assert_eq!(
            lifetime(response_rule(200, &[cdn, cc, ours], false, ON, NOW)),
            Duration::from_secs(10)
        );
        let private = h("CDN-Cache-Control", "private");
        let public = h("Cache-Control", "public, max-age=60");
        assert!(matches!(
            response_rule(200, &[public, private], false, ON, NOW),
            ResponseRule::NoStore(_)
        ));
        // A targeted field makes Expires irrelevant; an empty one is not used.
        let expired = h("Expires", "0");
        assert_eq!(
            lifetime(response_rule(
                200,
                &[expired, h("CDN-Cache-Control", "public")],
                false,
                ON,
                NOW
            )),
            Duration::from_secs(120)
        );
        assert!(matches!(
            response_rule(200, &[h("CDN-Cache-Control", ""), cc], false, ON, NOW),
            ResponseRule::NoStore(_)
        ));
    }

    #[test]
    fn vary_names_are_collected() {
        let r = response_rule(
            200,
            &[h("Vary", "Accept-Encoding, accept-language")],
            false,
            ON,
            NOW,
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

    /// Of a repeated `max-age` the first counts (RFC 9111 §4.2.1), as in the client; the last
    /// used to win here.
    #[test]
    fn first_of_a_repeated_max_age_counts() {
        let twice = [
            h("Cache-Control", "max-age=10"),
            h("Cache-Control", "max-age=60"),
        ];
        assert_eq!(
            lifetime(response_rule(200, &twice, false, ON, NOW)),
            Duration::from_secs(10)
        );
    }
}
