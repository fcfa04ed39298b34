//! testssl.sh (Debian's `testssl.sh` package) against a TLS listener: the protocols pibl offers.
//! Skipped, with a message, when testssl is not installed (`apt-get install testssl.sh`). The
//! full run's findings are summarised in docs/tls.md.

mod common;

use std::process::Command;

use common::tls_listener::{first_tls, write_cert_pair};
use common::tls_origin::TestCa;
use common::{Backend, Pibl, TempDir};

/// The installed testssl command (`testssl` on Debian, `testssl.sh` elsewhere).
fn testssl() -> Option<&'static str> {
    ["testssl", "testssl.sh"].into_iter().find(|cmd| {
        Command::new(cmd)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success() || !o.stdout.is_empty())
    })
}

#[test]
fn testssl_finds_only_tls_1_2_and_1_3() {
    let Some(cmd) = testssl() else {
        eprintln!("skipped: testssl.sh is not installed (apt-get install testssl.sh)");
        return;
    };
    let backend = Backend::start("b1");
    let ca = TestCa::new("testssl CA");
    let cert = ca.issue(&["localhost", "127.0.0.1"]);
    let dir = TempDir::new("testssl-certs");
    let line = write_cert_pair(dir.path(), "c", &cert.chain_pem, &cert.key_pem);
    let pibl = Pibl::start(&[backend.addr], &format!("listen 127.0.0.1:0 tls\n{line}"));
    let port = first_tls(&pibl).port();
    // Protocols only (-p): a few seconds, where a full run takes minutes.
    let out = Command::new("timeout")
        .args([
            "120",
            cmd,
            "--color",
            "0",
            "--quiet",
            "--warnings",
            "off",
            "-p",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .output()
        .expect("run testssl");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = |name: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no '{name}' line in:\n{text}"))
            .to_string()
    };
    for old in ["SSLv2", "SSLv3", "TLS 1 ", "TLS 1.1"] {
        assert!(line(old).contains("not offered"), "{old}: {text}");
    }
    for current in ["TLS 1.2", "TLS 1.3"] {
        let l = line(current);
        assert!(l.contains("offered") && !l.contains("not offered"), "{l}");
    }
}
