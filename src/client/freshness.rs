//! Whether and for how long a response may be reused (RFC 9111, as a private cache): computed
//! once when the response is stored, so a lookup only compares a deadline with the clock.

use super::response::{find_header, Header};
use crate::http::cache_control::{age_of, CacheControl};
use std::time::Duration;

/// What the cache may do with a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CachePolicy {
    DoNotStore,
    /// Store it; serve it without asking the server until `fresh_until_ms` (Unix milliseconds).
    Store {
        fresh_until_ms: u64,
    },
}

/// Policy for a GET response with `status` and `headers` received at `now_ms`; `default_ttl`
/// applies when the server gives no freshness information.
pub fn policy_for(
    status: u16,
    headers: &[Header],
    now_ms: u64,
    default_ttl: Duration,
) -> CachePolicy {
    if status != 200 {
        return CachePolicy::DoNotStore;
    }
    if headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("vary"))
        .any(|h| h.value.split(',').any(|v| v.trim() == "*"))
    {
        return CachePolicy::DoNotStore;
    }
    let cc = CacheControl::parse(headers);
    if cc.no_store {
        return CachePolicy::DoNotStore;
    }
    // A private cache: `private` and `s-maxage` do not concern it.
    let lifetime_ms: u64 = if cc.no_cache {
        0
    } else if let Some(secs) = cc.max_age {
        // An invalid max-age makes the response stale (RFC 9111 §4.2.1): it reads as 0.
        secs.saturating_mul(1000)
    } else if let Some(expires) = find_header(headers, "expires") {
        let date_ms = find_header(headers, "date")
            .and_then(parse_http_date)
            .map_or(now_ms, |s| s.saturating_mul(1000));
        parse_http_date(expires).map_or(0, |secs| secs.saturating_mul(1000).saturating_sub(date_ms))
    } else {
        u64::try_from(default_ttl.as_millis()).unwrap_or(u64::MAX)
    };
    let age_ms = age_of(headers).saturating_mul(1000);
    let lifetime_ms = lifetime_ms.saturating_sub(age_ms);
    if lifetime_ms == 0 && !has_validator(headers) {
        // Stale at once and nothing to revalidate with: storing it would never help.
        return CachePolicy::DoNotStore;
    }
    CachePolicy::Store {
        fresh_until_ms: now_ms.saturating_add(lifetime_ms),
    }
}

/// True when the response carries an ETag or Last-Modified to revalidate with.
pub fn has_validator(headers: &[Header]) -> bool {
    find_header(headers, "etag").is_some() || find_header(headers, "last-modified").is_some()
}

pub use crate::http::date::parse_http_date;

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_000_000_000_000;
    const TTL: Duration = Duration::from_secs(60);

    fn policy(headers: &[(&str, &str)]) -> CachePolicy {
        let headers: Vec<Header> = headers.iter().map(|(n, v)| Header::new(n, v)).collect();
        policy_for(200, &headers, NOW, TTL)
    }

    fn fresh_for(secs: u64) -> CachePolicy {
        CachePolicy::Store {
            fresh_until_ms: NOW + secs * 1000,
        }
    }

    #[test]
    fn default_ttl_applies_without_server_hints() {
        assert_eq!(policy(&[]), fresh_for(60));
        let headers = [Header::new("Cache-Control", "max-age=5")];
        assert_eq!(policy_for(404, &headers, NOW, TTL), CachePolicy::DoNotStore);
    }

    #[test]
    fn cache_control_wins_over_expires() {
        assert_eq!(
            policy(&[("Cache-Control", "private, max-age=10")]),
            fresh_for(10)
        );
        assert_eq!(
            policy(&[
                ("cache-control", "MAX-AGE=\"3\""),
                ("Expires", "Thu, 01 Jan 2099 00:00:00 GMT")
            ]),
            fresh_for(3)
        );
        assert_eq!(
            policy(&[("Cache-Control", "max-age=10"), ("Age", "4")]),
            fresh_for(6)
        );
    }

    #[test]
    fn no_store_no_cache_and_vary_star() {
        assert_eq!(
            policy(&[("Cache-Control", "no-store, max-age=10")]),
            CachePolicy::DoNotStore
        );
        assert_eq!(
            policy(&[("Cache-Control", "no-cache")]),
            CachePolicy::DoNotStore
        );
        assert_eq!(
            policy(&[("Cache-Control", "no-cache"), ("ETag", "\"v1\"")]),
            fresh_for(0)
        );
        assert_eq!(policy(&[("Vary", "Accept, *")]), CachePolicy::DoNotStore);
        assert_eq!(
            policy(&[("Cache-Control", "max-age=0"), ("Last-Modified", "x")]),
            fresh_for(0)
        );
    }

    #[test]
    fn expires_is_relative_to_date() {
        assert_eq!(
            policy(&[
                ("Date", "Sun, 06 Nov 1994 08:49:37 GMT"),
                ("Expires", "Sun, 06 Nov 1994 08:50:07 GMT")
            ]),
            fresh_for(30)
        );
        assert_eq!(policy(&[("Expires", "0")]), CachePolicy::DoNotStore);
    }

    #[test]
    fn parses_imf_fixdate() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 UTC"), None);
        assert_eq!(parse_http_date("garbage"), None);
    }

    /// Cache-Control and Age are read by the proxy's parser (`http::cache_control`): of an Age
    /// list the first value counts (it used to make the field invalid), `+5` is not
    /// delta-seconds.
    #[test]
    fn age_and_max_age_are_read_as_the_proxy_reads_them() {
        assert_eq!(
            policy(&[("Cache-Control", "max-age=10"), ("Age", "4, 9")]),
            fresh_for(6)
        );
        assert_eq!(
            policy(&[("Cache-Control", "max-age=+5"), ("ETag", "\"v\"")]),
            fresh_for(0)
        );
    }
}
