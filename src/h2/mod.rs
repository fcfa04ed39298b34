//! HTTP/2 (RFC 9113) for pibl's client side, sans-io: bytes in, frames and header lists out.
//! No socket, clock or allocation per frame here; the connection session that drives these
//! pieces from the worker's event loop is built on top (see docs/http2.md).
//!
//! - `frame.rs`: frame parsing with RFC 9113 §4-6's checks, frame writers, the client preface,
//!   and the header-block assembler (HEADERS + CONTINUATION, bounded).
//! - `hpack/`: header compression (RFC 7541), with the decoded list bounded.
//! - `settings.rs`: SETTINGS values, validated.
//! - `flow.rs`: flow-control windows with overflow detection.
//! - `error.rs`: error codes, connection and stream errors.
//! - `connection.rs`: [`connection::H2Connection`], the sans-io server connection: preface,
//!   SETTINGS, the stream table and states, flow control, sending, the session-level defences.
//! - `request.rs`: a request head validated as RFC 9113 §8 says (pseudo-headers, cookies).
//! - `translate.rs`: a stream's request written as HTTP/1.1, the HTTP/1 response read back.

pub mod connection;
pub mod error;
pub mod flow;
pub mod frame;
pub mod hpack;
pub mod request;
pub mod settings;
#[cfg(test)]
mod test_rng;
pub mod translate;

pub use error::{ConnectionError, ErrorCode, StreamError};
