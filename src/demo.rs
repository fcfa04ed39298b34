//! `pibl --demo`: three pibl-origin servers and the proxy in front of them, in one process, so
//! a newcomer sees round robin and the cache work with one command.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::sign::CertifiedKey;

use crate::config::{Config, DEFAULT_CACHE_TTL};
use crate::logging::LogWriter;
use crate::origin::{Origin, OriginConfig};
use crate::proxy::Proxy;
use crate::tls::client::{provider, roots_from_file, server_name};
use crate::tls::selfsigned::DemoCa;

/// How many origin servers the demo runs.
pub const ORIGINS: usize = 3;

/// The demo's CA certificate, written beside the cache: what a client trusts (`--cacert`).
pub const DEMO_CA_FILE: &str = "pibl-demo-ca.pem";
/// The demo's server certificate chain (leaf, then CA).
pub const DEMO_CERT_FILE: &str = "pibl-demo-cert.pem";
/// The demo's server key (mode 0600).
pub const DEMO_KEY_FILE: &str = "pibl-demo-key.pem";
/// The names the demo's certificate is for: what a browser or curl on this machine asks for.
pub const DEMO_TLS_NAMES: [&str; 2] = ["localhost", "127.0.0.1"];
/// How long a generated demo certificate is valid. The CA's key is not kept, so a new leaf
/// means a new CA that clients must trust again: the leaf lives long (private CAs are not held
/// to the public 398-day limit).
const DEMO_CERT_LIFETIME: Duration = Duration::from_secs(2 * 365 * 86_400);
/// Files valid for less than this are replaced at start.
/// The demo's HTTPS port is its plain port plus this: 8080 (the default) and 8443, as web
/// servers pair them; `--port 9090` gives 9453; `--port 0` lets the kernel pick both.
pub const DEMO_TLS_PORT_OFFSET: u16 = 363;

/// The HTTPS port beside the plain `port` (`None`: past 65535, no HTTPS).
pub fn demo_tls_port(port: u16) -> Option<u16> {
    if port == 0 {
        return Some(0);
    }
    port.checked_add(DEMO_TLS_PORT_OFFSET)
}

const DEMO_CERT_MIN_REMAINING: Duration = Duration::from_secs(30 * 86_400);

/// The running demo.
pub struct Demo {
    origins: Vec<Origin>,
    proxy: Proxy,
    /// The demo's TLS files, `None` when they could not be written (the demo runs plain).
    certificates: Option<DemoCertificates>,
}

/// Where the demo's CA, certificate and key are, for `certificate CERT KEY` and the banner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoCertificates {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The files were already there and still good (the CA a client trusts did not change).
    pub reused: bool,
}

impl DemoCertificates {
    /// Makes sure `dir` holds a CA, and a certificate and key for `localhost` and `127.0.0.1`
    /// signed by it, valid for 30 more days at least: files already there that pass are reused
    /// (so the CA a browser or curl trusts stays the same from start to start), anything else
    /// is replaced by a new set.
    pub fn ensure(dir: &Path) -> Result<DemoCertificates, String> {
        let mut files = DemoCertificates {
            ca: dir.join(DEMO_CA_FILE),
            cert: dir.join(DEMO_CERT_FILE),
            key: dir.join(DEMO_KEY_FILE),
            reused: true,
        };
        let now = SystemTime::now();
        if files.still_good(now + DEMO_CERT_MIN_REMAINING).is_ok() {
            // An older pibl, or a copy, may have left the key readable by others.
            restrict_to_owner(&files.key)?;
            return Ok(files);
        }
        files.reused = false;
        let ca = DemoCa::generate("pibl demo CA").map_err(|e| format!("demo CA: {e}"))?;
        let leaf = ca
            .issue(&DEMO_TLS_NAMES, DEMO_CERT_LIFETIME)
            .map_err(|e| format!("demo certificate: {e}"))?;
        // Key first: a certificate is never on disk without the key that goes with it.
        write_atomically(&files.key, leaf.key_pem.as_bytes(), 0o600)?;
        write_atomically(&files.cert, leaf.chain_pem.as_bytes(), 0o644)?;
        write_atomically(&files.ca, ca.cert_pem.as_bytes(), 0o644)?;
        Ok(files)
    }

    /// The line the banner prints: a curl command that verifies the demo's HTTPS listener.
    pub fn banner_line(&self, port: u16) -> String {
        let ca = match self.ca.parent() {
            Some(dir) if dir.as_os_str().is_empty() => format!("./{}", self.ca.display()),
            _ => self.ca.display().to_string(),
        };
        format!("curl --cacert {ca} https://localhost:{port}/")
    }

    /// Ok when the three files are there, the key is the certificate's, and the certificate
    /// chains to the CA file for both names and the CA is valid, all still at `until`.
    fn still_good(&self, until: SystemTime) -> Result<(), String> {
        let read =
            |path: &Path| std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()));
        let chain_pem = read(&self.cert)?;
        let chain = CertificateDer::pem_slice_iter(&chain_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{}: {e}", self.cert.display()))?;
        let key = PrivateKeyDer::from_pem_slice(&read(&self.key)?)
            .map_err(|e| format!("{}: {e}", self.key.display()))?;
        let Some((leaf, intermediates)) = chain.split_first() else {
            return Err(format!("{}: no certificate", self.cert.display()));
        };
        let provider = provider();
        CertifiedKey::from_der(chain.clone(), key, &provider)
            .map_err(|e| format!("{}: {e}", self.key.display()))?;
        let ca_pem = read(&self.ca)?;
        let ca_until = x509_parser::pem::parse_x509_pem(&ca_pem)
            .ok()
            .and_then(|(_, pem)| {
                let cert = pem.parse_x509().ok()?;
                Some(cert.validity().not_after.timestamp())
            })
            .ok_or_else(|| format!("{}: not a PEM certificate", self.ca.display()))?;
        let until_secs = until.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if ca_until < i64::try_from(until_secs).unwrap_or(i64::MAX) {
            return Err(format!("{}: expires soon", self.ca.display()));
        }
        let roots = roots_from_file(&self.ca).map_err(|e| e.to_string())?;
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| e.to_string())?;
        let at = UnixTime::since_unix_epoch(Duration::from_secs(until_secs));
        for name in DEMO_TLS_NAMES {
            let name = server_name(name)?;
            verifier
                .verify_server_cert(leaf, intermediates, &name, &[], at)
                .map_err(|e| format!("{}: {e}", self.cert.display()))?;
        }
        Ok(())
    }
}

/// The demo's TLS files in the directory that holds the cache (`./cache`: the current one);
/// when they cannot be written the demo goes on without them, and says why.
fn demo_certificates_beside(cache_dir: &Path) -> Option<DemoCertificates> {
    let dir = match cache_dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    match DemoCertificates::ensure(dir) {
        Ok(files) => {
            log::info!(
                "demo certificate for {}: {} (CA {}, {})",
                DEMO_TLS_NAMES.join(" and "),
                files.cert.display(),
                files.ca.display(),
                if files.reused { "reused" } else { "generated" }
            );
            Some(files)
        }
        Err(e) => {
            log::warn!("demo certificate not available: {e}");
            None
        }
    }
}

/// Writes `bytes` to a new file beside `path` with `mode`, then renames it over `path`: a
/// crash never leaves half a key, and a key is never readable by others, even for a moment.
fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), String> {
    let temporary = path.with_extension("pem.tmp");
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let _ = std::fs::remove_file(&temporary);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(&temporary).map_err(fail)?;
    file.write_all(bytes).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    drop(file);
    std::fs::rename(&temporary, path).map_err(fail)
}

/// Mode 0600 on `path` (Unix).
fn restrict_to_owner(path: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("cannot restrict {} to its owner: {e}", path.display()))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

impl Demo {
    /// Starts the origins on loopback ports the kernel picks, then the proxy on
    /// `127.0.0.1:port` with the cache on (in `./cache`).
    pub fn start(port: u16, ttl: Option<Duration>, logs: &LogWriter) -> Result<Demo, String> {
        let mut origins = Vec::with_capacity(ORIGINS);
        for i in 1..=ORIGINS {
            let cfg = OriginConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                root: None,
                name: Some(format!("origin-{i}")),
                workers: 1,
            };
            origins.push(Origin::start(&cfg)?);
        }
        let addrs: Vec<SocketAddr> = origins.iter().map(Origin::local_addr).collect();
        let listen = SocketAddr::from(([127, 0, 0, 1], port));
        let mut config = Config::with_backends(listen, &addrs);
        config.path = PathBuf::from("<demo>");
        config.cache.enabled = Some(true);
        config.cache.ttl = Some(ttl.unwrap_or(DEFAULT_CACHE_TTL));
        config.compress.enabled = true;
        // The status page on a free loopback port: shown in the banner, never in the way.
        config.admin = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        let certificates = demo_certificates_beside(&config.cache.dir);
        if let Some(files) = &certificates {
            // HTTPS beside HTTP with the demo's certificate, unless its port is taken (the demo
            // then runs plain, and says so).
            match demo_tls_port(port).map(|p| SocketAddr::from(([127, 0, 0, 1], p))) {
                Some(tls) if crate::net::probe_bind(tls).is_ok() => {
                    config.listeners.push(crate::config::Listen {
                        tls: true,
                        ..crate::config::Listen::tcp(tls)
                    });
                    config
                        .certificates
                        .push(crate::tls::server::CertificateSpec {
                            chain: files.cert.clone(),
                            key: files.key.clone(),
                        });
                }
                Some(tls) => {
                    log::warn!("port {} is taken: the demo runs without HTTPS", tls.port())
                }
                None => log::warn!("no HTTPS port above {port}: the demo runs without HTTPS"),
            }
        }
        let proxy = match Proxy::start(config, logs) {
            Ok(p) => p,
            Err(e) => {
                for o in origins {
                    o.shutdown();
                }
                return Err(if e.contains("already in use") {
                    format!(
                        "port {port} is taken by another program, so the demo proxy cannot \
                         listen there; pick another port: pibl --demo --port 9090"
                    )
                } else {
                    e
                });
            }
        };
        Ok(Demo {
            origins,
            proxy,
            certificates,
        })
    }

    pub fn proxy_addr(&self) -> SocketAddr {
        self.proxy.local_addr()
    }

    /// The demo's TLS files (for `listen ... tls` and `certificate`), if they could be written.
    pub fn certificates(&self) -> Option<&DemoCertificates> {
        self.certificates.as_ref()
    }

    /// What to open and what to try, for the terminal.
    pub fn banner(&self, ttl: Duration) -> String {
        let url = format!("http://{}", self.proxy_addr());
        let mut s = format!(
            "\npibl demo: the proxy at {url}/ balances round robin over {ORIGINS} pibl-origin \
             servers,\nwith the disk cache on (./cache, TTL {}s). Access log: stdout and ./pibl.log.\n\n",
            ttl.as_secs()
        );
        for o in &self.origins {
            s.push_str(&format!("  {}  http://{}/\n", o.name(), o.local_addr()));
        }
        s.push_str(&format!(
            "\nTry:\n\
             \x20 a browser on {url}/              the page names the origin that served it\n\
             \x20 curl -i {url}/api/info            never cached: a different origin each time\n\
             \x20 curl -si {url}/style.css | grep -i x-cache      MISS, then HIT\n\
             \x20 pibl-client demo.log {url}/       (cargo run --bin pibl-client -- demo.log {url}/)\n\
             \x20 curl -d 'hello' {url}/echo        POST, forwarded with its body\n"
        ));
        if let (Some(files), Some(tls)) = (&self.certificates, self.proxy.tls_addr()) {
            s.push_str(&format!(
                "\x20 {}   HTTPS, verified with the demo's CA\n",
                files.banner_line(tls.port())
            ));
        }
        if let Some(admin) = self.proxy.admin_addr() {
            s.push_str(&format!(
                "\x20 a browser on http://{admin}/status   live status: backends, requests, cache\n"
            ));
        }
        s.push_str("\nPress Ctrl-C to stop.\n");
        s
    }

    /// Stops the proxy (finishing requests in flight), then the origins.
    pub fn shutdown(self) {
        self.proxy.shutdown();
        for o in self.origins {
            o.shutdown();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pibl-demo-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn demo_certificates_are_generated_once_then_reused() {
        let dir = temp_dir("certs");
        let first = DemoCertificates::ensure(&dir).expect("generate");
        assert!(!first.reused);
        assert_eq!(first.ca, dir.join("pibl-demo-ca.pem"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&first.key)
                .expect("key")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let ca_pem = std::fs::read_to_string(&first.ca).expect("ca");
        let second = DemoCertificates::ensure(&dir).expect("reuse");
        assert!(second.reused);
        assert_eq!(std::fs::read_to_string(&second.ca).expect("ca"), ca_pem);

        // A key that is not the certificate's is replaced, with a new CA.
        let other = DemoCa::generate("x")
            .expect("ca")
            .issue(&["localhost"], DAY)
            .expect("leaf");
        std::fs::write(&first.key, other.key_pem).expect("overwrite key");
        let third = DemoCertificates::ensure(&dir).expect("regenerate");
        assert!(!third.reused);
        assert_ne!(std::fs::read_to_string(&third.ca).expect("ca"), ca_pem);
        assert!(third.still_good(SystemTime::now()).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn certificates_expiring_within_30_days_are_replaced() {
        let dir = temp_dir("expiring");
        let ca = DemoCa::generate("short").expect("ca");
        let leaf = ca.issue(&DEMO_TLS_NAMES, 10 * DAY).expect("leaf");
        std::fs::write(dir.join(DEMO_CA_FILE), &ca.cert_pem).expect("ca");
        std::fs::write(dir.join(DEMO_CERT_FILE), &leaf.chain_pem).expect("cert");
        std::fs::write(dir.join(DEMO_KEY_FILE), &leaf.key_pem).expect("key");
        let files = DemoCertificates::ensure(&dir).expect("ensure");
        assert!(files.still_good(SystemTime::now()).is_ok());
        assert!(
            !files.reused,
            "a certificate valid for 10 more days is replaced"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_banner_line_is_a_curl_that_verifies() {
        let files = DemoCertificates {
            ca: Path::new(".").join(DEMO_CA_FILE),
            cert: PathBuf::from(DEMO_CERT_FILE),
            key: PathBuf::from(DEMO_KEY_FILE),
            reused: false,
        };
        assert_eq!(
            files.banner_line(8443),
            "curl --cacert ./pibl-demo-ca.pem https://localhost:8443/"
        );
        let bare = DemoCertificates {
            ca: PathBuf::from(DEMO_CA_FILE),
            ..files
        };
        assert_eq!(
            bare.banner_line(1),
            "curl --cacert ./pibl-demo-ca.pem https://localhost:1/"
        );
    }

    const DAY: Duration = Duration::from_secs(86_400);
}
