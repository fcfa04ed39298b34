//! One cached response on disk: `NAME.body` (the body, served from a memory map) and `NAME.meta`
//! (the sidecar header), where NAME is the CRC32 of the full key in hex.
//!
//! Files are immutable once published. A response is written to temporary files and renamed into
//! place only after it arrived whole, body first and sidecar last, so a sidecar exists only for a
//! complete body. The sidecar carries the body's length and CRC32 and its own CRC32: a truncated,
//! corrupt or foreign file is refused when loaded and never served. Expiry and eviction unlink;
//! pibl never truncates or rewrites a file in place.
//!
//! Something else may (an operator, a full disk's repair, another program). So each entry keeps
//! the body file's identity as it was when mapped ([`FileStamp`]: size, inode, mtime, ctime) and
//! every hit compares it with one `stat` of the path ([`CacheEntry::file_unchanged`]); on any
//! difference the cache loads the entry again, which verifies the body CRC, or drops it.
//! Pibl's own code never reads a body through its map: checksums are computed with `read` from
//! the file, because reading a mapped page beyond a truncated file's end raises SIGBUS. The only
//! reader of the map is the kernel (the hit's `writev`), where such a page is an `EFAULT` for that
//! one client connection.
//!
//! Sidecar layout (integers little-endian):
//! `"PIBLCACH"` magic, u32 format version, u64 stored_at (Unix s), u64 initial_age (s),
//! u64 lifetime (s), u8 flags (bit 0: always revalidate; bit 1: a compressed variant), u16
//! status, u64 body length, u32 body CRC32, then length-prefixed (u32) strings: primary key,
//! vary pairs (u32 count, then name, value each), stored header block (`Name: value\r\n`
//! lines); for a variant, its u8 coding (1 br, 2 zstd, 3 gzip) and the u32 body CRC32 of the
//! identity entry it was made from; and last the u32 CRC32 of everything before it. An identity
//! entry's sidecar is the same as before variants existed.
//!
//! A compressed variant ([`Variant`], issue 15) is an entry of its own: the identity entry's
//! body compressed once in one coding, with the identity's key, freshness and validators (its
//! `ETag` weakened) and its own files, named by the CRC32 of the identity's full key plus `\0`
//! and the coding. It is served only while it agrees with its identity entry
//! ([`CacheEntry::is_variant_of`]: same key, same `stored_at`, made from the same body).

use std::ffi::{CStr, CString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::mem::MaybeUninit;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use memmap2::Mmap;

use crate::cache::policy::TARGETED_FIELDS;
use crate::compress::Coding;
use crate::http::chunked::{ChunkedDecoder, Piece};

const MAGIC: &[u8; 8] = b"PIBLCACH";
const VERSION: u32 = 1;
/// Longest sidecar accepted when loading.
const MAX_META: u64 = 1 << 20;
/// Sidecar flag bits.
const FLAG_REVALIDATE: u8 = 1;
const FLAG_VARIANT: u8 = 2;

/// What makes an entry a compressed variant of an identity entry: its coding, and the body it
/// was made from (the identity entry's body CRC32; with the same `stored_at`, the variant
/// agrees with that entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variant {
    pub coding: Coding,
    pub identity_crc: u32,
}

impl Variant {
    /// The coding's byte in the sidecar (0 is no coding).
    fn coding_id(self) -> u8 {
        match self.coding {
            Coding::Br => 1,
            Coding::Zstd => 2,
            Coding::Gzip => 3,
        }
    }

    fn coding_of(id: u8) -> Option<Coding> {
        match id {
            1 => Some(Coding::Br),
            2 => Some(Coding::Zstd),
            3 => Some(Coding::Gzip),
            _ => None,
        }
    }

    /// The bit of this coding in [`CacheEntry`]'s mask of variants being written.
    fn bit(coding: Coding) -> u8 {
        1 << (Variant {
            coding,
            identity_crc: 0,
        })
        .coding_id()
    }
}

/// The full key of an entry: an identity entry's is its meta's; a variant's adds `\0` and its
/// coding, so its files have a name of their own.
fn entry_key(meta: &EntryMeta, variant: Option<Variant>) -> String {
    let mut key = meta.full_key();
    if let Some(v) = variant {
        key.push('\0');
        key.push_str(v.coding.token());
    }
    key
}

/// The file name stem of an entry: the CRC32 of [`entry_key`] in hex.
fn entry_stem(meta: &EntryMeta, variant: Option<Variant>) -> String {
    format!(
        "{:08x}",
        crc32fast::hash(entry_key(meta, variant).as_bytes())
    )
}

/// What a cache entry is about and how long it lives; stored in the sidecar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryMeta {
    /// `GET http://host:port/target`.
    pub primary: String,
    /// Request header values the response varies on, lower-cased names, sorted.
    pub vary: Vec<(String, String)>,
    pub status: u16,
    /// End-to-end response headers as `Name: value\r\n` lines (no framing or hop-by-hop ones).
    pub headers: Vec<u8>,
    pub stored_at: u64,
    pub initial_age: u64,
    pub lifetime: u64,
    pub always_revalidate: bool,
}

impl EntryMeta {
    /// The full key: the primary key plus the varied request header values.
    pub fn full_key(&self) -> String {
        full_key(&self.primary, &self.vary)
    }

    /// The file name stem of the identity entry: CRC32 of the full key.
    pub fn file_stem(&self) -> String {
        entry_stem(self, None)
    }

    /// A head-only entry (stored from a HEAD response, key `HEAD http://...`): it answers HEAD
    /// requests only; its stored headers carry the `Content-Length` the GET would have.
    pub fn is_head_only(&self) -> bool {
        self.primary.starts_with("HEAD ")
    }

    /// A stored header's value, when it is text (see [`Self::header_bytes`]).
    pub fn header(&self, name: &str) -> Option<&str> {
        std::str::from_utf8(self.header_bytes(name)?).ok()
    }

    /// A stored header's value as sent.
    pub fn header_bytes(&self, name: &str) -> Option<&[u8]> {
        // Bytes, not text: a value elsewhere with obs-text (0x80-0xFF) must not hide this one.
        self.headers
            .split(|&b| b == b'\n')
            .filter_map(|line| {
                let colon = line.iter().position(|&b| b == b':')?;
                Some((&line[..colon], &line[colon + 1..]))
            })
            .find(|(n, _)| n.trim_ascii().eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v.trim_ascii())
    }

    fn encode(&self, body_len: u64, body_crc: u32, variant: Option<Variant>) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.headers.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        for n in [self.stored_at, self.initial_age, self.lifetime] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        let variant_flag = if variant.is_some() { FLAG_VARIANT } else { 0 };
        out.push(u8::from(self.always_revalidate) | variant_flag);
        out.extend_from_slice(&self.status.to_le_bytes());
        out.extend_from_slice(&body_len.to_le_bytes());
        out.extend_from_slice(&body_crc.to_le_bytes());
        put_bytes(&mut out, self.primary.as_bytes());
        out.extend_from_slice(&(self.vary.len() as u32).to_le_bytes());
        for (n, v) in &self.vary {
            put_bytes(&mut out, n.as_bytes());
            put_bytes(&mut out, v.as_bytes());
        }
        put_bytes(&mut out, &self.headers);
        if let Some(v) = variant {
            out.push(v.coding_id());
            out.extend_from_slice(&v.identity_crc.to_le_bytes());
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Parses a sidecar; returns the meta, body length, body CRC and what it is a variant of.
    fn decode(bytes: &[u8]) -> Option<(EntryMeta, u64, u32, Option<Variant>)> {
        let (content, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
        if crc32fast::hash(content).to_le_bytes() != crc {
            return None;
        }
        let mut r = Reader(content);
        if r.take(8)? != MAGIC || r.u32()? != VERSION {
            return None;
        }
        let stored_at = r.u64()?;
        let initial_age = r.u64()?;
        let lifetime = r.u64()?;
        let flags = r.take(1)?[0];
        let always_revalidate = flags & FLAG_REVALIDATE != 0;
        let status = u16::from_le_bytes(r.take(2)?.try_into().ok()?);
        let body_len = r.u64()?;
        let body_crc = r.u32()?;
        let primary = r.string()?;
        let count = r.u32()?;
        let mut vary = Vec::new();
        for _ in 0..count.min(64) {
            vary.push((r.string()?, r.string()?));
        }
        let headers = r.bytes()?.to_vec();
        let variant = if flags & FLAG_VARIANT != 0 {
            let coding = Variant::coding_of(r.take(1)?[0])?;
            Some(Variant {
                coding,
                identity_crc: r.u32()?,
            })
        } else {
            None
        };
        if !r.0.is_empty() || count > 64 {
            return None;
        }
        let meta = EntryMeta {
            primary,
            vary,
            status,
            headers,
            stored_at,
            initial_age,
            lifetime,
            always_revalidate,
        };
        Some((meta, body_len, body_crc, variant))
    }
}

/// `primary` plus `\n name: value` for each varied header.
pub fn full_key(primary: &str, vary: &[(String, String)]) -> String {
    let mut k = primary.to_string();
    for (n, v) in vary {
        k.push('\n');
        k.push_str(n);
        k.push_str(": ");
        k.push_str(v);
    }
    k
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (a, b) = self.0.split_at_checked(n)?;
        self.0 = b;
        Some(a)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn string(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }
}

/// What identifies a body file's content without reading it: compared on every hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    len: u64,
    dev: u64,
    ino: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileStamp {
    /// One stat(2) of `path`, straight to the fields compared (`fs::metadata` would build the C
    /// string and try statx on every hit); `None` when it is gone. An empty path (one that
    /// had a NUL byte, which cache names never do) is never found.
    fn stat(path: &CStr) -> Option<FileStamp> {
        let mut st = MaybeUninit::<libc::stat>::uninit();
        // SAFETY: `path` is NUL-terminated and `st` is a `struct stat` for stat(2) to fill.
        if unsafe { libc::stat(path.as_ptr(), st.as_mut_ptr()) } != 0 {
            return None;
        }
        // SAFETY: stat(2) succeeded, so it filled `st`.
        let st = unsafe { st.assume_init() };
        // The casts widen the platforms' own field types (dev_t, ino_t, time_t...) to the ones
        // `fs::Metadata` reports, so both ways of reading a stamp agree.
        #[allow(clippy::unnecessary_cast)]
        Some(FileStamp {
            len: st.st_size as u64,
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            mtime: (st.st_mtime as i64, st.st_mtime_nsec as i64),
            ctime: (st.st_ctime as i64, st.st_ctime_nsec as i64),
        })
    }

    fn of(m: &fs::Metadata) -> FileStamp {
        FileStamp {
            len: m.len(),
            dev: m.dev(),
            ino: m.ino(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

/// A published entry: its metadata and its body, mapped.
#[derive(Debug)]
pub struct CacheEntry {
    pub meta: EntryMeta,
    /// The body map, shared with refreshed copies of this entry; `None` for an empty body.
    body: Option<Arc<Mmap>>,
    pub body_len: u64,
    body_crc: u32,
    /// Path stem in the cache directory.
    pub path: PathBuf,
    /// `path` with `.body`, as the C string stat(2) takes: built once, stat'ed on every hit.
    body_path: CString,
    /// The body file as it was when mapped (and its CRC checked).
    stamp: FileStamp,
    /// Where the headers for clients end in `meta.headers`: without the targeted cache-control
    /// fields, and with `CDN-Cache-Control` (for `cdn_cache_control pass`). Those fields are kept
    /// last in the stored block so a hit writes one slice.
    client_end: usize,
    cdn_end: usize,
    /// When it was last served or stored (the cache's millisecond clock), for LRU eviction.
    pub last_used: AtomicU64,
    /// Set for a compressed variant: its coding and the identity body it was made from.
    pub variant: Option<Variant>,
    /// An identity entry's codings whose variant is being written (one bit each): at most one
    /// writer per entry and coding ([`VariantClaim`]).
    variants_writing: AtomicU8,
}

impl CacheEntry {
    fn new(
        mut meta: EntryMeta,
        body: (Option<Arc<Mmap>>, FileStamp),
        (body_len, body_crc): (u64, u32),
        path: PathBuf,
        variant: Option<Variant>,
    ) -> CacheEntry {
        let (client_end, cdn_end) = put_targeted_last(&mut meta.headers);
        CacheEntry {
            meta,
            body: body.0,
            body_len,
            body_crc,
            body_path: CString::new(path.with_extension("body").into_os_string().into_vec())
                .unwrap_or_default(),
            path,
            stamp: body.1,
            client_end,
            cdn_end,
            last_used: AtomicU64::new(0),
            variant,
            variants_writing: AtomicU8::new(0),
        }
    }

    /// The key the index tells entries apart by (a variant's has its coding after a `\0`).
    pub fn full_key(&self) -> String {
        entry_key(&self.meta, self.variant)
    }

    /// The key as an operator reads it (purge replies): a variant's coding in brackets.
    pub fn listed_key(&self) -> String {
        match self.variant {
            Some(v) => format!("{} [{}]", self.meta.full_key(), v.coding.token()),
            None => self.meta.full_key(),
        }
    }

    /// Whether `other` is stored under the same URL and varied request values (an identity
    /// entry and its variants are).
    pub fn same_url_and_vary(&self, other: &CacheEntry) -> bool {
        self.meta.primary == other.meta.primary && self.meta.vary == other.meta.vary
    }

    /// Whether this is a variant that agrees with `identity`: made from its body, with its
    /// key and the same stored time (a refresh or a new store of the identity makes its
    /// variants disagree: they are dropped, never served).
    pub fn is_variant_of(&self, identity: &CacheEntry) -> bool {
        identity.variant.is_none()
            && self
                .variant
                .is_some_and(|v| v.identity_crc == identity.body_crc)
            && self.meta.stored_at == identity.meta.stored_at
            && self.same_url_and_vary(identity)
    }

    /// The sidecar of this identity entry's variant in `coding`: its key and freshness, its
    /// header fields rewritten for the coding (`fields`: `compress::stored_fields`).
    pub fn variant_meta(&self, fields: Vec<u8>) -> EntryMeta {
        EntryMeta {
            headers: fields,
            ..self.meta.clone()
        }
    }

    /// Claims the writing of this identity entry's variant in `coding`; `None` while another
    /// exchange writes it. The claim is released when dropped.
    pub fn claim_variant(self: &Arc<Self>, coding: Coding) -> Option<VariantClaim> {
        let bit = Variant::bit(coding);
        let before = self.variants_writing.fetch_or(bit, Ordering::AcqRel);
        (before & bit == 0).then(|| VariantClaim {
            entry: self.clone(),
            bit,
        })
    }

    /// What a variant made from this entry's body in `coding` records of it.
    pub fn variant_in(&self, coding: Coding) -> Variant {
        Variant {
            coding,
            identity_crc: self.body_crc,
        }
    }

    /// The body, for the kernel to copy from (`writev`). Never read it in user space: if the
    /// file was truncated behind pibl's back, that raises SIGBUS.
    pub fn body(&self) -> &[u8] {
        self.body.as_deref().map_or(&[], |m| &m[..])
    }

    /// The stored header lines a client gets: without `Pibl-Cache-Control`, and without
    /// `CDN-Cache-Control` unless `pass_cdn` (`cdn_cache_control pass`).
    pub fn client_headers(&self, pass_cdn: bool) -> &[u8] {
        &self.meta.headers[..if pass_cdn {
            self.cdn_end
        } else {
            self.client_end
        }]
    }

    /// The body file opened for reading, when it is still the file that was mapped (its stamp
    /// compared through the open descriptor). For a body read in user space (compressed on a
    /// hit): `pread` from the file sees a truncation as a short read, where reading the map
    /// would raise SIGBUS.
    pub fn open_body(&self) -> Option<File> {
        use std::os::unix::ffi::OsStrExt;
        let path = std::ffi::OsStr::from_bytes(self.body_path.as_bytes());
        let file = File::open(path).ok()?;
        let stamp = FileStamp::of(&file.metadata().ok()?);
        (stamp == self.stamp).then_some(file)
    }

    /// One `stat` of the body file: true when it is still the file that was mapped and checked.
    /// False when it is gone, replaced, truncated, extended or written to since.
    pub fn file_unchanged(&self) -> bool {
        FileStamp::stat(&self.body_path) == Some(self.stamp)
    }

    /// Bytes on disk (body plus an estimate for the sidecar).
    pub fn disk_size(&self) -> u64 {
        self.body_len + 256 + self.meta.headers.len() as u64
    }

    /// Age in seconds at `now` (RFC 9111 §4.2.3, with the resident time since storing).
    pub fn age(&self, now: u64) -> u64 {
        self.meta.initial_age + now.saturating_sub(self.meta.stored_at)
    }

    pub fn is_fresh(&self, now: u64) -> bool {
        !self.meta.always_revalidate && self.age(now) < self.meta.lifetime
    }

    pub fn has_validator(&self) -> bool {
        self.meta.header_bytes("etag").is_some()
            || self.meta.header_bytes("last-modified").is_some()
    }

    /// Loads and verifies an entry from `stem.meta` and `stem.body`. Anything wrong (bad magic,
    /// checksum, a name that is not the key's CRC, a body of the wrong length or content) is an
    /// error, and the caller removes the files.
    pub fn load(stem: &Path) -> Result<CacheEntry, &'static str> {
        let meta_path = stem.with_extension("meta");
        let size = fs::metadata(&meta_path).map_err(|_| "no sidecar")?.len();
        if size > MAX_META {
            return Err("sidecar too large");
        }
        let bytes = fs::read(&meta_path).map_err(|_| "unreadable sidecar")?;
        let (meta, body_len, body_crc, variant) =
            EntryMeta::decode(&bytes).ok_or("corrupt sidecar")?;
        let expected = entry_stem(&meta, variant);
        if stem.file_name().and_then(|n| n.to_str()) != Some(expected.as_str()) {
            return Err("file name does not match the key");
        }
        let body = map_body(&stem.with_extension("body"), body_len, Some(body_crc))?;
        Ok(CacheEntry::new(
            meta,
            body,
            (body_len, body_crc),
            stem.to_path_buf(),
            variant,
        ))
    }

    /// A copy with new metadata (after a 304), sharing the body map; its sidecar is rewritten by
    /// rename, the body file is left alone.
    pub fn refreshed(&self, meta: EntryMeta) -> io::Result<CacheEntry> {
        let tmp = temp_path(&self.path, "meta");
        write_file(
            &tmp,
            &meta.encode(self.body_len, self.body_crc, self.variant),
        )?;
        fs::rename(&tmp, self.path.with_extension("meta"))?;
        Ok(CacheEntry::new(
            meta,
            (self.body.clone(), self.stamp),
            (self.body_len, self.body_crc),
            self.path.clone(),
            self.variant,
        ))
    }

    /// Unlinks both files. Maps stay valid for hits still being served.
    pub fn remove_files(&self) {
        remove_files(&self.path);
    }
}

/// The writing of one variant of an identity entry (at most one per entry and coding): the
/// entry's bit is cleared when this is dropped, published or not.
#[derive(Debug)]
pub struct VariantClaim {
    entry: Arc<CacheEntry>,
    bit: u8,
}

impl VariantClaim {
    /// The identity entry the variant is made from.
    pub fn identity(&self) -> &Arc<CacheEntry> {
        &self.entry
    }
}

impl Drop for VariantClaim {
    fn drop(&mut self) {
        self.entry
            .variants_writing
            .fetch_and(!self.bit, Ordering::AcqRel);
    }
}

pub fn remove_files(stem: &Path) {
    let _ = fs::remove_file(stem.with_extension("meta"));
    let _ = fs::remove_file(stem.with_extension("body"));
}

/// Opens and maps a body file of `len` bytes, recording its stamp. With `crc`, the content is
/// checked first, read from the file descriptor (never through the map: see the module doc).
fn map_body(
    path: &Path,
    len: u64,
    crc: Option<u32>,
) -> Result<(Option<Arc<Mmap>>, FileStamp), &'static str> {
    let mut file = File::open(path).map_err(|_| "no body file")?;
    let stamp = FileStamp::of(&file.metadata().map_err(|_| "unreadable body")?);
    if stamp.len != len {
        return Err("body length mismatch");
    }
    if let Some(crc) = crc {
        if file_crc(&mut file, len).map_err(|_| "unreadable body")? != Some(crc) {
            return Err("body checksum mismatch");
        }
    }
    if len == 0 {
        return Ok((None, stamp));
    }
    // SAFETY: pibl never modifies a cache file after it is renamed into place (only unlinks it).
    // If something else truncates it, only the kernel reads the map (writev: EFAULT, one client
    // connection), and the stamp check drops the entry at its next lookup.
    let map = unsafe { Mmap::map(&file) }.map_err(|_| "cannot map body")?;
    Ok((Some(Arc::new(map)), stamp))
}

/// CRC32 of the first `len` bytes read from `file`; `None` when it holds fewer or more.
fn file_crc(file: &mut File, len: u64) -> io::Result<Option<u32>> {
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        total += n as u64;
        if total > len {
            return Ok(None);
        }
        hasher.update(&buf[..n]);
    }
    Ok((total == len).then(|| hasher.finalize()))
}

/// Reorders a stored header block so the targeted cache-control fields come last
/// (`CDN-Cache-Control`, then `Pibl-Cache-Control`, each in their order), and returns where the
/// lines for clients end and where the `CDN-Cache-Control` lines end.
fn put_targeted_last(headers: &mut Vec<u8>) -> (usize, usize) {
    let rank = |line: &[u8]| -> usize {
        let name = line
            .split(|&b| b == b':')
            .next()
            .unwrap_or(&[])
            .trim_ascii();
        // TARGETED_FIELDS is most specific first: pibl's own ranks last.
        match TARGETED_FIELDS
            .iter()
            .position(|t| name.eq_ignore_ascii_case(t.as_bytes()))
        {
            Some(i) => TARGETED_FIELDS.len() - i,
            None => 0,
        }
    };
    let lines = || headers.split_inclusive(|&b| b == b'\n');
    let mut ends = [0usize; 3];
    let mut sorted = true;
    let mut last = 0;
    for line in lines() {
        let r = rank(line);
        sorted &= r >= last;
        last = r;
        for end in &mut ends[r..] {
            *end += line.len();
        }
    }
    if !sorted {
        let mut out = Vec::with_capacity(headers.len());
        for r in 0..3 {
            for line in lines().filter(|l| rank(l) == r) {
                out.extend_from_slice(line);
            }
        }
        *headers = out;
    }
    (ends[0], ends[1])
}

fn temp_path(stem: &Path, ext: &str) -> PathBuf {
    use std::sync::atomic::AtomicUsize;
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = stem.parent().unwrap_or(Path::new("."));
    let name = stem.file_name().and_then(|n| n.to_str()).unwrap_or("entry");
    dir.join(format!(
        ".tmp-{name}-{}-{}.{ext}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = OpenOptions::new().write(true).create_new(true).open(path)?;
    f.write_all(bytes)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> EntryMeta {
        EntryMeta {
            primary: "GET http://a:80/x".into(),
            vary: vec![("accept".into(), "text/html".into())],
            status: 200,
            headers: b"Content-Type: text/plain\r\nETag: \"1\"\r\n".to_vec(),
            stored_at: 1000,
            initial_age: 2,
            lifetime: 60,
            always_revalidate: false,
        }
    }

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("pibl-entry-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn sidecar_round_trips_and_detects_corruption() {
        let m = meta();
        let bytes = m.encode(5, 7, None);
        assert_eq!(EntryMeta::decode(&bytes), Some((m.clone(), 5, 7, None)));
        for i in [0, 9, 20, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[i] ^= 1;
            assert_eq!(EntryMeta::decode(&bad), None, "flip at {i}");
        }
        assert_eq!(EntryMeta::decode(&bytes[..bytes.len() - 3]), None);
        assert_eq!(m.header("etag"), Some("\"1\""));
    }

    #[test]
    fn published_entry_loads_and_damaged_ones_do_not() {
        let dir = tmpdir("pub");
        let mut p = PendingEntry::create(&dir, meta(), true, 1 << 20).unwrap();
        p.append(b"5\r\nhel");
        p.append(b"lo\r\n0\r\n\r\n");
        let e = p.publish().unwrap();
        assert_eq!(e.body(), b"hello");
        let loaded = CacheEntry::load(&e.path).unwrap();
        assert_eq!(loaded.body(), b"hello");
        assert_eq!(loaded.meta, meta());
        assert!(loaded.is_fresh(1000) && !loaded.is_fresh(1058));

        // Truncated body: refused.
        fs::write(e.path.with_extension("body"), b"hell").unwrap();
        assert_eq!(
            CacheEntry::load(&e.path).unwrap_err(),
            "body length mismatch"
        );
        // Same length, other bytes: refused.
        fs::write(e.path.with_extension("body"), b"jello").unwrap();
        assert_eq!(
            CacheEntry::load(&e.path).unwrap_err(),
            "body checksum mismatch"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn targeted_fields_go_last_and_clients_get_the_head_without_them() {
        let mut h =
            b"Pibl-Cache-Control: max-age=1\r\nA: 1\r\nCDN-Cache-Control: max-age=2\r\nB: 2\r\n"
                .to_vec();
        let (client_end, cdn_end) = put_targeted_last(&mut h);
        assert_eq!(
            h,
            b"A: 1\r\nB: 2\r\nCDN-Cache-Control: max-age=2\r\nPibl-Cache-Control: max-age=1\r\n"
        );
        assert_eq!(&h[..client_end], b"A: 1\r\nB: 2\r\n");
        assert_eq!(&h[client_end..cdn_end], b"CDN-Cache-Control: max-age=2\r\n");
        let mut plain = b"A: 1\r\n".to_vec();
        assert_eq!(put_targeted_last(&mut plain), (6, 6));
    }

    #[test]
    fn a_changed_body_file_is_noticed() {
        let dir = tmpdir("stamp");
        let mut p = PendingEntry::create(&dir, meta(), false, 1 << 20).unwrap();
        p.append(b"hello");
        let e = p.publish().unwrap();
        assert!(e.file_unchanged());
        // File times move in clock ticks on kernels without multigrain timestamps.
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::write(e.path.with_extension("body"), b"jello").unwrap();
        assert!(!e.file_unchanged());
        fs::remove_file(e.path.with_extension("body")).unwrap();
        assert!(!e.file_unchanged());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn abandoned_entry_leaves_no_file() {
        let dir = tmpdir("abandon");
        let mut p = PendingEntry::create(&dir, meta(), false, 4).unwrap();
        p.append(b"too long");
        assert!(p.is_failed());
        drop(p);
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
        fs::remove_dir_all(&dir).unwrap();
    }
}
