//! The scenarios: `connect`, `single`, `fanout`, `publish`, `pulse` and `hostile`, each a function
//! from a [`Run`] and its arguments to a report that serializes to JSON and renders as a table.
//!
//! [`Run`] also holds the set-up they share: [`Run::watch`] starts the clients and the sampler,
//! and [`Run::connect_all`] goes on to connect every subscriber and leave the server idle and the
//! counts at zero, where the delivery scenarios (`single`, `fanout`, `publish`, `hostile`) begin;
//! [`Run::drain`] waits for the last deliveries once publishing is over; [`Cpu`] measures both
//! sides meanwhile, and [`Deliveries`] is what their subscribers got. [`ScenarioReport`] is
//! what the command line does with any of their reports.

pub mod connect;
pub mod fanout;
pub mod hostile;
pub mod publish;
pub mod pulse;
pub mod single;

use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::client::tally::Tally;
use crate::client::Status;
use crate::error::Error;
use crate::fleet::{ClientOptions, Fleet};
use crate::floor::FloorProcess;
use crate::latency::SecondLatency;
use crate::probe;
use crate::report::Table;
use crate::sampler::{Sample, Sampler};
use crate::target::{Publish, Target, Url, DEFAULT_BODY};
use crate::ui::Ui;

/// What every scenario needs.
#[derive(Debug, Clone)]
pub struct Run {
    /// The server.
    pub target: Target,
    /// How the clients behave.
    pub client: ClientOptions,
    /// Progress bars or not.
    pub ui: Ui,
    /// Where to draw the chart, if anywhere.
    pub svg: Option<PathBuf>,
}

/// What the subscribers got of the events owed them, summed over subscribers: the same fields
/// in each delivery scenario's JSON, where it is flattened.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Deliveries {
    /// Deliveries expected (subscribers x events owed).
    pub expected: u64,
    /// First copies delivered.
    pub delivered: u64,
    /// Events lost.
    pub lost: u64,
    /// Events delivered twice or more.
    pub duplicated: u64,
    /// Events that arrived after a later event of their stream.
    pub reordered: u64,
}

impl Deliveries {
    /// What `tally` counted when `subscribers` were owed `events` each.
    pub fn of(subscribers: u64, events: u64, tally: &Tally) -> Deliveries {
        Deliveries {
            expected: subscribers * events,
            delivered: tally.delivered,
            lost: tally.lost,
            duplicated: tally.duplicated,
            reordered: tally.reordered,
        }
    }

    /// Lost, duplicated and reordered, as [`ScenarioReport::losses`] has them.
    pub fn losses(&self) -> [u64; 3] {
        [self.lost, self.duplicated, self.reordered]
    }

    /// Its rows in a one-column table, counts written by `count`: delivered, expected, then
    /// the alarms.
    pub fn rows(&self, table: &mut Table, count: fn(u64) -> String) {
        table.row("delivered", vec![count(self.delivered)]);
        table.row("expected", vec![count(self.expected)]);
        table.alarms(&[
            ("lost", self.lost),
            ("duplicated", self.duplicated),
            ("reordered", self.reordered),
        ]);
    }

    /// Adds the counts of another run.
    pub fn add(&mut self, other: &Deliveries) {
        self.expected += other.expected;
        self.delivered += other.delivered;
        self.lost += other.lost;
        self.duplicated += other.duplicated;
        self.reordered += other.reordered;
    }
}

/// How the wait for the last deliveries ended ([`Run::drain`]), flattened into the reports.
#[derive(Debug, Clone, Serialize)]
pub struct Drain {
    /// Whether every expected delivery arrived.
    pub drained: bool,
    /// From the end of publishing to the end of the drain, seconds.
    pub drain_seconds: f64,
    /// Streams the server closed during the run.
    pub closed_by_server: u64,
}

impl Drain {
    /// Its rows in a one-column table: streams closed, then [`Drain::verdict`].
    pub fn rows(&self, table: &mut Table) {
        table.alarms(&[("closed by server", self.closed_by_server)]);
        table.row("drained", vec![self.verdict()]);
    }

    /// Whether the last deliveries all arrived, and how long that took.
    pub fn verdict(&self) -> String {
        let verdict = if self.drained { "yes" } else { "!! NO !!" };
        format!("{verdict} in {:.2} s", self.drain_seconds)
    }
}

/// Server and client CPU time (every client process) from the moment it was started.
pub struct Cpu {
    /// Server ticks at the start.
    server: u64,
    /// Client ticks at the start.
    client: u64,
}

impl Cpu {
    /// Reads both clocks.
    pub fn start(run: &Run, fleet: &Fleet) -> Result<Cpu, Error> {
        Ok(Cpu {
            server: probe::cpu_ticks(&run.target.pids)?,
            client: fleet.cpu_ticks()?,
        })
    }

    /// Server and client CPU seconds since the start.
    pub fn seconds(&self, run: &Run, fleet: &Fleet) -> Result<[f64; 2], Error> {
        let server = probe::cpu_ticks(&run.target.pids)?.saturating_sub(self.server);
        let client = fleet.cpu_ticks()?.saturating_sub(self.client);
        Ok([server, client].map(probe::ticks_to_seconds))
    }
}

/// CPU `seconds` per unit, in microseconds; zero without units.
pub fn per_unit_us(seconds: f64, units: u64) -> f64 {
    if units == 0 {
        0.0
    } else {
        seconds * 1e6 / units as f64
    }
}

/// How long server CPU must stand still to count as idle.
pub const IDLE_QUIET: Duration = Duration::from_millis(300);
/// The longest wait for the server to go idle.
pub const IDLE_LIMIT: Duration = Duration::from_secs(10);

impl Run {
    /// Starts the clients for `n` subscribers.
    pub fn fleet(&self, n: usize) -> Result<Arc<Fleet>, Error> {
        Fleet::start(&self.target.subscribe, n, &self.client).map(Arc::new)
    }

    /// Starts the clients for `n` subscribers, none connected yet, and the sampler watching
    /// them and the server.
    pub fn watch(&self, n: usize) -> Result<(Arc<Fleet>, Sampler), Error> {
        let fleet = self.fleet(n)?;
        let sampler = Sampler::start(self.target.pids.clone(), fleet.clone());
        Ok((fleet, sampler))
    }

    /// Starts `n` subscribers and connects them all, then waits for the server to go idle and
    /// forgets the counts, so that what follows counts only its own deliveries: where a
    /// delivery scenario starts. Returns the clients, the sampler (watching from before the
    /// first connection) and how the connection went. Whether the server went idle is not
    /// reported: these scenarios measure time, not memory.
    pub fn connect_all(&self, n: usize) -> Result<(Arc<Fleet>, Sampler, Status), Error> {
        let (fleet, sampler) = self.watch(n)?;
        let status = fleet.connect_and_wait(n, self.connect_limit(n), &self.ui, "connecting")?;
        self.wait_idle();
        fleet.reset()?;
        Ok((fleet, sampler, status))
    }

    /// The longest the connection of `n` subscribers may take.
    pub fn connect_limit(&self, n: usize) -> Duration {
        Duration::from_secs_f64(n as f64 / self.client.rate.max(1.0) * 2.0)
            + Duration::from_secs(30)
    }

    /// Waits until the subscribers have `goal` first copies, computed again from each status
    /// (subscribers may leave), behind a progress bar. Gives up once no delivery arrived for
    /// `stall`, or after `limit`; streams closed are counted from `start`.
    pub fn drain(
        &self,
        fleet: &Fleet,
        start: &Status,
        goal: impl Fn(&Status) -> u64,
        [stall, limit]: [Duration; 2],
    ) -> Result<Drain, Error> {
        let started = Instant::now();
        let status = fleet.status()?;
        let bar = self.ui.bar(goal(&status), "draining");
        let mut last = (status.delivered, started);
        let drained = loop {
            let status = fleet.status()?;
            bar.set_position(status.delivered);
            if status.delivered >= goal(&status) {
                break true;
            }
            if status.delivered != last.0 {
                last = (status.delivered, Instant::now());
            }
            if last.1.elapsed() >= stall || started.elapsed() >= limit {
                break false;
            }
            thread::sleep(Duration::from_millis(5));
        };
        bar.finish_and_clear();
        Ok(Drain {
            drained,
            drain_seconds: started.elapsed().as_secs_f64(),
            closed_by_server: fleet.status()?.closed - start.closed,
        })
    }

    /// Waits for the server to go idle; false if it did not within [`IDLE_LIMIT`].
    pub fn wait_idle(&self) -> bool {
        probe::wait_idle(&self.target.pids, IDLE_QUIET, IDLE_LIMIT)
    }

    /// The same run against a floor server started for it (one node, whatever the target's
    /// count); the server lives as long as the returned handle.
    pub fn with_floor(&self) -> Result<(Run, FloorProcess), Error> {
        let floor = FloorProcess::spawn()?;
        let base = format!("http://{}", floor.addr);
        let target = Target {
            name: "floor".into(),
            subscribe: vec![Url::parse(&format!(
                "{base}/events?topic={}",
                self.target.topic
            ))?],
            publish: Publish {
                url: Url::parse(&format!("{base}/publish"))?,
                body_template: DEFAULT_BODY.into(),
                content_type: "application/json".into(),
            },
            topic: self.target.topic.clone(),
            pids: vec![floor.pid()],
        };
        Ok((
            Run {
                target,
                svg: None,
                ..self.clone()
            },
            floor,
        ))
    }
}

/// Samples of a run, for the chart and the JSON report.
pub type Samples = Vec<Sample>;

/// What the command line does with a scenario's report, whichever it is: print it as a table
/// or a JSON document, and draw its chart.
pub trait ScenarioReport: serde::Serialize + Sized {
    /// The scenario's command, and `scenario` in the JSON document.
    const NAME: &'static str;

    /// The table printed without `--json`, beside the floor's report if there is one.
    fn table(&self, floor: Option<&Self>) -> Table;

    /// Memory and connections over time.
    fn samples(&self) -> &[Sample];

    /// Latency by the second of sending, for the chart; none unless the scenario keeps it.
    fn latency_over_time(&self) -> &[SecondLatency] {
        &[]
    }

    /// Events lost, duplicated and reordered, warned about on stderr; none unless the
    /// scenario publishes at a rate.
    fn losses(&self) -> [u64; 3] {
        [0; 3]
    }

    /// Rounds of the same run (`--rounds`) as one report: the first, unless the scenario
    /// combines them; `None` without rounds.
    fn combine(rounds: Vec<Self>) -> Option<Self> {
        rounds.into_iter().next()
    }
}
