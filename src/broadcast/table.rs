//! The shard's subscriber table: a slab whose keys are slots, stable while a subscriber lives.
//!
//! A slot is also the subscriber's poll token, its entry in topic subscriber lists and its
//! node in the keep-alive wheel. The table gives its memory back when a spike of connections
//! has ended.
//!
//! The table starts with room for [`INITIAL_SLOTS`]: large enough that the allocator maps it
//! on its own (glibc does so from 128 KiB), so its untouched pages cost nothing and, when it is
//! freed or grows, the pages go back to the system instead of staying in a malloc arena.

use slab::Slab;

use super::subscriber::Subscriber;
use super::wheel::{Links, WheelLink};

/// Slots the table has room for when it is new or emptied: 4096 x 48 bytes, 192 KiB.
const INITIAL_SLOTS: usize = 4096;

/// Every subscriber of one shard, by slot.
#[derive(Debug)]
pub struct Table {
    /// The subscribers; vacant entries are reused by the next subscribes.
    slab: Slab<Subscriber>,
    /// Whether a subscriber was added since the slab was last made new (so its pages may be
    /// resident).
    used: bool,
}

impl Default for Table {
    fn default() -> Self {
        Self {
            slab: Slab::with_capacity(INITIAL_SLOTS),
            used: false,
        }
    }
}

impl Table {
    /// The slot the next [`Table::insert`] will use.
    pub fn next_slot(&self) -> u32 {
        self.slab.vacant_key() as u32
    }

    /// Adds a subscriber at [`Table::next_slot`].
    pub fn insert(&mut self, subscriber: Subscriber) -> u32 {
        self.used = true;
        self.slab.insert(subscriber) as u32
    }

    /// Removes the subscriber at `slot`.
    pub fn remove(&mut self, slot: u32) -> Option<Subscriber> {
        self.slab.try_remove(slot as usize)
    }

    /// The subscriber at `slot`, if any.
    pub fn get_mut(&mut self, slot: u32) -> Option<&mut Subscriber> {
        self.slab.get_mut(slot as usize)
    }

    /// Takes every subscriber out.
    /// The slots of every subscriber held.
    pub fn slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.slab.iter().map(|(slot, _)| slot as u32)
    }

    pub fn drain(&mut self) -> impl Iterator<Item = Subscriber> + '_ {
        self.slab.drain()
    }

    /// Frees the table's unused memory: all of it once the table is empty, else, below a
    /// quarter of its capacity, the vacant entries after the last subscriber (slots are stable).
    pub fn shrink(&mut self) {
        if self.slab.is_empty() {
            if self.used {
                *self = Self::default();
            }
        } else if self.slab.len() < self.slab.capacity() / 4 {
            self.slab.shrink_to_fit();
        }
    }
}

impl Links for Table {
    fn link(&mut self, slot: u32) -> &mut WheelLink {
        &mut self.slab[slot as usize].wheel
    }
}
