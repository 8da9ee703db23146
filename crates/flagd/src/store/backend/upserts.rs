//! A write transaction's row upserts, held back and sent as one statement.
//!
//! A flag write on PostgreSQL upserts its live row, history row, change-log row, the
//! environment's revision and, with a rollout, the plan's row: one loopback round trip
//! each through the synchronous client. Nothing reads an upsert's result, so they wait
//! here until the transaction next reads or commits, and go as one statement whose
//! upserts are data-modifying `WITH` clauses (each may be of another table). A read sees
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
    pub(crate) fn take(&mut self) -> Option<Statement> {
        let held = std::mem::take(&mut self.held);
        let (last, before) = held.split_last()?;
        let mut params = Vec::new();
        let mut clauses = Vec::new();
        for upsert in before {
            clauses.push(format!(
                "u{} AS ({})",
                clauses.len(),
                upsert.table.insert_from(upsert.cast, params.len() + 1)
            ));
            params.extend(upsert.key.iter().cloned());
            params.push(upsert.value.clone());
        }
        let main = last.table.insert_from(last.cast, params.len() + 1);
        params.extend(last.key.iter().cloned());
        params.push(last.value.clone());
        let sql = match clauses.is_empty() {
            true => main,
            false => format!("WITH {} {main}", clauses.join(", ")),
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
    fn a_second_upsert_of_a_row_replaces_the_first() {
        let mut upserts = Upserts::default();
        upserts.hold(REVISIONS, "", vec![text("production")], Param::Int(7));
        upserts.hold(REVISIONS, "", vec![text("staging")], Param::Int(2));
        upserts.hold(REVISIONS, "", vec![text("production")], Param::Int(8));
        let statement = upserts.take().expect("held");
        assert_eq!(statement.params, vec![text("production"), Param::Int(8), text("staging"), Param::Int(2)]);
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
