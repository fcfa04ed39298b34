//! The local response cache: one file per URL in the cache directory, written atomically
//! (temp file + rename) so a crash or a concurrent client never leaves a half entry in place.
//!
//! Entry layout: a text head, an empty line, then the body bytes.
//! ```text
//! pibl-client-cache 2
//! key GET http://127.0.0.1:8080/x     (see cache_key)
//! stored 1700000000000            (Unix ms)
//! fresh-until 1700000060000       (Unix ms)
//! status 200 OK
//! body-length 00000000000000001234
//! vary accept-language: en        (a request header the response's Vary names, as sent;
//! vary user-agent                  without ": value" when the request did not send it)
//! header Content-Type: text/plain
//! header Vary: Accept-Language, User-Agent
//!
//! <body>
//! ```
//! The body length is patched in once the body has streamed through, and checked against the
//! file size on lookup: anything that does not add up is a miss, never an error.

use super::error::ClientError;
use super::freshness::{policy_for, CachePolicy};
use super::response::{Header, ResponseHead};
use super::url::Url;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const MAGIC: &str = "pibl-client-cache 2";
const ENTRY_SUFFIX: &str = ".entry";
const TEMP_MARKER: &str = ".tmp.";
/// Largest entry head read back; bigger means corrupt.
const MAX_ENTRY_HEAD: u64 = 256 * 1024;
/// Headers that describe the connection or framing of one transfer, not the stored body.
const HOP_HEADERS: [&str; 4] = [
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
];

/// Current time in Unix milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The cache directory used without `--cache-dir`: `$XDG_CACHE_HOME/pibl-client`, else
/// `$HOME/.cache/pibl-client`.
pub fn default_dir() -> Option<PathBuf> {
    let absolute = |var: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    if let Some(xdg) = absolute("XDG_CACHE_HOME") {
        return Some(xdg.join("pibl-client"));
    }
    absolute("HOME").map(|home| home.join(".cache").join("pibl-client"))
}

/// The cache key of a GET for `url` sent with the `Host` header `host` (`None`: none sent):
/// method, scheme, `host:port` (port always explicit) and target, so `http://h/` and
/// `http://h:80/` share an entry; then, when the Host sent is not the URL's own (`-H 'Host: ...'`
/// names another site on the same server), that Host, so each site gets its own entry.
pub fn cache_key(url: &Url, host: Option<&str>) -> String {
    let base = format!(
        "GET {}://{}{}",
        url.scheme_name(),
        url.authority(),
        url.target()
    );
    match host {
        Some(h) if h.eq_ignore_ascii_case(&url.host_header()) => base,
        Some(h) => format!("{base} [Host: {}]", h.to_ascii_lowercase()),
        None => format!("{base} [no Host]"),
    }
}

/// The request header names a response's `Vary` fields list, lowercased; `None` for `Vary: *`
/// (the response varies on something no request header captures, so it never matches).
fn vary_names(headers: &[Header]) -> Option<Vec<String>> {
    let mut names = Vec::new();
    for h in headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("vary"))
    {
        for name in h.value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if name == "*" {
                return None;
            }
            let name = name.to_ascii_lowercase();
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    Some(names)
}

/// The request's values (`sent`) of the headers `headers`' Vary names, to store with the entry.
fn varied_values(
    headers: &[Header],
    sent: &dyn Fn(&str) -> Option<String>,
) -> Vec<(String, Option<String>)> {
    vary_names(headers)
        .unwrap_or_default()
        .into_iter()
        .map(|name| {
            let value = sent(&name);
            (name, value)
        })
        .collect()
}

/// A cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

/// A stored response found for a URL.
#[derive(Debug, Clone)]
pub struct CachedEntry {
    pub path: PathBuf,
    pub url: String,
    pub stored_ms: u64,
    pub fresh_until_ms: u64,
    pub status: u16,
    pub reason: String,
    pub headers: Vec<Header>,
    /// The request headers the stored `Vary` names (lowercase), with the values of the request
    /// the response answered (`None`: not sent).
    pub varied: Vec<(String, Option<String>)>,
    pub body_length: u64,
    body_offset: u64,
}

impl CachedEntry {
    pub fn is_fresh(&self, now_ms: u64) -> bool {
        now_ms < self.fresh_until_ms
    }

    /// Whether the entry may answer a request whose header values are `sent` (RFC 9111 §4.1):
    /// every header its `Vary` names must have the value stored with it, absent in both
    /// counting as equal; `Vary: *` never matches.
    pub fn matches_request(&self, sent: &dyn Fn(&str) -> Option<String>) -> bool {
        let Some(names) = vary_names(&self.headers) else {
            return false;
        };
        names.iter().all(|name| {
            self.varied
                .iter()
                .find(|(stored, _)| stored == name)
                .is_some_and(|(_, value)| *value == sent(name))
        })
    }

    /// Whole seconds since the entry was stored (or last revalidated).
    pub fn age_secs(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.stored_ms) / 1000
    }

    /// The stored head, with the framing headers of the original transfer replaced by the
    /// stored length, as `-i` shows it.
    pub fn head(&self) -> ResponseHead {
        let mut headers = self.headers.clone();
        headers.push(Header::new("Content-Length", &self.body_length.to_string()));
        ResponseHead {
            version: 1,
            status: self.status,
            reason: self.reason.clone(),
            headers,
        }
    }

    /// Streams the stored body to `on_data`.
    pub fn copy_body(
        &self,
        on_data: &mut dyn FnMut(&[u8]) -> Result<(), ClientError>,
    ) -> Result<u64, ClientError> {
        let cache_error = |e| ClientError::local_io("cannot read cache entry", &self.path, e);
        let mut file = File::open(&self.path).map_err(cache_error)?;
        file.seek(SeekFrom::Start(self.body_offset))
            .map_err(cache_error)?;
        let mut reader = file.take(self.body_length);
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(cache_error(e)),
            };
            on_data(&buf[..n])?;
            total += n as u64;
        }
        if total != self.body_length {
            return Err(cache_error(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "entry truncated while reading",
            )));
        }
        Ok(total)
    }
}

/// What `flush` removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlushReport {
    pub entries: u64,
    pub bytes: u64,
}

impl Cache {
    /// Uses `dir`, creating it if needed.
    pub fn open(dir: &Path) -> io::Result<Cache> {
        fs::create_dir_all(dir)?;
        Ok(Cache {
            dir: dir.to_path_buf(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The entry stored for `url`, if there is a valid one.
    pub fn lookup(&self, url: &str) -> Option<CachedEntry> {
        let path = self.entry_path(url);
        let entry = read_entry(&path).ok()?;
        (entry.url == url).then_some(entry)
    }

    /// Drops the entry for `url`, if any (it is no longer valid).
    pub fn remove(&self, url: &str) {
        if self.lookup(url).is_some() {
            let _ = fs::remove_file(self.entry_path(url));
        }
    }

    /// Starts storing a response for `url`; the body is written with [`PendingEntry::write`].
    /// `sent` gives the request's header values, kept for the headers the response's `Vary`
    /// names.
    pub fn begin_store(
        &self,
        url: &str,
        head: &ResponseHead,
        fresh_until_ms: u64,
        sent: &dyn Fn(&str) -> Option<String>,
    ) -> io::Result<PendingEntry> {
        let headers: Vec<Header> = head
            .headers
            .iter()
            .filter(|h| !HOP_HEADERS.iter().any(|n| h.name.eq_ignore_ascii_case(n)))
            .cloned()
            .collect();
        PendingEntry::create(
            self.entry_path(url),
            &EntryHead {
                url,
                stored_ms: now_ms(),
                fresh_until_ms,
                status: head.status,
                reason: &head.reason,
                varied: &varied_values(&headers, sent),
                headers: &headers,
            },
        )
    }

    /// Applies a 304 to `entry`: its headers update the stored ones, freshness is recomputed,
    /// the values of the headers `Vary` names are taken from `sent` (the revalidating request),
    /// and the refreshed entry (or `None` if it may no longer be stored) is returned.
    pub fn refresh(
        &self,
        entry: &CachedEntry,
        not_modified: &ResponseHead,
        default_ttl: Duration,
        sent: &dyn Fn(&str) -> Option<String>,
    ) -> io::Result<Option<CachedEntry>> {
        let mut headers = entry.headers.clone();
        for h in &not_modified.headers {
            if HOP_HEADERS.iter().any(|n| h.name.eq_ignore_ascii_case(n)) {
                continue;
            }
            headers.retain(|old| !old.name.eq_ignore_ascii_case(&h.name));
        }
        headers.extend(
            not_modified
                .headers
                .iter()
                .filter(|h| !HOP_HEADERS.iter().any(|n| h.name.eq_ignore_ascii_case(n)))
                .cloned(),
        );
        let now = now_ms();
        let fresh_until_ms = match policy_for(entry.status, &headers, now, default_ttl) {
            CachePolicy::Store { fresh_until_ms } => fresh_until_ms,
            CachePolicy::DoNotStore => {
                let _ = fs::remove_file(&entry.path);
                return Ok(None);
            }
        };
        let mut pending = PendingEntry::create(
            entry.path.clone(),
            &EntryHead {
                url: &entry.url,
                stored_ms: now,
                fresh_until_ms,
                status: entry.status,
                reason: &entry.reason,
                varied: &varied_values(&headers, sent),
                headers: &headers,
            },
        )?;
        entry
            .copy_body(&mut |data| {
                pending.write(data);
                Ok(())
            })
            .map_err(|e| io::Error::other(e.to_string()))?;
        pending.commit()?;
        Ok(self.lookup(&entry.url))
    }

    /// Removes every entry (and leftover temp file) in `dir`. An empty directory is fine; a
    /// missing one is an error, as it usually means a mistyped `--cache-dir`.
    pub fn flush(dir: &Path) -> Result<FlushReport, ClientError> {
        let mut report = FlushReport::default();
        let listing = fs::read_dir(dir)
            .map_err(|e| ClientError::local_io("cannot flush cache directory", dir, e))?;
        for item in listing {
            let item =
                item.map_err(|e| ClientError::local_io("cannot list cache directory", dir, e))?;
            let name = item.file_name().to_string_lossy().into_owned();
            let is_entry = name.ends_with(ENTRY_SUFFIX);
            if !is_entry && !name.contains(TEMP_MARKER) {
                continue;
            }
            let path = item.path();
            let size = item.metadata().map_or(0, |m| m.len());
            match fs::remove_file(&path) {
                Ok(()) => {
                    if is_entry {
                        report.entries += 1;
                    }
                    report.bytes += size;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(ClientError::local_io("cannot remove", &path, e)),
            }
        }
        Ok(report)
    }

    fn entry_path(&self, url: &str) -> PathBuf {
        let hash = crc32fast::hash(url.as_bytes());
        self.dir.join(format!("{hash:08x}{ENTRY_SUFFIX}"))
    }
}

/// The metadata written at the start of an entry.
struct EntryHead<'a> {
    url: &'a str,
    stored_ms: u64,
    fresh_until_ms: u64,
    status: u16,
    reason: &'a str,
    varied: &'a [(String, Option<String>)],
    headers: &'a [Header],
}

/// An entry being written to a temp file; renamed into place by [`PendingEntry::commit`],
/// removed if dropped before.
pub struct PendingEntry {
    file: Option<BufWriter<File>>,
    temp_path: PathBuf,
    final_path: PathBuf,
    length_offset: u64,
    written: u64,
    failed: bool,
}

impl PendingEntry {
    fn create(final_path: PathBuf, head: &EntryHead<'_>) -> io::Result<PendingEntry> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let name = final_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp_path = final_path.with_file_name(format!(
            "{name}{TEMP_MARKER}{}.{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp_path)?;
        let mut pending = PendingEntry {
            file: Some(BufWriter::new(file)),
            temp_path,
            final_path,
            length_offset: 0,
            written: 0,
            failed: false,
        };
        let mut text = format!(
            "{MAGIC}\nkey {}\nstored {}\nfresh-until {}\nstatus {} {}\n",
            head.url, head.stored_ms, head.fresh_until_ms, head.status, head.reason
        );
        pending.length_offset = (text.len() + "body-length ".len()) as u64;
        text.push_str(&format!("body-length {:020}\n", 0));
        for (name, value) in head.varied {
            match value {
                Some(value) => text.push_str(&format!("vary {name}: {value}\n")),
                None => text.push_str(&format!("vary {name}\n")),
            }
        }
        for h in head.headers {
            text.push_str(&format!("header {}: {}\n", h.name, h.value));
        }
        text.push('\n');
        if let Some(file) = pending.file.as_mut() {
            file.write_all(text.as_bytes())?;
        }
        Ok(pending)
    }

    /// Appends body bytes. A failure (disk full...) only abandons the entry, never the request.
    pub fn write(&mut self, data: &[u8]) {
        if self.failed {
            return;
        }
        if let Some(file) = self.file.as_mut() {
            if file.write_all(data).is_err() {
                self.failed = true;
            } else {
                self.written += data.len() as u64;
            }
        }
    }

    /// Patches in the body length and renames the entry into place.
    pub fn commit(mut self) -> io::Result<()> {
        if self.failed {
            return Err(io::Error::other("writing the cache entry failed"));
        }
        let mut file = self
            .file
            .take()
            .ok_or_else(|| io::Error::other("entry already committed"))?
            .into_inner()
            .map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(self.length_offset))?;
        file.write_all(format!("{:020}", self.written).as_bytes())?;
        file.sync_data()?;
        drop(file);
        fs::rename(&self.temp_path, &self.final_path)?;
        self.failed = true; // nothing left to clean up
        Ok(())
    }
}

impl Drop for PendingEntry {
    fn drop(&mut self) {
        if self.file.is_some() || !self.failed {
            self.file = None;
            let _ = fs::remove_file(&self.temp_path);
        }
    }
}

/// Reads and validates an entry's metadata; any inconsistency is an error (a miss).
fn read_entry(path: &Path) -> io::Result<CachedEntry> {
    let corrupt = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_string());
    let file = File::open(path)?;
    let file_len = file.metadata()?.len();
    let mut reader = BufReader::new(file).take(MAX_ENTRY_HEAD);
    let mut consumed = 0u64;
    let mut next_line = |reader: &mut dyn BufRead| -> io::Result<String> {
        let mut line = String::new();
        let n = reader.read_line(&mut line)?;
        if n == 0 || !line.ends_with('\n') {
            return Err(corrupt("truncated entry head"));
        }
        consumed += n as u64;
        line.pop();
        Ok(line)
    };
    if next_line(&mut reader)? != MAGIC {
        return Err(corrupt("not a cache entry"));
    }
    let mut field = |reader: &mut dyn BufRead, name: &str| -> io::Result<String> {
        let line = next_line(reader)?;
        line.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(' '))
            .map(str::to_string)
            .ok_or_else(|| corrupt("missing field"))
    };
    let number = |text: String| text.parse::<u64>().map_err(|_| corrupt("bad number"));
    let url = field(&mut reader, "key")?;
    let stored_ms = number(field(&mut reader, "stored")?)?;
    let fresh_until_ms = number(field(&mut reader, "fresh-until")?)?;
    let status_line = field(&mut reader, "status")?;
    let (code, reason) = status_line.split_once(' ').unwrap_or((&status_line, ""));
    let status = code.parse::<u16>().map_err(|_| corrupt("bad status"))?;
    let reason = reason.to_string();
    let body_length = number(field(&mut reader, "body-length")?)?;
    let mut headers = Vec::new();
    let mut varied = Vec::new();
    loop {
        let line = next_line(&mut reader)?;
        if line.is_empty() {
            break;
        }
        if let Some(vary) = line.strip_prefix("vary ") {
            varied.push(match vary.split_once(": ") {
                Some((name, value)) => (name.to_string(), Some(value.to_string())),
                None => (vary.to_string(), None),
            });
            continue;
        }
        let (name, value) = line
            .strip_prefix("header ")
            .and_then(|h| h.split_once(": "))
            .ok_or_else(|| corrupt("bad header line"))?;
        headers.push(Header::new(name, value));
    }
    if consumed.checked_add(body_length) != Some(file_len) {
        return Err(corrupt("body length does not match the file size"));
    }
    Ok(CachedEntry {
        path: path.to_path_buf(),
        url,
        stored_ms,
        fresh_until_ms,
        status,
        reason,
        headers,
        varied,
        body_length,
        body_offset: consumed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_cache(name: &str) -> Cache {
        let dir = std::env::temp_dir().join(format!(
            "pibl-client-unit-{name}-{}-{}",
            std::process::id(),
            now_ms()
        ));
        Cache::open(&dir).unwrap()
    }

    fn head() -> ResponseHead {
        ResponseHead {
            version: 1,
            status: 200,
            reason: "OK".into(),
            headers: vec![
                Header::new("Content-Type", "text/plain"),
                Header::new("Transfer-Encoding", "chunked"),
                Header::new("ETag", "\"v1\""),
            ],
        }
    }

    fn body_of(entry: &CachedEntry) -> Vec<u8> {
        let mut body = Vec::new();
        entry
            .copy_body(&mut |d| {
                body.extend_from_slice(d);
                Ok(())
            })
            .unwrap();
        body
    }

    #[test]
    fn stores_looks_up_and_flushes() {
        let cache = temp_cache("roundtrip");
        let url = "http://h:1/x";
        let mut pending = cache
            .begin_store(url, &head(), now_ms() + 60_000, &|_| None)
            .unwrap();
        pending.write(b"hello ");
        pending.write(b"world");
        pending.commit().unwrap();
        let entry = cache.lookup(url).unwrap();
        assert!(entry.is_fresh(now_ms()));
        assert_eq!(body_of(&entry), b"hello world");
        assert_eq!(entry.head().header("transfer-encoding"), None);
        assert_eq!(entry.head().header("content-length"), Some("11"));
        assert!(cache.lookup("http://h:1/other").is_none());
        let report = Cache::flush(cache.dir()).unwrap();
        assert_eq!(report.entries, 1);
        assert!(report.bytes > 11);
        assert!(cache.lookup(url).is_none());
        fs::remove_dir_all(cache.dir()).unwrap();
    }

    #[test]
    fn http_and_https_have_distinct_keys() {
        let plain = Url::parse("http://h/p").unwrap();
        let secure = Url::parse("https://h/p").unwrap();
        assert_eq!(cache_key(&plain, Some("h")), "GET http://h:80/p");
        assert_eq!(cache_key(&secure, Some("h")), "GET https://h:443/p");
    }

    #[test]
    fn keys_name_the_host_sent_when_it_is_not_the_urls() {
        let url = Url::parse("http://h:8080/p?q").unwrap();
        let own = cache_key(&url, Some("H:8080"));
        assert_eq!(own, "GET http://h:8080/p?q");
        assert_eq!(
            cache_key(&url, Some("Other.Example")),
            "GET http://h:8080/p?q [Host: other.example]"
        );
        assert_eq!(cache_key(&url, None), "GET http://h:8080/p?q [no Host]");
    }

    #[test]
    fn vary_values_are_stored_and_must_match() {
        let cache = temp_cache("vary");
        let url = "http://h:1/v";
        let mut varying = head();
        varying
            .headers
            .push(Header::new("Vary", "Accept-Language, x-absent"));
        varying.headers.push(Header::new("vary", "accept"));
        let english = |name: &str| match name {
            "accept-language" => Some("en".to_string()),
            "accept" => Some("*/*".to_string()),
            _ => None,
        };
        let pending = cache
            .begin_store(url, &varying, now_ms() + 60_000, &english)
            .unwrap();
        pending.commit().unwrap();
        let entry = cache.lookup(url).unwrap();
        assert!(entry.matches_request(&english));
        assert!(!entry.matches_request(&|name| match name {
            "accept-language" => Some("de".to_string()),
            other => english(other),
        }));
        assert!(!entry.matches_request(&|name| match name {
            "x-absent" => Some("now sent".to_string()),
            other => english(other),
        }));
        assert!(!entry.matches_request(&|_| None));
        // Without Vary every request matches; with `Vary: *` none does.
        let plain = cache.begin_store(url, &head(), now_ms() + 60_000, &english);
        plain.unwrap().commit().unwrap();
        assert!(cache.lookup(url).unwrap().matches_request(&|_| None));
        let mut star = cache.lookup(url).unwrap();
        star.headers.push(Header::new("Vary", "*"));
        assert!(!star.matches_request(&english));
        fs::remove_dir_all(cache.dir()).unwrap();
    }

    #[test]
    fn truncated_or_garbage_entries_are_misses() {
        let cache = temp_cache("corrupt");
        let url = "http://h:1/y";
        let mut pending = cache
            .begin_store(url, &head(), now_ms() + 60_000, &|_| None)
            .unwrap();
        pending.write(b"0123456789");
        pending.commit().unwrap();
        let path = cache.entry_path(url);
        let full = fs::read(&path).unwrap();
        fs::write(&path, &full[..full.len() - 3]).unwrap();
        assert!(cache.lookup(url).is_none());
        fs::write(&path, b"garbage").unwrap();
        assert!(cache.lookup(url).is_none());
        fs::write(&path, &full[..20]).unwrap();
        assert!(cache.lookup(url).is_none());
        fs::remove_dir_all(cache.dir()).unwrap();
    }

    #[test]
    fn abandoned_entries_leave_no_temp_files() {
        let cache = temp_cache("abandon");
        let mut pending = cache
            .begin_store("http://h/z", &head(), 0, &|_| None)
            .unwrap();
        pending.write(b"partial");
        drop(pending);
        assert_eq!(fs::read_dir(cache.dir()).unwrap().count(), 0);
        fs::remove_dir_all(cache.dir()).unwrap();
    }

    #[test]
    fn refresh_keeps_the_body_and_updates_freshness() {
        let cache = temp_cache("refresh");
        let url = "http://h/r";
        let mut pending = cache.begin_store(url, &head(), 0, &|_| None).unwrap();
        pending.write(b"body");
        pending.commit().unwrap();
        let stale = cache.lookup(url).unwrap();
        assert!(!stale.is_fresh(now_ms()));
        let not_modified = ResponseHead {
            version: 1,
            status: 304,
            reason: "Not Modified".into(),
            headers: vec![
                Header::new("Cache-Control", "max-age=30"),
                Header::new("ETag", "\"v2\""),
            ],
        };
        let fresh = cache
            .refresh(&stale, &not_modified, Duration::from_secs(60), &|_| None)
            .unwrap()
            .unwrap();
        assert!(fresh.is_fresh(now_ms()));
        assert_eq!(body_of(&fresh), b"body");
        assert_eq!(fresh.head().header("etag"), Some("\"v2\""));
        fs::remove_dir_all(cache.dir()).unwrap();
    }
}
