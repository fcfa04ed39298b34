//! The reading half of [`H2Connection`]: frames parsed from the client's bytes and acted on
//! (SETTINGS, PING, GOAWAY, windows, resets), request heads opening streams, and DATA.

use super::*;

impl H2Connection {
    pub(super) fn read_frames(&mut self, input: &[u8]) -> Result<usize, ConnectionError> {
        let mut at = 0;
        if self.state == ConnState::Preface {
            match check_client_preface(input)? {
                None => return Ok(0),
                Some(n) => {
                    at = n;
                    self.state = ConnState::FirstSettings;
                }
            }
        }
        while self.output().len() < self.config.max_output {
            let max_frame = self.config.settings.max_frame_size;
            match parse_frame(&input[at..], max_frame)? {
                Parsed::Incomplete => {
                    // Within the advertised size (parse_frame refused larger ones).
                    if let Some(len) = announced_len(&input[at..]) {
                        self.largest_frame = self.largest_frame.max(len);
                    }
                    break;
                }
                Parsed::StreamError { error, consumed } => {
                    at += consumed;
                    if self.state == ConnState::FirstSettings {
                        return Err(conn_err(
                            ErrorCode::PROTOCOL_ERROR,
                            "first frame not SETTINGS",
                        ));
                    }
                    if self.assembler.open_stream().is_some() {
                        return Err(conn_err(
                            ErrorCode::PROTOCOL_ERROR,
                            "a frame inside a header block",
                        ));
                    }
                    self.stream_error(error.stream_id, error.code)?;
                }
                Parsed::Frame { frame, consumed } => {
                    at += consumed;
                    if self.state == ConnState::FirstSettings {
                        if !matches!(frame, Frame::Settings { ack: false, .. }) {
                            return Err(conn_err(
                                ErrorCode::PROTOCOL_ERROR,
                                "first frame not SETTINGS",
                            ));
                        }
                        self.state = ConnState::Open;
                    }
                    let is_header_frame =
                        matches!(frame, Frame::Headers { .. } | Frame::Continuation { .. });
                    if !is_header_frame && self.assembler.open_stream().is_none() {
                        self.on_frame(frame)?;
                        continue;
                    }
                    // Decoded before anything else, even for a stream that will be refused:
                    // HPACK's table must stay in step with the client's.
                    let whole = match self.assembler.accept(frame)? {
                        Assembled::Pending | Assembled::Other(_) => None,
                        Assembled::Block(block) => {
                            self.decoder
                                .decode(block.block, &mut self.decoded)
                                .map_err(|e| conn_err(e.code(), "header block not decodable"))?;
                            let self_dependent = block
                                .priority
                                .is_some_and(|p| p.depends_on == block.stream_id);
                            Some((block.stream_id, block.end_stream, self_dependent))
                        }
                    };
                    if let Some((stream_id, end_stream, self_dependent)) = whole {
                        self.on_headers(stream_id, end_stream, self_dependent)?;
                    }
                }
            }
        }
        Ok(at)
    }

    pub(super) fn on_frame(&mut self, frame: Frame<'_>) -> Result<(), ConnectionError> {
        match frame {
            Frame::Data {
                stream_id,
                end_stream,
                data,
                flow_len,
            } => self.on_data(stream_id, end_stream, data, flow_len),
            Frame::Headers { .. } | Frame::Continuation { .. } => Err(conn_err(
                ErrorCode::INTERNAL_ERROR,
                "header frame past the assembler",
            )),
            // Deprecated by RFC 9113 §5.3.2: accepted and ignored.
            Frame::Priority { .. } => Ok(()),
            Frame::RstStream { stream_id, code } => {
                if self.is_idle(stream_id) {
                    return Err(conn_err(
                        ErrorCode::PROTOCOL_ERROR,
                        "RST_STREAM on an idle stream",
                    ));
                }
                if self.streams.remove(&stream_id).is_some() {
                    self.events.push_back(Event::Reset {
                        stream: stream_id,
                        code,
                    });
                    self.remember_reset(stream_id);
                    self.count_reset()?;
                }
                Ok(())
            }
            Frame::Settings { ack: true, .. } => {
                // pibl sends one SETTINGS frame; an ACK with none outstanding is ignored.
                self.settings_unacked = false;
                Ok(())
            }
            Frame::Settings { ack: false, params } => {
                let change = self.peer.apply(params)?;
                if let Some((old, new)) = change.initial_window_size {
                    self.capacity_grew = true;
                    for stream in self.streams.values_mut() {
                        stream
                            .send_window
                            .apply_initial_change(old, new)
                            .map_err(|e| {
                                conn_err(e.code(), "INITIAL_WINDOW_SIZE overflows a window")
                            })?;
                    }
                }
                if let Some(size) = change.header_table_size {
                    // pibl's encoder indexes a few repeated response fields: 4 KiB is plenty.
                    self.encoder.set_table_size(size.min(4096) as usize);
                }
                write_settings_ack(&mut self.out);
                self.count_ack()
            }
            Frame::Ping { ack: true, .. } => Ok(()),
            Frame::Ping {
                ack: false,
                payload,
            } => {
                write_ping(&mut self.out, payload, true);
                self.count_ack()
            }
            Frame::GoAway {
                last_stream_id,
                code,
                ..
            } => {
                self.goaway_received = true;
                self.events.push_back(Event::GoAway {
                    last_stream_id,
                    code,
                });
                Ok(())
            }
            Frame::WindowUpdate {
                stream_id: 0,
                increment,
            } => {
                self.capacity_grew = true;
                self.conn_send_window
                    .increase(increment)
                    .map_err(|e| conn_err(e.code(), "connection window past 2^31-1"))
            }
            Frame::WindowUpdate {
                stream_id,
                increment,
            } => {
                if self.is_idle(stream_id) {
                    return Err(conn_err(
                        ErrorCode::PROTOCOL_ERROR,
                        "WINDOW_UPDATE on an idle stream",
                    ));
                }
                let overflow = self
                    .streams
                    .get_mut(&stream_id)
                    .is_some_and(|s| s.send_window.increase(increment).is_err());
                if overflow {
                    return self.stream_error(stream_id, ErrorCode::FLOW_CONTROL_ERROR);
                }
                self.capacity_grew = true;
                Ok(())
            }
            Frame::Unknown { .. } => Ok(()),
        }
    }

    pub(super) fn on_headers(
        &mut self,
        stream_id: u32,
        end_stream: bool,
        self_dependent: bool,
    ) -> Result<(), ConnectionError> {
        if let Some(stream) = self.streams.get(&stream_id) {
            // A second block on a live stream: trailers, which must end it.
            if !matches!(
                stream.state,
                StreamState::Open | StreamState::HalfClosedLocal
            ) {
                return self.stream_error(stream_id, ErrorCode::STREAM_CLOSED);
            }
            if !end_stream {
                return self.stream_error(stream_id, ErrorCode::PROTOCOL_ERROR);
            }
            let fields = match validate(&self.decoded, BlockKind::Trailers) {
                Ok(fields) => fields,
                Err(_) => {
                    return self.stream_error(stream_id, ErrorCode::PROTOCOL_ERROR);
                }
            };
            let (cl, received) = (stream.content_length, stream.data_received);
            if cl.is_some_and(|cl| cl != received) {
                return self.stream_error(stream_id, ErrorCode::PROTOCOL_ERROR);
            }
            self.events.push_back(Event::Trailers {
                stream: stream_id,
                fields,
            });
            self.end_remote(stream_id);
            return Ok(());
        }
        if stream_id.is_multiple_of(2) {
            return Err(conn_err(
                ErrorCode::PROTOCOL_ERROR,
                "even stream id from a client",
            ));
        }
        if stream_id <= self.last_client_stream {
            if self.recently_reset.contains(&stream_id) {
                return Ok(());
            }
            return Err(conn_err(
                ErrorCode::PROTOCOL_ERROR,
                "HEADERS on a closed or lower stream id",
            ));
        }
        self.last_client_stream = stream_id;
        if self.goaway_sent.is_some_and(|last| stream_id > last) {
            // RFC 9113 §6.8: streams after our GOAWAY's last id are ignored.
            return Ok(());
        }
        if self.streams.len() >= self.max_streams as usize {
            return self.stream_error(stream_id, ErrorCode::REFUSED_STREAM);
        }
        if self_dependent {
            return self.stream_error(stream_id, ErrorCode::PROTOCOL_ERROR);
        }
        let spare = self.spare_head.take().unwrap_or_default();
        let head = match validate_into(spare, &self.decoded, BlockKind::Request) {
            Ok(head) => head,
            Err(_) => {
                return self.stream_error(stream_id, ErrorCode::PROTOCOL_ERROR);
            }
        };
        if end_stream && head.content_length.is_some_and(|cl| cl != 0) {
            return self.stream_error(stream_id, ErrorCode::PROTOCOL_ERROR);
        }
        self.streams.insert(
            stream_id,
            Stream {
                state: if end_stream {
                    StreamState::HalfClosedRemote
                } else {
                    StreamState::Open
                },
                send_window: Window::new(self.peer.initial_window_size),
                recv_window: Window::new(self.config.settings.initial_window_size),
                pending_update: 0,
                content_length: head.content_length,
                data_received: 0,
            },
        );
        self.events.push_back(Event::Request {
            stream: stream_id,
            head,
            end_stream,
        });
        Ok(())
    }

    pub(super) fn on_data(
        &mut self,
        stream_id: u32,
        end_stream: bool,
        data: &[u8],
        flow_len: u32,
    ) -> Result<(), ConnectionError> {
        // The connection window counts every DATA frame, whatever its stream's fate; it is given
        // back at once: the per-stream windows are the backpressure, so one slow stream does not
        // stall the others.
        self.conn_recv_window
            .receive(flow_len)
            .map_err(|e| conn_err(e.code(), "DATA beyond the connection window"))?;
        self.conn_pending_update += flow_len;
        if self.conn_pending_update >= 65_535 / 2 {
            write_window_update(&mut self.out, 0, self.conn_pending_update);
            let _ = self.conn_recv_window.increase(self.conn_pending_update);
            self.conn_pending_update = 0;
        }
        if self.is_idle(stream_id) {
            return Err(conn_err(
                ErrorCode::PROTOCOL_ERROR,
                "DATA on an idle stream",
            ));
        }
        let Some(stream) = self.streams.get_mut(&stream_id) else {
            // A closed stream (perhaps one pibl reset): ignored (RFC 9113 §5.1).
            return Ok(());
        };
        if !matches!(
            stream.state,
            StreamState::Open | StreamState::HalfClosedLocal
        ) {
            return self.stream_error(stream_id, ErrorCode::STREAM_CLOSED);
        }
        if stream.recv_window.receive(flow_len).is_err() {
            return self.stream_error(stream_id, ErrorCode::FLOW_CONTROL_ERROR);
        }
        // Padding is nobody's to release: given back with the next update.
        stream.pending_update += flow_len - data.len() as u32;
        stream.data_received += data.len() as u64;
        let length_wrong = stream.content_length.is_some_and(|cl| {
            stream.data_received > cl || (end_stream && stream.data_received != cl)
        });
        if length_wrong {
            return self.stream_error(stream_id, ErrorCode::PROTOCOL_ERROR);
        }
        if data.is_empty() && !end_stream {
            self.empty_frames_in_window += 1;
            if self.empty_frames_in_window > self.config.max_empty_frames_per_window {
                return Err(conn_err(
                    ErrorCode::ENHANCE_YOUR_CALM,
                    "empty DATA frame flood",
                ));
            }
            return Ok(());
        }
        let start = self.event_bytes.len();
        self.event_bytes.extend_from_slice(data);
        self.events.push_back(Event::Data {
            stream: stream_id,
            bytes: start..self.event_bytes.len(),
            end_stream,
        });
        if end_stream {
            self.end_remote(stream_id);
        }
        Ok(())
    }
}
