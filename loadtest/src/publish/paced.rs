//! Publishing at a steady rate (`fanout`, `hostile`): the caller's thread writes each event on
//! time, pipelined on keep-alive connections used in turn, whatever the answers' pace, so that a
//! server slow to answer a publish cannot slow the rate down.

use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::pipeline::{Lane, Outcome};
use super::Requests;
use crate::latency::Latency;
use crate::ui::Ui;

/// Requests written but not answered, at most, per connection: past it the publisher waits.
const MAX_IN_FLIGHT: u64 = 4096;

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

/// Publishes at `pace`, pipelined on keep-alive connections (each reopened if it closes);
/// events are numbered from 0 in one stream, and a failed publish still uses its number (it
/// counts as lost if it never arrives).
pub fn run_paced(requests: &Requests, addr: SocketAddr, pace: Pace, ui: Ui) -> Published {
    let events = (pace.rate * pace.duration.as_secs_f64()).ceil().max(1.0) as u64;
    let interval = Duration::from_secs_f64(1.0 / pace.rate);
    let bar = ui.bar(events, "publishing");
    let mut lanes: Vec<Lane> = (0..pace.connections.max(1))
        .map(|_| Lane::new(addr))
        .collect();
    let start = Instant::now();
    for seq in 0..events {
        let due = start + interval.mul_f64(seq as f64);
        let now = Instant::now();
        if due > now {
            thread::sleep(due - now);
        }
        bar.set_position(seq + 1);
        let slot = (seq % lanes.len() as u64) as usize;
        let Some(lane) = lanes.get_mut(slot) else {
            continue;
        };
        if lane.room(MAX_IN_FLIGHT) == 0 {
            lane.fail(1);
            continue;
        }
        lane.send(&requests.event(seq), &[1]);
    }
    let seconds = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let mut outcome = Outcome::new();
    for lane in lanes {
        outcome.add(lane.finish());
    }
    Published {
        published: outcome.events_ok,
        failed: outcome.events_failed,
        first_error: outcome.first_error,
        seconds,
        rate: events as f64 / seconds.max(1e-9),
        round_trip: Latency::of(&outcome.round_trips),
    }
}
