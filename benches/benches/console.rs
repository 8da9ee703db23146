//! `cargo bench -p flag-benches --bench console`: the console's figures, in one run, in a
//! real headless Chromium against a real flagd (both on this machine):
//!
//! - the flags page's weight with 1,000 flags in two environments: its HTML, script and
//!   stylesheet as served (no compression: flagd serves none);
//! - its time to first render (first contentful paint), the median of 5 loads;
//! - from the confirmed click on Kill to the page showing "all acknowledged" with 100 SDK
//!   clients connected (in this process, on their own runtime), measured by the page itself
//!   (`performance.now()` at the click and at the final report), median and slowest of 5.
//!
//! Each beside its floor in the same run: the first paint of the sign-in page (a few hundred
//! bytes), and the same kill over gRPC as `flagctl kill` makes it, answered when every SDK
//! acknowledged.
//!
//! `CONSOLE_DOCS_SCREENSHOTS=DIR` instead stages a small fleet — a dark launch, a guarded
//! rollout under traffic, a killed flag — and saves the README's pictures of the flags page
//! and of the flag page during the rollout into DIR.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use browser_test::Browser;
use flag_benches::{BenchServer, sdk_fleet};
use flag_core::{Context, Flag, FlagSet, OnBreach, RolloutPlan};
use flag_proto::{ApplyPlan, Authorship, Requests, v1};
use flag_sdk::{Client, Evaluate, Outcome};
use tonic::transport::Channel;

const LOADS: usize = 5;
const KILLS: usize = 5;
const PER_CONNECTION: usize = 100;

fn by(reason: &str) -> Authorship {
    Authorship { actor: "bench".into(), reason: reason.into() }
}

type Admin = v1::admin_client::AdminClient<Channel>;

async fn apply(admin: &mut Admin, environment: &str, flags: Vec<Flag>) {
    let set = FlagSet { flags, segments: Vec::new() };
    let request = Requests::new(environment).apply(&set, ApplyPlan::default(), by("console bench"));
    admin.apply(request).await.unwrap();
}

async fn clients(server: &BenchServer, count: usize, report_every: Duration) -> Vec<Client> {
    sdk_fleet(&server.endpoint(), count, PER_CONNECTION, "checkout", |client| {
        client.report_interval(report_every)
    })
    .await
}

/// Signs in on a server without tokens (the bench's): a name is all it asks.
async fn sign_in(browser: &Browser, base: &str) {
    browser.goto(&format!("{base}/ui/login")).await;
    browser.fill("#name", "bench").await;
    browser.click("#sign-in").await;
    browser.wait_for_text("main h1", "Flags", Duration::from_secs(30)).await;
}

fn median(sorted: &[f64]) -> f64 {
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

async fn figures(browser: &Browser, server: &BenchServer, quick: bool) {
    let (flags, sdks) = if quick { (50, 5) } else { (1000, 100) };
    let base = format!("http://{}", server.management.unwrap());
    let mut admin = Admin::connect(server.endpoint()).await.unwrap();
    for environment in ["production", "staging"] {
        let set =
            (0..flags).map(|n| Flag::rollout(&format!("flag-{n:04}"), (n % 100) as f64).unwrap()).collect();
        apply(&mut admin, environment, set).await;
    }
    sign_in(browser, &base).await;

    const WEIGHT: &str = "const size = async (url) => new Blob([await (await fetch(url)).text()]).size;
        return Promise.all(['/ui/flags', '/ui/assets/console.js', '/ui/assets/console.css'].map(size));";
    let sizes: Vec<u64> = serde_json::from_value(browser.execute(WEIGHT).await).unwrap();
    let mut renders = Vec::new();
    for _ in 0..LOADS {
        browser.goto(&format!("{base}/ui/flags")).await;
        renders.push(browser.first_render_ms().await);
    }
    renders.sort_by(f64::total_cmp);
    // The floor: the same browser's first paint of the sign-in page (a few hundred bytes).
    let mut floor_renders = Vec::new();
    for _ in 0..LOADS {
        browser.goto(&format!("{base}/ui/login")).await;
        floor_renders.push(browser.first_render_ms().await);
    }
    floor_renders.sort_by(f64::total_cmp);

    let connected = clients(server, sdks, Duration::from_secs(5)).await;
    let user = Context::new("user-1");
    let mut kills = Vec::new();
    for round in 0..KILLS {
        browser.goto(&format!("{base}/ui/flags/flag-0099")).await;
        browser.fill("form[data-kill=production] input[name=reason]", &format!("bench kill {round}")).await;
        browser.click("form[data-kill=production] button.kill").await;
        browser.accept_alert().await;
        let report = browser
            .wait_for_text(
                "#kill-progress-production",
                &format!("{sdks}/{sdks} SDKs acknowledged"),
                Duration::from_secs(30),
            )
            .await;
        let elapsed = loop {
            let value = browser
                .execute(
                    "return document.querySelector('#kill-progress-production').dataset.elapsedMs ?? null",
                )
                .await;
            if let Some(ms) = value.as_str().and_then(|ms| ms.parse::<f64>().ok()) {
                break ms;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert!(connected.iter().all(|sdk| !sdk.is_enabled("flag-0099", &user)), "{report}");
        kills.push(elapsed);
        let revived =
            admin.revive(Requests::new("production").revive("flag-0099", None, by("bench revive"))).await;
        let revision = revived.unwrap().into_inner().revision;
        while connected.iter().any(|sdk| sdk.revision() < revision) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    kills.sort_by(f64::total_cmp);
    // The floor: the same kill over gRPC, as `flagctl kill` makes it, answered once every SDK
    // acknowledged — no browser, no page.
    let mut grpc_kills = Vec::new();
    for round in 0..KILLS {
        let started = Instant::now();
        let request = Requests::new("production").kill(
            "flag-0099",
            Duration::from_secs(30),
            by(&format!("grpc kill {round}")),
        );
        let acks = admin.kill(request).await.unwrap().into_inner().acks.unwrap();
        grpc_kills.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(acks.acknowledged as usize, sdks);
        let revived =
            admin.revive(Requests::new("production").revive("flag-0099", None, by("bench revive"))).await;
        let revision = revived.unwrap().into_inner().revision;
        while connected.iter().any(|sdk| sdk.revision() < revision) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    grpc_kills.sort_by(f64::total_cmp);
    println!(
        "console flags={flags} environments=2 page_html_bytes={} script_bytes={} stylesheet_bytes={} total_kb={:.1}",
        sizes[0],
        sizes[1],
        sizes[2],
        sizes.iter().sum::<u64>() as f64 / 1024.0
    );
    println!(
        "console first_render_ms median={:.0} max={:.0} loads={LOADS} floor_sign_in_page_median={:.0}",
        median(&renders),
        renders[LOADS - 1],
        median(&floor_renders)
    );
    println!(
        "console kill_click_to_all_acknowledged sdks={sdks} median_ms={:.0} max_ms={:.0} kills={KILLS} \
         floor_grpc_kill_median_ms={:.0} floor_max_ms={:.0}",
        median(&kills),
        kills[KILLS - 1],
        median(&grpc_kills),
        grpc_kills[KILLS - 1]
    );
    drop(connected);
}

/// Simulated healthy traffic on `client` until `stop`: outcomes and latencies for the rollout.
async fn traffic(client: Client, id: usize, stop: Arc<AtomicBool>) {
    let mut user = id as u64 * 1_000_000;
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..20 {
            user += 1;
            let key = format!("user-{user}");
            let ctx = Context::new(&key);
            let on = client.is_enabled("checkout-v2", &ctx);
            let failed = user.is_multiple_of(if on { 90 } else { 110 });
            client.record_outcome(
                "checkout-v2",
                &ctx,
                if failed { Outcome::Error } else { Outcome::Success },
            );
            let millis = if on { 18 + user % 9 } else { 20 + user % 7 };
            client.record_latency("checkout-v2", &ctx, Duration::from_millis(millis));
            let _ = client.is_enabled("chat", &ctx);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn docs_screenshots(browser: &Browser, server: &BenchServer, dir: &Path) {
    let base = format!("http://{}", server.management.unwrap());
    let mut admin = Admin::connect(server.endpoint()).await.unwrap();
    let tagged = |mut flag: Flag, description: &str, tags: &[&str]| {
        flag.description = description.into();
        flag.metadata.owner = "payments".into();
        flag.metadata.tags = tags.iter().map(|tag| (*tag).to_owned()).collect();
        flag
    };
    let fleet = |checkout: f64| {
        vec![
            tagged(Flag::dark_launch("chat", 5.0, 50.0).unwrap(), "New chat backend", &["web"]),
            tagged(Flag::rollout("checkout-v2", checkout).unwrap(), "Checkout rewrite", &["payments"]),
            tagged(Flag::rollout("search-ranking", 100.0).unwrap(), "Learned ranking", &["search"]),
            tagged(Flag::rollout("legacy-export", 100.0).unwrap(), "CSV export path", &["ops"]),
            tagged(Flag::rollout("dark-mode", 25.0).unwrap(), "Dark theme", &["web"]),
        ]
    };
    apply(&mut admin, "staging", fleet(100.0)).await;
    apply(&mut admin, "production", fleet(0.0)).await;
    let production = Requests::new("production");
    admin
        .kill(production.kill("legacy-export", Duration::ZERO, by("export timeouts, INC-2231")))
        .await
        .unwrap();

    let connected = clients(server, 20, Duration::from_millis(500)).await;
    let stop = Arc::new(AtomicBool::new(false));
    for (id, client) in connected.iter().enumerate() {
        tokio::spawn(traffic(client.clone(), id, Arc::clone(&stop)));
    }
    tokio::time::sleep(Duration::from_secs(30)).await;
    let plan = RolloutPlan {
        steps: vec![5.0, 25.0, 50.0, 100.0],
        hold_ms: 25_000,
        max_hold_ms: 120_000,
        dark_percent: None,
        min_samples: 200,
        max_error_ratio: 1.5,
        max_latency_p99_ratio: 1.5,
        max_error_rate: None,
        max_latency_p99_us: None,
        on_breach: OnBreach::Kill,
    };
    admin
        .start_rollout(production.start_rollout("checkout-v2", &plan, by("guarded rollout of the rewrite")))
        .await
        .unwrap();
    // Two steps held and advanced, the third under way: the charts show each step's mark.
    tokio::time::sleep(Duration::from_secs(65)).await;
    sign_in(browser, &base).await;
    save(browser, dir, "console-flags.png").await;
    browser.goto(&format!("{base}/ui/flags/checkout-v2?env=production")).await;
    browser.execute("document.querySelector('section.figures').scrollIntoView(); return 0;").await;
    save(browser, dir, "console-rollout.png").await;
    stop.store(true, Ordering::Relaxed);
}

async fn save(browser: &Browser, dir: &Path, name: &str) {
    let taken = browser.screenshot(name.trim_end_matches(".png")).await;
    std::fs::copy(&taken, dir.join(name)).unwrap();
    println!("console screenshot {}", dir.join(name).display());
}

fn main() {
    // `cargo test --benches` runs this without `--bench`: a small run proves it works.
    let quick = !std::env::args().any(|a| a == "--bench");
    // flagd on its own runtime, started before the clients' (it blocks on its own to start).
    let server = BenchServer::start_with_console(&["staging"]).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let screenshots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-bench");
        let Some(browser) = Browser::start(screenshots).await else {
            println!("console: skipped, no Chromium");
            return;
        };
        let started = Instant::now();
        match std::env::var_os("CONSOLE_DOCS_SCREENSHOTS") {
            Some(dir) => docs_screenshots(&browser, &server, Path::new(&dir)).await,
            None => figures(&browser, &server, quick).await,
        }
        eprintln!("console bench took {:?}", started.elapsed());
    });
    runtime.shutdown_timeout(Duration::from_secs(5));
    drop(server);
}
