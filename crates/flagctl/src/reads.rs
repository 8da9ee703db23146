//! The reads several commands share: the environment at one revision (`apply` plans
//! against it, `export` prints it) and a page of the log (`log` prints it, `watch` follows
//! it), so no command calls into another's module.

use anyhow::Context as _;
use flag_core::{Flag, FlagSet, Segment};
use flag_proto::{HistoryPage, Listed};

use crate::connect::{Call, Server};

/// The context of an answer flag-proto cannot convert.
pub(crate) const MALFORMED: &str = "flagd sent a malformed answer";

/// The environment's flags and segments at one revision.
pub(crate) async fn environment(server: &Server) -> anyhow::Result<(u64, FlagSet)> {
    let mut admin = server.admin.clone();
    // Two reads; a write between them shows as two revisions, and the pair is read again.
    for _ in 0..5 {
        let list = server.requests().list_flags("", "");
        let flags = admin.list_flags(server.request(list)).await.called(server, "listing flags")?;
        let flags = Listed::<Flag>::try_from(flags).context(MALFORMED)?;
        let segments_request = server.requests().list_segments();
        let segments =
            admin.list_segments(server.request(segments_request)).await.called(server, "listing segments")?;
        let segments = Listed::<Segment>::try_from(segments).context(MALFORMED)?;
        if flags.revision == segments.revision {
            return Ok((flags.revision, FlagSet { flags: flags.items, segments: segments.items }));
        }
    }
    anyhow::bail!("the environment kept changing while it was read; try again")
}

/// Up to `page_size` log entries older than `before_revision` (the newest when 0), newest first.
pub(crate) async fn log_page(
    server: &Server,
    page_size: u32,
    before_revision: u64,
) -> anyhow::Result<HistoryPage> {
    let request = server.requests().environment_history(page_size, before_revision);
    let page = server
        .admin
        .clone()
        .environment_history(server.request(request))
        .await
        .called(server, "reading the log")?;
    HistoryPage::try_from(page).context(MALFORMED)
}
