//! The `flags.v1.Admin` service: every write goes through the store's durable write path and
//! is then published to the streams.

use std::sync::Arc;
use std::time::{Duration, Instant};

use flag_core::{Flag, Segment};
use flag_proto::v1::{self, admin_server::Admin};
use flag_proto::{Authorship, BackupTotals, environment_or_default};
use tonic::{Request, Response, Status};
use tracing::{info, instrument};

use crate::rollout::calls as rollout;
use crate::state::State;
use crate::status::RequestError;
use crate::store::{Batch, Committed, Store, StoreError, WriteOp};
use crate::write_client::{Client, Unwritten, unwritten};

/// Default and largest history page.
const PAGE_SIZE: (u32, u32) = (50, 1000);

/// The longest a kill or `WaitForAcks` waits for acknowledgements, whatever is asked.
const MAX_ACK_WAIT: Duration = Duration::from_secs(60);

/// Serves `flags.v1.Admin`.
#[derive(Debug, Clone)]
pub(crate) struct AdminService {
    state: Arc<State>,
}

impl AdminService {
    pub(crate) fn new(state: Arc<State>) -> Self {
        AdminService { state }
    }

    /// One durable write, then its publication to the environment's streams — unless the
    /// client has gone (`client`) by the time the write's turn comes.
    async fn write(
        &self,
        client: Client,
        environment: &str,
        op: WriteOp,
        change: Authorship,
    ) -> Result<Committed, Status> {
        let environment = environment_or_default(environment).to_owned();
        let meta = client.meta(change);
        let operation = operation_name(&op);
        let state = Arc::clone(&self.state);
        let target = environment.clone();
        let started = Instant::now();
        let (wanted, present) = client.still_wanted();
        let committed = tokio::task::spawn_blocking(move || {
            let Some(committed) = state.store.write_if(&target, op, &meta, &wanted)? else {
                return Err(Unwritten::Abandoned);
            };
            // Published here rather than in the request future: a client that cancels after
            // the commit drops that future, and the change must still reach the SDKs. A write
            // that changed nothing (a kill of a killed flag) has nothing to publish.
            if !committed.unchanged {
                state.hub.publish(&target, &committed);
            }
            Ok(committed)
        })
        .await
        .map_err(RequestError::from)?
        .map_err(|error| unwritten(error, &environment, operation))?;
        drop(present);
        if committed.unchanged {
            info!(%environment, key = %committed.entry.key, revision = committed.revision, operation, "nothing to change");
            return Ok(committed);
        }
        metrics::histogram!("flagd_commit_seconds").record(started.elapsed());
        metrics::counter!("flagd_writes_total", "operation" => operation).increment(1);
        info!(%environment, key = %committed.entry.key, revision = committed.revision, operation, "committed");
        Ok(committed)
    }

    async fn written(
        &self,
        client: Client,
        environment: &str,
        op: WriteOp,
        change: Option<v1::Change>,
    ) -> WriteResult {
        let committed = self.write(client, environment, op, change.into()).await?;
        Ok(Response::new(write_response(&committed)))
    }

    /// Runs a read off the async runtime.
    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, Status> {
        let store = self.state.store.clone();
        Ok(tokio::task::spawn_blocking(move || read(&store)).await.map_err(RequestError::from)??)
    }
}

/// Every `operation` label of `flagd_writes_total`: the single-flag writes of
/// [`operation_name`] and the whole-environment ones.
pub(crate) const WRITE_OPERATIONS: [&str; 14] = [
    "put_flag",
    "set_rollout",
    "serve_variant",
    "kill",
    "revive",
    "delete_flag",
    "rollback",
    "put_segment",
    "delete_segment",
    "apply",
    "promote",
    "restore",
    "create_environment",
    "delete_environment",
];

/// The `operation` label of `flagd_writes_total`.
fn operation_name(op: &WriteOp) -> &'static str {
    match op {
        WriteOp::PutFlag { .. } => "put_flag",
        WriteOp::SetRollout { .. } => "set_rollout",
        WriteOp::ServeVariant { .. } => "serve_variant",
        WriteOp::Kill { .. } => "kill",
        WriteOp::Revive { .. } => "revive",
        WriteOp::DeleteFlag { .. } => "delete_flag",
        WriteOp::Rollback { .. } => "rollback",
        WriteOp::PutSegment { .. } => "put_segment",
        WriteOp::DeleteSegment { .. } => "delete_segment",
    }
}

type WriteResult = Result<Response<v1::WriteResponse>, Status>;

fn write_response(committed: &Committed) -> v1::WriteResponse {
    flag_proto::write_response(committed.revision, &committed.entry)
}

fn page_size(requested: u32) -> usize {
    let (default, max) = PAGE_SIZE;
    (if requested == 0 { default } else { requested.min(max) }) as usize
}

fn wait_duration(wait_ms: u32) -> Duration {
    Duration::from_millis(u64::from(wait_ms)).min(MAX_ACK_WAIT)
}

#[tonic::async_trait]
impl Admin for AdminService {
    #[instrument(skip_all)]
    async fn put_flag(&self, request: Request<v1::PutFlagRequest>) -> WriteResult {
        let client = Client::of(&request);
        let v1::PutFlagRequest { environment, flag, expected_version, change } = request.into_inner();
        let flag = Flag::try_from(flag.ok_or(RequestError::Missing("flag"))?).map_err(RequestError::from)?;
        self.written(client, &environment, WriteOp::PutFlag { flag, expected_version }, change).await
    }

    #[instrument(skip_all)]
    async fn set_rollout(&self, request: Request<v1::SetRolloutRequest>) -> WriteResult {
        let client = Client::of(&request);
        let v1::SetRolloutRequest {
            environment,
            key,
            percent,
            dark_percent,
            expected_version,
            change,
            create_if_missing,
        } = request.into_inner();
        let op = WriteOp::SetRollout { key, percent, dark_percent, expected_version, create_if_missing };
        self.written(client, &environment, op, change).await
    }

    #[instrument(skip_all)]
    async fn serve_variant(&self, request: Request<v1::ServeVariantRequest>) -> WriteResult {
        let client = Client::of(&request);
        let v1::ServeVariantRequest { environment, key, variant, expected_version, change } =
            request.into_inner();
        self.written(client, &environment, WriteOp::ServeVariant { key, variant, expected_version }, change)
            .await
    }

    #[instrument(skip_all)]
    async fn kill(&self, request: Request<v1::KillRequest>) -> Result<Response<v1::KillResponse>, Status> {
        let client = Client::of(&request);
        let v1::KillRequest { environment, key, change, wait_ms } = request.into_inner();
        let committed = self.write(client, &environment, WriteOp::Kill { key }, change.into()).await?;
        let environment = environment_or_default(&environment);
        let report =
            crate::fleet::wait_for(&self.state, environment, committed.revision, wait_duration(wait_ms))
                .await;
        let Committed { revision, entry, unchanged } = committed;
        // The acks are then for the revision of the kill in force (`Committed::unchanged`).
        Ok(Response::new(flag_proto::kill_response(revision, &entry, &report, unchanged)))
    }

    #[instrument(skip_all)]
    async fn revive(&self, request: Request<v1::ReviveRequest>) -> WriteResult {
        let client = Client::of(&request);
        let v1::ReviveRequest { environment, key, expected_version, change } = request.into_inner();
        self.written(client, &environment, WriteOp::Revive { key, expected_version }, change).await
    }

    #[instrument(skip_all)]
    async fn delete_flag(&self, request: Request<v1::DeleteFlagRequest>) -> WriteResult {
        let client = Client::of(&request);
        let v1::DeleteFlagRequest { environment, key, expected_version, change } = request.into_inner();
        self.written(client, &environment, WriteOp::DeleteFlag { key, expected_version }, change).await
    }

    #[instrument(skip_all)]
    async fn rollback(&self, request: Request<v1::RollbackRequest>) -> WriteResult {
        let client = Client::of(&request);
        let v1::RollbackRequest { environment, key, to_version, expected_version, change, allow_revive } =
            request.into_inner();
        let op = WriteOp::Rollback { key, to_version, expected_version, allow_revive };
        self.written(client, &environment, op, change).await
    }

    #[instrument(skip_all)]
    async fn get_flag(
        &self,
        request: Request<v1::GetFlagRequest>,
    ) -> Result<Response<v1::GetFlagResponse>, Status> {
        let v1::GetFlagRequest { environment, key } = request.into_inner();
        let environment = environment_or_default(&environment).to_owned();
        let (record, revision) = {
            let (environment, key) = (environment.clone(), key.clone());
            self.read(move |store| {
                // The revision first: a client resuming from it may see a change twice, never miss one.
                let revision = store.revision(&environment)?;
                Ok((store.flag(&environment, &key)?, revision))
            })
            .await?
        };
        let record = record.ok_or(RequestError::FlagNotFound { key, environment })?;
        let last_change = record.last_change;
        Ok(Response::new(flag_proto::get_flag_response(&record.flag, &last_change, revision)))
    }

    #[instrument(skip_all)]
    async fn list_flags(
        &self,
        request: Request<v1::ListFlagsRequest>,
    ) -> Result<Response<v1::ListFlagsResponse>, Status> {
        let v1::ListFlagsRequest { environment, prefix, tag } = request.into_inner();
        let environment = environment_or_default(&environment).to_owned();
        let (flags, revision) = self
            .read(move |store| {
                let tag = (!tag.is_empty()).then_some(tag.as_str());
                let revision = store.revision(&environment)?;
                Ok((store.list_flags(&environment, &prefix, tag)?, revision))
            })
            .await?;
        Ok(Response::new(flag_proto::list_flags_response(&flags, revision)))
    }

    #[instrument(skip_all)]
    async fn flag_history(
        &self,
        request: Request<v1::FlagHistoryRequest>,
    ) -> Result<Response<v1::HistoryResponse>, Status> {
        let v1::FlagHistoryRequest { environment, key, page_size: requested, before_version } =
            request.into_inner();
        let environment = environment_or_default(&environment).to_owned();
        let limit = page_size(requested);
        let before = (before_version != 0).then_some(before_version);
        let entries = self.read(move |store| store.flag_history(&environment, &key, before, limit)).await?;
        let next_before = if entries.len() == limit { entries.last().map_or(0, |e| e.version) } else { 0 };
        Ok(Response::new(flag_proto::history_response(&entries, next_before)))
    }

    #[instrument(skip_all)]
    async fn environment_history(
        &self,
        request: Request<v1::EnvironmentHistoryRequest>,
    ) -> Result<Response<v1::HistoryResponse>, Status> {
        let v1::EnvironmentHistoryRequest { environment, page_size: requested, before_revision } =
            request.into_inner();
        let environment = environment_or_default(&environment).to_owned();
        let limit = page_size(requested);
        let before = (before_revision != 0).then_some(before_revision);
        let entries = self.read(move |store| store.environment_history(&environment, before, limit)).await?;
        let next_before = if entries.len() == limit { entries.last().map_or(0, |e| e.revision) } else { 0 };
        Ok(Response::new(flag_proto::history_response(&entries, next_before)))
    }

    #[instrument(skip_all)]
    async fn put_segment(&self, request: Request<v1::PutSegmentRequest>) -> WriteResult {
        let client = Client::of(&request);
        let v1::PutSegmentRequest { environment, segment, change } = request.into_inner();
        let segment = Segment::try_from(segment.ok_or(RequestError::Missing("segment"))?)
            .map_err(RequestError::from)?;
        self.written(client, &environment, WriteOp::PutSegment { segment }, change).await
    }

    #[instrument(skip_all)]
    async fn delete_segment(&self, request: Request<v1::DeleteSegmentRequest>) -> WriteResult {
        let client = Client::of(&request);
        let v1::DeleteSegmentRequest { environment, key, change } = request.into_inner();
        self.written(client, &environment, WriteOp::DeleteSegment { key }, change).await
    }

    #[instrument(skip_all)]
    async fn list_segments(
        &self,
        request: Request<v1::ListSegmentsRequest>,
    ) -> Result<Response<v1::ListSegmentsResponse>, Status> {
        let v1::ListSegmentsRequest { environment } = request.into_inner();
        let environment = environment_or_default(&environment).to_owned();
        let (segments, revision) = self
            .read(move |store| {
                let revision = store.revision(&environment)?;
                Ok((store.segments(&environment)?, revision))
            })
            .await?;
        Ok(Response::new(flag_proto::list_segments_response(&segments, revision)))
    }

    #[instrument(skip_all)]
    async fn wait_for_acks(
        &self,
        request: Request<v1::WaitForAcksRequest>,
    ) -> Result<Response<v1::AckReport>, Status> {
        let v1::WaitForAcksRequest { environment, revision, wait_ms } = request.into_inner();
        let environment = environment_or_default(&environment).to_owned();
        let known = environment.clone();
        self.read(move |store| store.revision(&known)).await?;
        let report =
            crate::fleet::wait_for(&self.state, &environment, revision, wait_duration(wait_ms)).await;
        Ok(Response::new(v1::AckReport::from(&report)))
    }

    #[instrument(skip_all)]
    async fn apply(&self, request: Request<v1::ApplyRequest>) -> Result<Response<v1::ApplyResponse>, Status> {
        let client = Client::of(&request);
        let v1::ApplyRequest { environment, flags, segments, prune, dry_run, expected_revision, change } =
            request.into_inner();
        let set = flag_proto::flag_set_from_proto(flags, segments).map_err(RequestError::from)?;
        let batch = Batch {
            flags: set.flags,
            segments: set.segments,
            prune,
            dry_run,
            expected_revision,
            allow_revive: false,
            from_history: false,
            lifecycle: None,
        };
        let environment = environment_or_default(&environment).to_owned();
        let meta = client.meta(change.into());
        let (wanted, present) = client.still_wanted();
        let state = Arc::clone(&self.state);
        let target = environment.clone();
        let applied = tokio::task::spawn_blocking(move || {
            let Some(applied) = state.store.apply_if(&target, batch, &meta, &wanted)? else {
                return Err(Unwritten::Abandoned);
            };
            Ok(applied)
        })
        .await
        .map_err(RequestError::from)?
        .map_err(|error| unwritten(error, &environment, "apply"))?;
        drop(present);
        if applied.last.is_some() {
            metrics::counter!("flagd_writes_total", "operation" => "apply").increment(1);
            info!(%environment, changes = applied.changes.len(), revision = applied.revision, "apply committed");
        }
        Ok(Response::new(flag_proto::apply_response(applied.revision, &applied.changes, applied.kept_killed)))
    }

    #[instrument(skip_all)]
    async fn point_in_time_restore(
        &self,
        request: Request<v1::PointInTimeRestoreRequest>,
    ) -> Result<Response<v1::PointInTimeRestoreResponse>, Status> {
        Ok(Response::new(crate::point_in_time::restore(&self.state, request).await?))
    }

    #[instrument(skip_all)]
    async fn diff(&self, request: Request<v1::DiffRequest>) -> Result<Response<v1::DiffResponse>, Status> {
        Ok(Response::new(crate::environment_diff::diff(&self.state, request.into_inner()).await?))
    }

    #[instrument(skip_all)]
    async fn promote(
        &self,
        request: Request<v1::PromoteRequest>,
    ) -> Result<Response<v1::PromoteResponse>, Status> {
        Ok(Response::new(crate::environment_promote::promote(&self.state, request).await?))
    }

    #[instrument(skip_all)]
    async fn create_bookmark(
        &self,
        request: Request<v1::CreateBookmarkRequest>,
    ) -> Result<Response<v1::Bookmark>, Status> {
        Ok(Response::new(crate::bookmarks::create(&self.state, request).await?))
    }

    #[instrument(skip_all)]
    async fn list_bookmarks(
        &self,
        request: Request<v1::ListBookmarksRequest>,
    ) -> Result<Response<v1::ListBookmarksResponse>, Status> {
        Ok(Response::new(crate::bookmarks::list(&self.state, request.into_inner()).await?))
    }

    #[instrument(skip_all)]
    async fn start_rollout(
        &self,
        request: Request<v1::StartRolloutRequest>,
    ) -> Result<Response<v1::RolloutResponse>, Status> {
        Ok(Response::new(rollout::start(&self.state, request).await?))
    }

    #[instrument(skip_all)]
    async fn get_rollout(
        &self,
        request: Request<v1::GetRolloutRequest>,
    ) -> Result<Response<v1::RolloutStatus>, Status> {
        Ok(Response::new(rollout::get(&self.state, request.into_inner()).await?))
    }

    #[instrument(skip_all)]
    async fn list_rollouts(
        &self,
        request: Request<v1::ListRolloutsRequest>,
    ) -> Result<Response<v1::ListRolloutsResponse>, Status> {
        Ok(Response::new(rollout::list(&self.state, request.into_inner()).await?))
    }

    #[instrument(skip_all)]
    async fn pause_rollout(
        &self,
        request: Request<v1::ChangeRolloutRequest>,
    ) -> Result<Response<v1::RolloutResponse>, Status> {
        Ok(Response::new(rollout::change(&self.state, request, rollout::Asked::Pause).await?))
    }

    #[instrument(skip_all)]
    async fn resume_rollout(
        &self,
        request: Request<v1::ChangeRolloutRequest>,
    ) -> Result<Response<v1::RolloutResponse>, Status> {
        Ok(Response::new(rollout::change(&self.state, request, rollout::Asked::Resume).await?))
    }

    #[instrument(skip_all)]
    async fn abort_rollout(
        &self,
        request: Request<v1::ChangeRolloutRequest>,
    ) -> Result<Response<v1::RolloutResponse>, Status> {
        Ok(Response::new(rollout::change(&self.state, request, rollout::Asked::Abort).await?))
    }

    #[instrument(skip_all)]
    async fn evaluate(
        &self,
        request: Request<v1::EvaluateRequest>,
    ) -> Result<Response<v1::EvaluateResponse>, Status> {
        let v1::EvaluateRequest { environment, key, targeting_key, attributes } = request.into_inner();
        let environment = environment_or_default(&environment).to_owned();
        let (revision, set) = self.read(move |store| store.snapshot(&environment)).await?;
        let attributes = flag_proto::attributes_from_proto(&attributes);
        let response =
            crate::evaluate::evaluate(set, &key, &targeting_key, &attributes, |evaluation, version| {
                flag_proto::evaluate_response(evaluation, version, revision)
            })
            .map_err(RequestError::StoredSet)?;
        Ok(Response::new(response))
    }

    #[instrument(skip_all)]
    async fn create_environment(
        &self,
        request: Request<v1::CreateEnvironmentRequest>,
    ) -> Result<Response<v1::Environment>, Status> {
        Ok(Response::new(crate::environments::create(&self.state, request).await?))
    }

    #[instrument(skip_all)]
    async fn list_environments(
        &self,
        request: Request<v1::ListEnvironmentsRequest>,
    ) -> Result<Response<v1::ListEnvironmentsResponse>, Status> {
        Ok(Response::new(crate::environments::list(&self.state, request.into_inner()).await?))
    }

    #[instrument(skip_all)]
    async fn describe_environment(
        &self,
        request: Request<v1::DescribeEnvironmentRequest>,
    ) -> Result<Response<v1::Environment>, Status> {
        Ok(Response::new(crate::environments::describe(&self.state, request.into_inner()).await?))
    }

    #[instrument(skip_all)]
    async fn delete_environment(
        &self,
        request: Request<v1::DeleteEnvironmentRequest>,
    ) -> Result<Response<v1::DeleteEnvironmentResponse>, Status> {
        Ok(Response::new(crate::environments::delete(&self.state, request).await?))
    }

    type BackupStream = tokio_stream::wrappers::ReceiverStream<Result<v1::BackupChunk, Status>>;

    /// Copies the store from one read transaction into a redb file beside it (see
    /// `store::backup`; a PostgreSQL store too), checks the copy, and streams it. The copy is removed once read.
    #[instrument(skip_all)]
    async fn backup(
        &self,
        _request: Request<v1::BackupRequest>,
    ) -> Result<Response<Self::BackupStream>, Status> {
        let data = self.state.config.data.clone();
        let (bytes, report) = self
            .read(move |store| {
                // A PostgreSQL store has no directory of its own: its copy is made in the
                // system's temp dir.
                let beside = if store.is_postgres() { std::env::temp_dir().join("flags.redb") } else { data };
                let copy = backup_path(&beside);
                let report = store.backup_to(&copy);
                let bytes = report.and_then(|report| {
                    std::fs::read(&copy)
                        .map(|bytes| (bytes, report))
                        .map_err(|source| StoreError::Read { path: copy.clone(), source })
                });
                let _ = std::fs::remove_file(&copy);
                bytes
            })
            .await?;
        info!(
            bytes = bytes.len(),
            environments = report.environments,
            changes = report.changes,
            "backup copied"
        );
        let (sender, receiver) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            let total_bytes = bytes.len() as u64;
            let mut first = Some(BackupTotals {
                total_bytes,
                environments: report.environments,
                changes: report.changes,
                flags: report.flags,
            });
            for piece in bytes.chunks(BACKUP_CHUNK) {
                let chunk = flag_proto::backup_chunk(piece.to_vec(), first.take());
                // A failed send means the client left: the copy is already gone.
                if sender.send(Ok(chunk)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(tokio_stream::wrappers::ReceiverStream::new(receiver)))
    }

    #[instrument(skip_all)]
    async fn query_log(
        &self,
        request: Request<v1::QueryLogRequest>,
    ) -> Result<Response<v1::QueryLogResponse>, Status> {
        Ok(Response::new(crate::audit_log::query(&self.state, request).await?))
    }
}

/// Bytes per backup message: well under gRPC's 4 MiB message limit.
const BACKUP_CHUNK: usize = 1 << 20;

/// Where a backup is copied before it is streamed: beside the store (same filesystem, and a
/// directory flagd can write), named so that two backups at once do not meet.
fn backup_path(data: &std::path::Path) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name =
        data.file_name().map_or_else(|| "flags.redb".into(), |name| name.to_string_lossy().into_owned());
    data.with_file_name(format!(".{name}.backup-{}-{n}", std::process::id()))
}
