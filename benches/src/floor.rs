//! The floor of an evaluation: the least work that answering "is this 50 % rollout on for
//! this user?" takes, measured in the same run as ours so that our figures read as ratios,
//! which hold from machine to machine where nanoseconds do not.
//!
//! Nothing but the work itself: the snapshot load (an `ArcSwap` or arc-swap `Cache`, by the
//! bench), the key lookup in a table of the fixture's flags with our hasher (FxHash over
//! hashbrown's `HashTable`, as flag-core's snapshot), one incremental murmur3 of
//! salt ++ user key from a state already fed the salt (flag-core's own [`Murmur3`], as a
//! compiled split holds it) and the bucket comparison. No variants, reasons, rules or counts.

use std::hash::BuildHasher;

use flag_core::{FlagSet, Murmur3, Serve, bucket_of};
use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

/// Every rollout flag of a set, reduced to what the floor reads.
#[derive(Debug)]
pub struct FloorTable {
    flags: Box<[FloorFlag]>,
    /// Positions in `flags`, by the FxHash of the key.
    by_key: HashTable<u32>,
}

#[derive(Debug)]
struct FloorFlag {
    key: Box<str>,
    /// murmur3 after the split's salt.
    salted: Murmur3,
    /// The split's total weight: buckets are `0..total`.
    total: u32,
    /// Buckets below this are on: the first variant's weight.
    on_below: u32,
}

impl FloorTable {
    /// The flags of `set` whose default serve is a split whose first variant is the "on" one
    /// (every flag of the eval fixture).
    pub fn new(set: &FlagSet) -> FloorTable {
        let flags: Box<[FloorFlag]> = set
            .flags
            .iter()
            .filter_map(|flag| {
                let Serve::Split(split) = &flag.default else { return None };
                let mut salted = Murmur3::default();
                salted.write(split.salt.as_deref().unwrap_or(&flag.key).as_bytes());
                Some(FloorFlag {
                    key: flag.key.as_str().into(),
                    salted,
                    total: u32::try_from(split.total_weight()).ok()?,
                    on_below: u32::try_from(split.weights.first()?.weight).ok()?,
                })
            })
            .collect();
        let mut by_key = HashTable::with_capacity(flags.len());
        for (position, flag) in flags.iter().enumerate() {
            by_key.insert_unique(hash(&flag.key), position as u32, |&p| hash(&flags[p as usize].key));
        }
        FloorTable { flags, by_key }
    }

    /// The position of `key`, for the by-handle floor.
    #[inline]
    pub fn position(&self, key: &str) -> Option<usize> {
        let found = self.by_key.find(hash(key), |&p| same_key(&self.flags[p as usize].key, key));
        found.map(|&p| p as usize)
    }

    /// Whether `user` is in the on part of `key`'s rollout: lookup, hash, comparison.
    #[inline]
    pub fn is_enabled(&self, key: &str, user: &str) -> bool {
        self.position(key).is_some_and(|position| self.is_enabled_at(position, user))
    }

    /// The same for a flag found beforehand: hash and comparison.
    #[inline]
    pub fn is_enabled_at(&self, position: usize, user: &str) -> bool {
        let Some(flag) = self.flags.get(position) else { return false };
        let mut state = flag.salted;
        state.write(user.as_bytes());
        bucket_of(state.finish(), flag.total) < flag.on_below
    }
}

#[inline]
fn hash(key: &str) -> u64 {
    FxBuildHasher.hash_one(key)
}

/// Key equality eight bytes at a time, as flag-core's lookup compares: `==` calls
/// `memcmp`, which costs more than comparing a short key and would raise the floor.
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use flag_core::{Context, Evaluate};

    use super::*;
    use crate::{ROLLOUT_FLAG, flag_set, snapshot, user_keys};

    #[test]
    fn the_floor_answers_what_flag_core_answers() {
        let (floor, snapshot) = (FloorTable::new(&flag_set()), snapshot().unwrap());
        let position = floor.position(ROLLOUT_FLAG).unwrap();
        let mut on = 0;
        for user in user_keys() {
            let expected = snapshot.is_enabled(ROLLOUT_FLAG, &Context::new(&user));
            assert_eq!(floor.is_enabled(ROLLOUT_FLAG, &user), expected, "{user}");
            assert_eq!(floor.is_enabled_at(position, &user), expected, "{user}");
            on += u32::from(expected);
        }
        assert!((400..624).contains(&on), "about half of 1,024 users on, got {on}");
    }
}
