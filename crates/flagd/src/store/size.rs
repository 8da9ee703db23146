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

use super::error::WriteError;

/// The size of an empty environment's snapshot.
pub(super) const EMPTY_SNAPSHOT_BYTES: usize = flag_proto::SNAPSHOT_OVERHEAD_BYTES;

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

/// Bytes `flag` adds to a snapshot (measured by flag-proto, which owns the wire).
pub(super) fn flag_bytes(flag: &Flag) -> usize {
    flag_proto::snapshot_flag_bytes(flag)
}

/// Bytes `segment` adds to a snapshot.
pub(super) fn segment_bytes(segment: &Segment) -> usize {
    flag_proto::snapshot_segment_bytes(segment)
}

/// The encoded size of a snapshot of `set`, at most `SNAPSHOT_OVERHEAD_BYTES` over the
/// exact one (flag-proto's test holds it to that).
pub(super) fn snapshot_bytes(set: &FlagSet) -> usize {
    EMPTY_SNAPSHOT_BYTES
        + set.flags.iter().map(flag_bytes).sum::<usize>()
        + set.segments.iter().map(segment_bytes).sum::<usize>()
}
