//! Header rules: `request_header` and `response_header` `set|add|remove NAME [VALUE]`, checked at
//! load and applied while a head is written (the upstream head from the parsed fields, the
//! client's head after it is written), so a request costs nothing more than the fields written.
//!
//! The names pibl itself manages for framing, connection handling and forwarding are refused:
//! a rule on them could break message framing (request smuggling) or contradict what pibl writes.

use super::{name_is, put_header};

/// What a rule does to the fields of its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleAction {
    /// Removes the fields the message brought, then writes this value (nginx `proxy_set_header`,
    /// HAProxy `set-header`).
    Set,
    /// Writes this value after the fields the message brought (HAProxy `add-header`).
    Add,
    /// Removes the fields the message brought (HAProxy `del-header`).
    Remove,
}

impl RuleAction {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleAction::Set => "set",
            RuleAction::Add => "add",
            RuleAction::Remove => "remove",
        }
    }
}

/// One rule as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderRule {
    pub action: RuleAction,
    pub name: String,
    /// Empty for `remove`.
    pub value: String,
}

/// The rules of one direction, in config order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderRules {
    pub rules: Vec<HeaderRule>,
}

/// Names no rule may touch: framing and connection handling (hop-by-hop), the Host the request is
/// routed by, and what pibl writes itself (each with the directive that controls it).
fn protected(name: &str) -> Option<&'static str> {
    const FRAMING: [&str; 10] = [
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "upgrade",
        "te",
        "trailer",
        "host",
        "http2-settings",
        "via",
    ];
    if FRAMING.iter().any(|p| name_is(name, p))
        || name.len() >= 6 && name[..6].eq_ignore_ascii_case("proxy-")
    {
        return Some("it is a framing, connection or routing field pibl manages itself");
    }
    for (field, directive) in [
        (
            "x-forwarded-for",
            "pibl appends the client's address itself",
        ),
        ("x-forwarded-proto", "pibl writes it itself"),
        ("x-real-ip", "use 'forward_real_ip on'"),
        ("x-forwarded-host", "use 'forward_host on'"),
        ("x-request-id", "use 'request_id on'"),
    ] {
        if name_is(name, field) {
            return Some(directive);
        }
    }
    None
}

/// RFC 9110 §5.6.2 token characters.
pub fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A field value a rule may write: visible ASCII, spaces and tabs inside; never CR, LF, NUL or
/// another control byte, which would end the field early (header injection).
fn valid_value(v: &str) -> bool {
    !v.is_empty()
        && v.bytes()
            .all(|b| b == b' ' || b == b'\t' || (0x21..0x7f).contains(&b))
        && !v.starts_with([' ', '\t'])
        && !v.ends_with([' ', '\t'])
}

impl HeaderRules {
    /// Parses `set|add|remove NAME [VALUE...]` (the words of VALUE joined by one space) and adds
    /// the rule; the caller puts the directive and its line before the message.
    pub fn parse(&mut self, args: &[&str]) -> Result<(), String> {
        let (action, name, value) = match args {
            ["set", name, value @ ..] if !value.is_empty() => (RuleAction::Set, *name, value),
            ["add", name, value @ ..] if !value.is_empty() => (RuleAction::Add, *name, value),
            ["remove", name] => (RuleAction::Remove, *name, &[][..]),
            ["set" | "add", _] => return Err("needs a value after the name".to_string()),
            ["remove", _, _, ..] => return Err("'remove' takes only a name".to_string()),
            _ => {
                return Err(
                    "expected 'set NAME VALUE', 'add NAME VALUE' or 'remove NAME'".to_string(),
                )
            }
        };
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(format!("'{name}' is not a valid header name"));
        }
        if let Some(why) = protected(name) {
            return Err(format!("{name} cannot be changed by a rule: {why}"));
        }
        let value = value.join(" ");
        if action != RuleAction::Remove && !valid_value(&value) {
            return Err(format!(
                "the value of {name} must be visible text (no control characters)"
            ));
        }
        for r in &self.rules {
            if !name_is(&r.name, name) {
                continue;
            }
            let clash = match (r.action, action) {
                (RuleAction::Set, RuleAction::Set) => Some("is already set"),
                (RuleAction::Set, RuleAction::Remove) | (RuleAction::Remove, RuleAction::Set) => {
                    Some("is both set and removed")
                }
                (RuleAction::Remove, RuleAction::Remove) => Some("is already removed"),
                _ => None,
            };
            if let Some(clash) = clash {
                return Err(format!("{name} {clash} by an earlier rule"));
            }
        }
        self.rules.push(HeaderRule {
            action,
            name: name.to_string(),
            value,
        });
        Ok(())
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The message's own fields of this name are left out (`set` and `remove` rules).
    #[inline]
    pub fn drops(&self, name: &str) -> bool {
        self.rules
            .iter()
            .any(|r| r.action != RuleAction::Add && name_is(name, &r.name))
    }

    /// Writes the `set` and `add` fields, in config order.
    pub fn write_fields(&self, out: &mut Vec<u8>) {
        for r in self.rules.iter().filter(|r| r.action != RuleAction::Remove) {
            put_header(out, &r.name, r.value.as_bytes());
        }
    }

    /// The rules as config lines (`--check`): `DIRECTIVE set NAME VALUE`.
    pub fn lines<'a>(&'a self, directive: &'a str) -> impl Iterator<Item = String> + 'a {
        self.rules.iter().map(move |r| {
            if r.action == RuleAction::Remove {
                format!("{directive} remove {}", r.name)
            } else {
                format!("{directive} {} {} {}", r.action.as_str(), r.name, r.value)
            }
        })
    }
}

/// What the upstream head gets beyond the client's fields: the request rules, `X-Real-IP`,
/// `X-Forwarded-Host` and `X-Request-ID`. Built per request from the settings, on the stack.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamRules<'a> {
    pub headers: &'a HeaderRules,
    /// `forward_real_ip on`: `X-Real-IP: <client address>` (the client's own is replaced).
    pub real_ip: bool,
    /// `forward_host on`: `X-Forwarded-Host: <the Host the client asked for>`.
    pub forwarded_host: bool,
    /// `request_id on`: the request's id (the client's, or a generated one).
    pub request_id: Option<&'a [u8]>,
}

impl UpstreamRules<'_> {
    /// Nothing beyond the client's fields and pibl's usual ones.
    pub fn none() -> UpstreamRules<'static> {
        static NO_RULES: HeaderRules = HeaderRules { rules: Vec::new() };
        UpstreamRules {
            headers: &NO_RULES,
            real_ip: false,
            forwarded_host: false,
            request_id: None,
        }
    }

    /// Some field of the client's may be left out: then each is looked at ([`Self::drops`]).
    #[inline]
    pub fn drops_any(&self) -> bool {
        !self.headers.is_empty() || self.real_ip || self.forwarded_host || self.request_id.is_some()
    }

    /// The client's field `name` is replaced or removed.
    #[inline]
    pub fn drops(&self, name: &str) -> bool {
        self.headers.drops(name)
            || (self.real_ip && name_is(name, "x-real-ip"))
            || (self.forwarded_host && name_is(name, "x-forwarded-host"))
            || (self.request_id.is_some() && name_is(name, "x-request-id"))
    }
}

/// Applies the response rules (and `X-Request-ID`) to a client head already written at the start
/// of `head` (status line, fields, blank line; a response pibl makes has its body after it): the
/// fields the rules drop are cut out in place, the new ones go before the blank line. Nothing to
/// do costs one test. Interim (1xx) heads and empty ones (an interim response an HTTP/1.0 client
/// does not get) are left alone.
pub fn finish_client_head(
    head: &mut Vec<u8>,
    status: u16,
    rules: &HeaderRules,
    request_id: Option<&[u8]>,
) {
    if (rules.is_empty() && request_id.is_none()) || status < 200 {
        return;
    }
    let (Some(first_end), Some(blank)) = (
        memchr::memmem::find(head, b"\r\n"),
        memchr::memmem::find(head, b"\r\n\r\n"),
    ) else {
        return;
    };
    // A body after the head (pibl's own responses: a short text) is put back after it.
    let body = (blank + 4 < head.len()).then(|| head.split_off(blank + 4));
    // Cut out dropped fields, moving the rest down in place.
    let mut read = first_end + 2;
    let mut write = read;
    let end = head.len() - 2;
    while read < end {
        let line_end =
            memchr::memmem::find(&head[read..end], b"\r\n").map_or(end, |i| read + i + 2);
        let line = &head[read..line_end];
        let name = line
            .iter()
            .position(|&b| b == b':')
            .and_then(|colon| std::str::from_utf8(&line[..colon]).ok())
            .unwrap_or("");
        let dropped = rules.drops(name) || (request_id.is_some() && name_is(name, "x-request-id"));
        if !dropped {
            head.copy_within(read..line_end, write);
            write += line_end - read;
        }
        read = line_end;
    }
    head.truncate(write);
    rules.write_fields(head);
    if let Some(id) = request_id {
        put_header(head, "X-Request-ID", id);
    }
    head.extend_from_slice(b"\r\n");
    if let Some(body) = body {
        head.extend_from_slice(&body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(lines: &[&str]) -> Result<HeaderRules, String> {
        let mut r = HeaderRules::default();
        for l in lines {
            let args: Vec<&str> = l.split_whitespace().collect();
            r.parse(&args)?;
        }
        Ok(r)
    }

    #[test]
    fn parses_and_refuses() {
        let r = rules(&["set X-A one two", "add X-B b", "remove Server"]).unwrap();
        assert_eq!(r.rules[0].value, "one two");
        assert_eq!(r.rules[2].action, RuleAction::Remove);
        for bad in [
            "set Content-Length 5",
            "set transfer-encoding chunked",
            "remove Connection",
            "set Host a",
            "add Proxy-Authorization x",
            "set Upgrade h2c",
            "set X-Request-ID 1",
            "set Bad\u{1}Name v",
            "set X-A",
            "remove X-A b",
            "frob X-A",
            "set X-A a\u{0}b",
        ] {
            assert!(rules(&[bad]).is_err(), "{bad}");
        }
        assert!(rules(&["set X-A 1", "set x-a 2"]).is_err());
        assert!(rules(&["set X-A 1", "remove X-A"]).is_err());
        assert!(rules(&["add X-A 1", "add X-A 2", "remove X-A"]).is_ok());
    }

    #[test]
    fn client_head_rules_cut_and_add() {
        let r = rules(&[
            "set Server pibl",
            "remove X-Powered-By",
            "add X-Frame-Options DENY",
        ])
        .unwrap();
        let mut head = b"HTTP/1.1 200 OK\r\nServer: nginx\r\nX-Powered-By: php\r\n\
                         Content-Length: 2\r\nX-Request-ID: theirs\r\n\r\n"
            .to_vec();
        finish_client_head(&mut head, 200, &r, Some(b"abc"));
        assert_eq!(
            String::from_utf8(head).unwrap(),
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nServer: pibl\r\nX-Frame-Options: DENY\r\n\
             X-Request-ID: abc\r\n\r\n"
        );
        let mut interim = b"HTTP/1.1 100 Continue\r\n\r\n".to_vec();
        finish_client_head(&mut interim, 100, &r, None);
        assert_eq!(interim, b"HTTP/1.1 100 Continue\r\n\r\n");
        let mut error = b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 3\r\n\r\nno\n".to_vec();
        finish_client_head(&mut error, 502, &r, None);
        assert_eq!(
            String::from_utf8(error).unwrap(),
            "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 3\r\nServer: pibl\r\n\
             X-Frame-Options: DENY\r\n\r\nno\n"
        );
    }
}
