//! The hook after a request head is parsed that applies `allow`/`deny` and `rate_limit` (the
//! rules: `src/access.rs`; the buckets: `rate_limit.rs`), answering 403 or 429 through the
//! proxy-made-response path (`SendError`).

use super::exchange::Exchange;
use super::rate_limit::Admission;
use super::session::{Conn, Ctx, Step};

impl Conn {
    /// The hook after a request head is parsed: `allow`/`deny` (403) and `rate_limit` (429 with
    /// `Retry-After`), on the real client address, under the rules of the request's site or
    /// route (`Exchange::scope`). Without either, two loads and two branches.
    #[inline]
    pub(super) fn refused_by_access_rules(
        &mut self,
        x: &mut Exchange,
        ctx: &mut Ctx<'_>,
    ) -> Option<Step> {
        let scope = x.scope();
        if scope.access.acl.is_empty() && scope.limiter.is_none() {
            return None;
        }
        self.check_access_rules(x, ctx)
    }

    #[inline(never)]
    fn check_access_rules(&mut self, x: &mut Exchange, ctx: &mut Ctx<'_>) -> Option<Step> {
        let ip = self.peer.ip();
        let scope = x.scope();
        if !scope.access.admits(ip) {
            // nginx keeps the connection open after a 403; so does pibl (when the request's
            // body was read).
            return Some(self.fail(Some(x), ctx, 403, "access denied", false));
        }
        let limiter = x.settings.rate_limiters.get(usize::from(scope.limiter?))?;
        match limiter.admit(ip, ctx.clock.now) {
            Admission::Admit => None,
            Admission::Refuse { retry_after } => {
                let secs = retry_after.as_nanos().div_ceil(1_000_000_000).max(1);
                let mut header = [0u8; 40];
                let header = retry_after_header(&mut header, secs as u64);
                Some(self.fail_with(Some(x), ctx, 429, "rate limit exceeded", false, header))
            }
        }
    }
}

/// `Retry-After: N\r\n`, written on the stack (a refusal allocates nothing).
fn retry_after_header(buf: &mut [u8; 40], secs: u64) -> &str {
    use std::io::Write;
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    let _ = write!(cursor, "Retry-After: {secs}\r\n");
    let len = cursor.position() as usize;
    std::str::from_utf8(&buf[..len]).unwrap_or("")
}
