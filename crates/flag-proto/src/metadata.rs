//! The names of the request and response metadata our servers and clients exchange, in one
//! place: flagd sets them and flagctl and the SDK read them, so a renamed header is renamed
//! on every side at once.

/// The request header carrying `Bearer <token>`.
pub const AUTHORIZATION_KEY: &str = "authorization";

/// On a version conflict: the version the flag is at.
pub const CURRENT_VERSION_KEY: &str = "x-current-version";

/// When an apply expected another revision: the revision the environment is at.
pub const CURRENT_REVISION_KEY: &str = "x-current-revision";

/// On a store that cannot commit now (disk full, I/O error, reopening): the write was not
/// made, and the same request can be retried once flagd's `/readyz` is ready.
pub const STORE_UNAVAILABLE_KEY: &str = "x-store-unavailable";

/// On a `Sync.Watch` answer: this flagd takes health reports on the stream. A client sends
/// none without it, so an older flagd, which would end the stream on an unknown request,
/// keeps serving a newer client.
pub const HEALTH_REPORTS_KEY: &str = "x-health-reports";

/// The deadline a client gives a call (gRPC's own header, read by flagd's writer).
pub const GRPC_TIMEOUT_KEY: &str = "grpc-timeout";
