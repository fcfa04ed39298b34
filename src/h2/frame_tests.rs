//! Frame codec tests: each frame type parsed and written, each error, the assembler's bounds,
//! and random splits of a valid frame sequence.

use super::*;
use crate::h2::test_rng::XorShift;

const MAX: u32 = DEFAULT_MAX_FRAME_SIZE;

fn raw(frame_type: u8, flags: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    write_frame_header(&mut out, payload.len(), frame_type, flags, stream_id);
    out.extend_from_slice(payload);
    out
}

fn one(buf: &[u8]) -> Frame<'_> {
    match parse_frame(buf, MAX) {
        Ok(Parsed::Frame { frame, consumed }) => {
            assert_eq!(consumed, buf.len());
            frame
        }
        other => panic!("not a frame: {other:?}"),
    }
}

fn conn_code(buf: &[u8]) -> ErrorCode {
    match parse_frame(buf, MAX) {
        Err(e) => e.code,
        other => panic!("not a connection error: {other:?}"),
    }
}

fn stream_code(buf: &[u8]) -> (u32, ErrorCode) {
    match parse_frame(buf, MAX) {
        Ok(Parsed::StreamError { error, consumed }) => {
            assert_eq!(consumed, buf.len());
            (error.stream_id, error.code)
        }
        other => panic!("not a stream error: {other:?}"),
    }
}

#[test]
fn preface() {
    assert_eq!(check_client_preface(b""), Ok(None));
    assert_eq!(check_client_preface(b"PRI * HTTP/2"), Ok(None));
    assert_eq!(check_client_preface(CLIENT_PREFACE), Ok(Some(24)));
    let mut more = CLIENT_PREFACE.to_vec();
    more.extend_from_slice(&[0, 0, 0, 4]);
    assert_eq!(check_client_preface(&more), Ok(Some(24)));
    assert!(check_client_preface(b"GET / HTTP/1.1\r\n").is_err());
    assert!(check_client_preface(b"PRI * HTTP/2.0\r\n\r\nXX").is_err());
}

#[test]
fn incomplete_until_whole() {
    let mut buf = Vec::new();
    write_data(&mut buf, 1, b"hello", true);
    for cut in 0..buf.len() {
        assert_eq!(
            parse_frame(&buf[..cut], MAX),
            Ok(Parsed::Incomplete),
            "cut {cut}"
        );
    }
}

#[test]
fn data_plain_padded_and_errors() {
    let mut buf = Vec::new();
    write_data(&mut buf, 3, b"abc", true);
    assert_eq!(
        one(&buf),
        Frame::Data {
            stream_id: 3,
            end_stream: true,
            data: b"abc",
            flow_len: 3
        }
    );
    // Padded: pad length 2, "abc", two zero bytes. Flow control counts all 6.
    let padded = raw(kind::DATA, flag::PADDED, 3, &[2, b'a', b'b', b'c', 0, 0]);
    assert_eq!(
        one(&padded),
        Frame::Data {
            stream_id: 3,
            end_stream: false,
            data: b"abc",
            flow_len: 6
        }
    );
    assert_eq!(
        conn_code(&raw(kind::DATA, 0, 0, b"x")),
        ErrorCode::PROTOCOL_ERROR
    );
    // Padding as long as the rest of the payload, and longer.
    assert_eq!(
        conn_code(&raw(kind::DATA, flag::PADDED, 1, &[3, 0, 0])),
        ErrorCode::PROTOCOL_ERROR
    );
    assert!(matches!(
        one(&raw(kind::DATA, flag::PADDED, 1, &[2, 0, 0])),
        Frame::Data {
            data: b"",
            flow_len: 3,
            ..
        }
    ));
    assert_eq!(
        conn_code(&raw(kind::DATA, flag::PADDED, 1, &[])),
        ErrorCode::FRAME_SIZE_ERROR
    );
}

#[test]
fn headers_with_padding_and_priority() {
    let payload = [
        1, // pad length
        0x80, 0, 0, 5,  // exclusive, depends on 5
        15, // weight
        0x82, 0x84, // fragment
        0,    // padding
    ];
    let buf = raw(
        kind::HEADERS,
        flag::PADDED | flag::PRIORITY | flag::END_HEADERS,
        7,
        &payload,
    );
    assert_eq!(
        one(&buf),
        Frame::Headers {
            stream_id: 7,
            end_stream: false,
            end_headers: true,
            priority: Some(Priority {
                exclusive: true,
                depends_on: 5,
                weight: 15
            }),
            fragment: &[0x82, 0x84],
        }
    );
    assert_eq!(
        conn_code(&raw(kind::HEADERS, flag::END_HEADERS, 0, &[0x82])),
        ErrorCode::PROTOCOL_ERROR
    );
    assert_eq!(
        conn_code(&raw(kind::HEADERS, flag::PRIORITY, 1, &[0, 0, 0])),
        ErrorCode::FRAME_SIZE_ERROR
    );
    assert_eq!(
        conn_code(&raw(kind::HEADERS, flag::PADDED, 1, &[5, 0x82])),
        ErrorCode::PROTOCOL_ERROR
    );
}

#[test]
fn priority_frame_and_its_stream_errors() {
    let mut buf = Vec::new();
    let p = Priority {
        exclusive: false,
        depends_on: 3,
        weight: 200,
    };
    write_priority(&mut buf, 5, p);
    assert_eq!(
        one(&buf),
        Frame::Priority {
            stream_id: 5,
            priority: p
        }
    );
    assert_eq!(
        stream_code(&raw(kind::PRIORITY, 0, 5, &[0, 0, 0, 5, 1])),
        (5, ErrorCode::PROTOCOL_ERROR)
    );
    assert_eq!(
        stream_code(&raw(kind::PRIORITY, 0, 5, &[0, 0, 0, 1])),
        (5, ErrorCode::FRAME_SIZE_ERROR)
    );
    assert_eq!(
        conn_code(&raw(kind::PRIORITY, 0, 0, &[0, 0, 0, 1, 1])),
        ErrorCode::PROTOCOL_ERROR
    );
}

#[test]
fn rst_stream() {
    let mut buf = Vec::new();
    write_rst_stream(&mut buf, 9, ErrorCode::CANCEL);
    assert_eq!(
        one(&buf),
        Frame::RstStream {
            stream_id: 9,
            code: ErrorCode::CANCEL
        }
    );
    // An unknown code is kept as it is.
    assert_eq!(
        one(&raw(kind::RST_STREAM, 0, 9, &[0, 0, 1, 0])),
        Frame::RstStream {
            stream_id: 9,
            code: ErrorCode(256)
        }
    );
    assert_eq!(
        conn_code(&raw(kind::RST_STREAM, 0, 0, &[0; 4])),
        ErrorCode::PROTOCOL_ERROR
    );
    assert_eq!(
        conn_code(&raw(kind::RST_STREAM, 0, 1, &[0; 3])),
        ErrorCode::FRAME_SIZE_ERROR
    );
}

#[test]
fn settings_and_ack() {
    let mut buf = Vec::new();
    write_settings(&mut buf, &[(3, 100), (4, 1 << 20)]);
    let Frame::Settings { ack: false, params } = one(&buf) else {
        panic!("SETTINGS");
    };
    assert_eq!(params.len(), 12);
    buf.clear();
    write_settings_ack(&mut buf);
    assert_eq!(
        one(&buf),
        Frame::Settings {
            ack: true,
            params: &[]
        }
    );
    assert_eq!(
        conn_code(&raw(kind::SETTINGS, flag::ACK, 0, &[0; 6])),
        ErrorCode::FRAME_SIZE_ERROR
    );
    assert_eq!(
        conn_code(&raw(kind::SETTINGS, 0, 0, &[0; 5])),
        ErrorCode::FRAME_SIZE_ERROR
    );
    assert_eq!(
        conn_code(&raw(kind::SETTINGS, 0, 1, &[])),
        ErrorCode::PROTOCOL_ERROR
    );
}

#[test]
fn push_promise_is_refused() {
    assert_eq!(
        conn_code(&raw(
            kind::PUSH_PROMISE,
            flag::END_HEADERS,
            1,
            &[0, 0, 0, 2]
        )),
        ErrorCode::PROTOCOL_ERROR
    );
}

#[test]
fn ping() {
    let mut buf = Vec::new();
    write_ping(&mut buf, *b"12345678", false);
    assert_eq!(
        one(&buf),
        Frame::Ping {
            ack: false,
            payload: *b"12345678"
        }
    );
    buf.clear();
    write_ping(&mut buf, *b"12345678", true);
    assert_eq!(
        one(&buf),
        Frame::Ping {
            ack: true,
            payload: *b"12345678"
        }
    );
    assert_eq!(
        conn_code(&raw(kind::PING, 0, 0, &[0; 7])),
        ErrorCode::FRAME_SIZE_ERROR
    );
    assert_eq!(
        conn_code(&raw(kind::PING, 0, 0, &[0; 9])),
        ErrorCode::FRAME_SIZE_ERROR
    );
    assert_eq!(
        conn_code(&raw(kind::PING, 0, 1, &[0; 8])),
        ErrorCode::PROTOCOL_ERROR
    );
}

#[test]
fn goaway() {
    let mut buf = Vec::new();
    write_goaway(&mut buf, 41, ErrorCode::ENHANCE_YOUR_CALM, b"calm");
    assert_eq!(
        one(&buf),
        Frame::GoAway {
            last_stream_id: 41,
            code: ErrorCode::ENHANCE_YOUR_CALM,
            debug_data: b"calm"
        }
    );
    assert_eq!(
        conn_code(&raw(kind::GOAWAY, 0, 0, &[0; 7])),
        ErrorCode::FRAME_SIZE_ERROR
    );
    assert_eq!(
        conn_code(&raw(kind::GOAWAY, 0, 3, &[0; 8])),
        ErrorCode::PROTOCOL_ERROR
    );
}

#[test]
fn window_update() {
    let mut buf = Vec::new();
    write_window_update(&mut buf, 0, 1 << 20);
    assert_eq!(
        one(&buf),
        Frame::WindowUpdate {
            stream_id: 0,
            increment: 1 << 20
        }
    );
    // The reserved bit of the increment is ignored.
    assert_eq!(
        one(&raw(kind::WINDOW_UPDATE, 0, 1, &[0x80, 0, 0, 1])),
        Frame::WindowUpdate {
            stream_id: 1,
            increment: 1
        }
    );
    assert_eq!(
        conn_code(&raw(kind::WINDOW_UPDATE, 0, 0, &[0; 4])),
        ErrorCode::PROTOCOL_ERROR
    );
    assert_eq!(
        stream_code(&raw(kind::WINDOW_UPDATE, 0, 3, &[0; 4])),
        (3, ErrorCode::PROTOCOL_ERROR)
    );
    assert_eq!(
        conn_code(&raw(kind::WINDOW_UPDATE, 0, 3, &[0; 5])),
        ErrorCode::FRAME_SIZE_ERROR
    );
}

#[test]
fn continuation_and_unknown_and_reserved_bit() {
    let mut buf = Vec::new();
    write_continuation(&mut buf, 1, b"xy", true);
    assert_eq!(
        one(&buf),
        Frame::Continuation {
            stream_id: 1,
            end_headers: true,
            fragment: b"xy"
        }
    );
    assert_eq!(
        conn_code(&raw(kind::CONTINUATION, 0, 0, b"")),
        ErrorCode::PROTOCOL_ERROR
    );
    assert_eq!(
        one(&raw(0xfa, 0xff, 3, b"whatever")),
        Frame::Unknown {
            frame_type: 0xfa,
            stream_id: 3
        }
    );
    // The reserved bit of the stream id is ignored.
    assert_eq!(
        one(&raw(kind::RST_STREAM, 0, 0x8000_0005, &[0, 0, 0, 8])),
        Frame::RstStream {
            stream_id: 5,
            code: ErrorCode::CANCEL
        }
    );
}

#[test]
fn frame_size_is_checked_from_the_header_alone() {
    let mut header = Vec::new();
    write_frame_header(&mut header, MAX as usize + 1, kind::DATA, 0, 1);
    assert_eq!(conn_code(&header), ErrorCode::FRAME_SIZE_ERROR);
    let mut big = Vec::new();
    write_data(&mut big, 1, &vec![0; MAX as usize], false);
    assert!(matches!(one(&big), Frame::Data { flow_len, .. } if flow_len == MAX));
    // A larger advertised maximum admits it.
    assert!(matches!(
        parse_frame(&header, 1 << 20),
        Ok(Parsed::Incomplete)
    ));
}

#[test]
fn headers_written_across_continuations_assemble_back() {
    let block: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
    let mut buf = Vec::new();
    write_headers(&mut buf, 5, &block, true, MAX);
    let mut assembler = HeaderBlockAssembler::new(HeaderBlockLimits::default());
    let mut at = 0;
    let mut frames = 0;
    loop {
        let Ok(Parsed::Frame { frame, consumed }) = parse_frame(&buf[at..], MAX) else {
            panic!("frame");
        };
        at += consumed;
        frames += 1;
        match assembler.accept(frame).expect("accepted") {
            Assembled::Pending => continue,
            Assembled::Block(b) => {
                assert_eq!(b.stream_id, 5);
                assert!(b.end_stream);
                assert_eq!(b.block, &block[..]);
                break;
            }
            Assembled::Other(f) => panic!("{f:?}"),
        }
    }
    assert_eq!(frames, 3);
    assert_eq!(at, buf.len());
    assert_eq!(assembler.open_stream(), None);
}

fn headers(stream_id: u32, end_headers: bool, fragment: &[u8]) -> Frame<'_> {
    Frame::Headers {
        stream_id,
        end_stream: false,
        end_headers,
        priority: None,
        fragment,
    }
}

fn continuation(stream_id: u32, end_headers: bool, fragment: &[u8]) -> Frame<'_> {
    Frame::Continuation {
        stream_id,
        end_headers,
        fragment,
    }
}

#[test]
fn assembler_refuses_stray_and_interleaved_frames() {
    let mut a = HeaderBlockAssembler::new(HeaderBlockLimits::default());
    let err = a
        .accept(continuation(1, true, b"x"))
        .expect_err("no HEADERS");
    assert_eq!(err.code, ErrorCode::PROTOCOL_ERROR);

    let mut a = HeaderBlockAssembler::new(HeaderBlockLimits::default());
    assert_eq!(a.accept(headers(1, false, b"a")), Ok(Assembled::Pending));
    let err = a
        .accept(continuation(3, true, b"b"))
        .expect_err("another stream");
    assert_eq!(err.code, ErrorCode::PROTOCOL_ERROR);

    let mut a = HeaderBlockAssembler::new(HeaderBlockLimits::default());
    assert_eq!(a.accept(headers(1, false, b"a")), Ok(Assembled::Pending));
    let ping = Frame::Ping {
        ack: false,
        payload: [0; 8],
    };
    assert_eq!(
        a.accept(ping).expect_err("inside a block").code,
        ErrorCode::PROTOCOL_ERROR
    );

    // Idle: other frames pass through; a one-frame block is borrowed as it is.
    let mut a = HeaderBlockAssembler::new(HeaderBlockLimits::default());
    assert_eq!(a.accept(ping), Ok(Assembled::Other(ping)));
    let Ok(Assembled::Block(b)) = a.accept(headers(1, true, b"whole")) else {
        panic!("block");
    };
    assert_eq!(b.block, b"whole");
}

/// The 2024 CONTINUATION flood: endless CONTINUATION frames, with and without bytes. The bound
/// trips and the buffer never grew past it.
#[test]
fn continuation_flood_trips_the_bound_before_memory_grows() {
    let limits = HeaderBlockLimits {
        max_block_len: 16 * 1024,
        max_continuations: 1_000_000,
    };
    let mut a = HeaderBlockAssembler::new(limits);
    assert_eq!(
        a.accept(headers(1, false, &[0; 1000])),
        Ok(Assembled::Pending)
    );
    let chunk = [0u8; 1000];
    let mut accepted = 0;
    let err = loop {
        match a.accept(continuation(1, false, &chunk)) {
            Ok(Assembled::Pending) => accepted += 1,
            Ok(other) => panic!("{other:?}"),
            Err(e) => break e,
        }
    };
    assert_eq!(err.code, ErrorCode::ENHANCE_YOUR_CALM);
    assert_eq!(accepted, 15);
    assert!(a.buf.capacity() <= 2 * limits.max_block_len);

    // Empty CONTINUATIONs grow nothing, so their number is what is bounded.
    let mut a = HeaderBlockAssembler::new(HeaderBlockLimits::default());
    assert_eq!(a.accept(headers(1, false, b"")), Ok(Assembled::Pending));
    let mut accepted = 0;
    let err = loop {
        match a.accept(continuation(1, false, b"")) {
            Ok(_) => accepted += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(err.code, ErrorCode::ENHANCE_YOUR_CALM);
    assert_eq!(accepted, HeaderBlockLimits::default().max_continuations);

    // A single HEADERS over the bound.
    let mut a = HeaderBlockAssembler::new(limits);
    let big = vec![0u8; 16 * 1024 + 1];
    assert_eq!(
        a.accept(headers(1, true, &big))
            .expect_err("too large")
            .code,
        ErrorCode::ENHANCE_YOUR_CALM
    );
}

/// A valid sequence of every frame type pibl writes, fed in random pieces: the same frames come
/// back in the same order, whatever the splits.
#[test]
fn random_splits_give_back_the_same_frames() {
    let mut stream = Vec::new();
    write_settings(&mut stream, &[(3, 100), (4, 65_535)]);
    write_settings_ack(&mut stream);
    write_headers(&mut stream, 1, &[0x82; 20_000], false, MAX);
    write_data(&mut stream, 1, &[7; 5000], false);
    write_data(&mut stream, 1, b"", true);
    write_priority(
        &mut stream,
        3,
        Priority {
            exclusive: false,
            depends_on: 1,
            weight: 16,
        },
    );
    write_window_update(&mut stream, 0, 1000);
    write_ping(&mut stream, [1; 8], false);
    write_rst_stream(&mut stream, 1, ErrorCode::CANCEL);
    stream.extend_from_slice(&raw(0x42, 0, 0, b"extension"));
    write_goaway(&mut stream, 3, ErrorCode::NO_ERROR, b"");

    let whole = parse_all(&stream, &mut XorShift(1), false);
    assert_eq!(whole.len(), 12);
    let mut rng = XorShift(0x1234_5678);
    for _ in 0..300 {
        assert_eq!(parse_all(&stream, &mut rng, true), whole);
    }
}

/// Parses `input` delivered in random pieces into a connection-style buffer; returns each
/// frame's debug text.
fn parse_all(input: &[u8], rng: &mut XorShift, split: bool) -> Vec<String> {
    let mut buf: Vec<u8> = Vec::new();
    let mut frames = Vec::new();
    let mut fed = 0;
    while fed < input.len() || !buf.is_empty() {
        let piece = if split {
            1 + rng.below(3000)
        } else {
            input.len()
        };
        let end = (fed + piece).min(input.len());
        buf.extend_from_slice(&input[fed..end]);
        fed = end;
        loop {
            match parse_frame(&buf, MAX) {
                Ok(Parsed::Frame { frame, consumed }) => {
                    frames.push(format!("{frame:?}"));
                    buf.drain(..consumed);
                }
                Ok(Parsed::Incomplete) => break,
                other => panic!("{other:?}"),
            }
        }
        if fed == input.len() && !buf.is_empty() {
            panic!("bytes left over");
        }
    }
    frames
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = XorShift(99);
    let mut buf = Vec::new();
    for _ in 0..50_000 {
        buf.clear();
        let len = rng.below(40);
        buf.extend((0..len).map(|_| rng.next() as u8));
        if buf.len() >= 9 {
            // Small lengths and known types, so payload checks run.
            buf[0] = 0;
            buf[1] = 0;
            buf[2] = rng.below(32) as u8;
            buf[3] = rng.below(11) as u8;
        }
        let mut assembler = HeaderBlockAssembler::new(HeaderBlockLimits::default());
        if let Ok(Parsed::Frame { frame, consumed }) = parse_frame(&buf, MAX) {
            assert!(consumed <= buf.len());
            let _ = assembler.accept(frame);
        }
    }
}
