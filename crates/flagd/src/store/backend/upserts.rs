//! A write transaction's row upserts (and deletes whose result nobody reads), held back
//! and sent as one statement.
//!
//! A flag write on PostgreSQL upserts its live row, history row, change-log row, the
//! environment's revision and, with a rollout, the plan's row: one loopback round trip
//! each through the synchronous client. Nothing reads an upsert's result, so they wait
//! here until the transaction next reads or commits, and go as one statement: one
//! multi-row upsert per table, all but the last in data-modifying `WITH` clauses. A read sees
//! every upsert before it, since it sends them first; a held upsert that fails fails the
//! statement that sends it, and the transaction with it, as it would have alone.

use super::codec::Param;
use super::schema::SqlTable;

/// Upserts sent together at most: it bounds the statement's size (and the number of
/// statement shapes a connection prepares) during a large apply.
const MOST_HELD: usize = 32;

/// One row to upsert, or to delete (no value).
#[derive(Debug)]
struct Upsert {
    table: SqlTable,
    /// The value parameter's cast (see `SqlValue::CAST`).
    cast: &'static str,
    key: Vec<Param>,
    value: Option<Param>,
}

/// The upserts not yet sent, in the order they were made.
#[derive(Debug, Default)]
pub(crate) struct Upserts {
    held: Vec<Upsert>,
}

/// Upserts ready to send: one statement and its parameters.
#[derive(Debug, PartialEq)]
pub(crate) struct Statement {
    pub(crate) sql: String,
    pub(crate) params: Vec<Param>,
}

impl Upserts {
    /// Holds an upsert of `key` in `table` to `value`, or its delete when `value` is
    /// `None`; a second change of the same row replaces the first (one statement may not
    /// change a row twice). Whether enough are held that they should be sent now.
    pub(crate) fn hold(
        &mut self,
        table: SqlTable,
        cast: &'static str,
        key: Vec<Param>,
        value: Option<Param>,
    ) -> bool {
        let same_row = |held: &Upsert| held.table.name == table.name && held.key == key;
        match self.held.iter_mut().find(|held| same_row(held)) {
            Some(held) => held.value = value,
            None => self.held.push(Upsert { table, cast, key, value }),
        }
        self.held.len() >= MOST_HELD
    }

    /// The held upserts as one statement, if there are any; none are held afterwards.
    /// Each table's upserts go in one multi-row upsert and its deletes in one delete.
    /// (PostgreSQL allows a statement to change distinct rows of a table twice;
    /// CockroachDB does not, and does not run this store.)
    pub(crate) fn take(&mut self) -> Option<Statement> {
        let mut tables: Vec<(SqlTable, &'static str, bool, Vec<Upsert>)> = Vec::new();
        for upsert in std::mem::take(&mut self.held) {
            let deletes = upsert.value.is_none();
            match tables.iter_mut().find(|(table, _, d, _)| table.name == upsert.table.name && *d == deletes)
            {
                Some((.., rows)) => rows.push(upsert),
                None => tables.push((upsert.table, upsert.cast, deletes, vec![upsert])),
            }
        }
        let mut params = Vec::new();
        let mut upserts = Vec::new();
        for (table, cast, deletes, rows) in &tables {
            upserts.push(match deletes {
                true => table.delete_rows(params.len() + 1, rows.len()),
                false => table.insert_rows(cast, params.len() + 1, rows.len()),
            });
            for row in rows {
                params.extend(row.key.iter().cloned());
                params.extend(row.value.clone());
            }
        }
        let (last, before) = upserts.split_last()?;
        let clauses: Vec<String> =
            before.iter().enumerate().map(|(n, sql)| format!("u{n} AS ({sql})")).collect();
        let sql = match clauses.is_empty() {
            true => last.clone(),
            false => format!("WITH {} {last}", clauses.join(", ")),
        };
        Some(Statement { sql, params })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHANGES: SqlTable =
        SqlTable { name: "changes", keys: &["environment", "revision"], value: "record" };
    const REVISIONS: SqlTable = SqlTable { name: "environments", keys: &["name"], value: "revision" };

    fn text(text: &str) -> Param {
        Param::Text(text.to_owned())
    }

    #[test]
    fn upserts_of_several_tables_go_as_one_statement_numbered_in_order() {
        let mut upserts = Upserts::default();
        assert!(!upserts.hold(
            CHANGES,
            "::text::json",
            vec![text("production"), Param::Int(7)],
            Some(text("{}"))
        ));
        assert!(!upserts.hold(REVISIONS, "", vec![text("production")], Some(Param::Int(7))));
        let statement = upserts.take().expect("two upserts held");
        assert_eq!(
            statement.sql,
            "WITH u0 AS (INSERT INTO flagd_changes (environment, revision, record) VALUES ($1, $2, $3::text::json) \
             ON CONFLICT (environment, revision) DO UPDATE SET record = EXCLUDED.record) \
             INSERT INTO flagd_environments (name, revision) VALUES ($4, $5) \
             ON CONFLICT (name) DO UPDATE SET revision = EXCLUDED.revision"
        );
        assert_eq!(
            statement.params,
            vec![text("production"), Param::Int(7), text("{}"), text("production"), Param::Int(7)]
        );
        assert_eq!(upserts.take(), None, "nothing is sent twice");
    }

    #[test]
    fn a_tables_rows_go_in_one_upsert_and_a_second_upsert_of_a_row_replaces_the_first() {
        let mut upserts = Upserts::default();
        upserts.hold(REVISIONS, "", vec![text("production")], Some(Param::Int(7)));
        upserts.hold(CHANGES, "", vec![text("production"), Param::Int(7)], Some(Param::Int(1)));
        upserts.hold(REVISIONS, "", vec![text("staging")], Some(Param::Int(2)));
        upserts.hold(REVISIONS, "", vec![text("production")], Some(Param::Int(8)));
        let statement = upserts.take().expect("held");
        assert_eq!(
            statement.sql,
            "WITH u0 AS (INSERT INTO flagd_environments (name, revision) VALUES ($1, $2), ($3, $4) \
             ON CONFLICT (name) DO UPDATE SET revision = EXCLUDED.revision) \
             INSERT INTO flagd_changes (environment, revision, record) VALUES ($5, $6, $7) \
             ON CONFLICT (environment, revision) DO UPDATE SET record = EXCLUDED.record"
        );
        assert_eq!(
            statement.params,
            vec![
                text("production"),
                Param::Int(8),
                text("staging"),
                Param::Int(2),
                text("production"),
                Param::Int(7),
                Param::Int(1)
            ]
        );
    }

    #[test]
    fn deletes_go_in_the_same_statement_apart_from_the_tables_upserts() {
        const VERSIONS: SqlTable =
            SqlTable { name: "flag_versions", keys: &["environment", "revision"], value: "record" };
        let mut upserts = Upserts::default();
        upserts.hold(VERSIONS, "", vec![text("production"), Param::Int(7)], None);
        upserts.hold(VERSIONS, "", vec![text("production"), Param::Int(6)], Some(Param::Int(1)));
        upserts.hold(VERSIONS, "", vec![text("staging"), Param::Int(2)], None);
        upserts.hold(REVISIONS, "", vec![text("production")], Some(Param::Int(7)));
        let statement = upserts.take().expect("held");
        assert_eq!(
            statement.sql,
            "WITH u0 AS (DELETE FROM flagd_flag_versions WHERE (environment, revision) IN (($1, $2), ($3, $4))), \
             u1 AS (INSERT INTO flagd_flag_versions (environment, revision, record) VALUES ($5, $6, $7) \
             ON CONFLICT (environment, revision) DO UPDATE SET record = EXCLUDED.record) \
             INSERT INTO flagd_environments (name, revision) VALUES ($8, $9) \
             ON CONFLICT (name) DO UPDATE SET revision = EXCLUDED.revision"
        );
        assert_eq!(statement.params.len(), 9);
        // A later change of a row replaces the earlier one, a delete included.
        upserts.hold(VERSIONS, "", vec![text("production"), Param::Int(7)], None);
        upserts.hold(VERSIONS, "", vec![text("production"), Param::Int(7)], Some(Param::Int(3)));
        let statement = upserts.take().expect("held");
        assert!(statement.sql.starts_with("INSERT INTO flagd_flag_versions"), "{}", statement.sql);
    }

    #[test]
    fn a_full_hold_asks_to_be_sent() {
        let mut upserts = Upserts::default();
        let full: Vec<bool> = (0..MOST_HELD as i64)
            .map(|n| upserts.hold(CHANGES, "", vec![text("p"), Param::Int(n)], Some(Param::Int(n))))
            .collect();
        assert_eq!(full.iter().filter(|&&send| send).count(), 1, "only the last one fills it");
        assert_eq!(full.last(), Some(&true));
        assert_eq!(upserts.take().map(|statement| statement.params.len()), Some(3 * MOST_HELD));
    }
}
