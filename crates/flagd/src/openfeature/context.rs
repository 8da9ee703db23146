//! An OpenFeature evaluation context — a protobuf `Struct` over RPC, a JSON object over
//! OFREP — as the context our evaluator reads: `targetingKey` is the targeting key; string,
//! number and boolean fields are attributes. Nested objects, lists and nulls have no
//! counterpart in our clauses and are left out (a clause on them sees a missing attribute).

use flag_core::{AttrValue, Context, KEY_ATTRIBUTE};
use prost_types::value::Kind;

/// The name OpenFeature gives the targeting key.
pub(crate) const TARGETING_KEY: &str = "targetingKey";

/// A context owned by the request, lent to the evaluator as a [`Context`].
#[derive(Debug, Default)]
pub(crate) struct OwnedContext {
    targeting_key: String,
    attributes: Vec<(String, OwnedAttr)>,
}

#[derive(Debug)]
enum OwnedAttr {
    Str(String),
    Number(f64),
    Bool(bool),
}

impl OwnedContext {
    /// From the `context` of an RPC request.
    pub(crate) fn from_struct(context: Option<prost_types::Struct>) -> Self {
        let mut owned = OwnedContext::default();
        for (name, value) in context.map(|c| c.fields).unwrap_or_default() {
            let attribute = match value.kind {
                Some(Kind::StringValue(s)) => OwnedAttr::Str(s),
                Some(Kind::NumberValue(n)) => OwnedAttr::Number(n),
                Some(Kind::BoolValue(b)) => OwnedAttr::Bool(b),
                _ => continue,
            };
            owned.insert(name, attribute);
        }
        owned
    }

    /// From the `context` object of an OFREP request.
    pub(crate) fn from_json(context: serde_json::Map<String, serde_json::Value>) -> Self {
        let mut owned = OwnedContext::default();
        for (name, value) in context {
            let attribute = match value {
                serde_json::Value::String(s) => OwnedAttr::Str(s),
                serde_json::Value::Number(n) => match n.as_f64() {
                    Some(n) => OwnedAttr::Number(n),
                    None => continue,
                },
                serde_json::Value::Bool(b) => OwnedAttr::Bool(b),
                _ => continue,
            };
            owned.insert(name, attribute);
        }
        owned
    }

    fn insert(&mut self, name: String, attribute: OwnedAttr) {
        match (name.as_str(), attribute) {
            (TARGETING_KEY, OwnedAttr::Str(key)) => self.targeting_key = key,
            // Our rules name the targeting key `key`; a context field of that name would
            // shadow nothing (the evaluator reads the targeting key for it), so it is dropped.
            (KEY_ATTRIBUTE, _) => {}
            (_, attribute) => self.attributes.push((name, attribute)),
        }
    }

    /// Lends the context to `evaluate`.
    pub(crate) fn with<R>(&self, evaluate: impl FnOnce(&Context<'_>) -> R) -> R {
        let attributes: Vec<(&str, AttrValue<'_>)> = self
            .attributes
            .iter()
            .map(|(name, value)| {
                let value = match value {
                    OwnedAttr::Str(s) => AttrValue::Str(s),
                    OwnedAttr::Number(n) => AttrValue::Number(*n),
                    OwnedAttr::Bool(b) => AttrValue::Bool(*b),
                };
                (name.as_str(), value)
            })
            .collect();
        evaluate(&Context::new(&self.targeting_key).with_attributes(&attributes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_targeting_key_and_scalar_fields_become_the_context() {
        let json = serde_json::json!({
            "targetingKey": "user-7", "country": "NZ", "age": 31, "beta": true,
            "nested": {"a": 1}, "list": [1], "nothing": null, "key": "ignored",
        });
        let serde_json::Value::Object(map) = json else { unreachable!("an object literal") };
        let context = OwnedContext::from_json(map);
        context.with(|ctx| {
            assert_eq!(ctx.key(), "user-7");
            assert_eq!(ctx.attribute("key"), Some(AttrValue::Str("user-7")));
            assert_eq!(ctx.attribute("country"), Some(AttrValue::Str("NZ")));
            assert_eq!(ctx.attribute("age"), Some(AttrValue::Number(31.0)));
            assert_eq!(ctx.attribute("beta"), Some(AttrValue::Bool(true)));
            assert_eq!(ctx.attribute("nested"), None);
            assert_eq!(ctx.attribute("list"), None);
            assert_eq!(ctx.attribute("nothing"), None);
        });
    }

    #[test]
    fn a_struct_reads_like_the_same_json() {
        let mut fields = std::collections::BTreeMap::new();
        fields.insert(
            "targetingKey".to_owned(),
            prost_types::Value { kind: Some(Kind::StringValue("u".into())) },
        );
        fields.insert("n".to_owned(), prost_types::Value { kind: Some(Kind::NumberValue(2.5)) });
        let context = OwnedContext::from_struct(Some(prost_types::Struct { fields }));
        context.with(|ctx| {
            assert_eq!(ctx.key(), "u");
            assert_eq!(ctx.attribute("n"), Some(AttrValue::Number(2.5)));
        });
    }
}
