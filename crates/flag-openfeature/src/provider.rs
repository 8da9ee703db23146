//! [`FlagProvider`]: OpenFeature's [`FeatureProvider`] over a flag-sdk [`Client`]. Every
//! resolution is one load of the client's snapshot and one in-process evaluation; the
//! provider's status is the client's.

use std::time::Duration;

use flag_sdk::{Changes, Client, FlagChanges, Status};
use open_feature::provider::{FeatureProvider, ProviderMetadata, ProviderStatus, ResolutionDetails};
use open_feature::{EvaluationContext, EvaluationError, EvaluationErrorCode, StructValue, async_trait};

use crate::context::with_context;
use crate::events::ProviderEvents;
use crate::resolution::{Read, Served, answer, bool_of, float_of, int_of, string_of, struct_of};

/// How long [`FeatureProvider::initialize`] waits for a client's first snapshot unless
/// told otherwise ([`FlagProvider::with_init_timeout`]).
pub const DEFAULT_INIT_TIMEOUT: Duration = Duration::from_secs(5);

/// The OpenFeature provider for flag-sdk: flags evaluated in this process by the client's
/// own evaluator, from the snapshot the client keeps current over flagd's stream. No
/// resolution waits on the network.
///
/// Cheap to clone; clones share the client. Give one to OpenFeature
/// (`OpenFeature::singleton_mut().await.set_provider(provider.clone())`) and keep another
/// for what OpenFeature 0.3 cannot carry: [`events`](Self::events),
/// [`changes`](Self::changes), [`flag_changes`](Self::flag_changes).
#[derive(Clone, Debug)]
pub struct FlagProvider {
    client: Client,
    /// Owned because the trait lends it by reference.
    metadata: ProviderMetadata,
    init_timeout: Duration,
}

impl FlagProvider {
    /// The provider's name in OpenFeature's provider metadata.
    pub const NAME: &'static str = "flag-sdk";

    /// A provider evaluating with `client` (connected or not yet: see
    /// [`status`](FeatureProvider::status)).
    pub fn new(client: Client) -> FlagProvider {
        FlagProvider {
            client,
            metadata: ProviderMetadata::new(Self::NAME),
            init_timeout: DEFAULT_INIT_TIMEOUT,
        }
    }

    /// How long `initialize` (run by OpenFeature's `set_provider`) waits for a client that
    /// has no flags yet to get its first snapshot; [`DEFAULT_INIT_TIMEOUT`] by default. It
    /// returns sooner once the snapshot is there; after the timeout the provider stays
    /// `NOT_READY` until it is.
    pub fn with_init_timeout(mut self, timeout: Duration) -> FlagProvider {
        self.init_timeout = timeout;
        self
    }

    /// The client the provider evaluates with, for flag-sdk's own API (typed getters
    /// without allocation, dark launches, outcomes).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Status transitions and applied changes, as OpenFeature's provider events.
    pub fn events(&self) -> ProviderEvents {
        ProviderEvents::new(&self.client)
    }

    /// Wakes on every change the client applies; see [`Changes`].
    pub fn changes(&self) -> Changes {
        self.client.changes()
    }

    /// Wakes when `key`'s answers may have changed; see [`FlagChanges`].
    pub fn flag_changes(&self, key: &str) -> FlagChanges {
        self.client.flag_changes(key)
    }

    /// Whether the client has flags to serve: a first snapshot from flagd (or its cache
    /// file), an offline file or test flags.
    fn has_flags(&self) -> bool {
        !matches!(self.client.status(), Status::Stale { .. }) || self.client.revision() > 0
    }

    /// One snapshot load, one evaluation, read as the type asked.
    fn resolve<T>(
        &self,
        key: &str,
        context: &EvaluationContext,
        read: Read<T>,
    ) -> Result<ResolutionDetails<T>, EvaluationError> {
        let current = self.client.current();
        let resolved = with_context(context, |ctx| {
            let served = Served {
                key,
                evaluation: current.evaluate(key, ctx),
                definition: current.definition(key),
                revision: current.revision(),
            };
            answer(served, read)
        });
        match resolved {
            // Not a missing flag: no flags at all yet. Checked only here, so resolutions
            // that find their flag never read the status.
            Err(error) if error.code == EvaluationErrorCode::FlagNotFound && !self.has_flags() => {
                Err(EvaluationError {
                    code: EvaluationErrorCode::ProviderNotReady,
                    message: Some("the client has no flags from flagd yet".to_owned()),
                })
            }
            resolved => resolved,
        }
    }
}

#[async_trait]
impl FeatureProvider for FlagProvider {
    /// Waits up to the init timeout for the client's first snapshot, if it has none yet.
    async fn initialize(&mut self, _context: &EvaluationContext) {
        if self.has_flags() {
            return;
        }
        let mut status = self.client.status_changes();
        // Timing out is not a failure: the client keeps trying, and the status says so.
        let _ = tokio::time::timeout(
            self.init_timeout,
            status.wait_for(|status| !matches!(status, Status::Stale { .. })),
        )
        .await;
    }

    /// `READY` while the client follows flagd (or serves an offline file or test flags);
    /// `STALE` while it reconnects and serves the last flags it had; `NOT_READY` before it
    /// has any.
    fn status(&self) -> ProviderStatus {
        match self.client.status() {
            Status::Ready | Status::Offline => ProviderStatus::Ready,
            Status::Stale { .. } if self.client.revision() > 0 => ProviderStatus::STALE,
            Status::Stale { .. } => ProviderStatus::NotReady,
            // A status added to flag-sdk later: not known to be current.
            _ => ProviderStatus::STALE,
        }
    }

    fn metadata(&self) -> &ProviderMetadata {
        &self.metadata
    }

    async fn resolve_bool_value(
        &self,
        flag_key: &str,
        evaluation_context: &EvaluationContext,
    ) -> Result<ResolutionDetails<bool>, EvaluationError> {
        self.resolve(flag_key, evaluation_context, bool_of)
    }

    async fn resolve_int_value(
        &self,
        flag_key: &str,
        evaluation_context: &EvaluationContext,
    ) -> Result<ResolutionDetails<i64>, EvaluationError> {
        self.resolve(flag_key, evaluation_context, int_of)
    }

    async fn resolve_float_value(
        &self,
        flag_key: &str,
        evaluation_context: &EvaluationContext,
    ) -> Result<ResolutionDetails<f64>, EvaluationError> {
        self.resolve(flag_key, evaluation_context, float_of)
    }

    async fn resolve_string_value(
        &self,
        flag_key: &str,
        evaluation_context: &EvaluationContext,
    ) -> Result<ResolutionDetails<String>, EvaluationError> {
        self.resolve(flag_key, evaluation_context, string_of)
    }

    async fn resolve_struct_value(
        &self,
        flag_key: &str,
        evaluation_context: &EvaluationContext,
    ) -> Result<ResolutionDetails<StructValue>, EvaluationError> {
        self.resolve(flag_key, evaluation_context, struct_of)
    }
}

#[cfg(test)]
mod tests {
    use flag_sdk::TestFlags;
    use open_feature::{EvaluationReason, FlagMetadataValue};
    use serde_json::json;

    use super::*;

    fn flags_with(written: serde_json::Value) -> TestFlags {
        let flags = TestFlags::new();
        flags.enable("base");
        flags.flag(serde_json::from_value(written).unwrap()).unwrap();
        flags
    }

    fn user(key: &str) -> EvaluationContext {
        EvaluationContext::default().with_targeting_key(key)
    }

    #[test]
    fn a_failed_prerequisite_serves_the_off_variant_and_names_the_prerequisite() {
        let flags = flags_with(json!({
            "key": "chat",
            "variants": [{ "name": "on", "value": true }, { "name": "off", "value": false }],
            "off_variant": "off",
            "default": { "variant": "on" },
            "prerequisites": [{ "flag": "base", "variant": "on" }],
        }));
        let provider = FlagProvider::new(flags.client());
        let held = provider.resolve("chat", &user("u"), bool_of).unwrap();
        assert_eq!(
            (held.value, held.reason),
            (true, Some(EvaluationReason::Default)),
            "not STATIC: it has a prerequisite"
        );

        flags.disable("base");
        let failed = provider.resolve("chat", &user("u"), bool_of).unwrap();
        assert_eq!((failed.value, failed.variant.as_deref()), (false, Some("off")));
        assert_eq!(failed.reason, Some(EvaluationReason::Other("PREREQUISITE_FAILED".into())));
        let metadata = failed.flag_metadata.unwrap();
        assert_eq!(metadata.values.get("prerequisite"), Some(&FlagMetadataValue::String("base".into())));
    }

    #[test]
    fn the_flag_metadata_carries_its_owner_kind_and_tags() {
        let flags = flags_with(json!({
            "key": "theme",
            "variants": [{ "name": "dusk", "value": "dusk" }],
            "off_variant": "dusk",
            "default": { "variant": "dusk" },
            "metadata": { "owner": "growth", "tags": ["web", "q3"], "kind": "experiment" },
        }));
        let provider = FlagProvider::new(flags.client());
        let theme = provider.resolve("theme", &user("u"), string_of).unwrap();
        let values = theme.flag_metadata.unwrap().values;
        let string = |name: &str| match values.get(name) {
            Some(FlagMetadataValue::String(s)) => Some(s.as_str()),
            _ => None,
        };
        assert_eq!(string("owner"), Some("growth"));
        assert_eq!(string("kind"), Some("experiment"));
        assert_eq!(string("tags"), Some("web,q3"));
        assert_eq!(
            values.get("revision"),
            Some(&FlagMetadataValue::Int(provider.client().revision() as i64))
        );
    }

    #[test]
    fn a_split_by_an_attribute_the_context_lacks_is_an_invalid_context() {
        let flags = flags_with(json!({
            "key": "org-rollout",
            "variants": [{ "name": "on", "value": true }, { "name": "off", "value": false }],
            "off_variant": "off",
            "default": { "split": { "by": "org", "weights": [
                { "variant": "on", "weight": 50_000 }, { "variant": "off", "weight": 50_000 },
            ] } },
        }));
        let provider = FlagProvider::new(flags.client());
        let error = provider.resolve("org-rollout", &user("u"), bool_of).unwrap_err();
        assert_eq!(error.code, EvaluationErrorCode::InvalidContext);
        let with_org = user("u").with_custom_field("org", "acme");
        let resolved = provider.resolve("org-rollout", &with_org, bool_of).unwrap();
        assert_eq!(resolved.reason, Some(EvaluationReason::TargetingMatch));
        let bucket = flag_core::bucket("org-rollout", "acme");
        assert_eq!(
            resolved.flag_metadata.unwrap().values.get("bucket"),
            Some(&FlagMetadataValue::Int(bucket.into()))
        );
    }

    #[test]
    fn test_flags_are_ready_at_once_and_a_missing_flag_is_not_found() {
        let provider = FlagProvider::new(TestFlags::new().client());
        assert_eq!(provider.status(), ProviderStatus::Ready);
        let error = provider.resolve("missing", &user("u"), bool_of).unwrap_err();
        assert_eq!(error.code, EvaluationErrorCode::FlagNotFound);
    }
}
