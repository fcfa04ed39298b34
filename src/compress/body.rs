//! One response body being compressed: the encoder and a bounded buffer of its output waiting
//! for the client. Sans-io, so the relay drives it with the bytes it has: input is taken only
//! while the output buffer has room, so a slow client slows the backend (the relay stops
//! reading when its own buffer is full), and each call does a bounded number of encoder steps.

use super::{Coding, EncodeError, Encoder};

/// Where the body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Input is being fed.
    Streaming,
    /// The input has ended; the encoder's end is being written.
    Finishing,
    /// The encoder has written its last byte (some may still be pending for the client).
    Finished,
}

/// The compressor of one exchange's body.
pub struct BodyCompressor {
    encoder: Encoder,
    /// Output made and not yet taken: `out[start..end]`. Its length never changes.
    out: Vec<u8>,
    start: usize,
    end: usize,
    stage: Stage,
    /// Bytes fed and bytes made, for the counters (`/status`, `/metrics`).
    bytes_in: u64,
    bytes_out: u64,
}

impl std::fmt::Debug for BodyCompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyCompressor")
            .field("coding", &self.coding())
            .field("pending", &(self.end - self.start))
            .field("stage", &self.stage)
            .field("bytes_in", &self.bytes_in)
            .field("bytes_out", &self.bytes_out)
            .finish()
    }
}

impl BodyCompressor {
    /// `out`: the output buffer (its length is the bound; a pooled buffer in the proxy).
    pub fn new(encoder: Encoder, out: Vec<u8>) -> BodyCompressor {
        BodyCompressor {
            encoder,
            out,
            start: 0,
            end: 0,
            stage: Stage::Streaming,
            bytes_in: 0,
            bytes_out: 0,
        }
    }

    pub fn coding(&self) -> Coding {
        self.encoder.coding()
    }

    /// Compresses from the start of `input` while the output buffer has room, in at most
    /// `max_steps` encoder calls. Returns how many input bytes were taken (0 when the buffer
    /// is full: the client must take what was made first).
    pub fn feed(&mut self, input: &[u8], max_steps: usize) -> Result<usize, EncodeError> {
        self.compact();
        let mut taken = 0;
        for _ in 0..max_steps {
            if taken == input.len() || self.end == self.out.len() || self.stage != Stage::Streaming
            {
                break;
            }
            let p = self
                .encoder
                .compress(&input[taken..], &mut self.out[self.end..])?;
            taken += p.consumed;
            self.end += p.written;
            self.bytes_out += p.written as u64;
            if p.consumed == 0 && p.written == 0 {
                break;
            }
        }
        self.bytes_in += taken as u64;
        Ok(taken)
    }

    /// The input has ended: writes the encoder's end while there is room, in at most
    /// `max_steps` calls. Call again (after the client took output) until [`Self::is_done`].
    pub fn finish(&mut self, max_steps: usize) -> Result<(), EncodeError> {
        if self.stage == Stage::Streaming {
            self.stage = Stage::Finishing;
        }
        self.compact();
        for _ in 0..max_steps {
            if self.stage == Stage::Finished || self.end == self.out.len() {
                break;
            }
            let d = self.encoder.finish(&mut self.out[self.end..])?;
            self.end += d.written;
            self.bytes_out += d.written as u64;
            if d.done {
                self.stage = Stage::Finished;
            }
        }
        Ok(())
    }

    /// Output waiting for the client.
    pub fn pending(&self) -> &[u8] {
        &self.out[self.start..self.end]
    }

    /// The client took `n` bytes of [`Self::pending`].
    pub fn taken(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
    }

    /// The whole compressed body has been made and taken.
    pub fn is_done(&self) -> bool {
        self.stage == Stage::Finished && self.start == self.end
    }

    /// (bytes fed, bytes made) so far.
    pub fn totals(&self) -> (u64, u64) {
        (self.bytes_in, self.bytes_out)
    }

    /// The output buffer, to go back to its pool.
    pub fn into_buffer(self) -> Vec<u8> {
        self.out
    }

    /// Moves pending output to the front, so the room after it is as large as it can be.
    fn compact(&mut self) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start > 0 {
            self.out.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compress::encoder_tests::decode;
    use crate::compress::Levels;

    /// Markup with a random number per row: compresses about 3x, as a page does.
    fn text(len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        let mut n = 88_172_645_463_325_252u64;
        while out.len() < len {
            n ^= n << 13;
            n ^= n >> 7;
            n ^= n << 17;
            out.extend_from_slice(b"<p class=\"row\">the proxy relays row ");
            out.extend_from_slice(format!("{:x}", n % 1_000_000_007).as_bytes());
            out.extend_from_slice(b"</p>\n");
        }
        out.truncate(len);
        out
    }

    /// 1 MiB through a client that takes `per_take` bytes at a time, the relay offering
    /// `per_read` bytes of backend data at a time: the output buffer never grows, the
    /// compressor refuses input while it is full, and the result decodes to the input.
    #[test]
    fn a_slow_client_holds_the_input_back_in_bounded_memory() {
        let input = text(1 << 20);
        for coding in Coding::PREFERENCE {
            let enc = Encoder::new(coding, Levels::DEFAULT.of(coding)).unwrap();
            let mut c = BodyCompressor::new(enc, vec![0; 4096]);
            assert_eq!(c.coding(), coding);
            let (per_read, per_take) = (16 * 1024, 300);
            let mut client = Vec::new();
            let mut at = 0;
            let mut refused = 0;
            let mut rounds = 0;
            while !c.is_done() {
                rounds += 1;
                assert!(rounds < 1_000_000, "{coding:?}: no progress");
                if at < input.len() {
                    let end = (at + per_read).min(input.len());
                    let took = c.feed(&input[at..end], 4).unwrap();
                    if took == 0 {
                        refused += 1;
                    }
                    at += took;
                } else {
                    c.finish(4).unwrap();
                }
                let n = c.pending().len().min(per_take);
                client.extend_from_slice(&c.pending()[..n]);
                c.taken(n);
            }
            assert!(
                refused > 0,
                "{coding:?}: the full buffer held input back ({rounds} rounds, {:?})",
                c.totals()
            );
            assert_eq!(c.totals(), (input.len() as u64, client.len() as u64));
            assert_eq!(decode(coding, &client), input, "{coding:?}");
            assert_eq!(c.into_buffer().len(), 4096, "the buffer never grew");
        }
    }

    #[test]
    fn an_empty_body_finishes_at_once() {
        for coding in Coding::PREFERENCE {
            let enc = Encoder::new(coding, Levels::DEFAULT.of(coding)).unwrap();
            let mut c = BodyCompressor::new(enc, vec![0; 1024]);
            assert_eq!(c.feed(&[], 4).unwrap(), 0);
            c.finish(4).unwrap();
            let out = c.pending().to_vec();
            c.taken(out.len());
            assert!(c.is_done());
            assert_eq!(decode(coding, &out), b"");
        }
    }

    #[test]
    fn steps_bound_the_work_per_call() {
        let input = text(200_000);
        let enc = Encoder::new(Coding::Zstd, 3).unwrap();
        let mut c = BodyCompressor::new(enc, vec![0; 64 * 1024]);
        let took = c.feed(&input, 1).unwrap();
        assert!(took <= crate::compress::STEP_INPUT, "{took}");
        let took = c.feed(&input, 2).unwrap();
        assert!(took <= 2 * crate::compress::STEP_INPUT, "{took}");
    }
}
