//! Creating an environment: empty, or a copy of another's flags and segments, as one apply
//! that also writes the environment's rows (see `environments`).

use super::backend::Database;

use super::apply::{Applied, Batch};
use super::environments::Lifecycle;
use super::error::WriteError;
use super::read;
use super::records::WriteMeta;
use super::write::Writer;

impl Writer {
    /// See [`Store::create_environment`](super::Store::create_environment).
    pub(super) fn create_environment(
        &self,
        db: &Database,
        environment: &str,
        from: Option<&str>,
        meta: &WriteMeta,
        wanted: &dyn Fn() -> bool,
    ) -> Result<Option<Applied>, WriteError> {
        let Some(from) = from else {
            let batch =
                Batch { lifecycle: Some(Lifecycle::Create { copied_from: None }), ..Batch::default() };
            return self.apply(db, environment, batch, meta, wanted);
        };
        // One read of the source: the copy is the source as it was at one revision.
        let (revision, source) = read::snapshot(db, from)?;
        let batch = Batch {
            flags: source.flags,
            segments: source.segments,
            lifecycle: Some(Lifecycle::Create { copied_from: Some((from.to_owned(), revision)) }),
            ..Batch::default()
        };
        let reason = match meta.reason.as_str() {
            "" => format!("copy of {from}@r{revision}"),
            theirs => format!("copy of {from}@r{revision}: {theirs}"),
        };
        self.apply(db, environment, batch, &WriteMeta { reason, ..meta.clone() }, wanted)
    }
}
