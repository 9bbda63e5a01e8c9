//! `connect`: memory per idle subscriber, in user space and in the kernel, average and marginal.
//!
//! Memory is read before connecting, at N/2 and at N (each time once the server is idle), then
//! after closing every connection and again `--settle` later. The average, (at N - before) / N,
//! includes start-up costs such as the first growth of tables; the marginal,
//! (at N - at N/2) / (N/2), does not.

use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{Run, Samples, ScenarioReport};
use crate::cli;
use crate::error::Error;
use crate::probe::{self, Memory, ProcessMemory};
use crate::report::{self, Comparison, Named, Table};
use crate::sampler::Sample;

/// What to run: `connect`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Subscribers to open.
    #[arg(long, value_parser = cli::count(2, cli::MAX_SUBSCRIBERS))]
    pub subscribers: usize,
    /// How long to hold them open.
    #[arg(long, default_value = "10s", value_parser = cli::duration(3600))]
    pub hold: Duration,
    /// How long after closing to read memory again.
    #[arg(long, default_value = "10s", value_parser = cli::duration(600))]
    pub settle: Duration,
}

/// Bytes per subscriber, two ways.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct PerSubscriber {
    /// (at N - before) / N.
    pub average: f64,
    /// (at N - at N/2) / (N/2).
    pub marginal: f64,
}

impl PerSubscriber {
    fn of(before: u64, half: u64, full: u64, n_half: u64, n_full: u64) -> PerSubscriber {
        let per = |a: u64, b: u64, n: u64| {
            if n == 0 {
                0.0
            } else {
                (b as f64 - a as f64) / n as f64
            }
        };
        PerSubscriber {
            average: per(before, full, n_full),
            marginal: per(half, full, n_full.saturating_sub(n_half)),
        }
    }
}

/// Memory readings of the run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Readings {
    /// Before connecting.
    pub before: Memory,
    /// With half connected.
    pub half: Memory,
    /// With all connected.
    pub full: Memory,
    /// Just after closing all (once the server is idle).
    pub closed: Memory,
    /// `--settle` after closing.
    pub settled: Memory,
}

/// Picks one reading.
type Reading = fn(&Readings) -> &Memory;
/// Picks one figure per subscriber.
type PerSub = fn(&Report) -> &PerSubscriber;

/// The report of one `connect` run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Which server.
    pub server: String,
    /// Subscribers asked for.
    pub subscribers: usize,
    /// Client processes.
    pub processes: usize,
    /// Streaming at N/2.
    pub connected_half: u64,
    /// Streaming at N.
    pub connected: u64,
    /// Connections that failed.
    pub failed: u64,
    /// Subscribers asked for that neither streamed nor failed within the connect phase's
    /// time bound (a server at its open-file limit leaves them in its accept queue, and the
    /// client stops opening more while 256 per thread wait).
    pub unanswered: u64,
    /// The first failure.
    pub first_error: Option<String>,
    /// Time to connect all, seconds.
    pub connect_seconds: f64,
    /// Streams the server closed while held.
    pub closed_by_server: u64,
    /// Memory readings.
    pub memory: Readings,
    /// Each server process's memory at N, in `--pid` order: a cluster's nodes one by one.
    pub by_process_at_n: Vec<ProcessMemory>,
    /// Server `VmRSS` per subscriber.
    pub rss: PerSubscriber,
    /// Server `RssAnon` per subscriber.
    pub rss_anon: PerSubscriber,
    /// Kernel memory (TCP buffers and slab, both ends of each connection) per subscriber.
    pub kernel: PerSubscriber,
    /// Whether the server was idle at each reading.
    pub idle: bool,
    /// Memory and connections over time, every 250 ms.
    pub samples: Samples,
}

/// Runs the scenario.
pub fn run(run: &Run, args: &Args) -> Result<Report, Error> {
    let n = args.subscribers;
    let (fleet, sampler) = run.watch(n)?;
    let pids = &run.target.pids;
    let mut idle = run.wait_idle();
    let before = probe::memory(pids)?;
    let started = Instant::now();
    let half_status =
        fleet.connect_and_wait(n / 2, run.connect_limit(n / 2), &run.ui, "connect N/2")?;
    idle &= run.wait_idle();
    let half = probe::memory(pids)?;
    let status = fleet.connect_and_wait(n, run.connect_limit(n), &run.ui, "connect N")?;
    let connect_seconds = started.elapsed().as_secs_f64();
    idle &= run.wait_idle();
    let full = probe::memory(pids)?;
    let by_process_at_n = probe::each_process(pids)?;
    let bar = run.ui.timer(args.hold.as_secs(), "holding");
    let hold_end = Instant::now() + args.hold;
    while Instant::now() < hold_end {
        thread::sleep(Duration::from_millis(250).min(hold_end - Instant::now()));
        bar.set_position(args.hold.as_secs() - (hold_end - Instant::now()).as_secs());
    }
    bar.finish_and_clear();
    let tally = fleet.report(0)?;
    let held = fleet.status()?;
    fleet.close()?;
    idle &= run.wait_idle();
    let closed = probe::memory(pids)?;
    let bar = run.ui.timer(args.settle.as_secs(), "settling");
    thread::sleep(args.settle);
    bar.finish_and_clear();
    let settled = probe::memory(pids)?;
    let samples = sampler.stop();
    let (n_half, n_full) = (half_status.streaming, status.streaming);
    Ok(Report {
        server: run.target.name.clone(),
        subscribers: n,
        processes: fleet.processes(),
        connected_half: n_half,
        connected: n_full,
        failed: status.failed,
        unanswered: (n as u64).saturating_sub(status.settled()),
        first_error: tally.first_error,
        connect_seconds,
        closed_by_server: held.closed,
        memory: Readings {
            before,
            half,
            full,
            closed,
            settled,
        },
        by_process_at_n,
        rss: PerSubscriber::of(before.rss, half.rss, full.rss, n_half, n_full),
        rss_anon: PerSubscriber::of(
            before.rss_anon,
            half.rss_anon,
            full.rss_anon,
            n_half,
            n_full,
        ),
        kernel: PerSubscriber::of(
            before.kernel(),
            half.kernel(),
            full.kernel(),
            n_half,
            n_full,
        ),
        idle,
        samples,
    })
}

impl Named for Report {
    fn server(&self) -> &str {
        &self.server
    }
}

impl ScenarioReport for Report {
    const NAME: &'static str = "connect";

    fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// Renders one report, or a report beside its floor run.
    fn table(&self, floor: Option<&Report>) -> Table {
        let report = self;
        let mut table = Comparison::new("connect", report, floor);
        table.row(
            "subscribers streaming",
            |r| r.connected as f64,
            report::count,
        );
        table.row("client processes", |r| r.processes as f64, report::count);
        table.row(
            "connect time",
            |r| r.connect_seconds,
            |v| format!("{v:.1} s"),
        );
        let per_subscriber: [(&str, &str, PerSub); 3] = [
            ("user RSS", "", |r| &r.rss),
            ("user RssAnon", "", |r| &r.rss_anon),
            ("kernel", " (whole machine, both ends)", |r| &r.kernel),
        ];
        for (what, note, figure) in per_subscriber {
            let (average, marginal) = (
                format!("{what} / sub, average{note}"),
                format!("{what} / sub, marginal{note}"),
            );
            table.row(&average, |r| figure(r).average, report::bytes_each);
            table.row(&marginal, |r| figure(r).marginal, report::bytes_each);
        }
        let mem = |v: f64| report::mib(v as u64);
        table.row("server RSS before", |r| r.memory.before.rss as f64, mem);
        table.row("server RSS at N/2", |r| r.memory.half.rss as f64, mem);
        table.row("server RSS at N", |r| r.memory.full.rss as f64, mem);
        table.row(
            "server RSS after close",
            |r| r.memory.closed.rss as f64,
            mem,
        );
        table.row(
            "server RSS after settle",
            |r| r.memory.settled.rss as f64,
            mem,
        );
        let machine: [(&str, Reading); 3] = [
            ("before", |m| &m.before),
            ("at N", |m| &m.full),
            ("after settle", |m| &m.settled),
        ];
        for (when, reading) in machine {
            table.row(
                &format!("kernel, whole machine, {when}"),
                |r| reading(&r.memory).kernel() as f64,
                mem,
            );
        }
        for (when, reading) in machine {
            table.row(
                &format!("memory in use, whole machine, {when}"),
                |r| reading(&r.memory).mem_used() as f64,
                mem,
            );
        }
        table.alarm("connections never answered", |r| r.unanswered);
        table.alarm("failed connections", |r| r.failed);
        table.alarm("closed by server while held", |r| r.closed_by_server);
        for r in std::iter::once(report).chain(floor) {
            if r.by_process_at_n.len() > 1 {
                let each: Vec<String> = r
                    .by_process_at_n
                    .iter()
                    .map(|p| format!("{} {}", p.pid, report::mib(p.rss)))
                    .collect();
                table.section(&format!(
                    "{}: server RSS at N by process: {}",
                    r.server,
                    each.join(", ")
                ));
            }
            if !r.idle {
                table.section(&format!(
                    "{}: !! the server was not idle at every reading: figures include work in flight",
                    r.server
                ));
            }
            if let Some(error) = &r.first_error {
                table.section(&format!("{}: first failure: {error}", r.server));
            }
        }
        table.into_table()
    }
}
