//! `flagctl env list | create | describe | delete`.

use flag_core::EnvironmentSummary;
use flag_proto::{Authorship, Deleted, EnvironmentInfo, v1};
use serde::Serialize;

use crate::cli::EnvCommand;
use crate::connect::Server;
use crate::output::Output;
use crate::render::{self, Entry};

/// An environment, for people and for `--json`.
#[derive(Debug, Serialize)]
struct Shown {
    name: String,
    revision: u64,
    flags: u64,
    segments: u64,
    last_change: Option<Entry>,
    created: Option<Event>,
    copied_from: Option<String>,
    deleted: Option<Event>,
    /// Only `describe` asks the server who streams it.
    #[serde(skip_serializing_if = "Option::is_none")]
    connected_sdks: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
struct Event {
    actor: String,
    reason: String,
    time: String,
}

pub(crate) async fn run(
    server: &Server,
    out: &Output,
    command: EnvCommand,
    change: Authorship,
) -> anyhow::Result<()> {
    match command {
        EnvCommand::List { deleted } => list(server, out, deleted).await,
        EnvCommand::Create { name, from, change: _ } => {
            create(server, out, &name, from.as_deref(), change).await
        }
        EnvCommand::Describe { name } => describe(server, out, &name).await,
        EnvCommand::Delete { name, force, change: _ } => delete(server, out, &name, force, change).await,
    }
}

async fn list(server: &Server, out: &Output, include_deleted: bool) -> anyhow::Result<()> {
    let request = server.request(v1::ListEnvironmentsRequest { include_deleted });
    let listed =
        server.admin.clone().list_environments(request).await.map_err(|status| server.failed(status))?;
    let shown: Vec<Shown> = flag_proto::environments_from_proto(listed.into_inner())?
        .into_iter()
        .map(|info| shown(info, false))
        .collect();
    out.print(&shown, || {
        let mut lines = vec![format!("{:<24} {:>6} {:>9}  last change", "environment", "flags", "revision")];
        for environment in &shown {
            let last = match (&environment.deleted, &environment.last_change) {
                (Some(deleted), _) => {
                    format!("deleted {} by {}{}", deleted.time, deleted.actor, why(&deleted.reason))
                }
                (None, Some(entry)) => {
                    format!(
                        "{} {} {} by {}{}",
                        entry.time,
                        entry.operation,
                        entry.key,
                        entry.actor,
                        why(&entry.reason)
                    )
                }
                (None, None) => "none yet".to_owned(),
            };
            lines.push(format!(
                "{:<24} {:>6} {:>9}  {last}",
                environment.name, environment.flags, environment.revision
            ));
        }
        lines.join("\n")
    })
}

async fn create(
    server: &Server,
    out: &Output,
    name: &str,
    from: Option<&str>,
    change: Authorship,
) -> anyhow::Result<()> {
    let target = server.in_environment(name);
    let request = target.request(flag_proto::create_environment_request(name, from, change));
    let created =
        target.admin.clone().create_environment(request).await.map_err(|status| target.failed(status))?;
    let shown = shown(EnvironmentInfo::try_from(created.into_inner())?, false);
    out.print(&shown, || match &shown.copied_from {
        Some(source) => format!(
            "created {} as a copy of {source}: {}, {}, revision {}",
            shown.name,
            counted(shown.flags, "flag"),
            counted(shown.segments, "segment"),
            shown.revision
        ),
        None => format!(
            "created {} (empty): `flagctl --env {} set KEY --percent N` adds a flag",
            shown.name, shown.name
        ),
    })
}

async fn describe(server: &Server, out: &Output, name: &str) -> anyhow::Result<()> {
    let target = server.in_environment(name);
    let request = target.request(v1::DescribeEnvironmentRequest { name: name.to_owned() });
    let described =
        target.admin.clone().describe_environment(request).await.map_err(|status| target.failed(status))?;
    let shown = shown(EnvironmentInfo::try_from(described.into_inner())?, true);
    out.print(&shown, || {
        let mut lines = vec![
            format!("environment  {}", shown.name),
            format!("flags        {}", shown.flags),
            format!("segments     {}", shown.segments),
            format!("revision     {}", shown.revision),
        ];
        if let Some(entry) = &shown.last_change {
            lines.push(format!("last change  {}", entry.line(true)));
        }
        match &shown.created {
            Some(created) => lines.push(format!(
                "created      {} by {}{}",
                created.time,
                created.actor,
                why(&created.reason)
            )),
            None => lines.push("created      by its first write".to_owned()),
        }
        if let Some(source) = &shown.copied_from {
            lines.push(format!("copied from  {source}"));
        }
        if let Some(deleted) = &shown.deleted {
            lines.push(format!("deleted      {} by {}{}", deleted.time, deleted.actor, why(&deleted.reason)));
        }
        let connected = shown.connected_sdks.as_deref().unwrap_or_default();
        lines.push(match connected {
            [] => "sdks         none connected".to_owned(),
            names => format!("sdks         {} connected: {}", names.len(), names.join(", ")),
        });
        lines.join("\n")
    })
}

/// What `delete` reports.
#[derive(Debug, Serialize)]
struct DeletedShown {
    environment: String,
    revision: u64,
    deleted_flags: Vec<String>,
    deleted_segments: Vec<String>,
    disconnected_sdks: Vec<String>,
}

async fn delete(
    server: &Server,
    out: &Output,
    name: &str,
    force: bool,
    change: Authorship,
) -> anyhow::Result<()> {
    let target = server.in_environment(name);
    let request = target.request(flag_proto::delete_environment_request(name, force, change));
    let answer =
        target.admin.clone().delete_environment(request).await.map_err(|status| target.failed(status))?;
    let Deleted { revision, deleted, disconnected } = Deleted::try_from(answer.into_inner())?;
    let keys = |kind: flag_core::SubjectKind| -> Vec<String> {
        deleted.iter().filter(|change| change.kind == kind).map(|change| change.key.clone()).collect()
    };
    let shown = DeletedShown {
        environment: name.to_owned(),
        revision,
        deleted_flags: keys(flag_core::SubjectKind::Flag),
        deleted_segments: keys(flag_core::SubjectKind::Segment),
        disconnected_sdks: disconnected,
    };
    out.print(&shown, || {
        let mut text = format!(
            "deleted {} at revision {}: {}, {}; its history stays (`flagctl --env {} log`)",
            shown.environment,
            shown.revision,
            counted(shown.deleted_flags.len() as u64, "flag"),
            counted(shown.deleted_segments.len() as u64, "segment"),
            shown.environment
        );
        if !shown.disconnected_sdks.is_empty() {
            text.push_str(&format!(
                "\nended the streams of {} SDK(s): {}",
                shown.disconnected_sdks.len(),
                shown.disconnected_sdks.join(", ")
            ));
        }
        text
    })
}

fn shown(info: EnvironmentInfo, with_connected: bool) -> Shown {
    let EnvironmentInfo { summary, connected } = info;
    let EnvironmentSummary { name, revision, flags, segments, last_change, created, copied_from, deleted } =
        summary;
    let event = |stamp: flag_core::Stamp| Event {
        actor: stamp.actor,
        reason: stamp.reason,
        time: render::time(stamp.timestamp_ms),
    };
    Shown {
        name,
        revision,
        flags,
        segments,
        last_change: last_change.map(Entry::of),
        created: created.map(event),
        copied_from: copied_from.map(|copied| format!("{}@r{}", copied.environment, copied.revision)),
        deleted: deleted.map(event),
        connected_sdks: with_connected.then_some(connected),
    }
}

/// `1 flag`, `2 flags`.
fn counted(n: u64, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

fn why(reason: &str) -> String {
    if reason.is_empty() { String::new() } else { format!(": {reason:?}") }
}
