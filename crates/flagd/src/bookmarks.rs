//! `Admin.CreateBookmark` and `Admin.ListBookmarks`.

use std::sync::Arc;

use flag_proto::{Authorship, BookmarkInfo, environment_or_default, v1};

use crate::state::State;
use crate::status::RequestError;
use crate::store::Bookmark;
use crate::write_client::Author;

/// Names the environment's current revision.
pub(crate) async fn create(
    state: &Arc<State>,
    request: tonic::Request<v1::CreateBookmarkRequest>,
) -> Result<v1::Bookmark, RequestError> {
    let author = Author::of(&request);
    let v1::CreateBookmarkRequest { environment, name, change } = request.into_inner();
    let environment = environment_or_default(&environment).to_owned();
    let meta = author.meta(change.into());
    let store = state.store.clone();
    let bookmark = tokio::task::spawn_blocking(move || store.bookmark(&environment, &name, &meta)).await??;
    tracing::info!(environment = %bookmark.environment, name = %bookmark.name, revision = bookmark.revision, "bookmark made");
    Ok(v1::Bookmark::from(&info(bookmark)))
}

/// The environment's bookmarks, by name.
pub(crate) async fn list(
    state: &Arc<State>,
    request: v1::ListBookmarksRequest,
) -> Result<v1::ListBookmarksResponse, RequestError> {
    let v1::ListBookmarksRequest { environment } = request;
    let environment = environment_or_default(&environment).to_owned();
    let store = state.store.clone();
    let bookmarks = tokio::task::spawn_blocking(move || store.bookmarks(&environment)).await??;
    Ok(v1::ListBookmarksResponse {
        bookmarks: bookmarks.into_iter().map(|b| v1::Bookmark::from(&info(b))).collect(),
    })
}

fn info(bookmark: Bookmark) -> BookmarkInfo {
    let Bookmark { environment, name, revision, actor, reason, created_ms } = bookmark;
    BookmarkInfo { environment, name, revision, by: Authorship { actor, reason }, created_ms }
}
