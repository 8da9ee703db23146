//! Hearing of other flagds' commits: a session of its own `LISTEN`s on the change channel.
//! A trigger on the environments' table notifies it of every revision committed
//! (`revision N ENV SCHEMA`) and of every environment deleted (`deleted ENV SCHEMA`),
//! delivered when the transaction commits. The channel is the database's: notifications
//! of a store in another schema are not this store's, and are passed over.
//!
//! What it hears only wakes the follower (`crate::replica`), which then reads the changes
//! since what it last streamed — of the environments named, or of every one after a
//! (re)connection or a notification it cannot read: so a lost notification, or any sent
//! while this session was down, costs nothing but the time until the next wake-up — one
//! after every (re)connection, and the follower's own periodic catch-up.

use std::collections::HashMap;
use std::thread;
use std::time::Duration;

use postgres::Client;
use postgres::fallible_iterator::FallibleIterator;
use tokio::sync::watch;

use super::schema::CHANGES_CHANNEL;
use super::tls::Tls;

/// How long one wait for a notification lasts before the session is checked.
const WAIT: Duration = Duration::from_secs(1);
/// How many waits pass between checks that the database still answers: a session whose
/// peer vanished (no reset, no close) would otherwise wait silently forever.
const WAITS_PER_PING: u32 = 5;
/// Reconnection backoff: the first pause, and the longest.
const FIRST_PAUSE: Duration = Duration::from_millis(100);
const LONGEST_PAUSE: Duration = Duration::from_secs(5);

/// What was heard since the follower last took it (see `Heard::take`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Heard {
    /// Environments that moved on, each with the newest revision heard of.
    pub(crate) revisions: HashMap<String, u64>,
    /// Something that names no revision: a deletion, a (re)connection, a notification of
    /// another form. Every environment is read.
    pub(crate) everything: bool,
}

/// One notification, read (see the module's note). Environment names have no spaces;
/// the schema's name, last, may.
#[derive(Debug, PartialEq, Eq)]
enum Notice<'a> {
    Revision { revision: u64, environment: &'a str, schema: &'a str },
    Deleted { schema: &'a str },
    Unknown,
}

impl<'a> Notice<'a> {
    fn read(payload: &'a str) -> Notice<'a> {
        let read = || {
            if let Some(rest) = payload.strip_prefix("revision ") {
                let (revision, rest) = rest.split_once(' ')?;
                let (environment, schema) = rest.split_once(' ')?;
                return Some(Notice::Revision { revision: revision.parse().ok()?, environment, schema });
            }
            let (_, schema) = payload.strip_prefix("deleted ")?.split_once(' ')?;
            Some(Notice::Deleted { schema })
        };
        read().unwrap_or(Notice::Unknown)
    }
}

impl Heard {
    /// Notes one notification's payload, heard by a session whose store is in `schema`.
    pub(crate) fn note(&mut self, payload: &str, schema: &str) {
        match Notice::read(payload) {
            Notice::Revision { schema: theirs, .. } | Notice::Deleted { schema: theirs }
                if theirs != schema => {}
            Notice::Revision { revision, environment, .. } => {
                let newest = self.revisions.entry(environment.to_owned()).or_default();
                *newest = (*newest).max(revision);
            }
            Notice::Deleted { .. } | Notice::Unknown => self.everything = true,
        }
    }

    /// Takes what `wake` holds, leaving nothing heard, without waking anyone.
    pub(crate) fn take(wake: &watch::Sender<Heard>) -> Heard {
        let mut taken = Heard::default();
        wake.send_if_modified(|heard| {
            taken = std::mem::take(heard);
            false
        });
        taken
    }
}

/// Listens on a thread of its own, adding to `wake` what each notification names (and
/// "everything" after every (re)connection), until nobody follows `wake` any more.
pub(super) fn spawn(config: postgres::Config, tls: Tls, wake: watch::Sender<Heard>) -> std::io::Result<()> {
    thread::Builder::new().name("flagd-listen".into()).spawn(move || listen(&config, &tls, &wake)).map(drop)
}

fn listen(config: &postgres::Config, tls: &Tls, wake: &watch::Sender<Heard>) {
    let woken = || wake.send_modify(|heard| heard.everything = true);
    let mut pause = FIRST_PAUSE;
    while !wake.is_closed() {
        let listening = tls.connect(config).and_then(|mut client| {
            client.batch_execute(&format!("LISTEN {CHANGES_CHANNEL}"))?;
            let schema: Option<String> = client.query_one("SELECT current_schema()", &[])?.try_get(0)?;
            Ok((client, schema.unwrap_or_default()))
        });
        match listening {
            Ok((mut client, schema)) => {
                pause = FIRST_PAUSE;
                woken();
                wait_for_notifications(&mut client, &schema, wake);
                if wake.is_closed() {
                    return;
                }
                tracing::warn!("PostgreSQL change notifications lost; listening again");
            }
            Err(error) => {
                tracing::debug!(%error, ?pause, "PostgreSQL unreachable for change notifications; trying again")
            }
        }
        thread::sleep(pause);
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}

/// Returns when the session breaks or nobody follows `wake` any more.
fn wait_for_notifications(client: &mut Client, schema: &str, wake: &watch::Sender<Heard>) {
    let mut waits = 0;
    while !wake.is_closed() {
        {
            let mut notifications = client.notifications();
            let heard = notifications.timeout_iter(WAIT).next();
            match heard {
                Ok(Some(first)) => {
                    // Those received meanwhile wake the follower once, with this one.
                    let mut payloads = vec![first.payload().to_owned()];
                    while let Ok(Some(more)) = notifications.iter().next() {
                        payloads.push(more.payload().to_owned());
                    }
                    wake.send_modify(|heard| payloads.iter().for_each(|payload| heard.note(payload, schema)));
                }
                Ok(None) => {}
                Err(_) => return,
            }
        }
        waits += 1;
        if client.is_closed() || (waits % WAITS_PER_PING == 0 && client.batch_execute("SELECT 1").is_err()) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revision_names_its_environment_and_the_newest_revision_is_kept() {
        let mut heard = Heard::default();
        heard.note("revision 7 production public", "public");
        heard.note("revision 5 production public", "public");
        heard.note("revision 2 staging my schema", "my schema");
        heard.note("revision 3 staging my schema", "public");
        assert_eq!(heard.revisions.get("production"), Some(&7));
        assert_eq!(heard.revisions.get("staging"), Some(&2), "not another schema's 3");
        assert!(!heard.everything);
    }

    #[test]
    fn another_stores_notifications_are_passed_over() {
        let mut heard = Heard::default();
        heard.note("revision 9 production other", "public");
        heard.note("deleted production other", "public");
        assert_eq!(heard, Heard::default());
    }

    #[test]
    fn a_deletion_or_an_unknown_payload_reads_every_environment() {
        let payloads = [
            "deleted production public",
            "",
            "revision x production public",
            "revision 3 production",
            "deleted",
        ];
        for payload in payloads {
            let mut heard = Heard::default();
            heard.note(payload, "public");
            assert!(heard.everything, "{payload:?}");
            assert!(heard.revisions.is_empty(), "{payload:?}");
        }
    }

    #[test]
    fn taking_leaves_nothing_and_wakes_nobody() {
        let (wake, mut woken) = watch::channel(Heard::default());
        wake.send_modify(|heard| heard.note("revision 1 staging public", "public"));
        woken.borrow_and_update();
        let taken = Heard::take(&wake);
        assert_eq!(taken.revisions.get("staging"), Some(&1));
        assert_eq!(*woken.borrow(), Heard::default());
        assert!(!woken.has_changed().unwrap_or(true));
    }
}
