//! Webhook receivers that are down: across a flagd restart nothing is lost or sent twice,
//! the lag shows in `/metrics`, and writes meanwhile commit as fast as with no webhook.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
mod webhook_support;

use std::time::{Duration, Instant};

use flag_proto::v1;
use webhook_support::{Answer, Flagd, Received, Receiver};

const WAIT: Duration = Duration::from_secs(15);

async fn put(flagd: &Flagd, environment: &str, percent: u32) -> u64 {
    let flag = support::flag(&format!(
        "key: chat\nvariants:\n  - {{name: on, value: true}}\n  - {{name: off, value: false}}\noff_variant: off\n\
         default: {{split: {{weights: [{{variant: on, weight: {}}}, {{variant: off, weight: {}}}]}}}}\n",
        percent * 1000,
        100_000 - percent * 1000
    ));
    let request = v1::PutFlagRequest {
        environment: environment.into(),
        flag: Some(flag),
        expected_version: None,
        change: support::change("ramp"),
    };
    flagd.admin().await.put_flag(request).await.unwrap().into_inner().revision
}

fn deliveries(received: &[Received]) -> Vec<String> {
    received.iter().filter(|request| request.answer == Answer::Ok).map(Received::delivery).collect()
}

#[tokio::test]
async fn a_receiver_down_across_a_flagd_restart_gets_every_change_once_in_revision_order() {
    let dir = tempfile::tempdir().unwrap();
    let (data, log) = (dir.path().join("flags.redb"), dir.path().join("flagd.log"));
    let receiver = Receiver::start().await;
    let address = receiver.address;
    let spec = format!("url={},id=ops", receiver.url());
    let args = ["--environments", "staging", "--webhook", spec.as_str(), "--webhook-retry-max", "300ms"];

    let flagd = Flagd::start(&data, &log, &args, &[]);
    put(&flagd, "production", 1).await;
    put(&flagd, "production", 2).await;
    receiver.wait_for_deliveries(2, WAIT).await;
    let before_outage = receiver.stop().await;

    // Down: changes wait in the outbox, and the lag says so.
    for percent in [3, 4, 5] {
        put(&flagd, "production", percent).await;
    }
    put(&flagd, "staging", 1).await;
    let lag = [("webhook", "ops"), ("environment", "production")];
    flagd.metric_becomes("flagd_webhook_lag_revisions", &lag, |behind| behind == 3.0).await;
    flagd.metric_becomes("flagd_webhook_lag_seconds", &lag, |seconds| seconds > 0.0).await;
    flagd
        .metric_becomes("flagd_webhook_failures_total", &[("webhook", "ops"), ("cause", "connect")], |n| {
            n >= 1.0
        })
        .await;
    flagd.stop().await;

    // Restarted with the receiver still down, and more changes.
    let flagd = Flagd::start(&data, &log, &args, &[]);
    put(&flagd, "production", 6).await;
    put(&flagd, "staging", 2).await;
    let lag = [("webhook", "ops"), ("environment", "staging")];
    flagd.metric_becomes("flagd_webhook_lag_revisions", &lag, |behind| behind == 2.0).await;

    // Back: everything owed arrives, once, in order.
    let receiver = Receiver::start_on(address).await;
    let after_outage = receiver.wait_for_deliveries(6, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let all: Vec<String> =
        deliveries(&before_outage).into_iter().chain(deliveries(&receiver.received())).collect();
    let of = |environment: &str| -> Vec<String> {
        all.iter().filter(|delivery| delivery.starts_with(environment)).cloned().collect()
    };
    assert_eq!(of("production/"), (1..=6).map(|r| format!("production/{r}")).collect::<Vec<_>>(), "{all:?}");
    assert_eq!(of("staging/"), ["staging/1", "staging/2"], "{all:?}");
    assert!(
        after_outage.iter().all(|request| request.answer == Answer::Ok),
        "while it is up, every request is a new change: {:?}",
        deliveries(&after_outage)
    );
    for environment in ["production", "staging"] {
        let lag = [("webhook", "ops"), ("environment", environment)];
        flagd.metric_becomes("flagd_webhook_lag_revisions", &lag, |behind| behind == 0.0).await;
        flagd.metric_becomes("flagd_webhook_lag_seconds", &lag, |seconds| seconds == 0.0).await;
    }
    // The last commits were cursor moves: stopping makes them durable, so a start after it
    // owes nothing.
    flagd.stop().await;
    let flagd = Flagd::start(&data, &log, &args, &[]);
    let last = put(&flagd, "production", 7).await;
    receiver.wait_for_deliveries(7, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let since: Vec<String> = deliveries(&receiver.received()).into_iter().skip(6).collect();
    assert_eq!(since, [format!("production/{last}")], "nothing delivered twice after a clean restart");
    flagd.stop().await;
}

/// Times `writes` sequential writes.
async fn time_writes(flagd: &Flagd, writes: u32) -> Duration {
    let started = Instant::now();
    for n in 0..writes {
        put(flagd, "production", 1 + n % 99).await;
    }
    started.elapsed()
}

#[tokio::test]
async fn writes_during_an_outage_commit_as_fast_as_with_no_webhook() {
    const WRITES: u32 = 40;
    let dir = tempfile::tempdir().unwrap();
    // One receiver never answers (each attempt runs into the timeout), one is not there.
    let hanging = Receiver::start().await;
    hanging.script(std::iter::repeat_n(Answer::Hang, 1000));
    let gone = Receiver::start().await;
    let gone_url = gone.url();
    gone.stop().await;
    let (hanging_spec, gone_spec) =
        (format!("url={},id=hanging", hanging.url()), format!("url={gone_url},id=gone"));

    let plain = Flagd::start(&dir.path().join("plain.redb"), &dir.path().join("plain.log"), &[], &[]);
    let hooked = Flagd::start(
        &dir.path().join("hooked.redb"),
        &dir.path().join("hooked.log"),
        &[
            "--webhook",
            &hanging_spec,
            "--webhook",
            &gone_spec,
            "--webhook-timeout",
            "200ms",
            "--webhook-retry-max",
            "200ms",
        ],
        &[],
    );
    // Warm both up (connections, caches) before timing.
    put(&plain, "production", 1).await;
    put(&hooked, "production", 1).await;
    let baseline = time_writes(&plain, WRITES).await;
    let outage = time_writes(&hooked, WRITES).await;
    let baseline_again = time_writes(&plain, WRITES).await;
    let baseline = baseline.max(baseline_again);
    // Writes that waited for a delivery would take a 200 ms timeout each: 8 s, not ~0.2 s.
    assert!(
        outage <= baseline * 3 + Duration::from_millis(300),
        "{WRITES} writes took {outage:?} during the outage, {baseline:?} without a webhook"
    );
    assert_eq!(put(&hooked, "production", 50).await, 2 + u64::from(WRITES), "every write committed");
    assert!(!hanging.received().is_empty(), "deliveries were being attempted meanwhile");
    hooked
        .metric_becomes("flagd_webhook_failures_total", &[("webhook", "gone"), ("cause", "connect")], |n| {
            n >= 1.0
        })
        .await;
    hooked
        .metric_becomes("flagd_webhook_lag_revisions", &[("webhook", "hanging")], |behind| behind >= 1.0)
        .await;
    eprintln!("{WRITES} writes: {baseline:?} without a webhook, {outage:?} with its receivers down");
    plain.stop().await;
    hooked.stop().await;
}
