//! The attackers that repeat a short exchange: topic floods, resumes from unknown ids,
//! subscribe-and-leave, garbage, bad tokens, and connect floods.
//!
//! Each loop is one thread of blocking sockets with timeouts, so it notices the end of its
//! time within an answer's wait.

use std::io::Write;
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use super::socket::{self, Answer, Heard};
use super::{wire, Context, Counts, MAX_ITERATIONS};
use crate::http::{read_response, Retry, IO_TIMEOUT};

/// The longest an exchange waits for its answer.
const ANSWER_WAIT: Duration = Duration::from_secs(2);
/// Topics a resume or a subscribe-and-leave names (the server's limit).
const TOPICS: usize = 64;
/// Bytes of one garbage request.
const GARBAGE_BYTES: usize = 4096;
/// How long a connect flood gives the server to refuse a round before looking.
const REFUSAL_WAIT: Duration = Duration::from_millis(20);

/// Spaces iterations at most `rate` a second (0: no spacing).
struct Pace {
    interval: Option<Duration>,
    next: Instant,
}

impl Pace {
    fn new(rate: f64) -> Pace {
        Pace {
            interval: (rate > 0.0).then(|| Duration::from_secs_f64(1.0 / rate)),
            next: Instant::now(),
        }
    }

    fn wait(&mut self, context: &Context) {
        let Some(interval) = self.interval else {
            return;
        };
        let now = Instant::now();
        if self.next > now {
            context.sleep(self.next - now);
        } else {
            // After a stall, do not make up for lost time in one burst.
            self.next = now;
        }
        self.next += interval;
    }
}

/// Opens a blocking connection for `context`, counting it.
fn open(context: &Context, counts: &mut Counts) -> Option<TcpStream> {
    let opened = socket::connect(context.source, context.plan.target, None).and_then(|s| {
        s.set_write_timeout(Some(IO_TIMEOUT))?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        Ok(s)
    });
    match opened {
        Ok(stream) => {
            counts.connections += 1;
            Some(stream)
        }
        Err(e) => {
            counts.connect_failed += 1;
            counts.error("connect", e);
            None
        }
    }
}

/// One exchange on a new connection: `request`, then its answer's head (and a `gap` event
/// after it, with `want_gap`); the connection is then reset.
fn exchange(context: &Context, counts: &mut Counts, request: &[u8], want_gap: bool) {
    let Some(mut stream) = open(context, counts) else {
        // Do not spin on a server that refuses connections.
        context.sleep(Duration::from_millis(10));
        return;
    };
    if let Err(e) = stream.write_all(request) {
        counts.cut += 1;
        counts.error("writing", e);
        return;
    }
    counts.requests += 1;
    counts.bytes_sent += request.len() as u64;
    let deadline = Instant::now() + ANSWER_WAIT;
    match socket::read_answer(&mut stream, deadline, want_gap, &mut counts.bytes_received) {
        Answer::Status { status, gap } => {
            counts.status(status);
            counts.gaps += u64::from(gap);
        }
        Answer::Closed => counts.cut += 1,
        Answer::TimedOut => counts.no_answer += 1,
    }
}

/// Repeats `make`'s request at the churn rate until the end.
fn repeat(context: &Context, want_gap: bool, mut make: impl FnMut(u64) -> Vec<u8>) -> Counts {
    let mut counts = Counts::default();
    let mut pace = Pace::new(context.plan.sizes.churn_rate);
    for i in 0..MAX_ITERATIONS {
        pace.wait(context);
        if context.done() {
            break;
        }
        exchange(context, &mut counts, &make(i), want_gap);
    }
    counts
}

/// Resumes from the unknown id `nope` on 64 topics, over and over.
pub(crate) fn resume_unknown(context: &Context, lane: usize) -> Counts {
    let names = wire::topic_names(&format!("resume{lane}"), TOPICS);
    let request = wire::subscribe(
        &context.plan.host,
        names.iter().map(String::as_str),
        Some("nope"),
    );
    repeat(context, true, |_| request.clone())
}

/// Subscribes to 64 topics no one has used and leaves as soon as the answer's head is in.
pub(crate) fn subscribe_leave(context: &Context, lane: usize) -> Counts {
    let host = context.plan.host.clone();
    repeat(context, false, |i| {
        let names = wire::topic_names(&format!("leave{lane}-{i}"), TOPICS);
        wire::subscribe(&host, names.iter().map(String::as_str), None)
    })
}

/// Subscribes and publishes, in turn, with a token signed by a key no server holds: a server
/// with keys answers both `401`. The publishes go to a topic of their own, so that a server
/// whose publishing is open does not add to the good subscribers' stream.
pub(crate) fn bad_token(context: &Context) -> Counts {
    let plan = &context.plan;
    let subscribe = wire::subscribe_with_token(&plan.host, "load", wire::FORGED_TOKEN);
    let publish =
        wire::publish_with_token(&plan.publish_path, &plan.host, "forged", wire::FORGED_TOKEN);
    repeat(context, false, |i| {
        if i % 2 == 0 {
            subscribe.clone()
        } else {
            publish.clone()
        }
    })
}

/// Noise instead of a request, a new noise each time.
pub(crate) fn garbage(context: &Context, lane: usize) -> Counts {
    let seed = (lane as u64 + 1) << 32;
    repeat(context, false, |i| wire::garbage(seed + i, GARBAGE_BYTES))
}

/// Form publishes of `flood_topics` topic names in a body of the largest size allowed, back
/// to back on a kept-alive connection (a new one when the server closes it).
pub(crate) fn topic_flood(context: &Context) -> Counts {
    let plan = &context.plan;
    let body = wire::topic_flood_body(plan.sizes.flood_topics, plan.sizes.body_bytes);
    let mut request = wire::post_head(
        &plan.publish_path,
        &plan.host,
        "application/x-www-form-urlencoded",
        body.len(),
    );
    request.extend_from_slice(&body);
    let mut counts = Counts::default();
    let mut conn: Option<(TcpStream, Vec<u8>)> = None;
    for _ in 0..MAX_ITERATIONS {
        if context.done() {
            break;
        }
        if conn.is_none() {
            conn = open(context, &mut counts).map(|stream| (stream, Vec::new()));
        }
        let Some((stream, buf)) = conn.as_mut() else {
            context.sleep(Duration::from_millis(10));
            continue;
        };
        let written = stream.write_all(&request);
        if written.is_ok() {
            counts.requests += 1;
            counts.bytes_sent += request.len() as u64;
        }
        // Even after a failed write, the server may have answered (a refusal that left the
        // body unread) before it closed.
        match read_response(stream, buf) {
            Ok((response, keep)) => {
                counts.status(response.status);
                counts.bytes_received += response.body.len() as u64;
                if !keep {
                    conn = None;
                }
            }
            Err(Retry::Stale) => {
                counts.cut += 1;
                conn = None;
            }
            Err(Retry::Failed(why)) => {
                if written.is_ok() {
                    counts.no_answer += 1;
                    counts.error("answer", why);
                } else {
                    counts.cut += 1;
                }
                conn = None;
            }
        }
    }
    counts
}

/// Rounds of `connect_flood` connections opened from one address as fast as possible (past
/// the per-address limit, the server refuses them with `429` at once), then all reset.
pub(crate) fn connect_flood(context: &Context) -> Counts {
    let n = context.plan.sizes.connect_flood;
    let mut counts = Counts::default();
    let mut round: Vec<TcpStream> = Vec::with_capacity(n);
    for _ in 0..MAX_ITERATIONS {
        if context.done() {
            break;
        }
        while round.len() < n && !context.done() {
            match socket::connect(context.source, context.plan.target, None)
                .and_then(|s| s.set_nonblocking(true).map(|()| s))
            {
                Ok(stream) => {
                    counts.connections += 1;
                    round.push(stream);
                }
                Err(e) => {
                    counts.connect_failed += 1;
                    counts.error("connect", e);
                    break;
                }
            }
        }
        thread::sleep(REFUSAL_WAIT);
        for stream in &mut round {
            match socket::listen(stream, &mut counts.bytes_received) {
                Heard::Status(status) => counts.status(status),
                Heard::Closed => counts.cut += 1,
                // Accepted, and waiting for a request head.
                Heard::Nothing => counts.no_answer += 1,
                Heard::Other => counts.error("answer", "not an HTTP head"),
            }
        }
        round.clear();
    }
    counts
}
