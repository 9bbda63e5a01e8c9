//! A topic's bounded history: a ring of publications in publish order.
//!
//! Each entry is a shared [`Publication`]: its sequence number, topics and encoded frame, held
//! by pointer (8 bytes an entry), so an event in many topics and on many shards is stored once.
//! The event id is read back from the frame itself (`sse::event::frame_id`). The ring keeps its
//! count by dropping its oldest entries when the shard trims it, after each delivery pass (so a
//! frame is never dropped before the pass that delivers it, however many come in between), and
//! drops every entry up to a floor when the server's byte budget moves past them (`ledger`); it
//! remembers the sequence number of the newest entry it ever dropped.
//!
//! ## Lagging
//!
//! A subscriber's cursor is the sequence number of the last frame it was fully sent. When a
//! frame after its cursor has been dropped, the subscriber can no longer be caught up from
//! history: [`History::position_after`] returns [`Lagged`], and the broadcaster disconnects
//! it so that it reconnects with `Last-Event-ID` (and learns of the gap) instead of being
//! buffered without bound.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::topic::TopicId;
use crate::selector::Selectors;

/// A publish's place in the total order of publishes, starting at 1.
pub type Seq = u64;

/// One published event, shared by every shard and every history that holds it.
#[derive(Debug)]
pub struct Publication {
    /// Its place in the order of publishes.
    pub seq: Seq,
    /// Its topics, without repeats.
    pub topics: Box<[TopicId]>,
    /// Its encoded frame.
    pub frame: Bytes,
    /// When it was published, to measure how long delivery took.
    pub published_at: Instant,
    /// Who may receive it.
    pub audience: Audience,
}

/// Who may receive a publication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// Every subscriber of its topics.
    Everyone,
    /// A private event: only subscribers whose token's selectors match one of these topics.
    Allowed(Box<[Box<str>]>),
}

impl Audience {
    /// Whether a subscriber with `access` (its token's subscribe selectors, if it has a token)
    /// may receive it.
    pub fn admits(&self, access: Option<&Selectors>) -> bool {
        match self {
            Self::Everyone => true,
            Self::Allowed(topics) => {
                access.is_some_and(|selectors| topics.iter().any(|topic| selectors.allows(topic)))
            }
        }
    }
}

/// A frame this subscriber needs was dropped from history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lagged;

/// The bounded ring of one topic's recent publications.
#[derive(Debug)]
pub struct History {
    /// Publications in increasing `Seq` order.
    entries: VecDeque<Arc<Publication>>,
    /// The most entries held.
    capacity: usize,
    /// The `Seq` of the newest entry ever dropped (0 if none).
    dropped_through: Seq,
}

impl History {
    /// An empty history that holds at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            capacity: capacity.max(1),
            dropped_through: 0,
        }
    }

    /// Appends a publication, whose `seq` must be larger than every `seq` held; the ring may
    /// hold more than its count until [`History::trim`].
    pub fn push(&mut self, publication: Arc<Publication>) {
        debug_assert!(self.last_seq() < publication.seq);
        self.entries.push_back(publication);
    }

    /// Drops the oldest entries past the ring's count.
    pub fn trim(&mut self) {
        while self.entries.len() > self.capacity {
            if let Some(dropped) = self.entries.pop_front() {
                self.dropped_through = dropped.seq;
            }
        }
        if self.entries.len() < self.entries.capacity() / 4 {
            self.entries.shrink_to(self.entries.len() * 2);
        }
    }

    /// Drops every entry up to and including `floor`, giving memory back once empty.
    pub fn drop_through(&mut self, floor: Seq) {
        while let Some(oldest) = self.entries.front() {
            if oldest.seq > floor {
                return;
            }
            self.dropped_through = oldest.seq;
            self.entries.pop_front();
        }
        self.entries = VecDeque::new();
    }

    /// Counts everything up to `seq` as dropped, for a topic that was forgotten.
    pub fn forget_through(&mut self, seq: Seq) {
        self.drop_through(seq);
        self.dropped_through = self.dropped_through.max(seq);
    }

    /// The `Seq` of the newest entry, or of the newest dropped when none is held.
    pub fn last_seq(&self) -> Seq {
        self.entries
            .back()
            .map_or(self.dropped_through, |publication| publication.seq)
    }

    /// The `Seq` a new subscriber may resume from without a gap: the newest entry dropped, or
    /// the newest of the entries past the ring's count that it keeps until the next delivery
    /// pass, so that what a resume finds does not hang on when that pass runs.
    pub fn resume_floor(&self) -> Seq {
        let surplus = self.entries.len().saturating_sub(self.capacity);
        match surplus.checked_sub(1) {
            Some(last_surplus) => self.entries[last_surplus].seq,
            None => self.dropped_through,
        }
    }

    /// The `Seq` of the newest entry dropped from this ring (0 if none).
    pub fn dropped_through(&self) -> Seq {
        self.dropped_through
    }

    /// The index of the first entry after `seq`, or `Lagged` if one of those was dropped.
    pub fn position_after(&self, seq: Seq) -> Result<usize, Lagged> {
        if self.dropped_through > seq {
            return Err(Lagged);
        }
        Ok(self.entries.partition_point(|p| p.seq <= seq))
    }

    /// The entry at `index` (as counted by [`History::position_after`]).
    pub fn get(&self, index: usize) -> Option<&Publication> {
        self.entries.get(index).map(|publication| &**publication)
    }

    /// The first entry held after `seq`, if any.
    pub fn first_after(&self, seq: Seq) -> Option<&Publication> {
        self.get(self.entries.partition_point(|p| p.seq <= seq))
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A publication of `seq` to topic 0 whose id is `seq * 10`.
    pub fn publication(seq: Seq) -> Arc<Publication> {
        Arc::new(Publication {
            seq,
            topics: Box::new([0]),
            frame: Bytes::from(format!("id: {}\ndata: x\n\n", seq * 10)),
            published_at: Instant::now(),
            audience: Audience::Everyone,
        })
    }

    fn filled(capacity: usize, seqs: impl IntoIterator<Item = Seq>) -> History {
        let mut history = History::new(capacity);
        for seq in seqs {
            history.push(publication(seq));
            history.trim();
        }
        history
    }

    #[test]
    fn a_resume_sees_the_ring_at_its_count_before_it_is_trimmed() {
        let mut history = History::new(2);
        for seq in 1..=4 {
            history.push(publication(seq));
        }
        assert_eq!(history.dropped_through(), 0, "not trimmed yet");
        assert_eq!(history.resume_floor(), 2, "only 3 and 4 count");
        history.trim();
        assert_eq!((history.dropped_through(), history.resume_floor()), (2, 2));
    }

    #[test]
    fn position_after_skips_what_the_cursor_has() {
        let history = filled(10, [2, 4, 6]);
        assert_eq!(history.position_after(0), Ok(0));
        assert_eq!(history.position_after(2), Ok(1));
        assert_eq!(history.position_after(3), Ok(1));
        assert_eq!(history.position_after(6), Ok(3));
        assert_eq!(history.get(1).map(|p| p.seq), Some(4));
    }

    #[test]
    fn a_cursor_behind_a_dropped_entry_has_lagged() {
        let history = filled(2, [1, 2, 3, 4]);
        assert_eq!(history.dropped_through(), 2);
        assert_eq!(history.position_after(1), Err(Lagged));
        assert_eq!(history.position_after(2), Ok(0));
        assert_eq!(history.last_seq(), 4);
        assert_eq!(history.first_after(2).map(|p| p.seq), Some(3));
        assert!(history.first_after(4).is_none());
    }

    #[test]
    fn a_ring_holds_more_than_its_count_until_trimmed() {
        let mut history = History::new(2);
        for seq in 1..=5 {
            history.push(publication(seq));
        }
        assert_eq!(history.position_after(0), Ok(0), "nothing dropped yet");
        history.trim();
        assert_eq!(history.dropped_through(), 3);
        assert_eq!(history.get(0).map(|p| p.seq), Some(4));
    }

    #[test]
    fn dropping_through_a_floor_keeps_what_is_newer() {
        let mut history = filled(10, [2, 4, 6]);
        history.drop_through(3);
        assert_eq!(history.dropped_through(), 2);
        assert_eq!(history.position_after(2), Ok(0));
        assert_eq!(history.position_after(1), Err(Lagged));
        history.drop_through(9);
        assert_eq!(history.dropped_through(), 6);
        assert_eq!(
            history.last_seq(),
            6,
            "an empty ring remembers where it was"
        );
        assert!(history.get(0).is_none());
    }
}
