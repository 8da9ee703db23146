//! The flag sets and user keys every bench shares, so ours and the peers see the same load.

use flag_core::{Flag, FlagSet, Snapshot};

/// How many flags each engine holds.
pub const FLAG_COUNT: usize = 1_000;

/// The flag the rollout benches evaluate.
pub const ROLLOUT_FLAG: &str = "flag-500";

/// The flag with a three-clause rule.
pub const TARGETED_FLAG: &str = "targeted";

/// User keys like `user-12345678`, spread over the key space, cycled through by the benches.
pub fn user_keys() -> Vec<String> {
    (0u64..1024).map(|i| format!("user-{:08}", (i * 2_654_435_761) % 100_000_000)).collect()
}

/// `flag-0` … `flag-999`, each a 50 % rollout, plus [`TARGETED_FLAG`].
pub fn flag_set() -> FlagSet {
    let mut flags: Vec<Flag> =
        (0..FLAG_COUNT).filter_map(|i| Flag::rollout(&format!("flag-{i}"), 50.0).ok()).collect();
    let mut targeted = Flag::rollout(TARGETED_FLAG, 50.0).ok();
    let rule = serde_json::json!({
        "clauses": [
            { "attribute": "country", "op": "in", "values": ["NZ", "AU", "GB", "IE", "CA"] },
            { "attribute": "age", "op": "number_gt", "values": [18] },
            { "attribute": "app_version", "op": "semver_gte", "values": ["2.3.0"] },
        ],
        "serve": { "split": { "weights": [
            { "variant": "on", "weight": 25000 }, { "variant": "dark", "weight": 0 }, { "variant": "off", "weight": 75000 },
        ] } },
    });
    if let (Some(flag), Ok(rule)) = (targeted.as_mut(), serde_json::from_value(rule)) {
        flag.rules.push(rule);
    }
    flags.extend(targeted);
    FlagSet { flags, segments: Vec::new() }
}

/// [`flag_set`] compiled.
pub fn snapshot() -> Result<Snapshot, flag_core::ValidationError> {
    flag_set().compile()
}

/// `count` simple flags (a 10 % rollout each), for measuring snapshot size and compile time.
pub fn simple_flags(count: usize) -> FlagSet {
    let flags = (0..count).filter_map(|i| Flag::rollout(&format!("simple-flag-{i:05}"), 10.0).ok()).collect();
    FlagSet { flags, segments: Vec::new() }
}
