//! `Admin.QueryLog` on the real server: pages followed by their cursor across environments,
//! each entry with its content before, and bad filters refused naming the request field.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use flag_proto::v1;
use support::{TestServer, change, data_file, flag};
use tonic::Code;

fn chat(description: &str) -> v1::Flag {
    let mut chat = flag(
        "
key: chat
variants: [{ name: on, value: true }, { name: off, value: false }]
off_variant: off
default: { variant: off }",
    );
    chat.description = description.into();
    chat
}

fn all(page_size: u32, cursor: &str) -> v1::QueryLogRequest {
    v1::QueryLogRequest { all_environments: true, page_size, cursor: cursor.into(), ..Default::default() }
}

#[tokio::test]
async fn pages_follow_their_cursor_across_environments() {
    let dir = tempfile::tempdir().unwrap();
    let server =
        TestServer::start(flagd::Config::new(data_file(dir.path())).with_environments(["staging"])).await;
    let mut admin = server.admin().await;
    for (environment, description) in [("production", "one"), ("staging", "two"), ("production", "three")] {
        let request = v1::PutFlagRequest {
            environment: environment.into(),
            flag: Some(chat(description)),
            expected_version: None,
            change: change(description),
        };
        admin.put_flag(request).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }

    let (mut seen, mut cursor) = (Vec::new(), String::new());
    loop {
        let page = admin.query_log(all(2, &cursor)).await.unwrap().into_inner();
        assert!(page.entries.len() <= 2);
        for logged in page.entries {
            let entry = logged.entry.unwrap();
            let before = logged.flag_before.map(|flag| flag.description);
            seen.push((entry.environment, entry.revision, entry.reason, before));
        }
        if page.next_cursor.is_empty() {
            break;
        }
        cursor = page.next_cursor;
    }
    let expected = [
        ("production", 2, "three", Some("one")),
        ("staging", 1, "two", None),
        ("production", 1, "one", None),
    ]
    .map(|(environment, revision, reason, before)| {
        (environment.to_owned(), revision, reason.to_owned(), before.map(str::to_owned))
    });
    assert_eq!(seen, expected);
    server.stop().await;
}

#[tokio::test]
async fn bad_filters_are_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(flagd::Config::new(data_file(dir.path()))).await;
    let mut admin = server.admin().await;
    let refusals = [
        (v1::QueryLogRequest { actions: vec!["kill".into(), "explode".into()], ..all(10, "") }, "actions[1]"),
        (
            v1::QueryLogRequest { since_unix_ms: Some(2_000), until_unix_ms: Some(1_000), ..all(10, "") },
            "until_unix_ms",
        ),
        (all(0, ""), "page_size"),
        (all(1001, ""), "page_size"),
        (all(10, "production"), "cursor"),
        (
            v1::QueryLogRequest {
                environment: "staging".into(),
                cursor: "production=3".into(),
                ..all(10, "")
            },
            "all_environments",
        ),
        (
            v1::QueryLogRequest {
                environment: "staging".into(),
                page_size: 10,
                cursor: "production=3".into(),
                ..Default::default()
            },
            "cursor",
        ),
    ];
    for (request, field) in refusals {
        let status = admin.query_log(request.clone()).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{request:?}: {status:?}");
        assert!(status.message().contains(&format!("{field}: ")), "{field}: {}", status.message());
    }
    let listed = admin.query_log(all(10, "")).await.unwrap().into_inner();
    assert!(listed.entries.is_empty() && listed.next_cursor.is_empty(), "{listed:?}");
    server.stop().await;
}
