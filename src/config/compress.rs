//! The `compress*` directives: one struct, so a scope (site, route) can carry its own copy.

use super::values::{parse_size, parse_switch, switch};
use crate::compress::{Levels, TypeList};

/// The directives parsed here, in the order docs/config.md lists them.
pub const COMPRESS_DIRECTIVES: [&str; 4] = [
    "compress",
    "compress_types",
    "compress_min_length",
    "compress_level",
];

/// `compress_min_length` when unset: below about 1 KB the coding's framing and the extra
/// header eat most of the gain (nginx's `gzip_min_length` default is 20; 1024 is what its docs
/// and most guides set).
pub const DEFAULT_MIN_LENGTH: u64 = 1024;

/// Response compression as configured (docs/compression.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompressSettings {
    /// `compress on|off` (off by default; on in `--demo`).
    pub enabled: bool,
    /// `compress_types`: the media types compressed.
    pub types: TypeList,
    /// `compress_min_length SIZE`: a body shorter than this goes as it is (one of unknown
    /// length is held until this much of it, its end or a full relay buffer).
    pub min_length: u64,
    /// `compress_level gzip=N br=N zstd=N`.
    pub levels: Levels,
}

impl Default for CompressSettings {
    fn default() -> Self {
        CompressSettings {
            enabled: false,
            types: TypeList::default(),
            min_length: DEFAULT_MIN_LENGTH,
            levels: Levels::DEFAULT,
        }
    }
}

impl CompressSettings {
    /// Applies one of [`COMPRESS_DIRECTIVES`]; the message is prefixed with the directive by the
    /// caller.
    pub fn parse_directive(&mut self, name: &str, args: &[&str]) -> Result<(), String> {
        let one = || match args {
            [v] => Ok(*v),
            _ => Err(format!("takes one value, got {}", args.len())),
        };
        match name {
            "compress" => self.enabled = parse_switch(one()?)?,
            "compress_types" => self.types = TypeList::parse(args)?,
            "compress_min_length" => self.min_length = parse_size(one()?, 0, 1 << 30)? as u64,
            "compress_level" => self.levels.parse(args)?,
            other => return Err(format!("'{other}' is not a compress directive")),
        }
        Ok(())
    }

    /// The settings as `--check` prints them, one directive a line.
    pub fn summary_lines(&self) -> [String; 4] {
        [
            format!("compress {}", switch(self.enabled)),
            format!("compress_types {}", self.types),
            format!("compress_min_length {}", self.min_length),
            format!("compress_level {}", self.levels),
        ]
    }
}
