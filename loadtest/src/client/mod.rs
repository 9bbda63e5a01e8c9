//! The subscriber client of one process: a group of mio threads sharing its connections.
//!
//! `sse`, `chunked` and `seq` parse and account with a few bytes per connection and do no IO;
//! `request` builds the request heads (with a subscriber's token, if any); `conn` is one
//! connection; `thread` runs a poll over a share of them; `tally` is what a thread counted.
//! [`ClientGroup`] starts the threads, sets their targets and collects their tallies; `fleet`
//! puts several groups (processes) together.

pub mod chunked;
pub mod conn;
pub mod request;
pub mod seq;
pub mod sse;
pub mod tally;
pub mod thread;

use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use mio::{Poll, Waker};
use serde::{Deserialize, Serialize};

use self::request::Requests;
use self::tally::Tally;
use self::thread::{ClientThread, Command, Counters, Plan, WAKER};
use crate::addr::Spread;
use crate::error::Error;
use crate::target::Url;
use crate::token::{TokenFile, Tokens};

/// How long a thread may take to answer a command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// What one process's client group does; sent to worker processes as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupSpec {
    /// Where subscribers connect: run connection `k` to `urls[k mod n]`.
    pub urls: Vec<Url>,
    /// Run index of this group's first connection (for source addresses).
    pub first: usize,
    /// Client threads.
    pub threads: usize,
    /// This group's connections per second.
    pub rate: f64,
    /// Connections per source address.
    pub per_address: usize,
    /// Sequences with their own latency histogram (`single`).
    pub per_event: usize,
    /// Close connections with a reset instead of a FIN.
    pub reset: bool,
    /// Tokens for the subscribers, read by each process from the file.
    #[serde(default)]
    pub tokens: Option<TokenFile>,
}

/// The counts of one or more groups at one moment.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Status {
    /// Connections attempted this round.
    pub attempted: u64,
    /// Connections that got their response head this round.
    pub headed: u64,
    /// Connections that failed before their head this round.
    pub failed: u64,
    /// Sockets open now.
    pub open: u64,
    /// Connections streaming now.
    pub streaming: u64,
    /// First copies of events received since the last reset.
    pub delivered: u64,
    /// Streams the server closed, ever.
    pub closed: u64,
}

impl Status {
    /// Adds `other` into this one.
    pub fn add(&mut self, other: &Status) {
        self.attempted += other.attempted;
        self.headed += other.headed;
        self.failed += other.failed;
        self.open += other.open;
        self.streaming += other.streaming;
        self.delivered += other.delivered;
        self.closed += other.closed;
    }

    /// Connections of this round whose fate is known.
    pub fn settled(&self) -> u64 {
        self.headed + self.failed
    }
}

struct Lane {
    commands: Sender<Command>,
    waker: Arc<Waker>,
    counters: Arc<Counters>,
    join: Option<JoinHandle<()>>,
}

/// The client threads of this process.
pub struct ClientGroup {
    lanes: Vec<Lane>,
}

impl ClientGroup {
    /// Starts `spec.threads` threads with no connections yet.
    pub fn start(spec: &GroupSpec) -> Result<ClientGroup, Error> {
        let threads = spec.threads.max(1);
        let tokens = match &spec.tokens {
            Some(file) => Some((Tokens::read(&file.path)?, file.place)),
            None => None,
        };
        let requests = Requests::new(&spec.urls, tokens)?;
        let spread = Spread::new(spec.urls.iter().map(|url| url.addr.ip()), spec.per_address);
        let mut lanes = Vec::with_capacity(threads);
        for offset in 0..threads {
            let poll = Poll::new().map_err(Error::io("creating a poll"))?;
            let waker = Arc::new(
                Waker::new(poll.registry(), WAKER).map_err(Error::io("creating a waker"))?,
            );
            let counters = Arc::new(Counters::default());
            let (commands, receiver) = mpsc::channel();
            let plan = Plan {
                requests: requests.clone(),
                stride: threads,
                offset,
                first: spec.first,
                spread,
                rate: spec.rate / threads as f64,
                per_event: spec.per_event,
                reset: spec.reset,
            };
            let client = ClientThread::new(plan, poll, receiver, counters.clone());
            let join = std::thread::Builder::new()
                .name(format!("client-{offset}"))
                .spawn(move || client.run())
                .map_err(Error::io("starting a client thread"))?;
            lanes.push(Lane {
                commands,
                waker,
                counters,
                join: Some(join),
            });
        }
        Ok(ClientGroup { lanes })
    }

    /// Sends a command built by `make` to every thread and waits for every answer.
    fn ask<T>(
        &self,
        mut make: impl FnMut(mpsc::SyncSender<T>) -> Command,
    ) -> Result<Vec<T>, Error> {
        let mut replies = Vec::with_capacity(self.lanes.len());
        for lane in &self.lanes {
            let (reply, answer) = mpsc::sync_channel(1);
            lane.commands
                .send(make(reply))
                .map_err(|_| Error::Worker("a client thread ended".into()))?;
            let _ = lane.waker.wake();
            replies.push(answer);
        }
        replies
            .into_iter()
            .map(|answer| {
                answer
                    .recv_timeout(COMMAND_TIMEOUT)
                    .map_err(|_| Error::Timeout("a client thread did not answer".into()))
            })
            .collect()
    }

    /// Sets how many connections this group attempts in this round, in total.
    pub fn connect(&self, target: usize) -> Result<(), Error> {
        let threads = self.lanes.len();
        let shares: Vec<usize> = (0..threads)
            .map(|t| (target + threads - 1 - t) / threads)
            .collect();
        let mut next = 0;
        self.ask(|reply| {
            let share = shares.get(next).copied().unwrap_or(0);
            next += 1;
            Command::Target(share, reply)
        })
        .map(drop)
    }

    /// Forgets counts and latencies.
    pub fn reset(&self) -> Result<(), Error> {
        self.ask(Command::Reset).map(drop)
    }

    /// Closes every connection and starts a new round.
    pub fn close(&self) -> Result<(), Error> {
        self.ask(Command::Close).map(drop)
    }

    /// The merged tally, lost events settled for `expected` events per subscriber.
    pub fn report(&self, expected: u64) -> Result<Tally, Error> {
        let tallies = self.ask(|reply| Command::Report(expected, reply))?;
        let mut total = Tally::new(0);
        for tally in &tallies {
            total.merge(tally);
        }
        Ok(total)
    }

    /// The counts now.
    pub fn status(&self) -> Status {
        let mut status = Status::default();
        for lane in &self.lanes {
            let c = &lane.counters;
            status.attempted += c.attempted.load(Ordering::Relaxed);
            status.headed += c.headed.load(Ordering::Relaxed);
            status.failed += c.failed.load(Ordering::Relaxed);
            status.open += c.open.load(Ordering::Relaxed);
            status.streaming += c.streaming.load(Ordering::Relaxed);
            status.delivered += c.delivered.load(Ordering::Relaxed);
            status.closed += c.closed.load(Ordering::Relaxed);
        }
        status
    }
}

impl Drop for ClientGroup {
    fn drop(&mut self) {
        for lane in &self.lanes {
            let _ = lane.commands.send(Command::Stop);
            let _ = lane.waker.wake();
        }
        for lane in &mut self.lanes {
            if let Some(join) = lane.join.take() {
                let _ = join.join();
            }
        }
    }
}
