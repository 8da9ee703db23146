//! Incremental murmur3 x86_32 and the bucketing rule built on it.
//!
//! Written by hand rather than taken from a crate because the hot path needs two things
//! crates do not offer together: a state that can be pre-seeded with a flag's salt once at
//! compile time, and hashing of `salt ++ key` without concatenating them into a buffer.

const C1: u32 = 0xcc9e_2d51;
const C2: u32 = 0x1b87_3593;

/// The total of a split written in percentages: weights in units of 1/1000 %. What
/// [`percent_to_weight`](crate::percent_to_weight) and rollouts use; a split may total
/// anything from 1 to [`MAX_TOTAL_WEIGHT`].
pub const TOTAL_WEIGHT: u32 = 100_000;

/// The largest total a split's weights may have, 2^31 − 1, so that every weight and total
/// fits the 32-bit signed integers other languages' flagd providers hold them in.
pub const MAX_TOTAL_WEIGHT: u32 = i32::MAX as u32;

/// A murmur3 x86_32 hash in progress (seed 0), fed in pieces as if they were one buffer.
/// `Copy`, so a state pre-seeded with a split's salt is reused for every evaluation without
/// touching the salt again — what compiled splits do, and what benches that measure the
/// least an evaluation must hash do too.
#[derive(Clone, Copy, Debug, Default)]
pub struct Murmur3 {
    h: u32,
    /// Bytes that do not yet make a whole 4-byte block, little-endian in the low bits.
    pending: u32,
    pending_len: u32,
    total_len: u32,
}

#[inline(always)]
fn scramble(k: u32) -> u32 {
    k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2)
}

impl Murmur3 {
    #[inline(always)]
    fn mix_block(&mut self, k: u32) {
        self.h ^= scramble(k);
        self.h = self.h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }

    /// Feeds more bytes, as if appended to everything fed so far.
    #[inline(always)]
    pub fn write(&mut self, mut bytes: &[u8]) {
        // The total length is hashed modulo 2^32, exactly as the reference does.
        self.total_len = self.total_len.wrapping_add(bytes.len() as u32);
        while self.pending_len != 0 {
            let Some((&first, rest)) = bytes.split_first() else {
                return;
            };
            self.pending |= u32::from(first) << (8 * self.pending_len);
            self.pending_len += 1;
            bytes = rest;
            if self.pending_len == 4 {
                let block = self.pending;
                self.pending = 0;
                self.pending_len = 0;
                self.mix_block(block);
            }
        }
        let mut blocks = bytes.chunks_exact(4);
        for block in &mut blocks {
            self.mix_block(u32::from_le_bytes([block[0], block[1], block[2], block[3]]));
        }
        for (i, &byte) in blocks.remainder().iter().enumerate() {
            self.pending |= u32::from(byte) << (8 * i);
        }
        self.pending_len = blocks.remainder().len() as u32;
    }

    /// Finishes the hash; the state itself is untouched so it can be reused.
    #[inline(always)]
    pub fn finish(&self) -> u32 {
        let mut h = self.h;
        if self.pending_len != 0 {
            h ^= scramble(self.pending);
        }
        h ^= self.total_len;
        h ^= h >> 16;
        h = h.wrapping_mul(0x85eb_ca6b);
        h ^= h >> 13;
        h = h.wrapping_mul(0xc2b2_ae35);
        h ^ (h >> 16)
    }
}

/// The murmur3 x86_32 hash (seed 0) of `bytes`.
pub fn murmur3_32(bytes: &[u8]) -> u32 {
    let mut state = Murmur3::default();
    state.write(bytes);
    state.finish()
}

/// Maps a hash onto `0..total` without modulo bias: `(h * total) >> 32`.
#[inline]
pub fn bucket_of(hash: u32, total: u32) -> u32 {
    ((u64::from(hash) * u64::from(total)) >> 32) as u32
}

/// The bucket (of [`TOTAL_WEIGHT`]) that `salt ++ key` falls into — the `flagd-v2` rule of
/// a split written in percentages.
pub fn bucket(salt: &str, key: &str) -> u32 {
    let mut state = Murmur3::default();
    state.write(salt.as_bytes());
    state.write(key.as_bytes());
    bucket_of(state.finish(), TOTAL_WEIGHT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reference(bytes: &[u8]) -> u32 {
        murmur3::murmur3_32(&mut std::io::Cursor::new(bytes), 0).unwrap()
    }

    #[test]
    fn reproduces_the_architecture_reference_values() {
        assert_eq!(murmur3_32(b""), 0);
        assert_eq!(murmur3_32(b"hello"), 613_153_351);
        assert_eq!(murmur3_32(b"The quick brown fox jumps over the lazy dog"), 776_992_547);
        assert_eq!(bucket("", "hello"), 14_276);
        assert_eq!(bucket("The quick brown fox ", "jumps over the lazy dog"), 18_090);
        assert_eq!(bucket("chat", "user-1"), 8_328);
        assert_eq!(bucket("chat", "user-42"), 68_275);
        assert_eq!(bucket("checkout", "alice@example.com"), 82_889);
        let mut state = Murmur3::default();
        state.write(b"chat");
        state.write(b"user-42");
        assert_eq!(state.finish(), 2_932_414_204);
    }

    proptest! {
        #[test]
        fn agrees_with_the_murmur3_crate_however_the_input_is_split(
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
            cuts in proptest::collection::vec(0usize..64, 0..4),
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            cuts.sort_unstable();
            let mut state = Murmur3::default();
            let mut start = 0;
            for cut in cuts {
                state.write(&bytes[start..cut]);
                start = cut;
            }
            state.write(&bytes[start..]);
            prop_assert_eq!(state.finish(), reference(&bytes));
        }
    }

    #[test]
    fn bucket_stays_below_the_total() {
        assert_eq!(bucket_of(u32::MAX, TOTAL_WEIGHT), TOTAL_WEIGHT - 1);
        assert_eq!(bucket_of(0, TOTAL_WEIGHT), 0);
    }
}
