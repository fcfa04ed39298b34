//! The writing half of [`H2Connection`]: the bytes to write, the stream's send capacity, and
//! what the caller sends (response heads, data, trailers, resets, GOAWAY).

use super::*;

impl H2Connection {
    /// Bytes to write to the client.
    pub fn output(&self) -> &[u8] {
        &self.out[self.out_pos..]
    }

    /// `n` bytes of [`H2Connection::output`] were written.
    pub fn advance_output(&mut self, n: usize) {
        self.capacity_grew |= n > 0;
        self.out_pos = (self.out_pos + n).min(self.out.len());
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
            self.queued_acks = 0;
        }
    }

    /// The connection ended with an error, or after a GOAWAY once its streams finished:
    /// flush the output, then close.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, ConnState::Failed(_))
            || ((self.goaway_sent.is_some() || self.goaway_received) && self.streams.is_empty())
    }

    pub fn stream_state(&self, stream_id: u32) -> StreamState {
        match self.streams.get(&stream_id) {
            Some(stream) => stream.state,
            None if self.is_idle(stream_id) => StreamState::Idle,
            None => StreamState::Closed,
        }
    }

    pub fn open_streams(&self) -> usize {
        self.streams.len()
    }

    /// Whether a stream's send capacity may have grown since the last call (a WINDOW_UPDATE, a
    /// larger initial window, output written): streams that waited for it can try again.
    pub fn take_capacity_grown(&mut self) -> bool {
        std::mem::take(&mut self.capacity_grew)
    }

    /// The bytes `send_data` would take now on this stream: 0 with bytes to send is a
    /// zero-window stall, which the caller times out (the connection holds no data for it).
    pub fn send_capacity(&self, stream_id: u32) -> usize {
        let Some(stream) = self.streams.get(&stream_id) else {
            return 0;
        };
        let window = stream
            .send_window
            .available()
            .min(self.conn_send_window.available()) as usize;
        window.min(self.config.max_output.saturating_sub(self.output().len()))
    }

    fn sendable(&self, stream_id: u32) -> Result<(), SendError> {
        match self.streams.get(&stream_id).map(|s| s.state) {
            None => Err(SendError::NoSuchStream),
            Some(StreamState::HalfClosedLocal) => Err(SendError::AlreadyEnded),
            Some(_) => Ok(()),
        }
    }

    /// The response head: `:status` and `fields` (lowercase names, no connection-specific
    /// fields), HPACK-encoded, in HEADERS and CONTINUATION at the client's max frame size.
    pub fn send_response_head(
        &mut self,
        stream_id: u32,
        status: u16,
        fields: &[(&[u8], &[u8])],
        end_stream: bool,
    ) -> Result<(), SendError> {
        self.send_response_fields(stream_id, status, fields.iter().copied(), end_stream)
    }

    /// [`Self::send_response_head`] with the fields from an iterator (no list to build).
    pub fn send_response_fields<'f>(
        &mut self,
        stream_id: u32,
        status: u16,
        fields: impl Iterator<Item = (&'f [u8], &'f [u8])>,
        end_stream: bool,
    ) -> Result<(), SendError> {
        self.sendable(stream_id)?;
        let mut digits = [0u8; 3];
        let status = status.clamp(100, 999);
        digits[0] = b'0' + (status / 100) as u8;
        digits[1] = b'0' + (status / 10 % 10) as u8;
        digits[2] = b'0' + (status % 10) as u8;
        self.block_buf.clear();
        self.encoder.begin_block(&mut self.block_buf);
        self.encoder
            .encode_field(b":status", &digits, Indexing::Without, &mut self.block_buf);
        self.write_block(stream_id, fields, end_stream);
        Ok(())
    }

    /// Trailers after the body: they end pibl's side of the stream.
    pub fn send_trailers(
        &mut self,
        stream_id: u32,
        fields: &[(&[u8], &[u8])],
    ) -> Result<(), SendError> {
        self.send_trailer_fields(stream_id, fields.iter().copied())
    }

    /// [`Self::send_trailers`] with the fields from an iterator.
    pub fn send_trailer_fields<'f>(
        &mut self,
        stream_id: u32,
        fields: impl Iterator<Item = (&'f [u8], &'f [u8])>,
    ) -> Result<(), SendError> {
        self.sendable(stream_id)?;
        self.block_buf.clear();
        self.encoder.begin_block(&mut self.block_buf);
        self.write_block(stream_id, fields, true);
        Ok(())
    }

    fn write_block<'f>(
        &mut self,
        stream_id: u32,
        fields: impl Iterator<Item = (&'f [u8], &'f [u8])>,
        end_stream: bool,
    ) {
        for (name, value) in fields {
            self.encoder
                .encode_field(name, value, indexing_for(name, value), &mut self.block_buf);
        }
        let max_frame = self.peer.max_frame_size.max(DEFAULT_MAX_FRAME_SIZE);
        write_headers(
            &mut self.out,
            stream_id,
            &self.block_buf,
            end_stream,
            max_frame,
        );
        if end_stream {
            self.end_local(stream_id);
        }
    }

    /// Sends what the windows, the client's max frame size and the output bound allow of
    /// `bytes`; returns how much it took. END_STREAM goes out only with the last byte.
    pub fn send_data(
        &mut self,
        stream_id: u32,
        bytes: &[u8],
        end_stream: bool,
    ) -> Result<usize, SendError> {
        self.sendable(stream_id)?;
        let take = self.send_capacity(stream_id).min(bytes.len());
        let ends = end_stream && take == bytes.len();
        if take == 0 && !ends {
            return Ok(0);
        }
        let max_frame = self.peer.max_frame_size.max(DEFAULT_MAX_FRAME_SIZE) as usize;
        let mut chunks = bytes[..take].chunks(max_frame).peekable();
        if take == 0 {
            write_data(&mut self.out, stream_id, &[], true);
        }
        while let Some(chunk) = chunks.next() {
            let last = chunks.peek().is_none();
            write_data(&mut self.out, stream_id, chunk, ends && last);
        }
        let taken = take as u32;
        let _ = self.conn_send_window.consume(taken);
        if let Some(stream) = self.streams.get_mut(&stream_id) {
            let _ = stream.send_window.consume(taken);
        }
        if ends {
            self.end_local(stream_id);
        }
        Ok(take)
    }

    /// Resets a stream (the caller gave up on it: backend error, timeout, ...).
    pub fn reset(&mut self, stream_id: u32, code: ErrorCode) {
        if self.streams.remove(&stream_id).is_some() {
            write_rst_stream(&mut self.out, stream_id, code);
            self.remember_reset(stream_id);
        }
    }

    /// Graceful GOAWAY (RFC 9113 §6.8): streams up to `last_stream_id` finish, later ones are
    /// ignored; [`H2Connection::is_finished`] says when to close.
    pub fn go_away(&mut self, last_stream_id: u32, code: ErrorCode) {
        let last = self
            .goaway_sent
            .map_or(last_stream_id, |l| l.min(last_stream_id));
        write_goaway(&mut self.out, last, code, &[]);
        self.goaway_sent = Some(last);
    }

    /// The highest stream id the client opened: the `last_stream_id` of a graceful GOAWAY.
    pub fn last_client_stream(&self) -> u32 {
        self.last_client_stream
    }
}

/// Response fields that change from one response to the next: kept out of the client's dynamic
/// table, where they would only push out the ones that repeat.
const CHANGING_FIELDS: &[&[u8]] = &[
    b"age",
    b"content-disposition",
    b"content-length",
    b"content-range",
    b"date",
    b"etag",
    b"expires",
    b"last-modified",
    b"link",
    b"location",
    b"x-request-id",
];
/// A longer value is unlikely to repeat and would take a large share of the 4 KiB table.
const MAX_INDEXED_VALUE: usize = 64;

/// How a response field is encoded. Fields that repeat on a connection's responses (`server`,
/// `content-type`, `cache-control`, `vary`, a backend's own) enter the dynamic table, so from the
/// second response on each is one byte, with no Huffman work; the ones that change do not.
/// `set-cookie` is never indexed (RFC 7541 §7.1.3: a secret is not left for a compression
/// oracle), by pibl nor by an intermediary after it.
fn indexing_for(name: &[u8], value: &[u8]) -> Indexing {
    if name == b"set-cookie" {
        Indexing::Never
    } else if value.len() > MAX_INDEXED_VALUE || CHANGING_FIELDS.contains(&name) {
        Indexing::Without
    } else {
        Indexing::Incremental
    }
}
