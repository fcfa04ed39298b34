use super::*;
use crate::h2::hpack::{DecodedHeaders, Decoder, Encoder, Indexing};
use crate::h2::request::{validate, BlockKind};
use crate::h2::test_rng::XorShift;
use crate::http::chunked::decode_all;

/// A request head as the connection hands it over: HPACK-encoded, decoded, validated.
fn head(fields: &[(&str, &str)], kind: BlockKind) -> RequestHead {
    let mut encoder = Encoder::default();
    let mut block = Vec::new();
    encoder.begin_block(&mut block);
    for (name, value) in fields {
        encoder.encode_field(
            name.as_bytes(),
            value.as_bytes(),
            Indexing::Without,
            &mut block,
        );
    }
    let mut decoded = DecodedHeaders::new();
    Decoder::new(4096, 64 * 1024)
        .decode(&block, &mut decoded)
        .expect("decodes");
    validate(&decoded, kind).expect("valid")
}

fn request(fields: &[(&str, &str)]) -> RequestHead {
    head(fields, BlockKind::Request)
}

fn written(head: &RequestHead, end_stream: bool) -> (String, Result<BodyKind, TranslateError>) {
    let mut out = Vec::new();
    let body = write_h1_request(head, end_stream, &mut out);
    (String::from_utf8_lossy(&out).into_owned(), body)
}

const GET: [(&str, &str); 4] = [
    (":method", "GET"),
    (":scheme", "https"),
    (":path", "/a?b=c"),
    (":authority", "example.com"),
];

#[test]
fn a_get_becomes_a_request_line_and_host() {
    let mut fields = GET.to_vec();
    fields.extend([
        ("host", "other.example"),
        ("accept", "*/*"),
        ("cookie", "a=1"),
        ("te", "trailers"),
        ("cookie", "b=2"),
    ]);
    let (text, body) = written(&request(&fields), true);
    assert_eq!(body, Ok(BodyKind::Empty));
    assert_eq!(
        text,
        "GET /a?b=c HTTP/1.1\r\nhost: example.com\r\naccept: */*\r\ncookie: a=1; b=2\r\n\r\n"
    );
    // What is written is a request pibl's HTTP/1 side reads.
    let mut headers = [httparse::EMPTY_HEADER; 8];
    let mut req = httparse::Request::new(&mut headers);
    assert!(req.parse(text.as_bytes()).expect("parses").is_complete());
}

#[test]
fn a_host_field_serves_when_there_is_no_authority() {
    let (text, body) = written(
        &request(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            ("host", "h.example:8080"),
        ]),
        true,
    );
    assert_eq!(body, Ok(BodyKind::Empty));
    assert_eq!(text, "GET / HTTP/1.1\r\nhost: h.example:8080\r\n\r\n");
    let (_, body) = written(
        &request(&[(":method", "GET"), (":scheme", "http"), (":path", "/")]),
        true,
    );
    assert_eq!(body, Err(TranslateError::NoHost));
}

#[test]
fn bodies_are_framed_by_length_chunked_or_nothing() {
    let post = |extra: &[(&'static str, &'static str)]| {
        let mut fields = GET.to_vec();
        fields[0] = (":method", "POST");
        fields.extend_from_slice(extra);
        request(&fields)
    };
    let (text, body) = written(&post(&[]), true);
    assert_eq!(body, Ok(BodyKind::Empty));
    assert!(text.ends_with("content-length: 0\r\n\r\n"), "{text}");
    let (text, body) = written(&post(&[]), false);
    assert_eq!(body, Ok(BodyKind::Chunked));
    assert!(
        text.ends_with("transfer-encoding: chunked\r\n\r\n"),
        "{text}"
    );
    let (text, body) = written(&post(&[("content-length", "12")]), false);
    assert_eq!(body, Ok(BodyKind::Length(12)));
    assert!(text.ends_with("content-length: 12\r\n\r\n"), "{text}");
    assert!(!text.contains("transfer-encoding"));
    let (_, body) = written(&post(&[("content-length", "12")]), true);
    assert!(matches!(body, Err(TranslateError::Malformed(_))));
    // A GET ending with its head gets no framing at all.
    let (text, _) = written(&request(&GET), true);
    assert!(!text.contains("content-length") && !text.contains("transfer-encoding"));
}

#[test]
fn bytes_that_would_break_the_http1_lines_are_refused() {
    for (name, value) in [
        (":path", "/a b"),
        (":path", "/a\tb"),
        (":method", "GE T"),
        (":method", "G(ET"),
        (":authority", "user@example.com"),
        (":authority", "exa mple.com"),
    ] {
        let mut fields = GET.to_vec();
        for field in &mut fields {
            if field.0 == name {
                field.1 = value;
            }
        }
        let (_, body) = written(&request(&fields), true);
        assert!(
            matches!(body, Err(TranslateError::Malformed(_))),
            "{name}: {value:?}"
        );
    }
    for value in [" padded", "padded\t"] {
        let mut fields = GET.to_vec();
        fields.push(("x-a", value));
        let (_, body) = written(&request(&fields), true);
        assert!(
            matches!(body, Err(TranslateError::Malformed(_))),
            "{value:?}"
        );
    }
}

#[test]
fn chunks_and_trailers_make_a_chunked_body() {
    let writer = ChunkWriter;
    let mut out = Vec::new();
    writer.data(b"hello", &mut out);
    writer.data(b"", &mut out);
    writer.data(&[b'x'; 300], &mut out);
    let trailers = head(
        &[("x-checksum", "abc"), ("te", "trailers")],
        BlockKind::Trailers,
    );
    writer
        .finish(Some(&trailers), &mut out)
        .expect("valid trailers");
    assert!(out.starts_with(b"5\r\nhello\r\n12c\r\nxxx"));
    assert!(out.ends_with(b"\r\n0\r\nx-checksum: abc\r\n\r\n"));
    let (body, used) = decode_all(&out).expect("a valid chunked body");
    assert_eq!(used, out.len());
    assert_eq!(body.len(), 305);
    let mut out = Vec::new();
    writer.finish(None, &mut out).expect("no trailers");
    assert_eq!(out, b"0\r\n\r\n");
}

/// A response as parts whose split does not matter: data merged, every end marked `Ended`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Informational(u16, Vec<(String, Vec<u8>)>),
    Head(u16, Vec<(String, Vec<u8>)>),
    Body(Vec<u8>),
    Trailers(Vec<(String, Vec<u8>)>),
    Ended,
}

fn listed(fields: &ResponseFields) -> Vec<(String, Vec<u8>)> {
    fields
        .iter()
        .map(|(n, v)| (String::from_utf8_lossy(n).into_owned(), v.to_vec()))
        .collect()
}

/// Feeds `pieces` one after another as a session's pipe would deliver them, `eof` with the
/// last, and lists what the reader returns.
fn read_pieces(head_request: bool, pieces: &[&[u8]]) -> Result<Vec<Seen>, ReadError> {
    let mut reader = H1ResponseReader::new(head_request);
    let mut buffer = Vec::new();
    let mut seen = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        buffer.extend_from_slice(piece);
        let eof = i + 1 == pieces.len();
        loop {
            let (used, part) = reader.next(&buffer, eof)?;
            assert!(used <= buffer.len());
            let Some(part) = part else {
                buffer.drain(..used);
                break;
            };
            match part {
                ResponsePart::Informational { status, fields } => {
                    seen.push(Seen::Informational(status, listed(&fields)))
                }
                ResponsePart::Head {
                    status,
                    fields,
                    end_stream,
                } => {
                    seen.push(Seen::Head(status, listed(&fields)));
                    if end_stream {
                        seen.push(Seen::Ended);
                    }
                }
                ResponsePart::Data { bytes, end_stream } => {
                    assert!(bytes.end <= used && !bytes.is_empty());
                    match seen.last_mut() {
                        Some(Seen::Body(body)) => body.extend_from_slice(&buffer[bytes]),
                        _ => seen.push(Seen::Body(buffer[bytes].to_vec())),
                    }
                    if end_stream {
                        seen.push(Seen::Ended);
                    }
                }
                ResponsePart::Trailers(fields) => {
                    seen.push(Seen::Trailers(listed(&fields)));
                    seen.push(Seen::Ended);
                }
                ResponsePart::End => seen.push(Seen::Ended),
            }
            assert_eq!(reader.is_finished(), seen.last() == Some(&Seen::Ended));
            buffer.drain(..used);
        }
    }
    Ok(seen)
}

fn read(head_request: bool, input: &[u8]) -> Result<Vec<Seen>, ReadError> {
    read_pieces(head_request, &[input])
}

fn f(name: &str, value: &str) -> (String, Vec<u8>) {
    (name.to_string(), value.as_bytes().to_vec())
}

#[test]
fn a_content_length_body() {
    let seen = read(
        false,
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
    );
    assert_eq!(
        seen,
        Ok(vec![
            Seen::Head(
                200,
                vec![f("content-type", "text/plain"), f("content-length", "5")]
            ),
            Seen::Body(b"hello".to_vec()),
            Seen::Ended,
        ])
    );
    // The last data carries the end: no empty DATA frame is needed.
    let mut reader = H1ResponseReader::new(false);
    let input = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
    let (used, _) = reader.next(input, false).expect("head");
    assert_eq!(
        reader.next(&input[used..], false),
        Ok((
            2,
            Some(ResponsePart::Data {
                bytes: 0..2,
                end_stream: true
            })
        ))
    );
    assert!(reader.is_finished());
    assert_eq!(reader.next(b"extra", true), Ok((0, None)));
}

#[test]
fn a_chunked_body_with_extensions_and_trailers() {
    let input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
        5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: 42\r\nContent-Length: 11\r\n\r\n";
    assert_eq!(
        read(false, input),
        Ok(vec![
            Seen::Head(200, vec![]),
            Seen::Body(b"hello world".to_vec()),
            Seen::Trailers(vec![f("x-checksum", "42")]),
            Seen::Ended,
        ])
    );
    let plain = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    assert_eq!(
        read(false, plain),
        Ok(vec![
            Seen::Head(200, vec![]),
            Seen::Body(b"abc".to_vec()),
            Seen::Ended,
        ])
    );
}

#[test]
fn a_close_delimited_body_ends_at_eof() {
    assert_eq!(
        read_pieces(
            false,
            &[
                b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nsome",
                b" bytes"
            ]
        ),
        Ok(vec![
            Seen::Head(200, vec![]),
            Seen::Body(b"some bytes".to_vec()),
            Seen::Ended,
        ])
    );
    assert_eq!(
        read_pieces(false, &[b"HTTP/1.1 200 OK\r\n\r\nall", b""]),
        Ok(vec![
            Seen::Head(200, vec![]),
            Seen::Body(b"all".to_vec()),
            Seen::Ended,
        ])
    );
}

#[test]
fn no_body_for_head_204_304_and_a_zero_length() {
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n";
    assert_eq!(
        read(true, head),
        Ok(vec![
            Seen::Head(200, vec![f("content-length", "1234")]),
            Seen::Ended
        ])
    );
    for input in [
        &b"HTTP/1.1 204 No Content\r\n\r\n"[..],
        b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 10\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    ] {
        let seen = read(false, input).expect("reads");
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert_eq!(seen[1], Seen::Ended);
    }
}

#[test]
fn informational_responses_come_before_the_final_one() {
    let input = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n\
        HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";
    assert_eq!(
        read(false, input),
        Ok(vec![
            Seen::Informational(100, vec![]),
            Seen::Informational(103, vec![f("link", "</s.css>; rel=preload")]),
            Seen::Head(201, vec![f("content-length", "2")]),
            Seen::Body(b"ok".to_vec()),
            Seen::Ended,
        ])
    );
    assert!(matches!(
        read(false, b"HTTP/1.1 101 Switching Protocols\r\n\r\n"),
        Err(ReadError::Malformed(_))
    ));
}

#[test]
fn hop_by_hop_fields_are_dropped_and_names_lowercased() {
    let input = b"HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Secret\r\nKeep-Alive: timeout=5\r\n\
        X-Secret: 1\r\nProxy-Connection: x\r\nUpgrade: h2c\r\nTE: trailers\r\nX-Kept: Yes\r\n\
        Content-Length: 0\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n";
    assert_eq!(
        read(false, input),
        Ok(vec![
            Seen::Head(
                200,
                vec![
                    f("x-kept", "Yes"),
                    f("content-length", "0"),
                    f("set-cookie", "a=1"),
                    f("set-cookie", "b=2"),
                ]
            ),
            Seen::Ended,
        ])
    );
}

#[test]
fn obs_text_in_a_value_is_kept_as_bytes() {
    let input = b"HTTP/1.1 200 OK\r\nX-Name: caf\xe9 \xff\r\nContent-Length: 0\r\n\r\n";
    let seen = read(false, input).expect("reads");
    let Seen::Head(_, fields) = &seen[0] else {
        panic!("{seen:?}")
    };
    assert_eq!(fields[0], ("x-name".to_string(), b"caf\xe9 \xff".to_vec()));
}

#[test]
fn a_response_cut_short_is_an_error() {
    for input in [
        &b""[..],
        b"HTTP/1.1 200 OK\r\nContent-Le",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\r\n",
    ] {
        assert_eq!(
            read(false, input),
            Err(ReadError::CutShort),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn bad_heads_and_framing_are_errors() {
    let mut big = b"HTTP/1.1 200 OK\r\n".to_vec();
    while big.len() <= MAX_RESPONSE_HEAD {
        big.extend_from_slice(b"X-Filler: ");
        big.extend_from_slice(&[b'f'; 400]);
        big.extend_from_slice(b"\r\n");
    }
    assert_eq!(read(false, &big), Err(ReadError::HeadTooLarge));
    for bad in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        b"HTTP/1.1 20 OK\r\n\r\n",
        b"SMTP ready\r\n\r\n",
    ] {
        assert!(
            matches!(read(false, bad), Err(ReadError::Malformed(_))),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    assert!(matches!(
        read(
            false,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n"
        ),
        Err(ReadError::Chunked(_))
    ));
    assert!(matches!(
        read(
            false,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: 1\n\r\n"
        ),
        Err(ReadError::Chunked(_))
    ));
}

#[test]
fn data_is_limited_to_what_the_window_takes() {
    let input =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n0\r\n\r\n";
    let mut reader = H1ResponseReader::new(false);
    let (mut at, _) = reader.next(input, false).expect("head");
    assert_eq!(reader.next_limited(&input[at..], false, 0), Ok((3, None)));
    at += 3;
    let mut body = Vec::new();
    while !reader.is_finished() {
        let (used, part) = reader.next_limited(&input[at..], true, 3).expect("reads");
        match part {
            Some(ResponsePart::Data { bytes, .. }) => {
                assert!(bytes.len() <= 3);
                body.extend_from_slice(&input[at..][bytes]);
            }
            Some(ResponsePart::End) => {}
            other => panic!("{other:?}"),
        }
        at += used;
    }
    assert_eq!(body, b"0123456789");
    assert_eq!(at, input.len());
}

/// Every response of the tests above, split at every byte boundary and in random pieces,
/// reads the same as whole.
#[test]
fn splits_do_not_change_what_is_read() {
    let inputs: [(&[u8], bool); 6] = [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello", false),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;e=1\r\nhello\r\n1\r\n!\r\n0\r\nX-T: 1\r\nX-U: 2\r\n\r\n",
            false,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n\r\n\n\r\n0\r\n\r\n",
            false,
        ),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nuntil close", false),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true),
        (b"HTTP/1.1 304 Not Modified\r\nETag: \"e\"\r\n\r\n", false),
    ];
    let mut rng = XorShift(0x5eed_1234_abcd_0001);
    for (input, head_request) in inputs {
        let whole = read(head_request, input).expect("reads");
        assert_eq!(whole.last(), Some(&Seen::Ended), "{whole:?}");
        for at in 0..=input.len() {
            let (a, b) = input.split_at(at);
            assert_eq!(
                read_pieces(head_request, &[a, b]).as_ref(),
                Ok(&whole),
                "at {at}"
            );
        }
        for _ in 0..200 {
            let mut pieces = Vec::new();
            let mut rest = input;
            while !rest.is_empty() {
                let n = 1 + rng.below(rest.len().min(12));
                pieces.push(&rest[..n]);
                rest = &rest[n..];
            }
            assert_eq!(read_pieces(head_request, &pieces).as_ref(), Ok(&whole));
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = XorShift(0xdead_beef_0bad_f00d);
    let prefixes: [&[u8]; 3] = [
        b"",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n",
    ];
    let alphabet = b"0123456789abcdefHTP/. :;\r\n\r\nXx\t\x00\xff";
    for round in 0..20_000 {
        let mut input = prefixes[round % prefixes.len()].to_vec();
        for _ in 0..rng.below(80) {
            let b = if rng.below(2) == 0 {
                alphabet[rng.below(alphabet.len())]
            } else {
                rng.next() as u8
            };
            input.push(b);
        }
        let mut pieces = Vec::new();
        let mut rest = &input[..];
        while !rest.is_empty() {
            let n = 1 + rng.below(rest.len().min(9));
            pieces.push(&rest[..n]);
            rest = &rest[n..];
        }
        let _ = read_pieces(round % 7 == 0, &pieces);
    }
}

/// Whatever bytes HPACK carried, what is written is either refused or read back by an HTTP/1
/// parser as exactly the request meant: no field, line or request smuggled in.
#[test]
fn random_heads_are_refused_or_read_back_exactly() {
    let mut rng = XorShift(0x0123_4567_89ab_cdef);
    let alphabet = b"aaaaZZ0099--__..//::;;,, \t\"()@?=&%\x00\r\n\x7f\x80\xff";
    let random = |rng: &mut XorShift, max: usize| -> String {
        let bytes: Vec<u8> = (0..rng.below(max))
            .map(|_| alphabet[rng.below(alphabet.len())])
            .collect();
        // HPACK strings are bytes; the test's encoder takes &str, so keep to what it can carry.
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let (mut written, mut refused, mut read_back) = (0, 0, 0);
    for _ in 0..5_000 {
        let path = format!("/{}", random(&mut rng, 6));
        let authority = random(&mut rng, 5);
        let value = random(&mut rng, 6);
        let name = ["x-a", "accept", "x-b", "user-agent", "x-c:", "x d", "x(e)"][rng.below(7)];
        let fields = [
            (":method", "GET"),
            (":scheme", "https"),
            (":path", path.as_str()),
            (":authority", authority.as_str()),
            (name, value.as_str()),
        ];
        let mut encoder = Encoder::default();
        let mut block = Vec::new();
        encoder.begin_block(&mut block);
        for (n, v) in fields {
            encoder.encode_field(n.as_bytes(), v.as_bytes(), Indexing::Without, &mut block);
        }
        let mut decoded = DecodedHeaders::new();
        Decoder::new(4096, 64 * 1024)
            .decode(&block, &mut decoded)
            .expect("decodes");
        let Ok(head) = validate(&decoded, BlockKind::Request) else {
            refused += 1;
            continue;
        };
        let mut out = Vec::new();
        if write_h1_request(&head, true, &mut out).is_err() {
            refused += 1;
            continue;
        }
        written += 1;
        let mut headers = [httparse::EMPTY_HEADER; 8];
        let mut req = httparse::Request::new(&mut headers);
        let Ok(httparse::Status::Complete(len)) = req.parse(&out) else {
            // Refused by the HTTP/1 side (a 400): not read as another request.
            continue;
        };
        assert_eq!(len, out.len(), "{:?}", String::from_utf8_lossy(&out));
        assert_eq!(req.method, Some("GET"));
        assert_eq!(req.path.map(str::as_bytes), Some(head.path()));
        let read: Vec<(&str, &[u8])> = req.headers.iter().map(|h| (h.name, h.value)).collect();
        assert_eq!(read[0], ("host", head.authority().expect("authority")));
        assert_eq!(read.len(), 2, "{:?}", String::from_utf8_lossy(&out));
        assert_eq!(read[1].0.as_bytes(), name.as_bytes());
        assert_eq!(read[1].1, value.as_bytes());
        read_back += 1;
    }
    assert!(
        written > 200 && refused > 200 && read_back > 100,
        "{written} written ({read_back} read back), {refused} refused"
    );
    eprintln!("{written} written ({read_back} read back), {refused} refused");
}

#[test]
fn a_chunked_body_s_plain_end_rides_on_its_last_data() {
    let input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    let mut reader = H1ResponseReader::new(false);
    let (head, _) = reader.next(input, false).expect("head");
    // The size line, the data, and the plain end after it, in one part.
    assert_eq!(
        reader.next(&input[head..], false),
        Ok((
            3 + 3 + 7,
            Some(ResponsePart::Data {
                bytes: 3..6,
                end_stream: true
            })
        ))
    );
    assert!(reader.is_finished());
}
