//! `error_page CODE... FILE`: the responses pibl makes itself (its 4xx and 5xx, never a
//! backend's) carry the file's bytes as `text/html` instead of the one-line text body.
//!
//! Files are read when the config is loaded (at start and on every reload), so serving one is a
//! copy from memory and a file that went missing is a config error, not a broken page.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Largest page: an error page is a small document, and it is copied into each response.
pub const MAX_ERROR_PAGE: usize = 64 * 1024;

/// The pages by status, in the order configured (a handful at most: a scan is the fastest map).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorPages {
    /// Status, the file as written (for `--check`), its bytes.
    pages: Vec<(u16, PathBuf, Arc<[u8]>)>,
}

impl ErrorPages {
    /// The page for `status`, if one is configured.
    #[inline]
    pub fn get(&self, status: u16) -> Option<&[u8]> {
        self.pages
            .iter()
            .find(|(s, _, _)| *s == status)
            .map(|(_, _, page)| &page[..])
    }

    /// Parses an `error_page` line's arguments (`CODE... FILE`), reads the file and adds it for
    /// each code. Errors say which code or file is wrong.
    pub fn add(&mut self, args: &[&str]) -> Result<(), String> {
        let Some((file, codes)) = args.split_last().filter(|(_, codes)| !codes.is_empty()) else {
            return Err(
                "takes one or more status codes and a file: error_page 502 503 504 \
                        /srv/errors/5xx.html"
                    .to_string(),
            );
        };
        let mut statuses = Vec::with_capacity(codes.len());
        for code in codes {
            match code.parse::<u16>() {
                Ok(s) if (400..=599).contains(&s) => {
                    if self.get(s).is_some() || statuses.contains(&s) {
                        return Err(format!("{s} has a page already"));
                    }
                    statuses.push(s);
                }
                _ => {
                    return Err(format!(
                        "'{code}' is not a status code from 400 to 599 (the file comes last)"
                    ))
                }
            }
        }
        let page = read_page(Path::new(file))?;
        for s in statuses {
            self.pages.push((s, PathBuf::from(file), page.clone()));
        }
        Ok(())
    }

    /// `(status, file, size)` of each page, for `--check`.
    pub fn iter(&self) -> impl Iterator<Item = (u16, &Path, usize)> + '_ {
        self.pages
            .iter()
            .map(|(s, f, p)| (*s, f.as_path(), p.len()))
    }
}

/// The file's bytes, bounded by [`MAX_ERROR_PAGE`].
fn read_page(path: &Path) -> Result<Arc<[u8]>, String> {
    let name = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {name}: {e}"))?;
    if meta.len() > MAX_ERROR_PAGE as u64 {
        return Err(format!(
            "{name} is {} bytes; an error page may be at most {MAX_ERROR_PAGE}",
            meta.len()
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {name}: {e}"))?;
    if bytes.len() > MAX_ERROR_PAGE {
        return Err(format!(
            "{name} grew past {MAX_ERROR_PAGE} bytes while read"
        ));
    }
    Ok(bytes.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_read_and_found_by_status() {
        let dir = std::env::temp_dir().join(format!("pibl-error-pages-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("5xx.html");
        std::fs::write(&file, b"<h1>down</h1>").unwrap();
        let f = file.to_str().unwrap();
        let mut pages = ErrorPages::default();
        pages.add(&["502", "504", f]).unwrap();
        assert_eq!(pages.get(502), Some(&b"<h1>down</h1>"[..]));
        assert_eq!(pages.get(504), Some(&b"<h1>down</h1>"[..]));
        assert_eq!(pages.get(503), None);
        assert!(pages
            .add(&["502", f])
            .unwrap_err()
            .contains("502 has a page"));
        assert!(pages.add(&[f]).is_err());
        assert!(pages.add(&["200", f]).unwrap_err().contains("'200'"));
        let missing = dir.join("missing.html");
        let e = pages.add(&["500", missing.to_str().unwrap()]).unwrap_err();
        assert!(e.contains("missing.html"), "{e}");
        std::fs::write(&file, vec![b'x'; MAX_ERROR_PAGE + 1]).unwrap();
        assert!(pages.add(&["500", f]).unwrap_err().contains("at most"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
