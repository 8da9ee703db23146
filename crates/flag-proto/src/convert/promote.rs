//! `Promote`: which flags, which parts of them, from where to where; and what it did.

use super::admin::{ApplyOutcome, Authorship};
use super::{InvalidMessage, Path};
use crate::v1;

/// A part of a flag a promote can take from the source. The kill state is not one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Part {
    /// `rules`.
    Rules,
    /// `default`, the split weights included.
    Default,
    /// `variants` and `off_variant`.
    Variants,
    /// `prerequisites`.
    Prerequisites,
    /// `description` and `metadata`.
    Metadata,
}

impl Part {
    /// Every part, as the CLI and the wire name them.
    pub const ALL: [(Part, &'static str); 5] = [
        (Part::Rules, "rules"),
        (Part::Default, "default"),
        (Part::Variants, "variants"),
        (Part::Prerequisites, "prerequisites"),
        (Part::Metadata, "metadata"),
    ];

    /// The part called `name`.
    pub fn named(name: &str) -> Option<Part> {
        Part::ALL.iter().find(|(_, known)| *known == name).map(|(part, _)| *part)
    }

    fn name(self) -> &'static str {
        Part::ALL.iter().find(|(part, _)| *part == self).map_or("", |(_, name)| name)
    }
}

/// What a promote is asked to do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PromoteAsk {
    /// The environment promoted from.
    pub from: String,
    /// The environment promoted to.
    pub to: String,
    /// The flags; empty with `all`.
    pub keys: Vec<String>,
    /// Every flag of `from`.
    pub all: bool,
    /// Flags left out.
    pub except: Vec<String>,
    /// The parts taken; everything but the kill state when empty.
    pub only: Vec<Part>,
    /// Plan and validate, commit nothing.
    pub dry_run: bool,
    /// Refuse unless the target is at this revision.
    pub expected_revision: Option<u64>,
}

/// `Promote` of `ask`.
pub fn promote_request(ask: &PromoteAsk, by: Authorship) -> v1::PromoteRequest {
    let PromoteAsk { from, to, keys, all, except, only, dry_run, expected_revision } = ask;
    v1::PromoteRequest {
        from_environment: from.clone(),
        to_environment: to.clone(),
        keys: keys.clone(),
        all: *all,
        except: except.clone(),
        only: only.iter().map(|part| part.name().to_owned()).collect(),
        dry_run: *dry_run,
        expected_revision: *expected_revision,
        change: Some(by.into()),
    }
}

/// `Promote`'s request as the server reads it; refused without flags or `all`, or with both,
/// and with a part it does not know.
pub fn promote_request_from_proto(
    request: v1::PromoteRequest,
) -> Result<(PromoteAsk, Authorship), InvalidMessage> {
    let v1::PromoteRequest {
        from_environment,
        to_environment,
        keys,
        all,
        except,
        only,
        dry_run,
        expected_revision,
        change,
    } = request;
    if keys.is_empty() != all {
        return Err(Path::Root("keys").invalid("the flags to promote, or `all` (not both)"));
    }
    let root = Path::Root("only");
    let only = only
        .iter()
        .enumerate()
        .map(|(i, name)| {
            Part::named(name).ok_or_else(|| {
                root.index(i).invalid(format!(
                    "one of rules, default, variants, prerequisites, metadata, found {name:?}"
                ))
            })
        })
        .collect::<Result<_, _>>()?;
    let ask = PromoteAsk {
        from: from_environment,
        to: to_environment,
        keys,
        all,
        except,
        only,
        dry_run,
        expected_revision,
    };
    Ok((ask, change.into()))
}

/// The answer to `Promote`.
pub fn promote_response(
    from_revision: u64,
    applied: v1::ApplyResponse,
    segments: Vec<String>,
    kill_state_kept: Vec<String>,
) -> v1::PromoteResponse {
    v1::PromoteResponse { from_revision, applied: Some(applied), segments, kill_state_kept }
}

/// `Promote`'s answer as the client reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct PromoteOutcome {
    /// The source's revision the promote read.
    pub from_revision: u64,
    /// The changes on the target.
    pub applied: ApplyOutcome,
    /// Segments brought from the source.
    pub segments: Vec<String>,
    /// Promoted flags whose kill state differs: the target's was kept.
    pub kill_state_kept: Vec<String>,
}

impl TryFrom<v1::PromoteResponse> for PromoteOutcome {
    type Error = InvalidMessage;

    fn try_from(response: v1::PromoteResponse) -> Result<Self, Self::Error> {
        let v1::PromoteResponse { from_revision, applied, segments, kill_state_kept } = response;
        let applied = applied.ok_or_else(|| Path::Root("applied").invalid("the changes"))?;
        Ok(PromoteOutcome {
            from_revision,
            applied: ApplyOutcome::try_from(applied)?,
            segments,
            kill_state_kept,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ask_survives_the_wire_and_bad_asks_name_the_field() {
        let ask = PromoteAsk {
            from: "staging".into(),
            to: "production".into(),
            keys: vec!["chat".into()],
            only: vec![Part::Rules, Part::Default],
            expected_revision: Some(7),
            ..PromoteAsk::default()
        };
        let by = Authorship { actor: "ana".into(), reason: "release 42".into() };
        let (read, read_by) = promote_request_from_proto(promote_request(&ask, by.clone())).unwrap();
        assert_eq!((read, read_by), (ask.clone(), by.clone()));

        let mut neither = promote_request(&PromoteAsk { keys: vec![], ..ask.clone() }, by.clone());
        neither.all = false;
        assert_eq!(promote_request_from_proto(neither).unwrap_err().path, "keys");
        let mut unknown = promote_request(&ask, by);
        unknown.only.push("enabled".into());
        let error = promote_request_from_proto(unknown).unwrap_err();
        assert_eq!(error.path, "only[2]");
        assert!(error.expected.contains("found \"enabled\""), "{error:?}");
    }
}
