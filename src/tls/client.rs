//! The client side of TLS: one place that builds a rustls `ClientConfig` (for pibl-client now,
//! for the proxy's TLS backends later) and turns rustls's errors into short words a user acts on.
//!
//! Trust is one of three things ([`Trust`]): the system's roots, a CA file (`--cacert`,
//! `backend_ca`), or nothing at all (`-k`, `backend_tls_verify off`: the handshake's signatures
//! are still checked, so the peer holds the key of the certificate it shows, but the certificate
//! itself is not; whoever chooses it logs a warning).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, InvalidMessage, RootCertStore,
    SignatureScheme,
};

/// Which server certificates a client accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Certificates that chain to the operating system's roots (as curl and browsers do).
    SystemRoots,
    /// Certificates that chain to the CA certificates in this PEM file (`--cacert`).
    CaFile(PathBuf),
    /// Any certificate (`-k`): the connection is encrypted but the peer is not authenticated.
    Insecure,
}

/// Why a [`ClientConfig`] could not be built: nothing to trust.
#[derive(Debug)]
pub enum TrustError {
    /// No root certificate could be loaded from the system store.
    NoSystemRoots(String),
    /// The CA file could not be read.
    CaFileUnreadable { path: PathBuf, source: io::Error },
    /// The CA file holds no usable certificate.
    CaFileInvalid { path: PathBuf, detail: String },
    /// rustls refused the settings (a provider without TLS 1.2 or 1.3).
    Settings(rustls::Error),
}

impl fmt::Display for TrustError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrustError::NoSystemRoots(detail) => write!(
                f,
                "no trusted root certificates could be loaded from the system ({detail}); \
                 install the ca-certificates package or name a CA file"
            ),
            TrustError::CaFileUnreadable { path, source } => {
                write!(f, "cannot read CA file {}: {source}", path.display())
            }
            TrustError::CaFileInvalid { path, detail } => {
                write!(f, "CA file {}: {detail}", path.display())
            }
            TrustError::Settings(e) => write!(f, "TLS settings refused: {e}"),
        }
    }
}

impl std::error::Error for TrustError {}

/// A failed TLS handshake, in the words a user acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsFailure {
    /// The chain does not lead to a trusted root (self-signed, private CA without `--cacert`).
    UnknownAuthority,
    /// The certificate names other hosts than the one asked for.
    NameMismatch { name: String },
    /// The certificate's validity ended.
    Expired,
    /// The certificate's validity has not begun (or the local clock is wrong).
    NotYetValid,
    /// Any other certificate problem (revoked, bad signature, wrong usage...).
    BadCertificate(String),
    /// The peer answered with something that is not TLS: a plain HTTP server on that port.
    NotTls,
    /// The peer closed the connection before the handshake finished.
    ClosedDuringHandshake,
    /// Any other handshake failure (no common version or cipher, an alert from the server).
    Handshake(String),
}

impl TlsFailure {
    /// The failure a rustls error stands for; `name` is the server name that was asked for.
    pub fn from_rustls(error: &rustls::Error, name: &str) -> TlsFailure {
        use rustls::Error as E;
        match error {
            E::InvalidCertificate(cert) => match cert {
                CertificateError::UnknownIssuer => TlsFailure::UnknownAuthority,
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => TlsFailure::NameMismatch {
                    name: name.to_string(),
                },
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    TlsFailure::Expired
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    TlsFailure::NotYetValid
                }
                other => TlsFailure::BadCertificate(format!("{other:?}")),
            },
            E::InvalidMessage(
                InvalidMessage::InvalidContentType
                | InvalidMessage::UnknownProtocolVersion
                | InvalidMessage::MessageTooLarge,
            )
            | E::PeerSentOversizedRecord => TlsFailure::NotTls,
            E::AlertReceived(alert) => {
                TlsFailure::Handshake(format!("the server refused it (alert: {alert:?})"))
            }
            other => TlsFailure::Handshake(other.to_string()),
        }
    }

    /// The failure inside an I/O error from a rustls stream (rustls wraps its errors as
    /// `InvalidData`), or an end of file during the handshake; `None` for plain socket errors
    /// (timeouts, resets), which the caller reports as such.
    pub fn from_io(error: &io::Error, name: &str) -> Option<TlsFailure> {
        if let Some(tls) = error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(TlsFailure::from_rustls(tls, name));
        }
        (error.kind() == io::ErrorKind::UnexpectedEof).then_some(TlsFailure::ClosedDuringHandshake)
    }

    /// Whether the server's certificate was refused (rather than the handshake failing).
    pub fn is_certificate(&self) -> bool {
        matches!(
            self,
            TlsFailure::UnknownAuthority
                | TlsFailure::NameMismatch { .. }
                | TlsFailure::Expired
                | TlsFailure::NotYetValid
                | TlsFailure::BadCertificate(_)
        )
    }
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsFailure::UnknownAuthority => {
                f.write_str("certificate signed by an unknown authority")
            }
            TlsFailure::NameMismatch { name } => write!(f, "certificate is not valid for {name}"),
            TlsFailure::Expired => f.write_str("certificate has expired"),
            TlsFailure::NotYetValid => {
                f.write_str("certificate is not valid yet (check the clock)")
            }
            TlsFailure::BadCertificate(detail) => write!(f, "certificate refused: {detail}"),
            TlsFailure::NotTls => {
                f.write_str("the server did not answer with TLS (a plain HTTP port?)")
            }
            TlsFailure::ClosedDuringHandshake => {
                f.write_str("the server closed the connection during the TLS handshake")
            }
            TlsFailure::Handshake(detail) => write!(f, "TLS handshake failed: {detail}"),
        }
    }
}

/// A client configuration trusting `trust`, offering `alpn` (e.g. `[b"http/1.1"]`), TLS 1.2
/// and 1.3 only. Build it once and share it: loading the system roots reads files.
pub fn client_config(trust: &Trust, alpn: &[&[u8]]) -> Result<Arc<ClientConfig>, TrustError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(TrustError::Settings)?;
    let mut config = match trust {
        Trust::SystemRoots => builder
            .with_root_certificates(system_roots()?)
            .with_no_client_auth(),
        Trust::CaFile(path) => builder
            .with_root_certificates(roots_from_file(path)?)
            .with_no_client_auth(),
        Trust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate {
                algorithms: provider.signature_verification_algorithms,
            }))
            .with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// The name to send as SNI and check the certificate against: a DNS name, or an IP literal
/// (without brackets), which is checked against the certificate's IP addresses.
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(host.to_string())
        .map_err(|_| format!("'{host}' is not a valid server name for TLS"))
}

/// The crypto provider the process installed, else pibl's ([`super::provider`], ring).
pub fn provider() -> Arc<CryptoProvider> {
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(super::provider)
}

/// The system's roots; an error when none could be loaded, so "unknown authority" never hides
/// an empty store.
fn system_roots() -> Result<RootCertStore, TrustError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let detail = match found.errors.first() {
            Some(e) => e.to_string(),
            None => "the store is empty".to_string(),
        };
        return Err(TrustError::NoSystemRoots(detail));
    }
    Ok(roots)
}

/// Every certificate in a PEM file, as roots. A file without one is an error, not an empty
/// store that would refuse every server.
pub fn roots_from_file(path: &Path) -> Result<RootCertStore, TrustError> {
    let pem = std::fs::read(path).map_err(|source| TrustError::CaFileUnreadable {
        path: path.to_path_buf(),
        source,
    })?;
    let invalid = |detail: String| TrustError::CaFileInvalid {
        path: path.to_path_buf(),
        detail,
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| invalid(format!("unreadable PEM ({e})")))?;
        roots
            .add(cert)
            .map_err(|e| invalid(format!("not a usable CA certificate ({e})")))?;
    }
    if roots.is_empty() {
        return Err(invalid("no PEM certificate in it".to_string()));
    }
    Ok(roots)
}

/// Accepts any certificate (`-k`), but still verifies the handshake's signatures with the
/// certificate's key, so the connection is at least to whoever holds that key.
#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::selfsigned::{validity, DemoCa, IssuedCert};
    use rustls::pki_types::PrivateKeyDer;
    use rustls::{ClientConnection, ServerConfig, ServerConnection};
    use std::time::Duration;

    const DAY: Duration = Duration::from_secs(86_400);

    fn server_config(cert: &IssuedCert) -> Arc<ServerConfig> {
        let chain = CertificateDer::pem_slice_iter(cert.chain_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("chain");
        let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).expect("key");
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server config");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }

    /// A CA file in the temp dir, removed on drop.
    struct CaFile(PathBuf);

    impl CaFile {
        fn new(pem: &str) -> CaFile {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let path = std::env::temp_dir().join(format!(
                "pibl-tls-client-test-{}-{}.pem",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::write(&path, pem).expect("write CA file");
            CaFile(path)
        }
    }

    impl Drop for CaFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// Runs a handshake between a client and a server through memory; the client's error, or
    /// the server's, or the client connection once both are done.
    fn handshake(
        client: Arc<ClientConfig>,
        name: &str,
        server: Arc<ServerConfig>,
    ) -> Result<ClientConnection, rustls::Error> {
        let mut client = ClientConnection::new(client, server_name(name).expect("name"))?;
        let mut server = ServerConnection::new(server)?;
        for _ in 0..20 {
            let mut wire = Vec::new();
            while client.wants_write() {
                client
                    .write_tls(&mut wire)
                    .expect("client writes to memory");
            }
            let mut input = &wire[..];
            while !input.is_empty() {
                server.read_tls(&mut input).expect("server reads memory");
            }
            let server_result = server.process_new_packets().map(|_| ());
            let mut wire = Vec::new();
            while server.wants_write() {
                server
                    .write_tls(&mut wire)
                    .expect("server writes to memory");
            }
            let mut input = &wire[..];
            while !input.is_empty() {
                client.read_tls(&mut input).expect("client reads memory");
            }
            client.process_new_packets()?;
            server_result?;
            if !client.is_handshaking() && !server.is_handshaking() {
                return Ok(client);
            }
        }
        panic!("handshake did not finish");
    }

    fn failure(result: Result<ClientConnection, rustls::Error>, name: &str) -> TlsFailure {
        match result {
            Ok(_) => panic!("the handshake should have failed"),
            Err(e) => TlsFailure::from_rustls(&e, name),
        }
    }

    #[test]
    fn a_ca_file_verifies_the_server_and_alpn_is_agreed() {
        let ca = DemoCa::generate("test CA").expect("ca");
        let cert = ca.issue(&["localhost", "127.0.0.1"], DAY).expect("leaf");
        let file = CaFile::new(&ca.cert_pem);
        let config = client_config(&Trust::CaFile(file.0.clone()), &[b"http/1.1"]).expect("cfg");
        for name in ["localhost", "127.0.0.1"] {
            let conn = handshake(Arc::clone(&config), name, server_config(&cert)).expect(name);
            assert_eq!(conn.alpn_protocol(), Some(&b"http/1.1"[..]));
        }
    }

    #[test]
    fn refusals_are_named_in_short_words() {
        let ca = DemoCa::generate("test CA").expect("ca");
        let other = DemoCa::generate("another CA").expect("ca");
        let file = CaFile::new(&ca.cert_pem);
        let config = client_config(&Trust::CaFile(file.0.clone()), &[]).expect("cfg");
        let good = server_config(&ca.issue(&["localhost"], DAY).expect("leaf"));
        let stranger = server_config(&other.issue(&["localhost"], DAY).expect("leaf"));
        let now = time::OffsetDateTime::now_utc();
        let expired = server_config(
            &ca.issue_between(
                &["localhost"],
                (
                    now - time::Duration::days(30),
                    now - time::Duration::days(1),
                ),
            )
            .expect("leaf"),
        );

        let unknown = failure(
            handshake(Arc::clone(&config), "localhost", stranger),
            "localhost",
        );
        assert_eq!(unknown, TlsFailure::UnknownAuthority);
        assert_eq!(
            unknown.to_string(),
            "certificate signed by an unknown authority"
        );
        assert!(unknown.is_certificate());

        let mismatch = failure(
            handshake(Arc::clone(&config), "example.com", good),
            "example.com",
        );
        assert_eq!(
            mismatch.to_string(),
            "certificate is not valid for example.com"
        );

        let old = failure(
            handshake(Arc::clone(&config), "localhost", expired),
            "localhost",
        );
        assert_eq!(old, TlsFailure::Expired);
        assert_eq!(old.to_string(), "certificate has expired");
    }

    #[test]
    fn insecure_accepts_any_certificate_but_still_handshakes() {
        let stranger = DemoCa::generate("unknown CA").expect("ca");
        let (from, _) = validity(DAY);
        let cert = stranger
            .issue_between(&["elsewhere.test"], (from - time::Duration::days(9), from))
            .expect("leaf");
        let config = client_config(&Trust::Insecure, &[b"http/1.1"]).expect("cfg");
        let conn = handshake(config, "localhost", server_config(&cert)).expect("insecure");
        assert!(!conn.is_handshaking());
    }

    #[test]
    fn a_plain_http_answer_is_not_tls() {
        let config = client_config(&Trust::Insecure, &[]).expect("cfg");
        let mut client =
            ClientConnection::new(config, server_name("localhost").expect("name")).expect("client");
        let mut answer = &b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"[..];
        client.read_tls(&mut answer).expect("read");
        let error = client.process_new_packets().expect_err("not TLS");
        assert_eq!(
            TlsFailure::from_rustls(&error, "localhost"),
            TlsFailure::NotTls
        );
        let wrapped = io::Error::new(io::ErrorKind::InvalidData, error);
        assert_eq!(
            TlsFailure::from_io(&wrapped, "localhost"),
            Some(TlsFailure::NotTls)
        );
        let eof = io::Error::from(io::ErrorKind::UnexpectedEof);
        assert_eq!(
            TlsFailure::from_io(&eof, "localhost"),
            Some(TlsFailure::ClosedDuringHandshake)
        );
        assert_eq!(
            TlsFailure::from_io(&io::Error::from(io::ErrorKind::TimedOut), "h"),
            None
        );
    }

    #[test]
    fn server_names_are_dns_names_or_ip_literals() {
        assert!(matches!(
            server_name("localhost"),
            Ok(ServerName::DnsName(_))
        ));
        assert!(matches!(
            server_name("127.0.0.1"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(server_name("::1"), Ok(ServerName::IpAddress(_))));
        assert!(server_name("bad host").is_err());
    }

    #[test]
    fn unusable_ca_files_and_stores_are_clear_errors() {
        let missing = Trust::CaFile(PathBuf::from("/nonexistent/pibl-ca.pem"));
        let err = client_config(&missing, &[]).expect_err("missing");
        assert!(err
            .to_string()
            .starts_with("cannot read CA file /nonexistent/pibl-ca.pem"));
        let empty = CaFile::new("not a certificate\n");
        let err = client_config(&Trust::CaFile(empty.0.clone()), &[]).expect_err("empty");
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
        // The system store is the machine's: either it loads or it says why not.
        if let Err(e) = client_config(&Trust::SystemRoots, &[]) {
            assert!(matches!(e, TrustError::NoSystemRoots(_)), "{e}");
        }
    }
}
