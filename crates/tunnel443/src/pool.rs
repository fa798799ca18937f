//! IPv4 address pool for clients. The server's own address is the pool's
//! first host address; clients get the others. A [`Lease`] gives its address
//! back when dropped, so a session that ends in any way returns it.
//!
//! Allocation walks round-robin from the last address handed out, so a
//! just-freed address is the last to be reused (stale packets and ARP/route
//! caches for it have time to die out).

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

/// An IPv4 network in CIDR form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Net {
    addr: Ipv4Addr,
    prefix: u8,
}

impl Ipv4Net {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Option<Self> {
        (prefix <= 32).then(|| Self {
            addr: Ipv4Addr::from(u32::from(addr) & Self::mask_bits(prefix)),
            prefix,
        })
    }
    fn mask_bits(prefix: u8) -> u32 {
        if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix)
        }
    }
    pub fn network(&self) -> Ipv4Addr {
        self.addr
    }
    pub fn prefix_len(&self) -> u8 {
        self.prefix
    }
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        u32::from(a) & Self::mask_bits(self.prefix) == u32::from(self.addr)
    }
    /// Number of addresses in the network.
    fn size(&self) -> u64 {
        1u64 << (32 - self.prefix)
    }
    /// The first usable host address (the server's own).
    pub fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) + 1)
    }

    /// Parses a network in CIDR form, refusing an address with host bits
    /// set (where [`FromStr`] masks them off): `10.66.0.203/29` is an
    /// error that names the network meant, `10.66.0.200/29`.
    pub fn parse_network(s: &str) -> Result<Self, String> {
        let net: Self = s.parse()?;
        let written = s.split_once('/').map(|(a, _)| a.parse::<Ipv4Addr>());
        if written != Some(Ok(net.addr)) {
            return Err(format!(
                "{s} has host bits set: the network address is {net}"
            ));
        }
        Ok(net)
    }
}

impl FromStr for Ipv4Net {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| format!("{s} is not in CIDR form a.b.c.d/len"))?;
        let addr: Ipv4Addr = a
            .parse()
            .map_err(|_| format!("{a} is not an IPv4 address"))?;
        let prefix: u8 = p
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| format!("prefix length {p} is not 0 to 32"))?;
        Ok(Self::new(addr, prefix).expect("prefix checked"))
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[derive(Debug)]
struct Inner {
    net: Ipv4Net,
    /// One bit per client slot (offset 2 .. size-1 of the network).
    used: Vec<bool>,
    in_use: usize,
    cursor: usize,
}

/// A shared pool; clone it freely.
#[derive(Debug, Clone)]
pub struct Pool(Arc<Mutex<Inner>>);

/// An address handed out; dropping it returns the address to the pool.
#[derive(Debug)]
pub struct Lease {
    pool: Pool,
    addr: Ipv4Addr,
}

impl Lease {
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.pool.release(self.addr);
    }
}

impl Pool {
    /// A pool for `net`: clients get `network+2 ..= broadcast-1`.
    pub fn new(net: Ipv4Net) -> Self {
        // network, server, broadcast are not handed out.
        let slots = net.size().saturating_sub(3) as usize;
        Pool(Arc::new(Mutex::new(Inner {
            net,
            used: vec![false; slots],
            in_use: 0,
            cursor: 0,
        })))
    }

    /// The network it hands addresses of.
    pub fn net(&self) -> Ipv4Net {
        self.0.lock().expect("pool lock").net
    }

    /// Addresses handed out now.
    pub fn in_use(&self) -> usize {
        self.0.lock().expect("pool lock").in_use
    }

    /// Addresses that can be handed out in all.
    pub fn capacity(&self) -> usize {
        self.0.lock().expect("pool lock").used.len()
    }

    /// Hands out a free address, or `None` when the pool is exhausted.
    pub fn allocate(&self) -> Option<Lease> {
        let mut g = self.0.lock().expect("pool lock");
        let n = g.used.len();
        for i in 0..n {
            let slot = (g.cursor + i) % n;
            if !g.used[slot] {
                g.used[slot] = true;
                g.in_use += 1;
                g.cursor = (slot + 1) % n;
                let addr = Ipv4Addr::from(u32::from(g.net.network()) + 2 + slot as u32);
                return Some(Lease {
                    pool: self.clone(),
                    addr,
                });
            }
        }
        None
    }

    /// Hands out `addr` itself (an address RADIUS chose), or `None` when
    /// it is not one the pool hands out or is in use.
    pub fn allocate_addr(&self, addr: Ipv4Addr) -> Option<Lease> {
        let mut g = self.0.lock().expect("pool lock");
        let slot = u32::from(addr).checked_sub(u32::from(g.net.network()) + 2)? as usize;
        if g.used.get(slot) != Some(&false) {
            return None;
        }
        g.used[slot] = true;
        g.in_use += 1;
        Some(Lease {
            pool: self.clone(),
            addr,
        })
    }

    fn release(&self, addr: Ipv4Addr) {
        let mut g = self.0.lock().expect("pool lock");
        let slot = (u32::from(addr) - u32::from(g.net.network()) - 2) as usize;
        if g.used.get(slot) == Some(&true) {
            g.used[slot] = false;
            g.in_use -= 1;
        }
    }
}

/// The address for a session (RADIUS's reply attributes, RFC 2865 §5.8,
/// RFC 2869 §5.18): `framed_ip` itself from whichever pool holds it, else
/// one from the pool named `framed_pool` (`ipv4.pools`), else one from
/// `main`. The error says why in plain words, for the log.
pub fn lease_for(
    main: &Pool,
    named: &[(String, Pool)],
    framed_ip: Option<Ipv4Addr>,
    framed_pool: Option<&str>,
) -> Result<Lease, String> {
    if let Some(a) = framed_ip {
        let pool = std::iter::once(main)
            .chain(named.iter().map(|(_, p)| p))
            .find(|p| p.net().contains(a));
        return pool
            .and_then(|p| p.allocate_addr(a))
            .ok_or_else(|| format!("Framed-IP-Address {a} is outside the pools or in use"));
    }
    match framed_pool {
        Some(name) => {
            let (_, pool) = named
                .iter()
                .find(|(n, _)| n == name)
                .ok_or_else(|| format!("Framed-Pool {name} is not one of ipv4.pools"))?;
            pool.allocate()
                .ok_or_else(|| format!("pool {name} has no free address"))
        }
        None => main
            .allocate()
            .ok_or_else(|| "ipv4.pool has no free address".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn lease_for_framed_pool_and_framed_ip() {
        let main = Pool::new("10.44.0.0/24".parse().unwrap());
        let named = vec![(
            "staff".to_string(),
            Pool::new("10.46.0.0/30".parse().unwrap()),
        )];
        let l = lease_for(&main, &named, None, Some("staff")).unwrap();
        assert_eq!(l.addr(), Ipv4Addr::new(10, 46, 0, 2));
        assert_eq!(
            lease_for(&main, &named, None, Some("staff")).unwrap_err(),
            "pool staff has no free address"
        );
        assert_eq!(
            lease_for(&main, &named, None, Some("guests")).unwrap_err(),
            "Framed-Pool guests is not one of ipv4.pools"
        );
        drop(l);
        // Framed-IP-Address wins over Framed-Pool, from the pool holding it.
        let l = lease_for(
            &main,
            &named,
            Some(Ipv4Addr::new(10, 44, 0, 9)),
            Some("staff"),
        )
        .unwrap();
        assert_eq!(l.addr(), Ipv4Addr::new(10, 44, 0, 9));
        assert_eq!(main.in_use(), 1);
        let l2 = lease_for(&main, &named, Some(Ipv4Addr::new(10, 46, 0, 2)), None).unwrap();
        assert_eq!(named[0].1.in_use(), 1);
        assert!(
            lease_for(&main, &named, Some(Ipv4Addr::new(10, 9, 0, 2)), None)
                .unwrap_err()
                .contains("outside the pools")
        );
        assert_eq!(
            lease_for(&main, &named, None, None)
                .unwrap()
                .addr()
                .octets()[..3],
            [10, 44, 0]
        );
        drop((l, l2));
    }

    #[test]
    fn allocate_a_given_address() {
        let p = Pool::new("10.9.0.0/29".parse().unwrap());
        let a = p.allocate_addr(Ipv4Addr::new(10, 9, 0, 5)).unwrap();
        assert_eq!(a.addr(), Ipv4Addr::new(10, 9, 0, 5));
        assert!(
            p.allocate_addr(Ipv4Addr::new(10, 9, 0, 5)).is_none(),
            "in use"
        );
        assert!(
            p.allocate_addr(Ipv4Addr::new(10, 9, 0, 1)).is_none(),
            "the server's"
        );
        assert!(
            p.allocate_addr(Ipv4Addr::new(10, 9, 0, 7)).is_none(),
            "broadcast"
        );
        assert!(
            p.allocate_addr(Ipv4Addr::new(10, 9, 1, 2)).is_none(),
            "outside"
        );
        let all: Vec<_> = std::iter::from_fn(|| p.allocate()).collect();
        assert!(all.iter().all(|l| l.addr() != a.addr()));
        drop(a);
        assert_eq!(p.in_use(), all.len());
    }

    #[test]
    fn parses_and_masks() {
        let n: Ipv4Net = "10.1.2.3/24".parse().unwrap();
        assert_eq!(n.to_string(), "10.1.2.0/24");
        assert_eq!(n.first_host(), Ipv4Addr::new(10, 1, 2, 1));
        assert!(n.contains(Ipv4Addr::new(10, 1, 2, 200)));
        assert!(!n.contains(Ipv4Addr::new(10, 1, 3, 1)));
        assert!("10.1.2.3".parse::<Ipv4Net>().is_err());
        assert!("10.1.2.3/40".parse::<Ipv4Net>().is_err());
        assert!("10.1.2/24".parse::<Ipv4Net>().is_err());
    }

    #[test]
    fn parse_network_refuses_host_bits_and_names_the_network() {
        assert_eq!(
            Ipv4Net::parse_network("10.66.0.203/29").unwrap_err(),
            "10.66.0.203/29 has host bits set: the network address is 10.66.0.200/29"
        );
        let n = Ipv4Net::parse_network("10.66.0.200/29").unwrap();
        assert_eq!(n.to_string(), "10.66.0.200/29");
        assert_eq!(
            Ipv4Net::parse_network("10.1.2/24").unwrap_err(),
            "10.1.2 is not an IPv4 address"
        );
    }

    #[test]
    fn never_twice_and_all_come_back() {
        let pool = Pool::new("10.9.0.0/28".parse().unwrap());
        assert_eq!(pool.capacity(), 13);
        let leases: Vec<Lease> = std::iter::from_fn(|| pool.allocate()).collect();
        assert_eq!(leases.len(), 13);
        let addrs: HashSet<Ipv4Addr> = leases.iter().map(Lease::addr).collect();
        assert_eq!(addrs.len(), 13, "an address was handed out twice");
        assert!(!addrs.contains(&Ipv4Addr::new(10, 9, 0, 0)));
        assert!(
            !addrs.contains(&Ipv4Addr::new(10, 9, 0, 1)),
            "server address"
        );
        assert!(!addrs.contains(&Ipv4Addr::new(10, 9, 0, 15)), "broadcast");
        assert!(pool.allocate().is_none());
        drop(leases);
        assert_eq!(pool.in_use(), 0);
        let again: Vec<Lease> = std::iter::from_fn(|| pool.allocate()).take(20).collect();
        assert_eq!(again.len(), 13);
    }

    #[test]
    fn freed_address_is_reused_last() {
        let pool = Pool::new("10.9.0.0/29".parse().unwrap());
        let a = pool.allocate().unwrap();
        let first = a.addr();
        drop(a);
        let b = pool.allocate().unwrap();
        assert_ne!(b.addr(), first);
    }
}
