//! Several `listen` lines, plain and TLS side by side (issue 14): every worker accepts on all of
//! them, and `redirect_https` sends to the first TLS one.

mod common;

use std::net::SocketAddr;
use std::process::Command;

use common::tls_origin::TestCa;
use common::{get, Backend, Pibl, TempDir};

/// Every listener in the start-up line (`listening on A and B tls and C ...`), with its kind.
fn listeners(pibl: &Pibl) -> Vec<(SocketAddr, bool)> {
    let lines = pibl.stdout.lock().expect("stdout").clone();
    let rest = lines
        .iter()
        .find_map(|l| l.split("listening on ").nth(1).map(str::to_string))
        .expect("the start-up line");
    let rest = rest.split(" with ").next().unwrap_or("");
    let words: Vec<&str> = rest.split_whitespace().collect();
    words
        .iter()
        .enumerate()
        .filter_map(|(i, w)| {
            let addr: SocketAddr = w.trim_end_matches(',').parse().ok()?;
            Some((addr, words.get(i + 1) == Some(&"tls")))
        })
        .collect()
}

#[test]
fn two_plain_and_two_tls_listeners_all_serve() {
    let backend = Backend::start("many");
    let ca = TestCa::new("listeners CA");
    let cert = ca.issue(&["localhost", "127.0.0.1"]);
    let certs = TempDir::new("listeners-certs");
    let (cp, kp) = (certs.path().join("c.pem"), certs.path().join("k.pem"));
    std::fs::write(&cp, &cert.chain_pem).expect("chain");
    std::fs::write(&kp, &cert.key_pem).expect("key");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&kp, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let pibl = Pibl::start(
        &[backend.addr],
        &format!(
            "listen 127.0.0.1:0\nlisten 127.0.0.1:0 tls\nlisten 127.0.0.1:0 tls\n\
             certificate {} {}\n",
            cp.display(),
            kp.display()
        ),
    );
    let all = listeners(&pibl);
    assert_eq!(
        all.iter().map(|&(_, tls)| tls).collect::<Vec<_>>(),
        vec![false, false, true, true],
        "{all:?}"
    );
    for &(addr, _) in all.iter().filter(|(_, tls)| !tls) {
        let r = get(addr, "/plain");
        assert_eq!(r.status, 200, "plain listener {addr}");
        assert_eq!(r.text(), "backend many: GET /plain\n");
    }
    let have_curl = Command::new("curl").arg("--version").output().is_ok();
    if !have_curl {
        eprintln!("skipped the TLS half: curl is not installed");
        return;
    }
    for &(addr, _) in all.iter().filter(|(_, tls)| *tls) {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "20", "--cacert"])
            .arg(&ca.cert_path)
            .arg(format!("https://127.0.0.1:{}/tls", addr.port()))
            .output()
            .expect("curl");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "backend many: GET /tls\n",
            "TLS listener {addr}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
