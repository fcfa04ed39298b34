//! Response compression (issue 15): which coding a client accepts (`negotiate`), which responses
//! may be compressed (`decide`, `types`), and the streaming encoders (`encoder`).
//!
//! Everything here is sans-io and free of the session: the proxy asks [`Asked::from_request`]
//! at the request head, [`decide`] at the response head, writes the head with
//! [`CompressedHead`], and feeds body bytes through a [`BodyCompressor`] (an [`Encoder`] and a
//! bounded output buffer) a bounded number of steps at a time. `docs/compression.md` says what is compressed and why,
//! and how the default levels were measured.

mod body;
mod decide;
mod encoder;
#[cfg(test)]
mod encoder_tests;
mod head;
mod negotiate;
mod types;

pub use body::BodyCompressor;
pub use decide::{decide, decide_stored, Asked, Decision, Skip};
pub use encoder::{Drained, EncodeError, Encoder, Progress, STEP_INPUT, WINDOW_LOG};
pub use head::CompressedHead;
pub use negotiate::{negotiate, MAX_ELEMENTS};
pub use types::TypeList;

/// A content coding pibl can produce (RFC 9110 §8.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Coding {
    Br,
    Zstd,
    Gzip,
}

impl Coding {
    /// Every coding, in the order a tie is broken: the smaller output first.
    pub const PREFERENCE: [Coding; 3] = [Coding::Br, Coding::Zstd, Coding::Gzip];

    /// The token in `Accept-Encoding` and `Content-Encoding`.
    pub fn token(self) -> &'static str {
        match self {
            Coding::Br => "br",
            Coding::Zstd => "zstd",
            Coding::Gzip => "gzip",
        }
    }

    /// The coding a token names (case-insensitive; `x-gzip` is gzip, RFC 9110 §8.4.1.3).
    pub fn from_token(token: &[u8]) -> Option<Coding> {
        let is = |t: &str| token.eq_ignore_ascii_case(t.as_bytes());
        if is("br") {
            Some(Coding::Br)
        } else if is("zstd") {
            Some(Coding::Zstd)
        } else if is("gzip") || is("x-gzip") {
            Some(Coding::Gzip)
        } else {
            None
        }
    }

    /// Its place in [`Coding::PREFERENCE`], for per-coding arrays (counters, variants).
    pub fn index(self) -> usize {
        match self {
            Coding::Br => 0,
            Coding::Zstd => 1,
            Coding::Gzip => 2,
        }
    }
}

/// Compression levels, one per coding (`compress_level gzip=N br=N zstd=N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Levels {
    /// flate2: 1 (fastest) to 9.
    pub gzip: u32,
    /// brotli quality: 0 to 11.
    pub br: u32,
    /// zstd: 1 to 19 (pibl refuses the ultra levels and the negative ones).
    pub zstd: i32,
}

impl Levels {
    /// The levels a response compressed on its way through uses: fast ones, chosen by
    /// `benches/compress.rs` (figures in docs/compression.md).
    pub const DEFAULT: Levels = Levels {
        gzip: 2,
        br: 3,
        zstd: 3,
    };

    /// The level of one coding, as the encoder takes it.
    pub fn of(&self, coding: Coding) -> i32 {
        match coding {
            Coding::Gzip => self.gzip as i32,
            Coding::Br => self.br as i32,
            Coding::Zstd => self.zstd,
        }
    }

    /// The range of levels a coding accepts.
    pub fn range(coding: Coding) -> std::ops::RangeInclusive<i32> {
        match coding {
            Coding::Gzip => 1..=9,
            Coding::Br => 0..=11,
            Coding::Zstd => 1..=19,
        }
    }

    /// Applies `compress_level` words (`gzip=6 br=5`); codings not named keep their level.
    pub fn parse(&mut self, words: &[&str]) -> Result<(), String> {
        if words.is_empty() {
            return Err("needs CODING=LEVEL, e.g. 'compress_level gzip=2 br=3 zstd=3'".into());
        }
        for word in words {
            let Some((name, level)) = word.split_once('=') else {
                return Err(format!("'{word}' is not CODING=LEVEL (e.g. gzip=1)"));
            };
            let Some(coding) = Coding::from_token(name.as_bytes()).filter(|_| name != "x-gzip")
            else {
                return Err(format!("'{name}' is not a coding: gzip, br or zstd"));
            };
            let range = Levels::range(coding);
            let level = level
                .parse::<i32>()
                .ok()
                .filter(|l| range.contains(l))
                .ok_or_else(|| {
                    format!(
                        "{name} level '{level}': expected {} to {}",
                        range.start(),
                        range.end()
                    )
                })?;
            match coding {
                Coding::Gzip => self.gzip = level as u32,
                Coding::Br => self.br = level as u32,
                Coding::Zstd => self.zstd = level,
            }
        }
        Ok(())
    }
}

impl Default for Levels {
    fn default() -> Self {
        Levels::DEFAULT
    }
}

impl std::fmt::Display for Levels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "gzip={} br={} zstd={}", self.gzip, self.br, self.zstd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_some_codings_and_refuse_bad_words() {
        let mut l = Levels::DEFAULT;
        l.parse(&["gzip=6", "zstd=19"]).unwrap();
        assert_eq!(
            l,
            Levels {
                gzip: 6,
                br: 3,
                zstd: 19
            }
        );
        assert_eq!(l.to_string(), "gzip=6 br=3 zstd=19");
        for bad in [
            "gzip", "gzip=0", "gzip=10", "br=12", "zstd=0", "zstd=-1", "lz4=1", "x-gzip=1", "br=a",
        ] {
            assert!(l.parse(&[bad]).is_err(), "{bad}");
        }
        assert!(l.parse(&[]).is_err());
    }

    #[test]
    fn tokens_round_trip() {
        for c in Coding::PREFERENCE {
            assert_eq!(Coding::from_token(c.token().as_bytes()), Some(c));
            assert_eq!(Coding::PREFERENCE[c.index()], c);
        }
        assert_eq!(Coding::from_token(b"X-GZIP"), Some(Coding::Gzip));
        assert_eq!(Coding::from_token(b"deflate"), None);
    }
}
