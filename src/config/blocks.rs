//! The config's shape before its meaning: statements (`directive value...`, ended by a newline or
//! `;`), blocks (`pool NAME { ... }`, `site HOST... { ... }`, `route PATH POOL { ... }`) and
//! `include GLOB`, each statement knowing the file and line it came from so every later error is
//! `file:line: what is wrong`.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::ConfigError;

/// Blocks nest this deep at most: `site { route { } }`.
const MAX_BLOCK_DEPTH: usize = 2;
/// `include`s nest this deep at most (a file including a file including ...).
const MAX_INCLUDE_DEPTH: usize = 8;
/// Files one config may pull in, so a glob over a huge directory is a message, not a stall.
const MAX_INCLUDED_FILES: usize = 1000;

/// One directive as written, with where it was written.
#[derive(Debug, Clone)]
pub struct Statement {
    pub file: Rc<Path>,
    pub line: usize,
    pub words: Vec<String>,
    /// The `{ ... }` that followed the words, if any.
    pub block: Option<Vec<Statement>>,
}

impl Statement {
    pub fn name(&self) -> &str {
        self.words.first().map_or("", String::as_str)
    }

    pub fn args(&self) -> Vec<&str> {
        self.words.iter().skip(1).map(String::as_str).collect()
    }

    /// An error located at this statement.
    pub fn error(&self, message: String) -> ConfigError {
        ConfigError {
            file: self.file.to_path_buf(),
            line: self.line,
            message,
        }
    }
}

enum Token {
    Word(String),
    Open,
    Close,
    End,
}

/// Splits `text` into statements, with `include`s expanded (relative to `path`'s directory).
pub fn statements(path: &Path, text: &str) -> Result<Vec<Statement>, ConfigError> {
    let mut includes = Includes {
        stack: Vec::new(),
        files: 0,
    };
    parse_file(path, text, &mut includes)
}

struct Includes {
    /// The files being read, outermost first (a file including one of these is a cycle).
    stack: Vec<PathBuf>,
    files: usize,
}

fn parse_file(
    path: &Path,
    text: &str,
    includes: &mut Includes,
) -> Result<Vec<Statement>, ConfigError> {
    let file: Rc<Path> = Rc::from(path);
    let mut tokens = Vec::new();
    for (idx, raw) in text.lines().enumerate() {
        let line = idx + 1;
        let code = raw.split('#').next().unwrap_or("");
        let mut word = String::new();
        for c in code.chars() {
            let token = match c {
                '{' => Some(Token::Open),
                '}' => Some(Token::Close),
                ';' => Some(Token::End),
                c if c.is_whitespace() => None,
                c => {
                    word.push(c);
                    continue;
                }
            };
            if !word.is_empty() {
                tokens.push((line, Token::Word(std::mem::take(&mut word))));
            }
            if let Some(t) = token {
                tokens.push((line, t));
            }
        }
        if !word.is_empty() {
            tokens.push((line, Token::Word(word)));
        }
        tokens.push((line, Token::End));
    }
    let mut tokens = tokens.into_iter();
    let parsed = block(&file, &mut tokens, 0, 0)?;
    includes.stack.push(path.to_path_buf());
    let expanded = expand_includes(parsed, includes);
    includes.stack.pop();
    expanded
}

/// Statements up to the `}` closing a block opened on `open_line` (`depth` > 0), or to the end.
fn block(
    file: &Rc<Path>,
    tokens: &mut impl Iterator<Item = (usize, Token)>,
    depth: usize,
    open_line: usize,
) -> Result<Vec<Statement>, ConfigError> {
    let error = |line: usize, message: String| ConfigError {
        file: file.to_path_buf(),
        line,
        message,
    };
    let mut out = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut first_line = 0;
    let flush = |out: &mut Vec<Statement>, words: &mut Vec<String>, line: usize| {
        if !words.is_empty() {
            out.push(Statement {
                file: file.clone(),
                line,
                words: std::mem::take(words),
                block: None,
            });
        }
    };
    loop {
        let Some((line, token)) = tokens.next() else {
            if depth > 0 {
                return Err(error(
                    open_line,
                    "this block's '{' is never closed by a '}'".to_string(),
                ));
            }
            flush(&mut out, &mut words, first_line);
            return Ok(out);
        };
        match token {
            Token::Word(w) => {
                if words.is_empty() {
                    first_line = line;
                }
                words.push(w);
            }
            Token::End => flush(&mut out, &mut words, first_line),
            Token::Close => {
                if depth == 0 {
                    return Err(error(line, "'}' closes no block".to_string()));
                }
                flush(&mut out, &mut words, first_line);
                return Ok(out);
            }
            Token::Open => {
                if words.is_empty() {
                    return Err(error(
                        line,
                        "'{' opens a block without a name (pool NAME { ... })".to_string(),
                    ));
                }
                if depth >= MAX_BLOCK_DEPTH {
                    return Err(error(
                        line,
                        format!(
                            "'{} {{' nests too deep: blocks go at most two levels, \
                             site {{ route {{ }} }}",
                            words[0]
                        ),
                    ));
                }
                let inner = block(file, tokens, depth + 1, line)?;
                out.push(Statement {
                    file: file.clone(),
                    line: first_line,
                    words: std::mem::take(&mut words),
                    block: Some(inner),
                });
            }
        }
    }
}

fn expand_includes(
    statements: Vec<Statement>,
    includes: &mut Includes,
) -> Result<Vec<Statement>, ConfigError> {
    let mut out = Vec::with_capacity(statements.len());
    for mut s in statements {
        if s.name() != "include" {
            if let Some(inner) = s.block.take() {
                s.block = Some(expand_includes(inner, includes)?);
            }
            out.push(s);
            continue;
        }
        let [pattern] = s.args()[..] else {
            return Err(s.error("'include' takes one file or pattern, e.g. conf.d/*.conf".into()));
        };
        if s.block.is_some() {
            return Err(s.error("'include' does not take a block".into()));
        }
        if includes.stack.len() >= MAX_INCLUDE_DEPTH {
            return Err(s.error(format!(
                "include {pattern}: includes nest more than {MAX_INCLUDE_DEPTH} deep"
            )));
        }
        let base = s.file.parent().unwrap_or(Path::new(""));
        let files = glob(base, pattern).map_err(|m| s.error(format!("include {pattern}: {m}")))?;
        for path in files {
            includes.files += 1;
            if includes.files > MAX_INCLUDED_FILES {
                return Err(s.error(format!(
                    "include {pattern}: more than {MAX_INCLUDED_FILES} files included in all"
                )));
            }
            let canonical = path.canonicalize().unwrap_or_else(|_| path.clone());
            if includes
                .stack
                .iter()
                .any(|p| p.canonicalize().unwrap_or_else(|_| p.clone()) == canonical)
            {
                return Err(s.error(format!(
                    "include {pattern}: {} includes itself (a cycle)",
                    path.display()
                )));
            }
            let text = read_text(&path)
                .map_err(|m| s.error(format!("include {pattern}: {}: {m}", path.display())))?;
            out.extend(parse_file(&path, &text, includes)?);
        }
    }
    Ok(out)
}

/// A config file's text; the error says what is wrong with it (unreadable, or where it stops
/// being UTF-8).
pub fn read_text(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let at = e.utf8_error().valid_up_to();
        let good = &bytes[..at];
        let line_start = good.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        format!(
            "line {}: byte 0x{:02x} at column {} is not UTF-8 text",
            good.iter().filter(|&&b| b == b'\n').count() + 1,
            bytes[at],
            at - line_start + 1
        )
    })
}

/// The files `pattern` names, relative to `base`, sorted: `*` and `?` only in the last component
/// (`conf.d/*.conf`); a pattern without them names one file, which must exist. A wildcard
/// matching nothing is fine (an empty `conf.d`), and never matches a leading `.`.
fn glob(base: &Path, pattern: &str) -> Result<Vec<PathBuf>, String> {
    let full = base.join(pattern);
    let name = full
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or("names no file")?
        .to_string();
    let dir = full.parent().unwrap_or(Path::new("")).to_path_buf();
    if dir.to_string_lossy().contains(['*', '?']) {
        return Err("wildcards go in the file name only (conf.d/*.conf)".into());
    }
    if !name.contains(['*', '?']) {
        if !full.is_file() {
            return Err(format!("{} is not a file", full.display()));
        }
        return Ok(vec![full]);
    }
    let entries =
        std::fs::read_dir(&dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            !n.starts_with('.') && wildcard_match(name.as_bytes(), n.as_bytes())
        })
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// `*` (any run) and `?` (any one byte) against a whole name.
fn wildcard_match(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|i| wildcard_match(rest, &name[i..])),
        Some((b'?', rest)) => !name.is_empty() && wildcard_match(rest, &name[1..]),
        Some((c, rest)) => name.first() == Some(c) && wildcard_match(rest, &name[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Statement>, ConfigError> {
        statements(Path::new("t.conf"), text)
    }

    #[test]
    fn lines_semicolons_and_blocks() {
        let s =
            parse("a 1\npool p { backend x; backend y\n balance least_conn }\nb 2; c 3\n").unwrap();
        let names: Vec<&str> = s.iter().map(Statement::name).collect();
        assert_eq!(names, ["a", "pool", "b", "c"]);
        let inner = s[1].block.as_ref().unwrap();
        assert_eq!(inner.len(), 3);
        assert_eq!((inner[2].line, inner[2].args()), (3, vec!["least_conn"]));
        assert_eq!(s[3].line, 4);
    }

    #[test]
    fn unbalanced_and_too_deep_blocks_are_located() {
        assert_eq!(parse("a {\nb\n").unwrap_err().line, 1);
        assert_eq!(parse("a\n}\n").unwrap_err().line, 2);
        let e = parse("site x {\n route / p {\n  x {\n }}}\n").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match(b"*.conf", b"a.conf"));
        assert!(!wildcard_match(b"*.conf", b"a.conf~"));
        assert!(wildcard_match(b"a?c", b"abc"));
    }
}
