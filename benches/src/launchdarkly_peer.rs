//! LaunchDarkly's evaluation engine (`launchdarkly-server-sdk-evaluation`) as a bench peer.
//!
//! Flags arrive the way the server SDK receives them: flag JSON in LaunchDarkly's data-model
//! format, deserialized into [`Flag`]s and kept in an in-memory store. Each call does what
//! an application does per request: build a user [`Context`] from the key, look the flag
//! up, and call [`evaluate`].

use std::collections::HashMap;

use launchdarkly_server_sdk_evaluation::{
    Context, ContextBuilder, Flag, FlagValue, Segment, Store, evaluate,
};
use serde_json::json;

/// LaunchDarkly's in-memory store of flags (and segments, of which this fixture has none).
///
/// The SDK's own `InMemoryDataStore` lives in `launchdarkly-server-sdk`, which brings an
/// HTTP client and a runtime; this is the same shape (a `HashMap` by key) without them.
#[derive(Debug)]
struct MemoryStore {
    flags: HashMap<String, Flag>,
}

impl Store for MemoryStore {
    // The trait hands out owned values, so the evaluator clones on every lookup it makes
    // through the store (prerequisites, segments); our flags have neither.
    fn flag(&self, flag_key: &str) -> Option<Flag> {
        self.flags.get(flag_key).cloned()
    }

    fn segment(&self, _segment_key: &str) -> Option<Segment> {
        None
    }
}

/// LaunchDarkly's evaluator with `flag_count` boolean flags `flag-0`.. each a 50/50
/// percentage rollout (bucketed by key) between variation true and false, in an in-memory
/// store.
#[derive(Debug)]
pub struct LaunchDarklyRollout {
    store: MemoryStore,
}

impl LaunchDarklyRollout {
    /// Builds the store from `flag_count` flags in LaunchDarkly's flag JSON format.
    ///
    /// Returns an error if a flag document does not deserialize.
    pub fn new(flag_count: usize) -> Result<Self, String> {
        let mut flags = HashMap::with_capacity(flag_count);
        for i in 0..flag_count {
            let key = format!("flag-{i}");
            let document = json!({
                "key": key,
                "version": 1,
                "on": true,
                "targets": [],
                "contextTargets": [],
                "rules": [],
                "prerequisites": [],
                "fallthrough": {
                    "rollout": {
                        "variations": [
                            { "variation": 0, "weight": 50_000 },
                            { "variation": 1, "weight": 50_000 },
                        ],
                    },
                },
                "offVariation": 1,
                "variations": [true, false],
                "clientSideAvailability": {
                    "usingEnvironmentId": false,
                    "usingMobileKey": false,
                },
                "salt": format!("salt-{key}"),
                "trackEvents": false,
                "trackEventsFallthrough": false,
                "debugEventsUntilDate": null,
            });
            let flag: Flag =
                serde_json::from_value(document).map_err(|e| format!("launchdarkly flag {key}: {e}"))?;
            flags.insert(key, flag);
        }
        Ok(Self { store: MemoryStore { flags } })
    }

    /// `evaluate(store, flag, context, None)` for the flag with a context of kind user keyed
    /// by `user_key`, built the way an application would per request; true if the result
    /// value is bool true.
    pub fn is_enabled(&self, flag: &str, user_key: &str) -> bool {
        // `ContextBuilder` defaults to kind "user"; `build` only fails on an empty key.
        let Ok(context): Result<Context, String> = ContextBuilder::new(user_key).build() else {
            return false;
        };
        // Borrow the flag rather than go through `Store::flag`, which would clone it: the
        // evaluator takes `&Flag`, so the clone is not work the library requires.
        let Some(flag) = self.store.flags.get(flag) else {
            return false;
        };
        matches!(evaluate(&self.store, flag, &context, None).value, Some(FlagValue::Bool(true)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn about_half_of_users_get_a_fifty_percent_rollout() {
        let peer = LaunchDarklyRollout::new(1_000).unwrap();
        let enabled = (0..10_000).filter(|i| peer.is_enabled("flag-500", &format!("user-{i:08}"))).count();
        let fraction = enabled as f64 / 10_000.0;
        assert!(
            (0.45..0.55).contains(&fraction),
            "flag-500 enabled for {fraction} of users, expected about 0.5"
        );
    }

    #[test]
    fn unknown_flag_is_disabled() {
        let peer = LaunchDarklyRollout::new(1_000).unwrap();
        let enabled = (0..1_000).filter(|i| peer.is_enabled("flag-1000", &format!("user-{i:08}"))).count();
        assert_eq!(enabled, 0, "an unknown flag must evaluate to false");
    }
}
