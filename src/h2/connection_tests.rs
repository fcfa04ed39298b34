//! The connection driven by a small test client written with the phase-1 writers.

use super::*;
use crate::h2::frame::{
    kind, write_frame_header, write_priority, write_settings, write_window_update, Priority,
};
use crate::h2::hpack::Decoder;
use crate::h2::settings::id;

/// The client side: an HPACK encoder and the frames it writes.
pub(super) struct Client {
    pub(super) encoder: Encoder,
    pub(super) bytes: Vec<u8>,
}

impl Client {
    pub(super) fn new() -> Self {
        let mut bytes = CLIENT_PREFACE.to_vec();
        write_settings(&mut bytes, &[]);
        Client {
            encoder: Encoder::default(),
            bytes,
        }
    }

    pub(super) fn block(&mut self, fields: &[(&str, &str)]) -> Vec<u8> {
        let mut block = Vec::new();
        self.encoder.begin_block(&mut block);
        for (n, v) in fields {
            self.encoder.encode_field(
                n.as_bytes(),
                v.as_bytes(),
                Indexing::Incremental,
                &mut block,
            );
        }
        block
    }

    pub(super) fn headers(&mut self, stream: u32, fields: &[(&str, &str)], end_stream: bool) {
        let block = self.block(fields);
        write_headers(&mut self.bytes, stream, &block, end_stream, 16_384);
    }

    pub(super) fn get(&mut self, stream: u32, path: &str) {
        self.headers(stream, &request("GET", path), true);
    }

    pub(super) fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.bytes)
    }
}

pub(super) fn request<'a>(method: &'a str, path: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        (":method", method),
        (":scheme", "https"),
        (":path", path),
        (":authority", "example.com"),
    ]
}

/// What the server wrote, parsed back.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Out {
    Settings {
        ack: bool,
    },
    Ping {
        ack: bool,
    },
    Headers {
        stream: u32,
        fields: Vec<(String, String)>,
        end_stream: bool,
    },
    Data {
        stream: u32,
        len: usize,
        end_stream: bool,
    },
    Rst {
        stream: u32,
        code: ErrorCode,
    },
    GoAway {
        last: u32,
        code: ErrorCode,
    },
    WindowUpdate {
        stream: u32,
        increment: u32,
    },
}

pub(super) struct Reader {
    pub(super) decoder: Decoder,
    pub(super) assembler: HeaderBlockAssembler,
    pub(super) decoded: DecodedHeaders,
}

impl Reader {
    pub(super) fn new() -> Self {
        Reader {
            decoder: Decoder::new(4096, 1 << 20),
            assembler: HeaderBlockAssembler::new(HeaderBlockLimits::default()),
            decoded: DecodedHeaders::new(),
        }
    }

    pub(super) fn read(&mut self, conn: &mut H2Connection) -> Vec<Out> {
        let bytes = conn.output().to_vec();
        conn.advance_output(bytes.len());
        let mut at = 0;
        let mut out = Vec::new();
        while at < bytes.len() {
            let Ok(Parsed::Frame { frame, consumed }) = parse_frame(&bytes[at..], 1 << 24) else {
                panic!("server wrote a bad frame");
            };
            at += consumed;
            match self.assembler.accept(frame).expect("assembled") {
                Assembled::Pending => {}
                Assembled::Block(b) => {
                    self.decoder
                        .decode(b.block, &mut self.decoded)
                        .expect("hpack");
                    let fields = self
                        .decoded
                        .iter()
                        .map(|f| {
                            (
                                String::from_utf8_lossy(f.name).into_owned(),
                                String::from_utf8_lossy(f.value).into_owned(),
                            )
                        })
                        .collect();
                    out.push(Out::Headers {
                        stream: b.stream_id,
                        fields,
                        end_stream: b.end_stream,
                    });
                }
                Assembled::Other(frame) => out.push(match frame {
                    Frame::Settings { ack, .. } => Out::Settings { ack },
                    Frame::Ping { ack, .. } => Out::Ping { ack },
                    Frame::Data {
                        stream_id,
                        data,
                        end_stream,
                        ..
                    } => Out::Data {
                        stream: stream_id,
                        len: data.len(),
                        end_stream,
                    },
                    Frame::RstStream { stream_id, code } => Out::Rst {
                        stream: stream_id,
                        code,
                    },
                    Frame::GoAway {
                        last_stream_id,
                        code,
                        ..
                    } => Out::GoAway {
                        last: last_stream_id,
                        code,
                    },
                    Frame::WindowUpdate {
                        stream_id,
                        increment,
                    } => Out::WindowUpdate {
                        stream: stream_id,
                        increment,
                    },
                    other => panic!("unexpected {other:?}"),
                }),
            }
        }
        out
    }
}

/// Feeds all of `bytes`, in one piece.
pub(super) fn feed(conn: &mut H2Connection, bytes: &[u8]) -> Result<(), ConnectionError> {
    let mut at = 0;
    while at < bytes.len() {
        let n = conn.receive(&bytes[at..])?;
        if n == 0 {
            break;
        }
        at += n;
    }
    Ok(())
}

pub(super) fn events(conn: &mut H2Connection) -> Vec<Event> {
    std::iter::from_fn(|| conn.poll_event()).collect()
}

pub(super) fn started() -> (H2Connection, Client, Reader) {
    let mut conn = H2Connection::new(H2Config::default());
    let mut client = Client::new();
    feed(&mut conn, &client.take()).expect("preface");
    let mut reader = Reader::new();
    assert_eq!(
        reader.read(&mut conn),
        vec![Out::Settings { ack: false }, Out::Settings { ack: true }]
    );
    (conn, client, reader)
}

pub(super) fn reset_code(out: &[Out], stream: u32) -> Option<ErrorCode> {
    out.iter().find_map(|o| match o {
        Out::Rst { stream: s, code } if *s == stream => Some(*code),
        _ => None,
    })
}

pub(super) fn goaway_code(out: &[Out]) -> Option<ErrorCode> {
    out.iter().find_map(|o| match o {
        Out::GoAway { code, .. } => Some(*code),
        _ => None,
    })
}

#[test]
fn a_get_and_its_response() {
    let (mut conn, mut client, mut reader) = started();
    client.headers(
        1,
        &[
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/index.html"),
            (":authority", "example.com"),
            ("cookie", "a=1"),
            ("accept", "*/*"),
            ("cookie", "b=2"),
        ],
        true,
    );
    feed(&mut conn, &client.take()).expect("ok");
    let ev = events(&mut conn);
    let [Event::Request {
        stream: 1,
        head,
        end_stream: true,
    }] = ev.as_slice()
    else {
        panic!("{ev:?}");
    };
    assert_eq!(head.method(), b"GET");
    assert_eq!(head.path(), b"/index.html");
    assert_eq!(head.scheme(), b"https");
    assert_eq!(head.authority(), Some(b"example.com".as_slice()));
    assert_eq!(head.field(b"cookie"), Some(b"a=1; b=2".as_slice()));
    assert_eq!(head.fields().count(), 2);
    assert_eq!(conn.stream_state(1), StreamState::HalfClosedRemote);
    conn.send_response_head(1, 200, &[(b"content-type", b"text/plain")], false)
        .expect("open");
    assert_eq!(conn.send_data(1, b"hello", true), Ok(5));
    assert_eq!(conn.stream_state(1), StreamState::Closed);
    assert_eq!(
        reader.read(&mut conn),
        vec![
            Out::Headers {
                stream: 1,
                fields: vec![
                    (":status".into(), "200".into()),
                    ("content-type".into(), "text/plain".into())
                ],
                end_stream: false
            },
            Out::Data {
                stream: 1,
                len: 5,
                end_stream: true
            }
        ]
    );
    assert_eq!(
        conn.send_data(1, b"more", true),
        Err(SendError::NoSuchStream)
    );
}

#[test]
fn a_post_with_body_and_flow_control() {
    let (mut conn, mut client, mut reader) = started();
    let mut fields = request("POST", "/upload");
    fields.push(("content-length", "100000"));
    client.headers(1, &fields, false);
    // The whole initial window (65,535), in frames of 16 KiB.
    let body = vec![7u8; 16_384];
    for _ in 0..3 {
        write_data(&mut client.bytes, 1, &body, false);
    }
    write_data(&mut client.bytes, 1, &body[..65_535 - 3 * 16_384], false);
    feed(&mut conn, &client.take()).expect("ok");
    let mut got = 0;
    for ev in events(&mut conn) {
        if let Event::Data {
            stream: 1, bytes, ..
        } = ev
        {
            assert!(conn.data(bytes.clone()).iter().all(|&b| b == 7));
            got += bytes.len();
        }
    }
    assert_eq!(got, 65_535);
    // The connection window came back at once, the stream's did not.
    let out = reader.read(&mut conn);
    assert!(out
        .iter()
        .all(|o| !matches!(o, Out::WindowUpdate { stream: 1, .. })));
    assert!(out
        .iter()
        .any(|o| matches!(o, Out::WindowUpdate { stream: 0, .. })));
    // One more byte is beyond the stream's window: FLOW_CONTROL_ERROR on the stream.
    let mut over = Vec::new();
    write_data(&mut over, 1, b"x", false);
    // The caller releases what it consumed first: the window re-opens.
    conn.release(1, 65_535);
    assert_eq!(
        reader.read(&mut conn),
        vec![Out::WindowUpdate {
            stream: 1,
            increment: 65_535
        }]
    );
    if let Err(e) = feed(&mut conn, &over) {
        panic!("{e}")
    }
    assert!(matches!(
        events(&mut conn)[..],
        [Event::Data { stream: 1, .. }]
    ));
    // A body longer than content-length is a stream PROTOCOL_ERROR.
    let mut long = Vec::new();
    write_data(&mut long, 1, &[0; 16_384], false);
    write_data(&mut long, 1, &[0; 16_384], false);
    write_data(
        &mut long,
        1,
        &vec![0; 100_000 - 65_536 - 2 * 16_384 + 1],
        true,
    );
    conn.release(1, 1);
    feed(&mut conn, &long).expect("stream error only");
    assert_eq!(
        events(&mut conn).last(),
        Some(&Event::Reset {
            stream: 1,
            code: ErrorCode::PROTOCOL_ERROR
        })
    );
    assert_eq!(
        reset_code(&reader.read(&mut conn), 1),
        Some(ErrorCode::PROTOCOL_ERROR)
    );
}

#[test]
fn data_beyond_the_stream_window_is_a_stream_error() {
    let (mut conn, mut client, mut reader) = started();
    client.headers(1, &request("POST", "/"), false);
    let body = vec![0u8; 16_384];
    for _ in 0..4 {
        write_data(&mut client.bytes, 1, &body, false);
    }
    feed(&mut conn, &client.take()).expect("connection fine");
    assert_eq!(conn.stream_state(1), StreamState::Closed);
    assert_eq!(
        reset_code(&reader.read(&mut conn), 1),
        Some(ErrorCode::FLOW_CONTROL_ERROR)
    );
}

#[test]
fn two_interleaved_streams_and_trailers() {
    let (mut conn, mut client, mut reader) = started();
    client.headers(1, &request("POST", "/a"), false);
    client.headers(3, &request("POST", "/b"), false);
    write_data(&mut client.bytes, 3, b"bbb", false);
    write_data(&mut client.bytes, 1, b"aa", false);
    client.headers(1, &[("x-checksum", "1")], true);
    write_data(&mut client.bytes, 3, b"b", true);
    feed(&mut conn, &client.take()).expect("ok");
    let ev = events(&mut conn);
    let summary: Vec<(u32, &str)> = ev
        .iter()
        .map(|e| match e {
            Event::Request { stream, .. } => (*stream, "request"),
            Event::Data { stream, .. } => (*stream, "data"),
            Event::Trailers { stream, fields } => {
                assert_eq!(fields.field(b"x-checksum"), Some(b"1".as_slice()));
                (*stream, "trailers")
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, "request"),
            (3, "request"),
            (3, "data"),
            (1, "data"),
            (1, "trailers"),
            (3, "data")
        ]
    );
    // Responses interleave too; trailers end stream 3.
    conn.send_response_head(3, 200, &[], false).expect("3");
    conn.send_response_head(1, 204, &[], true).expect("1");
    assert_eq!(conn.send_data(3, b"xyz", false), Ok(3));
    conn.send_trailers(3, &[(b"grpc-status", b"0")]).expect("3");
    assert_eq!(conn.open_streams(), 0);
    let out = reader.read(&mut conn);
    assert_eq!(out.len(), 4);
    assert_eq!(
        out[3],
        Out::Headers {
            stream: 3,
            fields: vec![("grpc-status".into(), "0".into())],
            end_stream: true
        }
    );
}

#[test]
fn a_large_response_head_is_split_into_continuation() {
    let (mut conn, mut client, mut reader) = started();
    client.get(1, "/");
    feed(&mut conn, &client.take()).expect("ok");
    let big = vec![b'v'; 40_000];
    conn.send_response_head(1, 200, &[(b"x-big", &big)], true)
        .expect("open");
    let raw = conn.output().to_vec();
    assert_eq!(raw[3], kind::HEADERS);
    let out = reader.read(&mut conn);
    let [Out::Headers { fields, .. }] = out.as_slice() else {
        panic!("{out:?}");
    };
    assert_eq!(fields[1].1.len(), 40_000);
}

#[test]
fn send_data_is_limited_by_the_windows_and_reports_a_stall() {
    let (mut conn, mut client, mut reader) = started();
    client.get(1, "/");
    feed(&mut conn, &client.take()).expect("ok");
    conn.send_response_head(1, 200, &[], false).expect("open");
    let body = vec![1u8; 100_000];
    assert_eq!(conn.send_data(1, &body, true), Ok(65_535));
    assert_eq!(conn.send_capacity(1), 0, "a zero-window stall");
    assert_eq!(conn.send_data(1, &body[65_535..], true), Ok(0));
    let out = reader.read(&mut conn);
    assert_eq!(out.len(), 1 + 4, "16 KiB frames");
    // The client opens the stream's window, and the connection's.
    let mut wu = Vec::new();
    write_window_update(&mut wu, 1, 10_000);
    feed(&mut conn, &wu).expect("ok");
    assert_eq!(
        conn.send_capacity(1),
        0,
        "the connection window is still shut"
    );
    let mut wu = Vec::new();
    write_window_update(&mut wu, 0, 1 << 20);
    feed(&mut conn, &wu).expect("ok");
    assert_eq!(conn.send_capacity(1), 10_000);
    // A lower INITIAL_WINDOW_SIZE makes the window negative.
    let mut s = Vec::new();
    write_settings(&mut s, &[(id::INITIAL_WINDOW_SIZE, 0)]);
    feed(&mut conn, &s).expect("ok");
    assert_eq!(conn.send_capacity(1), 0);
}

#[test]
fn settings_and_ping_are_acknowledged_priority_ignored() {
    let (mut conn, mut client, mut reader) = started();
    write_settings(&mut client.bytes, &[(id::MAX_FRAME_SIZE, 20_000)]);
    write_ping(&mut client.bytes, [1; 8], false);
    write_ping(&mut client.bytes, [2; 8], true);
    write_priority(
        &mut client.bytes,
        5,
        Priority {
            exclusive: false,
            depends_on: 0,
            weight: 16,
        },
    );
    write_frame_header(&mut client.bytes, 0, 0xfa, 0, 0);
    feed(&mut conn, &client.take()).expect("ok");
    assert_eq!(
        reader.read(&mut conn),
        vec![Out::Settings { ack: true }, Out::Ping { ack: true }]
    );
    // PRIORITY does not open a stream for the concurrency count nor make 5 idle-refused.
    assert!(events(&mut conn).is_empty());
}

#[test]
fn stream_id_rules() {
    let (mut conn, mut client, _) = started();
    client.get(2, "/");
    assert_eq!(
        feed(&mut conn, &client.take()).map_err(|e| e.code),
        Err(ErrorCode::PROTOCOL_ERROR)
    );
    let (mut conn, mut client, mut reader) = started();
    client.get(5, "/");
    client.get(3, "/");
    assert_eq!(
        feed(&mut conn, &client.take()).map_err(|e| e.code),
        Err(ErrorCode::PROTOCOL_ERROR)
    );
    assert_eq!(
        reader.read(&mut conn),
        vec![Out::GoAway {
            last: 5,
            code: ErrorCode::PROTOCOL_ERROR
        }]
    );
    assert!(conn.is_finished());
    assert!(conn.receive(b"anything").is_err());
    // DATA and WINDOW_UPDATE on idle streams are connection errors.
    let (mut conn, _, _) = started();
    let mut d = Vec::new();
    write_data(&mut d, 7, b"x", false);
    assert!(feed(&mut conn, &d).is_err());
}

#[test]
fn the_preface_and_first_settings_are_required() {
    let mut conn = H2Connection::new(H2Config::default());
    assert!(conn.receive(b"GET / HTTP/1.1\r\n\r\n").is_err());
    let mut conn = H2Connection::new(H2Config::default());
    let mut bytes = CLIENT_PREFACE.to_vec();
    write_ping(&mut bytes, [0; 8], false);
    assert!(feed(&mut conn, &bytes).is_err());
    // A preface in pieces.
    let mut conn = H2Connection::new(H2Config::default());
    assert_eq!(conn.receive(&CLIENT_PREFACE[..10]), Ok(0));
    assert_eq!(conn.receive(CLIENT_PREFACE), Ok(24));
}

#[test]
fn invalid_requests_are_stream_protocol_errors() {
    let bad: Vec<Vec<(&str, &str)>> = vec![
        vec![(":method", "GET"), (":path", "/")],
        vec![(":method", "GET"), (":scheme", "https"), (":path", "")],
        vec![(":method", "CONNECT"), (":scheme", "https"), (":path", "/")],
        vec![
            (":method", "GET"),
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/"),
        ],
        vec![
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/"),
            (":protocol", "x"),
        ],
        vec![
            (":method", "GET"),
            (":scheme", "https"),
            ("accept", "*"),
            (":path", "/"),
        ],
        vec![
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/"),
            ("Accept", "*"),
        ],
        vec![
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/"),
            ("connection", "close"),
        ],
        vec![
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/"),
            ("keep-alive", "1"),
        ],
        vec![
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/"),
            ("proxy-connection", "x"),
        ],
        vec![
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/"),
            ("transfer-encoding", "chunked"),
        ],
        vec![
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/"),
            ("upgrade", "h2c"),
        ],
        vec![
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/"),
            ("te", "gzip"),
        ],
        vec![
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/"),
            ("content-length", "x"),
        ],
        vec![
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/"),
            ("content-length", "5"),
        ],
    ];
    for fields in bad {
        let (mut conn, mut client, mut reader) = started();
        client.headers(1, &fields, true);
        feed(&mut conn, &client.take()).expect("a stream error only");
        assert!(events(&mut conn).is_empty(), "{fields:?}");
        assert_eq!(
            reset_code(&reader.read(&mut conn), 1),
            Some(ErrorCode::PROTOCOL_ERROR),
            "{fields:?}"
        );
        // The connection goes on.
        client.get(3, "/");
        feed(&mut conn, &client.take()).expect("ok");
        assert!(matches!(
            events(&mut conn)[..],
            [Event::Request { stream: 3, .. }]
        ));
    }
    // te: trailers is allowed; content-length is checked against DATA.
    let (mut conn, mut client, mut reader) = started();
    let mut fields = request("POST", "/");
    fields.push(("te", "trailers"));
    fields.push(("content-length", "4"));
    client.headers(1, &fields, false);
    write_data(&mut client.bytes, 1, b"abc", true);
    feed(&mut conn, &client.take()).expect("ok");
    let ev = events(&mut conn);
    assert!(matches!(ev[0], Event::Request { stream: 1, .. }));
    assert_eq!(
        ev[1],
        Event::Reset {
            stream: 1,
            code: ErrorCode::PROTOCOL_ERROR
        }
    );
    assert_eq!(
        reset_code(&reader.read(&mut conn), 1),
        Some(ErrorCode::PROTOCOL_ERROR)
    );
}

/// Fields that repeat on a connection's responses are indexed, so a second response's head is
/// a few bytes; the ones that change (date, length) are not, and `set-cookie` is sent
/// never-indexed. A decoder that follows the table reads both heads whole.
#[test]
fn repeated_response_fields_are_indexed_changing_ones_are_not() {
    let (mut conn, mut client, mut reader) = started();
    client.get(1, "/");
    client.get(3, "/");
    feed(&mut conn, &client.take()).expect("ok");
    let _ = events(&mut conn);
    let _ = reader.read(&mut conn);
    let head = |date: &'static [u8]| -> Vec<(&'static [u8], &'static [u8])> {
        vec![
            (b"server", b"origin/1.0"),
            (b"content-type", b"text/html; charset=utf-8"),
            (b"x-origin", b"o1"),
            (b"date", date),
            (b"content-length", b"100"),
            (b"set-cookie", b"session=secret"),
        ]
    };
    let mut sizes = Vec::new();
    for (stream, date) in [
        (1, b"Tue, 01 Dec 2026 10:00:00 GMT"),
        (3, b"Tue, 01 Dec 2026 10:00:01 GMT"),
    ] {
        conn.send_response_head(stream, 200, &head(date), true)
            .expect("open");
        sizes.push(conn.output().len());
        let out = reader.read(&mut conn);
        let [Out::Headers { fields, .. }] = out.as_slice() else {
            panic!("{out:?}");
        };
        let sent: Vec<(String, String)> = head(date)
            .iter()
            .map(|(n, v)| {
                (
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect();
        assert_eq!(fields[1..], sent[..]);
    }
    // The second: server, content-type and x-origin one byte each; date, length and the
    // cookie literal again.
    assert!(sizes[1] + 30 < sizes[0], "{sizes:?}");
    let table = conn.encoder.table();
    assert_eq!(table.find(b"server", b"origin/1.0").1, Some(2));
    assert_eq!(
        table.find(b"date", b"Tue, 01 Dec 2026 10:00:01 GMT").1,
        None
    );
    assert_eq!(table.find(b"set-cookie", b"session=secret").0, None);
    assert!(reader
        .decoded
        .iter()
        .any(|f| f.name == b"set-cookie" && f.never_indexed));
}
