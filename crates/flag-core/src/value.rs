//! Typed variant values and the context an evaluation is made for.

use serde::{Deserialize, Serialize};

/// The value a variant serves. All variants of one flag have the same [`ValueKind`].
///
/// Written in YAML/JSON as the plain literal: `true`, `"blue"`, `2.5`, or an object/array
/// for JSON values. `null` is refused: a flag always serves something.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "serde_json::Value", into = "serde_json::Value")]
pub enum Value {
    /// A boolean, the shape of on/off and dark-launch flags.
    Bool(bool),
    /// A string.
    String(Box<str>),
    /// A number (IEEE 754 double, like JSON).
    Number(f64),
    /// A JSON object or array.
    Json(Box<serde_json::Value>),
}

/// The type of a [`Value`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ValueKind {
    /// [`Value::Bool`].
    Bool,
    /// [`Value::String`].
    String,
    /// [`Value::Number`].
    Number,
    /// [`Value::Json`].
    Json,
}

impl Value {
    /// The type of this value.
    pub fn kind(&self) -> ValueKind {
        match self {
            Value::Bool(_) => ValueKind::Bool,
            Value::String(_) => ValueKind::String,
            Value::Number(_) => ValueKind::Number,
            Value::Json(_) => ValueKind::Json,
        }
    }
}

impl std::fmt::Display for ValueKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ValueKind::Bool => "bool",
            ValueKind::String => "string",
            ValueKind::Number => "number",
            ValueKind::Json => "JSON",
        })
    }
}

impl TryFrom<serde_json::Value> for Value {
    type Error = String;

    fn try_from(json: serde_json::Value) -> Result<Self, Self::Error> {
        match json {
            serde_json::Value::Null => {
                Err("a variant value must be a bool, string, number, object or array, not null".into())
            }
            serde_json::Value::Bool(b) => Ok(Value::Bool(b)),
            serde_json::Value::String(s) => Ok(Value::String(s.into())),
            serde_json::Value::Number(n) => {
                n.as_f64().map(Value::Number).ok_or_else(|| format!("number {n} does not fit a double"))
            }
            json @ (serde_json::Value::Array(_) | serde_json::Value::Object(_)) => {
                Ok(Value::Json(Box::new(json)))
            }
        }
    }
}

impl From<Value> for serde_json::Value {
    fn from(value: Value) -> Self {
        match value {
            Value::Bool(b) => b.into(),
            Value::String(s) => String::from(s).into(),
            // Whole numbers are written as integers so hand-written files round-trip as typed.
            Value::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => (n as i64).into(),
            Value::Number(n) => serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, Into::into),
            Value::Json(json) => *json,
        }
    }
}

/// One attribute value of a [`Context`], borrowed so that building a context never allocates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AttrValue<'a> {
    /// A string, e.g. a country code or an app version.
    Str(&'a str),
    /// A number, e.g. an age or a Unix timestamp in seconds.
    Number(f64),
    /// A boolean.
    Bool(bool),
}

impl<'a> From<&'a str> for AttrValue<'a> {
    fn from(s: &'a str) -> Self {
        AttrValue::Str(s)
    }
}

impl From<f64> for AttrValue<'_> {
    fn from(n: f64) -> Self {
        AttrValue::Number(n)
    }
}

impl From<i64> for AttrValue<'_> {
    fn from(n: i64) -> Self {
        AttrValue::Number(n as f64)
    }
}

impl From<bool> for AttrValue<'_> {
    fn from(b: bool) -> Self {
        AttrValue::Bool(b)
    }
}

/// Who a flag is evaluated for: a targeting key (user, session, tenant …) and attributes.
///
/// Everything is borrowed, so the common case costs nothing to build:
///
/// ```
/// use flag_core::{AttrValue, Context};
/// let plain = Context::new("user-42");
/// let attributes = [("country", AttrValue::Str("NZ")), ("age", AttrValue::Number(31.0))];
/// let rich = Context::new("user-42").with_attributes(&attributes);
/// assert_eq!(rich.attribute("country"), Some(AttrValue::Str("NZ")));
/// assert_eq!(plain.attribute("key"), Some(AttrValue::Str("user-42")));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    key: &'a str,
    attributes: &'a [(&'a str, AttrValue<'a>)],
}

/// The attribute name under which rules see a context's targeting key.
pub const KEY_ATTRIBUTE: &str = "key";

impl<'a> Context<'a> {
    /// A context with a targeting key and no attributes.
    pub const fn new(key: &'a str) -> Self {
        Context { key, attributes: &[] }
    }

    /// The same context with these attributes (a later duplicate name is ignored).
    pub const fn with_attributes(self, attributes: &'a [(&'a str, AttrValue<'a>)]) -> Self {
        Context { key: self.key, attributes }
    }

    /// The targeting key splits bucket by.
    pub fn key(&self) -> &'a str {
        self.key
    }

    /// The attributes as given.
    pub fn attributes(&self) -> &'a [(&'a str, AttrValue<'a>)] {
        self.attributes
    }

    /// The value rules see for `name`; [`KEY_ATTRIBUTE`] is the targeting key.
    #[inline]
    pub fn attribute(&self, name: &str) -> Option<AttrValue<'a>> {
        if name == KEY_ATTRIBUTE {
            return Some(AttrValue::Str(self.key));
        }
        self.attributes.iter().find(|(attr, _)| *attr == name).map(|(_, value)| *value)
    }
}
