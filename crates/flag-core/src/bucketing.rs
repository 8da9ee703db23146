// HOT PATH: `BucketInput::hash` runs on every split evaluation. No allocation, no locks,
// no logging; `tests/zero_alloc.rs` evaluates splits of every kind.

//! The bytes a split hashes, for each [`Bucketing`] rule, fed to an incremental murmur3
//! state without ever being concatenated.
//!
//! `flagd-v3` hashes deterministic CBOR (RFC 8949 §4.2.1, shortest form), as OpenFeature
//! flagd's providers do since its "fractional non-string randomisation units" decision:
//! either the array `[flag key, targeting key]` or one text string. A CBOR text string
//! starts with a header holding its length, and the length of `salt ++ bucket key` is known
//! only at evaluation, so the header is computed then, on the stack.

use crate::model::Bucketing;
use crate::murmur::Murmur3;

/// CBOR major type 3 (text string), in the top three bits of the initial byte.
const TEXT: u8 = 0x60;
/// CBOR initial byte of a 2-element array (major type 4, length 2).
const PAIR: u8 = 0x82;

/// How a compiled split turns its bucket key into a hash.
#[derive(Clone, Debug)]
pub(crate) enum BucketInput {
    /// `flagd-v2`: a state that has consumed the salt; the bucket key follows it.
    Concatenated { seeded: Murmur3 },
    /// `flagd-v3` without `by`, salted with the flag key: a state that has consumed
    /// `0x82 ++ text(flag key)`; the targeting key follows as the second text string.
    CborPair { seeded: Murmur3 },
    /// `flagd-v3` otherwise: `text(salt ++ bucket key)`, whose header needs the total length.
    CborText { salt: Box<str> },
}

impl BucketInput {
    /// The input for a split salted with `salt` (the flag key unless set), bucketing by an
    /// attribute or not.
    pub(crate) fn new(bucketing: Bucketing, flag_key: &str, salt: Option<&str>, by_attribute: bool) -> Self {
        let salt = salt.unwrap_or(flag_key);
        match bucketing {
            Bucketing::FlagdV2 => {
                let mut seeded = Murmur3::default();
                seeded.write(salt.as_bytes());
                BucketInput::Concatenated { seeded }
            }
            Bucketing::FlagdV3 if !by_attribute && salt == flag_key => {
                let mut seeded = Murmur3::default();
                seeded.write(&[PAIR]);
                write_text_header(&mut seeded, flag_key.len());
                seeded.write(flag_key.as_bytes());
                BucketInput::CborPair { seeded }
            }
            Bucketing::FlagdV3 => BucketInput::CborText { salt: salt.into() },
        }
    }

    /// The murmur3 hash of this input for `key`, the bucket key's text.
    #[inline(always)]
    pub(crate) fn hash(&self, key: &str) -> u32 {
        match self {
            BucketInput::Concatenated { seeded } => {
                let mut state = *seeded;
                state.write(key.as_bytes());
                state.finish()
            }
            BucketInput::CborPair { seeded } => {
                let mut state = *seeded;
                write_text_header(&mut state, key.len());
                state.write(key.as_bytes());
                state.finish()
            }
            BucketInput::CborText { salt } => hash_text(salt, key),
        }
    }
}

/// `CborText`'s hash, out of line: evaluation inlines [`BucketInput::hash`], and this case
/// (a salted or by-attribute `flagd-v3` split) is the least common and the longest.
#[inline(never)]
fn hash_text(salt: &str, key: &str) -> u32 {
    let mut state = Murmur3::default();
    write_text_header(&mut state, salt.len() + key.len());
    state.write(salt.as_bytes());
    state.write(key.as_bytes());
    state.finish()
}

/// Feeds the shortest CBOR header of a text string of `len` bytes (RFC 8949 §4.2.1): the
/// length in the initial byte below 24, else in the fewest of 1, 2, 4 or 8 big-endian bytes.
#[inline(always)]
fn write_text_header(state: &mut Murmur3, len: usize) {
    let len = len as u64;
    let mut header = [0u8; 9];
    let bytes: &[u8] = if len < 24 {
        header[0] = TEXT | len as u8;
        &header[..1]
    } else if len <= u64::from(u8::MAX) {
        header[..2].copy_from_slice(&[TEXT | 24, len as u8]);
        &header[..2]
    } else if len <= u64::from(u16::MAX) {
        header[0] = TEXT | 25;
        header[1..3].copy_from_slice(&(len as u16).to_be_bytes());
        &header[..3]
    } else if len <= u64::from(u32::MAX) {
        header[0] = TEXT | 26;
        header[1..5].copy_from_slice(&(len as u32).to_be_bytes());
        &header[..5]
    } else {
        header[0] = TEXT | 27;
        header[1..9].copy_from_slice(&len.to_be_bytes());
        &header[..]
    };
    state.write(bytes);
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// What ciborium writes for `value`, hashed by the murmur3 crate: an implementation
    /// that shares nothing with the one under test.
    fn independent(value: &ciborium::Value) -> u32 {
        let mut bytes = Vec::new();
        ciborium::into_writer(value, &mut bytes).unwrap();
        murmur3::murmur3_32(&mut std::io::Cursor::new(&bytes), 0).unwrap()
    }

    fn text(s: &str) -> ciborium::Value {
        ciborium::Value::Text(s.to_owned())
    }

    /// Text of `len` bytes, its characters drawn from `alphabet` (some of several bytes).
    fn text_of_len(len: usize, alphabet: &[char]) -> String {
        let mut s = String::with_capacity(len);
        let mut i = 0;
        while s.len() < len {
            let c = alphabet[i % alphabet.len()];
            s.push(if s.len() + c.len_utf8() <= len { c } else { 'a' });
            i += 1;
        }
        s
    }

    /// Lengths around each CBOR header boundary, and small ones.
    fn interesting_len() -> impl Strategy<Value = usize> {
        prop_oneof![
            0usize..30,
            22usize..26,
            254usize..258,
            65_534usize..65_538,
            prop::sample::select(vec![0, 23, 24, 255, 256, 65_535, 65_536]),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn a_pair_hashes_as_ciborium_encodes_it(
            flag_key in "[a-z0-9][a-z0-9._-]{0,40}",
            key_len in interesting_len(),
            alphabet in prop::collection::vec(any::<char>(), 1..4),
        ) {
            let key = text_of_len(key_len, &alphabet);
            let input = BucketInput::new(Bucketing::FlagdV3, &flag_key, None, false);
            let is_pair = matches!(input, BucketInput::CborPair { .. });
            prop_assert!(is_pair, "{:?}", input);
            let expected = independent(&ciborium::Value::Array(vec![text(&flag_key), text(&key)]));
            prop_assert_eq!(input.hash(&key), expected);
            // A salt equal to the flag key is the same split.
            prop_assert_eq!(BucketInput::new(Bucketing::FlagdV3, &flag_key, Some(&flag_key), false).hash(&key), expected);
        }

        #[test]
        fn salted_or_by_attribute_hashes_one_text_string_as_ciborium_encodes_it(
            flag_key in "[a-z]{1,8}",
            salt_len in interesting_len(),
            key_len in interesting_len(),
            by_attribute in any::<bool>(),
            alphabet in prop::collection::vec(any::<char>(), 1..4),
        ) {
            let salt = text_of_len(salt_len, &alphabet);
            let key = text_of_len(key_len, &alphabet);
            // A salt that happens to equal the flag key is covered by the pair property.
            prop_assume!(by_attribute || salt != flag_key);
            let input = BucketInput::new(Bucketing::FlagdV3, &flag_key, Some(&salt), by_attribute);
            let is_text = matches!(input, BucketInput::CborText { .. });
            prop_assert!(is_text, "{:?}", input);
            prop_assert_eq!(input.hash(&key), independent(&text(&format!("{salt}{key}"))));
        }

        #[test]
        fn flagd_v2_hashes_the_bare_concatenation(salt in ".{0,40}", key in ".{0,40}") {
            let input = BucketInput::new(Bucketing::FlagdV2, "flag", Some(&salt), false);
            let bytes = format!("{salt}{key}").into_bytes();
            prop_assert_eq!(input.hash(&key), murmur3::murmur3_32(&mut std::io::Cursor::new(&bytes), 0).unwrap());
        }
    }

    #[test]
    fn by_attribute_with_the_flag_key_as_salt_is_still_one_text_string() {
        let input = BucketInput::new(Bucketing::FlagdV3, "chat", None, true);
        assert_eq!(input.hash("org-7"), independent(&text("chatorg-7")));
        let pair = BucketInput::new(Bucketing::FlagdV3, "chat", None, false);
        assert_ne!(pair.hash("org-7"), input.hash("org-7"), "the two framings must differ");
    }

    #[test]
    fn the_text_header_is_the_shortest_form_at_each_boundary() {
        for (len, header) in [
            (0usize, vec![0x60]),
            (23, vec![0x77]),
            (24, vec![0x78, 24]),
            (255, vec![0x78, 255]),
            (256, vec![0x79, 1, 0]),
            (65_535, vec![0x79, 255, 255]),
            (65_536, vec![0x7a, 0, 1, 0, 0]),
        ] {
            let mut ours = Murmur3::default();
            write_text_header(&mut ours, len);
            let mut theirs = Murmur3::default();
            theirs.write(&header);
            assert_eq!(ours.finish(), theirs.finish(), "header of {len}");
        }
    }
}
