//! Diff: what differs between two environments, or one at two points, field by field.

use anyhow::Context as _;
use flag_core::{FieldChange, SubjectDiff};
use flag_proto::{DiffOutcome, Point, Side};
use serde::Serialize;

use crate::cli::DiffArgs;
use crate::connect::Server;
use crate::failure::Failure;
use crate::output::Output;
use crate::reads::MALFORMED;
use crate::times;

#[derive(Debug, Serialize)]
struct Diffed {
    from: SideRead,
    to: SideRead,
    identical: bool,
    flags: Vec<Subject>,
    segments: Vec<Subject>,
    unchanged_flags: usize,
    unchanged_segments: usize,
}

#[derive(Debug, Serialize)]
struct SideRead {
    /// As given on the command line.
    side: String,
    /// The revision it was read at.
    revision: u64,
}

#[derive(Debug, Serialize)]
struct Subject {
    key: String,
    /// `added` (only in `to`), `removed` (only in `from`) or `changed`.
    change: &'static str,
    fields: Vec<Field>,
}

#[derive(Debug, Serialize)]
struct Field {
    path: String,
    from: Option<serde_json::Value>,
    to: Option<serde_json::Value>,
}

pub(crate) async fn diff(server: &Server, out: &Output, args: DiffArgs) -> anyhow::Result<()> {
    let DiffArgs { from, to, keys } = args;
    let (from_side, to_side) = (side(&from)?, side(&to)?);
    let request = flag_proto::diff_request(&from_side, &to_side, &keys);
    let response =
        server.admin.clone().diff(server.request(request)).await.map_err(|status| server.failed(status))?;
    let DiffOutcome { from_revision, to_revision, diff } =
        DiffOutcome::try_from(response.into_inner()).context(MALFORMED)?;
    let diffed = Diffed {
        from: SideRead { side: from, revision: from_revision },
        to: SideRead { side: to, revision: to_revision },
        identical: diff.is_empty(),
        flags: diff.flags.into_iter().map(subject).collect(),
        segments: diff.segments.into_iter().map(subject).collect(),
        unchanged_flags: diff.unchanged_flags,
        unchanged_segments: diff.unchanged_segments,
    };
    out.print(&diffed, || summary(&diffed))?;
    if diffed.identical { Ok(()) } else { Err(Failure::Differs.into()) }
}

/// `ENV`, `ENV@rN`, `ENV@TIME` or `ENV@-DURATION`.
fn side(text: &str) -> Result<Side, Failure> {
    let Some((environment, point)) = text.split_once('@') else {
        return Ok(Side { environment: text.to_owned(), point: None });
    };
    let expected = || {
        Failure::Invalid(format!(
            "{text:?}: expected ENV@rN (a revision), ENV@TIME (RFC 3339, 2026-12-01T10:00:00Z), \
             ENV@-DURATION (-1h) or ENV@BOOKMARK"
        ))
    };
    let revision = point.strip_prefix('r').and_then(|digits| digits.parse().ok());
    let point = if let Some(revision) = revision {
        Point::Revision(revision)
    } else if let Some(ago) = point.strip_prefix('-') {
        Point::At(times::ago_ms(ago).ok_or_else(expected)?)
    } else if let Some(at) = times::rfc3339_ms(point) {
        Point::At(at)
    } else if point.starts_with(|c: char| c.is_ascii_digit()) {
        // A time with a typo, not a bookmark name.
        return Err(expected());
    } else {
        Point::Bookmark(point.to_owned())
    };
    Ok(Side { environment: environment.to_owned(), point: Some(point) })
}

fn subject(diff: SubjectDiff) -> Subject {
    let key = diff.key().to_owned();
    let (change, fields) = match diff {
        SubjectDiff::Added { .. } => ("added", Vec::new()),
        SubjectDiff::Removed { .. } => ("removed", Vec::new()),
        SubjectDiff::Changed { fields, .. } => ("changed", fields),
        _ => ("changed", Vec::new()),
    };
    let fields = fields.into_iter().map(|FieldChange { path, from, to }| Field { path, from, to }).collect();
    Subject { key, change, fields }
}

fn summary(diffed: &Diffed) -> String {
    let Diffed { from, to, identical, flags, segments, unchanged_flags, unchanged_segments } = diffed;
    let name = |side: &SideRead| format!("{} (r{})", side.side, side.revision);
    let mut lines = vec![format!("{} → {}", name(from), name(to))];
    for (noun, list) in [("flag", flags), ("segment", segments)] {
        for subject in list {
            match subject.change {
                "added" => lines.push(format!("  + {noun} {} (only in {})", subject.key, to.side)),
                "removed" => lines.push(format!("  - {noun} {} (only in {})", subject.key, from.side)),
                _ => {
                    lines.push(format!("  ~ {noun} {}", subject.key));
                    lines.extend(subject.fields.iter().map(|field| {
                        format!(
                            "      {}: {} → {}",
                            field.path,
                            shown(field.from.as_ref()),
                            shown(field.to.as_ref())
                        )
                    }));
                }
            }
        }
    }
    let counted = |n: usize, noun: &str| format!("{n} {noun}{}", if n == 1 { "" } else { "s" });
    lines.push(if *identical {
        format!(
            "identical: {} and {} the same",
            counted(*unchanged_flags, "flag"),
            counted(*unchanged_segments, "segment")
        )
    } else {
        format!(
            "{} and {} differ; {} and {} the same",
            counted(flags.len(), "flag"),
            counted(segments.len(), "segment"),
            counted(*unchanged_flags, "flag"),
            counted(*unchanged_segments, "segment")
        )
    });
    lines.join("\n")
}

fn shown(value: Option<&serde_json::Value>) -> String {
    value.map_or_else(|| "(absent)".to_owned(), ToString::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides_name_a_revision_a_time_or_a_duration_ago() {
        assert_eq!(side("production").unwrap(), Side { environment: "production".into(), point: None });
        assert_eq!(side("production@r120").unwrap().point, Some(Point::Revision(120)));
        assert_eq!(
            side("production@2025-12-01T10:00:00Z").unwrap().point,
            Some(Point::At(1_764_583_200_000))
        );
        let Some(Point::At(ago)) = side("production@-1h").unwrap().point else { panic!("a time") };
        let now = times::unix_ms(std::time::SystemTime::now()).unwrap();
        assert!((now - ago - 3_600_000).abs() < 60_000, "{now} {ago}");
        assert_eq!(
            side("production@pre-deploy-4711").unwrap().point,
            Some(Point::Bookmark("pre-deploy-4711".into()))
        );
        assert_eq!(side("production@release-1").unwrap().point, Some(Point::Bookmark("release-1".into())));
        for bad in ["production@2026-13-01T00:00:00Z", "production@-soon"] {
            let error = side(bad).unwrap_err().to_string();
            assert!(error.contains("expected ENV@rN"), "{bad}: {error}");
        }
    }
}
