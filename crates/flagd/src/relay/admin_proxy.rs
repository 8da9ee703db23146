//! The relay's `flags.v1.Admin`: reads go to the upstream as they came (the caller's token
//! with them, so the upstream decides who may read what); writes are refused with the
//! upstream's address, since a relay has no store to write to and must never be mistaken
//! for one that does.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use flag_proto::error_chain;
use tonic::Status;
use tonic::body::Body;
use tonic::codegen::http;
use tonic::transport::Channel;
use tower_service::Service;

use super::upstream::Upstreams;

/// The Admin calls that only read: forwarded to the upstream.
const READS: [&str; 15] = [
    "GetFlag",
    "ListFlags",
    "FlagHistory",
    "EnvironmentHistory",
    "ListSegments",
    "WaitForAcks",
    "Diff",
    "ListBookmarks",
    "Evaluate",
    "Backup",
    "ListEnvironments",
    "DescribeEnvironment",
    "QueryLog",
    "GetRollout",
    "ListRollouts",
];

const SERVICE_PATH: &str = "/flags.v1.Admin/";

/// Serves `flags.v1.Admin` on a relay.
#[derive(Clone, Debug)]
pub(crate) struct AdminProxy {
    upstreams: Arc<Upstreams>,
}

impl AdminProxy {
    pub(crate) fn new(upstreams: Arc<Upstreams>) -> AdminProxy {
        AdminProxy { upstreams }
    }
}

impl tonic::server::NamedService for AdminProxy {
    const NAME: &'static str = "flags.v1.Admin";
}

/// Whether the call at `path` only reads.
fn is_read(path: &str) -> bool {
    path.strip_prefix(SERVICE_PATH).is_some_and(|method| READS.contains(&method))
}

impl Service<http::Request<Body>> for AdminProxy {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let (address, channel) = self.upstreams.current();
        if !is_read(request.uri().path()) {
            let refused = Status::failed_precondition(format!(
                "this flagd is a relay of {address}: it has no store of its own; send writes to {address}"
            ));
            return Box::pin(async move { Ok(refused.into_http()) });
        }
        Box::pin(forward(channel, address, request))
    }
}

async fn forward(
    mut channel: Channel,
    address: String,
    request: http::Request<Body>,
) -> Result<http::Response<Body>, Infallible> {
    let unreachable = |error: &dyn std::error::Error| {
        Status::unavailable(format!("relay upstream {address}: {}", error_chain(error)))
    };
    if let Err(error) = std::future::poll_fn(|cx| channel.poll_ready(cx)).await {
        return Ok(unreachable(&error).into_http());
    }
    match channel.call(request).await {
        Ok(response) => Ok(response),
        Err(error) => Ok(unreachable(&error).into_http()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_reads_are_forwarded() {
        assert!(is_read("/flags.v1.Admin/ListFlags"));
        assert!(is_read("/flags.v1.Admin/WaitForAcks"));
        for write in
            ["Kill", "PutFlag", "Apply", "Promote", "PointInTimeRestore", "DeleteEnvironment", "Unknown"]
        {
            assert!(!is_read(&format!("/flags.v1.Admin/{write}")), "{write}");
        }
        assert!(!is_read("/flags.v1.Sync/ListFlags"));
    }
}
