//! One pipelined publish connection, and a lane of them that reopens a connection once it has
//! failed.
//!
//! The thread that opens a [`Pipeline`] is its writer: it writes requests and, when its window
//! is full, parks until the pipeline's reader thread has matched an answer to its request's write
//! time (the reader unparks it after every answer and when it ends). Every request written
//! counts as sent, whatever happens to the connection next; those never answered `2xx` count as
//! failed when the pipeline is finished.

use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::http::{read_response, IO_TIMEOUT};
use crate::latency::{self, Hist};

/// How long the answers to the last requests, or room in a full window, may take.
pub const ANSWER_LIMIT: Duration = Duration::from_secs(30);

/// What the requests of one or more pipelines came to.
pub struct Outcome {
    /// Requests written.
    pub requests: u64,
    /// Requests answered `2xx`.
    pub requests_ok: u64,
    /// Events in requests answered `2xx`.
    pub events_ok: u64,
    /// Events in requests not answered `2xx`, or never written.
    pub events_failed: u64,
    /// Round trips of the requests answered `2xx` (written to answer read), microseconds.
    pub round_trips: Hist,
    /// The first failure.
    pub first_error: Option<String>,
    /// When the first request was written.
    pub first_write: Option<Instant>,
    /// When the last answer was read.
    pub last_answer: Option<Instant>,
}

impl Outcome {
    /// Nothing yet.
    pub fn new() -> Outcome {
        Outcome {
            requests: 0,
            requests_ok: 0,
            events_ok: 0,
            events_failed: 0,
            round_trips: latency::histogram(),
            first_error: None,
            first_write: None,
            last_answer: None,
        }
    }

    /// Keeps `error` if it is the first failure.
    pub fn note(&mut self, error: impl FnOnce() -> String) {
        self.first_error.get_or_insert_with(error);
    }

    /// Adds `other` into this one.
    pub fn add(&mut self, other: Outcome) {
        self.requests += other.requests;
        self.requests_ok += other.requests_ok;
        self.events_ok += other.events_ok;
        self.events_failed += other.events_failed;
        latency::merge(&mut self.round_trips, &other.round_trips);
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.first_write = match (self.first_write, other.first_write) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_answer = self.last_answer.max(other.last_answer);
    }
}

impl Default for Outcome {
    fn default() -> Self {
        Outcome::new()
    }
}

/// A request written: when, and how many events it carries.
struct Written {
    at: Instant,
    events: u64,
}

/// One keep-alive connection with requests in flight.
struct Pipeline {
    /// The socket the writer writes to; the reader reads a clone of it.
    stream: TcpStream,
    /// Write times, in order, for the reader; dropped to end the reader.
    written: Option<Sender<Written>>,
    /// Requests written.
    sent: u64,
    /// Events in them.
    sent_events: u64,
    /// When the first request was written.
    first_write: Option<Instant>,
    /// Requests answered, whatever the status.
    answered: Arc<AtomicU64>,
    /// The reader, which returns what the answers said.
    reader: thread::JoinHandle<Outcome>,
}

impl Pipeline {
    /// Connects to `addr`; the calling thread becomes the writer.
    fn open(addr: SocketAddr) -> Result<Pipeline, Error> {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
            .map_err(Error::io(format!("connecting to {addr}")))?;
        let _ = stream.set_nodelay(true);
        let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
        let mut reading = stream.try_clone().map_err(Error::io("cloning a socket"))?;
        let _ = reading.set_read_timeout(Some(IO_TIMEOUT));
        let (written, times) = mpsc::channel::<Written>();
        let answered = Arc::new(AtomicU64::new(0));
        let counted = answered.clone();
        let writer = thread::current();
        let reader = thread::spawn(move || {
            let mut outcome = Outcome::new();
            let mut buf = Vec::new();
            while let Ok(request) = times.recv() {
                match read_response(&mut reading, &mut buf) {
                    Ok((response, keep)) => {
                        let now = Instant::now();
                        outcome.last_answer = Some(now);
                        if (200..300).contains(&response.status) {
                            outcome.requests_ok += 1;
                            outcome.events_ok += request.events;
                            let rtt = (now - request.at).as_micros() as u64;
                            outcome.round_trips.saturating_record(rtt);
                        } else {
                            outcome.note(|| {
                                format!(
                                    "publish answered {}: {}",
                                    response.status,
                                    String::from_utf8_lossy(&response.body)
                                )
                            });
                        }
                        // Release: the writer that wakes reads the count after this.
                        counted.fetch_add(1, Ordering::Release);
                        writer.unpark();
                        if !keep {
                            break;
                        }
                    }
                    Err(e) => {
                        outcome.note(|| e.into_error().to_string());
                        break;
                    }
                }
            }
            writer.unpark();
            outcome
        });
        Ok(Pipeline {
            stream,
            written: Some(written),
            sent: 0,
            sent_events: 0,
            first_write: None,
            answered,
            reader,
        })
    }

    /// Requests written and not answered yet.
    fn in_flight(&self) -> u64 {
        self.sent - self.answered.load(Ordering::Acquire)
    }

    /// Waits until fewer than `limit` requests are in flight; false if the reader ended first
    /// (the connection failed or closed) or `deadline` passed.
    fn wait_below(&self, limit: u64, deadline: Instant) -> bool {
        loop {
            if self.in_flight() < limit {
                return true;
            }
            let now = Instant::now();
            if self.reader.is_finished() || now >= deadline {
                return false;
            }
            thread::park_timeout(deadline - now);
        }
    }

    /// Writes `raw`, requests of `events[i]` events each. They count as sent even if the
    /// write fails; an error means this connection is done for.
    fn send(&mut self, raw: &[u8], events: &[u64]) -> Result<(), Error> {
        self.sent += events.len() as u64;
        self.sent_events += events.iter().sum::<u64>();
        self.stream
            .write_all(raw)
            .map_err(Error::io("writing a publish"))?;
        let at = Instant::now();
        self.first_write.get_or_insert(at);
        let closed = || Error::Http("the publish connection closed".into());
        let written = self.written.as_ref().ok_or_else(closed)?;
        for &events in events {
            // With the reader gone (the server closed after an answer), no answer will come.
            written.send(Written { at, events }).map_err(|_| closed())?;
        }
        Ok(())
    }

    /// Waits for the outstanding answers (bounded) and adds up into `into`; the events of
    /// requests not answered `2xx` failed.
    fn finish(mut self, into: &mut Outcome) {
        // The reader ends once it has read the answers to what it was told of.
        self.written = None;
        self.wait_below(1, Instant::now() + ANSWER_LIMIT);
        let unanswered = self.in_flight();
        if unanswered > 0 {
            into.note(|| {
                format!("{unanswered} publishes still unanswered {ANSWER_LIMIT:?} after the last")
            });
        }
        // Unblocks a reader still waiting for an answer.
        let _ = self.stream.shutdown(Shutdown::Both);
        let mut outcome = self.reader.join().unwrap_or_default();
        outcome.requests = self.sent;
        outcome.events_failed = self.sent_events.saturating_sub(outcome.events_ok);
        outcome.first_write = self.first_write;
        into.add(outcome);
    }
}

/// One publish connection of a run, opened on first use and again after it failed.
pub struct Lane {
    /// The server.
    addr: SocketAddr,
    /// The connection now, if open.
    pipe: Option<Pipeline>,
    /// What the connections so far came to.
    outcome: Outcome,
}

impl Lane {
    /// A lane to `addr`; the calling thread is its writer.
    pub fn new(addr: SocketAddr) -> Lane {
        Lane {
            addr,
            pipe: None,
            outcome: Outcome::new(),
        }
    }

    /// How many more requests may be written with at most `window` in flight, once there is
    /// room (waiting for answers, opening a connection, or replacing one whose answers
    /// stopped). 0 if no connection could be opened.
    pub fn room(&mut self, window: u64) -> u64 {
        loop {
            let pipe = match &mut self.pipe {
                Some(pipe) => pipe,
                None => match Pipeline::open(self.addr) {
                    Ok(opened) => self.pipe.insert(opened),
                    Err(e) => {
                        self.outcome.note(|| e.to_string());
                        return 0;
                    }
                },
            };
            if pipe.wait_below(window, Instant::now() + ANSWER_LIMIT) {
                return window.saturating_sub(pipe.in_flight());
            }
            self.retire();
        }
    }

    /// Writes `raw`, requests of `events[i]` events each, on the open connection; if that
    /// fails, the connection is finished and the next [`Lane::room`] opens another.
    pub fn send(&mut self, raw: &[u8], events: &[u64]) {
        let Some(pipe) = self.pipe.as_mut() else {
            self.fail(events.iter().sum());
            return;
        };
        if let Err(e) = pipe.send(raw, events) {
            self.outcome.note(|| e.to_string());
            self.retire();
        }
    }

    /// Counts `events` that were never written as failed.
    pub fn fail(&mut self, events: u64) {
        self.outcome.events_failed += events;
    }

    /// Waits for the last answers (bounded) and returns what the lane came to.
    pub fn finish(mut self) -> Outcome {
        self.retire();
        self.outcome
    }

    fn retire(&mut self) {
        if let Some(pipe) = self.pipe.take() {
            pipe.finish(&mut self.outcome);
        }
    }
}
