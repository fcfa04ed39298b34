//! Whether one response is compressed: the request's side (kept from its head) and the
//! response head's, read once each, nothing allocated.

use super::{negotiate, Coding, TypeList};
use crate::http::framing::Declared;
use crate::http::{has_token, name_is, Field};

/// What a request's head says about compressing its response, kept from its one parse until
/// the response head arrives (a few bytes, `Copy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asked {
    /// The coding `Accept-Encoding` prefers ([`negotiate`]); `None`: identity.
    pub coding: Option<Coding>,
    /// A HEAD request: no body to compress, and its head must stay the GET's.
    pub head: bool,
    /// A `Range` request: ranges are of the identity body (RFC 9110 §14), never compressed.
    pub range: bool,
}

impl Asked {
    /// Nothing asked (or `compress off`): the response goes as it is, decided by one branch.
    pub const NONE: Asked = Asked {
        coding: None,
        head: false,
        range: false,
    };

    /// Reads the request head's fields once. `head`: the method is HEAD.
    pub fn from_request(head: bool, fields: &[impl Field]) -> Asked {
        Asked {
            coding: negotiate(fields),
            head,
            range: fields.iter().any(|f| name_is(f.name(), "range")),
        }
    }
}

/// The decision for one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Compress(Coding),
    /// Sent as it is, and why (for tests and counters).
    Skip(Skip),
}

/// Why a response is sent as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// The client accepts none of br, zstd, gzip (or prefers identity).
    NotAccepted,
    HeadRequest,
    RangeRequest,
    /// 1xx, 204, 206 or 304: no body, or a part of one.
    Status,
    /// It has a `Content-Encoding` already (or a transfer coding other than chunked).
    AlreadyEncoded,
    /// `Cache-Control: no-transform` (RFC 9110 §7.7).
    NoTransform,
    /// It announces trailers (`Trailer`): a compressed body is framed anew and has none, so
    /// they would be lost (and a checksum among them would no longer match the body).
    Trailers,
    /// No `Content-Type`, or one not in `compress_types`.
    Type,
    /// `Content-Length` below `compress_min_length`.
    TooShort,
}

/// Decides for a response head, given what its request asked for; `types` and `min_length`
/// are `compress_types` and `compress_min_length`. Cheapest checks first: most requests end at
/// the first (a client that asks for no coding) or at the type.
pub fn decide(
    asked: Asked,
    status: u16,
    fields: &[impl Field],
    types: &TypeList,
    min_length: u64,
) -> Decision {
    let coding = match wanted(asked, status) {
        Ok(coding) => coding,
        Err(skip) => return Decision::Skip(skip),
    };
    let mut listed_type = false;
    for f in fields {
        let name = f.name();
        if name_is(name, "content-encoding") {
            return Decision::Skip(Skip::AlreadyEncoded);
        }
        if name_is(name, "cache-control") && has_token(f.value(), "no-transform") {
            return Decision::Skip(Skip::NoTransform);
        }
        if name_is(name, "trailer") {
            return Decision::Skip(Skip::Trailers);
        }
        if name_is(name, "content-type") {
            listed_type = types.matches(f.value());
        }
    }
    if !listed_type {
        return Decision::Skip(Skip::Type);
    }
    match Declared::parse(fields) {
        Ok(Declared::Length(n)) if n < min_length => Decision::Skip(Skip::TooShort),
        Ok(Declared::OtherCoding) | Err(_) => Decision::Skip(Skip::AlreadyEncoded),
        _ => Decision::Compress(coding),
    }
}

/// The request's and the status's part of [`decide`]: the coding, unless they rule it out.
fn wanted(asked: Asked, status: u16) -> Result<Coding, Skip> {
    let Some(coding) = asked.coding else {
        return Err(Skip::NotAccepted);
    };
    if asked.head {
        return Err(Skip::HeadRequest);
    }
    if asked.range {
        return Err(Skip::RangeRequest);
    }
    if status < 200 || matches!(status, 204 | 206 | 304) {
        return Err(Skip::Status);
    }
    Ok(coding)
}

/// [`decide`] for a response served from the cache: its stored fields, looked up by name
/// (`header`), and its body's length (always known). Stored fields have no framing of their own.
pub fn decide_stored<'a>(
    asked: Asked,
    status: u16,
    header: impl Fn(&str) -> Option<&'a [u8]>,
    body_len: u64,
    types: &TypeList,
    min_length: u64,
) -> Decision {
    let coding = match wanted(asked, status) {
        Ok(coding) => coding,
        Err(skip) => return Decision::Skip(skip),
    };
    if header("content-encoding").is_some() {
        return Decision::Skip(Skip::AlreadyEncoded);
    }
    if header("cache-control").is_some_and(|v| has_token(v, "no-transform")) {
        return Decision::Skip(Skip::NoTransform);
    }
    if !header("content-type").is_some_and(|v| types.matches(v)) {
        return Decision::Skip(Skip::Type);
    }
    if body_len < min_length {
        return Decision::Skip(Skip::TooShort);
    }
    Decision::Compress(coding)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields<'a>(pairs: &'a [(&'a str, &'a str)]) -> Vec<httparse::Header<'a>> {
        pairs
            .iter()
            .map(|(n, v)| httparse::Header {
                name: n,
                value: v.as_bytes(),
            })
            .collect()
    }

    const HTML: (&str, &str) = ("Content-Type", "text/html; charset=utf-8");
    const GZIP: Asked = Asked {
        coding: Some(Coding::Gzip),
        head: false,
        range: false,
    };

    fn d(asked: Asked, status: u16, pairs: &[(&str, &str)]) -> Decision {
        decide(asked, status, &fields(pairs), &TypeList::default(), 1024)
    }

    #[test]
    fn the_request_side_is_read_once() {
        let f = fields(&[("accept-encoding", "gzip, br"), ("Range", "bytes=0-1")]);
        let a = Asked::from_request(false, &f);
        assert_eq!(
            a,
            Asked {
                coding: Some(Coding::Br),
                head: false,
                range: true
            }
        );
        assert_eq!(Asked::from_request(true, &fields(&[])).coding, None);
    }

    #[test]
    fn a_listed_type_long_enough_is_compressed() {
        let c = Decision::Compress(Coding::Gzip);
        assert_eq!(
            d(GZIP, 200, &[HTML]),
            c,
            "length unknown (chunked or close)"
        );
        assert_eq!(d(GZIP, 200, &[HTML, ("Content-Length", "1024")]), c);
        assert_eq!(d(GZIP, 404, &[HTML, ("Transfer-Encoding", "chunked")]), c);
        assert_eq!(
            d(GZIP, 200, &[HTML, ("Cache-Control", "public, max-age=60")]),
            c
        );
    }

    #[test]
    fn never_compressed() {
        let skip = |s| Decision::Skip(s);
        let no = Asked {
            coding: None,
            ..GZIP
        };
        assert_eq!(d(no, 200, &[HTML]), skip(Skip::NotAccepted));
        let head = Asked { head: true, ..GZIP };
        assert_eq!(d(head, 200, &[HTML]), skip(Skip::HeadRequest));
        let range = Asked {
            range: true,
            ..GZIP
        };
        assert_eq!(d(range, 200, &[HTML]), skip(Skip::RangeRequest));
        for status in [101, 204, 206, 304] {
            assert_eq!(d(GZIP, status, &[HTML]), skip(Skip::Status), "{status}");
        }
        assert_eq!(
            d(GZIP, 200, &[HTML, ("content-encoding", "br")]),
            skip(Skip::AlreadyEncoded)
        );
        assert_eq!(
            d(GZIP, 200, &[HTML, ("Transfer-Encoding", "gzip")]),
            skip(Skip::AlreadyEncoded)
        );
        assert_eq!(
            d(
                GZIP,
                200,
                &[HTML, ("Cache-Control", "max-age=5, No-Transform")]
            ),
            skip(Skip::NoTransform)
        );
        assert_eq!(
            d(GZIP, 200, &[HTML, ("Trailer", "X-Checksum")]),
            skip(Skip::Trailers)
        );
        assert_eq!(d(GZIP, 200, &[]), skip(Skip::Type));
        assert_eq!(
            d(GZIP, 200, &[("Content-Type", "image/png")]),
            skip(Skip::Type)
        );
        assert_eq!(
            d(GZIP, 200, &[HTML, ("Content-Length", "1023")]),
            skip(Skip::TooShort)
        );
        assert_eq!(
            d(GZIP, 200, &[HTML, ("Content-Length", "0")]),
            skip(Skip::TooShort)
        );
    }
}
