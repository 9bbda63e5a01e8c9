//! ssecast: a Server-Sent Events broadcast server that costs tens of bytes per idle subscriber.
//!
//! A connection arrives in `conn::accept`, and `conn::head` reads its request head. A subscribe
//! (`GET /events`, or Mercure's `GET /.well-known/mercure`) gets its response head from
//! `sse::head`, and its socket moves into the `broadcast` table of one shard, which owns it from
//! then on: a 48-byte entry, no task, no buffer. Every other request goes to hyper (`http`), with the bytes already read replayed in
//! front of the socket; if a subscribe follows on that keep-alive connection, `conn::handback`
//! takes the connection back from hyper at the request boundary.
//!
//! A publish is validated (`sse::event`), numbered and encoded once by the `broadcast` handle,
//! kept in each of its topics' history rings, and written by each shard straight from those
//! shared bytes to every subscriber's socket, several frames per vectored write when one is
//! behind. One timer wheel per shard sends keep-alive comments to idle subscribers.
//!
//! With `--redis`, a publish goes through Redis instead (`cluster`), which numbers it for every
//! node; each node follows Redis's channel and hands the events to its own broadcaster.
//!
//! An optional internal listener (`conn::internal`) serves publish, health and stats only,
//! from descriptors of its own at the open-file limit, so subscribers never lock them out.
//!
//! Every connection counts against its client's address (`address`); tokens are verified in
//! `auth` (publishers in `http::publish`, subscribers in `conn` before their head, their
//! selectors kept by the shards for private events); with `--subscriptions`, the hub tracks
//! Mercure's active subscriptions (`broadcast::subscriptions`, read by `http`); `metrics` reads
//! the counters of `stats` for `/metrics`; `trim` gives the heap back after a spike of
//! connections.
// One `unsafe` call, `malloc_trim` in `trim`, measured to matter; nowhere else.
#![deny(unsafe_code)]

pub mod address;
pub mod auth;
pub mod broadcast;
pub mod cluster;
pub mod config;
mod conn;
pub mod fuzzing;
pub mod http;
pub mod metrics;
pub mod selector;
pub mod shutdown;
pub mod sse;
pub mod stats;
mod trim;
pub mod urlencoded;

use std::future::Future;
use std::io;
use std::sync::Arc;

use hyper::server::conn::http1;
use hyper_util::rt::TokioTimer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::address::Addresses;
use crate::broadcast::Broadcaster;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::conn::FrontEnd;
use crate::http::budget::BodyBudget;
use crate::http::cors::Cors;
use crate::http::Routes;
use crate::stats::Stats;

/// Descriptors kept free for probes, publishers and requests in flight when subscribers are
/// limited by the open-file limit: this many, or a fiftieth of the limit if more.
const FD_RESERVE: usize = 16;

/// The sockets the server listens on.
#[derive(Debug)]
pub struct Listeners {
    /// Subscribers, the demo page, health and stats; publishes too unless `internal` is set.
    pub public: TcpListener,
    /// Publish, health and stats only, kept reachable at the open-file limit
    /// (`conn::internal`); when set, `public` serves no publish.
    pub internal: Option<TcpListener>,
}

/// Serves on `listener` (and on `config.internal_listen`, bound here, if set) until `shutdown`
/// resolves, then ends every stream and returns within [`shutdown::GRACE`]. Returns an error,
/// at once, if a broadcaster shard fails.
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
    let internal = match &config.internal_listen {
        Some(address) => Some(TcpListener::bind(address.addrs()).await?),
        None => None,
    };
    let listeners = Listeners {
        public: listener,
        internal,
    };
    run_with(listeners, config, stats, shutdown).await
}

/// As [`run_with_stats`], on listeners the caller bound: `config.listen` and
/// `config.internal_listen` are not looked at.
pub async fn run_with(
    listeners: Listeners,
    config: Config,
    stats: Arc<Stats>,
    shutdown: impl Future,
) -> io::Result<()> {
    // A key that cannot be used stops the server before anything starts.
    let publisher = config
        .publisher_verifier()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?
        .map(Arc::new);
    let subscriber = config
        .subscriber_verifier()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?
        .map(Arc::new);
    let max_subscribers = raise_open_file_limit();
    let settings = config.broadcast(max_subscribers);
    info!(
        max_subscribers = settings.max_subscribers,
        "subscribers limited"
    );
    let addresses = Addresses::new(config.max_connections_per_ip);
    let (broadcaster, shards) = Broadcaster::start(&settings, addresses.clone(), stats.clone())?;
    let cluster = match config.cluster() {
        Some(settings) => {
            let cluster = Cluster::new(&settings, stats.clone())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            info!(prefix = %settings.prefix, "publishing through Redis");
            Some(cluster)
        }
        None => None,
    };
    let cors = Cors::new(&config.cors_origin);
    let metrics = Arc::new(metrics::Metrics::new(stats.clone()));
    // Each listener has a body budget of its own, so that the public one cannot starve the
    // internal one.
    let context = |routes| {
        Arc::new(http::Context {
            broadcaster: broadcaster.clone(),
            cluster: cluster.clone(),
            stats: stats.clone(),
            metrics: metrics.clone(),
            publisher: publisher.clone(),
            subscriber: subscriber.clone(),
            max_body_bytes: config.max_body_bytes,
            max_batch: config.max_batch as usize,
            body_timeout: config.body_timeout,
            body_budget: BodyBudget::new(
                config.max_body_bytes_in_flight,
                config.max_body_bytes,
                stats.clone(),
            ),
            cors: cors.clone(),
            routes,
        })
    };
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(config.head_timeout)
        .max_buf_size(config.max_head_bytes.max(8192) as usize);
    let token = CancellationToken::new();
    let front = |http, addresses, send_buffer| {
        Arc::new(FrontEnd {
            http,
            broadcaster: broadcaster.clone(),
            cors: cors.clone(),
            max_head_bytes: config.max_head_bytes as usize,
            head_timeout: config.head_timeout,
            write_timeout: config.write_timeout,
            shutdown: token.clone(),
            builder: builder.clone(),
            addresses,
            send_buffer,
            subscriber: subscriber.clone(),
            subscriber_required: config.subscriber_jwt_required,
        })
    };
    let public = front(
        context(Routes::Public {
            publish: listeners.internal.is_none(),
            demo: config.demo,
        }),
        addresses,
        config.send_buffer as usize,
    );
    let tracker = TaskTracker::new();
    let mut accepts = vec![tokio::spawn(conn::accept::run(
        listeners.public,
        public,
        tracker.clone(),
    ))];
    if let Some(listener) = listeners.internal {
        // The internal listener's clients are the operator's own: not limited per address,
        // and their sockets keep the kernel's buffers.
        let internal = front(context(Routes::Internal), Addresses::new(0), 0);
        accepts.push(tokio::spawn(conn::internal::run(
            listener,
            internal,
            tracker.clone(),
        )));
    }
    let ringer = tokio::spawn({
        let broadcaster = broadcaster.clone();
        async move { broadcaster.ring_shards().await }
    });
    let follower = cluster.map(|cluster| tokio::spawn(cluster.follow(broadcaster.clone())));
    let sweeper = tokio::spawn(sweep_topics(broadcaster.clone()));
    let trimmer = tokio::spawn(trim_after_spikes(tracker.clone()));
    let failure = tokio::select! {
        _ = shutdown => None,
        why = broadcaster.failed() => Some(why),
    };
    sweeper.abort();
    trimmer.abort();
    info!("shutting down");
    token.cancel();
    broadcaster.close();
    tracker.close();
    let drained = async {
        for accept in accepts {
            let _ = accept.await;
        }
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
    ringer.abort();
    if let Some(follower) = follower {
        follower.abort();
    }
    match failure {
        Some(why) => Err(io::Error::other(why)),
        None => Ok(()),
    }
}

/// Frees idle topics, as often as their idle time asks.
async fn sweep_topics(broadcaster: Broadcaster) {
    let mut every = tokio::time::interval(broadcaster.sweep_every());
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        broadcaster.sweep();
    }
}

/// Gives the heap back to the system when a spike of connections has ended.
async fn trim_after_spikes(tracker: TaskTracker) {
    let mut watch = trim::SpikeWatch::default();
    let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if watch.ended(tracker.len()) {
            let _ = tokio::task::spawn_blocking(trim::heap).await;
        }
    }
}

/// Raises the soft open-file limit to the hard one (each subscriber is an open socket) and
/// returns how many subscribers it allows: the limit, less the descriptors open now and a
/// reserve, so that subscribers can never take the descriptors probes and publishers need.
fn raise_open_file_limit() -> usize {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            warn!(error = %e, "could not raise the open-file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
        }
    };
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let open = std::fs::read_dir("/proc/self/fd").map_or(16, |fds| fds.count());
    let reserve = FD_RESERVE.max(limit / 50);
    let allowed = limit.saturating_sub(open + reserve).max(1);
    tracing::debug!(limit, open, reserve, allowed, "open-file limit");
    allowed
}
