//! The cache's side of compressed variants (see the module doc of [`super`] and
//! [`super::entry`]): found after their identity entry, written by the hit that compresses it,
//! published only while it still agrees with that entry.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::entry::CacheEntry;
use super::pending::{PendingEntry, VariantWriter};
use super::Cache;
use crate::compress::{Coding, CompressedHead};

impl Cache {
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
                // Made from the entry the claim is on: if that was replaced meanwhile (a refresh
                // within the same second keeps `stored_at`), the variant may disagree with it.
                let identity = claim.identity();
                let slot = Self::slot(&identity.meta.primary);
                let current = self
                    .shard(slot)
                    .read()
                    .get(&slot)
                    .is_some_and(|list| list.iter().any(|i| Arc::ptr_eq(i, identity)));
                if current && self.insert(e.clone()) {
                    self.evict_to_budget();
                } else {
                    self.unlink_unless_reused(&e);
                }
            }
            Err(e) => log::warn!("cache: cannot publish a variant: {e}"),
        }
        drop(claim);
    }

    /// Takes out of `list` (one slot, its shard write-locked) the variants of `identity`'s URL
    /// and varied values, but those that agree with it when `keep_agreeing`; their bytes are no
    /// longer counted, their files are the caller's to unlink.
    pub(super) fn take_variants(
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
}
