//! The audit log's query against a naive model: every entry of every environment read
//! whole, filtered one by one and sorted. Filters combine, paging yields every entry exactly
//! once in that order (across environments, with writes in between), and each entry's
//! content before and after is its previous and its own version's.

use std::collections::{BTreeMap, BTreeSet};

use flag_core::{HistoryEntry, LoggedChange, Operation, Subject};

use super::*;
use crate::store::{AuditPage, AuditQuery, AuditStart, StoreError};

const STAGING: &str = "staging";

fn by(actor: &str) -> WriteMeta {
    WriteMeta { actor: actor.into(), on_behalf_of: None, reason: format!("by {actor}") }
}

fn kill(key: &str) -> WriteOp {
    WriteOp::Kill { key: key.into() }
}

fn delete(key: &str) -> WriteOp {
    WriteOp::DeleteFlag { key: key.into(), expected_version: None }
}

fn put_op(flag: Flag) -> WriteOp {
    WriteOp::PutFlag { flag, expected_version: None }
}

fn rollback(key: &str, to_version: u64) -> WriteOp {
    WriteOp::Rollback {
        key: key.into(),
        to_version: Some(to_version),
        expected_version: None,
        allow_revive: true,
    }
}

/// Two environments written in turn by two people, with flags, a segment, kills, deletes
/// and rollbacks; a few milliseconds apart, so that times differ and a time window can cut
/// through the middle.
fn busy_store() -> (tempfile::TempDir, Store) {
    let (dir, store) = new_store();
    let writes: Vec<(&str, WriteOp, &str)> = vec![
        (ENV, put_op(rollout("chat", 5.0)), "ana"),
        (STAGING, put_op(rollout("chat", 50.0)), "ben"),
        (ENV, put_op(rollout("search", 10.0)), "ben"),
        (STAGING, WriteOp::PutSegment { segment: segment("staff", &["ana"]) }, "ana"),
        (ENV, kill("chat"), "ana"),
        (STAGING, put_op(rollout("beta", 1.0)), "ben"),
        (ENV, WriteOp::Revive { key: "chat".into(), expected_version: None }, "ben"),
        (STAGING, kill("chat"), "ana"),
        (ENV, delete("search"), "ana"),
        (STAGING, WriteOp::PutSegment { segment: segment("staff", &["ana", "ben"]) }, "ben"),
        (ENV, rollback("search", 1), "ben"),
        (STAGING, rollback("chat", 1), "ana"),
        (ENV, put_op(rollout("chat", 25.0)), "ana"),
        (STAGING, WriteOp::DeleteSegment { key: "staff".into() }, "ben"),
        (ENV, kill("search"), "ben"),
    ];
    for (environment, op, actor) in writes {
        store.write(environment, op, &by(actor)).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(3));
    }
    (dir, store)
}

/// Every entry of every environment, newest first by (time, environment, revision), each
/// with the content of its previous version: the order and the content the query promises,
/// computed the slow way.
fn model(store: &Store) -> Vec<LoggedChange> {
    let mut all: Vec<HistoryEntry> = Vec::new();
    for environment in store.environments().unwrap() {
        all.extend(store.environment_history(&environment, None, usize::MAX).unwrap());
    }
    let versions: BTreeMap<(String, SubjectKind, String, u64), HistoryEntry> = all
        .iter()
        .map(|entry| {
            ((entry.environment.clone(), entry.kind, entry.key.clone(), entry.version), entry.clone())
        })
        .collect();
    all.sort_by(|a, b| {
        (b.timestamp_ms, &a.environment, b.revision).cmp(&(a.timestamp_ms, &b.environment, a.revision))
    });
    all.into_iter()
        .map(|entry| {
            let previous =
                versions.get(&(entry.environment.clone(), entry.kind, entry.key.clone(), entry.version - 1));
            let before = previous.and_then(|previous| match (&previous.flag, &previous.segment) {
                (Some(flag), _) => Some(Subject::Flag(flag.clone())),
                (None, Some(segment)) => Some(Subject::Segment(segment.clone())),
                (None, None) => None,
            });
            LoggedChange { entry, before }
        })
        .collect()
}

/// `model` filtered by `query`'s filters, one entry at a time.
fn expected(store: &Store, query: &AuditQuery) -> Vec<LoggedChange> {
    let environments: Option<BTreeSet<String>> = match &query.start {
        AuditStart::Newest(environment) => Some([environment.clone()].into()),
        AuditStart::NewestOfAll => None,
        AuditStart::After(_) => unreachable!("the model reads from the newest"),
    };
    model(store)
        .into_iter()
        .filter(|logged| {
            let entry = &logged.entry;
            environments.as_ref().is_none_or(|names| names.contains(&entry.environment))
                && (query.flags.is_empty()
                    || (entry.kind == SubjectKind::Flag && query.flags.contains(&entry.key)))
                && query.actor.as_ref().is_none_or(|actor| *actor == entry.actor)
                && query.since_ms.is_none_or(|since| entry.timestamp_ms >= since)
                && query.until_ms.is_none_or(|until| entry.timestamp_ms <= until)
                && (query.actions.is_empty() || query.actions.contains(&entry.operation))
        })
        .collect()
}

pub(super) fn everything(start: AuditStart) -> AuditQuery {
    AuditQuery {
        start,
        flags: vec![],
        actor: None,
        since_ms: None,
        until_ms: None,
        actions: vec![],
        page_size: 1000,
        readable: None,
    }
}

/// Every page of `query`, followed to the end, `page_size` at a time.
fn paged(store: &Store, query: &AuditQuery, page_size: usize) -> Vec<LoggedChange> {
    let mut query = AuditQuery { page_size, ..query.clone() };
    let mut entries = Vec::new();
    loop {
        let AuditPage { entries: page, next } = store.audit(&query).unwrap();
        assert!(page.len() <= page_size);
        entries.extend(page);
        if next.is_empty() {
            return entries;
        }
        query.start = AuditStart::After(next);
    }
}

fn revisions(entries: &[LoggedChange]) -> Vec<(String, u64)> {
    entries.iter().map(|logged| (logged.entry.environment.clone(), logged.entry.revision)).collect()
}

#[test]
fn filters_combine_and_answer_what_the_model_does() {
    let (_dir, store) = busy_store();
    let all = model(&store);
    assert_eq!(all.len(), 15);
    // A window through the middle: the 4th newest to the 11th newest.
    let (until, since) = (all[3].entry.timestamp_ms, all[10].entry.timestamp_ms);
    let queries = [
        everything(AuditStart::NewestOfAll),
        everything(AuditStart::Newest(ENV.into())),
        // A flag filter leaves segments out, even one of that name.
        AuditQuery { flags: vec!["staff".into()], ..everything(AuditStart::NewestOfAll) },
        AuditQuery { flags: vec!["chat".into()], ..everything(AuditStart::NewestOfAll) },
        AuditQuery {
            flags: vec!["search".into(), "chat".into(), "search".into()],
            ..everything(AuditStart::NewestOfAll)
        },
        AuditQuery {
            flags: vec!["chat".into(), "search".into()],
            ..everything(AuditStart::Newest(ENV.into()))
        },
        AuditQuery { actor: Some("ana".into()), ..everything(AuditStart::NewestOfAll) },
        AuditQuery {
            actions: vec![Operation::Kill, Operation::Rollback],
            ..everything(AuditStart::NewestOfAll)
        },
        AuditQuery { since_ms: Some(since), ..everything(AuditStart::NewestOfAll) },
        AuditQuery { until_ms: Some(until), ..everything(AuditStart::Newest(STAGING.into())) },
        AuditQuery { since_ms: Some(since), until_ms: Some(until), ..everything(AuditStart::NewestOfAll) },
        AuditQuery {
            flags: vec!["chat".into(), "search".into()],
            actor: Some("ben".into()),
            since_ms: Some(since),
            until_ms: Some(until),
            actions: vec![Operation::Revive, Operation::Create, Operation::Rollback],
            ..everything(AuditStart::NewestOfAll)
        },
        AuditQuery {
            actor: Some("ana".into()),
            actions: vec![Operation::Kill],
            until_ms: Some(until),
            ..everything(AuditStart::NewestOfAll)
        },
    ];
    let unknown = store.audit(&everything(AuditStart::Newest("nowhere".into())));
    assert!(matches!(unknown, Err(StoreError::UnknownEnvironment { .. })), "{unknown:?}");
    for query in &queries {
        let answer = store.audit(query).unwrap();
        let expected = expected(&store, query);
        assert_eq!(revisions(&answer.entries), revisions(&expected), "{query:?}");
        assert_eq!(answer.entries, expected, "{query:?}");
        assert!(answer.next.is_empty(), "a page of 1000 holds everything: {query:?}");
    }
    // A sample that each filter really cuts: none of these is everything or nothing.
    assert!(expected(&store, &queries[2]).is_empty());
    for query in &queries[3..] {
        let matched = expected(&store, query).len();
        assert!(matched > 0 && matched < all.len(), "{matched} of {}: {query:?}", all.len());
    }
}

#[test]
fn pages_return_every_entry_once_in_order_across_environments() {
    let (_dir, store) = busy_store();
    let queries = [
        everything(AuditStart::NewestOfAll),
        AuditQuery { flags: vec!["chat".into(), "search".into()], ..everything(AuditStart::NewestOfAll) },
        AuditQuery { actor: Some("ben".into()), ..everything(AuditStart::NewestOfAll) },
        AuditQuery { actions: vec![Operation::Kill], ..everything(AuditStart::Newest(ENV.into())) },
    ];
    for query in &queries {
        let whole = expected(&store, query);
        for page_size in 1..=4 {
            assert_eq!(
                revisions(&paged(&store, query, page_size)),
                revisions(&whole),
                "{page_size}: {query:?}"
            );
        }
    }
}

#[test]
fn pages_continue_where_they_stopped_while_writes_go_on() {
    let (_dir, store) = busy_store();
    let query = AuditQuery { page_size: 4, ..everything(AuditStart::NewestOfAll) };
    let whole = model(&store);
    let first = store.audit(&query).unwrap();
    assert_eq!(revisions(&first.entries), revisions(&whole[..4]));
    // Newer writes, in both environments and in a new one, belong to a new query.
    store.write(ENV, kill("chat"), &by("ana")).unwrap();
    store.write(STAGING, put_op(rollout("late", 1.0)), &by("ana")).unwrap();
    store.create_environment("qa", None, &by("ana"), &|| true).unwrap();
    store.write("qa", put_op(rollout("chat", 1.0)), &by("ana")).unwrap();
    let rest = paged(&store, &AuditQuery { start: AuditStart::After(first.next), ..query.clone() }, 3);
    assert_eq!(revisions(&rest), revisions(&whole[4..]));
    // And a position beyond an environment's revision (another store's cursor) reads it
    // from its newest entry.
    let beyond = AuditStart::After(vec![(ENV.into(), 999)]);
    let page = store.audit(&AuditQuery { start: beyond, ..everything(AuditStart::NewestOfAll) }).unwrap();
    assert_eq!(page.entries.len() as u64, store.revision(ENV).unwrap());
}

#[test]
fn before_and_after_are_the_previous_and_the_new_version() {
    let (_dir, store) = new_store();
    let created = put(&store, rollout("chat", 5.0)).entry;
    let ramped = put(&store, rollout("chat", 25.0)).entry;
    let killed = write(&store, kill("chat")).unwrap().entry;
    write(&store, delete("chat")).unwrap();
    let rolled_back = write(&store, rollback("chat", 2)).unwrap().entry;
    let staff = write(&store, WriteOp::PutSegment { segment: segment("staff", &["ana"]) }).unwrap().entry;
    let widened =
        write(&store, WriteOp::PutSegment { segment: segment("staff", &["ana", "ben"]) }).unwrap().entry;
    write(&store, WriteOp::DeleteSegment { key: "staff".into() }).unwrap();

    let page = store.audit(&everything(AuditStart::Newest(ENV.into()))).unwrap();
    let sides: Vec<(Operation, Option<Subject>, Option<Subject>)> = page
        .entries
        .iter()
        .rev()
        .map(|logged| (logged.entry.operation, logged.before.clone(), logged.after()))
        .collect();
    let flag = |entry: &HistoryEntry| Some(Subject::Flag(entry.flag.clone().unwrap()));
    let segment = |entry: &HistoryEntry| Some(Subject::Segment(entry.segment.clone().unwrap()));
    assert_eq!(
        sides,
        vec![
            (Operation::Create, None, flag(&created)),
            (Operation::Update, flag(&created), flag(&ramped)),
            (Operation::Kill, flag(&ramped), flag(&killed)),
            (Operation::Delete, flag(&killed), None),
            // Brought back from nothing, with version 2's content.
            (Operation::Rollback, None, flag(&rolled_back)),
            (Operation::Create, None, segment(&staff)),
            (Operation::Update, segment(&staff), segment(&widened)),
            (Operation::Delete, segment(&widened), None),
        ]
    );
    assert_eq!(content(&rolled_back.flag.clone().unwrap()), content(&ramped.flag.unwrap()));
}

#[test]
fn replaying_each_after_in_order_gives_the_live_environment() {
    let (_dir, store) = busy_store();
    for environment in [ENV, STAGING] {
        let mut replayed: BTreeMap<(SubjectKind, String), Subject> = BTreeMap::new();
        let page = store.audit(&everything(AuditStart::Newest(environment.into()))).unwrap();
        for logged in page.entries.iter().rev() {
            let subject = (logged.entry.kind, logged.entry.key.clone());
            assert_eq!(
                replayed.get(&subject).cloned(),
                logged.before,
                "before of r{}",
                logged.entry.revision
            );
            match logged.after() {
                Some(after) => replayed.insert(subject, after),
                None => replayed.remove(&subject),
            };
        }
        let (_, live) = store.snapshot(environment).unwrap();
        let live: BTreeMap<(SubjectKind, String), Subject> = live
            .flags
            .into_iter()
            .map(|flag| ((SubjectKind::Flag, flag.key.clone()), Subject::Flag(flag)))
            .chain(
                live.segments
                    .into_iter()
                    .map(|segment| ((SubjectKind::Segment, segment.key.clone()), Subject::Segment(segment))),
            )
            .collect();
        assert_eq!(replayed, live, "{environment}");
    }
}
