//! An [OpenFeature](https://openfeature.dev) provider over flag-sdk: applications written
//! against the OpenFeature API (the `open-feature` crate, 0.3) evaluate our flags in
//! process, with the SDK's own evaluator, from the snapshot its client keeps current over
//! flagd's `Sync.Watch` stream. There is no extra network hop and no resolution waits on
//! the network; what the OpenFeature API adds is its own (a context merge and hooks per
//! call, and owned answers).
//!
//! # Layout
//!
//! - `context` — [`with_context`]: OpenFeature's `EvaluationContext` as flag-core's
//!   borrowed `Context`, without copying.
//! - `structure` — a JSON flag value as OpenFeature's `StructValue`.
//! - `resolution` — one evaluation as OpenFeature's answer: the value read as the type
//!   asked, the variant, the reason, the flag metadata, or the error code.
//! - `events` — [`ProviderEvents`], [`ProviderEvent`]: the client's status and changes as
//!   OpenFeature's provider events.
//! - `provider` — [`FlagProvider`], the `FeatureProvider`.
//!
//! # Types
//!
//! | OpenFeature asks | the flag must serve | else |
//! |---|---|---|
//! | `resolve_bool_value` | a bool | `TYPE_MISMATCH` |
//! | `resolve_string_value` | a string | `TYPE_MISMATCH` |
//! | `resolve_float_value` | a number | `TYPE_MISMATCH` |
//! | `resolve_int_value` | a number that is whole and within `i64` | `TYPE_MISMATCH` (also for `2.5`) |
//! | `resolve_struct_value` | a JSON object (arrays and numbers inside convert; whole numbers within `i64` become ints) | `TYPE_MISMATCH` for a JSON array; `PARSE_ERROR` for a `null` inside, which no OpenFeature value holds |
//!
//! # Context
//!
//! The targeting key is flag-core's context key: what splits bucket by and what rules see as
//! `key`. A context without one is evaluated with the empty key (so all such contexts share
//! one bucket). Custom fields become attributes: strings, bools, ints and floats (as
//! numbers; ints beyond ±2^53 lose precision), and date-times as Unix seconds, which the
//! `date_before`/`date_after` clauses compare. **Structure fields are ignored** — no clause
//! tests them — and a custom field named `key` is hidden by the targeting key. Names and
//! strings are borrowed, and up to 16 fields are mapped on the stack, so the mapping itself
//! allocates nothing (`tests/zero_alloc.rs`).
//!
//! # Reasons and errors
//!
//! | flag-core | OpenFeature |
//! |---|---|
//! | `Reason::Default`, the flag has no rules and no prerequisites | `STATIC` |
//! | `Reason::Default`, the flag has targeting but no rule matched | `DEFAULT` |
//! | `Reason::TargetMatch` (a rule, serving a variant or a split) | `TARGETING_MATCH`, metadata `rule` (and `bucket`) |
//! | `Reason::Split` (the default split) | `TARGETING_MATCH`, metadata `bucket`: flagd reports its `fractional` splits, which bucket as ours do, so too |
//! | `Reason::Disabled` (killed: the off variant) | `DISABLED` |
//! | `Reason::PrerequisiteFailed` (the off variant) | `PREREQUISITE_FAILED`, metadata `prerequisite` |
//! | `Reason::FlagNotFound` | error `FLAG_NOT_FOUND`; `PROVIDER_NOT_READY` while the client has no flags yet |
//! | `EvalError::MissingBucketAttribute` (the split's `by` attribute is absent) | error `INVALID_CONTEXT` |
//! | another evaluation error | error `GENERAL` |
//!
//! An error carries its code and a message; the OpenFeature client then answers the
//! caller's default with reason `ERROR`. A success carries the variant and flag metadata:
//! `revision` (the environment revision served), `version` (the flag's stored version),
//! `rule`, `bucket` (of 100 000) and `prerequisite` as above, and the flag's `owner`,
//! `kind` and `tags` (comma-separated) when set.
//!
//! # Status and events
//!
//! The provider's status is the client's: `READY` while it follows flagd (or serves an
//! offline file or test flags), `STALE` while it reconnects and serves its last flags,
//! `NOT_READY` before it has any. `initialize` waits for a first snapshot up to
//! [`DEFAULT_INIT_TIMEOUT`] ([`FlagProvider::with_init_timeout`]).
//!
//! The `open-feature` crate (0.3) has no provider events: its provider trait cannot emit
//! one, and neither its API nor its clients accept event handlers — its hooks run around
//! evaluations only. So no `PROVIDER_CONFIGURATION_CHANGED` reaches OpenFeature. Instead
//! the provider offers the SDK's own notifications: [`FlagProvider::events`] (the status
//! transitions and applied changes, named as OpenFeature's events), and
//! [`FlagProvider::changes`] and [`FlagProvider::flag_changes`]. Keep a clone of the
//! provider for them: OpenFeature takes the one it is given.
//!
//! # Example
//!
//! ```
//! use flag_openfeature::FlagProvider;
//! use flag_sdk::TestFlags;
//! use open_feature::provider::FeatureProvider;
//! use open_feature::{EvaluationContext, EvaluationReason, OpenFeature};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // In production: `Client::builder("http://127.0.0.1:8013").connect().await?`.
//! let flags = TestFlags::new();
//! flags.string("theme", "dusk");
//! let provider = FlagProvider::new(flags.client());
//!
//! let user = EvaluationContext::default().with_targeting_key("user-42").with_custom_field("country", "NZ");
//! let theme = provider.resolve_string_value("theme", &user).await.map_err(|e| format!("{e:?}"))?;
//! assert_eq!((theme.value.as_str(), theme.reason), ("dusk", Some(EvaluationReason::Static)));
//!
//! // Through the OpenFeature API, keeping a clone for change notifications.
//! let mut changes = provider.changes();
//! OpenFeature::singleton_mut().await.set_provider(provider.clone()).await;
//! let client = OpenFeature::singleton().await.create_client();
//! let theme = client.get_string_value("theme", Some(&user), None).await;
//! assert_eq!(theme.as_deref(), Ok("dusk"));
//! let missing = client.get_bool_value("missing", Some(&user), None).await.unwrap_or(false);
//! assert!(!missing);
//!
//! flags.string("theme", "dawn");
//! changes.changed().await;
//! let theme = client.get_string_value("theme", Some(&user), None).await;
//! assert_eq!(theme.as_deref(), Ok("dawn"));
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

mod context;
mod events;
mod provider;
mod resolution;
mod structure;

pub use context::with_context;
pub use events::{ProviderEvent, ProviderEvents};
pub use provider::{DEFAULT_INIT_TIMEOUT, FlagProvider};
