//! The `ssecast-loadtest` command: parses flags, runs one scenario, prints its report.

use std::io::Write;
use std::net::TcpListener;
use std::process::ExitCode;

use clap::Parser;
use serde_json::json;

use ssecast_loadtest::cli::{Cli, Command, Common, FloorFlags, Scenario};
use ssecast_loadtest::error::Error;
use ssecast_loadtest::scenario::{
    connect, fanout, hostile, publish, pulse, single, Run, ScenarioReport,
};
use ssecast_loadtest::{floor, svg, token, worker};

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
    let alone = FloorFlags::default();
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
        Command::Connect {
            common,
            args,
            floor,
        } => measure(&common, floor, 1, 0, |run| connect::run(run, &args)),
        Command::Single {
            common,
            args,
            floor,
            rounds,
        } => measure(&common, floor, rounds, args.events, |run| {
            single::run(run, &args)
        }),
        Command::Fanout(Scenario { common, args }) => {
            measure(&common, alone, 1, 0, |run| fanout::run(run, &args))
        }
        Command::Pulse(Scenario { common, args }) => {
            measure(&common, alone, 1, 0, |run| pulse::run(run, &args))
        }
        Command::Publish(Scenario { common, args }) => {
            measure(&common, alone, 1, 0, |run| publish::run(run, &args))
        }
        Command::Hostile(Scenario { common, args }) => {
            measure(&common, alone, 1, 0, |run| hostile::run(run, &args))
        }
    }
}

/// Runs `scenario` `rounds` times against the target, each followed by a run against a floor
/// server started for it (`--with-floor`), or against the floor alone (`--floor-only`), with
/// up to `per_event` timed events; then prints the report.
fn measure<R: ScenarioReport>(
    common: &Common,
    floor: FloorFlags,
    rounds: usize,
    per_event: usize,
    scenario: impl Fn(&Run) -> Result<R, Error>,
) -> Result<(), Error> {
    let target = if floor.floor_only {
        // The floor replaces it: no `/stats` asked, and this process as the placeholder PID.
        let mut common = common.clone();
        common.pid = vec![std::process::id()];
        common.target()?
    } else {
        common.target()?
    };
    let run = common.run(target, per_event);
    let (mut reports, mut floors) = (Vec::new(), Vec::new());
    for _ in 0..rounds.max(1) {
        if !floor.floor_only {
            reports.push(scenario(&run)?);
        }
        if floor.with_floor || floor.floor_only {
            let (floor_run, process) = run.with_floor()?;
            let report = scenario(&floor_run);
            drop(process);
            floors.push(report?);
        }
    }
    let (report, floor) = match floor.floor_only {
        true => (R::combine(floors), None),
        false => (R::combine(reports), R::combine(floors)),
    };
    let report = report.ok_or_else(|| Error::Flag("--rounds: at least one".into()))?;
    finish(common, &report, floor.as_ref())
}

/// Warns of lost events, prints the table or the JSON document, and draws the chart if asked.
fn finish<R: ScenarioReport>(common: &Common, report: &R, floor: Option<&R>) -> Result<(), Error> {
    let [lost, duplicated, reordered] = report.losses();
    if lost + duplicated + reordered > 0 {
        eprintln!("!!! {lost} events LOST, {duplicated} DUPLICATED, {reordered} REORDERED !!!");
    }
    if let Some(path) = &common.svg {
        let title = format!("{}: {}", R::NAME, common.name);
        svg::write(path, &title, report.samples(), report.latency_over_time())?;
    }
    let text = if common.json {
        let document = json!({ "scenario": R::NAME, "report": report, "floor": floor });
        serde_json::to_string_pretty(&document).unwrap_or_default()
    } else {
        report.table(floor).render()
    };
    writeln!(std::io::stdout(), "{text}").map_err(Error::io("writing the report"))
}
