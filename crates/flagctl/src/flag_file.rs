//! Reading a flag file (the format of `docs/flag-model.md`, YAML or JSON), and reporting its
//! problems with the file line of each field.

use std::io::Read as _;
use std::path::Path;

use flag_core::{FlagSet, LineIndex, MAX_FILE_DEPTH, TooDeep, ValidationError};

use crate::cli::FileFormat;
use crate::failure::Failure;

/// A parsed flag file and where its fields are.
#[derive(Debug)]
pub(crate) struct FlagFile {
    pub(crate) name: String,
    pub(crate) set: FlagSet,
    lines: LineIndex,
    /// Of a flagd file read with `skip_invalid`: each flag (or part) not imported, as
    /// `path: why`.
    pub(crate) skipped: Vec<String>,
}

impl FlagFile {
    /// Reads and parses `path` (`-` is standard input).
    pub(crate) fn load(
        path: &Path,
        format: Option<FileFormat>,
        skip_invalid: bool,
    ) -> Result<FlagFile, Failure> {
        let name = path.display().to_string();
        let mut text = String::new();
        let read = if name == "-" {
            std::io::stdin().read_to_string(&mut text).map(|_| ())
        } else {
            std::fs::read_to_string(path).map(|t| text = t)
        };
        read.map_err(|e| Failure::Invalid(format!("cannot read {name}: {e}")))?;
        let flagd = match format {
            Some(format) => format == FileFormat::Flagd,
            None => serde_json::from_str::<serde_json::Value>(&text).is_ok_and(|json| is_flagd(&json)),
        };
        if flagd { FlagFile::parse_flagd(name, &text, skip_invalid) } else { FlagFile::parse(name, &text) }
    }

    /// Reads a flagd flag file through its exact translation; anything refused fails the
    /// file (naming every refusal), unless `skip_invalid` keeps the rest.
    pub(crate) fn parse_flagd(name: String, text: &str, skip_invalid: bool) -> Result<FlagFile, Failure> {
        let lines = LineIndex::of(text).map_err(|TooDeep { path, line }| {
            Failure::Invalid(format!("{name}:{line}: {path}: nesting deeper than {MAX_FILE_DEPTH} levels"))
        })?;
        let json: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| Failure::Invalid(format!("{name}:{}: not JSON: {e}", e.line())))?;
        let openfeature_json::Imported { set, refused } = openfeature_json::from_flagd(&json);
        let skipped: Vec<String> = refused.iter().map(|r| format!("{}: {}", r.path, r.why)).collect();
        if !skipped.is_empty() && !skip_invalid {
            let mut message = vec![format!(
                "{name}: {} part(s) of the flagd file have no exact translation:",
                skipped.len()
            )];
            message.extend(skipped.iter().map(|s| format!("  {s}")));
            message.push("(--skip-invalid applies the other flags)".into());
            return Err(Failure::Invalid(message.join("\n")));
        }
        Ok(FlagFile { lines, name, set, skipped })
    }

    pub(crate) fn parse(name: String, text: &str) -> Result<FlagFile, Failure> {
        // First, so a deep document is refused before serde spends quadratic time on it.
        let lines = LineIndex::of(text).map_err(|TooDeep { path, line }| {
            Failure::Invalid(format!("{name}:{line}: {path}: nesting deeper than {MAX_FILE_DEPTH} levels"))
        })?;
        let set: FlagSet = serde_yaml_ng::from_str(text).map_err(|error| {
            let line = error.location().map(|l| format!(":{}", l.line())).unwrap_or_default();
            Failure::Invalid(format!("{name}{line}: {}", strip_location(&error.to_string())))
        })?;
        // An empty or truncated file would read as "no flags": with `--prune`, a deleted
        // environment. An empty set must be written out (`flags: []`).
        if lines.line_of("flags").is_none() && lines.line_of("segments").is_none() {
            return Err(Failure::Invalid(format!(
                "{name} has neither `flags:` nor `segments:`; write `flags: []` to mean no flags"
            )));
        }
        Ok(FlagFile { lines, name, set, skipped: vec![] })
    }

    /// Each problem as `file:line: path: message`. Problems in positions past the file's
    /// own flags (or segments) are about what the server holds and keep their path only.
    pub(crate) fn describe(&self, error: &ValidationError, server_keys: impl Fn(&str) -> String) -> Failure {
        let mut lines = vec![format!("{} is not a valid flag set:", self.name)];
        for problem in &error.problems {
            let in_file = self.owns(&problem.path);
            let line = in_file.then(|| self.lines.line_of(&problem.path)).flatten();
            let path = if in_file { problem.path.clone() } else { server_keys(&problem.path) };
            lines.push(match line {
                Some(line) => format!("  {}:{line}: {path}: {}", self.name, problem.message),
                None => format!("  {path}: {}", problem.message),
            });
        }
        Failure::Invalid(lines.join("\n"))
    }

    /// Whether `path` points into this file (rather than a server flag appended after it).
    fn owns(&self, path: &str) -> bool {
        let index_in = |list: &str| {
            path.strip_prefix(list)
                .and_then(|rest| rest.strip_prefix('['))
                .and_then(|rest| rest.split(']').next())
                .and_then(|i| i.parse::<usize>().ok())
        };
        match (index_in("flags"), index_in("segments")) {
            (Some(i), _) => i < self.set.flags.len(),
            (_, Some(i)) => i < self.set.segments.len(),
            _ => true,
        }
    }
}

/// A flagd flag file: `flags` is an object (ours is a list), or `$schema` names flagd.
fn is_flagd(json: &serde_json::Value) -> bool {
    json.get("flags").is_some_and(serde_json::Value::is_object)
        || json.get("$schema").and_then(serde_json::Value::as_str).is_some_and(|s| s.contains("flagd"))
}

/// A problem's path in the set a file was checked with (the file's entries and the
/// server's): `flags[7].x` → `flags["checkout"].x (on the server)`, for the paths
/// [`FlagFile::describe`] finds outside the file.
pub(crate) fn server_path(path: &str, merged: &FlagSet) -> String {
    let key_at = |list: &str, keys: Vec<&str>| -> Option<String> {
        let rest = path.strip_prefix(list)?.strip_prefix('[')?;
        let (index, tail) = rest.split_once(']')?;
        let key = keys.get(index.parse::<usize>().ok()?)?;
        Some(format!("{list}[{key:?}]{tail} (on the server)"))
    };
    key_at("flags", merged.flags.iter().map(|f| f.key.as_str()).collect())
        .or_else(|| key_at("segments", merged.segments.iter().map(|s| s.key.as_str()).collect()))
        .unwrap_or_else(|| path.to_owned())
}

/// serde_yaml_ng ends its messages with ` at line L column C`; the line is already in front.
fn strip_location(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(at) => &message[..at],
        None => message,
    }
}
