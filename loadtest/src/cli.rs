//! Command-line flags, their bounds, and how they become a [`Run`](crate::scenario::Run).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::attack::{Kind, Sizes};
use crate::error::Error;
use crate::fleet::ClientOptions;
use crate::scenario::{self, Run};
use crate::target::{Publish, Target, Url, DEFAULT_BODY};
use crate::token::{Place, TokenFile};
use crate::ui::Ui;

/// Measures an SSE server from this machine: memory per subscriber, fan-out latency, lost
/// events, memory after spikes. Loopback targets only; every run is bounded and stops itself.
#[derive(Debug, Parser)]
#[command(name = "ssecast-loadtest", version)]
pub struct Cli {
    /// The scenario.
    #[command(subcommand)]
    pub command: Command,
}

/// The scenarios.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open N idle subscribers; server memory per subscriber (user space, kernel), then close.
    Connect(ConnectCmd),
    /// Publish at a steady rate to N subscribers; latency, throughput, CPU, lost events.
    Fanout(FanoutCmd),
    /// One event at a time to N subscribers; time to the first, median and last one.
    Single(SingleCmd),
    /// Big then small connection spikes; how fast server RSS comes back down.
    Pulse(PulseCmd),
    /// Publish as fast as the server answers, on pipelined keep-alive connections; events and
    /// requests per second, server and client CPU per event, publish round trips, and loss
    /// and order at a few subscribers.
    Publish(PublishCmd),
    /// Publish to good subscribers, alone and then beside every kind of hostile client;
    /// loss, latency and server memory in both phases, and what each attacker got.
    Hostile(HostileCmd),
    /// `single` or `connect` against the built-in floor broadcaster.
    Floor {
        /// The scenario to run against the floor.
        #[command(subcommand)]
        scenario: FloorScenario,
    },
    /// Serve the floor broadcaster (for compare.sh): prints `listening ADDR`.
    ServeFloor(ServeFloorCmd),
    /// Write a file of subscriber tokens (HS256 JWTs in Mercure's format, one a line, valid
    /// for a day), each allowed `--topics` and a topic of its own, `user/<k>`; scenarios send
    /// them with `--token-file`.
    Tokens(TokensCmd),
    /// A client process of a larger run, driven over stdin/stdout.
    #[command(hide = true)]
    Worker,
}

/// The scenarios the floor runs.
#[derive(Debug, Subcommand)]
pub enum FloorScenario {
    /// One event at a time against the floor.
    Single(SingleCmd),
    /// Idle subscribers against the floor.
    Connect(ConnectCmd),
}

/// Flags every scenario takes.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Subscribe URL (loopback only). Repeat it or separate URLs with commas to drive a
    /// cluster: subscriber k connects to URL k mod n, publishes go to the first node, and
    /// memory and CPU are summed over every node. `connect`, `single`, `fanout`, `publish`
    /// and `pulse` take several; `hostile` takes one (its attackers and `/stats` figures are
    /// of one server), and `--with-floor` runs the floor as one node.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "http://127.0.0.1:8080/events?topic=load"
    )]
    pub url: Vec<String>,
    /// Server PIDs to measure, summed (default: `pid` from `GET /stats` on each URL's host).
    #[arg(long, value_delimiter = ',')]
    pub pid: Vec<u32>,
    /// Publish URL; `{topic}` is replaced [default: http://<host:port>/publish of the first
    /// --url].
    #[arg(long)]
    pub publish_url: Option<String>,
    /// Publish body template; `{data}` and `{topic}` are replaced.
    #[arg(long, default_value = DEFAULT_BODY)]
    pub publish_body: String,
    /// Content type of the publish body.
    #[arg(long, default_value = "application/json")]
    pub publish_content_type: String,
    /// Topic to publish to (the URL's must match).
    #[arg(long, default_value = "load")]
    pub topic: String,
    /// New connections per second.
    #[arg(long, default_value_t = 5000.0, value_parser = rate(1.0, 50_000.0))]
    pub rate: f64,
    /// Client threads per process.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub client_threads: u16,
    /// Subscribers per client process at most (one process holds about 19,900 sockets here).
    #[arg(long, default_value_t = 19_000, value_parser = clap::value_parser!(u32).range(10..=19_900))]
    pub per_process: u32,
    /// Connections per loopback source address before moving to the next (127.0.0.2, ...).
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(10..=28_000))]
    pub per_address: u32,
    /// How the client closes connections: `rst` leaves no TIME_WAIT behind (repeatable runs,
    /// clean kernel figures); `fin` closes like a browser.
    #[arg(long, default_value = "rst", value_parser = ["rst", "fin"])]
    pub close: String,
    /// Subscriber tokens, one a line (see the `tokens` command): subscriber i sends line
    /// i mod N, in the place --token-in says (`hostile`'s attackers send none).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Where subscribers send their token: an `Authorization: Bearer` header, an
    /// `authorization=` query parameter, or a `mercureAuthorization` cookie.
    #[arg(long, value_enum, default_value_t = Place::Header, requires = "token_file")]
    pub token_in: Place,
    /// Name of the server in reports.
    #[arg(long, default_value = "server")]
    pub name: String,
    /// Print one JSON document instead of the table, with memory and connections sampled
    /// every 250 ms (`samples`).
    #[arg(long)]
    pub json: bool,
    /// Draw subscribers streaming, server RSS and the machine's memory in use over time into
    /// this SVG file (and, for `fanout`, latency by second of sending).
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
}

/// The most subscribers a scenario opens: a million and more, over client processes of
/// `--per-process` each and loopback source addresses of `--per-address` each.
const MAX_SUBSCRIBERS: i64 = 2_000_000;

/// `connect` flags.
#[derive(Debug, Clone, Args)]
pub struct ConnectCmd {
    /// Flags every scenario takes.
    #[command(flatten)]
    pub common: Common,
    /// Subscribers to open.
    #[arg(long, value_parser = clap::value_parser!(u32).range(2..=MAX_SUBSCRIBERS))]
    pub subscribers: u32,
    /// How long to hold them open.
    #[arg(long, default_value = "10s", value_parser = duration(3600))]
    pub hold: Duration,
    /// How long after closing to read memory again.
    #[arg(long, default_value = "10s", value_parser = duration(600))]
    pub settle: Duration,
    /// Also run the floor server with the same client, and show the ratios.
    #[arg(long)]
    pub with_floor: bool,
}

/// `single` flags.
#[derive(Debug, Clone, Args)]
pub struct SingleCmd {
    /// Flags every scenario takes.
    #[command(flatten)]
    pub common: Common,
    /// Subscribers.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=MAX_SUBSCRIBERS))]
    pub subscribers: u32,
    /// Events, one at a time.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=scenario::single::MAX_EVENTS as i64))]
    pub events: u32,
    /// Event data size in bytes (at least the stamp).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(0..=65_536))]
    pub size: u32,
    /// The longest wait for one event to reach everyone.
    #[arg(long, default_value = "10s", value_parser = duration(600))]
    pub event_timeout: Duration,
    /// Pause after each event has reached everyone.
    #[arg(long, default_value = "200ms", value_parser = duration(60))]
    pub gap: Duration,
    /// Also run the floor server with the same client, and show the ratios.
    #[arg(long)]
    pub with_floor: bool,
    /// With `--with-floor`, alternate server and floor runs this many times and report the
    /// median of each figure: runs minutes apart differ by more than the servers do.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub rounds: u32,
}

/// `fanout` flags.
#[derive(Debug, Clone, Args)]
pub struct FanoutCmd {
    /// Flags every scenario takes.
    #[command(flatten)]
    pub common: Common,
    /// Subscribers.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=MAX_SUBSCRIBERS))]
    pub subscribers: u32,
    /// Events published per second.
    #[arg(long, value_parser = rate(0.1, 100_000.0))]
    pub events_per_second: f64,
    /// How long to publish.
    #[arg(long, default_value = "10s", value_parser = duration(600))]
    pub duration: Duration,
    /// Event data size in bytes (at least the stamp).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(0..=65_536))]
    pub size: u32,
    /// Keep-alive publish connections, used in turn (requests are pipelined on each). With
    /// more than one, events in flight together may arrive reordered.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub publish_connections: u16,
}

/// `publish` flags.
#[derive(Debug, Clone, Args)]
pub struct PublishCmd {
    /// Flags every scenario takes.
    #[command(flatten)]
    pub common: Common,
    /// Subscribers, each checking every event.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=250_000))]
    pub subscribers: u32,
    /// Keep-alive publish connections, each numbering its own events (checked in order per
    /// connection).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub connections: u16,
    /// Events in all, shared out between the connections.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub events: u32,
    /// Requests written but not answered per connection (the pipelining depth). Requests are
    /// written as fast as this window allows, not at a set rate.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub in_flight: u32,
    /// Events per request. Above 1, a request is a JSON array of single-event bodies made
    /// from --publish-body, `[body1,body2,...]`: only servers with batch publish accept it
    /// (ssecast, up to its --max-batch).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub batch: u32,
    /// Event data size in bytes (at least the stamp).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(0..=65_536))]
    pub size: u32,
}

/// `pulse` flags.
#[derive(Debug, Clone, Args)]
pub struct PulseCmd {
    /// Flags every scenario takes.
    #[command(flatten)]
    pub common: Common,
    /// Subscribers in a big pulse.
    #[arg(long, default_value_t = 15_000, value_parser = clap::value_parser!(u32).range(1..=250_000))]
    pub big: u32,
    /// Subscribers in a small pulse.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..=250_000))]
    pub small: u32,
    /// Big pulses.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=20))]
    pub pulses: u32,
    /// Small pulses after the big ones.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=50))]
    pub small_pulses: u32,
    /// How long each pulse holds its connections.
    #[arg(long, default_value = "20s", value_parser = duration(3600))]
    pub hold: Duration,
    /// How long RSS is watched after each close (at least 11 s, to see +10 s).
    #[arg(long, default_value = "15s", value_parser = duration(3600))]
    pub pause: Duration,
}

/// `hostile` flags. Good subscribers use 127.0.0.1, 127.0.0.2, ... (at most
/// [`GOOD_PER_ADDRESS`] each, under the server's per-address limit); each kind of attacker
/// its own address from 127.0.0.60 on.
#[derive(Debug, Clone, Args)]
pub struct HostileCmd {
    /// Flags every scenario takes.
    #[command(flatten)]
    pub common: Common,
    /// Good subscribers.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=50_000))]
    pub subscribers: u32,
    /// Events published per second, on one kept-alive connection.
    #[arg(long, default_value_t = 100.0, value_parser = rate(0.1, 10_000.0))]
    pub events_per_second: f64,
    /// The whole run: a quiet phase, then a hostile phase, each half of it.
    #[arg(long, default_value = "30s", value_parser = duration(1200))]
    pub duration: Duration,
    /// Event data size in bytes (at least the stamp).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(0..=65_536))]
    pub size: u32,
    /// The kinds of attackers, comma-separated [default: all].
    #[arg(long, value_delimiter = ',', value_enum)]
    pub attacks: Vec<Kind>,
    /// Slowloris connections (request heads one byte a second).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=900))]
    pub slowloris: u32,
    /// Topic flood connections, each sending publishes back to back.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub topic_floods: u32,
    /// Topic names in one topic flood publish.
    #[arg(long, default_value_t = 70_000, value_parser = clap::value_parser!(u32).range(65..=1_000_000))]
    pub flood_topics: u32,
    /// The server's largest publish body: a topic flood body's size, and what a stalled
    /// body declares.
    #[arg(long, default_value_t = 1 << 20, value_parser = clap::value_parser!(u32).range(1024..=(64 << 20)))]
    pub body_bytes: u32,
    /// Stalled publish bodies held at once.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=900))]
    pub stalled_bodies: u32,
    /// Bytes of its body a stalled publish sends before it stalls.
    #[arg(long, default_value_t = 65_536, value_parser = clap::value_parser!(u32).range(0..=(64 << 20)))]
    pub stalled_sent: u32,
    /// Connections pipelining `GET /` without reading the answers.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=900))]
    pub unread_pipelines: u32,
    /// Subscribers of the good clients' topic that never read.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=900))]
    pub never_read: u32,
    /// Loops resuming from an unknown id on 64 topics.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub resumes: u32,
    /// Loops subscribing to 64 new topics and leaving at once.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub subscribe_leaves: u32,
    /// Loops sending garbage instead of requests.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub garbage: u32,
    /// Connections a connect flood opens from its address before closing them all (more than
    /// the server's per-address limit, 1,000 by default, to be refused).
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..=20_000))]
    pub connect_flood: u32,
    /// Exchanges per second of one resume, subscribe-leave or garbage loop; 0 is as fast as
    /// the answers come.
    #[arg(long, default_value_t = 100.0, value_parser = rate(0.0, 100_000.0))]
    pub churn_rate: f64,
    /// How long after the attackers stop server memory is read again.
    #[arg(long, default_value = "5s", value_parser = duration(600))]
    pub settle: Duration,
}

/// Good subscribers per source address in `hostile`: under the server's default limit of
/// 1,000 with room for the publisher and `/stats` on the first.
pub const GOOD_PER_ADDRESS: u32 = 900;

/// `serve-floor` flags.
#[derive(Debug, Clone, Args)]
pub struct ServeFloorCmd {
    /// Loopback address to listen on (port 0 picks one).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,
    /// Writer threads [default: one per core].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub threads: Option<u16>,
}

/// `tokens` flags.
#[derive(Debug, Clone, Args)]
pub struct TokensCmd {
    /// The HMAC secret the server checks subscriber tokens with (its --subscriber-jwt-key).
    #[arg(long, value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub secret: String,
    /// Tokens to make, each with its own claim set.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub count: u32,
    /// Topics every token may subscribe to, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "load")]
    pub topics: Vec<String>,
    /// The file to write.
    #[arg(long)]
    pub out: PathBuf,
}

fn duration(max_seconds: u64) -> impl Fn(&str) -> Result<Duration, String> + Clone {
    move |text| {
        let d = humantime::parse_duration(text).map_err(|e| e.to_string())?;
        if d > Duration::from_secs(max_seconds) {
            return Err(format!("at most {max_seconds} s"));
        }
        Ok(d)
    }
}

fn rate(min: f64, max: f64) -> impl Fn(&str) -> Result<f64, String> + Clone {
    move |text| {
        let value: f64 = text.parse().map_err(|_| format!("not a number: {text}"))?;
        if !(min..=max).contains(&value) {
            return Err(format!("between {min} and {max}"));
        }
        Ok(value)
    }
}

impl Common {
    /// The server these flags describe; asks each node's `/stats` for its PID unless `--pid`
    /// was given.
    pub fn target(&self) -> Result<Target, Error> {
        let subscribe = self
            .url
            .iter()
            .map(|url| Url::parse(url))
            .collect::<Result<Vec<_>, _>>()?;
        let Some(first) = subscribe.first() else {
            return Err(Error::Flag("--url: at least one subscribe URL".into()));
        };
        let publish_url = match &self.publish_url {
            Some(url) => url.clone(),
            None => format!("http://{}/publish", first.host),
        };
        let pids = if self.pid.is_empty() {
            node_pids(&subscribe)?
        } else {
            self.pid.clone()
        };
        for &pid in &pids {
            crate::probe::process_memory(pid)?;
        }
        Ok(Target {
            name: self.name.clone(),
            publish: Publish {
                url: Url::parse(&publish_url)?,
                body_template: self.publish_body.clone(),
                content_type: self.publish_content_type.clone(),
            },
            subscribe,
            topic: self.topic.clone(),
            pids,
        })
    }

    /// A run against `target` with these flags, for up to `per_event` timed events.
    pub fn run(&self, target: Target, per_event: usize) -> Run {
        Run {
            target,
            client: ClientOptions {
                threads: usize::from(self.client_threads),
                rate: self.rate,
                per_process: self.per_process as usize,
                per_address: self.per_address as usize,
                per_event,
                reset: self.close == "rst",
                tokens: self.token_file.as_ref().map(|path| TokenFile {
                    path: path.clone(),
                    place: self.token_in,
                }),
            },
            ui: Ui {
                progress: !self.quiet,
            },
            svg: self.svg.clone(),
        }
    }
}

/// The PID of every node: `GET /stats` once per distinct address, each process once (two
/// URLs may reach one server).
fn node_pids(urls: &[Url]) -> Result<Vec<u32>, Error> {
    let mut asked = Vec::new();
    let mut pids = Vec::new();
    for url in urls {
        if asked.contains(&url.addr) {
            continue;
        }
        asked.push(url.addr);
        let pid = crate::http::stats_pid(url.addr, &url.host)?;
        if !pids.contains(&pid) {
            pids.push(pid);
        }
    }
    Ok(pids)
}

impl ConnectCmd {
    /// The scenario's arguments.
    pub fn args(&self) -> scenario::connect::Args {
        scenario::connect::Args {
            subscribers: self.subscribers as usize,
            hold: self.hold,
            settle: self.settle,
        }
    }
}

impl SingleCmd {
    /// The scenario's arguments.
    pub fn args(&self) -> scenario::single::Args {
        scenario::single::Args {
            subscribers: self.subscribers as usize,
            events: self.events as usize,
            size: self.size as usize,
            event_timeout: self.event_timeout,
            gap: self.gap,
        }
    }
}

impl FanoutCmd {
    /// The scenario's arguments.
    pub fn args(&self) -> scenario::fanout::Args {
        scenario::fanout::Args {
            subscribers: self.subscribers as usize,
            rate: self.events_per_second,
            duration: self.duration,
            size: self.size as usize,
            publish_connections: usize::from(self.publish_connections),
        }
    }
}

impl PublishCmd {
    /// The scenario's arguments.
    pub fn args(&self) -> scenario::publish::Args {
        scenario::publish::Args {
            subscribers: self.subscribers as usize,
            connections: usize::from(self.connections),
            events: u64::from(self.events),
            in_flight: u64::from(self.in_flight),
            batch: u64::from(self.batch),
            size: self.size as usize,
        }
    }
}

impl HostileCmd {
    /// A run with good subscribers spread at most [`GOOD_PER_ADDRESS`] to an address.
    pub fn run(&self, target: Target) -> Run {
        let mut run = self.common.run(target, 0);
        run.client.per_address = run.client.per_address.min(GOOD_PER_ADDRESS as usize);
        run
    }

    /// The scenario's arguments.
    pub fn args(&self) -> scenario::hostile::Args {
        let attacks = if self.attacks.is_empty() {
            Kind::ALL.to_vec()
        } else {
            let mut kinds = self.attacks.clone();
            kinds.sort();
            kinds.dedup();
            kinds
        };
        scenario::hostile::Args {
            subscribers: self.subscribers as usize,
            rate: self.events_per_second,
            phase: self.duration / 2,
            size: self.size as usize,
            attacks,
            sizes: Sizes {
                slowloris: self.slowloris as usize,
                topic_flood: self.topic_floods as usize,
                flood_topics: self.flood_topics as usize,
                body_bytes: self.body_bytes as usize,
                stalled_bodies: self.stalled_bodies as usize,
                stalled_sent: self.stalled_sent as usize,
                unread_pipelines: self.unread_pipelines as usize,
                never_read: self.never_read as usize,
                resumes: self.resumes as usize,
                subscribe_leaves: self.subscribe_leaves as usize,
                garbage: self.garbage as usize,
                connect_flood: self.connect_flood as usize,
                churn_rate: self.churn_rate,
            },
            settle: self.settle,
        }
    }
}

impl PulseCmd {
    /// The scenario's arguments, or why they make no sense.
    pub fn args(&self) -> Result<scenario::pulse::Args, Error> {
        if self.pause < Duration::from_secs(11) {
            return Err(Error::Flag(
                "--pause must be at least 11s to see RSS at +10 s".into(),
            ));
        }
        Ok(scenario::pulse::Args {
            big: self.big as usize,
            small: self.small as usize,
            pulses: self.pulses as usize,
            small_pulses: self.small_pulses as usize,
            hold: self.hold,
            pause: self.pause,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::{CommandFactory, Parser};

    #[test]
    fn flags_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bounds_are_enforced() {
        assert!(Cli::try_parse_from(["t", "connect", "--subscribers", "2000001"]).is_err());
        assert!(Cli::try_parse_from(["t", "connect", "--subscribers", "1000000"]).is_ok());
        assert!(
            Cli::try_parse_from(["t", "single", "--subscribers", "5", "--events", "101"]).is_err()
        );
        assert!(Cli::try_parse_from([
            "t",
            "fanout",
            "--subscribers",
            "5",
            "--events-per-second",
            "10",
            "--duration",
            "2h"
        ])
        .is_err());
        assert!(
            Cli::try_parse_from(["t", "connect", "--subscribers", "5", "--rate", "0"]).is_err()
        );
        assert!(Cli::try_parse_from([
            "t",
            "fanout",
            "--subscribers",
            "5",
            "--events-per-second",
            "100",
            "--duration",
            "10s",
            "--pid",
            "1,2"
        ])
        .is_ok());
    }

    #[test]
    fn urls_repeat_or_split_on_commas() {
        use super::Command;
        let urls = |extra: &[&str]| {
            let mut args = vec!["t", "connect", "--subscribers", "5"];
            args.extend_from_slice(extra);
            match Cli::try_parse_from(args).map(|cli| cli.command) {
                Ok(Command::Connect(cmd)) => cmd.common.url,
                other => panic!("connect did not parse: {other:?}"),
            }
        };
        let (a, b) = (
            "http://127.0.0.1:7001/events",
            "http://127.0.0.1:7002/events",
        );
        assert_eq!(urls(&[]), ["http://127.0.0.1:8080/events?topic=load"]);
        assert_eq!(urls(&["--url", a]), [a]);
        assert_eq!(urls(&["--url", a, "--url", b]), [a, b]);
        assert_eq!(urls(&["--url", &format!("{a},{b}")]), [a, b]);
    }

    #[test]
    fn several_urls_publish_to_the_first_and_hostile_refuses_them() {
        use super::Command;
        let pid = std::process::id().to_string();
        let urls =
            "http://127.0.0.1:7001/events?topic=load,http://127.0.0.1:7002/events?topic=load";
        let target = |scenario: &str| {
            let args = [
                "t",
                scenario,
                "--subscribers",
                "5",
                "--url",
                urls,
                "--pid",
                &pid,
            ];
            match Cli::try_parse_from(args).map(|cli| cli.command) {
                Ok(Command::Single(cmd)) => cmd.common.target().unwrap(),
                Ok(Command::Hostile(cmd)) => cmd.common.target().unwrap(),
                other => panic!("{scenario} did not parse: {other:?}"),
            }
        };
        let single = target("single");
        let ports: Vec<u16> = single.subscribe.iter().map(|u| u.addr.port()).collect();
        assert_eq!(ports, [7001, 7002]);
        assert_eq!(single.publish.url.addr.port(), 7001);
        assert_eq!(single.publish.url.path, "/publish");
        let refused = target("hostile").single_node("hostile").unwrap_err();
        assert!(refused.to_string().contains("one --url"), "{refused}");
    }

    #[test]
    fn publish_defaults_and_bounds() {
        use super::Command;
        let parse = |extra: &[&str]| {
            let mut args = vec!["t", "publish"];
            args.extend_from_slice(extra);
            match Cli::try_parse_from(args).map(|cli| cli.command) {
                Ok(Command::Publish(cmd)) => Some(cmd.args()),
                _ => None,
            }
        };
        let defaults = parse(&[]).unwrap();
        assert_eq!(
            (defaults.subscribers, defaults.connections, defaults.events),
            (1, 8, 100_000)
        );
        assert_eq!(
            (defaults.in_flight, defaults.batch, defaults.size),
            (16, 1, 64)
        );
        assert!(
            parse(&["--connections", "257"]).is_none(),
            "streams are 0 to 255"
        );
        assert!(parse(&["--batch", "0"]).is_none());
        assert!(parse(&["--in-flight", "0"]).is_none());
        assert_eq!(parse(&["--batch", "100"]).unwrap().batch, 100);
    }

    #[test]
    fn tokens_needs_a_secret_and_an_out_file() {
        use super::Command;
        let parsed = Cli::try_parse_from(["t", "tokens", "--secret", "s", "--out", "f.txt"]);
        let Ok(Cli {
            command: Command::Tokens(cmd),
        }) = parsed
        else {
            panic!("tokens did not parse");
        };
        assert_eq!((cmd.count, cmd.topics), (1000, vec!["load".to_owned()]));
        assert!(Cli::try_parse_from(["t", "tokens", "--out", "f.txt"]).is_err());
        assert!(Cli::try_parse_from(["t", "tokens", "--secret", "", "--out", "f"]).is_err());
        assert!(Cli::try_parse_from(["t", "tokens", "--secret", "s", "--count", "0"]).is_err());
    }

    #[test]
    fn token_flags_reach_the_client_options() {
        use super::Command;
        use crate::token::{Place, TokenFile};
        let tokens = |extra: &[&str]| {
            let mut args = vec!["t", "connect", "--subscribers", "5"];
            args.extend_from_slice(extra);
            match Cli::try_parse_from(args).map(|cli| cli.command) {
                Ok(Command::Connect(cmd)) => Ok(cmd.common.token_file.map(|path| TokenFile {
                    path,
                    place: cmd.common.token_in,
                })),
                Ok(_) => panic!("not connect"),
                Err(e) => Err(e.kind()),
            }
        };
        assert_eq!(tokens(&[]), Ok(None));
        let file = |place| {
            Ok(Some(TokenFile {
                path: "t.txt".into(),
                place,
            }))
        };
        assert_eq!(tokens(&["--token-file", "t.txt"]), file(Place::Header));
        for (word, place) in [("query", Place::Query), ("cookie", Place::Cookie)] {
            assert_eq!(
                tokens(&["--token-file", "t.txt", "--token-in", word]),
                file(place)
            );
        }
        assert!(tokens(&["--token-in", "query"]).is_err(), "needs a file");
        assert!(tokens(&["--token-file", "t.txt", "--token-in", "body"]).is_err());
    }

    #[test]
    fn hostile_takes_a_list_of_attacks_or_all() {
        use super::{Command, Kind};
        let parse = |extra: &[&str]| {
            let mut args = vec!["t", "hostile"];
            args.extend_from_slice(extra);
            match Cli::try_parse_from(args).map(|cli| cli.command) {
                Ok(Command::Hostile(cmd)) => Some(cmd.args()),
                _ => None,
            }
        };
        let all = parse(&[]).unwrap();
        assert_eq!(all.attacks, Kind::ALL.to_vec());
        assert_eq!(all.phase, std::time::Duration::from_secs(15));
        assert_eq!((all.subscribers, all.sizes.flood_topics), (500, 70_000));
        let two = parse(&["--attacks", "garbage,slowloris,garbage"]).unwrap();
        assert_eq!(two.attacks, vec![Kind::Slowloris, Kind::Garbage]);
        assert!(parse(&["--attacks", "nope"]).is_none());
        assert!(parse(&["--slowloris", "5000"]).is_none());
    }
}
