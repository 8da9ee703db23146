//! OpenFeature flagd's contracts on a real flagd over real sockets: the evaluation service
//! (v2 and v1, with EventStream), the second gRPC port, and OFREP — the answers, the errors
//! providers tell apart, the selector, the SDK token, and the kill report's count of
//! OpenFeature streams.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use flag_proto::flagd::evaluation::{v1 as ev1, v2 as ev2};
use flag_proto::v1;
use prost_types::value::Kind;
use support::{Bearer, TestServer, WAIT, flag, http_post, put};
use tonic::Code;
use tonic::transport::Channel;

const FLAGS: [&str; 6] = [
    "{key: beta, variants: [{name: on, value: true}, {name: off, value: false}], off_variant: off, default: {variant: off},
      rules: [{clauses: [{attribute: plan, op: in, values: [pro]}], serve: {variant: on}}]}",
    "{key: colour, variants: [{name: blue, value: blue}], off_variant: blue, default: {variant: blue}}",
    "{key: limit, variants: [{name: low, value: 10}, {name: high, value: 2.5}], off_variant: high, default: {variant: low}}",
    "{key: layout, variants: [{name: grid, value: {columns: 3}}], off_variant: grid, default: {variant: grid}}",
    "{key: list, variants: [{name: few, value: [1, 2]}], off_variant: few, default: {variant: few}}",
    "{key: chat, variants: [{name: on, value: true}, {name: off, value: false}], off_variant: off, default: {variant: on}}",
];

async fn seeded(config: flagd::Config) -> TestServer {
    seeded_as(config, "").await
}

/// A server with `FLAGS`, written with `admin_token` (the admin-token-free client when
/// empty: the interceptor's `Bearer ` with no token is refused).
async fn seeded_as(config: flagd::Config, admin_token: &'static str) -> TestServer {
    let server = TestServer::start_open_feature(config).await;
    let mut admin = flag_proto::v1::admin_client::AdminClient::with_interceptor(
        server.channel().await,
        move |mut request: tonic::Request<()>| {
            if !admin_token.is_empty() {
                request
                    .metadata_mut()
                    .insert("authorization", format!("Bearer {admin_token}").parse().unwrap());
            }
            Ok(request)
        },
    );
    for yaml in FLAGS {
        admin.put_flag(put("", flag(yaml), None, "seed")).await.unwrap();
    }
    server
}

fn context(fields: &[(&str, &str)]) -> Option<prost_types::Struct> {
    let fields = fields
        .iter()
        .map(|(name, value)| {
            ((*name).to_owned(), prost_types::Value { kind: Some(Kind::StringValue((*value).into())) })
        })
        .collect();
    Some(prost_types::Struct { fields })
}

async fn v2(server: &TestServer) -> ev2::service_client::ServiceClient<Channel> {
    ev2::service_client::ServiceClient::new(server.channel().await)
}

fn boolean(key: &str, fields: &[(&str, &str)]) -> ev2::ResolveBooleanRequest {
    ev2::ResolveBooleanRequest { flag_key: key.into(), context: context(fields) }
}

#[tokio::test]
async fn the_v2_service_answers_every_type_with_flagd_reasons_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = seeded(flagd::Config::new(support::data_file(dir.path()))).await;
    let mut client = v2(&server).await;

    let pro =
        client.resolve_boolean(boolean("beta", &[("targetingKey", "u-1"), ("plan", "pro")])).await.unwrap();
    let pro = pro.into_inner();
    assert_eq!(
        (pro.value, pro.variant.as_deref(), pro.reason.as_str()),
        (Some(true), Some("on"), "TARGETING_MATCH")
    );
    let free = client.resolve_boolean(boolean("beta", &[("plan", "free")])).await.unwrap().into_inner();
    assert_eq!((free.value, free.reason.as_str()), (Some(false), "DEFAULT"));

    let colour = client
        .resolve_string(ev2::ResolveStringRequest { flag_key: "colour".into(), context: None })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((colour.value.as_deref(), colour.reason.as_str()), (Some("blue"), "STATIC"));
    let limit = client
        .resolve_int(ev2::ResolveIntRequest { flag_key: "limit".into(), context: None })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(limit.value, Some(10));
    let float = client
        .resolve_float(ev2::ResolveFloatRequest { flag_key: "limit".into(), context: None })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(float.value, Some(10.0));
    let layout = client
        .resolve_object(ev2::ResolveObjectRequest { flag_key: "layout".into(), context: None })
        .await
        .unwrap()
        .into_inner();
    let columns = layout.value.unwrap().fields["columns"].kind.clone();
    assert_eq!(columns, Some(Kind::NumberValue(3.0)));

    let missing = client.resolve_boolean(boolean("nope", &[])).await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
    let mismatch = client
        .resolve_string(ev2::ResolveStringRequest { flag_key: "beta".into(), context: None })
        .await
        .unwrap_err();
    assert_eq!(mismatch.code(), Code::InvalidArgument, "{mismatch:?}");
    let array = client
        .resolve_object(ev2::ResolveObjectRequest { flag_key: "list".into(), context: None })
        .await
        .unwrap_err();
    assert_eq!(array.code(), Code::InvalidArgument, "{array:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_killed_flag_serves_its_off_variant_as_disabled_and_the_kill_counts_open_feature_streams() {
    let dir = tempfile::tempdir().unwrap();
    let server = seeded(flagd::Config::new(support::data_file(dir.path()))).await;
    let mut client = v2(&server).await;
    let mut events = client.event_stream(ev2::EventStreamRequest {}).await.unwrap().into_inner();
    let first = tokio::time::timeout(WAIT, events.message()).await.unwrap().unwrap().unwrap();
    assert_eq!(first.r#type, "provider_ready");

    let mut admin = server.admin().await;
    let kill = v1::KillRequest {
        environment: "".into(),
        key: "chat".into(),
        change: support::change("incident"),
        wait_ms: 5_000,
    };
    let acks = admin.kill(kill).await.unwrap().into_inner().acks.unwrap();
    assert_eq!((acks.open_feature_streams, acks.open_feature_sent), (1, 1), "{acks:?}");
    assert_eq!(acks.connected, 0, "a provider is not an SDK that could acknowledge: {acks:?}");

    let change = loop {
        let event = tokio::time::timeout(WAIT, events.message()).await.unwrap().unwrap().unwrap();
        if event.r#type == "configuration_change" {
            break event;
        }
    };
    let flags = &change.data.unwrap().fields["flags"];
    let Some(Kind::StructValue(flags)) = &flags.kind else { panic!("flags is an object: {flags:?}") };
    let Some(Kind::StructValue(chat)) = &flags.fields["chat"].kind else { panic!("chat changed: {flags:?}") };
    assert_eq!(chat.fields["type"].kind, Some(Kind::StringValue("update".into())));
    assert_eq!(flags.fields.len(), 1, "only the killed flag changed: {flags:?}");

    let killed = client.resolve_boolean(boolean("chat", &[])).await.unwrap().into_inner();
    assert_eq!(
        (killed.value, killed.variant.as_deref(), killed.reason.as_str()),
        (Some(false), Some("off"), "DISABLED")
    );
    server.stop().await;
}

#[tokio::test]
async fn v1_resolves_all_flags_and_the_sync_port_serves_the_same_and_selectors_pick_environments() {
    let dir = tempfile::tempdir().unwrap();
    let config = flagd::Config::new(support::data_file(dir.path())).with_environments(["staging"]);
    let server = seeded(config).await;
    let mut admin = server.admin().await;
    let staging =
        "{key: colour, variants: [{name: red, value: red}], off_variant: red, default: {variant: red}}";
    admin.put_flag(put("staging", flag(staging), None, "seed")).await.unwrap();

    let sync_port =
        Channel::from_shared(format!("http://{}", server.sync.unwrap())).unwrap().connect().await.unwrap();
    let mut v1_client = ev1::service_client::ServiceClient::new(sync_port.clone());
    let all = v1_client.resolve_all(ev1::ResolveAllRequest { context: None }).await.unwrap().into_inner();
    assert_eq!(all.flags["colour"].value, Some(ev1::any_flag::Value::StringValue("blue".into())));
    assert_eq!(all.flags["beta"].reason, "DEFAULT");
    assert!(!all.flags.contains_key("list"), "an array is no Struct: left out as flagd leaves out errors");

    let mut on_staging =
        tonic::Request::new(ev2::ResolveStringRequest { flag_key: "colour".into(), context: None });
    on_staging.metadata_mut().insert("flagd-selector", "staging".parse().unwrap());
    let red = ev2::service_client::ServiceClient::new(sync_port).resolve_string(on_staging).await.unwrap();
    assert_eq!(red.into_inner().value.as_deref(), Some("red"));
    server.stop().await;
}

#[tokio::test]
async fn ofrep_answers_flags_errors_and_unchanged_bulk_requests_with_304() {
    let dir = tempfile::tempdir().unwrap();
    let server = seeded(flagd::Config::new(support::data_file(dir.path()))).await;
    let ofrep = server.ofrep.unwrap();
    let body = r#"{"context": {"targetingKey": "u-1", "plan": "pro"}}"#;

    let (status, _, answer) = http_post(ofrep, "/ofrep/v1/evaluate/flags/beta", &[], body).await;
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (&answer["value"], &answer["variant"], &answer["reason"]),
        (&true.into(), &"on".into(), &"TARGETING_MATCH".into())
    );
    let (status, _, missing) = http_post(ofrep, "/ofrep/v1/evaluate/flags/nope", &[], body).await;
    let missing: serde_json::Value = serde_json::from_str(&missing).unwrap();
    assert_eq!((status, &missing["errorCode"]), (404, &"FLAG_NOT_FOUND".into()), "{missing}");
    let (status, _, invalid) =
        http_post(ofrep, "/ofrep/v1/evaluate/flags/beta", &[], r#"{"context": 3}"#).await;
    assert_eq!(status, 400, "{invalid}");
    assert!(invalid.contains("INVALID_CONTEXT"), "{invalid}");

    let (status, head, all) = http_post(ofrep, "/ofrep/v1/evaluate/flags", &[], body).await;
    assert_eq!(status, 200, "{all}");
    let all: serde_json::Value = serde_json::from_str(&all).unwrap();
    assert_eq!(all["flags"].as_array().unwrap().len(), FLAGS.len(), "{all}");
    let etag = head.lines().find_map(|line| line.strip_prefix("etag: ")).unwrap().trim().to_owned();
    let (status, _, _) =
        http_post(ofrep, "/ofrep/v1/evaluate/flags", &[("If-None-Match", &etag)], body).await;
    assert_eq!(status, 304);
    // A write makes the tag stale.
    let mut admin = server.admin().await;
    admin
        .kill(v1::KillRequest {
            environment: "".into(),
            key: "chat".into(),
            change: support::change("x"),
            wait_ms: 0,
        })
        .await
        .unwrap();
    let after = tokio::time::timeout(WAIT, async {
        loop {
            let (status, _, _) =
                http_post(ofrep, "/ofrep/v1/evaluate/flags", &[("If-None-Match", &etag)], body).await;
            if status == 200 {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert_eq!(after, Ok(200), "the kill's revision changes the answer's tag");
    server.stop().await;
}

#[tokio::test]
async fn a_tag_from_before_an_environment_was_deleted_and_recreated_is_stale() {
    let dir = tempfile::tempdir().unwrap();
    let config = flagd::Config::new(support::data_file(dir.path())).with_environments(["staging"]);
    let server = TestServer::start_open_feature(config).await;
    let ofrep = server.ofrep.unwrap();
    let mut admin = server.admin().await;
    let colour = |value: &str| {
        flag(&format!(
            "{{key: colour, variants: [{{name: c, value: {value}}}], off_variant: c, default: {{variant: c}}}}"
        ))
    };
    admin.put_flag(put("staging", colour("blue"), None, "seed")).await.unwrap();
    let staging = [("Flagd-Selector", "staging")];
    let (status, head, before) = http_post(ofrep, "/ofrep/v1/evaluate/flags", &staging, "{}").await;
    assert!(status == 200 && before.contains("blue"), "{status} {before}");
    let etag = head.lines().find_map(|line| line.strip_prefix("etag: ")).unwrap().trim().to_owned();

    let by = || flag_proto::Authorship { actor: "ana".into(), reason: "start again".into() };
    admin.delete_environment(flag_proto::delete_environment_request("staging", true, by())).await.unwrap();
    admin.create_environment(flag_proto::create_environment_request("staging", None, by())).await.unwrap();
    admin.put_flag(put("staging", colour("red"), None, "again")).await.unwrap();
    let tagged = [("Flagd-Selector", "staging"), ("If-None-Match", etag.as_str())];
    let after = tokio::time::timeout(WAIT, async {
        loop {
            match http_post(ofrep, "/ofrep/v1/evaluate/flags", &tagged, "{}").await {
                (200, _, body) if body.contains("red") => return body,
                _ => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    })
    .await;
    assert!(after.is_ok(), "the old tag still answered 304, or the old flags, after the re-creation");
    server.stop().await;
}

#[tokio::test]
async fn with_an_sdk_token_providers_must_send_it() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        flagd::Config::new(support::data_file(dir.path())).with_admin_token("adm").with_sdk_token("sdk");
    let server = seeded_as(config, "adm").await;
    let refused = v2(&server).await.resolve_boolean(boolean("beta", &[])).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    let mut with_token =
        ev2::service_client::ServiceClient::with_interceptor(server.channel().await, Bearer::new("sdk"));
    assert!(with_token.resolve_boolean(boolean("beta", &[])).await.is_ok());
    let ofrep = server.ofrep.unwrap();
    let (status, _, _) = http_post(ofrep, "/ofrep/v1/evaluate/flags/beta", &[], "{}").await;
    assert_eq!(status, 401);
    let (status, _, _) =
        http_post(ofrep, "/ofrep/v1/evaluate/flags/beta", &[("Authorization", "Bearer sdk")], "{}").await;
    assert_eq!(status, 200);
    server.stop().await;
}
