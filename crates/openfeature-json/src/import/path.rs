//! Where a refusal points: a JSON Pointer (RFC 6901) into the flagd file.

/// A part of a flagd file that was not imported, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// A JSON Pointer to the refused part, e.g. `/flags/chat/targeting/if/0`.
    pub path: String,
    /// Why it has no exact translation.
    pub why: String,
}

/// `path` extended by one object key or array index, escaped as JSON Pointer requires.
pub(crate) fn at(path: &str, segment: &str) -> String {
    format!("{path}/{}", segment.replace('~', "~0").replace('/', "~1"))
}
