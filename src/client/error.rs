//! Client errors as values, each mapped to a distinct exit code so scripts can tell a refused
//! connection from a broken server without parsing messages.

use crate::tls::client::{TlsFailure, TrustError};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Exit status for a wrong command line.
pub const EXIT_USAGE: i32 = 2;
/// Exit status for an unparsable URL or an unsupported scheme (ftp...).
pub const EXIT_BAD_URL: i32 = 3;
/// Exit status when a host name does not resolve.
pub const EXIT_DNS: i32 = 4;
/// Exit status when the TCP connection is refused, fails or breaks.
pub const EXIT_CONNECT: i32 = 5;
/// Exit status when connecting or waiting for data exceeds `--timeout`.
pub const EXIT_TIMEOUT: i32 = 6;
/// Exit status when the server's response is not valid HTTP/1.x.
pub const EXIT_MALFORMED: i32 = 7;
/// Exit status when a local file (log, output, `-d @FILE`, cache dir for flush) cannot be used.
pub const EXIT_LOCAL_IO: i32 = 8;
/// Exit status when `-L` hits the redirect limit.
pub const EXIT_TOO_MANY_REDIRECTS: i32 = 9;
/// Exit status when the server's TLS certificate is refused (unknown authority, wrong name,
/// expired), as curl's 60.
pub const EXIT_TLS_CERTIFICATE: i32 = 10;
/// Exit status when the TLS handshake fails otherwise (not a TLS server, no common protocol).
pub const EXIT_TLS_HANDSHAKE: i32 = 11;
/// Exit status when there is nothing to verify certificates with (`--cacert` unusable, no
/// system roots).
pub const EXIT_TLS_TRUST: i32 = 12;

/// Everything that can make a request fail.
#[derive(Debug)]
pub enum ClientError {
    /// Wrong command line; the message says what was wrong.
    Usage(String),
    /// Unparsable URL or unsupported scheme.
    BadUrl(String),
    /// The name did not resolve.
    Dns { host: String, detail: String },
    /// Connecting failed or the connection broke.
    Connect { peer: String, source: io::Error },
    /// No progress within the configured timeout.
    Timeout(String),
    /// The server answered something that is not valid HTTP.
    Malformed(String),
    /// A local file could not be read or written.
    LocalIo {
        what: String,
        path: PathBuf,
        source: io::Error,
    },
    /// `-L` followed too many redirects.
    TooManyRedirects(u32),
    /// The TLS handshake with `peer` failed; `failure` says why in short words.
    Tls { peer: String, failure: TlsFailure },
    /// No TLS client configuration: nothing to trust.
    TlsTrust(TrustError),
}

impl ClientError {
    /// The process exit status for this error; documented in `docs/client.md`.
    pub fn exit_code(&self) -> i32 {
        match self {
            ClientError::Usage(_) => EXIT_USAGE,
            ClientError::BadUrl(_) => EXIT_BAD_URL,
            ClientError::Dns { .. } => EXIT_DNS,
            ClientError::Connect { .. } => EXIT_CONNECT,
            ClientError::Timeout(_) => EXIT_TIMEOUT,
            ClientError::Malformed(_) => EXIT_MALFORMED,
            ClientError::LocalIo { .. } => EXIT_LOCAL_IO,
            ClientError::TooManyRedirects(_) => EXIT_TOO_MANY_REDIRECTS,
            ClientError::Tls { failure, .. } if failure.is_certificate() => EXIT_TLS_CERTIFICATE,
            ClientError::Tls { .. } => EXIT_TLS_HANDSHAKE,
            ClientError::TlsTrust(_) => EXIT_TLS_TRUST,
        }
    }

    /// Builds a [`ClientError::LocalIo`] for `path`; `what` is a verb phrase like "cannot write".
    pub fn local_io(what: &str, path: &Path, source: io::Error) -> Self {
        ClientError::LocalIo {
            what: what.to_string(),
            path: path.to_path_buf(),
            source,
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Usage(msg) => write!(f, "{msg}"),
            ClientError::BadUrl(msg) => write!(f, "{msg}"),
            ClientError::Dns { host, detail } => {
                write!(f, "cannot resolve host name '{host}' ({detail})")
            }
            ClientError::Connect { peer, source } => match source.kind() {
                io::ErrorKind::ConnectionRefused => write!(
                    f,
                    "connection refused by {peer} (is the server running on that port?)"
                ),
                _ => write!(f, "connection to {peer} failed: {source}"),
            },
            ClientError::Timeout(msg) => write!(f, "{msg}"),
            ClientError::Malformed(msg) => write!(f, "malformed response: {msg}"),
            ClientError::LocalIo { what, path, source } => {
                write!(f, "{what} {}: {source}", path.display())
            }
            ClientError::TooManyRedirects(n) => write!(
                f,
                "stopped after {} (raise the limit with --max-redirs)",
                crate::text::counted(*n as usize, "redirect", "redirects")
            ),
            ClientError::Tls { peer, failure } => write!(f, "TLS with {peer}: {failure}"),
            ClientError::TlsTrust(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ClientError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_kind_has_its_own_exit_code() {
        let errors = [
            ClientError::Usage(String::new()),
            ClientError::BadUrl(String::new()),
            ClientError::Dns {
                host: String::new(),
                detail: String::new(),
            },
            ClientError::Connect {
                peer: String::new(),
                source: io::Error::from(io::ErrorKind::ConnectionRefused),
            },
            ClientError::Timeout(String::new()),
            ClientError::Malformed(String::new()),
            ClientError::local_io("x", Path::new("x"), io::Error::other("x")),
            ClientError::TooManyRedirects(1),
            ClientError::Tls {
                peer: String::new(),
                failure: TlsFailure::UnknownAuthority,
            },
            ClientError::Tls {
                peer: String::new(),
                failure: TlsFailure::NotTls,
            },
            ClientError::TlsTrust(TrustError::NoSystemRoots(String::new())),
        ];
        let mut codes: Vec<i32> = errors.iter().map(ClientError::exit_code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), errors.len());
        assert!(!codes.contains(&0) && !codes.contains(&1));
    }

    #[test]
    fn redirect_counts_agree_with_their_noun() {
        assert_eq!(
            ClientError::TooManyRedirects(1).to_string(),
            "stopped after 1 redirect (raise the limit with --max-redirs)"
        );
        assert!(ClientError::TooManyRedirects(5)
            .to_string()
            .starts_with("stopped after 5 redirects"));
    }
}
