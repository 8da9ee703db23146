//! A JSON flag value as OpenFeature's [`StructValue`]: objects become structures, arrays
//! arrays, whole numbers that fit `i64` integers and other numbers floats.

use open_feature::{EvaluationError, EvaluationErrorCode, StructValue, Value};

/// The object a JSON flag serves, as a structure. A JSON array is refused with
/// `TYPE_MISMATCH` (OpenFeature's structure is an object); a `null` anywhere inside with
/// `PARSE_ERROR`, naming where, since no OpenFeature value holds it.
pub(crate) fn to_struct(json: &serde_json::Value) -> Result<StructValue, EvaluationError> {
    let serde_json::Value::Object(object) = json else {
        return Err(EvaluationError {
            code: EvaluationErrorCode::TypeMismatch,
            message: Some("flag serves a JSON array, not an object".to_owned()),
        });
    };
    structure(object).map_err(|path| parse_error(&path))
}

/// One step into a JSON value, for naming where a `null` is.
enum Step<'a> {
    Field(&'a str),
    Index(usize),
}

/// `Err` holds the path to a `null`, innermost step first.
type Converted<'a, T> = Result<T, Vec<Step<'a>>>;

fn structure(object: &serde_json::Map<String, serde_json::Value>) -> Converted<'_, StructValue> {
    let mut fields = std::collections::HashMap::with_capacity(object.len());
    for (name, value) in object {
        let value = to_value(value).map_err(|mut path| {
            path.push(Step::Field(name));
            path
        })?;
        fields.insert(name.clone(), value);
    }
    Ok(StructValue { fields })
}

fn to_value(json: &serde_json::Value) -> Converted<'_, Value> {
    Ok(match json {
        serde_json::Value::Null => return Err(Vec::new()),
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(int) => Value::Int(int),
            // Without serde_json's arbitrary precision every other number is a double.
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(items) => {
            let mut values = Vec::with_capacity(items.len());
            for (index, item) in items.iter().enumerate() {
                values.push(to_value(item).map_err(|mut path| {
                    path.push(Step::Index(index));
                    path
                })?);
            }
            Value::Array(values)
        }
        serde_json::Value::Object(object) => Value::Struct(structure(object)?),
    })
}

fn parse_error(path: &[Step<'_>]) -> EvaluationError {
    use std::fmt::Write as _;
    let mut at = String::new();
    for step in path.iter().rev() {
        // Writing to a `String` cannot fail.
        let _ = match step {
            Step::Field(name) if at.is_empty() => write!(at, "{name}"),
            Step::Field(name) => write!(at, ".{name}"),
            Step::Index(index) => write!(at, "[{index}]"),
        };
    }
    EvaluationError {
        code: EvaluationErrorCode::ParseError,
        message: Some(format!("the flag's JSON value holds null at `{at}`, which OpenFeature values cannot")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn objects_nest_and_numbers_keep_their_kind() {
        let structure = to_struct(&json!({
            "columns": 2,
            "ratio": 0.5,
            "big": 18_446_744_073_709_551_615_u64,
            "theme": { "name": "dusk", "dark": true },
            "sizes": [1, "two"],
        }))
        .unwrap();
        let field = |name: &str| structure.fields.get(name).cloned();
        assert_eq!(field("columns"), Some(Value::Int(2)));
        assert_eq!(field("ratio"), Some(Value::Float(0.5)));
        assert_eq!(field("big"), Some(Value::Float(18_446_744_073_709_551_615_u64 as f64)));
        assert_eq!(
            field("theme"),
            Some(Value::Struct(StructValue::default().with_field("name", "dusk").with_field("dark", true)))
        );
        assert_eq!(field("sizes"), Some(Value::Array(vec![Value::Int(1), Value::String("two".into())])));
    }

    #[test]
    fn an_array_is_a_type_mismatch_and_a_null_a_parse_error_that_says_where() {
        let array = to_struct(&json!([1, 2])).unwrap_err();
        assert_eq!(array.code, EvaluationErrorCode::TypeMismatch);
        let null = to_struct(&json!({ "theme": { "sizes": [1, null] } })).unwrap_err();
        assert_eq!(null.code, EvaluationErrorCode::ParseError);
        let message = null.message.unwrap();
        assert!(message.contains("`theme.sizes[1]`"), "{message}");
    }
}
