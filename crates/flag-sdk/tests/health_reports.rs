//! Health reports against a real flagd: what the application records per variant reaches
//! flagd's `/metrics` exactly, what is recorded while flagd is down arrives once it is
//! back, and a dark launch's candidate runs count as the dark cohort's outcomes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use flag_core::{Context, DARK, Flag, OFF, ON};
use flag_sdk::{Client, Evaluate, Outcome, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Generous: the waits end as soon as the figures are there; only a failure waits this long.
const WAIT: Duration = Duration::from_secs(15);

async fn metrics(management: SocketAddr) -> String {
    let Ok(mut connection) = tokio::net::TcpStream::connect(management).await else { return String::new() };
    let request = "GET /metrics HTTP/1.1\r\nHost: flagd\r\nConnection: close\r\n\r\n";
    connection.write_all(request.as_bytes()).await.unwrap();
    let mut text = String::new();
    let _ = connection.read_to_string(&mut text).await;
    text
}

fn series(name: &str, variant: &str) -> String {
    format!("{name}{{environment=\"production\",flag=\"chat\",variant=\"{variant}\"}}")
}

/// Waits until every `(series, value)` line is in flagd's `/metrics`; answers the text.
async fn wait_for_metrics(server: &TestServer, wanted: &[(String, u64)]) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let text = metrics(server.management_address()).await;
        if wanted.iter().all(|(series, value)| text.lines().any(|line| line == format!("{series} {value}"))) {
            return text;
        }
        assert!(tokio::time::Instant::now() < deadline, "wanted {wanted:?} in:\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Evaluates and records one unit of work per user: the `on` cohort fails every fourth
/// time, the `off` cohort never; answers the users per cohort and `on`'s errors.
fn serve_traffic(client: &Client, users: std::ops::Range<u32>) -> (u64, u64, u64) {
    let (mut on, mut off, mut on_errors) = (0, 0, 0);
    for user in users {
        let key = format!("user-{user}");
        let ctx = Context::new(&key);
        if client.is_enabled("chat", &ctx) {
            on += 1;
            let failed = on % 4 == 0;
            on_errors += u64::from(failed);
            let observation = client.observe("chat", &ctx);
            if failed {
                observation.fail();
            }
        } else {
            off += 1;
            client.record_outcome("chat", &ctx, Outcome::Success);
            client.record_latency("chat", &ctx, Duration::from_millis(3));
        }
    }
    (on, off, on_errors)
}

#[tokio::test]
async fn recorded_outcomes_reach_flagd_per_variant_and_survive_a_flagd_outage() {
    let mut server = TestServer::start().await.unwrap();
    server.put_flag(&Flag::rollout("chat", 50.0).unwrap()).await.unwrap();
    server.put_flag(&Flag::rollout("other", 0.0).unwrap()).await.unwrap();
    let client = server.client_builder().report_interval(Duration::from_millis(50)).connect().await.unwrap();

    let (on, off, on_errors) = serve_traffic(&client, 0..400);
    assert!(on > 100 && off > 100, "a 50 % rollout splits 400 users: {on} on, {off} off");
    let text = wait_for_metrics(
        &server,
        &[
            (series("flagd_health_evaluations_total", ON), on),
            (series("flagd_health_evaluations_total", OFF), off),
            (series("flagd_health_errors_total", ON), on_errors),
            (series("flagd_health_successes_total", ON), on - on_errors),
            (series("flagd_health_successes_total", OFF), off),
            (series("flagd_health_errors_total", OFF), 0),
        ],
    )
    .await;
    // `off`'s latencies were 3 ms each: none at or below 2 ms, all at or below 5 ms.
    let bucket = |le: &str| {
        format!(
            "flagd_health_latency_seconds_bucket{{environment=\"production\",flag=\"chat\",variant=\"off\",le=\"{le}\"}}"
        )
    };
    assert!(text.contains(&format!("{} {off}", bucket("0.005"))), "{text}");
    assert!(text.contains(&format!("{} 0", bucket("0.002"))), "{text}");

    // One more report, on another flag: it is sent only once the one before was
    // acknowledged, so no report of `chat`'s is still in flight when flagd stops.
    assert!(!client.is_enabled("other", &Context::new("user-1")));
    let other = "flagd_health_evaluations_total{environment=\"production\",flag=\"other\",variant=\"off\"}";
    wait_for_metrics(&server, &[(other.to_owned(), 1)]).await;
    // Recorded while flagd is down: kept by the client and reported once it is back (a
    // restarted flagd starts its figures afresh, so only these are there).
    server.stop().await.unwrap();
    let (on, off, on_errors) = serve_traffic(&client, 400..600);
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.restart().await.unwrap();
    wait_for_metrics(
        &server,
        &[
            (series("flagd_health_errors_total", ON), on_errors),
            (series("flagd_health_successes_total", ON), on - on_errors),
            (series("flagd_health_successes_total", OFF), off),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_dark_launch_reports_its_candidates_failures_and_mismatches_as_the_dark_cohorts_errors() {
    let server = TestServer::start().await.unwrap();
    server.put_flag(&Flag::dark_launch("chat", 0.0, 100.0).unwrap()).await.unwrap();
    let client = server.client_builder().report_interval(Duration::from_millis(50)).connect().await.unwrap();
    let user = Context::new("user-1");
    let patient = Duration::from_secs(5);

    let launch = || client.dark_launch("chat", &user).budget(patient);
    assert_eq!(launch().run(|| 7, || -> i32 { panic!("the new path is broken") }), 7);
    let answer: Result<i32, String> = launch().try_run(|| Ok(7), || Err("timeout".into()));
    assert_eq!(answer, Ok(7));
    assert_eq!(launch().run(|| 7, || 8), 7, "a mismatch: the control's answer is served");
    assert_eq!(launch().run(|| 7, || 7), 7);

    wait_for_metrics(
        &server,
        &[(series("flagd_health_errors_total", DARK), 3), (series("flagd_health_successes_total", DARK), 1)],
    )
    .await;
}
