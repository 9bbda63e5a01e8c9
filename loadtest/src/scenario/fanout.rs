//! `fanout`: N subscribers, events published at a steady rate for a while; delivery latency,
//! throughput, CPU time per delivery on both sides, and every lost, duplicated or reordered
//! event; and latency over time, second by second of sending.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::{per_unit_us, Cpu, Deliveries, Drain, Run, Samples, ScenarioReport};
use crate::cli;
use crate::error::Error;
use crate::latency::{Latency, SecondLatency};
use crate::publish::{self, Pace, Published, Requests};
use crate::report::{self, Table};
use crate::sampler::Sample;

/// How long deliveries may stall before the drain gives up.
const DRAIN_STALL: Duration = Duration::from_secs(3);

/// What to run: `fanout`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Subscribers.
    #[arg(long, value_parser = cli::count(1, cli::MAX_SUBSCRIBERS))]
    pub subscribers: usize,
    /// Events published per second.
    #[arg(long, value_parser = cli::rate(0.1, 100_000.0))]
    pub events_per_second: f64,
    /// How long to publish.
    #[arg(long, default_value = "10s", value_parser = cli::duration(600))]
    pub duration: Duration,
    /// Event data size in bytes (at least the stamp).
    #[arg(long, default_value_t = 64, value_parser = cli::count(0, 65_536))]
    pub size: usize,
    /// Keep-alive publish connections, used in turn (requests are pipelined on each). With
    /// more than one, events in flight together may arrive reordered.
    #[arg(long, default_value_t = 1, value_parser = cli::count(1, 64))]
    pub publish_connections: usize,
    /// The longest wait, after the last publish, for every event to reach every subscriber;
    /// what has not arrived by then counts as lost.
    #[arg(long, default_value = "60s", value_parser = cli::duration(3600))]
    pub drain_limit: Duration,
}

/// The report of one `fanout` run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Which server.
    pub server: String,
    /// Subscribers streaming.
    pub subscribers: u64,
    /// Connections that failed.
    pub failed: u64,
    /// Events per second asked for.
    pub events_per_second: f64,
    /// Publishing time asked for, seconds.
    pub duration_seconds: f64,
    /// Event data size, bytes.
    pub size: usize,
    /// What the publisher did.
    pub publish: Published,
    /// Publish-to-receive latency of every delivery.
    pub latency: Latency,
    /// The same for the events sent in each second, on the samples' time axis; the counts
    /// add up to `delivered`.
    pub latency_over_time: Vec<SecondLatency>,
    /// What the subscribers got of every event sent.
    #[serde(flatten)]
    pub deliveries: Deliveries,
    /// Deliveries per second, first publish to the end of the drain.
    pub deliveries_per_second: f64,
    /// How the drain went.
    #[serde(flatten)]
    pub drain: Drain,
    /// Server CPU time over the run, seconds.
    pub server_cpu_seconds: f64,
    /// Client CPU time (every client process) over the run, seconds.
    pub client_cpu_seconds: f64,
    /// Server CPU time per delivery, microseconds.
    pub server_cpu_per_delivery_us: f64,
    /// Client CPU time per delivery, microseconds.
    pub client_cpu_per_delivery_us: f64,
    /// The first failure.
    pub first_error: Option<String>,
    /// Memory and connections over time, every 250 ms.
    pub samples: Samples,
}

/// Runs the scenario.
pub fn run(run: &Run, args: &Args) -> Result<Report, Error> {
    let (fleet, sampler, status) = run.connect_all(args.subscribers)?;
    let cpu = Cpu::start(run, &fleet)?;
    let started = Instant::now();
    let requests = Requests::new(&run.target, args.size);
    let addr = run.target.publish.url.addr;
    let pace = Pace {
        rate: args.events_per_second,
        duration: args.duration,
        connections: args.publish_connections,
    };
    let published = publish::run_paced(&requests, addr, pace, run.ui);
    let goal = status.streaming * published.published;
    let drain = run.drain(&fleet, &status, |_| goal, [DRAIN_STALL, args.drain_limit])?;
    let elapsed = started.elapsed().as_secs_f64();
    let [server_cpu, client_cpu] = cpu.seconds(run, &fleet)?;
    // Events whose publish failed still had numbers: subscribers owe every number sent.
    let sent = published.published + published.failed;
    let tally = fleet.report(sent)?;
    let latency_over_time = tally.by_second.summary(|unix| sampler.second_of(unix));
    let samples = sampler.stop();
    Ok(Report {
        server: run.target.name.clone(),
        subscribers: status.streaming,
        failed: status.failed,
        events_per_second: args.events_per_second,
        duration_seconds: args.duration.as_secs_f64(),
        size: args.size,
        latency: Latency::of(&tally.latency),
        latency_over_time,
        deliveries: Deliveries::of(status.streaming, sent, &tally),
        deliveries_per_second: tally.delivered as f64 / elapsed.max(1e-9),
        drain,
        server_cpu_seconds: server_cpu,
        client_cpu_seconds: client_cpu,
        server_cpu_per_delivery_us: per_unit_us(server_cpu, tally.delivered),
        client_cpu_per_delivery_us: per_unit_us(client_cpu, tally.delivered),
        first_error: published.first_error.clone().or(tally.first_error),
        publish: published,
        samples,
    })
}

impl ScenarioReport for Report {
    const NAME: &'static str = "fanout";

    fn samples(&self) -> &[Sample] {
        &self.samples
    }

    fn latency_over_time(&self) -> &[SecondLatency] {
        &self.latency_over_time
    }

    fn losses(&self) -> [u64; 3] {
        self.deliveries.losses()
    }

    /// Renders a report.
    fn table(&self, _floor: Option<&Report>) -> Table {
        let r = self;
        let mut table = Table::new(&["fanout", r.server.as_str()]);
        table.row("subscribers", vec![r.subscribers.to_string()]);
        table.row(
            "events published",
            vec![format!(
                "{} at {} for {:.0} s",
                report::thousands(r.publish.published),
                report::per_second(r.events_per_second),
                r.duration_seconds
            )],
        );
        let slow = r.publish.rate < 0.95 * r.events_per_second;
        table.row(
            "publish rate reached",
            vec![format!(
                "{}{}{}",
                if slow { "!! " } else { "" },
                report::per_second(r.publish.rate),
                if slow { " !!" } else { "" }
            )],
        );
        table.row("event size", vec![format!("{} B", r.size)]);
        table.row("latency p50", vec![report::ms(r.latency.p50_ms)]);
        table.row("latency p90", vec![report::ms(r.latency.p90_ms)]);
        table.row("latency p99", vec![report::ms(r.latency.p99_ms)]);
        table.row("latency p99.9", vec![report::ms(r.latency.p999_ms)]);
        table.row("latency max", vec![report::ms(r.latency.max_ms)]);
        table.row(
            "deliveries per second",
            vec![report::per_second(r.deliveries_per_second)],
        );
        table.cpu(
            "delivery",
            [r.server_cpu_per_delivery_us, r.client_cpu_per_delivery_us],
            [r.server_cpu_seconds, r.client_cpu_seconds],
        );
        table.row(
            "publish round trip p99",
            vec![report::ms(r.publish.round_trip.p99_ms)],
        );
        r.deliveries.rows(&mut table, |n| n.to_string());
        table.alarms(&[
            ("publishes failed", r.publish.failed),
            ("failed connections", r.failed),
        ]);
        r.drain.rows(&mut table);
        if r.publish.failed > 0 {
            table.section("lost counts the events of failed publishes too");
        }
        if let Some(error) = &r.first_error {
            table.section(&format!("first failure: {error}"));
        }
        table
    }
}
