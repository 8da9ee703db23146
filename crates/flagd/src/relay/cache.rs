//! The relay's cache file: the last copy of each followed environment, so that a relay
//! restarted while its upstream is away serves its SDKs what they had instead of nothing.
//!
//! One protobuf message (`FullSnapshot`s, as the upstream sends them, by environment),
//! replaced whole: written beside the file, synced, renamed over it, the directory synced.
//! A crash leaves the old file or the new one, never a torn one. A cache that cannot be read
//! is reported and ignored: the relay then waits for its upstream, as a new one would.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use flag_proto::{Snapshot, flag_set_from_proto, v1};
use prost::Message as _;

use super::mirror::Mirror;

/// Written into every cache file; one of another format is ignored.
const FORMAT: &str = "flagd-relay-cache/1";

#[derive(Clone, PartialEq, prost::Message)]
struct CacheFile {
    #[prost(string, tag = "1")]
    format: String,
    #[prost(message, repeated, tag = "2")]
    environments: Vec<CachedEnvironment>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct CachedEnvironment {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(message, optional, tag = "2")]
    snapshot: Option<v1::FullSnapshot>,
}

/// Why a cache file could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CacheError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a relay cache file: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("writing {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// The environments cached at `path`; none when there is no file yet.
pub(crate) fn load(path: &Path) -> Result<Vec<(String, Mirror)>, CacheError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(CacheError::Read { path: path.to_owned(), source }),
    };
    let invalid = |reason: String| CacheError::Invalid { path: path.to_owned(), reason };
    let file = CacheFile::decode(bytes.as_slice()).map_err(|error| invalid(error.to_string()))?;
    if file.format != FORMAT {
        return Err(invalid(format!("expected format {FORMAT:?}, found {:?}", file.format)));
    }
    file.environments
        .into_iter()
        .map(|CachedEnvironment { name, snapshot }| {
            let v1::FullSnapshot { revision, flags, segments, store_id } =
                snapshot.ok_or_else(|| invalid(format!("environment {name:?} has no snapshot")))?;
            let set = flag_set_from_proto(flags, segments)
                .map_err(|error| invalid(format!("environment {name:?}: {error}")))?;
            Ok((name, Mirror::from_snapshot(Snapshot { revision, store_id, set })))
        })
        .collect()
}

/// Replaces the cache at `path` with `environments`.
pub(crate) fn save(path: &Path, environments: &[(String, Mirror)]) -> Result<(), CacheError> {
    let file = CacheFile {
        format: FORMAT.into(),
        environments: environments
            .iter()
            .map(|(name, mirror)| {
                let set = mirror.set();
                CachedEnvironment {
                    name: name.clone(),
                    snapshot: Some(v1::FullSnapshot {
                        revision: mirror.revision(),
                        flags: set.flags.iter().map(v1::Flag::from).collect::<Vec<_>>(),
                        segments: set.segments.iter().map(v1::Segment::from).collect::<Vec<_>>(),
                        store_id: mirror.store_id().to_owned(),
                    }),
                }
            })
            .collect(),
    };
    let failed = |source| CacheError::Write { path: path.to_owned(), source };
    let partial = partial_path(path);
    let written = (|| {
        let mut out = std::fs::File::create(&partial)?;
        out.write_all(&file.encode_to_vec())?;
        out.sync_all()?;
        std::fs::rename(&partial, path)?;
        // The rename is durable once the directory is.
        let directory =
            path.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::File::open(directory)?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written.map_err(failed)
}

fn partial_path(path: &Path) -> PathBuf {
    let name =
        path.file_name().map_or_else(|| "relay-cache".into(), |name| name.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.partial"))
}

#[cfg(test)]
mod tests {
    use flag_core::{Flag, FlagSet};

    use super::*;

    #[test]
    fn a_saved_cache_loads_as_it_was_and_a_foreign_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.cache");
        assert!(load(&path).unwrap().is_empty(), "no file yet: nothing cached");
        let set = FlagSet { flags: vec![Flag::rollout("chat", 5.0).unwrap()], segments: vec![] };
        let mirror = Mirror::from_snapshot(Snapshot { revision: 7, store_id: "s1".into(), set: set.clone() });
        save(&path, &[("production".into(), mirror)]).unwrap();
        let loaded = load(&path).unwrap();
        assert_eq!(loaded.len(), 1);
        let (name, mirror) = &loaded[0];
        assert_eq!((name.as_str(), mirror.revision(), mirror.store_id()), ("production", 7, "s1"));
        assert_eq!(mirror.set(), set);
        assert!(!partial_path(&path).exists());

        std::fs::write(&path, b"not a cache").unwrap();
        let error = load(&path).unwrap_err().to_string();
        assert!(error.contains("is not a relay cache file"), "{error}");
    }
}
