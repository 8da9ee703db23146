//! The PostgreSQL side of the backend: a small pool of connections, transactions shaped
//! like redb's, and the SQL of each table operation.
//!
//! - **Reads** run in `REPEATABLE READ, READ ONLY` transactions: every query of one sees
//!   the same snapshot, as a redb read transaction does.
//! - **Writes** take the row lock of `flagd_writer` first, so writes run one at a time,
//!   across every flagd on the database, as redb runs one write transaction at a time. That
//!   is what keeps an environment's revisions gap-free and in commit order: the next one is
//!   read and written inside the locked transaction, never taken from a sequence. A row lock
//!   rather than an advisory lock because CockroachDB and YugabyteDB have row locks too.
//! - **Statements** are prepared once per connection and kept with it.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use postgres::types::ToSql;
use postgres::{Client, NoTls, Row, Statement};

use super::super::error::StoreError;
use super::codec::Param;
use super::schema;

/// How long a call waits for a free connection, and for a new one to be made.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the database is and how many connections the store may hold.
pub(crate) struct Pool {
    config: postgres::Config,
    /// The URL without its password, for messages.
    shown: String,
    max: usize,
    idle: Mutex<Idle>,
    freed: Condvar,
    /// The session holding the store's advisory lock (see [`Pool::hold`]).
    holder: Mutex<Option<Holder>>,
    /// Set when the hold was lost and taken again: another flagd may have written
    /// meanwhile, so the writer rereads the store before its next write (see
    /// [`Pool::take_reread`]), whichever call noticed.
    reread: std::sync::atomic::AtomicBool,
}

/// A connection whose session holds the store's advisory lock, and its server process id.
struct Holder {
    connection: Connection,
    pid: i32,
}

struct Idle {
    connections: Vec<Connection>,
    /// Connections out of the pool now, in use.
    lent: usize,
}

/// One connection with the statements prepared on it.
pub(crate) struct Connection {
    client: Client,
    statements: HashMap<String, Statement>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool").field("database", &self.shown).field("max", &self.max).finish()
    }
}

impl Pool {
    /// A pool of at most `max` connections to `url` (a `postgres://` URL or a libpq
    /// key=value string); connects once now, so a wrong URL fails at start.
    pub(crate) fn connect(url: &str, max: usize) -> Result<Arc<Pool>, StoreError> {
        let mut config: postgres::Config =
            url.parse().map_err(|source| StoreError::postgres("reading the database URL", source))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("flagd");
        }
        let pool = Arc::new(Pool {
            shown: without_password(url),
            config,
            max: max.max(1),
            idle: Mutex::new(Idle { connections: Vec::new(), lent: 0 }),
            freed: Condvar::new(),
            holder: Mutex::new(None),
            reread: std::sync::atomic::AtomicBool::new(false),
        });
        let first = pool.take()?;
        pool.give_back(first);
        Ok(pool)
    }

    /// Takes the store's advisory lock on a session of its own and keeps it: one flagd
    /// writes to a store at a time. Each writer caches the environments it validates
    /// against, so a second one writing the same tables would validate against a stale
    /// copy; until replicas share their changes, a second flagd is refused at start. The
    /// lock goes with the session, so a flagd that dies (even by SIGKILL) frees it.
    pub(crate) fn hold(&self) -> Result<(), StoreError> {
        let mut connection = self.open()?;
        let rows = connection.query(schema::TRY_HOLD, &[])?;
        let held: bool = rows.first().and_then(|row| row.try_get(0).ok()).unwrap_or(false);
        if !held {
            return Err(StoreError::DatabaseInUse { database: self.shown.clone() });
        }
        let pid: i32 = connection
            .query("SELECT pg_backend_pid()", &[])?
            .first()
            .and_then(|row| row.try_get(0).ok())
            .unwrap_or_default();
        *self.holder.lock().unwrap_or_else(PoisonError::into_inner) = Some(Holder { connection, pid });
        Ok(())
    }

    /// Inside a write transaction: whether this process still holds the store. After the
    /// database restarted, the lock went with the old session; it is taken again (if no
    /// other flagd took it meanwhile), and the write refused once so that the writer reads
    /// the store afresh (`HoldLost` drops its cache).
    fn check_hold(&self, txn: &Transaction) -> Result<(), StoreError> {
        let pid =
            self.holder.lock().unwrap_or_else(PoisonError::into_inner).as_ref().map(|holder| holder.pid);
        if let Some(pid) = pid
            && !txn.query(schema::HOLDS, &[Param::Int(i64::from(pid))])?.is_empty()
        {
            return Ok(());
        }
        self.release_hold();
        self.reread.store(true, std::sync::atomic::Ordering::SeqCst);
        self.hold()?;
        Err(StoreError::HoldLost)
    }

    /// Whether the writer must reread the store before its next write; clears the flag.
    pub(crate) fn take_reread(&self) -> bool {
        self.reread.swap(false, std::sync::atomic::Ordering::SeqCst)
    }

    /// Lets go of the advisory lock (when its session still lives) and of its connection.
    fn release_hold(&self) {
        let holder = self.holder.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(mut holder) = holder {
            // Explicitly: a dropped connection's session may end a little later, and a
            // flagd opening the store again meanwhile would be refused.
            let _ = holder.connection.query(schema::RELEASE, &[]);
        }
    }

    /// The database's URL without its password.
    pub(crate) fn shown(&self) -> &str {
        &self.shown
    }

    /// A connection: an idle one, a new one while fewer than `max` are out, or the first
    /// one given back.
    pub(crate) fn take(&self) -> Result<Connection, StoreError> {
        let mut idle = self.lock();
        loop {
            if let Some(connection) = idle.connections.pop() {
                idle.lent += 1;
                return Ok(connection);
            }
            if idle.lent < self.max {
                idle.lent += 1;
                drop(idle);
                return self.open().inspect_err(|_| {
                    self.lock().lent -= 1;
                    self.freed.notify_one();
                });
            }
            let (guard, waited) =
                self.freed.wait_timeout(idle, CONNECT_TIMEOUT).unwrap_or_else(PoisonError::into_inner);
            idle = guard;
            if waited.timed_out() && idle.connections.is_empty() && idle.lent >= self.max {
                return Err(StoreError::PoolExhausted { max: self.max, waited: CONNECT_TIMEOUT });
            }
        }
    }

    /// Returns a connection; one that broke is dropped, and the next `take` makes another.
    pub(crate) fn give_back(&self, connection: Connection) {
        let mut idle = self.lock();
        idle.lent -= 1;
        if !connection.client.is_closed() {
            idle.connections.push(connection);
        }
        drop(idle);
        self.freed.notify_one();
    }

    /// Forgets a connection whose state is unknown (a transaction that could not be ended).
    pub(crate) fn discard(&self, connection: Connection) {
        drop(connection);
        self.lock().lent -= 1;
        self.freed.notify_one();
    }

    fn open(&self) -> Result<Connection, StoreError> {
        let client = self
            .config
            .connect(NoTls)
            .map_err(|source| StoreError::postgres("connecting to the database", source))?;
        Ok(Connection { client, statements: HashMap::new() })
    }

    fn lock(&self) -> MutexGuard<'_, Idle> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The sync client closes a connection by blocking on its own runtime, which panics on a
/// thread that drives async tasks — where the server drops its state at shutdown. So the
/// last connections are closed on a thread of their own.
impl Drop for Pool {
    fn drop(&mut self) {
        let idle =
            std::mem::take(&mut self.idle.get_mut().unwrap_or_else(PoisonError::into_inner).connections);
        let holder = self.holder.get_mut().unwrap_or_else(PoisonError::into_inner).take();
        let close = move || {
            if let Some(mut holder) = holder {
                let _ = holder.connection.query(schema::RELEASE, &[]);
            }
            drop(idle);
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            let _ = std::thread::spawn(close).join();
        } else {
            close();
        }
    }
}

/// `url` with the password replaced by `***`, for messages and logs.
pub(crate) fn without_password(url: &str) -> String {
    let url = match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((user, host)) if user.contains(':') => {
                let name = user.split(':').next().unwrap_or_default();
                format!("{scheme}://{name}:***@{host}")
            }
            _ => url.to_owned(),
        },
        None => url.to_owned(),
    };
    redact_password_fields(&url)
}

/// `password=…` replaced by `password=***`, as a URL's query parameter (up to `&`) or a
/// libpq `key=value` field (up to a space, or quoted).
fn redact_password_fields(text: &str) -> String {
    const FIELD: &str = "password=";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(FIELD) {
        let value = &rest[at + FIELD.len()..];
        let end = match value.strip_prefix('\'') {
            Some(quoted) => quoted.find('\'').map_or(value.len(), |close| close + 2),
            None => value.find(['&', ' ']).unwrap_or(value.len()),
        };
        out.push_str(&rest[..at + FIELD.len()]);
        out.push_str("***");
        rest = &value[end..];
    }
    out.push_str(rest);
    out
}

impl Connection {
    /// Runs statements without parameters or results (`BEGIN`, DDL).
    pub(crate) fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        self.client.batch_execute(sql).map_err(|source| StoreError::postgres(first_words(sql), source))
    }

    /// Runs `sql`, prepared once per connection, with `params`.
    pub(crate) fn query(&mut self, sql: &str, params: &[Param]) -> Result<Vec<Row>, StoreError> {
        let statement = match self.statements.get(sql) {
            Some(statement) => statement.clone(),
            None => {
                let statement = self
                    .client
                    .prepare(sql)
                    .map_err(|source| StoreError::postgres("preparing a statement", source))?;
                self.statements.insert(sql.to_owned(), statement.clone());
                statement
            }
        };
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        self.client
            .query(&statement, &params)
            .map_err(|source| StoreError::postgres(first_words(sql), source))
    }
}

/// The statement's first words, naming it in errors.
fn first_words(sql: &str) -> &'static str {
    let sql = sql.trim_start();
    for (start, name) in [
        ("BEGIN", "starting a transaction"),
        ("COMMIT", "committing"),
        ("ROLLBACK", "rolling back"),
        ("SELECT", "reading rows"),
        ("INSERT", "writing a row"),
        ("DELETE", "deleting a row"),
        ("SET", "setting a transaction option"),
    ] {
        if sql.starts_with(start) {
            return name;
        }
    }
    "changing the schema"
}

/// One transaction on one connection, ended by `commit` or, when dropped, rolled back.
/// Tables of the transaction share it, so the connection sits behind a lock taken for each
/// statement.
pub(crate) struct Transaction {
    pool: Arc<Pool>,
    connection: Mutex<Option<Connection>>,
    /// A statement failed: PostgreSQL has aborted the transaction, and would answer its
    /// `COMMIT` with a rollback that reads as success.
    failed: std::sync::atomic::AtomicBool,
}

impl Transaction {
    /// A read transaction: one snapshot for every query in it.
    pub(crate) fn read(pool: &Arc<Pool>) -> Result<Transaction, StoreError> {
        // `SELECT 1` takes the snapshot now: PostgreSQL takes it at the first statement,
        // and callers rely on it being the state when this returned (`Writer::peek`).
        Transaction::begin(pool, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SELECT 1")
    }

    /// A read-write transaction without the writers' lock: the migrations', which make it.
    pub(crate) fn unlocked(pool: &Arc<Pool>) -> Result<Transaction, StoreError> {
        Transaction::begin(pool, "BEGIN ISOLATION LEVEL READ COMMITTED")
    }

    /// A write transaction, holding the writers' lock until it ends.
    pub(crate) fn write(pool: &Arc<Pool>) -> Result<Transaction, StoreError> {
        let txn = Transaction::begin(pool, "BEGIN ISOLATION LEVEL READ COMMITTED")?;
        txn.query(schema::LOCK_WRITERS, &[])?;
        pool.check_hold(&txn)?;
        Ok(txn)
    }

    /// Starts a transaction on a pooled connection. An idle connection may have died with
    /// the server (a restart) without the client noticing until used: its `BEGIN` fails
    /// having done nothing, so it is dropped and the next one tried, up to a new one.
    fn begin(pool: &Arc<Pool>, begin: &str) -> Result<Transaction, StoreError> {
        let mut attempts = pool.max + 1;
        loop {
            attempts -= 1;
            let mut connection = pool.take()?;
            match connection.batch(begin) {
                Ok(()) => {
                    return Ok(Transaction {
                        pool: Arc::clone(pool),
                        connection: Mutex::new(Some(connection)),
                        failed: std::sync::atomic::AtomicBool::new(false),
                    });
                }
                Err(error) if error.database_unreachable() && attempts > 0 => pool.discard(connection),
                Err(error) => {
                    pool.give_back(connection);
                    return Err(error);
                }
            }
        }
    }

    /// Runs one statement of the transaction.
    pub(crate) fn query(&self, sql: &str, params: &[Param]) -> Result<Vec<Row>, StoreError> {
        let mut slot = self.connection.lock().unwrap_or_else(PoisonError::into_inner);
        let connection = slot.as_mut().ok_or(StoreError::TransactionEnded)?;
        connection
            .query(sql, params)
            .inspect_err(|_| self.failed.store(true, std::sync::atomic::Ordering::Relaxed))
    }

    /// Runs statements without parameters inside the transaction.
    pub(crate) fn batch(&self, sql: &str) -> Result<(), StoreError> {
        let mut slot = self.connection.lock().unwrap_or_else(PoisonError::into_inner);
        let result = slot.as_mut().ok_or(StoreError::TransactionEnded)?.batch(sql);
        result.inspect_err(|_| self.failed.store(true, std::sync::atomic::Ordering::Relaxed))
    }

    /// Commits: durable when this returns, unless the transaction turned durability off.
    /// On an error the outcome is unknown (the connection may have gone after PostgreSQL
    /// committed), as with a failed redb commit.
    pub(crate) fn commit(self) -> Result<(), StoreError> {
        if self.failed.load(std::sync::atomic::Ordering::Relaxed) {
            // Dropping rolls it back.
            return Err(StoreError::TransactionFailed);
        }
        let connection = self.connection.lock().unwrap_or_else(PoisonError::into_inner).take();
        let Some(mut connection) = connection else { return Err(StoreError::TransactionEnded) };
        match connection.client.batch_execute("COMMIT") {
            Ok(()) => {
                self.pool.give_back(connection);
                Ok(())
            }
            Err(source) => {
                self.pool.discard(connection);
                Err(StoreError::PostgresCommit(source))
            }
        }
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        let connection = self.connection.get_mut().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(mut connection) = connection {
            match connection.client.batch_execute("ROLLBACK") {
                Ok(()) => self.pool.give_back(connection),
                Err(_) => self.pool.discard(connection),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::without_password;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            without_password("postgres://flagd:s3cret@db:5432/flags"),
            "postgres://flagd:***@db:5432/flags"
        );
        assert_eq!(
            without_password("postgres://flagd@db/flags?password=s3cret&sslmode=disable"),
            "postgres://flagd@db/flags?password=***&sslmode=disable"
        );
        assert_eq!(
            without_password("host=db user=flagd password='s3 cret' dbname=flags"),
            "host=db user=flagd password=*** dbname=flags"
        );
        assert_eq!(without_password("postgres://flagd@db/flags"), "postgres://flagd@db/flags");
    }
}
