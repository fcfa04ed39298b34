//! The Cache-Control directives (RFC 9111 §5.2) and `Age` (§5.1), parsed one way for the
//! proxy's shared cache (`cache::policy`) and the client's private one (`client::freshness`).
//! Each decides what the directives mean for it; this only reads them.

use super::{name_is, Field};

/// The Cache-Control directives pibl and pibl-client act on.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CacheControl {
    pub no_store: bool,
    /// `no-cache`, with or without a field list.
    pub no_cache: bool,
    pub private: bool,
    pub public: bool,
    /// `must-revalidate` or `proxy-revalidate`.
    pub must_revalidate: bool,
    /// `max-age` in seconds; an invalid value reads as 0 (stale), RFC 9111 §4.2.1.
    pub max_age: Option<u64>,
    pub s_maxage: Option<u64>,
}

impl CacheControl {
    /// The message's `Cache-Control`.
    pub fn parse(fields: &[impl Field]) -> CacheControl {
        Self::parse_field(fields, "cache-control")
    }

    /// The directives of every `field` line (`Cache-Control`, or a targeted field with the same
    /// syntax such as `CDN-Cache-Control`, RFC 9213). Of a repeated directive the first counts
    /// (RFC 9111 §4.2.1).
    pub fn parse_field(fields: &[impl Field], field: &str) -> CacheControl {
        let mut cc = CacheControl::default();
        for f in fields.iter().filter(|f| name_is(f.name(), field)) {
            for d in f.value().split(|&b| b == b',') {
                let d = d.trim_ascii();
                let (name, value) = match d.iter().position(|&b| b == b'=') {
                    Some(i) => (d[..i].trim_ascii(), Some(d[i + 1..].trim_ascii())),
                    None => (d, None),
                };
                let is = |wanted: &str| name.eq_ignore_ascii_case(wanted.as_bytes());
                if is("no-store") {
                    cc.no_store = true;
                } else if is("no-cache") {
                    cc.no_cache = true;
                } else if is("private") {
                    cc.private = true;
                } else if is("public") {
                    cc.public = true;
                } else if is("must-revalidate") || is("proxy-revalidate") {
                    cc.must_revalidate = true;
                } else if is("max-age") {
                    cc.max_age = cc.max_age.or(Some(directive_seconds(value)));
                } else if is("s-maxage") {
                    cc.s_maxage = cc.s_maxage.or(Some(directive_seconds(value)));
                }
            }
        }
        cc
    }
}

/// The response's `Age` in seconds (RFC 9111 §5.1): of a list or repeated lines the first value
/// counts; a value that is not a non-negative integer makes the field invalid, read as 0.
pub fn age_of(fields: &[impl Field]) -> u64 {
    let Some(h) = fields.iter().find(|f| name_is(f.name(), "age")) else {
        return 0;
    };
    let first = h
        .value()
        .split(|&b| b == b',')
        .next()
        .unwrap_or(&[])
        .trim_ascii();
    delta_seconds(first).unwrap_or(0)
}

/// A directive's value as seconds, quoted or not: an invalid value is 0 (stale).
fn directive_seconds(value: Option<&[u8]>) -> u64 {
    let Some(v) = value else {
        return 0;
    };
    let v = v.strip_prefix(b"\"").unwrap_or(v);
    let v = v.strip_suffix(b"\"").unwrap_or(v);
    delta_seconds(v).unwrap_or(0)
}

/// `delta-seconds` (RFC 9111 §1.2.2): 1*DIGIT; a value too large to represent is the largest
/// (§1.2.2 allows that for anything from 2^31 up).
fn delta_seconds(v: &[u8]) -> Option<u64> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |n, d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::http::test_field as h;

    #[test]
    fn directives_are_read_in_any_case_and_quoted() {
        let cc = CacheControl::parse(&[
            h("Cache-Control", "No-Store, PRIVATE, max-age=\"7\""),
            h(
                "cache-control",
                "s-maxage=3, must-revalidate, no-cache=\"Set-Cookie\"",
            ),
            h("Pragma", "public"),
        ]);
        assert_eq!(
            cc,
            CacheControl {
                no_store: true,
                no_cache: true,
                private: true,
                public: false,
                must_revalidate: true,
                max_age: Some(7),
                s_maxage: Some(3),
            }
        );
    }

    #[test]
    fn first_of_a_repeated_directive_counts_and_invalid_values_are_stale() {
        let cc = CacheControl::parse(&[
            h("Cache-Control", "max-age=10"),
            h("Cache-Control", "max-age=99"),
        ]);
        assert_eq!(cc.max_age, Some(10));
        for bad in [
            "max-age",
            "max-age=",
            "max-age=-1",
            "max-age=+5",
            "max-age=1.5",
        ] {
            assert_eq!(
                CacheControl::parse(&[h("Cache-Control", bad)]).max_age,
                Some(0),
                "{bad:?}"
            );
        }
        assert_eq!(
            CacheControl::parse(&[h("Cache-Control", "max-age=99999999999999999999999")]).max_age,
            Some(u64::MAX)
        );
    }

    #[test]
    fn targeted_fields_have_the_same_syntax() {
        let fields = [
            h("Cache-Control", "no-store"),
            h("CDN-Cache-Control", "max-age=5"),
        ];
        let cc = CacheControl::parse_field(&fields, "cdn-cache-control");
        assert_eq!((cc.no_store, cc.max_age), (false, Some(5)));
    }
}
