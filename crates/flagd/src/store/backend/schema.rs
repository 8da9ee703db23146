//! The PostgreSQL schema: versioned migrations that flagd runs at start, and the SQL of
//! each table operation.
//!
//! Every table is `flagd_` and the redb table's name, so the store can share a database
//! with other software. Key parts are columns (text compared byte by byte, `COLLATE "C"`,
//! as redb compares them; numbers as `bigint`), records are `json`.

use super::super::error::StoreError;
use super::postgres::Transaction;

/// A table as PostgreSQL holds it: its redb name, key columns and value column.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SqlTable {
    pub(crate) name: &'static str,
    pub(crate) keys: &'static [&'static str],
    pub(crate) value: &'static str,
}

/// The channel of change notifications (see `postgres`).
pub(crate) const CHANGES_CHANNEL: &str = "flagd_changes";

/// Starts a write of flags, segments or environments: locks the writers' row, which
/// serializes writers across every flagd (see `postgres`), and makes the next generation.
/// One round trip. (The other flagds hear of it from migration 4's trigger, on commit.)
pub(crate) const BEGIN_FLAG_WRITE: &str = "BEGIN ISOLATION LEVEL READ COMMITTED; \
     UPDATE flagd_writer SET generation = generation + 1 WHERE id = 1 RETURNING generation";

/// Starts any other write (bookmarks, rollout plans, webhook cursors, the readiness probe):
/// serialized with the others, but the writers' caches and the SDKs' streams stay as they
/// are, so the generation stays and no other flagd is woken.
pub(crate) const BEGIN_WRITE: &str = "BEGIN ISOLATION LEVEL READ COMMITTED; \
     SELECT generation FROM flagd_writer WHERE id = 1 FOR UPDATE";

/// Starts a read: one snapshot for every statement, taken now, and its generation.
pub(crate) const BEGIN_READ: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; \
     SELECT generation FROM flagd_writer WHERE id = 1";

/// The store's advisory lock, per schema (several stores may share a database, one per
/// schema): the class is "flag" in ASCII, the object the hash of the schema's name. Held
/// by the replica that leads (see `Pool::leads`).
pub(crate) const TRY_LEAD: &str = "SELECT pg_try_advisory_lock(1718378855, hashtext(current_schema()))";
/// Lets go of the store's advisory lock.
pub(crate) const RELEASE: &str = "SELECT pg_advisory_unlock(1718378855, hashtext(current_schema()))";

/// The migrations, in order; `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`.
/// A migration is never edited once released: a change is a new one.
const MIGRATIONS: &[&str] = &[
    // 1: the tables of store format 1.
    r#"
    CREATE TABLE flagd_writer (id integer PRIMARY KEY);
    INSERT INTO flagd_writer (id) VALUES (1);
    CREATE TABLE flagd_meta (name text COLLATE "C" PRIMARY KEY, value bigint NOT NULL);
    CREATE TABLE flagd_environments (environment text COLLATE "C" PRIMARY KEY, revision bigint NOT NULL);
    CREATE TABLE flagd_environment_info (environment text COLLATE "C" PRIMARY KEY, record json NOT NULL);
    CREATE TABLE flagd_flags (
        environment text COLLATE "C", key text COLLATE "C", record json NOT NULL,
        PRIMARY KEY (environment, key));
    CREATE TABLE flagd_segments (
        environment text COLLATE "C", key text COLLATE "C", record json NOT NULL,
        PRIMARY KEY (environment, key));
    CREATE TABLE flagd_flag_history (
        environment text COLLATE "C", key text COLLATE "C", version bigint, record json NOT NULL,
        PRIMARY KEY (environment, key, version));
    CREATE TABLE flagd_segment_history (
        environment text COLLATE "C", key text COLLATE "C", version bigint, record json NOT NULL,
        PRIMARY KEY (environment, key, version));
    CREATE TABLE flagd_changes (
        environment text COLLATE "C", revision bigint, record json NOT NULL,
        PRIMARY KEY (environment, revision));
    CREATE TABLE flagd_bookmarks (
        environment text COLLATE "C", name text COLLATE "C", record json NOT NULL,
        PRIMARY KEY (environment, name));
    CREATE TABLE flagd_webhooks (webhook text COLLATE "C" PRIMARY KEY, record json NOT NULL);
    CREATE TABLE flagd_webhook_cursors (
        webhook text COLLATE "C", environment text COLLATE "C", revision bigint NOT NULL,
        PRIMARY KEY (webhook, environment));
    CREATE TABLE flagd_rollouts (
        environment text COLLATE "C", key text COLLATE "C", record json NOT NULL,
        PRIMARY KEY (environment, key));
    "#,
    // 2: several flagds write one store: each write of flags moves the generation on.
    "ALTER TABLE flagd_writer ADD COLUMN generation bigint NOT NULL DEFAULT 0;",
    // 3: what each flagd's SDKs acknowledged (see `fleet`).
    r#"
    CREATE TABLE flagd_fleet (
        replica text COLLATE "C", environment text COLLATE "C", reported_ms bigint NOT NULL,
        acked json NOT NULL,
        PRIMARY KEY (replica, environment));
    "#,
    // 4: every revision committed, and every environment deleted, is announced on the
    // change channel with its name and the store's schema (the channel is the database's,
    // and other stores may share it; see `listen`), so the other flagds read only what moved.
    r#"
    CREATE FUNCTION flagd_announce_revision() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' THEN
            PERFORM pg_notify('flagd_changes', 'deleted ' || OLD.environment || ' ' || TG_TABLE_SCHEMA);
        ELSE
            PERFORM pg_notify('flagd_changes',
                'revision ' || NEW.revision || ' ' || NEW.environment || ' ' || TG_TABLE_SCHEMA);
        END IF;
        RETURN NULL;
    END $$;
    CREATE TRIGGER flagd_environments_announce AFTER INSERT OR UPDATE OR DELETE ON flagd_environments
        FOR EACH ROW EXECUTE FUNCTION flagd_announce_revision();
    "#,
    // 5: store format 2. Versions are keyed by the revision that wrote them, each naming
    // the revision of its key's previous version, with a head row per key (see the store's
    // `history`). The existing versions move over; a store at format 1 is marked 2.
    r#"
    CREATE TABLE flagd_flag_versions (
        environment text COLLATE "C", revision bigint, record json NOT NULL,
        PRIMARY KEY (environment, revision));
    CREATE TABLE flagd_flag_heads (
        environment text COLLATE "C", key text COLLATE "C", record json NOT NULL,
        PRIMARY KEY (environment, key));
    CREATE TABLE flagd_segment_versions (
        environment text COLLATE "C", revision bigint, record json NOT NULL,
        PRIMARY KEY (environment, revision));
    CREATE TABLE flagd_segment_heads (
        environment text COLLATE "C", key text COLLATE "C", record json NOT NULL,
        PRIMARY KEY (environment, key));
    INSERT INTO flagd_flag_versions (environment, revision, record)
        SELECT environment, (record->>'revision')::bigint,
            CASE WHEN previous IS NULL THEN record
                 ELSE (record::jsonb || jsonb_build_object('previous', previous))::json END
        FROM (SELECT environment, record, lag((record->>'revision')::bigint)
                  OVER (PARTITION BY environment, key ORDER BY version) AS previous
              FROM flagd_flag_history) AS versions;
    INSERT INTO flagd_flag_heads (environment, key, record)
        SELECT DISTINCT ON (environment, key) environment, key,
            json_build_object('version', version, 'revision', (record->>'revision')::bigint)
        FROM flagd_flag_history ORDER BY environment, key, version DESC;
    INSERT INTO flagd_segment_versions (environment, revision, record)
        SELECT environment, (record->>'revision')::bigint,
            CASE WHEN previous IS NULL THEN record
                 ELSE (record::jsonb || jsonb_build_object('previous', previous))::json END
        FROM (SELECT environment, record, lag((record->>'revision')::bigint)
                  OVER (PARTITION BY environment, key ORDER BY version) AS previous
              FROM flagd_segment_history) AS versions;
    INSERT INTO flagd_segment_heads (environment, key, record)
        SELECT DISTINCT ON (environment, key) environment, key,
            json_build_object('version', version, 'revision', (record->>'revision')::bigint)
        FROM flagd_segment_history ORDER BY environment, key, version DESC;
    DROP TABLE flagd_flag_history;
    DROP TABLE flagd_segment_history;
    UPDATE flagd_meta SET value = 2 WHERE name = 'schema_version';
    "#,
];

/// The schema version this flagd creates and reads.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database's schema up to [`SCHEMA_VERSION`], in one transaction that takes a
/// transaction-scoped advisory lock first (even creating the migrations table races between
/// replicas starting together on an empty database), so they migrate once, one after the
/// other. Its class is the leader's plus one: the leader's lock, held for as long as a
/// replica runs, must not keep a new one from starting. Refuses a schema newer than this
/// flagd: a rollback of flagd must not write a layout it does not know.
pub(crate) fn migrate(txn: &Transaction) -> Result<Vec<i64>, StoreError> {
    txn.batch(
        "SET LOCAL client_min_messages = warning;
         SELECT pg_advisory_xact_lock(1718378856, hashtext(current_schema()));
         CREATE TABLE IF NOT EXISTS flagd_migrations (
            version bigint PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());
         LOCK TABLE flagd_migrations IN EXCLUSIVE MODE",
    )?;
    let rows = txn.query("SELECT coalesce(max(version), 0) FROM flagd_migrations", &[])?;
    let found: i64 = rows.first().and_then(|row| row.try_get(0).ok()).unwrap_or_default();
    if found > SCHEMA_VERSION {
        return Err(StoreError::Schema { found: found as u64, supported: SCHEMA_VERSION as u64 });
    }
    let mut applied = Vec::new();
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = index as i64 + 1;
        txn.batch(migration)?;
        txn.batch(&format!("INSERT INTO flagd_migrations (version) VALUES ({version})"))?;
        applied.push(version);
    }
    Ok(applied)
}

/// `(a, b)`: a list of columns or of parameters, for tuple comparisons.
fn tuple(items: impl IntoIterator<Item = String>) -> String {
    format!("({})", items.into_iter().collect::<Vec<_>>().join(", "))
}

fn placeholders(from: usize, count: usize) -> String {
    tuple((from..from + count).map(|n| format!("${n}")))
}

impl SqlTable {
    fn keys(&self) -> String {
        tuple(self.keys.iter().map(|key| (*key).to_owned()))
    }

    /// `SELECT value WHERE key = …`.
    pub(crate) fn get(&self, value: &str) -> String {
        format!(
            "SELECT {value} FROM flagd_{} WHERE {} = {}",
            self.name,
            self.keys(),
            placeholders(1, self.keys.len())
        )
    }

    /// An upsert of one row; the value parameter is cast with `cast`.
    #[cfg(test)]
    pub(crate) fn insert(&self, cast: &str) -> String {
        self.insert_rows(cast, 1, 1)
    }

    /// An upsert of `rows` rows (of distinct keys), each its keys then its value, whose
    /// parameters are numbered from `first`.
    pub(crate) fn insert_rows(&self, cast: &str, first: usize, rows: usize) -> String {
        let width = self.keys.len() + 1;
        let tuples = (0..rows).map(|row| {
            let start = first + row * width;
            let keys = (start..start + width - 1).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
            format!("({keys}, ${}{cast})", start + width - 1)
        });
        let keys = self.keys.join(", ");
        format!(
            "INSERT INTO flagd_{name} ({keys}, {value}) VALUES {tuples} \
             ON CONFLICT ({keys}) DO UPDATE SET {value} = EXCLUDED.{value}",
            name = self.name,
            value = self.value,
            tuples = tuples.collect::<Vec<_>>().join(", "),
        )
    }

    /// A delete of `rows` rows, their keys numbered from `$first`.
    pub(crate) fn delete_rows(&self, first: usize, rows: usize) -> String {
        let width = self.keys.len();
        let keys = (0..rows).map(|row| placeholders(first + row * width, width));
        format!("DELETE FROM flagd_{} WHERE {} IN {}", self.name, self.keys(), tuple(keys))
    }

    /// A delete of one row, returning its value.
    pub(crate) fn remove(&self, value: &str) -> String {
        format!(
            "DELETE FROM flagd_{} WHERE {} = {} RETURNING {value}",
            self.name,
            self.keys(),
            placeholders(1, self.keys.len())
        )
    }

    /// Rows between two bounds (each `Some((inclusive))` or unbounded), keys then value, in
    /// key order (`descending`: from the end), at most the last parameter's count.
    pub(crate) fn range(
        &self,
        value: &str,
        lower: Option<bool>,
        upper: Option<bool>,
        descending: bool,
    ) -> String {
        let n = self.keys.len();
        let mut conditions = Vec::new();
        let mut next = 1;
        for (bound, operators) in [(lower, (">=", ">")), (upper, ("<=", "<"))] {
            if let Some(inclusive) = bound {
                let operator = if inclusive { operators.0 } else { operators.1 };
                conditions.push(format!("{} {operator} {}", self.keys(), placeholders(next, n)));
                next += n;
            }
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        let direction = if descending { " DESC" } else { "" };
        let order = self.keys.iter().map(|key| format!("{key}{direction}")).collect::<Vec<_>>().join(", ");
        format!(
            "SELECT {}, {value} FROM flagd_{}{filter} ORDER BY {order} LIMIT ${next}",
            self.keys.join(", "),
            self.name
        )
    }

    /// The number of rows.
    pub(crate) fn count(&self) -> String {
        format!("SELECT count(*) FROM flagd_{}", self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HISTORY: SqlTable =
        SqlTable { name: "flag_history", keys: &["environment", "key", "version"], value: "record" };

    #[test]
    fn a_range_compares_whole_keys_in_key_order() {
        assert_eq!(
            HISTORY.range("record::text", Some(true), Some(false), true),
            "SELECT environment, key, version, record::text FROM flagd_flag_history \
             WHERE (environment, key, version) >= ($1, $2, $3) AND (environment, key, version) < ($4, $5, $6) \
             ORDER BY environment DESC, key DESC, version DESC LIMIT $7"
        );
        assert_eq!(
            HISTORY.range("record::text", None, None, false),
            "SELECT environment, key, version, record::text FROM flagd_flag_history \
             ORDER BY environment, key, version LIMIT $1"
        );
    }

    #[test]
    fn an_insert_replaces_the_row_of_its_key() {
        assert_eq!(
            HISTORY.insert("::text::json"),
            "INSERT INTO flagd_flag_history (environment, key, version, record) VALUES ($1, $2, $3, $4::text::json) \
             ON CONFLICT (environment, key, version) DO UPDATE SET record = EXCLUDED.record"
        );
    }
}
