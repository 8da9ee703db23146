//! The console in a real headless Chromium against a real flagd, with real SDK clients and
//! the real flagctl: sign in, the table following a flagctl change without a reload, a kill
//! from the page that every SDK applies and acknowledges, rollback and promote with their
//! diffs first, and roles and CSRF holding in the browser. Screenshots of each step go to
//! `target/tmp/console-screenshots/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use browser_test::Browser;
use flag_core::Context;
use flag_proto::v1;
use flag_sdk::{Client, Evaluate};
use support::{TestServer, WAIT, flagctl, write_tokens};

const ADMIN: &str = "admin-secret-0123456789";
const READER: &str = "reader-secret-0123456789";
const STAGER: &str = "stager-secret-0123456789";
const APP: &str = "app-secret-0123456789";

/// How many SDK clients follow production during the kill.
const SDKS: usize = 3;

/// Where each step's screenshot goes: `target/tmp/console-screenshots`.
fn screenshots() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots")
}

struct Setup {
    server: TestServer,
    dir: tempfile::TempDir,
}

impl Setup {
    /// flagd with an operator, a reader, a staging writer and an SDK token; `chat` fully on
    /// in production and at 20 % in staging.
    async fn start() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens.yaml");
        write_tokens(
            &tokens,
            &[
                ("ops", ADMIN, "admin", "[\"*\"]"),
                ("auditor", READER, "reader", "[\"*\"]"),
                ("stager", STAGER, "writer", "[staging]"),
                ("app", APP, "sdk", "[production]"),
            ],
        );
        let config = flagd::Config::new(support::data_file(dir.path()))
            .with_tokens_file(&tokens)
            .with_environments(["production", "staging"]);
        let server = TestServer::start(config).await;
        let setup = Setup { server, dir };
        setup.set_rollout("production", 100.0).await;
        setup.set_rollout("staging", 20.0).await;
        setup
    }

    async fn set_rollout(&self, environment: &str, percent: f64) {
        let mut admin = self.server.admin_with_token(ADMIN).await;
        let change =
            Some(v1::Change { actor: String::new(), reason: format!("{percent}% in {environment}") });
        let request = v1::SetRolloutRequest {
            environment: environment.into(),
            key: "chat".into(),
            percent,
            create_if_missing: true,
            change,
            ..Default::default()
        };
        admin.set_rollout(request).await.unwrap();
    }

    async fn flag(&self, environment: &str) -> flag_core::Flag {
        let mut admin = self.server.admin_with_token(ADMIN).await;
        let request = v1::GetFlagRequest { environment: environment.into(), key: "chat".into() };
        flag_core::Flag::try_from(admin.get_flag(request).await.unwrap().into_inner().flag.unwrap()).unwrap()
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server.management)
    }

    async fn sign_in(&self, browser: &Browser, token: &str) {
        browser.goto(&self.url("/ui/flags")).await;
        browser.fill("#token", token).await;
        browser.click("#sign-in").await;
        browser.wait_for_text("main h1", "Flags", WAIT).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_sees_changes_live_and_kills_with_every_sdk_acknowledging() {
    let Some(browser) = Browser::start(screenshots()).await else { return };
    let setup = Setup::start().await;
    let mut sdks = Vec::new();
    for index in 0..SDKS {
        let client = Client::builder(setup.server.endpoint())
            .environment("production")
            .token(APP)
            .client_name(format!("checkout-{index}"))
            .connect()
            .await
            .unwrap();
        sdks.push(client);
    }
    let user = Context::new("user-1");
    assert!(sdks.iter().all(|sdk| sdk.is_enabled("chat", &user)));

    setup.sign_in(&browser, ADMIN).await;
    let cookie = browser.cookie("flagd_session").await.expect("a session cookie");
    assert!(cookie.http_only, "{cookie:?}");
    assert_eq!(cookie.same_site.as_deref(), Some("Strict"));
    let row = browser.text("#flag-chat").await;
    assert!(row.contains("100% on") && row.contains("20% on, 80% off"), "{row}");
    browser.screenshot("01-flags-signed-in").await;

    // A change made with the CLI appears without a reload.
    browser.execute("document.body.dataset.loadedOnce = 'yes'; return 0;").await;
    let changed = Instant::now();
    let endpoint = setup.server.endpoint();
    // Off the runtime: the server under test shares its two workers.
    let set = tokio::task::spawn_blocking(move || {
        Command::new(flagctl())
            .args(["--server", &endpoint, "--token", ADMIN, "--env", "production"])
            .args(["set", "search", "--percent", "30", "--reason", "from the CLI"])
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(set.status.success(), "{set:?}");
    let row = browser.wait_for_text("#flag-search", "30% on, 70% off", Duration::from_secs(1)).await;
    let shown_after = changed.elapsed();
    assert!(row.contains("from the CLI"), "{row}");
    let reloaded = browser.execute("return document.body.dataset.loadedOnce ?? 'reloaded';").await;
    assert_eq!(reloaded, "yes", "the page was reloaded");
    eprintln!("flagctl change shown after {shown_after:?}");
    browser.screenshot("02-flags-after-flagctl-change").await;

    // Kill from the flag page: one confirmation, then the acknowledgements live.
    browser.goto(&setup.url("/ui/flags/chat")).await;
    browser.fill("form[data-kill=production] input[name=reason]", "checkout errors, incident 4711").await;
    browser.click("form[data-kill=production] button.kill").await;
    let asked = browser.accept_alert().await;
    assert!(asked.contains("Kill chat in production"), "{asked}");
    let report = browser
        .wait_for_text("#kill-progress-production", &format!("{SDKS}/{SDKS} SDKs acknowledged"), WAIT)
        .await;
    assert!(report.contains("slowest"), "{report}");
    for sdk in &sdks {
        assert!(!sdk.is_enabled("chat", &user), "an SDK still serves chat after the acknowledged kill");
    }
    assert!(!setup.flag("production").await.enabled);
    browser.wait_for_text("#side-by-side", "KILLED", WAIT).await;
    browser.screenshot("03-killed-all-acknowledged").await;

    browser.goto(&setup.url("/ui/sdks")).await;
    let listed = browser.text("main").await;
    assert!((0..SDKS).all(|index| listed.contains(&format!("checkout-{index}"))), "{listed}");
    browser.screenshot("04-sdks").await;
    drop(browser);
    setup.server.stop().await;
    drop(setup.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_and_promote_show_their_diff_before_they_write() {
    let Some(browser) = Browser::start(screenshots()).await else { return };
    let setup = Setup::start().await;
    setup.set_rollout("production", 50.0).await;
    setup.sign_in(&browser, ADMIN).await;

    // Version 1 was 100 % on; the flag is at 50 % now.
    browser.goto(&setup.url("/ui/flags/chat?env=production")).await;
    browser.screenshot("05-flag-history").await;
    browser.click("tr[data-version='1'] a.rollback").await;
    let diff = browser.wait_for_text("table.diff", "default.split.weights", WAIT).await;
    assert!(diff.contains("50000") && diff.contains("100000"), "{diff}");
    browser.screenshot("06-rollback-diff").await;
    assert_eq!(
        flag_core::state_text(&setup.flag("production").await),
        "50% on, 50% off",
        "the preview wrote"
    );
    browser.fill("input[name=reason]", "back to full").await;
    browser.click("#confirm-rollback").await;
    browser.wait_for_text("#history", "rollback", WAIT).await;
    assert_eq!(flag_core::state_text(&setup.flag("production").await), "100% on");

    // Promote staging's 20 % to production, dry run first.
    browser.goto(&setup.url("/ui/flags/chat?env=staging")).await;
    browser.click("#promote-preview").await;
    let planned = browser.wait_for_text("#promote-diff", "chat", WAIT).await;
    assert!(planned.contains("update") && planned.contains("20000"), "{planned}");
    assert_eq!(flag_core::state_text(&setup.flag("production").await), "100% on", "the dry run wrote");
    browser.screenshot("07-promote-dry-run").await;
    browser.fill("input[name=reason]", "staging proved it").await;
    browser.click("#confirm-promote").await;
    browser.wait_for_text("#side-by-side", "20% on, 80% off", WAIT).await;
    assert_eq!(flag_core::state_text(&setup.flag("production").await), "20% on, 80% off");
    browser.screenshot("08-promoted").await;
    drop(browser);
    setup.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_has_no_kill_button_and_forged_or_out_of_reach_writes_are_refused() {
    let Some(browser) = Browser::start(screenshots()).await else { return };
    let setup = Setup::start().await;

    setup.sign_in(&browser, READER).await;
    browser.goto(&setup.url("/ui/flags/chat")).await;
    browser.wait_for_text("#side-by-side", "100% on", WAIT).await;
    assert!(!browser.exists("button.kill").await, "a reader is offered a kill button");
    browser.screenshot("09-reader-flag-page").await;
    let forged = browser
        .post_form_without_csrf("/ui/flags/chat/kill", &[("environment", "production"), ("reason", "x")])
        .await;
    assert_eq!(forged, 403);
    assert!(setup.flag("production").await.enabled, "a forged kill changed the flag");

    browser.goto(&setup.url("/ui/flags")).await;
    browser.click("button.link").await;
    setup.sign_in(&browser, STAGER).await;
    browser.goto(&setup.url("/ui/flags/chat")).await;
    assert!(browser.exists("form[data-kill=staging]").await);
    assert!(!browser.exists("form[data-kill=production]").await, "production offered to a staging writer");
    // The production kill posted anyway, with the session's own CSRF token.
    const POST_WITH_TOKEN: &str =
        "return fetch('/ui/flags/chat/kill', { method: 'POST', credentials: 'same-origin',
        headers: { 'x-csrf-token': document.querySelector('meta[name=csrf-token]').content, 'accept': 'application/json' },
        body: new URLSearchParams({ environment: 'production', reason: 'out of reach' }) })
        .then(async r => [r.status, await r.text()]);";
    let answer = browser.execute(POST_WITH_TOKEN).await;
    assert_eq!(answer[0], 403, "{answer}");
    // The page's script is answered in plain text, as it shows it.
    let refusal = answer[1].as_str().unwrap();
    assert!(
        refusal.starts_with(
            "principal \"stager\" (writer for staging) may not write environment \"production\""
        ),
        "{refusal}"
    );
    assert!(setup.flag("production").await.enabled, "a staging writer killed production");
    browser.screenshot("10-staging-writer").await;
    drop(browser);
    setup.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_signs_in_follows_changes_and_kills_as_chromium_does() {
    let Some(browser) = Browser::start_firefox(screenshots()).await else { return };
    let setup = Setup::start().await;
    let sdk = Client::builder(setup.server.endpoint())
        .environment("production")
        .token(APP)
        .client_name("firefox-watched")
        .connect()
        .await
        .unwrap();
    let user = Context::new("user-1");
    assert!(sdk.is_enabled("chat", &user));

    setup.sign_in(&browser, ADMIN).await;
    let cookie = browser.cookie("flagd_session").await.expect("a session cookie");
    assert!(cookie.http_only && cookie.same_site.as_deref() == Some("Strict"), "{cookie:?}");
    setup.set_rollout("staging", 35.0).await;
    browser.wait_for_text("#flag-chat", "35% on, 65% off", WAIT).await;
    browser.screenshot("11-firefox-flags").await;

    browser.goto(&setup.url("/ui/flags/chat")).await;
    browser.fill("form[data-kill=production] input[name=reason]", "firefox kill").await;
    browser.click("form[data-kill=production] button.kill").await;
    browser.accept_alert().await;
    browser.wait_for_text("#kill-progress-production", "1/1 SDKs acknowledged", WAIT).await;
    assert!(!sdk.is_enabled("chat", &user));
    browser.wait_for_text("#side-by-side", "KILLED", WAIT).await;
    assert!(browser.exists("#actions-production form.revive").await, "the panel did not turn to Revive");
    browser.screenshot("12-firefox-killed").await;
    drop(browser);
    setup.server.stop().await;
}
