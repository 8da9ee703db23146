//! Environments exist once created: every call naming another is refused with NOT_FOUND and
//! the nearest name, nothing is created by a typo, and deleting one that SDKs stream is
//! refused unless forced — then their streams end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use flag_proto::v1;
use flag_proto::{Authorship, Deleted};
use support::{TestServer, change, data_file, flag, put};
use tonic::{Code, Status};

const CHAT: &str = "
key: chat
variants: [{name: on, value: true}, {name: off, value: false}]
off_variant: off
default: {variant: on}
";

/// The refusal every call naming "prodution" must get.
fn assert_unknown(call: &str, result: Result<(), Status>) {
    let status = result.expect_err(call);
    assert_eq!(status.code(), Code::NotFound, "{call}: {status:?}");
    assert_eq!(status.message(), r#"no environment "prodution"; did you mean "production"?"#, "{call}");
}

#[tokio::test]
async fn every_call_naming_a_missing_environment_is_refused_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(flagd::Config::new(data_file(dir.path()))).await;
    let mut admin = server.admin().await;
    admin.put_flag(put("production", flag(CHAT), None, "first")).await.unwrap();
    let env = || "prodution".to_owned();
    let key = || "chat".to_owned();

    assert_unknown("put", admin.put_flag(put("prodution", flag(CHAT), None, "typo")).await.map(drop));
    let rollout = v1::SetRolloutRequest {
        environment: env(),
        key: key(),
        percent: 5.0,
        dark_percent: None,
        expected_version: None,
        change: change("typo"),
        create_if_missing: true,
    };
    assert_unknown("set rollout", admin.set_rollout(rollout).await.map(drop));
    let serve = v1::ServeVariantRequest {
        environment: env(),
        key: key(),
        variant: "on".into(),
        expected_version: None,
        change: change("typo"),
    };
    assert_unknown("serve variant", admin.serve_variant(serve).await.map(drop));
    let kill = v1::KillRequest { environment: env(), key: key(), change: change("typo"), wait_ms: 0 };
    assert_unknown("kill", admin.kill(kill).await.map(drop));
    let revive =
        v1::ReviveRequest { environment: env(), key: key(), expected_version: None, change: change("x") };
    assert_unknown("revive", admin.revive(revive).await.map(drop));
    let delete =
        v1::DeleteFlagRequest { environment: env(), key: key(), expected_version: None, change: change("x") };
    assert_unknown("delete", admin.delete_flag(delete).await.map(drop));
    let rollback = v1::RollbackRequest {
        environment: env(),
        key: key(),
        to_version: None,
        expected_version: None,
        change: change("x"),
        allow_revive: false,
    };
    assert_unknown("rollback", admin.rollback(rollback).await.map(drop));
    assert_unknown(
        "get",
        admin.get_flag(v1::GetFlagRequest { environment: env(), key: key() }).await.map(drop),
    );
    let list = v1::ListFlagsRequest { environment: env(), ..Default::default() };
    assert_unknown("list", admin.list_flags(list).await.map(drop));
    let history = v1::FlagHistoryRequest { environment: env(), key: key(), ..Default::default() };
    assert_unknown("flag history", admin.flag_history(history).await.map(drop));
    let log = v1::EnvironmentHistoryRequest { environment: env(), ..Default::default() };
    assert_unknown("environment history", admin.environment_history(log).await.map(drop));
    let segment = v1::Segment { key: "staff".into(), ..Default::default() };
    let put_segment =
        v1::PutSegmentRequest { environment: env(), segment: Some(segment), change: change("x") };
    assert_unknown("put segment", admin.put_segment(put_segment).await.map(drop));
    let delete_segment =
        v1::DeleteSegmentRequest { environment: env(), key: "staff".into(), change: change("x") };
    assert_unknown("delete segment", admin.delete_segment(delete_segment).await.map(drop));
    let segments = v1::ListSegmentsRequest { environment: env() };
    assert_unknown("list segments", admin.list_segments(segments).await.map(drop));
    let acks = v1::WaitForAcksRequest { environment: env(), revision: 1, wait_ms: 0 };
    assert_unknown("wait for acks", admin.wait_for_acks(acks).await.map(drop));
    let apply = v1::ApplyRequest { environment: env(), flags: vec![flag(CHAT)], ..Default::default() };
    assert_unknown("apply", admin.apply(apply).await.map(drop));
    let dry_apply = v1::ApplyRequest { environment: env(), dry_run: true, ..Default::default() };
    assert_unknown("dry-run apply", admin.apply(dry_apply).await.map(drop));
    let restore = v1::PointInTimeRestoreRequest {
        environment: env(),
        point: Some(v1::point_in_time_restore_request::Point::ToRevision(1)),
        ..Default::default()
    };
    assert_unknown("restore", admin.point_in_time_restore(restore).await.map(drop));
    let side = |environment: String| Some(v1::DiffSide { environment, point: None });
    let diff = v1::DiffRequest { from: side(env()), to: side("production".into()), keys: vec![] };
    assert_unknown("diff from", admin.diff(diff).await.map(drop));
    let diff = v1::DiffRequest { from: side("production".into()), to: side(env()), keys: vec![] };
    assert_unknown("diff to", admin.diff(diff).await.map(drop));
    let promote = |from: String, to: String| v1::PromoteRequest {
        from_environment: from,
        to_environment: to,
        all: true,
        ..Default::default()
    };
    assert_unknown("promote from", admin.promote(promote(env(), "production".into())).await.map(drop));
    assert_unknown("promote to", admin.promote(promote("production".into(), env())).await.map(drop));
    let bookmark =
        v1::CreateBookmarkRequest { environment: env(), name: "pre-deploy".into(), change: change("x") };
    assert_unknown("bookmark", admin.create_bookmark(bookmark).await.map(drop));
    let bookmarks = v1::ListBookmarksRequest { environment: env() };
    assert_unknown("list bookmarks", admin.list_bookmarks(bookmarks).await.map(drop));
    let evaluate = v1::EvaluateRequest { environment: env(), key: key(), ..Default::default() };
    assert_unknown("evaluate", admin.evaluate(evaluate).await.map(drop));
    let describe = v1::DescribeEnvironmentRequest { name: env() };
    assert_unknown("describe", admin.describe_environment(describe).await.map(drop));
    let delete_environment = flag_proto::delete_environment_request("prodution", true, Authorship::default());
    assert_unknown("delete environment", admin.delete_environment(delete_environment).await.map(drop));
    let copy = flag_proto::create_environment_request("qa", Some("prodution"), Authorship::default());
    assert_unknown("create as a copy", admin.create_environment(copy).await.map(drop));

    let mut watcher = server.watch("prodution", 0).await;
    let end = watcher.next_raw().await.expect_err("the stream is refused");
    assert_unknown("watch", Err(end));

    let listed =
        admin.list_environments(v1::ListEnvironmentsRequest { include_deleted: true }).await.unwrap();
    let names: Vec<String> = listed.into_inner().environments.into_iter().map(|e| e.name).collect();
    assert_eq!(names, ["production"], "nothing was created");
    let production = admin.list_flags(v1::ListFlagsRequest::default()).await.unwrap().into_inner();
    assert_eq!((production.flags.len(), production.revision), (1, 1), "production is unchanged");
}

#[tokio::test]
async fn a_streamed_environment_is_deleted_only_when_forced_and_its_streams_end() {
    let dir = tempfile::tempdir().unwrap();
    let server =
        TestServer::start(flagd::Config::new(data_file(dir.path())).with_environments(["staging"])).await;
    let mut admin = server.admin().await;
    admin.put_flag(put("staging", flag(CHAT), None, "try")).await.unwrap();
    let mut watcher = server.watch("staging", 0).await;
    watcher.next_change().await; // the snapshot: the SDK is connected

    let described = admin
        .describe_environment(v1::DescribeEnvironmentRequest { name: "staging".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(described.connected_sdks, [watcher.name.clone()]);
    let by = || Authorship { actor: "ana".into(), reason: "retired".into() };
    let refused = admin
        .delete_environment(flag_proto::delete_environment_request("staging", false, by()))
        .await
        .expect_err("an SDK streams it");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(refused.message().contains(&watcher.name), "names the SDK: {}", refused.message());
    assert_eq!(
        admin.list_flags(list("staging")).await.unwrap().into_inner().flags.len(),
        1,
        "nothing deleted"
    );

    let answer =
        admin.delete_environment(flag_proto::delete_environment_request("staging", true, by())).await;
    let deleted = Deleted::try_from(answer.unwrap().into_inner()).unwrap();
    assert_eq!((deleted.revision, deleted.deleted.len()), (2, 1));
    assert_eq!(deleted.disconnected, [watcher.name.clone()]);
    let end = watcher.next_raw().await.expect_err("the stream ends");
    assert_eq!(end.code(), Code::NotFound, "{end:?}");
    assert!(end.message().contains("was deleted"), "{}", end.message());

    let history = v1::EnvironmentHistoryRequest { environment: "staging".into(), ..Default::default() };
    let history = admin.environment_history(history).await.unwrap().into_inner().entries;
    assert_eq!(history.len(), 2, "its history stays readable");
    assert_eq!(
        (history[0].actor.as_str(), history[0].reason.as_str()),
        ("ana", "environment deleted: retired")
    );
    let gone = admin.list_flags(list("staging")).await.expect_err("it is gone");
    assert_eq!(gone.code(), Code::NotFound);
}

fn list(environment: &str) -> v1::ListFlagsRequest {
    v1::ListFlagsRequest { environment: environment.into(), ..Default::default() }
}

#[tokio::test]
async fn a_bad_declared_name_refuses_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = flagd::Config::new(data_file(dir.path())).with_environments(["staging", "eu west"]);
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let error = flagd::serve(grpc, config, std::future::pending()).await.expect_err("the start is refused");
    assert!(error.to_string().contains(r#"--environments: expected names of 1 to 64"#), "{error}");
    assert!(error.to_string().contains(r#""eu west""#), "{error}");
}
