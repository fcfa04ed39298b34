//! Compression in the relay: whether a response's body is compressed (decided at its final
//! head, which is rewritten for it), the exchange's compressor, and the bounded pump that moves
//! plain body data through it to the client. A miss (`relay.rs`) and a cache hit
//! (`cache_states.rs`) both use it.

use super::h1::{ClientGone, H1Codec};
use crate::compress::{
    decide, Asked, BodyCompressor, Coding, CompressedHead, Decision, EncodeError, Encoder,
};
use crate::config::Config;
use crate::http::body::BodyKind;
use crate::http::head::ResponseHead;
use crate::http::response::ClientSide;

/// Encoder steps (each at most `STEP_INPUT` bytes of input) one round of a compressed relay
/// makes, and the rounds one call makes: the work per event is bounded.
const COMPRESS_STEPS: usize = 4;
const COMPRESS_ROUNDS: usize = 4;

/// The size of a compressed body's output buffer: what is made and not yet taken by the
/// client. When it is full the compressor takes no input, the relay's buffer fills, and the
/// backend is no longer read: a slow client slows the backend.
const COMPRESS_OUTPUT: usize = 16 * 1024;

/// When a response's body is compressed, decided at its final head (`compressed_head`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CompressFrom {
    /// Now: the head is rewritten for the coding.
    Head(Coding),
    /// A body of unknown length (chunked, or to the close): once `compress_min_length` bytes
    /// of it have arrived, else it goes as it is; the head waits for the decision.
    MinLength(Coding),
}

/// Decides, at the final response head, whether its body is compressed; if so, and its length
/// is known, rewrites the client's head for it (`CompressedHead`).
pub(super) fn compressed_head(
    asked: Asked,
    head: &ResponseHead<'_>,
    body: BodyKind,
    config: &Config,
    side: ClientSide,
    client_head: &mut Vec<u8>,
) -> Option<CompressFrom> {
    let settings = &config.compress;
    let decision = decide(
        asked,
        head.status,
        head.fields,
        &settings.types,
        settings.min_length,
    );
    let Decision::Compress(coding) = decision else {
        return None;
    };
    if !matches!(body, BodyKind::Length(_)) && settings.min_length > 0 {
        return Some(CompressFrom::MinLength(coding));
    }
    CompressedHead::new(coding, side.version).rewrite(client_head);
    Some(CompressFrom::Head(coding))
}

/// The exchange's compressor for `coding`, at the configured level.
pub(super) fn start_compressor(
    config: &Config,
    coding: Coding,
) -> Result<Box<BodyCompressor>, EncodeError> {
    let encoder = Encoder::new(coding, config.compress.levels.of(coding))?;
    Ok(Box::new(BodyCompressor::new(
        encoder,
        vec![0; COMPRESS_OUTPUT],
    )))
}

/// Where a compressed body is also written (a cache hit making the entry's compressed
/// variant, `CacheWork`).
pub(super) trait Tee {
    /// Compressed bytes the client took.
    fn taken(&mut self, bytes: &[u8]);
    /// The whole body was made and taken: called before the client's last bytes (the end of
    /// its chunked body) are written, so the copy is complete before the client has it all,
    /// as a miss's store is published before its last bytes.
    fn complete(&mut self);
}

/// What one call of [`pump_compressed`] did.
pub(super) struct Pumped {
    /// Bytes of the input the compressor took (the caller drops them from its source).
    pub(super) took: usize,
    /// The whole compressed response has left.
    pub(super) ended: bool,
}

pub(super) enum PumpError {
    ClientGone,
    Encoder(EncodeError),
}

/// Moves plain body data (`input`, the start of what is left of the body; `last`: it is all
/// that is left) through `compressor` to the client: its pending output first, then new input
/// while it has room, then, at the end of the body, the encoder's end and the last chunk.
/// Bounded: `COMPRESS_ROUNDS` rounds of `COMPRESS_STEPS` encoder steps; stops as soon as the
/// client would block. The relay of a miss and a cache hit both use it; a hit passes `tee`,
/// which gets every byte the client took (see [`Tee`]).
pub(super) fn pump_compressed(
    codec: &mut H1Codec<'_>,
    compressor: &mut BodyCompressor,
    input: &[u8],
    last: bool,
    mut tee: Option<&mut dyn Tee>,
) -> Result<Pumped, PumpError> {
    let mut took = 0;
    for _ in 0..COMPRESS_ROUNDS {
        let pending = compressor.pending();
        if !pending.is_empty() {
            let wanted = pending.len();
            let n = codec
                .body(pending)
                .map_err(|ClientGone| PumpError::ClientGone)?;
            if let Some(tee) = tee.as_deref_mut() {
                tee.taken(&pending[..n]);
            }
            compressor.taken(n);
            if n < wanted {
                break;
            }
        }
        let made_before = compressor.totals().1;
        if took < input.len() {
            let n = compressor
                .feed(&input[took..], COMPRESS_STEPS)
                .map_err(PumpError::Encoder)?;
            took += n;
            if n == 0 && compressor.totals().1 == made_before {
                break;
            }
        } else if last && !compressor.is_done() {
            compressor
                .finish(COMPRESS_STEPS)
                .map_err(PumpError::Encoder)?;
            if compressor.pending().is_empty() {
                break;
            }
        } else {
            break;
        }
    }
    let ended = if last && took == input.len() && compressor.is_done() {
        if let Some(tee) = tee {
            tee.complete();
        }
        codec.end().map_err(|ClientGone| PumpError::ClientGone)?
    } else {
        false
    };
    Ok(Pumped { took, ended })
}
