//! The environment cap: how many bytes an environment's full snapshot takes on the wire,
//! kept as a running total so a write is checked without encoding the whole environment.
//!
//! Every client's cold start receives the environment in one `FullSnapshot` message, and
//! every side of the wire refuses messages over `flag_proto::MAX_MESSAGE_BYTES`. An
//! environment that grew past that would accept the write and then fail every new SDK, so
//! the writer refuses the write instead, with the figures. Only growth is refused, and never
//! a kill or a revive: those, a delete, and anything else that shrinks an environment
//! already over a (lowered) cap still commit, so the cap never stands between an operator
//! and the kill switch.

use flag_core::{Flag, FlagSet, Segment};
use prost::Message as _;
use prost::encoding::encoded_len_varint;

use super::error::WriteError;

/// A generous allowance for the snapshot's other fields (revision, store id).
const SNAPSHOT_OVERHEAD: usize = 64;

/// The size of an empty environment's snapshot.
pub(super) const EMPTY_SNAPSHOT_BYTES: usize = SNAPSHOT_OVERHEAD;

/// Refuses growing an environment from `before` to `after` bytes past `limit`; shrinking is
/// always allowed (see the module docs).
pub(super) fn check(environment: &str, before: usize, after: usize, limit: usize) -> Result<(), WriteError> {
    if after > limit && after > before {
        return Err(WriteError::EnvironmentTooLarge {
            environment: environment.to_owned(),
            bytes: after,
            limit,
        });
    }
    Ok(())
}

/// `total` with an item of `before` bytes replaced by one of `after` (`None`: absent).
pub(super) fn replaced(total: usize, before: Option<usize>, after: Option<usize>) -> usize {
    (total + after.unwrap_or(0)).saturating_sub(before.unwrap_or(0))
}

/// Bytes `flag` adds to a snapshot: its entry in the repeated field (tag, length, message).
pub(super) fn flag_bytes(flag: &Flag) -> usize {
    entry_bytes(flag_proto::v1::Flag::from(flag).encoded_len())
}

/// Bytes `segment` adds to a snapshot.
pub(super) fn segment_bytes(segment: &Segment) -> usize {
    entry_bytes(flag_proto::v1::Segment::from(segment).encoded_len())
}

fn entry_bytes(message: usize) -> usize {
    1 + encoded_len_varint(message as u64) + message
}

/// The encoded size of a snapshot of `set`, at most [`SNAPSHOT_OVERHEAD`] over the exact one.
pub(super) fn snapshot_bytes(set: &FlagSet) -> usize {
    SNAPSHOT_OVERHEAD
        + set.flags.iter().map(flag_bytes).sum::<usize>()
        + set.segments.iter().map(segment_bytes).sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_bounds_the_encoded_snapshot_from_above_and_closely() {
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
        let message = flag_proto::v1::FullSnapshot {
            revision: u64::MAX,
            flags: set.flags.iter().map(flag_proto::v1::Flag::from).collect(),
            segments: set.segments.iter().map(flag_proto::v1::Segment::from).collect(),
            store_id: "0123456789abcdef".into(),
        };
        let exact = message.encoded_len();
        let estimate = snapshot_bytes(&set);
        assert!(estimate >= exact && estimate <= exact + SNAPSHOT_OVERHEAD, "{estimate} for {exact}");
    }
}
