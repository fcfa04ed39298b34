//! Flow-control windows (RFC 9113 §5.2, §6.9): signed, because a lowered INITIAL_WINDOW_SIZE
//! can make a stream's send window negative, and bounded by 2^31 - 1, past which the peer has
//! made an error (FLOW_CONTROL_ERROR).

use super::error::ErrorCode;
use super::settings::MAX_WINDOW;

/// One window: the connection's or a stream's, for sending or for receiving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window(i64);

/// A window moved past 2^31 - 1: FLOW_CONTROL_ERROR, on the stream or on the connection
/// (RFC 9113 §6.9.1), or data beyond the window we gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowControlError;

impl FlowControlError {
    pub fn code(self) -> ErrorCode {
        ErrorCode::FLOW_CONTROL_ERROR
    }
}

impl Window {
    pub fn new(initial: u32) -> Self {
        Window(i64::from(initial.min(MAX_WINDOW)))
    }

    /// The bytes that may be sent now (0 when the window is negative).
    pub fn available(&self) -> u32 {
        self.0.clamp(0, i64::from(MAX_WINDOW)) as u32
    }

    /// The window as the RFC counts it, possibly negative.
    pub fn value(&self) -> i64 {
        self.0
    }

    /// WINDOW_UPDATE: grows by `increment`; past 2^31 - 1 is the peer's error.
    pub fn increase(&mut self, increment: u32) -> Result<(), FlowControlError> {
        let next = self.0 + i64::from(increment);
        if next > i64::from(MAX_WINDOW) {
            return Err(FlowControlError);
        }
        self.0 = next;
        Ok(())
    }

    /// Sending `len` bytes: the caller sends no more than [`Window::available`].
    pub fn consume(&mut self, len: u32) -> Result<(), FlowControlError> {
        if i64::from(len) > self.0 {
            return Err(FlowControlError);
        }
        self.0 -= i64::from(len);
        Ok(())
    }

    /// Receiving a DATA frame of `flow_len` bytes: beyond the window we gave is the peer's
    /// FLOW_CONTROL_ERROR (RFC 9113 §6.9.1).
    pub fn receive(&mut self, flow_len: u32) -> Result<(), FlowControlError> {
        self.consume(flow_len)
    }

    /// INITIAL_WINDOW_SIZE changed from `old` to `new` (RFC 9113 §6.9.2): an open stream's send
    /// window moves by the difference, and may go negative; past 2^31 - 1 is a connection
    /// FLOW_CONTROL_ERROR.
    pub fn apply_initial_change(&mut self, old: u32, new: u32) -> Result<(), FlowControlError> {
        let next = self.0 + i64::from(new) - i64::from(old);
        if next > i64::from(MAX_WINDOW) {
            return Err(FlowControlError);
        }
        self.0 = next;
        Ok(())
    }
}

/// A peer's INITIAL_WINDOW_SIZE changed from `old` to `new` (`SettingsChange`): every open
/// stream's send window moves by the difference. One window past 2^31 - 1 is a connection
/// FLOW_CONTROL_ERROR (RFC 9113 §6.9.2); the connection's own window does not move.
pub fn apply_initial_window_change<'w>(
    stream_windows: impl IntoIterator<Item = &'w mut Window>,
    old: u32,
    new: u32,
) -> Result<(), FlowControlError> {
    for window in stream_windows {
        window.apply_initial_change(old, new)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increase_to_the_maximum_and_not_past_it() {
        let mut w = Window::new(65_535);
        w.increase(MAX_WINDOW - 65_535).expect("up to 2^31-1");
        assert_eq!(w.available(), MAX_WINDOW);
        assert_eq!(w.increase(1), Err(FlowControlError));
        assert_eq!(w.available(), MAX_WINDOW);
        assert_eq!(FlowControlError.code(), ErrorCode::FLOW_CONTROL_ERROR);
    }

    #[test]
    fn consume_and_receive_within_the_window_only() {
        let mut w = Window::new(100);
        w.consume(60).expect("within");
        assert_eq!(w.available(), 40);
        assert_eq!(w.receive(41), Err(FlowControlError));
        w.receive(40).expect("exactly the rest");
        assert_eq!(w.available(), 0);
    }

    #[test]
    fn initial_window_change_moves_open_streams_and_may_go_negative() {
        let mut w = Window::new(65_535);
        w.consume(60_000).expect("within");
        w.apply_initial_change(65_535, 1_000).expect("lowered");
        // 5,535 left, moved by 1,000 - 65,535.
        assert_eq!(w.value(), -59_000);
        assert_eq!(w.available(), 0);
        w.increase(60_000).expect("back above zero");
        assert_eq!(w.available(), 1_000);
        // Raising it so a stream's window passes 2^31-1.
        let mut full = Window::new(MAX_WINDOW);
        assert_eq!(full.apply_initial_change(0, 1), Err(FlowControlError));
    }

    #[test]
    fn a_settings_change_moves_every_open_stream() {
        use crate::h2::settings::{id, Settings};
        let mut peer = Settings::default();
        let mut streams = [Window::new(65_535), Window::new(65_535)];
        streams[1].consume(35_535).expect("within");
        let mut payload = id::INITIAL_WINDOW_SIZE.to_be_bytes().to_vec();
        payload.extend_from_slice(&100_000u32.to_be_bytes());
        let change = peer.apply(&payload).expect("valid");
        let (old, new) = change.initial_window_size.expect("changed");
        apply_initial_window_change(&mut streams, old, new).expect("fits");
        assert_eq!(streams.map(|w| w.available()), [100_000, 64_465]);
        // A window already near the top overflows: a connection error.
        let mut near_top = [Window::new(MAX_WINDOW - 10)];
        assert_eq!(
            apply_initial_window_change(&mut near_top, 65_535, 65_546),
            Err(FlowControlError)
        );
    }
}
