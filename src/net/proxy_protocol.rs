//! The PROXY protocol (HAProxy's proxy-protocol.txt), versions 1 and 2: the header a load
//! balancer in front of pibl sends first on a connection to say who the client is, and the one
//! pibl sends to a backend for the same reason. Sans-io: bytes in, a verdict out; the caller
//! owns the socket (`proxy/proxy_header.rs` reads it, `proxy/relay.rs` writes it).
//!
//! Bounds: a v1 header is at most 107 bytes; a v2 header at most [`MAX_HEADER`] (its TLVs are
//! skipped, never kept), so a reader needs no more than that much room.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The v2 signature: 12 bytes no HTTP request or TLS record can begin with.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// A v1 header's longest form, CRLF included (the spec's bound).
pub const V1_MAX: usize = 107;
/// The longest v2 header accepted (16 bytes fixed, addresses and TLVs): enough for the TLVs
/// load balancers send (ALPN, authority, TLS facts, a cloud's endpoint id); longer is refused.
pub const MAX_HEADER: usize = 1024;
/// The v1 header's opening.
const V1_PREFIX: &[u8] = b"PROXY ";

/// What the bytes read so far are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// A valid beginning: read more.
    Incomplete,
    /// A whole header of `consumed` bytes. `source`/`dest` are `None` for `LOCAL` (v2),
    /// `UNKNOWN` (v1) and address families other than IPv4/IPv6: the socket's own address
    /// stands then.
    Done {
        source: Option<SocketAddr>,
        dest: Option<SocketAddr>,
        consumed: usize,
    },
    /// Not a PROXY protocol header, or a broken one.
    Invalid(&'static str),
}

/// Reads a PROXY protocol header (v1 or v2) from the start of `input`.
pub fn parse(input: &[u8]) -> Parsed {
    let n = input.len().min(V2_SIGNATURE.len());
    if input[..n] == V2_SIGNATURE[..n] {
        return if n < V2_SIGNATURE.len() {
            Parsed::Incomplete
        } else {
            parse_v2(input)
        };
    }
    let n = input.len().min(V1_PREFIX.len());
    if input[..n] == V1_PREFIX[..n] {
        return if n < V1_PREFIX.len() {
            Parsed::Incomplete
        } else {
            parse_v1(input)
        };
    }
    Parsed::Invalid("not a PROXY protocol header")
}

/// `PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n` or `PROXY UNKNOWN ...\r\n`.
fn parse_v1(input: &[u8]) -> Parsed {
    let window = &input[..input.len().min(V1_MAX)];
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        return if input.len() >= V1_MAX {
            Parsed::Invalid("PROXY v1 header longer than 107 bytes")
        } else if window
            .iter()
            .any(|&b| !(b' '..=b'~').contains(&b) && b != b'\r')
        {
            Parsed::Invalid("PROXY v1 header with a control byte")
        } else {
            Parsed::Incomplete
        };
    };
    if lf == 0 || window[lf - 1] != b'\r' {
        return Parsed::Invalid("PROXY v1 header not ended by CRLF");
    }
    let consumed = lf + 1;
    let Ok(line) = std::str::from_utf8(&window[V1_PREFIX.len()..lf - 1]) else {
        return Parsed::Invalid("PROXY v1 header not text");
    };
    let mut parts = line.split(' ');
    let family = parts.next().unwrap_or("");
    if family == "UNKNOWN" {
        // The sender does not know the addresses: whatever follows is ignored.
        return Parsed::Done {
            source: None,
            dest: None,
            consumed,
        };
    }
    let v6 = match family {
        "TCP4" => false,
        "TCP6" => true,
        _ => return Parsed::Invalid("PROXY v1 protocol is not TCP4, TCP6 or UNKNOWN"),
    };
    let (Some(src), Some(dst), Some(sport), Some(dport), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Parsed::Invalid("PROXY v1 header does not have four fields");
    };
    let (Some(src), Some(dst)) = (v1_address(src, v6), v1_address(dst, v6)) else {
        return Parsed::Invalid("PROXY v1 address is not of its protocol");
    };
    let (Some(sport), Some(dport)) = (v1_port(sport), v1_port(dport)) else {
        return Parsed::Invalid("PROXY v1 port is not a number from 0 to 65535");
    };
    Parsed::Done {
        source: Some(SocketAddr::new(src, sport)),
        dest: Some(SocketAddr::new(dst, dport)),
        consumed,
    }
}

fn v1_address(text: &str, v6: bool) -> Option<IpAddr> {
    if v6 {
        text.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
    } else {
        text.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
    }
}

/// A decimal port: digits only (no sign, no space), at most 5 of them.
fn v1_port(text: &str) -> Option<u16> {
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The binary form: signature, version and command, family and transport, length, addresses,
/// TLVs (skipped).
fn parse_v2(input: &[u8]) -> Parsed {
    const FIXED: usize = 16;
    if input.len() < FIXED {
        return Parsed::Incomplete;
    }
    let version_command = input[12];
    if version_command >> 4 != 2 {
        return Parsed::Invalid("PROXY v2 header of another version");
    }
    let local = match version_command & 0x0f {
        0 => true,
        1 => false,
        _ => return Parsed::Invalid("PROXY v2 command is neither LOCAL nor PROXY"),
    };
    let family = input[13];
    let len = usize::from(u16::from_be_bytes([input[14], input[15]]));
    let consumed = FIXED + len;
    if consumed > MAX_HEADER {
        return Parsed::Invalid("PROXY v2 header longer than pibl accepts");
    }
    if input.len() < consumed {
        return Parsed::Incomplete;
    }
    if local {
        // A health check or the balancer's own connection: the socket's addresses stand.
        return Parsed::Done {
            source: None,
            dest: None,
            consumed,
        };
    }
    if !matches!(family & 0x0f, 0 | 1) {
        return Parsed::Invalid("PROXY v2 transport is not a stream");
    }
    let a = &input[FIXED..consumed];
    let (source, dest) = match family >> 4 {
        // AF_INET: 4 + 4 bytes of addresses, 2 + 2 of ports.
        1 if a.len() >= 12 => {
            let src = Ipv4Addr::from([a[0], a[1], a[2], a[3]]);
            let dst = Ipv4Addr::from([a[4], a[5], a[6], a[7]]);
            (
                SocketAddr::new(src.into(), u16::from_be_bytes([a[8], a[9]])),
                SocketAddr::new(dst.into(), u16::from_be_bytes([a[10], a[11]])),
            )
        }
        // AF_INET6: 16 + 16, then the ports.
        2 if a.len() >= 36 => {
            let mut src = [0u8; 16];
            let mut dst = [0u8; 16];
            src.copy_from_slice(&a[..16]);
            dst.copy_from_slice(&a[16..32]);
            (
                SocketAddr::new(
                    Ipv6Addr::from(src).into(),
                    u16::from_be_bytes([a[32], a[33]]),
                ),
                SocketAddr::new(
                    Ipv6Addr::from(dst).into(),
                    u16::from_be_bytes([a[34], a[35]]),
                ),
            )
        }
        1 | 2 => return Parsed::Invalid("PROXY v2 addresses shorter than their family"),
        // AF_UNSPEC, and AF_UNIX (2 x 108 bytes of path): nothing pibl can log as an address.
        0 => return unknown(consumed),
        3 if a.len() >= 216 => return unknown(consumed),
        3 => return Parsed::Invalid("PROXY v2 addresses shorter than their family"),
        _ => return Parsed::Invalid("PROXY v2 address family unknown"),
    };
    Parsed::Done {
        source: Some(source),
        dest: Some(dest),
        consumed,
    }
}

fn unknown(consumed: usize) -> Parsed {
    Parsed::Done {
        source: None,
        dest: None,
        consumed,
    }
}

/// The version of the header pibl sends to a pool (`proxy_protocol v1|v2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

impl Version {
    pub fn name(self) -> &'static str {
        match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
        }
    }
}

/// A header to send, built on the stack: at most 107 bytes (v1) or 52 (v2 with IPv6).
#[derive(Clone, Copy)]
pub struct Header {
    bytes: [u8; V1_MAX],
    len: usize,
}

impl Header {
    /// The header announcing a connection from `source` to `dest`; `None`: v1 `UNKNOWN`, v2
    /// `LOCAL` (what health checks send: the connection is pibl's own). When the two
    /// addresses are of different families, both go as IPv6 (IPv4 mapped).
    pub fn new(version: Version, addrs: Option<(SocketAddr, SocketAddr)>) -> Header {
        let mut h = Header {
            bytes: [0; V1_MAX],
            len: 0,
        };
        let addrs = addrs.map(|(s, d)| match (s.ip(), d.ip()) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => (s, d),
            _ => (as_v6(s), as_v6(d)),
        });
        match version {
            Version::V1 => h.write_v1(addrs),
            Version::V2 => h.write_v2(addrs),
        }
        h
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    fn put(&mut self, b: &[u8]) {
        let end = (self.len + b.len()).min(self.bytes.len());
        let n = end - self.len;
        self.bytes[self.len..end].copy_from_slice(&b[..n]);
        self.len = end;
    }

    fn write_v1(&mut self, addrs: Option<(SocketAddr, SocketAddr)>) {
        use std::io::Write;
        let Some((s, d)) = addrs else {
            self.put(b"PROXY UNKNOWN\r\n");
            return;
        };
        let family = if s.is_ipv4() { "TCP4" } else { "TCP6" };
        let mut cursor = std::io::Cursor::new(&mut self.bytes[..]);
        // The longest form (two full IPv6 addresses) is 104 bytes: it always fits.
        let _ = write!(
            cursor,
            "PROXY {family} {} {} {} {}\r\n",
            s.ip(),
            d.ip(),
            s.port(),
            d.port()
        );
        self.len = cursor.position() as usize;
    }

    fn write_v2(&mut self, addrs: Option<(SocketAddr, SocketAddr)>) {
        self.put(&V2_SIGNATURE);
        let Some((s, d)) = addrs else {
            // LOCAL, AF_UNSPEC, no addresses.
            self.put(&[0x20, 0x00, 0, 0]);
            return;
        };
        match (s.ip(), d.ip()) {
            (IpAddr::V4(si), IpAddr::V4(di)) => {
                self.put(&[0x21, 0x11, 0, 12]);
                self.put(&si.octets());
                self.put(&di.octets());
            }
            (si, di) => {
                self.put(&[0x21, 0x21, 0, 36]);
                self.put(&v6_octets(si));
                self.put(&v6_octets(di));
            }
        }
        self.put(&s.port().to_be_bytes());
        self.put(&d.port().to_be_bytes());
    }
}

impl std::fmt::Debug for Header {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Header({:?})", self.as_bytes())
    }
}

fn as_v6(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(IpAddr::V6(v6_octets(a.ip()).into()), a.port())
}

fn v6_octets(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(input: &[u8]) -> (Option<SocketAddr>, Option<SocketAddr>, usize) {
        match parse(input) {
            Parsed::Done {
                source,
                dest,
                consumed,
            } => (source, dest, consumed),
            other => panic!("{other:?} for {input:?}"),
        }
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("an address")
    }

    /// The spec's v1 examples (section 2.1).
    #[test]
    fn v1_examples_from_the_spec() {
        let h = b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n";
        assert_eq!(
            done(h),
            (
                Some(addr("255.255.255.255:65535")),
                Some(addr("255.255.255.255:65535")),
                h.len()
            )
        );
        let h = b"PROXY TCP6 ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n";
        assert!(matches!(parse(h), Parsed::Invalid(_)), "not an address");
        let h = b"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
        assert_eq!(h.len(), 104);
        assert_eq!(done(h).2, 104);
        let h = b"PROXY UNKNOWN\r\n";
        assert_eq!(done(h), (None, None, 15));
        let h = b"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n";
        assert_eq!(done(h), (None, None, h.len()));
        let h = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n\r\n";
        assert_eq!(
            done(h),
            (
                Some(addr("192.168.0.1:56324")),
                Some(addr("192.168.0.11:443")),
                47
            )
        );
    }

    #[test]
    fn v1_refusals() {
        for bad in [
            &b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"[..],
            b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
            b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
            b"PROXY TCP4 ::1 ::1 1 2\r\n",
            b"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
            b"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY \r\n",
            b"PROXY TCP4 1.2.3.4\x005.6.7.8 1 2",
            b"GET / HTTP/1.1\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01",
            b"proxy TCP4",
        ] {
            assert!(matches!(parse(bad), Parsed::Invalid(_)), "{bad:?}");
        }
        // No CRLF within 107 bytes.
        let mut long = b"PROXY UNKNOWN ".to_vec();
        long.resize(V1_MAX, b'x');
        assert!(matches!(parse(&long), Parsed::Invalid(_)));
        long.truncate(V1_MAX - 1);
        assert_eq!(parse(&long), Parsed::Incomplete);
    }

    fn v2(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(command);
        h.push(family);
        h.extend_from_slice(&(body.len() as u16).to_be_bytes());
        h.extend_from_slice(body);
        h
    }

    #[test]
    fn v2_families_commands_and_tlvs() {
        let mut body = vec![192, 0, 2, 1, 198, 51, 100, 7, 0x30, 0x39, 0x01, 0xbb];
        // Two TLVs (ALPN "h2", a NOOP): skipped.
        body.extend_from_slice(&[0x01, 0, 2, b'h', b'2', 0x04, 0, 0]);
        let h = v2(0x21, 0x11, &body);
        assert_eq!(
            done(&h),
            (
                Some(addr("192.0.2.1:12345")),
                Some(addr("198.51.100.7:443")),
                h.len()
            )
        );
        let mut body = vec![0u8; 36];
        body[15] = 1;
        body[31] = 2;
        body[32..34].copy_from_slice(&80u16.to_be_bytes());
        body[34..36].copy_from_slice(&8080u16.to_be_bytes());
        let h = v2(0x21, 0x21, &body);
        assert_eq!(
            done(&h),
            (Some(addr("[::1]:80")), Some(addr("[::2]:8080")), 52)
        );
        // LOCAL ignores whatever it carries; UNSPEC and UNIX keep the socket's address.
        assert_eq!(done(&v2(0x20, 0x11, &[1; 12])), (None, None, 28));
        assert_eq!(done(&v2(0x20, 0x00, &[])), (None, None, 16));
        assert_eq!(done(&v2(0x21, 0x00, &[])), (None, None, 16));
        assert_eq!(done(&v2(0x21, 0x31, &[0; 216])), (None, None, 232));
        // Refusals.
        for (cmd, fam, body) in [
            (0x11, 0x11, &[0u8; 12][..]),
            (0x22, 0x11, &[0; 12]),
            (0x21, 0x11, &[0; 11]),
            (0x21, 0x21, &[0; 12]),
            (0x21, 0x12, &[0; 12]),
            (0x21, 0x41, &[0; 12]),
            (0x21, 0x31, &[0; 100]),
        ] {
            let h = v2(cmd, fam, body);
            assert!(matches!(parse(&h), Parsed::Invalid(_)), "{h:?}");
        }
        // Too long to be accepted: refused at once, before the bytes arrive.
        let mut h = v2(0x21, 0x11, &[0; 12]);
        h[14..16].copy_from_slice(&(MAX_HEADER as u16).to_be_bytes());
        assert!(matches!(parse(&h), Parsed::Invalid(_)));
    }

    /// Every prefix of a valid header is `Incomplete`, never `Invalid` or `Done`; the whole
    /// one is `Done` whatever follows it.
    #[test]
    fn truncations_are_incomplete_and_what_follows_is_not_consumed() {
        let v1 = b"PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n".to_vec();
        let v2h = v2(
            0x21,
            0x11,
            &[10, 0, 0, 1, 10, 0, 0, 2, 0, 1, 0, 2, 0x03, 0, 4, 1, 2, 3, 4],
        );
        for h in [v1, v2h] {
            for cut in 0..h.len() {
                assert_eq!(parse(&h[..cut]), Parsed::Incomplete, "{:?}", &h[..cut]);
            }
            let mut more = h.clone();
            more.extend_from_slice(b"\x16\x03\x01GET / HTTP/1.1\r\n");
            assert_eq!(done(&more).2, h.len());
        }
    }

    /// Random splits: a reader that feeds bytes as they come (any chunking) gets the same
    /// verdict; random garbage never panics and is never taken for a header unless it is one.
    #[test]
    fn random_splits_and_garbage() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let header = b"PROXY TCP4 203.0.113.9 192.0.2.1 40000 80\r\nGET / HTTP/1.1\r\n\r\n";
        for _ in 0..500 {
            let mut have = 0;
            let verdict = loop {
                have = (have + 1 + (next() % 9) as usize).min(header.len());
                match parse(&header[..have]) {
                    Parsed::Incomplete => assert!(have < header.len()),
                    other => break other,
                }
            };
            assert!(matches!(verdict, Parsed::Done { consumed: 43, .. }));
        }
        for _ in 0..20_000 {
            let len = (next() % 64) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if next() % 2 == 0 {
                let sig: &[u8] = if next() % 2 == 0 {
                    &V2_SIGNATURE
                } else {
                    V1_PREFIX
                };
                bytes.splice(0..0, sig.iter().copied());
            }
            if let Parsed::Done { consumed, .. } = parse(&bytes) {
                assert!(consumed <= bytes.len());
            }
        }
    }

    #[test]
    fn written_headers_read_back() {
        let pairs = [
            (addr("203.0.113.9:40000"), addr("192.0.2.1:80")),
            (addr("[2001:db8::7]:1"), addr("[2001:db8::1]:443")),
            (addr("203.0.113.9:40000"), addr("[2001:db8::1]:443")),
        ];
        for version in [Version::V1, Version::V2] {
            for (s, d) in pairs {
                let h = Header::new(version, Some((s, d)));
                let (src, dst, n) = done(h.as_bytes());
                assert_eq!(n, h.as_bytes().len());
                let same = |a: SocketAddr, b: SocketAddr| {
                    a.port() == b.port() && v6_octets(a.ip()) == v6_octets(b.ip())
                };
                assert!(src.is_some_and(|x| same(x, s)), "{version:?} {s}");
                assert!(dst.is_some_and(|x| same(x, d)), "{version:?} {d}");
            }
            let local = Header::new(version, None);
            assert_eq!(done(local.as_bytes()).0, None);
        }
        assert_eq!(
            Header::new(Version::V1, None).as_bytes(),
            b"PROXY UNKNOWN\r\n"
        );
        let longest = Header::new(
            Version::V1,
            Some((
                addr("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"),
                addr("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"),
            )),
        );
        assert_eq!(longest.as_bytes().len(), 104);
    }
}
