//! HTTP/2 ⇄ HTTP/1.1 translation for a stream, sans-io. Each h2 stream is served by an ordinary
//! HTTP/1 session whose client is an in-memory pipe: the h2 side writes the request into the
//! pipe as HTTP/1.1 ([`write_h1_request`], [`ChunkWriter`]) and reads back the HTTP/1 response
//! the session writes ([`H1ResponseReader`]), turning it into HEADERS, DATA and trailers.
//!
//! The HTTP/1 side stays the one strict parser of requests (the session re-reads what is written
//! here), so the writer only has to keep the bytes unambiguous: nothing that could end a line or
//! a field early gets through. The reader reuses the HTTP/1 rules as they are: httparse for the
//! head, [`Declared`] and [`BodyKind`] for the framing, [`ChunkedDecoder`] for chunked bodies,
//! [`FieldName`] for the hop-by-hop fields HTTP/2 must not carry (RFC 9113 §8.2.2).

use std::fmt;
use std::mem::MaybeUninit;
use std::ops::Range;

use super::request::RequestHead;
pub use crate::http::body::BodyKind;
use crate::http::chunked::{ChunkError, ChunkedDecoder, Piece};
use crate::http::framing::Declared;
use crate::http::request::HEADERS_CAP;
use crate::http::{connection_names_headers, named_by_connection, FieldName};

/// Why a request head cannot be written as HTTP/1.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TranslateError {
    /// Neither `:authority` nor `host`: the caller answers 400, as HTTP/1.1 does (RFC 9112 §3.2).
    NoHost,
    /// A malformed request (RFC 9113 §8.1.1, §8.2.1): a stream PROTOCOL_ERROR.
    Malformed(&'static str),
}

impl fmt::Display for TranslateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TranslateError::NoHost => f.write_str("no :authority and no host"),
            TranslateError::Malformed(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for TranslateError {}

/// Writes `head` as an HTTP/1.1 request head into `out` and says how its body follows.
///
/// `:authority` becomes `host` and wins over a `host` field, which is then dropped (RFC 9113
/// §8.3.1); `te: trailers` is dropped (it speaks of this hop); a `content-length` is kept. With
/// no `content-length` and DATA to come (`!end_stream`) the body goes chunked ([`ChunkWriter`]);
/// POST, PUT and PATCH ending with their head get `content-length: 0`, as a backend expects.
/// On error `out` may hold part of a head: the caller discards it.
pub fn write_h1_request(
    head: &RequestHead,
    end_stream: bool,
    out: &mut Vec<u8>,
) -> Result<BodyKind, TranslateError> {
    let method = head.method();
    if method.is_empty() || !method.iter().copied().all(is_token_byte) {
        return Err(TranslateError::Malformed(":method is not a token"));
    }
    let path = head.path();
    if !path.iter().all(|&b| b > b' ' && b != 0x7f) {
        return Err(TranslateError::Malformed(
            ":path holds a space or control byte",
        ));
    }
    out.extend_from_slice(method);
    out.push(b' ');
    out.extend_from_slice(path);
    out.extend_from_slice(b" HTTP/1.1\r\n");

    let authority = head.authority();
    if let Some(authority) = authority {
        if authority.is_empty() || !authority.iter().all(|&b| b > b' ' && b < 0x7f) {
            return Err(TranslateError::Malformed(
                ":authority holds a space or control byte",
            ));
        }
        if authority.contains(&b'@') {
            // RFC 9113 §8.3.1: no userinfo in `:authority` for http and https.
            return Err(TranslateError::Malformed(":authority holds userinfo"));
        }
        put_field(out, b"host", authority);
    }
    let mut host_seen = false;
    for (name, value) in head.fields() {
        check_field(name, value)?;
        match name {
            b"host" if authority.is_some() => continue,
            b"host" => host_seen = true,
            b"te" => continue,
            _ => {}
        }
        put_field(out, name, value);
    }
    if authority.is_none() && !host_seen {
        return Err(TranslateError::NoHost);
    }

    let body = match head.content_length {
        Some(n) if end_stream && n != 0 => {
            return Err(TranslateError::Malformed("content-length with no DATA"));
        }
        Some(n) => BodyKind::Length(n),
        None if !end_stream => {
            put_field(out, b"transfer-encoding", b"chunked");
            BodyKind::Chunked
        }
        None => {
            if matches!(method, b"POST" | b"PUT" | b"PATCH") {
                put_field(out, b"content-length", b"0");
            }
            BodyKind::Empty
        }
    };
    out.extend_from_slice(b"\r\n");
    Ok(body)
}

/// The chunked framing of a request body whose length the client did not give: each DATA frame
/// becomes one chunk, the client's trailers the trailer section.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChunkWriter;

impl ChunkWriter {
    /// `<hex size>\r\n<bytes>\r\n`; nothing for no bytes (an empty chunk would end the body).
    pub fn data(&self, bytes: &[u8], out: &mut Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        put_hex(out, bytes.len() as u64);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(bytes);
        out.extend_from_slice(b"\r\n");
    }

    /// The last chunk, the trailer fields (without `te`), the final CRLF.
    pub fn finish(
        &self,
        trailers: Option<&RequestHead>,
        out: &mut Vec<u8>,
    ) -> Result<(), TranslateError> {
        out.extend_from_slice(b"0\r\n");
        for (name, value) in trailers.into_iter().flat_map(RequestHead::fields) {
            check_field(name, value)?;
            if name != b"te" {
                put_field(out, name, value);
            }
        }
        out.extend_from_slice(b"\r\n");
        Ok(())
    }
}

/// RFC 9113 §8.2.1: HPACK can carry any byte, but a name must be a token in lowercase and a
/// value must hold no NUL, CR or LF nor begin or end with whitespace. Checked again here
/// (`request::validate` checks most of it) because these bytes become HTTP/1 lines.
fn check_field(name: &[u8], value: &[u8]) -> Result<(), TranslateError> {
    if name.is_empty()
        || !name
            .iter()
            .all(|&b| is_token_byte(b) && !b.is_ascii_uppercase())
    {
        return Err(TranslateError::Malformed(
            "field name not a lowercase token",
        ));
    }
    if value.iter().any(|&b| matches!(b, 0 | b'\r' | b'\n')) {
        return Err(TranslateError::Malformed("NUL, CR or LF in a field value"));
    }
    if value.first().is_some_and(|&b| b == b' ' || b == b'\t')
        || value.last().is_some_and(|&b| b == b' ' || b == b'\t')
    {
        return Err(TranslateError::Malformed("whitespace around a field value"));
    }
    Ok(())
}

/// tchar (RFC 9110 §5.6.2), by table: every byte of every field name is looked up.
fn is_token_byte(b: u8) -> bool {
    TCHAR[usize::from(b)]
}

const TCHAR: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        b += 1;
    }
    table
};

fn put_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

fn put_hex(out: &mut Vec<u8>, n: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = [0u8; 16];
    let mut i = text.len();
    let mut n = n;
    loop {
        i -= 1;
        text[i] = DIGITS[(n & 0xf) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&text[i..]);
}

/// A response head larger than this is refused (a session writes heads far smaller; the
/// backend's were already bounded by the `max_header_bytes` of the HTTP/1 side).
pub const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// A chunked trailer section larger than this is refused (as [`ChunkedDecoder`] bounds it).
const MAX_TRAILER_SECTION: usize = 16 * 1024 + 2;
/// The end of a chunk, then the last chunk with no extension and no trailer: how chunked bodies
/// nearly always end.
const LAST_CHUNK: &[u8] = b"\r\n0\r\n\r\n";
/// Trailer fields parsed at most (on the stack).
const MAX_TRAILER_FIELDS: usize = 64;

/// Response header fields as HTTP/2 carries them: names lowercase, hop-by-hop fields gone, values
/// as sent (obs-text kept as bytes). One arena and its spans, as [`RequestHead`] keeps them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseFields {
    bytes: Vec<u8>,
    spans: Vec<(Range<usize>, Range<usize>)>,
}

impl ResponseFields {
    /// The fields in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.spans
            .iter()
            .map(|(n, v)| (&self.bytes[n.clone()], &self.bytes[v.clone()]))
    }

    /// The first field called `name` (lowercase).
    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Copies the fields an HTTP/2 message may carry: drops the hop-by-hop ones
    /// ([`FieldName::HopByHop`], `transfer-encoding`, those `connection` names) and, in
    /// trailers, `content-length`.
    fn from_h1(fields: &[httparse::Header<'_>], trailers: bool) -> ResponseFields {
        Self::from_h1_into(ResponseFields::default(), fields, trailers)
    }

    /// [`Self::from_h1`] into `out`'s allocations (a spare from an earlier response).
    fn from_h1_into(
        mut out: ResponseFields,
        fields: &[httparse::Header<'_>],
        trailers: bool,
    ) -> ResponseFields {
        let names_more = connection_names_headers(fields);
        out.bytes.clear();
        out.spans.clear();
        out.bytes
            .reserve(fields.iter().map(|f| f.name.len() + f.value.len()).sum());
        out.spans.reserve(fields.len());
        for field in fields {
            match FieldName::of(field.name) {
                FieldName::HopByHop | FieldName::TransferEncoding => continue,
                _ if names_more && named_by_connection(field.name, fields) => continue,
                _ if trailers && field.name.eq_ignore_ascii_case("content-length") => continue,
                _ => {}
            }
            let start = out.bytes.len();
            out.bytes.extend_from_slice(field.name.as_bytes());
            let name = start..out.bytes.len();
            out.bytes[name.clone()].make_ascii_lowercase();
            out.bytes.extend_from_slice(field.value);
            let value = name.end..out.bytes.len();
            out.spans.push((name, value));
        }
        out
    }
}

/// One piece of the response, in order: any number of `Informational`, then `Head`, then `Data`
/// until the body ends. Exactly one part ends the response (an HTTP/2 END_STREAM): a `Head` or
/// `Data` with `end_stream`, `Trailers`, or `End`; the reader is then finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponsePart {
    /// A 1xx response other than 101 (100 Continue, 103 Early Hints): the final one follows.
    Informational { status: u16, fields: ResponseFields },
    /// The final response head; `end_stream` when no body follows (HEAD, 204, 304,
    /// `content-length: 0`).
    Head {
        status: u16,
        fields: ResponseFields,
        end_stream: bool,
    },
    /// Body bytes: this range of the `input` given to `next`; `end_stream` with the last.
    Data {
        bytes: Range<usize>,
        end_stream: bool,
    },
    /// A chunked body's trailer fields (hop-by-hop and framing fields dropped); they end it.
    Trailers(ResponseFields),
    /// The body ended with no bytes left to carry the end (last chunk, or close).
    End,
}

/// Why the response could not be read: the caller resets the stream (INTERNAL_ERROR), or
/// before any head was sent answers 502.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadError {
    HeadTooLarge,
    Malformed(&'static str),
    Chunked(ChunkError),
    /// The byte stream ended (`eof`) before the response did.
    CutShort,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::HeadTooLarge => f.write_str("response head too large"),
            ReadError::Malformed(why) => f.write_str(why),
            ReadError::Chunked(e) => write!(f, "chunked response body: {e}"),
            ReadError::CutShort => f.write_str("response cut short"),
        }
    }
}

impl std::error::Error for ReadError {}

impl From<ChunkError> for ReadError {
    fn from(e: ChunkError) -> Self {
        ReadError::Chunked(e)
    }
}

/// Where the reader is in the response.
#[derive(Debug, Clone)]
enum ReadState {
    /// Before the final head (1xx heads may come first).
    Head,
    /// Body bytes left of a `content-length` body.
    Length(u64),
    /// Chunk sizes and data, until the last chunk's size line.
    Chunks(ChunkedDecoder),
    /// After the last chunk: the trailer section is taken whole.
    Trailers(ChunkedDecoder),
    /// Until the byte stream ends.
    UntilClose,
    Finished,
}

/// Reads one HTTP/1.x response from the byte stream a session writes, incrementally: the
/// caller passes what it holds (`input`, the unconsumed bytes from the start), drops the bytes
/// it is told were consumed, and calls again when more arrive. Memory held is a few words plus
/// the head's fields; body bytes are never copied (a `Data` part is a range of `input`).
#[derive(Debug, Clone)]
pub struct H1ResponseReader {
    head_request: bool,
    state: ReadState,
    /// Allocations the final head's fields are written into.
    spare: ResponseFields,
}

impl H1ResponseReader {
    /// A reader for the response to one request; a HEAD request's response has no body.
    pub fn new(head_request: bool) -> Self {
        Self::with_spare(head_request, ResponseFields::default())
    }

    /// [`Self::new`] whose final head is written into `spare`'s allocations (fields an earlier
    /// stream's head was sent from), so a stream's head costs no allocation.
    pub fn with_spare(head_request: bool, spare: ResponseFields) -> Self {
        H1ResponseReader {
            head_request,
            state: ReadState::Head,
            spare,
        }
    }

    /// Whether the response has ended (a part with the end has been returned).
    pub fn is_finished(&self) -> bool {
        matches!(self.state, ReadState::Finished)
    }

    /// The next part from the front of `input`: the bytes consumed (framing and the part's
    /// bytes) and the part, or `None` when more input is needed (`eof` false). `eof` says no
    /// byte follows `input`. After the end it consumes nothing and returns `None`.
    pub fn next(
        &mut self,
        input: &[u8],
        eof: bool,
    ) -> Result<(usize, Option<ResponsePart>), ReadError> {
        self.next_limited(input, eof, usize::MAX)
    }

    /// [`next`](Self::next) with `Data` at most `max_data` bytes long: what the stream's send
    /// window takes, so the rest stays in the caller's buffer (and the session behind it
    /// waits). With `max_data` 0 a body's data is not read (`None`).
    pub fn next_limited(
        &mut self,
        input: &[u8],
        eof: bool,
        max_data: usize,
    ) -> Result<(usize, Option<ResponsePart>), ReadError> {
        match &mut self.state {
            ReadState::Head => self.read_head(input, eof),
            ReadState::Length(left) => {
                if input.is_empty() {
                    return if eof {
                        Err(ReadError::CutShort)
                    } else {
                        Ok((0, None))
                    };
                }
                let n = (*left).min(input.len() as u64).min(max_data as u64) as usize;
                if n == 0 {
                    return Ok((0, None));
                }
                *left -= n as u64;
                let end_stream = *left == 0;
                if end_stream {
                    self.state = ReadState::Finished;
                }
                Ok((
                    n,
                    Some(ResponsePart::Data {
                        bytes: 0..n,
                        end_stream,
                    }),
                ))
            }
            ReadState::UntilClose => {
                if input.is_empty() {
                    if eof {
                        self.state = ReadState::Finished;
                        return Ok((0, Some(ResponsePart::End)));
                    }
                    return Ok((0, None));
                }
                let n = input.len().min(max_data);
                if n == 0 {
                    return Ok((0, None));
                }
                let end_stream = eof && n == input.len();
                if end_stream {
                    self.state = ReadState::Finished;
                }
                Ok((
                    n,
                    Some(ResponsePart::Data {
                        bytes: 0..n,
                        end_stream,
                    }),
                ))
            }
            ReadState::Chunks(_) => self.read_chunks(input, eof, max_data),
            ReadState::Trailers(_) => self.read_trailers(input, eof),
            ReadState::Finished => Ok((0, None)),
        }
    }

    fn read_head(
        &mut self,
        input: &[u8],
        eof: bool,
    ) -> Result<(usize, Option<ResponsePart>), ReadError> {
        let mut storage = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; HEADERS_CAP];
        let mut resp = httparse::Response::new(&mut []);
        let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut resp,
            input,
            &mut storage,
        );
        let head_len = match parsed {
            Ok(httparse::Status::Complete(n)) if n <= MAX_RESPONSE_HEAD => n,
            Ok(httparse::Status::Complete(_)) => return Err(ReadError::HeadTooLarge),
            Ok(httparse::Status::Partial) if input.len() >= MAX_RESPONSE_HEAD => {
                return Err(ReadError::HeadTooLarge)
            }
            Ok(httparse::Status::Partial) if eof => return Err(ReadError::CutShort),
            Ok(httparse::Status::Partial) => return Ok((0, None)),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(ReadError::Malformed("too many response header fields"))
            }
            Err(_) => return Err(ReadError::Malformed("malformed response head")),
        };
        let status = match resp.code {
            Some(code @ 100..=999) => code,
            _ => return Err(ReadError::Malformed("invalid status code")),
        };
        let headers: &[httparse::Header<'_>] = resp.headers;
        if status == 101 {
            return Err(ReadError::Malformed(
                "101 Switching Protocols on an HTTP/2 stream",
            ));
        }
        if (100..200).contains(&status) {
            let fields = ResponseFields::from_h1(headers, false);
            return Ok((
                head_len,
                Some(ResponsePart::Informational { status, fields }),
            ));
        }
        let declared = Declared::parse(headers).map_err(|e| ReadError::Malformed(e.reason()))?;
        if declared == Declared::OtherCoding {
            // As the HTTP/1 side refuses it: a coding other than chunked cannot be undone here.
            return Err(ReadError::Malformed(
                "Transfer-Encoding does not end in chunked",
            ));
        }
        self.state = match declared.response_body(status, self.head_request) {
            BodyKind::Empty | BodyKind::Length(0) => ReadState::Finished,
            BodyKind::Length(n) => ReadState::Length(n),
            BodyKind::Chunked => ReadState::Chunks(ChunkedDecoder::new()),
            BodyKind::UntilClose => ReadState::UntilClose,
        };
        let fields = ResponseFields::from_h1_into(std::mem::take(&mut self.spare), headers, false);
        let end_stream = self.is_finished();
        Ok((
            head_len,
            Some(ResponsePart::Head {
                status,
                fields,
                end_stream,
            }),
        ))
    }

    /// Chunk framing is fed to the decoder a line at a time, so that it stops where the trailer
    /// section begins (which [`read_trailers`](Self::read_trailers) takes whole).
    fn read_chunks(
        &mut self,
        input: &[u8],
        eof: bool,
        max_data: usize,
    ) -> Result<(usize, Option<ResponsePart>), ReadError> {
        let ReadState::Chunks(decoder) = &mut self.state else {
            return Ok((0, None));
        };
        let mut used = 0;
        while used < input.len() {
            let rest = &input[used..];
            // In chunk data the decoder answers Data at once: try that on a copy (a few words).
            let mut probe = decoder.clone();
            let offered = rest.len().min(max_data);
            if let Piece::Data(n) = probe.next(&rest[..offered])? {
                if n == 0 {
                    return Ok((used, None));
                }
                *decoder = probe;
                // The chunk ended before what was offered did: if the body's plain end follows,
                // the data carries it (no empty DATA frame for it).
                let mut consumed = used + n;
                let ends = n < offered && rest[n..].starts_with(LAST_CHUNK);
                if ends {
                    if decoder.next(LAST_CHUNK)? != Piece::Done(LAST_CHUNK.len()) {
                        return Err(ReadError::Malformed("chunked framing"));
                    }
                    consumed += LAST_CHUNK.len();
                    self.state = ReadState::Finished;
                }
                return Ok((
                    consumed,
                    Some(ResponsePart::Data {
                        bytes: used..used + n,
                        end_stream: ends,
                    }),
                ));
            }
            let line = rest
                .iter()
                .position(|&b| b == b'\n')
                .map_or(rest.len(), |i| i + 1);
            match decoder.next(&rest[..line])? {
                Piece::Framing(n) | Piece::Data(n) | Piece::Done(n) if n > 0 => used += n,
                // Only past the body's end, which is taken in `read_trailers`.
                _ => return Err(ReadError::Malformed("chunked framing past the body's end")),
            }
            if decoder.in_trailers() {
                self.state = ReadState::Trailers(std::mem::take(decoder));
                let (n, part) = self.read_trailers(&input[used..], eof)?;
                return Ok((used + n, part));
            }
        }
        if eof {
            return Err(ReadError::CutShort);
        }
        Ok((used, None))
    }

    /// The trailer section, once it is all in `input`: checked by the decoder, parsed by
    /// httparse, returned as `Trailers` (or `End` when there is none to forward).
    fn read_trailers(
        &mut self,
        input: &[u8],
        eof: bool,
    ) -> Result<(usize, Option<ResponsePart>), ReadError> {
        let ReadState::Trailers(decoder) = &mut self.state else {
            return Ok((0, None));
        };
        let section = if input.starts_with(b"\r\n") {
            Some(2)
        } else {
            input
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|i| i + 4)
        };
        let Some(len) = section else {
            // The decoder finds bare LFs and bad lines before the section is whole.
            decoder.clone().next(input)?;
            if input.len() > MAX_TRAILER_SECTION {
                return Err(ReadError::Chunked(ChunkError::TrailersTooLarge));
            }
            if eof {
                return Err(ReadError::CutShort);
            }
            return Ok((0, None));
        };
        if decoder.next(&input[..len])? != Piece::Done(len) {
            return Err(ReadError::Malformed("chunked trailer section"));
        }
        self.state = ReadState::Finished;
        if len == 2 {
            return Ok((len, Some(ResponsePart::End)));
        }
        let mut storage = [httparse::EMPTY_HEADER; MAX_TRAILER_FIELDS];
        let fields = match httparse::parse_headers(&input[..len], &mut storage) {
            Ok(httparse::Status::Complete((_, fields))) => fields,
            Err(httparse::Error::TooManyHeaders) => {
                return Err(ReadError::Malformed("too many trailer fields"))
            }
            _ => return Err(ReadError::Malformed("malformed trailer section")),
        };
        let fields = ResponseFields::from_h1(fields, true);
        if fields.is_empty() {
            return Ok((len, Some(ResponsePart::End)));
        }
        Ok((len, Some(ResponsePart::Trailers(fields))))
    }
}

#[cfg(test)]
#[path = "translate_tests.rs"]
mod tests;
