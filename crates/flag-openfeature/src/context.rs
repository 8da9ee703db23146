//! OpenFeature's [`EvaluationContext`] as flag-core's borrowed [`Context`]: the targeting
//! key and the custom fields rules can test, borrowed from the OpenFeature context rather
//! than copied.

use flag_core::{AttrValue, Context};
use open_feature::{EvaluationContext, EvaluationContextFieldValue};

/// Custom fields mapped on the stack; a context with more is mapped into one `Vec`. Real
/// contexts carry a handful of fields, so the common evaluation allocates nothing here.
const ON_STACK: usize = 16;

/// Runs `evaluate` with `context` as flag-core sees it, and answers what it answers.
///
/// - The targeting key is the context's key (what splits bucket by and rules see as
///   `key`); a context without one is evaluated with the empty key, so every such context
///   falls in the one bucket of `""`.
/// - Custom fields become attributes: strings as strings, booleans as booleans, integers
///   and floats as numbers (an integer beyond ±2^53 loses precision as a double), and
///   date-times as Unix seconds (with their fraction), which flag-core's `date_before` and
///   `date_after` clauses compare. Structure fields are ignored: no clause can test them.
/// - A custom field named `key` is hidden by the targeting key, which rules see under that
///   name.
///
/// Nothing is copied: names and strings are borrowed from `context`, and up to 16 mapped
/// fields are held on the stack.
pub fn with_context<R>(context: &EvaluationContext, evaluate: impl FnOnce(&Context<'_>) -> R) -> R {
    let key = context.targeting_key.as_deref().unwrap_or("");
    let mut fields =
        context.custom_fields.iter().filter_map(|(name, value)| Some((name.as_str(), attribute(value)?)));
    if context.custom_fields.len() <= ON_STACK {
        let mut attributes = [("", AttrValue::Bool(false)); ON_STACK];
        let mut len = 0;
        for (slot, field) in attributes.iter_mut().zip(&mut fields) {
            *slot = field;
            len += 1;
        }
        evaluate(&Context::new(key).with_attributes(&attributes[..len]))
    } else {
        let attributes: Vec<_> = fields.collect();
        evaluate(&Context::new(key).with_attributes(&attributes))
    }
}

/// The attribute a custom field is to rules, if rules can test it. Every variant is named,
/// so that a new kind of field is a decision, not silently ignored.
fn attribute(value: &EvaluationContextFieldValue) -> Option<AttrValue<'_>> {
    match value {
        EvaluationContextFieldValue::Bool(b) => Some(AttrValue::Bool(*b)),
        EvaluationContextFieldValue::Int(n) => Some(AttrValue::Number(*n as f64)),
        EvaluationContextFieldValue::Float(x) => Some(AttrValue::Number(*x)),
        EvaluationContextFieldValue::String(s) => Some(AttrValue::Str(s)),
        // Seconds and their fraction apart: exact for any date-time within ±2^53 s.
        EvaluationContextFieldValue::DateTime(time) => {
            Some(AttrValue::Number(time.unix_timestamp() as f64 + f64::from(time.nanosecond()) / 1e9))
        }
        EvaluationContextFieldValue::Struct(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attributes_of(context: &EvaluationContext) -> (String, Vec<(String, AttrValue<'static>)>) {
        with_context(context, |ctx| {
            let mut attributes: Vec<_> = ctx
                .attributes()
                .iter()
                .map(|(name, value)| {
                    let value = match *value {
                        AttrValue::Str(s) => AttrValue::Str(s.to_owned().leak()),
                        AttrValue::Number(n) => AttrValue::Number(n),
                        AttrValue::Bool(b) => AttrValue::Bool(b),
                    };
                    ((*name).to_owned(), value)
                })
                .collect();
            attributes.sort_by(|a, b| a.0.cmp(&b.0));
            (ctx.key().to_owned(), attributes)
        })
    }

    #[test]
    fn the_key_and_every_testable_field_reach_the_rules() {
        let context = EvaluationContext::default()
            .with_targeting_key("user-42")
            .with_custom_field("country", "NZ")
            .with_custom_field("age", 31)
            .with_custom_field("score", 0.5)
            .with_custom_field("beta", true)
            .with_custom_field("joined", EvaluationContextFieldValue::DateTime(time_of(1_700_000_000.25)))
            .with_custom_field("profile", EvaluationContextFieldValue::new_struct(vec![1, 2]));
        let (key, attributes) = attributes_of(&context);
        assert_eq!(key, "user-42");
        assert_eq!(
            attributes,
            vec![
                ("age".to_owned(), AttrValue::Number(31.0)),
                ("beta".to_owned(), AttrValue::Bool(true)),
                ("country".to_owned(), AttrValue::Str("NZ")),
                ("joined".to_owned(), AttrValue::Number(1_700_000_000.25)),
                ("score".to_owned(), AttrValue::Number(0.5)),
            ],
            "the structure field is left out"
        );
    }

    #[test]
    fn a_context_without_a_key_is_evaluated_with_the_empty_key() {
        let (key, attributes) = attributes_of(&EvaluationContext::default());
        assert_eq!((key.as_str(), attributes.len()), ("", 0));
    }

    #[test]
    fn more_fields_than_fit_on_the_stack_are_all_mapped() {
        let mut context = EvaluationContext::default().with_targeting_key("u");
        for i in 0..40 {
            context.add_custom_field(format!("field-{i:02}"), i);
        }
        let (_, attributes) = attributes_of(&context);
        assert_eq!(attributes.len(), 40);
        assert_eq!(attributes[39], ("field-39".to_owned(), AttrValue::Number(39.0)));
    }

    fn time_of(seconds: f64) -> time::OffsetDateTime {
        let whole = time::OffsetDateTime::from_unix_timestamp(seconds.trunc() as i64).unwrap();
        whole + time::Duration::nanoseconds((seconds.fract() * 1e9) as i64)
    }
}
