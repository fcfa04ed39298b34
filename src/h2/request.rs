//! A request's header list as RFC 9113 §8 wants it: pseudo-header fields checked and set apart,
//! regular fields lowercase and free of connection-specific fields, cookies re-joined (§8.2.3).
//! One arena of bytes and spans per list, so a head is one allocation that the caller may keep.

use std::ops::Range;

use super::hpack::DecodedHeaders;

/// A request head (or trailers, which carry no pseudo-header fields).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestHead {
    bytes: Vec<u8>,
    method: Range<usize>,
    scheme: Range<usize>,
    path: Range<usize>,
    authority: Option<Range<usize>>,
    fields: Vec<(Range<usize>, Range<usize>)>,
    /// `content-length`, when the request had one: checked against the DATA received.
    pub content_length: Option<u64>,
}

impl RequestHead {
    pub fn method(&self) -> &[u8] {
        &self.bytes[self.method.clone()]
    }
    pub fn scheme(&self) -> &[u8] {
        &self.bytes[self.scheme.clone()]
    }
    pub fn path(&self) -> &[u8] {
        &self.bytes[self.path.clone()]
    }
    /// `:authority`, which wins over `host` when both are present (RFC 9113 §8.3.1).
    pub fn authority(&self) -> Option<&[u8]> {
        self.authority.clone().map(|r| &self.bytes[r])
    }
    /// The regular fields in order, `cookie` re-joined into one field.
    pub fn fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.fields
            .iter()
            .map(|(n, v)| (&self.bytes[n.clone()], &self.bytes[v.clone()]))
    }
    /// The first regular field called `name` (lowercase).
    pub fn field(&self, name: &[u8]) -> Option<&[u8]> {
        self.fields().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    fn push(&mut self, b: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(b);
        start..self.bytes.len()
    }
}

/// What a header list is: a request's first block, or trailers after the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    Request,
    Trailers,
}

/// Fields that only mean something on one HTTP/1 hop (RFC 9113 §8.2.2): refused in HTTP/2.
const CONNECTION_SPECIFIC: [&[u8]; 5] = [
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"transfer-encoding",
    b"upgrade",
];

/// Checks a decoded list and builds the head; `Err` is the reason for a stream PROTOCOL_ERROR.
pub fn validate(decoded: &DecodedHeaders, kind: BlockKind) -> Result<RequestHead, &'static str> {
    validate_into(RequestHead::default(), decoded, kind)
}

/// [`validate`] into `spare`'s allocations (a head an earlier stream was started from).
pub fn validate_into(
    spare: RequestHead,
    decoded: &DecodedHeaders,
    kind: BlockKind,
) -> Result<RequestHead, &'static str> {
    let (mut bytes, mut fields) = (spare.bytes, spare.fields);
    bytes.clear();
    fields.clear();
    // Sized once: the list's size bounds what is copied (its 32 per field is spare room).
    bytes.reserve(decoded.list_size());
    fields.reserve(decoded.len());
    let mut head = RequestHead {
        bytes,
        fields,
        ..RequestHead::default()
    };
    let (mut method, mut scheme, mut path) = (None, None, None);
    let mut regular_seen = false;
    let mut cookie: Option<Range<usize>> = None;
    for field in decoded.iter() {
        let (name, value) = (field.name, field.value);
        if name.is_empty() {
            return Err("empty field name");
        }
        if value.iter().any(|&b| b == 0 || b == b'\r' || b == b'\n') {
            return Err("NUL, CR or LF in a field value");
        }
        if name[0] == b':' {
            if regular_seen {
                return Err("pseudo-header field after a regular field");
            }
            if kind == BlockKind::Trailers {
                return Err("pseudo-header field in trailers");
            }
            let slot = match name {
                b":method" => &mut method,
                b":scheme" => &mut scheme,
                b":path" => &mut path,
                b":authority" => &mut head.authority,
                _ => return Err("unknown pseudo-header field"),
            };
            if slot.is_some() {
                return Err("duplicated pseudo-header field");
            }
            let start = head.bytes.len();
            head.bytes.extend_from_slice(value);
            *slot = Some(start..head.bytes.len());
            continue;
        }
        regular_seen = true;
        if name
            .iter()
            .any(|&b| b.is_ascii_uppercase() || b <= b' ' || b == b':' || b >= 0x7f)
        {
            return Err("field name not lowercase token characters");
        }
        if CONNECTION_SPECIFIC.contains(&name) {
            return Err("connection-specific field");
        }
        if name == b"te" && value != b"trailers" {
            return Err("te other than trailers");
        }
        if name == b"content-length" {
            let parsed = parse_content_length(value).ok_or("bad content-length")?;
            if head.content_length.is_some_and(|cl| cl != parsed) {
                return Err("conflicting content-length");
            }
            head.content_length = Some(parsed);
        }
        if name == b"cookie" {
            // §8.2.3: crumbs re-joined with "; " into one field, placed where the first was.
            match &mut cookie {
                Some(range) => {
                    // Moves the joined value to the arena's end: earlier fields keep their spans.
                    let old = head.bytes[range.clone()].to_vec();
                    let start = head.bytes.len();
                    head.bytes.extend_from_slice(&old);
                    head.bytes.extend_from_slice(b"; ");
                    head.bytes.extend_from_slice(value);
                    *range = start..head.bytes.len();
                    if let Some(slot) = head
                        .fields
                        .iter_mut()
                        .find(|(n, _)| head.bytes.get(n.clone()) == Some(b"cookie".as_slice()))
                    {
                        slot.1 = range.clone();
                    }
                }
                None => {
                    let n = head.push(name);
                    let v = head.push(value);
                    cookie = Some(v.clone());
                    head.fields.push((n, v));
                }
            }
            continue;
        }
        let n = head.push(name);
        let v = head.push(value);
        head.fields.push((n, v));
    }
    if kind == BlockKind::Request {
        let method = method.ok_or(":method missing")?;
        if &head.bytes[method.clone()] == b"CONNECT" {
            return Err("CONNECT is not supported");
        }
        let scheme = scheme.ok_or(":scheme missing")?;
        let path = path.ok_or(":path missing")?;
        if path.is_empty() {
            return Err(":path empty");
        }
        head.method = method;
        head.scheme = scheme;
        head.path = path;
    }
    Ok(head)
}

fn parse_content_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    value.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}
