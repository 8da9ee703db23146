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
//! - **Generations**: a write of flags, segments or environments adds one to the row's
//!   `generation` as it takes that lock, so every such commit of any flagd moves it on.
//!   Each flagd's writer caches the environments it validates against; it knows the
//!   generation its cache reflects, and a write that finds another (a replica committed
//!   meanwhile) reads the store afresh first (see `Writer::transact`).
//!   A trigger on the environments' table announces each revision on the
//!   `flagd_changes` channel, delivered on commit, which wakes the other replicas to
//!   stream the change to their SDKs (see `listen` and `crate::replica`).
//! - **Statements** are prepared once per connection and kept with it. Row upserts wait
//!   for the transaction's next statement or its commit and go with it as one (`upserts`).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use postgres::types::ToSql;
use postgres::{Client, Row, SimpleQueryMessage, Statement};

use super::super::error::StoreError;
use super::codec::Param;
use super::schema::{self, SqlTable};
use super::tls::Tls;
use super::upserts::Upserts;
use crate::ca_file::CaFile;

/// TCP keepalives on every session: idle time before the first probe, and between probes.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(5);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(2);
/// What the database's side of the leader's session does: when the leader's host or network
/// goes without a word, PostgreSQL ends its session, and with it the lock, in seconds (by
/// default it would keep it for hours), so another flagd takes over.
const LEADER_KEEPALIVES: &str =
    "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; SET tcp_keepalives_count = 3";

/// How long a call waits for a free connection, and for a new one to be made.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the database is and how many connections the store may hold.
pub(crate) struct Pool {
    config: postgres::Config,
    /// Plaintext, or TLS with the server's certificate checked (see `tls`).
    tls: Tls,
    /// The URL without its password, for messages.
    shown: String,
    max: usize,
    idle: Mutex<Idle>,
    freed: Condvar,
    /// The session holding the store's advisory lock while this flagd leads (see
    /// [`Pool::leads`]).
    leader: Mutex<Option<Leader>>,
    /// The generation the writer's cache reflects; `UNKNOWN` until it is first loaded.
    cache_generation: AtomicI64,
}

/// The session that holds, or tries for, the store's advisory lock: kept, so that a flagd
/// that does not lead asks again without a new connection each time.
struct Leader {
    session: Connection,
    leads: bool,
}

impl Leader {
    /// Whether this session leads now: a lock taken is held while the session answers, one
    /// not taken is tried for again. `None` when the session broke.
    fn check(&mut self) -> Option<bool> {
        if self.leads {
            return self.session.batch("SELECT 1").ok().map(|()| true);
        }
        let rows = self.session.query(schema::TRY_LEAD, &[]).ok()?;
        self.leads = rows.first().and_then(|row| row.try_get::<_, bool>(0).ok()).unwrap_or(false);
        Some(self.leads)
    }
}

/// No generation: every generation read from the database is at least 0.
const UNKNOWN: i64 = -1;

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
    /// key=value string), over TLS checked against `ca` when the URL says `sslmode=require`;
    /// connects once now, so a wrong URL (or certificate) fails at start.
    pub(crate) fn connect(url: &str, max: usize, ca: Option<&CaFile>) -> Result<Arc<Pool>, StoreError> {
        let mut config: postgres::Config =
            url.parse().map_err(|source| StoreError::postgres("reading the database URL", source))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("flagd");
        }
        // A database host that vanished (no reset, no close) is noticed in seconds rather
        // than the kernel's two hours, unless the URL chose otherwise.
        if config.get_keepalives_interval().is_none() {
            config
                .keepalives_idle(KEEPALIVE_IDLE)
                .keepalives_interval(KEEPALIVE_INTERVAL)
                .keepalives_retries(3);
        }
        let pool = Arc::new(Pool {
            shown: without_password(url),
            tls: Tls::for_config(&config, ca),
            config,
            max: max.max(1),
            idle: Mutex::new(Idle { connections: Vec::new(), lent: 0 }),
            freed: Condvar::new(),
            leader: Mutex::new(None),
            cache_generation: AtomicI64::new(UNKNOWN),
        });
        let first = pool.take()?;
        pool.give_back(first);
        Ok(pool)
    }

    /// Whether this flagd leads the store's replicas: the one that runs the duties only one
    /// may run (advancing rollouts, delivering webhooks). The store's advisory lock, taken on
    /// a session of its own and kept; asked again each time, so that when the leader dies
    /// (even by SIGKILL, its session ends and the lock with it) another takes over, and when
    /// the database restarts the lock is taken again. `false` when the database cannot be
    /// reached.
    pub(crate) fn leads(&self) -> bool {
        let mut slot = self.leader.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(leads) = slot.as_mut().and_then(Leader::check) {
            return leads;
        }
        *slot = None;
        let session = self.open().and_then(|mut session| session.batch(LEADER_KEEPALIVES).map(|()| session));
        let session = match session {
            Ok(session) => session,
            Err(error) => {
                tracing::debug!(error = %super::super::chain(&error), "no session to lead the store's flagds");
                return false;
            }
        };
        let mut leader = Leader { session, leads: false };
        let leads = leader.check().unwrap_or(false);
        *slot = Some(leader);
        leads
    }

    /// Whether a transaction at `generation` sees the state the writer's cache reflects.
    pub(crate) fn cache_matches(&self, generation: i64) -> bool {
        self.cache_generation.load(Ordering::SeqCst) == generation
    }

    /// Records that the writer's cache was read at `generation`.
    pub(crate) fn cache_read_at(&self, generation: i64) {
        self.cache_generation.store(generation, Ordering::SeqCst);
    }

    /// Where the database is and how to reach it, for a session of another kind (see
    /// `listen`).
    pub(crate) fn config(&self) -> (&postgres::Config, &Tls) {
        (&self.config, &self.tls)
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
            .tls
            .connect(&self.config)
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
        let leader = self.leader.get_mut().unwrap_or_else(PoisonError::into_inner).take();
        let close = move || {
            if let Some(mut leader) = leader.filter(|leader| leader.leads) {
                // Explicitly: the session of a dropped connection may end a little later,
                // and another replica should take over at once.
                let _ = leader.session.query(schema::RELEASE, &[]);
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

    /// Runs statements without parameters and returns the first column of the last row
    /// any of them returned, in one round trip.
    fn batch_value(&mut self, sql: &str) -> Result<Option<String>, StoreError> {
        let messages =
            self.client.simple_query(sql).map_err(|source| StoreError::postgres(first_words(sql), source))?;
        Ok(messages.iter().rev().find_map(|message| match message {
            SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
            _ => None,
        }))
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
        ("UPDATE", "updating a row"),
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
    /// Row upserts not yet sent; locked only with `connection` held, after it.
    upserts: Mutex<Upserts>,
    /// The store's generation this transaction sees (for a write, the one before it); `None`
    /// for the migrations'.
    generation: Option<i64>,
    /// Whether committing it makes the next generation (a write of flags).
    writes: bool,
    /// A statement failed: PostgreSQL has aborted the transaction, and would answer its
    /// `COMMIT` with a rollback that reads as success.
    failed: std::sync::atomic::AtomicBool,
}

impl Transaction {
    /// A read transaction: one snapshot for every query in it.
    pub(crate) fn read(pool: &Arc<Pool>) -> Result<Transaction, StoreError> {
        // Reading the generation takes the snapshot now: PostgreSQL takes it at the first
        // statement, and callers rely on it being the state when this returned.
        Transaction::begin(pool, schema::BEGIN_READ, Some(false))
    }

    /// A read-write transaction without the writers' lock: the migrations', which make it.
    pub(crate) fn unlocked(pool: &Arc<Pool>) -> Result<Transaction, StoreError> {
        Transaction::begin(pool, "BEGIN ISOLATION LEVEL READ COMMITTED", None)
    }

    /// A write transaction, holding the writers' lock until it ends; `of_flags` when it
    /// writes flags, segments or environments (see `schema::BEGIN_FLAG_WRITE`).
    pub(crate) fn write(pool: &Arc<Pool>, of_flags: bool) -> Result<Transaction, StoreError> {
        match of_flags {
            true => Transaction::begin(pool, schema::BEGIN_FLAG_WRITE, Some(true)),
            false => Transaction::begin(pool, schema::BEGIN_WRITE, Some(false)),
        }
    }

    /// The store's generation this transaction sees; for a write, the one before it.
    pub(crate) fn generation(&self) -> Option<i64> {
        self.generation
    }

    /// Starts a transaction on a pooled connection. An idle connection may have died with
    /// the server (a restart) without the client noticing until used: its `BEGIN` fails
    /// having done nothing, so it is dropped and the next one tried, up to a new one.
    /// `generation`: `begin` ends with a statement that returns the store's generation —
    /// the next one, made by adding one, when `Some(true)`.
    fn begin(pool: &Arc<Pool>, begin: &str, generation: Option<bool>) -> Result<Transaction, StoreError> {
        let mut attempts = pool.max + 1;
        loop {
            attempts -= 1;
            let mut connection = pool.take()?;
            match connection.batch_value(begin) {
                Ok(value) => {
                    let mut txn = Transaction {
                        pool: Arc::clone(pool),
                        connection: Mutex::new(Some(connection)),
                        upserts: Mutex::new(Upserts::default()),
                        failed: std::sync::atomic::AtomicBool::new(false),
                        generation: None,
                        writes: generation == Some(true),
                    };
                    if generation.is_some() {
                        // Dropping `txn` on an error rolls it back.
                        let value: i64 =
                            value.and_then(|value| value.parse().ok()).ok_or(StoreError::WriterRowMissing)?;
                        txn.generation = Some(if txn.writes { value - 1 } else { value });
                    }
                    return Ok(txn);
                }
                Err(error) if error.database_unreachable() && attempts > 0 => pool.discard(connection),
                Err(error) => {
                    pool.give_back(connection);
                    return Err(error);
                }
            }
        }
    }

    /// Runs one statement of the transaction, after the upserts held before it.
    pub(crate) fn query(&self, sql: &str, params: &[Param]) -> Result<Vec<Row>, StoreError> {
        let mut slot = self.connection.lock().unwrap_or_else(PoisonError::into_inner);
        let connection = slot.as_mut().ok_or(StoreError::TransactionEnded)?;
        self.send_upserts(connection)?;
        connection
            .query(sql, params)
            .inspect_err(|_| self.failed.store(true, std::sync::atomic::Ordering::Relaxed))
    }

    /// Runs statements without parameters inside the transaction, after the upserts held
    /// before them.
    pub(crate) fn batch(&self, sql: &str) -> Result<(), StoreError> {
        let mut slot = self.connection.lock().unwrap_or_else(PoisonError::into_inner);
        let connection = slot.as_mut().ok_or(StoreError::TransactionEnded)?;
        self.send_upserts(connection)?;
        connection.batch(sql).inspect_err(|_| self.failed.store(true, std::sync::atomic::Ordering::Relaxed))
    }

    /// Upserts a row when the transaction next runs a statement or commits (see
    /// `upserts`), or now if enough are held.
    pub(crate) fn upsert(
        &self,
        table: SqlTable,
        cast: &'static str,
        key: Vec<Param>,
        value: Param,
    ) -> Result<(), StoreError> {
        self.hold(table, cast, key, Some(value))
    }

    /// Deletes a row when the transaction next runs a statement or commits, with the held
    /// upserts (see `upserts`), or now if enough are held.
    pub(crate) fn discard(&self, table: SqlTable, key: Vec<Param>) -> Result<(), StoreError> {
        self.hold(table, "", key, None)
    }

    /// Holds an upsert (`Some` value) or a delete, sending what is held once it is enough.
    fn hold(
        &self,
        table: SqlTable,
        cast: &'static str,
        key: Vec<Param>,
        value: Option<Param>,
    ) -> Result<(), StoreError> {
        let mut slot = self.connection.lock().unwrap_or_else(PoisonError::into_inner);
        let connection = slot.as_mut().ok_or(StoreError::TransactionEnded)?;
        let full = self.upserts.lock().unwrap_or_else(PoisonError::into_inner).hold(table, cast, key, value);
        if full {
            self.send_upserts(connection)?;
        }
        Ok(())
    }

    /// Sends the held upserts as one statement; a failure fails the transaction.
    fn send_upserts(&self, connection: &mut Connection) -> Result<(), StoreError> {
        let statement = self.upserts.lock().unwrap_or_else(PoisonError::into_inner).take();
        let Some(statement) = statement else { return Ok(()) };
        connection
            .query(&statement.sql, &statement.params)
            .map(drop)
            .inspect_err(|_| self.failed.store(true, std::sync::atomic::Ordering::Relaxed))
    }

    /// Commits: durable when this returns, unless the transaction turned durability off.
    /// On an error the outcome is unknown (the connection may have gone after PostgreSQL
    /// committed), as with a failed redb commit.
    pub(crate) fn commit(self) -> Result<(), StoreError> {
        if self.failed.load(std::sync::atomic::Ordering::Relaxed) {
            // Dropping rolls it back.
            return Err(StoreError::TransactionFailed);
        }
        let mut slot = self.connection.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(connection) = slot.as_mut() {
            // On an error, dropping rolls it back: nothing of it was committed.
            self.send_upserts(connection)?;
        }
        let connection = slot.take();
        drop(slot);
        let Some(mut connection) = connection else { return Err(StoreError::TransactionEnded) };
        match connection.client.batch_execute("COMMIT") {
            Ok(()) => {
                if let Some(before) = self.generation.filter(|_| self.writes) {
                    // The writer's cache, which only this writer changes, now reflects the
                    // generation this commit made — if it reflected the one before.
                    let _ = self.pool.cache_generation.compare_exchange(
                        before,
                        before + 1,
                        Ordering::SeqCst,
                        Ordering::SeqCst,
                    );
                }
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
    use super::{Pool, without_password};

    #[test]
    fn one_flagd_of_a_store_leads_until_it_is_gone() {
        let Some(url) = pg_test::fresh_schema("flagd").unwrap() else { return };
        let (first, second) = (Pool::connect(&url, 2, None).unwrap(), Pool::connect(&url, 2, None).unwrap());
        assert!(first.leads());
        assert!(!second.leads(), "one leader at a time");
        assert!(first.leads(), "the leader keeps leading");
        drop(first);
        assert!(second.leads(), "another takes over once the leader is gone");
    }

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
