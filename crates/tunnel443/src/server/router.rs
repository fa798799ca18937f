//! The server's data plane: one TUN device for every session, and a table
//! from assigned address to session. The TUN reader looks up each packet's
//! destination and hands it to that session's bounded queue; when the queue
//! is full the packet is dropped here (TCP-over-TCP: drop at the TUN side
//! rather than buffer without bound).
//!
//! Two tables: exact addresses (SSTP sessions: one IPv4 and one IPv6
//! address each) and /64 prefixes (IP-HTTPS sessions: each client owns a
//! /64, MS-IPHTTPS §3.2.3). An exact match wins over a /64. The tables
//! hold routes, not sessions (an SSTP session with IPv4 and IPv6 has two):
//! sessions are counted by `session::active` and `iphttps::active`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::mpsc;

use crate::tun::Tun;

/// Batches queued towards one session before the TUN side drops (a batch
/// is the packets of one TUN read for that session: one packet, or the
/// segments of one TSO super-packet).
pub const SESSION_QUEUE: usize = 32;

/// Packets for one session, in batches: one channel message and one
/// wake-up per batch, not per packet.
pub type PacketBatch = session::packets::PacketQueue;
pub type PacketTx = mpsc::Sender<PacketBatch>;

#[derive(Default)]
pub struct Router {
    table: RwLock<HashMap<IpAddr, PacketTx>>,
    /// /64 (upper 64 bits) -> IP-HTTPS session.
    table64: RwLock<HashMap<u64, PacketTx>>,
    /// Framed-Route networks: (network, prefix length) -> session.
    routes_v4: RwLock<Vec<((u32, u8), PacketTx)>>,
    /// Delegated-IPv6-Prefix networks: (network, prefix length) -> session.
    routes_v6: RwLock<Vec<((u128, u8), PacketTx)>>,
    /// Packets from the TUN with no session for their destination.
    pub no_route: AtomicU64,
    /// Packets dropped because the session's queue was full.
    pub queue_full: AtomicU64,
    /// Packets from a client to another client's address, dropped
    /// (`[ipv4] client_to_client = false`).
    pub client_to_client: AtomicU64,
}

/// Removes the route when dropped.
pub struct Registration {
    router: Arc<Router>,
    addr: IpAddr,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut t = self.router.table.write().expect("router lock");
        t.remove(&self.addr);
        crate::memory::shrink_sparse(&mut t);
    }
}

/// Removes the /64 route when dropped.
pub struct Registration64 {
    router: Arc<Router>,
    prefix: u64,
}

impl Drop for Registration64 {
    fn drop(&mut self) {
        let mut t = self.router.table64.write().expect("router lock");
        t.remove(&self.prefix);
        crate::memory::shrink_sparse(&mut t);
    }
}

/// Removes a Framed-Route network when dropped.
pub struct RouteRegistration {
    router: Arc<Router>,
    net: (u32, u8),
}

impl Drop for RouteRegistration {
    fn drop(&mut self) {
        self.router
            .routes_v4
            .write()
            .expect("router lock")
            .retain(|(n, _)| *n != self.net);
    }
}

/// Removes a delegated IPv6 network when dropped.
pub struct RouteRegistration6 {
    router: Arc<Router>,
    net: (u128, u8),
}

impl Drop for RouteRegistration6 {
    fn drop(&mut self) {
        self.router
            .routes_v6
            .write()
            .expect("router lock")
            .retain(|(n, _)| *n != self.net);
    }
}

fn v6_mask(len: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(len.min(128)))
        .unwrap_or(0)
}

fn v4_mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len.min(32))
    }
}

impl Router {
    /// Routes packets for the IPv4 network `addr/len` to `tx` until the
    /// returned value is dropped; `None` if another session has it.
    pub fn register_v4_net(
        self: &Arc<Self>,
        addr: std::net::Ipv4Addr,
        len: u8,
        tx: PacketTx,
    ) -> Option<RouteRegistration> {
        let net = (u32::from(addr) & v4_mask(len), len);
        let mut t = self.routes_v4.write().expect("router lock");
        if t.iter().any(|(n, _)| *n == net) {
            return None;
        }
        t.push((net, tx));
        // Longest prefix first: the first match is the best.
        t.sort_by_key(|((_, len), _)| std::cmp::Reverse(*len));
        Some(RouteRegistration {
            router: self.clone(),
            net,
        })
    }

    /// Routes packets for the IPv6 network `addr/len` to `tx` until the
    /// returned value is dropped; `None` if another session has it.
    pub fn register_v6_net(
        self: &Arc<Self>,
        addr: std::net::Ipv6Addr,
        len: u8,
        tx: PacketTx,
    ) -> Option<RouteRegistration6> {
        let net = (u128::from(addr) & v6_mask(len), len);
        let mut t = self.routes_v6.write().expect("router lock");
        if t.iter().any(|(n, _)| *n == net) {
            return None;
        }
        t.push((net, tx));
        t.sort_by_key(|((_, len), _)| std::cmp::Reverse(*len));
        Some(RouteRegistration6 {
            router: self.clone(),
            net,
        })
    }

    /// Routes packets for `addr` to `tx` until the returned value is
    /// dropped; `None` if another session has the address.
    pub fn register(self: &Arc<Self>, addr: IpAddr, tx: PacketTx) -> Option<Registration> {
        let mut t = self.table.write().expect("router lock");
        if t.contains_key(&addr) {
            return None;
        }
        t.insert(addr, tx);
        Some(Registration {
            router: self.clone(),
            addr,
        })
    }

    /// Routes packets for the /64 `prefix` to `tx` until the returned value
    /// is dropped; `None` if another session has it.
    pub fn register64(
        self: &Arc<Self>,
        prefix: ipv6nd::Prefix64,
        tx: PacketTx,
    ) -> Option<Registration64> {
        let mut t = self.table64.write().expect("router lock");
        if t.contains_key(&prefix.bits()) {
            return None;
        }
        t.insert(prefix.bits(), tx);
        Some(Registration64 {
            router: self.clone(),
            prefix: prefix.bits(),
        })
    }

    /// The session for a packet's destination (an exact address first,
    /// then a /64).
    fn lookup(&self, pkt: &[u8]) -> Option<PacketTx> {
        let dst = session::ip::destination(pkt)?;
        let tx = self.table.read().expect("router lock").get(&dst).cloned();
        if tx.is_some() {
            return tx;
        }
        match dst {
            IpAddr::V6(a) => {
                let key = ipv6nd::Prefix64::of(a).bits();
                let tx = self.table64.read().expect("router lock").get(&key).cloned();
                tx.or_else(|| {
                    let t = self.routes_v6.read().expect("router lock");
                    t.iter()
                        .find(|((net, len), _)| u128::from(a) & v6_mask(*len) == *net)
                        .map(|(_, tx)| tx.clone())
                })
            }
            IpAddr::V4(a) => {
                let t = self.routes_v4.read().expect("router lock");
                t.iter()
                    .find(|((net, len), _)| u32::from(a) & v4_mask(*len) == *net)
                    .map(|(_, tx)| tx.clone())
            }
        }
    }

    /// Client isolation: true (and counted) when `pkt`, from the session
    /// whose queue is `own`, is for another session's address. Packets for
    /// the server's own addresses and beyond are not sessions' and pass.
    /// Checked before the packet reaches the TUN device: no netfilter rule
    /// needed.
    pub fn to_other_client(&self, pkt: &[u8], own: &PacketTx) -> bool {
        match self.lookup(pkt) {
            Some(tx) if !tx.same_channel(own) => {
                self.client_to_client.fetch_add(1, Ordering::Relaxed);
                true
            }
            _ => false,
        }
    }

    /// Hands `packets` (one TUN read) to their sessions: consecutive
    /// packets for the same session travel as one batch.
    fn dispatch<'a>(&self, packets: impl IntoIterator<Item = &'a [u8]>) {
        let mut current: Option<(PacketTx, PacketBatch)> = None;
        for pkt in packets {
            let Some(tx) = self.lookup(pkt) else {
                self.no_route.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            match &mut current {
                Some((t, batch)) if t.same_channel(&tx) => batch.push(pkt),
                _ => {
                    self.send(current.take());
                    let mut batch = crate::driver::SPARE_BATCHES.take();
                    batch.push(pkt);
                    current = Some((tx, batch));
                }
            }
        }
        self.send(current);
    }

    fn send(&self, batch: Option<(PacketTx, PacketBatch)>) {
        if let Some((tx, batch)) = batch {
            let n = batch.len() as u64;
            if tx.try_send(batch).is_err() {
                self.queue_full.fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    /// Reads the TUN device forever (in batches: a TSO super-packet comes
    /// back as its segments), dispatching each packet.
    pub async fn run_tun_reader(self: Arc<Self>, tun: Tun) {
        let mut reader = crate::tun::TunReader::default();
        loop {
            match reader.recv(&tun).await {
                Ok(crate::tun::Read::Packets(n)) => {
                    self.dispatch((0..n).map(|i| reader.packet(i)));
                }
                Ok(crate::tun::Read::Bad(e)) => {
                    tracing::debug!(error = %e, "TUN packet that could not be segmented dropped");
                }
                Err(e) => {
                    tracing::error!(error = %e, "TUN read failed; data plane stopped");
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Router {
        fn dispatch_one(&self, pkt: &[u8]) {
            self.dispatch([pkt]);
        }
    }

    #[test]
    fn the_address_tables_shrink_when_sessions_end() {
        let r = Arc::new(Router::default());
        let (tx, _rx) = mpsc::channel(1);
        let mut held: Vec<Registration> = (0..2000u32)
            .map(|i| {
                let addr = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
                r.register(addr, tx.clone()).unwrap()
            })
            .collect();
        let mut held64: Vec<Registration64> = (0..2000u64)
            .map(|i| {
                let p = ipv6nd::Prefix64::of(std::net::Ipv6Addr::from(
                    (u128::from(0xfd00_0000_0000_0000 + i)) << 64,
                ));
                r.register64(p, tx.clone()).unwrap()
            })
            .collect();
        let peak = r.table.read().unwrap().capacity();
        let peak64 = r.table64.read().unwrap().capacity();
        held.truncate(10);
        held64.truncate(10);
        assert!(r.table.read().unwrap().capacity() < peak / 8);
        assert!(r.table64.read().unwrap().capacity() < peak64 / 8);
        // The routes left still work.
        let (tx_a, mut rx_a) = mpsc::channel(8);
        drop(held.remove(0));
        let _a = r.register("10.0.0.0".parse().unwrap(), tx_a).unwrap();
        r.dispatch_one(&v4([1, 1, 1, 1], [10, 0, 0, 0]));
        assert_eq!(rx_a.try_recv().unwrap().len(), 1);
    }

    #[test]
    fn one_read_travels_as_batches_per_session() {
        let r = Arc::new(Router::default());
        let (tx_a, mut rx_a) = mpsc::channel(8);
        let (tx_b, mut rx_b) = mpsc::channel(8);
        let _a = r.register("10.0.0.2".parse().unwrap(), tx_a).unwrap();
        let _b = r.register("10.0.0.3".parse().unwrap(), tx_b).unwrap();
        let a = v4([1, 1, 1, 1], [10, 0, 0, 2]);
        let b = v4([1, 1, 1, 1], [10, 0, 0, 3]);
        let none = v4([1, 1, 1, 1], [10, 0, 0, 9]);
        r.dispatch([&a[..], &a, &a, &none, &b, &b, &a]);
        let mut first = rx_a.try_recv().unwrap();
        assert_eq!(first.len(), 3, "three packets, one message");
        assert_eq!(first.pop(), Some(&a[..]));
        assert_eq!(rx_b.try_recv().unwrap().len(), 2);
        assert_eq!(rx_a.try_recv().unwrap().len(), 1);
        assert!(rx_a.try_recv().is_err());
        assert_eq!(r.no_route.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn framed_routes_longest_prefix_after_exact_addresses() {
        let r = Arc::new(Router::default());
        let (tx_a, mut rx_a) = mpsc::channel(8);
        let (tx_b, mut rx_b) = mpsc::channel(8);
        let wide = r
            .register_v4_net("10.50.0.0".parse().unwrap(), 16, tx_a.clone())
            .unwrap();
        let narrow = r
            .register_v4_net("10.50.7.0".parse().unwrap(), 24, tx_b.clone())
            .unwrap();
        assert!(r
            .register_v4_net("10.50.7.9".parse().unwrap(), 24, tx_a.clone())
            .is_none());
        let _exact = r.register("10.50.7.5".parse().unwrap(), tx_a).unwrap();
        r.dispatch_one(&v4([1, 1, 1, 1], [10, 50, 7, 9]));
        r.dispatch_one(&v4([1, 1, 1, 1], [10, 50, 9, 9]));
        r.dispatch_one(&v4([1, 1, 1, 1], [10, 50, 7, 5]));
        assert_eq!(rx_b.try_recv().unwrap().len(), 1, "the /24 wins");
        assert_eq!(rx_a.try_recv().unwrap().len(), 1, "the /16");
        assert_eq!(rx_a.try_recv().unwrap().len(), 1, "the exact address");
        drop((wide, narrow));
        r.dispatch_one(&v4([1, 1, 1, 1], [10, 50, 7, 9]));
        assert_eq!(r.no_route.load(Ordering::Relaxed), 1, "routes gone");
        assert!(rx_b.try_recv().is_err());
    }

    fn v4(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 20, 0, 0, 0, 0, 64, 1, 0, 0];
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p
    }

    #[test]
    fn dispatch_and_unregister() {
        let r = Arc::new(Router::default());
        let (tx, mut rx) = mpsc::channel(1);
        let reg = r.register("10.0.0.2".parse().unwrap(), tx.clone()).unwrap();
        assert!(
            r.register("10.0.0.2".parse().unwrap(), tx).is_none(),
            "taken"
        );
        r.dispatch_one(&v4([1, 1, 1, 1], [10, 0, 0, 2]));
        r.dispatch_one(&v4([1, 1, 1, 1], [10, 0, 0, 2]));
        assert_eq!(r.queue_full.load(Ordering::Relaxed), 1);
        assert!(rx.try_recv().is_ok());
        r.dispatch_one(&v4([1, 1, 1, 1], [10, 0, 0, 3]));
        assert_eq!(r.no_route.load(Ordering::Relaxed), 1);
        drop(reg);
        r.dispatch_one(&v4([1, 1, 1, 1], [10, 0, 0, 2]));
        assert_eq!(r.no_route.load(Ordering::Relaxed), 2, "route removed");
    }

    #[test]
    fn isolation_drops_packets_for_other_clients_only() {
        let r = Arc::new(Router::default());
        let (tx_a, _rx_a) = mpsc::channel(1);
        let (tx_b, _rx_b) = mpsc::channel(1);
        let _a = r
            .register("10.0.0.2".parse().unwrap(), tx_a.clone())
            .unwrap();
        let _b = r.register("10.0.0.3".parse().unwrap(), tx_b).unwrap();
        let p64 = ipv6nd::Prefix64::of("fd00:1:0:5::".parse().unwrap());
        let (tx_c, _rx_c) = mpsc::channel(1);
        let _c = r.register64(p64, tx_c).unwrap();
        let from_a = |dst| v4([10, 0, 0, 2], dst);
        assert!(r.to_other_client(&from_a([10, 0, 0, 3]), &tx_a), "B");
        assert!(r.to_other_client(&v6("fd00:1:0:5::7"), &tx_a), "C's /64");
        assert!(
            !r.to_other_client(&from_a([10, 0, 0, 1]), &tx_a),
            "the server"
        );
        assert!(!r.to_other_client(&from_a([8, 8, 8, 8]), &tx_a), "beyond");
        assert!(!r.to_other_client(&from_a([10, 0, 0, 2]), &tx_a), "itself");
        assert_eq!(r.client_to_client.load(Ordering::Relaxed), 2);
    }

    fn v6(dst: &str) -> Vec<u8> {
        let mut p = vec![0x60; 40];
        p[4] = 0;
        p[5] = 0;
        p[24..40].copy_from_slice(&dst.parse::<std::net::Ipv6Addr>().unwrap().octets());
        p
    }

    #[test]
    fn delegated_ipv6_networks_after_the_64s() {
        let r = Arc::new(Router::default());
        let (tx_a, mut rx_a) = mpsc::channel(8);
        let (tx_b, mut rx_b) = mpsc::channel(8);
        let wide = r
            .register_v6_net("2001:db8:100::".parse().unwrap(), 40, tx_a.clone())
            .unwrap();
        assert!(
            r.register_v6_net("2001:db8:100:ff::".parse().unwrap(), 40, tx_b.clone())
                .is_none(),
            "taken"
        );
        let _own64 = r
            .register64(
                ipv6nd::Prefix64::of("2001:db8:100:7::".parse().unwrap()),
                tx_b,
            )
            .unwrap();
        r.dispatch_one(&v6("2001:db8:100:5::1"));
        r.dispatch_one(&v6("2001:db8:100:7::1"));
        assert_eq!(rx_a.try_recv().unwrap().len(), 1, "the /40");
        assert_eq!(rx_b.try_recv().unwrap().len(), 1, "a /64 wins");
        drop(wide);
        r.dispatch_one(&v6("2001:db8:100:5::1"));
        assert_eq!(r.no_route.load(Ordering::Relaxed), 1, "route gone");
        assert!(rx_a.try_recv().is_err());
    }

    #[test]
    fn prefix64_table() {
        let r = Arc::new(Router::default());
        let (tx, mut rx) = mpsc::channel(4);
        let (tx2, mut rx2) = mpsc::channel(4);
        let p = ipv6nd::Prefix64::of("fd00:1:0:5::".parse().unwrap());
        let reg = r.register64(p, tx.clone()).unwrap();
        assert!(r.register64(p, tx).is_none(), "taken");
        let _exact = r.register("fd00:1:0:5::9".parse().unwrap(), tx2).unwrap();
        r.dispatch_one(&v6("fd00:1:0:5::1234"));
        assert!(rx.try_recv().is_ok());
        r.dispatch_one(&v6("fd00:1:0:5::9"));
        assert!(rx2.try_recv().is_ok(), "exact match wins");
        assert!(rx.try_recv().is_err());
        r.dispatch_one(&v6("fd00:1:0:6::1"));
        assert_eq!(r.no_route.load(Ordering::Relaxed), 1);
        drop(reg);
        r.dispatch_one(&v6("fd00:1:0:5::1234"));
        assert_eq!(r.no_route.load(Ordering::Relaxed), 2);
    }
}
