//! Unleash's evaluation engine (`unleash-yggdrasil`) as a bench peer.
//!
//! Flags arrive the way an Unleash SDK receives them: a `/api/client/features` JSON document
//! handed to [`EngineState::take_state`], which compiles every toggle once. Each call then
//! does what an application does per request: build a [`Context`] from the user key and ask
//! [`EngineState::is_enabled`].

use std::fmt;

use serde_json::{Value, json};
use unleash_yggdrasil::{Context, EngineState, UpdateMessage};

/// Unleash's engine holding `flag_count` toggles named `flag-0` .. `flag-{n-1}`, each a
/// flexibleRollout strategy at 50 % with stickiness on userId (groupId = toggle name).
pub struct YggdrasilRollout {
    // The engine owns its compiled state behind its own `ArcSwap`; we only hold it, exactly
    // as an SDK wrapper does.
    engine: EngineState,
    flag_count: usize,
}

impl fmt::Debug for YggdrasilRollout {
    // `EngineState` has no `Debug`; the flag count is what tells two fixtures apart.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("YggdrasilRollout").field("flag_count", &self.flag_count).finish_non_exhaustive()
    }
}

impl YggdrasilRollout {
    /// Builds the engine from an Unleash client-features document with `flag_count` toggles.
    ///
    /// Returns an error if the document does not deserialize or the engine reports
    /// compile warnings (a toggle that failed to compile would silently evaluate to false).
    pub fn new(flag_count: usize) -> Result<Self, String> {
        let features: Vec<Value> = (0..flag_count)
            .map(|i| {
                let name = format!("flag-{i}");
                json!({
                    "name": name,
                    "type": "release",
                    "enabled": true,
                    "project": "default",
                    "stale": false,
                    "impressionData": false,
                    "strategies": [{
                        "name": "flexibleRollout",
                        "constraints": [],
                        "parameters": {
                            "rollout": "50",
                            "stickiness": "userId",
                            "groupId": name,
                        },
                        "variants": [],
                    }],
                    "variants": [],
                    "dependencies": [],
                })
            })
            .collect();
        let document = json!({
            "version": 2,
            "features": features,
            "segments": [],
            "query": { "project": ["default"], "environment": "production", "inlineSegmentConstraints": true },
        });

        let message: UpdateMessage =
            serde_json::from_value(document).map_err(|e| format!("unleash client-features document: {e}"))?;
        let engine = EngineState::default();
        if let Some(warnings) = engine.take_state(message) {
            let messages: Vec<String> =
                warnings.iter().map(|w| format!("{}: {}", w.toggle_name, w.message)).collect();
            return Err(format!("unleash compile warnings: {}", messages.join("; ")));
        }
        Ok(Self { engine, flag_count })
    }

    /// `EngineState::is_enabled` for `flag` with a context whose userId is `user_key`, built
    /// the way an application would per request.
    pub fn is_enabled(&self, flag: &str, user_key: &str) -> bool {
        // Unleash's `Context` owns its strings, so a per-request context costs one `String`.
        let context = Context { user_id: Some(user_key.to_owned()), ..Context::default() };
        self.engine.is_enabled(flag, &context, &None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn about_half_of_users_get_a_fifty_percent_rollout() {
        let peer = YggdrasilRollout::new(1_000).unwrap();
        let enabled = (0..10_000).filter(|i| peer.is_enabled("flag-500", &format!("user-{i:08}"))).count();
        let fraction = enabled as f64 / 10_000.0;
        assert!(
            (0.45..0.55).contains(&fraction),
            "flag-500 enabled for {fraction} of users, expected about 0.5"
        );
    }

    #[test]
    fn unknown_flag_is_disabled() {
        let peer = YggdrasilRollout::new(1_000).unwrap();
        let enabled = (0..1_000).filter(|i| peer.is_enabled("flag-1000", &format!("user-{i:08}"))).count();
        assert_eq!(enabled, 0, "an unknown flag must evaluate to false");
    }
}
