//! `Diff`: two environment sides in the request, flag-core's [`SetDiff`](core::SetDiff) in
//! the answer, each field's values carried as JSON text.

use flag_core as core;

use super::requests::Point;
use super::{InvalidMessage, Path};
use crate::v1;

/// An environment, at a point or (`None`) as it is now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Side {
    /// The environment ("production" when empty, as the server reads it).
    pub environment: String,
    /// The point; now when `None`.
    pub point: Option<Point>,
}

/// `Diff` of `from` and `to`, only `keys` (all when empty).
pub fn diff_request(from: &Side, to: &Side, keys: &[String]) -> v1::DiffRequest {
    v1::DiffRequest { from: Some(side_to_proto(from)), to: Some(side_to_proto(to)), keys: keys.to_vec() }
}

fn side_to_proto(side: &Side) -> v1::DiffSide {
    let point = side.point.clone().map(|point| match point {
        Point::Revision(revision) => v1::diff_side::Point::Revision(revision),
        Point::At(ms) => v1::diff_side::Point::AtUnixMs(ms),
        Point::Bookmark(name) => v1::diff_side::Point::Bookmark(name),
    });
    v1::DiffSide { environment: side.environment.clone(), point }
}

/// `Diff`'s request as the server reads it: (from, to, keys).
pub fn diff_request_from_proto(
    request: v1::DiffRequest,
) -> Result<(Side, Side, Vec<String>), InvalidMessage> {
    let v1::DiffRequest { from, to, keys } = request;
    let side = |side: Option<v1::DiffSide>, name: &'static str| {
        let v1::DiffSide { environment, point } = side.ok_or_else(|| Path::Root(name).invalid("a side"))?;
        let point = point.map(|point| match point {
            v1::diff_side::Point::Revision(revision) => Point::Revision(revision),
            v1::diff_side::Point::AtUnixMs(ms) => Point::At(ms),
            v1::diff_side::Point::Bookmark(name) => Point::Bookmark(name),
        });
        Ok::<_, InvalidMessage>(Side { environment, point })
    };
    Ok((side(from, "from")?, side(to, "to")?, keys))
}

/// The answer to `Diff`: `diff` from the side read at `from_revision` to the one at
/// `to_revision`.
pub fn diff_response(from_revision: u64, to_revision: u64, diff: &core::SetDiff) -> v1::DiffResponse {
    let core::SetDiff { flags, segments, unchanged_flags, unchanged_segments } = diff;
    v1::DiffResponse {
        from_revision,
        to_revision,
        flags: flags.iter().map(subject_to_proto).collect(),
        segments: segments.iter().map(subject_to_proto).collect(),
        unchanged_flags: *unchanged_flags as u64,
        unchanged_segments: *unchanged_segments as u64,
    }
}

fn subject_to_proto(diff: &core::SubjectDiff) -> v1::SubjectDiff {
    use v1::subject_diff::Change;
    let (change, fields) = match diff {
        core::SubjectDiff::Added { .. } => (Change::Added, Vec::new()),
        core::SubjectDiff::Removed { .. } => (Change::Removed, Vec::new()),
        core::SubjectDiff::Changed { fields, .. } => {
            (Change::Changed, fields.iter().map(field_to_proto).collect())
        }
        // A kind of difference this version does not know is still a difference.
        _ => (Change::Changed, Vec::new()),
    };
    v1::SubjectDiff { key: diff.key().to_owned(), change: change.into(), fields }
}

fn field_to_proto(field: &core::FieldChange) -> v1::FieldChange {
    let core::FieldChange { path, from, to } = field;
    v1::FieldChange {
        path: path.clone(),
        from_json: from.as_ref().map(ToString::to_string),
        to_json: to.as_ref().map(ToString::to_string),
    }
}

/// `Diff`'s answer as the client reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct DiffOutcome {
    /// The revision the `from` side was read at.
    pub from_revision: u64,
    /// The revision the `to` side was read at.
    pub to_revision: u64,
    /// What differs.
    pub diff: core::SetDiff,
}

impl TryFrom<v1::DiffResponse> for DiffOutcome {
    type Error = InvalidMessage;

    fn try_from(response: v1::DiffResponse) -> Result<Self, Self::Error> {
        let v1::DiffResponse {
            from_revision,
            to_revision,
            flags,
            segments,
            unchanged_flags,
            unchanged_segments,
        } = response;
        let list = |list: Vec<v1::SubjectDiff>, name: &'static str| {
            let root = Path::Root(name);
            list.into_iter()
                .enumerate()
                .map(|(i, diff)| subject_from_proto(diff, &root.index(i)))
                .collect::<Result<Vec<_>, _>>()
        };
        let count = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        let diff = core::SetDiff {
            flags: list(flags, "flags")?,
            segments: list(segments, "segments")?,
            unchanged_flags: count(unchanged_flags),
            unchanged_segments: count(unchanged_segments),
        };
        Ok(DiffOutcome { from_revision, to_revision, diff })
    }
}

fn subject_from_proto(diff: v1::SubjectDiff, path: &Path<'_>) -> Result<core::SubjectDiff, InvalidMessage> {
    use v1::subject_diff::Change;
    let v1::SubjectDiff { key, change, fields } = diff;
    match Change::try_from(change) {
        Ok(Change::Added) => Ok(core::SubjectDiff::Added { key }),
        Ok(Change::Removed) => Ok(core::SubjectDiff::Removed { key }),
        Ok(Change::Changed) => {
            let root = path.field("fields");
            let fields = fields
                .into_iter()
                .enumerate()
                .map(|(i, field)| field_from_proto(field, &root.index(i)))
                .collect::<Result<_, _>>()?;
            Ok(core::SubjectDiff::Changed { key, fields })
        }
        _ => Err(path.field("change").invalid("ADDED, REMOVED or CHANGED")),
    }
}

fn field_from_proto(field: v1::FieldChange, path: &Path<'_>) -> Result<core::FieldChange, InvalidMessage> {
    let v1::FieldChange { path: field_path, from_json, to_json } = field;
    let json = |text: Option<String>, name: &'static str| {
        text.map(|text| serde_json::from_str(&text).map_err(|_| path.field(name).invalid("JSON"))).transpose()
    };
    Ok(core::FieldChange {
        path: field_path,
        from: json(from_json, "from_json")?,
        to: json(to_json, "to_json")?,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_diff_survives_the_wire() {
        let diff = core::SetDiff {
            flags: vec![
                core::SubjectDiff::Added { key: "beta".into() },
                core::SubjectDiff::Changed {
                    key: "chat".into(),
                    fields: vec![core::FieldChange {
                        path: "rules[0].clauses[0].values[1]".into(),
                        from: Some(json!("AU")),
                        to: None,
                    }],
                },
            ],
            segments: vec![core::SubjectDiff::Removed { key: "staff".into() }],
            unchanged_flags: 12,
            unchanged_segments: 0,
        };
        let back = DiffOutcome::try_from(diff_response(3, 9, &diff)).unwrap();
        assert_eq!((back.from_revision, back.to_revision), (3, 9));
        assert_eq!(back.diff, diff);
    }

    #[test]
    fn sides_survive_the_wire_and_a_missing_side_is_named() {
        let from = Side { environment: "staging".into(), point: None };
        let to = Side { environment: "production".into(), point: Some(Point::At(1_764_583_200_000)) };
        let read = diff_request_from_proto(diff_request(&from, &to, &["chat".into()])).unwrap();
        assert_eq!(read, (from, to, vec!["chat".to_owned()]));
        let error =
            diff_request_from_proto(v1::DiffRequest { from: None, to: None, keys: vec![] }).unwrap_err();
        assert_eq!(error.path, "from");
    }
}
