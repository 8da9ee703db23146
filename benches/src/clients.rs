//! A fleet of in-process SDK clients, as the benches connect them: `per_connection` of them
//! share one HTTP/2 connection (as a fleet spread over machines shares none, but one bench
//! process cannot open thousands of sockets cheaply), each named `{prefix}-{id}`.
// A bench that cannot connect its fleet has nothing to measure: it stops with the cause.
#![allow(clippy::expect_used)]

use flag_sdk::{Client, ClientBuilder};
use tonic::transport::Channel;

/// Connects `count` clients to `endpoint`, each set up further by `configure`; panics if one
/// cannot connect (a bench has nothing to measure then).
pub async fn sdk_fleet(
    endpoint: &str,
    count: usize,
    per_connection: usize,
    prefix: &str,
    configure: impl Fn(ClientBuilder) -> ClientBuilder,
) -> Vec<Client> {
    let mut clients = Vec::with_capacity(count);
    let mut channel: Option<Channel> = None;
    for id in 0..count {
        if id % per_connection.max(1) == 0 {
            let endpoint = Channel::from_shared(endpoint.to_owned()).expect("a valid endpoint");
            channel = Some(endpoint.connect().await.expect("connecting to flagd"));
        }
        let Some(channel) = channel.clone() else { unreachable!("opened at id 0") };
        let builder = Client::builder(endpoint).channel(channel).client_name(format!("{prefix}-{id}"));
        clients.push(configure(builder).connect().await.expect("an SDK client connects"));
    }
    clients
}
