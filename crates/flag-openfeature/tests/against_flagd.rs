//! The provider against a real flagd (flag-sdk's test server): every value type, rules,
//! splits that agree with the SDK's client, kills, errors, and changes made while connected.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use flag_core::{Context, Flag};
use flag_openfeature::{FlagProvider, ProviderEvent};
use flag_sdk::{Evaluate, OnTimeout, TestServer};
use open_feature::provider::{FeatureProvider, ProviderStatus};
use open_feature::{
    EvaluationContext, EvaluationErrorCode, EvaluationReason, FlagMetadataValue, OpenFeature, StructValue,
    Value,
};
use serde_json::json;

/// Generous: these waits end as soon as the condition holds; only a failure waits this long.
const WAIT: Duration = Duration::from_secs(10);

/// A flag as a flags file writes it.
fn flag(written: serde_json::Value) -> Flag {
    serde_json::from_value(written).expect("a valid flag")
}

/// A flag serving one variant of `value` to everyone.
fn single(key: &str, value: serde_json::Value) -> Flag {
    flag(json!({
        "key": key,
        "variants": [{ "name": "value", "value": value }],
        "off_variant": "value",
        "default": { "variant": "value" },
    }))
}

fn user(key: &str) -> EvaluationContext {
    EvaluationContext::default().with_targeting_key(key)
}

async fn provider_for(server: &TestServer) -> FlagProvider {
    FlagProvider::new(server.client_builder().connect().await.unwrap())
}

fn metadata_int(details: &open_feature::provider::ResolutionDetails<impl Sized>, name: &str) -> Option<i64> {
    match details.flag_metadata.as_ref()?.values.get(name)? {
        FlagMetadataValue::Int(n) => Some(*n),
        _ => None,
    }
}

#[tokio::test]
async fn every_value_type_resolves_with_its_variant_and_a_static_reason() {
    let server = TestServer::start().await.unwrap();
    server
        .put_flag(&flag(json!({
            "key": "search",
            "variants": [{ "name": "on", "value": true }, { "name": "off", "value": false }],
            "off_variant": "off",
            "default": { "variant": "on" },
        })))
        .await
        .unwrap();
    server.put_flag(&single("theme", json!("dusk"))).await.unwrap();
    server.put_flag(&single("limit", json!(25))).await.unwrap();
    server.put_flag(&single("ratio", json!(0.75))).await.unwrap();
    let revision = server
        .put_flag(&single(
            "layout",
            json!({ "columns": 2, "sidebar": { "width": 0.25, "tabs": ["a", "b"] } }),
        ))
        .await
        .unwrap();
    let provider = provider_for(&server).await;
    assert_eq!(provider.status(), ProviderStatus::Ready);
    let ctx = user("user-1");

    let search = provider.resolve_bool_value("search", &ctx).await.unwrap();
    assert_eq!((search.value, search.variant.as_deref()), (true, Some("on")));
    assert_eq!(search.reason, Some(EvaluationReason::Static));
    assert_eq!(metadata_int(&search, "revision"), Some(revision as i64));

    let theme = provider.resolve_string_value("theme", &ctx).await.unwrap();
    assert_eq!((theme.value.as_str(), theme.variant.as_deref()), ("dusk", Some("value")));
    assert_eq!(theme.reason, Some(EvaluationReason::Static));

    assert_eq!(provider.resolve_int_value("limit", &ctx).await.unwrap().value, 25);
    assert_eq!(provider.resolve_float_value("limit", &ctx).await.unwrap().value, 25.0);
    assert_eq!(provider.resolve_float_value("ratio", &ctx).await.unwrap().value, 0.75);

    let layout = provider.resolve_struct_value("layout", &ctx).await.unwrap();
    let sidebar = StructValue::default()
        .with_field("width", 0.25)
        .with_field("tabs", Value::Array(vec!["a".into(), "b".into()]));
    assert_eq!(layout.value, StructValue::default().with_field("columns", 2).with_field("sidebar", sidebar));
}

#[tokio::test]
async fn rules_see_the_targeting_key_and_custom_fields_of_every_kind() {
    let server = TestServer::start().await.unwrap();
    server
        .put_flag(&flag(json!({
            "key": "checkout",
            "variants": [{ "name": "old", "value": "old" }, { "name": "new", "value": "new" }],
            "off_variant": "old",
            "rules": [
                { "clauses": [
                    { "attribute": "country", "op": "in", "values": ["NZ"] },
                    { "attribute": "age", "op": "number_gte", "values": [18] },
                ], "serve": { "variant": "new" } },
                { "clauses": [{ "attribute": "beta", "op": "in", "values": [true] }], "serve": { "variant": "new" } },
                { "clauses": [{ "attribute": "key", "op": "starts_with", "values": ["staff-"] }], "serve": { "variant": "new" } },
            ],
            "default": { "variant": "old" },
        })))
        .await
        .unwrap();
    let provider = provider_for(&server).await;
    let resolve = |ctx: EvaluationContext| {
        let provider = provider.clone();
        async move { provider.resolve_string_value("checkout", &ctx).await.unwrap() }
    };

    let adult_kiwi =
        resolve(user("u-1").with_custom_field("country", "NZ").with_custom_field("age", 31)).await;
    assert_eq!(
        (adult_kiwi.value.as_str(), adult_kiwi.reason.clone()),
        ("new", Some(EvaluationReason::TargetingMatch))
    );
    assert_eq!(metadata_int(&adult_kiwi, "rule"), Some(0));
    // A float age compares as a number too.
    let just_adult =
        resolve(user("u-1").with_custom_field("country", "NZ").with_custom_field("age", 18.5)).await;
    assert_eq!(just_adult.value, "new");

    let young_kiwi =
        resolve(user("u-1").with_custom_field("country", "NZ").with_custom_field("age", 17)).await;
    assert_eq!(
        (young_kiwi.value.as_str(), young_kiwi.reason.clone()),
        ("old", Some(EvaluationReason::Default))
    );
    assert_eq!(metadata_int(&young_kiwi, "rule"), None);

    let beta = resolve(user("u-1").with_custom_field("beta", true)).await;
    assert_eq!((beta.value.as_str(), metadata_int(&beta, "rule")), ("new", Some(1)));
    assert_eq!(resolve(user("u-1").with_custom_field("beta", false)).await.value, "old");

    let staff = resolve(user("staff-7")).await;
    assert_eq!((staff.value.as_str(), metadata_int(&staff, "rule")), ("new", Some(2)));
    let nobody = resolve(EvaluationContext::default()).await;
    assert_eq!((nobody.value.as_str(), nobody.reason), ("old", Some(EvaluationReason::Default)));
}

#[tokio::test]
async fn a_split_gives_each_targeting_key_the_variant_the_sdk_client_gives_it() {
    let server = TestServer::start().await.unwrap();
    server
        .put_flag(&flag(json!({
            "key": "banner",
            "variants": [
                { "name": "red", "value": "red" },
                { "name": "green", "value": "green" },
                { "name": "blue", "value": "blue" },
            ],
            "off_variant": "red",
            "default": { "split": { "weights": [
                { "variant": "red", "weight": 33_333 },
                { "variant": "green", "weight": 33_333 },
                { "variant": "blue", "weight": 33_334 },
            ] } },
        })))
        .await
        .unwrap();
    let provider = provider_for(&server).await;
    let client = provider.client().clone();

    let mut seen = BTreeSet::new();
    for i in 0..30 {
        let key = format!("user-{i}");
        let resolved = provider.resolve_string_value("banner", &user(&key)).await.unwrap();
        let expected = client.string_detail("banner", &Context::new(&key), "none");
        assert_eq!(resolved.variant, expected.variant, "{key}");
        assert_eq!(resolved.value, expected.value, "{key}");
        assert_eq!(resolved.reason, Some(EvaluationReason::TargetingMatch), "{key}");
        assert_eq!(
            metadata_int(&resolved, "bucket"),
            Some(i64::from(flag_core::bucket("banner", &key))),
            "{key}"
        );
        seen.extend(resolved.variant);
    }
    assert_eq!(seen.len(), 3, "30 keys over three thirds reach every variant: {seen:?}");
}

#[tokio::test]
async fn a_killed_flag_serves_its_off_variant_as_disabled() {
    let server = TestServer::start().await.unwrap();
    server.put_flag(&Flag::rollout("chat", 100.0).unwrap()).await.unwrap();
    let provider = provider_for(&server).await;
    let ctx = user("user-1");
    let before = provider.resolve_bool_value("chat", &ctx).await.unwrap();
    assert_eq!((before.value, before.variant.as_deref()), (true, Some("on")));

    let (_, acknowledged) = server.kill("chat", WAIT).await.unwrap();
    assert_eq!(acknowledged, 1, "the provider's client applied the kill");
    let killed = provider.resolve_bool_value("chat", &ctx).await.unwrap();
    assert_eq!((killed.value, killed.variant.as_deref()), (false, Some("off")));
    assert_eq!(killed.reason, Some(EvaluationReason::Disabled));
}

#[tokio::test]
async fn unknown_flags_and_wrong_types_are_errors_with_their_codes() {
    let server = TestServer::start().await.unwrap();
    server.put_flag(&Flag::rollout("chat", 100.0).unwrap()).await.unwrap();
    server.put_flag(&single("ratio", json!(2.5))).await.unwrap();
    server.put_flag(&single("sizes", json!([1, 2]))).await.unwrap();
    server.put_flag(&single("holes", json!({ "a": [1, null] }))).await.unwrap();
    let provider = provider_for(&server).await;
    let ctx = user("user-1");

    let missing = provider.resolve_bool_value("nope", &ctx).await.unwrap_err();
    assert_eq!(missing.code, EvaluationErrorCode::FlagNotFound);
    assert!(missing.message.unwrap().contains("nope"));

    let int_of_bool = provider.resolve_int_value("chat", &ctx).await.unwrap_err();
    assert_eq!(int_of_bool.code, EvaluationErrorCode::TypeMismatch);
    assert_eq!(int_of_bool.message.as_deref(), Some("flag serves bool values, not int"));
    let int_of_fraction = provider.resolve_int_value("ratio", &ctx).await.unwrap_err();
    assert_eq!(int_of_fraction.code, EvaluationErrorCode::TypeMismatch);
    assert!(int_of_fraction.message.unwrap().contains("2.5"));
    assert_eq!(provider.resolve_float_value("ratio", &ctx).await.unwrap().value, 2.5);
    let string_of_number = provider.resolve_string_value("ratio", &ctx).await.unwrap_err();
    assert_eq!(string_of_number.code, EvaluationErrorCode::TypeMismatch);
    let bool_of_json = provider.resolve_bool_value("sizes", &ctx).await.unwrap_err();
    assert_eq!(bool_of_json.code, EvaluationErrorCode::TypeMismatch);
    let struct_of_array = provider.resolve_struct_value("sizes", &ctx).await.unwrap_err();
    assert_eq!(struct_of_array.code, EvaluationErrorCode::TypeMismatch);
    let struct_with_null = provider.resolve_struct_value("holes", &ctx).await.unwrap_err();
    assert_eq!(struct_with_null.code, EvaluationErrorCode::ParseError);
}

#[tokio::test]
async fn a_change_made_while_connected_is_seen_by_the_next_evaluation_and_announced() {
    let server = TestServer::start().await.unwrap();
    server.put_flag(&single("theme", json!("dusk"))).await.unwrap();
    let provider = provider_for(&server).await;
    let ctx = user("user-1");
    assert_eq!(provider.resolve_string_value("theme", &ctx).await.unwrap().value, "dusk");

    let mut events = provider.events();
    let mut theme_changes = provider.flag_changes("theme");
    let revision = server.put_flag(&single("theme", json!("dawn"))).await.unwrap();
    let seen = tokio::time::timeout(WAIT, theme_changes.changed()).await.expect("the change in time");
    assert_eq!(seen, Some(revision));
    let theme = provider.resolve_string_value("theme", &ctx).await.unwrap();
    assert_eq!(theme.value, "dawn");
    assert_eq!(metadata_int(&theme, "revision"), Some(revision as i64));

    let event = tokio::time::timeout(WAIT, events.next()).await.expect("an event in time");
    assert_eq!(event, Some(ProviderEvent::ConfigurationChanged { revision }));
}

/// Waits for the next status event, which must be `wanted`; a reconnection may apply a
/// (possibly empty) catch-up first, announced as a change.
async fn next_status_event(events: &mut flag_openfeature::ProviderEvents, wanted: ProviderEvent) {
    let event = tokio::time::timeout(WAIT, async {
        loop {
            match events.next().await {
                Some(ProviderEvent::ConfigurationChanged { .. }) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("a status event in time");
    assert_eq!(event, Some(wanted));
}

#[tokio::test]
async fn the_status_follows_the_client_through_a_flagd_restart() {
    let mut server = TestServer::start().await.unwrap();
    server.put_flag(&single("theme", json!("dusk"))).await.unwrap();
    let provider = provider_for(&server).await;
    let mut events = provider.events();
    assert_eq!(provider.status(), ProviderStatus::Ready);

    server.stop().await.unwrap();
    next_status_event(&mut events, ProviderEvent::Stale).await;
    assert_eq!(provider.status(), ProviderStatus::STALE);
    // Still answering from the last flags.
    assert_eq!(provider.resolve_string_value("theme", &user("u")).await.unwrap().value, "dusk");

    server.restart().await.unwrap();
    next_status_event(&mut events, ProviderEvent::Ready).await;
    assert_eq!(provider.status(), ProviderStatus::Ready);
}

#[tokio::test]
async fn before_its_first_snapshot_the_provider_is_not_ready_and_initialize_waits_for_it() {
    let mut server = TestServer::start().await.unwrap();
    server.put_flag(&single("theme", json!("dusk"))).await.unwrap();
    server.stop().await.unwrap();
    let client = server
        .client_builder()
        .start_timeout(Duration::from_millis(100), OnTimeout::Serve)
        .connect()
        .await
        .unwrap();
    let mut provider = FlagProvider::new(client).with_init_timeout(WAIT);
    assert_eq!(provider.status(), ProviderStatus::NotReady);
    let early = provider.resolve_string_value("theme", &user("u")).await.unwrap_err();
    assert_eq!(early.code, EvaluationErrorCode::ProviderNotReady);

    server.restart().await.unwrap();
    provider.initialize(&EvaluationContext::default()).await;
    assert_eq!(provider.status(), ProviderStatus::Ready);
    assert_eq!(provider.resolve_string_value("theme", &user("u")).await.unwrap().value, "dusk");
}

#[tokio::test]
async fn the_openfeature_api_answers_through_the_provider_and_defaults_on_errors() {
    let server = TestServer::start().await.unwrap();
    server.put_flag(&single("limit", json!(7))).await.unwrap();
    let provider = provider_for(&server).await;
    // A named provider: other tests in this process must not share the global default.
    OpenFeature::singleton_mut().await.set_named_provider("against-flagd", provider).await;
    let client = OpenFeature::singleton().await.create_named_client("against-flagd");
    let ctx = user("user-1");

    let limit = client.get_int_details("limit", Some(&ctx), None).await.unwrap();
    assert_eq!((limit.value, limit.reason), (7, Some(EvaluationReason::Static)));
    assert!(
        matches!(limit.flag_metadata.values.get("version"), Some(FlagMetadataValue::Int(v)) if *v >= 1),
        "{:?}",
        limit.flag_metadata
    );
    let missing = client.get_int_value("missing", Some(&ctx), None).await.unwrap_err();
    assert_eq!(missing.code, EvaluationErrorCode::FlagNotFound);
    let mismatch = client.get_bool_value("limit", Some(&ctx), None).await.unwrap_err();
    assert_eq!(mismatch.code, EvaluationErrorCode::TypeMismatch);
}
