//! Hearing of other flagds' commits: a session of its own `LISTEN`s on the change channel,
//! to which every write transaction sends a notification, delivered when it commits.
//!
//! A notification only wakes the follower (`crate::replica`), which then reads what changed
//! since what it last streamed: so a lost notification, or any sent while this session was
//! down, costs nothing but the time until the next wake-up — one after every (re)connection,
//! and the follower's own periodic catch-up.

use std::thread;
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, NoTls};
use tokio::sync::watch;

use super::schema::CHANGES_CHANNEL;

/// How long one wait for a notification lasts before the session is checked.
const WAIT: Duration = Duration::from_secs(1);
/// How many waits pass between checks that the database still answers: a session whose
/// peer vanished (no reset, no close) would otherwise wait silently forever.
const WAITS_PER_PING: u32 = 5;
/// Reconnection backoff: the first pause, and the longest.
const FIRST_PAUSE: Duration = Duration::from_millis(100);
const LONGEST_PAUSE: Duration = Duration::from_secs(5);

/// Listens on a thread of its own, adding one to `wake` on every notification and after
/// every (re)connection, until nobody follows `wake` any more.
pub(super) fn spawn(config: postgres::Config, wake: watch::Sender<u64>) -> std::io::Result<()> {
    thread::Builder::new().name("flagd-listen".into()).spawn(move || listen(&config, &wake)).map(drop)
}

fn listen(config: &postgres::Config, wake: &watch::Sender<u64>) {
    let woken = || wake.send_modify(|count| *count = count.wrapping_add(1));
    let mut pause = FIRST_PAUSE;
    while !wake.is_closed() {
        let listening = config.connect(NoTls).and_then(|mut client| {
            client.batch_execute(&format!("LISTEN {CHANGES_CHANNEL}")).map(|()| client)
        });
        match listening {
            Ok(mut client) => {
                pause = FIRST_PAUSE;
                woken();
                wait_for_notifications(&mut client, wake, woken);
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
fn wait_for_notifications(client: &mut Client, wake: &watch::Sender<u64>, woken: impl Fn()) {
    let mut waits = 0;
    while !wake.is_closed() {
        {
            let mut notifications = client.notifications();
            let heard = notifications.timeout_iter(WAIT).next();
            match heard {
                Ok(Some(_)) => {
                    // Those received meanwhile wake the follower once, with this one.
                    while let Ok(Some(_)) = notifications.iter().next() {}
                    woken();
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
