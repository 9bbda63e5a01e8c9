//! A topic's bounded history: a ring of encoded frames in publish order.
//!
//! Each entry is a publish sequence number and the shared frame; the event id is read back from
//! the frame itself (`sse::event::frame_id`), so it is not stored twice. When the ring is full
//! the oldest frame is dropped, and the ring remembers the sequence number of the newest frame
//! it ever dropped.
//!
//! ## Lagging
//!
//! A subscriber's cursor is the sequence number of the last frame it was fully sent. When a
//! frame after its cursor has been dropped, the subscriber can no longer be caught up from
//! history: [`History::position_after`] returns [`Lagged`], and the broadcaster disconnects
//! it so that it reconnects with `Last-Event-ID` (and learns of the gap) instead of being
//! buffered without bound.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::sse::event::frame_id;

/// A publish's place in the total order of publishes, starting at 1.
pub type Seq = u64;

/// A frame this subscriber needs was dropped from history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lagged;

/// The bounded ring of one topic's recent frames.
#[derive(Debug)]
pub struct History {
    /// Frames in increasing `Seq` order.
    entries: VecDeque<(Seq, Bytes)>,
    /// The most frames held.
    capacity: usize,
    /// The `Seq` of the newest frame ever dropped (0 if none).
    dropped_through: Seq,
}

impl History {
    /// An empty history that holds at most `capacity` frames (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            capacity: capacity.max(1),
            dropped_through: 0,
        }
    }

    /// Appends a frame; `seq` must be larger than every `seq` held.
    pub fn push(&mut self, seq: Seq, frame: Bytes) {
        debug_assert!(self.last_seq() < seq);
        if self.entries.len() == self.capacity {
            if let Some((dropped, _)) = self.entries.pop_front() {
                self.dropped_through = dropped;
            }
        }
        self.entries.push_back((seq, frame));
    }

    /// The `Seq` of the newest frame, or of the newest dropped when none is held.
    pub fn last_seq(&self) -> Seq {
        self.entries
            .back()
            .map_or(self.dropped_through, |(seq, _)| *seq)
    }

    /// The `Seq` of the newest frame dropped from this ring (0 if none).
    pub fn dropped_through(&self) -> Seq {
        self.dropped_through
    }

    /// The index of the first frame after `seq`, or `Lagged` if one of those was dropped.
    pub fn position_after(&self, seq: Seq) -> Result<usize, Lagged> {
        if self.dropped_through > seq {
            return Err(Lagged);
        }
        Ok(self.entries.partition_point(|(s, _)| *s <= seq))
    }

    /// The frame at `index` (as counted by [`History::position_after`]).
    pub fn get(&self, index: usize) -> Option<&(Seq, Bytes)> {
        self.entries.get(index)
    }

    /// The `Seq` of the newest frame held whose event id is `id`.
    pub fn find(&self, id: &[u8]) -> Option<Seq> {
        self.entries
            .iter()
            .rev()
            .find(|(_, frame)| frame_id(frame) == id)
            .map(|(seq, _)| *seq)
    }

    /// The first frame held after `seq`, if any.
    pub fn first_after(&self, seq: Seq) -> Option<&(Seq, Bytes)> {
        let index = self.entries.partition_point(|(s, _)| *s <= seq);
        self.entries.get(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(id: u64) -> Bytes {
        Bytes::from(format!("id: {id}\ndata: x\n\n"))
    }

    fn filled(capacity: usize, seqs: impl IntoIterator<Item = Seq>) -> History {
        let mut history = History::new(capacity);
        for seq in seqs {
            history.push(seq, frame(seq * 10));
        }
        history
    }

    #[test]
    fn position_after_skips_what_the_cursor_has() {
        let history = filled(10, [2, 4, 6]);
        assert_eq!(history.position_after(0), Ok(0));
        assert_eq!(history.position_after(2), Ok(1));
        assert_eq!(history.position_after(3), Ok(1));
        assert_eq!(history.position_after(6), Ok(3));
        assert_eq!(history.get(1).map(|(s, _)| *s), Some(4));
    }

    #[test]
    fn a_cursor_behind_a_dropped_frame_has_lagged() {
        let history = filled(2, [1, 2, 3, 4]);
        assert_eq!(history.dropped_through(), 2);
        assert_eq!(history.position_after(1), Err(Lagged));
        assert_eq!(history.position_after(2), Ok(0));
        assert_eq!(history.last_seq(), 4);
    }

    #[test]
    fn find_reads_ids_from_frames() {
        let history = filled(3, [1, 2, 3, 4]);
        assert_eq!(history.find(b"30"), Some(3));
        assert_eq!(history.find(b"10"), None);
        assert_eq!(history.first_after(2).map(|(s, _)| *s), Some(3));
        assert_eq!(history.first_after(4), None);
    }
}
