//! Hostile clients: nine kinds of misbehaviour, each a small loop bounded in time and count,
//! from a loopback source address of its own (127.0.0.60 for the first kind, then .61, ...),
//! so that the server's per-address limit falls on them and not on the good clients.
//!
//! `wire` builds their bytes and parses the status they get back; `socket` opens bound
//! sockets and reads answers; `hold` has the kinds that keep connections open (slowloris,
//! stalled bodies, unread pipelines, subscribers that never read) and `churn` those that
//! repeat a short exchange (topic floods, resumes, subscribe-and-leave, garbage, connect
//! floods). Each thread counts what it got in a [`Counts`]; [`Attackers::finish`] adds them
//! up by kind.

mod churn;
mod hold;
pub mod socket;
pub mod wire;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::addr::Spread;
use crate::cli;
use crate::error::Error;

/// The address slot of the first kind: 127.0.0.60 (see [`Spread::source`]).
pub const FIRST_SLOT: usize = 59;
/// Iterations of one attacker loop at most, whatever the time left.
pub const MAX_ITERATIONS: u64 = 1_000_000;

/// A kind of hostile client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Request heads sent one byte a second.
    Slowloris,
    /// 1 MiB form publishes naming 70,000 topics, back to back.
    TopicFlood,
    /// Publish bodies that declare 1 MiB, send part of it and stall.
    StalledBody,
    /// Pipelined `GET /` whose answers are never read.
    UnreadPipeline,
    /// Subscribers of the good clients' topic that never read.
    NeverRead,
    /// Resumes from an unknown id on 64 topics, repeatedly.
    ResumeUnknown,
    /// Subscribes to 64 new topics and leaves at once, repeatedly.
    SubscribeLeave,
    /// Noise instead of a request.
    Garbage,
    /// Connections opened past the per-address limit and closed, as fast as possible.
    ConnectFlood,
    /// Subscribes and publishes with forged tokens, in turn.
    BadToken,
}

impl Kind {
    /// Every kind, in address order.
    pub const ALL: [Kind; 10] = [
        Kind::Slowloris,
        Kind::TopicFlood,
        Kind::StalledBody,
        Kind::UnreadPipeline,
        Kind::NeverRead,
        Kind::ResumeUnknown,
        Kind::SubscribeLeave,
        Kind::Garbage,
        Kind::ConnectFlood,
        Kind::BadToken,
    ];

    /// Its name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Slowloris => "slowloris",
            Kind::TopicFlood => "topic-flood",
            Kind::StalledBody => "stalled-body",
            Kind::UnreadPipeline => "unread-pipeline",
            Kind::NeverRead => "never-read",
            Kind::ResumeUnknown => "resume-unknown",
            Kind::SubscribeLeave => "subscribe-leave",
            Kind::Garbage => "garbage",
            Kind::ConnectFlood => "connect-flood",
            Kind::BadToken => "bad-token",
        }
    }

    /// Its source address for a `target`: 127.0.0.60 + its place in [`Kind::ALL`] on IPv4
    /// loopback, unbound otherwise.
    pub fn source(self, target: IpAddr) -> Option<IpAddr> {
        let place = Kind::ALL.iter().position(|&k| k == self).unwrap_or(0);
        Spread::new([target], 1).source(FIRST_SLOT + place)
    }
}

/// How big each kind is: `hostile`'s flags.
#[derive(Debug, Clone, Serialize, clap::Args)]
pub struct Sizes {
    /// Slowloris connections (request heads one byte a second).
    #[arg(long, default_value_t = 200, value_parser = cli::count(1, 900))]
    pub slowloris: usize,
    /// Topic flood connections, each sending publishes back to back.
    #[arg(long = "topic-floods", default_value_t = 2, value_parser = cli::count(1, 16))]
    pub topic_flood: usize,
    /// Topic names in one topic flood publish.
    #[arg(long, default_value_t = 70_000, value_parser = cli::count(65, 1_000_000))]
    pub flood_topics: usize,
    /// The server's largest publish body: a topic flood body's size, and what a stalled
    /// body declares.
    #[arg(long, default_value_t = 1 << 20, value_parser = cli::count(1024, 64 << 20))]
    pub body_bytes: usize,
    /// Stalled publish bodies held at once.
    #[arg(long, default_value_t = 100, value_parser = cli::count(1, 900))]
    pub stalled_bodies: usize,
    /// Bytes of its body a stalled publish sends before it stalls.
    #[arg(long, default_value_t = 65_536, value_parser = cli::count(0, 64 << 20))]
    pub stalled_sent: usize,
    /// Connections pipelining `GET /` without reading the answers.
    #[arg(long, default_value_t = 50, value_parser = cli::count(1, 900))]
    pub unread_pipelines: usize,
    /// Subscribers of the good clients' topic that never read.
    #[arg(long, default_value_t = 200, value_parser = cli::count(1, 900))]
    pub never_read: usize,
    /// Loops resuming from an unknown id on 64 topics.
    #[arg(long, default_value_t = 2, value_parser = cli::count(1, 16))]
    pub resumes: usize,
    /// Loops subscribing to 64 new topics and leaving at once.
    #[arg(long, default_value_t = 2, value_parser = cli::count(1, 16))]
    pub subscribe_leaves: usize,
    /// Loops sending garbage instead of requests.
    #[arg(long, default_value_t = 2, value_parser = cli::count(1, 16))]
    pub garbage: usize,
    /// Connections a connect flood opens from its address before closing them all (more than
    /// the server's per-address limit, 1,000 by default, to be refused).
    #[arg(long, default_value_t = 2000, value_parser = cli::count(1, 20_000))]
    pub connect_flood: usize,
    /// Exchanges per second of one resume, subscribe-leave or garbage loop; 0 is as fast as
    /// the answers come.
    #[arg(long, default_value_t = 100.0, value_parser = cli::rate(0.0, 100_000.0))]
    pub churn_rate: f64,
}

/// What the attackers of one kind did and got.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    /// Connections opened.
    pub connections: u64,
    /// Connections that could not be opened.
    pub connect_failed: u64,
    /// Requests (or heads, bodies, noise) written whole, or begun for the slow kinds.
    pub requests: u64,
    /// Answers by status code.
    pub statuses: BTreeMap<u16, u64>,
    /// Connections the server closed or reset without an answer.
    pub cut: u64,
    /// Answers waited for in vain.
    pub no_answer: u64,
    /// `gap` events read after a resume.
    pub gaps: u64,
    /// Connections still open when the attacker stopped.
    pub open_at_end: u64,
    /// Bytes written.
    pub bytes_sent: u64,
    /// Bytes read.
    pub bytes_received: u64,
    /// The first unexpected error.
    pub first_error: Option<String>,
}

impl Counts {
    /// Counts one answer with `status`.
    pub fn status(&mut self, status: u16) {
        *self.statuses.entry(status).or_default() += 1;
    }

    /// Keeps the first error's text.
    pub fn error(&mut self, what: &str, e: impl std::fmt::Display) {
        if self.first_error.is_none() {
            self.first_error = Some(format!("{what}: {e}"));
        }
    }

    /// Adds `other` into this one.
    pub fn add(&mut self, other: &Counts) {
        self.connections += other.connections;
        self.connect_failed += other.connect_failed;
        self.requests += other.requests;
        for (&status, &n) in &other.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
        self.cut += other.cut;
        self.no_answer += other.no_answer;
        self.gaps += other.gaps;
        self.open_at_end += other.open_at_end;
        self.bytes_sent += other.bytes_sent;
        self.bytes_received += other.bytes_received;
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
    }
}

/// What one kind got, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The kind.
    pub kind: Kind,
    /// Its source address.
    pub source: Option<IpAddr>,
    /// Its loops, added up.
    pub counts: Counts,
}

/// Where and how long attackers run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The server.
    pub target: SocketAddr,
    /// The `Host` header.
    pub host: String,
    /// The path and query good subscribers use (never-read subscribers use it too).
    pub subscribe_path: String,
    /// The publish path.
    pub publish_path: String,
    /// When every attacker stops by itself.
    pub until: Instant,
    /// The sizes.
    pub sizes: Sizes,
}

/// What every attacker thread is given.
#[derive(Clone)]
pub(crate) struct Context {
    pub(crate) plan: Arc<Plan>,
    pub(crate) source: Option<IpAddr>,
    pub(crate) stop: Arc<AtomicBool>,
}

impl Context {
    /// Whether the attacker should stop.
    pub(crate) fn done(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || Instant::now() >= self.plan.until
    }

    /// Sleeps `d` or until stopped, in steps short enough to notice.
    pub(crate) fn sleep(&self, d: Duration) {
        let end = Instant::now() + d;
        while !self.done() {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            thread::sleep(left.min(Duration::from_millis(50)));
        }
    }
}

/// Running attackers.
pub struct Attackers {
    stop: Arc<AtomicBool>,
    threads: Vec<(Kind, Option<IpAddr>, JoinHandle<Counts>)>,
}

/// Starts the attackers of `kinds`.
pub fn launch(plan: Plan, kinds: &[Kind]) -> Result<Attackers, Error> {
    let plan = Arc::new(plan);
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for &kind in kinds {
        let source = kind.source(plan.target.ip());
        let context = Context {
            plan: plan.clone(),
            source,
            stop: stop.clone(),
        };
        let s = &plan.sizes;
        let loops = match kind {
            Kind::TopicFlood => s.topic_flood,
            Kind::ResumeUnknown => s.resumes,
            Kind::SubscribeLeave => s.subscribe_leaves,
            Kind::Garbage => s.garbage,
            _ => 1,
        };
        for lane in 0..loops {
            let context = context.clone();
            let body: Box<dyn FnOnce() -> Counts + Send> = match kind {
                Kind::Slowloris => Box::new(move || hold::slowloris(&context)),
                Kind::StalledBody => Box::new(move || hold::stalled_body(&context)),
                Kind::UnreadPipeline => Box::new(move || hold::unread_pipeline(&context)),
                Kind::NeverRead => Box::new(move || hold::never_read(&context)),
                Kind::TopicFlood => Box::new(move || churn::topic_flood(&context)),
                Kind::ResumeUnknown => Box::new(move || churn::resume_unknown(&context, lane)),
                Kind::SubscribeLeave => Box::new(move || churn::subscribe_leave(&context, lane)),
                Kind::Garbage => Box::new(move || churn::garbage(&context, lane)),
                Kind::ConnectFlood => Box::new(move || churn::connect_flood(&context)),
                Kind::BadToken => Box::new(move || churn::bad_token(&context)),
            };
            let join = thread::Builder::new()
                .name(format!("{}-{lane}", kind.name()))
                .spawn(body)
                .map_err(Error::io("starting an attacker thread"))?;
            threads.push((kind, source, join));
        }
    }
    Ok(Attackers { stop, threads })
}

impl Attackers {
    /// Stops every attacker (those still going close their connections) and adds up what
    /// each kind got.
    pub fn finish(self) -> Vec<Outcome> {
        self.stop.store(true, Ordering::Relaxed);
        let mut outcomes: Vec<Outcome> = Vec::new();
        for (kind, source, join) in self.threads {
            let counts = join.join().unwrap_or_else(|_| Counts {
                first_error: Some("the attacker thread panicked".into()),
                ..Counts::default()
            });
            match outcomes.iter_mut().find(|o| o.kind == kind) {
                Some(outcome) => outcome.counts.add(&counts),
                None => outcomes.push(Outcome {
                    kind,
                    source,
                    counts,
                }),
            }
        }
        outcomes
    }
}

#[cfg(test)]
mod tests {
    use super::{Counts, Kind};
    use clap::ValueEnum;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    #[test]
    fn each_kind_has_its_own_address_and_name() {
        let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let sources: Vec<_> = Kind::ALL.iter().map(|k| k.source(local)).collect();
        assert_eq!(sources[0], Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 60))));
        assert_eq!(sources[8], Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 68))));
        assert_eq!(Kind::Garbage.source(IpAddr::V6(Ipv6Addr::LOCALHOST)), None);
        for kind in Kind::ALL {
            let parsed = Kind::from_str(kind.name(), false).unwrap();
            assert_eq!(parsed, kind);
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::Value::String(kind.name().into())
            );
        }
    }

    #[test]
    fn counts_add_up() {
        let mut a = Counts::default();
        a.status(400);
        a.connections = 2;
        let mut b = Counts::default();
        b.status(400);
        b.status(429);
        b.error("connect", "refused");
        a.add(&b);
        assert_eq!(a.statuses.get(&400), Some(&2));
        assert_eq!(a.statuses.get(&429), Some(&1));
        assert_eq!(a.connections, 2);
        assert_eq!(a.first_error.as_deref(), Some("connect: refused"));
    }
}
