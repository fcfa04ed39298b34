//! `pibl-client`: a small curl-like HTTP/1.1 client on plain `std::net` sockets, with a request
//! log and a local response cache. The binary only parses arguments and maps errors to exit
//! codes; everything else lives here so it can be unit-tested.
//!
//! Flow of one run ([`session::run`]): parse the URL, look the URL up in the [`cache`], connect
//! ([`connection`]), send the head built by [`request`], read the response with [`response`],
//! follow redirects, hand the body to [`output`] (and to the cache), append a [`log`] line.

pub mod cache;
pub mod cli;
pub mod connection;
pub mod error;
pub mod freshness;
pub mod log;
pub mod output;
pub mod request;
pub mod response;
pub mod session;
pub mod url;

pub use cli::{parse_args, usage, Command, FetchOptions};
pub use error::ClientError;
