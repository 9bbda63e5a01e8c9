//! The publisher: events stamped with their sequence and send time, on one keep-alive
//! connection, one at a time (`single`) or pipelined at a steady rate on a thread of their own
//! (`fanout`), so that a server slow to answer a publish cannot slow the rate down.
//!
//! An event's data is `<seq> <unix-nanos> <stream>`, padded with ` xxx...` to `size` bytes: its
//! number within its stream (the publishing connection, always 0 here), and a stamp taken just
//! before the request is written, so latency includes the server's publish path.

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::client::thread::now_nanos;
use crate::error::Error;
use crate::http::{read_response, HttpConn, IO_TIMEOUT};
use crate::latency::{self, Hist, Latency};
use crate::target::Target;
use crate::ui::Ui;

/// Makes the data of event `seq` of `stream` stamped `nanos`, at least `size` bytes.
pub fn event_data(seq: u64, nanos: u64, stream: u8, size: usize) -> String {
    let mut data = format!("{seq} {nanos} {stream}");
    if data.len() < size {
        data.push(' ');
        data.extend(std::iter::repeat_n('x', size - data.len()));
    }
    data
}

/// Builds publish requests for one server.
#[derive(Debug, Clone)]
pub struct Requests {
    /// The request head up to `Content-Length: `.
    head: String,
    topic: String,
    target: Target,
    size: usize,
}

impl Requests {
    /// Requests for events of `size` bytes to `target`.
    pub fn new(target: &Target, size: usize) -> Requests {
        let publish = &target.publish;
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: {}\r\nContent-Length: ",
            publish.path(&target.topic),
            publish.url.host,
            publish.content_type
        );
        Requests {
            head,
            topic: target.topic.clone(),
            target: target.clone(),
            size,
        }
    }

    /// The request that publishes event `seq`, stamped now.
    pub fn event(&self, seq: u64) -> Vec<u8> {
        let data = event_data(seq, now_nanos(), 0, self.size);
        let body = self.target.publish.body(&self.topic, &data);
        let mut raw = String::with_capacity(self.head.len() + body.len() + 16);
        raw.push_str(&self.head);
        raw.push_str(&body.len().to_string());
        raw.push_str("\r\n\r\n");
        raw.push_str(&body);
        raw.into_bytes()
    }
}

/// Publishes events one at a time, waiting for each answer.
pub struct Publisher {
    conn: HttpConn,
    requests: Requests,
}

impl Publisher {
    /// A publisher of events of `size` bytes to `target`.
    pub fn new(target: &Target, size: usize) -> Publisher {
        Publisher {
            conn: HttpConn::new(target.publish.url.addr),
            requests: Requests::new(target, size),
        }
    }

    /// Publishes event `seq`; returns the round trip.
    pub fn publish(&mut self, seq: u64) -> Result<Duration, Error> {
        let started = Instant::now();
        let response = self.conn.send(&self.requests.event(seq))?;
        if !(200..300).contains(&response.status) {
            return Err(Error::Http(format!(
                "publish answered {}: {}",
                response.status,
                String::from_utf8_lossy(&response.body)
            )));
        }
        Ok(started.elapsed())
    }
}

/// What a paced run of publishes did.
#[derive(Debug, Clone, Serialize)]
pub struct Published {
    /// Events the server accepted.
    pub published: u64,
    /// Publishes that failed or were never answered.
    pub failed: u64,
    /// The first failure.
    pub first_error: Option<String>,
    /// From the first publish to the last request written, seconds.
    pub seconds: f64,
    /// Requests written per second.
    pub rate: f64,
    /// Publish round trips (request written to answer read).
    pub round_trip: Latency,
}

/// Requests written but not answered, at most: past it the publisher waits.
const MAX_IN_FLIGHT: u64 = 4096;
/// How long the answers to the last requests may take.
const ANSWER_LIMIT: Duration = Duration::from_secs(30);

/// Answers a reader thread counted.
struct Answers {
    ok: u64,
    round_trips: Hist,
    first_error: Option<String>,
}

/// One pipelined publish connection: the publisher writes requests on time, whatever the
/// answers' pace, and a reader thread matches answers to send times in order.
struct Pipeline {
    stream: TcpStream,
    sent_at: Option<Sender<Instant>>,
    sent: u64,
    answered: Arc<AtomicU64>,
    reader: thread::JoinHandle<Answers>,
}

impl Pipeline {
    fn open(addr: std::net::SocketAddr) -> Result<Pipeline, Error> {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
            .map_err(Error::io(format!("connecting to {addr}")))?;
        let _ = stream.set_nodelay(true);
        let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
        let mut reading = stream.try_clone().map_err(Error::io("cloning a socket"))?;
        let _ = reading.set_read_timeout(Some(IO_TIMEOUT));
        let (sent_at, times) = mpsc::channel::<Instant>();
        let answered = Arc::new(AtomicU64::new(0));
        let counted = answered.clone();
        let reader = thread::spawn(move || {
            let mut answers = Answers {
                ok: 0,
                round_trips: latency::histogram(),
                first_error: None,
            };
            let mut buf = Vec::new();
            while let Ok(sent) = times.recv() {
                match read_response(&mut reading, &mut buf) {
                    Ok((response, keep)) => {
                        counted.fetch_add(1, Ordering::Relaxed);
                        if (200..300).contains(&response.status) {
                            answers.ok += 1;
                            let rtt = sent.elapsed().as_micros() as u64;
                            answers.round_trips.saturating_record(rtt);
                        } else {
                            answers.first_error.get_or_insert_with(|| {
                                format!(
                                    "publish answered {}: {}",
                                    response.status,
                                    String::from_utf8_lossy(&response.body)
                                )
                            });
                        }
                        if !keep {
                            break;
                        }
                    }
                    Err(e) => {
                        answers
                            .first_error
                            .get_or_insert_with(|| e.into_error().to_string());
                        break;
                    }
                }
            }
            answers
        });
        Ok(Pipeline {
            stream,
            sent_at: Some(sent_at),
            sent: 0,
            answered,
            reader,
        })
    }

    fn in_flight(&self) -> u64 {
        self.sent - self.answered.load(Ordering::Relaxed)
    }

    fn send(&mut self, raw: &[u8]) -> Result<(), Error> {
        let sent_at = self
            .sent_at
            .as_ref()
            .ok_or_else(|| Error::Http("closed".into()))?;
        self.stream
            .write_all(raw)
            .map_err(Error::io("writing a publish"))?;
        // With the reader gone (the server closed after an answer), no answer will count
        // this request: the caller counts it failed, and `finish` must not count it again.
        sent_at
            .send(Instant::now())
            .map_err(|_| Error::Http("the publish connection closed".into()))?;
        self.sent += 1;
        Ok(())
    }

    /// Waits for the outstanding answers (bounded) and adds up; unanswered requests failed.
    fn finish(mut self, into: &mut Answers, failed: &mut u64) {
        self.sent_at = None;
        let deadline = Instant::now() + ANSWER_LIMIT;
        while self.in_flight() > 0 && Instant::now() < deadline && !self.reader.is_finished() {
            thread::sleep(Duration::from_millis(5));
        }
        let unanswered = self.in_flight();
        if unanswered > 0 {
            into.first_error.get_or_insert_with(|| {
                format!("{unanswered} publishes still unanswered {ANSWER_LIMIT:?} after the last")
            });
        }
        // Unblocks a reader still waiting for an answer.
        let _ = self.stream.shutdown(Shutdown::Both);
        if let Ok(answers) = self.reader.join() {
            into.ok += answers.ok;
            latency::merge(&mut into.round_trips, &answers.round_trips);
            if into.first_error.is_none() {
                into.first_error = answers.first_error;
            }
            *failed += self.sent - answers.ok;
        } else {
            *failed += self.sent;
        }
    }
}

/// How a paced run publishes.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Events per second.
    pub rate: f64,
    /// How long.
    pub duration: Duration,
    /// Keep-alive connections, used in turn. With more than one, events in flight together
    /// may reach the server in another order, and count as reordered.
    pub connections: usize,
}

/// Publishes at `pace` on a thread, pipelined on keep-alive connections (each reopened if
/// it closes); events are numbered from 0, and a failed publish still uses its number (it
/// counts as lost if it never arrives).
pub fn run_paced(
    requests: Requests,
    addr: std::net::SocketAddr,
    pace: Pace,
    ui: Ui,
) -> thread::JoinHandle<Published> {
    thread::spawn(move || {
        let events = (pace.rate * pace.duration.as_secs_f64()).ceil().max(1.0) as u64;
        let interval = Duration::from_secs_f64(1.0 / pace.rate);
        let bar = ui.bar(events, "publishing");
        let mut answers = Answers {
            ok: 0,
            round_trips: latency::histogram(),
            first_error: None,
        };
        let mut failed = 0;
        let mut pipes: Vec<Option<Pipeline>> = (0..pace.connections.max(1)).map(|_| None).collect();
        let start = Instant::now();
        let give_up = start + pace.duration + ANSWER_LIMIT;
        for seq in 0..events {
            let due = start + interval.mul_f64(seq as f64);
            let now = Instant::now();
            if due > now {
                thread::sleep(due - now);
            }
            bar.set_position(seq + 1);
            let slot = (seq % pipes.len() as u64) as usize;
            let Some(pipe) = pipes.get_mut(slot) else {
                continue;
            };
            if pipe.is_none() {
                match Pipeline::open(addr) {
                    Ok(opened) => *pipe = Some(opened),
                    Err(e) => {
                        failed += 1;
                        answers.first_error.get_or_insert_with(|| e.to_string());
                        continue;
                    }
                }
            }
            let Some(p) = pipe.as_mut() else { continue };
            while p.in_flight() >= MAX_IN_FLIGHT && Instant::now() < give_up {
                thread::sleep(Duration::from_millis(1));
            }
            if let Err(e) = p.send(&requests.event(seq)) {
                answers.first_error.get_or_insert_with(|| e.to_string());
                if let Some(dead) = pipe.take() {
                    dead.finish(&mut answers, &mut failed);
                }
                // This event was not written: it fails too.
                failed += 1;
            }
        }
        let seconds = start.elapsed().as_secs_f64();
        bar.finish_and_clear();
        for pipe in pipes.iter_mut() {
            if let Some(p) = pipe.take() {
                p.finish(&mut answers, &mut failed);
            }
        }
        Published {
            published: answers.ok,
            failed,
            first_error: answers.first_error,
            seconds,
            rate: events as f64 / seconds.max(1e-9),
            round_trip: Latency::of(&answers.round_trips),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::event_data;
    use crate::client::sse::{Frame, Parser};

    #[test]
    fn data_is_stamped_and_padded() {
        assert_eq!(event_data(7, 123, 0, 0), "7 123 0");
        assert_eq!(event_data(7, 123, 4, 12), "7 123 4 xxxx");
        assert_eq!(event_data(7, 123, 4, 12).len(), 12);
        assert_eq!(event_data(7, 123, 255, 12), "7 123 255 xx");
        assert_eq!(event_data(7, 123, 4, 8), "7 123 4 ");
    }

    #[test]
    fn subscribers_read_the_stamp_back() {
        for size in [0, 64] {
            let text = format!("data: {}\n\n", event_data(7, 123, 4, size));
            let mut frames = Vec::new();
            Parser::default().feed(text.as_bytes(), &mut |frame| frames.push(frame));
            let stamp = Frame::Event {
                seq: 7,
                nanos: 123,
                stream: 4,
            };
            assert_eq!(frames, vec![stamp], "{text}");
        }
    }
}
