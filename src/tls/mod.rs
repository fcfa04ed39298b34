//! TLS for pibl, with rustls: certificates for tests and the demo (`selfsigned`); the server
//! side: certificate files (`certs`), SNI and the `ServerConfig` (`server`), and the sans-io
//! connection over a client socket (`stream`). The client side (backends, pibl-client) sits
//! beside them.

pub mod certs;
pub mod selfsigned;
pub mod server;
pub mod stream;

use std::sync::Arc;

use rustls::crypto::CryptoProvider;

/// The crypto provider pibl's listeners use. aws-lc-rs, by measurement: see `benches/tls.rs`
/// and docs/tls.md (it is faster than ring at the full handshake and at bulk AES-GCM).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The TLS 1.3 ticket encrypter matching [`provider`]: keys rotate every few hours.
pub fn ticketer() -> Result<Arc<dyn rustls::server::ProducesTickets>, rustls::Error> {
    rustls::crypto::aws_lc_rs::Ticketer::new()
}
