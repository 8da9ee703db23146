//! The tokens file (`--tokens FILE`, YAML): the named principals flagd accepts.
//!
//! ```yaml
//! principals:
//!   - name: ci-bot
//!     sha256: 2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b
//!     role: writer
//!     environments: ["staging"]
//! ```
//!
//! It holds the SHA-256 of each secret, never the secret (`flagctl token hash` prints the
//! line). Read by hand from a YAML value rather than by serde derive, so that each refusal
//! names the field's path and line and says what was expected there, and every problem of
//! the file is reported at once.

use std::fmt;
use std::path::{Path, PathBuf};

use flag_core::{LineIndex, TooDeep};
use serde_yaml_ng::{Mapping, Value};

use crate::principal::{Environments, Principal, Role};

/// The fields of a principal, in the order the errors list them.
const FIELDS: [&str; 4] = ["name", "sha256", "role", "environments"];

/// Fields someone might write meaning the secret itself.
const SECRET_FIELDS: [&str; 4] = ["secret", "token", "password", "key"];

/// The longest principal name: it is recorded in every history entry its writes make.
const MAX_NAME_LEN: usize = 64;

/// Why a tokens file cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TokensError {
    /// The file cannot be read.
    #[error("reading the tokens file {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file reads, but says something flagd cannot use.
    #[error("{}", describe(.path, .problems))]
    Invalid { path: PathBuf, problems: Vec<Problem> },
}

/// One bad field: its path (`principals[2].role`), its line, and what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Problem {
    pub(crate) field: String,
    pub(crate) line: Option<usize>,
    pub(crate) expected: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.expected)
    }
}

fn describe(path: &Path, problems: &[Problem]) -> String {
    let at = |problem: &Problem| match problem.line {
        Some(line) => format!("{}:{line}: {problem}", path.display()),
        None => format!("{}: {problem}", path.display()),
    };
    match problems {
        [one] => at(one),
        many => {
            let mut text = format!("{} is not a valid tokens file:", path.display());
            for problem in many {
                text.push_str("\n  ");
                text.push_str(&at(problem));
            }
            text
        }
    }
}

/// A principal that flagd makes itself (from `--admin-token` / `--sdk-token`), which the
/// file's may not clash with.
#[derive(Debug)]
pub(crate) struct Reserved<'a> {
    pub(crate) principal: &'a Principal,
    /// The option that made it, for the message.
    pub(crate) option: &'static str,
}

/// Reads and checks the file at `path`; its principals may clash with none of `reserved`.
pub(crate) fn load(path: &Path, reserved: &[Reserved<'_>]) -> Result<Vec<Principal>, TokensError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| TokensError::Read { path: path.to_owned(), source })?;
    parse(&text, reserved).map_err(|problems| TokensError::Invalid { path: path.to_owned(), problems })
}

/// The principals `text` lists, or every problem it has.
pub(crate) fn parse(text: &str, reserved: &[Reserved<'_>]) -> Result<Vec<Principal>, Vec<Problem>> {
    let lines = LineIndex::of(text).map_err(|TooDeep { path, line }| {
        vec![Problem {
            field: path,
            line: Some(line),
            expected: "nesting this deep is no tokens file".into(),
        }]
    })?;
    let mut reader = Reader { lines, problems: Vec::new() };
    let document: Value = serde_yaml_ng::from_str(text).map_err(|error| {
        let line = error.location().map(|location| location.line());
        vec![Problem { field: "(file)".into(), line, expected: format!("YAML: {error}") }]
    })?;
    let principals = reader.document(&document);
    reader.unique(&principals, reserved);
    if reader.problems.is_empty() {
        Ok(principals.into_iter().map(|(_, principal)| principal).collect())
    } else {
        // In the order of the file (the sort is stable: one line's problems keep theirs).
        reader.problems.sort_by_key(|problem| problem.line);
        Err(reader.problems)
    }
}

struct Reader {
    lines: LineIndex,
    problems: Vec<Problem>,
}

impl Reader {
    fn problem(&mut self, field: &str, expected: impl Into<String>) {
        let line = self.lines.line_of(field);
        self.problems.push(Problem { field: field.to_owned(), line, expected: expected.into() });
    }

    /// The principals that parse, each with its position in the list.
    fn document(&mut self, document: &Value) -> Vec<(usize, Principal)> {
        let Some(top) = document.as_mapping() else {
            // An empty (or truncated) file would allow nobody: that must be written out.
            let found = if document.is_null() { "an empty file".into() } else { kind(document) };
            self.problem(
                "principals",
                format!("expected `principals:` with a list of principals (`principals: []` for none), found {found}"),
            );
            return Vec::new();
        };
        self.unknown_fields(top, "", &["principals"]);
        let Some(list) = top.get("principals") else {
            self.problem("principals", "required: the list of principals (`principals: []` for none)");
            return Vec::new();
        };
        let Some(list) = list.as_sequence() else {
            self.problem("principals", format!("expected a list of principals, found {}", kind(list)));
            return Vec::new();
        };
        list.iter()
            .enumerate()
            .filter_map(|(index, item)| Some((index, self.principal(item, &format!("principals[{index}]"))?)))
            .collect()
    }

    fn principal(&mut self, item: &Value, path: &str) -> Option<Principal> {
        let Some(fields) = item.as_mapping() else {
            self.problem(path, format!("expected a principal ({}), found {}", FIELDS.join(", "), kind(item)));
            return None;
        };
        self.unknown_fields(fields, path, &FIELDS);
        let name = self.name(fields, path);
        let digest = self.digest(fields, path);
        let role = self.role(fields, path);
        let environments = self.environments(fields, path);
        Some(Principal { name: name?, digest: digest?, role: role?, environments: environments? })
    }

    fn unknown_fields(&mut self, fields: &Mapping, path: &str, known: &[&str]) {
        for key in fields.keys() {
            let Some(key) = key.as_str() else {
                self.problem(path, format!("expected field names, found {}", kind(key)));
                continue;
            };
            if known.contains(&key) {
                continue;
            }
            let field = if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") };
            let hint = if SECRET_FIELDS.contains(&key) {
                " (the file holds the SHA-256 of a secret, never the secret: `flagctl token hash` prints the line)"
            } else {
                ""
            };
            self.problem(&field, format!("unknown field; expected {}{hint}", known.join(", ")));
        }
    }

    /// The string at `path.field`, or a problem saying it is missing or not a string.
    fn string<'v>(&mut self, fields: &'v Mapping, path: &str, field: &str, what: &str) -> Option<&'v str> {
        let at = format!("{path}.{field}");
        match fields.get(field) {
            None => {
                self.problem(&at, format!("required: {what}"));
                None
            }
            Some(Value::String(text)) => Some(text),
            Some(other) => {
                self.problem(&at, format!("expected {what}, found {}", kind(other)));
                None
            }
        }
    }

    fn name(&mut self, fields: &Mapping, path: &str) -> Option<String> {
        const WHAT: &str = "a name of 1 to 64 letters, digits, '.', '-', '_' or '@'";
        let name = self.string(fields, path, "name", WHAT)?;
        let valid = (1..=MAX_NAME_LEN).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'@'));
        if !valid {
            self.problem(&format!("{path}.name"), format!("expected {WHAT}, found {name:?}"));
            return None;
        }
        Some(name.to_owned())
    }

    fn digest(&mut self, fields: &Mapping, path: &str) -> Option<[u8; 32]> {
        const WHAT: &str = "the SHA-256 of the secret as 64 hex digits (`flagctl token hash` prints it)";
        let hex = self.string(fields, path, "sha256", WHAT)?;
        let digest = hex_digest(hex);
        if digest.is_none() {
            // Never echo the value: it may be a secret pasted in the wrong place.
            let found = format!("{} characters", hex.chars().count());
            self.problem(&format!("{path}.sha256"), format!("expected {WHAT}, found {found}"));
        }
        digest
    }

    fn role(&mut self, fields: &Mapping, path: &str) -> Option<Role> {
        let names: Vec<&str> = Role::NAMES.iter().map(|(name, _)| *name).collect();
        let what = format!("one of {}", names.join(", "));
        let role = self.string(fields, path, "role", &what)?;
        let found = Role::NAMES.iter().find(|(name, _)| *name == role).map(|(_, role)| *role);
        if found.is_none() {
            self.problem(&format!("{path}.role"), format!("expected {what}, found {role:?}"));
        }
        found
    }

    fn environments(&mut self, fields: &Mapping, path: &str) -> Option<Environments> {
        const WHAT: &str = "a list of environment names, or [\"*\"] for all";
        let at = format!("{path}.environments");
        let list = match fields.get("environments") {
            None => {
                self.problem(&at, format!("required: {WHAT}"));
                return None;
            }
            Some(Value::Sequence(list)) if !list.is_empty() => list,
            Some(other) => {
                let found = if other.is_sequence() { "an empty list".into() } else { kind(other) };
                self.problem(&at, format!("expected {WHAT}, found {found}"));
                return None;
            }
        };
        let mut names: Vec<String> = Vec::with_capacity(list.len());
        let mut valid = true;
        for (index, item) in list.iter().enumerate() {
            let at = format!("{at}[{index}]");
            match item.as_str() {
                Some("*") if list.len() == 1 => return Some(Environments::All),
                Some("*") => {
                    self.problem(&at, "\"*\" means every environment: list it alone");
                    valid = false;
                }
                Some(name) if !crate::store::is_environment_name(name) => {
                    self.problem(
                        &at,
                        format!(
                            "expected an environment name (letters, digits, '_', '.', '-'), found {name:?}"
                        ),
                    );
                    valid = false;
                }
                Some(name) if names.iter().any(|listed| listed == name) => {
                    self.problem(&at, format!("{name:?} is listed twice"));
                    valid = false;
                }
                Some(name) => names.push(name.to_owned()),
                None => {
                    self.problem(&at, format!("expected an environment name, found {}", kind(item)));
                    valid = false;
                }
            }
        }
        valid.then_some(Environments::Only(names))
    }

    /// Each name and each secret belongs to one principal, here and among `reserved`.
    /// `principals` are those that parsed, with their positions in the file.
    fn unique(&mut self, principals: &[(usize, Principal)], reserved: &[Reserved<'_>]) {
        for (i, (position, principal)) in principals.iter().enumerate() {
            let at = |field: &str| format!("principals[{position}].{field}");
            let earlier = &principals[..i];
            if let Some(taken) = reserved.iter().find(|r| r.principal.name == principal.name) {
                let expected = format!(
                    "{:?} is the name of the principal {} makes; pick another",
                    principal.name, taken.option
                );
                self.problem(&at("name"), expected);
            } else if let Some((first, _)) = earlier.iter().find(|(_, p)| p.name == principal.name) {
                let expected = format!("{:?} is already the name of principals[{first}]", principal.name);
                self.problem(&at("name"), expected);
            }
            if let Some(taken) = reserved.iter().find(|r| r.principal.digest == principal.digest) {
                let expected =
                    format!("the same secret as {}: each principal needs its own secret", taken.option);
                self.problem(&at("sha256"), expected);
            } else if let Some((first, other)) = earlier.iter().find(|(_, p)| p.digest == principal.digest) {
                let expected = format!(
                    "the same secret as principals[{first}] ({:?}): each principal needs its own secret",
                    other.name
                );
                self.problem(&at("sha256"), expected);
            }
        }
    }
}

/// 64 hex digits (either case) as the 32 bytes they spell.
fn hex_digest(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut digest = [0u8; 32];
    for (byte, pair) in digest.iter_mut().zip(bytes.chunks_exact(2)) {
        let digit = |b: u8| char::from(b).to_digit(16);
        *byte = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(digest)
}

/// What a YAML value is, for "found …".
fn kind(value: &Value) -> String {
    match value {
        Value::Null => "nothing".into(),
        Value::Bool(b) => format!("{b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("{s:?}"),
        Value::Sequence(_) => "a list".into(),
        Value::Mapping(_) => "a mapping".into(),
        Value::Tagged(tagged) => format!("a value tagged {}", tagged.tag),
    }
}

#[cfg(test)]
mod tests;
