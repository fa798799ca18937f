//! IPv6 address arithmetic for an IP-HTTPS link: prefixes, the per-client
//! /64, interface identifiers and SLAAC address formation (RFC 4862 §5.5.3),
//! link-local (RFC 4291 §2.5.6) and solicited-node (RFC 4291 §2.7.1)
//! addresses.
//!
//! The server gives each client its own /64 carved out of a configured pool
//! (see the `iphttps` crate's `router` for why); [`Ipv6Prefix::subnet64`] does the carving
//! and [`Prefix64`] is the routing and anti-spoofing key.

use std::fmt;
use std::net::Ipv6Addr;

/// Why a prefix or interface identifier was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddrError {
    /// Prefix length above 128.
    #[error("prefix length {0} exceeds 128")]
    PrefixLen(u8),
    /// Bits beyond the prefix length are set.
    #[error("{addr}/{len} has bits set beyond the prefix length")]
    HostBits {
        /// The address given.
        addr: Ipv6Addr,
        /// The prefix length given.
        len: u8,
    },
    /// A /64 pool needs a prefix of at most 64 bits.
    #[error("a pool of /64s needs a prefix of at most /64, not /{0}")]
    PoolTooLong(u8),
    /// The interface identifier is reserved (RFC 5453) and must not be used.
    #[error("interface identifier {0:016x} is reserved (RFC 5453)")]
    ReservedIid(u64),
}

fn mask(len: u8) -> u128 {
    match len {
        0 => 0,
        l if l >= 128 => u128::MAX,
        l => u128::MAX << (128 - u32::from(l)),
    }
}

/// An IPv6 prefix with no bits set beyond its length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv6Prefix {
    addr: Ipv6Addr,
    len: u8,
}

impl Ipv6Prefix {
    /// A prefix; refuses lengths above 128 and set host bits.
    pub fn new(addr: Ipv6Addr, len: u8) -> Result<Self, AddrError> {
        if len > 128 {
            return Err(AddrError::PrefixLen(len));
        }
        if u128::from(addr) & !mask(len) != 0 {
            return Err(AddrError::HostBits { addr, len });
        }
        Ok(Ipv6Prefix { addr, len })
    }

    /// The prefix containing `addr`, host bits cleared.
    pub fn truncating(addr: Ipv6Addr, len: u8) -> Self {
        let len = len.min(128);
        Ipv6Prefix {
            addr: Ipv6Addr::from(u128::from(addr) & mask(len)),
            len,
        }
    }

    /// The network address.
    pub fn addr(&self) -> Ipv6Addr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// Whether `addr` lies within the prefix.
    pub fn contains(&self, addr: Ipv6Addr) -> bool {
        u128::from(addr) & mask(self.len) == u128::from(self.addr)
    }

    /// How many /64s the prefix holds (`None` for prefixes longer than /64).
    pub fn subnet64_count(&self) -> Option<u128> {
        if self.len > 64 {
            None
        } else {
            Some(1u128 << (64 - u32::from(self.len)))
        }
    }

    /// The `index`-th /64 within the prefix, if there is one.
    pub fn subnet64(&self, index: u64) -> Result<Option<Prefix64>, AddrError> {
        let Some(count) = self.subnet64_count() else {
            return Err(AddrError::PoolTooLong(self.len));
        };
        if u128::from(index) >= count {
            return Ok(None);
        }
        let net = (u128::from(self.addr) >> 64) as u64 | index;
        Ok(Some(Prefix64(net)))
    }

    /// Parses `addr/len`.
    pub fn parse(s: &str) -> Option<Self> {
        let (a, l) = s.split_once('/')?;
        Ipv6Prefix::new(a.parse().ok()?, l.parse().ok()?).ok()
    }
}

impl fmt::Display for Ipv6Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// A /64: the upper 64 bits of an address. One client's link prefix, and
/// the key of the server's routing table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix64(u64);

impl Prefix64 {
    /// The /64 containing `addr`.
    pub fn of(addr: Ipv6Addr) -> Self {
        Prefix64((u128::from(addr) >> 64) as u64)
    }

    /// The upper 64 bits.
    pub fn bits(&self) -> u64 {
        self.0
    }

    /// The network address (interface identifier zero).
    pub fn network(&self) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.0) << 64)
    }

    /// As a general prefix.
    pub fn prefix(&self) -> Ipv6Prefix {
        Ipv6Prefix {
            addr: self.network(),
            len: 64,
        }
    }

    /// Whether `addr` is within this /64.
    pub fn contains(&self, addr: Ipv6Addr) -> bool {
        Prefix64::of(addr) == *self
    }

    /// The address with this prefix and interface identifier `iid`.
    pub fn address(&self, iid: InterfaceId) -> Ipv6Addr {
        Ipv6Addr::from((u128::from(self.0) << 64) | u128::from(iid.0))
    }
}

impl fmt::Display for Prefix64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/64", self.network())
    }
}

/// A 64-bit interface identifier (RFC 4291 §2.5.1) that is not reserved
/// (RFC 5453): usable for SLAAC (RFC 4862 §5.5.3 (d)) and link-local
/// addresses.
///
/// IP-HTTPS links have no link-layer address to derive one from, so the
/// driver supplies random bytes (RFC 8981) or a stable secret-derived value
/// (RFC 7217).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InterfaceId(u64);

impl InterfaceId {
    /// Refuses the reserved identifiers of RFC 5453: all zeros (the
    /// Subnet-Router anycast address), `0200:5EFF:FE00:0000` to
    /// `0200:5EFF:FEFF:FFFF` (proxy MIPv6 and reserved), and
    /// `FDFF:FFFF:FFFF:FF80` to `FDFF:FFFF:FFFF:FFFF` (subnet anycast).
    pub fn new(bytes: [u8; 8]) -> Result<Self, AddrError> {
        let v = u64::from_be_bytes(bytes);
        let reserved = v == 0
            || (0x0200_5eff_fe00_0000..=0x0200_5eff_feff_ffff).contains(&v)
            || (0xfdff_ffff_ffff_ff80..=0xfdff_ffff_ffff_ffff).contains(&v);
        if reserved {
            Err(AddrError::ReservedIid(v))
        } else {
            Ok(InterfaceId(v))
        }
    }

    /// The identifier of `addr` (its lower 64 bits), if not reserved.
    pub fn of(addr: Ipv6Addr) -> Result<Self, AddrError> {
        InterfaceId::new((u128::from(addr) as u64).to_be_bytes())
    }

    /// The 64 bits.
    pub fn bits(&self) -> u64 {
        self.0
    }
}

/// The link-local prefix fe80::/64 (RFC 4291 §2.5.6).
pub const LINK_LOCAL: Prefix64 = Prefix64(0xfe80_0000_0000_0000);

/// The link-local address `fe80::<iid>`.
pub fn link_local(iid: InterfaceId) -> Ipv6Addr {
    LINK_LOCAL.address(iid)
}

/// SLAAC (RFC 4862 §5.5.3 (d)): the address formed from an advertised
/// prefix and a 64-bit interface identifier, or `None` when the prefix length
/// is not 64 ("the sum of the prefix length and interface identifier length
/// ... MUST be 128") or the prefix is link-local (§5.5.3 (b)).
pub fn slaac(prefix: Ipv6Addr, prefix_len: u8, iid: InterfaceId) -> Option<Ipv6Addr> {
    if prefix_len != 64 {
        return None;
    }
    let p = Prefix64::of(prefix);
    if is_link_local(p.network()) {
        return None;
    }
    Some(p.address(iid))
}

/// The solicited-node multicast address of `addr`: ff02::1:ffXX:XXXX
/// (RFC 4291 §2.7.1).
pub fn solicited_node(addr: Ipv6Addr) -> Ipv6Addr {
    let low = u128::from(addr) & 0xff_ffff;
    Ipv6Addr::from(0xff02_0000_0000_0000_0000_0001_ff00_0000u128 | low)
}

/// fe80::/10.
pub fn is_link_local(addr: Ipv6Addr) -> bool {
    addr.segments()[0] & 0xffc0 == 0xfe80
}

/// Multicast with link-local or interface-local scope (ff01::/16, ff02::/16
/// and the same scopes with flags set), never forwarded by a router.
pub fn is_link_scope_multicast(addr: Ipv6Addr) -> bool {
    let s = addr.segments()[0];
    s & 0xff00 == 0xff00 && matches!(s & 0x000f, 1 | 2)
}

/// The all-nodes multicast address ff02::1.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// The all-routers multicast address ff02::2.
pub const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn prefix_checks_and_containment() {
        let p = Ipv6Prefix::new(a("2001:db8:100::"), 40).unwrap();
        assert!(p.contains(a("2001:db8:100::1")));
        assert!(p.contains(a("2001:db8:1ff:ffff::1")));
        assert!(!p.contains(a("2001:db8:200::")));
        assert_eq!(
            Ipv6Prefix::new(a("2001:db8::1"), 64),
            Err(AddrError::HostBits {
                addr: a("2001:db8::1"),
                len: 64
            })
        );
        assert_eq!(
            Ipv6Prefix::new(a("::"), 129),
            Err(AddrError::PrefixLen(129))
        );
        assert!(Ipv6Prefix::new(a("::"), 0).unwrap().contains(a("ffff::")));
        assert!(Ipv6Prefix::new(a("::1"), 128).unwrap().contains(a("::1")));
        assert_eq!(
            Ipv6Prefix::truncating(a("2001:db8::1"), 32).to_string(),
            "2001:db8::/32"
        );
        assert_eq!(Ipv6Prefix::parse("2001:db8::/48").unwrap().prefix_len(), 48);
        assert!(Ipv6Prefix::parse("2001:db8::1/48").is_none());
        assert!(Ipv6Prefix::parse("2001:db8::").is_none());
    }

    #[test]
    fn carving_a_pool_into_64s() {
        let pool = Ipv6Prefix::new(a("2001:db8:aa00::"), 56).unwrap();
        assert_eq!(pool.subnet64_count(), Some(256));
        let first = pool.subnet64(0).unwrap().unwrap();
        let last = pool.subnet64(255).unwrap().unwrap();
        assert_eq!(first.to_string(), "2001:db8:aa00::/64");
        assert_eq!(last.to_string(), "2001:db8:aa00:ff::/64");
        assert_eq!(pool.subnet64(256).unwrap(), None);
        assert!(pool.contains(last.network()));
        assert_eq!(
            Ipv6Prefix::new(a("2001:db8::"), 96).unwrap().subnet64(0),
            Err(AddrError::PoolTooLong(96))
        );
        let whole = Ipv6Prefix::new(a("::"), 0).unwrap();
        assert_eq!(whole.subnet64_count(), Some(1u128 << 64));
        assert_eq!(whole.subnet64(u64::MAX).unwrap().unwrap().bits(), u64::MAX);
    }

    #[test]
    fn prefix64_membership() {
        let p = Prefix64::of(a("2001:db8:1:2:aaaa::1"));
        assert_eq!(p.network(), a("2001:db8:1:2::"));
        assert!(p.contains(a("2001:db8:1:2:ffff:ffff:ffff:ffff")));
        assert!(!p.contains(a("2001:db8:1:3::")));
        assert_eq!(
            p.prefix(),
            Ipv6Prefix::new(a("2001:db8:1:2::"), 64).unwrap()
        );
    }

    #[test]
    fn reserved_interface_ids() {
        for v in [
            0u64,
            0x0200_5eff_fe00_0000,
            0x0200_5eff_fe00_5213,
            0x0200_5eff_feff_ffff,
            0xfdff_ffff_ffff_ff80,
            0xfdff_ffff_ffff_ffff,
        ] {
            assert_eq!(
                InterfaceId::new(v.to_be_bytes()),
                Err(AddrError::ReservedIid(v))
            );
        }
        for v in [
            1u64,
            0x0200_5eff_fdff_ffff,
            0x0200_5eff_ff00_0000,
            0xfdff_ffff_ffff_ff7f,
            // Above the subnet-anycast range: ordinary random identifiers.
            0xfe00_0000_0000_0000,
            0xfec3_95dd_1769_b3cd,
            u64::MAX,
        ] {
            assert_eq!(InterfaceId::new(v.to_be_bytes()).unwrap().bits(), v);
        }
    }

    #[test]
    fn slaac_formation() {
        let iid = InterfaceId::new([0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0]).unwrap();
        assert_eq!(
            slaac(a("2001:db8:5:6::"), 64, iid),
            Some(a("2001:db8:5:6:1234:5678:9abc:def0"))
        );
        // Host bits in the advertised prefix are ignored.
        assert_eq!(
            slaac(a("2001:db8:5:6::99"), 64, iid),
            Some(a("2001:db8:5:6:1234:5678:9abc:def0"))
        );
        assert_eq!(slaac(a("2001:db8::"), 48, iid), None);
        assert_eq!(slaac(a("fe80::"), 64, iid), None);
        assert_eq!(link_local(iid), a("fe80::1234:5678:9abc:def0"));
        assert_eq!(InterfaceId::of(a("fe80::1234:5678:9abc:def0")), Ok(iid));
    }

    #[test]
    fn special_addresses() {
        assert_eq!(
            solicited_node(a("2001:db8::1234:5678:9abc:def0")),
            a("ff02::1:ffbc:def0")
        );
        assert!(is_link_local(a("fe80::1")));
        assert!(is_link_local(a("febf::1")));
        assert!(!is_link_local(a("fec0::1")));
        assert!(is_link_scope_multicast(ALL_NODES));
        assert!(is_link_scope_multicast(a("ff12::1")));
        assert!(is_link_scope_multicast(a("ff01::1")));
        assert!(!is_link_scope_multicast(a("ff05::1")));
        assert!(!is_link_scope_multicast(a("fe80::1")));
    }
}
