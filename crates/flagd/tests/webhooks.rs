//! Webhooks end to end: a real flagd process posting to real receivers on 127.0.0.1 — the
//! body's fields and signature, the chat line, environment filters, receivers that answer
//! 500 or never answer, and options flagd refuses at start.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
mod webhook_support;

use std::time::Duration;

use flag_proto::v1;
use webhook_support::{Answer, Flagd, Received, Receiver, expected_signature, flagd, metric};

const WAIT: Duration = Duration::from_secs(10);
const SECRET: &str = "correct horse battery staple";

fn change(actor: &str, reason: &str) -> Option<v1::Change> {
    Some(v1::Change { actor: actor.into(), reason: reason.into() })
}

fn chat(percent: u32) -> v1::Flag {
    support::flag(&format!(
        "key: chat\nvariants:\n  - {{name: on, value: true}}\n  - {{name: off, value: false}}\noff_variant: off\n\
         default: {{split: {{weights: [{{variant: on, weight: {}}}, {{variant: off, weight: {}}}]}}}}\n",
        percent * 1000,
        100_000 - percent * 1000
    ))
}

async fn put(flagd: &Flagd, environment: &str, flag: v1::Flag, reason: &str) -> u64 {
    let request = v1::PutFlagRequest {
        environment: environment.into(),
        flag: Some(flag),
        expected_version: None,
        change: change("ana", reason),
    };
    flagd.admin().await.put_flag(request).await.unwrap().into_inner().revision
}

async fn kill(flagd: &Flagd, environment: &str, reason: &str) -> u64 {
    let request = v1::KillRequest {
        environment: environment.into(),
        key: "chat".into(),
        change: change("ana", reason),
        wait_ms: 0,
    };
    flagd.admin().await.kill(request).await.unwrap().into_inner().write.unwrap().revision
}

fn deliveries(received: &[Received]) -> Vec<String> {
    received.iter().map(Received::delivery).collect()
}

#[tokio::test]
async fn every_change_is_posted_once_in_order_with_its_fields_and_a_signature_of_its_body() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start().await;
    let spec = format!("url={},secret-env=HOOK_SECRET", receiver.url());
    let flagd = Flagd::start(
        &dir.path().join("flags.redb"),
        &dir.path().join("flagd.log"),
        &["--webhook", &spec],
        &[("HOOK_SECRET", SECRET)],
    );
    put(&flagd, "production", chat(5), "ramp").await;
    kill(&flagd, "production", "incident 4711").await;
    let segment = flag_core::Segment {
        key: "beta".into(),
        description: String::new(),
        included: vec!["user-1".into(), "user-2".into()],
        excluded: vec![],
        rules: vec![],
    };
    let request = v1::PutSegmentRequest {
        environment: "production".into(),
        segment: Some(v1::Segment::from(&segment)),
        change: change("ci-bot", ""),
    };
    flagd.admin().await.put_segment(request).await.unwrap();
    // An apply of two flags is two changes, two deliveries.
    let apply = v1::ApplyRequest {
        environment: "production".into(),
        flags: vec![
            chat(50),
            support::flag(
                "key: dark\nvariants: [{name: on, value: true}]\noff_variant: on\ndefault: {variant: on}\n",
            ),
        ],
        segments: vec![v1::Segment::from(&segment)],
        prune: false,
        dry_run: false,
        expected_revision: None,
        change: change("ana", "release 12"),
    };
    flagd.admin().await.apply(apply).await.unwrap();

    let received = receiver.wait_for_deliveries(5, WAIT).await;
    assert_eq!(
        deliveries(&received),
        ["production/1", "production/2", "production/3", "production/4", "production/5"],
        "each change once, in revision order"
    );
    for request in &received {
        assert_eq!(
            request.header("x-flagd-signature").unwrap(),
            expected_signature(SECRET.as_bytes(), &request.body),
            "the signature is the HMAC of the exact body"
        );
        assert_eq!(request.header("content-type").unwrap(), "application/json");
        assert_eq!(request.header("x-flagd-attempt").unwrap(), "1");
    }
    let bodies: Vec<serde_json::Value> = received.iter().map(Received::json).collect();
    let created = &bodies[0];
    assert_eq!(created["environment"], "production");
    assert_eq!(created["revision"], 1);
    assert_eq!((created["kind"].as_str(), created["key"].as_str()), (Some("flag"), Some("chat")));
    assert_eq!((created["action"].as_str(), created["actor"].as_str()), (Some("create"), Some("ana")));
    assert_eq!(created["reason"], "ramp");
    assert!(created["before"].is_null(), "nothing before a creation: {created}");
    assert_eq!(created["after"]["default"]["split"]["weights"][0]["weight"], 5000);
    assert!(created["webhook"].as_str().unwrap().starts_with("wh-"), "{created}");
    let time = created["time"].as_str().unwrap();
    let committed = humantime::parse_rfc3339(time).unwrap();
    assert!(committed.elapsed().unwrap() < Duration::from_secs(60), "{time} is the commit time");

    let killed = &bodies[1];
    assert_eq!((killed["action"].as_str(), killed["reason"].as_str()), (Some("kill"), Some("incident 4711")));
    assert_eq!(
        (killed["before"]["killed"].as_bool(), killed["after"]["killed"].as_bool()),
        (Some(false), Some(true))
    );
    assert_eq!(
        (killed["before"]["version"].as_u64(), killed["after"]["version"].as_u64()),
        (Some(1), Some(2))
    );

    let segment = &bodies[2];
    assert_eq!((segment["kind"].as_str(), segment["key"].as_str()), (Some("segment"), Some("beta")));
    assert_eq!((segment["actor"].as_str(), segment["after"]["included"].as_u64()), (Some("ci-bot"), Some(2)));

    let applied: Vec<_> = bodies[3..]
        .iter()
        .map(|body| (body["key"].as_str().unwrap(), body["action"].as_str().unwrap()))
        .collect();
    assert_eq!(applied, [("chat", "update"), ("dark", "create")], "the unchanged segment is not a change");
    assert_eq!(bodies[3]["after"]["killed"], true, "an apply keeps the kill");

    let id = created["webhook"].as_str().unwrap();
    flagd.metric_becomes("flagd_webhook_deliveries_total", &[("webhook", id)], |n| n == 5.0).await;
    let lag = [("webhook", id), ("environment", "production")];
    flagd.metric_becomes("flagd_webhook_lag_revisions", &lag, |behind| behind == 0.0).await;
    flagd.stop().await;
}

#[tokio::test]
async fn the_slack_format_is_one_readable_line_and_an_unsigned_webhook_has_no_signature() {
    let dir = tempfile::tempdir().unwrap();
    let (chat_room, machine) = (Receiver::start().await, Receiver::start().await);
    let json_spec = format!("url={},format=json", machine.url());
    let flagd = Flagd::start(
        &dir.path().join("flags.redb"),
        &dir.path().join("flagd.log"),
        &["--webhook-format", "slack", "--webhook", &chat_room.url(), "--webhook", &json_spec],
        &[],
    );
    put(&flagd, "production", chat(5), "").await;
    kill(&flagd, "production", "incident 4711").await;
    let lines: Vec<String> = chat_room
        .wait_for_deliveries(2, WAIT)
        .await
        .iter()
        .map(|request| request.json()["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(lines, ["ana created chat in production", "ana killed chat in production: incident 4711"]);
    assert_eq!(chat_room.received()[0].header("x-flagd-signature"), None);
    let json = machine.wait_for_deliveries(2, WAIT).await;
    assert_eq!(json[1].json()["action"], "kill", "format=json overrides --webhook-format");
    flagd.stop().await;
}

#[tokio::test]
async fn an_environment_filter_sends_only_its_environments_each_in_its_own_order() {
    let dir = tempfile::tempdir().unwrap();
    let (staging_only, everything) = (Receiver::start().await, Receiver::start().await);
    let filtered = format!("url={},environments=staging;qa", staging_only.url());
    let flagd = Flagd::start(
        &dir.path().join("flags.redb"),
        &dir.path().join("flagd.log"),
        &["--environments", "staging", "--webhook", &filtered, "--webhook", &everything.url()],
        &[],
    );
    put(&flagd, "production", chat(1), "").await;
    put(&flagd, "staging", chat(1), "").await;
    put(&flagd, "production", chat(2), "").await;
    put(&flagd, "staging", chat(2), "").await;
    put(&flagd, "staging", chat(3), "").await;
    let all = everything.wait_for_deliveries(5, WAIT).await;
    let filtered = staging_only.wait_for_deliveries(3, WAIT).await;
    assert_eq!(deliveries(&filtered), ["staging/1", "staging/2", "staging/3"]);
    let of = |environment: &str| -> Vec<String> {
        deliveries(&all).into_iter().filter(|delivery| delivery.starts_with(environment)).collect()
    };
    assert_eq!(of("production/"), ["production/1", "production/2"]);
    assert_eq!(of("staging/"), ["staging/1", "staging/2", "staging/3"]);
    // Nothing more arrives for the filtered webhook.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(staging_only.received().len(), 3);
    flagd.stop().await;
}

#[tokio::test]
async fn a_receiver_answering_errors_gets_the_change_again_and_nothing_after_it_first() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start().await;
    // A 500, then a 400: every failure is retried, 4xx included (a change is never dropped).
    receiver.script([Answer::Status(500), Answer::Status(400), Answer::Ok, Answer::Status(503)]);
    let spec = format!("url={},id=ops", receiver.url());
    let flagd = Flagd::start(
        &dir.path().join("flags.redb"),
        &dir.path().join("flagd.log"),
        &["--webhook", &spec, "--webhook-retry-max", "200ms"],
        &[],
    );
    for percent in [1, 2, 3] {
        put(&flagd, "production", chat(percent), "").await;
    }
    let received = receiver.wait_for_deliveries(3, WAIT).await;
    let seen: Vec<(String, String, Answer)> = received
        .iter()
        .map(|request| (request.delivery(), request.header("x-flagd-attempt").unwrap(), request.answer))
        .collect();
    let at =
        |revision: u32, attempt: u32, answer| (format!("production/{revision}"), attempt.to_string(), answer);
    assert_eq!(
        seen,
        [
            at(1, 1, Answer::Status(500)),
            at(1, 2, Answer::Status(400)),
            at(1, 3, Answer::Ok),
            at(2, 1, Answer::Status(503)),
            at(2, 2, Answer::Ok),
            at(3, 1, Answer::Ok),
        ]
    );
    let bodies: Vec<_> = received.iter().map(|request| request.body.clone()).collect();
    assert!(bodies[0] == bodies[1] && bodies[1] == bodies[2], "a retry sends the same bytes");
    flagd
        .metric_becomes("flagd_webhook_failures_total", &[("webhook", "ops"), ("cause", "status")], |n| {
            n == 3.0
        })
        .await;
    flagd.metric_becomes("flagd_webhook_deliveries_total", &[("webhook", "ops")], |n| n == 3.0).await;
    let metrics = flagd.metrics().await;
    assert_eq!(
        metric(&metrics, "flagd_webhook_failures_total", &[("webhook", "ops"), ("cause", "timeout")]),
        Some(0.0)
    );
    let log = flagd.log_text();
    assert!(log.contains("webhook delivery failed; retrying") && log.contains("answered 400"), "{log}");
    flagd.stop().await;
}

#[tokio::test]
async fn a_receiver_that_never_answers_times_out_and_gets_the_change_again() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start().await;
    receiver.script([Answer::Hang]);
    let spec = format!("url={},id=slow", receiver.url());
    let flagd = Flagd::start(
        &dir.path().join("flags.redb"),
        &dir.path().join("flagd.log"),
        &["--webhook", &spec, "--webhook-timeout", "300ms", "--webhook-retry-max", "200ms"],
        &[],
    );
    put(&flagd, "production", chat(1), "").await;
    put(&flagd, "production", chat(2), "").await;
    let received = receiver.wait_for_deliveries(2, WAIT).await;
    assert_eq!(deliveries(&received), ["production/1", "production/1", "production/2"]);
    assert_eq!(received[0].answer, Answer::Hang);
    flagd
        .metric_becomes("flagd_webhook_failures_total", &[("webhook", "slow"), ("cause", "timeout")], |n| {
            n == 1.0
        })
        .await;
    assert!(flagd.log_text().contains("no answer within the timeout"));
    flagd.stop().await;
}

#[test]
fn bad_webhook_options_refuse_the_start_naming_the_option_and_what_was_expected() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("flags.redb");
    for (args, expected) in [
        (
            vec!["--webhook", "url=ftp://hooks/x"],
            "--webhook <SPEC>': url: the scheme is not http:// or https://",
        ),
        (
            vec!["--webhook", "url=https://h/x,ca-file=/nonexistent/ca.pem"],
            "--webhook <SPEC>': ca-file: /nonexistent/ca.pem: No such file",
        ),
        (vec!["--webhook", "url=http://h/x,ca-file=/etc/hosts"], "ca-file: only an https:// receiver"),
        (
            vec!["--webhook", "https://h/x", "--webhook-ca-file", "/etc/hosts"],
            "for '--webhook-ca-file <PATH>': /etc/hosts: no certificate in it; expected a PEM file of CA certificates",
        ),
        (vec!["--webhook", "url=http://h/x,secret=hunter2"], "pass secret-env=VARIABLE or secret-file=PATH"),
        (
            vec!["--webhook", "url=http://h/x,secret-env=FLAGD_TEST_UNSET_SECRET"],
            "the environment variable FLAGD_TEST_UNSET_SECRET is not set",
        ),
        (
            vec!["--webhook", "url=http://h/x,environments=prod uction"],
            "\"prod uction\" is not an environment name",
        ),
        (vec!["--webhook-format", "xml"], "invalid value 'xml' for '--webhook-format"),
        (vec!["--webhook", "http://h/x", "--webhook", "http://h/x"], "two webhooks have the id"),
        (
            vec!["--webhook", "http://h/x", "--webhook-timeout", "0s"],
            "the webhook timeout must be above zero",
        ),
    ] {
        let output = flagd(&data, &args, &[]).env_remove("FLAGD_TEST_UNSET_SECRET").output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} started");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?} claimed to listen");
    }
    assert!(!data.exists(), "a refused start opens no store");
}
