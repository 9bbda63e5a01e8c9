//! Command-line flags, their bounds, and how they become a [`Run`](crate::scenario::Run).
//!
//! Each scenario's own flags are its `Args`, in its module; here are the flags every scenario
//! takes ([`Common`]), the floor's ([`FloorFlags`]) and the commands that are not scenarios.

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::RangedU64ValueParser;
use clap::{Args, Parser, Subcommand};

use crate::error::Error;
use crate::fleet::ClientOptions;
use crate::scenario::{connect, fanout, hostile, publish, pulse, single, Run};
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
    Connect {
        /// Flags every scenario takes.
        #[command(flatten)]
        common: Common,
        /// The scenario's flags.
        #[command(flatten)]
        args: connect::Args,
        /// Beside or instead of the floor.
        #[command(flatten)]
        floor: FloorFlags,
    },
    /// Publish at a steady rate to N subscribers; latency, throughput, CPU, lost events.
    Fanout(Scenario<fanout::Args>),
    /// One event at a time to N subscribers; time to the first, median and last one.
    Single {
        /// Flags every scenario takes.
        #[command(flatten)]
        common: Common,
        /// The scenario's flags.
        #[command(flatten)]
        args: single::Args,
        /// Beside or instead of the floor.
        #[command(flatten)]
        floor: FloorFlags,
        /// Run this many times (alternating with the floor's runs, if any) and report the
        /// median of each figure: runs minutes apart differ by more than the servers do.
        #[arg(long, default_value_t = 1, value_parser = count(1, 10))]
        rounds: usize,
    },
    /// Big then small connection spikes; how fast server RSS comes back down.
    Pulse(Scenario<pulse::Args>),
    /// Publish as fast as the server answers, on pipelined keep-alive connections; events and
    /// requests per second, server and client CPU per event, publish round trips, and loss
    /// and order at a few subscribers.
    Publish(Scenario<publish::Args>),
    /// Publish to good subscribers, alone and then beside every kind of hostile client;
    /// loss, latency and server memory in both phases, and what each attacker got.
    Hostile(Scenario<hostile::Args>),
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

/// A scenario's command line: the flags every scenario takes, and its own.
#[derive(Debug, Clone, Args)]
pub struct Scenario<A: Args> {
    /// Flags every scenario takes.
    #[command(flatten)]
    pub common: Common,
    /// The scenario's flags.
    #[command(flatten)]
    pub args: A,
}

/// Where `connect` and `single` run besides the server: the floor broadcaster, started for
/// the run in a child process.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct FloorFlags {
    /// Also run the floor server with the same client, and show the ratios.
    #[arg(long)]
    pub with_floor: bool,
    /// Run against the floor server only; `--url` and `--pid` are not used.
    #[arg(long, conflicts_with = "with_floor")]
    pub floor_only: bool,
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
pub const MAX_SUBSCRIBERS: u64 = 2_000_000;

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

/// A duration flag (`10s`, `250ms`) of at most `max_seconds`.
pub fn duration(max_seconds: u64) -> impl Fn(&str) -> Result<Duration, String> + Clone {
    duration_between(0, max_seconds)
}

/// A duration flag from `min_seconds` to `max_seconds`.
pub fn duration_between(
    min_seconds: u64,
    max_seconds: u64,
) -> impl Fn(&str) -> Result<Duration, String> + Clone {
    move |text| {
        let d = humantime::parse_duration(text).map_err(|e| e.to_string())?;
        if d < Duration::from_secs(min_seconds) {
            return Err(format!("at least {min_seconds} s"));
        }
        if d > Duration::from_secs(max_seconds) {
            return Err(format!("at most {max_seconds} s"));
        }
        Ok(d)
    }
}

/// A count flag from `min` to `max`.
pub fn count(min: u64, max: u64) -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::new().range(min..=max)
}

/// A rate flag from `min` to `max`.
pub fn rate(min: f64, max: f64) -> impl Fn(&str) -> Result<f64, String> + Clone {
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

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::{CommandFactory, Parser};

    /// `args` then `extra` parsed as the loadtest's command line (its name put first).
    fn command(args: &[&str], extra: &[&str]) -> Result<super::Command, clap::Error> {
        let line = ["t"].iter().chain(args).chain(extra);
        Cli::try_parse_from(line).map(|cli| cli.command)
    }

    /// Whether `line`, its words split on single spaces, parses.
    fn parses(line: &str) -> bool {
        command(&line.split(' ').collect::<Vec<_>>(), &[]).is_ok()
    }

    #[test]
    fn flags_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bounds_are_enforced() {
        assert!(!parses("connect --subscribers 2000001"));
        assert!(parses("connect --subscribers 1000000"));
        assert!(!parses("single --subscribers 5 --events 101"));
        assert!(!parses(
            "fanout --subscribers 5 --events-per-second 10 --duration 2h"
        ));
        assert!(!parses("connect --subscribers 5 --rate 0"));
        let pids = "fanout --subscribers 5 --events-per-second 100 --duration 10s --pid 1,2";
        assert!(parses(pids));
    }

    #[test]
    fn urls_repeat_or_split_on_commas() {
        use super::Command;
        let urls = |extra: &[&str]| match command(&["connect", "--subscribers", "5"], extra) {
            Ok(Command::Connect { common, .. }) => common.url,
            other => panic!("connect did not parse: {other:?}"),
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
                Ok(Command::Single { common, .. }) => common.target().unwrap(),
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
    fn the_floor_runs_beside_or_instead() {
        use super::Command;
        let floor = |extra: &[&str]| match command(&["single", "--subscribers", "5"], extra) {
            Ok(Command::Single { floor, rounds, .. }) => {
                Some((floor.with_floor, floor.floor_only, rounds))
            }
            _ => None,
        };
        assert_eq!(floor(&[]), Some((false, false, 1)));
        assert_eq!(
            floor(&["--with-floor", "--rounds", "3"]),
            Some((true, false, 3))
        );
        assert_eq!(floor(&["--floor-only"]), Some((false, true, 1)));
        assert_eq!(floor(&["--floor-only", "--with-floor"]), None);
        assert_eq!(floor(&["--rounds", "11"]), None);
        assert!(!parses("pulse --pause 10s"));
    }

    #[test]
    fn publish_defaults_and_bounds() {
        use super::Command;
        let parse = |extra: &[&str]| match command(&["publish"], extra) {
            Ok(Command::Publish(cmd)) => Some(cmd.args),
            _ => None,
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
        assert!(!parses("tokens --out f.txt"));
        assert!(!parses("tokens --secret  --out f"), "an empty secret");
        assert!(!parses("tokens --secret s --count 0"));
    }

    #[test]
    fn token_flags_reach_the_client_options() {
        use super::Command;
        use crate::token::{Place, TokenFile};
        let tokens = |extra: &[&str]| match command(&["connect", "--subscribers", "5"], extra) {
            Ok(Command::Connect { common, .. }) => Ok(common.token_file.map(|path| TokenFile {
                path,
                place: common.token_in,
            })),
            Ok(_) => panic!("not connect"),
            Err(e) => Err(e.kind()),
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
        use super::Command;
        use crate::attack::Kind;
        let parse = |extra: &[&str]| match command(&["hostile"], extra) {
            Ok(Command::Hostile(cmd)) => Some(cmd.args),
            _ => None,
        };
        let all = parse(&[]).unwrap();
        assert_eq!(all.kinds(), Kind::ALL.to_vec());
        assert_eq!(all.duration, std::time::Duration::from_secs(30));
        assert_eq!((all.subscribers, all.sizes.flood_topics), (500, 70_000));
        assert_eq!(all.sizes.topic_flood, 2, "--topic-floods");
        let two = parse(&["--attacks", "garbage,slowloris,garbage"]).unwrap();
        assert_eq!(two.kinds(), vec![Kind::Slowloris, Kind::Garbage]);
        assert!(parse(&["--attacks", "nope"]).is_none());
        assert!(parse(&["--slowloris", "5000"]).is_none());
    }
}
