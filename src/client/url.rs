//! `http://` and `https://` URL parsing, just enough for a client: scheme, host (name, IPv4 or
//! bracketed IPv6), port and the origin-form request target. Redirect `Location`s are resolved
//! against the current URL.

use super::error::ClientError;
use crate::http::target::{split_absolute, split_authority, Scheme};
use std::fmt;
use std::net::Ipv6Addr;

/// A parsed `http://` or `https://` URL. Always normalised: lowercase host, explicit port,
/// target starting with `/`, no fragment, non-ASCII and spaces percent-encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    scheme: Scheme,
    /// Host name or IP literal, without IPv6 brackets.
    host: String,
    port: u16,
    /// Path and query, e.g. `/a/b?x=1`.
    target: String,
}

impl Url {
    /// Parses `input`; a missing scheme means `http://`, like curl.
    pub fn parse(input: &str) -> Result<Url, ClientError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(ClientError::BadUrl("empty URL".into()));
        }
        let (scheme, authority, rest) = match split_absolute(input) {
            Some(url) => (url.scheme, url.authority, url.rest),
            None => match input.find("://") {
                Some(i) => {
                    return Err(ClientError::BadUrl(format!(
                        "unsupported URL scheme '{}' in {input} (only http:// and https:// are \
                         supported)",
                        input[..i].to_ascii_lowercase()
                    )))
                }
                None => {
                    let (authority, rest) = split_authority(input);
                    (Scheme::Http, authority, rest)
                }
            },
        };
        let target = rest.split('#').next().unwrap_or("");
        let (host, port) = parse_authority(authority, input, default_port(scheme))?;
        let target = normalise_target(target, input)?;
        Ok(Url {
            scheme,
            host,
            port,
            target,
        })
    }

    /// `https://`: the request goes over TLS.
    pub fn is_https(&self) -> bool {
        self.scheme == Scheme::Https
    }

    /// `http` or `https`.
    pub fn scheme_name(&self) -> &'static str {
        match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// Host name or IP literal without brackets, for DNS and connecting.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Origin-form request target (path and query).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Value for the `Host` header: brackets around IPv6, port only when not the scheme's default
    /// (80, 443).
    pub fn host_header(&self) -> String {
        let host = self.bracketed_host();
        if self.port == default_port(self.scheme) {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// `host:port` with brackets for IPv6, for messages and cache keys.
    pub fn authority(&self) -> String {
        format!("{}:{}", self.bracketed_host(), self.port)
    }

    /// The absolute form used as cache key and as request target through a forward proxy.
    pub fn absolute(&self) -> String {
        format!(
            "{}://{}{}",
            self.scheme_name(),
            self.host_header(),
            self.target
        )
    }

    /// The path's last segment, percent-decoded when that gives UTF-8; empty for `/` or `/dir/`.
    pub fn last_segment(&self) -> String {
        let path = self.target.split('?').next().unwrap_or("");
        let segment = path.rsplit('/').next().unwrap_or("");
        percent_decode(segment).unwrap_or_else(|| segment.to_string())
    }

    /// Resolves a redirect `Location` (absolute, scheme-relative, absolute-path or relative); a
    /// redirect may change the scheme (`http://` to `https://` and back).
    pub fn join(&self, location: &str) -> Result<Url, ClientError> {
        let location = location.trim();
        if location.contains("://") {
            return Url::parse(location);
        }
        if let Some(rest) = location.strip_prefix("//") {
            return Url::parse(&format!("{}://{rest}", self.scheme_name()));
        }
        let target = if location.starts_with('/') {
            location.to_string()
        } else if location.starts_with('?') {
            let path = self.target.split('?').next().unwrap_or("/");
            format!("{path}{location}")
        } else if location.is_empty() {
            self.target.clone()
        } else {
            let path = self.target.split('?').next().unwrap_or("/");
            let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
            format!("{dir}{location}")
        };
        let target = normalise_target(target.split('#').next().unwrap_or(""), location)?;
        Ok(Url {
            scheme: self.scheme,
            host: self.host.clone(),
            port: self.port,
            target,
        })
    }

    fn bracketed_host(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.absolute())
    }
}

/// The port a scheme implies when the URL names none.
fn default_port(scheme: Scheme) -> u16 {
    match scheme {
        Scheme::Http => 80,
        Scheme::Https => 443,
    }
}

/// Parses `host[:port]` or `[v6]:port`, `default_port` when there is no port; also used for
/// `-x HOST:PORT`.
pub fn parse_authority(
    authority: &str,
    input: &str,
    default_port: u16,
) -> Result<(String, u16), ClientError> {
    let bad = |why: &str| ClientError::BadUrl(format!("invalid URL {input}: {why}"));
    if authority.contains('@') {
        return Err(bad(
            "credentials in URLs are not supported; send them with -H 'Authorization: ...'",
        ));
    }
    let (host, port_text) = if let Some(rest) = authority.strip_prefix('[') {
        let close = rest
            .find(']')
            .ok_or_else(|| bad("missing ']' after IPv6 address"))?;
        let literal = &rest[..close];
        if literal.parse::<Ipv6Addr>().is_err() {
            return Err(bad("invalid IPv6 address between brackets"));
        }
        let after = &rest[close + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(bad("unexpected text after ']'")),
        };
        (literal.to_ascii_lowercase(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => {
                return Err(bad("put IPv6 addresses in brackets, like [::1]:8080"))
            }
            Some((h, p)) => (h.to_ascii_lowercase(), Some(p)),
            None => (authority.to_ascii_lowercase(), None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host name"));
    }
    if !host.contains(':')
        && !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
    {
        return Err(bad(
            "the host name may only contain letters, digits, '.', '-' and '_'",
        ));
    }
    let port = match port_text {
        None | Some("") => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(bad("the port must be a number from 1 to 65535")),
        },
    };
    Ok((host, port))
}

/// Makes a path-and-query sendable: leading `/`, spaces and non-ASCII percent-encoded,
/// control characters rejected.
fn normalise_target(raw: &str, input: &str) -> Result<String, ClientError> {
    let mut out = String::with_capacity(raw.len() + 1);
    if !raw.starts_with('/') {
        out.push('/');
    }
    for &b in raw.as_bytes() {
        match b {
            0..=0x1f | 0x7f => {
                return Err(ClientError::BadUrl(format!(
                    "invalid URL {input}: it contains a control character"
                )))
            }
            b' ' | b'"' | b'<' | b'>' | b'`' | 0x80..=0xff => {
                out.push_str(&format!("%{b:02X}"));
            }
            _ => out.push(b as char),
        }
    }
    Ok(out)
}

/// Decodes `%XX` escapes; `None` when an escape is invalid or the result is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn parses_names_ports_and_targets() {
        let u = url("http://Example.COM/a/b?x=1#frag");
        assert_eq!(
            (u.host(), u.port(), u.target()),
            ("example.com", 80, "/a/b?x=1")
        );
        assert_eq!(u.host_header(), "example.com");
        let u = url("http://127.0.0.1:8080");
        assert_eq!((u.host(), u.port(), u.target()), ("127.0.0.1", 8080, "/"));
        assert_eq!(u.host_header(), "127.0.0.1:8080");
        assert_eq!(url("http://h?q=1").target(), "/?q=1");
        assert_eq!(
            url("localhost:3000/x").absolute(),
            "http://localhost:3000/x"
        );
    }

    #[test]
    fn parses_ipv6_literals() {
        let u = url("http://[::1]:8080/p");
        assert_eq!((u.host(), u.port()), ("::1", 8080));
        assert_eq!(u.host_header(), "[::1]:8080");
        assert_eq!(u.absolute(), "http://[::1]:8080/p");
        assert_eq!(url("http://[::1]/").host_header(), "[::1]");
        assert!(Url::parse("http://[::1/").is_err());
        assert!(Url::parse("http://[zz]/").is_err());
    }

    #[test]
    fn rejects_bad_urls_and_other_schemes() {
        let ftp = Url::parse("ftp://example.com/").unwrap_err();
        assert!(ftp.to_string().contains("unsupported URL scheme 'ftp'"));
        assert_eq!(ftp.exit_code(), 3);
        for bad in [
            "",
            "ftp://x/",
            "http://",
            "http://:80/",
            "http://h:0/",
            "http://h:99999/",
            "http://h:x/",
            "http://u:p@h/",
            "http://h o/",
            "http://h/\x01",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn encodes_spaces_and_non_ascii() {
        assert_eq!(url("http://h/a b/é").target(), "/a%20b/%C3%A9");
    }

    #[test]
    fn last_segment_is_decoded_and_empty_for_directories() {
        assert_eq!(url("http://h/img/logo.png?v=2").last_segment(), "logo.png");
        assert_eq!(url("http://h/a%20b.pdf").last_segment(), "a b.pdf");
        assert_eq!(url("http://h/dir/").last_segment(), "");
        assert_eq!(url("http://h").last_segment(), "");
    }

    #[test]
    fn joins_redirect_locations() {
        let base = url("http://h:8080/a/b?q=1");
        assert_eq!(base.join("/x").unwrap().absolute(), "http://h:8080/x");
        assert_eq!(base.join("c").unwrap().absolute(), "http://h:8080/a/c");
        assert_eq!(base.join("?z").unwrap().absolute(), "http://h:8080/a/b?z");
        assert_eq!(base.join("//o:1/p").unwrap().absolute(), "http://o:1/p");
        assert_eq!(base.join("http://o/p#f").unwrap().absolute(), "http://o/p");
        assert_eq!(base.join("https://o/").unwrap().absolute(), "https://o/");
    }

    #[test]
    fn https_urls_default_to_port_443_and_keep_their_scheme() {
        let u = url("HTTPS://Example.com/a");
        assert!(u.is_https());
        assert_eq!(
            (u.host(), u.port(), u.scheme_name()),
            ("example.com", 443, "https")
        );
        assert_eq!(u.host_header(), "example.com");
        assert_eq!(u.absolute(), "https://example.com/a");
        let u = url("https://h:8443/");
        assert_eq!(u.host_header(), "h:8443");
        assert_eq!(url("https://h:80/").host_header(), "h:80");
        assert_eq!(u.join("//o/p").unwrap().absolute(), "https://o/p");
        assert_eq!(u.join("/x").unwrap().absolute(), "https://h:8443/x");
        assert_eq!(u.join("http://h/").unwrap().absolute(), "http://h/");
        assert!(!url("h:1/").is_https());
    }
}
