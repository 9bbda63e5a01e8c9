//! Publishing as fast as the server answers (`publish`): each connection is a stream of its
//! own, numbering its events from 0 on a thread of its own, and writes requests whenever its
//! window of unanswered requests has room, every request it has room for in one write. A
//! request carries one event, or a batch of them as a JSON array; a `2xx` answer to a batch
//! counts all its events accepted (ssecast's batches are all or nothing).

use std::net::SocketAddr;
use std::thread;

use indicatif::ProgressBar;
use serde::Serialize;

use super::pipeline::{Lane, Outcome};
use super::Requests;
use crate::latency::Latency;
use crate::ui::Ui;

/// How a burst publishes.
#[derive(Debug, Clone, Copy)]
pub struct Burst {
    /// Events in all, shared out evenly between the connections.
    pub events: u64,
    /// Keep-alive connections, one stream each: at most 256 (streams 0 to 255).
    pub connections: usize,
    /// Requests written and not answered, at most, per connection.
    pub in_flight: u64,
    /// Events per request.
    pub batch: u64,
}

/// What a burst did.
#[derive(Debug, Clone, Serialize)]
pub struct BurstReport {
    /// Events the server accepted (in requests answered `2xx`).
    pub published: u64,
    /// Events in requests not answered `2xx`, or never written.
    pub failed: u64,
    /// Requests written.
    pub requests: u64,
    /// Requests answered `2xx`.
    pub requests_ok: u64,
    /// From the first request written to the last answer read, seconds.
    pub seconds: f64,
    /// Round trips of the requests answered `2xx` (written to answer read).
    pub round_trip: Latency,
    /// The first failure.
    pub first_error: Option<String>,
}

/// Publishes `burst.events` events to `addr` and waits for the last answer (bounded).
pub fn run_burst(requests: &Requests, addr: SocketAddr, burst: Burst, ui: Ui) -> BurstReport {
    let bar = ui.bar(burst.events, "publishing");
    let connections = burst.connections.clamp(1, 256) as u64;
    let mut outcome = Outcome::new();
    thread::scope(|scope| {
        let streams: Vec<_> = (0..connections)
            .map(|stream| {
                let events =
                    burst.events / connections + u64::from(stream < burst.events % connections);
                let bar = &bar;
                // `stream` < 256.
                scope.spawn(move || push(requests, addr, stream as u8, events, burst, bar))
            })
            .collect();
        for stream in streams {
            match stream.join() {
                Ok(pushed) => outcome.add(pushed),
                Err(_) => outcome.note(|| "a publishing thread panicked".into()),
            }
        }
    });
    bar.finish_and_clear();
    let seconds = match (outcome.first_write, outcome.last_answer) {
        (Some(first), Some(last)) => last.saturating_duration_since(first).as_secs_f64(),
        _ => 0.0,
    };
    BurstReport {
        published: outcome.events_ok,
        failed: outcome.events_failed,
        requests: outcome.requests,
        requests_ok: outcome.requests_ok,
        seconds,
        round_trip: Latency::of(&outcome.round_trips),
        first_error: outcome.first_error,
    }
}

/// Publishes events `0..events` of `stream` on one lane.
fn push(
    requests: &Requests,
    addr: SocketAddr,
    stream: u8,
    events: u64,
    burst: Burst,
    bar: &ProgressBar,
) -> Outcome {
    let mut lane = Lane::new(addr);
    let mut raw = Vec::new();
    let mut sizes = Vec::new();
    let mut seq = 0;
    while seq < events {
        let room = lane.room(burst.in_flight);
        if room == 0 {
            lane.fail(events - seq);
            break;
        }
        raw.clear();
        sizes.clear();
        while (sizes.len() as u64) < room && seq < events {
            let count = burst.batch.max(1).min(events - seq);
            requests.append(&mut raw, stream, seq, count);
            sizes.push(count);
            seq += count;
        }
        lane.send(&raw, &sizes);
        bar.inc(sizes.iter().sum());
    }
    lane.finish()
}
