//! `hostile`: good subscribers and a steady publisher, first alone (the quiet phase), then
//! beside every kind of hostile client at once (the hostile phase, as long); what the good
//! clients got in each phase, the server's and the kernel's peak memory, and what each
//! attacker got (`attack`).
//!
//! Loss is counted as in `fanout`, for the events the publisher got a `200` for: each must
//! reach every good subscriber, in order, once. A publish the server refused is counted
//! apart (`publish.failed`), and a good subscriber the server cut owes every event of its
//! phase. Counts start again from zero between the phases, once the first has drained.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{Deliveries, Drain, Run, Samples, ScenarioReport};
use crate::attack::{self, Kind, Outcome, Sizes};
use crate::cli;
use crate::client::Status;
use crate::error::Error;
use crate::fleet::Fleet;
use crate::latency::Latency;
use crate::probe;
use crate::publish::{self, Pace, Published, Requests};
use crate::report::{self, Table};
use crate::sampler::Sample;
use crate::target::Url;

/// How long deliveries may stall before a drain gives up.
const DRAIN_STALL: Duration = Duration::from_secs(3);
/// The longest drain.
const DRAIN_LIMIT: Duration = Duration::from_secs(60);
/// The `/stats` counters whose growth over a phase is reported (ssecast's).
const COUNTERS: [&str; 8] = [
    "connections_total",
    "connections_refused_per_address",
    "subscribes_total",
    "subscribes_refused",
    "subscribers_lagged",
    "subscribers_blocked",
    "events_published",
    "frames_delivered",
];
/// The `/stats` gauges reported at the end of a phase.
const GAUGES: [&str; 3] = ["subscribers", "topics", "history_bytes"];

/// Good subscribers per source address: under the server's default limit of 1,000 with room
/// for the publisher and `/stats` on the first.
pub const GOOD_PER_ADDRESS: usize = 900;

/// What to run: `hostile`'s flags. Good subscribers use 127.0.0.1, 127.0.0.2, ... (at most
/// [`GOOD_PER_ADDRESS`] each); each kind of attacker its own address from 127.0.0.60 on.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Good subscribers.
    #[arg(long, default_value_t = 500, value_parser = cli::count(1, 50_000))]
    pub subscribers: usize,
    /// Events published per second, on one kept-alive connection.
    #[arg(long, default_value_t = 100.0, value_parser = cli::rate(0.1, 10_000.0))]
    pub events_per_second: f64,
    /// The whole run: a quiet phase, then a hostile phase, each half of it.
    #[arg(long, default_value = "30s", value_parser = cli::duration(1200))]
    pub duration: Duration,
    /// Event data size in bytes (at least the stamp).
    #[arg(long, default_value_t = 64, value_parser = cli::count(0, 65_536))]
    pub size: usize,
    /// The kinds of attackers, comma-separated [default: all].
    #[arg(long, value_delimiter = ',', value_enum)]
    pub attacks: Vec<Kind>,
    /// How many of each kind.
    #[command(flatten)]
    pub sizes: Sizes,
    /// How long after the attackers stop server memory is read again.
    #[arg(long, default_value = "5s", value_parser = cli::duration(600))]
    pub settle: Duration,
}

impl Args {
    /// The kinds of attackers asked for, each once, in order; all if none was.
    pub fn kinds(&self) -> Vec<Kind> {
        if self.attacks.is_empty() {
            return Kind::ALL.to_vec();
        }
        let mut kinds = self.attacks.clone();
        kinds.sort();
        kinds.dedup();
        kinds
    }
}

/// What the good clients got in one phase, and what the server held meanwhile.
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    /// What the publisher did.
    pub publish: Published,
    /// Good subscribers streaming when the phase began.
    pub subscribers: u64,
    /// ... and when it ended.
    pub streaming_at_end: u64,
    /// What the good subscribers got of the events accepted.
    #[serde(flatten)]
    pub deliveries: Deliveries,
    /// Publish-to-receive latency of every delivery.
    pub latency: Latency,
    /// How the drain went.
    #[serde(flatten)]
    pub drain: Drain,
    /// The largest server RSS sampled, bytes.
    pub rss_max: u64,
    /// The largest machine TCP memory sampled, bytes.
    pub tcp_mem_max: u64,
    /// Server CPU time, seconds.
    pub server_cpu_seconds: f64,
    /// Growth of the server's `/stats` counters.
    pub counters: BTreeMap<String, u64>,
    /// The server's `/stats` gauges at the end.
    pub gauges: BTreeMap<String, u64>,
    /// The first failure of a good client.
    pub first_error: Option<String>,
}

/// The report of one `hostile` run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Which server.
    pub server: String,
    /// Good subscribers asked for.
    pub subscribers: u64,
    /// Good subscribers whose connection failed.
    pub failed: u64,
    /// Events per second asked for.
    pub events_per_second: f64,
    /// Publishing time of each phase, seconds.
    pub phase_seconds: f64,
    /// Event data size, bytes.
    pub size: usize,
    /// The attackers' sizes.
    pub sizes: Sizes,
    /// Server RSS before the quiet phase, bytes.
    pub rss_before: u64,
    /// Machine TCP memory before the quiet phase, bytes.
    pub tcp_mem_before: u64,
    /// Without attackers.
    pub quiet: Phase,
    /// With them.
    pub hostile: Phase,
    /// What each kind of attacker got.
    pub attackers: Vec<Outcome>,
    /// Server RSS `settle` after the attackers stopped, bytes.
    pub rss_after: u64,
    /// Machine TCP memory then, bytes.
    pub tcp_mem_after: u64,
    /// Seconds between the attackers' end and that reading.
    pub settle_seconds: f64,
    /// Memory and connections over time, every 250 ms.
    pub samples: Samples,
}

/// Runs the scenario.
pub fn run(run: &Run, args: &Args) -> Result<Report, Error> {
    let mut run = run.clone();
    run.client.per_address = run.client.per_address.min(GOOD_PER_ADDRESS);
    let run = &run;
    // The attackers and the `/stats` figures are of one server.
    let url = run.target.single_node("hostile")?;
    let (fleet, sampler, status) = run.connect_all(args.subscribers)?;
    let before = probe::memory(&run.target.pids)?;
    let requests = Requests::new(&run.target, args.size);
    let t0 = sampler.now();
    let mut quiet = phase(run, args, url, &fleet, &requests)?;
    fleet.reset()?;
    let t1 = sampler.now();
    let plan = attack::Plan {
        target: url.addr,
        host: url.host.clone(),
        subscribe_path: url.path.clone(),
        publish_path: run.target.publish.path(&run.target.topic),
        until: Instant::now() + args.duration / 2,
        sizes: args.sizes.clone(),
    };
    let attackers = attack::launch(plan, &args.kinds())?;
    let hostile = phase(run, args, url, &fleet, &requests);
    // The attackers have stopped by themselves with the publisher; this joins them.
    let attackers = attackers.finish();
    let mut hostile = hostile?;
    let t2 = sampler.now();
    thread::sleep(args.settle);
    let after = probe::memory(&run.target.pids)?;
    let samples = sampler.stop();
    (quiet.rss_max, quiet.tcp_mem_max) = peak(&samples, t0, t1);
    (hostile.rss_max, hostile.tcp_mem_max) = peak(&samples, t1, t2);
    Ok(Report {
        server: run.target.name.clone(),
        subscribers: args.subscribers as u64,
        failed: status.failed,
        events_per_second: args.events_per_second,
        phase_seconds: (args.duration / 2).as_secs_f64(),
        size: args.size,
        sizes: args.sizes.clone(),
        rss_before: before.rss,
        tcp_mem_before: before.tcp_mem,
        quiet,
        hostile,
        attackers,
        rss_after: after.rss,
        tcp_mem_after: after.tcp_mem,
        settle_seconds: args.settle.as_secs_f64(),
        samples,
    })
}

/// Publishes for one phase, drains, and counts what the good subscribers got; `url` is the
/// server's, for its `/stats`.
fn phase(
    run: &Run,
    args: &Args,
    url: &Url,
    fleet: &Arc<Fleet>,
    requests: &Requests,
) -> Result<Phase, Error> {
    let start = fleet.status()?;
    let stats_before = stats(url);
    let cpu = probe::cpu_ticks(&run.target.pids)?;
    let pace = Pace {
        rate: args.events_per_second,
        duration: args.duration / 2,
        connections: 1,
    };
    let addr = run.target.publish.url.addr;
    let published = publish::run_paced(requests, addr, pace, run.ui);
    // A subscriber the server cut is not waited for; it owes its events all the same.
    let goal = |now: &Status| now.streaming * published.published;
    let drain = run.drain(fleet, &start, goal, [DRAIN_STALL, DRAIN_LIMIT])?;
    let server_cpu = probe::cpu_ticks(&run.target.pids)?.saturating_sub(cpu);
    let end = fleet.status()?;
    // Refused publishes are never delivered: subscribers owe only the accepted ones.
    let tally = fleet.report(published.published)?;
    let stats_after = stats(url);
    let (counters, gauges) = stats_changes(stats_before.as_ref(), stats_after.as_ref());
    Ok(Phase {
        subscribers: start.streaming,
        streaming_at_end: end.streaming,
        deliveries: Deliveries::of(start.streaming, published.published, &tally),
        latency: Latency::of(&tally.latency),
        drain,
        rss_max: 0,
        tcp_mem_max: 0,
        server_cpu_seconds: probe::ticks_to_seconds(server_cpu),
        counters,
        gauges,
        first_error: published.first_error.clone().or(tally.first_error),
        publish: published,
    })
}

/// The server's `/stats` JSON, if it answers one.
fn stats(url: &Url) -> Option<serde_json::Value> {
    let response = crate::http::get(url.addr, &url.host, "/stats").ok()?;
    (response.status == 200)
        .then(|| serde_json::from_slice(&response.body).ok())
        .flatten()
}

/// The growth of [`COUNTERS`] from `before` to `after`, and [`GAUGES`] in `after`.
fn stats_changes(
    before: Option<&serde_json::Value>,
    after: Option<&serde_json::Value>,
) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
    let field = |json: Option<&serde_json::Value>, name: &str| {
        json.and_then(|j| j.get(name))
            .and_then(serde_json::Value::as_u64)
    };
    let mut counters = BTreeMap::new();
    for name in COUNTERS {
        if let (Some(b), Some(a)) = (field(before, name), field(after, name)) {
            counters.insert(name.to_owned(), a.saturating_sub(b));
        }
    }
    let mut gauges = BTreeMap::new();
    for name in GAUGES {
        if let Some(a) = field(after, name) {
            gauges.insert(name.to_owned(), a);
        }
    }
    (counters, gauges)
}

/// The largest RSS and TCP memory sampled from `from` to `to` (sampler seconds).
fn peak(samples: &[Sample], from: f64, to: f64) -> (u64, u64) {
    samples
        .iter()
        .filter(|s| s.t >= from && s.t <= to)
        .fold((0, 0), |(rss, tcp), s| (rss.max(s.rss), tcp.max(s.tcp_mem)))
}

impl ScenarioReport for Report {
    const NAME: &'static str = "hostile";

    fn samples(&self) -> &[Sample] {
        &self.samples
    }

    fn losses(&self) -> [u64; 3] {
        let mut both = self.quiet.deliveries.clone();
        both.add(&self.hostile.deliveries);
        both.losses()
    }

    /// Renders a report: both phases side by side, then a line per attacker.
    fn table(&self, _floor: Option<&Report>) -> Table {
        let r = self;
        let mut table = Table::new(&["hostile", "quiet", "hostile"]);
        let both = |f: &dyn Fn(&Phase) -> String| vec![f(&r.quiet), f(&r.hostile)];
        table.row(
            "good subscribers",
            both(&|p| format!("{} -> {}", p.subscribers, p.streaming_at_end)),
        );
        table.row(
            "events accepted",
            both(&|p| {
                format!(
                    "{} at {} for {:.0} s",
                    report::thousands(p.publish.published),
                    report::per_second(r.events_per_second),
                    r.phase_seconds
                )
            }),
        );
        table.row(
            "publishes failed",
            both(&|p| report::alarm(p.publish.failed)),
        );
        table.row(
            "publish round trip p99",
            both(&|p| report::ms(p.publish.round_trip.p99_ms)),
        );
        table.row("delivered", both(&|p| p.deliveries.delivered.to_string()));
        table.row("expected", both(&|p| p.deliveries.expected.to_string()));
        table.row("lost", both(&|p| report::alarm(p.deliveries.lost)));
        table.row(
            "duplicated",
            both(&|p| report::alarm(p.deliveries.duplicated)),
        );
        table.row(
            "reordered",
            both(&|p| report::alarm(p.deliveries.reordered)),
        );
        table.row(
            "closed by server",
            both(&|p| report::alarm(p.drain.closed_by_server)),
        );
        table.row("latency p50", both(&|p| report::ms(p.latency.p50_ms)));
        table.row("latency p99", both(&|p| report::ms(p.latency.p99_ms)));
        table.row("latency max", both(&|p| report::ms(p.latency.max_ms)));
        table.row("drained", both(&|p| p.drain.verdict()));
        table.row("server RSS max", both(&|p| report::mib(p.rss_max)));
        table.row(
            "TCP memory, whole machine, max",
            both(&|p| report::mib(p.tcp_mem_max)),
        );
        table.row(
            "server CPU",
            both(&|p| format!("{:.2} s", p.server_cpu_seconds)),
        );
        for name in COUNTERS {
            if r.hostile.counters.contains_key(name) {
                let value = |p: &Phase| p.counters.get(name).map_or("-".into(), u64::to_string);
                table.row(&format!("+{name}"), both(&value));
            }
        }
        for name in GAUGES {
            if r.hostile.gauges.contains_key(name) {
                let value = |p: &Phase| p.gauges.get(name).map_or("-".into(), u64::to_string);
                table.row(&format!("{name} at end"), both(&value));
            }
        }
        table.section(&format!(
            "server RSS {} before, {} {:.0} s after the attackers stopped; machine TCP memory {} \
             before, {} after",
            report::mib(r.rss_before),
            report::mib(r.rss_after),
            r.settle_seconds,
            report::mib(r.tcp_mem_before),
            report::mib(r.tcp_mem_after)
        ));
        for outcome in &r.attackers {
            table.section(&attacker_line(outcome));
        }
        for (name, p) in [("quiet", &r.quiet), ("hostile", &r.hostile)] {
            if let Some(error) = &p.first_error {
                table.section(&format!("first failure ({name}): {error}"));
            }
        }
        table
    }
}

/// One attacker's outcome in a line.
pub fn attacker_line(outcome: &Outcome) -> String {
    let c = &outcome.counts;
    let source = outcome
        .source
        .map_or_else(|| "unbound".to_owned(), |ip| ip.to_string());
    let statuses = if c.statuses.is_empty() {
        "no answers".to_owned()
    } else {
        c.statuses
            .iter()
            .map(|(status, n)| format!("{status} x{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut line = format!(
        "{} ({source}): {} connections ({} failed), {} requests; {statuses}; {} cut, {} \
         unanswered, {} open at end; {} sent, {} received",
        outcome.kind.name(),
        c.connections,
        c.connect_failed,
        c.requests,
        c.cut,
        c.no_answer,
        c.open_at_end,
        report::mib(c.bytes_sent),
        report::mib(c.bytes_received),
    );
    if c.gaps > 0 {
        line.push_str(&format!("; {} gap events", c.gaps));
    }
    if let Some(error) = &c.first_error {
        line.push_str(&format!("; first error: {error}"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::{peak, stats_changes};
    use crate::sampler::Sample;
    use serde_json::json;

    #[test]
    fn peaks_are_taken_within_the_phase() {
        let samples: Vec<Sample> = [(0.0, 5, 1), (1.0, 9, 3), (2.0, 7, 8), (3.0, 4, 2)]
            .iter()
            .map(|&(t, rss, tcp_mem)| Sample {
                t,
                rss,
                tcp_mem,
                ..Sample::default()
            })
            .collect();
        assert_eq!(peak(&samples, 0.0, 1.5), (9, 3));
        assert_eq!(peak(&samples, 1.5, 3.0), (7, 8));
        assert_eq!(peak(&samples, 5.0, 6.0), (0, 0));
    }

    #[test]
    fn counters_grow_and_gauges_are_read_at_the_end() {
        let before = json!({"connections_total": 10, "subscribers_lagged": 0, "topics": 3});
        let after = json!({"connections_total": 25, "subscribers_lagged": 2, "topics": 1,
                           "subscribes_total": 9});
        let (counters, gauges) = stats_changes(Some(&before), Some(&after));
        assert_eq!(counters.get("connections_total"), Some(&15));
        assert_eq!(counters.get("subscribers_lagged"), Some(&2));
        assert_eq!(counters.get("subscribes_total"), None, "no figure before");
        assert_eq!(gauges.get("topics"), Some(&1));
        let (counters, gauges) = stats_changes(None, None);
        assert!(counters.is_empty() && gauges.is_empty());
    }
}
