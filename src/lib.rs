//! pibl: an HTTP/1.1 reverse proxy and round-robin load balancer with an on-disk cache.
//!
//! The three binaries (`pibl`, `pibl-client`, `pibl-origin`) are thin `main`s over this library.
//! See `docs/architecture.md` for how a request flows through the modules.

pub mod access;
pub mod admin;
pub mod balance;
pub mod buffer;
pub mod cache;
pub mod client;
pub mod clock;
pub mod compress;
pub mod config;
pub mod demo;
pub mod edge;
pub mod h2;
pub mod http;
pub mod logging;
pub mod net;
pub mod origin;
pub mod proxy;
pub mod routing;
pub mod stats;
pub mod text;
pub mod tls;
