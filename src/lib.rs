//! ssecast: a Server-Sent Events broadcast server that costs tens of bytes per idle subscriber.
//!
//! A connection arrives in `conn::accept`, and `conn::head` reads its request head. A subscribe
//! (`GET /events`) gets its response head from `sse::head`, and its socket moves into the
//! `broadcast` table of one shard, which owns it from then on: a 48-byte entry, no task, no
//! buffer. Every other request goes to hyper (`http`), with the bytes already read replayed in
//! front of the socket; if a subscribe follows on that keep-alive connection, `conn::handback`
//! takes the connection back from hyper at the request boundary.
//!
//! A publish is validated (`sse::event`), numbered and encoded once by the `broadcast` handle,
//! kept in each of its topics' history rings, and written by each shard straight from those
//! shared bytes to every subscriber's socket, several frames per vectored write when one is
//! behind. One timer wheel per shard sends keep-alive comments to idle subscribers.
#![forbid(unsafe_code)]

pub mod broadcast;
pub mod config;
mod conn;
pub mod http;
pub mod shutdown;
pub mod sse;
pub mod stats;
pub mod urlencoded;

use std::future::Future;
use std::io;
use std::sync::Arc;

use hyper::header::HeaderValue;
use hyper::server::conn::http1;
use hyper_util::rt::TokioTimer;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::broadcast::Broadcaster;
use crate::config::Config;
use crate::conn::FrontEnd;
use crate::stats::Stats;

/// Serves on `listener` until `shutdown` resolves, then ends every stream and returns within
/// [`shutdown::GRACE`].
pub async fn run(listener: TcpListener, config: Config, shutdown: impl Future) -> io::Result<()> {
    run_with_stats(listener, config, Arc::new(Stats::default()), shutdown).await
}

/// As [`run`], counting into `stats`, which the caller can read while the server runs.
pub async fn run_with_stats(
    listener: TcpListener,
    config: Config,
    stats: Arc<Stats>,
    shutdown: impl Future,
) -> io::Result<()> {
    raise_open_file_limit();
    let (broadcaster, shards) = Broadcaster::start(&config.broadcast(), stats.clone())?;
    let cors_origin = config
        .cors_origin
        .as_deref()
        .and_then(|origin| HeaderValue::from_str(origin).ok());
    let http = Arc::new(http::Context {
        broadcaster: broadcaster.clone(),
        stats,
        max_body_bytes: config.max_body_bytes,
        body_timeout: config.body_timeout,
        body_budget: Arc::new(Semaphore::new(config.max_body_bytes_in_flight)),
        cors_origin,
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(config.head_timeout)
        .max_buf_size(config.max_head_bytes.max(8192) as usize);
    let token = CancellationToken::new();
    let front = Arc::new(FrontEnd {
        http,
        broadcaster: broadcaster.clone(),
        sse_head: sse::head::encode(config.cors_origin.as_deref()),
        max_head_bytes: config.max_head_bytes as usize,
        head_timeout: config.head_timeout,
        write_timeout: config.write_timeout,
        shutdown: token.clone(),
        builder,
    });
    let tracker = TaskTracker::new();
    let accept = tokio::spawn(conn::accept::run(listener, front, tracker.clone()));
    shutdown.await;
    info!("shutting down");
    token.cancel();
    broadcaster.close();
    tracker.close();
    let drained = async {
        let _ = accept.await;
        tracker.wait().await;
        for shard in shards {
            let _ = tokio::task::spawn_blocking(move || shard.join()).await;
        }
    };
    if tokio::time::timeout(shutdown::GRACE, drained)
        .await
        .is_err()
    {
        warn!(
            "connections still open after {:?}; stopping anyway",
            shutdown::GRACE
        );
    } else {
        info!("drained");
    }
    Ok(())
}

/// Raises the soft open-file limit to the hard one: each subscriber is an open socket.
fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open-file limit"),
        Err(e) => warn!(error = %e, "could not raise the open-file limit"),
    }
}
