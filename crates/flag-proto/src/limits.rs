//! How large one gRPC message may be, on every side of the wire.
//!
//! tonic refuses to decode a message over 4 MiB by default; a full snapshot of 10,000 flags
//! is larger than that. Every server and client of ours sets the same explicit limit from
//! here, so a message one side may send is one the other side may read, and flagd refuses a
//! write that would make an environment's snapshot too large to send (see
//! `flagd`'s environment cap) instead of accepting it and then failing every cold start.

use flag_core::{Flag, Segment};
use prost::Message as _;
use prost::encoding::encoded_len_varint;

use crate::v1;

/// The largest message any of our servers or clients encodes or decodes: 64 MiB, room for a
/// snapshot of about 200,000 typical flags.
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// The largest encoded snapshot flagd lets an environment grow to by default: three
/// quarters of [`MAX_MESSAGE_BYTES`], leaving room for the frame around it and for flags
/// that grow between the check and a later read.
pub const DEFAULT_MAX_ENVIRONMENT_BYTES: usize = MAX_MESSAGE_BYTES / 4 * 3;

/// Bytes `flag` adds to a `FullSnapshot`: its entry in the repeated field (tag, length,
/// message). What flagd's environment cap sums, so the cap measures the wire itself.
pub fn snapshot_flag_bytes(flag: &Flag) -> usize {
    entry_bytes(v1::Flag::from(flag).encoded_len())
}

/// Bytes `segment` adds to a `FullSnapshot`.
pub fn snapshot_segment_bytes(segment: &Segment) -> usize {
    entry_bytes(v1::Segment::from(segment).encoded_len())
}

/// A generous allowance for a `FullSnapshot`'s fields besides its flags and segments
/// (revision, store id).
pub const SNAPSHOT_OVERHEAD_BYTES: usize = 64;

fn entry_bytes(message: usize) -> usize {
    1 + encoded_len_varint(message as u64) + message
}

#[cfg(test)]
mod tests {
    use flag_core::FlagSet;

    use super::*;

    #[test]
    fn the_parts_sum_to_the_encoded_snapshot_within_the_overhead() {
        let mut flags: Vec<Flag> =
            (0..300).map(|i| Flag::rollout(&format!("flag-{i}"), 10.0).unwrap()).collect();
        flags[7].description = "x".repeat(300);
        let segment = Segment {
            key: "staff".into(),
            description: String::new(),
            included: vec!["ana".into()],
            excluded: vec![],
            rules: vec![],
        };
        let set = FlagSet { flags, segments: vec![segment] };
        let message = v1::FullSnapshot {
            revision: u64::MAX,
            flags: set.flags.iter().map(v1::Flag::from).collect(),
            segments: set.segments.iter().map(v1::Segment::from).collect(),
            store_id: "0123456789abcdef".into(),
        };
        let exact = message.encoded_len();
        let estimate = SNAPSHOT_OVERHEAD_BYTES
            + set.flags.iter().map(snapshot_flag_bytes).sum::<usize>()
            + set.segments.iter().map(snapshot_segment_bytes).sum::<usize>();
        assert!(estimate >= exact && estimate <= exact + SNAPSHOT_OVERHEAD_BYTES, "{estimate} for {exact}");
    }
}
