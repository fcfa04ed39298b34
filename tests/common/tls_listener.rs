//! What the TLS-listener tests share: certificate files written where pibl's config can name
//! them, and the listeners read back from pibl's start-up line.

use std::net::SocketAddr;
use std::path::Path;

use super::Pibl;

/// Writes `FILE.pem` (the chain) and `FILE.key` (mode 0600) in `dir`; returns the config's
/// `certificate` line for them.
pub fn write_cert_pair(dir: &Path, file: &str, chain: &str, key: &str) -> String {
    let (cp, kp) = (
        dir.join(format!("{file}.pem")),
        dir.join(format!("{file}.key")),
    );
    std::fs::write(&cp, chain).expect("write chain");
    std::fs::write(&kp, key).expect("write key");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&kp, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    format!("certificate {} {}\n", cp.display(), kp.display())
}

/// Every listener in the start-up line (`listening on A and B tls and C ...`), with whether
/// it is a TLS one.
pub fn listeners(pibl: &Pibl) -> Vec<(SocketAddr, bool)> {
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

/// The first TLS listener of a running pibl.
pub fn first_tls(pibl: &Pibl) -> SocketAddr {
    listeners(pibl)
        .into_iter()
        .find_map(|(a, tls)| tls.then_some(a))
        .expect("a TLS listener in the start-up line")
}
