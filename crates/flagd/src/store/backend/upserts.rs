//! A write transaction's row upserts, held back and sent as one statement.
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

/// One row to upsert.
#[derive(Debug)]
struct Upsert {
    table: SqlTable,
    /// The value parameter's cast (see `SqlValue::CAST`).
    cast: &'static str,
    key: Vec<Param>,
    value: Param,
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
    /// Holds an upsert of `key` in `table` to `value`; a second upsert of the same row
    /// replaces the first (one statement may not change a row twice). Whether enough are
    /// held that they should be sent now.
    pub(crate) fn hold(
        &mut self,
        table: SqlTable,
        cast: &'static str,
        key: Vec<Param>,
        value: Param,
    ) -> bool {
        let same_row = |held: &Upsert| held.table.name == table.name && held.key == key;
        match self.held.iter_mut().find(|held| same_row(held)) {
            Some(held) => held.value = value,
            None => self.held.push(Upsert { table, cast, key, value }),
        }
        self.held.len() >= MOST_HELD
    }

    /// The held upserts as one statement, if there are any; none are held afterwards.
    /// Each table's rows go in one multi-row upsert, so no statement changes a table twice
    /// (PostgreSQL allows that for distinct rows; CockroachDB does not).
    pub(crate) fn take(&mut self) -> Option<Statement> {
        let mut tables: Vec<(SqlTable, &'static str, Vec<Upsert>)> = Vec::new();
        for upsert in std::mem::take(&mut self.held) {
            match tables.iter_mut().find(|(table, ..)| table.name == upsert.table.name) {
                Some((.., rows)) => rows.push(upsert),
                None => tables.push((upsert.table, upsert.cast, vec![upsert])),
            }
        }
        let mut params = Vec::new();
        let mut upserts = Vec::new();
        for (table, cast, rows) in &tables {
            upserts.push(table.insert_rows(cast, params.len() + 1, rows.len()));
            for row in rows {
                params.extend(row.key.iter().cloned());
                params.push(row.value.clone());
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
        assert!(!upserts.hold(CHANGES, "::text::json", vec![text("production"), Param::Int(7)], text("{}")));
        assert!(!upserts.hold(REVISIONS, "", vec![text("production")], Param::Int(7)));
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
        upserts.hold(REVISIONS, "", vec![text("production")], Param::Int(7));
        upserts.hold(CHANGES, "", vec![text("production"), Param::Int(7)], Param::Int(1));
        upserts.hold(REVISIONS, "", vec![text("staging")], Param::Int(2));
        upserts.hold(REVISIONS, "", vec![text("production")], Param::Int(8));
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
    fn a_full_hold_asks_to_be_sent() {
        let mut upserts = Upserts::default();
        let full: Vec<bool> = (0..MOST_HELD as i64)
            .map(|n| upserts.hold(CHANGES, "", vec![text("p"), Param::Int(n)], Param::Int(n)))
            .collect();
        assert_eq!(full.iter().filter(|&&send| send).count(), 1, "only the last one fills it");
        assert_eq!(full.last(), Some(&true));
        assert_eq!(upserts.take().map(|statement| statement.params.len()), Some(3 * MOST_HELD));
    }
}
