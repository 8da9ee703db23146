//! `Admin.Evaluate`: one flag for one context, with the evaluator the SDKs run, so an
//! operator can ask "why did user 42 get this?" of the server's current state.

use flag_core::{AttrValue, Context, Evaluation, FlagSet, ValidationError};

/// Evaluates `key` in `set` for `targeting_key` with `attributes`, and hands the evaluation
/// and the flag's version (0 when missing) to `answer`: the evaluation borrows the snapshot
/// compiled here, so the answer is made before it goes. The stored set was validated when
/// written, so an error means a store that contradicts its own checks.
pub(crate) fn evaluate<R>(
    set: FlagSet,
    key: &str,
    targeting_key: &str,
    attributes: &[(&str, AttrValue<'_>)],
    answer: impl FnOnce(&Evaluation<'_>, u64) -> R,
) -> Result<R, ValidationError> {
    let flag_version = set.flags.iter().find(|f| f.key == key).map_or(0, |f| f.version);
    let snapshot = set.compile()?;
    let context = Context::new(targeting_key).with_attributes(attributes);
    Ok(answer(&snapshot.evaluate(key, &context), flag_version))
}

#[cfg(test)]
mod tests {
    use flag_core::{Flag, Reason};

    use super::*;

    #[test]
    fn the_answer_carries_the_flag_version_and_the_reason() {
        let mut flag = Flag::rollout("chat", 10.0).unwrap();
        flag.version = 3;
        let set = FlagSet { flags: vec![flag], segments: vec![] };
        let answer = evaluate(set.clone(), "chat", "user-1", &[], |e, version| {
            (e.variant.map(str::to_owned), e.reason == Reason::Split { bucket: 8328 }, version)
        });
        assert_eq!(answer.unwrap(), (Some("on".to_owned()), true, 3));
        let missing =
            evaluate(set, "nope", "user-1", &[], |e, version| (e.reason == Reason::FlagNotFound, version));
        assert_eq!(missing.unwrap(), (true, 0));
    }
}
