//! `Accept-Encoding` (RFC 9110 §12.5.3): the coding a client prefers among those pibl makes.

use super::Coding;
use crate::http::{name_is, Field};

/// Elements of `Accept-Encoding` read per request, over all its lines: a client listing more is
/// not a browser, and the work per request stays bounded.
pub const MAX_ELEMENTS: usize = 32;

/// The coding to send, or `None` for identity. Each coding's weight is its own element's, else
/// `*`'s, else 0 (not acceptable); `q=0` refuses. The heaviest acceptable coding wins, ties in
/// [`Coding::PREFERENCE`] order, unless `identity` (listed, or through `*`) weighs more. No
/// `Accept-Encoding` at all, or an empty one, means identity: a client that says nothing gets
/// what it can surely read. `identity;q=0` with nothing else acceptable also gives `None`: the
/// response goes out as it is (RFC 9110 allows that rather than a 415).
/// A malformed element (a bad token or weight) is ignored, the rest still count.
pub fn negotiate(fields: &[impl Field]) -> Option<Coding> {
    let mut weights: [Option<u16>; 3] = [None; 3];
    let mut star = None;
    let mut identity = None;
    let mut read = 0;
    'fields: for f in fields
        .iter()
        .filter(|f| name_is(f.name(), "accept-encoding"))
    {
        for element in f.value().split(|&b| b == b',') {
            if read == MAX_ELEMENTS {
                break 'fields;
            }
            read += 1;
            let Some((token, weight)) = parse_element(element) else {
                continue;
            };
            let slot = if token == b"*" {
                &mut star
            } else if token.eq_ignore_ascii_case(b"identity") {
                &mut identity
            } else if let Some(c) = Coding::from_token(token) {
                &mut weights[c.index()]
            } else {
                continue;
            };
            // A coding listed twice: its first element counts.
            slot.get_or_insert(weight);
        }
    }
    let mut best: Option<(Coding, u16)> = None;
    for c in Coding::PREFERENCE {
        let w = weights[c.index()].or(star).unwrap_or(0);
        if w > 0 && best.is_none_or(|(_, b)| w > b) {
            best = Some((c, w));
        }
    }
    let (coding, weight) = best?;
    match identity.or(star) {
        Some(identity) if identity > weight => None,
        _ => Some(coding),
    }
}

/// One element: `token [; q=weight]` with its weight in thousandths (1000 when not given).
/// Parameters other than `q` are ignored; a bad token or a bad weight makes the element
/// malformed (`None`).
fn parse_element(element: &[u8]) -> Option<(&[u8], u16)> {
    let mut parts = element.split(|&b| b == b';');
    let token = parts.next()?.trim_ascii();
    if token.is_empty() || !token.iter().all(|&b| is_tchar(b)) {
        return None;
    }
    let mut weight = 1000;
    for param in parts {
        let param = param.trim_ascii();
        let Some((name, value)) = param.split_at_checked(2) else {
            continue;
        };
        if name.eq_ignore_ascii_case(b"q=") {
            weight = qvalue(value)?;
        }
    }
    Some((token, weight))
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`, in thousandths.
fn qvalue(v: &[u8]) -> Option<u16> {
    let (&first, rest) = v.split_first()?;
    let fraction = match rest {
        [] => &[][..],
        [b'.', digits @ ..] if digits.len() <= 3 => digits,
        _ => return None,
    };
    let mut thousandths: u16 = 0;
    let mut scale = 100;
    for &d in fraction {
        if !d.is_ascii_digit() {
            return None;
        }
        thousandths += u16::from(d - b'0') * scale;
        scale /= 10;
    }
    match first {
        b'0' => Some(thousandths),
        b'1' if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// RFC 9110 §5.6.2 token characters.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Coding::*;

    fn ae(values: &[&str]) -> Option<Coding> {
        let fields: Vec<httparse::Header<'_>> = values
            .iter()
            .map(|v| httparse::Header {
                name: "Accept-Encoding",
                value: v.as_bytes(),
            })
            .collect();
        negotiate(&fields)
    }

    #[test]
    fn browsers_get_br_and_ties_go_to_the_smaller_output() {
        assert_eq!(ae(&["gzip, deflate, br, zstd"]), Some(Br));
        assert_eq!(ae(&["gzip, deflate, br"]), Some(Br));
        assert_eq!(ae(&["gzip, zstd"]), Some(Zstd));
        assert_eq!(ae(&["gzip"]), Some(Gzip));
        assert_eq!(ae(&["GZIP"]), Some(Gzip));
        assert_eq!(ae(&["x-gzip"]), Some(Gzip));
        assert_eq!(ae(&["deflate"]), None);
        assert_eq!(ae(&["gzip", "br"]), Some(Br), "several lines are one list");
    }

    #[test]
    fn weights_choose_and_zero_refuses() {
        assert_eq!(ae(&["br;q=0.5, gzip;q=0.8"]), Some(Gzip));
        assert_eq!(ae(&["br;q=0.8, gzip;q=0.8"]), Some(Br));
        assert_eq!(ae(&["br;q=0, gzip"]), Some(Gzip));
        assert_eq!(ae(&["gzip;q=0"]), None);
        assert_eq!(ae(&["gzip ; Q=0.001"]), Some(Gzip));
        assert_eq!(ae(&["gzip;q=1.000"]), Some(Gzip));
        assert_eq!(ae(&["br;q=0.999, zstd;q=1"]), Some(Zstd));
    }

    #[test]
    fn no_field_or_an_empty_one_means_identity() {
        assert_eq!(ae(&[]), None);
        assert_eq!(ae(&[""]), None);
        assert_eq!(ae(&["identity"]), None);
        assert_eq!(ae(&[" , ,"]), None);
    }

    #[test]
    fn star_and_identity() {
        assert_eq!(ae(&["*"]), Some(Br));
        assert_eq!(ae(&["*;q=0"]), None);
        assert_eq!(ae(&["*, br;q=0"]), Some(Zstd));
        assert_eq!(ae(&["*;q=0, gzip"]), Some(Gzip));
        assert_eq!(ae(&["gzip, identity;q=0"]), Some(Gzip));
        assert_eq!(
            ae(&["identity;q=0"]),
            None,
            "nothing acceptable: sent as it is"
        );
        assert_eq!(ae(&["gzip;q=0.5, identity"]), None, "identity weighs more");
        assert_eq!(ae(&["gzip;q=0.5, identity;q=0.5"]), Some(Gzip));
        assert_eq!(
            ae(&["gzip;q=0.5, *;q=0.9"]),
            Some(Br),
            "* weighs br, zstd and identity"
        );
    }

    #[test]
    fn malformed_elements_are_ignored_and_the_rest_counts() {
        assert_eq!(ae(&["br;q=2, gzip"]), Some(Gzip));
        assert_eq!(ae(&["br;q=0.1234, gzip"]), Some(Gzip));
        assert_eq!(ae(&["br;q=, gzip"]), Some(Gzip));
        assert_eq!(ae(&["br;q=1.5, gzip"]), Some(Gzip));
        assert_eq!(ae(&["b r, gzip"]), Some(Gzip));
        assert_eq!(
            ae(&["br;level=3, gzip;q=0.1"]),
            Some(Br),
            "other parameters ignored"
        );
        assert_eq!(ae(&["br;q=0.x"]), None);
        assert_eq!(ae(&["\u{e9}br"]), None);
        assert_eq!(ae(&["br;;q=0.5;, gzip;q=0.4"]), Some(Br));
    }

    #[test]
    fn a_coding_listed_twice_counts_once_and_work_is_bounded() {
        assert_eq!(ae(&["br;q=0, br"]), None);
        let long = vec!["deflate"; MAX_ELEMENTS].join(",") + ", gzip";
        assert_eq!(ae(&[&long]), None, "past the bound nothing more is read");
        let within = vec!["deflate"; MAX_ELEMENTS - 1].join(",") + ", gzip";
        assert_eq!(ae(&[&within]), Some(Gzip));
    }

    #[test]
    fn qvalues() {
        assert_eq!(qvalue(b"0"), Some(0));
        assert_eq!(qvalue(b"0."), Some(0));
        assert_eq!(qvalue(b"0.5"), Some(500));
        assert_eq!(qvalue(b"0.05"), Some(50));
        assert_eq!(qvalue(b"0.005"), Some(5));
        assert_eq!(qvalue(b"1"), Some(1000));
        assert_eq!(qvalue(b"1.0"), Some(1000));
        assert_eq!(qvalue(b"1.001"), None);
        assert_eq!(qvalue(b"0.0000"), None);
        assert_eq!(qvalue(b""), None);
        assert_eq!(qvalue(b".5"), None);
        assert_eq!(qvalue(b"2"), None);
    }
}
