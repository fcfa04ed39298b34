//! A private certificate authority and the server certificates it issues, generated in memory
//! (as mkcert does): `pibl --demo` and the tests use them, so a client can verify the server
//! with `--cacert ca.pem` instead of turning verification off.

use std::net::IpAddr;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use time::OffsetDateTime;

/// A generated certificate authority: its certificate (PEM) and the key that signs leaves.
pub struct DemoCa {
    /// The CA certificate, PEM: what a client trusts (`curl --cacert`).
    pub cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A server certificate and its private key, both PEM.
#[derive(Debug, Clone)]
pub struct IssuedCert {
    /// The leaf followed by the CA certificate (a full chain, as certbot's `fullchain.pem`).
    pub chain_pem: String,
    /// PKCS#8 private key.
    pub key_pem: String,
}

impl DemoCa {
    /// A new CA named `name`, valid from yesterday for ten years. ECDSA P-256 keys.
    pub fn generate(name: &str) -> Result<DemoCa, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let (not_before, not_after) = validity(Duration::from_secs(10 * 365 * 86_400));
        params.not_before = not_before;
        params.not_after = not_after;
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(DemoCa {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// A server certificate for `names` (DNS names or IP addresses), valid for `lifetime` from
    /// yesterday.
    pub fn issue(&self, names: &[&str], lifetime: Duration) -> Result<IssuedCert, rcgen::Error> {
        self.issue_between(names, validity(lifetime))
    }

    /// A server certificate valid between the two instants (tests use this for expired ones).
    pub fn issue_between(
        &self,
        names: &[&str],
        (not_before, not_after): (OffsetDateTime, OffsetDateTime),
    ) -> Result<IssuedCert, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        for name in names {
            params.subject_alt_names.push(match name.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName((*name).try_into()?),
            });
        }
        if let Some(first) = names.first() {
            params.distinguished_name.push(DnType::CommonName, *first);
        }
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = not_before;
        params.not_after = not_after;
        let key = KeyPair::generate()?;
        let leaf = params.signed_by(&key, &self.issuer)?;
        Ok(IssuedCert {
            chain_pem: format!("{}{}", leaf.pem(), self.cert_pem),
            key_pem: key.serialize_pem(),
        })
    }
}

/// From yesterday (clock skew) to `lifetime` from now.
pub fn validity(lifetime: Duration) -> (OffsetDateTime, OffsetDateTime) {
    let now = OffsetDateTime::now_utc();
    (now - time::Duration::days(1), now + lifetime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_issues_a_chain_with_the_leaf_first() {
        let ca = DemoCa::generate("pibl test CA").expect("ca");
        let cert = ca
            .issue(&["localhost", "127.0.0.1"], Duration::from_secs(86_400))
            .expect("leaf");
        assert_eq!(cert.chain_pem.matches("BEGIN CERTIFICATE").count(), 2);
        assert!(cert.chain_pem.ends_with(&ca.cert_pem));
        assert!(cert.key_pem.contains("BEGIN PRIVATE KEY"));
    }
}
