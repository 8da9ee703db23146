use std::time::Duration;

use super::*;

fn with_header(value: &str) -> MetadataMap {
    let mut metadata = MetadataMap::new();
    metadata.insert(flag_proto::AUTHORIZATION_KEY, value.parse().unwrap());
    metadata
}

fn hex(secret: &str) -> String {
    secret_digest(secret.as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect()
}

fn entry(name: &str, secret: &str, role: &str, environments: &str) -> String {
    format!(
        "  - name: {name}\n    sha256: {}\n    role: {role}\n    environments: {environments}\n",
        hex(secret)
    )
}

/// A tokens file in its own directory (kept alive by the returned guard).
fn tokens_file(entries: &[String]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.yaml");
    std::fs::write(&path, format!("principals:\n{}", entries.concat())).unwrap();
    (dir, path)
}

fn name(caller: Result<Caller, RequestError>) -> String {
    match caller.unwrap() {
        Caller::Principal(principal) => principal.name.clone(),
        Caller::Anyone => "anyone".into(),
    }
}

fn refusal(caller: Result<Caller, RequestError>) -> String {
    match caller {
        Err(RequestError::Unauthenticated(message)) => message,
        other => panic!("not refused as unauthenticated: {other:?}"),
    }
}

#[test]
fn tokens_are_checked_per_service() {
    let access = Access::new(Some("admin-secret"), Some("sdk-secret"), None).unwrap();
    let admin = |header: &str| access.authenticate(&with_header(header), Service::Admin);
    let sync = |header: &str| access.authenticate(&with_header(header), Service::Sync);
    assert_eq!(name(admin("Bearer admin-secret")), "admin");
    assert_eq!(name(admin("bearer admin-secret")), "admin");
    let sdk_on_admin = refusal(admin("Bearer sdk-secret"));
    assert!(sdk_on_admin.contains(r#"principal "sdk" is an SDK token"#), "{sdk_on_admin}");
    assert!(refusal(access.authenticate(&MetadataMap::new(), Service::Admin)).contains("Bearer"));
    assert_eq!(name(sync("Bearer sdk-secret")), "sdk");
    assert_eq!(name(sync("Bearer admin-secret")), "admin");
    assert!(refusal(sync("Bearer admin-secre")).contains("not valid"));
    assert!(sync("Basic sdk-secret").is_err());
}

#[test]
fn without_tokens_everything_is_open() {
    let open = Access::new(None, Some(""), None).unwrap();
    assert_eq!(name(open.authenticate(&MetadataMap::new(), Service::Admin)), "anyone");
    assert_eq!(name(open.authenticate(&with_header("Bearer anything"), Service::Sync)), "anyone");
    // One token guards its own service only, as before principals.
    let admin_only = Access::new(Some("admin-secret"), None, None).unwrap();
    assert!(admin_only.authenticate(&MetadataMap::new(), Service::Admin).is_err());
    assert_eq!(name(admin_only.authenticate(&MetadataMap::new(), Service::Sync)), "anyone");
}

#[test]
fn a_tokens_file_closes_both_services_and_each_secret_finds_its_principal() {
    let (_dir, path) = tokens_file(&[
        entry("ci-bot", "bot-secret", "writer", "[staging]"),
        entry("auditor", "audit-secret", "reader", "['*']"),
        entry("web", "web-secret", "sdk", "[production]"),
    ]);
    let access = Access::new(Some("admin-secret"), None, Some(&path)).unwrap();
    for (secret, expected) in [
        ("bot-secret", "ci-bot"),
        ("audit-secret", "auditor"),
        ("web-secret", "web"),
        ("admin-secret", "admin"),
    ] {
        assert_eq!(
            name(access.authenticate(&with_header(&format!("Bearer {secret}")), Service::Sync)),
            expected
        );
    }
    assert_eq!(name(access.authenticate(&with_header("Bearer bot-secret"), Service::Admin)), "ci-bot");
    assert!(access.authenticate(&MetadataMap::new(), Service::Sync).is_err());
    assert!(access.authenticate(&with_header("Bearer web-secre"), Service::Sync).is_err());
    // The hash itself is not a token.
    assert!(
        access.authenticate(&with_header(&format!("Bearer {}", hex("bot-secret"))), Service::Admin).is_err()
    );
}

#[test]
fn a_file_that_cannot_be_used_is_refused_at_start_and_on_reload_keeps_the_principals_in_force() {
    let (_dir, path) = tokens_file(&[entry("ci-bot", "bot-secret", "boss", "[staging]")]);
    let refused = Access::new(None, None, Some(&path)).unwrap_err().to_string();
    assert!(refused.contains("principals[0].role: expected one of admin, writer, reader, sdk"), "{refused}");
    let clash = Access::new(Some("bot-secret"), None, Some(&path));
    assert!(clash.is_err());

    std::fs::write(&path, format!("principals:\n{}", entry("ci-bot", "bot-secret", "writer", "[staging]")))
        .unwrap();
    let access = Access::new(None, None, Some(&path)).unwrap();
    std::fs::write(&path, "principals:\n  - name: ci-bot\n").unwrap();
    let refused = access.reload().unwrap_err().to_string();
    assert!(refused.contains("principals[0].sha256: required"), "{refused}");
    assert_eq!(name(access.authenticate(&with_header("Bearer bot-secret"), Service::Admin)), "ci-bot");

    std::fs::write(&path, format!("principals:\n{}", entry("ci-bot-2", "new-secret", "writer", "[staging]")))
        .unwrap();
    assert_eq!(access.reload().unwrap(), 1);
    assert!(access.authenticate(&with_header("Bearer bot-secret"), Service::Admin).is_err());
    assert_eq!(name(access.authenticate(&with_header("Bearer new-secret"), Service::Admin)), "ci-bot-2");
}

/// Whether `revoked` has completed within a short while, and with what.
async fn revoked_soon(stream: &mut StreamAccess) -> Option<String> {
    tokio::time::timeout(Duration::from_millis(100), stream.revoked())
        .await
        .ok()
        .map(|refusal| refusal.to_string())
}

#[tokio::test]
async fn a_reload_ends_the_streams_of_revoked_and_narrowed_principals_only() {
    let (_dir, path) = tokens_file(&[
        entry("web", "web-secret", "sdk", "[production, staging]"),
        entry("app", "app-secret", "sdk", "[production]"),
        entry("kept", "kept-secret", "sdk", "['*']"),
    ]);
    let access = Access::new(None, None, Some(&path)).unwrap();
    let caller =
        |secret: &str| access.authenticate(&with_header(&format!("Bearer {secret}")), Service::Sync).unwrap();
    let (web, app, kept) = (caller("web-secret"), caller("app-secret"), caller("kept-secret"));
    let denied = access.follow(&app, "staging").unwrap_err().to_string();
    assert_eq!(denied, r#"principal "app" (sdk for production) may not follow environment "staging""#);
    let mut web_staging = access.follow(&web, "staging").unwrap();
    let mut app_production = access.follow(&app, "production").unwrap();
    let mut kept_production = access.follow(&kept, "production").unwrap();
    let mut anyone = Access::new(None, None, None).unwrap().follow(&Caller::Anyone, "production").unwrap();

    // The same principals again: nobody's stream ends.
    access.reload().unwrap();
    for stream in [&mut web_staging, &mut app_production, &mut kept_production, &mut anyone] {
        assert_eq!(revoked_soon(stream).await, None);
    }
    // `web` narrowed to production, `app` revoked, `kept` renamed with the same secret.
    std::fs::write(
        &path,
        format!(
            "principals:\n{}{}",
            entry("web", "web-secret", "sdk", "[production]"),
            entry("kept-renamed", "kept-secret", "sdk", "['*']")
        ),
    )
    .unwrap();
    access.reload().unwrap();
    assert_eq!(
        revoked_soon(&mut web_staging).await.unwrap(),
        r#"principal "web" (sdk for production) may not follow environment "staging""#
    );
    let revoked = revoked_soon(&mut app_production).await.unwrap();
    assert!(revoked.contains(r#"principal "app" is no longer accepted"#), "{revoked}");
    assert_eq!(revoked_soon(&mut kept_production).await, None);
    assert_eq!(revoked_soon(&mut anyone).await, None);
}
