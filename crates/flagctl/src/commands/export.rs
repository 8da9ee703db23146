//! Export: the environment as a flag file.

use anyhow::Context as _;
use flag_core::FlagSet;

use crate::cli::{ExportArgs, Format};
use crate::connect::Server;
use crate::reads;
use crate::render::as_in_file;

fn to_text(set: &FlagSet, format: Format) -> anyhow::Result<String> {
    Ok(match format {
        Format::Yaml => serde_yaml_ng::to_string(set).context("writing YAML")?,
        Format::Json => serde_json::to_string_pretty(set).context("writing JSON")? + "\n",
        Format::Flagd => {
            let exported = openfeature_json::to_flagd(set);
            for left_out in &exported.left_out {
                // On standard error, so the JSON on standard output stays a valid file.
                eprintln!("left out {}: {}", left_out.flag, left_out.why);
            }
            serde_json::to_string_pretty(&exported.json).context("writing flagd JSON")? + "\n"
        }
    })
}

pub(crate) async fn export(server: &Server, args: ExportArgs, json: bool) -> anyhow::Result<()> {
    let (_, set) = reads::environment(server).await?;
    let set = FlagSet { flags: set.flags.into_iter().map(as_in_file).collect(), segments: set.segments };
    let format = if json { Format::Json } else { args.format };
    crate::output::line(to_text(&set, format)?.trim_end())
}
