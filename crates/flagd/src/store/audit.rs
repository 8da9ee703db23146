//! The audit log's query ([`Store::audit`](super::Store::audit)): the changes of one
//! environment or of all, filtered by flag, actor, time and operation, newest first, a page
//! at a time, from one read transaction.
//!
//! Each environment is read as a stream in revision order: its change log, or, with a flag
//! filter, the named flags' histories merged by revision (so a flag filter walks only those
//! flags' versions). The streams are merged by commit time, then environment name. Nothing
//! is read ahead: each stream holds only its next matching entry, so a page costs the rows
//! walked to fill it, however long the history, and memory for the page alone. Times follow
//! revisions within an environment (see `past`), so `until` is a binary search for the first
//! row of the change log read (a flag's versions are walked from its newest to the first
//! within `until`), and `since` ends a stream at its first older row.
//!
//! A page ends with each stream's position: the revision its next entry is at or below. The
//! next page starts exactly there, so paging yields every entry once, in the order of one
//! large page, whatever the clocks did and whatever is written meanwhile (newer changes
//! belong to a new query): the merge is a function of the positions alone.

use std::collections::BTreeSet;
use std::iter::Rev;

use super::backend::{Database, Range, ReadOnlyTable, ReadableTable};
use flag_core::{Flag, HistoryEntry, LoggedChange, Operation, Segment, Subject, SubjectKind};
use serde::Deserialize;

use super::environments;
use super::error::StoreError;
use super::history::{self, Cursor};
use super::records::{ChangeRecord, StoredVersion, decode};
use super::subject::{Versioned, versions_name};
use super::tables::{CHANGES, ENVIRONMENT_INFO, ENVIRONMENTS, RevisionKey};

/// What the log is asked for; an entry is listed when it passes every filter.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct AuditQuery {
    /// The environments read, and from where.
    pub(crate) start: AuditStart,
    /// Only these flags' changes (segments left out); every change when empty.
    pub(crate) flags: Vec<String>,
    /// Only changes by this actor, exactly.
    pub(crate) actor: Option<String>,
    /// Only changes committed at or after this time (ms since the Unix epoch).
    pub(crate) since_ms: Option<i64>,
    /// Only changes committed at or before this time.
    pub(crate) until_ms: Option<i64>,
    /// Only these operations; every one when empty.
    pub(crate) actions: Vec<Operation>,
    /// At most this many entries.
    pub(crate) page_size: usize,
    /// The environments the caller may read; every one when `None`. Others are left out
    /// of an all-environments query and of a cursor's positions.
    pub(crate) readable: Option<Vec<String>>,
}

/// Which environments a query reads, and from where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AuditStart {
    /// One environment, from its newest change.
    Newest(String),
    /// Every environment that has a log, each from its newest change.
    NewestOfAll,
    /// Where a previous page stopped: each environment with entries left and the revision
    /// its next entry is at or below.
    After(Vec<(String, u64)>),
}

/// One page of the log.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct AuditPage {
    /// Newest first.
    pub(crate) entries: Vec<LoggedChange>,
    /// Where the next page starts ([`AuditStart::After`]); empty when nothing is left.
    pub(crate) next: Vec<(String, u64)>,
}

/// See [`Store::audit`](super::Store::audit).
pub(super) fn query(db: &Database, query: &AuditQuery) -> Result<AuditPage, StoreError> {
    let txn = db.begin_read()?;
    let tables = Tables {
        changes: txn.open_table(CHANGES)?,
        flags: history::read::<Flag>(&txn)?,
        segments: history::read::<Segment>(&txn)?,
    };
    let environments = txn.open_table(ENVIRONMENTS)?;
    let info = txn.open_table(ENVIRONMENT_INFO)?;
    // A deleted environment's log is read up to its deletion.
    let revision_of = |table: &_, environment: &str| environments::counter(table, &info, environment);
    let mut starts: Vec<(String, u64)> = match &query.start {
        AuditStart::Newest(environment) => {
            environments::readable(&txn, environment)?;
            vec![(environment.clone(), revision_of(&environments, environment)?)]
        }
        AuditStart::NewestOfAll => environments
            .iter()?
            .map(|row| {
                let (environment, revision) = row?;
                Ok((environment.value().to_owned(), revision.value()))
            })
            .collect::<Result<_, StoreError>>()?,
        // A position past the environment's revision (another store's cursor) reads from its newest.
        AuditStart::After(positions) => positions
            .iter()
            .map(|(environment, at)| {
                Ok((environment.clone(), (*at).min(revision_of(&environments, environment)?)))
            })
            .collect::<Result<_, StoreError>>()?,
    };
    if let Some(readable) = &query.readable {
        starts.retain(|(environment, _)| readable.contains(environment));
    }
    let mut streams = Vec::with_capacity(starts.len());
    for (environment, at) in starts {
        if at > 0 {
            streams.push(Stream::open(&tables, query, environment, at)?);
        }
    }
    let mut entries = Vec::new();
    while entries.len() < query.page_size {
        let Some(newest) = newest(&streams) else { break };
        let Some(Taken { entry, previous }) = streams[newest].take(&tables, query)? else { break };
        let before = before(&tables, &entry, previous)?;
        entries.push(LoggedChange { entry, before });
    }
    let next = streams
        .iter()
        .filter_map(|stream| stream.head().map(|head| (stream.environment.clone(), head.revision)))
        .collect();
    Ok(AuditPage { entries, next })
}

/// The history tables and the change log, open in one read transaction.
struct Tables {
    changes: ReadOnlyTable<RevisionKey, &'static [u8]>,
    flags: history::Readable,
    segments: history::Readable,
}

impl Tables {
    fn history(&self, kind: SubjectKind) -> &history::Readable {
        match kind {
            SubjectKind::Flag => &self.flags,
            SubjectKind::Segment => &self.segments,
        }
    }

    /// The change-log row of `revision`, which the environment has reached.
    fn change(&self, environment: &str, revision: u64) -> Result<ChangeRecord, StoreError> {
        let key = || format!("({environment}, {revision})");
        let row = self.changes.get((environment, revision))?;
        let row = row.ok_or_else(|| StoreError::Missing { table: "changes", key: key() })?;
        decode(row.value(), "changes", key())
    }

    /// The version row of kind `kind` written at `revision`, which exists.
    fn row(&self, kind: SubjectKind, environment: &str, revision: u64) -> Result<Vec<u8>, StoreError> {
        self.history(kind).at_revision(environment, revision)?.ok_or_else(|| StoreError::Missing {
            table: versions_name(kind),
            key: format!("({environment}, {revision})"),
        })
    }

    /// What the filters look at of the version of kind `kind` written at `revision`.
    fn header(&self, kind: SubjectKind, environment: &str, revision: u64) -> Result<Header, StoreError> {
        let row = self.row(kind, environment, revision)?;
        decode(&row, versions_name(kind), format_args!("({environment}, {revision})"))
    }

    /// The header of the change that made `revision`.
    fn header_of_revision(&self, environment: &str, revision: u64) -> Result<Header, StoreError> {
        let change = self.change(environment, revision)?;
        self.header(change.kind, environment, revision)
    }
}

/// The fields of a history row the filters look at, read without its content.
#[derive(Debug, Deserialize)]
struct Header {
    operation: Operation,
    actor: String,
    timestamp_ms: i64,
}

/// Whether a row passes the filters other than `since` (which ends a stream instead) and
/// the flag keys (which choose the rows walked).
fn passes(query: &AuditQuery, kind: SubjectKind, header: &Header) -> bool {
    let AuditQuery { start: _, flags, actor, since_ms: _, until_ms, actions, page_size: _, readable: _ } =
        query;
    (flags.is_empty() || kind == SubjectKind::Flag)
        && actor.as_ref().is_none_or(|actor| *actor == header.actor)
        && until_ms.is_none_or(|until| header.timestamp_ms <= until)
        && (actions.is_empty() || actions.contains(&header.operation))
}

/// The highest `n` in `1..=high` for which `holds(n)`, or 0 when none: `holds` is true up to
/// some point and false after it.
fn last_holding(
    high: u64,
    mut holds: impl FnMut(u64) -> Result<bool, StoreError>,
) -> Result<u64, StoreError> {
    let (mut low, mut high) = (0, high);
    while low < high {
        let middle = low + (high - low).div_ceil(2);
        if holds(middle)? {
            low = middle;
        } else {
            high = middle - 1;
        }
    }
    Ok(low)
}

/// One environment's entries, newest revision first, holding the next one that passes.
struct Stream {
    environment: String,
    /// With a flag filter, one source per flag; otherwise the change log alone.
    sources: Vec<Source>,
}

impl Stream {
    /// The environment's entries at or below revision `at`, each source on its first match.
    fn open(tables: &Tables, query: &AuditQuery, environment: String, at: u64) -> Result<Stream, StoreError> {
        let until = |header: &Header| query.until_ms.is_none_or(|until| header.timestamp_ms <= until);
        let mut sources = Vec::new();
        if query.flags.is_empty() {
            let first = match query.until_ms {
                None => at,
                Some(_) => last_holding(at, |revision| {
                    Ok(until(&tables.header_of_revision(&environment, revision)?))
                })?,
            };
            let rows = tables.changes.range((environment.as_str(), 1)..=(environment.as_str(), first))?.rev();
            sources.push(Source { rows: Rows::Changes(Box::new(rows)), head: None, done: false });
        } else {
            // A key named twice is walked once.
            let keys: BTreeSet<&String> = query.flags.iter().collect();
            for key in keys {
                // The newest version at or below `at` and within `until`: both hold up to
                // some version and not after it.
                let mut cursor = tables.flags.newest(&environment, key)?;
                while let Some(at_cursor) = cursor {
                    let (row, next) = tables.flags.read_at(&environment, key, at_cursor)?;
                    let header: Header = decode(
                        &row.bytes,
                        Flag::VERSIONS_NAME,
                        format_args!("({environment}, {})", row.revision),
                    )?;
                    if row.revision <= at && until(&header) {
                        break;
                    }
                    cursor = next;
                }
                sources.push(Source { rows: Rows::Flag(key.clone(), cursor), head: None, done: false });
            }
        }
        for source in &mut sources {
            source.advance(tables, query, &environment)?;
        }
        Ok(Stream { environment, sources })
    }

    /// The source holding the stream's next entry: the highest revision.
    fn next_source(&self) -> Option<usize> {
        (0..self.sources.len())
            .filter_map(|i| self.sources[i].head.as_ref().map(|head| (i, head.entry.revision)))
            .max_by_key(|(_, revision)| *revision)
            .map(|(i, _)| i)
    }

    /// The stream's next entry.
    fn head(&self) -> Option<&HistoryEntry> {
        self.next_source().and_then(|i| self.sources[i].head.as_ref()).map(|taken| &taken.entry)
    }

    /// Takes the next entry (`None` at the end) and moves on to the one after it.
    fn take(&mut self, tables: &Tables, query: &AuditQuery) -> Result<Option<Taken>, StoreError> {
        let Some(source) = self.next_source().map(|i| &mut self.sources[i]) else { return Ok(None) };
        let entry = source.head.take();
        source.advance(tables, query, &self.environment)?;
        Ok(entry)
    }
}

/// The stream whose next entry is the newest: the latest time, then the first environment
/// by name.
fn newest(streams: &[Stream]) -> Option<usize> {
    let mut best: Option<(usize, &HistoryEntry)> = None;
    for (i, stream) in streams.iter().enumerate() {
        let Some(head) = stream.head() else { continue };
        let newer = best.is_none_or(|(_, best)| {
            (head.timestamp_ms, std::cmp::Reverse(&head.environment))
                > (best.timestamp_ms, std::cmp::Reverse(&best.environment))
        });
        if newer {
            best = Some((i, head));
        }
    }
    best.map(|(i, _)| i)
}

/// Rows walked newest first: the change log (each row names the version it wrote), or
/// one flag's versions.
enum Rows {
    /// Boxed: a range is large, and a flag filter has a source per flag.
    Changes(Box<Rev<Range<'static, RevisionKey, &'static [u8]>>>),
    /// The flag, and where its walk is.
    Flag(String, Option<Cursor>),
}

/// An entry taken from a stream, with the revision of its subject's previous version.
struct Taken {
    entry: HistoryEntry,
    previous: Option<u64>,
}

struct Source {
    rows: Rows,
    /// The next row that passes, decoded.
    head: Option<Taken>,
    /// No row is left (or the rest are older than `since`).
    done: bool,
}

impl Source {
    /// Walks on to the next row that passes, into `head` (`None` at the end).
    fn advance(&mut self, tables: &Tables, query: &AuditQuery, environment: &str) -> Result<(), StoreError> {
        self.head = None;
        while !self.done {
            let Some(Walked { kind, key, version, revision, bytes }) = self.next_row(tables, environment)?
            else {
                self.done = true;
                break;
            };
            let header: Header =
                decode(&bytes, versions_name(kind), format_args!("({environment}, {revision})"))?;
            if query.since_ms.is_some_and(|since| header.timestamp_ms < since) {
                // Times follow revisions: every row after this one is older still.
                self.done = true;
                break;
            }
            if passes(query, kind, &header) {
                let at = (environment, key.as_str(), version, revision);
                self.head = Some(match kind {
                    SubjectKind::Flag => taken::<Flag>(&bytes, at)?,
                    SubjectKind::Segment => taken::<Segment>(&bytes, at)?,
                });
                break;
            }
        }
        Ok(())
    }

    /// The next row, read once.
    fn next_row(&mut self, tables: &Tables, environment: &str) -> Result<Option<Walked>, StoreError> {
        Ok(match &mut self.rows {
            Rows::Changes(rows) => match rows.next() {
                None => None,
                Some(row) => {
                    let (key, value) = row?;
                    let revision = key.value().1;
                    let change: ChangeRecord =
                        decode(value.value(), "changes", format_args!("({environment}, {revision})"))?;
                    let bytes = tables.row(change.kind, environment, revision)?;
                    Some(Walked {
                        kind: change.kind,
                        key: change.key,
                        version: change.version,
                        revision,
                        bytes,
                    })
                }
            },
            Rows::Flag(key, cursor) => match *cursor {
                None => None,
                Some(at) => {
                    let (row, next) = tables.flags.read_at(environment, key, at)?;
                    *cursor = next;
                    let (version, revision, bytes) = (row.version, row.revision, row.bytes);
                    Some(Walked { kind: SubjectKind::Flag, key: key.clone(), version, revision, bytes })
                }
            },
        })
    }
}

/// A version row a source walked to, with what the change log or the chain said of it.
struct Walked {
    kind: SubjectKind,
    key: String,
    version: u64,
    revision: u64,
    bytes: Vec<u8>,
}

/// Version `version` of `key`, written at `revision`, as a history entry.
fn version_entry<T: Versioned>(
    tables: &Tables,
    environment: &str,
    key: &str,
    version: u64,
    revision: u64,
) -> Result<Taken, StoreError> {
    let row = tables.row(T::KIND, environment, revision)?;
    taken::<T>(&row, (environment, key, version, revision))
}

/// The history entry of a version row: `(environment, key, version, revision)`.
fn taken<T: Versioned>(
    bytes: &[u8],
    (environment, key, version, revision): (&str, &str, u64, u64),
) -> Result<Taken, StoreError> {
    let stored: StoredVersion<T> =
        decode(bytes, T::VERSIONS_NAME, format_args!("({environment}, {revision})"))?;
    let previous = stored.previous;
    Ok(Taken { entry: stored.into_entry(environment, key, version), previous })
}

/// The content `entry`'s subject had before it: its previous version's, stored at
/// `previous`.
fn before(
    tables: &Tables,
    entry: &HistoryEntry,
    previous: Option<u64>,
) -> Result<Option<Subject>, StoreError> {
    let (environment, key) = (entry.environment.as_str(), entry.key.as_str());
    let (version, revision) = match (entry.version, previous) {
        (0 | 1, _) => return Ok(None),
        (version, Some(previous)) => (version - 1, previous),
        (version, None) => {
            let key = format!("({environment}, ?) for version {} of {key}", version - 1);
            return Err(StoreError::Missing { table: versions_name(entry.kind), key });
        }
    };
    Ok(match entry.kind {
        SubjectKind::Flag => {
            version_entry::<Flag>(tables, environment, key, version, revision)?.entry.flag.map(Subject::Flag)
        }
        SubjectKind::Segment => version_entry::<Segment>(tables, environment, key, version, revision)?
            .entry
            .segment
            .map(Subject::Segment),
    })
}
