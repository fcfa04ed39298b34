//! Unit tests of the access line: every field, quoting, IPv6, control bytes, rounding.

use super::*;

#[test]
fn access_line_has_every_field_and_escapes_quotes() {
    let mut out = Vec::new();
    format_line(
        &mut out,
        "2026-11-23T19:04:10.123Z",
        &AccessEntry {
            client: "127.0.0.1:5000".parse().unwrap(),
            method: "GET",
            target: "/a\"b",
            version: "HTTP/1.1",
            status: 200,
            bytes: 42,
            backend: Some("127.0.0.1:8081"),
            duration: Duration::from_micros(1500),
            cache: Some("HIT"),
        },
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "2026-11-23T19:04:10.123Z 127.0.0.1:5000 \"GET /a\\\"b HTTP/1.1\" 200 42 127.0.0.1:8081 1.500ms HIT\n"
    );
}

#[test]
fn access_line_ipv6_control_bytes_and_rounding() {
    let mut out = Vec::new();
    format_line(
        &mut out,
        "T",
        &AccessEntry {
            client: "[::1]:443".parse().unwrap(),
            method: "-",
            target: "/\u{7f}\\",
            version: "HTTP/1.0",
            status: 400,
            bytes: 0,
            backend: None,
            duration: Duration::from_nanos(12_345_678_501),
            cache: None,
        },
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "T [::1]:443 \"- /\\x7f\\\\ HTTP/1.0\" 400 0 - 12345.679ms -\n"
    );
}
