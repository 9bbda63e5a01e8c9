//! The server-wide history budget: which publications history holds, and their ids.
//!
//! Every publication is counted once, however many topics and shards hold it: its frame's
//! bytes, [`OVERHEAD_BYTES`] of bookkeeping (the publication, its id in the index, its place
//! in this ledger) and [`ENTRY_BYTES`] for each entry in a topic's history on each shard. Past
//! the budget the oldest publications go first: the ledger's floor moves past them, and each
//! shard drops every history entry up to the floor when it takes the next publication. The
//! newest publication is always held, so an event larger than the whole budget is still
//! delivered live. The ledger's own reference keeps a frame alive until the floor passes it,
//! so its byte count is what history holds, not an estimate.
//!
//! The ids of held publications are indexed: a resume finds its place with one lookup, and a
//! publish cannot reuse an id history still holds (which would make resuming from it skip
//! whatever came between).

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use foldhash::HashMap;

use super::history::{Publication, Seq};
use crate::sse::event::frame_id;

/// Bytes counted for each publication beyond its frame: the `Publication` and its allocation,
/// its id's entry in the index and its place in the ledgers.
pub const OVERHEAD_BYTES: usize = 160;
/// Bytes counted for each entry of a publication in a topic's history on one shard.
pub const ENTRY_BYTES: usize = 8;

/// The publications history holds, oldest first, within a byte budget.
#[derive(Debug)]
pub struct Ledger {
    /// Held publications in `Seq` order.
    held: VecDeque<Arc<Publication>>,
    /// The id of each held publication, to its `Seq`.
    ids: HashMap<Bytes, Seq>,
    /// What the held publications count, in bytes.
    bytes: usize,
    /// The most bytes held.
    budget: usize,
    /// Shards holding an entry per topic of each publication.
    shards: usize,
    /// Every publication up to this `Seq` has left history (0 if none has).
    floor: Seq,
}

impl Ledger {
    /// An empty ledger holding at most `budget` bytes for `shards` shards.
    pub fn new(budget: usize, shards: usize) -> Self {
        Self {
            held: VecDeque::new(),
            ids: HashMap::default(),
            bytes: 0,
            budget,
            shards,
            floor: 0,
        }
    }

    /// The `Seq` of the held publication whose event id is `id`.
    pub fn find(&self, id: &[u8]) -> Option<Seq> {
        self.ids.get(id).copied()
    }

    /// Every publication up to this `Seq` has left history.
    pub fn floor(&self) -> Seq {
        self.floor
    }

    /// The held publications, newest first.
    pub fn newest_first(&self) -> impl Iterator<Item = &Arc<Publication>> {
        self.held.iter().rev()
    }

    /// The bytes history holds, as counted.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Holds `publication` (newer than all held, with an id not held), then lets the oldest
    /// go while the budget is exceeded, handing each to `evicted`.
    pub fn push(&mut self, publication: Arc<Publication>, mut evicted: impl FnMut(&Publication)) {
        let id = frame_id(&publication.frame);
        self.ids
            .insert(publication.frame.slice_ref(id), publication.seq);
        self.bytes += self.cost(&publication);
        self.held.push_back(publication);
        while self.bytes > self.budget && self.held.len() > 1 {
            let Some(oldest) = self.held.pop_front() else {
                break;
            };
            self.bytes -= self.cost(&oldest);
            self.ids.remove(frame_id(&oldest.frame));
            self.floor = oldest.seq;
            evicted(&oldest);
        }
        if self.held.len() < self.held.capacity() / 4 {
            self.held.shrink_to(self.held.len() * 2);
        }
    }

    /// Lets go of the publications `keep` refuses (those whose topics were all forgotten),
    /// wherever they are; the floor stays where it is.
    pub fn retain(&mut self, mut keep: impl FnMut(&Publication) -> bool) {
        let mut released = 0;
        let ids = &mut self.ids;
        self.held.retain(|publication| {
            let kept = keep(publication);
            if !kept {
                ids.remove(frame_id(&publication.frame));
                released += 1;
            }
            kept
        });
        if released > 0 {
            self.bytes = self.held.iter().map(|p| self.cost(p)).sum();
            self.held.shrink_to(self.held.len() * 2);
        }
    }

    fn cost(&self, publication: &Publication) -> usize {
        publication.frame.len()
            + OVERHEAD_BYTES
            + ENTRY_BYTES * self.shards * publication.topics.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broadcast::history::tests::publication;

    #[test]
    fn ids_are_found_while_held() {
        let mut ledger = Ledger::new(1 << 20, 2);
        ledger.push(publication(1), |_| panic!("nothing to evict"));
        ledger.push(publication(2), |_| panic!("nothing to evict"));
        assert_eq!(ledger.find(b"10"), Some(1));
        assert_eq!(ledger.find(b"20"), Some(2));
        assert_eq!(ledger.find(b"2"), None);
        let frame = publication(1).frame.len();
        assert_eq!(
            ledger.bytes(),
            2 * (frame + OVERHEAD_BYTES + 2 * ENTRY_BYTES)
        );
    }

    #[test]
    fn the_oldest_go_first_past_the_budget() {
        let one = publication(1).frame.len() + OVERHEAD_BYTES + ENTRY_BYTES;
        let mut ledger = Ledger::new(3 * one, 1);
        let mut evicted = Vec::new();
        for seq in 1..=5 {
            ledger.push(publication(seq), |p| evicted.push(p.seq));
        }
        assert_eq!(evicted, vec![1, 2]);
        assert_eq!(ledger.floor(), 2);
        assert_eq!(ledger.bytes(), 3 * one);
        assert_eq!(ledger.find(b"20"), None, "an evicted id is forgotten");
        assert_eq!(ledger.find(b"30"), Some(3));
    }

    #[test]
    fn publications_of_forgotten_topics_can_go_from_anywhere() {
        let mut ledger = Ledger::new(1 << 20, 1);
        for seq in 1..=4 {
            ledger.push(publication(seq), |_| panic!("nothing to evict"));
        }
        let one = ledger.bytes() / 4;
        ledger.retain(|p| p.seq % 2 == 0);
        assert_eq!(ledger.bytes(), 2 * one);
        assert_eq!(ledger.find(b"10"), None);
        assert_eq!(ledger.find(b"20"), Some(2));
        assert_eq!(ledger.floor(), 0);
    }

    #[test]
    fn the_newest_is_held_even_past_the_budget() {
        let mut ledger = Ledger::new(10, 1);
        let mut evicted = Vec::new();
        ledger.push(publication(1), |p| evicted.push(p.seq));
        ledger.push(publication(2), |p| evicted.push(p.seq));
        assert_eq!(evicted, vec![1]);
        assert_eq!(ledger.find(b"20"), Some(2));
    }
}
