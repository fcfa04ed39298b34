//! The index's shards: a `RwLock` over a map of slots each, on cache lines of its own.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::entry::CacheEntry;

/// How many shards the index has: enough that the hot keys of 64 cores rarely share one. A power
/// of two, as a shard is chosen by the top bits of the key's CRC.
pub(super) const SHARDS: usize = 256;
const _: () = assert!(SHARDS.is_power_of_two() && SHARDS > 1);

/// The entries of one shard by the CRC32 of their primary key; several when keys collide or a
/// response varies.
pub(super) type Slots = HashMap<u32, Vec<Arc<CacheEntry>>, BuildHasherDefault<SlotHasher>>;

/// Hashes a slot (already a CRC32) with one multiply instead of SipHash: the bits the map uses
/// (low for the bucket, top for the tag) then depend on all of the CRC's. It gives an attacker
/// nothing the CRC did not: colliding CRCs are as easy to make as colliding buckets, and both
/// only lengthen one shard's scan.
#[derive(Default)]
pub(super) struct SlotHasher(u64);

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
pub(super) struct Shard(RwLock<Slots>);

impl Shard {
    /// A poisoned lock only means a thread panicked while holding it; the map is still whole.
    pub(super) fn read(&self) -> RwLockReadGuard<'_, Slots> {
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn write(&self) -> RwLockWriteGuard<'_, Slots> {
        self.0.write().unwrap_or_else(|p| p.into_inner())
    }
}
