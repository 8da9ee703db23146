//! What differs between the two things the store versions, flags and segments, so that the
//! write and read paths are written once.

use super::backend::TableDefinition;
use flag_core::{Flag, FlagSet, Segment, SubjectKind};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::tables::{
    FLAG_HEADS, FLAG_VERSIONS, FLAGS, RevisionKey, SEGMENT_HEADS, SEGMENT_VERSIONS, SEGMENTS, SubjectKey,
};

/// A flag or a segment: stored live in one table and version by version in two more (see
/// `history`).
pub(super) trait Versioned: Clone + Serialize + DeserializeOwned {
    /// Which kind it is.
    const KIND: SubjectKind;
    /// The table of live rows.
    const CURRENT: TableDefinition<SubjectKey, &'static [u8]>;
    /// The table of versions, by the revision that wrote them.
    const VERSIONS: TableDefinition<RevisionKey, &'static [u8]>;
    /// The table of each key's newest version.
    const HEADS: TableDefinition<SubjectKey, &'static [u8]>;
    /// `CURRENT`'s name, for errors.
    const CURRENT_NAME: &'static str;
    /// `VERSIONS`'s name, for errors.
    const VERSIONS_NAME: &'static str;
    /// `HEADS`'s name, for errors.
    const HEADS_NAME: &'static str;

    /// The live item `key` of `set`.
    fn find<'s>(set: &'s FlagSet, key: &str) -> Option<&'s Self>;

    /// `set` with item `key` replaced by `content` (removed for `None`).
    fn replaced(set: &FlagSet, key: &str, content: Option<Self>) -> FlagSet;

    /// Sets the fields the store owns before `version` is stored at time `now` (RFC 3339);
    /// `live` is the version it replaces, if the item exists.
    fn stamp(&mut self, version: u64, now: &str, live: Option<&Self>);

    /// Places content in the `(flag, segment)` fields of a history entry.
    fn into_entry_fields(content: Option<Self>) -> (Option<Flag>, Option<Segment>);
}

/// The versions table of `kind`, by name, for errors.
pub(super) fn versions_name(kind: SubjectKind) -> &'static str {
    match kind {
        SubjectKind::Flag => Flag::VERSIONS_NAME,
        SubjectKind::Segment => Segment::VERSIONS_NAME,
    }
}

impl Versioned for Flag {
    const KIND: SubjectKind = SubjectKind::Flag;
    const CURRENT: TableDefinition<SubjectKey, &'static [u8]> = FLAGS;
    const VERSIONS: TableDefinition<RevisionKey, &'static [u8]> = FLAG_VERSIONS;
    const HEADS: TableDefinition<SubjectKey, &'static [u8]> = FLAG_HEADS;
    const CURRENT_NAME: &'static str = "flags";
    const VERSIONS_NAME: &'static str = "flag_versions";
    const HEADS_NAME: &'static str = "flag_heads";

    fn find<'s>(set: &'s FlagSet, key: &str) -> Option<&'s Self> {
        let at = set.flags.binary_search_by(|f| f.key.as_str().cmp(key)).ok()?;
        set.flags.get(at)
    }

    fn replaced(set: &FlagSet, key: &str, content: Option<Self>) -> FlagSet {
        with_flag(set, key, content)
    }

    /// The version is the store's count, whatever the caller sent. `created_at` is the
    /// first stored version's: kept from the live flag, else from restored content (a
    /// rollback of a deleted flag brings its identity back), else now.
    fn stamp(&mut self, version: u64, now: &str, live: Option<&Self>) {
        self.version = version;
        let created = live.and_then(|live| live.metadata.created_at.clone());
        self.metadata.created_at =
            created.or(self.metadata.created_at.take()).or_else(|| Some(now.to_owned()));
        self.metadata.updated_at = Some(now.to_owned());
    }

    fn into_entry_fields(content: Option<Self>) -> (Option<Flag>, Option<Segment>) {
        (content, None)
    }
}

impl Versioned for Segment {
    const KIND: SubjectKind = SubjectKind::Segment;
    const CURRENT: TableDefinition<SubjectKey, &'static [u8]> = SEGMENTS;
    const VERSIONS: TableDefinition<RevisionKey, &'static [u8]> = SEGMENT_VERSIONS;
    const HEADS: TableDefinition<SubjectKey, &'static [u8]> = SEGMENT_HEADS;
    const CURRENT_NAME: &'static str = "segments";
    const VERSIONS_NAME: &'static str = "segment_versions";
    const HEADS_NAME: &'static str = "segment_heads";

    fn find<'s>(set: &'s FlagSet, key: &str) -> Option<&'s Self> {
        let at = set.segments.binary_search_by(|s| s.key.as_str().cmp(key)).ok()?;
        set.segments.get(at)
    }

    fn replaced(set: &FlagSet, key: &str, content: Option<Self>) -> FlagSet {
        with_segment(set, key, content)
    }

    /// Segments carry no version or timestamps of their own; their history rows do.
    fn stamp(&mut self, _version: u64, _now: &str, _live: Option<&Self>) {}

    fn into_entry_fields(content: Option<Self>) -> (Option<Flag>, Option<Segment>) {
        (None, content)
    }
}

/// `set` with flag `key` replaced by `flag` (inserted in key order, or removed for `None`).
fn with_flag(set: &FlagSet, key: &str, flag: Option<Flag>) -> FlagSet {
    FlagSet { flags: with(&set.flags, key, flag, |f| &f.key), segments: set.segments.clone() }
}

/// `set` with segment `key` replaced by `segment` (or removed for `None`).
fn with_segment(set: &FlagSet, key: &str, segment: Option<Segment>) -> FlagSet {
    FlagSet { flags: set.flags.clone(), segments: with(&set.segments, key, segment, |s| &s.key) }
}

fn with<T: Clone>(list: &[T], key: &str, item: Option<T>, key_of: impl Fn(&T) -> &String) -> Vec<T> {
    let mut list = list.to_vec();
    match (list.binary_search_by(|t| key_of(t).as_str().cmp(key)), item) {
        (Ok(at), Some(item)) => list[at] = item,
        (Ok(at), None) => {
            list.remove(at);
        }
        (Err(at), Some(item)) => list.insert(at, item),
        (Err(_), None) => {}
    }
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(set: &FlagSet) -> Vec<&str> {
        set.flags.iter().map(|f| f.key.as_str()).collect()
    }

    #[test]
    fn with_flag_keeps_the_list_sorted() {
        let flag = |key: &str| Flag::rollout(key, 1.0).unwrap();
        let set = FlagSet { flags: vec![flag("a"), flag("c")], segments: vec![] };
        assert_eq!(keys(&with_flag(&set, "b", Some(flag("b")))), ["a", "b", "c"]);
        assert_eq!(keys(&with_flag(&set, "d", Some(flag("d")))), ["a", "c", "d"]);
        assert_eq!(keys(&with_flag(&set, "a", None)), ["c"]);
        assert_eq!(keys(&with_flag(&set, "b", None)), ["a", "c"]);
        let mut killed = flag("c");
        killed.enabled = false;
        assert!(!with_flag(&set, "c", Some(killed)).flags[1].enabled);
    }
}
