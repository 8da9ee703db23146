//! The web console over plain HTTP against a real flagd: sign-in and its cookie, CSRF on
//! every write, roles enforced by the server whatever the page shows, the actor in history,
//! and `--no-ui`. The browser tests (`console_browser.rs`) drive the same pages in Chromium.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use flag_proto::v1;
use support::{TestServer, http_request, write_tokens};

const ADMIN: &str = "admin-secret-0123456789";
const READER: &str = "reader-secret-0123456789";
const STAGER: &str = "stager-secret-0123456789";

struct Console {
    server: TestServer,
    _dir: tempfile::TempDir,
}

async fn start(console: bool) -> Console {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.yaml");
    write_tokens(
        &tokens,
        &[
            ("ops", ADMIN, "admin", "[\"*\"]"),
            ("auditor", READER, "reader", "[\"*\"]"),
            ("stager", STAGER, "writer", "[staging]"),
        ],
    );
    let mut config = flagd::Config::new(support::data_file(dir.path()))
        .with_tokens_file(&tokens)
        .with_environments(["production", "staging"]);
    config.console = console;
    let server = TestServer::start(config).await;
    let mut admin = server.admin_with_token(ADMIN).await;
    for environment in ["production", "staging"] {
        let request = v1::SetRolloutRequest {
            environment: environment.into(),
            key: "chat".into(),
            percent: 5.0,
            create_if_missing: true,
            ..Default::default()
        };
        admin.set_rollout(request).await.unwrap();
    }
    Console { server, _dir: dir }
}

impl Console {
    async fn get(&self, path: &str, cookie: &str) -> (u16, String, String) {
        let cookie = format!("flagd_session={cookie}");
        http_request(self.server.management, "GET", path, &[("Cookie", &cookie)], "").await
    }

    async fn post(&self, path: &str, cookie: &str, form: &str) -> (u16, String, String) {
        let cookie = format!("flagd_session={cookie}");
        let headers = [("Cookie", cookie.as_str()), ("Content-Type", "application/x-www-form-urlencoded")];
        http_request(self.server.management, "POST", path, &headers, form).await
    }

    /// Signs in with `token`: the session cookie's value and its CSRF token.
    async fn sign_in(&self, token: &str) -> (String, String) {
        let (status, head, _) = self.post("/ui/login", "", &format!("token={token}&next=/ui/flags")).await;
        assert_eq!(status, 303, "{head}");
        let cookie = set_cookie(&head).expect("a session cookie");
        let value = cookie.split(';').next().unwrap().trim_start_matches("flagd_session=").to_owned();
        let (_, _, page) = self.get("/ui/flags", &value).await;
        let csrf = page
            .split("name=\"csrf-token\" content=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_owned();
        (value, csrf)
    }

    async fn flag(&self, environment: &str) -> flag_core::Flag {
        let mut admin = self.server.admin_with_token(ADMIN).await;
        let request = v1::GetFlagRequest { environment: environment.into(), key: "chat".into() };
        flag_core::Flag::try_from(admin.get_flag(request).await.unwrap().into_inner().flag.unwrap()).unwrap()
    }
}

fn set_cookie(head: &str) -> Option<String> {
    head.lines().find_map(|line| line.strip_prefix("set-cookie: ").map(str::to_owned))
}

#[tokio::test]
async fn signing_in_gives_a_strict_http_only_session_that_every_page_needs() {
    let console = start(true).await;
    let (status, head, _) = console.get("/ui/flags/chat", "").await;
    assert_eq!(status, 303);
    assert!(head.contains("location: /ui/login?next=/ui/flags/chat"), "{head}");

    let (status, _, page) = console.post("/ui/login", "", "token=wrong&next=/ui/flags").await;
    assert_eq!(status, 401);
    assert!(page.contains("the token is not valid"), "{page}");

    let (status, head, _) = console.post("/ui/login", "", &format!("token={ADMIN}&next=/ui/flags")).await;
    assert_eq!(status, 303);
    let cookie = set_cookie(&head).unwrap();
    assert!(
        cookie.contains("; HttpOnly")
            && cookie.contains("; SameSite=Strict")
            && cookie.contains("; Path=/ui")
    );
    assert!(!cookie.contains("Secure"), "no TLS here: {cookie}");

    let session = cookie.split(';').next().unwrap().trim_start_matches("flagd_session=");
    let (status, head, page) = console.get("/ui/flags", session).await;
    assert_eq!(status, 200);
    assert!(head.contains("content-security-policy: default-src 'self'"), "{head}");
    assert!(page.contains("id=\"flag-chat\"") && page.contains("5% on, 95% off"), "{page}");
    console.server.stop().await;
}

#[tokio::test]
async fn a_write_without_the_session_csrf_token_is_refused_and_changes_nothing() {
    let console = start(true).await;
    let (session, csrf) = console.sign_in(ADMIN).await;
    for form in ["environment=production&reason=forged", "environment=production&reason=forged&csrf=00ff"] {
        let (status, _, page) = console.post("/ui/flags/chat/kill", &session, form).await;
        assert_eq!(status, 403, "{page}");
        assert!(page.contains("CSRF token is missing or wrong"), "{page}");
    }
    assert!(console.flag("production").await.enabled, "a refused kill changed the flag");

    let form = format!("csrf={csrf}&environment=production&reason=incident 4711");
    let (status, _, page) = console.post("/ui/flags/chat/kill", &session, &form).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("0/0 SDKs acknowledged"), "{page}");
    assert!(!console.flag("production").await.enabled);

    let mut admin = console.server.admin_with_token(ADMIN).await;
    let request =
        v1::FlagHistoryRequest { environment: "production".into(), key: "chat".into(), ..Default::default() };
    let newest = admin.flag_history(request).await.unwrap().into_inner().entries.remove(0);
    assert_eq!((newest.actor.as_str(), newest.reason.as_str()), ("ops", "incident 4711"));
    console.server.stop().await;
}

#[tokio::test]
async fn a_reader_is_offered_no_kill_button_and_its_kill_is_refused() {
    let console = start(true).await;
    let (session, csrf) = console.sign_in(READER).await;
    let (status, _, page) = console.get("/ui/flags/chat", &session).await;
    assert_eq!(status, 200);
    assert!(page.contains("5% on, 95% off"), "{page}");
    assert!(!page.contains("class=\"kill\""), "a reader sees a kill form: {page}");

    let form = format!("csrf={csrf}&environment=production&reason=curious");
    let (status, _, page) = console.post("/ui/flags/chat/kill", &session, &form).await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("auditor") && page.contains("may not write environment"), "{page}");
    assert!(console.flag("production").await.enabled);
    console.server.stop().await;
}

#[tokio::test]
async fn a_staging_writer_changes_staging_and_is_refused_production() {
    let console = start(true).await;
    let (session, csrf) = console.sign_in(STAGER).await;
    let (_, _, page) = console.get("/ui/flags/chat", &session).await;
    assert!(page.contains("data-kill=\"staging\""), "{page}");
    assert!(!page.contains("data-kill=\"production\""), "{page}");

    let production = format!("csrf={csrf}&environment=production&percent=50&reason=bold");
    let (status, _, page) = console.post("/ui/flags/chat/rollout", &session, &production).await;
    assert_eq!(status, 403, "{page}");
    assert!(
        page.contains("principal &quot;stager&quot;")
            && page.contains("write environment &quot;production&quot;"),
        "{page}"
    );
    assert_eq!(flag_core::state_text(&console.flag("production").await), "5% on, 95% off");

    let staging = format!("csrf={csrf}&environment=staging&percent=50&reason=try");
    let (status, head, _) = console.post("/ui/flags/chat/rollout", &session, &staging).await;
    assert_eq!(status, 303, "{head}");
    assert_eq!(flag_core::state_text(&console.flag("staging").await), "50% on, 50% off");
    console.server.stop().await;
}

#[tokio::test]
async fn signing_out_ends_the_session() {
    let console = start(true).await;
    let (session, csrf) = console.sign_in(ADMIN).await;
    let (status, head, _) = console.post("/ui/logout", &session, &format!("csrf={csrf}")).await;
    assert_eq!(status, 303);
    assert!(set_cookie(&head).unwrap().contains("Max-Age=0"), "{head}");
    let (status, _, _) = console.get("/ui/flags", &session).await;
    assert_eq!(status, 303, "the old cookie still works");
    console.server.stop().await;
}

#[tokio::test]
async fn no_ui_leaves_only_the_management_endpoints() {
    let console = start(false).await;
    let (status, _, _) = console.get("/ui/login", "").await;
    assert_eq!(status, 404);
    let (status, _, body) = console.get("/healthz", "").await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    console.server.stop().await;
}

#[tokio::test]
async fn restore_to_a_bookmark_shows_its_dry_run_then_restores_and_the_audit_log_shows_it() {
    let console = start(true).await;
    let mut admin = console.server.admin_with_token(ADMIN).await;
    let change = || Some(v1::Change { actor: String::new(), reason: "before the deploy".into() });
    let bookmark = v1::CreateBookmarkRequest {
        environment: "production".into(),
        name: "pre-deploy".into(),
        change: change(),
    };
    admin.create_bookmark(bookmark).await.unwrap();
    let ramp = v1::SetRolloutRequest {
        environment: "production".into(),
        key: "chat".into(),
        percent: 60.0,
        ..Default::default()
    };
    admin.set_rollout(ramp).await.unwrap();
    let (session, csrf) = console.sign_in(ADMIN).await;

    let (status, _, page) = console.get("/ui/environments", &session).await;
    assert_eq!(status, 200);
    assert!(page.contains("pre-deploy") && page.contains("bookmark=pre-deploy"), "{page}");
    let (status, _, preview) =
        console.get("/ui/environments/restore?environment=production&bookmark=pre-deploy", &session).await;
    assert_eq!(status, 200, "{preview}");
    assert!(preview.contains("flag <code>chat</code> — update") && preview.contains("60000"), "{preview}");
    assert_eq!(
        flag_core::state_text(&console.flag("production").await),
        "60% on, 40% off",
        "the dry run wrote"
    );
    let expected =
        preview.split("name=\"expected_revision\" value=\"").nth(1).unwrap().split('"').next().unwrap();

    let form = format!(
        "csrf={csrf}&environment=production&bookmark=pre-deploy&expected_revision={expected}&reason=bad deploy"
    );
    let (status, head, _) = console.post("/ui/environments/restore", &session, &form).await;
    assert_eq!(status, 303, "{head}");
    assert_eq!(flag_core::state_text(&console.flag("production").await), "5% on, 95% off");
    // The same confirmation again is refused: the environment moved past what was shown.
    let (status, _, page) = console.post("/ui/environments/restore", &session, &form).await;
    assert_eq!(status, 409, "{page}");

    let (_, _, log) = console.get("/ui/audit?environment=production&flag=chat&actor=ops", &session).await;
    assert!(log.contains("bad deploy") && log.contains("before / after"), "{log}");
    let (_, _, none) = console.get("/ui/audit?environment=production&actor=nobody", &session).await;
    assert!(none.contains("no changes match"), "{none}");
    let (status, _, bad) = console.get("/ui/audit?since=yesterday", &session).await;
    assert_eq!(status, 400);
    assert!(bad.contains("expected YYYY-MM-DDTHH:MM (UTC)"), "{bad}");
    console.server.stop().await;
}

#[tokio::test]
async fn the_diff_of_two_environments_names_each_differing_field() {
    let console = start(true).await;
    let mut admin = console.server.admin_with_token(ADMIN).await;
    let ramp = v1::SetRolloutRequest {
        environment: "staging".into(),
        key: "chat".into(),
        percent: 50.0,
        ..Default::default()
    };
    admin.set_rollout(ramp).await.unwrap();
    let (session, _) = console.sign_in(READER).await;
    let (status, _, page) = console.get("/ui/environments?from=production&to=staging", &session).await;
    assert_eq!(status, 200, "{page}");
    let diff = page.split("id=\"environment-diff\"").nth(1).unwrap();
    assert!(
        diff.contains("chat") && diff.contains("default.split.weights") && diff.contains("50000"),
        "{diff}"
    );
    // A reader is offered no restore.
    assert!(!page.contains("Restore…"), "{page}");
    console.server.stop().await;
}

/// Reads `path`'s event stream until `needle` arrives (or `WAIT` passes): what was read.
async fn events_until(console: &Console, path: &str, session: &str, needle: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(console.server.management).await.unwrap();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nCookie: flagd_session={session}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut read = Vec::new();
    let deadline = tokio::time::Instant::now() + support::WAIT;
    while !String::from_utf8_lossy(&read).contains(needle) {
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => read.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&read).into_owned()
}

#[tokio::test]
async fn a_principal_sees_and_follows_only_the_environments_it_may_read() {
    let console = start(true).await;
    let (session, _) = console.sign_in(STAGER).await;
    let (_, _, table) = console.get("/ui/flags", &session).await;
    assert!(table.contains("data-environment=\"staging\""), "{table}");
    assert!(!table.contains("data-environment=\"production\""), "a staging writer sees production: {table}");
    let (_, _, page) = console.get("/ui/flags/chat", &session).await;
    assert!(!page.contains("production"), "{page}");
    let (_, _, sdks) = console.get("/ui/sdks", &session).await;
    assert!(!sdks.contains("data-environment=\"production\""), "{sdks}");
    let (status, _, _) = console.get("/ui/acks?environment=production&revision=1", &session).await;
    assert_eq!(status, 403);

    // The change feed: a production change is not sent to it, the staging one after it is.
    let follow = {
        let session = session.clone();
        let console = &console;
        async move {
            events_until(console, "/ui/events?since=staging:1", &session, "\"environment\":\"staging\"").await
        }
    };
    let changes = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let mut admin = console.server.admin_with_token(ADMIN).await;
        for environment in ["production", "staging"] {
            let ramp = v1::SetRolloutRequest {
                environment: environment.into(),
                key: "chat".into(),
                percent: 40.0,
                ..Default::default()
            };
            admin.set_rollout(ramp).await.unwrap();
        }
    };
    let (events, ()) = tokio::join!(follow, changes);
    assert!(events.contains("event: flag") && events.contains("\"environment\":\"staging\""), "{events}");
    assert!(!events.contains("production"), "a production change reached a staging writer: {events}");
    console.server.stop().await;
}
