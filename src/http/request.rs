//! Request heads: parse strictly, then write the head that goes upstream.
//!
//! The upstream head is re-serialised from the parsed fields with CRLF line ends, never copied
//! from the client's bytes: httparse tolerates bare LF, and forwarding the raw head would pass that
//! ambiguity on to a backend that may read it differently.

use std::mem::MaybeUninit;
use std::net::IpAddr;

use super::body::BodyKind;
use super::framing::request_body;
use super::header_rules::UpstreamRules;
use super::target::{host_field, split_request_target};
use super::{
    connection_has, connection_names_headers, name_is, named_by_connection, put_header,
    request_keeps_alive, FieldName, Version,
};

/// Most header fields any config may allow; the configured limit slices this.
pub const HEADERS_CAP: usize = 1000;

/// The host of an HTTP/1.0 request that names none: sent upstream and used in cache keys.
pub const DEFAULT_HOST: &str = "localhost";

/// The protocols a client may switch to through pibl unless `upgrade_protocols` says otherwise.
pub const DEFAULT_UPGRADE_PROTOCOLS: [&str; 1] = ["websocket"];

/// Methods whose semantics the proxy cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    Patch,
    Other,
}

impl Method {
    fn from_token(m: &str) -> Method {
        match m {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            "PATCH" => Method::Patch,
            _ => Method::Other,
        }
    }

    /// RFC 9110 §9.2.2: may be sent twice with the same effect as once.
    pub fn is_idempotent(self) -> bool {
        matches!(
            self,
            Method::Get | Method::Head | Method::Put | Method::Delete | Method::Options
        )
    }
}

/// What the proxy needs to know about a request once its head is parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInfo {
    pub method: Method,
    pub version: Version,
    pub body: BodyKind,
    /// The client wants the connection kept open after the response.
    pub keep_alive: bool,
    /// The client asked to switch to a protocol the operator allows (`upgrade_protocols`), and
    /// the upstream head asks for it: only then may a `101` turn the connection into a tunnel.
    pub upgrade: bool,
    /// Length of the head in the input, including the blank line.
    pub head_len: usize,
}

/// Request line and Host as received, for the access log and cache keys.
/// Strings are cleared and refilled so a connection reuses their allocation.
#[derive(Debug, Default, Clone)]
pub struct RequestLine {
    pub method: String,
    /// The target as the client sent it.
    pub target: String,
    /// Host (from an absolute-form target, else the Host header).
    pub host: String,
}

/// A request the proxy refuses, with the status it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestError {
    pub status: u16,
    pub reason: &'static str,
}

const fn reject(status: u16, reason: &'static str) -> RequestError {
    RequestError { status, reason }
}

/// Limits applied while parsing a head.
#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    pub max_header_bytes: usize,
    pub max_headers: usize,
}

/// Where the request came from, for X-Forwarded-For / X-Forwarded-Proto.
#[derive(Debug, Clone, Copy)]
pub struct Forwarding {
    pub client_ip: IpAddr,
    pub proto: &'static str,
    /// The client spoke HTTP/2 (an h2 stream's request, read as HTTP/1.1): `Via` names the
    /// protocol received, `2` (RFC 9110 §7.6.3).
    pub h2: bool,
}

/// A parsed, valid request head, lent to the caller of [`parse_with`] while its input is at hand.
pub struct Head<'a> {
    pub info: &'a RequestInfo,
    /// The header fields as received.
    pub headers: &'a [httparse::Header<'a>],
    /// Request line and host, as also copied into the caller's [`RequestLine`].
    pub line: &'a RequestLine,
    method: &'a str,
    path: &'a str,
    host: &'a [u8],
    /// Forward the allowed `Upgrade` tokens (see [`RequestInfo::upgrade`]).
    upgrade: bool,
    /// The `upgrade_protocols` in force, lowercase.
    upgrade_protocols: &'a [String],
}

impl Head<'_> {
    /// Writes the head to send upstream: origin-form target, Host, hop-by-hop fields removed,
    /// X-Forwarded-For/-Proto and Via with our hop.
    pub fn write_upstream(&self, out: &mut Vec<u8>, fwd: &Forwarding) {
        self.write_upstream_with(out, fwd, &UpstreamRules::none());
    }

    /// [`Self::write_upstream`], with the request's header rules, `X-Real-IP`,
    /// `X-Forwarded-Host` and `X-Request-ID` as configured (`rules`).
    pub fn write_upstream_with(&self, out: &mut Vec<u8>, fwd: &Forwarding, rules: &UpstreamRules) {
        write_upstream_head(
            out,
            self.method,
            self.path,
            self.host,
            self.headers,
            fwd,
            self.info.version,
            self.upgrade.then_some(self.upgrade_protocols),
            rules,
        );
    }
}

/// Parses a request head from the start of `input` and writes the head to send upstream, with
/// the default `upgrade_protocols` ([`DEFAULT_UPGRADE_PROTOCOLS`]).
///
/// Returns `Ok(None)` while the head is incomplete. On success `out` holds the head to send
/// upstream and `line` the request line for logging.
pub fn parse(
    input: &[u8],
    limits: HeadLimits,
    fwd: &Forwarding,
    out: &mut Vec<u8>,
    line: &mut RequestLine,
) -> Result<Option<RequestInfo>, RequestError> {
    static DEFAULT: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
        DEFAULT_UPGRADE_PROTOCOLS
            .iter()
            .map(|p| p.to_string())
            .collect()
    });
    let parsed = parse_with(input, limits, &DEFAULT, line, |head| {
        head.write_upstream(out, fwd)
    })?;
    Ok(parsed.map(|(info, ())| info))
}

/// Parses and validates a request head from the start of `input`, fills `line` (method and
/// target as soon as the request line is parsed, so a refusal can be logged with them), and lends
/// the head to `then` (which decides, for one, whether an upstream head is needed at all: a cache
/// hit does not need one). `upgrade_protocols` (lowercase) are the `Upgrade` tokens that may be
/// forwarded; others are removed. Returns `Ok(None)` while the head is incomplete.
pub fn parse_with<R>(
    input: &[u8],
    limits: HeadLimits,
    upgrade_protocols: &[String],
    line: &mut RequestLine,
    then: impl FnOnce(&Head<'_>) -> R,
) -> Result<Option<(RequestInfo, R)>, RequestError> {
    // Empty until the request line is parsed: a request refused before that is logged as `-`.
    line.method.clear();
    line.target.clear();
    line.host.clear();
    let mut storage = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; HEADERS_CAP];
    let slots = &mut storage[..limits.max_headers.min(HEADERS_CAP)];
    let mut req = httparse::Request::new(&mut []);
    let head_len = match req.parse_with_uninit_headers(input, slots) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            // A head that never completes (408) is logged with its request line, if that came.
            if let (Some(method), Some(target)) = (req.method, req.path) {
                line.method.push_str(method);
                line.target.push_str(target);
            }
            return incomplete(input, limits);
        }
        Err(httparse::Error::TooManyHeaders) => return Err(reject(431, "too many header fields")),
        Err(httparse::Error::Version) => {
            return match refused_version(input) {
                VersionField::Unsupported => Err(reject(505, "HTTP version not supported")),
                VersionField::Malformed => Err(reject(400, "invalid HTTP version")),
                VersionField::Incomplete => incomplete(input, limits),
            };
        }
        Err(e) => return Err(reject(400, parse_error_reason(e))),
    };
    if head_len > limits.max_header_bytes {
        return Err(too_large(input, limits.max_header_bytes));
    }
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(reject(400, "incomplete request line"));
    };
    // From here on the request line is known: errors below are logged with it (not a head over
    // the size limit: its target may be the reason, and is not worth a log line of that size).
    line.method.push_str(method);
    line.target.push_str(target);
    let headers: &[httparse::Header<'_>] = req.headers;
    let version = Version::from_minor(minor);
    let kind = Method::from_token(method);

    if method == "CONNECT" {
        return Err(reject(405, "CONNECT is not supported by a reverse proxy"));
    }
    if !target.is_ascii() {
        return Err(reject(400, "request target is not ASCII"));
    }
    let (uri_host, path) =
        split_request_target(target, kind == Method::Options).map_err(|why| reject(400, why))?;
    let host_header = host_field(version, headers).map_err(|why| reject(400, why))?;
    let host: &[u8] = match (uri_host, host_header) {
        (Some(u), _) => u.as_bytes(),
        (None, Some(h)) => h,
        (None, None) => DEFAULT_HOST.as_bytes(),
    };
    let body = request_body(version, headers).map_err(|e| reject(400, e.reason()))?;
    let keep_alive = request_keeps_alive(version, headers);
    // Only allowed protocols are forwarded: a blind tunnel to anything else (h2c) would carry
    // later requests past the proxy's routing, limits, log and cache.
    let upgrade = version == Version::Http11
        && allowed_upgrades(headers, upgrade_protocols)
            .next()
            .is_some()
        && connection_has(headers, "upgrade");

    line.host.clear();
    line.host.push_str(&String::from_utf8_lossy(host));

    let info = RequestInfo {
        method: kind,
        version,
        body,
        keep_alive,
        upgrade,
        head_len,
    };
    let r = then(&Head {
        info: &info,
        headers,
        line,
        method,
        path,
        host,
        upgrade,
        upgrade_protocols,
    });
    Ok(Some((info, r)))
}

#[allow(clippy::too_many_arguments)]
fn write_upstream_head(
    out: &mut Vec<u8>,
    method: &str,
    path: &str,
    host: &[u8],
    headers: &[httparse::Header<'_>],
    fwd: &Forwarding,
    version: Version,
    upgrade_protocols: Option<&[String]>,
    rules: &UpstreamRules,
) {
    out.clear();
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    put_header(out, "Host", host);
    // Most messages have no Connection header naming others: skip the per-header scan.
    let connection_named = connection_names_headers(headers);
    let mut xff_written = false;
    let mut via_written = false;
    // With no rules (the default), one test per request rather than per field.
    let rules_drop = rules.drops_any();
    for h in headers {
        let n = h.name;
        let field = FieldName::of(n);
        if matches!(
            field,
            FieldName::Host | FieldName::XForwardedProto | FieldName::HopByHop
        ) || (connection_named && named_by_connection(n, headers))
            || (rules_drop && rules.drops(n))
        {
            continue;
        }
        if matches!(field, FieldName::XForwardedFor | FieldName::Via) {
            // Several lines of a list header fold into one, with our hop appended.
            let is_xff = field == FieldName::XForwardedFor;
            let done = if is_xff {
                &mut xff_written
            } else {
                &mut via_written
            };
            if !*done {
                *done = true;
                write_list_with_hop(out, headers, n, is_xff, fwd, version);
            }
            continue;
        }
        put_header(out, n, h.value);
    }
    if !xff_written {
        write_list_with_hop(out, &[], "X-Forwarded-For", true, fwd, version);
    }
    put_header(out, "X-Forwarded-Proto", fwd.proto.as_bytes());
    if !via_written {
        write_list_with_hop(out, &[], "Via", false, fwd, version);
    }
    if rules_drop {
        write_rule_fields(out, host, fwd, rules);
    }
    if let Some(allowed) = upgrade_protocols {
        write_upgrade(out, headers, allowed);
    }
    out.extend_from_slice(b"\r\n");
}

/// The fields the rules add: `set`/`add` values, `X-Real-IP`, `X-Forwarded-Host`,
/// `X-Request-ID`.
fn write_rule_fields(out: &mut Vec<u8>, host: &[u8], fwd: &Forwarding, rules: &UpstreamRules) {
    rules.headers.write_fields(out);
    if rules.real_ip {
        out.extend_from_slice(b"X-Real-IP: ");
        super::put_ip(out, fwd.client_ip);
        out.extend_from_slice(b"\r\n");
    }
    if rules.forwarded_host {
        put_header(out, "X-Forwarded-Host", host);
    }
    if let Some(id) = rules.request_id {
        put_header(out, "X-Request-ID", id);
    }
}

/// Writes `Connection` and `Upgrade` with the allowed protocols only; for h2c, the
/// `HTTP2-Settings` it needs (dropped as hop-by-hop otherwise).
fn write_upgrade(out: &mut Vec<u8>, headers: &[httparse::Header<'_>], allowed: &[String]) {
    let h2c =
        allowed_upgrades(headers, allowed).any(|t| protocol_name(t).eq_ignore_ascii_case(b"h2c"));
    out.extend_from_slice(if h2c {
        b"Connection: upgrade, HTTP2-Settings\r\nUpgrade: "
    } else {
        b"Connection: upgrade\r\nUpgrade: "
    });
    for (i, token) in allowed_upgrades(headers, allowed).enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(token);
    }
    out.extend_from_slice(b"\r\n");
    if h2c {
        for h in headers.iter().filter(|h| name_is(h.name, "http2-settings")) {
            put_header(out, h.name, h.value);
        }
    }
}

/// The tokens of the `Upgrade` fields whose protocol `allowed` (lowercase) names, as sent.
fn allowed_upgrades<'h>(
    headers: &'h [httparse::Header<'h>],
    allowed: &'h [String],
) -> impl Iterator<Item = &'h [u8]> + 'h {
    headers
        .iter()
        .filter(|h| name_is(h.name, "upgrade"))
        .flat_map(|h| h.value.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(move |t| {
            let name = protocol_name(t);
            !name.is_empty()
                && allowed
                    .iter()
                    .any(|a| name.eq_ignore_ascii_case(a.as_bytes()))
        })
}

/// `websocket` of `websocket`, `h2c` of `h2c`, `HTTP` of `HTTP/2.0` (RFC 9110 §7.8).
fn protocol_name(token: &[u8]) -> &[u8] {
    token.split(|&b| b == b'/').next().unwrap_or(token)
}

/// Writes `name: <every existing value>, <our hop>`.
fn write_list_with_hop(
    out: &mut Vec<u8>,
    headers: &[httparse::Header<'_>],
    name: &str,
    is_xff: bool,
    fwd: &Forwarding,
    version: Version,
) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    for h in headers.iter().filter(|h| name_is(h.name, name)) {
        let v = h.value.trim_ascii();
        if !v.is_empty() {
            out.extend_from_slice(v);
            out.extend_from_slice(b", ");
        }
    }
    if is_xff {
        super::put_ip(out, fwd.client_ip);
    } else {
        out.extend_from_slice(match version {
            _ if fwd.h2 => b"2 pibl",
            Version::Http10 => b"1.0 pibl",
            Version::Http11 => b"1.1 pibl",
        });
    }
    out.extend_from_slice(b"\r\n");
}

/// A head that has not ended yet: wait for more, unless it already fills `max_header_bytes`.
fn incomplete<T>(input: &[u8], limits: HeadLimits) -> Result<Option<T>, RequestError> {
    if input.len() >= limits.max_header_bytes {
        Err(too_large(input, limits.max_header_bytes))
    } else {
        Ok(None)
    }
}

/// A head over `limit` bytes: `414` when the request line alone (with its line end) is over it,
/// including when its end has not even arrived; `431` when the header fields are what is too much.
fn too_large(input: &[u8], limit: usize) -> RequestError {
    let scanned = &input[..input.len().min(limit)];
    if scanned.contains(&b'\n') {
        reject(431, "request header section too large")
    } else {
        reject(414, "request line too long")
    }
}

/// What the version field of a request line that httparse refused is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VersionField {
    /// `HTTP/DIGIT.DIGIT`, but not a version pibl speaks (`HTTP/2.0`): 505.
    Unsupported,
    /// Anything else (`HTTP/1.x`, `http/1.1`, `HTTP/11`): a malformed request line, 400.
    Malformed,
    /// The line has not ended and may still become `HTTP/DIGIT.DIGIT`: wait for more bytes.
    Incomplete,
}

/// Classifies the version field of the request line at the start of `input` (after the method
/// and the target, which contain no space) once httparse has refused it (RFC 9112 §2.3).
fn refused_version(input: &[u8]) -> VersionField {
    let (line, ended) = match input.iter().position(|&b| b == b'\n') {
        Some(lf) => (&input[..lf], true),
        None => (input, false),
    };
    let mut parts = line.splitn(3, |&b| b == b' ');
    let field = match (parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(_), Some(field)) => field,
        _ => return VersionField::Malformed,
    };
    let fits = |pattern: &[u8], text: &[u8]| {
        text.len() <= pattern.len()
            && text.iter().zip(pattern).all(|(&b, &p)| {
                if p == b'D' {
                    b.is_ascii_digit()
                } else {
                    b == p
                }
            })
    };
    if ended {
        let field = field.strip_suffix(b"\r").unwrap_or(field);
        if field.len() == 8 && fits(b"HTTP/D.D", field) {
            VersionField::Unsupported
        } else {
            VersionField::Malformed
        }
    } else if fits(b"HTTP/D.D\r", field) {
        VersionField::Incomplete
    } else {
        VersionField::Malformed
    }
}

fn parse_error_reason(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status",
        httparse::Error::Token => "invalid method or request target",
        httparse::Error::TooManyHeaders => "too many header fields",
        httparse::Error::Version => "invalid HTTP version",
    }
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
