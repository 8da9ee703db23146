//! Writes that change one flag: set, revive, delete, rollback.

use flag_core::{Flag, RolloutError, Split, percent_to_weight};
use flag_proto::v1;
use serde::Serialize;

use super::Output;
use crate::cli::{KeyArgs, RollbackArgs, SetArgs};
use crate::connect::{Server, Wrote};
use crate::failure::Failure;
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
    /// The on and dark shares of a dark launch with a dark cohort (`5%`, `45%`).
    #[serde(skip)]
    pub(crate) dark: Option<(String, String)>,
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
            dark: flag.as_ref().and_then(render::dark_cohort),
        }
    }

    /// `created chat (version 1, revision 7): 5% on, 95% off`.
    fn line(&self, verb: &str) -> String {
        self.line_with(verb, "", true)
    }

    fn line_with(&self, verb: &str, detail: &str, revive_hint: bool) -> String {
        let state = self.state.as_deref().map(|s| format!(": {s}")).unwrap_or_default();
        let mut line = format!(
            "{verb} {}{detail} (version {}, revision {}){state}",
            self.key, self.version, self.revision
        );
        if self.enabled == Some(false) && revive_hint {
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
        check_percentages(percent, dark_percent)?;
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
    let written = Written::from_response(response);
    let verb = if written.operation == "create" { "created" } else { "set" };
    out.print(&written, || {
        let mut line = written.line(verb);
        // A dark cohort kept from an earlier --dark: say so, since a ramp-down leaves it running.
        if let (Some(percent), None, Some((on, dark))) = (percent, dark, written.dark.as_ref()) {
            line.push_str(&format!(
                "\n  {on} on, {dark} dark: they still run the new path in the shadow; --dark {percent} stops that"
            ));
        }
        line
    })
}

/// The checks flag-core makes, before asking: the message names the option.
fn check_percentages(percent: f64, dark: Option<f64>) -> Result<(), Failure> {
    let invalid = |option: &str, error: RolloutError| Failure::Invalid(format!("{option}: {error}"));
    percent_to_weight(percent).map_err(|error| invalid("--percent", error))?;
    if let Some(dark) = dark {
        percent_to_weight(dark).map_err(|error| invalid("--dark", error))?;
        Split::dark_launch(percent, dark).map_err(|error| invalid("--dark", error))?;
    }
    Ok(())
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
    let RollbackArgs { key, to, allow_revive } = args;
    let request = v1::RollbackRequest {
        environment: server.environment.clone(),
        key: key.clone(),
        to_version: to,
        expected_version: None,
        change: Some(change),
        allow_revive,
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
    // Killed now though the version restored was live: the kill was kept. History is
    // immutable, so reading that version after the write cannot race.
    let kept_killed = written.enabled == Some(false)
        && !allow_revive
        && enabled_at(server, &key, restored).await.unwrap_or(false);
    let rolled = RolledBack { written, restored, kept_killed };
    out.print(&rolled, || {
        let RolledBack { written, restored, kept_killed } = &rolled;
        let line = written.line_with("rolled back", &format!(" to version {restored}"), !kept_killed);
        if !kept_killed {
            return line;
        }
        format!(
            "{line}\n  {key} stays killed; pass --allow-revive to restore version {restored} switched on, \
             or `flagctl revive {key}` when it is safe"
        )
    })
}

#[derive(Debug, Serialize)]
struct RolledBack {
    #[serde(flatten)]
    written: Written,
    restored: u64,
    /// The flag was killed and stays killed, though the version restored was not.
    kept_killed: bool,
}

/// Whether version `version` of `key` was switched on; `None` when it cannot be read.
async fn enabled_at(server: &Server, key: &str, version: u64) -> Option<bool> {
    let request = v1::FlagHistoryRequest {
        environment: server.environment.clone(),
        key: key.to_owned(),
        page_size: 1,
        before_version: version + 1,
    };
    let history = server.admin.clone().flag_history(server.request(request)).await.ok()?.into_inner();
    let entry = history.entries.into_iter().next().filter(|entry| entry.version == version)?;
    Some(entry.flag?.enabled)
}
