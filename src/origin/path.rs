//! Request paths to file names: percent-decoding, traversal refusal, and content types.
//!
//! Sanitising happens on the decoded path before the file system sees it; the root is checked
//! again after canonicalisation (in `site`), so a symlink cannot lead outside either.

use crate::http::target::split_absolute;

/// Why a request path names no servable file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// Not origin-form, or a broken `%` escape: 400.
    Malformed,
    /// Tries to leave the root (`..`, encoded `/`, backslash, NUL): 403.
    Forbidden,
    /// Hidden files and names that are not UTF-8: 404.
    NotFound,
}

impl PathError {
    pub fn status(self) -> u16 {
        match self {
            PathError::Malformed => 400,
            PathError::Forbidden => 403,
            PathError::NotFound => 404,
        }
    }
}

/// The path part of a request target: the query is dropped, and an absolute-form target
/// (`http://host/p`) is reduced to its path.
pub fn target_path(target: &str) -> &str {
    let target = target.split(['?', '#']).next().unwrap_or("");
    match split_absolute(target) {
        Some(url) if url.rest.is_empty() => "/",
        Some(url) => url.rest,
        None => target,
    }
}

/// Decodes `path` (origin form, no query) into a relative file name under the root, written to
/// `out` as `dir/file` segments joined by `/`. A path ending in `/` names its `index.html`.
pub fn sanitize(path: &str, out: &mut String) -> Result<(), PathError> {
    out.clear();
    let rest = path.strip_prefix('/').ok_or(PathError::Malformed)?;
    // Only segments with escapes are copied, so ordinary paths cost no allocation.
    let mut decoded = Vec::new();
    for raw in rest.split('/') {
        if raw.is_empty() {
            continue;
        }
        let segment = if raw.contains('%') {
            decoded.clear();
            percent_decode(raw.as_bytes(), &mut decoded)?;
            std::str::from_utf8(&decoded).map_err(|_| PathError::NotFound)?
        } else {
            raw
        };
        check_segment(segment)?;
        if segment == "." {
            continue;
        }
        if !out.is_empty() {
            out.push('/');
        }
        out.push_str(segment);
    }
    if out.is_empty() || path.ends_with('/') {
        if !out.is_empty() {
            out.push('/');
        }
        out.push_str("index.html");
    }
    Ok(())
}

fn check_segment(segment: &str) -> Result<(), PathError> {
    if segment == ".." || segment.contains(['/', '\\', '\0']) || segment.contains(':') {
        return Err(PathError::Forbidden);
    }
    // Dotfiles (.git, .env) are never part of the site.
    if segment.starts_with('.') && segment != "." {
        return Err(PathError::NotFound);
    }
    if segment.chars().any(char::is_control) {
        return Err(PathError::Forbidden);
    }
    Ok(())
}

fn percent_decode(raw: &[u8], out: &mut Vec<u8>) -> Result<(), PathError> {
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            let hex = raw.get(i + 1..i + 3).ok_or(PathError::Malformed)?;
            let high = hex_value(hex[0]).ok_or(PathError::Malformed)?;
            let low = hex_value(hex[1]).ok_or(PathError::Malformed)?;
            out.push(high << 4 | low);
            i += 3;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    Ok(())
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Content-Type by file extension (case-insensitive); unknown types are octet streams so a
/// browser does not guess.
pub fn content_type(file: &str) -> &'static str {
    let ext = file.rsplit_once('.').map_or("", |(_, e)| e);
    const TYPES: [(&str, &str); 20] = [
        ("html", "text/html; charset=utf-8"),
        ("htm", "text/html; charset=utf-8"),
        ("css", "text/css; charset=utf-8"),
        ("js", "text/javascript; charset=utf-8"),
        ("mjs", "text/javascript; charset=utf-8"),
        ("json", "application/json"),
        ("txt", "text/plain; charset=utf-8"),
        ("xml", "application/xml"),
        ("png", "image/png"),
        ("jpg", "image/jpeg"),
        ("jpeg", "image/jpeg"),
        ("gif", "image/gif"),
        ("svg", "image/svg+xml"),
        ("ico", "image/x-icon"),
        ("webp", "image/webp"),
        ("woff2", "font/woff2"),
        ("wasm", "application/wasm"),
        ("pdf", "application/pdf"),
        ("mp4", "video/mp4"),
        ("zip", "application/zip"),
    ];
    TYPES
        .iter()
        .find(|(e, _)| e.eq_ignore_ascii_case(ext))
        .map_or("application/octet-stream", |(_, t)| t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(path: &str) -> Result<String, PathError> {
        let mut out = String::new();
        sanitize(path, &mut out).map(|()| out)
    }

    #[test]
    fn normal_paths_decode_and_default_to_index() {
        assert_eq!(clean("/").unwrap(), "index.html");
        assert_eq!(clean("/style.css").unwrap(), "style.css");
        assert_eq!(clean("/a//b/./c.txt").unwrap(), "a/b/c.txt");
        assert_eq!(clean("/my%20file.txt").unwrap(), "my file.txt");
        assert_eq!(clean("/caf%C3%A9.html").unwrap(), "café.html");
        assert_eq!(clean("/docs/").unwrap(), "docs/index.html");
    }

    #[test]
    fn traversal_is_refused() {
        for bad in [
            "/../Cargo.toml",
            "/a/../../etc/passwd",
            "/%2e%2e/etc/passwd",
            "/%2E%2E/etc/passwd",
            "/..%2fetc/passwd",
            "/a%2f..%2f..%2fetc",
            "/..%5cetc",
            "/a\\..\\b",
            "/x%00.html",
            "/C:/windows",
        ] {
            assert_eq!(clean(bad), Err(PathError::Forbidden), "{bad}");
        }
        assert_eq!(clean("etc/passwd"), Err(PathError::Malformed));
        assert_eq!(clean("/%zz"), Err(PathError::Malformed));
        assert_eq!(clean("/%2"), Err(PathError::Malformed));
        assert_eq!(clean("/.git/config"), Err(PathError::NotFound));
        assert_eq!(clean("/%ff"), Err(PathError::NotFound));
    }

    #[test]
    fn target_path_drops_query_and_authority() {
        assert_eq!(target_path("/a?b=/../c"), "/a");
        assert_eq!(target_path("http://h:1/x/y?z"), "/x/y");
        assert_eq!(target_path("http://h"), "/");
        assert_eq!(target_path("*"), "*");
        // The scheme is case-insensitive (RFC 3986 §3.1), as the proxy reads it.
        assert_eq!(target_path("HTTP://h/x"), "/x");
        assert_eq!(target_path("https://h#f"), "/");
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("a/STYLE.CSS"), "text/css; charset=utf-8");
        assert_eq!(content_type("logo.png"), "image/png");
        assert_eq!(content_type("x.svg"), "image/svg+xml");
        assert_eq!(content_type("data.json"), "application/json");
        assert_eq!(content_type("Makefile"), "application/octet-stream");
        assert_eq!(content_type("archive.tar.gz"), "application/octet-stream");
    }
}
