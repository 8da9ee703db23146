//! The two kinds of thing the store versions.

use serde::{Deserialize, Serialize};

/// Which kind of thing a change is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SubjectKind {
    /// A flag.
    Flag,
    /// A segment.
    Segment,
}

impl SubjectKind {
    /// The noun for messages.
    pub(crate) fn noun(self) -> &'static str {
        match self {
            SubjectKind::Flag => "flag",
            SubjectKind::Segment => "segment",
        }
    }
}
