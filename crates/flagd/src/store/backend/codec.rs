//! How the store's keys and values become SQL columns and back.
//!
//! The store's code speaks redb's typed keys and values; the PostgreSQL tables keep each
//! key part in a column of its own (text in byte order, or `bigint`), so rows sort exactly
//! as redb sorts its tuples and stay readable with `psql`. A row read back is turned into
//! redb's encoding of the same key, so both backends hand the store's code the same
//! [`Guard`](super::Guard)s.

use postgres::Row;
use postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use super::super::error::StoreError;

/// One SQL parameter: a key part or a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Param {
    Text(String),
    Int(i64),
}

impl ToSql for Param {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Param::Text(text) => text.to_sql(ty, out),
            Param::Int(int) => int.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        <String as ToSql>::accepts(ty) || <i64 as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

/// A number as a `bigint`. Versions and revisions stay far below 2⁶³; only a range's open
/// end (`u64::MAX`) goes past it, and it is clamped, which keeps its meaning.
fn key_number(number: u64) -> Param {
    Param::Int(i64::try_from(number).unwrap_or(i64::MAX))
}

fn text_at(row: &Row, index: usize) -> Result<&str, StoreError> {
    row.try_get(index).map_err(|source| StoreError::postgres("reading a row", source))
}

fn number_at(row: &Row, index: usize) -> Result<u64, StoreError> {
    let number: i64 = row.try_get(index).map_err(|source| StoreError::postgres("reading a row", source))?;
    Ok(number as u64)
}

/// A key type of a store table, with its SQL columns.
pub(crate) trait SqlKey: redb::Key + 'static {
    /// The key's parts, one per key column.
    fn params(key: &Self::SelfType<'_>) -> Vec<Param>;
    /// redb's encoding of the key held by the row's first columns.
    fn from_row(row: &Row) -> Result<Vec<u8>, StoreError>;
}

impl SqlKey for &'static str {
    fn params(key: &&str) -> Vec<Param> {
        vec![Param::Text((*key).to_owned())]
    }

    fn from_row(row: &Row) -> Result<Vec<u8>, StoreError> {
        Ok(text_at(row, 0)?.as_bytes().to_vec())
    }
}

impl SqlKey for (&'static str, &'static str) {
    fn params(&(first, second): &(&str, &str)) -> Vec<Param> {
        vec![Param::Text(first.to_owned()), Param::Text(second.to_owned())]
    }

    fn from_row(row: &Row) -> Result<Vec<u8>, StoreError> {
        let key = (text_at(row, 0)?, text_at(row, 1)?);
        Ok(<(&str, &str) as redb::Value>::as_bytes(&key))
    }
}

impl SqlKey for (&'static str, &'static str, u64) {
    fn params(&(first, second, number): &(&str, &str, u64)) -> Vec<Param> {
        vec![Param::Text(first.to_owned()), Param::Text(second.to_owned()), key_number(number)]
    }

    fn from_row(row: &Row) -> Result<Vec<u8>, StoreError> {
        let key = (text_at(row, 0)?, text_at(row, 1)?, number_at(row, 2)?);
        Ok(<(&str, &str, u64) as redb::Value>::as_bytes(&key))
    }
}

impl SqlKey for (&'static str, u64) {
    fn params(&(first, number): &(&str, u64)) -> Vec<Param> {
        vec![Param::Text(first.to_owned()), key_number(number)]
    }

    fn from_row(row: &Row) -> Result<Vec<u8>, StoreError> {
        let key = (text_at(row, 0)?, number_at(row, 1)?);
        Ok(<(&str, u64) as redb::Value>::as_bytes(&key))
    }
}

/// A value type of a store table, with its SQL column type.
pub(crate) trait SqlValue: redb::Value + 'static {
    /// How a parameter is cast into the column.
    const CAST: &'static str;
    /// The value as a parameter.
    fn param(value: &Self::SelfType<'_>) -> Result<Param, StoreError>;
    /// How the column is selected (JSON as its text).
    fn select(column: &str) -> String;
    /// redb's encoding of the value in the row's column `index`.
    fn from_row(row: &Row, index: usize) -> Result<Vec<u8>, StoreError>;
}

impl SqlValue for u64 {
    const CAST: &'static str = "";

    /// Stored bit for bit: a store id may pass 2⁶³, and values are never compared in SQL.
    fn param(value: &u64) -> Result<Param, StoreError> {
        Ok(Param::Int(*value as i64))
    }

    fn select(column: &str) -> String {
        column.to_owned()
    }

    fn from_row(row: &Row, index: usize) -> Result<Vec<u8>, StoreError> {
        Ok(number_at(row, index)?.to_le_bytes().to_vec())
    }
}

/// Records are JSON (see `records`), so the column is `json`: the text as written, which
/// `psql` and `jq` read, and which PostgreSQL checks is JSON.
impl SqlValue for &'static [u8] {
    const CAST: &'static str = "::text::json";

    fn param(value: &&[u8]) -> Result<Param, StoreError> {
        let text = std::str::from_utf8(value).map_err(|_| StoreError::NotText)?;
        Ok(Param::Text(text.to_owned()))
    }

    fn select(column: &str) -> String {
        format!("{column}::text")
    }

    fn from_row(row: &Row, index: usize) -> Result<Vec<u8>, StoreError> {
        Ok(text_at(row, index)?.as_bytes().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_end_past_bigint_is_clamped_not_wrapped() {
        assert_eq!(key_number(u64::MAX), Param::Int(i64::MAX));
        assert_eq!(key_number(7), Param::Int(7));
    }
}
