//! `flags.v1.Admin` behind its access check: every call is checked against its caller
//! (see `principal` for what each role may do) before [`AdminService`] runs it.
//!
//! A wrapper implementing the whole service rather than a check in each handler: a call
//! added to the service does not compile until it is added here, and its request says what
//! it reaches (flag-proto's `Reaches`), so no call can be served unchecked.

use flag_proto::Reaches;
use flag_proto::v1::{self, admin_server::Admin};
use tonic::{Request, Response, Status};

use crate::admin::AdminService;
use crate::auth::Caller;
use crate::status::RequestError;

/// Serves `flags.v1.Admin`, each call checked first.
#[derive(Debug, Clone)]
pub(crate) struct CheckedAdmin(pub(crate) AdminService);

/// Whether the request's caller may make it: anyone on a server without tokens; a principal
/// if its role and environments cover what the call reaches.
fn allowed<T: Reaches>(request: &Request<T>) -> Result<(), Status> {
    // The interceptor puts a caller on every request: none means it did not run, so refuse.
    let caller = Caller::of(request)
        .ok_or_else(|| RequestError::Unauthenticated("the request was not authenticated".into()))?;
    match caller.principal() {
        None => Ok(()),
        Some(principal) => Ok(principal.may_call(&request.get_ref().reach()).map_err(RequestError::from)?),
    }
}

type Answer<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl Admin for CheckedAdmin {
    async fn put_flag(&self, request: Request<v1::PutFlagRequest>) -> Answer<v1::WriteResponse> {
        allowed(&request)?;
        self.0.put_flag(request).await
    }

    async fn set_rollout(&self, request: Request<v1::SetRolloutRequest>) -> Answer<v1::WriteResponse> {
        allowed(&request)?;
        self.0.set_rollout(request).await
    }

    async fn serve_variant(&self, request: Request<v1::ServeVariantRequest>) -> Answer<v1::WriteResponse> {
        allowed(&request)?;
        self.0.serve_variant(request).await
    }

    async fn kill(&self, request: Request<v1::KillRequest>) -> Answer<v1::KillResponse> {
        allowed(&request)?;
        self.0.kill(request).await
    }

    async fn revive(&self, request: Request<v1::ReviveRequest>) -> Answer<v1::WriteResponse> {
        allowed(&request)?;
        self.0.revive(request).await
    }

    async fn delete_flag(&self, request: Request<v1::DeleteFlagRequest>) -> Answer<v1::WriteResponse> {
        allowed(&request)?;
        self.0.delete_flag(request).await
    }

    async fn rollback(&self, request: Request<v1::RollbackRequest>) -> Answer<v1::WriteResponse> {
        allowed(&request)?;
        self.0.rollback(request).await
    }

    async fn get_flag(&self, request: Request<v1::GetFlagRequest>) -> Answer<v1::GetFlagResponse> {
        allowed(&request)?;
        self.0.get_flag(request).await
    }

    async fn list_flags(&self, request: Request<v1::ListFlagsRequest>) -> Answer<v1::ListFlagsResponse> {
        allowed(&request)?;
        self.0.list_flags(request).await
    }

    async fn flag_history(&self, request: Request<v1::FlagHistoryRequest>) -> Answer<v1::HistoryResponse> {
        allowed(&request)?;
        self.0.flag_history(request).await
    }

    async fn environment_history(
        &self,
        request: Request<v1::EnvironmentHistoryRequest>,
    ) -> Answer<v1::HistoryResponse> {
        allowed(&request)?;
        self.0.environment_history(request).await
    }

    async fn put_segment(&self, request: Request<v1::PutSegmentRequest>) -> Answer<v1::WriteResponse> {
        allowed(&request)?;
        self.0.put_segment(request).await
    }

    async fn delete_segment(&self, request: Request<v1::DeleteSegmentRequest>) -> Answer<v1::WriteResponse> {
        allowed(&request)?;
        self.0.delete_segment(request).await
    }

    async fn list_segments(
        &self,
        request: Request<v1::ListSegmentsRequest>,
    ) -> Answer<v1::ListSegmentsResponse> {
        allowed(&request)?;
        self.0.list_segments(request).await
    }

    async fn wait_for_acks(&self, request: Request<v1::WaitForAcksRequest>) -> Answer<v1::AckReport> {
        allowed(&request)?;
        self.0.wait_for_acks(request).await
    }

    async fn apply(&self, request: Request<v1::ApplyRequest>) -> Answer<v1::ApplyResponse> {
        allowed(&request)?;
        self.0.apply(request).await
    }

    async fn point_in_time_restore(
        &self,
        request: Request<v1::PointInTimeRestoreRequest>,
    ) -> Answer<v1::PointInTimeRestoreResponse> {
        allowed(&request)?;
        self.0.point_in_time_restore(request).await
    }

    async fn diff(&self, request: Request<v1::DiffRequest>) -> Answer<v1::DiffResponse> {
        allowed(&request)?;
        self.0.diff(request).await
    }

    async fn promote(&self, request: Request<v1::PromoteRequest>) -> Answer<v1::PromoteResponse> {
        allowed(&request)?;
        self.0.promote(request).await
    }

    async fn create_bookmark(&self, request: Request<v1::CreateBookmarkRequest>) -> Answer<v1::Bookmark> {
        allowed(&request)?;
        self.0.create_bookmark(request).await
    }

    async fn list_bookmarks(
        &self,
        request: Request<v1::ListBookmarksRequest>,
    ) -> Answer<v1::ListBookmarksResponse> {
        allowed(&request)?;
        self.0.list_bookmarks(request).await
    }

    async fn evaluate(&self, request: Request<v1::EvaluateRequest>) -> Answer<v1::EvaluateResponse> {
        allowed(&request)?;
        self.0.evaluate(request).await
    }

    type BackupStream = <AdminService as Admin>::BackupStream;

    async fn backup(&self, request: Request<v1::BackupRequest>) -> Answer<Self::BackupStream> {
        allowed(&request)?;
        self.0.backup(request).await
    }

    async fn create_environment(
        &self,
        request: Request<v1::CreateEnvironmentRequest>,
    ) -> Answer<v1::Environment> {
        allowed(&request)?;
        self.0.create_environment(request).await
    }

    /// Every caller may list; the answer holds only the environments it may read.
    async fn list_environments(
        &self,
        request: Request<v1::ListEnvironmentsRequest>,
    ) -> Answer<v1::ListEnvironmentsResponse> {
        allowed(&request)?;
        let principal = Caller::of(&request).and_then(Caller::principal).cloned();
        let mut answer = self.0.list_environments(request).await?;
        if let Some(principal) = principal {
            answer.get_mut().environments.retain(|environment| principal.may_read(&environment.name));
        }
        Ok(answer)
    }

    async fn describe_environment(
        &self,
        request: Request<v1::DescribeEnvironmentRequest>,
    ) -> Answer<v1::Environment> {
        allowed(&request)?;
        self.0.describe_environment(request).await
    }

    async fn delete_environment(
        &self,
        request: Request<v1::DeleteEnvironmentRequest>,
    ) -> Answer<v1::DeleteEnvironmentResponse> {
        allowed(&request)?;
        self.0.delete_environment(request).await
    }

    async fn query_log(&self, request: Request<v1::QueryLogRequest>) -> Answer<v1::QueryLogResponse> {
        allowed(&request)?;
        self.0.query_log(request).await
    }

    async fn start_rollout(&self, request: Request<v1::StartRolloutRequest>) -> Answer<v1::RolloutResponse> {
        allowed(&request)?;
        self.0.start_rollout(request).await
    }

    async fn get_rollout(&self, request: Request<v1::GetRolloutRequest>) -> Answer<v1::RolloutStatus> {
        allowed(&request)?;
        self.0.get_rollout(request).await
    }

    async fn list_rollouts(
        &self,
        request: Request<v1::ListRolloutsRequest>,
    ) -> Answer<v1::ListRolloutsResponse> {
        allowed(&request)?;
        self.0.list_rollouts(request).await
    }

    async fn pause_rollout(&self, request: Request<v1::ChangeRolloutRequest>) -> Answer<v1::RolloutResponse> {
        allowed(&request)?;
        self.0.pause_rollout(request).await
    }

    async fn resume_rollout(
        &self,
        request: Request<v1::ChangeRolloutRequest>,
    ) -> Answer<v1::RolloutResponse> {
        allowed(&request)?;
        self.0.resume_rollout(request).await
    }

    async fn abort_rollout(&self, request: Request<v1::ChangeRolloutRequest>) -> Answer<v1::RolloutResponse> {
        allowed(&request)?;
        self.0.abort_rollout(request).await
    }
}
