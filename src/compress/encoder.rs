//! Streaming encoders, sans-io: the caller feeds input and gives output room; nothing here
//! reads a socket or grows a buffer. Each call consumes at most [`STEP_INPUT`] bytes, so a
//! caller in an event loop does bounded work per call and can yield between calls.

use std::fmt;

use brotli::enc::encode::{
    BrotliEncoderOperation, BrotliEncoderParameter, BrotliEncoderStateStruct,
};
use brotli::enc::StandardAlloc;
use flate2::{Compress, Compression, FlushCompress};
use zstd::stream::raw::{CParameter, InBuffer, Operation, OutBuffer};

use super::Coding;

/// Input bytes one call consumes at most: at the fast levels a few tens of microseconds.
pub const STEP_INPUT: usize = 16 * 1024;

/// The window of brotli and zstd, log2: 512 KiB, as nginx's brotli module. It bounds each
/// stream's memory (brotli's default is 4 MiB, zstd's grows with the level) and costs text of
/// a few hundred KB nothing.
pub const WINDOW_LOG: u32 = 19;

/// How far a call got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// Input bytes taken (the caller drops them from its input).
    pub consumed: usize,
    /// Output bytes written at the start of `out`.
    pub written: usize,
}

/// How far a flush or finish got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    /// Output bytes written at the start of `out`.
    pub written: usize,
    /// All of it is out: after `flush`, every byte fed so far is decodable; after `finish`, the
    /// stream is complete. Otherwise call again with more room.
    pub done: bool,
}

/// An encoder failed (its library reported an error; pibl's use should never cause one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeError {
    pub coding: Coding,
    pub detail: String,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} encoder: {}", self.coding.token(), self.detail)
    }
}

impl std::error::Error for EncodeError {}

/// One response body's encoder.
pub enum Encoder {
    Gzip(Box<Gzip>),
    Br(Box<BrotliEncoderStateStruct<StandardAlloc>>),
    Zstd(Box<zstd::stream::raw::Encoder<'static>>),
}

/// The gzip member format (RFC 1952) around flate2's raw deflate: the header and trailer are
/// written here, so the same code works on every flate2 backend.
pub struct Gzip {
    deflate: Compress,
    crc: crc32fast::Hasher,
    /// Bytes of [`GZIP_HEADER`] already written.
    header_written: usize,
    /// The trailer (CRC32, length mod 2^32), once deflate has ended; bytes of it written.
    trailer: Option<([u8; 8], usize)>,
}

/// ID1 ID2, CM=deflate, no flags, MTIME 0 (unknown), XFL 0, OS 255 (unknown).
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

impl Encoder {
    /// An encoder for `coding` at `level` (in [`super::Levels::range`]).
    pub fn new(coding: Coding, level: i32) -> Result<Encoder, EncodeError> {
        let fail = |detail: String| EncodeError { coding, detail };
        Ok(match coding {
            Coding::Gzip => Encoder::Gzip(Box::new(Gzip {
                deflate: Compress::new(Compression::new(level.clamp(0, 9) as u32), false),
                crc: crc32fast::Hasher::new(),
                header_written: 0,
                trailer: None,
            })),
            Coding::Br => {
                let mut state = BrotliEncoderStateStruct::new(StandardAlloc::default());
                let quality = level.clamp(0, 11) as u32;
                let set = state
                    .set_parameter(BrotliEncoderParameter::BROTLI_PARAM_QUALITY, quality)
                    && state.set_parameter(BrotliEncoderParameter::BROTLI_PARAM_LGWIN, WINDOW_LOG);
                if !set {
                    return Err(fail("parameters refused".to_string()));
                }
                Encoder::Br(Box::new(state))
            }
            Coding::Zstd => {
                let mut z =
                    zstd::stream::raw::Encoder::new(level).map_err(|e| fail(e.to_string()))?;
                z.set_parameter(CParameter::WindowLog(WINDOW_LOG))
                    .map_err(|e| fail(e.to_string()))?;
                Encoder::Zstd(Box::new(z))
            }
        })
    }

    pub fn coding(&self) -> Coding {
        match self {
            Encoder::Gzip(_) => Coding::Gzip,
            Encoder::Br(_) => Coding::Br,
            Encoder::Zstd(_) => Coding::Zstd,
        }
    }

    /// Compresses from the start of `input` (at most [`STEP_INPUT`] bytes of it) into `out`.
    /// An encoder may take input without writing anything yet (it keeps a window), or write
    /// without taking input (output it held): call again while it progresses.
    pub fn compress(&mut self, input: &[u8], out: &mut [u8]) -> Result<Progress, EncodeError> {
        let input = &input[..input.len().min(STEP_INPUT)];
        let coding = self.coding();
        match self {
            Encoder::Gzip(g) => {
                let header = g.write_header(out);
                let (consumed, written) =
                    g.deflate(input, &mut out[header..], FlushCompress::None)?;
                g.crc.update(&input[..consumed]);
                Ok(Progress {
                    consumed,
                    written: header + written,
                })
            }
            Encoder::Br(b) => {
                let (consumed, written) = brotli_step(
                    b,
                    BrotliEncoderOperation::BROTLI_OPERATION_PROCESS,
                    input,
                    out,
                )
                .ok_or_else(|| brotli_failed(coding))?;
                Ok(Progress { consumed, written })
            }
            Encoder::Zstd(z) => {
                let mut input = InBuffer::around(input);
                let mut output = OutBuffer::around(out);
                z.run(&mut input, &mut output).map_err(|e| EncodeError {
                    coding,
                    detail: e.to_string(),
                })?;
                Ok(Progress {
                    consumed: input.pos(),
                    written: output.pos(),
                })
            }
        }
    }

    /// Makes everything fed so far decodable by the client (a sync flush): for a backend that
    /// pauses mid-body, so the client is not left waiting on bytes the encoder holds. Costs a
    /// few bytes of ratio each time; call it when the input runs dry, not per read.
    pub fn flush(&mut self, out: &mut [u8]) -> Result<Drained, EncodeError> {
        let coding = self.coding();
        match self {
            Encoder::Gzip(g) => {
                let header = g.write_header(out);
                let room = out.len() - header;
                let (_, written) = g.deflate(&[], &mut out[header..], FlushCompress::Sync)?;
                Ok(Drained {
                    written: header + written,
                    done: written < room,
                })
            }
            Encoder::Br(b) => {
                let (_, written) =
                    brotli_step(b, BrotliEncoderOperation::BROTLI_OPERATION_FLUSH, &[], out)
                        .ok_or_else(|| brotli_failed(coding))?;
                Ok(Drained {
                    written,
                    done: !b.has_more_output() && written < out.len(),
                })
            }
            Encoder::Zstd(z) => {
                let mut output = OutBuffer::around(out);
                let left = z.flush(&mut output).map_err(|e| EncodeError {
                    coding,
                    detail: e.to_string(),
                })?;
                Ok(Drained {
                    written: output.pos(),
                    done: left == 0,
                })
            }
        }
    }

    /// Ends the stream (all input given): call until `done`; then the encoder is spent.
    pub fn finish(&mut self, out: &mut [u8]) -> Result<Drained, EncodeError> {
        let coding = self.coding();
        match self {
            Encoder::Gzip(g) => {
                let mut at = g.write_header(out);
                if g.header_written < GZIP_HEADER.len() {
                    return Ok(Drained {
                        written: at,
                        done: false,
                    });
                }
                let (trailer, sent) = match &mut g.trailer {
                    Some(t) => t,
                    None => {
                        let before = g.deflate.total_out();
                        let status = g
                            .deflate
                            .compress(&[], &mut out[at..], FlushCompress::Finish)
                            .map_err(|e| EncodeError {
                                coding,
                                detail: e.to_string(),
                            })?;
                        at += (g.deflate.total_out() - before) as usize;
                        if status != flate2::Status::StreamEnd {
                            return Ok(Drained {
                                written: at,
                                done: false,
                            });
                        }
                        let mut trailer = [0; 8];
                        trailer[..4].copy_from_slice(&g.crc.clone().finalize().to_le_bytes());
                        trailer[4..].copy_from_slice(&(g.deflate.total_in() as u32).to_le_bytes());
                        g.trailer.insert((trailer, 0))
                    }
                };
                let n = (trailer.len() - *sent).min(out.len() - at);
                out[at..at + n].copy_from_slice(&trailer[*sent..*sent + n]);
                *sent += n;
                Ok(Drained {
                    written: at + n,
                    done: *sent == trailer.len(),
                })
            }
            Encoder::Br(b) => {
                let (_, written) =
                    brotli_step(b, BrotliEncoderOperation::BROTLI_OPERATION_FINISH, &[], out)
                        .ok_or_else(|| brotli_failed(coding))?;
                Ok(Drained {
                    written,
                    done: b.is_finished(),
                })
            }
            Encoder::Zstd(z) => {
                let mut output = OutBuffer::around(out);
                let left = z.finish(&mut output, false).map_err(|e| EncodeError {
                    coding,
                    detail: e.to_string(),
                })?;
                Ok(Drained {
                    written: output.pos(),
                    done: left == 0,
                })
            }
        }
    }
}

impl Gzip {
    /// Writes what is left of the header; returns the bytes written.
    fn write_header(&mut self, out: &mut [u8]) -> usize {
        let n = (GZIP_HEADER.len() - self.header_written).min(out.len());
        out[..n].copy_from_slice(&GZIP_HEADER[self.header_written..self.header_written + n]);
        self.header_written += n;
        n
    }

    /// One deflate call: (input consumed, output written). Nothing goes to deflate before the
    /// header is out, so the stream stays in order.
    fn deflate(
        &mut self,
        input: &[u8],
        out: &mut [u8],
        flush: FlushCompress,
    ) -> Result<(usize, usize), EncodeError> {
        if self.header_written < GZIP_HEADER.len() || out.is_empty() {
            return Ok((0, 0));
        }
        let (in_before, out_before) = (self.deflate.total_in(), self.deflate.total_out());
        self.deflate
            .compress(input, out, flush)
            .map_err(|e| EncodeError {
                coding: Coding::Gzip,
                detail: e.to_string(),
            })?;
        Ok((
            (self.deflate.total_in() - in_before) as usize,
            (self.deflate.total_out() - out_before) as usize,
        ))
    }
}

/// One brotli call: (input consumed, output written), `None` when brotli reports failure.
fn brotli_step(
    state: &mut BrotliEncoderStateStruct<StandardAlloc>,
    op: BrotliEncoderOperation,
    input: &[u8],
    out: &mut [u8],
) -> Option<(usize, usize)> {
    let mut available_in = input.len();
    let mut in_offset = 0;
    let mut available_out = out.len();
    let mut out_offset = 0;
    let mut total_out = None;
    let ok = state.compress_stream(
        op,
        &mut available_in,
        input,
        &mut in_offset,
        &mut available_out,
        out,
        &mut out_offset,
        &mut total_out,
        &mut |_, _, _, _| (),
    );
    ok.then_some((in_offset, out_offset))
}

fn brotli_failed(coding: Coding) -> EncodeError {
    EncodeError {
        coding,
        detail: "the stream was refused".to_string(),
    }
}
