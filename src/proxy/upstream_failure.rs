//! What an upstream failure's event line says: the phase it happened in and, for a request whose
//! backends were all down, the failure held until the request ends (see `failure::upstream_event`
//! in `failure.rs`). Data only, so the session, failure and splice code can all name it.

use std::fmt;

/// Where an upstream failure happened, for its event line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Opening the connection.
    Connect,
    /// Writing the request (head and body).
    Send,
    /// Waiting for, or reading, the response head.
    Head,
    /// Relaying the response body.
    Body,
}

impl Phase {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Phase::Connect => "connect",
            Phase::Send => "send",
            Phase::Head => "head",
            Phase::Body => "body",
        }
    }
}

/// Writes the event line of one upstream failure.
pub(super) fn log_failure(
    backend: &str,
    phase: Phase,
    method: &str,
    target: &str,
    cause: impl fmt::Display,
) {
    log::warn!(
        "backend {backend} failed at {} for {method} {target}: {cause}",
        phase.as_str()
    );
}

/// A failure on a backend that was already marked down (tried because every backend was down).
/// Its event line waits for the end of the exchange, so such a request logs one line, the last
/// failure, and not one per backend it tried.
#[derive(Debug)]
pub(super) struct HeldFailure {
    pub(super) backend: usize,
    pub(super) phase: Phase,
    pub(super) cause: String,
    /// Earlier failures of this request on backends marked down, not logged.
    pub(super) earlier: u32,
}

/// The tail of a held failure's event line: how many earlier ones it stands for.
pub(super) struct EarlierFailures(pub(super) u32);

impl fmt::Display for EarlierFailures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => Ok(()),
            n => write!(
                f,
                " (all backends down; {n} earlier attempt(s) of this request failed too)"
            ),
        }
    }
}
