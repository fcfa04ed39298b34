//! The parsed head: one model of a message's status line and fields, read by every part that
//! needs them (the HTTP/1 writer for the client, the cache; later the compressor and an HTTP/2
//! encoder). A head is parsed once, by httparse into the parser's stack array, and lent as this
//! model: nothing is copied or allocated per field, and no reader parses the bytes again.

use super::Version;

/// A backend's response head as parsed, borrowed from the buffer it arrived in.
#[derive(Debug, Clone, Copy)]
pub struct ResponseHead<'a> {
    pub status: u16,
    pub version: Version,
    /// The reason phrase as sent (HTTP/1 has one; HTTP/2 does not).
    pub reason: &'a str,
    /// The fields in order, names and values exactly as sent (values may hold obs-text).
    pub fields: &'a [httparse::Header<'a>],
}

impl ResponseHead<'_> {
    /// Whether a field of this name is present.
    pub fn has(&self, name: &str) -> bool {
        self.fields.iter().any(|f| super::name_is(f.name, name))
    }
}
