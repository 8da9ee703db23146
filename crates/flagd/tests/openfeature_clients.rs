//! The real OpenFeature clients — Python from PyPI, JavaScript from npm, pinned in
//! `tests/openfeature/` and installed by `.ci/openfeature-clients` — against the real flagd
//! binary, in each of their modes: RPC (evaluation v2), in-process (sync v1, evaluating
//! flagd's flag JSON themselves) and OFREP. Every value type, a targeting rule, a split
//! compared key by key with our own evaluator, a killed flag, an unknown flag, a type
//! mismatch, and a change while connected. The Python client runs once more in each mode
//! against a `flagd relay` of that flagd, the change written upstream.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod openfeature_support;
mod support;

use std::time::Duration;

use flag_core::{Context, Flag, FlagSet, Snapshot, Value};
use flag_proto::v1;
use openfeature_support::{Answer, Client, Flagd, Language, Mode, Question};
use serde_json::{Value as Json, json};
use support::{ANY_PORTS, change, listening_on, put, spawn_flagd, start_binary_listening};

/// The targeting keys the split is compared on.
const SPLIT_KEYS: usize = 30;

/// The flags every client is asked about, in flag-core's format.
const FLAGS: [&str; 7] = [
    "key: beta
variants: [{ name: on, value: true }, { name: off, value: false }]
off_variant: off
rules: [{ clauses: [{ attribute: plan, op: in, values: [pro] }], serve: { variant: on } }]
default: { variant: off }",
    "key: greeting
variants: [{ name: hello, value: hello }, { name: bonjour, value: bonjour }]
off_variant: hello
default: { variant: hello }",
    "key: limit
variants: [{ name: small, value: 7 }, { name: large, value: 42 }]
off_variant: small
default: { variant: large }",
    "key: ratio
variants: [{ name: quarter, value: 0.25 }, { name: half, value: 0.5 }]
off_variant: half
default: { variant: quarter }",
    "key: layout
variants: [{ name: grid, value: { columns: 3, theme: dark } }, { name: list, value: { columns: 1 } }]
off_variant: list
default: { variant: grid }",
    "key: legacy
variants: [{ name: on, value: true }, { name: off, value: false }]
off_variant: off
default: { variant: on }",
    "key: adult
variants: [{ name: on, value: true }, { name: off, value: false }]
off_variant: off
rules: [{ clauses: [{ attribute: age, op: number_gte, values: ['18'] }], serve: { variant: on } }]
default: { variant: off }",
];

/// One client process at a time: the change must be seen within 1 s on a shared machine.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn flags() -> Vec<Flag> {
    let mut flags: Vec<Flag> = FLAGS.iter().map(|yaml| serde_yaml_ng::from_str(yaml).unwrap()).collect();
    flags.push(Flag::dark_launch("launch", 20.0, 50.0).unwrap());
    // The same cohorts by flagd's v3 (CBOR) hash, which the newest Python in-process
    // provider buckets with.
    let mut v3 = Flag::dark_launch("launch-v3", 20.0, 50.0).unwrap();
    if let flag_core::Serve::Split(split) = &mut v3.default {
        split.bucketing = flag_core::Bucketing::FlagdV3;
    }
    flags.push(v3);
    flags
}

/// A flagd with [`flags`] in `production`, `legacy` killed; and the line it listens on.
async fn flagd_with_flags(dir: &std::path::Path) -> (Flagd, String) {
    let (child, listening) = start_binary_listening(&dir.join("flags.redb"));
    let flagd = Flagd(child);
    let endpoint = format!("http://{}", listening_on(&listening, "grpc"));
    let mut admin = v1::admin_client::AdminClient::connect(endpoint).await.unwrap();
    for flag in flags() {
        admin.put_flag(put("", v1::Flag::from(&flag), None, "openfeature clients")).await.unwrap();
    }
    let kill = v1::KillRequest {
        environment: "".into(),
        key: "legacy".into(),
        change: change("incident"),
        wait_ms: 0,
    };
    admin.kill(kill).await.unwrap();
    (flagd, listening)
}

fn user(key: &str) -> Json {
    json!({ "targetingKey": key })
}

/// Numbers compare as numbers (`3` and `3.0` are one value: a protobuf `Struct` holds only
/// doubles), at any depth; the rest exactly.
fn same(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(a), Json::Number(b)) => a.as_f64() == b.as_f64(),
        (Json::Array(a), Json::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same(a, b)),
        (Json::Object(a), Json::Object(b)) => {
            a.len() == b.len() && a.iter().all(|(key, a)| b.get(key).is_some_and(|b| same(a, b)))
        }
        _ => a == b,
    }
}

fn check_value(client: &Client, answer: &Answer, flag: &str, value: Json, variant: &str) {
    let name = &client.name;
    assert!(
        same(&answer.value, &value),
        "{name}, flag {flag}: value {} (expected {value}); {answer:?}",
        answer.value
    );
    assert_eq!(answer.variant.as_deref(), Some(variant), "{name}, flag {flag}: variant; {answer:?}");
    assert_eq!(answer.error_code, None, "{name}, flag {flag}: no error; {answer:?}");
}

fn check_error(client: &Client, answer: &Answer, flag: &str, default: Json, code: &str) {
    let name = &client.name;
    assert!(same(&answer.value, &default), "{name}, flag {flag}: the caller's default; {answer:?}");
    assert_eq!(answer.error_code.as_deref(), Some(code), "{name}, flag {flag}: error code; {answer:?}");
    assert_eq!(answer.reason.as_deref(), Some("ERROR"), "{name}, flag {flag}: reason; {answer:?}");
}

/// What our evaluator serves `key` for the split flag.
fn ours(snapshot: &Snapshot, flag: &str, key: &str) -> (Json, String) {
    let evaluation = snapshot.evaluate(flag, &Context::new(key));
    let value = match evaluation.value {
        Some(Value::Bool(on)) => json!(on),
        other => panic!("launch serves a bool, not {other:?}"),
    };
    (value, evaluation.variant.unwrap().to_owned())
}

/// Where the client connects: the flagd itself, or a relay of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    Flagd,
    Relay,
}

/// A `flagd relay` of the flagd listening on `upstream`'s line, every port of its own; and
/// the line it listens on.
fn relay_of(upstream: &str, dir: &std::path::Path) -> (Flagd, String) {
    let upstream = format!("http://{}", listening_on(upstream, "grpc"));
    let cache = dir.join("relay.cache");
    let args = ["relay", "--upstream", &upstream, "--cache", cache.to_str().unwrap()];
    let (child, line) = spawn_flagd(args.iter().chain(&ANY_PORTS).map(std::ffi::OsStr::new));
    (Flagd(child), line)
}

async fn clients_agree(language: Language, mode: Mode) {
    clients_agree_via(language, mode, Via::Flagd).await;
}

async fn clients_agree_via(language: Language, mode: Mode, via: Via) {
    let _one = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let (_flagd, listening) = flagd_with_flags(dir.path()).await;
    let (_relay, served) = match via {
        Via::Flagd => (None, listening.clone()),
        Via::Relay => {
            let (relay, line) = relay_of(&listening, dir.path());
            (Some(relay), line)
        }
    };
    let port_of = match mode {
        Mode::Rpc => "grpc",
        Mode::InProcess => "sync",
        Mode::Ofrep => "ofrep",
    };
    let mut client = Client::start(language, mode, listening_on(&served, port_of).port());
    if via == Via::Relay {
        client.name.push_str(" via a relay");
    }
    let name = client.name.clone();

    if mode == Mode::InProcess {
        // In-process providers evaluate flagd's flag JSON themselves: without it, every
        // check below would fail for one reason, said here once.
        let probe = client.ask_one(Question::new("greeting", "string", json!("default"), user("alice")));
        assert_ne!(
            probe.error_code.as_deref(),
            Some("FLAG_NOT_FOUND"),
            "{name}: flagd's in-process sync did not serve greeting: the flag JSON lacks it; {probe:?}"
        );
    }
    let alice = user("alice");
    // A type mismatch, asked first: the JavaScript RPC provider caches a STATIC answer under
    // the flag key alone and would hand a later boolean question the cached string.
    let mismatch = client.ask_one(Question::new("greeting", "bool", json!(false), alice.clone()));
    check_error(&client, &mismatch, "greeting (asked as bool)", json!(false), "TYPE_MISMATCH");

    // Every value type, for one user with no attributes.
    let asked = [
        Question::new("greeting", "string", json!("default"), alice.clone()),
        Question::new("limit", "int", json!(1), alice.clone()),
        Question::new("ratio", "float", json!(0.75), alice.clone()),
        Question::new("layout", "object", json!({}), alice.clone()),
        Question::new("beta", "bool", json!(true), alice.clone()),
    ];
    let answers = client.ask(&asked);
    check_value(&client, &answers[0], "greeting", json!("hello"), "hello");
    check_value(&client, &answers[1], "limit", json!(42), "large");
    check_value(&client, &answers[2], "ratio", json!(0.25), "quarter");
    check_value(&client, &answers[3], "layout", json!({ "columns": 3, "theme": "dark" }), "grid");
    for (answer, flag) in answers[..4].iter().zip(["greeting", "limit", "ratio", "layout"]) {
        assert_eq!(answer.reason.as_deref(), Some("STATIC"), "{name}, flag {flag}: a fixed flag; {answer:?}");
    }

    // The rule: an attribute decides.
    check_value(&client, &answers[4], "beta", json!(false), "off");
    assert_eq!(answers[4].reason.as_deref(), Some("DEFAULT"), "{name}, flag beta: no rule matched");
    let pro = client.ask_one(Question::new(
        "beta",
        "bool",
        json!(false),
        json!({ "targetingKey": "bob", "plan": "pro" }),
    ));
    check_value(&client, &pro, "beta", json!(true), "on");
    assert_eq!(pro.reason.as_deref(), Some("TARGETING_MATCH"), "{name}, flag beta: the rule matched");

    // A number clause: numbers compare alike everywhere. Ours reads the string "30" as a
    // number (RPC, OFREP); in-process, where engines read strings differently, the export
    // answers it with an error, so the caller's default.
    let adult = |age: Json| {
        Question::new("adult", "bool", json!(false), json!({ "targetingKey": "carol", "age": age }))
    };
    let ages = client.ask(&[adult(json!(30)), adult(json!(12)), adult(json!("30"))]);
    check_value(&client, &ages[0], "adult (30)", json!(true), "on");
    check_value(&client, &ages[1], "adult (12)", json!(false), "off");
    if mode == Mode::InProcess {
        check_error(&client, &ages[2], "adult (\"30\")", json!(false), "GENERAL");
    } else {
        check_value(&client, &ages[2], "adult (\"30\")", json!(true), "on");
    }

    // The split: each key lands where our evaluator puts it.
    let snapshot = FlagSet { flags: flags(), segments: vec![] }.compile().unwrap();
    let keys: Vec<String> = (0..SPLIT_KEYS).map(|n| format!("user-{n}")).collect();
    // In-process, a provider hashes as its own flagd version does; over the wire flagd
    // evaluates, so both bucketings must match there.
    let splits: &[&str] = match (language, mode) {
        (Language::Python, Mode::InProcess) => &["launch-v3"],
        (Language::JavaScript, Mode::InProcess) => &["launch"],
        _ => &["launch", "launch-v3"],
    };
    for &flag in splits {
        let expected: Vec<(Json, String)> = keys.iter().map(|key| ours(&snapshot, flag, key)).collect();
        let variants: std::collections::BTreeSet<&str> = expected.iter().map(|(_, v)| v.as_str()).collect();
        assert!(variants.len() == 3, "{flag}: the split's keys reach on, dark and off: {variants:?}");
        let split: Vec<Question> =
            keys.iter().map(|key| Question::new(flag, "bool", json!(true), user(key))).collect();
        for ((key, answer), (value, variant)) in keys.iter().zip(client.ask(&split)).zip(expected) {
            assert!(
                answer.value == value && answer.variant.as_deref() == Some(variant.as_str()),
                "{name}, flag {flag}, key {key}: ours serves {variant} ({value}); {answer:?}"
            );
            assert_eq!(answer.reason.as_deref(), Some("TARGETING_MATCH"), "{name}, flag {flag}, key {key}");
        }
    }

    // The killed flag: its off variant over the wire; in-process flagd says DISABLED and the
    // provider answers the caller's default.
    let killed = client.ask_one(Question::new("legacy", "bool", json!(true), alice.clone()));
    assert_eq!(killed.reason.as_deref(), Some("DISABLED"), "{name}, flag legacy: killed; {killed:?}");
    if mode == Mode::InProcess {
        assert_eq!(killed.value, json!(true), "{name}, flag legacy: the caller's default; {killed:?}");
    } else {
        check_value(&client, &killed, "legacy", json!(false), "off");
    }

    // An unknown flag.
    let unknown = client.ask_one(Question::new("no-such-flag", "string", json!("fallback"), alice.clone()));
    check_error(&client, &unknown, "no-such-flag", json!("fallback"), "FLAG_NOT_FOUND");

    // A change while connected reaches the provider's next evaluations within a second.
    let endpoint = format!("http://{}", listening_on(&listening, "grpc"));
    let mut admin = v1::admin_client::AdminClient::connect(endpoint).await.unwrap();
    let mut greeting: Flag = serde_yaml_ng::from_str(FLAGS[1]).unwrap();
    greeting.default = flag_core::Serve::Variant("bonjour".into());
    admin.put_flag(put("", v1::Flag::from(&greeting), None, "say bonjour")).await.unwrap();
    let question = Question::new("greeting", "string", json!("default"), alice);
    let (seen, ms) = client.await_value(question, json!("bonjour"), Duration::from_secs(1));
    assert!(seen, "{name}, flag greeting: the new version within 1 s (waited {ms} ms)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_rpc() {
    clients_agree(Language::Python, Mode::Rpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_in_process() {
    clients_agree(Language::Python, Mode::InProcess).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_ofrep() {
    clients_agree(Language::Python, Mode::Ofrep).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn javascript_rpc() {
    clients_agree(Language::JavaScript, Mode::Rpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn javascript_in_process() {
    clients_agree(Language::JavaScript, Mode::InProcess).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn javascript_ofrep() {
    clients_agree(Language::JavaScript, Mode::Ofrep).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_rpc_via_a_relay() {
    clients_agree_via(Language::Python, Mode::Rpc, Via::Relay).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_in_process_via_a_relay() {
    clients_agree_via(Language::Python, Mode::InProcess, Via::Relay).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_ofrep_via_a_relay() {
    clients_agree_via(Language::Python, Mode::Ofrep, Via::Relay).await;
}
