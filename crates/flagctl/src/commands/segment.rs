//! Segments: list, get, put (from a flag file or from options) and delete.
//!
//! A put is checked here first, together with the environment it joins, so a bad segment
//! is refused with the file line (or the option) of each problem before anything is sent;
//! flagd checks it again and the store stays unchanged on any refusal.

use anyhow::Context as _;
use flag_core::{FlagSet, Segment};
use flag_proto::{Authorship, Listed, Written};
use serde::Serialize;

use crate::cli::{FileFormat, SegmentCommand, SegmentPutArgs};
use crate::connect::{Call, Server, Wrote};
use crate::failure::Failure;
use crate::flag_file::{FlagFile, server_path};
use crate::output::Output;
use crate::reads::{self, MALFORMED};
use crate::render::{self, WriteReport};

pub(crate) async fn run(
    server: &Server,
    out: &Output,
    command: SegmentCommand,
    change: Authorship,
) -> anyhow::Result<()> {
    match command {
        SegmentCommand::List => list(server, out).await,
        SegmentCommand::Get { key } => get(server, out, &key).await,
        SegmentCommand::Put(args) => put(server, out, args, change).await,
        SegmentCommand::Delete { key, change: _ } => delete(server, out, &key, change).await,
    }
}

async fn segments(server: &Server) -> anyhow::Result<Vec<Segment>> {
    let request = server.requests().list_segments();
    let response = server
        .admin
        .clone()
        .list_segments(server.request(request))
        .await
        .called(server, "listing segments")?;
    Ok(Listed::<Segment>::try_from(response).context(MALFORMED)?.items)
}

async fn list(server: &Server, out: &Output) -> anyhow::Result<()> {
    let segments = segments(server).await?;
    out.print(&segments, || {
        if segments.is_empty() {
            return format!("no segments in {}", server.environment);
        }
        let width = segments.iter().map(|s| s.key.len()).max().unwrap_or(0).max(3);
        let mut lines = vec![format!(
            "{:<width$}  {:>8}  {:>8}  {:>5}  DESCRIPTION",
            "KEY", "INCLUDED", "EXCLUDED", "RULES"
        )];
        lines.extend(segments.iter().map(|s| {
            let (included, excluded, rules) = (s.included.len(), s.excluded.len(), s.rules.len());
            format!("{:<width$}  {included:>8}  {excluded:>8}  {rules:>5}  {}", s.key, s.description)
        }));
        lines.join("\n")
    })
}

async fn get(server: &Server, out: &Output, key: &str) -> anyhow::Result<()> {
    let segment = segments(server)
        .await?
        .into_iter()
        .find(|segment| segment.key == key)
        .ok_or_else(|| Failure::NotFound(format!("no segment {key:?} in {}", server.environment)))?;
    out.print(&segment, || describe(&segment, &server.environment))
}

fn describe(segment: &Segment, environment: &str) -> String {
    let mut lines = vec![format!("{} ({environment})", segment.key)];
    if !segment.description.is_empty() {
        lines.push(format!("  {}", segment.description));
    }
    let keys = |keys: &[String]| if keys.is_empty() { "none".to_owned() } else { keys.join(", ") };
    lines.push(format!("  included: {}", keys(&segment.included)));
    lines.push(format!("  excluded: {}", keys(&segment.excluded)));
    if segment.rules.is_empty() {
        lines.push("  rules:    none".into());
    }
    for (index, rule) in segment.rules.iter().enumerate() {
        let clauses: Vec<String> = rule.clauses.iter().map(render::clause).collect();
        let label = if index == 0 { "rules:   " } else { "         " };
        lines.push(format!("  {label} {}. {}", index + 1, clauses.join(" and ")));
    }
    lines.join("\n")
}

/// What a put wrote, and how the segment now reads.
#[derive(Debug, Serialize)]
struct Put {
    #[serde(flatten)]
    written: WriteReport,
    segment: Segment,
}

async fn put(server: &Server, out: &Output, args: SegmentPutArgs, change: Authorship) -> anyhow::Result<()> {
    let (_, live) = reads::environment(server).await?;
    let existed = |key: &str| live.segments.iter().any(|segment| segment.key == key);
    let segment = match &args.file {
        Some(path) => from_file(&FlagFile::load(path, Some(FileFormat::Flags), false)?, &live)?,
        None => from_options(args, &live)?,
    };
    let request = server.requests().put_segment(&segment, change);
    let response = server
        .admin
        .clone()
        .put_segment(server.request(request))
        .await
        .wrote(server, &format!("putting segment {}", segment.key))
        .await?;
    let written = WriteReport::of(&Written::try_from(response).context(MALFORMED)?);
    let verb = if existed(&segment.key) { "put segment" } else { "created segment" };
    let put = Put { written, segment };
    out.print(&put, || put.written.line(verb))
}

/// The file's one segment, checked with the environment it joins (problems with file lines).
fn from_file(file: &FlagFile, live: &FlagSet) -> Result<Segment, Failure> {
    let [segment] = file.set.segments.as_slice() else {
        return Err(Failure::Invalid(format!(
            "{}: expected `segments:` with exactly one segment, found {}{}",
            file.name,
            file.set.segments.len(),
            if file.set.flags.is_empty() { "" } else { " (and flags: `apply` puts several at once)" }
        )));
    };
    let joined = joined(segment, live);
    joined.validate().map_err(|error| file.describe(&error, |path| server_path(path, &joined)))?;
    Ok(segment.clone())
}

/// The segment as it is (or a new one) with what the options name changed.
fn from_options(args: SegmentPutArgs, live: &FlagSet) -> Result<Segment, Failure> {
    let SegmentPutArgs { key, file: _, include, exclude, description, change: _ } = args;
    let key = key.unwrap_or_default();
    let mut segment =
        live.segments.iter().find(|segment| segment.key == key).cloned().unwrap_or_else(|| Segment {
            key: key.clone(),
            description: String::new(),
            included: Vec::new(),
            excluded: Vec::new(),
            rules: Vec::new(),
        });
    if include.is_none() && exclude.is_none() && description.is_none() {
        return Err(Failure::Invalid(
            "segment put: expected --include, --exclude or --description, or -f FILE".into(),
        ));
    }
    segment.included = include.unwrap_or(segment.included);
    segment.excluded = exclude.unwrap_or(segment.excluded);
    segment.description = description.unwrap_or(segment.description);
    let joined = joined(&segment, live);
    if let Err(error) = joined.validate() {
        let problems: Vec<String> = error
            .problems
            .iter()
            .map(|problem| format!("  {}: {}", option_of(&problem.path, &joined), problem.message))
            .collect();
        return Err(Failure::Invalid(format!("segment {key:?} is not valid:\n{}", problems.join("\n"))));
    }
    Ok(segment)
}

/// The environment with `segment` in place of its namesake, first: problems in it are then
/// at `segments[0]`, where the file's one segment is, and the others' are named by key.
fn joined(segment: &Segment, live: &FlagSet) -> FlagSet {
    let mut joined = live.clone();
    joined.segments.retain(|existing| existing.key != segment.key);
    joined.segments.insert(0, segment.clone());
    joined
}

/// A problem's path in the segment being put (`segments[0]`), as the option that set it.
fn option_of(path: &str, joined: &FlagSet) -> String {
    let Some(field) = path.strip_prefix("segments[0]") else {
        return server_path(path, joined);
    };
    if field.starts_with(".key") {
        return "KEY".to_owned();
    }
    [(".included", "--include"), (".excluded", "--exclude")]
        .into_iter()
        .find_map(|(name, option)| field.strip_prefix(name).map(|rest| format!("{option}{rest}")))
        .unwrap_or_else(|| format!("segment{field}"))
}

async fn delete(server: &Server, out: &Output, key: &str, change: Authorship) -> anyhow::Result<()> {
    let request = server.requests().delete_segment(key, change);
    let response = server
        .admin
        .clone()
        .delete_segment(server.request(request))
        .await
        .wrote(server, &format!("deleting segment {key}"))
        .await?;
    let written = WriteReport::of(&Written::try_from(response).context(MALFORMED)?);
    out.print(&written, || written.line("deleted segment"))
}
