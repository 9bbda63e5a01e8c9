//! The internal listener's accept loop: publish, health and stats stay reachable when
//! subscribers hold every descriptor the process may open.
//!
//! The loop keeps [`RESERVE`] open `/dev/null` descriptors of its own. At the open-file limit it
//! closes one and accepts the waiting connection into the freed slot at once (nothing else runs
//! on the thread in between), then serves it like any other; when that connection ends, the
//! reserve descriptor is opened again. So up to [`RESERVE`] probes and publishers at a time are
//! served at the limit, while the public listener refuses newcomers with `503`. It warns at most
//! once a second.

use std::fs::File;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use super::FrontEnd;

/// Descriptors kept for connections accepted at the open-file limit.
pub const RESERVE: usize = 8;
/// `EMFILE`: the process is at its open-file limit.
const EMFILE: i32 = 24;
/// `ENFILE`: the system is at its open-file limit.
const ENFILE: i32 = 23;
/// How long to wait before accepting again at the open-file limit with the reserve spent.
const FD_LIMIT_BACKOFF: Duration = Duration::from_millis(20);
/// The least time between two warnings about the open-file limit.
const WARN_EVERY: Duration = Duration::from_secs(1);

/// Accepts connections until shutdown, each served in a task `tracker` follows.
pub async fn run(listener: TcpListener, front: Arc<FrontEnd>, tracker: TaskTracker) {
    let mut reserve: Vec<File> = Vec::with_capacity(RESERVE);
    top_up(&mut reserve);
    // A connection served from the reserve says here when it ends.
    let (ended, mut reserve_freed) = mpsc::unbounded_channel::<()>();
    let mut last_warning: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(()) = reserve_freed.recv() => {
                top_up(&mut reserve);
                continue;
            }
            _ = front.shutdown.cancelled() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                top_up(&mut reserve);
                spawn(stream, peer, &front, &tracker, None);
            }
            Err(e) if matches!(e.raw_os_error(), Some(EMFILE | ENFILE)) => {
                if last_warning.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                    warn!(error = %e, reserve = reserve.len(),
                          "internal listener at the open-file limit; serving from its reserve");
                    last_warning = Some(Instant::now());
                }
                let Some(spare) = reserve.pop() else {
                    tokio::time::sleep(FD_LIMIT_BACKOFF).await;
                    top_up(&mut reserve);
                    continue;
                };
                drop(spare);
                // `timeout` polls the accept once before its timer: the freed slot is taken now.
                match tokio::time::timeout(Duration::ZERO, listener.accept()).await {
                    Ok(Ok((stream, peer))) => {
                        spawn(stream, peer, &front, &tracker, Some(ended.clone()))
                    }
                    _ => top_up(&mut reserve),
                }
            }
            Err(e) => {
                debug!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
}

/// Serves one connection; `ended` hears when it closes, if it holds a reserve slot.
fn spawn(
    stream: TcpStream,
    peer: SocketAddr,
    front: &Arc<FrontEnd>,
    tracker: &TaskTracker,
    ended: Option<mpsc::UnboundedSender<()>>,
) {
    front.http.stats.connections_total.fetch_add(1, Relaxed);
    // The internal front end's addresses have no limit: this only counts.
    let admission = front.addresses.admit(peer.ip());
    let front = front.clone();
    tracker.spawn(async move {
        // `serve` owns the socket and closes it before returning.
        if let Ok(admission) = admission {
            super::serve(stream, peer, admission, front).await;
        }
        if let Some(ended) = ended {
            let _ = ended.send(());
        }
    });
}

/// Opens reserve descriptors until there are [`RESERVE`], or the limit stops it.
fn top_up(reserve: &mut Vec<File>) {
    while reserve.len() < RESERVE {
        match File::open("/dev/null") {
            Ok(file) => reserve.push(file),
            Err(e) => return debug!(error = %e, "could not open a reserve descriptor"),
        }
    }
}
