//! Flags forced by a test, served by a real [`Client`] without any server.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use flag_core::{Clause, Flag, Literal, Metadata, Operator, Rule, Serve, ValidationError, Value, Variant};

use crate::client::{Client, Tasks};
use crate::model::Model;
use crate::shared::Shared;
use crate::status::Status;

/// Forces flags and variants for an application's unit tests: the code under test gets a
/// real [`Client`] (status [`Status::Offline`]) and evaluates exactly as in production.
/// Changes made after handing out the client are seen by it at once, so tests can also
/// exercise reactions to a change (or a kill).
///
/// ```
/// use flag_core::{Context, LaunchStage};
/// use flag_sdk::{Evaluate, TestFlags};
///
/// let flags = TestFlags::new();
/// flags.enable("new-checkout").variant("chat", "dark").string("theme", "dusk");
/// let client = flags.client();
/// let user = Context::new("user-1");
/// assert!(client.is_enabled("new-checkout", &user));
/// assert_eq!(client.launch_stage("chat", &user), LaunchStage::Dark);
/// assert_eq!(client.current().string_value("theme", &user, "light"), "dusk");
///
/// flags.disable("new-checkout");
/// assert!(!client.is_enabled("new-checkout", &user));
/// ```
///
/// Setters panic on an invalid key (a test's mistake, reported at its line).
#[derive(Debug)]
pub struct TestFlags {
    client: Client,
    /// `Mutex`: setters take `&self` so a test can change flags while the application
    /// holds the client; installs must not interleave.
    flags: Mutex<BTreeMap<String, Flag>>,
}

impl Default for TestFlags {
    fn default() -> Self {
        TestFlags::new()
    }
}

impl TestFlags {
    /// No flags: every evaluation answers the caller's default. Needs no runtime.
    pub fn new() -> TestFlags {
        let shared = Arc::new(Shared::new("test".into(), Status::Offline));
        // No background tasks: nothing to follow, and metrics flush on demand.
        let client = Client::from_parts(shared, Arc::new(Tasks::default()));
        TestFlags { client, flags: Mutex::new(BTreeMap::new()) }
    }

    /// A client serving these flags (clones share them).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// `key` serves `true` to everyone (variants `on`/`dark`/`off`, serving `on`).
    pub fn enable(&self, key: &str) -> &Self {
        self.variant(key, flag_core::ON)
    }

    /// `key` serves `false` to everyone (the `off` variant).
    pub fn disable(&self, key: &str) -> &Self {
        self.variant(key, flag_core::OFF)
    }

    /// `key` is a dark-launch flag serving `variant` (`on`, `dark` or `off`) to everyone.
    pub fn variant(&self, key: &str, variant: &str) -> &Self {
        let variants = [(flag_core::ON, true), (flag_core::DARK, false), (flag_core::OFF, false)]
            .map(|(name, on)| Variant { name: name.into(), value: Value::Bool(on) })
            .to_vec();
        self.put(plain(key, variants, flag_core::OFF, variant))
    }

    /// `key` serves `variant` to the context whose targeting key is `targeting_key`, and
    /// what it served before to everyone else (a dark-launch flag serving `off` if new).
    pub fn variant_for(&self, key: &str, targeting_key: &str, variant: &str) -> &Self {
        let existing = self.lock().get(key).cloned();
        let mut flag = match existing {
            Some(flag) => flag,
            None => {
                self.variant(key, flag_core::OFF);
                self.lock().get(key).cloned().unwrap_or_else(|| unreachable!("just put"))
            }
        };
        flag.rules.insert(
            0,
            Rule {
                description: format!("forced for {targeting_key}"),
                clauses: vec![Clause {
                    attribute: flag_core::KEY_ATTRIBUTE.into(),
                    op: Operator::In,
                    values: vec![Literal(targeting_key.into())],
                    negate: false,
                }],
                serve: Serve::Variant(variant.into()),
            },
        );
        self.put(flag)
    }

    /// `key` serves the string `value` to everyone.
    pub fn string(&self, key: &str, value: &str) -> &Self {
        self.single(key, Value::String(value.into()))
    }

    /// `key` serves the number `value` to everyone.
    pub fn number(&self, key: &str, value: f64) -> &Self {
        self.single(key, Value::Number(value))
    }

    /// `key` serves the JSON object or array `value` to everyone.
    pub fn json(&self, key: &str, value: serde_json::Value) -> &Self {
        self.single(key, Value::Json(Box::new(value)))
    }

    /// Kills `key` (`enabled: false`): everyone gets its off variant.
    pub fn kill(&self, key: &str) -> &Self {
        let existing = self.lock().get(key).cloned();
        let Some(mut flag) = existing else { return self.disable(key) };
        flag.enabled = false;
        self.put(flag)
    }

    /// Removes `key`: evaluations answer the caller's default.
    pub fn remove(&self, key: &str) -> &Self {
        let mut flags = self.lock();
        flags.remove(key);
        self.install(&flags).unwrap_or_else(|error| panic!("TestFlags: {error}"));
        drop(flags);
        self
    }

    /// Any flag, as written in a flags file; refused with every problem if invalid.
    pub fn flag(&self, flag: Flag) -> Result<&Self, ValidationError> {
        let mut flags = self.lock();
        let previous = flags.insert(flag.key.clone(), flag.clone());
        if let Err(error) = self.install(&flags) {
            match previous {
                Some(previous) => flags.insert(flag.key, previous),
                None => flags.remove(&flag.key),
            };
            return Err(error);
        }
        Ok(self)
    }

    fn single(&self, key: &str, value: Value) -> &Self {
        self.put(plain(key, vec![Variant { name: "value".into(), value }], "value", "value"))
    }

    fn put(&self, flag: Flag) -> &Self {
        let key = flag.key.clone();
        self.flag(flag).unwrap_or_else(|error| panic!("TestFlags: cannot force {key:?}: {error}"))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Flag>> {
        // A test that panicked mid-set poisons nothing worth keeping from the next test.
        self.flags.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn install(&self, flags: &BTreeMap<String, Flag>) -> Result<(), ValidationError> {
        let shared = &self.client.shared;
        let set = flag_core::FlagSet { flags: flags.values().cloned().collect(), segments: vec![] };
        let previous = Arc::clone(&shared.live.load().model);
        // Revisions count the changes, so per-flag subscriptions see each one.
        let revision = shared.live.load().revision + 1;
        shared.install(Model::from_set(set, revision, &previous), revision).map(|_| ())
    }
}

fn plain(key: &str, variants: Vec<Variant>, off: &str, serve: &str) -> Flag {
    Flag {
        key: key.into(),
        description: String::new(),
        variants,
        enabled: true,
        off_variant: Some(off.into()),
        rules: Vec::new(),
        default: Serve::Variant(serve.into()),
        prerequisites: Vec::new(),
        version: 0,
        metadata: Metadata::default(),
    }
}

#[cfg(test)]
mod tests {
    use flag_core::{Context, Evaluate};

    use super::*;

    #[test]
    fn forced_values_reach_the_client_and_changes_are_seen_at_once() {
        let flags = TestFlags::new();
        let client = flags.client();
        let user = Context::new("user-1");
        assert!(!client.is_enabled("chat", &user));
        flags.enable("chat").number("limit", 3.0).json("layout", serde_json::json!({ "columns": 2 }));
        assert!(client.is_enabled("chat", &user));
        assert_eq!(client.number_value("limit", &user, 1.0), 3.0);
        assert_eq!(client.current().json_value("layout", &user, &serde_json::Value::Null)["columns"], 2);
        flags.kill("chat");
        assert!(!client.is_enabled("chat", &user));
        flags.remove("limit");
        assert_eq!(client.number_value("limit", &user, 1.0), 1.0);
        assert_eq!(client.status(), Status::Offline);
    }

    #[test]
    fn the_client_answers_strings_json_and_details_as_owned_copies() {
        let flags = TestFlags::new();
        flags.string("theme", "dusk").json("layout", serde_json::json!({ "columns": 2 })).enable("chat");
        let client = flags.client();
        let user = Context::new("user-1");
        let theme: String = client.string_value("theme", &user, "light");
        assert_eq!(theme, "dusk");
        assert_eq!(client.json_value("layout", &user, &serde_json::Value::Null)["columns"], 2);
        assert_eq!(client.string_value("missing", &user, "light"), "light");
        let detail = client.bool_detail("chat", &user, false);
        assert_eq!((detail.value, detail.variant.as_deref()), (true, Some("on")));
        assert_eq!(detail.reason, flag_core::OwnedReason::Default);
        // The same answers as a holder that lends its snapshot, which borrows them instead.
        let current = client.current();
        assert_eq!(current.string_detail("theme", &user, "light").value, theme);
        let mismatch = client.number_detail("theme", &user, 1.0);
        assert_eq!((mismatch.value, mismatch.variant), (1.0, None));
        assert!(matches!(
            mismatch.reason,
            flag_core::OwnedReason::Error(flag_core::EvalError::TypeMismatch { .. })
        ));
    }

    #[test]
    fn a_variant_forced_for_one_user_leaves_the_others_alone() {
        let flags = TestFlags::new();
        flags.disable("chat").variant_for("chat", "vip", flag_core::ON);
        let client = flags.client();
        assert!(client.is_enabled("chat", &Context::new("vip")));
        assert!(!client.is_enabled("chat", &Context::new("someone-else")));
    }

    #[test]
    fn an_invalid_flag_is_refused_and_the_previous_flags_kept() {
        let flags = TestFlags::new();
        flags.enable("chat");
        let mut broken = Flag::rollout("chat", 10.0).unwrap();
        broken.off_variant = Some("missing".into());
        let error = flags.flag(broken).unwrap_err();
        assert!(error.to_string().contains("off_variant"), "{error}");
        assert!(flags.client().is_enabled("chat", &Context::new("u")));
    }
}
