//! The subscribers of a shard that hold a token: what each may see, and when each must go.
//!
//! An anonymous subscriber costs nothing here. One with a token has an entry by slot (24
//! bytes: the slot, its shared selector set, interned by the broadcaster, and its expiry); an
//! expiring token also has an entry in a heap of expiries (8 bytes), which the shard looks at each turn
//! to end the streams whose token has expired (the browser reconnects and authenticates again).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use foldhash::HashMap;

use super::{Access, NEVER};
use crate::selector::Selectors;

/// The shard's subscribers with a token, by slot.
#[derive(Debug, Default)]
pub struct Authorized {
    /// What each subscriber with a token may see, and until when.
    by_slot: HashMap<u32, Access>,
    /// `(expiry, slot)` of each token that expires, soonest first; an entry whose slot has
    /// left (or holds another subscriber since) is dropped when it comes up.
    expiries: BinaryHeap<Reverse<(u32, u32)>>,
}

impl Authorized {
    /// Records the token of the subscriber at `slot`.
    pub fn insert(&mut self, slot: u32, access: Access) {
        if access.expires != NEVER {
            self.expiries.push(Reverse((access.expires, slot)));
        }
        self.by_slot.insert(slot, access);
    }

    /// Forgets the subscriber at `slot`.
    pub fn remove(&mut self, slot: u32) {
        if self.by_slot.remove(&slot).is_some() && self.by_slot.is_empty() {
            *self = Self::default();
        } else if self.expiries.len() > 2 * self.by_slot.len() + 1024 {
            // Tokens of subscribers that left pile up: keep only the current ones.
            self.expiries = self
                .by_slot
                .iter()
                .filter(|(_, access)| access.expires != NEVER)
                .map(|(&slot, access)| Reverse((access.expires, slot)))
                .collect();
        }
    }

    /// The selectors of the subscriber at `slot`, if it has a token.
    pub fn selectors(&self, slot: u32) -> Option<&Selectors> {
        // Asked on every flush: no hashing while no subscriber has a token.
        if self.by_slot.is_empty() {
            return None;
        }
        self.by_slot.get(&slot).map(|access| &*access.selectors)
    }

    /// Appends to `expired` the slots whose token has expired at `now` (seconds since the
    /// Unix epoch).
    pub fn expired(&mut self, now: u64, expired: &mut Vec<u32>) {
        while let Some(&Reverse((expires, slot))) = self.expiries.peek() {
            if u64::from(expires) > now {
                return;
            }
            self.expiries.pop();
            let current = self.by_slot.get(&slot).map(|access| access.expires);
            if current == Some(expires) {
                expired.push(slot);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn access(expires: Option<u32>) -> Access {
        Access {
            selectors: Arc::new(Selectors::from_claim(["a"])),
            expires: expires.unwrap_or(NEVER),
        }
    }

    #[test]
    fn tokens_expire_in_order_and_only_for_their_own_subscriber() {
        let mut authorized = Authorized::default();
        authorized.insert(1, access(Some(100)));
        authorized.insert(2, access(Some(50)));
        authorized.insert(3, access(None));
        assert!(authorized.selectors(3).is_some_and(|s| s.allows("a")));
        assert!(authorized.selectors(4).is_none());
        let mut expired = Vec::new();
        authorized.expired(49, &mut expired);
        assert!(expired.is_empty());
        authorized.expired(60, &mut expired);
        assert_eq!(expired, vec![2]);
        // Slot 1 left and was taken by a subscriber whose token expires later.
        authorized.remove(1);
        authorized.insert(1, access(Some(200)));
        expired.clear();
        authorized.expired(150, &mut expired);
        assert!(
            expired.is_empty(),
            "the old expiry is not the new subscriber's"
        );
        authorized.expired(200, &mut expired);
        assert_eq!(expired, vec![1]);
    }
}
