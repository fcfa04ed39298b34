//! Unit tests of the listener flags, PROXY protocol on pools, unix-socket listeners and the
//! HTTP/2 limits (the rest of the parser's tests are in `tests.rs`).

use super::tests::parse;
use super::*;

#[test]
fn listen_flags_tls_and_proxy_protocol_in_any_order() {
    let cfg = parse(
        "listen 127.0.0.1:8080 proxy_protocol\nlisten 127.0.0.1:8443 proxy_protocol tls\n\
         backend 127.0.0.1:2\ncertificate a.pem a.key\n",
    )
    .unwrap();
    let flags: Vec<(bool, bool)> = cfg
        .listeners
        .iter()
        .map(|l| (l.tls, l.proxy_protocol))
        .collect();
    assert_eq!(flags, [(false, true), (true, true)]);
    assert_eq!(
        cfg.listeners[1].to_string(),
        "127.0.0.1:8443 tls proxy_protocol"
    );
    // --check's summary reads back as the same listeners.
    let again = parse(&cfg.summary()).unwrap();
    assert_eq!(again.listeners, cfg.listeners);
    for (bad, says) in [
        ("listen 127.0.0.1:1 tls tls\n", "'tls' given twice"),
        ("listen 127.0.0.1:1 proxy\n", "not 'proxy'"),
        ("listen\n", "'listen' takes ADDR:PORT"),
    ] {
        let e = parse(&format!("{bad}backend 127.0.0.1:2\n")).unwrap_err();
        assert!(e.message.contains(says), "{bad}: {e}");
    }
}

#[test]
fn proxy_protocol_on_a_pool_and_on_the_flat_pool() {
    use crate::net::proxy_protocol::Version;
    let cfg = parse(
        "backend 127.0.0.1:2\nbackend_proxy_protocol v1\n\
         pool pp { backend 127.0.0.1:3; proxy_protocol v2 }\n",
    )
    .unwrap();
    assert_eq!(cfg.backend_proxy_protocol, Some(Version::V1));
    assert_eq!(cfg.pools[0].proxy_protocol, Some(Version::V2));
    let again = parse(&cfg.summary()).unwrap();
    assert_eq!(again.backend_proxy_protocol, Some(Version::V1));
    assert_eq!(again.pools[0].proxy_protocol, Some(Version::V2));
    let rr = crate::balance::RoundRobin::for_config(&cfg);
    let versions: Vec<_> = rr.backends().iter().map(|b| b.proxy_protocol).collect();
    assert_eq!(versions, [Some(Version::V1), Some(Version::V2)]);
    for (bad, says) in [
        (
            "pool p { backend 127.0.0.1:3; proxy_protocol v3 }\n",
            "v1 or v2",
        ),
        (
            "pool p { backend 127.0.0.1:3; proxy_protocol v1; proxy_protocol v2 }\n",
            "duplicate",
        ),
        ("backend_proxy_protocol 2\n", "v1 or v2"),
        (
            "site a { route / default; proxy_protocol v1 }\n",
            "goes in a pool block",
        ),
    ] {
        let e = parse(&format!("backend 127.0.0.1:2\n{bad}")).unwrap_err();
        assert!(e.message.contains(says), "{bad}: {e}");
    }
}

#[test]
fn unix_socket_listeners() {
    let cfg = parse(
        "listen unix:/run/pibl.sock mode=0660 proxy_protocol\nlisten 127.0.0.1:8080\n\
         listen unix:/run/pibl-tls.sock tls\nbackend 127.0.0.1:2\ncertificate a.pem a.key\n",
    )
    .unwrap();
    assert_eq!(
        cfg.listen,
        "127.0.0.1:8080".parse().unwrap(),
        "the first TCP one"
    );
    let unix = cfg.listeners[0].unix.as_ref().unwrap();
    assert_eq!(unix.path, PathBuf::from("/run/pibl.sock"));
    assert_eq!(unix.mode, Some(0o660));
    assert_eq!(
        cfg.listeners[0].to_string(),
        "unix:/run/pibl.sock mode=0660 proxy_protocol"
    );
    assert!(cfg.listeners[2].tls);
    let again = parse(&cfg.summary()).unwrap();
    assert_eq!(again.listeners, cfg.listeners);
    for (bad, says) in [
        ("listen unix:\n", "needs a path"),
        ("listen unix:/a.sock mode=999\n", "octal mode"),
        ("listen unix:/a.sock mode=0600 mode=0600\n", "given twice"),
        ("listen 127.0.0.1:1 mode=0600\n", "not 'mode=0600'"),
        (
            "listen unix:/a.sock\nlisten unix:/a.sock\n",
            "already a listener",
        ),
    ] {
        let e = parse(&format!("{bad}backend 127.0.0.1:2\n")).unwrap_err();
        assert!(e.message.contains(says), "{bad}: {e}");
    }
}

#[test]
fn http2_frame_and_header_list_sizes_parse_with_their_ranges() {
    let cfg = parse("backend 127.0.0.1:2\n").unwrap();
    assert_eq!(cfg.http2.max_frame_size, 16_384);
    assert_eq!(cfg.http2.max_header_list_size, 32 * 1024);
    let cfg =
        parse("backend 127.0.0.1:2\nhttp2_max_frame_size 1m\nhttp2_max_header_list_size 100000\n")
            .unwrap();
    assert_eq!(cfg.http2.max_frame_size, 1 << 20);
    assert_eq!(cfg.http2.max_header_list_size, 100_000);
    let summary = cfg.summary();
    for line in [
        "http2_max_frame_size 1m",
        "http2_max_header_list_size 100000",
    ] {
        assert!(
            summary.contains(&format!("\n{line}\n")),
            "{line}: {summary}"
        );
    }
    assert_eq!(parse(&summary).unwrap().http2, cfg.http2);
    // The RFC's bounds of SETTINGS_MAX_FRAME_SIZE, both ends included.
    for ok in ["16384", "16k", "16777215"] {
        let cfg = parse(&format!("backend 127.0.0.1:2\nhttp2_max_frame_size {ok}\n")).unwrap();
        assert!(cfg.http2.max_frame_size >= 16_384, "{ok}");
    }
    for (bad, wanted) in [
        (
            "http2_max_frame_size 16383",
            "test.conf:2: http2_max_frame_size: '16383' is out of range (16384 to 16777215 bytes)",
        ),
        (
            "http2_max_frame_size 16m",
            "test.conf:2: http2_max_frame_size: '16m' is out of range (16384 to 16777215 bytes)",
        ),
        (
            "http2_max_frame_size big",
            "test.conf:2: http2_max_frame_size: 'big' is not a size",
        ),
        (
            "http2_max_header_list_size 1000",
            "test.conf:2: http2_max_header_list_size: '1000' is out of range (1024 to 1048576 bytes)",
        ),
        (
            "http2_max_header_list_size 2m",
            "test.conf:2: http2_max_header_list_size: '2m' is out of range (1024 to 1048576 bytes)",
        ),
        (
            "http2_max_header_list_size",
            "test.conf:2: 'http2_max_header_list_size' needs a value",
        ),
    ] {
        let e = parse(&format!("backend 127.0.0.1:2\n{bad}\n")).unwrap_err();
        assert!(e.to_string().starts_with(wanted), "{bad}: {e}");
    }
    let e = parse("backend 127.0.0.1:2\nhttp2_max_frame_size 32k\nhttp2_max_frame_size 64k\n")
        .unwrap_err();
    assert!(
        e.to_string().contains("duplicate 'http2_max_frame_size'"),
        "{e}"
    );
}
