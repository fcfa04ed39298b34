//! What an edge proxy does to a request's headers and log line beyond relaying it: header rules
//! both ways, `X-Real-IP`, `X-Forwarded-Host`, request ids and the access-log format (issue 20).
//!
//! [`EdgeRules`] holds one scope's directives (the top level's, a site's or a route's:
//! `config::ScopeSettings`), each parsed by [`EdgeRules::parse_directive`]; [`RequestFacts`] is what a session keeps of one
//! request for them (its id, and Referer and User-Agent when the log format writes them), filled
//! at the one parse of the head.

use crate::http::header_rules::{finish_client_head, HeaderRules, UpstreamRules};
use crate::http::name_is;
use crate::http::request_id::RequestId;
use crate::logging::LogFormat;

/// The directives [`EdgeRules::parse_directive`] takes.
pub const EDGE_DIRECTIVES: &[&str] = &[
    "request_header",
    "response_header",
    "forward_real_ip",
    "forward_host",
    "request_id",
    "log_format",
];

/// Directives that may be given more than once (each line adds a rule).
pub const REPEATABLE_EDGE_DIRECTIVES: &[&str] = &["request_header", "response_header"];

/// One scope's header rules, request ids and log format.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EdgeRules {
    /// `request_header set|add|remove NAME [VALUE]`: the head sent to the backend.
    pub request_headers: HeaderRules,
    /// `response_header set|add|remove NAME [VALUE]`: every response head the client gets
    /// (proxied, from the cache, and pibl's own errors).
    pub response_headers: HeaderRules,
    /// `forward_real_ip on`: `X-Real-IP` with the client's address.
    pub forward_real_ip: bool,
    /// `forward_host on`: `X-Forwarded-Host` with the Host the client asked for.
    pub forward_host: bool,
    /// `request_id on`: `X-Request-ID` kept or made, forwarded, returned and logged.
    pub request_id: bool,
    /// `log_format pibl|combined|json`.
    pub log_format: LogFormat,
}

fn switch(args: &[&str]) -> Result<bool, String> {
    match args {
        ["on"] => Ok(true),
        ["off"] => Ok(false),
        _ => Err("expected on or off".to_string()),
    }
}

impl EdgeRules {
    /// Parses one of [`EDGE_DIRECTIVES`] (`name`) with its words (`args`) into this scope.
    pub fn parse_directive(&mut self, name: &str, args: &[&str]) -> Result<(), String> {
        match name {
            "request_header" => self.request_headers.parse(args),
            "response_header" => self.response_headers.parse(args),
            "forward_real_ip" => switch(args).map(|on| self.forward_real_ip = on),
            "forward_host" => switch(args).map(|on| self.forward_host = on),
            "request_id" => switch(args).map(|on| self.request_id = on),
            "log_format" => match args {
                [v] => LogFormat::parse(v).map(|f| self.log_format = f),
                _ => Err("expected one of pibl, combined, json".to_string()),
            },
            _ => Err(format!("'{name}' is not a header or log directive")),
        }
    }

    /// What a request keeps at its parse: its id (`request_id on`), and Referer and User-Agent
    /// when the log format writes them. With neither, one test.
    #[inline]
    pub fn read_request(&self, headers: &[httparse::Header<'_>], facts: &mut RequestFacts) {
        if self.request_id {
            facts.assign_id(headers);
        }
        if self.log_format.needs_agent() {
            facts.keep_agent(headers);
        }
    }

    /// The additions to the upstream head for a request whose facts are `facts`.
    #[inline]
    pub fn upstream<'a>(&'a self, facts: &'a RequestFacts) -> UpstreamRules<'a> {
        UpstreamRules {
            headers: &self.request_headers,
            real_ip: self.forward_real_ip,
            forwarded_host: self.forward_host,
            request_id: facts.request_id(),
        }
    }

    /// Applies the response rules and the request id to a client head written in `head`.
    #[inline]
    pub fn finish_client_head(&self, head: &mut Vec<u8>, status: u16, facts: &RequestFacts) {
        // Inlined so that the default (no rules, no id) costs two loads at the call.
        if !self.response_headers.is_empty() || facts.0.is_some() {
            finish_client_head(head, status, &self.response_headers, facts.request_id());
        }
    }

    /// The directives as config lines (`--check`).
    pub fn summary_lines(&self) -> Vec<String> {
        let on = |b: bool| if b { "on" } else { "off" };
        let mut lines: Vec<String> = self.request_headers.lines("request_header").collect();
        lines.extend(self.response_headers.lines("response_header"));
        lines.push(format!("forward_real_ip {}", on(self.forward_real_ip)));
        lines.push(format!("forward_host {}", on(self.forward_host)));
        lines.push(format!("request_id {}", on(self.request_id)));
        lines.push(format!("log_format {}", self.log_format.as_str()));
        lines
    }
}

/// Longest Referer or User-Agent kept for the log; longer values are cut.
pub const MAX_LOGGED_AGENT: usize = 1024;

/// What a session keeps of its current request for the edge rules and the log: cleared before
/// each head is parsed, filled while it is. Boxed and made on a connection's first request that
/// needs it, so that a session under the default rules (no id, pibl's line) carries one pointer,
/// and an idle keep-alive connection stays small; the buffers keep their allocation across
/// requests.
#[derive(Debug, Default)]
pub struct RequestFacts(Option<Box<KeptFacts>>);

#[derive(Debug, Default)]
struct KeptFacts {
    id: RequestId,
    referer: Vec<u8>,
    user_agent: Vec<u8>,
    has_referer: bool,
    has_user_agent: bool,
}

impl RequestFacts {
    /// Forgets the last request's facts (a test, and a few stores when there are some).
    #[inline]
    pub fn clear(&mut self) {
        if let Some(k) = self.0.as_deref_mut() {
            k.id.clear();
            k.has_referer = false;
            k.has_user_agent = false;
        }
    }

    #[inline]
    pub fn request_id(&self) -> Option<&[u8]> {
        let k = self.0.as_deref()?;
        (!k.id.is_empty()).then(|| k.id.as_bytes())
    }

    pub fn referer(&self) -> Option<&[u8]> {
        let k = self.0.as_deref()?;
        k.has_referer.then_some(k.referer.as_slice())
    }

    pub fn user_agent(&self) -> Option<&[u8]> {
        let k = self.0.as_deref()?;
        k.has_user_agent.then_some(k.user_agent.as_slice())
    }

    fn kept(&mut self) -> &mut KeptFacts {
        self.0.get_or_insert_with(Box::default)
    }

    /// Takes the client's valid `X-Request-ID` or makes one.
    fn assign_id(&mut self, headers: &[httparse::Header<'_>]) {
        self.kept().id.assign(headers);
    }

    /// Copies the first Referer and User-Agent (at most [`MAX_LOGGED_AGENT`] bytes each).
    fn keep_agent(&mut self, headers: &[httparse::Header<'_>]) {
        let k = self.kept();
        for h in headers {
            let (kept, has) = if !k.has_referer && name_is(h.name, "referer") {
                (&mut k.referer, &mut k.has_referer)
            } else if !k.has_user_agent && name_is(h.name, "user-agent") {
                (&mut k.user_agent, &mut k.has_user_agent)
            } else {
                continue;
            };
            kept.clear();
            kept.extend_from_slice(&h.value[..h.value.len().min(MAX_LOGGED_AGENT)]);
            *has = true;
        }
    }
}
