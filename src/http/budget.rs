//! The budget of bytes held for publish bodies being read: a total for the listener, and a
//! share of it per client address.
//!
//! A body holds what it has actually sent (the buffer it is read into), not what it declared,
//! so a body that stalls holds only the bytes it sent; and no address may hold more than its
//! share, so one client that stalls many bodies cannot take the budget from every other
//! publisher. A body that would pass either bound is refused at once (`503`).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, PoisonError};

use foldhash::HashMap;

use crate::address::ClientAddress;
use crate::stats::Stats;

/// How much of a listener's budget one address may hold: this fraction, or a largest body
/// if that is more.
pub const ADDRESS_SHARE: usize = 8;

/// Bytes held by bodies being read, within their bounds.
#[derive(Debug)]
pub struct BodyBudget {
    /// The most bytes all bodies may hold.
    total: usize,
    /// The most bytes the bodies of one address may hold.
    per_address: usize,
    /// What is held now.
    held: Mutex<Held>,
    /// The server's counters, where the bytes held are shown.
    stats: Arc<Stats>,
}

#[derive(Debug, Default)]
struct Held {
    /// Bytes held by every body.
    total: usize,
    /// Bytes held by each address's bodies, for addresses holding any.
    by_address: HashMap<ClientAddress, usize>,
}

/// One body's hold on the budget; dropping it gives the bytes back.
#[derive(Debug)]
pub struct Hold {
    budget: Arc<BodyBudget>,
    /// The body's client, if it counts against a share.
    address: Option<ClientAddress>,
    /// Bytes this body holds.
    bytes: usize,
}

/// The budget has no room for a body's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many request bodies are being read; retry shortly")]
pub struct Busy;

impl BodyBudget {
    /// A budget of `total` bytes, of which an address may hold an eighth, or `largest_body`
    /// if that is more.
    pub fn new(total: usize, largest_body: usize, stats: Arc<Stats>) -> Arc<Self> {
        Arc::new(Self {
            total,
            per_address: (total / ADDRESS_SHARE).max(largest_body).min(total),
            held: Mutex::default(),
            stats,
        })
    }

    /// An empty hold for a body from `address` (`None`: counted in the total only).
    pub fn hold(self: &Arc<Self>, address: Option<ClientAddress>) -> Hold {
        Hold {
            budget: self.clone(),
            address,
            bytes: 0,
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        // Each update is whole before the lock is let go: recover from a panicked holder.
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Hold {
    /// Holds `bytes` in all (more than before, or the same), unless that passes a bound.
    pub fn grow_to(&mut self, bytes: usize) -> Result<(), Busy> {
        let more = bytes.saturating_sub(self.bytes);
        if more == 0 {
            return Ok(());
        }
        let budget = &*self.budget;
        let mut held = budget.held();
        if held.total + more > budget.total {
            return Err(Busy);
        }
        if let Some(address) = self.address {
            let mine = held.by_address.entry(address).or_default();
            if *mine + more > budget.per_address {
                if *mine == 0 {
                    held.by_address.remove(&address);
                }
                return Err(Busy);
            }
            *mine += more;
        }
        held.total += more;
        self.bytes = bytes;
        budget.stats.body_bytes_held.fetch_add(more as u64, Relaxed);
        Ok(())
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        if self.bytes == 0 {
            return;
        }
        let mut held = self.budget.held();
        held.total -= self.bytes;
        let stats = &self.budget.stats;
        stats.body_bytes_held.fetch_sub(self.bytes as u64, Relaxed);
        if let Some(address) = self.address {
            if let Some(mine) = held.by_address.get_mut(&address) {
                *mine -= self.bytes;
                if *mine == 0 {
                    held.by_address.remove(&address);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(n: u8) -> Option<ClientAddress> {
        Some(std::net::IpAddr::from([10, 0, 0, n]).into())
    }

    #[test]
    fn one_address_holds_at_most_its_share_and_all_at_most_the_total() {
        let budget = BodyBudget::new(800, 50, Arc::default());
        let mut first = budget.hold(address(1));
        first.grow_to(60).unwrap();
        first.grow_to(100).unwrap();
        let mut second = budget.hold(address(1));
        assert_eq!(second.grow_to(1), Err(Busy), "address 1 holds its 100");
        let mut others: Vec<Hold> = (2..=8).map(|n| budget.hold(address(n))).collect();
        for hold in &mut others {
            hold.grow_to(100).unwrap();
        }
        let mut late = budget.hold(address(9));
        assert_eq!(late.grow_to(1), Err(Busy), "the total is held");
        drop(first);
        late.grow_to(100).unwrap();
        second.grow_to(0).unwrap();
    }

    #[test]
    fn a_hold_gives_its_bytes_back() {
        let budget = BodyBudget::new(100, 100, Arc::default());
        let mut hold = budget.hold(None);
        hold.grow_to(100).unwrap();
        assert_eq!(budget.stats.body_bytes_held.load(Relaxed), 100);
        assert_eq!(budget.hold(None).grow_to(1), Err(Busy));
        drop(hold);
        assert_eq!(budget.stats.body_bytes_held.load(Relaxed), 0);
        budget.hold(None).grow_to(100).unwrap();
        assert!(budget.held().by_address.is_empty());
    }
}
