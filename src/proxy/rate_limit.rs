//! `rate_limit`: one token bucket per client address, shared by all workers.
//!
//! SO_REUSEPORT spreads one client's connections over the workers, so per-worker tables with the
//! rate divided by the worker count would be wrong for a single client. The table is split into
//! 256 shards (like the cache index), each behind its own mutex: two workers wait for each other
//! only when their clients hash to the same shard, and only for a few instructions.
//!
//! Each bucket is kept as GCRA's "theoretical arrival time" (`tat`): the instant at which the
//! bucket would be full again. A request is admitted when, after adding its interval, `tat` is no
//! more than `burst` intervals ahead of now; otherwise the client is told to retry when it would
//! be. An entry whose `tat` has passed is a full bucket, the same as no entry, so it can be
//! dropped at any time: that is how the table stays bounded (`rate_limit_table`).

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::access::RateLimit;

const SHARDS: usize = 256;

/// The admission decision for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Admit,
    /// Refused: a token comes back after this long (`Retry-After`, rounded up to seconds).
    Refuse {
        retry_after: Duration,
    },
}

#[derive(Debug)]
struct Shard {
    /// Client key → tat, in nanoseconds since `RateLimiter::epoch`.
    tat: HashMap<u128, u64>,
}

/// The buckets of one `rate_limit`, shared by all workers (in `Settings`: a reload starts them
/// anew).
#[derive(Debug)]
pub struct RateLimiter {
    interval: u64,
    /// How far ahead of now `tat` may be: `burst` intervals.
    tolerance: u64,
    /// Most entries per shard.
    per_shard: usize,
    epoch: Instant,
    hasher: std::collections::hash_map::RandomState,
    shards: Box<[Mutex<Shard>]>,
}

impl RateLimiter {
    /// `table`: most client addresses tracked, across all shards.
    pub fn new(limit: RateLimit, table: usize, epoch: Instant) -> RateLimiter {
        let interval = (limit.interval().as_nanos() as u64).max(1);
        let per_shard = table.div_ceil(SHARDS).max(1);
        RateLimiter {
            interval,
            tolerance: interval.saturating_mul(u64::from(limit.burst)),
            per_shard,
            epoch,
            hasher: Default::default(),
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        // Allocated once: the hot path never grows it.
                        tat: HashMap::with_capacity(per_shard),
                    })
                })
                .collect(),
        }
    }

    /// The buckets of each of `limits` (one per scope that sets a `rate_limit`), sharing
    /// `table` between them: with several, each tracks `table / n` addresses, so the memory is
    /// bounded by `rate_limit_table` however many scopes set a limit.
    pub fn for_limits(limits: &[RateLimit], table: usize, epoch: Instant) -> Vec<RateLimiter> {
        let each = table.div_ceil(limits.len().max(1));
        limits
            .iter()
            .map(|&limit| RateLimiter::new(limit, each, epoch))
            .collect()
    }

    /// Takes a token for `ip` at `now`, or says how long until one is back.
    pub fn admit(&self, ip: IpAddr, now: Instant) -> Admission {
        let key = client_key(ip);
        let now = now.saturating_duration_since(self.epoch).as_nanos() as u64;
        let shard = (self.hasher.hash_one(key) >> 56) as usize % SHARDS;
        // A poisoned shard (a panic while held, which nothing here can do) still holds
        // consistent numbers: keep using it.
        let mut shard = self.shards[shard]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let tat = shard.tat.get(&key).copied().unwrap_or(0).max(now);
        let next = tat.saturating_add(self.interval);
        if next - now > self.tolerance {
            let wait = next - now - self.tolerance;
            return Admission::Refuse {
                retry_after: Duration::from_nanos(wait),
            };
        }
        match shard.tat.get_mut(&key) {
            Some(t) => *t = next,
            None => {
                if shard.tat.len() >= self.per_shard {
                    shard.make_room(now, self.per_shard);
                }
                shard.tat.insert(key, next);
            }
        }
        Admission::Admit
    }

    /// Client addresses tracked now (tests, status).
    pub fn tracked(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |s| s.tat.len()))
            .sum()
    }
}

impl Shard {
    /// The shard is full and a new client arrives: drop the full buckets (no different from
    /// absent ones); if every bucket is in use, the one closest to full.
    fn make_room(&mut self, now: u64, bound: usize) {
        self.tat.retain(|_, tat| *tat > now);
        if self.tat.len() >= bound {
            let oldest = self
                .tat
                .iter()
                .min_by_key(|(_, tat)| **tat)
                .map(|(k, _)| *k);
            if let Some(oldest) = oldest {
                self.tat.remove(&oldest);
            }
        }
    }
}

/// IPv4 by address, IPv6 by its /64 (one host usually holds a whole /64); a v4-mapped IPv6
/// address is its IPv4 address.
fn client_key(ip: IpAddr) -> u128 {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(_) => crate::access::as_u128(ip),
        IpAddr::V6(v6) => u128::from(v6) & (u128::MAX << 64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(rate: u32, burst: u32, table: usize) -> (RateLimiter, Instant) {
        let epoch = Instant::now();
        let limit = RateLimit {
            rate,
            per: Duration::from_secs(1),
            burst,
        };
        (RateLimiter::new(limit, table, epoch), epoch)
    }

    #[test]
    fn the_burst_passes_then_the_rate() {
        let (l, t0) = limiter(1, 2, 100);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(l.admit(ip, t0), Admission::Admit);
        assert_eq!(l.admit(ip, t0), Admission::Admit);
        assert_eq!(
            l.admit(ip, t0),
            Admission::Refuse {
                retry_after: Duration::from_secs(1)
            }
        );
        // Another client has its own bucket.
        assert_eq!(l.admit("10.0.0.2".parse().unwrap(), t0), Admission::Admit);
        // One interval later one token is back, and only one.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(l.admit(ip, t1), Admission::Admit);
        assert!(matches!(l.admit(ip, t1), Admission::Refuse { .. }));
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        let (l, t0) = limiter(1, 1, 100);
        assert_eq!(
            l.admit("2001:db8::1".parse().unwrap(), t0),
            Admission::Admit
        );
        assert!(matches!(
            l.admit("2001:db8::2".parse().unwrap(), t0),
            Admission::Refuse { .. }
        ));
        assert_eq!(
            l.admit("2001:db8:0:1::1".parse().unwrap(), t0),
            Admission::Admit
        );
        assert_eq!(
            client_key("::ffff:1.2.3.4".parse().unwrap()),
            client_key("1.2.3.4".parse().unwrap())
        );
    }

    #[test]
    fn a_flood_of_addresses_cannot_grow_the_table() {
        let (l, t0) = limiter(1, 5, 1000);
        for i in 0..100_000u32 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(i));
            assert_eq!(l.admit(ip, t0), Admission::Admit);
        }
        // 1000 across 256 shards: at most 4 each.
        assert!(l.tracked() <= 1024, "{}", l.tracked());
    }
}
