//! Traffic control as configured: `allow`/`deny` CIDR lists, `rate_limit` and `error_page`, one
//! [`AccessRules`] per scope (the top level's in `Config::access`, a site's or route's in its
//! `config::ScopeSettings`; resolved per route in `routing::Scope`).
//!
//! The rate limiter's table itself lives with the running settings (`proxy/rate_limit.rs`);
//! this is only what the file says.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

/// A network, `10.0.0.0/8` or `2001:db8::/32`, kept as IPv6 (IPv4 mapped into `::ffff:0:0/96`)
/// so one comparison covers both families and a v4-mapped client matches its IPv4 rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: u128,
    /// Prefix length in the IPv6 form (an IPv4 `/8` is `/104`).
    bits: u8,
}

impl Cidr {
    /// Every address (`all`).
    pub const ALL: Cidr = Cidr { net: 0, bits: 0 };

    /// Parses `ADDR`, `ADDR/BITS` or `all`; host bits set beyond the prefix are an error (a
    /// typo like `10.0.0.1/8` usually means something else).
    pub fn parse(s: &str) -> Result<Cidr, String> {
        if s == "all" {
            return Ok(Cidr::ALL);
        }
        let (addr, bits) = match s.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| format!("'{s}' is not an address, ADDR/BITS or 'all'"))?;
        let (max, offset) = match ip {
            IpAddr::V4(_) => (32u8, 96u8),
            IpAddr::V6(_) => (128, 0),
        };
        let bits = match bits {
            None => max,
            Some(b) => match b.parse::<u8>() {
                Ok(b) if b <= max => b,
                _ => return Err(format!("'{s}': the prefix length must be 0 to {max}")),
            },
        };
        let bits = bits + offset;
        let net = as_u128(ip);
        if net & !mask(bits) != 0 {
            return Err(format!(
                "'{s}' has bits set beyond its /{} prefix",
                bits - offset
            ));
        }
        Ok(Cidr { net, bits })
    }

    #[inline]
    pub fn contains(&self, ip: IpAddr) -> bool {
        as_u128(ip) & mask(self.bits) == self.net
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.bits == 0 {
            return f.write_str("all");
        }
        let v6 = Ipv6Addr::from(self.net);
        match v6.to_ipv4_mapped() {
            Some(v4) if self.bits >= 96 => write!(f, "{v4}/{}", self.bits - 96),
            _ => write!(f, "{v6}/{}", self.bits),
        }
    }
}

/// The address as 128 bits, IPv4 mapped (`::ffff:a.b.c.d`).
#[inline]
pub fn as_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

#[inline]
fn mask(bits: u8) -> u128 {
    match bits {
        0 => 0,
        b => u128::MAX << (128 - u32::from(b)),
    }
}

/// `allow` or `deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Deny,
}

/// One `allow CIDR` / `deny CIDR` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AclRule {
    pub verdict: Verdict,
    pub net: Cidr,
}

/// `rate_limit RATE/s|m burst=N [per=client_ip]`: a token bucket per client address (IPv6 by
/// its /64), refilled at `rate` per `per`, holding at most `burst` requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub rate: u32,
    /// One second or one minute.
    pub per: Duration,
    pub burst: u32,
}

impl RateLimit {
    /// The time one request's token takes to come back.
    pub fn interval(&self) -> Duration {
        self.per / self.rate
    }

    /// Parses the arguments of `rate_limit`.
    pub fn parse(args: &[&str]) -> Result<RateLimit, String> {
        const USAGE: &str = "takes RATE/s or RATE/m, burst=N, and optionally per=client_ip";
        let Some((rate, rest)) = args.split_first() else {
            return Err(USAGE.to_string());
        };
        let (n, unit) = rate.split_once('/').ok_or_else(|| USAGE.to_string())?;
        let per = match unit {
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            _ => {
                return Err(format!(
                    "'{rate}': the rate is per second (/s) or minute (/m)"
                ))
            }
        };
        let rate = match n.parse::<u32>() {
            Ok(r) if (1..=1_000_000).contains(&r) => r,
            _ => return Err(format!("'{n}': the rate must be 1 to 1000000")),
        };
        let mut burst = None;
        for arg in rest {
            match arg.split_once('=') {
                Some(("burst", v)) => match v.parse::<u32>() {
                    Ok(b) if (1..=1_000_000).contains(&b) => burst = Some(b),
                    _ => return Err(format!("'{arg}': burst must be 1 to 1000000")),
                },
                Some(("per", "client_ip")) => {}
                Some(("per", v)) => {
                    return Err(format!("per={v}: only per=client_ip is supported"))
                }
                _ => return Err(format!("'{arg}': {USAGE}")),
            }
        }
        let burst = burst.ok_or_else(|| format!("burst=N is missing: {USAGE}"))?;
        Ok(RateLimit { rate, per, burst })
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = if self.per.as_secs() == 60 { "m" } else { "s" };
        write!(f, "{}/{unit} burst={} per=client_ip", self.rate, self.burst)
    }
}

/// Default `rate_limit_table`: client addresses tracked at once.
pub const DEFAULT_RATE_LIMIT_TABLE: usize = 100_000;

/// Who may send requests, and how fast: checked on the real client address when a request head
/// has been parsed, before anything else is done for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRules {
    /// `allow`/`deny` lines in order: the first that matches decides (nginx); none: allowed.
    pub acl: Vec<AclRule>,
    pub rate_limit: Option<RateLimit>,
    /// `rate_limit_table N` (top level only): most client addresses the limiters track, shared
    /// between them (oldest evicted).
    pub rate_limit_table: usize,
    /// `error_page CODE... FILE`: pibl's own error responses replaced by files' bytes.
    pub error_pages: crate::http::error_pages::ErrorPages,
}

impl Default for AccessRules {
    fn default() -> Self {
        AccessRules {
            acl: Vec::new(),
            rate_limit: None,
            rate_limit_table: DEFAULT_RATE_LIMIT_TABLE,
            error_pages: Default::default(),
        }
    }
}

impl AccessRules {
    /// True when the `allow`/`deny` lines let `ip` in. No rules: one length check.
    #[inline]
    pub fn admits(&self, ip: IpAddr) -> bool {
        self.acl
            .iter()
            .find(|r| r.net.contains(ip))
            .is_none_or(|r| r.verdict == Verdict::Allow)
    }

    /// The `allow`/`deny` lines as written (`--check`).
    pub fn acl_lines(&self) -> impl Iterator<Item = String> + '_ {
        self.acl.iter().map(|rule| {
            let word = match rule.verdict {
                Verdict::Allow => "allow",
                Verdict::Deny => "deny",
            };
            format!("{word} {}", rule.net)
        })
    }

    /// Parses an `allow` or `deny` line's one value and appends the rule.
    pub fn add_rule(&mut self, verdict: Verdict, value: &str) -> Result<(), String> {
        let net = Cidr::parse(value)?;
        self.acl.push(AclRule { verdict, net });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidrs_match_their_networks_in_both_families() {
        let n = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(n.contains(ip("10.1.2.3")));
        assert!(n.contains(ip("::ffff:10.1.2.3")));
        assert!(!n.contains(ip("10.2.0.1")));
        assert!(!n.contains(ip("::1")));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:1::5")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(!v6.contains(ip("10.1.2.3")));
        assert!(Cidr::parse("127.0.0.2").unwrap().contains(ip("127.0.0.2")));
        assert!(!Cidr::parse("127.0.0.2").unwrap().contains(ip("127.0.0.1")));
        assert!(Cidr::ALL.contains(ip("1.2.3.4")) && Cidr::ALL.contains(ip("::")));
        assert_eq!(n.to_string(), "10.1.0.0/16");
        assert_eq!(v6.to_string(), "2001:db8::/32");
    }

    #[test]
    fn bad_cidrs_are_refused() {
        for bad in [
            "10.0.0.1/8",
            "10.0.0.0/33",
            "nope",
            "::/129",
            "10.0.0.0/x",
            "",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_first_matching_rule_wins() {
        let mut a = AccessRules::default();
        assert!(a.admits(ip("1.2.3.4")));
        a.add_rule(Verdict::Allow, "127.0.0.2").unwrap();
        a.add_rule(Verdict::Deny, "127.0.0.0/8").unwrap();
        assert!(a.admits(ip("127.0.0.2")));
        assert!(!a.admits(ip("127.0.0.1")));
        assert!(a.admits(ip("10.0.0.1")));
        a.add_rule(Verdict::Deny, "all").unwrap();
        assert!(!a.admits(ip("10.0.0.1")));
    }

    #[test]
    fn rate_limits_parse() {
        let r = RateLimit::parse(&["100/s", "burst=200", "per=client_ip"]).unwrap();
        assert_eq!((r.rate, r.burst, r.per), (100, 200, Duration::from_secs(1)));
        assert_eq!(r.interval(), Duration::from_millis(10));
        let m = RateLimit::parse(&["30/m", "burst=1"]).unwrap();
        assert_eq!(m.interval(), Duration::from_secs(2));
        assert_eq!(m.to_string(), "30/m burst=1 per=client_ip");
        for bad in [
            &["100/s"][..],
            &["100", "burst=2"],
            &["0/s", "burst=2"],
            &["5/h", "burst=2"],
            &["5/s", "burst=0"],
            &["5/s", "burst=2", "per=uri"],
            &[],
        ] {
            assert!(RateLimit::parse(bad).is_err(), "{bad:?}");
        }
    }
}
