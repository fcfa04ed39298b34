//! pibl's own SETTINGS at values other than the defaults (`http2_max_frame_size`,
//! `http2_max_header_list_size`): what is advertised is what is enforced; the read buffer a
//! connection asks for; and the SETTINGS acknowledgement the session times.

use super::tests::*;
use super::*;
use crate::h2::frame::{write_frame_header, write_settings};
use crate::h2::settings::{id, params};

/// A connection configured as `h2_config` does for these two directives.
fn configured(max_frame_size: u32, max_header_list_size: u32) -> H2Connection {
    let mut config = H2Config::default();
    config.settings.max_frame_size = max_frame_size;
    config.settings.max_header_list_size = Some(max_header_list_size);
    // Room for DATA frames above 16384 on a stream.
    config.settings.initial_window_size = 1 << 20;
    config.header_block = HeaderBlockLimits::fitting(max_frame_size, max_header_list_size);
    H2Connection::new(config)
}

/// The connection after the client's preface and SETTINGS, its own output read.
fn open(conn: &mut H2Connection) -> (Client, Reader) {
    let mut client = Client::new();
    feed(conn, &client.take()).expect("preface");
    let mut reader = Reader::new();
    reader.read(conn);
    (client, reader)
}

/// The parameters of the SETTINGS frame at the front of the connection's output.
fn advertised(conn: &H2Connection) -> Vec<(u16, u32)> {
    match parse_frame(conn.output(), 1 << 24) {
        Ok(Parsed::Frame {
            frame:
                Frame::Settings {
                    ack: false,
                    params: p,
                },
            ..
        }) => params(p).collect(),
        other => panic!("not pibl's SETTINGS first: {other:?}"),
    }
}

/// An extension frame (ignored by the connection) with a payload of `len` bytes.
fn unknown_frame(len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    write_frame_header(&mut out, len, 0x20, 0, 0);
    out.resize(out.len() + len, 0x5a);
    out
}

#[test]
fn the_configured_sizes_are_advertised() {
    let conn = configured(65_536, 8 * 1024);
    let sent = advertised(&conn);
    assert!(sent.contains(&(id::MAX_FRAME_SIZE, 65_536)), "{sent:?}");
    assert!(
        sent.contains(&(id::MAX_HEADER_LIST_SIZE, 8 * 1024)),
        "{sent:?}"
    );
    // The defaults: MAX_FRAME_SIZE is the RFC's initial value, so it is not sent.
    let conn = H2Connection::new(H2Config::default());
    let sent = advertised(&conn);
    assert!(
        !sent.iter().any(|&(i, _)| i == id::MAX_FRAME_SIZE),
        "{sent:?}"
    );
    assert!(sent.contains(&(id::MAX_HEADER_LIST_SIZE, DEFAULT_HEADER_LIST_SIZE)));
}

#[test]
fn frames_up_to_the_configured_size_pass_one_byte_more_is_frame_size_error() {
    let mut conn = configured(65_536, DEFAULT_HEADER_LIST_SIZE);
    let (_, mut reader) = open(&mut conn);
    feed(&mut conn, &unknown_frame(65_536)).expect("a frame of the advertised size");
    assert_eq!(
        feed(&mut conn, &unknown_frame(65_537)).map_err(|e| e.code),
        Err(ErrorCode::FRAME_SIZE_ERROR)
    );
    assert_eq!(
        goaway_code(&reader.read(&mut conn)),
        Some(ErrorCode::FRAME_SIZE_ERROR)
    );
    // Refused from the header alone: the payload need not arrive.
    let mut conn = configured(20_000, DEFAULT_HEADER_LIST_SIZE);
    open(&mut conn);
    let header_only = &unknown_frame(20_001)[..FRAME_HEADER_LEN];
    assert_eq!(
        conn.receive(header_only).map_err(|e| e.code),
        Err(ErrorCode::FRAME_SIZE_ERROR)
    );
    // At the default, 16385 is already too large.
    let (mut conn, _, _) = started();
    assert_eq!(
        feed(&mut conn, &unknown_frame(16_385)).map_err(|e| e.code),
        Err(ErrorCode::FRAME_SIZE_ERROR)
    );
}

#[test]
fn a_data_frame_above_16384_carries_its_body() {
    let mut conn = configured(65_536, DEFAULT_HEADER_LIST_SIZE);
    let (mut client, _) = open(&mut conn);
    client.headers(1, &request("POST", "/upload"), false);
    let body = vec![7u8; 40_000];
    write_data(&mut client.bytes, 1, &body, true);
    feed(&mut conn, &client.take()).expect("ok");
    let ev = events(&mut conn);
    let [Event::Request { stream: 1, .. }, Event::Data {
        stream: 1,
        bytes,
        end_stream: true,
    }] = ev.as_slice()
    else {
        panic!("{ev:?}");
    };
    assert_eq!(conn.data(bytes.clone()), body.as_slice());
}

#[test]
fn the_read_buffer_grows_only_for_a_client_that_sends_larger_frames() {
    let mut conn = configured(1 << 20, DEFAULT_HEADER_LIST_SIZE);
    let (mut client, _) = open(&mut conn);
    assert_eq!(conn.input_capacity(), DEFAULT_INPUT_CAPACITY);
    client.get(1, "/");
    feed(&mut conn, &client.take()).expect("ok");
    assert_eq!(conn.input_capacity(), DEFAULT_INPUT_CAPACITY);
    // A frame of 300000 bytes, of which the buffer holds only the start: two such frames wanted.
    let big = unknown_frame(300_000);
    assert_eq!(conn.receive(&big[..DEFAULT_INPUT_CAPACITY]), Ok(0));
    assert_eq!(conn.input_capacity(), 2 * (300_000 + FRAME_HEADER_LEN));
    assert_eq!(conn.receive(&big), Ok(big.len()));
    // And the default connection never asks for more than its 16384-byte frames need.
    let (mut conn, _, _) = started();
    let big = unknown_frame(16_384);
    assert_eq!(conn.receive(&big[..100]), Ok(0));
    assert_eq!(conn.input_capacity(), DEFAULT_INPUT_CAPACITY);
}

/// A request with one extra field of `value_len` bytes that Huffman cannot shorten.
fn request_with_field(client: &mut Client, stream: u32, value_len: usize) {
    let value: String = (0..value_len)
        .map(|i| char::from(b"#$%&<>?@[]^`{|}~"[i % 16]))
        .collect();
    let mut fields = request("GET", "/big-head");
    fields.push(("x-big", value.as_str()));
    client.headers(stream, &fields, true);
}

#[test]
fn a_header_list_up_to_the_configured_size_passes_a_larger_one_ends_the_connection() {
    // 4k: smaller than the default.
    let mut conn = configured(DEFAULT_MAX_FRAME_SIZE, 4096);
    let (mut client, _) = open(&mut conn);
    request_with_field(&mut client, 1, 3000);
    feed(&mut conn, &client.take()).expect("under 4k");
    assert!(matches!(
        events(&mut conn)[..],
        [Event::Request { stream: 1, .. }]
    ));
    request_with_field(&mut client, 3, 4096);
    assert_eq!(
        feed(&mut conn, &client.take()).map_err(|e| e.code),
        Err(ErrorCode::ENHANCE_YOUR_CALM)
    );

    // 200k: larger than the default block bound (64 KiB) and than 32 CONTINUATIONs of 16384
    // could carry at worst; the block comes in HEADERS + CONTINUATION of 16384.
    let mut conn = configured(DEFAULT_MAX_FRAME_SIZE, 200 * 1024);
    let (mut client, mut reader) = open(&mut conn);
    request_with_field(&mut client, 1, 150_000);
    let block_frames = client.bytes.len() / DEFAULT_MAX_FRAME_SIZE as usize;
    assert!(block_frames > 4, "{block_frames} frames");
    feed(&mut conn, &client.take()).expect("under 200k");
    let ev = events(&mut conn);
    let [Event::Request {
        stream: 1, head, ..
    }] = ev.as_slice()
    else {
        panic!("{ev:?}");
    };
    assert_eq!(head.field(b"x-big").map(<[u8]>::len), Some(150_000));
    request_with_field(&mut client, 3, 200 * 1024);
    assert_eq!(
        feed(&mut conn, &client.take()).map_err(|e| e.code),
        Err(ErrorCode::ENHANCE_YOUR_CALM)
    );
    assert_eq!(
        goaway_code(&reader.read(&mut conn)),
        Some(ErrorCode::ENHANCE_YOUR_CALM)
    );

    // The same list at the defaults is over the bound.
    let (mut conn, mut client, _) = started();
    request_with_field(&mut client, 1, 40_000);
    assert_eq!(
        feed(&mut conn, &client.take()).map_err(|e| e.code),
        Err(ErrorCode::ENHANCE_YOUR_CALM)
    );
}

#[test]
fn the_header_block_bounds_follow_the_settings() {
    assert_eq!(
        HeaderBlockLimits::fitting(DEFAULT_MAX_FRAME_SIZE, DEFAULT_HEADER_LIST_SIZE),
        HeaderBlockLimits::default()
    );
    let wide = HeaderBlockLimits::fitting(DEFAULT_MAX_FRAME_SIZE, 1 << 20);
    assert_eq!(wide.max_block_len, 1 << 20);
    assert_eq!(wide.max_continuations, 64);
    let big_frames = HeaderBlockLimits::fitting(1 << 20, 1 << 20);
    assert_eq!(big_frames.max_continuations, 32);
}

#[test]
fn the_settings_ack_is_awaited_until_the_client_sends_it() {
    let mut conn = H2Connection::new(H2Config::default());
    assert!(conn.awaits_settings_ack());
    let mut client = Client::new();
    feed(&mut conn, &client.take()).expect("preface");
    // The client's own SETTINGS (no ACK flag) are not an acknowledgement.
    assert!(conn.awaits_settings_ack());
    client.get(1, "/");
    feed(&mut conn, &client.take()).expect("a request meanwhile");
    assert!(conn.awaits_settings_ack());
    let mut ack = Vec::new();
    write_settings_ack(&mut ack);
    feed(&mut conn, &ack).expect("ACK");
    assert!(!conn.awaits_settings_ack());
    // A timer that fires late does nothing once the ACK came.
    let mut reader = Reader::new();
    reader.read(&mut conn);
    conn.settings_timed_out();
    assert!(conn.output().is_empty());
    assert!(!conn.is_finished());
    // A second ACK (none outstanding) is ignored.
    feed(&mut conn, &ack).expect("an extra ACK");
    write_settings(&mut client.bytes, &[]);
    feed(&mut conn, &client.take()).expect("more SETTINGS");
    assert!(!conn.awaits_settings_ack());
}

#[test]
fn no_settings_ack_in_time_is_a_settings_timeout() {
    let mut conn = H2Connection::new(H2Config::default());
    let mut client = Client::new();
    client.get(1, "/");
    feed(&mut conn, &client.take()).expect("preface and a request");
    let mut reader = Reader::new();
    reader.read(&mut conn);
    events(&mut conn);
    conn.settings_timed_out();
    assert_eq!(
        reader.read(&mut conn),
        vec![Out::GoAway {
            last: 1,
            code: ErrorCode::SETTINGS_TIMEOUT
        }]
    );
    assert!(conn.is_finished());
    assert!(!conn.awaits_settings_ack());
    assert_eq!(
        conn.receive(b"more").map_err(|e| e.code),
        Err(ErrorCode::SETTINGS_TIMEOUT)
    );
}
