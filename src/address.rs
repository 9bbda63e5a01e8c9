//! Client addresses, and the connections each one holds.
//!
//! Every accepted connection counts against its client's address until it closes, whether
//! hyper serves it or its socket became a subscriber in a shard: an [`Admission`] is the
//! count's guard while the front end holds the connection, and an [`AddressKey`] (4 bytes)
//! is what a subscriber keeps to give its count back when its shard drops it. IPv6 clients
//! are counted by their /64 prefix, since one host usually holds a whole /64.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use foldhash::HashMap;
use slab::Slab;

/// A client as limits count it: an IPv4 address, or an IPv6 /64 prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddress(u128);

impl From<IpAddr> for ClientAddress {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self(u32::from(v4).into()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(u32::from(v4).into()),
                // Tagged above the IPv4 range, so no prefix equals an IPv4 address.
                None => Self((u128::from(v6) >> 64) | 1 << 64),
            },
        }
    }
}

/// A client holds its limit of connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("this address holds its limit of {0} connections")]
pub struct AddressLimit(pub u32);

/// The connections each client address holds.
#[derive(Debug)]
pub struct Addresses {
    /// The most connections one address may hold; 0 for no limit.
    limit: u32,
    /// The counts, shared by the accept loop, connection tasks and shards.
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    /// Each address holding connections, to its entry.
    keys: HashMap<ClientAddress, u32>,
    /// Each address's entry: the address and its open connections.
    entries: Slab<(ClientAddress, u32)>,
}

/// A connection counted against its address; dropping it gives the count back.
#[derive(Debug)]
pub struct Admission {
    addresses: Arc<Addresses>,
    /// The client's address.
    address: ClientAddress,
    /// `None` once handed on as an [`AddressKey`].
    key: Option<AddressKey>,
}

/// A counted connection's entry, kept by a subscriber and given back with
/// [`Addresses::release`].
#[derive(Debug, PartialEq, Eq)]
pub struct AddressKey(u32);

impl Addresses {
    /// Counts connections, allowing `limit` per address (0: no limit).
    pub fn new(limit: u32) -> Arc<Self> {
        Arc::new(Self {
            limit,
            counts: Mutex::default(),
        })
    }

    /// Counts a new connection from `ip`, unless its address holds the limit.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admission, AddressLimit> {
        let address = ClientAddress::from(ip);
        let mut counts = self.counts();
        let Counts { keys, entries } = &mut *counts;
        let key = *keys
            .entry(address)
            .or_insert_with(|| entries.insert((address, 0)) as u32);
        let count = &mut entries[key as usize].1;
        if self.limit != 0 && *count >= self.limit {
            return Err(AddressLimit(self.limit));
        }
        *count += 1;
        Ok(Admission {
            addresses: self.clone(),
            address,
            key: Some(AddressKey(key)),
        })
    }

    /// Gives back the counts of connections that have closed.
    pub fn release(&self, keys: impl IntoIterator<Item = AddressKey>) {
        let mut counts = self.counts();
        for AddressKey(key) in keys {
            counts.release(key);
        }
    }

    /// The connections `ip`'s address holds.
    #[cfg(test)]
    fn connections(&self, ip: IpAddr) -> u32 {
        let counts = self.counts();
        let key = counts.keys.get(&ClientAddress::from(ip));
        key.map_or(0, |&key| counts.entries[key as usize].1)
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        // Counts stay consistent even if a holder panicked: each update is one statement.
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Counts {
    fn release(&mut self, key: u32) {
        let Some((address, count)) = self.entries.get_mut(key as usize) else {
            return;
        };
        *count = count.saturating_sub(1);
        if *count == 0 {
            let address = *address;
            self.keys.remove(&address);
            self.entries.remove(key as usize);
            if self.entries.is_empty() {
                *self = Self::default();
            }
        }
    }
}

impl Admission {
    /// The client's address, as limits count it.
    pub fn address(&self) -> ClientAddress {
        self.address
    }

    /// Hands the count on to whoever keeps the connection from now on.
    pub fn into_key(mut self) -> AddressKey {
        self.key.take().expect("an admission is handed on once")
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.addresses.release([key]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn each_address_holds_at_most_the_limit() {
        let addresses = Addresses::new(2);
        let a1 = addresses.admit(ip("10.0.0.1")).unwrap();
        let _a2 = addresses.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(
            addresses.admit(ip("10.0.0.1")).unwrap_err(),
            AddressLimit(2)
        );
        let _b = addresses.admit(ip("10.0.0.2")).unwrap();
        drop(a1);
        let a3 = addresses.admit(ip("10.0.0.1")).unwrap();
        let key = a3.into_key();
        assert_eq!(addresses.connections(ip("10.0.0.1")), 2);
        addresses.release([key]);
        assert_eq!(addresses.connections(ip("10.0.0.1")), 1);
    }

    #[test]
    fn ipv6_counts_by_prefix_and_mapped_ipv4_as_ipv4() {
        let addresses = Addresses::new(1);
        let _a = addresses.admit(ip("2001:db8::1")).unwrap();
        assert!(addresses.admit(ip("2001:db8::ffff:2")).is_err());
        assert!(addresses.admit(ip("2001:db8:0:1::1")).is_ok());
        let _v4 = addresses.admit(ip("10.0.0.1")).unwrap();
        assert!(addresses.admit(ip("::ffff:10.0.0.1")).is_err());
        assert_ne!(
            ClientAddress::from(ip("::1")),
            ClientAddress::from(ip("0.0.0.1"))
        );
    }

    #[test]
    fn no_limit_still_counts() {
        let addresses = Addresses::new(0);
        let held: Vec<_> = (0..100)
            .map(|_| addresses.admit(ip("127.0.0.1")).unwrap())
            .collect();
        assert_eq!(addresses.connections(ip("127.0.0.1")), 100);
        drop(held);
        assert_eq!(addresses.connections(ip("127.0.0.1")), 0);
    }
}
