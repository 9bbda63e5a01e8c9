//! The accept loop: one for the server, spawning a task per connection until its head is read.
//!
//! At the open-file limit accepting fails. The loop keeps one descriptor in reserve (an open
//! `/dev/null`): it closes it, accepts the waiting connection, answers it `503` with
//! `Retry-After` and closes it, then takes the reserve back, so clients beyond the limit learn
//! at once to come back later instead of hanging in the backlog. It warns at most once a
//! second, and every connection already accepted is served as before.
//!
//! Each connection counts against its client's address (`address`); one past the address's
//! limit is answered `429` with `Retry-After` at once, without reading its request.

use std::io;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use hyper::StatusCode;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use super::FrontEnd;
use crate::http::error;
use crate::stats::Stats;

/// `EMFILE`: the process is at its open-file limit.
const EMFILE: i32 = 24;
/// `ENFILE`: the system is at its open-file limit.
const ENFILE: i32 = 23;
/// How long to wait before accepting again at the open-file limit, when the reserve descriptor
/// is lost too.
const FD_LIMIT_BACKOFF: Duration = Duration::from_millis(20);
/// What a client refused at the open-file limit is told to wait, in seconds.
const RETRY_AFTER_SECONDS: &str = "5";
/// The least time between two warnings about the open-file limit.
const WARN_EVERY: Duration = Duration::from_secs(1);

/// Accepts connections until shutdown, each served in a task `tracker` follows.
pub async fn run(listener: TcpListener, front: Arc<FrontEnd>, tracker: TaskTracker) {
    let mut last_warning: Option<Instant> = None;
    let mut reserve = open_reserve();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = front.shutdown.cancelled() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                front.http.stats.connections_total.fetch_add(1, Relaxed);
                match front.addresses.admit(peer.ip()) {
                    Ok(admission) => {
                        if front.send_buffer > 0 {
                            let socket = socket2::SockRef::from(&stream);
                            let _ = socket.set_send_buffer_size(front.send_buffer);
                        }
                        tracker.spawn(super::serve(stream, peer, admission, front.clone()));
                    }
                    Err(limit) => {
                        debug!(peer = %peer, "connection refused: {limit}");
                        front
                            .http
                            .stats
                            .connections_refused_per_address
                            .fetch_add(1, Relaxed);
                        let answer = error::raw(
                            StatusCode::TOO_MANY_REQUESTS,
                            &limit.to_string(),
                            &[("retry-after", RETRY_AFTER_SECONDS)],
                        );
                        let _ = stream.try_write(&answer);
                    }
                }
            }
            Err(e) if matches!(e.raw_os_error(), Some(EMFILE | ENFILE)) => {
                if last_warning.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                    warn!(error = %e, "at the open-file limit; refusing new connections with 503");
                    last_warning = Some(Instant::now());
                }
                // Frees one descriptor for the waiting connection, then takes it back.
                if reserve.take().is_some() {
                    refuse_one(&listener, &front.http.stats).await;
                    reserve = open_reserve();
                }
                if reserve.is_none() {
                    tokio::time::sleep(FD_LIMIT_BACKOFF).await;
                    reserve = open_reserve();
                }
            }
            Err(e) => accept_failed(e).await,
        }
    }
}

/// The descriptor kept for refusing connections at the open-file limit.
fn open_reserve() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}

/// Accepts one waiting connection and answers it `503` at once, without waiting on it: the
/// answer is small enough for a fresh socket's buffer, and the descriptor is needed back.
async fn refuse_one(listener: &TcpListener, stats: &Stats) {
    let Ok(Ok((stream, _))) = tokio::time::timeout(Duration::ZERO, listener.accept()).await else {
        return;
    };
    stats.connections_refused_open_files.fetch_add(1, Relaxed);
    let answer = error::raw(
        StatusCode::SERVICE_UNAVAILABLE,
        "the server is at its connection limit",
        &[("retry-after", RETRY_AFTER_SECONDS)],
    );
    let _ = stream.try_write(&answer);
}

/// A connection that failed before it was accepted (reset in the backlog, say) concerns no one.
async fn accept_failed(error: io::Error) {
    debug!(error = %error, "accept failed");
    tokio::time::sleep(Duration::from_millis(1)).await;
}
