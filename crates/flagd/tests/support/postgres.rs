//! A flagd binary on a PostgreSQL store.

use std::ffi::OsStr;
use std::process::{Child, Command};

use flag_proto::v1;

use super::{flagctl, listening_on, start_binary_with};

pub struct Flagd {
    pub child: Child,
    pub endpoint: String,
    pub management: std::net::SocketAddr,
}

impl Flagd {
    pub fn start(url: &str) -> Flagd {
        let (child, line) = start_binary_with(&[OsStr::new("--store"), OsStr::new(url)]);
        let endpoint = format!("http://{}", listening_on(&line, "grpc"));
        Flagd { child, endpoint, management: listening_on(&line, "management") }
    }

    /// A `Sync.Watch` stream of `environment` resuming at `since` of store `store_id`.
    pub async fn watch(&self, environment: &str, since: u64, store_id: &str) -> super::Watcher {
        let client = v1::sync_client::SyncClient::connect(self.endpoint.clone()).await.unwrap();
        super::Watcher::open_from(client, environment, since, store_id).await.unwrap()
    }

    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Flagd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn run_flagctl(endpoint: &str, args: &[&str]) -> std::process::Output {
    Command::new(flagctl()).args(["--server", endpoint]).args(args).output().unwrap()
}
