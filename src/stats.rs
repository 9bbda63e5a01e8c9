//! Process-wide counters, the shards' delivery latency, and the resident memory of the process.
//!
//! Counters are relaxed atomics: they are read for `/stats` and `/metrics`, never to make a
//! decision. Shards add to `frames_delivered` and `bytes_delivered` once per delivery pass, not
//! once per frame.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use serde::Serialize;

/// The counters every part of the server adds to.
#[derive(Debug, Default)]
pub struct Stats {
    /// Subscribers connected now.
    pub subscribers: AtomicU64,
    /// Connections accepted since start.
    pub connections_total: AtomicU64,
    /// Subscribes accepted since start.
    pub subscribes_total: AtomicU64,
    /// Events published since start.
    pub events_published: AtomicU64,
    /// Frames written whole to subscribers since start.
    pub frames_delivered: AtomicU64,
    /// Bytes written to subscribers since start (frames and keep-alives).
    pub bytes_delivered: AtomicU64,
    /// Subscribers disconnected because history no longer held what they needed.
    pub subscribers_lagged: AtomicU64,
    /// Subscribers disconnected because their socket stayed full for too long.
    pub subscribers_blocked: AtomicU64,
    /// Subscribers disconnected because their token expired.
    pub subscribers_expired: AtomicU64,
    /// Connections refused because their address held its limit of connections.
    pub connections_refused_per_address: AtomicU64,
    /// Connections refused at the open-file limit.
    pub connections_refused_open_files: AtomicU64,
    /// Subscribes refused because the server held its limit of subscribers.
    pub subscribes_refused_subscribers: AtomicU64,
    /// Subscribes refused because the server held its limit of topics.
    pub subscribes_refused_topics: AtomicU64,
    /// Subscribes refused because their address's subscribes held their limit of topics.
    pub subscribes_refused_address_topics: AtomicU64,
    /// Topics held.
    pub topics: AtomicU64,
    /// Bytes of history held for all topics, as the history budget counts them.
    pub history_bytes: AtomicU64,
    /// Bytes held by publish bodies being read, on every listener.
    pub body_bytes_held: AtomicU64,
    /// Each shard's time from a publish to the end of the delivery pass that wrote it.
    pub delivery_latency: DeliveryLatency,
    /// The link to Redis, with `--redis`.
    pub redis: RedisLink,
}

/// The state of the link to Redis: none (no `--redis`), up or down.
#[derive(Debug, Default)]
pub struct RedisLink(AtomicU8);

impl RedisLink {
    const UP: u8 = 1;
    const DOWN: u8 = 2;

    /// Records whether the node follows Redis's channel now.
    pub fn set_up(&self, up: bool) {
        self.0
            .store(if up { Self::UP } else { Self::DOWN }, Relaxed);
    }

    /// `Some(true)` while the node follows Redis, `None` without `--redis`.
    pub fn is_up(&self) -> Option<bool> {
        match self.0.load(Relaxed) {
            0 => None,
            state => Some(state == Self::UP),
        }
    }
}

/// The label of a shard's latency histogram.
pub type ShardLabel = [(&'static str, String); 1];

/// One latency histogram per shard, from 0.5 ms to about 16 s.
#[derive(Debug)]
pub struct DeliveryLatency(Family<ShardLabel, Histogram, fn() -> Histogram>);

impl Default for DeliveryLatency {
    fn default() -> Self {
        Self(Family::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        }))
    }
}

impl DeliveryLatency {
    /// Shard `index`'s histogram (a handle: observations reach the family).
    pub fn shard(&self, index: usize) -> Histogram {
        self.0
            .get_or_create(&[("shard", index.to_string())])
            .clone()
    }

    /// The family, to register with a metrics registry.
    pub fn family(&self) -> Family<ShardLabel, Histogram, fn() -> Histogram> {
        self.0.clone()
    }
}

/// A copy of the counters at one moment, as `/stats` answers it.
#[derive(Debug, Serialize)]
pub struct Snapshot {
    pub subscribers: u64,
    pub connections_total: u64,
    pub subscribes_total: u64,
    pub events_published: u64,
    pub frames_delivered: u64,
    pub subscribers_lagged: u64,
    pub subscribers_blocked: u64,
    pub subscribers_expired: u64,
    pub connections_refused_per_address: u64,
    pub subscribes_refused: u64,
    pub topics: u64,
    pub history_bytes: u64,
    pub body_bytes_held: u64,
    /// Resident memory of the process (`VmRSS`), in bytes.
    pub rss_bytes: u64,
    /// The process id, for tools that read `/proc/PID`.
    pub pid: u32,
    /// With `--redis`: whether the node follows Redis now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_up: Option<bool>,
}

impl Stats {
    /// Reads every counter and the process's resident memory.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            subscribers: self.subscribers.load(Relaxed),
            connections_total: self.connections_total.load(Relaxed),
            subscribes_total: self.subscribes_total.load(Relaxed),
            events_published: self.events_published.load(Relaxed),
            frames_delivered: self.frames_delivered.load(Relaxed),
            subscribers_lagged: self.subscribers_lagged.load(Relaxed),
            subscribers_blocked: self.subscribers_blocked.load(Relaxed),
            subscribers_expired: self.subscribers_expired.load(Relaxed),
            connections_refused_per_address: self.connections_refused_per_address.load(Relaxed),
            subscribes_refused: self.subscribes_refused_subscribers.load(Relaxed)
                + self.subscribes_refused_topics.load(Relaxed)
                + self.subscribes_refused_address_topics.load(Relaxed),
            topics: self.topics.load(Relaxed),
            history_bytes: self.history_bytes.load(Relaxed),
            body_bytes_held: self.body_bytes_held.load(Relaxed),
            rss_bytes: rss_bytes().unwrap_or(0),
            pid: std::process::id(),
            redis_up: self.redis.is_up(),
        }
    }
}

/// The process's resident memory, from the second field of `/proc/self/statm` (in pages).
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
