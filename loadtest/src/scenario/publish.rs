//! `publish`: how fast a server takes events in. Keep-alive connections write publish requests
//! as fast as their windows of unanswered requests allow (`publish::run_burst`), each numbering
//! its own events; a few subscribers check every connection's events for loss, duplicates and
//! order (events of different connections may interleave).
//!
//! Rates and CPU cover the publishing time, from the first request written to the last answer
//! read. CPU is per event published, not per delivery: with more subscribers it includes their
//! fan-out. It is read from `/proc` in clock ticks (10 ms), so a run should publish for a
//! second or more.

use std::time::Duration;

use serde::Serialize;

use super::{per_unit_us, Cpu, Deliveries, Drain, Run, Samples, ScenarioReport};
use crate::cli;
use crate::client::Status;
use crate::error::Error;
use crate::latency::Latency;
use crate::publish::{self, Burst, BurstReport, Requests};
use crate::report::{self, Table};
use crate::sampler::Sample;

/// How long after the last answer the subscribers may take to get every event.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// What to run: `publish`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Subscribers, each checking every event.
    #[arg(long, default_value_t = 1, value_parser = cli::count(1, 250_000))]
    pub subscribers: usize,
    /// Keep-alive publish connections, each numbering its own events (checked in order per
    /// connection).
    #[arg(long, default_value_t = 8, value_parser = cli::count(1, 256))]
    pub connections: usize,
    /// Events in all, shared out between the connections.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub events: u64,
    /// Requests written but not answered per connection (the pipelining depth). Requests are
    /// written as fast as this window allows, not at a set rate.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub in_flight: u64,
    /// Events per request. Above 1, a request is a JSON array of single-event bodies made
    /// from --publish-body, `[body1,body2,...]`: only servers with batch publish accept it
    /// (ssecast, up to its --max-batch).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub batch: u64,
    /// Event data size in bytes (at least the stamp).
    #[arg(long, default_value_t = 64, value_parser = cli::count(0, 65_536))]
    pub size: usize,
}

/// The report of one `publish` run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Which server.
    pub server: String,
    /// Subscribers streaming.
    pub subscribers: u64,
    /// Subscriber connections that failed.
    pub failed: u64,
    /// Publish connections.
    pub connections: usize,
    /// Requests in flight per connection, at most.
    pub in_flight: u64,
    /// Events per request.
    pub batch: u64,
    /// Event data size, bytes.
    pub size: usize,
    /// What the publishers did.
    pub publish: BurstReport,
    /// Requests answered `2xx` per second of publishing.
    pub requests_per_second: f64,
    /// Events accepted per second of publishing.
    pub events_per_second: f64,
    /// Server CPU time while publishing, seconds.
    pub server_cpu_seconds: f64,
    /// Client CPU time (publishers and subscribers) while publishing, seconds.
    pub client_cpu_seconds: f64,
    /// Server CPU time per event accepted, microseconds.
    pub server_cpu_per_event_us: f64,
    /// Client CPU time per event accepted, microseconds.
    pub client_cpu_per_event_us: f64,
    /// Delivery latency: send stamp to receipt, every first copy at every subscriber.
    pub latency: Latency,
    /// What the subscribers got of the events accepted.
    #[serde(flatten)]
    pub deliveries: Deliveries,
    /// How the drain went.
    #[serde(flatten)]
    pub drain: Drain,
    /// The first failure.
    pub first_error: Option<String>,
    /// Memory and connections over time, every 250 ms.
    pub samples: Samples,
}

/// Runs the scenario.
pub fn run(run: &Run, args: &Args) -> Result<Report, Error> {
    let (fleet, sampler, status) = run.connect_all(args.subscribers)?;
    let requests = Requests::new(&run.target, args.size);
    let burst = Burst {
        events: args.events,
        connections: args.connections,
        in_flight: args.in_flight,
        batch: args.batch,
    };
    let addr = run.target.publish.url.addr;
    let cpu = Cpu::start(run, &fleet)?;
    let published = publish::run_burst(&requests, addr, burst, run.ui);
    let [server_cpu, client_cpu] = cpu.seconds(run, &fleet)?;
    // A subscriber the server cut is not waited for; it owes its events all the same.
    let goal = |now: &Status| now.streaming * published.published;
    let drain = run.drain(&fleet, &status, goal, [DRAIN_LIMIT; 2])?;
    // Refused events are never delivered: subscribers owe only the accepted ones.
    let tally = fleet.report(published.published)?;
    let samples = sampler.stop();
    let per_second = |count: u64| count as f64 / published.seconds.max(1e-9);
    Ok(Report {
        server: run.target.name.clone(),
        subscribers: status.streaming,
        failed: status.failed,
        connections: args.connections,
        in_flight: args.in_flight,
        batch: args.batch,
        size: args.size,
        requests_per_second: per_second(published.requests_ok),
        events_per_second: per_second(published.published),
        server_cpu_seconds: server_cpu,
        client_cpu_seconds: client_cpu,
        server_cpu_per_event_us: per_unit_us(server_cpu, published.published),
        client_cpu_per_event_us: per_unit_us(client_cpu, published.published),
        latency: Latency::of(&tally.latency),
        deliveries: Deliveries::of(status.streaming, published.published, &tally),
        drain,
        first_error: published.first_error.clone().or(tally.first_error),
        publish: published,
        samples,
    })
}

impl ScenarioReport for Report {
    const NAME: &'static str = "publish";

    fn samples(&self) -> &[Sample] {
        &self.samples
    }

    fn losses(&self) -> [u64; 3] {
        self.deliveries.losses()
    }

    /// Renders a report.
    fn table(&self, _floor: Option<&Report>) -> Table {
        let r = self;
        let mut table = Table::new(&["publish", r.server.as_str()]);
        let count = |n: u64| vec![report::thousands(n)];
        table.row("subscribers", count(r.subscribers));
        table.row(
            "connections x in flight",
            vec![format!("{} x {}", r.connections, r.in_flight)],
        );
        table.row("events per request", count(r.batch));
        table.row("event size", vec![format!("{} B", r.size)]);
        table.row("events published", count(r.publish.published));
        table.row("events failed", vec![report::alarm(r.publish.failed)]);
        table.row(
            "publishing time",
            vec![format!("{:.2} s", r.publish.seconds)],
        );
        table.row(
            "requests per second",
            vec![report::per_second(r.requests_per_second)],
        );
        table.row(
            "events per second",
            vec![report::per_second(r.events_per_second)],
        );
        table.cpu(
            "event",
            [r.server_cpu_per_event_us, r.client_cpu_per_event_us],
            [r.server_cpu_seconds, r.client_cpu_seconds],
        );
        table.row(
            "publish round trip p50",
            vec![report::ms(r.publish.round_trip.p50_ms)],
        );
        table.row(
            "publish round trip p99",
            vec![report::ms(r.publish.round_trip.p99_ms)],
        );
        table.row("delivery latency p50", vec![report::ms(r.latency.p50_ms)]);
        table.row("delivery latency p99", vec![report::ms(r.latency.p99_ms)]);
        r.deliveries.rows(&mut table, report::thousands);
        table.alarms(&[("failed connections", r.failed)]);
        r.drain.rows(&mut table);
        table.section("CPU per event published, the subscribers' deliveries included");
        if let Some(error) = &r.first_error {
            table.section(&format!("first failure: {error}"));
        }
        table
    }
}
