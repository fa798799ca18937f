//! The IP-HTTPS server as the IPv6 router of each client's link
//! (MS-IPHTTPS §3.2.3: "The server SHOULD act as a router between its
//! IP-HTTPS clients and other networks it is connected to", using neighbor
//! discovery, link MTU 1280).
//!
//! # Addressing: one /64 per client
//!
//! Each session is given its own /64 from a configured pool
//! ([`crate::addr::Ipv6Prefix::subnet64`]) and advertised in a Router
//! Advertisement as on-link and autonomous; the client forms its addresses
//! from it by SLAAC. We chose this over one /64 shared by all clients
//! because:
//!
//! * every IP-HTTPS session is its own point-to-point link (one TLS
//!   stream), so a prefix per link is the natural IPv6 model (RFC 8273,
//!   "Unique IPv6 Prefix per Host"), whereas a shared /64 would make the
//!   server emulate one multi-access link across many streams: proxy
//!   duplicate address detection and address resolution between clients,
//!   and learn each client's addresses;
//! * anti-spoofing becomes one prefix comparison: a packet from a client is
//!   forwarded only if its source lies in that client's /64. The client may
//!   use any number of addresses there (Windows adds RFC 8981 temporary
//!   addresses), none of which the server has to learn, and no client can
//!   use another's;
//! * routing follows: the server's table maps a /64 ([`Prefix64`]) to a
//!   session, so a lookup masks the destination to 64 bits; clients reach
//!   each other only through the server;
//! * SLAAC needs exactly a /64 (RFC 4862 §5.5.3, RFC 7421), and a /56 pool
//!   serves 256 clients, a /48 65 536.
//!
//! # Per-packet decisions
//!
//! [`ClientRouter::ingress`] classifies each packet from the client:
//! global source in the client's /64 to a global destination: forward to
//! the TUN; traffic for the link itself (link-local or multicast
//! destination: Router and Neighbor Solicitations, pings to the router's
//! link-local address) is handled here and never forwarded; everything else
//! is dropped with a reason (spoofed source, link-local source towards
//! another network, ...). [`ClientRouter::egress`] checks packets routed
//! towards the client and answers those over the link MTU with Packet Too
//! Big, since the shared TUN may have a larger MTU than the link.
//!
//! # Link MTU
//!
//! 1280 by default (§3.1.5.3, §3.2.5.2), for every client that did not
//! announce a larger one; a client of ours that did gets the link MTU
//! [`crate::mtu::negotiate`] chose, in [`RouterConfig::link_mtu`]: it goes
//! into the RAs' MTU option (RFC 4861 §4.6.4) and is the bound of
//! [`ClientRouter::egress`].
//!
//! # Router Advertisements (RFC 4861 §6.2)
//!
//! One as soon as the link is up, one in answer to each Router Solicitation
//! (unicast to the solicitor, at most one per MIN_DELAY_BETWEEN_RAS = 3 s,
//! later ones coalesced), and one every [`RouterConfig::ra_interval`]
//! (MaxRtrAdvInterval, 600 s by default; the router lifetime of 1800 s is
//! three times that). Each session is its own link, so no randomisation is
//! needed to avoid synchronisation between routers.

use std::collections::VecDeque;
use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use crate::addr::{is_link_local, Prefix64, ALL_NODES};
use crate::icmpv6::{packet_too_big, Echo, Icmpv6Type, DEFAULT_HOP_LIMIT};
use crate::ipv6::{Ipv6Error, Ipv6Packet, NextHeader, HEADER_LEN, MIN_MTU};
use crate::mtu::MAX_LINK_MTU;
use crate::nd::{NdError, NeighborSolicit, RouteInfo, RouterAdvert, RouterSolicit};

/// The router's default link-local address on every client link. Each
/// session is a separate link, so all can share it.
pub const DEFAULT_ROUTER_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);

/// Default interval of unsolicited RAs (RFC 4861 MaxRtrAdvInterval).
pub const DEFAULT_RA_INTERVAL: Duration = Duration::from_secs(600);

/// MIN_DELAY_BETWEEN_RAS (RFC 4861 §10).
pub const MIN_DELAY_BETWEEN_RAS: Duration = Duration::from_secs(3);

/// Most packets queued for the client by the router itself; beyond it,
/// answers are dropped (a client flooding solicitations gets fewer replies).
pub const MAX_PENDING: usize = 8;

/// How the server routes for one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterConfig {
    /// The router's link-local address: source of RAs and NAs, and the
    /// clients' next hop.
    pub router_ll: Ipv6Addr,
    /// A global address of the server, the source of Packet Too Big; without
    /// one, oversize packets towards a client are dropped silently.
    pub router_addr: Option<Ipv6Addr>,
    /// Recursive DNS servers to advertise (RFC 8106).
    pub dns: Vec<Ipv6Addr>,
    /// Router lifetime in seconds; 0 advertises no default route (then use
    /// `routes`).
    pub router_lifetime: u16,
    /// Route Information options (RFC 4191), for split tunnels.
    pub routes: Vec<RouteInfo>,
    /// Interval of unsolicited RAs.
    pub ra_interval: Duration,
    /// Largest packet sent towards the client (the link MTU), advertised
    /// in the RAs' MTU option; kept within 1280..=[`crate::mtu::MAX_LINK_MTU`].
    pub link_mtu: usize,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            router_ll: DEFAULT_ROUTER_LL,
            router_addr: None,
            dns: Vec::new(),
            router_lifetime: crate::nd::DEFAULT_ROUTER_LIFETIME,
            routes: Vec::new(),
            ra_interval: DEFAULT_RA_INTERVAL,
            link_mtu: MIN_MTU,
        }
    }
}

/// Why a packet from the client is not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// Not one well-formed IPv6 packet.
    Malformed(Ipv6Error),
    /// Source outside the client's /64 (and not link-local): spoofing.
    SpoofedSource(Ipv6Addr),
    /// Link-local source towards another link (RFC 4291 §2.5.6: routers
    /// must not forward it).
    LinkLocalSource(Ipv6Addr),
    /// Unspecified source outside neighbor discovery.
    UnspecifiedSource,
    /// Loopback, unspecified, or within the client's own /64 (which is
    /// on-link for the client and must not loop through the server).
    BadDestination(Ipv6Addr),
}

/// What to do with a packet from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Write it to the TUN device.
    Forward,
    /// Traffic for the link itself, handled here (answers, if any, come
    /// from [`ClientRouter::poll_transmit`]); not forwarded.
    Local,
    /// Discard it (count and rate-limit logs).
    Drop(DropReason),
}

/// Why a packet towards the client is not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EgressDrop {
    /// Not one well-formed IPv6 packet.
    Malformed(Ipv6Error),
    /// Its destination is not within the client's /64.
    NotForClient(Ipv6Addr),
}

/// What to do with a packet routed towards the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Egress {
    /// Send it on the link.
    Send,
    /// Over the link MTU: not sent; write the Packet Too Big (if one may be
    /// sent) back to the TUN towards the sender.
    TooBig(Option<Vec<u8>>),
    /// Discard it.
    Drop(EgressDrop),
}

/// Counters kept by a [`ClientRouter`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouterStats {
    /// Packets forwarded from the client.
    pub forwarded: u64,
    /// Packets dropped for a spoofed source.
    pub spoofed: u64,
    /// Other packets dropped at ingress.
    pub dropped: u64,
    /// Link-local packets handled (answered or ignored).
    pub local: u64,
    /// Router Solicitations received (valid).
    pub solicitations: u64,
    /// ND messages failing validation.
    pub invalid_nd: u64,
    /// Router Advertisements queued.
    pub adverts: u64,
    /// Neighbor Advertisements and echo replies queued.
    pub answers: u64,
    /// Answers dropped because [`MAX_PENDING`] were queued.
    pub queue_full: u64,
}

/// The router's side of one client's link (one per session).
#[derive(Debug)]
pub struct ClientRouter {
    prefix: Prefix64,
    config: RouterConfig,
    advert: RouterAdvert,
    /// The RA to all-nodes, built once.
    advert_all: Vec<u8>,
    last_ra: Option<Instant>,
    next_periodic: Option<Instant>,
    coalesced_ra: Option<Instant>,
    transmit: VecDeque<Vec<u8>>,
    stats: RouterStats,
}

impl ClientRouter {
    /// The router for a client owning `prefix`. Fails if the RA cannot be
    /// built (router address not link-local, too many DNS servers or routes
    /// for 1280 bytes).
    pub fn new(prefix: Prefix64, mut config: RouterConfig) -> Result<Self, NdError> {
        config.link_mtu = config.link_mtu.clamp(MIN_MTU, MAX_LINK_MTU);
        let mut advert = RouterAdvert::for_client(prefix, &config.dns);
        advert.mtu = u32::try_from(config.link_mtu).ok();
        advert.router_lifetime = config.router_lifetime;
        advert.routes = config.routes.clone();
        let advert_all = advert.to_packet(config.router_ll, ALL_NODES)?;
        Ok(ClientRouter {
            prefix,
            config,
            advert,
            advert_all,
            last_ra: None,
            next_periodic: None,
            coalesced_ra: None,
            transmit: VecDeque::new(),
            stats: RouterStats::default(),
        })
    }

    /// The client's /64.
    pub fn prefix(&self) -> Prefix64 {
        self.prefix
    }

    /// The link MTU: the largest packet sent towards the client.
    pub fn link_mtu(&self) -> usize {
        self.config.link_mtu
    }

    /// The advertisement sent to this client.
    pub fn advert(&self) -> &RouterAdvert {
        &self.advert
    }

    /// Counters.
    pub fn stats(&self) -> RouterStats {
        self.stats
    }

    fn queue(&mut self, packet: Vec<u8>) -> bool {
        if self.transmit.len() >= MAX_PENDING {
            self.stats.queue_full += 1;
            return false;
        }
        self.transmit.push_back(packet);
        true
    }

    fn send_ra(&mut self, now: Instant, dst: Ipv6Addr) {
        let packet = if dst == ALL_NODES {
            Some(self.advert_all.clone())
        } else {
            self.advert.to_packet(self.config.router_ll, dst).ok()
        };
        if let Some(p) = packet {
            if self.queue(p) {
                self.stats.adverts += 1;
            }
        }
        self.last_ra = Some(now);
        self.coalesced_ra = None;
        self.next_periodic = Some(now + self.config.ra_interval);
    }

    /// The link is up (the 200 response has been sent): an unsolicited RA
    /// goes out now and periodically after.
    pub fn link_up(&mut self, now: Instant) {
        self.send_ra(now, ALL_NODES);
    }

    fn on_solicitation(&mut self, now: Instant, reply_to: Ipv6Addr) {
        self.stats.solicitations += 1;
        match self.last_ra {
            Some(last) if now < last + MIN_DELAY_BETWEEN_RAS => {
                // §6.2.6: at most one RA per MIN_DELAY_BETWEEN_RAS; the
                // coalesced answer goes to all-nodes.
                self.coalesced_ra
                    .get_or_insert(last + MIN_DELAY_BETWEEN_RAS);
            }
            _ => self.send_ra(now, reply_to),
        }
    }

    fn handle_local(&mut self, now: Instant, ip: &Ipv6Packet<&[u8]>) {
        self.stats.local += 1;
        if ip.next_header() != NextHeader::Icmpv6 {
            return;
        }
        let packet = ip.as_bytes();
        let Some(&kind) = packet.get(HEADER_LEN) else {
            return;
        };
        match Icmpv6Type::from(kind) {
            Icmpv6Type::RouterSolicitation => match RouterSolicit::parse(packet) {
                Ok(rs) => self.on_solicitation(now, rs.reply_to()),
                Err(_) => self.stats.invalid_nd += 1,
            },
            Icmpv6Type::NeighborSolicitation => match NeighborSolicit::parse(packet) {
                Ok(ns) => {
                    let own = [self.config.router_ll];
                    if let Some(na) = ns.answer(&own) {
                        if self.queue(na) {
                            self.stats.answers += 1;
                        }
                    }
                }
                Err(_) => self.stats.invalid_nd += 1,
            },
            Icmpv6Type::EchoRequest => {
                let dst = ip.dst_addr();
                let src = ip.src_addr();
                if (dst != self.config.router_ll && dst != ALL_NODES) || src.is_unspecified() {
                    return;
                }
                if let Ok(Some(echo)) = Echo::parse(ip) {
                    let reply = Echo {
                        reply: true,
                        ..echo
                    };
                    if let Some(p) = reply.build(self.config.router_ll, src, DEFAULT_HOP_LIMIT) {
                        if self.queue(p) {
                            self.stats.answers += 1;
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Classifies a packet received from the client (see the module docs)
    /// and handles link-local traffic.
    pub fn ingress(&mut self, now: Instant, packet: &[u8]) -> Verdict {
        let ip = match Ipv6Packet::new_checked(packet) {
            Ok(ip) => ip,
            Err(e) => {
                self.stats.dropped += 1;
                return Verdict::Drop(DropReason::Malformed(e));
            }
        };
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        let for_link = dst.is_multicast() || is_link_local(dst);
        let verdict = if for_link
            && (src.is_unspecified() || is_link_local(src) || self.prefix.contains(src))
        {
            self.handle_local(now, &ip);
            return Verdict::Local;
        } else if src.is_unspecified() {
            Verdict::Drop(DropReason::UnspecifiedSource)
        } else if is_link_local(src) {
            Verdict::Drop(DropReason::LinkLocalSource(src))
        } else if !self.prefix.contains(src) {
            Verdict::Drop(DropReason::SpoofedSource(src))
        } else if dst.is_loopback() || dst.is_unspecified() || self.prefix.contains(dst) {
            Verdict::Drop(DropReason::BadDestination(dst))
        } else {
            Verdict::Forward
        };
        match verdict {
            Verdict::Forward => self.stats.forwarded += 1,
            Verdict::Drop(DropReason::SpoofedSource(_)) => self.stats.spoofed += 1,
            _ => self.stats.dropped += 1,
        }
        verdict
    }

    /// Checks a packet routed (from the TUN) towards this client.
    pub fn egress(&self, packet: &[u8]) -> Egress {
        let ip = match Ipv6Packet::new_checked(packet) {
            Ok(ip) => ip,
            Err(e) => return Egress::Drop(EgressDrop::Malformed(e)),
        };
        if !self.prefix.contains(ip.dst_addr()) {
            return Egress::Drop(EgressDrop::NotForClient(ip.dst_addr()));
        }
        if packet.len() > self.config.link_mtu {
            let mtu = u32::try_from(self.config.link_mtu).unwrap_or(u32::MAX);
            return Egress::TooBig(
                self.config
                    .router_addr
                    .and_then(|src| packet_too_big(src, packet, mtu)),
            );
        }
        Egress::Send
    }

    /// The RA to send when the server shuts down gracefully (RFC 4861
    /// §6.2.5): router lifetime 0, so the client drops its default route at
    /// once.
    pub fn final_advert(&self) -> Vec<u8> {
        let mut ra = self.advert.clone();
        ra.router_lifetime = 0;
        // Same size as the regular RA, which was built successfully.
        ra.to_packet(self.config.router_ll, ALL_NODES)
            .unwrap_or_default()
    }

    /// The next packet the router sends to the client (RA, NA, echo reply).
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// The earliest timer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.coalesced_ra, self.next_periodic]
            .into_iter()
            .flatten()
            .min()
    }

    /// Runs the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
        if due(self.coalesced_ra) || due(self.next_periodic) {
            self.send_ra(now, ALL_NODES);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::icmpv6::icmpv6_of;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn router() -> ClientRouter {
        ClientRouter::new(
            Prefix64::of(a("2001:db8:0:7::")),
            RouterConfig {
                dns: vec![a("2001:db8::53")],
                router_addr: Some(a("2001:db8::1")),
                ..RouterConfig::default()
            },
        )
        .unwrap()
    }

    fn udp(src: &str, dst: &str) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0, 0, 8, 17, 64];
        p.extend_from_slice(&a(src).octets());
        p.extend_from_slice(&a(dst).octets());
        p.extend_from_slice(&[0; 8]);
        p
    }

    fn drain(r: &mut ClientRouter) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| r.poll_transmit()).collect()
    }

    #[test]
    fn anti_spoofing_and_forwarding() {
        let t = Instant::now();
        let mut r = router();
        let fwd = |r: &mut ClientRouter, src, dst| r.ingress(t, &udp(src, dst));
        assert_eq!(
            fwd(&mut r, "2001:db8:0:7::abcd", "2001:db8:ffff::1"),
            Verdict::Forward
        );
        // A temporary address anywhere in the /64 is fine.
        assert_eq!(
            fwd(&mut r, "2001:db8:0:7:9f3e:1:2:3", "2606:4700::1111"),
            Verdict::Forward
        );
        // Another client's /64, or anything else: spoofed.
        assert_eq!(
            fwd(&mut r, "2001:db8:0:8::abcd", "2001:db8:ffff::1"),
            Verdict::Drop(DropReason::SpoofedSource(a("2001:db8:0:8::abcd")))
        );
        assert_eq!(
            fwd(&mut r, "2001:db8::1", "2001:db8:0:7::1"),
            Verdict::Drop(DropReason::SpoofedSource(a("2001:db8::1")))
        );
        assert_eq!(
            fwd(&mut r, "fe80::5", "2001:db8:ffff::1"),
            Verdict::Drop(DropReason::LinkLocalSource(a("fe80::5")))
        );
        assert_eq!(
            fwd(&mut r, "::", "2001:db8:ffff::1"),
            Verdict::Drop(DropReason::UnspecifiedSource)
        );
        for dst in ["::1", "::", "2001:db8:0:7::2"] {
            assert_eq!(
                fwd(&mut r, "2001:db8:0:7::abcd", dst),
                Verdict::Drop(DropReason::BadDestination(a(dst)))
            );
        }
        // Link traffic is never forwarded, and a spoofed source cannot use it.
        assert_eq!(fwd(&mut r, "fe80::5", "ff02::1:2"), Verdict::Local);
        assert_eq!(fwd(&mut r, "2001:db8:0:7::abcd", "ff05::2"), Verdict::Local);
        assert!(matches!(
            fwd(&mut r, "2001:db8:9::1", "ff02::1"),
            Verdict::Drop(DropReason::SpoofedSource(_))
        ));
        assert!(matches!(
            r.ingress(t, &[0x45, 0, 0, 20]),
            Verdict::Drop(DropReason::Malformed(_))
        ));
        let st = r.stats();
        assert_eq!((st.forwarded, st.spoofed, st.local), (2, 3, 2));
        assert_eq!(st.dropped, 6);
        assert!(
            drain(&mut r).is_empty(),
            "ignored link traffic gets no answer"
        );
    }

    #[test]
    fn ra_at_link_up_then_periodic() {
        let t0 = Instant::now();
        let mut r = router();
        assert_eq!(r.poll_timeout(), None);
        r.link_up(t0);
        let out = drain(&mut r);
        assert_eq!(out.len(), 1);
        let ra = RouterAdvert::parse(&out[0]).unwrap();
        assert_eq!(ra.router, DEFAULT_ROUTER_LL);
        assert_eq!(ra.destination, ALL_NODES);
        assert_eq!(ra.advert.prefixes[0].prefix, a("2001:db8:0:7::"));
        assert!(ra.advert.prefixes[0].on_link && ra.advert.prefixes[0].autonomous);
        assert_eq!(ra.advert.mtu, Some(1280));
        assert_eq!(ra.advert.dns_servers(), vec![a("2001:db8::53")]);
        assert_eq!(r.poll_timeout(), Some(t0 + s(600)));
        r.handle_timeout(t0 + s(599));
        assert!(drain(&mut r).is_empty());
        r.handle_timeout(t0 + s(600));
        assert_eq!(drain(&mut r).len(), 1);
        assert_eq!(r.poll_timeout(), Some(t0 + s(1200)));
    }

    #[test]
    fn solicitations_are_answered_and_rate_limited() {
        let t0 = Instant::now();
        let mut r = router();
        r.link_up(t0);
        drain(&mut r);
        let client_ll = a("fe80::c1");
        let rs = RouterSolicit::build(client_ll);
        // Within 3 s of the last RA: coalesced, sent at t0 + 3 s to all-nodes.
        assert_eq!(r.ingress(t0 + s(1), &rs), Verdict::Local);
        assert_eq!(r.ingress(t0 + s(2), &rs), Verdict::Local);
        assert!(drain(&mut r).is_empty());
        assert_eq!(r.poll_timeout(), Some(t0 + s(3)));
        r.handle_timeout(t0 + s(3));
        let out = drain(&mut r);
        assert_eq!(out.len(), 1);
        assert_eq!(RouterAdvert::parse(&out[0]).unwrap().destination, ALL_NODES);
        assert_eq!(r.poll_timeout(), Some(t0 + s(603)));
        // Later: answered at once, unicast to the solicitor.
        assert_eq!(r.ingress(t0 + s(10), &rs), Verdict::Local);
        let out = drain(&mut r);
        assert_eq!(RouterAdvert::parse(&out[0]).unwrap().destination, client_ll);
        // From the unspecified address: to all-nodes.
        let anon = RouterSolicit::build(Ipv6Addr::UNSPECIFIED);
        r.ingress(t0 + s(20), &anon);
        let out = drain(&mut r);
        assert_eq!(RouterAdvert::parse(&out[0]).unwrap().destination, ALL_NODES);
        assert_eq!(r.stats().solicitations, 4);
        // An invalid RS (hop limit 64) is counted, not answered.
        let mut bad = rs.clone();
        bad[7] = 64;
        r.ingress(t0 + s(30), &bad);
        assert!(drain(&mut r).is_empty());
        assert_eq!(r.stats().invalid_nd, 1);
    }

    #[test]
    fn answers_neighbor_solicitations_and_pings_for_the_router() {
        let t0 = Instant::now();
        let mut r = router();
        let client_ll = a("fe80::c1");
        // A unicast NUD probe for the router's link-local address.
        let mut raw = vec![0x60, 0, 0, 0, 0, 24, 58, 255];
        raw.extend_from_slice(&client_ll.octets());
        raw.extend_from_slice(&DEFAULT_ROUTER_LL.octets());
        raw.extend_from_slice(&[135, 0, 0, 0, 0, 0, 0, 0]);
        raw.extend_from_slice(&DEFAULT_ROUTER_LL.octets());
        crate::checksum::fill_icmpv6(&client_ll, &DEFAULT_ROUTER_LL, &mut raw[40..]);
        assert_eq!(
            NeighborSolicit::parse(&raw).unwrap().target,
            DEFAULT_ROUTER_LL
        );
        assert_eq!(r.ingress(t0, &raw), Verdict::Local);
        let out = drain(&mut r);
        assert_eq!(out.len(), 1);
        let ip = Ipv6Packet::new_checked(&out[0][..]).unwrap();
        assert_eq!(ip.dst_addr(), client_ll);
        assert_eq!(
            icmpv6_of(&ip).unwrap().msg_type(),
            Icmpv6Type::NeighborAdvertisement
        );

        let ping = Echo {
            reply: false,
            ident: 1,
            seq: 2,
            data: b"abc".to_vec(),
        };
        let req = ping.build(client_ll, DEFAULT_ROUTER_LL, 64).unwrap();
        assert_eq!(r.ingress(t0, &req), Verdict::Local);
        let out = drain(&mut r);
        let ip = Ipv6Packet::new_checked(&out[0][..]).unwrap();
        let echo = Echo::parse(&ip).unwrap().unwrap();
        assert_eq!(
            (echo.reply, echo.ident, echo.seq, ip.dst_addr()),
            (true, 1, 2, client_ll)
        );
        assert_eq!(echo.data, b"abc");
        // A ping to some other link-local address is not ours to answer.
        let other = ping.build(client_ll, a("fe80::99"), 64).unwrap();
        r.ingress(t0, &other);
        assert!(drain(&mut r).is_empty());
    }

    #[test]
    fn answer_queue_is_bounded() {
        let t0 = Instant::now();
        let mut r = router();
        let ping = Echo {
            reply: false,
            ident: 0,
            seq: 0,
            data: vec![],
        }
        .build(a("fe80::c1"), DEFAULT_ROUTER_LL, 64)
        .unwrap();
        for _ in 0..MAX_PENDING + 5 {
            r.ingress(t0, &ping);
        }
        assert_eq!(drain(&mut r).len(), MAX_PENDING);
        assert_eq!(r.stats().queue_full, 5);
    }

    #[test]
    fn egress_checks_destination_and_mtu() {
        let r = router();
        assert_eq!(
            r.egress(&udp("2001:db8:ffff::1", "2001:db8:0:7::abcd")),
            Egress::Send
        );
        assert_eq!(
            r.egress(&udp("2001:db8:ffff::1", "2001:db8:0:8::abcd")),
            Egress::Drop(EgressDrop::NotForClient(a("2001:db8:0:8::abcd")))
        );
        let mut big = udp("2001:db8:ffff::1", "2001:db8:0:7::abcd");
        big.resize(1400, 0);
        big[4..6].copy_from_slice(&1360u16.to_be_bytes());
        let Egress::TooBig(Some(ptb)) = r.egress(&big) else {
            panic!("expected Packet Too Big");
        };
        let ip = Ipv6Packet::new_checked(&ptb[..]).unwrap();
        assert_eq!(ip.src_addr(), a("2001:db8::1"));
        assert_eq!(ip.dst_addr(), a("2001:db8:ffff::1"));
        assert_eq!(icmpv6_of(&ip).unwrap().msg_type(), Icmpv6Type::PacketTooBig);
        // Without a global router address, no Packet Too Big.
        let quiet = ClientRouter::new(r.prefix(), RouterConfig::default()).unwrap();
        assert_eq!(quiet.egress(&big), Egress::TooBig(None));
        assert!(matches!(
            r.egress(&[1, 2, 3]),
            Egress::Drop(EgressDrop::Malformed(_))
        ));
    }

    fn router_with_mtu(link_mtu: usize) -> ClientRouter {
        ClientRouter::new(
            Prefix64::of(a("2001:db8:0:7::")),
            RouterConfig {
                router_addr: Some(a("2001:db8::1")),
                link_mtu,
                ..RouterConfig::default()
            },
        )
        .unwrap()
    }

    fn udp_of_len(len: usize) -> Vec<u8> {
        let mut p = udp("2001:db8:ffff::1", "2001:db8:0:7::abcd");
        p.resize(len, 0);
        let payload = u16::try_from(len - HEADER_LEN).unwrap();
        p[4..6].copy_from_slice(&payload.to_be_bytes());
        p
    }

    #[test]
    fn session_link_mtu_in_adverts_and_egress() {
        let t0 = Instant::now();
        let mut r = router_with_mtu(4000);
        assert_eq!(r.link_mtu(), 4000);
        r.link_up(t0);
        let ra = RouterAdvert::parse(&drain(&mut r)[0]).unwrap();
        assert_eq!(ra.advert.mtu, Some(4000));
        // The solicited (unicast) and the final RA carry it too.
        r.ingress(t0 + s(10), &RouterSolicit::build(a("fe80::c1")));
        let ra = RouterAdvert::parse(&drain(&mut r)[0]).unwrap();
        assert_eq!(ra.advert.mtu, Some(4000));
        let fin = RouterAdvert::parse(&r.final_advert()).unwrap();
        assert_eq!(fin.advert.mtu, Some(4000));

        assert_eq!(r.egress(&udp_of_len(4000)), Egress::Send);
        assert_eq!(r.egress(&udp_of_len(1400)), Egress::Send);
        let Egress::TooBig(Some(ptb)) = r.egress(&udp_of_len(4001)) else {
            panic!("expected Packet Too Big");
        };
        let ip = Ipv6Packet::new_checked(&ptb[..]).unwrap();
        let icmp = icmpv6_of(&ip).unwrap();
        assert_eq!(icmp.msg_type(), Icmpv6Type::PacketTooBig);
        // The MTU field (RFC 4443 §3.2) is the session's link MTU.
        assert_eq!(&ptb[HEADER_LEN + 4..HEADER_LEN + 8], &4000u32.to_be_bytes());
    }

    #[test]
    fn default_link_mtu_is_1280_and_bounded() {
        // A client that announced nothing: the RA and the Packet Too Big
        // of the spec's 1280.
        let r = router();
        assert_eq!(r.link_mtu(), 1280);
        assert_eq!(r.advert().mtu, Some(1280));
        let Egress::TooBig(Some(ptb)) = r.egress(&udp_of_len(1281)) else {
            panic!("expected Packet Too Big");
        };
        assert_eq!(&ptb[HEADER_LEN + 4..HEADER_LEN + 8], &1280u32.to_be_bytes());
        assert_eq!(r.egress(&udp_of_len(1280)), Egress::Send);
        // Out-of-range configurations are brought into range.
        assert_eq!(router_with_mtu(0).link_mtu(), 1280);
        assert_eq!(router_with_mtu(usize::MAX).link_mtu(), MAX_LINK_MTU);
    }

    #[test]
    fn final_advert_withdraws_the_default_route() {
        let r = router();
        let fin = RouterAdvert::parse(&r.final_advert()).unwrap();
        assert_eq!(fin.advert.router_lifetime, 0);
        assert_eq!(fin.advert.prefixes, r.advert().prefixes);
    }

    #[test]
    fn config_errors_surface() {
        let bad = ClientRouter::new(
            Prefix64::of(a("2001:db8::")),
            RouterConfig {
                router_ll: a("2001:db8::1"),
                ..RouterConfig::default()
            },
        );
        assert_eq!(
            bad.unwrap_err(),
            NdError::SourceNotLinkLocal(a("2001:db8::1"))
        );
        let split = ClientRouter::new(
            Prefix64::of(a("2001:db8::")),
            RouterConfig {
                router_lifetime: 0,
                routes: vec![RouteInfo {
                    prefix: a("2001:db8:100::"),
                    prefix_len: 40,
                    preference: crate::nd::RoutePreference::Medium,
                    lifetime: 1800,
                }],
                ..RouterConfig::default()
            },
        )
        .unwrap();
        assert_eq!(split.advert().router_lifetime, 0);
        assert_eq!(split.advert().routes.len(), 1);
    }
}
