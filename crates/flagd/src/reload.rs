//! SIGHUP: the tokens file read again and put in force, without dropping a connection. A
//! file that cannot be used keeps the principals in force, and the log says why.

use std::future::Future;
use std::sync::Arc;

use tracing::{info, warn};

use crate::state::State;

/// Reloads the tokens file on every SIGHUP until `stopped`. The handler is installed here,
/// before flagd says it is listening: installed later, a SIGHUP in between would end flagd
/// (the signal's default action).
pub(crate) fn reload_on_hangup(
    state: Arc<State>,
    stopped: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = signal(SignalKind::hangup())?;
        tokio::spawn(async move {
            tokio::pin!(stopped);
            loop {
                tokio::select! {
                    () = &mut stopped => return,
                    received = hangups.recv() => if received.is_none() { return },
                }
                reload(&state).await;
            }
        });
    }
    #[cfg(not(unix))]
    drop((state, stopped));
    Ok(())
}

async fn reload(state: &Arc<State>) {
    let file = state.access.file().map(|file| file.display().to_string()).unwrap_or_default();
    let reloading = Arc::clone(state);
    // The file is read off the async runtime.
    match tokio::task::spawn_blocking(move || reloading.access.reload()).await {
        Ok(Ok(principals)) => {
            metrics::counter!("flagd_tokens_reloads_total", "outcome" => "loaded").increment(1);
            info!(%file, principals, "tokens file reloaded");
        }
        Ok(Err(error)) => {
            metrics::counter!("flagd_tokens_reloads_total", "outcome" => "refused").increment(1);
            warn!(%file, %error, "tokens file not reloaded: the principals loaded before stay in force");
        }
        Err(error) => {
            warn!(%file, %error, "tokens file reload failed: the principals loaded before stay in force")
        }
    }
}
