//! A real flagd for the server benches: its own runtime, a temporary redb file (or a
//! PostgreSQL database), loopback.

use std::net::SocketAddr;
use std::time::Duration;

use flag_proto::v1;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

/// A flagd running on its own multi-threaded runtime, so the measuring client's runtime
/// competes with it only for the CPU, as a separate process would.
#[derive(Debug)]
pub struct BenchServer {
    /// Where its gRPC services listen.
    pub address: SocketAddr,
    /// Where it serves OFREP, when started with it.
    pub ofrep: Option<SocketAddr>,
    /// Where it serves its management port and the console, when started with them.
    pub management: Option<SocketAddr>,
    runtime: Option<Runtime>,
    stop: Option<oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl BenchServer {
    /// Starts flagd on 127.0.0.1:0 with a fresh store (its one environment: production).
    pub fn start() -> std::io::Result<BenchServer> {
        BenchServer::start_with(&[])
    }

    /// Starts flagd on 127.0.0.1:0 with a fresh store that also has `environments`.
    pub fn start_with(environments: &[&str]) -> std::io::Result<BenchServer> {
        BenchServer::start_serving(environments, false, false)
    }

    /// Starts flagd on 127.0.0.1:0 serving OFREP too (on another 127.0.0.1 port).
    pub fn start_with_ofrep() -> std::io::Result<BenchServer> {
        BenchServer::start_serving(&[], true, false)
    }

    /// Starts flagd on 127.0.0.1:0 with `environments` and its management port (and so the
    /// console) on another 127.0.0.1 port.
    pub fn start_with_console(environments: &[&str]) -> std::io::Result<BenchServer> {
        BenchServer::start_serving(environments, false, true)
    }

    /// Starts flagd on 127.0.0.1:0 with its store in the PostgreSQL database at `url`.
    pub fn start_on_postgres(url: &str) -> std::io::Result<BenchServer> {
        BenchServer::start_configured(&[], false, false, Some(url))
    }

    fn start_serving(environments: &[&str], ofrep: bool, management: bool) -> std::io::Result<BenchServer> {
        BenchServer::start_configured(environments, ofrep, management, None)
    }

    fn start_configured(
        environments: &[&str],
        ofrep: bool,
        management: bool,
        postgres: Option<&str>,
    ) -> std::io::Result<BenchServer> {
        let dir = tempfile::tempdir()?;
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let address = listener.local_addr()?;
        let ofrep_listener =
            if ofrep { Some(runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?) } else { None };
        let ofrep = ofrep_listener.as_ref().map(tokio::net::TcpListener::local_addr).transpose()?;
        let management_listener = if management {
            Some(runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?)
        } else {
            None
        };
        let management = management_listener.as_ref().map(tokio::net::TcpListener::local_addr).transpose()?;
        let mut config = flagd::Config::new(dir.path().join("flags.redb"))
            .with_heartbeat_interval(Duration::from_secs(30))
            .with_slow_client_limits(Duration::from_secs(30), 64)
            .with_environments(environments.iter().copied());
        if let Some(url) = postgres {
            config = config.with_postgres(url, 8);
        }
        let (stop, stopped) = oneshot::channel::<()>();
        let listeners = flagd::Listeners::grpc(listener)
            .with_management(management_listener)
            .with_open_feature(None, ofrep_listener);
        runtime.spawn(flagd::serve_listeners(
            listeners,
            config,
            async {
                let _ = stopped.await;
            },
            |_| {},
        ));
        Ok(BenchServer { address, ofrep, management, runtime: Some(runtime), stop: Some(stop), _dir: dir })
    }

    /// Starts a relay of the flagd at `upstream` on 127.0.0.1:0, caching in a temporary file.
    pub fn start_relay(upstream: &str) -> std::io::Result<BenchServer> {
        let dir = tempfile::tempdir()?;
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let address = listener.local_addr()?;
        let mut config = flagd::RelayConfig::new(vec![upstream.to_owned()]);
        config.cache = Some(dir.path().join("relay.cache"));
        config.name = "bench-relay".into();
        config.heartbeat_interval = Duration::from_secs(30);
        let (stop, stopped) = oneshot::channel::<()>();
        runtime.spawn(flagd::serve_relay(
            flagd::Listeners::grpc(listener),
            config,
            async {
                let _ = stopped.await;
            },
            |_| {},
        ));
        Ok(BenchServer {
            address,
            ofrep: None,
            management: None,
            runtime: Some(runtime),
            stop: Some(stop),
            _dir: dir,
        })
    }

    /// `http://address`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }
}

impl Drop for BenchServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

/// A small boolean flag whose description carries `n`, so every write changes it.
pub fn bench_flag(key: &str, n: u64) -> v1::Flag {
    let mut flag =
        flag_core::Flag::rollout(key, 50.0).unwrap_or_else(|_| unreachable!("50 % is a valid rollout"));
    flag.description = format!("write {n}");
    v1::Flag::from(&flag)
}

/// The p-th percentile (0–100) of sorted samples, in microseconds.
pub fn percentile_us(sorted: &[Duration], p: f64) -> u128 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)].as_micros()
}
