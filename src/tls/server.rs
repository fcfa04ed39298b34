//! The TLS server configuration every TLS listener shares: certificates chosen by SNI, TLS 1.2
//! and 1.3 only, ALPN `h2` then `http/1.1` (`http/1.1` alone with `http2 off`), resumption (1.3 tickets with rotating keys, a bounded 1.2
//! session cache). Built at start and on every reload; a connection keeps the `Arc` it began
//! with, so a reload never changes a handshake under way.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use rustls::server::{ClientHello, ResolvesServerCert, ServerSessionMemoryCache};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

use super::certs::{self, CertInfo, LoadedCert};

/// TLS 1.2 sessions remembered for resumption when `tls_session_cache` is not set.
pub const DEFAULT_SESSION_CACHE: usize = 20_000;

/// The certificates to serve, as the config lists them (the first is the default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateSpec {
    pub chain: PathBuf,
    pub key: PathBuf,
}

/// What TLS listeners serve: the rustls configs and, for status pages, the certificates in
/// them. Two configs that differ only in ALPN (and share the session cache and ticket keys, so
/// a session resumes on either): one offering `h2` then `http/1.1`, one `http/1.1` alone for a
/// listener with `http2 off`.
#[derive(Debug)]
pub struct TlsServer {
    pub config: Arc<ServerConfig>,
    config_http11: Arc<ServerConfig>,
    pub certs: Vec<CertInfo>,
}

impl TlsServer {
    /// Loads every certificate and builds the server configs. `Err` names the file at fault;
    /// the warnings (each naming its file) are returned beside the server for the caller to log.
    pub fn load(
        specs: &[CertificateSpec],
        session_cache: usize,
    ) -> Result<(TlsServer, Vec<String>), String> {
        let provider = super::provider();
        let now = SystemTime::now();
        let mut loaded = Vec::with_capacity(specs.len());
        for s in specs {
            loaded.push(certs::load(&s.chain, &s.key, &provider, now)?);
        }
        let warnings = loaded.iter().flat_map(|l| l.warnings.clone()).collect();
        Ok((TlsServer::new(loaded, session_cache)?, warnings))
    }

    /// The server configs for already loaded certificates.
    pub fn new(loaded: Vec<LoadedCert>, session_cache: usize) -> Result<TlsServer, String> {
        if loaded.is_empty() {
            return Err("a TLS listener needs at least one 'certificate CHAIN KEY'".to_string());
        }
        let provider = super::provider();
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| format!("TLS: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(SniResolver::new(&loaded)));
        config.session_storage = ServerSessionMemoryCache::new(session_cache);
        config.ticketer = super::ticketer().map_err(|e| format!("TLS session tickets: {e}"))?;
        // One ticket per full handshake: each costs an encryption and a record, and a client
        // resumes one connection with one ticket (rustls's default sends two).
        config.send_tls13_tickets = 1;
        let mut http11 = config.clone();
        http11.alpn_protocols = vec![b"http/1.1".to_vec()];
        // h2 first, so a client that speaks both gets it.
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(TlsServer {
            config: Arc::new(config),
            config_http11: Arc::new(http11),
            certs: loaded.into_iter().map(|l| l.info).collect(),
        })
    }

    /// The config for a listener that offers HTTP/2 (`h2`) or not.
    pub fn config_for(&self, h2: bool) -> Arc<ServerConfig> {
        match h2 {
            true => self.config.clone(),
            false => self.config_http11.clone(),
        }
    }
}

/// Picks the certificate for a ClientHello's SNI: an exact name, then a `*.` wildcard covering
/// one label, else the first certificate (no SNI, an IP address, or an unknown name).
#[derive(Debug)]
pub struct SniResolver {
    /// Each certificate's names (lowercase) and key, in config order.
    certs: Vec<(Vec<String>, Arc<CertifiedKey>)>,
}

impl SniResolver {
    pub fn new(loaded: &[LoadedCert]) -> SniResolver {
        SniResolver {
            certs: loaded
                .iter()
                .map(|l| (l.info.names.clone(), l.key.clone()))
                .collect(),
        }
    }

    /// The index of the certificate for `server_name` (None: SNI absent).
    pub fn pick(&self, server_name: Option<&str>) -> usize {
        let Some(name) = server_name else {
            return 0;
        };
        let exact = |n: &String| n.eq_ignore_ascii_case(name);
        if let Some(i) = self.certs.iter().position(|(ns, _)| ns.iter().any(exact)) {
            return i;
        }
        let Some((_, parent)) = name.split_once('.') else {
            return 0;
        };
        let wildcard = |n: &String| {
            n.strip_prefix("*.")
                .is_some_and(|p| p.eq_ignore_ascii_case(parent))
        };
        self.certs
            .iter()
            .position(|(ns, _)| ns.iter().any(wildcard))
            .unwrap_or(0)
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let i = self.pick(hello.server_name());
        self.certs.get(i).map(|(_, key)| key.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::selfsigned::DemoCa;
    use std::time::Duration;

    pub fn loaded(ca: &DemoCa, names: &[&str]) -> LoadedCert {
        let c = ca
            .issue(names, Duration::from_secs(86_400 * 90))
            .expect("leaf");
        let d = std::env::temp_dir().join(format!(
            "pibl-sni-{}-{}",
            names[0].replace('*', "star"),
            std::process::id()
        ));
        std::fs::create_dir_all(&d).expect("dir");
        std::fs::write(d.join("c.pem"), &c.chain_pem).expect("write");
        std::fs::write(d.join("k.pem"), &c.key_pem).expect("write");
        certs::load(
            &d.join("c.pem"),
            &d.join("k.pem"),
            &crate::tls::provider(),
            SystemTime::now(),
        )
        .expect("load")
    }

    #[test]
    fn sni_picks_exact_then_wildcard_then_the_first() {
        let ca = DemoCa::generate("t").expect("ca");
        let r = SniResolver::new(&[
            loaded(&ca, &["example.com"]),
            loaded(&ca, &["*.example.com"]),
            loaded(&ca, &["api.example.com"]),
        ]);
        assert_eq!(r.pick(Some("api.example.com")), 2);
        assert_eq!(r.pick(Some("API.Example.com")), 2);
        assert_eq!(r.pick(Some("www.example.com")), 1);
        assert_eq!(
            r.pick(Some("a.b.example.com")),
            0,
            "a wildcard covers one label"
        );
        assert_eq!(r.pick(Some("example.com")), 0);
        assert_eq!(r.pick(Some("other.test")), 0);
        assert_eq!(r.pick(None), 0);
    }

    #[test]
    fn no_certificate_is_an_error() {
        assert!(TlsServer::new(Vec::new(), 10).is_err());
    }
}
