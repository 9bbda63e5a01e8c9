//! Per-subscriber accounting of sequence numbers: lost, duplicated and reordered events.
//!
//! Each publishing stream (a publish connection) numbers its events from 0, and only the order
//! within a stream counts: streams may interleave. A subscriber keeps 16 bytes per stream: the
//! highest sequence seen, a 64-bit window of which of the 64 sequences up to it arrived, and how
//! many distinct sequences arrived. An event older than the window counts as reordered and new:
//! a duplicate that arrives more than 64 events late is not told apart from a late first copy.
//! Lost events are what is left: expected minus distinct, all streams together.

/// The window of recent sequences, in events.
pub const WINDOW: u32 = 64;

/// What one arriving sequence number was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Higher than any before (perhaps skipping some, which may still come).
    InOrder,
    /// First copy of a sequence lower than one already seen.
    Reordered,
    /// A sequence already seen.
    Duplicate,
}

/// The accounting of one subscriber.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeqTracker {
    /// One past the highest sequence seen; 0 when none was.
    end: u32,
    /// Bit `i` set: sequence `end - 1 - i` arrived.
    window: u64,
    /// Distinct sequences seen.
    distinct: u32,
}

impl SeqTracker {
    /// Records the arrival of `seq`.
    pub fn record(&mut self, seq: u32) -> Arrival {
        if seq >= self.end {
            let shift = seq - self.end + 1;
            self.window = if shift >= WINDOW {
                0
            } else {
                self.window << shift
            };
            self.window |= 1;
            self.end = seq + 1;
            self.distinct += 1;
            return Arrival::InOrder;
        }
        let age = self.end - 1 - seq;
        if age < WINDOW {
            let bit = 1u64 << age;
            if self.window & bit != 0 {
                return Arrival::Duplicate;
            }
            self.window |= bit;
        }
        self.distinct += 1;
        Arrival::Reordered
    }

    /// Distinct sequences seen so far.
    pub fn distinct(&self) -> u32 {
        self.distinct
    }
}

/// The accounting of one subscriber over streams 0 to 255. Stream 0 is kept inline, so that the
/// scenarios publishing one stream allocate nothing per subscriber (40 bytes in all); the
/// others are allocated when a stream's first event arrives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Streams {
    /// Stream 0.
    first: SeqTracker,
    /// Streams 1 and up, as far as the highest seen.
    rest: Vec<SeqTracker>,
}

impl Streams {
    /// Records the arrival of `seq` of `stream`.
    pub fn record(&mut self, stream: u8, seq: u32) -> Arrival {
        let Some(index) = usize::from(stream).checked_sub(1) else {
            return self.first.record(seq);
        };
        if self.rest.len() <= index {
            self.rest.resize(index + 1, SeqTracker::default());
        }
        let tracker = self.rest.get_mut(index);
        tracker.expect("resized to hold the stream").record(seq)
    }

    /// Distinct events seen so far, all streams together.
    pub fn distinct(&self) -> u64 {
        let rest: u64 = self.rest.iter().map(|t| u64::from(t.distinct())).sum();
        u64::from(self.first.distinct()) + rest
    }
}

#[cfg(test)]
mod tests {
    use super::{Arrival, SeqTracker, Streams};

    fn run(seqs: &[u32]) -> (Vec<Arrival>, u32) {
        let mut tracker = SeqTracker::default();
        let arrivals = seqs.iter().map(|&seq| tracker.record(seq)).collect();
        (arrivals, tracker.distinct())
    }

    use Arrival::{Duplicate as D, InOrder as I, Reordered as R};

    #[test]
    fn in_order_stream_is_all_new() {
        assert_eq!(run(&[0, 1, 2, 3]), (vec![I, I, I, I], 4));
    }

    #[test]
    fn gaps_are_lost_until_they_arrive() {
        // 2 and 5 are missing from 0..7: expected 7 minus 5 distinct is 2 lost.
        assert_eq!(run(&[0, 1, 3, 4, 6]), (vec![I, I, I, I, I], 5));
        assert_eq!(run(&[0, 1, 3, 2, 4]), (vec![I, I, I, R, I], 5));
    }

    #[test]
    fn duplicates_are_caught_in_and_out_of_order() {
        assert_eq!(run(&[0, 0, 1, 2, 1, 0]), (vec![I, D, I, I, D, D], 3));
        assert_eq!(run(&[5, 3, 3]), (vec![I, R, D], 2));
    }

    #[test]
    fn window_edge() {
        let mut tracker = SeqTracker::default();
        tracker.record(0);
        tracker.record(63);
        assert_eq!(tracker.record(0), D, "age 63 is inside the window");
        tracker.record(64);
        assert_eq!(
            tracker.record(0),
            R,
            "age 64 is outside: counted as late, new"
        );
        assert_eq!(tracker.record(1), R);
        assert_eq!(tracker.record(1), D);
        let mut far = SeqTracker::default();
        far.record(0);
        assert_eq!(far.record(1000), I);
        assert_eq!(far.record(999), R);
        assert_eq!(far.record(999), D);
    }

    #[test]
    fn streams_interleave_and_keep_their_own_order() {
        let mut streams = Streams::default();
        let arrivals: Vec<Arrival> = [(0, 0), (2, 0), (0, 1), (2, 1), (1, 0), (2, 3), (2, 2)]
            .iter()
            .map(|&(stream, seq)| streams.record(stream, seq))
            .collect();
        assert_eq!(arrivals, vec![I, I, I, I, I, I, R]);
        assert_eq!(streams.record(2, 1), D);
        assert_eq!(streams.record(255, 0), I);
        assert_eq!(streams.distinct(), 8);
    }
}
