//! A `certificate CHAIN KEY` pair read from disk: the PEM chain (leaf first, as certbot's
//! `fullchain.pem`), the private key (PKCS#8, RSA PKCS#1 or EC SEC1), checked together, and
//! what an operator needs to see about it (its names and when it expires). Every error and
//! warning names the file, so `pibl --check` and a reload say which file is wrong.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::extensions::GeneralName;

/// A certificate expiring sooner than this is warned about at start, on reload and in `--check`.
pub const EXPIRY_WARNING_SECS: i64 = 30 * 86_400;

/// A loaded certificate: the key rustls signs with, and what status pages show about it.
#[derive(Debug, Clone)]
pub struct LoadedCert {
    pub info: CertInfo,
    pub key: Arc<CertifiedKey>,
    /// Problems that do not stop pibl (expiring soon, key file readable by others), each naming
    /// its file; the caller logs or prints them.
    pub warnings: Vec<String>,
}

/// What is known about a certificate without its key: for SNI, `--check`, `/status`, `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub chain_path: PathBuf,
    pub key_path: PathBuf,
    /// DNS names (lowercase, `*.` wildcards kept) and IP addresses of the leaf: its subject
    /// alternative names, or its common name when it has none.
    pub names: Vec<String>,
    /// The leaf's notAfter, seconds since the Unix epoch.
    pub not_after: i64,
}

impl CertInfo {
    /// Seconds until the certificate expires (negative once it has).
    pub fn expires_in(&self, now: SystemTime) -> i64 {
        self.not_after - unix_seconds(now)
    }

    /// The names as one line: `example.com, www.example.com`.
    pub fn names_joined(&self) -> String {
        self.names.join(", ")
    }

    /// notAfter as `2027-03-01 12:00:00 UTC`.
    pub fn not_after_text(&self) -> String {
        format_unix_time(self.not_after)
    }
}

/// Reads and checks one certificate pair. `now` decides expiry (a parameter, for tests).
pub fn load(
    chain_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
    now: SystemTime,
) -> Result<LoadedCert, String> {
    let chain_bytes = read(chain_path, "certificate")?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&chain_bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: not a PEM certificate file: {e}", chain_path.display()))?;
    let Some(leaf) = chain.first() else {
        return Err(format!(
            "{}: no certificate in it (expected '-----BEGIN CERTIFICATE-----')",
            chain_path.display()
        ));
    };
    let (names, not_after) = describe_leaf(leaf.as_ref())
        .map_err(|e| format!("{}: cannot read the certificate: {e}", chain_path.display()))?;

    let key_bytes = read(key_path, "key")?;
    let key = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| match e {
        pem::Error::NoItemsFound => format!(
            "{}: no private key in it (expected PKCS#8 'BEGIN PRIVATE KEY', RSA or EC)",
            key_path.display()
        ),
        e => format!("{}: not a PEM key file: {e}", key_path.display()),
    })?;
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("{}: unusable private key: {e}", key_path.display()))?;
    let certified = CertifiedKey::new(chain, signing_key);
    if let Err(e) = certified.keys_match() {
        if !matches!(
            e,
            rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)
        ) {
            return Err(format!(
                "{}: the key does not match the certificate {} ({e})",
                key_path.display(),
                chain_path.display()
            ));
        }
    }

    let info = CertInfo {
        chain_path: chain_path.to_path_buf(),
        key_path: key_path.to_path_buf(),
        names,
        not_after,
    };
    let left = info.expires_in(now);
    if left <= 0 {
        return Err(format!(
            "{}: the certificate expired on {}",
            chain_path.display(),
            info.not_after_text()
        ));
    }
    let mut warnings = Vec::new();
    if left < EXPIRY_WARNING_SECS {
        warnings.push(format!(
            "{}: the certificate expires in {} days ({})",
            chain_path.display(),
            left / 86_400,
            info.not_after_text()
        ));
    }
    if let Some(w) = readable_by_others(key_path) {
        warnings.push(w);
    }
    Ok(LoadedCert {
        info,
        key: Arc::new(certified),
        warnings,
    })
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: cannot read the {what} file: {e}", path.display()))
}

/// The leaf's names (SAN DNS and IP entries; the CN only without any) and its notAfter.
fn describe_leaf(der: &[u8]) -> Result<(Vec<String>, i64), String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => names.push(d.to_ascii_lowercase()),
                GeneralName::IPAddress(bytes) => {
                    let ip = match bytes.len() {
                        4 => <[u8; 4]>::try_from(*bytes).ok().map(IpAddr::from),
                        16 => <[u8; 16]>::try_from(*bytes).ok().map(IpAddr::from),
                        _ => None,
                    };
                    names.extend(ip.map(|ip| ip.to_string()));
                }
                _ => {}
            }
        }
    }
    if names.is_empty() {
        let cn = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok());
        names.extend(cn.map(str::to_ascii_lowercase));
    }
    Ok((names, cert.validity().not_after.timestamp()))
}

/// A warning when others than the owner (and group) may read the key, as sshd warns.
#[cfg(unix)]
fn readable_by_others(key_path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(key_path).ok()?.permissions().mode();
    (mode & 0o004 != 0).then(|| {
        format!(
            "{}: the private key is readable by every user (mode {:o}); chmod 600 it",
            key_path.display(),
            mode & 0o777
        )
    })
}

#[cfg(not(unix))]
fn readable_by_others(_key_path: &Path) -> Option<String> {
    None
}

pub fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// `2027-03-01 12:00:00 UTC`, or the raw number when out of range.
pub fn format_unix_time(secs: i64) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(format).ok())
        .unwrap_or_else(|| secs.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::selfsigned::DemoCa;
    use std::time::Duration;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write");
        p
    }

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("pibl-certs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("dir");
        d
    }

    #[test]
    fn a_good_pair_loads_with_its_names_and_expiry() {
        let d = dir("good");
        let ca = DemoCa::generate("t").expect("ca");
        let c = ca
            .issue(
                &["example.com", "*.example.com", "127.0.0.1"],
                Duration::from_secs(90 * 86_400),
            )
            .expect("leaf");
        let chain = write(&d, "c.pem", &c.chain_pem);
        let key = write(&d, "k.pem", &c.key_pem);
        let l = load(&chain, &key, &crate::tls::provider(), SystemTime::now()).expect("loads");
        assert_eq!(l.info.names, ["example.com", "*.example.com", "127.0.0.1"]);
        let days = l.info.expires_in(SystemTime::now()) / 86_400;
        assert!((89..=90).contains(&days), "{days}");
        assert_eq!(l.key.cert.len(), 2, "the whole chain is served");
    }

    #[test]
    fn errors_name_the_file() {
        let d = dir("bad");
        let ca = DemoCa::generate("t").expect("ca");
        let a = ca
            .issue(&["a.test"], Duration::from_secs(86_400 * 60))
            .expect("a");
        let b = ca
            .issue(&["b.test"], Duration::from_secs(86_400 * 60))
            .expect("b");
        let chain = write(&d, "a.pem", &a.chain_pem);
        let other_key = write(&d, "b.key", &b.key_pem);
        let p = crate::tls::provider();
        let now = SystemTime::now();
        let e = load(&chain, &other_key, &p, now).expect_err("mismatch");
        assert!(e.contains("b.key") && e.contains("does not match"), "{e}");
        let e = load(&d.join("missing.pem"), &other_key, &p, now).expect_err("missing");
        assert!(
            e.contains("missing.pem") && e.contains("cannot read"),
            "{e}"
        );
        let e = load(&other_key, &other_key, &p, now).expect_err("no cert");
        assert!(e.contains("b.key: no certificate"), "{e}");
        let e = load(&chain, &chain, &p, now).expect_err("no key");
        assert!(e.contains("a.pem: no private key"), "{e}");

        let now_t = time::OffsetDateTime::now_utc();
        let old = ca
            .issue_between(
                &["old.test"],
                (
                    now_t - time::Duration::days(60),
                    now_t - time::Duration::days(1),
                ),
            )
            .expect("old");
        let chain = write(&d, "old.pem", &old.chain_pem);
        let key = write(&d, "old.key", &old.key_pem);
        let e = load(&chain, &key, &p, now).expect_err("expired");
        assert!(e.contains("old.pem: the certificate expired"), "{e}");
    }

    #[test]
    fn expiring_soon_and_world_readable_keys_are_warnings() {
        use std::os::unix::fs::PermissionsExt;
        let d = dir("warn");
        let ca = DemoCa::generate("t").expect("ca");
        let c = ca
            .issue(&["soon.test"], Duration::from_secs(5 * 86_400))
            .expect("leaf");
        let chain = write(&d, "soon.pem", &c.chain_pem);
        let key = write(&d, "soon.key", &c.key_pem);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let l = load(&chain, &key, &crate::tls::provider(), SystemTime::now()).expect("loads");
        assert_eq!(l.warnings.len(), 2, "{:?}", l.warnings);
        assert!(l.warnings[0].contains("soon.pem: the certificate expires in"));
        assert!(l.warnings[1].contains("soon.key: the private key is readable by every user"));
    }
}
