//! The persistent response cache, shared by all workers.
//!
//! Entries live as files in `cache_dir` (see [`entry`] for the format) and, while pibl runs, in an
//! in-memory index of open maps keyed by the CRC32 of the primary key. Every lookup compares the
//! full stored key, so a CRC collision is a miss, never another URL's content. At start-up the
//! directory is indexed and checked, so a restarted pibl answers hits at once without a backend.
//!
//! The index is split into 256 shards by the top bits of that CRC, each behind its own
//! read-write lock on its own cache lines: a hit takes one shard's read lock and allocates
//! nothing, so workers on many cores meet on a lock only when they look up keys of the same
//! shard (and wait only for a writer of that shard: a publish, refresh or removal).
//!
//! Concurrent misses for one key are collapsed: the first becomes the filler, the others wait
//! (bounded) for it to publish and are served from the result.
//!
//! A compressible entry may have compressed variants (one per coding, see [`entry`]), made by
//! the first hit that compresses it ([`Cache::begin_variant`], [`Cache::publish_variant`]) and
//! found with [`Cache::lookup_variant`] after its identity entry. They live in the identity
//! entry's slot, count toward `max_bytes`, and go with it: dropped when it is removed, evicted,
//! purged, invalidated or refreshed, and refused when they no longer agree with it.

pub mod entry;
pub mod policy;

use std::collections::HashMap;
use std::fs;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant, SystemTime};

use mio::Waker;

pub use entry::{CacheEntry, EntryMeta, PendingEntry, Variant, VariantClaim};
pub use policy::{Freshness, RequestRule, ResponseRule};

use crate::compress::{Coding, CompressedHead};
use crate::http::name_is;

/// Cache settings from the config and command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    pub dir: PathBuf,
    pub ttl: Duration,
    pub heuristic: bool,
    /// Disk budget; least recently used entries are evicted beyond it.
    pub max_bytes: u64,
    /// Largest body stored.
    pub max_object: u64,
    /// How long a request waits for another request filling the same key.
    pub fill_wait: Duration,
}

/// Unix seconds now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The primary key: method, scheme, host with port, and the full request target with query.
pub fn primary_key(host: &str, target: &str) -> String {
    UrlKey::get(host, target).to_key()
}

/// A primary key as its parts (`GET http://` or `HEAD http://`, the host lowercased, `:80`
/// when it has no port, the target). [`Self::with_key`] joins them on the stack for a lookup, so
/// a hit allocates no key; [`Self::to_key`] builds the `String` a miss stores and fills under.
#[derive(Debug, Clone, Copy)]
pub struct UrlKey<'a> {
    /// `GET http://`, or `HEAD http://` for a head-only entry ([`head_key`]).
    prefix: &'static str,
    /// As the request named it; the key has it in lowercase.
    host: &'a str,
    /// `:80` when `host` has no port, else empty.
    port: &'static str,
    target: &'a str,
}

impl<'a> UrlKey<'a> {
    /// Keys up to this long are joined on the stack; longer ones (rare) in a `String`.
    const STACK_KEY: usize = 128;

    /// The key of a GET of `target` on `host`.
    pub fn get(host: &'a str, target: &'a str) -> UrlKey<'a> {
        // After an IPv6 literal's `]`, if any: a byte scan, the host is short.
        let b = host.as_bytes();
        let after_literal = b.iter().rposition(|&c| c == b']').map_or(b, |i| &b[i..]);
        let has_port = after_literal.contains(&b':');
        UrlKey {
            prefix: "GET http://",
            host,
            port: if has_port { "" } else { ":80" },
            target,
        }
    }

    /// The key of the head-only entry for the same URL.
    pub fn head_only(self) -> UrlKey<'a> {
        UrlKey {
            prefix: "HEAD http://",
            ..self
        }
    }

    /// The key as one `String`, built in one allocation.
    pub fn to_key(&self) -> String {
        let mut key = String::with_capacity(self.len());
        key.push_str(self.prefix);
        key.push_str(self.host);
        key[self.prefix.len()..].make_ascii_lowercase();
        key.push_str(self.port);
        key.push_str(self.target);
        key
    }

    /// Runs `f` with the key joined in a stack buffer: what [`Self::to_key`] returns, without
    /// allocating (unless the key is longer than [`Self::STACK_KEY`]).
    pub fn with_key<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        let len = self.len();
        if len > Self::STACK_KEY {
            return f(&self.to_key());
        }
        let mut buf = [0u8; Self::STACK_KEY];
        let mut at = 0;
        for part in [self.prefix, self.host, self.port, self.target] {
            buf[at..at + part.len()].copy_from_slice(part.as_bytes());
            at += part.len();
        }
        let host = self.prefix.len()..self.prefix.len() + self.host.len();
        buf[host].make_ascii_lowercase();
        // Joined `str`s with ASCII lowercased are UTF-8; the check is the safe way to say so.
        match std::str::from_utf8(&buf[..len]) {
            Ok(key) => f(key),
            Err(_) => f(&self.to_key()),
        }
    }

    fn len(&self) -> usize {
        self.prefix.len() + self.host.len() + self.port.len() + self.target.len()
    }
}

/// The key of a head-only entry for the URL of `primary` (`GET http://...` → `HEAD http://...`):
/// a GET never looks it up, so it can never answer a GET with an empty body.
pub fn head_key(primary: &str) -> String {
    let url = primary.strip_prefix("GET ").unwrap_or(primary);
    let mut key = String::with_capacity(5 + url.len());
    key.push_str("HEAD ");
    key.push_str(url);
    key
}

/// The request target part of a primary key (`GET http://host:port/path?q` → `/path?q`; also of
/// a head-only entry's key).
fn target_of(primary: &str) -> Option<&str> {
    let rest = primary
        .strip_prefix("GET http://")
        .or_else(|| primary.strip_prefix("HEAD http://"))?;
    rest.find('/').map(|i| &rest[i..])
}

/// The request's values of the headers an entry varies on (several lines joined with ", ").
pub fn vary_values(names: &[String], request: &[httparse::Header<'_>]) -> Vec<(String, String)> {
    names
        .iter()
        .map(|n| {
            let v: Vec<String> = request
                .iter()
                .filter(|h| name_is(h.name, n))
                .map(|h| String::from_utf8_lossy(h.value.trim_ascii()).into_owned())
                .collect();
            (n.clone(), v.join(", "))
        })
        .collect()
}

/// Whether the request's value of header `name` is `stored`, as [`vary_values`] would build it
/// (each line trimmed, several joined with ", ", invalid UTF-8 as U+FFFD), compared in place:
/// this runs on every cache hit, so it builds no string.
fn vary_value_is(name: &str, stored: &str, request: &[httparse::Header<'_>]) -> bool {
    let mut rest = stored.as_bytes();
    for (i, h) in request.iter().filter(|h| name_is(h.name, name)).enumerate() {
        if i > 0 {
            let Some(r) = rest.strip_prefix(b", ") else {
                return false;
            };
            rest = r;
        }
        for chunk in h.value.trim_ascii().utf8_chunks() {
            let Some(r) = rest.strip_prefix(chunk.valid().as_bytes()) else {
                return false;
            };
            rest = r;
            if !chunk.invalid().is_empty() {
                let Some(r) = rest.strip_prefix("\u{FFFD}".as_bytes()) else {
                    return false;
                };
                rest = r;
            }
        }
    }
    rest.is_empty()
}

/// Result of a lookup.
#[derive(Debug)]
pub enum Lookup {
    Fresh(Arc<CacheEntry>),
    /// Stored but must be revalidated before use (it has a validator).
    Stale(Arc<CacheEntry>),
    Miss,
}

/// How many shards the index has: enough that the hot keys of 64 cores rarely share one. A power
/// of two, as a shard is chosen by the top bits of the key's CRC.
const SHARDS: usize = 256;
const _: () = assert!(SHARDS.is_power_of_two() && SHARDS > 1);

/// The entries of one shard by the CRC32 of their primary key; several when keys collide or a
/// response varies.
type Slots = HashMap<u32, Vec<Arc<CacheEntry>>, BuildHasherDefault<SlotHasher>>;

/// Hashes a slot (already a CRC32) with one multiply instead of SipHash: the bits the map uses
/// (low for the bucket, top for the tag) then depend on all of the CRC's. It gives an attacker
/// nothing the CRC did not: colliding CRCs are as easy to make as colliding buckets, and both
/// only lengthen one shard's scan.
#[derive(Default)]
struct SlotHasher(u64);

impl Hasher for SlotHasher {
    fn write_u32(&mut self, slot: u32) {
        self.0 = u64::from(slot).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    /// Only `u32` slots are hashed; anything else is folded in byte by byte all the same.
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// One shard of the index, aligned to 128 bytes (two cache lines, the unit x86 prefetches) so the
/// lock words of neighbouring shards never share a line.
#[repr(align(128))]
#[derive(Default)]
struct Shard(RwLock<Slots>);

impl Shard {
    /// A poisoned lock only means a thread panicked while holding it; the map is still whole.
    fn read(&self) -> RwLockReadGuard<'_, Slots> {
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Slots> {
        self.0.write().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct Cache {
    pub config: CacheConfig,
    /// `SHARDS` shards; a key lives in the one [`Cache::shard`] picks.
    shards: Box<[Shard]>,
    bytes: AtomicU64,
    /// The clock of `CacheEntry::last_used`.
    opened: Instant,
    /// Primary keys being filled by a request in flight.
    filling: Mutex<HashMap<String, ()>>,
    /// Keys whose last response could not be stored, until when (Unix s): requests for them go
    /// straight to a backend instead of queueing behind one another.
    uncacheable: Mutex<HashMap<String, u64>>,
    /// Bumped on every publish or abandoned fill, so waiting requests look again.
    generation: AtomicU64,
    waiting: AtomicUsize,
    wakers: Mutex<Vec<Arc<Waker>>>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("config", &self.config)
            .field("bytes", &self.bytes)
            .finish()
    }
}

impl Cache {
    /// Opens (creating) the cache directory and indexes what is there: complete, verified entries
    /// are kept (expired ones only if they can be revalidated); everything else is removed.
    pub fn open(config: CacheConfig) -> Result<Cache, String> {
        fs::create_dir_all(&config.dir)
            .map_err(|e| format!("cannot create cache_dir {}: {e}", config.dir.display()))?;
        let cache = Cache {
            config,
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            bytes: AtomicU64::new(0),
            opened: Instant::now(),
            filling: Mutex::default(),
            uncacheable: Mutex::default(),
            generation: AtomicU64::new(0),
            waiting: AtomicUsize::new(0),
            wakers: Mutex::default(),
        };
        let (kept, dropped) = cache.load_dir()?;
        log::info!(
            "cache {}: {} ({}) loaded, {dropped} expired or broken removed",
            cache.config.dir.display(),
            crate::text::counted(kept, "entry", "entries"),
            crate::text::counted(
                cache.bytes.load(Ordering::Relaxed) as usize,
                "byte",
                "bytes"
            )
        );
        cache.evict_to_budget();
        Ok(cache)
    }

    fn load_dir(&self) -> Result<(usize, usize), String> {
        let dir = &self.config.dir;
        let listing = fs::read_dir(dir)
            .map_err(|e| format!("cannot read cache_dir {}: {e}", dir.display()))?;
        let now = unix_now();
        let (mut kept, mut dropped) = (0, 0);
        let mut stems = Vec::new();
        for item in listing.flatten() {
            let path = item.path();
            let name = item.file_name().to_string_lossy().into_owned();
            if name.starts_with(".tmp-") {
                // Left by a crash mid-write: never complete, never served.
                let _ = fs::remove_file(&path);
                continue;
            }
            match path.extension().and_then(|e| e.to_str()) {
                Some("meta") => stems.push(path.with_extension("")),
                Some("body") if !path.with_extension("meta").exists() => {
                    let _ = fs::remove_file(&path);
                    dropped += 1;
                }
                _ => {}
            }
        }
        // Oldest first, so the use ranks follow the order entries were stored in.
        let mut loaded: Vec<(PathBuf, Result<CacheEntry, &'static str>)> = stems
            .into_iter()
            .map(|s| {
                let e = CacheEntry::load(&s);
                (s, e)
            })
            .collect();
        // Identity entries before their variants (which are stored at the same time), so a
        // variant finds the entry it must agree with.
        loaded.sort_by_key(|(_, e)| {
            e.as_ref()
                .map_or((0, false), |e| (e.meta.stored_at, e.variant.is_some()))
        });
        for (stem, loaded) in loaded {
            match loaded {
                Ok(e) if e.is_fresh(now) || e.has_validator() => {
                    if self.insert(Arc::new(e)) {
                        kept += 1;
                    } else {
                        // A variant whose identity entry is gone or was refreshed since.
                        entry::remove_files(&stem);
                        dropped += 1;
                    }
                }
                Ok(_) => {
                    entry::remove_files(&stem);
                    dropped += 1;
                }
                Err(why) => {
                    log::warn!("cache: removing {}: {why}", stem.display());
                    entry::remove_files(&stem);
                    dropped += 1;
                }
            }
        }
        Ok((kept, dropped))
    }

    fn slot(primary: &str) -> u32 {
        crc32fast::hash(primary.as_bytes())
    }

    /// The shard holding `slot`: its top bits, so the low bits the map's buckets use still vary
    /// within a shard.
    fn shard(&self, slot: u32) -> &Shard {
        const SHIFT: u32 = 32 - SHARDS.trailing_zeros();
        &self.shards[(slot >> SHIFT) as usize]
    }

    /// Puts an entry in the index, replacing the one with its key. An identity entry drops the
    /// variants of its URL that do not agree with it; a variant is refused (false) unless its
    /// identity entry is there and agrees.
    fn insert(&self, e: Arc<CacheEntry>) -> bool {
        let slot = Self::slot(&e.meta.primary);
        let mut slots = self.shard(slot).write();
        if e.variant.is_some()
            && !slots
                .get(&slot)
                .is_some_and(|list| list.iter().any(|i| e.is_variant_of(i)))
        {
            return false;
        }
        let list = slots.entry(slot).or_default();
        let key = e.full_key();
        if let Some(old) = list.iter().position(|o| o.full_key() == key) {
            let old = list.swap_remove(old);
            self.bytes.fetch_sub(old.disk_size(), Ordering::Relaxed);
        }
        // Another key whose files had the same name was just overwritten on disk.
        let stem = e.path.clone();
        let before = list.len();
        list.retain(|o| {
            let keep = o.path != stem;
            if !keep {
                self.bytes.fetch_sub(o.disk_size(), Ordering::Relaxed);
            }
            keep
        });
        if list.len() != before {
            log::info!(
                "cache: CRC collision at {}, older entry dropped",
                stem.display()
            );
        }
        let stale = if e.variant.is_none() {
            self.take_variants(list, &e, true)
        } else {
            Vec::new()
        };
        self.bytes.fetch_add(e.disk_size(), Ordering::Relaxed);
        list.push(e);
        drop(slots);
        for v in &stale {
            self.unlink_unless_reused(v);
        }
        true
    }

    /// Takes out of `list` (one slot, its shard write-locked) the variants of `identity`'s URL
    /// and varied values, but those that agree with it when `keep_agreeing`; their bytes are no
    /// longer counted, their files are the caller's to unlink.
    fn take_variants(
        &self,
        list: &mut Vec<Arc<CacheEntry>>,
        identity: &CacheEntry,
        keep_agreeing: bool,
    ) -> Vec<Arc<CacheEntry>> {
        let mut taken = Vec::new();
        list.retain(|o| {
            let goes = o.variant.is_some()
                && o.same_url_and_vary(identity)
                && !(keep_agreeing && o.is_variant_of(identity));
            if goes {
                self.bytes.fetch_sub(o.disk_size(), Ordering::Relaxed);
                taken.push(o.clone());
            }
            !goes
        });
        taken
    }

    /// Finds the entry for `primary` whose varied headers match the request's. An entry whose
    /// body file changed on disk since it was mapped is loaded again (which checks its CRC) or,
    /// failing that, dropped: a miss.
    pub fn lookup(&self, primary: &str, request: &[httparse::Header<'_>], now: u64) -> Lookup {
        let found = {
            let slot = Self::slot(primary);
            let slots = self.shard(slot).read();
            slots.get(&slot).and_then(|list| {
                list.iter()
                    .find(|e| {
                        e.variant.is_none()
                            && e.meta.primary == primary
                            && e.meta
                                .vary
                                .iter()
                                .all(|(n, v)| vary_value_is(n, v, request))
                    })
                    .cloned()
            })
        };
        let found = match found {
            Some(e) if !e.file_unchanged() => self.reload_changed(&e),
            found => found,
        };
        match found {
            Some(e) if e.is_fresh(now) => {
                self.touch(&e);
                Lookup::Fresh(e)
            }
            Some(e) if e.has_validator() => Lookup::Stale(e),
            Some(e) => {
                self.remove(&e);
                Lookup::Miss
            }
            None => Lookup::Miss,
        }
    }

    /// The body file of `e` is not the one that was mapped: load the entry from disk again (a
    /// file that was only touched, or a newer copy pibl published under the same name, passes
    /// the CRC check) or drop it. Files deleted by hand are just a miss.
    fn reload_changed(&self, e: &Arc<CacheEntry>) -> Option<Arc<CacheEntry>> {
        match CacheEntry::load(&e.path) {
            Ok(fresh) if fresh.full_key() == e.full_key() => {
                let fresh = Arc::new(fresh);
                if self.insert(fresh.clone()) {
                    Some(fresh)
                } else {
                    // A variant whose identity entry went meanwhile.
                    self.remove(e);
                    None
                }
            }
            outcome => {
                let why = outcome.err().unwrap_or("now holds another key");
                log::warn!(
                    "cache: {} changed on disk ({why}): dropped",
                    e.path.display()
                );
                self.remove(e);
                None
            }
        }
    }

    /// Marks an entry as just used (served, stored or refreshed), for least-recently-used
    /// eviction: milliseconds since the cache opened, so entries found on disk at start, never
    /// touched, rank 0, below any used since. A hot entry is written at most once a
    /// millisecond, not on every hit by every worker.
    fn touch(&self, e: &CacheEntry) {
        let now = self.opened.elapsed().as_millis() as u64 + 1;
        if e.last_used.load(Ordering::Relaxed) < now {
            e.last_used.store(now, Ordering::Relaxed);
        }
    }

    /// Starts storing a response; `None` when the file cannot be created.
    pub fn begin_store(&self, meta: EntryMeta, chunked: bool) -> Option<PendingEntry> {
        match PendingEntry::create(&self.config.dir, meta, chunked, self.config.max_object) {
            Ok(p) => Some(p),
            Err(e) => {
                log::warn!(
                    "cache: cannot create an entry in {}: {e}",
                    self.config.dir.display()
                );
                None
            }
        }
    }

    /// Publishes a complete response and evicts beyond the budget.
    pub fn publish(&self, pending: PendingEntry) {
        match pending.publish() {
            Ok(e) => {
                let e = Arc::new(e);
                self.touch(&e);
                self.insert(e);
                self.evict_to_budget();
            }
            Err(e) => log::warn!("cache: cannot publish an entry: {e}"),
        }
        self.changed();
    }

    /// The compressed variant of `identity` (a fresh entry just looked up) in `coding`, when
    /// one was made and still agrees with it; one `stat` checks its body file, as for any hit.
    pub fn lookup_variant(&self, identity: &CacheEntry, coding: Coding) -> Option<Arc<CacheEntry>> {
        let found = {
            let slot = Self::slot(&identity.meta.primary);
            let slots = self.shard(slot).read();
            slots
                .get(&slot)?
                .iter()
                .find(|v| {
                    v.variant.is_some_and(|v| v.coding == coding) && v.is_variant_of(identity)
                })
                .cloned()?
        };
        let found = if found.file_unchanged() {
            found
        } else {
            self.reload_changed(&found)?
        };
        self.touch(&found);
        Some(found)
    }

    /// Starts writing the variant of `identity` in `coding` (its body: the compressed bytes of
    /// a hit being compressed, appended as they are sent). `None` when another exchange is
    /// writing it (one writer per entry and coding), the entry is itself a variant or
    /// head-only, or the file cannot be created.
    pub fn begin_variant(
        &self,
        identity: &Arc<CacheEntry>,
        coding: Coding,
    ) -> Option<VariantWriter> {
        if identity.variant.is_some() || identity.meta.is_head_only() {
            return None;
        }
        let claim = identity.claim_variant(coding)?;
        let fields = CompressedHead::stored_fields(coding, &identity.meta.headers);
        let meta = identity.variant_meta(fields);
        let variant = identity.variant_in(coding);
        match PendingEntry::create_variant(&self.config.dir, meta, variant, self.config.max_object)
        {
            Ok(body) => Some(VariantWriter { body, claim }),
            Err(e) => {
                log::warn!(
                    "cache: cannot create a variant in {}: {e}",
                    self.config.dir.display()
                );
                None
            }
        }
    }

    /// Publishes a variant written whole (through the same files and renames as any entry),
    /// unless its identity entry changed meanwhile; evicts beyond the budget.
    pub fn publish_variant(&self, writer: VariantWriter) {
        let VariantWriter { body, claim } = writer;
        match body.publish() {
            Ok(e) => {
                let e = Arc::new(e);
                self.touch(&e);
                if self.insert(e.clone()) {
                    self.evict_to_budget();
                } else {
                    self.unlink_unless_reused(&e);
                }
            }
            Err(e) => log::warn!("cache: cannot publish a variant: {e}"),
        }
        drop(claim);
    }

    /// Replaces an entry's metadata after a successful revalidation. Its variants are dropped
    /// (their fields were made from the old ones); the next compressed hits make them again.
    pub fn refresh(&self, old: &CacheEntry, meta: EntryMeta) -> Option<Arc<CacheEntry>> {
        let dropped = {
            let slot = Self::slot(&old.meta.primary);
            let mut slots = self.shard(slot).write();
            match slots.get_mut(&slot) {
                Some(list) => self.take_variants(list, old, false),
                None => Vec::new(),
            }
        };
        for v in &dropped {
            v.remove_files();
        }
        match old.refreshed(meta) {
            Ok(e) => {
                let e = Arc::new(e);
                self.touch(&e);
                self.insert(e.clone());
                Some(e)
            }
            Err(err) => {
                log::warn!("cache: cannot refresh {}: {err}", old.path.display());
                None
            }
        }
    }

    /// Drops every variant stored for `primary`, and its head-only entries (after a successful
    /// unsafe request).
    pub fn invalidate(&self, primary: &str) {
        let head = head_key(primary);
        let mut victims: Vec<Arc<CacheEntry>> = Vec::new();
        for key in [primary, head.as_str()] {
            let slot = Self::slot(key);
            let slots = self.shard(slot).read();
            victims.extend(
                slots
                    .get(&slot)
                    .into_iter()
                    .flatten()
                    .filter(|e| e.meta.primary == key)
                    .cloned(),
            );
        }
        for e in victims {
            self.remove(&e);
        }
    }

    /// Drops everything (admin `PURGE /cache`, tests); returns how many entries. Hits being
    /// served keep their maps; fills in flight publish afterwards as usual.
    pub fn purge_all(&self) -> usize {
        self.purge_where(|_| true).len()
    }

    /// Drops every variant stored for one URL (`primary` as [`primary_key`] makes it), the
    /// head-only entries included. Returns the full keys dropped.
    pub fn purge(&self, primary: &str) -> Vec<String> {
        let head = head_key(primary);
        self.purge_where(|e| e.meta.primary == primary || e.meta.primary == head)
    }

    /// Drops the entries for an origin-form `target` (path and query, as the client sent it)
    /// on every host. Returns the full keys dropped.
    pub fn purge_target(&self, target: &str) -> Vec<String> {
        self.purge_where(|e| target_of(&e.meta.primary) == Some(target))
    }

    /// Takes the matching entries out of the index in one step, under the write locks of all
    /// shards (taken in order; no other path holds two), then unlinks their files after they are
    /// released, so workers never wait on the unlinks.
    fn purge_where(&self, matches: impl Fn(&CacheEntry) -> bool) -> Vec<String> {
        let victims: Vec<Arc<CacheEntry>> = {
            let mut locked: Vec<RwLockWriteGuard<'_, Slots>> =
                self.shards.iter().map(Shard::write).collect();
            let mut out = Vec::new();
            for slots in &mut locked {
                slots.retain(|_, list| {
                    list.retain(|e| {
                        if matches(e) {
                            out.push(e.clone());
                            false
                        } else {
                            true
                        }
                    });
                    !list.is_empty()
                });
            }
            let bytes: u64 = out.iter().map(|e| e.disk_size()).sum();
            self.bytes.fetch_sub(bytes, Ordering::Relaxed);
            out
        };
        for e in &victims {
            self.unlink_unless_reused(e);
        }
        victims.iter().map(|e| e.listed_key()).collect()
    }

    /// Unlinks a dropped entry's files, unless a newer entry for the same key was published
    /// under the same file names since it left the index.
    fn unlink_unless_reused(&self, e: &CacheEntry) {
        let reused = {
            let slot = Self::slot(&e.meta.primary);
            self.shard(slot)
                .read()
                .get(&slot)
                .is_some_and(|l| l.iter().any(|o| o.path == e.path))
        };
        if !reused {
            e.remove_files();
        }
    }

    /// Drops an entry and its files; an identity entry's variants go with it.
    fn remove(&self, e: &Arc<CacheEntry>) {
        let slot = Self::slot(&e.meta.primary);
        let mut slots = self.shard(slot).write();
        if let Some(list) = slots.get_mut(&slot) {
            if let Some(i) = list.iter().position(|o| Arc::ptr_eq(o, e)) {
                list.swap_remove(i);
                let variants = if e.variant.is_none() {
                    self.take_variants(list, e, false)
                } else {
                    Vec::new()
                };
                if list.is_empty() {
                    slots.remove(&slot);
                }
                self.bytes.fetch_sub(e.disk_size(), Ordering::Relaxed);
                e.remove_files();
                for v in variants {
                    v.remove_files();
                }
            }
        }
    }

    /// Removes least recently used entries until the bytes held fit the budget. Each round scans
    /// the shards one at a time under their read locks (lookups elsewhere go on).
    fn evict_to_budget(&self) {
        while self.bytes.load(Ordering::Relaxed) > self.config.max_bytes {
            let mut oldest: Option<(u64, Arc<CacheEntry>)> = None;
            for shard in self.shards.iter() {
                let slots = shard.read();
                for e in slots.values().flatten() {
                    let used = e.last_used.load(Ordering::Relaxed);
                    if oldest.as_ref().is_none_or(|(o, _)| used < *o) {
                        oldest = Some((used, e.clone()));
                    }
                }
            }
            match oldest {
                Some((_, e)) => self.remove(&e),
                None => break,
            }
        }
    }

    /// Entries and bytes held.
    pub fn stats(&self) -> (usize, u64) {
        let entries = self
            .shards
            .iter()
            .map(|shard| shard.read().values().map(Vec::len).sum::<usize>())
            .sum();
        (entries, self.bytes.load(Ordering::Relaxed))
    }

    // ---- collapsing concurrent misses ---------------------------------------------------------

    /// Claims the fill of `primary`. False when another request is already filling it.
    pub fn try_begin_fill(&self, primary: &str) -> bool {
        let mut filling = self.filling.lock().unwrap_or_else(|p| p.into_inner());
        if filling.contains_key(primary) {
            return false;
        }
        filling.insert(primary.to_string(), ());
        true
    }

    /// Releases a fill claim (published or not) and wakes waiting requests.
    pub fn end_fill(&self, primary: &str) {
        self.filling
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(primary);
        self.changed();
    }

    pub fn is_filling(&self, primary: &str) -> bool {
        self.filling
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(primary)
    }

    /// Remembers that `primary` could not be stored, for a while.
    pub fn mark_uncacheable(&self, primary: &str, now: u64) {
        let mut map = self.uncacheable.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 10_000 {
            map.retain(|_, until| *until > now);
        }
        let hold = self.config.ttl.as_secs().clamp(1, 60);
        map.insert(primary.to_string(), now + hold);
    }

    pub fn is_uncacheable(&self, primary: &str, now: u64) -> bool {
        let map = self.uncacheable.lock().unwrap_or_else(|p| p.into_inner());
        map.get(primary).is_some_and(|until| *until > now)
    }

    /// Workers register their waker to hear about publishes while requests wait.
    pub fn add_waker(&self, w: Arc<Waker>) {
        self.wakers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(w);
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Counts requests waiting for a fill, so publishes wake workers only when someone waits.
    pub fn set_waiting(&self, delta: isize) {
        if delta >= 0 {
            self.waiting.fetch_add(delta as usize, Ordering::Relaxed);
        } else {
            self.waiting.fetch_sub((-delta) as usize, Ordering::Relaxed);
        }
    }

    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::Release);
        if self.waiting.load(Ordering::Relaxed) > 0 {
            for w in self.wakers.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                let _ = w.wake();
            }
        }
    }

    pub fn dir(&self) -> &Path {
        &self.config.dir
    }
}

/// A compressed variant being written by the hit that compresses its identity entry: its
/// files (temporary until [`Cache::publish_variant`]) and the claim that keeps it the only
/// writer. Dropped unpublished, both go.
#[derive(Debug)]
pub struct VariantWriter {
    body: PendingEntry,
    claim: VariantClaim,
}

impl VariantWriter {
    /// The variant's body being written: append the compressed bytes as they are sent.
    pub fn body(&mut self) -> &mut PendingEntry {
        &mut self.body
    }
}

/// Releases a fill claim when dropped, whatever path the request took.
#[derive(Debug)]
pub struct FillGuard {
    cache: Arc<Cache>,
    primary: String,
}

impl FillGuard {
    pub fn new(cache: Arc<Cache>, primary: String) -> FillGuard {
        FillGuard { cache, primary }
    }
}

impl Drop for FillGuard {
    fn drop(&mut self) {
        self.cache.end_fill(&self.primary);
    }
}

#[cfg(test)]
mod tests;
