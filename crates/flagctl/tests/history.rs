//! `flagctl history` past flagd's 1,000-version page: `--limit all` (or `--all`) follows
//! every page in order, and `--before` goes on where a `--limit` stopped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use flag_proto::v1::admin_client::AdminClient;
use flag_proto::{Authorship, Requests, Rollout};
use support::Flagd;

const VERSIONS: u64 = 1_030;

/// Writes `VERSIONS` versions of `chat` over gRPC (through flagctl it would take a process
/// per version).
async fn many_versions(flagd: &Flagd) {
    let mut admin = AdminClient::connect(flagd.url()).await.unwrap();
    let requests = Requests::new("");
    for version in 1..=VERSIONS {
        let rollout =
            Rollout { percent: (version % 100) as f64, dark_percent: None, create_if_missing: true };
        let by = Authorship { actor: "ana".into(), reason: format!("step {version}") };
        admin.set_rollout(requests.set_rollout("chat", rollout, None, by)).await.unwrap();
    }
}

/// The version numbers of `history` lines, in order (`v1205  r1205  …`).
fn versions(text: &str) -> Vec<u64> {
    text.lines().filter_map(|line| line.strip_prefix('v')?.split_whitespace().next()?.parse().ok()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_pages_past_a_thousand_versions_and_goes_on_before_a_version() {
    let flagd = Flagd::start();
    many_versions(&flagd).await;

    let all = flagd.flagctl(&["history", "chat", "--limit", "all"]).ok();
    let newest_first: Vec<u64> = (1..=VERSIONS).rev().collect();
    assert_eq!(versions(&all), newest_first, "every version once, newest first");
    assert!(!all.contains("older versions left"), "nothing is left after all of them");
    assert_eq!(flagd.flagctl(&["history", "chat", "--all"]).ok(), all);

    let first = flagd.flagctl(&["history", "chat", "--limit", "1010"]).ok();
    assert_eq!(versions(&first), newest_first[..1010]);
    assert!(first.trim_end().ends_with("… older versions left: continue with --before 21"), "{first}");
    let rest = flagd.flagctl(&["history", "chat", "--before", "21", "--limit", "all"]).ok();
    assert_eq!(versions(&rest), newest_first[1010..]);

    let json = flagd.flagctl(&["history", "chat", "--all", "--json"]).ok();
    let entries: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(entries.len() as u64, VERSIONS, "--json is one document of every version");

    let err = flagd.flagctl(&["history", "chat", "--before", "1"]).fails_with(2);
    assert!(err.contains("--before"), "{err}");
    let err = flagd.flagctl(&["history", "chat", "--all", "--limit", "5"]).fails_with(2);
    assert!(err.contains("cannot be used with"), "{err}");
}
