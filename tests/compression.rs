//! Compression with the real decompressors (`gzip -d`, `brotli -d`, `zstd -d` from Debian's
//! packages, installed by .ci/run): what pibl's encoders make is what those tools read. A tool
//! that is missing skips its coding, said on stderr.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Conn, Pibl};

use pibl::compress::{Coding, Encoder, Levels, STEP_INPUT};

/// The tool and its arguments that decode `coding` from stdin to stdout.
fn decoder(coding: Coding) -> (&'static str, &'static [&'static str]) {
    match coding {
        Coding::Gzip => ("gzip", &["-d", "-c"]),
        Coding::Br => ("brotli", &["-d", "-c"]),
        Coding::Zstd => ("zstd", &["-d", "-c", "-q"]),
    }
}

/// Decodes with the real tool; `None` when it is not installed.
fn decode_with_tool(coding: Coding, data: &[u8]) -> Option<Vec<u8>> {
    let (tool, args) = decoder(coding);
    let mut child = match Command::new(tool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("SKIPPED {tool}: {e}");
            return None;
        }
    };
    let mut stdin = child.stdin.take().expect("stdin");
    let data = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().expect("decoder ran");
    writer
        .join()
        .expect("writer")
        .expect("decoder took its input");
    assert!(
        out.status.success(),
        "{tool} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(out.stdout)
}

/// Encodes through pibl's encoder with `room` bytes of output per call.
fn encode(coding: Coding, input: &[u8], room: usize) -> Vec<u8> {
    let mut enc = Encoder::new(coding, Levels::DEFAULT.of(coding)).expect("encoder");
    let mut buf = vec![0u8; room];
    let mut out = Vec::new();
    let mut at = 0;
    while at < input.len() {
        let p = enc.compress(&input[at..], &mut buf).expect("compress");
        assert!(p.consumed <= STEP_INPUT);
        at += p.consumed;
        out.extend_from_slice(&buf[..p.written]);
    }
    loop {
        let d = enc.finish(&mut buf).expect("finish");
        out.extend_from_slice(&buf[..d.written]);
        if d.done {
            return out;
        }
    }
}

fn text(len: usize) -> Vec<u8> {
    let line = b"<li class=\"entry\"><a href=\"/articles/17\">Load balancing, part 17</a></li>\n";
    let mut out = Vec::with_capacity(len);
    let mut n = 0u32;
    while out.len() < len {
        out.extend_from_slice(line);
        out.extend_from_slice(n.to_string().as_bytes());
        n = n.wrapping_mul(31).wrapping_add(7);
    }
    out.truncate(len);
    out
}

#[test]
fn the_encoders_output_decodes_with_the_real_tools() {
    for len in [0, 1, 5000, 1 << 20] {
        let input = text(len);
        for coding in Coding::PREFERENCE {
            let encoded = encode(coding, &input, 16 * 1024);
            if let Some(decoded) = decode_with_tool(coding, &encoded) {
                assert!(decoded == input, "{coding:?}, {len} bytes: decoded differs");
            }
        }
    }
}

#[test]
fn small_output_room_still_makes_a_valid_stream() {
    let input = text(100_000);
    for coding in Coding::PREFERENCE {
        let encoded = encode(coding, &input, 7);
        if let Some(decoded) = decode_with_tool(coding, &encoded) {
            assert!(decoded == input, "{coding:?}: decoded differs");
        }
    }
}

/// A backend that answers by path (a query is ignored), over keep-alive connections: `/len`
/// (Content-Length), `/chunked`, `/big` (1 MiB, chunked), `/notransform`, `/encoded`
/// (Content-Encoding: gzip), `/small` (100 bytes), `/png`, `/huge` (4 MiB, Content-Length),
/// `/shortchunked` and `/shortclose` (100 bytes, chunked and to the close);
/// text bodies are [`page`], with
/// `ETag: "v1"`.
fn text_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve_text(stream));
        }
    });
    addr
}

fn page() -> Vec<u8> {
    text(200_000)
}

fn serve_text(stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut out = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut words = request_line.split_whitespace();
        let method = words.next().unwrap_or("");
        let target = words.next().unwrap_or("");
        let path = target.split('?').next().unwrap_or("");
        let (fields, body, chunked): (&str, Vec<u8>, bool) = match path {
            "/len" => ("Content-Type: text/html; charset=utf-8\r\nETag: \"v1\"\r\nCache-Control: max-age=60\r\n", page(), false),
            "/chunked" => ("Content-Type: text/html\r\nVary: Cookie\r\n", page(), true),
            "/big" => ("Content-Type: application/json\r\n", text(1 << 20), true),
            "/huge" => ("Content-Type: application/json\r\n", text(4 << 20), false),
            "/notransform" => ("Content-Type: text/html\r\nCache-Control: no-transform\r\n", page(), false),
            "/encoded" => ("Content-Type: text/html\r\nContent-Encoding: gzip\r\n", page(), false),
            "/small" => ("Content-Type: text/html\r\n", text(100), false),
            "/shortchunked" => ("Content-Type: text/html\r\n", text(100), true),
            "/shortclose" => ("Content-Type: text/html\r\nConnection: close\r\n", text(100), false),
            "/png" => ("Content-Type: image/png\r\n", page(), false),
            _ => ("Content-Type: text/plain\r\n", b"not here".to_vec(), false),
        };
        let mut head = format!("HTTP/1.1 200 OK\r\n{fields}");
        if path == "/shortclose" {
            // Close-delimited: no length, the body ends at the close.
            let mut wire = format!("{head}\r\n").into_bytes();
            wire.extend_from_slice(&body);
            let _ = out.write_all(&wire);
            return;
        }
        if chunked {
            head.push_str("Transfer-Encoding: chunked\r\n\r\n");
        } else {
            head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        }
        let mut wire = head.into_bytes();
        if method != "HEAD" {
            if chunked {
                for piece in body.chunks(7000) {
                    wire.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                    wire.extend_from_slice(piece);
                    wire.extend_from_slice(b"\r\n");
                }
                wire.extend_from_slice(b"0\r\n\r\n");
            } else {
                wire.extend_from_slice(&body);
            }
        }
        if out.write_all(&wire).is_err() {
            return;
        }
    }
}

/// curl's view of one request: (head, body as received, not decoded).
fn curl_raw(url: &str, args: &[&str]) -> (String, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-s", "-S", "--raw", "-D", "-", "--max-time", "30"])
        .args(args)
        .arg(url)
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let split = memfind(&out.stdout, b"\r\n\r\n").expect("a head") + 4;
    (
        String::from_utf8_lossy(&out.stdout[..split]).into_owned(),
        out.stdout[split..].to_vec(),
    )
}

fn memfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn compressing_pibl(backend: SocketAddr, extra: &str) -> Pibl {
    Pibl::start(&[backend], &format!("workers 1\ncompress on\n{extra}"))
}

#[test]
fn every_coding_decodes_with_the_real_tools_for_both_framings() {
    let b = text_backend();
    let p = compressing_pibl(b, "");
    for path in ["/len", "/chunked"] {
        for coding in Coding::PREFERENCE {
            let url = format!("http://{}{path}", p.addr);
            let (head, body) = curl_raw(
                &url,
                &["-H", &format!("Accept-Encoding: {}", coding.token())],
            );
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            assert_eq!(
                header(&head, "Content-Encoding"),
                Some(coding.token()),
                "{path}: {head}"
            );
            assert_eq!(header(&head, "Content-Length"), None, "{head}");
            assert!(head.contains("Vary: Accept-Encoding\r\n"), "{head}");
            assert!(!body.is_empty());
            // curl --raw leaves the chunked framing: curl again, which takes the framing off
            // but (without --compressed) leaves the coding to the real tool.
            let out = Command::new("curl")
                .args([
                    "-s",
                    "--max-time",
                    "30",
                    "-H",
                    &format!("Accept-Encoding: {}", coding.token()),
                    &url,
                ])
                .output()
                .expect("curl");
            if let Some(decoded) = decode_with_tool(coding, &out.stdout) {
                assert!(decoded == page(), "{path} {coding:?}: decoded differs");
            }
            if path == "/len" {
                assert_eq!(header(&head, "ETag"), Some("W/\"v1\""), "{head}");
            } else {
                assert!(head.contains("Vary: Cookie\r\n"), "{head}");
            }
        }
        // curl --compressed negotiates and decodes by itself.
        let out = Command::new("curl")
            .args([
                "-s",
                "--compressed",
                "--max-time",
                "30",
                &format!("http://{}{path}", p.addr),
            ])
            .output()
            .expect("curl");
        assert!(out.stdout == page(), "{path}: curl --compressed differs");
    }
}

#[test]
fn what_is_never_compressed_goes_as_the_backend_sent_it() {
    let b = text_backend();
    let p = compressing_pibl(b, "");
    let base = format!("http://{}", p.addr);
    let gzip = ["-H", "Accept-Encoding: gzip, br"];
    for (path, extra) in [
        ("/notransform", &[][..]),
        ("/encoded", &[][..]),
        ("/small", &[][..]),
        ("/png", &[][..]),
        ("/len", &["-H", "Range: bytes=0-99"][..]),
    ] {
        let mut args = gzip.to_vec();
        args.extend_from_slice(extra);
        let (head, _) = curl_raw(&format!("{base}{path}"), &args);
        let coding = header(&head, "Content-Encoding");
        if path == "/encoded" {
            assert_eq!(coding, Some("gzip"), "{head}");
            assert!(!head.contains("Vary"), "{head}");
        } else {
            assert_eq!(coding, None, "{path}: {head}");
        }
    }
    for refused in ["gzip;q=0, br;q=0, zstd;q=0", "identity", ""] {
        let (head, body) = curl_raw(
            &format!("{base}/len"),
            &["-H", &format!("Accept-Encoding: {refused}")],
        );
        assert_eq!(header(&head, "Content-Encoding"), None, "{refused}: {head}");
        assert!(body == page(), "{refused}: identity body");
        assert_eq!(header(&head, "ETag"), Some("\"v1\""), "{head}");
    }
    // identity;q=0 with nothing else acceptable: pibl still sends identity (no 406).
    let (head, _) = curl_raw(
        &format!("{base}/len"),
        &["-H", "Accept-Encoding: gzip;q=0.5, identity;q=0"],
    );
    assert_eq!(header(&head, "Content-Encoding"), Some("gzip"), "{head}");
    // HEAD: the GET's head, nothing compressed.
    let (head, _) = curl_raw(
        &format!("{base}/len"),
        &["-I", "-H", "Accept-Encoding: gzip"],
    );
    assert_eq!(header(&head, "Content-Encoding"), None, "{head}");
    assert_eq!(header(&head, "Content-Length"), Some("200000"), "{head}");
}

#[test]
fn compress_off_is_identity_byte_for_byte() {
    let b = text_backend();
    let p = Pibl::start(&[b], "workers 1\n");
    for path in ["/len", "/chunked"] {
        let (head, body) = curl_raw(
            &format!("http://{}{path}", p.addr),
            &["-H", "Accept-Encoding: br, gzip"],
        );
        assert_eq!(header(&head, "Content-Encoding"), None, "{head}");
        if path == "/len" {
            assert!(body == page());
            assert_eq!(header(&head, "ETag"), Some("\"v1\""));
        } else {
            assert!(head.contains("Transfer-Encoding: chunked"), "{head}");
        }
    }
}

#[test]
fn an_http10_client_gets_a_close_delimited_compressed_body() {
    let b = text_backend();
    let p = compressing_pibl(b, "");
    for path in ["/len", "/chunked"] {
        let mut c = TcpStream::connect(p.addr).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        c.write_all(
            format!(
                "GET {path} HTTP/1.0\r\nConnection: keep-alive\r\nAccept-Encoding: gzip\r\n\r\n"
            )
            .as_bytes(),
        )
        .expect("send");
        let mut all = Vec::new();
        c.read_to_end(&mut all).expect("read to the close");
        let split = memfind(&all, b"\r\n\r\n").expect("head") + 4;
        let head = String::from_utf8_lossy(&all[..split]).into_owned();
        assert_eq!(header(&head, "Content-Encoding"), Some("gzip"), "{head}");
        assert_eq!(header(&head, "Connection"), Some("close"), "{head}");
        assert_eq!(header(&head, "Transfer-Encoding"), None, "{head}");
        assert_eq!(header(&head, "Content-Length"), None, "{head}");
        if let Some(decoded) = decode_with_tool(Coding::Gzip, &all[split..]) {
            assert!(decoded == page(), "{path}: decoded differs");
        }
    }
}

#[test]
fn a_mebibyte_through_a_slow_client_in_bounded_steps() {
    let b = text_backend();
    let p = compressing_pibl(b, "");
    let mut c = Conn::open(p.addr);
    c.send(b"GET /big HTTP/1.1\r\nHost: x\r\nAccept-Encoding: zstd\r\n\r\n");
    // Read slowly at first: the backend must wait for the client, and nothing breaks.
    std::thread::sleep(Duration::from_millis(300));
    let r = c.read_response(false).expect("response");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Encoding"), Some("zstd"));
    if let Some(decoded) = decode_with_tool(Coding::Zstd, &r.body) {
        assert!(decoded == text(1 << 20), "decoded differs");
    }
    // The connection stays usable: a second request on it.
    let r = c.get("/small");
    assert_eq!(r.status, 200);
}

#[test]
fn the_cache_stores_identity_and_compresses_hits_on_the_fly() {
    let b = text_backend();
    let p = compressing_pibl(b, "cache on\n");
    let base = format!("http://{}", p.addr);
    // A compressed miss is stored as the backend sent it: an identity hit gets those bytes.
    let (head, _) = curl_raw(&format!("{base}/chunked"), &["-H", "Accept-Encoding: gzip"]);
    assert_eq!(header(&head, "Content-Encoding"), Some("gzip"), "{head}");
    assert_eq!(header(&head, "X-Cache"), Some("MISS"), "{head}");
    let (head, body) = curl_raw(&format!("{base}/chunked"), &[]);
    assert_eq!(header(&head, "X-Cache"), Some("HIT"), "{head}");
    assert_eq!(header(&head, "Content-Encoding"), None, "{head}");
    assert!(body == page(), "identity hit");
    // Hits compressed on the fly, each coding, decoded by the real tools.
    let (head, _) = curl_raw(&format!("{base}/len"), &[]);
    assert_eq!(header(&head, "X-Cache"), Some("MISS"), "{head}");
    for coding in Coding::PREFERENCE {
        let accept = format!("Accept-Encoding: {}", coding.token());
        let (head, _) = curl_raw(&format!("{base}/len"), &["-H", &accept]);
        assert_eq!(header(&head, "X-Cache"), Some("HIT"), "{head}");
        assert_eq!(
            header(&head, "Content-Encoding"),
            Some(coding.token()),
            "{head}"
        );
        assert_eq!(header(&head, "Content-Length"), None, "{head}");
        assert_eq!(header(&head, "ETag"), Some("W/\"v1\""), "{head}");
        assert!(head.contains("Vary: Accept-Encoding\r\n"), "{head}");
        let out = Command::new("curl")
            .args([
                "-s",
                "--max-time",
                "30",
                "-H",
                &accept,
                &format!("{base}/len"),
            ])
            .output()
            .expect("curl");
        if let Some(decoded) = decode_with_tool(coding, &out.stdout) {
            assert!(decoded == page(), "{coding:?}: decoded hit differs");
        }
    }
    // The weak ETag still validates: 304.
    let (head, _) = curl_raw(
        &format!("{base}/len"),
        &["-H", "Accept-Encoding: br", "-H", "If-None-Match: W/\"v1\""],
    );
    assert!(head.starts_with("HTTP/1.1 304"), "{head}");
    // An HTTP/1.0 client's compressed hit ends at the close (on the fly: a URL of its own, as
    // `/len`'s gzip variant is stored by now).
    let (head, _) = curl_raw(&format!("{base}/len?http10"), &[]);
    assert_eq!(header(&head, "X-Cache"), Some("MISS"), "{head}");
    let mut c = TcpStream::connect(p.addr).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    // The same Host as curl's: the same cache key.
    let request = format!(
        "GET /len?http10 HTTP/1.0\r\nHost: {}\r\nConnection: keep-alive\r\nAccept-Encoding: gzip\r\n\r\n",
        p.addr
    );
    c.write_all(request.as_bytes()).expect("send");
    let mut all = Vec::new();
    c.read_to_end(&mut all).expect("read to the close");
    let split = memfind(&all, b"\r\n\r\n").expect("head") + 4;
    let head = String::from_utf8_lossy(&all[..split]).into_owned();
    assert_eq!(header(&head, "X-Cache"), Some("HIT"), "{head}");
    assert_eq!(header(&head, "Connection"), Some("close"), "{head}");
    if let Some(decoded) = decode_with_tool(Coding::Gzip, &all[split..]) {
        assert!(decoded == page(), "HTTP/1.0 hit decoded differs");
    }
}

#[test]
fn bytes_before_and_after_are_counted_per_coding() {
    let b = text_backend();
    let p = compressing_pibl(b, "admin 127.0.0.1:0\n");
    let adm = p.admin_addr();
    let (head, _) = curl_raw(
        &format!("http://{}/len", p.addr),
        &["-H", "Accept-Encoding: br"],
    );
    assert_eq!(header(&head, "Content-Encoding"), Some("br"), "{head}");
    // The exchange is counted as it is logged, just after its last byte: poll briefly.
    let mut metrics = String::new();
    for _ in 0..50 {
        let mut c = Conn::open(adm);
        metrics = c.get("/metrics").text();
        if metrics.contains("pibl_compress_bytes_in_total{coding=\"br\"} 200000\n") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        metrics.contains("pibl_compress_bytes_in_total{coding=\"br\"} 200000\n"),
        "{metrics}"
    );
    let out: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("pibl_compress_bytes_out_total{coding=\"br\"} "))
        .and_then(|v| v.parse().ok())
        .expect("br bytes out");
    assert!(out > 0 && out < 200_000 / 2, "{out}");
    assert!(metrics.contains("pibl_compress_bytes_in_total{coding=\"gzip\"} 0\n"));
}

/// The files of the entries in a cache directory (`.meta` sidecars), after the last publish.
fn cache_entries(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|f| f.file_name().to_string_lossy().ends_with(".meta"))
                .filter(|f| !f.file_name().to_string_lossy().starts_with(".tmp"))
                .count()
        })
        .unwrap_or(0)
}

/// One compressed hit of `/len` in `coding` with Host `site`: (head, body decoded by curl's
/// raw view, or as received).
fn hit_in(addr: SocketAddr, path: &str, coding: Coding) -> (String, Vec<u8>) {
    let accept = format!("Accept-Encoding: {}", coding.token());
    curl_raw(
        &format!("http://{addr}{path}"),
        &["-H", &accept, "-H", "Host: site"],
    )
}

#[test]
fn the_first_compressed_hit_makes_a_variant_that_later_hits_are_served_from() {
    let b = text_backend();
    let p = compressing_pibl(b, "cache on\nadmin 127.0.0.1:0\n");
    let cache_dir = p.dir.path().join("cache");
    let (head, _) = curl_raw(&format!("http://{}/len", p.addr), &["-H", "Host: site"]);
    assert_eq!(header(&head, "X-Cache"), Some("MISS"), "{head}");
    for (made, coding) in Coding::PREFERENCE.into_iter().enumerate() {
        // The first compressed hit: on the fly (no length known), writing the variant.
        let (head, _) = hit_in(p.addr, "/len", coding);
        assert_eq!(header(&head, "X-Cache"), Some("HIT"), "{head}");
        assert_eq!(header(&head, "Content-Length"), None, "{head}");
        assert_eq!(cache_entries(&cache_dir), 2 + made, "variant stored");
        // The next ones: the variant, an ordinary hit with its own length.
        for _ in 0..2 {
            let (head, body) = hit_in(p.addr, "/len", coding);
            assert_eq!(header(&head, "X-Cache"), Some("HIT"), "{head}");
            assert_eq!(
                header(&head, "Content-Encoding"),
                Some(coding.token()),
                "{head}"
            );
            assert_eq!(
                header(&head, "Content-Length"),
                Some(body.len().to_string().as_str()),
                "{head}"
            );
            assert_eq!(header(&head, "Transfer-Encoding"), None, "{head}");
            assert_eq!(header(&head, "ETag"), Some("W/\"v1\""), "{head}");
            assert!(head.contains("Vary: Accept-Encoding\r\n"), "{head}");
            assert!(body.len() < page().len() / 2, "{coding:?}: {}", body.len());
            if let Some(decoded) = decode_with_tool(coding, &body) {
                assert!(decoded == page(), "{coding:?}: decoded variant differs");
            }
        }
    }
    assert_eq!(cache_entries(&cache_dir), 4);
    // An identity hit is still the identity entry.
    let (head, body) = curl_raw(&format!("http://{}/len", p.addr), &["-H", "Host: site"]);
    assert_eq!(header(&head, "Content-Encoding"), None, "{head}");
    assert!(body == page(), "identity hit");
    // The weak ETag validates against the variant too.
    let (head, _) = curl_raw(
        &format!("http://{}/len", p.addr),
        &[
            "-H",
            "Host: site",
            "-H",
            "Accept-Encoding: br",
            "-H",
            "If-None-Match: W/\"v1\"",
        ],
    );
    assert!(head.starts_with("HTTP/1.1 304"), "{head}");
    // An HTTP/1.0 client gets the variant with its length, and keeps its connection.
    let mut c = Conn::open(p.addr);
    c.send(b"GET /len HTTP/1.0\r\nHost: site\r\nConnection: keep-alive\r\nAccept-Encoding: gzip\r\n\r\n");
    let r = c.read_response(false).expect("a response");
    assert_eq!(r.header("Content-Encoding"), Some("gzip"));
    assert_eq!(r.header("Connection"), Some("keep-alive"));
    if let Some(decoded) = decode_with_tool(Coding::Gzip, &r.body) {
        assert!(decoded == page(), "HTTP/1.0 variant differs");
    }
    // A purge of the URL drops the variants with the identity entry.
    let out = Command::new("curl")
        .args(["-s", "-X", "PURGE"])
        .arg(format!("http://{}/cache/http://site/len", p.admin_addr()))
        .output()
        .expect("curl");
    let reply = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(reply.starts_with("purged 4 entries"), "{reply}");
    assert!(reply.contains("GET http://site:80/len [br]\n"), "{reply}");
    assert_eq!(cache_entries(&cache_dir), 0);
    let (head, _) = hit_in(p.addr, "/len", Coding::Br);
    assert_eq!(header(&head, "X-Cache"), Some("MISS"), "{head}");
}

#[test]
fn variants_are_served_from_disk_after_a_restart() {
    let b = text_backend();
    let p = compressing_pibl(b, "cache on\n");
    let cache_dir = p.dir.path().join("cache");
    let (head, _) = curl_raw(&format!("http://{}/len", p.addr), &["-H", "Host: site"]);
    assert_eq!(header(&head, "X-Cache"), Some("MISS"), "{head}");
    let (head, _) = hit_in(p.addr, "/len", Coding::Zstd);
    assert_eq!(header(&head, "Content-Length"), None, "{head}");
    assert_eq!(cache_entries(&cache_dir), 2);
    let dir = p.kill9();
    let p2 = Pibl::start_in(dir, &["-c", "pibl.conf"]);
    let (head, body) = hit_in(p2.addr, "/len", Coding::Zstd);
    assert_eq!(header(&head, "X-Cache"), Some("HIT"), "{head}");
    assert_eq!(
        header(&head, "Content-Length"),
        Some(body.len().to_string().as_str()),
        "from the stored variant: {head}"
    );
    if let Some(decoded) = decode_with_tool(Coding::Zstd, &body) {
        assert!(decoded == page(), "restarted variant differs");
    }
}

#[test]
fn a_big_compressed_response_leaves_room_for_the_workers_other_connections() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let b = text_backend();
    let p = compressing_pibl(b, "");
    let addr = p.addr;
    let big_done = Arc::new(AtomicBool::new(false));
    let done = big_done.clone();
    // One client fetches 4 MiB compressed and reads it late, then in small pieces.
    let big = std::thread::spawn(move || {
        let mut c = TcpStream::connect(addr).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        c.write_all(
            b"GET /huge HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n",
        )
        .expect("send");
        std::thread::sleep(Duration::from_millis(300));
        let mut all = Vec::new();
        let mut piece = [0u8; 8192];
        loop {
            match c.read(&mut piece) {
                Ok(0) => break,
                Ok(n) => all.extend_from_slice(&piece[..n]),
                Err(e) => panic!("reading the big response: {e}"),
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        done.store(true, Ordering::SeqCst);
        all
    });
    // The other client's small requests on the same worker keep being answered meanwhile.
    let mut c = Conn::open(addr);
    let mut answered_during = 0;
    for _ in 0..20 {
        let r = c.get("/small");
        assert_eq!(r.status, 200);
        if !big_done.load(Ordering::SeqCst) {
            answered_during += 1;
        }
    }
    let all = big.join().expect("the big client");
    assert!(
        answered_during > 0,
        "no small request answered during the big one"
    );
    let split = memfind(&all, b"\r\n\r\n").expect("head") + 4;
    let head = String::from_utf8_lossy(&all[..split]).into_owned();
    assert_eq!(header(&head, "Content-Encoding"), Some("gzip"), "{head}");
    let body = dechunk(&all[split..]);
    if let Some(decoded) = decode_with_tool(Coding::Gzip, &body) {
        assert!(decoded == text(4 << 20), "the big response decoded differs");
    }
}

/// A whole chunked body's data.
fn dechunk(mut wire: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = memfind(wire, b"\r\n").expect("a chunk size line");
        let size_text = String::from_utf8_lossy(&wire[..line_end]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .expect("a chunk size");
        wire = &wire[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&wire[..size]);
        wire = &wire[size + 2..];
    }
}

#[test]
fn short_bodies_of_unknown_length_go_as_they_are() {
    let b = text_backend();
    let p = compressing_pibl(b, "");
    for path in ["/shortchunked", "/shortclose"] {
        let (head, body) = curl_raw(
            &format!("http://{}{path}", p.addr),
            &["-H", "Accept-Encoding: gzip, br, zstd"],
        );
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(header(&head, "Content-Encoding"), None, "{path}: {head}");
        assert_eq!(header(&head, "Vary"), None, "{path}: {head}");
        let plain = if header(&head, "Transfer-Encoding") == Some("chunked") {
            dechunk(&body)
        } else {
            body
        };
        assert!(
            plain == text(100),
            "{path}: the body as the backend sent it"
        );
    }
    // Longer than the minimum, still of unknown length: compressed.
    let (head, _) = curl_raw(
        &format!("http://{}/chunked", p.addr),
        &["-H", "Accept-Encoding: gzip"],
    );
    assert_eq!(header(&head, "Content-Encoding"), Some("gzip"), "{head}");
    // An HTTP/1.0 client of a short chunked body: as it is too.
    let mut c = Conn::open(p.addr);
    c.send(b"GET /shortchunked HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nAccept-Encoding: gzip\r\n\r\n");
    let r = c.read_response(false).expect("a response");
    assert_eq!(r.header("Content-Encoding"), None);
    assert!(r.body == text(100));
}
