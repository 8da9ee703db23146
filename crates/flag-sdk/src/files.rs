//! The two files a client reads: the cache file it writes itself (last applied flags, for a
//! cold start while flagd is down) and an offline flags file written by people or by
//! `flagctl export` (flag-core's `FlagSet` in YAML or JSON).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flag_core::{FlagSet, LineIndex, MAX_FILE_DEPTH, TooDeep};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::error::FileError;
use crate::model::Model;

/// An applied state for the cache writer: its revision, the store it counts in, and flags.
pub(crate) type Applied = (u64, String, Arc<Model>);

/// Bumped when the cache layout changes; a cache of another format is ignored.
const CACHE_FORMAT: u32 = 1;

/// What the cache file holds.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CacheFile {
    format: u32,
    environment: String,
    revision: u64,
    /// The flagd store `revision` counts in; absent in older caches (then trusted).
    #[serde(default)]
    store_id: String,
    flags: FlagSet,
}

/// The cached flags of `environment`, if the file holds a usable copy. A missing file is
/// normal; anything wrong with it is logged and ignored — a cache never stops a start.
pub(crate) fn read_cache(path: &Path, environment: &str) -> Option<(FlagSet, u64, String)> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return None,
        Err(error) => {
            warn!(path = %path.display(), %error, "ignoring the flag cache: cannot read it");
            return None;
        }
    };
    let cache: CacheFile = match serde_json::from_slice(&bytes) {
        Ok(cache) => cache,
        Err(error) => {
            warn!(path = %path.display(), %error, "ignoring the flag cache: it is corrupt");
            return None;
        }
    };
    if cache.format != CACHE_FORMAT || cache.environment != environment {
        warn!(
            path = %path.display(),
            format = cache.format,
            cached_environment = %cache.environment,
            "ignoring the flag cache: written for another format or environment"
        );
        return None;
    }
    // Validated here, so that a cache that parses but would not compile is refused like a
    // corrupt one. Only validated: the snapshot `validate` compiles is dropped, and the start
    // compiles the flags again when it installs them.
    if let Err(error) = cache.flags.validate() {
        warn!(path = %path.display(), %error, "ignoring the flag cache: its flags are invalid");
        return None;
    }
    Some((cache.flags, cache.revision, cache.store_id))
}

/// Writes the cache atomically: a temporary file in the same directory, flushed to disk,
/// then renamed over the old one, so a reader (or a crash) sees the old file or the new,
/// never half of one.
pub(crate) fn write_cache(
    path: &Path,
    environment: &str,
    (revision, store_id): (u64, String),
    model: &Model,
) -> Result<(), FileError> {
    let flags = model.to_set();
    let cache =
        CacheFile { format: CACHE_FORMAT, environment: environment.into(), revision, store_id, flags };
    let bytes =
        serde_json::to_vec(&cache).map_err(|source| FileError::Encode { path: path.into(), source })?;
    let io = |source| FileError::Io { path: path.into(), source };
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut temporary = tempfile::NamedTempFile::new_in(directory).map_err(io)?;
    temporary.write_all(&bytes).map_err(io)?;
    temporary.as_file().sync_all().map_err(io)?;
    temporary.persist(path).map_err(|error| io(error.error))?;
    // The rename is durable only once the directory is: a crash before that may bring back
    // the previous cache, which is stale but whole.
    std::fs::File::open(directory).and_then(|directory| directory.sync_all()).map_err(io)?;
    Ok(())
}

/// Writes each newly applied state to the cache file, newest only: while a write is in
/// progress, intermediate states are skipped.
pub(crate) async fn write_cache_forever(
    path: PathBuf,
    environment: String,
    mut latest: watch::Receiver<Option<Applied>>,
) {
    while latest.changed().await.is_ok() {
        let Some((revision, store_id, model)) = latest.borrow_and_update().clone() else { continue };
        let (path, environment) = (path.clone(), environment.clone());
        let written = tokio::task::spawn_blocking(move || {
            write_cache(&path, &environment, (revision, store_id), &model)
        })
        .await;
        match written {
            Ok(Ok(())) => debug!(revision, "flag cache written"),
            Ok(Err(error)) => warn!(%error, "could not write the flag cache"),
            Err(error) => warn!(%error, "the flag cache writer failed"),
        }
    }
}

/// Reads an offline flags file: JSON when it ends in `.json`, YAML otherwise.
pub(crate) fn read_flags_file(path: &Path) -> Result<FlagSet, FileError> {
    let text = std::fs::read_to_string(path).map_err(|source| FileError::Io { path: path.into(), source })?;
    // First, so a deep file is refused before serde spends quadratic time on it.
    LineIndex::of(&text).map_err(|TooDeep { path: field, line }| FileError::TooDeep {
        path: path.into(),
        line,
        field,
        limit: MAX_FILE_DEPTH,
    })?;
    let is_json = path.extension().is_some_and(|extension| extension.eq_ignore_ascii_case("json"));
    let set: FlagSet = if is_json {
        serde_json::from_str(&text).map_err(|source| FileError::Json { path: path.into(), source })?
    } else {
        serde_yaml_ng::from_str(&text).map_err(|source| FileError::Yaml { path: path.into(), source })?
    };
    set.validate().map_err(|source| FileError::Invalid { path: path.into(), source })?;
    Ok(set)
}

/// What identifies a version of a file cheaply: modification time and length.
pub(crate) fn file_stamp(path: &Path) -> Option<(std::time::SystemTime, u64)> {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}

#[cfg(test)]
mod tests {
    use flag_core::Flag;

    use super::*;

    fn model() -> Model {
        let set = FlagSet { flags: vec![Flag::rollout("chat", 25.0).unwrap()], segments: vec![] };
        Model::from_set(set, 9, &Model::default())
    }

    #[test]
    fn a_written_cache_reads_back_for_its_environment_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flags.cache.json");
        write_cache(&path, "production", (9, "a1".into()), &model()).unwrap();
        let (set, revision, store_id) = read_cache(&path, "production").unwrap();
        assert_eq!(store_id, "a1");
        assert_eq!((set.flags[0].key.as_str(), revision), ("chat", 9));
        assert!(read_cache(&path, "staging").is_none());
        // Only the cache itself is left in the directory: the temporary file was renamed.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_corrupt_or_missing_cache_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flags.cache.json");
        assert!(read_cache(&path, "production").is_none());
        write_cache(&path, "production", (9, "a1".into()), &model()).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        assert!(read_cache(&path, "production").is_none());
        std::fs::write(&path, b"\x00\xffnot json").unwrap();
        assert!(read_cache(&path, "production").is_none());
    }

    #[test]
    fn flags_files_read_as_yaml_or_json_and_invalid_ones_name_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = dir.path().join("flags.yaml");
        std::fs::write(
            &yaml,
            "flags:\n  - key: chat\n    variants: [{ name: on, value: true }, { name: off, value: false }]\n    off_variant: off\n    default: { variant: on }\n",
        )
        .unwrap();
        assert_eq!(read_flags_file(&yaml).unwrap().flags[0].key, "chat");
        let json = dir.path().join("flags.json");
        std::fs::write(&json, serde_json::to_string(&model().to_set()).unwrap()).unwrap();
        assert_eq!(read_flags_file(&json).unwrap().flags[0].key, "chat");
        std::fs::write(
            &yaml,
            "flags:\n  - key: chat\n    variants: []\n    off_variant: off\n    default: { variant: on }\n",
        )
        .unwrap();
        let error = read_flags_file(&yaml).unwrap_err().to_string();
        assert!(error.contains("flags[0]"), "{error}");
    }

    #[test]
    fn a_deep_flags_file_is_refused_with_the_field_line_and_limit() {
        let dir = tempfile::tempdir().unwrap();
        let deep = |open: &str, close: &str| {
            format!(
                "{{\"flags\": [{{\"key\": \"x\", \"variants\": [{{\"name\": \"on\", \"value\": {}1{}}}]}}]}}",
                open.repeat(100_000),
                close.repeat(100_000)
            )
        };
        for name in ["flags.json", "flags.yaml"] {
            let path = dir.path().join(name);
            std::fs::write(&path, deep("{\"a\": ", "}")).unwrap();
            let error = read_flags_file(&path).unwrap_err().to_string();
            assert!(
                error.ends_with(&format!(
                    "{name}:1: flags[0].variants[0].value: nesting deeper than 64 levels"
                )),
                "{error}"
            );
        }
    }
}
