//! Command-line parsing with getopts into a [`Command`]; curl-like option names so muscle memory
//! carries over.

use super::error::ClientError;
use super::request::{parse_header_arg, BodySource};
use super::url::parse_authority;
use crate::tls::client::Trust;
use getopts::Options;
use std::path::PathBuf;
use std::time::Duration;

/// Default freshness for responses that carry no caching information.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);
/// Default `--timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default `--max-redirs`.
pub const DEFAULT_MAX_REDIRECTS: u32 = 10;

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    Help,
    Version,
    Flush { cache_dir: Option<PathBuf> },
    Fetch(Box<FetchOptions>),
}

/// Everything needed to perform one `pibl-client LOGFILE URL` run.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    pub log_file: PathBuf,
    /// The URL as typed; parsed later so a bad URL is logged too.
    pub url: String,
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<BodySource>,
    pub output: Option<PathBuf>,
    pub include_head: bool,
    pub follow_redirects: bool,
    pub max_redirects: u32,
    pub use_cache: bool,
    pub cache_dir: Option<PathBuf>,
    pub default_ttl: Duration,
    pub timeout: Option<Duration>,
    /// Forward proxy `(host, port)` from `-x`.
    pub proxy: Option<(String, u16)>,
    /// Which certificates `https://` servers may show: the system's roots, `--cacert`, or any
    /// (`-k`).
    pub trust: Trust,
}

fn options() -> Options {
    let mut o = Options::new();
    o.optopt(
        "X",
        "request",
        "request method (default GET, or POST with -d)",
        "METHOD",
    );
    o.optopt(
        "d",
        "data",
        "request body; @FILE reads it from FILE",
        "DATA",
    );
    o.optmulti(
        "H",
        "header",
        "extra request header (repeatable); 'Name:' removes a default",
        "'NAME: VALUE'",
    );
    o.optopt(
        "o",
        "output",
        "save the body to FILE ('-' for stdout)",
        "FILE",
    );
    o.optflag("i", "include", "print the response head before the body");
    o.optflag("L", "location", "follow redirects");
    o.optopt("", "max-redirs", "redirect limit with -L (default 10)", "N");
    o.optflag("", "no-cache", "neither read nor write the local cache");
    o.optopt(
        "",
        "ttl",
        "freshness when the server gives none (default 60)",
        "SECONDS",
    );
    o.optopt(
        "",
        "cache-dir",
        "cache directory (default $XDG_CACHE_HOME/pibl-client or ~/.cache/pibl-client)",
        "DIR",
    );
    o.optopt(
        "",
        "timeout",
        "connect and idle timeout (default 30)",
        "SECONDS",
    );
    o.optopt(
        "x",
        "proxy",
        "send the request through a forward HTTP proxy",
        "HOST:PORT",
    );
    o.optopt(
        "",
        "cacert",
        "trust the CA certificates in this PEM file for https:// (instead of the system's)",
        "FILE",
    );
    o.optflag(
        "k",
        "insecure",
        "https:// without verifying the server's certificate (a warning says so)",
    );
    o.optflag("h", "help", "print this help");
    o.optflag("V", "version", "print the version");
    o
}

/// The full help text, with examples and exit codes.
pub fn usage() -> String {
    let brief =
        "Usage:\n  pibl-client [OPTIONS] LOGFILE URL\n  pibl-client flush [--cache-dir DIR]\n\n\
        Sends one HTTP/1.1 request (http:// or https://) and appends a line about it to LOGFILE.\n\
        Text bodies go to stdout; binary bodies are saved to a file named after the URL.\n\
        GET responses are cached locally; 'flush' empties that cache.";
    format!(
        "{}\n\
         Examples:\n\
         \x20 pibl-client requests.log http://127.0.0.1:8080/\n\
         \x20 pibl-client -i requests.log http://[::1]:8080/status\n\
         \x20 pibl-client -d 'name=pibl' requests.log http://localhost:8080/form\n\
         \x20 pibl-client -X PUT -d @page.html -H 'Content-Type: text/html' requests.log http://h/page\n\
         \x20 pibl-client -L -o logo.png requests.log http://h/logo\n\
         \x20 pibl-client -x 127.0.0.1:3128 requests.log http://example.com/\n\
         \x20 pibl-client --cacert ./pibl-demo-ca.pem requests.log https://localhost:8443/\n\
         \x20 pibl-client flush\n\n\
         Exit status: 0 when a response was received (any status, even 404 or 500),\n\
         \x20 2 usage error, 3 bad URL or unsupported scheme (ftp...), 4 DNS failure,\n\
         \x20 5 connection refused or failed, 6 timeout, 7 malformed response,\n\
         \x20 8 local file error (log, output, -d @FILE, cache), 9 too many redirects,\n\
         \x20 10 TLS certificate refused (unknown authority, wrong name, expired),\n\
         \x20 11 TLS handshake failed (e.g. a plain HTTP port), 12 nothing to verify with\n\
         \x20 (--cacert unusable, no system root certificates).\n",
        options().usage(brief)
    )
}

/// Parses the arguments after the program name.
pub fn parse_args(args: &[String]) -> Result<Command, ClientError> {
    let m = options()
        .parse(args)
        .map_err(|e| ClientError::Usage(e.to_string()))?;
    if m.opt_present("h") {
        return Ok(Command::Help);
    }
    if m.opt_present("V") {
        return Ok(Command::Version);
    }
    let cache_dir = m.opt_str("cache-dir").map(PathBuf::from);
    if m.free.len() == 1 && m.free[0] == "flush" {
        let others = [
            "X",
            "d",
            "H",
            "o",
            "i",
            "L",
            "max-redirs",
            "no-cache",
            "ttl",
            "timeout",
            "x",
            "cacert",
            "k",
        ];
        if let Some(extra) = others.iter().find(|o| m.opt_present(o)) {
            let dashes = if extra.len() == 1 { "-" } else { "--" };
            return Err(ClientError::Usage(format!(
                "flush only accepts --cache-dir, not {dashes}{extra}"
            )));
        }
        return Ok(Command::Flush { cache_dir });
    }
    let (log_file, url) = match m.free.as_slice() {
        [log, url] => (PathBuf::from(log), url.clone()),
        [] => return Err(ClientError::Usage("missing LOGFILE and URL".into())),
        [_] => return Err(ClientError::Usage("missing URL (or LOGFILE)".into())),
        more => {
            return Err(ClientError::Usage(format!(
                "expected LOGFILE and URL, got {} arguments",
                more.len()
            )))
        }
    };
    let body = match m.opt_str("d") {
        None => None,
        Some(d) => Some(match d.strip_prefix('@') {
            Some("") => return Err(ClientError::Usage("-d @ needs a file name".into())),
            Some(path) => BodySource::File(PathBuf::from(path)),
            None => BodySource::Bytes(d.into_bytes()),
        }),
    };
    let method = match m.opt_str("X") {
        Some(method) => {
            if method.is_empty()
                || !method
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
            {
                return Err(ClientError::Usage(format!("invalid method '{method}'")));
            }
            method
        }
        None if body.is_some() => "POST".to_string(),
        None => "GET".to_string(),
    };
    if method.eq_ignore_ascii_case("HEAD") && body.is_some() {
        return Err(ClientError::Usage(
            "a HEAD request cannot carry a body (-d)".into(),
        ));
    }
    let headers = m
        .opt_strs("H")
        .iter()
        .map(|h| parse_header_arg(h))
        .collect::<Result<Vec<_>, _>>()?;
    let proxy = match m.opt_str("x") {
        Some(p) => {
            let p = p
                .strip_prefix("http://")
                .unwrap_or(&p)
                .trim_end_matches('/');
            Some(parse_authority(p, p, 80).map_err(|e| ClientError::Usage(format!("-x: {e}")))?)
        }
        None => None,
    };
    Ok(Command::Fetch(Box::new(FetchOptions {
        log_file,
        url,
        method,
        headers,
        body,
        output: m.opt_str("o").map(PathBuf::from),
        include_head: m.opt_present("i"),
        follow_redirects: m.opt_present("L"),
        max_redirects: parse_number(&m, "max-redirs")?.unwrap_or(DEFAULT_MAX_REDIRECTS),
        use_cache: !m.opt_present("no-cache"),
        cache_dir,
        default_ttl: parse_number::<u64>(&m, "ttl")?.map_or(DEFAULT_TTL, Duration::from_secs),
        timeout: Some(parse_seconds(&m, "timeout")?.unwrap_or(DEFAULT_TIMEOUT)),
        proxy,
        trust: match (m.opt_present("k"), m.opt_str("cacert")) {
            // As curl: -k wins over --cacert.
            (true, _) => Trust::Insecure,
            (false, Some(file)) => Trust::CaFile(PathBuf::from(file)),
            (false, None) => Trust::SystemRoots,
        },
    })))
}

fn parse_number<T: std::str::FromStr>(
    m: &getopts::Matches,
    name: &str,
) -> Result<Option<T>, ClientError> {
    m.opt_str(name)
        .map(|v| {
            v.parse::<T>().map_err(|_| {
                ClientError::Usage(format!("--{name} expects a whole number, got '{v}'"))
            })
        })
        .transpose()
}

fn parse_seconds(m: &getopts::Matches, name: &str) -> Result<Option<Duration>, ClientError> {
    m.opt_str(name)
        .map(|v| match v.parse::<f64>() {
            Ok(s) if s.is_finite() && s > 0.0 && s < 1e9 => Ok(Duration::from_secs_f64(s)),
            _ => Err(ClientError::Usage(format!(
                "--{name} expects a positive number of seconds, got '{v}'"
            ))),
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, ClientError> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        parse_args(&args)
    }

    fn fetch(args: &[&str]) -> FetchOptions {
        match parse(args).unwrap() {
            Command::Fetch(f) => *f,
            other => panic!("expected a fetch, got {other:?}"),
        }
    }

    #[test]
    fn data_implies_post_and_options_may_follow_arguments() {
        let f = fetch(&[
            "log",
            "http://h/",
            "-d",
            "a=1",
            "-H",
            "X-A: b",
            "--timeout",
            "1.5",
        ]);
        assert_eq!(f.method, "POST");
        assert_eq!(f.body, Some(BodySource::Bytes(b"a=1".to_vec())));
        assert_eq!(f.headers, vec![("X-A".to_string(), "b".to_string())]);
        assert_eq!(f.timeout, Some(Duration::from_millis(1500)));
        let f = fetch(&["-X", "PUT", "-d", "@body.txt", "log", "http://h/"]);
        assert_eq!(f.method, "PUT");
        assert_eq!(f.body, Some(BodySource::File("body.txt".into())));
        let f = fetch(&["-x", "proxy:3128", "log", "http://h/"]);
        assert_eq!(f.proxy, Some(("proxy".to_string(), 3128)));
    }

    #[test]
    fn trust_comes_from_cacert_and_insecure() {
        assert_eq!(fetch(&["log", "https://h/"]).trust, Trust::SystemRoots);
        let f = fetch(&["--cacert", "ca.pem", "log", "https://h/"]);
        assert_eq!(f.trust, Trust::CaFile(PathBuf::from("ca.pem")));
        assert_eq!(fetch(&["-k", "log", "https://h/"]).trust, Trust::Insecure);
        let f = fetch(&["--insecure", "--cacert", "ca.pem", "log", "https://h/"]);
        assert_eq!(f.trust, Trust::Insecure);
        assert!(parse(&["flush", "-k"]).is_err());
    }

    #[test]
    fn flush_and_help() {
        assert!(matches!(
            parse(&["flush", "--cache-dir", "/tmp/x"]).unwrap(),
            Command::Flush { cache_dir: Some(_) }
        ));
        assert!(parse(&["flush", "-i"]).is_err());
        assert!(matches!(parse(&["-h"]).unwrap(), Command::Help));
    }

    #[test]
    fn wrong_calls_are_usage_errors() {
        for args in [
            &[][..],
            &["log"],
            &["a", "b", "c"],
            &["--bogus", "log", "http://h/"],
            &["--timeout", "0", "log", "http://h/"],
            &["--ttl", "x", "log", "http://h/"],
            &["-X", "HEAD", "-d", "x", "log", "http://h/"],
            &["-H", "nocolon", "log", "http://h/"],
            &["-x", "bad host:1", "log", "http://h/"],
        ] {
            let err = parse(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
    }
}
