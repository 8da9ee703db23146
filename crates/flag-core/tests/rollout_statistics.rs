//! Rollouts over a million keys: accurate, monotonic, independent across flags, and the
//! same in every process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write;

use flag_core::{Context, Evaluate, Flag, FlagSet, Reason, Snapshot};

const KEYS: u32 = 1_000_000;

fn rollouts(flags: &[(&str, f64)]) -> Snapshot {
    let flags = flags.iter().map(|&(key, percent)| Flag::rollout(key, percent).unwrap()).collect();
    FlagSet { flags, segments: vec![] }.compile().unwrap()
}

/// Calls `f` with each of `count` keys like `user-12345678`, reusing one buffer.
fn for_each_key(count: u32, mut f: impl FnMut(&str)) {
    let mut key = String::with_capacity(16);
    for i in 0..count {
        key.clear();
        write!(key, "user-{i:08}").unwrap();
        f(&key);
    }
}

fn percent(part: u32, whole: u32) -> f64 {
    f64::from(part) * 100.0 / f64::from(whole)
}

#[test]
fn five_percent_is_five_percent() {
    let snapshot = rollouts(&[("chat", 5.0), ("checkout", 25.0)]);
    let (mut chat, mut checkout) = (0, 0);
    for_each_key(KEYS, |key| {
        chat += u32::from(snapshot.is_enabled("chat", &Context::new(key)));
        checkout += u32::from(snapshot.is_enabled("checkout", &Context::new(key)));
    });
    let (chat, checkout) = (percent(chat, KEYS), percent(checkout, KEYS));
    assert!((chat - 5.0).abs() <= 0.1, "5 % rollout served {chat:.3} %");
    assert!((checkout - 25.0).abs() <= 0.1, "25 % rollout served {checkout:.3} %");
}

#[test]
fn ramps_only_add_users() {
    let steps = [5.0, 6.0, 25.0, 100.0];
    let snapshots: Vec<Snapshot> = steps.iter().map(|&p| rollouts(&[("chat", p)])).collect();
    let mut newly_in = [0u32; 4];
    for_each_key(KEYS, |key| {
        let ctx = Context::new(key);
        let states: Vec<bool> = snapshots.iter().map(|s| s.is_enabled("chat", &ctx)).collect();
        for (step, pair) in states.windows(2).enumerate() {
            assert!(
                !pair[0] || pair[1],
                "{key} was in at {} % but out at {} %",
                steps[step],
                steps[step + 1]
            );
        }
        if let Some(first) = states.iter().position(|&on| on) {
            newly_in[first] += 1;
        }
    });
    assert_eq!(newly_in.iter().sum::<u32>(), KEYS, "everyone is in at 100 %");
    assert!((percent(newly_in[1], KEYS) - 1.0).abs() <= 0.1, "5 → 6 % added {newly_in:?}");
}

#[test]
fn raising_the_percentage_moves_dark_users_to_on() {
    let before = FlagSet { flags: vec![Flag::dark_launch("chat", 5.0, 50.0).unwrap()], segments: vec![] };
    let after = FlagSet { flags: vec![Flag::dark_launch("chat", 25.0, 50.0).unwrap()], segments: vec![] };
    let (before, after) = (before.compile().unwrap(), after.compile().unwrap());
    let mut dark_to_on = 0;
    for_each_key(100_000, |key| {
        let ctx = Context::new(key);
        let (was, now) = (before.evaluate("chat", &ctx).variant, after.evaluate("chat", &ctx).variant);
        match (was, now) {
            (Some("on"), now) => assert_eq!(now, Some("on"), "{key} left the on cohort"),
            (Some("off"), now) => assert_eq!(now, Some("off"), "{key} was not exercised in the dark yet"),
            (Some("dark"), Some("on")) => dark_to_on += 1,
            _ => {}
        }
    });
    assert!((percent(dark_to_on, 100_000) - 20.0).abs() <= 0.5, "moved {dark_to_on}");
}

#[test]
fn flags_are_independent() {
    let snapshot = rollouts(&[("chat", 50.0), ("video", 20.0)]);
    let (mut chat, mut video, mut both) = (0, 0, 0);
    for_each_key(KEYS, |key| {
        let ctx = Context::new(key);
        let (c, v) = (snapshot.is_enabled("chat", &ctx), snapshot.is_enabled("video", &ctx));
        chat += u32::from(c);
        video += u32::from(v);
        both += u32::from(c && v);
    });
    let expected = percent(chat, KEYS) * percent(video, KEYS) / 100.0;
    let joint = percent(both, KEYS);
    assert!((joint - expected).abs() <= 0.15, "joint {joint:.3} % vs product {expected:.3} %");
}

#[test]
fn the_architecture_reference_users_land_where_documented() {
    let snapshot = rollouts(&[("chat", 10.0)]);
    let user_1 = snapshot.evaluate("chat", &Context::new("user-1"));
    assert_eq!((user_1.variant, user_1.reason), (Some("on"), Reason::Split { bucket: 8_328 }));
    let user_42 = snapshot.evaluate("chat", &Context::new("user-42"));
    assert_eq!((user_42.variant, user_42.reason), (Some("off"), Reason::Split { bucket: 68_275 }));
}

/// A fingerprint of who is in a 37 % rollout among 10 000 keys.
fn cohort_fingerprint() -> u64 {
    let snapshot = rollouts(&[("checkout", 37.0)]);
    let mut fingerprint: u64 = 0xcbf2_9ce4_8422_2325;
    for_each_key(10_000, |key| {
        let bit = u64::from(snapshot.is_enabled("checkout", &Context::new(key)));
        fingerprint = (fingerprint ^ bit).wrapping_mul(0x0100_0000_01b3);
    });
    fingerprint
}

/// Set in the child process of `cohorts_do_not_depend_on_the_process`.
const CHILD_ENV: &str = "FLAG_CORE_COHORT_CHILD";

/// The same keys land in the same cohorts in another process: the test re-runs itself by
/// name with `CHILD_ENV` set, and the child prints its fingerprint instead. One test entry,
/// whichever way it is run: run alone it is the parent.
#[test]
fn cohorts_do_not_depend_on_the_process() {
    if std::env::var_os(CHILD_ENV).is_some() {
        println!("cohort={}", cohort_fingerprint());
        return;
    }
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "cohorts_do_not_depend_on_the_process", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .output()
        .unwrap();
    assert!(child.status.success(), "the child failed: {child:?}");
    let stdout = String::from_utf8_lossy(&child.stdout);
    let theirs = stdout.lines().find_map(|l| l.split("cohort=").nth(1)).expect("the child prints its cohort");
    assert_eq!(theirs.trim(), cohort_fingerprint().to_string());
}
