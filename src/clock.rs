//! The time as the event loop sees it, read once per loop tick.
//!
//! Formatting a date costs more than relaying a small response, so the HTTP `Date` value and the
//! log timestamp are formatted at most once per tick and shared by every request in it.

use std::time::{Instant, SystemTime};

use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::OffsetDateTime;

const HTTP_DATE: &[BorrowedFormatItem<'static>] = format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
);
const LOG_STAMP: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// `t` as an IMF-fixdate, for header values such as Last-Modified.
pub fn format_http_date(t: SystemTime) -> String {
    OffsetDateTime::from(t)
        .format(HTTP_DATE)
        .unwrap_or_default()
}

/// Monotonic and wall-clock time for one loop tick.
#[derive(Debug)]
pub struct Clock {
    pub now: Instant,
    pub wall: SystemTime,
    http_date: String,
    log_stamp: String,
    /// Wall-clock second the HTTP date was formatted for.
    date_second: u64,
    /// Wall-clock millisecond the log stamp was formatted for.
    stamp_milli: u128,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

impl Clock {
    pub fn new() -> Clock {
        let mut c = Clock {
            now: Instant::now(),
            wall: SystemTime::now(),
            http_date: String::new(),
            log_stamp: String::new(),
            date_second: u64::MAX,
            stamp_milli: u128::MAX,
        };
        c.tick();
        c
    }

    /// Reads the clocks; formats strings lazily when they are next asked for.
    pub fn tick(&mut self) {
        self.now = Instant::now();
        self.wall = SystemTime::now();
    }

    fn since_epoch(&self) -> std::time::Duration {
        self.wall
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
    }

    /// `Mon, 23 Nov 2026 19:04:10 GMT` (RFC 9110 §5.6.7).
    pub fn http_date(&mut self) -> &str {
        let second = self.since_epoch().as_secs();
        if second != self.date_second {
            self.date_second = second;
            self.http_date = OffsetDateTime::from(self.wall)
                .format(HTTP_DATE)
                .unwrap_or_default();
        }
        &self.http_date
    }

    /// RFC 3339 UTC with milliseconds, for log lines.
    pub fn log_stamp(&mut self) -> &str {
        let milli = self.since_epoch().as_millis();
        if milli != self.stamp_milli {
            let same_second = milli / 1000 == self.stamp_milli / 1000;
            self.stamp_milli = milli;
            // Within one second only the three millisecond digits (before the `Z`) change.
            let len = self.log_stamp.len();
            if same_second && len >= 4 && self.log_stamp.is_char_boundary(len - 4) {
                let ms = (milli % 1000) as u16;
                let digits = [
                    b'0' + (ms / 100) as u8,
                    b'0' + (ms / 10 % 10) as u8,
                    b'0' + (ms % 10) as u8,
                ];
                self.log_stamp.truncate(len - 4);
                self.log_stamp.extend(digits.map(char::from));
                self.log_stamp.push('Z');
            } else {
                self.log_stamp = OffsetDateTime::from(self.wall)
                    .format(LOG_STAMP)
                    .unwrap_or_default();
            }
        }
        &self.log_stamp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_http_date_and_log_stamp() {
        let mut c = Clock::new();
        c.wall = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_795_460_650_123);
        assert_eq!(c.http_date(), "Mon, 23 Nov 2026 19:04:10 GMT");
        assert_eq!(c.log_stamp(), "2026-11-23T19:04:10.123Z");
        c.wall += std::time::Duration::from_millis(876);
        assert_eq!(c.log_stamp(), "2026-11-23T19:04:10.999Z");
        c.wall += std::time::Duration::from_millis(2);
        assert_eq!(c.log_stamp(), "2026-11-23T19:04:11.001Z");
        c.wall += std::time::Duration::from_millis(9);
        assert_eq!(c.log_stamp(), "2026-11-23T19:04:11.010Z");
        assert_eq!(format_http_date(c.wall), "Mon, 23 Nov 2026 19:04:11 GMT");
    }
}
