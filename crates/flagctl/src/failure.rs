//! What can go wrong, as a person reads it, and the exit code of each kind.

use flag_proto::{CURRENT_REVISION_KEY, CURRENT_VERSION_KEY, STORE_UNAVAILABLE_KEY};
use tonic::{Code, Status};

/// A failure with a distinct exit code (see `cli::EXIT_CODES`). Anything else exits 1.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    /// Flag, segment or version not found.
    #[error("{0}")]
    NotFound(String),
    /// Invalid input: the message names the field (and line).
    #[error("{0}")]
    Invalid(String),
    /// Someone else changed it first.
    #[error("{0}")]
    Conflict(String),
    /// The server could not be reached.
    #[error("cannot reach flagd at {address}: {cause}")]
    Unreachable { address: String, cause: String },
    /// None of several addresses could be reached: each with its cause, in the order tried.
    #[error("cannot reach flagd at any of the {} addresses given:{}", .0.len(), each_on_a_line(.0))]
    NoneReachable(Vec<(String, String)>),
    /// Missing or wrong token.
    #[error("unauthorized: {0}; pass a valid token with --token or FLAGD_TOKEN")]
    Unauthorized(String),
    /// A valid token whose principal may not do this (its role, or its environments): the
    /// message names the principal and the environment.
    #[error("not allowed: {0}")]
    Forbidden(String),
    /// A kill committed, but not every SDK acknowledged it in time.
    #[error("{0}")]
    Unacknowledged(String),
    /// The flag is not in a state the command applies to (e.g. revive of a live flag).
    #[error("{0}")]
    Refused(String),
    /// flagd's store cannot commit now (disk full, I/O error); nothing was applied.
    #[error("{0}")]
    StoreUnavailable(String),
    /// `diff` found differences: exit 1, like `diff(1)`, with nothing more to say.
    #[error("the two sides differ")]
    Differs,
    /// A write timed out here, and flagd may still commit it.
    #[error("{}", outcome_unknown(*revision))]
    OutcomeUnknown { revision: Option<u64> },
}

fn each_on_a_line(failed: &[(String, String)]) -> String {
    failed.iter().map(|(address, cause)| format!("\n  {address}: {cause}")).collect()
}

fn outcome_unknown(revision: Option<u64>) -> String {
    match revision {
        Some(revision) => format!(
            "timed out waiting for flagd: outcome unknown; check revision {revision} (`flagctl log`): \
             the write is committed if it is there or later"
        ),
        None => {
            "timed out waiting for flagd: outcome unknown; check `flagctl log` once flagd answers".to_owned()
        }
    }
}

impl Failure {
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Failure::Differs => 1,
            Failure::NotFound(_) => 3,
            Failure::Invalid(_) => 4,
            Failure::Conflict(_) => 5,
            Failure::Unreachable { .. } | Failure::NoneReachable(_) => 6,
            Failure::Unauthorized(_) | Failure::Forbidden(_) => 7,
            Failure::Unacknowledged(_) => 8,
            Failure::Refused(_) => 9,
            Failure::OutcomeUnknown { .. } => 10,
            Failure::StoreUnavailable(_) => 11,
        }
    }

    /// The failure a server answer means; `None` for the ones without an exit code of their
    /// own, which are reported as they are.
    pub(crate) fn from_status(status: &Status, address: &str, environment: &str) -> Option<Failure> {
        let message = status.message().to_owned();
        let conflict = [CURRENT_VERSION_KEY, CURRENT_REVISION_KEY]
            .iter()
            .any(|key| status.metadata().contains_key(*key));
        Some(match status.code() {
            // An unknown environment's message names it already.
            Code::NotFound if message.starts_with("no environment") => Failure::NotFound(message),
            Code::NotFound => Failure::NotFound(format!("{message} (environment {environment:?})")),
            Code::InvalidArgument => Failure::Invalid(message),
            Code::FailedPrecondition if conflict => Failure::Conflict(message),
            Code::FailedPrecondition => Failure::Refused(message),
            // A bookmark or environment name that is taken.
            Code::AlreadyExists => Failure::Conflict(message),
            Code::Unauthenticated => Failure::Unauthorized(message),
            Code::PermissionDenied => Failure::Forbidden(message),
            Code::Unavailable if status.metadata().contains_key(STORE_UNAVAILABLE_KEY) => {
                Failure::StoreUnavailable(message)
            }
            Code::Unavailable => Failure::Unreachable { address: address.to_owned(), cause: message },
            Code::OutOfRange | Code::ResourceExhausted if too_large(&message).is_some() => {
                Failure::Invalid(too_large(&message).unwrap_or_default())
            }
            Code::Unimplemented => Failure::Unreachable {
                address: address.to_owned(),
                cause: "it does not serve the flagd API (the management port, or another server?)".into(),
            },
            _ => return None,
        })
    }
}

/// tonic's "message length too large: found N bytes, the limit is: L bytes" (from either
/// side, encoding or decoding) as a person reads it; `None` for any other message. The sizes
/// come from the message, so this holds whatever limits the two sides set.
fn too_large(message: &str) -> Option<String> {
    let (_, rest) = message.split_once("message length too large: found ")?;
    let (found, rest) = rest.split_once(" bytes, the limit is: ")?;
    let limit = rest.trim_end_matches(" bytes");
    let (found, limit) = (found.parse::<u64>().ok()?, limit.parse::<u64>().ok()?);
    let side = if message.contains("encoded") { "to send" } else { "to receive" };
    Some(format!(
        "a message of {} is too large {side}: the limit is {} for one message; \
         write less at once (split the file) or make the flag smaller",
        bytes(found),
        bytes(limit)
    ))
}

/// `5242880` → `5242880 bytes (5.0 MiB)`.
fn bytes(count: u64) -> String {
    format!("{count} bytes ({:.1} MiB)", count as f64 / f64::from(1 << 20))
}

/// A server answer as an error: a [`Failure`] when it has an exit code, else the status text.
pub(crate) fn status_error(status: Status, address: &str, environment: &str) -> anyhow::Error {
    match Failure::from_status(&status, address, environment) {
        Some(failure) => failure.into(),
        None => anyhow::anyhow!("flagd answered {:?}: {}", status.code(), status.message()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(status: Status) -> Option<Failure> {
        Failure::from_status(&status, "http://127.0.0.1:8013", "production")
    }

    #[test]
    fn a_principal_not_allowed_is_exit_7_with_the_server_s_words_and_no_token_hint() {
        let denied = r#"principal "ci-bot" (writer for staging) may not write environment "production""#;
        let Some(forbidden @ Failure::Forbidden(_)) = failure(Status::permission_denied(denied)) else {
            panic!("not forbidden")
        };
        assert_eq!(forbidden.exit_code(), 7);
        assert_eq!(forbidden.to_string(), format!("not allowed: {denied}"));
        let Some(wrong @ Failure::Unauthorized(_)) =
            failure(Status::unauthenticated("the token is not valid"))
        else {
            panic!("not unauthorized")
        };
        assert_eq!(wrong.exit_code(), 7);
        assert!(wrong.to_string().contains("--token"));
    }

    #[test]
    fn a_message_over_the_size_limit_is_invalid_input_with_both_sizes() {
        // As tonic words them: the server decoding a request, and a client encoding one.
        for (status, side) in [
            (
                Status::out_of_range(
                    "Error, decoded message length too large: found 5242880 bytes, the limit is: 4194304 bytes",
                ),
                "to receive",
            ),
            (
                Status::out_of_range(
                    "Error, encoded message length too large: found 70000000 bytes, the limit is: 67108864 bytes",
                ),
                "to send",
            ),
        ] {
            let Some(failure @ Failure::Invalid(_)) = failure(status) else { panic!("not invalid input") };
            assert_eq!(failure.exit_code(), 4);
            let message = failure.to_string();
            assert!(message.contains(side), "{message}");
            assert!(message.contains("bytes") && message.contains("the limit is"), "{message}");
        }
        let message = too_large(
            "Error, decoded message length too large: found 5242880 bytes, the limit is: 4194304 bytes",
        )
        .unwrap();
        assert!(message.contains("5242880 bytes (5.0 MiB)") && message.contains("4194304 bytes (4.0 MiB)"));
        // Another out-of-range answer keeps its own text.
        assert!(failure(Status::out_of_range("something else")).is_none());
    }
}
