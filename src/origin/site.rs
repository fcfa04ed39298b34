//! The files the origin serves: the site embedded in the binary, or a `--root` directory.
//!
//! Files are served from memory. Embedded files are prepared once at start; root files are read
//! on first use and cached per worker (no locks), re-checked against the disk at most once per
//! [`RECHECK`] so edits show up without a restart.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::http::html_escape;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::path::content_type;
use crate::client::freshness::parse_http_date;
use crate::clock::format_http_date;

/// The site compiled into the binary, so every copy serves the same application.
const EMBEDDED: [(&str, &[u8]); 3] = [
    ("index.html", include_bytes!("site/index.html")),
    ("style.css", include_bytes!("site/style.css")),
    ("logo.png", include_bytes!("site/logo.png")),
];

/// Placeholder in HTML files replaced by the server name.
const NAME_PLACEHOLDER: &str = "{{name}}";
/// How long a cached root file is trusted before the disk is asked again.
const RECHECK: Duration = Duration::from_secs(1);
/// Larger files are refused rather than read into memory.
const MAX_FILE: u64 = 64 * 1024 * 1024;
/// Files cached per worker, by total size.
const MAX_CACHED_BYTES: usize = 256 * 1024 * 1024;

/// One servable file, with its header lines prepared once.
#[derive(Debug)]
pub struct StaticFile {
    pub bytes: Box<[u8]>,
    /// `Content-Type` and `Content-Length` lines.
    pub entity_headers: String,
    /// `Last-Modified` and `ETag` lines, also sent with 304.
    pub validator_headers: String,
    etag: String,
    modified_secs: u64,
}

impl StaticFile {
    /// `name` replaces the placeholder in HTML; `modified` is the file's mtime.
    pub fn new(file_name: &str, mut bytes: Vec<u8>, modified: SystemTime, name: &str) -> Self {
        let kind = content_type(file_name);
        if kind.starts_with("text/html") {
            if let Ok(text) = std::str::from_utf8(&bytes) {
                bytes = text
                    .replace(NAME_PLACEHOLDER, &html_escape(name))
                    .into_bytes();
            }
        }
        let etag = format!("\"{:x}-{:08x}\"", bytes.len(), crc32fast::hash(&bytes));
        let modified_secs = modified
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let whole_second = SystemTime::UNIX_EPOCH + Duration::from_secs(modified_secs);
        StaticFile {
            entity_headers: format!(
                "Content-Type: {kind}\r\nContent-Length: {}\r\n",
                bytes.len()
            ),
            validator_headers: format!(
                "Last-Modified: {}\r\nETag: {etag}\r\n",
                format_http_date(whole_second)
            ),
            bytes: bytes.into_boxed_slice(),
            etag,
            modified_secs,
        }
    }

    /// Whether the client's copy is current (RFC 9110 §13.2.2: If-None-Match wins over
    /// If-Modified-Since; If-None-Match uses the weak comparison).
    pub fn not_modified(
        &self,
        if_none_match: Option<&str>,
        if_modified_since: Option<&str>,
    ) -> bool {
        if let Some(tags) = if_none_match {
            return tags
                .split(',')
                .map(str::trim)
                .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == self.etag);
        }
        if_modified_since
            .and_then(parse_http_date)
            .is_some_and(|since| self.modified_secs <= since)
    }
}

/// Where files come from; shared read-only by all workers.
#[derive(Debug)]
pub enum Site {
    Embedded(HashMap<&'static str, Arc<StaticFile>>),
    /// The canonical root directory.
    Root(PathBuf),
}

impl Site {
    /// The embedded site with `name` filled in; Last-Modified is the start time.
    pub fn embedded(name: &str) -> Site {
        let started = SystemTime::now();
        let files = EMBEDDED
            .iter()
            .map(|(file, bytes)| {
                (
                    *file,
                    Arc::new(StaticFile::new(file, bytes.to_vec(), started, name)),
                )
            })
            .collect();
        Site::Embedded(files)
    }

    pub fn root(dir: &Path) -> Result<Site, String> {
        let canonical =
            fs::canonicalize(dir).map_err(|e| format!("--root {}: {e}", dir.display()))?;
        if !canonical.is_dir() {
            return Err(format!("--root {}: not a directory", dir.display()));
        }
        Ok(Site::Root(canonical))
    }
}

/// Why a file cannot be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    NotFound,
    /// Outside the root, unreadable, or too large.
    Forbidden,
}

#[derive(Debug)]
struct Cached {
    file: Arc<StaticFile>,
    len: u64,
    mtime: SystemTime,
    checked: Instant,
}

/// One worker's view of the site, with its own cache of root files.
#[derive(Debug)]
pub struct Files {
    site: Arc<Site>,
    name: Arc<str>,
    cache: HashMap<String, Cached>,
    cached_bytes: usize,
}

impl Files {
    pub fn new(site: Arc<Site>, name: Arc<str>) -> Files {
        Files {
            site,
            name,
            cache: HashMap::new(),
            cached_bytes: 0,
        }
    }

    /// The file at `rel`, a path already sanitised by [`super::path::sanitize`].
    pub fn get(&mut self, rel: &str, now: Instant) -> Result<Arc<StaticFile>, Missing> {
        let root = match &*self.site {
            Site::Embedded(files) => return files.get(rel).cloned().ok_or(Missing::NotFound),
            Site::Root(root) => root.clone(),
        };
        if let Some(c) = self.cache.get_mut(rel) {
            if now.duration_since(c.checked) < RECHECK {
                return Ok(c.file.clone());
            }
        }
        let found = locate(&root, rel);
        let (real, meta) = match found {
            Ok(found) => found,
            Err(missing) => {
                self.forget(rel);
                return Err(missing);
            }
        };
        let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        if let Some(c) = self.cache.get_mut(rel) {
            if c.len == meta.len() && c.mtime == mtime {
                c.checked = now;
                return Ok(c.file.clone());
            }
        }
        self.forget(rel);
        let bytes = fs::read(&real).map_err(|e| missing_from(&e))?;
        let file = Arc::new(StaticFile::new(rel, bytes, mtime, &self.name));
        if self.cached_bytes + file.bytes.len() <= MAX_CACHED_BYTES {
            self.cached_bytes += file.bytes.len();
            let cached = Cached {
                file: file.clone(),
                len: meta.len(),
                mtime,
                checked: now,
            };
            self.cache.insert(rel.to_owned(), cached);
        }
        Ok(file)
    }

    fn forget(&mut self, rel: &str) {
        if let Some(old) = self.cache.remove(rel) {
            self.cached_bytes -= old.file.bytes.len();
        }
    }
}

/// Resolves `rel` under `root` following symlinks, and refuses anything that ends up outside.
fn locate(root: &Path, rel: &str) -> Result<(PathBuf, fs::Metadata), Missing> {
    let real = fs::canonicalize(root.join(rel)).map_err(|e| missing_from(&e))?;
    if !real.starts_with(root) {
        return Err(Missing::Forbidden);
    }
    let meta = fs::metadata(&real).map_err(|e| missing_from(&e))?;
    if !meta.is_file() {
        return Err(Missing::NotFound);
    }
    if meta.len() > MAX_FILE {
        return Err(Missing::Forbidden);
    }
    Ok((real, meta))
}

fn missing_from(e: &io::Error) -> Missing {
    match e.kind() {
        io::ErrorKind::PermissionDenied => Missing::Forbidden,
        _ => Missing::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_gets_the_escaped_name_and_validators_are_stable() {
        let when = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_460_650_900);
        let f = StaticFile::new("index.html", b"<b>{{name}}</b>".to_vec(), when, "a<b>");
        assert_eq!(&*f.bytes, b"<b>a&lt;b&gt;</b>");
        assert!(f.entity_headers.contains("Content-Type: text/html"));
        assert!(f
            .validator_headers
            .contains("Last-Modified: Mon, 23 Nov 2026 19:04:10 GMT\r\n"));
        let again = StaticFile::new("index.html", b"<b>{{name}}</b>".to_vec(), when, "a<b>");
        assert_eq!(f.etag, again.etag);
        let css = StaticFile::new("a.css", b"{{name}}".to_vec(), when, "x");
        assert_eq!(&*css.bytes, b"{{name}}");
    }

    #[test]
    fn conditional_requests() {
        let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_460_650);
        let f = StaticFile::new("a.txt", b"hello".to_vec(), when, "x");
        let tag = f.etag.clone();
        assert!(f.not_modified(Some(&tag), None));
        assert!(f.not_modified(Some(&format!("\"zz\", W/{tag}")), None));
        assert!(f.not_modified(Some("*"), None));
        assert!(!f.not_modified(Some("\"zz\""), Some("Mon, 23 Nov 2026 19:04:10 GMT")));
        assert!(f.not_modified(None, Some("Mon, 23 Nov 2026 19:04:10 GMT")));
        assert!(!f.not_modified(None, Some("Mon, 23 Nov 2026 19:04:09 GMT")));
        assert!(!f.not_modified(None, Some("yesterday")));
    }

    #[test]
    fn embedded_site_has_the_three_files() {
        let Site::Embedded(files) = Site::embedded("origin-1") else {
            panic!("not embedded");
        };
        let index = String::from_utf8_lossy(&files["index.html"].bytes).into_owned();
        assert!(index.contains("origin-1") && !index.contains(NAME_PLACEHOLDER));
        assert!(files["logo.png"].bytes.starts_with(b"\x89PNG"));
        assert!(files["style.css"].entity_headers.contains("text/css"));
    }
}
