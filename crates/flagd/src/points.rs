//! A point in an environment's past, as a request names it (a revision, a time, a bookmark),
//! made the revision it is.

use flag_proto::Point;

use crate::status::RequestError;
use crate::store::Store;

/// The revision `point` names in `environment`: a time is the last revision committed by
/// then, a bookmark the revision it was made at.
pub(crate) async fn revision(store: &Store, environment: &str, point: Point) -> Result<u64, RequestError> {
    if let Point::Revision(revision) = point {
        return Ok(revision);
    }
    let (store, environment) = (store.clone(), environment.to_owned());
    tokio::task::spawn_blocking(move || match point {
        Point::Revision(revision) => Ok(revision),
        Point::At(ms) => Ok(store.revision_at(&environment, ms)?),
        Point::Bookmark(name) => Ok(store.bookmarked(&environment, &name)?),
    })
    .await?
}
