//! A response being written to the cache: [`PendingEntry`] (temporary files, then renamed into
//! place, sidecar last: see [`super::entry`]), for a response relayed from a backend and for a
//! compressed variant made by a hit ([`VariantWriter`]).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::entry::{
    entry_stem, map_body, temp_path, write_file, CacheEntry, EntryMeta, Variant, VariantClaim,
};
use crate::http::chunked::{ChunkedDecoder, Piece};

/// A response being written to the cache while it is relayed. Dropped unfinished, it removes
/// its temporary file: an aborted response never becomes an entry.
#[derive(Debug)]
pub struct PendingEntry {
    meta: EntryMeta,
    stem: PathBuf,
    tmp_body: PathBuf,
    file: Option<File>,
    /// Set when the relayed bytes are chunked: the cache stores the decoded body.
    decoder: Option<ChunkedDecoder>,
    len: u64,
    hasher: crc32fast::Hasher,
    max_len: u64,
    failed: bool,
    /// Set when this is a compressed variant (its body is the compressed bytes).
    variant: Option<Variant>,
}

impl PendingEntry {
    pub fn create(dir: &Path, meta: EntryMeta, chunked: bool, max_len: u64) -> io::Result<Self> {
        Self::create_as(dir, meta, chunked, max_len, None)
    }

    /// Starts a compressed variant's files (its body appended as the compressor makes it).
    pub fn create_variant(
        dir: &Path,
        meta: EntryMeta,
        variant: Variant,
        max_len: u64,
    ) -> io::Result<Self> {
        Self::create_as(dir, meta, false, max_len, Some(variant))
    }

    fn create_as(
        dir: &Path,
        meta: EntryMeta,
        chunked: bool,
        max_len: u64,
        variant: Option<Variant>,
    ) -> io::Result<Self> {
        let stem = dir.join(entry_stem(&meta, variant));
        let tmp_body = temp_path(&stem, "body");
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp_body)?;
        Ok(PendingEntry {
            meta,
            stem,
            tmp_body,
            file: Some(file),
            decoder: chunked.then(ChunkedDecoder::new),
            len: 0,
            hasher: crc32fast::Hasher::new(),
            max_len,
            failed: false,
            variant,
        })
    }

    pub fn meta(&self) -> &EntryMeta {
        &self.meta
    }

    /// Appends body bytes as relayed (still chunked if the response is). Over the size limit or
    /// on a write error the entry is abandoned; the relay itself goes on.
    pub fn append(&mut self, mut relayed: &[u8]) {
        while !self.failed && !relayed.is_empty() {
            let n = match self.decoder.as_mut().map(|d| d.next(relayed)) {
                None => {
                    let n = relayed.len();
                    self.write(&relayed[..n]);
                    n
                }
                Some(Ok(Piece::Data(n))) => {
                    let data = &relayed[..n];
                    self.write(data);
                    n
                }
                Some(Ok(Piece::Framing(n) | Piece::Done(n))) => n.max(1).min(relayed.len()),
                Some(Err(_)) => {
                    self.failed = true;
                    return;
                }
            };
            relayed = &relayed[n..];
        }
    }

    fn write(&mut self, data: &[u8]) {
        self.len += data.len() as u64;
        if self.len > self.max_len {
            self.failed = true;
            return;
        }
        self.hasher.update(data);
        if let Some(f) = self.file.as_mut() {
            if f.write_all(data).is_err() {
                self.failed = true;
            }
        }
    }

    pub fn is_failed(&self) -> bool {
        self.failed
    }

    /// Publishes the entry: body renamed into place, then the sidecar. Returns the loaded entry.
    pub fn publish(mut self) -> io::Result<CacheEntry> {
        if self.failed {
            return Err(io::Error::other("entry abandoned"));
        }
        if let Some(f) = self.file.take() {
            f.sync_data().ok();
        }
        let crc = self.hasher.clone().finalize();
        fs::rename(&self.tmp_body, self.stem.with_extension("body"))?;
        let tmp_meta = temp_path(&self.stem, "meta");
        write_file(&tmp_meta, &self.meta.encode(self.len, crc, self.variant))?;
        fs::rename(&tmp_meta, self.stem.with_extension("meta"))?;
        let body = map_body(&self.stem.with_extension("body"), self.len, None)
            .map_err(io::Error::other)?;
        Ok(CacheEntry::new(
            self.meta.clone(),
            body,
            (self.len, crc),
            self.stem.clone(),
            self.variant,
        ))
    }
}

impl Drop for PendingEntry {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = fs::remove_file(&self.tmp_body);
        }
    }
}

/// A compressed variant being written by the hit that compresses its identity entry: its
/// files (temporary until `Cache::publish_variant`) and the claim that keeps it the only
/// writer. Dropped unpublished, both go.
#[derive(Debug)]
pub struct VariantWriter {
    pub(super) body: PendingEntry,
    pub(super) claim: VariantClaim,
}

impl VariantWriter {
    /// The variant's body being written: append the compressed bytes as they are sent.
    pub fn body(&mut self) -> &mut PendingEntry {
        &mut self.body
    }
}
