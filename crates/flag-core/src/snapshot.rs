//! The immutable, compiled flag set that evaluation reads, and handles into it.

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

use crate::compiled::{CompiledFlag, CompiledSegment};
use crate::value::ValueKind;

/// Every flag of an environment compiled for evaluation. Built by
/// [`FlagSet::compile`](crate::FlagSet::compile); never changes afterwards, so one can be
/// shared by every thread (an SDK swaps in a new one when flags change).
#[derive(Debug)]
pub struct Snapshot {
    pub(crate) flags: Box<[CompiledFlag]>,
    pub(crate) segments: Box<[CompiledSegment]>,
    /// Indices into `flags`, found by the FxHash of the key and confirmed against the key
    /// stored in the flag: a table of bare `u32`s keeps each key in memory once. FxHash is
    /// the right trade because keys are short and were validated when the set was written.
    by_key: HashTable<u32>,
    /// Shared by snapshots whose flags have the same keys in the same order, so a handle
    /// can trust its index after one pointer comparison. Held in an `Arc` by the handles
    /// too, so the address cannot be reused by another layout while a handle exists.
    layout: Arc<Layout>,
}

/// The identity of an order of flag keys; see [`Snapshot::keep_layout_of`].
#[derive(Debug)]
struct Layout;

fn hash_key(key: &str) -> u64 {
    FxBuildHasher.hash_one(key)
}

/// Key equality, compared eight bytes at a time in line: flag keys are short, and the call
/// to `memcmp` that `==` makes costs more than the comparison itself.
#[inline(always)]
fn same_key(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let (mut a_words, mut b_words) = (a.chunks_exact(8), b.chunks_exact(8));
    let words_equal = a_words.by_ref().zip(b_words.by_ref()).all(|(x, y)| {
        u64::from_ne_bytes([x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7]])
            == u64::from_ne_bytes([y[0], y[1], y[2], y[3], y[4], y[5], y[6], y[7]])
    });
    words_equal && a_words.remainder().iter().zip(b_words.remainder()).all(|(x, y)| x == y)
}

impl Snapshot {
    pub(crate) fn new(flags: Box<[CompiledFlag]>, segments: Box<[CompiledSegment]>) -> Self {
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

    /// The value type of a flag, if present.
    pub fn kind_of(&self, key: &str) -> Option<ValueKind> {
        self.index_of(key).map(|i| self.flags[i].kind)
    }

    #[inline]
    pub(crate) fn index_of(&self, key: &str) -> Option<usize> {
        let found = self.by_key.find(hash_key(key), |&i| same_key(&self.flags[i as usize].key, key));
        found.map(|&i| i as usize)
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

/// A pre-resolved flag: its position in the snapshot it came from, and its key to check
/// that position (and to look it up again in a snapshot laid out differently).
#[derive(Clone, Debug)]
pub struct FlagHandle {
    /// Position in snapshots of `layout`; `None` when the flag did not exist there.
    index: Option<u32>,
    layout: Arc<Layout>,
    key: Arc<str>,
}

impl FlagHandle {
    /// The flag's key.
    pub fn key(&self) -> &str {
        &self.key
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for str {}
    impl Sealed for String {}
    impl Sealed for super::FlagHandle {}
}

/// What names a flag for evaluation: its key (`&str`, `&String`) or a [`FlagHandle`].
pub trait FlagRef: sealed::Sealed {
    #[doc(hidden)]
    fn position_in(&self, snapshot: &Snapshot) -> Option<usize>;
}

impl FlagRef for str {
    #[inline]
    fn position_in(&self, snapshot: &Snapshot) -> Option<usize> {
        snapshot.index_of(self)
    }
}

impl FlagRef for String {
    #[inline]
    fn position_in(&self, snapshot: &Snapshot) -> Option<usize> {
        snapshot.index_of(self)
    }
}

impl FlagRef for FlagHandle {
    #[inline]
    fn position_in(&self, snapshot: &Snapshot) -> Option<usize> {
        if Arc::ptr_eq(&self.layout, &snapshot.layout) {
            return self.index.map(|i| i as usize);
        }
        match self.index.and_then(|i| snapshot.flags.get(i as usize)) {
            Some(flag) if *flag.key == *self.key => self.index.map(|i| i as usize),
            _ => snapshot.index_of(&self.key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::same_key;

    #[test]
    fn same_key_compares_every_byte() {
        for (a, b) in
            [("", ""), ("chat", "chat"), ("flag-500", "flag-500"), ("checkout.v2-beta", "checkout.v2-beta")]
        {
            assert!(same_key(a, b), "{a} == {b}");
        }
        for (a, b) in [
            ("chat", "chad"),
            ("flag-500", "flag-501"),
            ("flag-5000", "flag-5001"),
            ("xlag-5000", "flag-5000"),
            ("flag-500", "flag-5000"),
            ("checkout.v2-betb", "checkout.v2-beta"),
        ] {
            assert!(!same_key(a, b), "{a} != {b}");
        }
    }
}
