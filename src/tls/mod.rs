//! TLS for pibl, with rustls: certificates for tests and the demo (`selfsigned`).
//! The server side (listeners, SNI) and the client side (backends, pibl-client) sit beside it.

pub mod client;
pub mod selfsigned;
