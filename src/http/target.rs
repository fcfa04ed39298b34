//! The request target and the Host field (RFC 9112 §3.2-3.3). Absolute-form URLs are split one
//! way for the proxy, the origin, the client and the admin purge ([`split_absolute`]); Host is
//! checked one way for the proxy and the origin ([`host_field`]).

/// The schemes an absolute-form target may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// An absolute URL split into its parts, borrowed from the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbsoluteUrl<'a> {
    pub scheme: Scheme,
    /// `host[:port]` as written (may be empty or carry userinfo: the caller validates it).
    pub authority: &'a str,
    /// What follows the authority: empty, or starting with `/`, `?` or `#`.
    pub rest: &'a str,
}

/// Splits `http://authority/...` or `https://...`, the scheme in any case (RFC 3986 §3.1).
/// `None` for anything else (origin form, `*`, other schemes).
pub fn split_absolute(url: &str) -> Option<AbsoluteUrl<'_>> {
    let has_prefix = |prefix: &str| {
        url.get(..prefix.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(prefix))
    };
    let (scheme, after) = if has_prefix("http://") {
        (Scheme::Http, &url[7..])
    } else if has_prefix("https://") {
        (Scheme::Https, &url[8..])
    } else {
        return None;
    };
    let (authority, rest) = split_authority(after);
    Some(AbsoluteUrl {
        scheme,
        authority,
        rest,
    })
}

/// Splits what follows `scheme://` into the authority and the rest (from the first `/`, `?` or
/// `#`).
pub fn split_authority(after_scheme: &str) -> (&str, &str) {
    let end = after_scheme
        .find(['/', '?', '#'])
        .unwrap_or(after_scheme.len());
    after_scheme.split_at(end)
}

/// Splits a request target into (host from an absolute URI, origin-form path). Absolute-form
/// targets go upstream in origin form, with Host taken from the URI. The error is the 400 reason.
pub fn split_request_target(
    target: &str,
    is_options: bool,
) -> Result<(Option<&str>, &str), &'static str> {
    if target.starts_with('/') {
        return Ok((None, target));
    }
    if target == "*" {
        return if is_options {
            Ok((None, target))
        } else {
            Err("asterisk target outside OPTIONS")
        };
    }
    let Some(url) = split_absolute(target) else {
        return Err("invalid request target");
    };
    let path = match url.rest.as_bytes().first() {
        None => "/",
        Some(b'/') => url.rest,
        // `http://host?q` has an empty path; origin form needs "/" but we cannot insert it
        // without allocating, so refuse this rare shape.
        Some(_) => return Err("absolute target without a path"),
    };
    let authority = url.authority;
    if authority.is_empty() || authority.contains('@') || !valid_host(authority.as_bytes()) {
        return Err("invalid authority in request target");
    }
    Ok((Some(authority), path))
}

/// The Host field of a request (RFC 9112 §3.2): at most one, required in HTTP/1.1, with a valid
/// value. The error is the 400 reason. Inlined: it runs on every request's parse.
#[inline]
pub fn host_field<'h>(
    version: super::Version,
    headers: &[httparse::Header<'h>],
) -> Result<Option<&'h [u8]>, &'static str> {
    let mut host: Option<&[u8]> = None;
    for h in headers {
        if super::name_is(h.name, "host") {
            if host.is_some() {
                return Err("more than one Host header");
            }
            host = Some(h.value);
        }
    }
    match host {
        None if version == super::Version::Http11 => Err("HTTP/1.1 request without Host"),
        Some(h) if !valid_host(h) => Err("invalid Host header"),
        _ => Ok(host),
    }
}

/// A Host value: reg-name or IP literal with optional port; no whitespace, paths or userinfo.
fn valid_host(h: &[u8]) -> bool {
    !h.is_empty()
        && h.iter().all(|&b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']' | b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Version;

    #[test]
    fn absolute_urls_split_in_any_case() {
        let url = split_absolute("HTTP://Example.com:81/p?q").unwrap();
        assert_eq!(
            (url.scheme, url.authority, url.rest),
            (Scheme::Http, "Example.com:81", "/p?q")
        );
        let url = split_absolute("https://h?q#f").unwrap();
        assert_eq!(
            (url.scheme, url.authority, url.rest),
            (Scheme::Https, "h", "?q#f")
        );
        assert_eq!(split_absolute("http://").unwrap().authority, "");
        for other in ["/p", "*", "ftp://h/", "http:/h", "httpx://h", "é"] {
            assert_eq!(split_absolute(other), None, "{other:?}");
        }
    }

    #[test]
    fn request_targets() {
        assert_eq!(split_request_target("/a?b", false), Ok((None, "/a?b")));
        assert_eq!(split_request_target("*", true), Ok((None, "*")));
        assert!(split_request_target("*", false).is_err());
        assert_eq!(
            split_request_target("Http://h:1/x", false),
            Ok((Some("h:1"), "/x"))
        );
        assert_eq!(
            split_request_target("http://h", false),
            Ok((Some("h"), "/"))
        );
        for bad in [
            "http://h?q",
            "http://",
            "http://u@h/",
            "http://h o/",
            "h/x",
            "mailto:x",
        ] {
            assert!(split_request_target(bad, false).is_err(), "{bad:?}");
        }
    }

    fn h<'a>(name: &'a str, value: &'a str) -> httparse::Header<'a> {
        httparse::Header {
            name,
            value: value.as_bytes(),
        }
    }

    #[test]
    fn host_is_single_required_in_http11_and_valid() {
        assert_eq!(
            host_field(Version::Http11, &[h("Host", "a:1")]),
            Ok(Some(&b"a:1"[..]))
        );
        assert_eq!(host_field(Version::Http10, &[]), Ok(None));
        assert!(host_field(Version::Http11, &[]).is_err());
        assert!(host_field(Version::Http10, &[h("Host", "a"), h("host", "a")]).is_err());
        assert!(host_field(Version::Http10, &[h("Host", "a b")]).is_err());
        assert!(host_field(Version::Http11, &[h("Host", "")]).is_err());
    }
}
