//! Reading flags: get and list.

use anyhow::Context as _;
use flag_core::Flag;
use flag_proto::{FlagState, Listed};
use serde::Serialize;

use crate::cli::{KeyArgs, ListArgs};
use crate::connect::{Call, Server};
use crate::output::Output;
use crate::render::{self, Entry};

#[derive(Debug, Serialize)]
struct Shown {
    flag: Flag,
    last_change: Option<Entry>,
    revision: u64,
}

pub(crate) async fn get(server: &Server, out: &Output, args: KeyArgs) -> anyhow::Result<()> {
    let request = server.requests().get_flag(&args.key);
    let response = server
        .admin
        .clone()
        .get_flag(server.request(request))
        .await
        .called(server, &format!("reading {}", args.key))?;
    let FlagState { flag, last_change, revision } =
        FlagState::try_from(response).context("the server sent a malformed flag")?;
    let shown = Shown { flag, last_change: last_change.map(Entry::of), revision };
    out.print(&shown, || describe(&shown, &server.environment))
}

fn describe(shown: &Shown, environment: &str) -> String {
    let Shown { flag, last_change, revision: _ } = shown;
    let mut lines = vec![format!("{} ({environment}, version {})", flag.key, flag.version)];
    if !flag.description.is_empty() {
        lines.push(format!("  {}", flag.description));
    }
    let state = if flag.enabled {
        "on".to_owned()
    } else {
        format!("KILLED: everyone gets {}", render::off_variant(flag))
    };
    lines.push(format!("  state:     {state}"));
    for (index, rule) in flag.rules.iter().enumerate() {
        let clauses: Vec<String> = rule.clauses.iter().map(render::clause).collect();
        let label = if index == 0 { "rules:    " } else { "          " };
        lines.push(format!(
            "  {label} {}. {} → {}",
            index + 1,
            clauses.join(" and "),
            render::serve(&rule.serve)
        ));
    }
    let default_label = if flag.rules.is_empty() { "serves:   " } else { "otherwise:" };
    lines.push(format!("  {default_label} {}", render::serve(&flag.default)));
    let variants: Vec<String> =
        flag.variants.iter().map(|v| format!("{} = {}", v.name, render::value(&v.value))).collect();
    lines.push(format!("  variants:  {} (off: {})", variants.join(", "), render::off_variant(flag)));
    if !flag.prerequisites.is_empty() {
        let prerequisites: Vec<String> =
            flag.prerequisites.iter().map(|p| format!("{} is {:?}", p.flag, p.variant)).collect();
        lines.push(format!("  requires:  {}", prerequisites.join(", ")));
    }
    if let Some(entry) = last_change {
        let reason = if entry.reason.is_empty() {
            "no reason given".to_owned()
        } else {
            format!("{:?}", entry.reason)
        };
        lines.push(format!(
            "  changed:   {} by {} at {} ({}): {reason}",
            entry.operation,
            entry.by(),
            entry.time,
            render::ago(entry.timestamp_ms)
        ));
    }
    lines.join("\n")
}

pub(crate) async fn list(server: &Server, out: &Output, args: ListArgs) -> anyhow::Result<()> {
    let ListArgs { prefix, tag } = args;
    let request = server.requests().list_flags(&prefix, &tag);
    let response =
        server.admin.clone().list_flags(server.request(request)).await.called(server, "listing flags")?;
    let Listed { items: flags, revision: _ } =
        Listed::<Flag>::try_from(response).context("the server sent a malformed flag")?;
    out.print(&flags, || {
        if flags.is_empty() {
            return format!("no flags in {}", server.environment);
        }
        let width = flags.iter().map(|f| f.key.len()).max().unwrap_or(0).max(3);
        let mut lines = vec![format!("{:<width$}  {:>7}  STATE", "KEY", "VERSION")];
        lines.extend(
            flags.iter().map(|f| format!("{:<width$}  {:>7}  {}", f.key, f.version, render::state(f))),
        );
        lines.join("\n")
    })
}
