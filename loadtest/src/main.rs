//! The `ssecast-loadtest` command: parses flags, runs one scenario, prints its report.

use std::io::Write;
use std::net::TcpListener;
use std::process::ExitCode;

use clap::Parser;
use serde::Serialize;
use serde_json::json;

use ssecast_loadtest::cli::{Cli, Command, Common, FloorScenario};
use ssecast_loadtest::error::Error;
use ssecast_loadtest::floor;
use ssecast_loadtest::latency::SecondLatency;
use ssecast_loadtest::report::Table;
use ssecast_loadtest::sampler::Sample;
use ssecast_loadtest::scenario::{connect, fanout, hostile, publish, pulse, single, Run};
use ssecast_loadtest::{svg, token, worker};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Each subscriber is a socket: use every file descriptor the hard limit allows.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ssecast-loadtest: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), Error> {
    match cli.command {
        Command::Worker => worker::serve(),
        Command::Tokens(cmd) => {
            let now = std::time::SystemTime::now();
            let tokens = token::make(cmd.secret.as_bytes(), cmd.count as usize, &cmd.topics, now)?;
            token::write(&cmd.out, &tokens)
        }
        Command::ServeFloor(cmd) => {
            if !cmd.listen.ip().is_loopback() {
                return Err(Error::Flag("--listen must be a loopback address".into()));
            }
            let listener = TcpListener::bind(cmd.listen).map_err(Error::io("binding"))?;
            let addr = listener.local_addr().map_err(Error::io("binding"))?;
            let threads = cmd.threads.map_or_else(
                || std::thread::available_parallelism().map_or(2, |n| n.get()),
                usize::from,
            );
            let mut stdout = std::io::stdout();
            let _ = writeln!(stdout, "listening {addr}");
            let _ = stdout.flush();
            floor::serve(listener, threads)
        }
        Command::Connect(cmd) => {
            let run = cmd.common.run(cmd.common.target()?, 0);
            let report = connect::run(&run, &cmd.args())?;
            let floor = match cmd.with_floor {
                true => Some(on_floor(&run, |floor| connect::run(floor, &cmd.args()))?),
                false => None,
            };
            let table = connect::table(&report, floor.as_ref());
            finish(
                &cmd.common,
                "connect",
                &report,
                floor.as_ref(),
                table,
                Chart::of(&report.samples),
            )
        }
        Command::Single(cmd) => {
            let run = cmd.common.run(cmd.common.target()?, cmd.events as usize);
            let mut reports = vec![single::run(&run, &cmd.args())?];
            let mut floors = Vec::new();
            if cmd.with_floor {
                floors.push(on_floor(&run, |floor| single::run(floor, &cmd.args()))?);
                for _ in 1..cmd.rounds {
                    reports.push(single::run(&run, &cmd.args())?);
                    floors.push(on_floor(&run, |floor| single::run(floor, &cmd.args()))?);
                }
            }
            let report = single::combine(reports);
            let floor = (!floors.is_empty()).then(|| single::combine(floors));
            let table = single::table(&report, floor.as_ref());
            finish(
                &cmd.common,
                "single",
                &report,
                floor.as_ref(),
                table,
                Chart::of(&report.samples),
            )
        }
        Command::Fanout(cmd) => {
            let run = cmd.common.run(cmd.common.target()?, 0);
            let report = fanout::run(&run, &cmd.args())?;
            warn_losses(report.lost, report.duplicated, report.reordered);
            let table = fanout::table(&report);
            let chart = Chart {
                samples: &report.samples,
                latency: &report.latency_over_time,
            };
            finish::<fanout::Report>(&cmd.common, "fanout", &report, None, table, chart)
        }
        Command::Pulse(cmd) => {
            let run = cmd.common.run(cmd.common.target()?, 0);
            let report = pulse::run(&run, &cmd.args()?)?;
            let table = pulse::table(&report);
            let chart = Chart::of(&report.samples);
            finish::<pulse::Report>(&cmd.common, "pulse", &report, None, table, chart)
        }
        Command::Publish(cmd) => {
            let run = cmd.common.run(cmd.common.target()?, 0);
            let report = publish::run(&run, &cmd.args())?;
            warn_losses(report.lost, report.duplicated, report.reordered);
            let table = publish::table(&report);
            finish::<publish::Report>(
                &cmd.common,
                "publish",
                &report,
                None,
                table,
                Chart::of(&report.samples),
            )
        }
        Command::Hostile(cmd) => {
            let run = cmd.run(cmd.common.target()?);
            let report = hostile::run(&run, &cmd.args())?;
            for phase in [&report.quiet, &report.hostile] {
                warn_losses(phase.lost, phase.duplicated, phase.reordered);
            }
            let table = hostile::table(&report);
            finish::<hostile::Report>(
                &cmd.common,
                "hostile",
                &report,
                None,
                table,
                Chart::of(&report.samples),
            )
        }
        Command::Floor { scenario } => match scenario {
            FloorScenario::Single(cmd) => {
                let base = cmd
                    .common
                    .run(placeholder(&cmd.common)?, cmd.events as usize);
                let report = on_floor(&base, |floor| single::run(floor, &cmd.args()))?;
                let table = single::table(&report, None);
                finish::<single::Report>(
                    &cmd.common,
                    "single",
                    &report,
                    None,
                    table,
                    Chart::of(&report.samples),
                )
            }
            FloorScenario::Connect(cmd) => {
                let base = cmd.common.run(placeholder(&cmd.common)?, 0);
                let report = on_floor(&base, |floor| connect::run(floor, &cmd.args()))?;
                let table = connect::table(&report, None);
                finish::<connect::Report>(
                    &cmd.common,
                    "connect",
                    &report,
                    None,
                    table,
                    Chart::of(&report.samples),
                )
            }
        },
    }
}

/// Runs `scenario` against a floor server started for it.
fn on_floor<T>(run: &Run, scenario: impl FnOnce(&Run) -> Result<T, Error>) -> Result<T, Error> {
    let (floor_run, process) = run.with_floor()?;
    let report = scenario(&floor_run);
    drop(process);
    report
}

/// A target for `floor` runs, which replace it with the floor server; no `/stats` asked.
fn placeholder(common: &Common) -> Result<ssecast_loadtest::target::Target, Error> {
    let mut common = common.clone();
    common.pid = vec![std::process::id()];
    common.target()
}

fn warn_losses(lost: u64, duplicated: u64, reordered: u64) {
    if lost + duplicated + reordered > 0 {
        eprintln!("!!! {lost} events LOST, {duplicated} DUPLICATED, {reordered} REORDERED !!!");
    }
}

/// What the `--svg` chart draws.
struct Chart<'a> {
    samples: &'a [Sample],
    latency: &'a [SecondLatency],
}

impl<'a> Chart<'a> {
    /// Samples alone.
    fn of(samples: &'a [Sample]) -> Chart<'a> {
        Chart {
            samples,
            latency: &[],
        }
    }
}

/// Prints the table or the JSON document, and draws the chart if asked.
fn finish<T: Serialize>(
    common: &Common,
    scenario: &str,
    report: &T,
    floor: Option<&T>,
    table: Table,
    chart: Chart,
) -> Result<(), Error> {
    if let Some(path) = &common.svg {
        let title = format!("{scenario}: {}", common.name);
        svg::write(path, &title, chart.samples, chart.latency)?;
    }
    let mut stdout = std::io::stdout();
    let text = if common.json {
        let document = json!({ "scenario": scenario, "report": report, "floor": floor });
        serde_json::to_string_pretty(&document).unwrap_or_default()
    } else {
        table.render()
    };
    writeln!(stdout, "{text}").map_err(Error::io("writing the report"))
}
