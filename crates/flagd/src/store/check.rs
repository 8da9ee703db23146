//! Opening a store file, and the check every open runs: redb's own integrity check (the
//! checksum of every committed page) and the invariants this store's writes keep.
//!
//! A damaged file is refused with the cause and its path, never served: a store that starts
//! on a corrupt page answers its first history read with a panic deep inside redb. Only a
//! path where no file exists becomes a new store — an empty (0-byte) or foreign file is
//! somebody's lost data or a wrong `--data`, and starting empty on it would hide that.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;

use super::backend::{Database, ReadTransaction, ReadableTable};
use flag_core::{Flag, Segment, SubjectKind};
use redb::Builder;
use serde_json::Value;

use super::bookmarks;
use super::environments;
use super::error::StoreError;
use super::history::{self, Head};
use super::plan_rows;
use super::records::{ChangeRecord, StoredVersion, decode};
use super::subject::versions_name;
use super::tables::{
    BOOKMARKS, CHANGES, ENVIRONMENT_INFO, ENVIRONMENTS, FLAG_HEADS, FLAG_VERSIONS, FLAGS, ROLLOUTS,
    SEGMENT_HEADS, SEGMENT_VERSIONS, SEGMENTS,
};
use super::webhook_cursors;

/// The first bytes of every redb file (redb's `MAGICNUMBER`, format version 3 and later).
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

/// What a check looked at, for `flagd check` and the start-up log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct CheckReport {
    /// Whether the file did not exist and was created.
    pub(crate) created: bool,
    /// Environments, with their revisions.
    pub(crate) environments: u64,
    /// Change-log rows (the sum of the environments' revisions).
    pub(crate) changes: u64,
    /// History rows, flags and segments.
    pub(crate) versions: u64,
    /// Live flags.
    pub(crate) flags: u64,
    /// Live segments.
    pub(crate) segments: u64,
}

/// Opens (or, where no file exists, creates) the redb file at `path` with redb's integrity
/// check; the caller then prepares the tables and runs [`invariants`].
pub(super) fn open_database(path: &Path) -> Result<(Database, bool), StoreError> {
    let created = match std::fs::metadata(path) {
        Ok(meta) if meta.len() == 0 => return Err(StoreError::Empty { path: path.to_owned() }),
        Ok(_) => {
            refuse_foreign(path)?;
            false
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .map_err(|source| StoreError::CreateDir { path: parent.to_owned(), source })?;
            }
            true
        }
        Err(source) => return Err(StoreError::Read { path: path.to_owned(), source }),
    };
    // redb's check turns a corrupted page into an error rather than a panic, but a file
    // damaged in a way it does not expect can still panic inside it: caught here, so a bad
    // file is a refusal with its cause, not a crash.
    let opened = panic::catch_unwind(AssertUnwindSafe(|| {
        Builder::new().set_check_integrity_on_open(true).create(path)
    }));
    match opened {
        Ok(Ok(db)) => Ok((Database::Redb(db), created)),
        Ok(Err(redb::DatabaseError::Storage(redb::StorageError::Corrupted(problem)))) => {
            Err(StoreError::Damaged {
                path: path.to_owned(),
                problem: format!("redb integrity check: {problem}"),
            })
        }
        Ok(Err(source)) => Err(StoreError::Open { path: path.to_owned(), source }),
        Err(payload) => Err(StoreError::Damaged {
            path: path.to_owned(),
            problem: format!("redb panicked reading it: {}", panic_message(&*payload)),
        }),
    }
}

/// Refuses a file that does not start as redb files do.
fn refuse_foreign(path: &Path) -> Result<(), StoreError> {
    let mut head = [0u8; REDB_MAGIC.len()];
    let mut file =
        std::fs::File::open(path).map_err(|source| StoreError::Read { path: path.to_owned(), source })?;
    let mut filled = 0;
    while filled < head.len() {
        match file.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(source) => return Err(StoreError::Read { path: path.to_owned(), source }),
        }
    }
    if head[..filled] == REDB_MAGIC {
        return Ok(());
    }
    let found = head[..filled].iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ");
    Err(StoreError::Foreign { path: path.to_owned(), found })
}

/// The text of a caught panic.
pub(super) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

/// Each deleted environment and the revision it was deleted at. Files made before
/// environments were created explicitly lack the table until opened for writing.
fn deleted_environments(txn: &ReadTransaction) -> Result<Vec<(String, u64)>, StoreError> {
    let info = match txn.open_table(ENVIRONMENT_INFO) {
        Ok(info) => info,
        Err(StoreError::Table(redb::TableError::TableDoesNotExist(_))) => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    let mut deleted = Vec::new();
    for row in info.iter()? {
        let (environment, _) = row?;
        let environment = environment.value();
        if let Some(record) = environments::record(&info, environment)?.and_then(|record| record.deleted) {
            deleted.push((environment.to_owned(), record.revision));
        }
    }
    Ok(deleted)
}

/// Checks, in one read transaction, what every write keeps true: each environment's
/// revision is its highest change-log row and it has one row per revision; every change-log
/// row's version row is there and records that revision; each key's versions run 1, 2, 3…
/// with no gap, each naming the revision of the one before it, and its head names the
/// newest; every live row is its key's newest version, and no live row lacks one; no
/// version row up to the environment's revision or head is left over (rows beyond it are an
/// unfinished apply's, staged where no read looks); no bookmark or webhook cursor names a revision its
/// environment has not reached.
pub(super) fn invariants(db: &Database, path: &Path) -> Result<CheckReport, StoreError> {
    let damaged = |problem: String| StoreError::Damaged { path: path.to_owned(), problem };
    let txn = db.begin_read()?;
    let environments = txn.open_table(ENVIRONMENTS)?;
    let changes = txn.open_table(CHANGES)?;
    let flag_history = history::read::<Flag>(&txn)?;
    let segment_history = history::read::<Segment>(&txn)?;
    let history_of = |kind: SubjectKind| match kind {
        SubjectKind::Flag => &flag_history,
        SubjectKind::Segment => &segment_history,
    };
    let mut report = CheckReport::default();

    // Each key's newest version and the revision it was written at, as the change log says.
    let mut newest: BTreeMap<(String, SubjectKind, String), Head> = BTreeMap::new();
    let mut revisions: BTreeMap<String, u64> = BTreeMap::new();
    for row in environments.iter()? {
        let (environment, revision) = row?;
        revisions.insert(environment.value().to_owned(), revision.value());
    }
    report.environments = revisions.len() as u64;
    // A deleted environment's change log stays, up to the revision it was deleted at.
    for (environment, deleted_at) in deleted_environments(&txn)? {
        if revisions.contains_key(&environment) {
            return Err(damaged(format!("environment {environment:?} exists and is recorded as deleted")));
        }
        revisions.insert(environment, deleted_at);
    }
    // Every change row belongs to a known environment, in order 1..=revision.
    let mut expected: Option<(String, u64)> = None;
    for row in changes.iter()? {
        let (key, value) = row?;
        let (environment, revision) = key.value();
        report.changes += 1;
        let next = match &expected {
            Some((previous, last)) if previous == environment => last + 1,
            _ => 1,
        };
        if revision != next {
            return Err(damaged(format!(
                "environment {environment:?}: change-log row {revision} follows {}; revisions must run 1, 2, 3…",
                next - 1
            )));
        }
        expected = Some((environment.to_owned(), revision));
        let change: ChangeRecord =
            decode(value.value(), "changes", format_args!("({environment}, {revision})"))?;
        let (kind, noun, key) = (change.kind, change.kind.noun(), change.key.as_str());
        let stored = history_of(kind).at_revision(environment, revision)?.ok_or_else(|| {
            damaged(format!(
                "environment {environment:?}: revision {revision} wrote {noun} {key:?} version {}, which has no version row",
                change.version
            ))
        })?;
        let stored: StoredVersion<Value> =
            decode(&stored, versions_name(kind), format_args!("({environment}, {revision})"))?;
        if stored.revision != revision {
            return Err(damaged(format!(
                "environment {environment:?}: {noun} {key:?} version {} records revision {}, but the change log has it at {revision}",
                change.version, stored.revision
            )));
        }
        let before = newest.get(&(environment.to_owned(), kind, change.key.clone()));
        let (expected_version, expected_previous) =
            before.map_or((1, None), |head| (head.version + 1, Some(head.revision)));
        if change.version != expected_version {
            return Err(damaged(format!(
                "environment {environment:?}: {noun} {key:?} has version {} where {expected_version} was expected",
                change.version
            )));
        }
        if stored.previous != expected_previous {
            return Err(damaged(format!(
                "environment {environment:?}: {noun} {key:?} version {} names {:?} as its previous version's revision, not {expected_previous:?}",
                change.version, stored.previous
            )));
        }
        report.versions += 1;
        newest.insert((environment.to_owned(), kind, change.key), Head { version: change.version, revision });
    }
    // The revision counter is the highest change-log row.
    let mut highest: BTreeMap<&str, u64> = BTreeMap::new();
    for row in changes.iter()? {
        let (key, _) = row?;
        let (environment, revision) = key.value();
        if !revisions.contains_key(environment) {
            return Err(damaged(format!(
                "change-log row ({environment:?}, {revision}) belongs to no environment"
            )));
        }
        let environment = revisions.get_key_value(environment).map_or("", |(name, _)| name.as_str());
        highest.insert(environment, revision);
    }
    for (environment, revision) in &revisions {
        let logged = highest.get(environment.as_str()).copied().unwrap_or(0);
        if logged != *revision {
            return Err(damaged(format!(
                "environment {environment:?} is at revision {revision}, but its change log ends at {logged}"
            )));
        }
    }

    let live_flags = txn.open_table(FLAGS)?;
    let live_segments = txn.open_table(SEGMENTS)?;
    for ((environment, kind, key), newest) in &newest {
        let live = match kind {
            SubjectKind::Flag => &live_flags,
            SubjectKind::Segment => &live_segments,
        };
        let (environment, key, noun) = (environment.as_str(), key.as_str(), kind.noun());
        let head = history_of(*kind).head(environment, key)?;
        if head != Some(*newest) {
            return Err(damaged(format!(
                "environment {environment:?}: the head of {noun} {key:?} is {head:?}, but the change log's newest is {newest:?}"
            )));
        }
        let stored = history_of(*kind).at_revision(environment, newest.revision)?.unwrap_or_default();
        let stored: StoredVersion<Value> =
            decode(&stored, versions_name(*kind), format_args!("({environment}, {})", newest.revision))?;
        let live: Option<Value> = match live.get((environment, key))? {
            Some(row) => Some(decode(row.value(), "live", format_args!("({environment}, {key})"))?),
            None => None,
        };
        if live != stored.content {
            return Err(damaged(format!(
                "environment {environment:?}: the live {noun} {key:?} is not its newest version ({})",
                newest.version
            )));
        }
    }
    for (kind, live) in [(SubjectKind::Flag, &live_flags), (SubjectKind::Segment, &live_segments)] {
        for row in live.iter()? {
            let row = row?;
            let (environment, key) = row.0.value();
            if !newest.contains_key(&(environment.to_owned(), kind, key.to_owned())) {
                return Err(damaged(format!(
                    "environment {environment:?}: live {} {key:?} has no history",
                    kind.noun()
                )));
            }
            match kind {
                SubjectKind::Flag => report.flags += 1,
                SubjectKind::Segment => report.segments += 1,
            }
        }
    }
    // Version rows and heads the change log never names.
    for (kind, versions, heads) in [
        (SubjectKind::Flag, FLAG_VERSIONS, FLAG_HEADS),
        (SubjectKind::Segment, SEGMENT_VERSIONS, SEGMENT_HEADS),
    ] {
        for row in txn.open_table(versions)?.iter()? {
            let row = row?;
            let (environment, revision) = row.0.value();
            // Staged by an apply that did not finish, beyond what any read looks at.
            if revision > revisions.get(environment).copied().unwrap_or(0) {
                continue;
            }
            let change = changes.get((environment, revision))?;
            let change: Option<ChangeRecord> = match change {
                Some(row) => {
                    Some(decode(row.value(), "changes", format_args!("({environment}, {revision})"))?)
                }
                None => None,
            };
            if change.is_none_or(|change| change.kind != kind) {
                return Err(damaged(format!(
                    "environment {environment:?}: a {} version at revision {revision} is in no change-log row",
                    kind.noun()
                )));
            }
        }
        for row in txn.open_table(heads)?.iter()? {
            let row = row?;
            let (environment, key) = row.0.value();
            if !newest.contains_key(&(environment.to_owned(), kind, key.to_owned())) {
                return Err(damaged(format!(
                    "environment {environment:?}: {} {key:?} has a head but no change-log row",
                    kind.noun()
                )));
            }
        }
    }
    // Each bookmark names a revision its environment has reached. Files made before
    // bookmarks lack the table until they are opened for writing.
    match txn.open_table(BOOKMARKS) {
        Ok(bookmarks) => {
            for row in bookmarks.iter()? {
                let row = row?;
                let (environment, name) = row.0.value();
                let revision = bookmarks::revision_of_row(row.1.value(), environment, name)?;
                let reached = revisions.get(environment).copied().unwrap_or(0);
                if revision > reached {
                    return Err(damaged(format!(
                        "environment {environment:?}: bookmark {name:?} names revision {revision}, past its revision {reached}"
                    )));
                }
            }
        }
        Err(StoreError::Table(redb::TableError::TableDoesNotExist(_))) => {}
        Err(error) => return Err(error),
    }
    // Each plan decodes and drives a flag that has a history in its environment.
    match txn.open_table(ROLLOUTS) {
        Ok(plans) => {
            for row in plans.iter()? {
                let row = row?;
                let (environment, key) = row.0.value();
                let plan = plan_rows::decode_row(row.1.value(), environment, key)?;
                // Versions run 1 to the newest (checked above).
                let newest = flag_history.latest_version(environment, key)?;
                if plan.flag_version == 0 || plan.flag_version > newest {
                    return Err(damaged(format!(
                        "environment {environment:?}: the rollout plan of {key:?} names its version {}, which is not in its history",
                        plan.flag_version
                    )));
                }
            }
        }
        Err(StoreError::Table(redb::TableError::TableDoesNotExist(_))) => {}
        Err(error) => return Err(error),
    }
    if let Some(problem) = webhook_cursors::problem(&txn, &revisions)? {
        return Err(damaged(problem));
    }
    Ok(report)
}
