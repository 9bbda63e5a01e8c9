//! `pulse`: the spike. Big pulses (connect N, hold, close) then small ones, with the server's
//! RSS sampled throughout; after each pulse, how far and how fast RSS falls back toward what it
//! was just before the pulse.

use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{Run, Samples, ScenarioReport};
use crate::cli;
use crate::error::Error;
use crate::probe;
use crate::report::{self, Table};
use crate::sampler::Sample;

/// RSS within this of the baseline counts as back.
pub const BACK_WITHIN: u64 = 2 * 1024 * 1024;

/// What to run: `pulse`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Subscribers in a big pulse.
    #[arg(long, default_value_t = 15_000, value_parser = cli::count(1, 250_000))]
    pub big: usize,
    /// Subscribers in a small pulse.
    #[arg(long, default_value_t = 1_000, value_parser = cli::count(1, 250_000))]
    pub small: usize,
    /// Big pulses.
    #[arg(long, default_value_t = 1, value_parser = cli::count(0, 20))]
    pub pulses: usize,
    /// Small pulses after the big ones.
    #[arg(long, default_value_t = 2, value_parser = cli::count(0, 50))]
    pub small_pulses: usize,
    /// How long each pulse holds its connections.
    #[arg(long, default_value = "20s", value_parser = cli::duration(3600))]
    pub hold: Duration,
    /// How long RSS is watched after each close (at least 11 s, to see +10 s).
    #[arg(long, default_value = "15s", value_parser = cli::duration_between(11, 3600))]
    pub pause: Duration,
}

/// What one pulse did to the server's memory.
#[derive(Debug, Clone, Serialize)]
pub struct Pulse {
    /// `big` or `small`.
    pub kind: &'static str,
    /// Subscribers asked for.
    pub subscribers: usize,
    /// Subscribers streaming.
    pub connected: u64,
    /// RSS just before the pulse, bytes.
    pub baseline: u64,
    /// Highest RSS sampled during the pulse, bytes.
    pub peak: u64,
    /// RSS 1 s after the close, bytes.
    pub after_1s: Option<u64>,
    /// RSS 5 s after the close.
    pub after_5s: Option<u64>,
    /// RSS 10 s after the close.
    pub after_10s: Option<u64>,
    /// RSS at the end of the pause.
    pub after_pause: Option<u64>,
    /// Seconds from the close until RSS was within 2 MiB of the baseline; `None` if never
    /// within the pause.
    pub back_after_seconds: Option<f64>,
    /// Seconds since the start of the run when the pulse closed.
    pub closed_at: f64,
}

/// The report of one `pulse` run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Which server.
    pub server: String,
    /// Each pulse.
    pub pulses: Vec<Pulse>,
    /// Connections that failed, over all pulses.
    pub failed: u64,
    /// Memory and connections over time, every 250 ms.
    pub samples: Samples,
}

/// Runs the scenario.
pub fn run(run: &Run, args: &Args) -> Result<Report, Error> {
    let (fleet, sampler) = run.watch(args.big.max(args.small))?;
    let plan = std::iter::repeat_n(("big", args.big), args.pulses).chain(std::iter::repeat_n(
        ("small", args.small),
        args.small_pulses,
    ));
    let mut marks = Vec::new();
    let mut failed = 0;
    for (i, (kind, n)) in plan.enumerate() {
        run.wait_idle();
        let baseline = probe::memory(&run.target.pids)?.rss;
        let opened_at = sampler.now();
        let what = format!("pulse {} {kind}", i + 1);
        let status = fleet.connect_and_wait(n, run.connect_limit(n), &run.ui, &what)?;
        failed += status.failed;
        let bar = run.ui.timer(args.hold.as_secs(), "holding");
        sleep_with(bar, args.hold);
        fleet.close()?;
        let closed_at = sampler.now();
        let bar = run.ui.timer(args.pause.as_secs(), "watching RSS");
        sleep_with(bar, args.pause);
        marks.push((kind, n, status.streaming, baseline, opened_at, closed_at));
    }
    let samples = sampler.stop();
    let pulses = marks
        .into_iter()
        .map(|(kind, n, connected, baseline, opened_at, closed_at)| {
            let pause = args.pause.as_secs_f64();
            Pulse {
                kind,
                subscribers: n,
                connected,
                baseline,
                peak: samples
                    .iter()
                    .filter(|s| s.t >= opened_at && s.t <= closed_at)
                    .map(|s| s.rss)
                    .max()
                    .unwrap_or(0),
                after_1s: rss_at(&samples, closed_at + 1.0, closed_at + pause),
                after_5s: rss_at(&samples, closed_at + 5.0, closed_at + pause),
                after_10s: rss_at(&samples, closed_at + 10.0, closed_at + pause),
                after_pause: samples
                    .iter()
                    .rfind(|s| s.t <= closed_at + pause)
                    .map(|s| s.rss),
                back_after_seconds: back_after(&samples, baseline, closed_at, pause),
                closed_at,
            }
        })
        .collect();
    Ok(Report {
        server: run.target.name.clone(),
        pulses,
        failed,
        samples,
    })
}

fn sleep_with(bar: indicatif::ProgressBar, time: Duration) {
    let end = Instant::now() + time;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        if left.is_zero() {
            break;
        }
        thread::sleep(left.min(Duration::from_millis(250)));
        bar.set_position(time.as_secs().saturating_sub(left.as_secs()));
    }
    bar.finish_and_clear();
}

/// RSS of the first sample at or after `t`, if it comes before `until`.
fn rss_at(samples: &[Sample], t: f64, until: f64) -> Option<u64> {
    samples
        .iter()
        .find(|s| s.t >= t && s.t <= until + 0.5)
        .map(|s| s.rss)
}

/// Seconds after `closed_at` of the first sample within [`BACK_WITHIN`] of `baseline`, within
/// `pause` seconds.
fn back_after(samples: &[Sample], baseline: u64, closed_at: f64, pause: f64) -> Option<f64> {
    samples
        .iter()
        .filter(|s| s.t >= closed_at && s.t <= closed_at + pause)
        .find(|s| s.rss <= baseline + BACK_WITHIN)
        .map(|s| s.t - closed_at)
}

impl ScenarioReport for Report {
    const NAME: &'static str = "pulse";

    fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// Renders a report.
    fn table(&self, _floor: Option<&Report>) -> Table {
        let r = self;
        let mut table = Table::new(&[
            "pulse",
            "subs",
            "baseline",
            "peak",
            "+1 s",
            "+5 s",
            "+10 s",
            "end",
            "back within 2 MiB",
        ]);
        let mib = |v: Option<u64>| v.map_or("-".into(), report::mib);
        for (i, p) in r.pulses.iter().enumerate() {
            table.row(
                &format!("{} {}", i + 1, p.kind),
                vec![
                    p.connected.to_string(),
                    report::mib(p.baseline),
                    report::mib(p.peak),
                    mib(p.after_1s),
                    mib(p.after_5s),
                    mib(p.after_10s),
                    mib(p.after_pause),
                    p.back_after_seconds
                        .map_or("!! never !!".into(), |s| format!("{s:.2} s")),
                ],
            );
        }
        if r.failed > 0 {
            table.section(&format!("!! {} connections failed !!", r.failed));
        }
        table
    }
}

#[cfg(test)]
mod tests {
    use super::{back_after, rss_at};
    use crate::sampler::Sample;

    fn samples(rss: &[u64]) -> Vec<Sample> {
        rss.iter()
            .enumerate()
            .map(|(i, &rss)| Sample {
                t: i as f64 * 0.5,
                rss,
                ..Sample::default()
            })
            .collect()
    }

    #[test]
    fn recovery_figures() {
        const M: u64 = 1024 * 1024;
        // Closed at t = 1.0; back within 2 MiB of 10 MiB at t = 2.5.
        let s = samples(&[10 * M, 40 * M, 40 * M, 30 * M, 20 * M, 12 * M, 11 * M]);
        assert_eq!(rss_at(&s, 2.0, 4.0), Some(20 * M));
        assert_eq!(rss_at(&s, 9.0, 4.0), None);
        assert_eq!(back_after(&s, 10 * M, 1.0, 5.0), Some(1.5));
        assert_eq!(back_after(&s, 5 * M, 1.0, 5.0), None);
    }
}
