//! Worker processes: a client group in a child process, driven over JSON lines.
//!
//! One process holds at most about 19,900 sockets here (the open-file limit is 20,000), so a
//! run with more subscribers starts copies of itself with the hidden `worker` command. The
//! parent writes one request line to a worker's stdin and reads one reply line from its stdout;
//! a worker whose stdin closes (the parent died) closes its connections and exits.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::client::tally::Tally;
use crate::client::{ClientGroup, GroupSpec, Status};
use crate::error::Error;

/// How long a worker may take to answer.
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

static PROGRAM: OnceLock<PathBuf> = OnceLock::new();

/// Runs child processes (workers, the floor server) from `path` instead of this program; for
/// tests, whose own program is the test harness.
pub fn use_program(path: impl Into<PathBuf>) {
    let _ = PROGRAM.set(path.into());
}

/// The program child processes run: this one unless [`use_program`] said otherwise.
pub fn program() -> Result<PathBuf, Error> {
    match PROGRAM.get() {
        Some(path) => Ok(path.clone()),
        None => std::env::current_exe().map_err(Error::io("finding this program")),
    }
}

/// A request to a worker.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Start the client group; must come first.
    Start {
        /// What the group does.
        spec: GroupSpec,
    },
    /// Attempt this many connections this round.
    Connect {
        /// Connections, in total this round.
        target: usize,
    },
    /// Report counts.
    Status,
    /// Report the worker's CPU time.
    Cpu,
    /// Forget counts and latencies.
    Reset,
    /// Close all connections.
    Close,
    /// Hand over the tally for `expected` events per subscriber.
    Report {
        /// Events each subscriber should have received.
        expected: u64,
    },
    /// Close everything and exit.
    Exit,
}

/// A worker's answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// Done.
    Ok,
    /// Counts.
    Status {
        /// The worker's counts.
        status: Status,
    },
    /// CPU time.
    Cpu {
        /// Ticks of user and system time.
        ticks: u64,
    },
    /// The tally.
    Report {
        /// The worker's tally.
        tally: Box<Tally>,
    },
    /// The request failed.
    Error {
        /// Why.
        message: String,
    },
}

/// Serves requests from stdin until `Exit` or the end of input: the `worker` command.
pub fn serve() -> Result<(), Error> {
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    let mut group: Option<ClientGroup> = None;
    for line in stdin.lock().lines() {
        let line = line.map_err(Error::io("reading a request"))?;
        let reply = match serde_json::from_str::<Request>(&line) {
            Err(e) => Reply::Error {
                message: format!("bad request: {e}"),
            },
            Ok(Request::Exit) => break,
            Ok(request) => answer(&mut group, request),
        };
        let mut text = serde_json::to_string(&reply).unwrap_or_else(|e| {
            format!(r#"{{"reply":"error","message":"unserializable reply: {e}"}}"#)
        });
        text.push('\n');
        stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
            .map_err(Error::io("writing a reply"))?;
    }
    Ok(())
}

fn answer(group: &mut Option<ClientGroup>, request: Request) -> Reply {
    let result = match (request, group.as_ref()) {
        (Request::Start { spec }, _) => ClientGroup::start(&spec).map(|started| {
            *group = Some(started);
            Reply::Ok
        }),
        (_, None) => Err(Error::Worker("not started".into())),
        (Request::Connect { target }, Some(g)) => g.connect(target).map(|()| Reply::Ok),
        (Request::Status, Some(g)) => Ok(Reply::Status { status: g.status() }),
        (Request::Cpu, Some(_)) => Ok(Reply::Cpu {
            ticks: crate::probe::own_cpu_ticks(),
        }),
        (Request::Reset, Some(g)) => g.reset().map(|()| Reply::Ok),
        (Request::Close, Some(g)) => g.close().map(|()| Reply::Ok),
        (Request::Report { expected }, Some(g)) => g.report(expected).map(|tally| Reply::Report {
            tally: Box::new(tally),
        }),
        (Request::Exit, Some(_)) => Ok(Reply::Ok),
    };
    result.unwrap_or_else(|e| Reply::Error {
        message: e.to_string(),
    })
}

struct Pipe {
    stdin: ChildStdin,
    replies: Receiver<String>,
}

/// A worker process, seen from the parent.
pub struct Remote {
    child: Child,
    pipe: Mutex<Pipe>,
}

impl Remote {
    /// Starts a worker running `spec`.
    pub fn spawn(spec: &GroupSpec) -> Result<Remote, Error> {
        let mut child = Command::new(program()?)
            .arg("worker")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(Error::io("starting a worker"))?;
        let (stdin, stdout) = match (child.stdin.take(), child.stdout.take()) {
            (Some(stdin), Some(stdout)) => (stdin, stdout),
            _ => return Err(Error::Worker("no pipes".into())),
        };
        // A reader thread turns the reply stream into a channel, so every wait has a timeout.
        let (send, replies) = mpsc::channel();
        std::thread::Builder::new()
            .name("worker-replies".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if send.send(line).is_err() {
                        break;
                    }
                }
            })
            .map_err(Error::io("starting a reader thread"))?;
        let remote = Remote {
            child,
            pipe: Mutex::new(Pipe { stdin, replies }),
        };
        remote.expect_ok(&Request::Start { spec: spec.clone() })?;
        Ok(remote)
    }

    /// Sends `request` and waits for the reply.
    pub fn call(&self, request: &Request) -> Result<Reply, Error> {
        let mut pipe = self
            .pipe
            .lock()
            .map_err(|_| Error::Worker("pipe lock poisoned".into()))?;
        let mut line = serde_json::to_string(request)
            .map_err(|e| Error::Worker(format!("encoding a request: {e}")))?;
        line.push('\n');
        pipe.stdin
            .write_all(line.as_bytes())
            .and_then(|()| pipe.stdin.flush())
            .map_err(Error::io("writing to a worker"))?;
        let reply = pipe
            .replies
            .recv_timeout(REPLY_TIMEOUT)
            .map_err(|_| Error::Worker("no reply (it may have died)".into()))?;
        match serde_json::from_str(&reply) {
            Ok(Reply::Error { message }) => Err(Error::Worker(message)),
            Ok(reply) => Ok(reply),
            Err(e) => Err(Error::Worker(format!("bad reply: {e}"))),
        }
    }

    /// Sends `request`, expecting `Ok`.
    pub fn expect_ok(&self, request: &Request) -> Result<(), Error> {
        match self.call(request)? {
            Reply::Ok => Ok(()),
            other => Err(Error::Worker(format!("unexpected reply {other:?}"))),
        }
    }

    /// The worker's counts.
    pub fn status(&self) -> Result<Status, Error> {
        match self.call(&Request::Status)? {
            Reply::Status { status } => Ok(status),
            other => Err(Error::Worker(format!("unexpected reply {other:?}"))),
        }
    }

    /// The worker's CPU time, ticks.
    pub fn cpu_ticks(&self) -> Result<u64, Error> {
        match self.call(&Request::Cpu)? {
            Reply::Cpu { ticks } => Ok(ticks),
            other => Err(Error::Worker(format!("unexpected reply {other:?}"))),
        }
    }

    /// The worker's tally.
    pub fn report(&self, expected: u64) -> Result<Tally, Error> {
        match self.call(&Request::Report { expected })? {
            Reply::Report { tally } => Ok(*tally),
            other => Err(Error::Worker(format!("unexpected reply {other:?}"))),
        }
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        if let Ok(pipe) = self.pipe.get_mut() {
            let _ = pipe.stdin.write_all(b"{\"op\":\"exit\"}\n");
            let _ = pipe.stdin.flush();
        }
        // Give it a moment to close its sockets, then make sure it is gone.
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
