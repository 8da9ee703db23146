//! What a serve returns as a JSONLogic expression: a variant name, or flagd's `fractional`
//! bucketing exactly as ours does.
//!
//! We hash `salt ++ bucket key` with murmur3 and take `(hash * total) >> 32`, which is flagd's
//! rule for the bucketing string `{"cat": [salt, key]}`; the weights go over as written.

use flag_core::{Bucketing, KEY_ATTRIBUTE, Serve, Split, Weight};
use serde_json::{Value as Json, json};

use super::expr::{and, is_number, is_string, or, unreadable_attribute, var};

/// Returned where our evaluator serves no variant (the caller's default: a split whose `by`
/// attribute is missing or of a type we do not bucket, `caller_default`, a failed
/// prerequisite without an off variant): no flag can have a variant of this name (it is not
/// a valid variant name), and flagd providers answer an unknown variant with an error, so
/// the caller gets its default from both.
pub const NO_VARIANT: &str = "$caller-default";

/// The expression a serve of flag `flag_key` evaluates to; `inlined` when it is evaluated
/// as another flag's prerequisite, inside that flag's targeting.
pub(crate) fn serve(serve: &Serve, flag_key: &str, inlined: bool) -> Result<Json, String> {
    match serve {
        Serve::Variant(variant) => Ok(Json::String(variant.clone())),
        Serve::Split(split) => fractional(split, flag_key, inlined),
        Serve::CallerDefault => Ok(Json::String(NO_VARIANT.into())),
    }
}

fn fractional(split: &Split, flag_key: &str, inlined: bool) -> Result<Json, String> {
    let Split { by, salt, weights, bucketing } = split;
    let salt = salt.as_deref().unwrap_or(flag_key);
    // flagd-v3 providers hash the CBOR pair [flagKey, targetingKey] when `fractional` has no
    // bucketing expression, and the CBOR text of the `cat` string otherwise — exactly our
    // two flagd-v3 inputs. (A flagd-v2 split read by a v3 provider, or the reverse, puts
    // users in other cohorts: a split's bucketing must match the providers' version.)
    let implicit = *bucketing == Bucketing::FlagdV3 && by.is_none() && salt == flag_key;
    if implicit && inlined {
        // The pair's flag key is the evaluated flag's, not the prerequisite's, and an array
        // as `fractional`'s first argument would read as a weight.
        return Err("a flagd-v3 split hashes the evaluated flag's key: it cannot be a prerequisite".into());
    }
    let mut args = Vec::with_capacity(weights.len() + 1);
    let bucket_key = match by.as_deref() {
        None => var(KEY_ATTRIBUTE),
        Some(KEY_ATTRIBUTE) => {
            // `by: key` reads a context attribute named `key`, which flagd contexts cannot
            // tell apart from our targeting key.
            return Err("a split `by: key` buckets by an attribute named `key`".into());
        }
        Some(attribute) => {
            if let Some(why) = unreadable_attribute(attribute) {
                return Err(why);
            }
            var(attribute)
        }
    };
    if !implicit {
        args.push(json!({ "cat": [salt, bucket_key] }));
    }
    for Weight { variant, weight } in weights {
        args.push(json!([variant, weight]));
    }
    let fractional = json!({ "fractional": args });
    Ok(match by {
        None => fractional,
        Some(_) => json!({ "if": [bucketable(&bucket_key), fractional, NO_VARIANT] }),
    })
}

/// What our evaluator buckets by an attribute: a string, or a whole number below 2^63 as
/// its decimal text — which is also what `cat` writes for such a number. Anything else (a
/// missing attribute, a bool, a fraction) is an error for us, while `cat` would make a
/// bucketing string of it.
fn bucketable(x: &Json) -> Json {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    or(vec![
        is_string(x),
        and(vec![is_number(x), json!({ "==": [{ "%": [x, 1] }, 0] }), json!({ "<": [-LIMIT, x, LIMIT] })]),
    ])
}
