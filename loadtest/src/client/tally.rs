//! What one client thread counted: latencies, deliveries, and lost, duplicated and reordered
//! events. Tallies add up across threads and processes.

use serde::{Deserialize, Serialize};

use super::seq::{Arrival, Streams};
use super::sse::Frame;
use crate::latency::{self, Hist, Series};

/// Sequences from here on are not the loadtest's (it never publishes this many events).
pub const SEQ_LIMIT: u64 = 1 << 30;

/// Counts and latencies since the last reset.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tally {
    /// Publish-to-receive latency of every first copy of an event, in microseconds.
    #[serde(with = "latency::serde_hist")]
    pub latency: Hist,
    /// The same per sequence number, for the first `per_event.len()` events.
    #[serde(with = "latency::serde_hists")]
    pub per_event: Vec<Hist>,
    /// The same by the second each event was sent in.
    pub by_second: Series,
    /// Subscribers that had their response head (live or closed since).
    pub subscribers: u64,
    /// First copies of the loadtest's events received.
    pub delivered: u64,
    /// Events expected by subscribers but never received (filled in by [`Tally::settle`]).
    pub lost: u64,
    /// Second and later copies of an event.
    pub duplicated: u64,
    /// First copies that arrived after a later event of their stream.
    pub reordered: u64,
    /// Events with a sequence number beyond [`SEQ_LIMIT`] or a stream beyond 255.
    pub unexpected: u64,
    /// Events with other data (not published by this run).
    pub other_events: u64,
    /// Comment lines (keep-alives).
    pub comments: u64,
    /// Events stamped later than they were received (clocks disagree); recorded as 0.
    pub early: u64,
    /// Subscribers the server closed.
    pub closed_by_server: u64,
    /// Distinct events of subscribers that have gone, kept for [`Tally::settle`].
    pub gone_distinct: u64,
    /// Subscribers that have gone.
    pub gone: u64,
    /// Connections that failed before streaming, by cause.
    pub failed_connect: u64,
    /// Answers other than `200` with `text/event-stream`.
    pub failed_status: u64,
    /// Malformed heads or chunk framing.
    pub failed_protocol: u64,
    /// The first failure seen, for the report.
    pub first_error: Option<String>,
}

impl Tally {
    /// An empty tally that keeps per-event latencies for the first `per_event` sequences.
    pub fn new(per_event: usize) -> Tally {
        Tally {
            latency: latency::histogram(),
            per_event: (0..per_event).map(|_| latency::histogram()).collect(),
            by_second: Series::default(),
            subscribers: 0,
            delivered: 0,
            lost: 0,
            duplicated: 0,
            reordered: 0,
            unexpected: 0,
            other_events: 0,
            comments: 0,
            early: 0,
            closed_by_server: 0,
            gone_distinct: 0,
            gone: 0,
            failed_connect: 0,
            failed_status: 0,
            failed_protocol: 0,
            first_error: None,
        }
    }

    /// Counts one frame received at `now_nanos` by the subscriber with `tracker`.
    #[inline]
    pub fn frame(&mut self, frame: Frame, tracker: &mut Streams, now_nanos: u64) {
        let (seq, nanos, stream) = match frame {
            Frame::Event { seq, nanos, stream } if seq < SEQ_LIMIT && stream <= 255 => {
                (seq, nanos, stream as u8)
            }
            Frame::Event { .. } => {
                self.unexpected += 1;
                return;
            }
            Frame::Other => {
                self.other_events += 1;
                return;
            }
            Frame::Comment => {
                self.comments += 1;
                return;
            }
        };
        // SEQ_LIMIT fits in u32.
        match tracker.record(stream, seq as u32) {
            Arrival::Duplicate => {
                self.duplicated += 1;
                return;
            }
            Arrival::Reordered => self.reordered += 1,
            Arrival::InOrder => {}
        }
        self.delivered += 1;
        if nanos > now_nanos {
            self.early += 1;
        }
        let micros = now_nanos.saturating_sub(nanos) / 1000;
        self.latency.saturating_record(micros);
        self.by_second.record(nanos / 1_000_000_000, micros);
        if let Some(hist) = self.per_event.get_mut(seq as usize) {
            hist.saturating_record(micros);
        }
    }

    /// Notes a failure; the first one's text is kept.
    pub fn fail(&mut self, counter: fn(&mut Tally) -> &mut u64, why: impl FnOnce() -> String) {
        *counter(self) += 1;
        if self.first_error.is_none() {
            self.first_error = Some(why());
        }
    }

    /// Notes that a subscriber went away with `tracker`'s events.
    pub fn gone(&mut self, tracker: &Streams) {
        self.gone += 1;
        self.gone_distinct += tracker.distinct();
    }

    /// Fills in `lost` for `expected` events per subscriber, given the live subscribers'
    /// trackers; subscribers that went away owe what they did not get too.
    pub fn settle<'a>(&mut self, expected: u64, live: impl Iterator<Item = &'a Streams>) {
        let mut lost = 0;
        for tracker in live {
            lost += expected.saturating_sub(tracker.distinct());
        }
        lost += (expected * self.gone).saturating_sub(self.gone_distinct);
        self.lost = lost;
    }

    /// Adds `other` into this tally.
    pub fn merge(&mut self, other: &Tally) {
        latency::merge(&mut self.latency, &other.latency);
        if self.per_event.len() < other.per_event.len() {
            self.per_event
                .resize_with(other.per_event.len(), latency::histogram);
        }
        for (into, from) in self.per_event.iter_mut().zip(&other.per_event) {
            latency::merge(into, from);
        }
        self.by_second.merge(&other.by_second);
        self.subscribers += other.subscribers;
        self.delivered += other.delivered;
        self.lost += other.lost;
        self.duplicated += other.duplicated;
        self.reordered += other.reordered;
        self.unexpected += other.unexpected;
        self.other_events += other.other_events;
        self.comments += other.comments;
        self.early += other.early;
        self.closed_by_server += other.closed_by_server;
        self.gone_distinct += other.gone_distinct;
        self.gone += other.gone;
        self.failed_connect += other.failed_connect;
        self.failed_status += other.failed_status;
        self.failed_protocol += other.failed_protocol;
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::seq::Streams;
    use super::super::sse::Frame;
    use super::Tally;

    fn event(seq: u64) -> Frame {
        on(0, seq)
    }

    /// Delivered, lost, duplicated and reordered.
    fn counts(tally: &Tally) -> [u64; 4] {
        [
            tally.delivered,
            tally.lost,
            tally.duplicated,
            tally.reordered,
        ]
    }

    fn on(stream: u64, seq: u64) -> Frame {
        Frame::Event {
            seq,
            nanos: 1_000_000,
            stream,
        }
    }

    #[test]
    fn counts_lost_duplicated_reordered_across_subscribers() {
        let mut tally = Tally::new(4);
        let mut a = Streams::default();
        let mut b = Streams::default();
        // a: 0 1 1 3 2 (dup 1, reordered 2); b: 0 3 (lost 1 and 2).
        for seq in [0, 1, 1, 3, 2] {
            tally.frame(event(seq), &mut a, 3_000_000);
        }
        for seq in [0, 3] {
            tally.frame(event(seq), &mut b, 2_000_000);
        }
        tally.frame(Frame::Other, &mut b, 0);
        tally.frame(Frame::Comment, &mut b, 0);
        tally.settle(4, [&a, &b].into_iter());
        assert_eq!(counts(&tally), [6, 2, 1, 1]);
        assert_eq!((tally.other_events, tally.comments), (1, 1));
        assert_eq!(tally.latency.len(), 6);
        assert_eq!(tally.per_event[3].len(), 2);
        assert_eq!(tally.per_event[3].min(), 1000);
        let max = tally.per_event[3].max();
        assert!(
            (2000..=2002).contains(&max),
            "2 ms within a tenth of a percent: {max}"
        );
    }

    #[test]
    fn streams_are_counted_apart_and_lost_events_together() {
        let mut tally = Tally::new(0);
        let mut t = Streams::default();
        // Stream 1 loses its 1; stream 2 reorders 0 and 1; streams interleave.
        for (stream, seq) in [(1, 0), (2, 1), (1, 2), (2, 0), (1, 2)] {
            tally.frame(on(stream, seq), &mut t, 3_000_000);
        }
        tally.settle(5, std::iter::once(&t));
        assert_eq!(counts(&tally), [4, 1, 1, 1]);
    }

    #[test]
    fn departed_subscribers_still_owe_their_events() {
        let mut tally = Tally::new(0);
        let mut gone = Streams::default();
        tally.frame(event(0), &mut gone, 2_000_000);
        tally.gone(&gone);
        tally.settle(3, std::iter::empty());
        assert_eq!(tally.lost, 2);
    }

    #[test]
    fn early_stamps_and_foreign_sequences() {
        let mut tally = Tally::new(0);
        let mut t = Streams::default();
        tally.frame(event(0), &mut t, 10);
        tally.frame(event(super::SEQ_LIMIT), &mut t, 10);
        tally.frame(on(256, 0), &mut t, 10);
        assert_eq!((tally.early, tally.unexpected, tally.delivered), (1, 2, 1));
        assert_eq!(tally.latency.max(), 0);
    }

    #[test]
    fn merge_adds_everything_and_survives_json() {
        let mut a = Tally::new(2);
        let mut t = Streams::default();
        a.frame(event(1), &mut t, 5_000_000);
        a.fail(|t| &mut t.failed_status, || "status 404".into());
        let json = serde_json::to_string(&a).unwrap();
        let b: Tally = serde_json::from_str(&json).unwrap();
        let mut sum = Tally::new(0);
        sum.merge(&a);
        sum.merge(&b);
        assert_eq!((sum.delivered, sum.failed_status), (2, 2));
        assert_eq!(sum.per_event.len(), 2);
        assert_eq!(sum.per_event[1].len(), 2);
        let seconds = sum.by_second.summary(|t| t);
        assert_eq!(seconds.len(), 1, "sent at 1 ms after the epoch: second 0");
        assert_eq!((seconds[0].second, seconds[0].count), (0, 2));
        assert_eq!(sum.first_error.as_deref(), Some("status 404"));
    }
}
