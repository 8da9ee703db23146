//! `flagd check`: the start-up check of a store file, run offline.

use std::path::{Path, PathBuf};

use crate::store::{Store, StoreOptions};

/// What [`check_store`] looked at in a file that passed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreReport {
    /// The file checked.
    pub path: PathBuf,
    /// This store's identity.
    pub store_id: String,
    /// Each environment with its revision, sorted by name.
    pub environments: Vec<(String, u64)>,
    /// Change-log rows (one per revision of every environment).
    pub changes: u64,
    /// History rows (every version of every flag and segment).
    pub versions: u64,
    /// Live flags, all environments.
    pub flags: u64,
    /// Live segments, all environments.
    pub segments: u64,
}

/// Why a store file did not pass [`check_store`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// No file at the path: `check` never creates one.
    #[error("no store file at {}", path.display())]
    Missing {
        /// The path.
        path: PathBuf,
    },
    /// The file is damaged, empty, foreign, locked or unreadable; the source says which.
    #[error("checking the store file {}", path.display())]
    Failed {
        /// The file.
        path: PathBuf,
        /// What the check found.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Runs the check flagd runs on every start (redb's integrity check of every committed page,
/// then the store's own invariants: each environment's revision is its change log's last
/// row, every change has its history row, versions have no gaps, every live row is its
/// newest version). Like a start, it may let redb repair what a crash left (a commit).
///
/// The file must not be open in a running flagd (redb locks it); back that one up with
/// `flagd backup` and check the copy.
pub fn check_store(path: &Path) -> Result<StoreReport, CheckError> {
    if !path.exists() {
        return Err(CheckError::Missing { path: path.to_owned() });
    }
    let failed = |source: crate::store::StoreError| CheckError::Failed {
        path: path.to_owned(),
        source: source.into(),
    };
    let (store, report) = Store::open_checked(path, StoreOptions::default()).map_err(failed)?;
    let mut environments = Vec::new();
    for environment in store.environments().map_err(failed)? {
        let revision = store.revision(&environment).map_err(failed)?;
        environments.push((environment, revision));
    }
    Ok(StoreReport {
        path: path.to_owned(),
        store_id: store.id().to_owned(),
        environments,
        changes: report.changes,
        versions: report.versions,
        flags: report.flags,
        segments: report.segments,
    })
}
