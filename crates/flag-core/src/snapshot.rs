//! Building a [`Snapshot`] and what it offers besides evaluation: its keys, the layout that
//! handles share across snapshots, and [`FlagHandle`]s. The fields themselves, the key
//! lookup and evaluation are in the hot-path module, `evaluate.rs`.

use std::sync::Arc;

use hashbrown::HashTable;

use crate::compiled::{CompiledFlag, CompiledSegment};
use crate::evaluate::{FlagHandle, Layout, Snapshot, hash_key};
use crate::value::ValueKind;

impl Snapshot {
    pub(crate) fn new(mut flags: Box<[CompiledFlag]>, segments: Box<[CompiledSegment]>) -> Self {
        // `u32` is enough: each compiled variant takes more than 32 bytes, so 2^32 of them
        // would need over 128 GiB for the variants alone.
        let mut next_variant = 0u32;
        for flag in &mut flags {
            flag.first_variant = next_variant;
            next_variant = next_variant.wrapping_add(flag.variants.len() as u32);
        }
        let mut by_key = HashTable::with_capacity(flags.len());
        for (index, flag) in flags.iter().enumerate() {
            by_key.insert_unique(hash_key(&flag.key), index as u32, |&i| hash_key(&flags[i as usize].key));
        }
        Snapshot { flags, segments, by_key, layout: Arc::new(Layout) }
    }

    /// A snapshot without flags: every evaluation answers the caller's default.
    pub fn empty() -> Self {
        Snapshot::new(Box::default(), Box::default())
    }

    /// How many flags the snapshot holds.
    pub fn len(&self) -> usize {
        self.flags.len()
    }

    /// Whether the snapshot holds no flags.
    pub fn is_empty(&self) -> bool {
        self.flags.is_empty()
    }

    /// The flag keys, in the order of the flag set.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.flags.iter().map(|f| &*f.key)
    }

    /// How many (flag, variant) pairs the snapshot holds: one more than the largest
    /// [`VariantIndex`](crate::VariantIndex) it answers.
    pub fn variant_count(&self) -> usize {
        self.flags.iter().map(|f| f.variants.len()).sum()
    }

    /// Every (flag key, variant name), in [`VariantIndex`](crate::VariantIndex) order: the
    /// flags in the order of the flag set, each flag's variants in its own order.
    pub fn variants(&self) -> impl Iterator<Item = (&str, &str)> {
        self.flags.iter().flat_map(|f| f.variants.iter().map(move |v| (&*f.key, &*v.name)))
    }

    /// The value type of a flag, if present.
    pub fn kind_of(&self, key: &str) -> Option<ValueKind> {
        self.index_of(key).map(|i| self.flags[i].kind)
    }

    /// Lets handles made for `previous` stay on their fast path here when both snapshots
    /// hold the same flag keys in the same order — the common case when flags change but
    /// none is created or deleted. An SDK calls this on each new snapshot.
    pub fn keep_layout_of(mut self, previous: &Snapshot) -> Self {
        if self.flags.len() == previous.flags.len() && self.keys().eq(previous.keys()) {
            self.layout = Arc::clone(&previous.layout);
        }
        self
    }

    /// A handle for evaluating `key` in hot loops without a hash lookup. It stays valid
    /// across snapshots: in a snapshot with a different layout it falls back to the lookup,
    /// and a flag created later is found once it exists.
    pub fn handle(&self, key: &str) -> FlagHandle {
        let index = self.index_of(key).map(|i| i as u32);
        FlagHandle { index, layout: Arc::clone(&self.layout), key: key.into() }
    }
}

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot::empty()
    }
}

impl FlagHandle {
    /// The flag's key.
    pub fn key(&self) -> &str {
        &self.key
    }
}
