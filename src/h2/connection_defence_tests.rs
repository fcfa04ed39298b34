//! The h2 connection's defences, driven by the test client of `connection_tests.rs`: too many
//! streams, rapid reset, SETTINGS/PING floods, a full output, CONTINUATION floods and HPACK
//! bombs, window errors, random input.

use super::tests::*;
use super::*;
use crate::h2::frame::{
    kind, write_continuation, write_frame_header, write_rst_stream, write_settings,
    write_window_update,
};
use crate::h2::test_rng::XorShift;
#[test]
fn too_many_streams_are_refused() {
    let config = H2Config {
        settings: Settings {
            max_concurrent_streams: Some(2),
            ..H2Config::default().settings
        },
        ..H2Config::default()
    };
    let mut conn = H2Connection::new(config);
    let mut client = Client::new();
    let mut reader = Reader::new();
    for id in [1, 3, 5] {
        client.get(id, "/");
    }
    feed(&mut conn, &client.take()).expect("ok");
    assert_eq!(events(&mut conn).len(), 2);
    assert_eq!(
        reset_code(&reader.read(&mut conn), 5),
        Some(ErrorCode::REFUSED_STREAM)
    );
    // Once one finishes, a new stream is accepted.
    conn.send_response_head(1, 200, &[], true).expect("1");
    client.get(7, "/");
    feed(&mut conn, &client.take()).expect("ok");
    assert!(matches!(
        events(&mut conn)[..],
        [Event::Request { stream: 7, .. }]
    ));
}

#[test]
fn rapid_reset_ends_the_connection() {
    let (mut conn, mut client, mut reader) = started();
    let limit = H2Config::default().max_resets_per_window;
    let mut id = 1;
    let mut result = Ok(());
    for _ in 0..=limit {
        client.get(id, "/");
        write_rst_stream(&mut client.bytes, id, ErrorCode::CANCEL);
        id += 2;
        result = feed(&mut conn, &client.take());
        reader.read(&mut conn);
        if result.is_err() {
            break;
        }
    }
    assert_eq!(
        result.map_err(|e| e.code),
        Err(ErrorCode::ENHANCE_YOUR_CALM)
    );
    // Under the limit with a new window each time, the connection lives.
    let (mut conn, mut client, mut reader) = started();
    for i in 0..(3 * limit) {
        if i % limit == 0 {
            conn.start_rate_window();
        }
        client.get(2 * i + 1, "/");
        write_rst_stream(&mut client.bytes, 2 * i + 1, ErrorCode::CANCEL);
        feed(&mut conn, &client.take()).expect("within the limit");
        reader.read(&mut conn);
        let ev = events(&mut conn);
        assert!(matches!(
            ev[1],
            Event::Reset {
                code: ErrorCode::CANCEL,
                ..
            }
        ));
    }
}

#[test]
fn ping_and_settings_floods_with_the_output_not_drained() {
    for settings in [false, true] {
        let (mut conn, mut client, mut reader) = started();
        for _ in 0..1000 {
            if settings {
                write_settings(&mut client.bytes, &[]);
            } else {
                write_ping(&mut client.bytes, [0; 8], false);
            }
        }
        // The caller never writes the output out.
        assert_eq!(
            feed(&mut conn, &client.take()).map_err(|e| e.code),
            Err(ErrorCode::ENHANCE_YOUR_CALM)
        );
        assert!(conn.output().len() < 2048);
        assert_eq!(
            goaway_code(&reader.read(&mut conn)),
            Some(ErrorCode::ENHANCE_YOUR_CALM)
        );
    }
    // Drained as it goes, the same pings are fine.
    let (mut conn, mut client, mut reader) = started();
    for _ in 0..1000 {
        write_ping(&mut client.bytes, [0; 8], false);
        feed(&mut conn, &client.take()).expect("ok");
        reader.read(&mut conn);
    }
}

#[test]
fn receive_stops_while_the_output_is_full() {
    let config = H2Config {
        max_output: 1024,
        max_queued_acks: usize::MAX,
        ..H2Config::default()
    };
    let mut conn = H2Connection::new(config);
    let mut client = Client::new();
    for _ in 0..1000 {
        write_ping(&mut client.bytes, [0; 8], false);
    }
    let bytes = client.take();
    let n = conn.receive(&bytes).expect("ok");
    assert!(n < bytes.len());
    assert!(conn.output().len() < 1024 + 17);
    let out = conn.output().len();
    conn.advance_output(out);
    let more = conn.receive(&bytes[n..]).expect("ok");
    assert!(more > 0);
}

#[test]
fn continuation_flood_and_hpack_bomb() {
    let (mut conn, mut client, _) = started();
    let block = client.block(&request("GET", "/"));
    write_frame_header(&mut client.bytes, block.len(), kind::HEADERS, 0, 1);
    client.bytes.extend_from_slice(&block);
    for _ in 0..100 {
        write_continuation(&mut client.bytes, 1, &[], false);
    }
    assert_eq!(
        feed(&mut conn, &client.take()).map_err(|e| e.code),
        Err(ErrorCode::ENHANCE_YOUR_CALM)
    );
    // One 4 KiB entry indexed then referenced many times: past the header list bound.
    let (mut conn, mut client, _) = started();
    let big = "v".repeat(3000);
    let mut fields = request("GET", "/");
    fields.push(("x-bomb", &big));
    let mut block = client.block(&fields);
    for _ in 0..50 {
        block.push(0x80 | 62);
    }
    write_headers(&mut client.bytes, 1, &block, true, 16_384);
    assert_eq!(
        feed(&mut conn, &client.take()).map_err(|e| e.code),
        Err(ErrorCode::ENHANCE_YOUR_CALM)
    );
}

#[test]
fn rst_and_window_errors() {
    let (mut conn, mut client, mut reader) = started();
    client.headers(1, &request("POST", "/"), false);
    feed(&mut conn, &client.take()).expect("ok");
    events(&mut conn);
    // WINDOW_UPDATE past 2^31-1 on the stream: a stream FLOW_CONTROL_ERROR.
    let mut wu = Vec::new();
    write_window_update(&mut wu, 1, 0x7fff_ffff);
    feed(&mut conn, &wu).expect("stream error");
    assert_eq!(
        reset_code(&reader.read(&mut conn), 1),
        Some(ErrorCode::FLOW_CONTROL_ERROR)
    );
    // DATA after the reset is ignored; RST_STREAM on an idle stream is a connection error.
    let mut d = Vec::new();
    write_data(&mut d, 1, b"late", false);
    feed(&mut conn, &d).expect("ignored");
    let mut r = Vec::new();
    write_rst_stream(&mut r, 9, ErrorCode::CANCEL);
    assert!(feed(&mut conn, &r).is_err());
    // A HEADERS after END_STREAM (not trailers-shaped) is STREAM_CLOSED.
    let (mut conn, mut client, mut reader) = started();
    client.get(1, "/");
    client.headers(1, &[("x", "y")], true);
    feed(&mut conn, &client.take()).expect("ok");
    assert_eq!(
        reset_code(&reader.read(&mut conn), 1),
        Some(ErrorCode::STREAM_CLOSED)
    );
}

#[test]
fn graceful_goaway_lets_earlier_streams_finish() {
    let (mut conn, mut client, mut reader) = started();
    client.get(1, "/");
    feed(&mut conn, &client.take()).expect("ok");
    events(&mut conn);
    conn.go_away(conn.last_client_stream(), ErrorCode::NO_ERROR);
    client.get(3, "/");
    feed(&mut conn, &client.take()).expect("ok");
    assert!(events(&mut conn).is_empty(), "stream 3 ignored");
    assert!(!conn.is_finished());
    conn.send_response_head(1, 200, &[], true)
        .expect("1 finishes");
    assert!(conn.is_finished());
    let out = reader.read(&mut conn);
    assert_eq!(
        out[0],
        Out::GoAway {
            last: 1,
            code: ErrorCode::NO_ERROR
        }
    );
    // The client's GOAWAY is an event.
    let (mut conn, _, _) = started();
    let mut g = Vec::new();
    write_goaway(&mut g, 0, ErrorCode::NO_ERROR, b"bye");
    feed(&mut conn, &g).expect("ok");
    assert_eq!(
        events(&mut conn),
        vec![Event::GoAway {
            last_stream_id: 0,
            code: ErrorCode::NO_ERROR
        }]
    );
}

/// A conversation fed in random splits gives the same events as in one piece.
#[test]
fn random_splits_give_the_same_events() {
    let mut client = Client::new();
    let mut fields = request("POST", "/p");
    fields.push(("content-length", "30000"));
    client.headers(1, &fields, false);
    client.get(3, "/g");
    write_data(&mut client.bytes, 1, &[5u8; 16_000], false);
    write_ping(&mut client.bytes, [9; 8], false);
    write_data(&mut client.bytes, 1, &[6u8; 14_000], true);
    client.headers(5, &request("GET", "/h"), true);
    let bytes = client.take();
    let summarize = |conn: &mut H2Connection, into: &mut Vec<(u32, usize, bool)>| {
        while let Some(ev) = conn.poll_event() {
            into.push(match ev {
                Event::Request {
                    stream, end_stream, ..
                } => (stream, 0, end_stream),
                Event::Data {
                    stream,
                    bytes,
                    end_stream,
                } => (stream, bytes.len(), end_stream),
                other => panic!("{other:?}"),
            });
        }
    };
    let mut whole = H2Connection::new(H2Config::default());
    feed(&mut whole, &bytes).expect("ok");
    let mut expected = Vec::new();
    summarize(&mut whole, &mut expected);
    let mut rng = XorShift(0x5eed);
    for _ in 0..200 {
        let mut conn = H2Connection::new(H2Config::default());
        let mut got = Vec::new();
        let mut buffered = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let step = 1 + rng.below(3000);
            let end = (at + step).min(bytes.len());
            buffered.extend_from_slice(&bytes[at..end]);
            at = end;
            let n = conn.receive(&buffered).expect("ok");
            buffered.drain(..n);
            summarize(&mut conn, &mut got);
        }
        assert!(buffered.is_empty());
        assert_eq!(got, expected);
    }
}

/// Random bytes after a valid start never panic and never grow the output past its bound.
#[test]
fn random_frames_never_panic() {
    let mut rng = XorShift(0xbad5eed);
    for _ in 0..2000 {
        let (mut conn, mut client, _) = started();
        client.get(1, "/");
        let mut bytes = client.take();
        for _ in 0..rng.below(8) {
            let len = rng.below(40);
            let frame_type = rng.below(11) as u8;
            let flags = rng.next() as u8;
            let stream = rng.below(8) as u32;
            write_frame_header(&mut bytes, len, frame_type, flags, stream);
            for _ in 0..len {
                bytes.push(rng.next() as u8);
            }
        }
        let _ = feed(&mut conn, &bytes);
        while conn.poll_event().is_some() {}
        assert!(conn.output().len() < H2Config::default().max_output + 1024);
    }
}

#[test]
fn invalid_requests_in_a_loop_count_as_resets() {
    let (mut conn, mut client, mut reader) = started();
    let limit = H2Config::default().max_resets_per_window;
    let mut result = Ok(());
    for i in 0..=limit {
        client.headers(2 * i + 1, &[(":method", "GET")], true);
        result = feed(&mut conn, &client.take());
        reader.read(&mut conn);
        if result.is_err() {
            break;
        }
    }
    assert_eq!(
        result.map_err(|e| e.code),
        Err(ErrorCode::ENHANCE_YOUR_CALM)
    );
}

#[test]
fn frames_on_a_stream_pibl_reset_are_ignored() {
    let (mut conn, mut client, mut reader) = started();
    client.headers(1, &request("POST", "/"), false);
    feed(&mut conn, &client.take()).expect("ok");
    events(&mut conn);
    conn.reset(1, ErrorCode::CANCEL);
    assert_eq!(
        reset_code(&reader.read(&mut conn), 1),
        Some(ErrorCode::CANCEL)
    );
    // The client's body and trailers were already on their way.
    write_data(&mut client.bytes, 1, b"late", false);
    client.headers(1, &[("x-trailer", "1")], true);
    feed(&mut conn, &client.take()).expect("ignored");
    assert!(events(&mut conn).is_empty());
    assert_eq!(conn.stream_state(1), StreamState::Closed);
}

#[test]
fn empty_data_frames_flood() {
    let (mut conn, mut client, _) = started();
    client.headers(1, &request("POST", "/"), false);
    for _ in 0..=H2Config::default().max_empty_frames_per_window {
        write_data(&mut client.bytes, 1, &[], false);
    }
    assert_eq!(
        feed(&mut conn, &client.take()).map_err(|e| e.code),
        Err(ErrorCode::ENHANCE_YOUR_CALM)
    );
}
