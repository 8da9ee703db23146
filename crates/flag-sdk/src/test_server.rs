//! A real flagd in the test process (feature `test-server`), for integration tests of
//! applications and of this crate.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use flag_proto::v1::admin_client::AdminClient;
use flag_proto::{Authorship, Bearer, Requests};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::settings::ClientBuilder;

/// Why the test server could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestServerError {
    /// Binding, or creating the temporary directory, failed.
    #[error("test flagd: {0}")]
    Io(#[from] std::io::Error),
    /// flagd failed to start or stopped with an error.
    #[error("test flagd: {0}")]
    Serve(#[from] flagd::ServeError),
    /// The Admin connection failed.
    #[error("test flagd admin connection: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// flagd refused an Admin call.
    #[error("test flagd refused: {}", .0.message())]
    Refused(#[from] tonic::Status),
    /// The server task ended abnormally, or a setting cannot be used.
    #[error("test flagd: {0}")]
    Stopped(&'static str),
}

/// flagd on `127.0.0.1` (a random port) with its store in a temporary directory, on the
/// test's runtime. [`stop`](Self::stop) and [`restart`](Self::restart) keep the data and
/// the address, so clients can be tested across a server restart.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use flag_core::{Context, Evaluate, Flag};
/// let server = flag_sdk::TestServer::start().await?;
/// server.put_flag(&Flag::rollout("chat", 100.0)?).await?;
/// let client = server.client_builder().connect().await?;
/// assert!(client.is_enabled("chat", &Context::new("user-1")));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TestServer {
    address: SocketAddr,
    /// The management HTTP port (`/metrics`, `/readyz`).
    management: SocketAddr,
    data: PathBuf,
    /// Kept to restart with the same settings.
    config: flagd::Config,
    running: Option<Running>,
    /// Kept for the directory's lifetime: removed when the server is dropped.
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts flagd with its defaults (a 1 s heartbeat, so dead streams show quickly).
    pub async fn start() -> Result<TestServer, TestServerError> {
        TestServer::start_with(|config| config).await
    }

    /// Starts flagd with settings adjusted by `configure` (e.g. tokens); the data file is
    /// the server's own.
    pub async fn start_with(
        configure: impl FnOnce(flagd::Config) -> flagd::Config,
    ) -> Result<TestServer, TestServerError> {
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("flags.redb");
        let mut config = configure(flagd::Config::new(&data).with_heartbeat_interval(Duration::from_secs(1)));
        config.data = data.clone();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let management = TcpListener::bind("127.0.0.1:0").await?;
        let mut server = TestServer {
            address,
            management: management.local_addr()?,
            data,
            config,
            running: None,
            _dir: dir,
        };
        server.serve(listener, management);
        Ok(server)
    }

    fn serve(&mut self, listener: TcpListener, management: TcpListener) {
        let config = self.config.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(flagd::serve_with_management(listener, Some(management), config, async {
            let _ = stopped.await;
        }));
        self.running = Some((stop, task));
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// `127.0.0.1:<port>` of the management HTTP endpoints (`/metrics`, `/readyz`).
    pub fn management_address(&self) -> SocketAddr {
        self.management
    }

    /// Where flagd keeps its data.
    pub fn data(&self) -> &Path {
        &self.data
    }

    /// A client builder for this server, with test-friendly timings: reconnects from 20 ms
    /// to 200 ms, a 3 s heartbeat timeout, and metrics flushed every 100 ms.
    pub fn client_builder(&self) -> ClientBuilder {
        ClientBuilder::new(self.endpoint())
            .backoff(Duration::from_millis(20), Duration::from_millis(200))
            .heartbeat_timeout(Duration::from_secs(3))
            .metrics_interval(Duration::from_millis(100))
    }

    /// A connection to the Admin API, with the admin token if one is configured.
    pub async fn admin(
        &self,
    ) -> Result<AdminClient<InterceptedService<Channel, AdminToken>>, TestServerError> {
        let channel = Channel::from_shared(self.endpoint())
            .map_err(|_| TestServerError::Stopped("the endpoint is not a URI"))?
            .connect()
            .await?;
        let token = Bearer::new(self.config.admin_token.as_deref())
            .map_err(|_| TestServerError::Stopped("the admin token is not ASCII"))?;
        Ok(AdminClient::with_interceptor(channel, token)
            .max_decoding_message_size(flag_proto::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(flag_proto::MAX_MESSAGE_BYTES))
    }

    /// Creates or replaces a flag in `production`; answers the new revision.
    pub async fn put_flag(&self, flag: &flag_core::Flag) -> Result<u64, TestServerError> {
        let request = production().put_flag(flag, None, change());
        let response = self.admin().await?.put_flag(request).await?.into_inner();
        Ok(response.revision)
    }

    /// Kills a flag in `production` and waits up to `wait` for the connected clients to
    /// acknowledge it; answers (revision, clients that acknowledged).
    pub async fn kill(&self, key: &str, wait: Duration) -> Result<(u64, u32), TestServerError> {
        let request = production().kill(key, wait, change());
        let response = self.admin().await?.kill(request).await?.into_inner();
        let revision = response.write.map_or(0, |write| write.revision);
        Ok((revision, response.acks.map_or(0, |acks| acks.acknowledged)))
    }

    /// Stops flagd (its streams end), keeping its data and address.
    pub async fn stop(&mut self) -> Result<(), TestServerError> {
        if let Some((stop, task)) = self.running.take() {
            let _ = stop.send(());
            match task.await {
                Ok(served) => served?,
                Err(_) => return Err(TestServerError::Stopped("the server task panicked")),
            }
        }
        Ok(())
    }

    /// Starts flagd again on the same address with the same data.
    pub async fn restart(&mut self) -> Result<(), TestServerError> {
        self.stop().await?;
        let listener = TcpListener::bind(self.address).await?;
        let management = TcpListener::bind(self.management).await?;
        self.serve(listener, management);
        Ok(())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some((stop, _)) = self.running.take() {
            let _ = stop.send(());
        }
    }
}

/// Adds the admin token to Admin calls, when there is one: flag-proto's one client
/// interceptor, under the name this crate has always given it.
pub type AdminToken = Bearer;

/// A serving flagd: how to stop it, and its task.
type Running = (oneshot::Sender<()>, JoinHandle<Result<(), flagd::ServeError>>);

/// Requests for the default environment.
fn production() -> Requests<'static> {
    Requests::new("")
}

fn change() -> Authorship {
    Authorship { actor: "flag-sdk test".into(), reason: "test".into() }
}
