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

    /// Replaces item `key` of `set` by `content` in place (inserted in key order, removed
    /// for `None`).
    fn replace_in(set: &mut FlagSet, key: &str, content: Option<Self>);

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

    fn replace_in(set: &mut FlagSet, key: &str, content: Option<Self>) {
        replace_in_list(&mut set.flags, key, content, |flag| &flag.key);
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

    fn replace_in(set: &mut FlagSet, key: &str, content: Option<Self>) {
        replace_in_list(&mut set.segments, key, content, |segment| &segment.key);
    }

    /// Segments carry no version or timestamps of their own; their history rows do.
    fn stamp(&mut self, _version: u64, _now: &str, _live: Option<&Self>) {}

    fn into_entry_fields(content: Option<Self>) -> (Option<Flag>, Option<Segment>) {
        (None, content)
    }
}

/// Replaces item `key` of the sorted `list` by `item` (inserted in key order, removed for
/// `None`).
fn replace_in_list<T>(list: &mut Vec<T>, key: &str, item: Option<T>, key_of: impl Fn(&T) -> &String) {
    match (list.binary_search_by(|t| key_of(t).as_str().cmp(key)), item) {
        (Ok(at), Some(item)) => list[at] = item,
        (Ok(at), None) => {
            list.remove(at);
        }
        (Err(at), Some(item)) => list.insert(at, item),
        (Err(_), None) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(set: &FlagSet) -> Vec<&str> {
        set.flags.iter().map(|f| f.key.as_str()).collect()
    }

    #[test]
    fn replacing_a_flag_keeps_the_list_sorted() {
        let flag = |key: &str| Flag::rollout(key, 1.0).unwrap();
        let set = FlagSet { flags: vec![flag("a"), flag("c")], segments: vec![] };
        let replaced = |key: &str, content: Option<Flag>| {
            let mut set = set.clone();
            Flag::replace_in(&mut set, key, content);
            set
        };
        assert_eq!(keys(&replaced("b", Some(flag("b")))), ["a", "b", "c"]);
        assert_eq!(keys(&replaced("d", Some(flag("d")))), ["a", "c", "d"]);
        assert_eq!(keys(&replaced("a", None)), ["c"]);
        assert_eq!(keys(&replaced("b", None)), ["a", "c"]);
        let mut killed = flag("c");
        killed.enabled = false;
        assert!(!replaced("c", Some(killed)).flags[1].enabled);
    }
}
