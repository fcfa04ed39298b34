//! One run of `pibl-client LOGFILE URL`: cache lookup, request, redirects, body delivery and a
//! log line per request sent or served.

use super::cache::{cache_key, default_dir, now_ms, Cache, CachedEntry, PendingEntry};
use super::cli::FetchOptions;
use super::connection::Connection;
use super::error::ClientError;
use super::freshness::{policy_for, CachePolicy};
use super::log::{Origin, Outcome, RequestLog};
use super::output::{classify, file_name_for, stdout_error, BodySink, Delivered};
use super::request::{encode_head, Request};
use super::response::{body_framing, copy_body, find_header, read_head, ResponseHead};
use super::url::Url;
use crate::http::body::BodyKind;
use crate::tls::client::{client_config, Trust};
use rustls::ClientConfig;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use time::UtcOffset;

/// Request headers that make a stored response unsuitable (partial or conditional requests the
/// user wants to see answered by the server).
const UNCACHEABLE_REQUEST_HEADERS: [&str; 5] = [
    "range",
    "if-none-match",
    "if-modified-since",
    "if-match",
    "if-unmodified-since",
];

/// How one request ended when it did not fail.
enum Step {
    Done {
        status: u16,
        bytes: u64,
        origin: Origin,
    },
    /// A redirect to follow with `-L`.
    Redirect { status: u16, next: Request },
}

/// Performs the run described by `options`, logging each request to the log file.
pub fn run(options: &FetchOptions, offset: UtcOffset) -> Result<(), ClientError> {
    let mut log = RequestLog::open(&options.log_file, offset)?;
    let started = Instant::now();
    let url = match Url::parse(&options.url) {
        Ok(url) => url,
        Err(e) => {
            record_failure(&mut log, &options.method, &options.url, started, &e);
            return Err(e);
        }
    };
    let cache = open_cache(options);
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut exchange = Exchange {
        options,
        cache: cache.as_ref(),
        out: &mut out,
        tls: None,
    };
    let mut request = Request {
        method: options.method.clone(),
        url,
        headers: options.headers.clone(),
        body: options.body.clone(),
    };
    let mut redirects = 0;
    loop {
        let started = Instant::now();
        let url_text = request.url.absolute();
        let step = exchange.perform(&request);
        let _ = exchange.out.flush();
        match step {
            Err(e) => {
                record_failure(&mut log, &request.method, &url_text, started, &e);
                return Err(e);
            }
            Ok(Step::Done {
                status,
                bytes,
                origin,
            }) => {
                let outcome = Outcome::Response {
                    status,
                    bytes,
                    origin,
                };
                log.record(&request.method, &url_text, started.elapsed(), &outcome)?;
                return exchange.out.flush().map_err(stdout_error);
            }
            Ok(Step::Redirect { status, next }) => {
                let outcome = Outcome::Response {
                    status,
                    bytes: 0,
                    origin: Origin::Network,
                };
                log.record(&request.method, &url_text, started.elapsed(), &outcome)?;
                if redirects >= options.max_redirects {
                    return Err(ClientError::TooManyRedirects(redirects));
                }
                redirects += 1;
                request = next;
            }
        }
    }
}

/// Logs a failed request; a log write failure here must not hide the original error.
fn record_failure(
    log: &mut RequestLog,
    method: &str,
    url: &str,
    started: Instant,
    e: &ClientError,
) {
    let outcome = Outcome::Failed {
        reason: e.to_string(),
    };
    if let Err(log_error) = log.record(method, url, started.elapsed(), &outcome) {
        eprintln!("pibl-client: warning: {log_error}");
    }
}

/// The cache, unless disabled or unusable (then the run goes on without it).
fn open_cache(options: &FetchOptions) -> Option<Cache> {
    if !options.use_cache {
        return None;
    }
    let Some(dir) = options.cache_dir.clone().or_else(default_dir) else {
        eprintln!("pibl-client: warning: no cache directory (HOME unset); use --cache-dir; caching disabled");
        return None;
    };
    match Cache::open(&dir) {
        Ok(cache) => Some(cache),
        Err(e) => {
            eprintln!(
                "pibl-client: warning: cannot use cache directory {}: {e}; caching disabled",
                dir.display()
            );
            None
        }
    }
}

/// State shared by the requests of one run.
struct Exchange<'a> {
    options: &'a FetchOptions,
    cache: Option<&'a Cache>,
    out: &'a mut dyn Write,
    /// The TLS settings, built at the first `https://` request (loading the system roots reads
    /// files) and shared by the redirects after it.
    tls: Option<Arc<ClientConfig>>,
}

impl Exchange<'_> {
    fn perform(&mut self, request: &Request) -> Result<Step, ClientError> {
        // Stored responses are keyed on the Host sent and matched on the headers their Vary
        // names, as this request sends them.
        let sent = |name: &str| request.sent_header(name);
        let key = cache_key(&request.url, sent("host").as_deref());
        let cache = self.cache.filter(|_| is_cacheable(request));
        let cached = cache
            .filter(|_| !forbids_stored(request))
            .and_then(|c| c.lookup(&key))
            .filter(|entry| entry.matches_request(&sent));
        let now = now_ms();
        if let Some(entry) = cached.as_ref().filter(|e| e.is_fresh(now)) {
            eprintln!(
                "pibl-client: served from local cache (age {}s)",
                entry.age_secs(now)
            );
            let bytes = self.deliver_cached(entry, &request.url)?;
            return Ok(Step::Done {
                status: entry.status,
                bytes,
                origin: Origin::Cache,
            });
        }
        let conditions = cached.as_ref().map(conditions_for).unwrap_or_default();

        let (mut connection, head, leftover) = self.exchange_heads(request, &conditions)?;

        if let (304, Some(entry), Some(cache)) = (head.status, &cached, cache) {
            if !conditions.is_empty() {
                eprintln!(
                    "pibl-client: served from local cache (revalidated by the server, age 0s)"
                );
                let bytes = self.deliver_cached(entry, &request.url)?;
                match cache.refresh(entry, &head, self.options.default_ttl, &sent) {
                    Ok(_) => {}
                    Err(e) => eprintln!("pibl-client: warning: cannot refresh cache entry: {e}"),
                }
                return Ok(Step::Done {
                    status: entry.status,
                    bytes,
                    origin: Origin::Revalidated,
                });
            }
        }
        if self.options.include_head {
            self.print_head(&head)?;
        }
        if self.options.follow_redirects && matches!(head.status, 301 | 302 | 303 | 307 | 308) {
            if let Some(location) = head.header("location") {
                let next = redirected(request, head.status, request.url.join(location)?);
                return Ok(Step::Redirect {
                    status: head.status,
                    next,
                });
            }
        }
        self.forget_stale(request, &head, &key);
        let framing = body_framing(&request.method, &head)?;
        if framing == BodyKind::Empty {
            if request.method.eq_ignore_ascii_case("HEAD") && !self.options.include_head {
                self.print_head(&head)?;
            }
            return Ok(Step::Done {
                status: head.status,
                bytes: 0,
                origin: Origin::Network,
            });
        }
        let mut pending = cache.and_then(|c| self.start_store(c, &key, &head, &sent));
        let content_type = head.header("content-type");
        let mut sink = BodySink::new(
            self.out,
            self.options.output.as_deref(),
            classify(content_type),
            binary_path(&request.url),
        )?;
        let bytes = copy_body(&mut connection, leftover, framing, &mut |data| {
            if let Some(p) = pending.as_mut() {
                p.write(data);
            }
            sink.write(data)
        })?;
        let delivered = sink.finish()?;
        announce(&delivered, bytes, content_type);
        if let Some(p) = pending {
            if let Err(e) = p.commit() {
                eprintln!("pibl-client: warning: cannot write cache entry: {e}");
            }
        }
        Ok(Step::Done {
            status: head.status,
            bytes,
            origin: Origin::Network,
        })
    }

    /// Starts writing `head`'s response to the cache if it may be stored; otherwise drops any
    /// older entry for `key`, which the new response supersedes. `sent` gives the request's
    /// header values, stored for those the response's `Vary` names.
    fn start_store(
        &self,
        cache: &Cache,
        key: &str,
        head: &ResponseHead,
        sent: &dyn Fn(&str) -> Option<String>,
    ) -> Option<PendingEntry> {
        match policy_for(
            head.status,
            &head.headers,
            now_ms(),
            self.options.default_ttl,
        ) {
            CachePolicy::Store { fresh_until_ms } => {
                match cache.begin_store(key, head, fresh_until_ms, sent) {
                    Ok(pending) => Some(pending),
                    Err(e) => {
                        eprintln!("pibl-client: warning: cannot write cache entry: {e}");
                        None
                    }
                }
            }
            CachePolicy::DoNotStore => {
                cache.remove(key);
                None
            }
        }
    }

    /// Connects, sends the request and reads the response head.
    fn exchange_heads(
        &mut self,
        request: &Request,
        conditions: &[(String, String)],
    ) -> Result<(Connection, ResponseHead, Vec<u8>), ClientError> {
        let body = request.body.as_ref().map(|b| b.open()).transpose()?;
        let url = &request.url;
        let mut connection = match &self.options.proxy {
            Some((host, port)) => Connection::open(host, *port, self.options.timeout)?,
            None => Connection::open(url.host(), url.port(), self.options.timeout)?,
        };
        if url.is_https() {
            if self.options.proxy.is_some() {
                open_tunnel(&mut connection, &url.authority())?;
            }
            connection = connection.start_tls(self.tls_config()?, url.host())?;
        }
        // Through a proxy, plain requests name the whole URL; https ones go through the
        // tunnel to the origin itself.
        let head = encode_head(
            request,
            self.options.proxy.is_some() && !url.is_https(),
            conditions,
            body.as_ref().map(|b| b.length),
        );
        let mut sent = connection.send(&head);
        if let (Ok(()), Some(body)) = (&sent, body) {
            sent = body.stream(&mut |data| connection.send(data));
            if let Err(e @ ClientError::LocalIo { .. }) = sent {
                return Err(e);
            }
        }
        let mut leftover = Vec::new();
        // A server may answer (e.g. 413) and close before reading the whole body: prefer its
        // response over our send error when there is one.
        match read_head(&mut connection, &mut leftover) {
            Ok(head) => Ok((connection, head, leftover)),
            Err(e) => Err(sent.err().unwrap_or(e)),
        }
    }

    /// The TLS settings for this run, built once; `-k` says on stderr what it gives up.
    fn tls_config(&mut self) -> Result<Arc<ClientConfig>, ClientError> {
        if let Some(config) = &self.tls {
            return Ok(Arc::clone(config));
        }
        if self.options.trust == Trust::Insecure {
            eprintln!(
                "pibl-client: warning: -k/--insecure: the server's certificate is not verified"
            );
        }
        let config =
            client_config(&self.options.trust, &[b"http/1.1"]).map_err(ClientError::TlsTrust)?;
        self.tls = Some(Arc::clone(&config));
        Ok(config)
    }

    /// Sends a stored response to the output, as if it came from the server.
    fn deliver_cached(&mut self, entry: &CachedEntry, url: &Url) -> Result<u64, ClientError> {
        let head = entry.head();
        if self.options.include_head {
            self.print_head(&head)?;
        }
        let content_type = head.header("content-type");
        let mut sink = BodySink::new(
            self.out,
            self.options.output.as_deref(),
            classify(content_type),
            binary_path(url),
        )?;
        let bytes = entry.copy_body(&mut |data| sink.write(data))?;
        let delivered = sink.finish()?;
        announce(&delivered, bytes, content_type);
        Ok(bytes)
    }

    fn print_head(&mut self, head: &ResponseHead) -> Result<(), ClientError> {
        self.out
            .write_all(head.to_text().as_bytes())
            .map_err(stdout_error)
    }

    /// A successful unsafe request (POST, PUT, DELETE...) invalidates what is stored for its URL
    /// (RFC 9111 §4.4).
    fn forget_stale(&self, request: &Request, head: &ResponseHead, key: &str) {
        let safe = ["GET", "HEAD", "OPTIONS", "TRACE"]
            .iter()
            .any(|m| request.method.eq_ignore_ascii_case(m));
        if !safe && (200..400).contains(&head.status) {
            if let Some(cache) = self.cache {
                cache.remove(key);
            }
        }
    }
}

/// Asks the forward proxy for a tunnel to `authority` (`CONNECT host:port`), over which TLS to
/// the origin then runs: the proxy sees neither the URL nor the exchange.
fn open_tunnel(connection: &mut Connection, authority: &str) -> Result<(), ClientError> {
    let connect = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n");
    connection.send(connect.as_bytes())?;
    let mut leftover = Vec::new();
    let head = read_head(connection, &mut leftover)?;
    if !(200..300).contains(&head.status) {
        return Err(ClientError::Connect {
            peer: connection.peer().to_string(),
            source: io::Error::other(format!(
                "the proxy refused the tunnel to {authority} ({} {})",
                head.status, head.reason
            )),
        });
    }
    if !leftover.is_empty() {
        return Err(ClientError::Malformed(format!(
            "the proxy {} sent bytes after its CONNECT answer",
            connection.peer()
        )));
    }
    Ok(())
}

/// Only plain GETs without body, range or conditions are served from and stored in the cache.
fn is_cacheable(request: &Request) -> bool {
    request.method == "GET"
        && request.body.is_none()
        && !UNCACHEABLE_REQUEST_HEADERS
            .iter()
            .any(|h| request.has_header(h))
}

/// Conditional headers that revalidate a stale `entry` with its validators.
fn conditions_for(entry: &CachedEntry) -> Vec<(String, String)> {
    let mut conditions = Vec::new();
    if let Some(etag) = find_header(&entry.headers, "etag") {
        conditions.push(("If-None-Match".to_string(), etag.to_string()));
    }
    if let Some(date) = find_header(&entry.headers, "last-modified") {
        conditions.push(("If-Modified-Since".to_string(), date.to_string()));
    }
    conditions
}

/// `-H 'Cache-Control: no-cache'` (or `Pragma: no-cache`) asks for a fresh answer.
fn forbids_stored(request: &Request) -> bool {
    request.headers.iter().any(|(name, value)| {
        let value = value.to_ascii_lowercase();
        (name.eq_ignore_ascii_case("cache-control") || name.eq_ignore_ascii_case("pragma"))
            && (value.contains("no-cache")
                || value.contains("no-store")
                || value.contains("max-age=0"))
    })
}

/// The request to send after a redirect: 303, and 301/302 after POST, become a GET without
/// body; credentials are not sent to another host.
fn redirected(previous: &Request, status: u16, url: Url) -> Request {
    let method = &previous.method;
    let to_get = (status == 303 && !method.eq_ignore_ascii_case("HEAD"))
        || (matches!(status, 301 | 302) && method.eq_ignore_ascii_case("POST"));
    let same_origin = previous.url.scheme_name() == url.scheme_name()
        && previous.url.authority() == url.authority();
    let headers = previous
        .headers
        .iter()
        .filter(|(name, _)| {
            let credential =
                name.eq_ignore_ascii_case("authorization") || name.eq_ignore_ascii_case("cookie");
            let body_header = name.eq_ignore_ascii_case("content-type");
            let leaks_credential = credential && !same_origin;
            let stale_body_header = body_header && to_get;
            !(leaks_credential || stale_body_header)
        })
        .cloned()
        .collect();
    Request {
        method: if to_get {
            "GET".to_string()
        } else {
            method.clone()
        },
        url,
        headers,
        body: if to_get { None } else { previous.body.clone() },
    }
}

/// Where a binary body of `url` is saved: its last path segment in the current directory.
fn binary_path(url: &Url) -> PathBuf {
    PathBuf::from(file_name_for(&url.last_segment()))
}

/// Says on stderr where a body saved to a file went.
fn announce(delivered: &Delivered, bytes: u64, content_type: Option<&str>) {
    if let Delivered::File { path, chosen } = delivered {
        let kind = match (chosen, content_type) {
            (true, Some(ct)) => format!(" of {ct}"),
            (true, None) => " of binary data".to_string(),
            (false, _) => String::new(),
        };
        eprintln!(
            "pibl-client: saved {bytes} bytes{kind} to {}",
            path.display()
        );
    }
}
