//! Writes that change one flag: set, revive, delete, rollback.

use flag_core::Flag;
use flag_proto::v1;
use serde::Serialize;

use super::Output;
use crate::cli::{KeyArgs, RollbackArgs, SetArgs};
use crate::connect::{Server, Wrote};
use crate::render;

/// What a write did, for people and for `--json`.
#[derive(Debug, Serialize)]
pub(crate) struct Written {
    pub(crate) key: String,
    pub(crate) operation: &'static str,
    pub(crate) version: u64,
    pub(crate) revision: u64,
    /// What the flag now serves; absent after a delete.
    pub(crate) state: Option<String>,
    pub(crate) enabled: Option<bool>,
}

impl Written {
    pub(crate) fn from_response(response: v1::WriteResponse) -> Written {
        let v1::WriteResponse { revision, entry } = response;
        let entry = entry.unwrap_or_default();
        let flag = entry.flag.clone().and_then(|flag| Flag::try_from(flag).ok());
        Written {
            key: entry.key,
            operation: render::operation(entry.operation),
            version: entry.version,
            revision,
            state: flag.as_ref().map(render::state),
            enabled: flag.as_ref().map(|flag| flag.enabled),
        }
    }

    /// `created chat (version 1, revision 7): 5% on, 95% off`.
    fn line(&self, verb: &str) -> String {
        self.line_with(verb, "")
    }

    fn line_with(&self, verb: &str, detail: &str) -> String {
        let state = self.state.as_deref().map(|s| format!(": {s}")).unwrap_or_default();
        let mut line = format!(
            "{verb} {}{detail} (version {}, revision {}){state}",
            self.key, self.version, self.revision
        );
        if self.enabled == Some(false) && verb != "killed" {
            line.push_str(&format!("\n  still killed; `flagctl revive {}` switches it back on", self.key));
        }
        line
    }
}

fn report(
    out: &Output,
    response: v1::WriteResponse,
    verb: impl FnOnce(&Written) -> &'static str,
) -> anyhow::Result<()> {
    let written = Written::from_response(response);
    out.print(&written, || written.line(verb(&written)))
}

pub(crate) async fn set(
    server: &Server,
    out: &Output,
    args: SetArgs,
    change: v1::Change,
) -> anyhow::Result<()> {
    let SetArgs { key, percent, dark, on, off, variant, expect_version } = args;
    let mut admin = server.admin.clone();
    let environment = server.environment.clone();
    let response = if let Some(variant) = variant {
        let request = v1::ServeVariantRequest {
            environment,
            key: key.clone(),
            variant,
            expected_version: expect_version,
            change: Some(change),
        };
        admin.serve_variant(server.request(request)).await
    } else {
        // --on and --off keep the rollout shape, so a later --percent ramps from there.
        let (percent, dark_percent) = match (percent, on, off) {
            (Some(percent), _, _) => (percent, dark),
            (None, true, _) => (100.0, Some(100.0)),
            (None, _, _) => (0.0, Some(0.0)),
        };
        let request = v1::SetRolloutRequest {
            environment,
            key: key.clone(),
            percent,
            dark_percent,
            expected_version: expect_version,
            change: Some(change),
            create_if_missing: true,
        };
        admin.set_rollout(server.request(request)).await
    };
    let response = response.wrote(server, &format!("setting {key}")).await?;
    report(out, response, |w| if w.operation == "create" { "created" } else { "set" })
}

pub(crate) async fn revive(
    server: &Server,
    out: &Output,
    args: KeyArgs,
    change: v1::Change,
) -> anyhow::Result<()> {
    key_write(server, out, args.key, change, KeyWrite::Revive).await
}

pub(crate) async fn delete(
    server: &Server,
    out: &Output,
    args: KeyArgs,
    change: v1::Change,
) -> anyhow::Result<()> {
    key_write(server, out, args.key, change, KeyWrite::Delete).await
}

/// The writes that need only the key.
#[derive(Debug, Clone, Copy)]
enum KeyWrite {
    Revive,
    Delete,
}

async fn key_write(
    server: &Server,
    out: &Output,
    key: String,
    change: v1::Change,
    write: KeyWrite,
) -> anyhow::Result<()> {
    let (environment, change, mut admin) = (server.environment.clone(), Some(change), server.admin.clone());
    let (doing, done, response) = match write {
        KeyWrite::Revive => {
            let request = v1::ReviveRequest { environment, key: key.clone(), expected_version: None, change };
            ("reviving", "revived", admin.revive(server.request(request)).await)
        }
        KeyWrite::Delete => {
            let request =
                v1::DeleteFlagRequest { environment, key: key.clone(), expected_version: None, change };
            ("deleting", "deleted", admin.delete_flag(server.request(request)).await)
        }
    };
    let response = response.wrote(server, &format!("{doing} {key}")).await?;
    report(out, response, |_| done)
}

pub(crate) async fn rollback(
    server: &Server,
    out: &Output,
    args: RollbackArgs,
    change: v1::Change,
) -> anyhow::Result<()> {
    let RollbackArgs { key, to } = args;
    let request = v1::RollbackRequest {
        environment: server.environment.clone(),
        key: key.clone(),
        to_version: to,
        expected_version: None,
        change: Some(change),
    };
    let response = server
        .admin
        .clone()
        .rollback(server.request(request))
        .await
        .wrote(server, &format!("rolling back {key}"))
        .await?;
    let written = Written::from_response(response);
    // Without `--to` the server restores the version before the newest one, which is two
    // before the version this rollback wrote.
    let restored = to.unwrap_or(written.version.saturating_sub(2));
    let detail = format!(" to version {restored}");
    out.print(&written, || written.line_with("rolled back", &detail))
}
