//! `single`: one event at a time to every subscriber; how long until the first, the median and
//! the last subscriber has it. The next event goes out only once every subscriber has the last
//! (or its time bound ran out), so each event measures the server's fan-out alone.

use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{Deliveries, Run, Samples, ScenarioReport};
use crate::cli;
use crate::error::Error;
use crate::latency::median;
use crate::publish::Publisher;
use crate::report::{self, Comparison, Named, Table};
use crate::sampler::Sample;

/// The most events a run sends (each keeps its own histogram in every client thread).
pub const MAX_EVENTS: usize = 100;

/// What to run: `single`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Subscribers.
    #[arg(long, value_parser = cli::count(1, cli::MAX_SUBSCRIBERS))]
    pub subscribers: usize,
    /// Events, one at a time.
    #[arg(long, default_value_t = 10, value_parser = cli::count(1, MAX_EVENTS as u64))]
    pub events: usize,
    /// Event data size in bytes (at least the stamp).
    #[arg(long, default_value_t = 64, value_parser = cli::count(0, 65_536))]
    pub size: usize,
    /// The longest wait for one event to reach everyone.
    #[arg(long, default_value = "10s", value_parser = cli::duration(600))]
    pub event_timeout: Duration,
    /// Pause after each event has reached everyone.
    #[arg(long, default_value = "200ms", value_parser = cli::duration(60))]
    pub gap: Duration,
}

/// Times of one event, ms after it was published.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct EventTimes {
    /// To the first subscriber.
    pub first_ms: f64,
    /// To the median subscriber.
    pub median_ms: f64,
    /// To the last subscriber.
    pub last_ms: f64,
    /// Subscribers that had it.
    pub received: u64,
}

/// The report of one `single` run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Which server.
    pub server: String,
    /// Subscribers streaming.
    pub subscribers: u64,
    /// Connections that failed.
    pub failed: u64,
    /// Events sent.
    pub events: usize,
    /// Event data size, bytes.
    pub size: usize,
    /// Median over events of the time to the first subscriber, ms.
    pub first_ms: f64,
    /// Median over events of the time to the median subscriber, ms.
    pub median_ms: f64,
    /// Median over events of the time to the last subscriber, ms.
    pub last_ms: f64,
    /// Each event.
    pub per_event: Vec<EventTimes>,
    /// What the subscribers got of every event.
    #[serde(flatten)]
    pub deliveries: Deliveries,
    /// Events that had not reached everyone within `--event-timeout`.
    pub timed_out: usize,
    /// Runs this report sums up (`--rounds`): times are medians over them, counts sums.
    pub rounds: usize,
    /// Each round's time to the last subscriber, ms.
    pub last_ms_by_round: Vec<f64>,
    /// The first failure (connection or publish).
    pub first_error: Option<String>,
    /// Memory and connections over time, every 250 ms.
    pub samples: Samples,
}

/// Runs the scenario.
pub fn run(run: &Run, args: &Args) -> Result<Report, Error> {
    let (fleet, sampler, status) = run.connect_all(args.subscribers)?;
    let mut publisher = Publisher::new(&run.target, args.size);
    let streaming = status.streaming;
    let bar = run.ui.bar(args.events as u64, "events");
    let mut timed_out = 0;
    let mut first_error = None;
    for seq in 0..args.events as u64 {
        if let Err(e) = publisher.publish(seq) {
            first_error.get_or_insert_with(|| e.to_string());
            timed_out += 1;
            continue;
        }
        let deadline = Instant::now() + args.event_timeout;
        loop {
            if fleet.status()?.delivered >= streaming * (seq + 1) {
                break;
            }
            if Instant::now() >= deadline {
                timed_out += 1;
                break;
            }
            thread::sleep(Duration::from_millis(2));
        }
        bar.set_position(seq + 1);
        thread::sleep(args.gap);
    }
    bar.finish_and_clear();
    let tally = fleet.report(args.events as u64)?;
    let samples = sampler.stop();
    let per_event: Vec<EventTimes> = tally
        .per_event
        .iter()
        .take(args.events)
        .map(|hist| {
            let ms = |us: u64| us as f64 / 1000.0;
            EventTimes {
                first_ms: if hist.is_empty() { 0.0 } else { ms(hist.min()) },
                median_ms: ms(hist.value_at_quantile(0.5)),
                last_ms: ms(hist.max()),
                received: hist.len(),
            }
        })
        .collect();
    let pick = |f: fn(&EventTimes) -> f64| median(&per_event.iter().map(f).collect::<Vec<_>>());
    Ok(Report {
        server: run.target.name.clone(),
        subscribers: streaming,
        failed: status.failed,
        events: args.events,
        size: args.size,
        first_ms: pick(|e| e.first_ms),
        median_ms: pick(|e| e.median_ms),
        last_ms: pick(|e| e.last_ms),
        deliveries: Deliveries::of(streaming, args.events as u64, &tally),
        timed_out,
        rounds: 1,
        last_ms_by_round: Vec::new(),
        first_error: first_error.or(tally.first_error),
        per_event,
        samples,
    })
}

/// Sums up rounds of the same run: times are the medians over rounds, counts are sums, and
/// the events listed are the first round's; `None` without rounds.
pub fn combine(rounds: Vec<Report>) -> Option<Report> {
    let times = |f: fn(&Report) -> f64| median(&rounds.iter().map(f).collect::<Vec<_>>());
    let (first_ms, median_ms, last_ms) = (
        times(|r| r.first_ms),
        times(|r| r.median_ms),
        times(|r| r.last_ms),
    );
    let last_ms_by_round = rounds.iter().map(|r| r.last_ms).collect();
    let count = rounds.len();
    let mut rounds = rounds.into_iter();
    let mut sum = rounds.next()?;
    for r in rounds {
        sum.failed += r.failed;
        sum.deliveries.add(&r.deliveries);
        sum.timed_out += r.timed_out;
        sum.first_error = sum.first_error.or(r.first_error);
    }
    Some(Report {
        first_ms,
        median_ms,
        last_ms,
        rounds: count,
        last_ms_by_round,
        ..sum
    })
}

impl Named for Report {
    fn server(&self) -> &str {
        &self.server
    }
}

impl ScenarioReport for Report {
    const NAME: &'static str = "single";

    fn samples(&self) -> &[Sample] {
        &self.samples
    }

    fn combine(rounds: Vec<Report>) -> Option<Report> {
        combine(rounds)
    }

    /// Renders one report, or a report beside its floor run.
    fn table(&self, floor: Option<&Report>) -> Table {
        let report = self;
        let mut table = Comparison::new("single", report, floor);
        table.row("subscribers", |r| r.subscribers as f64, report::count);
        table.row("events", |r| r.events as f64, report::count);
        table.row("rounds", |r| r.rounds as f64, report::count);
        table.row("to first subscriber (median)", |r| r.first_ms, report::ms);
        table.row("to median subscriber (median)", |r| r.median_ms, report::ms);
        table.row("to last subscriber (median)", |r| r.last_ms, report::ms);
        table.row(
            "delivered",
            |r| r.deliveries.delivered as f64,
            report::count,
        );
        table.row("expected", |r| r.deliveries.expected as f64, report::count);
        table.alarm("lost", |r| r.deliveries.lost);
        table.alarm("duplicated", |r| r.deliveries.duplicated);
        table.alarm("reordered", |r| r.deliveries.reordered);
        table.alarm("failed connections", |r| r.failed);
        table.alarm("events timed out", |r| r.timed_out as u64);
        for r in std::iter::once(report).chain(floor) {
            if let Some(error) = &r.first_error {
                table.section(&format!("{}: first failure: {error}", r.server));
            }
        }
        table.into_table()
    }
}
