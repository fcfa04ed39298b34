//! The session's states and the legal transitions between them, as data (`State::allows`):
//! `Conn::enter` checks every transition against it.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Waiting for a request head; also the idle keep-alive state.
    ReadRequestHead,
    /// An upstream TCP handshake is in flight.
    Connecting {
        upstream: usize,
    },
    /// Writing the request head and streaming the request body upstream.
    SendRequest {
        upstream: usize,
    },
    /// The request is sent; waiting for the response head (1xx are relayed here).
    ReadResponseHead {
        upstream: usize,
    },
    /// Streaming the response body to the client.
    RelayResponse {
        upstream: usize,
    },
    /// After `101 Switching Protocols`: raw bytes both ways.
    Tunnel {
        upstream: usize,
    },
    /// Writing a response from the disk cache (head, then the body from its memory map).
    ServeCached,
    /// Another request is fetching this URL for the cache; wait for it (bounded).
    AwaitFill,
    /// Writing a response the proxy made itself; `close` afterwards or read the next request.
    /// Its access line (`status`) is written when it ends: sent whole, or cut short.
    SendError {
        close: bool,
        status: u16,
    },
    /// Flushing the last output before closing. `linger` unless the client asked to close and
    /// sent its whole request, so that nothing more should come from it.
    Closing {
        linger: bool,
    },
    /// Output flushed, write side shut; draining the client until it closes (lingering close).
    Lingering,
    Closed,
}

impl State {
    /// The legal transitions, as data. A response comes on the connection its request went
    /// on: only a state that opens or takes a connection (`Connecting`, `SendRequest`) may
    /// hold another upstream than the state before it.
    pub(super) fn allows(self, next: State) -> bool {
        use State::*;
        let same_upstream = match next {
            ReadResponseHead { upstream } | RelayResponse { upstream } | Tunnel { upstream } => {
                self.upstream().is_none_or(|key| key == upstream)
            }
            _ => true,
        };
        if !same_upstream {
            return false;
        }
        matches!(
            (self, next),
            (_, Closed)
                | (
                    ReadRequestHead,
                    Connecting { .. }
                        | SendRequest { .. }
                        | SendError { .. }
                        | Closing { .. }
                        | ServeCached
                        | AwaitFill
                )
                | (
                    AwaitFill,
                    Connecting { .. } | SendRequest { .. } | SendError { .. } | ServeCached
                )
                | (ServeCached, ReadRequestHead | Closing { .. })
                | (
                    Connecting { .. },
                    Connecting { .. } | SendRequest { .. } | SendError { .. }
                )
                | (
                    SendRequest { .. } | ReadResponseHead { .. },
                    Connecting { .. }
                        | SendRequest { .. }
                        | ReadResponseHead { .. }
                        | RelayResponse { .. }
                        | Tunnel { .. }
                        | SendError { .. }
                        | Closing { .. }
                        | ServeCached
                )
                | (RelayResponse { .. }, ReadRequestHead | Closing { .. })
                | (SendError { .. }, ReadRequestHead | Closing { .. })
                | (Closing { .. }, Lingering)
        )
    }

    /// The key of the upstream connection this state holds, in the worker's [`UpstreamPool`]:
    /// the states from `Connecting` to `Tunnel` hold one, the others none.
    #[inline]
    pub(in crate::proxy) fn upstream(self) -> Option<usize> {
        match self {
            State::Connecting { upstream }
            | State::SendRequest { upstream }
            | State::ReadResponseHead { upstream }
            | State::RelayResponse { upstream }
            | State::Tunnel { upstream } => Some(upstream),
            _ => None,
        }
    }
}
