//! TLS for pibl, with rustls: certificates for tests and the demo (`selfsigned`); the server
//! side: certificate files (`certs`), SNI and the `ServerConfig` (`server`), and the sans-io
//! connection over a client socket (`stream`). The client side (backends, pibl-client) sits
//! beside them.

pub mod certs;
pub mod client;
pub mod selfsigned;
pub mod server;
pub mod stream;

use std::sync::Arc;

use rustls::crypto::CryptoProvider;

/// The crypto provider pibl uses: ring, by measurement (`benches/tls.rs`, docs/tls.md: as fast
/// as aws-lc-rs at handshakes with the same key exchange, faster at bulk AES-GCM). Every rustls
/// config in pibl is built with it (`builder_with_provider`), never with a process default.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The TLS 1.3 ticket encrypter matching [`provider`]: its keys rotate every 6 hours.
pub fn ticketer() -> Result<Arc<dyn rustls::server::ProducesTickets>, rustls::Error> {
    rustls::crypto::ring::Ticketer::new()
}
