//! Source addresses for client sockets: 127.0.0.1, then 127.0.0.2, ... as ports run short.
//!
//! Loopback has one source address per target unless the client picks others, and one address
//! gives at most the ephemeral port range (about 28,000 ports here) of connections to one
//! target. Connection `i` of a run uses address `i / per_address`; a socket on the first
//! address is left unbound, so the kernel picks its port at `connect` and may reuse ports in
//! `TIME_WAIT` from earlier runs, while later addresses are bound before connecting, each
//! connection to a port of its own chosen here ([`FIRST_PORT`]).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The most loopback addresses a run spreads over (127.0.0.1 ..= 127.0.0.254).
pub const MAX_ADDRESSES: usize = 254;

/// Connection `i` on a bound address uses port `FIRST_PORT + i mod per_address` (at most
/// 28,000 ports: up to 60,767). The kernel's own choice, `bind` to port 0, searches for a free
/// port, and the search grows with the ports the address already holds: with 20,000 to an
/// address it took both cores and 78 s to connect 76,000 subscribers (19,000 answered after
/// 60 s, kernel 6.18, `inet_csk_get_port` at the top of `perf`), against 16 s at 5,000.
pub const FIRST_PORT: u16 = 32_768;
/// The most ports from [`FIRST_PORT`] on that a bound address uses (the largest
/// `--per-address`).
const MAX_PORTS: usize = 28_000;

/// Chooses the source address of each connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spread {
    /// Whether every target is IPv4 loopback: only then are connections spread (a socket
    /// bound to 127.0.0.2 cannot reach `::1`).
    v4: bool,
    /// Connections per source address before moving to the next.
    pub per_address: usize,
}

impl Spread {
    /// A spread for connections to `targets`, `per_address` connections per source address.
    pub fn new(targets: impl IntoIterator<Item = IpAddr>, per_address: usize) -> Spread {
        let v4_loopback = |ip: IpAddr| matches!(ip, IpAddr::V4(ip) if ip.is_loopback());
        Spread {
            v4: targets.into_iter().all(v4_loopback),
            per_address: per_address.max(1),
        }
    }

    /// The address slot of connection `index`, before any skipping.
    pub fn slot(&self, index: usize) -> usize {
        index / self.per_address
    }

    /// The source address of address slot `slot`: `None` leaves the socket unbound (slot 0,
    /// or a target that is not IPv4 loopback); past the last address, `None` too, and the
    /// caller reports the shortage.
    pub fn source(&self, slot: usize) -> Option<IpAddr> {
        if !self.v4 || slot == 0 || slot >= MAX_ADDRESSES {
            return None;
        }
        let last = u8::try_from(slot + 1).ok()?;
        Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
    }

    /// Where connection `index` binds on address slot `slot`: its source address and a port
    /// of its own, or `None` to leave it unbound.
    pub fn bind_to(&self, slot: usize, index: usize) -> Option<SocketAddr> {
        let offset = u16::try_from(index % self.per_address.min(MAX_PORTS)).ok()?;
        Some(SocketAddr::new(self.source(slot)?, FIRST_PORT + offset))
    }

    /// True if `slot` is a usable address for these targets.
    pub fn has_slot(&self, slot: usize) -> bool {
        match self.v4 {
            true => slot < MAX_ADDRESSES,
            false => slot == 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Spread, FIRST_PORT};
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

    fn v4(last: u8) -> Option<IpAddr> {
        Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
    }

    #[test]
    fn fills_one_address_then_the_next() {
        let spread = Spread::new([IpAddr::V4(Ipv4Addr::LOCALHOST)], 20_000);
        assert_eq!(spread.slot(0), 0);
        assert_eq!(spread.slot(19_999), 0);
        assert_eq!(spread.slot(20_000), 1);
        assert_eq!(spread.slot(45_000), 2);
        assert_eq!(
            spread.source(0),
            None,
            "first address: kernel picks at connect"
        );
        assert_eq!(spread.source(1), v4(2));
        assert_eq!(spread.source(2), v4(3));
        assert_eq!(spread.source(253), v4(254));
        assert_eq!(spread.source(254), None);
        assert!(spread.has_slot(253) && !spread.has_slot(254));
    }

    #[test]
    fn each_connection_of_a_bound_address_has_its_own_port() {
        let spread = Spread::new([IpAddr::V4(Ipv4Addr::LOCALHOST)], 20_000);
        let bound = |index| spread.bind_to(spread.slot(index), index);
        assert_eq!(bound(19_999), None, "first address: left unbound");
        let at = |last, port| Some(SocketAddr::new(v4(last).unwrap(), port));
        assert_eq!(bound(20_000), at(2, FIRST_PORT));
        assert_eq!(bound(39_999), at(2, FIRST_PORT + 19_999));
        assert_eq!(bound(40_000), at(3, FIRST_PORT));
        assert_eq!(
            spread.bind_to(2, 20_001),
            at(3, FIRST_PORT + 1),
            "after a skip"
        );
        let ipv6 = Spread::new([IpAddr::V6(Ipv6Addr::LOCALHOST)], 10);
        assert_eq!(ipv6.bind_to(1, 15), None);
    }

    #[test]
    fn ipv6_loopback_is_not_spread() {
        let spread = Spread::new([IpAddr::V6(Ipv6Addr::LOCALHOST)], 10);
        assert_eq!(spread.source(1), None);
        assert!(spread.has_slot(0) && !spread.has_slot(1));
    }

    #[test]
    fn several_targets_are_spread_only_if_all_are_ipv4_loopback() {
        let node = |last| IpAddr::V4(Ipv4Addr::new(127, 0, 0, last));
        let cluster = Spread::new([node(1), node(1), node(9)], 20_000);
        assert_eq!(cluster.source(3), v4(4));
        let mixed = Spread::new([node(1), IpAddr::V6(Ipv6Addr::LOCALHOST)], 20_000);
        assert_eq!(mixed.source(1), None);
        assert!(mixed.has_slot(0) && !mixed.has_slot(1));
    }

    #[test]
    fn zero_per_address_is_one() {
        assert_eq!(Spread::new([IpAddr::V4(Ipv4Addr::LOCALHOST)], 0).slot(3), 3);
    }
}
