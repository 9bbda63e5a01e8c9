//! The keep-alive timer wheel.
//!
//! One wheel serves every subscriber of a shard: a subscriber holds a [`WheelLink`] (12 bytes:
//! two list links and the tick of its last write), never a `Sleep` of its own. The wheel has
//! one more bucket than there are ticks in a keep-alive interval; a subscriber sits in the
//! bucket of its deadline, `last_write + interval`.
//!
//! Writing to a subscriber only records the tick ([`WheelLink::touch`]); it is not moved. When
//! its bucket comes round, a subscriber idle for a whole interval is reported due (the shard
//! writes it a keep-alive comment) and the others are put back in the bucket of their real
//! deadline. So a keep-alive goes out after between one interval and one interval plus a tick
//! of silence, and a busy subscriber costs the wheel nothing per event.

use std::time::{Duration, Instant};

/// Ticks in one keep-alive interval.
const TICKS_PER_INTERVAL: u64 = 16;
/// Buckets: one more than the ticks in an interval, so a fresh deadline never lands in the
/// bucket being drained.
const BUCKETS: u64 = TICKS_PER_INTERVAL + 1;
/// No slot: the end of a list.
const NIL: u32 = u32::MAX;
/// Marks a `prev` that names a bucket (the node heads that bucket's list) instead of a slot.
const HEAD: u32 = 1 << 31;

/// A subscriber's place in the wheel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WheelLink {
    /// The previous slot in its bucket, or `HEAD | bucket` for the first, or `NIL`.
    prev: u32,
    /// The next slot in its bucket, or `NIL`.
    next: u32,
    /// The tick (truncated to 32 bits) of the last write to the subscriber.
    last_write: u32,
}

impl Default for WheelLink {
    fn default() -> Self {
        Self {
            prev: NIL,
            next: NIL,
            last_write: 0,
        }
    }
}

impl WheelLink {
    /// Records a write at `tick`.
    pub fn touch(&mut self, tick: u64) {
        self.last_write = tick as u32;
    }

    /// Whole keep-alive intervals since the last write, as of `tick`.
    pub fn intervals_idle(&self, tick: u64) -> u64 {
        u64::from((tick as u32).wrapping_sub(self.last_write)) / TICKS_PER_INTERVAL
    }
}

/// Where the wheel finds the link of a slot: the shard's subscriber table.
pub trait Links {
    /// The wheel link of an occupied slot.
    fn link(&mut self, slot: u32) -> &mut WheelLink;
}

/// A wheel of buckets of slots, one for all of a shard's subscribers.
#[derive(Debug)]
pub struct Wheel {
    /// The first slot of each bucket's list, or `NIL`.
    buckets: [u32; BUCKETS as usize],
    /// The length of a tick: a sixteenth of the keep-alive interval.
    tick: Duration,
    /// The instant of tick 0.
    start: Instant,
    /// The last tick whose bucket was drained.
    drained: u64,
}

impl Wheel {
    /// A wheel that reports subscribers idle for `interval`, counting ticks from `start`.
    pub fn new(interval: Duration, start: Instant) -> Self {
        let tick = (interval / TICKS_PER_INTERVAL as u32).max(Duration::from_micros(100));
        Self {
            buckets: [NIL; BUCKETS as usize],
            tick,
            start,
            drained: 0,
        }
    }

    /// The tick `now` falls in.
    pub fn tick_at(&self, now: Instant) -> u64 {
        (now.saturating_duration_since(self.start).as_nanos() / self.tick.as_nanos()) as u64
    }

    /// How long from `now` until the next tick is due to be drained.
    pub fn timeout(&self, now: Instant) -> Duration {
        let next = self.start + self.tick * (self.drained + 1) as u32;
        next.saturating_duration_since(now)
    }

    /// Adds a slot written at `tick`.
    pub fn insert(&mut self, links: &mut impl Links, slot: u32, tick: u64) {
        links.link(slot).touch(tick);
        self.link(links, slot, tick + TICKS_PER_INTERVAL);
    }

    /// Takes a slot out of the wheel.
    pub fn remove(&mut self, links: &mut impl Links, slot: u32) {
        let WheelLink { prev, next, .. } = *links.link(slot);
        if prev != NIL && prev & HEAD != 0 {
            self.buckets[(prev & !HEAD) as usize] = next;
        } else if prev != NIL {
            links.link(prev).next = next;
        }
        if next != NIL {
            links.link(next).prev = prev;
        }
        let link = links.link(slot);
        link.prev = NIL;
        link.next = NIL;
    }

    /// Drains every bucket up to tick `now` and appends to `due` each slot idle for a whole
    /// interval; those are re-armed one interval on, and the caller touches those it writes
    /// (an untouched one is due again an interval later, its idle time growing).
    pub fn expire(&mut self, links: &mut impl Links, now: u64, due: &mut Vec<u32>) {
        if now <= self.drained {
            return;
        }
        let first = (self.drained + 1).max(now.saturating_sub(BUCKETS - 1));
        let reported = due.len();
        for tick in first..=now {
            let bucket = (tick % BUCKETS) as usize;
            let mut slot = std::mem::replace(&mut self.buckets[bucket], NIL);
            while slot != NIL {
                let link = links.link(slot);
                let next = link.next;
                let idle = (now as u32).wrapping_sub(link.last_write) as u64;
                if idle >= TICKS_PER_INTERVAL {
                    due.push(slot);
                } else {
                    self.link(links, slot, now - idle + TICKS_PER_INTERVAL);
                }
                slot = next;
            }
        }
        // Linked only now: in a late drain their next bucket may be one this drain has yet to
        // reach, where they would be reported again.
        for &slot in &due[reported..] {
            self.link(links, slot, now + TICKS_PER_INTERVAL);
        }
        self.drained = now;
    }

    fn link(&mut self, links: &mut impl Links, slot: u32, deadline: u64) {
        let bucket = (deadline % BUCKETS) as usize;
        let head = self.buckets[bucket];
        let link = links.link(slot);
        link.prev = HEAD | bucket as u32;
        link.next = head;
        if head != NIL {
            links.link(head).prev = slot;
        }
        self.buckets[bucket] = slot;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Links for Vec<WheelLink> {
        fn link(&mut self, slot: u32) -> &mut WheelLink {
            &mut self[slot as usize]
        }
    }

    const SECOND: Duration = Duration::from_secs(1);

    fn due_at(wheel: &mut Wheel, links: &mut Vec<WheelLink>, tick: u64) -> Vec<u32> {
        let mut due = Vec::new();
        wheel.expire(links, tick, &mut due);
        due.sort();
        due
    }

    #[test]
    fn an_idle_slot_is_due_once_per_interval() {
        let mut wheel = Wheel::new(SECOND * 16, Instant::now());
        let mut links = vec![WheelLink::default(); 2];
        wheel.insert(&mut links, 0, 0);
        for tick in 1..16 {
            let due = due_at(&mut wheel, &mut links, tick);
            assert!(due.is_empty(), "tick {tick}");
            if tick == 3 {
                wheel.insert(&mut links, 1, 3);
            }
        }
        assert_eq!(due_at(&mut wheel, &mut links, 16), vec![0]);
        assert_eq!(due_at(&mut wheel, &mut links, 19), vec![1]);
        assert!(due_at(&mut wheel, &mut links, 31).is_empty());
        assert_eq!(due_at(&mut wheel, &mut links, 32), vec![0]);
    }

    #[test]
    fn an_untouched_slot_counts_its_idle_intervals() {
        let mut wheel = Wheel::new(SECOND * 16, Instant::now());
        let mut links = vec![WheelLink::default(); 1];
        wheel.insert(&mut links, 0, 0);
        assert_eq!(due_at(&mut wheel, &mut links, 16), vec![0]);
        assert_eq!(due_at(&mut wheel, &mut links, 32), vec![0]);
        assert_eq!(links[0].intervals_idle(47), 2);
        assert_eq!(links[0].intervals_idle(48), 3);
        links[0].touch(48);
        assert_eq!(links[0].intervals_idle(50), 0);
    }

    #[test]
    fn a_write_postpones_the_keep_alive() {
        let mut wheel = Wheel::new(SECOND * 16, Instant::now());
        let mut links = vec![WheelLink::default(); 1];
        wheel.insert(&mut links, 0, 0);
        links[0].touch(10);
        assert!(due_at(&mut wheel, &mut links, 16).is_empty());
        assert!(due_at(&mut wheel, &mut links, 25).is_empty());
        assert_eq!(due_at(&mut wheel, &mut links, 26), vec![0]);
    }

    #[test]
    fn removed_slots_are_never_due_and_lists_stay_whole() {
        let mut wheel = Wheel::new(SECOND * 16, Instant::now());
        let mut links = vec![WheelLink::default(); 4];
        for slot in 0..4 {
            wheel.insert(&mut links, slot, 0);
        }
        wheel.remove(&mut links, 2);
        wheel.remove(&mut links, 3);
        wheel.remove(&mut links, 0);
        assert_eq!(due_at(&mut wheel, &mut links, 16), vec![1]);
        wheel.insert(&mut links, 0, 16);
        assert_eq!(due_at(&mut wheel, &mut links, 32), vec![0, 1]);
    }

    #[test]
    fn a_late_drain_catches_up_without_losing_slots() {
        let mut wheel = Wheel::new(SECOND * 16, Instant::now());
        let mut links = vec![WheelLink::default(); 3];
        wheel.insert(&mut links, 0, 0);
        wheel.insert(&mut links, 1, 5);
        wheel.insert(&mut links, 2, 40);
        assert_eq!(due_at(&mut wheel, &mut links, 100), vec![0, 1, 2]);
        assert!(due_at(&mut wheel, &mut links, 115).is_empty());
        assert_eq!(due_at(&mut wheel, &mut links, 116), vec![0, 1, 2]);
    }

    #[test]
    fn timeout_points_at_the_next_tick() {
        let start = Instant::now();
        let wheel = Wheel::new(SECOND * 16, start);
        assert_eq!(wheel.timeout(start), SECOND);
        assert_eq!(wheel.tick_at(start + SECOND * 3 + SECOND / 2), 3);
    }
}
