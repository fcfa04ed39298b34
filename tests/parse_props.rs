//! Property-style tests of the request parser and the chunked decoder, without dependencies:
//! a xorshift generator feeds random and mutated inputs (they must never panic), and valid
//! messages split at every byte boundary must parse exactly as when whole.

use pibl::http::chunked::{decode_all, ChunkedDecoder, Piece};
use pibl::http::request::{parse, Forwarding, HeadLimits, RequestInfo, RequestLine};

/// xorshift64*: small, deterministic, good enough to shake a parser.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const LIMITS: HeadLimits = HeadLimits {
    max_header_bytes: 8192,
    max_headers: 50,
};

fn fwd() -> Forwarding {
    Forwarding {
        client_ip: "192.0.2.1".parse().unwrap(),
        proto: "http",
        h2: false,
    }
}

type Parsed = Result<Option<(RequestInfo, Vec<u8>, String, String)>, u16>;

fn parse_all(input: &[u8]) -> Parsed {
    let mut out = Vec::new();
    let mut line = RequestLine::default();
    match parse(input, LIMITS, &fwd(), &mut out, &mut line) {
        Ok(Some(info)) => Ok(Some((info, out, line.method, line.target))),
        Ok(None) => Ok(None),
        Err(e) => Err(e.status),
    }
}

const VALID_HEADS: &[&str] = &[
    "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET /p?q=1 HTTP/1.1\r\nHost: example.org:8080\r\nAccept: */*\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n",
    "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n",
    "PUT /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    "GET http://h.example/abs HTTP/1.1\r\nHost: other\r\n\r\n",
    "HEAD / HTTP/1.0\r\n\r\n",
    "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nVia: 1.1 x\r\n\r\n",
    "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
];

const NASTY: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\r",
    b" ",
    b"\t",
    b":",
    b"\x00",
    b"\x7f",
    b"\xff",
    b"Content-Length: 9\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Host: b\r\n",
    b" folded\r\n",
    b"HTTP/1.1",
    b"HTTP/9.9",
    b"99999999999999999999",
    b",",
    b";",
    b"\r\n\r\n",
];

fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(4) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            1 if !v.is_empty() => {
                let end = (at + rng.below(8)).min(v.len());
                v.drain(at.min(end)..end);
            }
            2 => {
                let ins = rng.pick(NASTY);
                v.splice(at..at, ins.iter().copied());
            }
            _ => {
                let dup = v[at.min(v.len())..(at + rng.below(16)).min(v.len())].to_vec();
                v.splice(at..at, dup);
            }
        }
    }
    v
}

#[test]
fn request_parser_never_panics_on_random_or_mutated_heads() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut outcomes = [0usize; 3];
    for i in 0..20_000 {
        let input = if i % 4 == 0 {
            (0..rng.below(300)).map(|_| rng.next() as u8).collect()
        } else {
            let base = *rng.pick(VALID_HEADS);
            mutate(&mut rng, base.as_bytes())
        };
        match parse_all(&input) {
            Ok(Some((info, out, _, _))) => {
                outcomes[0] += 1;
                assert!(info.head_len <= input.len());
                // What goes upstream is always a well-formed CRLF head.
                assert!(out.ends_with(b"\r\n\r\n"));
                assert!(!out.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'));
            }
            Ok(None) => outcomes[1] += 1,
            Err(status) => {
                outcomes[2] += 1;
                assert!([400, 405, 414, 431, 505].contains(&status), "{status}");
            }
        }
    }
    // The mutations reach every outcome.
    assert!(outcomes.iter().all(|&n| n > 100), "{outcomes:?}");
}

#[test]
fn valid_heads_parse_identically_at_every_split() {
    for head in VALID_HEADS {
        let whole = parse_all(head.as_bytes());
        assert!(matches!(whole, Ok(Some(_))), "{head:?}: {whole:?}");
        // With trailing bytes (a body or the next request) the head is the same.
        let mut more = head.as_bytes().to_vec();
        more.extend_from_slice(b"GET /next HTTP/1.1\r\n");
        assert_eq!(parse_all(&more), whole, "{head:?}");
        for k in 0..head.len() {
            assert_eq!(
                parse_all(&head.as_bytes()[..k]),
                Ok(None),
                "{head:?} cut at {k}"
            );
        }
    }
}

/// A valid chunked body with random chunk sizes, extensions and trailers, and its data.
fn chunked_body(rng: &mut Rng) -> (Vec<u8>, Vec<u8>) {
    let mut wire = Vec::new();
    let mut data = Vec::new();
    for _ in 0..rng.below(6) {
        let n = 1 + rng.below(40);
        let chunk: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
        let size = if rng.below(2) == 0 {
            format!("{n:x}")
        } else {
            format!("{n:X}")
        };
        wire.extend_from_slice(size.as_bytes());
        if rng.below(3) == 0 {
            wire.extend_from_slice(b";ext=1");
        }
        wire.extend_from_slice(b"\r\n");
        wire.extend_from_slice(&chunk);
        wire.extend_from_slice(b"\r\n");
        data.extend_from_slice(&chunk);
    }
    wire.extend_from_slice(b"0\r\n");
    if rng.below(2) == 0 {
        wire.extend_from_slice(b"X-Trailer: t\r\n");
    }
    wire.extend_from_slice(b"\r\n");
    (wire, data)
}

/// Feeds `parts` one after another to one decoder; returns the data and where the body ended.
fn decode_in_parts(parts: &[&[u8]]) -> Result<(Vec<u8>, Option<usize>), String> {
    let mut dec = ChunkedDecoder::new();
    let mut data = Vec::new();
    let mut offset = 0;
    for part in parts {
        let mut pos = 0;
        while pos < part.len() {
            match dec.next(&part[pos..]).map_err(|e| e.to_string())? {
                Piece::Data(n) => {
                    data.extend_from_slice(&part[pos..pos + n]);
                    pos += n;
                }
                Piece::Framing(n) => pos += n,
                Piece::Done(n) => return Ok((data, Some(offset + pos + n))),
            }
        }
        offset += part.len();
    }
    Ok((data, None))
}

#[test]
fn chunked_bodies_decode_identically_at_every_split() {
    let mut rng = Rng(42);
    for _ in 0..200 {
        let (wire, data) = chunked_body(&mut rng);
        let mut framed = wire.clone();
        framed.extend_from_slice(b"NEXT");
        let (whole, used) = decode_all(&framed).unwrap();
        assert_eq!((whole.as_slice(), used), (data.as_slice(), wire.len()));
        for k in 0..=wire.len() {
            let got = decode_in_parts(&[&framed[..k], &framed[k..]]).unwrap();
            assert_eq!(got, (data.clone(), Some(wire.len())), "split at {k}");
        }
        // And byte by byte.
        let bytes: Vec<&[u8]> = framed.chunks(1).collect();
        assert_eq!(
            decode_in_parts(&bytes).unwrap(),
            (data.clone(), Some(wire.len()))
        );
        let mut dec = ChunkedDecoder::new();
        assert_eq!(dec.scan(&framed).unwrap(), (wire.len(), true));
        assert_eq!(dec.data_len(), data.len() as u64);
    }
}

#[test]
fn chunked_decoder_never_panics_on_mutated_bodies() {
    let mut rng = Rng(7);
    let mut errors = 0;
    for _ in 0..20_000 {
        let (wire, _) = chunked_body(&mut rng);
        let bad = mutate(&mut rng, &wire);
        // Split somewhere, to exercise state carried between calls.
        let k = rng.below(bad.len() + 1);
        match decode_in_parts(&[&bad[..k], &bad[k..]]) {
            Ok((_, Some(end))) => assert!(end <= bad.len()),
            Ok((_, None)) => {}
            Err(_) => errors += 1,
        }
        let _ = decode_all(&bad);
    }
    assert!(
        errors > 1000,
        "mutations should often be rejected: {errors}"
    );
}
