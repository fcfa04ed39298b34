//! `compress_types`: the media types worth compressing, matched against `Content-Type`
//! case-insensitively, its parameters (`; charset=utf-8`) ignored.

use std::fmt;

/// The list `compress_types` leaves in force when it is not given (the word `default` in it
/// stands for these).
pub const DEFAULT_TYPES: [&str; 8] = [
    "text/*",
    "application/json",
    "application/javascript",
    "application/xml",
    "image/svg+xml",
    "application/wasm",
    "+json",
    "+xml",
];

/// Patterns past this many are refused: every response's type is matched against the list.
pub const MAX_TYPES: usize = 64;

/// One pattern, lowercase.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    /// `type/subtype`.
    Exact(String),
    /// `type/*`: kept as `type/`.
    AnySubtype(String),
    /// `+json`: any subtype ending so (`application/ld+json`, `application/vnd.api+json`).
    Suffix(String),
    /// `*/*`: every type.
    Any,
}

/// The media types to compress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeList {
    patterns: Vec<Pattern>,
}

impl Default for TypeList {
    fn default() -> Self {
        TypeList::parse(&DEFAULT_TYPES).expect("the default types parse")
    }
}

impl TypeList {
    /// The patterns of a `compress_types` line: `type/subtype`, `type/*`, `+suffix`, `*/*`, and
    /// `default` for [`DEFAULT_TYPES`].
    pub fn parse(words: &[&str]) -> Result<TypeList, String> {
        if words.is_empty() {
            return Err("needs at least one type, e.g. 'compress_types default font/ttf'".into());
        }
        let mut patterns = Vec::new();
        for &word in words {
            if word == "default" {
                for d in DEFAULT_TYPES {
                    patterns.push(pattern(d)?);
                }
            } else {
                patterns.push(pattern(word)?);
            }
        }
        patterns.dedup();
        if patterns.len() > MAX_TYPES {
            return Err(format!("at most {MAX_TYPES} types"));
        }
        Ok(TypeList { patterns })
    }

    /// Whether a `Content-Type` value names a listed type.
    pub fn matches(&self, content_type: &[u8]) -> bool {
        let media = content_type
            .split(|&b| b == b';')
            .next()
            .unwrap_or_default()
            .trim_ascii();
        let Some(slash) = media.iter().position(|&b| b == b'/') else {
            return false;
        };
        let subtype = &media[slash + 1..];
        let eq = |a: &[u8], b: &str| a.eq_ignore_ascii_case(b.as_bytes());
        self.patterns.iter().any(|p| match p {
            Pattern::Exact(t) => eq(media, t),
            Pattern::AnySubtype(prefix) => {
                media.len() > prefix.len() && eq(&media[..prefix.len()], prefix)
            }
            Pattern::Suffix(s) => {
                subtype.len() > s.len() && eq(&subtype[subtype.len() - s.len()..], s)
            }
            Pattern::Any => true,
        })
    }
}

fn pattern(word: &str) -> Result<Pattern, String> {
    let bad =
        || format!("'{word}' is not a media type (type/subtype, type/*, +suffix, */* or default)");
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    let w = word.to_ascii_lowercase();
    if w == "*/*" {
        return Ok(Pattern::Any);
    }
    if let Some(suffix) = w.strip_prefix('+') {
        return token(suffix)
            .then(|| Pattern::Suffix(w.clone()))
            .ok_or_else(bad);
    }
    let (kind, subtype) = w.split_once('/').ok_or_else(bad)?;
    if !token(kind) {
        return Err(bad());
    }
    if subtype == "*" {
        return Ok(Pattern::AnySubtype(format!("{kind}/")));
    }
    if !token(subtype) {
        return Err(bad());
    }
    Ok(Pattern::Exact(w))
}

impl fmt::Display for TypeList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.patterns.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            match p {
                Pattern::Exact(t) | Pattern::Suffix(t) => f.write_str(t)?,
                Pattern::AnySubtype(prefix) => write!(f, "{prefix}*")?,
                Pattern::Any => f.write_str("*/*")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_match_text_json_xml_svg_wasm_and_the_suffixes() {
        let t = TypeList::default();
        for yes in [
            "text/html",
            "text/html; charset=utf-8",
            "TEXT/CSS",
            " text/plain ;format=flowed",
            "application/json",
            "Application/JSON; charset=UTF-8",
            "application/javascript",
            "application/xml",
            "image/svg+xml",
            "application/wasm",
            "application/ld+json",
            "application/vnd.api+json",
            "application/atom+XML",
        ] {
            assert!(t.matches(yes.as_bytes()), "{yes}");
        }
        for no in [
            "image/png",
            "application/octet-stream",
            "text",
            "",
            "text/",
            "application/json-seq",
            "application/+json",
            "video/mp4; codecs=\"text/html\"",
            "application/jsonx",
        ] {
            assert!(!t.matches(no.as_bytes()), "{no}");
        }
        assert_eq!(
            t.to_string(),
            "text/* application/json application/javascript application/xml image/svg+xml \
             application/wasm +json +xml"
        );
    }

    #[test]
    fn a_list_replaces_the_defaults_and_default_brings_them_back() {
        let t = TypeList::parse(&["text/html", "Font/*"]).unwrap();
        assert!(t.matches(b"text/html"));
        assert!(!t.matches(b"text/css"));
        assert!(t.matches(b"font/ttf"));
        assert!(!t.matches(b"application/json"));
        let t = TypeList::parse(&["default", "font/ttf"]).unwrap();
        assert!(t.matches(b"application/json") && t.matches(b"font/ttf"));
        assert!(TypeList::parse(&["*/*"]).unwrap().matches(b"image/png"));
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in [
            "text",
            "/html",
            "text/",
            "*/html",
            "+",
            "text/h tml",
            "text/html;q=1",
            "",
        ] {
            assert!(TypeList::parse(&[bad]).is_err(), "{bad}");
        }
        assert!(TypeList::parse(&[]).is_err());
        let many: Vec<String> = (0..=MAX_TYPES).map(|i| format!("x/y{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(TypeList::parse(&many).is_err());
    }
}
