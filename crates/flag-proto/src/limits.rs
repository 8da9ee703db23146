//! How large one gRPC message may be, on every side of the wire.
//!
//! tonic refuses to decode a message over 4 MiB by default; a full snapshot of 10,000 flags
//! is larger than that. Every server and client of ours sets the same explicit limit from
//! here, so a message one side may send is one the other side may read, and flagd refuses a
//! write that would make an environment's snapshot too large to send (see
//! `flagd`'s environment cap) instead of accepting it and then failing every cold start.

/// The largest message any of our servers or clients encodes or decodes: 64 MiB, room for a
/// snapshot of about 200,000 typical flags.
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// The largest encoded snapshot flagd lets an environment grow to by default: three
/// quarters of [`MAX_MESSAGE_BYTES`], leaving room for the frame around it and for flags
/// that grow between the check and a later read.
pub const DEFAULT_MAX_ENVIRONMENT_BYTES: usize = MAX_MESSAGE_BYTES / 4 * 3;
