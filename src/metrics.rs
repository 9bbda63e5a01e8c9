//! Prometheus metrics: what `GET /metrics` answers, in the Prometheus text format.
//!
//! The counters live in [`Stats`], relaxed atomics that every part of the server adds to; a
//! collector reads them at each scrape, so keeping a metric costs nothing beyond its atomic.
//! Each shard observes its publish-to-write latency into a histogram of its own
//! ([`crate::stats::DeliveryLatency`]), registered here.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::stats::{self, Stats};

/// The `Content-Type` of a scrape's answer.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The server's metrics registry.
#[derive(Debug)]
pub struct Metrics {
    /// Every metric: the counters' collector and the latency histograms.
    registry: Registry,
}

impl Metrics {
    /// The metrics of a server counting into `stats`.
    pub fn new(stats: Arc<Stats>) -> Self {
        let mut registry = Registry::with_prefix("ssecast");
        registry.register_with_unit(
            "delivery_latency",
            "Time from a publish to the end of the delivery pass that wrote it to every \
             subscriber ready for it, per broadcaster shard",
            Unit::Seconds,
            stats.delivery_latency.family(),
        );
        registry.register_collector(Box::new(Counters(stats)));
        Self { registry }
    }

    /// Every metric, in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a `String` cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry);
        text
    }
}

/// Reads [`Stats`] at each scrape.
#[derive(Debug)]
struct Counters(Arc<Stats>);

impl Collector for Counters {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let s = &*self.0;
        gauge(
            &mut encoder,
            "subscribers",
            "Subscribers connected now",
            None,
            load(&s.subscribers),
        )?;
        counter(
            &mut encoder,
            "connections_accepted",
            "Connections accepted",
            &s.connections_total,
        )?;
        labelled_counter(
            &mut encoder,
            "connections_refused",
            "Connections refused at once, by reason",
            "reason",
            &[
                ("address_limit", &s.connections_refused_per_address),
                ("open_file_limit", &s.connections_refused_open_files),
            ],
        )?;
        counter(
            &mut encoder,
            "subscribes",
            "Subscribes accepted",
            &s.subscribes_total,
        )?;
        labelled_counter(
            &mut encoder,
            "subscribes_refused",
            "Subscribes refused at a limit, by reason",
            "reason",
            &[
                ("subscriber_limit", &s.subscribes_refused_subscribers),
                ("topic_limit", &s.subscribes_refused_topics),
                ("address_topic_limit", &s.subscribes_refused_address_topics),
            ],
        )?;
        counter(
            &mut encoder,
            "events_published",
            "Events published",
            &s.events_published,
        )?;
        counter(
            &mut encoder,
            "frames_delivered",
            "Frames written whole to subscribers",
            &s.frames_delivered,
        )?;
        counter(
            &mut encoder,
            "delivered_bytes",
            "Bytes written to subscribers",
            &s.bytes_delivered,
        )?;
        labelled_counter(
            &mut encoder,
            "subscribers_dropped",
            "Subscribers disconnected by the server, by reason",
            "reason",
            &[
                ("lagged", &s.subscribers_lagged),
                ("blocked", &s.subscribers_blocked),
                ("expired", &s.subscribers_expired),
            ],
        )?;
        gauge(
            &mut encoder,
            "history",
            "History held, as its byte budget counts it",
            Some(Unit::Bytes),
            load(&s.history_bytes),
        )?;
        gauge(&mut encoder, "topics", "Topics held", None, load(&s.topics))?;
        if let Some(up) = s.redis.is_up() {
            let help = "1 while the node follows Redis (--redis), 0 while it cannot reach it";
            gauge(&mut encoder, "redis_up", help, None, u64::from(up))?;
        }
        gauge(
            &mut encoder,
            "body_held",
            "Held by publish bodies being read",
            Some(Unit::Bytes),
            load(&s.body_bytes_held),
        )?;
        gauge(
            &mut encoder,
            "resident_memory",
            "Resident memory of the process (VmRSS)",
            Some(Unit::Bytes),
            stats::rss_bytes().unwrap_or(0),
        )
    }
}

fn load(value: &AtomicU64) -> u64 {
    value.load(Relaxed)
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: &AtomicU64,
) -> Result<(), fmt::Error> {
    let metric = ConstCounter::new(load(value));
    metric.encode(encoder.encode_descriptor(name, help, None, MetricType::Counter)?)
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<Unit>,
    value: u64,
) -> Result<(), fmt::Error> {
    let metric = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
    metric.encode(encoder.encode_descriptor(name, help, unit.as_ref(), MetricType::Gauge)?)
}

fn labelled_counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &'static str,
    values: &[(&'static str, &AtomicU64)],
) -> Result<(), fmt::Error> {
    let mut family: MetricEncoder =
        encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for &(value, count) in values {
        ConstCounter::new(load(count)).encode(family.encode_family(&[(label, value)])?)?;
    }
    Ok(())
}
