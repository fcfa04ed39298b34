//! Where a response body goes: text to stdout, binary to a file named after the URL (never the
//! terminal), or the `-o` file. Bodies without a Content-Type are sniffed from their first bytes.

use super::error::ClientError;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// How many body bytes are looked at to tell text from binary when there is no Content-Type.
const SNIFF_BYTES: usize = 8192;
/// File name used when the URL path ends in `/`.
pub const FALLBACK_NAME: &str = "index.bin";

/// What a Content-Type says about printing the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Text,
    Binary,
    /// No Content-Type: decide from the bytes.
    Unknown,
}

/// Classifies a Content-Type value (parameters and case ignored).
pub fn classify(content_type: Option<&str>) -> BodyKind {
    let Some(value) = content_type else {
        return BodyKind::Unknown;
    };
    let mime = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime.is_empty() {
        return BodyKind::Unknown;
    }
    let (kind, subtype) = mime.split_once('/').unwrap_or((mime.as_str(), ""));
    let textual_application = matches!(
        subtype,
        "json"
            | "xml"
            | "javascript"
            | "x-javascript"
            | "ecmascript"
            | "x-ndjson"
            | "x-www-form-urlencoded"
            | "x-sh"
            | "yaml"
            | "x-yaml"
            | "toml"
            | "sql"
            | "graphql"
    );
    // Structured syntax suffixes (RFC 6839): image/svg+xml, application/problem+json...
    let textual_suffix = subtype.ends_with("+json") || subtype.ends_with("+xml");
    if kind == "text" || textual_suffix || (kind == "application" && textual_application) {
        BodyKind::Text
    } else {
        BodyKind::Binary
    }
}

/// True when `sample` (the start of a body) looks like UTF-8 text. A multi-byte character cut
/// at the end of the sample still counts as text.
pub fn looks_like_text(sample: &[u8]) -> bool {
    if sample.contains(&0) {
        return false;
    }
    match std::str::from_utf8(sample) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && sample.len() - e.valid_up_to() < 4,
    }
}

/// A safe local file name from a URL's last path segment: no directories, no dot-names.
pub fn file_name_for(segment: &str) -> String {
    let cleaned: String = segment
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    if cleaned.is_empty() || cleaned == "." || cleaned == ".." {
        FALLBACK_NAME.to_string()
    } else {
        cleaned
    }
}

/// Where a body was delivered, for the message on stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    Stdout,
    /// Saved to a file; `chosen` is true when the client picked the name (binary body).
    File {
        path: PathBuf,
        chosen: bool,
    },
}

enum State {
    /// Buffering the first bytes of a body without Content-Type.
    Sniffing(Vec<u8>),
    Stdout,
    File(BufWriter<File>),
}

/// Receives one body and sends it to the right place.
pub struct BodySink<'a> {
    stdout: &'a mut dyn Write,
    state: State,
    /// File for a binary body (or the `-o` file).
    file_path: PathBuf,
    explicit_file: bool,
}

impl<'a> BodySink<'a> {
    /// `output` is the `-o` path (`-` means stdout); otherwise `kind` decides, and binary bodies
    /// go to `binary_path`.
    pub fn new(
        stdout: &'a mut dyn Write,
        output: Option<&Path>,
        kind: BodyKind,
        binary_path: PathBuf,
    ) -> Result<Self, ClientError> {
        let mut sink = BodySink {
            stdout,
            state: State::Stdout,
            file_path: binary_path,
            explicit_file: false,
        };
        match output {
            Some(p) if p == Path::new("-") => {}
            Some(p) => {
                sink.file_path = p.to_path_buf();
                sink.explicit_file = true;
                sink.open_file()?;
            }
            None => match kind {
                BodyKind::Text => {}
                BodyKind::Binary => sink.open_file()?,
                BodyKind::Unknown => sink.state = State::Sniffing(Vec::new()),
            },
        }
        Ok(sink)
    }

    /// Delivers the next body bytes.
    pub fn write(&mut self, data: &[u8]) -> Result<(), ClientError> {
        if let State::Sniffing(buf) = &mut self.state {
            buf.extend_from_slice(data);
            if buf.len() < SNIFF_BYTES {
                return Ok(());
            }
            return self.decide();
        }
        self.write_out(data)
    }

    /// Flushes everything and says where the body went.
    pub fn finish(mut self) -> Result<Delivered, ClientError> {
        if matches!(self.state, State::Sniffing(_)) {
            self.decide()?;
        }
        match &mut self.state {
            State::File(file) => {
                file.flush().map_err(|e| self.file_error(e))?;
                Ok(Delivered::File {
                    path: self.file_path.clone(),
                    chosen: !self.explicit_file,
                })
            }
            _ => {
                self.stdout.flush().map_err(stdout_error)?;
                Ok(Delivered::Stdout)
            }
        }
    }

    /// Ends sniffing: picks stdout or file from the buffered bytes and writes them out.
    fn decide(&mut self) -> Result<(), ClientError> {
        let buf = match std::mem::replace(&mut self.state, State::Stdout) {
            State::Sniffing(buf) => buf,
            other => {
                self.state = other;
                return Ok(());
            }
        };
        if !looks_like_text(&buf) {
            self.open_file()?;
        }
        self.write_out(&buf)
    }

    fn write_out(&mut self, data: &[u8]) -> Result<(), ClientError> {
        match &mut self.state {
            State::File(file) => file.write_all(data).map_err(|e| self.file_error(e)),
            _ => self.stdout.write_all(data).map_err(stdout_error),
        }
    }

    fn open_file(&mut self) -> Result<(), ClientError> {
        let file = File::create(&self.file_path)
            .map_err(|e| ClientError::local_io("cannot create output file", &self.file_path, e))?;
        self.state = State::File(BufWriter::new(file));
        Ok(())
    }

    fn file_error(&self, e: io::Error) -> ClientError {
        ClientError::local_io("cannot write output file", &self.file_path, e)
    }
}

/// Error for a failed write to stdout (closed pipe, full disk...).
pub fn stdout_error(e: io::Error) -> ClientError {
    ClientError::local_io("cannot write to", Path::new("stdout"), e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_content_types() {
        for text in [
            "text/html; charset=utf-8",
            "application/json",
            "application/problem+json",
            "image/svg+xml",
            "application/javascript",
            "TEXT/PLAIN",
        ] {
            assert_eq!(classify(Some(text)), BodyKind::Text, "{text}");
        }
        for binary in [
            "image/png",
            "application/pdf",
            "application/zip",
            "application/octet-stream",
        ] {
            assert_eq!(classify(Some(binary)), BodyKind::Binary, "{binary}");
        }
        assert_eq!(classify(None), BodyKind::Unknown);
    }

    #[test]
    fn sniffs_text() {
        assert!(looks_like_text(b"hello\n"));
        assert!(looks_like_text("héllo".as_bytes()));
        assert!(looks_like_text(&"é".as_bytes()[..1]));
        assert!(!looks_like_text(b"\x89PNG\r\n\x1a\n\0\0"));
        assert!(!looks_like_text(b"\xff\xfe abc"));
    }

    #[test]
    fn file_names_are_safe() {
        assert_eq!(file_name_for("logo.png"), "logo.png");
        assert_eq!(file_name_for(""), FALLBACK_NAME);
        assert_eq!(file_name_for(".."), FALLBACK_NAME);
        assert_eq!(file_name_for("a/b"), "a_b");
    }

    #[test]
    fn unknown_bodies_go_to_stdout_when_text() {
        let mut out = Vec::new();
        let mut sink =
            BodySink::new(&mut out, None, BodyKind::Unknown, PathBuf::from("unused")).unwrap();
        sink.write(b"plain ").unwrap();
        sink.write(b"text").unwrap();
        assert_eq!(sink.finish().unwrap(), Delivered::Stdout);
        assert_eq!(out, b"plain text");
    }
}
