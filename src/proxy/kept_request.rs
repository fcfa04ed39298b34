//! The request head the cache keeps for its miss paths, and where its fields lie in it.

use std::mem::MaybeUninit;

use crate::http::request::HEADERS_CAP;

/// Fields of a kept request head served from their recorded spans: this many at most, on the
/// stack; a head with more is parsed again (bounded, and rare).
const KEPT_FIELDS: usize = 64;

/// Where one header field lies in the kept request head: name and value, as byte ranges.
#[derive(Debug, Clone, Copy)]
struct FieldSpan {
    name: (u32, u32),
    value: (u32, u32),
}

/// A copy of a request head kept for the cache's miss paths (waiting for a fill, the Vary
/// values of a stored response, the client's validators after a 304), with where its fields
/// lie, recorded at the one parse of the head so those paths need not parse it again. Both
/// buffers keep their capacity from one request to the next: no allocation per request.
#[derive(Debug, Default)]
pub(in crate::proxy) struct KeptRequest {
    head: Vec<u8>,
    fields: Vec<FieldSpan>,
    /// `fields` describe `head` (false for a head with more than [`KEPT_FIELDS`] fields, or a
    /// span that could not be recorded: then it is parsed again).
    spans_valid: bool,
}

impl KeptRequest {
    /// Records where `headers` (parsed from `input`, the bytes to be kept) lie in it, during
    /// the one parse of a request the cache may need again.
    pub(in crate::proxy) fn record_fields(
        &mut self,
        input: &[u8],
        headers: &[httparse::Header<'_>],
    ) {
        self.fields.clear();
        self.spans_valid = headers.len() <= KEPT_FIELDS;
        if !self.spans_valid {
            return;
        }
        let base = input.as_ptr() as usize;
        let range = |bytes: &[u8]| {
            let start = (bytes.as_ptr() as usize).checked_sub(base)?;
            let end = start.checked_add(bytes.len())?;
            (end <= input.len()).then_some((u32::try_from(start).ok()?, u32::try_from(end).ok()?))
        };
        for h in headers {
            match (range(h.name.as_bytes()), range(h.value)) {
                (Some(name), Some(value)) => self.fields.push(FieldSpan { name, value }),
                _ => {
                    self.spans_valid = false;
                    return;
                }
            }
        }
    }

    /// Nothing to record: a request answered from the cache as it stands.
    pub(in crate::proxy) fn forget_fields(&mut self) {
        self.fields.clear();
        self.spans_valid = false;
    }

    /// Keeps a copy of the request head (its fields recorded, or not, just before).
    pub(in crate::proxy) fn keep(&mut self, head: &[u8]) {
        self.head.clear();
        self.head.extend_from_slice(head);
    }

    /// Runs `f` over the header fields of the kept head: from the recorded spans, or, when
    /// none are (too many fields), by parsing the copy again.
    pub(super) fn with_fields<R>(&self, f: impl FnOnce(&[httparse::Header<'_>]) -> R) -> R {
        if !self.spans_valid {
            return with_request_headers(&self.head, f);
        }
        let mut fields = [httparse::EMPTY_HEADER; KEPT_FIELDS];
        let bytes = |(start, end): (u32, u32)| {
            self.head
                .get(start as usize..end as usize)
                .unwrap_or_default()
        };
        for (slot, span) in fields.iter_mut().zip(&self.fields) {
            slot.name = std::str::from_utf8(bytes(span.name)).unwrap_or_default();
            slot.value = bytes(span.value);
        }
        f(&fields[..self.fields.len()])
    }
}

/// Runs `f` over the header fields of a request head parsed earlier.
fn with_request_headers<R>(head: &[u8], f: impl FnOnce(&[httparse::Header<'_>]) -> R) -> R {
    let mut storage = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; HEADERS_CAP];
    let mut req = httparse::Request::new(&mut []);
    match req.parse_with_uninit_headers(head, &mut storage) {
        Ok(httparse::Status::Complete(_)) => f(req.headers),
        _ => f(&[]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kept request head's fields, read from the spans recorded at the one parse, are
    /// the fields a parse of the copy finds (obs-text bytes included); a head with more than
    /// `KEPT_FIELDS` fields is parsed again.
    #[test]
    fn kept_request_fields_match_a_parse_of_the_copy() {
        fn fields(kept: &KeptRequest) -> Vec<(String, Vec<u8>)> {
            kept.with_fields(|hs| {
                hs.iter()
                    .map(|h| (h.name.to_string(), h.value.to_vec()))
                    .collect()
            })
        }
        for extra in [0, 100] {
            let mut input =
                b"GET / HTTP/1.1\r\nHost: a\r\nX-Obs: caf\xe9\r\nIf-None-Match: \"v\"\r\n".to_vec();
            for i in 0..extra {
                input.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
            }
            input.extend_from_slice(b"\r\nnext request");
            let mut kept = KeptRequest::default();
            let head_len = {
                let mut storage = [httparse::EMPTY_HEADER; 200];
                let mut req = httparse::Request::new(&mut storage);
                let Ok(httparse::Status::Complete(n)) = req.parse(&input) else {
                    panic!("a complete head");
                };
                kept.record_fields(&input, req.headers);
                n
            };
            kept.keep(&input[..head_len]);
            assert_eq!(kept.spans_valid, extra == 0);
            let got = fields(&kept);
            assert_eq!(got.len(), 3 + extra);
            assert_eq!(got[1], ("X-Obs".to_string(), b"caf\xe9".to_vec()));
            assert_eq!(
                got,
                with_request_headers(&kept.head, |hs| {
                    hs.iter()
                        .map(|h| (h.name.to_string(), h.value.to_vec()))
                        .collect::<Vec<_>>()
                })
            );
        }
        let mut kept = KeptRequest::default();
        kept.keep(b"GET / HTTP/1.1\r\nA: b\r\n\r\n");
        kept.forget_fields();
        assert_eq!(fields(&kept), vec![("A".to_string(), b"b".to_vec())]);
    }
}
