//! Writes that change one flag: set, revive, delete, rollback.

use anyhow::Context as _;
use flag_core::{RolloutError, Split, percent_to_weight};
use flag_proto::{Authorship, HistoryPage, InvalidMessage, Restore, Rollout, Written};
use serde::Serialize;

use crate::cli::{KeyWriteArgs, RollbackArgs, SetArgs};
use crate::connect::{Server, Wrote};
use crate::failure::Failure;
use crate::output::Output;
use crate::reads::MALFORMED;
use crate::render::WriteReport;

/// A write's answer as its report.
fn written<R>(response: R) -> anyhow::Result<WriteReport>
where
    Written: TryFrom<R, Error = InvalidMessage>,
{
    Ok(WriteReport::of(&Written::try_from(response).context(MALFORMED)?))
}

fn report<R>(out: &Output, response: R, verb: impl FnOnce(&WriteReport) -> &'static str) -> anyhow::Result<()>
where
    Written: TryFrom<R, Error = InvalidMessage>,
{
    let written = written(response)?;
    out.print(&written, || written.line(verb(&written)))
}

pub(crate) async fn set(
    server: &Server,
    out: &Output,
    args: SetArgs,
    change: Authorship,
) -> anyhow::Result<()> {
    let SetArgs { key, percent, dark, on, off, variant, expect_version, change: _ } = args;
    let mut admin = server.admin.clone();
    let requests = server.requests();
    let response = if let Some(variant) = variant {
        let request = requests.serve_variant(&key, &variant, expect_version, change);
        admin.serve_variant(server.request(request)).await
    } else {
        // --on and --off keep the rollout shape, so a later --percent ramps from there.
        let (percent, dark_percent) = match (percent, on, off) {
            (Some(percent), _, _) => (percent, dark),
            (None, true, _) => (100.0, Some(100.0)),
            (None, _, _) => (0.0, Some(0.0)),
        };
        check_percentages(percent, dark_percent)?;
        let rollout = Rollout { percent, dark_percent, create_if_missing: true };
        let request = requests.set_rollout(&key, rollout, expect_version, change);
        admin.set_rollout(server.request(request)).await
    };
    let response = response.wrote(server, &format!("setting {key}")).await?;
    let written = written(response)?;
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
    args: KeyWriteArgs,
    change: Authorship,
) -> anyhow::Result<()> {
    key_write(server, out, args.key, change, KeyWrite::Revive).await
}

pub(crate) async fn delete(
    server: &Server,
    out: &Output,
    args: KeyWriteArgs,
    change: Authorship,
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
    change: Authorship,
    write: KeyWrite,
) -> anyhow::Result<()> {
    let (requests, mut admin) = (server.requests(), server.admin.clone());
    let (doing, done, response) = match write {
        KeyWrite::Revive => {
            let request = requests.revive(&key, None, change);
            ("reviving", "revived", admin.revive(server.request(request)).await)
        }
        KeyWrite::Delete => {
            let request = requests.delete_flag(&key, None, change);
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
    change: Authorship,
) -> anyhow::Result<()> {
    let RollbackArgs { key, to, allow_revive, change: _ } = args;
    let request = server.requests().rollback(&key, Restore { to_version: to, allow_revive }, None, change);
    let response = server
        .admin
        .clone()
        .rollback(server.request(request))
        .await
        .wrote(server, &format!("rolling back {key}"))
        .await?;
    let written = written(response)?;
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
    written: WriteReport,
    restored: u64,
    /// The flag was killed and stays killed, though the version restored was not.
    kept_killed: bool,
}

/// Whether version `version` of `key` was switched on; `None` when it cannot be read.
async fn enabled_at(server: &Server, key: &str, version: u64) -> Option<bool> {
    let request = server.requests().flag_history(key, 1, version + 1);
    let history = server.admin.clone().flag_history(server.request(request)).await.ok()?.into_inner();
    let history = HistoryPage::try_from(history).ok()?;
    let entry = history.entries.into_iter().next().filter(|entry| entry.version == version)?;
    Some(entry.flag?.enabled)
}
