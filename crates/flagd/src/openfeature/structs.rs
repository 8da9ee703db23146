//! JSON as protobuf's `google.protobuf.Struct` and `Value`, the form OpenFeature's RPC
//! contracts carry objects and event data in.

use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Value};

/// A JSON object as a `Struct`.
pub(crate) fn to_struct(map: serde_json::Map<String, serde_json::Value>) -> Struct {
    Struct { fields: map.into_iter().map(|(name, value)| (name, to_value(value))).collect() }
}

/// A JSON value as a protobuf `Value`.
pub(crate) fn to_value(json: serde_json::Value) -> Value {
    let kind = match json {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::String(s) => Kind::StringValue(s),
        serde_json::Value::Array(items) => {
            Kind::ListValue(ListValue { values: items.into_iter().map(to_value).collect() })
        }
        serde_json::Value::Object(map) => Kind::StructValue(to_struct(map)),
    };
    Value { kind: Some(kind) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_json_keeps_its_shape() {
        let serde_json::Value::Object(map) = serde_json::json!({"a": [1, "x", null], "b": {"c": true}})
        else {
            unreachable!("an object literal")
        };
        let converted = to_struct(map);
        let Some(Kind::ListValue(list)) = &converted.fields["a"].kind else {
            panic!("a list: {converted:?}")
        };
        assert_eq!(list.values[0].kind, Some(Kind::NumberValue(1.0)));
        assert_eq!(list.values[1].kind, Some(Kind::StringValue("x".into())));
        let Some(Kind::StructValue(inner)) = &converted.fields["b"].kind else { panic!("a struct") };
        assert_eq!(inner.fields["c"].kind, Some(Kind::BoolValue(true)));
    }
}
