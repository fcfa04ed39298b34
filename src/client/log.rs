//! The request log: one appended line per request, successful or not, so a LOGFILE shared by
//! several runs reads as a history.

use super::error::ClientError;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

/// Where a response came from, as written in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Network,
    /// A fresh cache entry, no request sent.
    Cache,
    /// A stale entry the server confirmed with 304.
    Revalidated,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Network => "network",
            Origin::Cache => "cache",
            Origin::Revalidated => "revalidated",
        }
    }
}

/// How one request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Response {
        status: u16,
        bytes: u64,
        origin: Origin,
    },
    Failed {
        reason: String,
    },
}

/// An open, append-only log file.
pub struct RequestLog {
    file: File,
    path: PathBuf,
    offset: UtcOffset,
}

impl RequestLog {
    /// Opens (creating if needed) `path` for appending. `offset` is the local UTC offset,
    /// determined once at startup while the process is single-threaded.
    pub fn open(path: &Path, offset: UtcOffset) -> Result<Self, ClientError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| ClientError::local_io("cannot open log file", path, e))?;
        Ok(RequestLog {
            file,
            path: path.to_path_buf(),
            offset,
        })
    }

    /// Appends one line, written with a single `write` so concurrent clients do not interleave.
    pub fn record(
        &mut self,
        method: &str,
        url: &str,
        elapsed: Duration,
        outcome: &Outcome,
    ) -> Result<(), ClientError> {
        let now = OffsetDateTime::now_utc().to_offset(self.offset);
        let line = format_line(now, method, url, elapsed, outcome);
        self.file
            .write_all(line.as_bytes())
            .map_err(|e| ClientError::local_io("cannot write log file", &self.path, e))
    }
}

/// The local UTC offset, or UTC when the platform cannot tell (e.g. other threads running).
pub fn local_offset() -> UtcOffset {
    UtcOffset::current_local_offset().unwrap_or(UtcOffset::UTC)
}

/// `2026-11-23 19:04:10 GET http://h/ 200 1234B 3ms network`, or
/// `... GET http://h/ ERR 0B 3ms network connection refused by ...`.
pub fn format_line(
    when: OffsetDateTime,
    method: &str,
    url: &str,
    elapsed: Duration,
    outcome: &Outcome,
) -> String {
    let stamp = when
        .format(format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second]"
        ))
        .unwrap_or_else(|_| "0000-00-00 00:00:00".into());
    let ms = elapsed.as_millis();
    match outcome {
        Outcome::Response {
            status,
            bytes,
            origin,
        } => format!(
            "{stamp} {method} {url} {status} {bytes}B {ms}ms {}\n",
            origin.as_str()
        ),
        Outcome::Failed { reason } => {
            let reason = reason.replace(['\n', '\r'], " ");
            format!("{stamp} {method} {url} ERR 0B {ms}ms network {reason}\n")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn formats_success_and_failure_lines() {
        let when = datetime!(2026-11-23 19:04:10 UTC);
        let ok = Outcome::Response {
            status: 200,
            bytes: 1234,
            origin: Origin::Cache,
        };
        assert_eq!(
            format_line(when, "GET", "http://h/", Duration::from_millis(3), &ok),
            "2026-11-23 19:04:10 GET http://h/ 200 1234B 3ms cache\n"
        );
        let failed = Outcome::Failed {
            reason: "connection refused\nby x".into(),
        };
        assert_eq!(
            format_line(
                when,
                "POST",
                "http://h/",
                Duration::from_millis(12),
                &failed
            ),
            "2026-11-23 19:04:10 POST http://h/ ERR 0B 12ms network connection refused by x\n"
        );
    }
}
