//! What a write knows of the client that asked for it, and what becomes of a write that
//! was not committed: shared by every Admin call that writes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use flag_proto::{Authorship, GRPC_TIMEOUT_KEY};
use tonic::Request;
use tracing::info;

use crate::auth::Caller;
use crate::status::RequestError;
use crate::store::{WriteError, WriteMeta};

/// What the writer needs to know of the client that asked for a write: who it is, and
/// whether it still waits for the answer. A write is queued behind others; one whose client has gone by its
/// turn (its `grpc-timeout` passed, or the call was cancelled) is not committed, so a client
/// told "timed out" is not surprised by a change minutes later.
#[derive(Debug)]
pub(crate) struct Client {
    /// From the `grpc-timeout` header, counted from when the request arrived.
    deadline: Option<Instant>,
    /// Cleared when the request future is dropped: tonic drops it when the call is
    /// cancelled or the connection goes.
    present: Presence,
    author: Author,
}

impl Client {
    pub(crate) fn of<T>(request: &Request<T>) -> Client {
        let timeout = request
            .metadata()
            .get(GRPC_TIMEOUT_KEY)
            .and_then(|value| value.to_str().ok())
            .and_then(grpc_timeout);
        Client {
            deadline: timeout.and_then(|timeout| Instant::now().checked_add(timeout)),
            present: Presence::default(),
            author: Author::of(request),
        }
    }

    /// Who and why, as history records the write.
    pub(crate) fn meta(&self, change: Authorship) -> WriteMeta {
        self.author.meta(change)
    }
}

impl Client {
    /// Whether the client still waits, for the blocking task to ask at the write's turn, and
    /// the guard that says so: keep it until the answer is built.
    pub(crate) fn still_wanted(self) -> (impl Fn() -> bool + Send + 'static, Presence) {
        let Client { deadline, present, author: _ } = self;
        let still_there = present.watcher();
        let wanted =
            move || still_there.present() && deadline.is_none_or(|deadline| Instant::now() < deadline);
        (wanted, present)
    }
}

/// A flag set to false when the request's future is dropped. An `AtomicBool` in an `Arc`
/// because the blocking task reads it on another thread, with no lock to wait for.
#[derive(Debug, Default)]
pub(crate) struct Presence(Arc<AtomicBool>);

/// The blocking task's view of a [`Presence`].
struct PresenceWatch(Arc<AtomicBool>);

impl Presence {
    fn watcher(&self) -> PresenceWatch {
        self.0.store(true, Ordering::SeqCst);
        PresenceWatch(Arc::clone(&self.0))
    }
}

impl Drop for Presence {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl PresenceWatch {
    fn present(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Why a write was not committed.
pub(crate) enum Unwritten {
    /// Its client had gone when its turn came.
    Abandoned,
    /// The store refused or failed it.
    Failed(WriteError),
}

/// The request's error for a write that was not committed; an abandoned one is counted.
pub(crate) fn unwritten(error: Unwritten, environment: &str, operation: &'static str) -> RequestError {
    match error {
        Unwritten::Abandoned => {
            metrics::counter!("flagd_writes_abandoned_total").increment(1);
            info!(%environment, operation, "client gone before its write's turn; nothing written");
            RequestError::Abandoned
        }
        Unwritten::Failed(error) => RequestError::Write(error),
    }
}

impl From<WriteError> for Unwritten {
    fn from(error: WriteError) -> Self {
        Unwritten::Failed(error)
    }
}

/// A `grpc-timeout` value: up to 8 digits and a unit (H, M, S, m, u, n); `None` when it is
/// not one (then the write has no deadline, as without the header).
fn grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// Whom a write is by: the principal whose token the request carried, or, on a server
/// without tokens, nobody the server knows.
#[derive(Debug, Clone, Default)]
pub(crate) struct Author {
    principal: Option<String>,
}

impl Author {
    pub(crate) fn of<T>(request: &Request<T>) -> Author {
        let principal =
            Caller::of(request).and_then(Caller::principal).map(|principal| principal.name.clone());
        Author { principal }
    }

    /// Who and why, as history records it. The actor is the principal; the actor the
    /// client names (`Change.actor`) is kept beside it when it is someone else, never
    /// instead of it. Without tokens, the client's actor is all there is.
    pub(crate) fn meta(&self, change: Authorship) -> WriteMeta {
        let Authorship { actor, reason } = change;
        match &self.principal {
            None => WriteMeta {
                actor: if actor.is_empty() { "unknown".into() } else { actor },
                on_behalf_of: None,
                reason,
            },
            Some(principal) => WriteMeta {
                on_behalf_of: (!actor.is_empty() && actor != *principal).then_some(actor),
                actor: principal.clone(),
                reason,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_values_in_every_unit_and_refusals() {
        assert_eq!(grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(grpc_timeout("2M"), Some(Duration::from_secs(120)));
        assert_eq!(grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(grpc_timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(grpc_timeout("9n"), Some(Duration::from_nanos(9)));
        for bad in ["", "S", "5", "5s", "123456789S", "-1S", "1.5S"] {
            assert_eq!(grpc_timeout(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_principal_is_the_actor_and_whom_the_client_names_is_kept_beside_it() {
        let by = |actor: &str| Authorship { actor: actor.into(), reason: "why".into() };
        let open = Author::default();
        assert_eq!(open.meta(by("ana")).actor, "ana");
        assert_eq!(open.meta(by("")).actor, "unknown");
        assert_eq!(open.meta(by("ana")).on_behalf_of, None);
        let bot = Author { principal: Some("ci-bot".into()) };
        let meta = bot.meta(by("ana"));
        assert_eq!(
            (meta.actor.as_str(), meta.on_behalf_of.as_deref(), meta.reason.as_str()),
            ("ci-bot", Some("ana"), "why")
        );
        for same in ["ci-bot", ""] {
            let meta = bot.meta(by(same));
            assert_eq!((meta.actor.as_str(), meta.on_behalf_of), ("ci-bot", None), "{same:?}");
        }
    }

    #[test]
    fn a_dropped_request_is_seen_as_gone() {
        let client = Client::of(&Request::new(()));
        assert!(client.deadline.is_none());
        let watch = client.present.watcher();
        assert!(watch.present());
        drop(client);
        assert!(!watch.present());
    }
}
