//! The accept loop: one for the server, spawning a task per connection until its head is read.
//!
//! At the open-file limit accepting fails; the loop then waits briefly and retries, warning at
//! most once a second, while every connection already accepted is served as before.

use std::io;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use super::FrontEnd;

/// `EMFILE`: the process is at its open-file limit.
const EMFILE: i32 = 24;
/// `ENFILE`: the system is at its open-file limit.
const ENFILE: i32 = 23;
/// How long to wait before accepting again at the open-file limit.
const FD_LIMIT_BACKOFF: Duration = Duration::from_millis(20);
/// The least time between two warnings about the open-file limit.
const WARN_EVERY: Duration = Duration::from_secs(1);

/// Accepts connections until shutdown, each served in a task `tracker` follows.
pub async fn run(listener: TcpListener, front: Arc<FrontEnd>, tracker: TaskTracker) {
    let mut last_warning: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = front.shutdown.cancelled() => return,
        };
        match accepted {
            Ok((stream, _peer)) => {
                front.http.stats.connections_total.fetch_add(1, Relaxed);
                tracker.spawn(super::serve(stream, front.clone()));
            }
            Err(e) if matches!(e.raw_os_error(), Some(EMFILE | ENFILE)) => {
                if last_warning.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                    warn!(error = %e, "at the open-file limit; new connections wait");
                    last_warning = Some(Instant::now());
                }
                tokio::time::sleep(FD_LIMIT_BACKOFF).await;
            }
            Err(e) => accept_failed(e).await,
        }
    }
}

/// A connection that failed before it was accepted (reset in the backlog, say) concerns no one.
async fn accept_failed(error: io::Error) {
    debug!(error = %error, "accept failed");
    tokio::time::sleep(Duration::from_millis(1)).await;
}
