//! pibl-client against a running pibl in front of real loopback backends.

mod common;

use std::process::Command;

use common::{pattern, Backend, Pibl, TempDir};

fn client(dir: &TempDir, args: &[&str]) -> (i32, Vec<u8>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pibl-client"))
        .args(["--cache-dir", "cache"])
        .args(args)
        .current_dir(dir.path())
        .output()
        .expect("run pibl-client");
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn client_get_head_post_through_pibl_are_logged() {
    let backends: Vec<Backend> = ["a", "b"].iter().map(|n| Backend::start(n)).collect();
    let p = Pibl::start(&[backends[0].addr, backends[1].addr], "");
    let dir = TempDir::new("client-pibl");
    let base = format!("http://{}", p.addr);

    let (code, out, _) = client(
        &dir,
        &["--no-cache", "req.log", &format!("{base}/hello?x=1")],
    );
    assert_eq!(code, 0);
    assert!(String::from_utf8_lossy(&out).contains("GET /hello?x=1"));

    let (code, out, _) = client(&dir, &["-X", "HEAD", "req.log", &format!("{base}/h")]);
    assert_eq!(code, 0);
    assert!(String::from_utf8_lossy(&out).contains("Via: 1.1 pibl"));

    // The echo comes back as application/octet-stream: saved to a file, not printed.
    let (code, _, err) = client(
        &dir,
        &["-d", "posted body", "req.log", &format!("{base}/echo")],
    );
    assert_eq!(code, 0);
    assert!(err.contains("echo"), "{err}");
    assert_eq!(
        std::fs::read(dir.path().join("echo")).unwrap(),
        b"posted body"
    );

    let log = std::fs::read_to_string(dir.path().join("req.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 3, "{log}");
    assert!(
        lines[0].contains(" GET ") && lines[0].contains(" 200 "),
        "{log}"
    );
    assert!(lines[1].contains(" HEAD "), "{log}");
    assert!(
        lines[2].contains(" POST ") && lines[2].contains("/echo"),
        "{log}"
    );
    // Round robin through pibl: both backends saw traffic.
    assert!(backends.iter().all(|b| b.count() > 0));
}

#[test]
fn client_saves_a_large_binary_body_through_pibl_byte_identical() {
    let b = Backend::start("bin");
    let p = Pibl::start(&[b.addr], "");
    let dir = TempDir::new("client-pibl");
    let n = 3 * 1024 * 1024;
    let url = format!("http://{}/big?n={n}", p.addr);
    let (code, _, err) = client(&dir, &["-o", "out.bin", "req.log", &url]);
    assert_eq!(code, 0, "{err}");
    let got = std::fs::read(dir.path().join("out.bin")).unwrap();
    assert_eq!(got.len(), n);
    assert_eq!(crc32fast::hash(&got), crc32fast::hash(&pattern(n)));
}
