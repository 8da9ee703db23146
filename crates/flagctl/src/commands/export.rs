//! Export: the environment as a flag file, and the consistent read `apply` plans against.

use anyhow::Context as _;
use flag_core::{Flag, FlagSet, Segment};
use flag_proto::v1;

use crate::cli::{ExportArgs, Format};
use crate::connect::{Call, Server};

/// The environment's flags and segments at one revision.
pub(crate) async fn fetch(server: &Server) -> anyhow::Result<(u64, FlagSet)> {
    let environment = server.environment.clone();
    let mut admin = server.admin.clone();
    // Two reads; a write between them shows as two revisions, and the pair is read again.
    for _ in 0..5 {
        let list = v1::ListFlagsRequest {
            environment: environment.clone(),
            prefix: String::new(),
            tag: String::new(),
        };
        let flags = admin.list_flags(server.request(list)).await.called(server, "listing flags")?;
        let segments_request = v1::ListSegmentsRequest { environment: environment.clone() };
        let segments =
            admin.list_segments(server.request(segments_request)).await.called(server, "listing segments")?;
        if flags.revision == segments.revision {
            let set = FlagSet {
                flags: flags.flags.into_iter().map(Flag::try_from).collect::<Result<_, _>>()?,
                segments: segments.segments.into_iter().map(Segment::try_from).collect::<Result<_, _>>()?,
            };
            return Ok((flags.revision, set));
        }
    }
    anyhow::bail!("the environment kept changing while it was read; try again")
}

/// `flag` without what the store sets itself, as a file holds it.
pub(crate) fn as_in_file(mut flag: Flag) -> Flag {
    flag.version = 0;
    flag.metadata.created_at = None;
    flag.metadata.updated_at = None;
    flag
}

pub(crate) fn to_text(set: &FlagSet, format: Format) -> anyhow::Result<String> {
    Ok(match format {
        Format::Yaml => serde_yaml_ng::to_string(set).context("writing YAML")?,
        Format::Json => serde_json::to_string_pretty(set).context("writing JSON")? + "\n",
    })
}

pub(crate) async fn export(server: &Server, args: ExportArgs, json: bool) -> anyhow::Result<()> {
    let (_, set) = fetch(server).await?;
    let set = FlagSet { flags: set.flags.into_iter().map(as_in_file).collect(), segments: set.segments };
    let format = if json { Format::Json } else { args.format };
    super::line(to_text(&set, format)?.trim_end())
}
