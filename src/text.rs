//! Wording shared by the messages all three programs print.

/// `1 worker`, `2 workers`: a count with its noun, for messages that read as sentences.
pub fn counted(n: usize, singular: &str, plural: &str) -> String {
    format!("{n} {}", if n == 1 { singular } else { plural })
}
