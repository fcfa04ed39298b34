//! SETTINGS parameters (RFC 9113 §6.5): a peer's values read and validated, and the frame pibl
//! sends for its own.

use super::error::{ConnectionError, ErrorCode};
use super::frame::DEFAULT_MAX_FRAME_SIZE;

/// Setting identifiers (RFC 9113 §6.5.2).
pub mod id {
    pub const HEADER_TABLE_SIZE: u16 = 0x1;
    pub const ENABLE_PUSH: u16 = 0x2;
    pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
    pub const MAX_FRAME_SIZE: u16 = 0x5;
    pub const MAX_HEADER_LIST_SIZE: u16 = 0x6;
}

/// The largest flow-control window and INITIAL_WINDOW_SIZE (2^31 - 1).
pub const MAX_WINDOW: u32 = 0x7fff_ffff;
/// The largest SETTINGS_MAX_FRAME_SIZE (2^24 - 1).
pub const MAX_MAX_FRAME_SIZE: u32 = 0xff_ffff;

/// One side's settings, with the RFC's initial values until a SETTINGS frame changes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub header_table_size: u32,
    pub enable_push: bool,
    /// `None`: unlimited, the initial value.
    pub max_concurrent_streams: Option<u32>,
    pub initial_window_size: u32,
    pub max_frame_size: u32,
    /// `None`: unlimited, the initial value.
    pub max_header_list_size: Option<u32>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            header_table_size: 4096,
            enable_push: true,
            max_concurrent_streams: None,
            initial_window_size: 65_535,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            max_header_list_size: None,
        }
    }
}

/// What applying a SETTINGS frame changed that the connection must act on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SettingsChange {
    /// The new INITIAL_WINDOW_SIZE, when it was set: every open stream's send window moves by
    /// the difference (RFC 9113 §6.9.2; `flow::Window::apply_initial_change`).
    pub initial_window_size: Option<(u32, u32)>,
    /// The new HEADER_TABLE_SIZE, when it was set: the HPACK encoder follows.
    pub header_table_size: Option<u32>,
}

/// The (identifier, value) pairs of a SETTINGS payload whose length `frame.rs` checked.
pub fn params(payload: &[u8]) -> impl Iterator<Item = (u16, u32)> + '_ {
    payload.chunks_exact(6).map(|p| {
        (
            u16::from_be_bytes([p[0], p[1]]),
            u32::from_be_bytes([p[2], p[3], p[4], p[5]]),
        )
    })
}

impl Settings {
    /// Applies a peer's SETTINGS parameters in order (RFC 9113 §6.5.3), validating each;
    /// unknown identifiers are ignored. On error nothing after the bad parameter is applied and
    /// the connection ends.
    pub fn apply(&mut self, payload: &[u8]) -> Result<SettingsChange, ConnectionError> {
        let mut change = SettingsChange::default();
        for (identifier, value) in params(payload) {
            match identifier {
                id::HEADER_TABLE_SIZE => {
                    self.header_table_size = value;
                    change.header_table_size = Some(value);
                }
                id::ENABLE_PUSH => {
                    self.enable_push = match value {
                        0 => false,
                        1 => true,
                        _ => {
                            return Err(ConnectionError::new(
                                ErrorCode::PROTOCOL_ERROR,
                                "ENABLE_PUSH not 0 or 1",
                            ));
                        }
                    }
                }
                id::MAX_CONCURRENT_STREAMS => self.max_concurrent_streams = Some(value),
                id::INITIAL_WINDOW_SIZE => {
                    if value > MAX_WINDOW {
                        return Err(ConnectionError::new(
                            ErrorCode::FLOW_CONTROL_ERROR,
                            "INITIAL_WINDOW_SIZE above 2^31-1",
                        ));
                    }
                    let old = change
                        .initial_window_size
                        .map_or(self.initial_window_size, |(old, _)| old);
                    change.initial_window_size = Some((old, value));
                    self.initial_window_size = value;
                }
                id::MAX_FRAME_SIZE => {
                    if !(DEFAULT_MAX_FRAME_SIZE..=MAX_MAX_FRAME_SIZE).contains(&value) {
                        return Err(ConnectionError::new(
                            ErrorCode::PROTOCOL_ERROR,
                            "MAX_FRAME_SIZE outside 16384..=16777215",
                        ));
                    }
                    self.max_frame_size = value;
                }
                id::MAX_HEADER_LIST_SIZE => self.max_header_list_size = Some(value),
                _ => {}
            }
        }
        Ok(change)
    }

    /// The SETTINGS parameters that differ from the RFC's initial values: what to send.
    pub fn to_params(&self) -> Vec<(u16, u32)> {
        let initial = Settings::default();
        let mut params = Vec::new();
        if self.header_table_size != initial.header_table_size {
            params.push((id::HEADER_TABLE_SIZE, self.header_table_size));
        }
        if self.enable_push != initial.enable_push {
            params.push((id::ENABLE_PUSH, u32::from(self.enable_push)));
        }
        if let Some(n) = self.max_concurrent_streams {
            params.push((id::MAX_CONCURRENT_STREAMS, n));
        }
        if self.initial_window_size != initial.initial_window_size {
            params.push((id::INITIAL_WINDOW_SIZE, self.initial_window_size));
        }
        if self.max_frame_size != initial.max_frame_size {
            params.push((id::MAX_FRAME_SIZE, self.max_frame_size));
        }
        if let Some(n) = self.max_header_list_size {
            params.push((id::MAX_HEADER_LIST_SIZE, n));
        }
        params
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h2::frame::{parse_frame, write_settings, Frame, Parsed};

    fn payload(params: &[(u16, u32)]) -> Vec<u8> {
        params
            .iter()
            .flat_map(|(i, v)| i.to_be_bytes().into_iter().chain(v.to_be_bytes()))
            .collect()
    }

    #[test]
    fn valid_values_apply_in_order_and_unknown_ones_are_ignored() {
        let mut s = Settings::default();
        let change = s
            .apply(&payload(&[
                (id::ENABLE_PUSH, 0),
                (id::MAX_CONCURRENT_STREAMS, 100),
                (id::INITIAL_WINDOW_SIZE, 1 << 20),
                (id::INITIAL_WINDOW_SIZE, MAX_WINDOW),
                (id::MAX_FRAME_SIZE, MAX_MAX_FRAME_SIZE),
                (id::MAX_HEADER_LIST_SIZE, 8192),
                (id::HEADER_TABLE_SIZE, 0),
                (0x99, 7),
            ]))
            .expect("valid");
        assert!(!s.enable_push);
        assert_eq!(s.max_concurrent_streams, Some(100));
        assert_eq!(s.initial_window_size, MAX_WINDOW);
        assert_eq!(change.initial_window_size, Some((65_535, MAX_WINDOW)));
        assert_eq!(change.header_table_size, Some(0));
        assert_eq!(s.max_frame_size, MAX_MAX_FRAME_SIZE);
        assert_eq!(s.max_header_list_size, Some(8192));
    }

    #[test]
    fn invalid_values_are_connection_errors() {
        let cases = [
            (id::ENABLE_PUSH, 2, ErrorCode::PROTOCOL_ERROR),
            (
                id::INITIAL_WINDOW_SIZE,
                MAX_WINDOW + 1,
                ErrorCode::FLOW_CONTROL_ERROR,
            ),
            (id::MAX_FRAME_SIZE, 16_383, ErrorCode::PROTOCOL_ERROR),
            (
                id::MAX_FRAME_SIZE,
                MAX_MAX_FRAME_SIZE + 1,
                ErrorCode::PROTOCOL_ERROR,
            ),
        ];
        for (identifier, value, code) in cases {
            let mut s = Settings::default();
            let err = s
                .apply(&payload(&[(identifier, value)]))
                .expect_err("invalid");
            assert_eq!(err.code, code, "{identifier} = {value}");
        }
    }

    #[test]
    fn written_settings_parse_back() {
        let ours = Settings {
            enable_push: false,
            max_concurrent_streams: Some(128),
            initial_window_size: 1 << 20,
            max_header_list_size: Some(32 * 1024),
            ..Settings::default()
        };
        let mut out = Vec::new();
        write_settings(&mut out, &ours.to_params());
        let Ok(Parsed::Frame {
            frame: Frame::Settings { ack: false, params },
            ..
        }) = parse_frame(&out, 16_384)
        else {
            panic!("a SETTINGS frame");
        };
        let mut theirs = Settings::default();
        theirs.apply(params).expect("valid");
        assert_eq!(theirs, ours);
    }
}
