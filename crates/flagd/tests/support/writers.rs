//! Writers of `counter` that record every write acknowledged, and the checks that each is
//! kept: what the crash and failover tests share.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use flag_proto::v1;

use super::{COUNTER, flag, put};

/// Versions of `counter` acknowledged, with the description each wrote.
pub type Acknowledged = Mutex<Vec<(u64, String)>>;

/// Writes `counter` as fast as acknowledgements come, recording each acknowledged version
/// and description, until a write fails.
pub fn write_until_failure(
    endpoint: String,
    tag: String,
) -> (tokio::task::JoinHandle<()>, Arc<Acknowledged>) {
    let acked = Arc::new(Mutex::new(Vec::new()));
    let task = {
        let acked = Arc::clone(&acked);
        tokio::spawn(async move {
            let Ok(mut admin) = v1::admin_client::AdminClient::connect(endpoint).await else { return };
            for n in 0.. {
                let mut counter = flag(COUNTER);
                counter.description = format!("{tag} write {n}");
                match admin.put_flag(put("", counter.clone(), None, "durability test")).await {
                    Ok(written) => {
                        let version = written.into_inner().entry.unwrap().version;
                        acked.lock().unwrap().push((version, counter.description));
                    }
                    Err(_) => return,
                }
            }
        })
    };
    (task, acked)
}

pub async fn wait_for_acks(acked: &Acknowledged, count: usize) {
    let deadline = tokio::time::Instant::now() + super::WAIT;
    while acked.lock().unwrap().len() < count && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(acked.lock().unwrap().len() >= count, "writes were acknowledged");
}

/// Every acknowledged version of `counter` is in its history with the content acknowledged.
pub async fn assert_history_holds(endpoint: &str, acknowledged: &[(u64, String)]) {
    let history = counter_history(endpoint).await;
    for (version, description) in acknowledged {
        assert_eq!(history.get(version), Some(description), "acknowledged version {version} is kept");
    }
}

/// Every version of `counter` in history, with its description.
pub async fn counter_history(endpoint: &str) -> std::collections::BTreeMap<u64, String> {
    let mut admin = v1::admin_client::AdminClient::connect(endpoint.to_owned()).await.unwrap();
    let mut history = std::collections::BTreeMap::new();
    let mut before = 0;
    loop {
        let request = v1::FlagHistoryRequest {
            environment: "production".into(),
            key: "counter".into(),
            before_version: before,
            page_size: 500,
        };
        let entries = admin.flag_history(request).await.unwrap().into_inner().entries;
        let Some(last) = entries.last() else { break };
        before = last.version;
        for entry in entries {
            history.insert(entry.version, entry.flag.map(|flag| flag.description).unwrap_or_default());
        }
    }
    history
}
