//! One SSTP session, either end: the SSTP engine (MS-SSTP §3.2 client,
//! §3.3 server) carrying the PPP engine (RFC 1661; authenticator on the
//! server, peer on the client), the addresses IPCP and IPv6CP settle on,
//! anti-spoofing of what the client sends, and IPv6 Router Solicitation /
//! Advertisement over IPv6CP (RFC 5072 §5, RFC 4861 §6).
//!
//! The driver moves bytes and time in and out ([`crate::Session`]) and
//! answers the server's questions: [`Event::AuthRequest`] with
//! [`SstpSession::auth_verdict`], [`Event::NeedIpv4Address`] with
//! [`SstpSession::assign_ipv4`] / [`SstpSession::deny_ipv4`], and a
//! server's [`Event::Ipv6Up`] with [`SstpSession::confirm_ipv6`] once the
//! address is routed (or not).
//!
//! Data path: PPP frames arrive borrowed from the stream bytes
//! ([`sstp::Connection::handle_input_with`]); an IP packet is copied once,
//! into the TUN queue. Outbound, the SSTP and PPP headers and the packet are
//! written straight into the transmit buffer
//! ([`sstp::Connection::send_ppp_data`]).

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use ipv6nd::nd::ReceivedAdvert;
use ipv6nd::{InterfaceId, Prefix64};

use crate::ip;
use crate::packets::PacketQueue;
use crate::{Counters, Session};

/// What the server advertises to a client with IPv6 (IPv6CP up).
#[derive(Debug, Clone)]
pub struct Ipv6Params {
    /// The /64 of every client's address: `prefix::<its IPv6CP identifier>`.
    pub prefix: Prefix64,
    /// RDNSS servers in the Router Advertisement.
    pub dns: Vec<Ipv6Addr>,
    /// The MTU option of the Router Advertisement (capped by the
    /// client's MRU and any Framed-MTU).
    pub mtu: u16,
    /// The server's own address on the TUN device: the source of its
    /// ICMPv6 Packet Too Big (RFC 4443 §2.2).
    pub router: Ipv6Addr,
}

/// What the session tells its driver.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// Server: verify these credentials; answer with [`SstpSession::auth_verdict`].
    AuthRequest(ppp::AuthRequest),
    /// Authentication succeeded (server: the user; client: our own name).
    Authenticated {
        /// The user name.
        username: String,
        /// The method used.
        method: ppp::AuthMethod,
    },
    /// Authentication failed; the session closes.
    AuthFailed {
        /// The user name, if one was received.
        username: Option<String>,
        /// Why.
        reason: ppp::AuthFailure,
    },
    /// Server: give the client an IPv4 address ([`SstpSession::assign_ipv4`]).
    NeedIpv4Address {
        /// The authenticated user.
        username: String,
    },
    /// The call is connected: the crypto binding was sent (client) or
    /// verified (server). Data flows from now.
    Connected,
    /// IPCP is up. Server: route `peer` to this session. Client: bring up
    /// the device with `local`.
    Ipv4Up {
        /// Our address.
        local: Ipv4Addr,
        /// The peer's address.
        peer: Ipv4Addr,
        /// DNS servers (given by the server, or learned).
        dns: Vec<Ipv4Addr>,
    },
    /// IPCP went down.
    Ipv4Down,
    /// IPv6CP is up. Server: `address` is the client's (`prefix::iid`; `None`
    /// without IPv6 parameters or for a reserved identifier); route it and
    /// answer with [`SstpSession::confirm_ipv6`].
    Ipv6Up {
        /// Our interface identifier.
        local_iid: [u8; 8],
        /// The peer's interface identifier.
        peer_iid: [u8; 8],
        /// Server: the client's global address.
        address: Option<Ipv6Addr>,
    },
    /// IPv6CP went down.
    Ipv6Down,
    /// Client: the server's Router Advertisement, to apply to the device.
    RouterAdvert(ReceivedAdvert),
    /// Server: packets with a source address the client was not given were
    /// dropped; reported at 1, 2, 4, 8, ... drops.
    Spoofed {
        /// The last offending source (`None`: not an IP packet).
        source: Option<IpAddr>,
        /// Drops so far.
        dropped: u64,
    },
    /// The session is over (emitted once, last).
    Closed(Ending),
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    /// Why SSTP closed.
    pub sstp: sstp::CloseReason,
    /// Why PPP went down, if it was up.
    pub ppp: Option<ppp::LinkDownReason>,
    /// The text of the peer's LCP Terminate-Request, if it sent one
    /// (printable, at most 200 characters).
    pub peer_reason: Option<String>,
}

impl Ending {
    /// Whether PPP went down on its own (a peer's Terminate-Request, echo
    /// timeout, failed authentication, ...) rather than because SSTP closed
    /// under it.
    pub fn ppp_first(&self) -> Option<ppp::LinkDownReason> {
        self.ppp
            .filter(|r| *r != ppp::LinkDownReason::LowerLayerDown)
    }
}

/// The text of an LCP Terminate-Request in `frame` (a PPP frame as SSTP
/// carries it), if it is one (RFC 1661 §5.5), made safe to print: no
/// control characters, at most 200 characters.
pub fn lcp_terminate_text(frame: &[u8]) -> Option<String> {
    let f = ppp::frame::parse(frame).ok()?;
    if f.protocol != ppp::frame::Protocol::Lcp {
        return None;
    }
    let p = ppp::wire::Packet::parse(f.payload).ok()?;
    if p.code != ppp::fsm::code::TERM_REQ {
        return None;
    }
    let text: String = String::from_utf8_lossy(p.data)
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// One end's addresses on the link.
#[derive(Debug, Default)]
struct Link {
    /// Server: the client's IPv4 address (the only source it may use).
    peer_v4: Option<Ipv4Addr>,
    /// Server: the client's global IPv6 address, once routed.
    peer_v6: Option<Ipv6Addr>,
    /// Our link-local address (IPv6CP up).
    local_ll: Option<Ipv6Addr>,
    /// Server: IPv4 networks behind the client (RADIUS Framed-Route, RFC
    /// 2865 §5.22) as (network, mask): also sources it may use while it
    /// has its IPv4 address.
    routed_v4: Vec<(u32, u32)>,
    /// Server: the client's own /64 (RADIUS Framed-IPv6-Prefix, RFC 3162
    /// §2.3): any address in it is a source it may use while its IPv6 is
    /// up (the whole /64 is routed to it).
    framed64: Option<Prefix64>,
    /// Server: IPv6 networks behind the client (RADIUS
    /// Delegated-IPv6-Prefix, RFC 4818) as (network, mask): sources it
    /// may use while its IPv6 is up.
    routed_v6: Vec<(u128, u128)>,
}

impl Link {
    /// Whether `pkt`'s source is in one of the networks routed to the
    /// client (only while IPv4 is up).
    fn routed_source(&self, pkt: &[u8]) -> bool {
        match (self.peer_v4, ip::source(pkt)) {
            (Some(_), Some(IpAddr::V4(s))) => self
                .routed_v4
                .iter()
                .any(|&(net, mask)| u32::from(s) & mask == net),
            _ => self.routed_source_v6(pkt),
        }
    }

    /// The same for IPv6: a source in the client's Framed-IPv6-Prefix or
    /// a delegated network, to a destination beyond the link, while its
    /// IPv6 is up.
    fn routed_source_v6(&self, pkt: &[u8]) -> bool {
        let (Some(_), Some(IpAddr::V6(s)), Some(IpAddr::V6(d))) =
            (self.peer_v6, ip::source(pkt), ip::destination(pkt))
        else {
            return false;
        };
        !ip::link_scope(d)
            && (self.framed64.is_some_and(|p| p.contains(s))
                || self
                    .routed_v6
                    .iter()
                    .any(|&(net, mask)| u128::from(s) & mask == net))
    }
}

/// Where a packet from the client goes (anti-spoofing, DESIGN "Data plane").
#[derive(Debug, PartialEq, Eq)]
enum FromClient {
    /// From the session's own address, to a routable destination: to the
    /// TUN device.
    Forward,
    /// Traffic of the point-to-point link itself: an IPv6 link-local or
    /// unspecified source (the client's kernel picks its own link-local
    /// address, which need not be `fe80::<IPv6CP identifier>`; DAD and MLD
    /// use `::`), or a link-scope destination. "Routers must not forward
    /// any packets with Link-Local source or destination addresses"
    /// (RFC 4291 §2.5.6): handled here, never counted as spoofing.
    Link,
    /// Any other source: dropped and counted.
    Spoofed,
}

/// Decides on a packet the client sent, given the session's addresses.
fn classify(pkt: &[u8], v4: Option<Ipv4Addr>, v6: Option<Ipv6Addr>) -> FromClient {
    let (Some(src), Some(dst)) = (ip::source(pkt), ip::destination(pkt)) else {
        return FromClient::Spoofed;
    };
    match (src, dst) {
        (IpAddr::V6(s), _) if s.is_unspecified() || ip::link_scope(s) => FromClient::Link,
        (IpAddr::V6(s), IpAddr::V6(d)) if Some(s) == v6 => {
            if ip::link_scope(d) {
                FromClient::Link
            } else {
                FromClient::Forward
            }
        }
        (IpAddr::V4(s), _) if Some(s) == v4 => FromClient::Forward,
        _ => FromClient::Spoofed,
    }
}

/// Everything the input path touches besides the two engines, so that it
/// can run while the SSTP engine is borrowed.
#[derive(Debug)]
struct Net {
    server: bool,
    ipv6: Option<Ipv6Params>,
    link: Link,
    tun: PacketQueue,
    events: VecDeque<Event>,
    counters: Counters,
    /// A Router Solicitation to answer (server) once the engines are free.
    ra_to: Option<Ipv6Addr>,
    sstp_reason: Option<sstp::CloseReason>,
    ppp_reason: Option<ppp::LinkDownReason>,
    peer_reason: Option<String>,
    /// Rate limits (server): from the client, and towards it.
    up: Option<crate::rate::TokenBucket>,
    down: Option<crate::rate::TokenBucket>,
    /// Server: the largest packet sent to the client (RADIUS Framed-MTU,
    /// below the peer's MRU); see [`SstpSession::handle_tun_packet`] for
    /// what happens to larger ones.
    mtu_cap: Option<u16>,
    /// Where an IP packet's fragments are built (kept, so that a steady
    /// stream of them allocates nothing; the rarer ICMP errors allocate).
    scratch: Vec<u8>,
    /// The ICMP errors sent about packets too large for the link.
    icmp_errors: crate::rate::ErrorLimit,
}

impl Net {
    fn on_sstp_event(&mut self, now: Instant, ppp: &mut ppp::Ppp, ev: sstp::Event) {
        match ev {
            sstp::Event::PppControlAllowed => ppp.open(now),
            sstp::Event::Connected => self.events.push_back(Event::Connected),
            sstp::Event::Closed { reason } => {
                self.sstp_reason = Some(reason);
                ppp.lower_down(now);
            }
            _ => {}
        }
    }

    /// A PPP frame from the peer: control frames go into the PPP engine;
    /// an IP packet goes to the TUN queue if its source is allowed.
    fn on_ppp_frame(&mut self, now: Instant, ppp: &mut ppp::Ppp, f: &[u8]) {
        let Some(inbound) = ppp.handle_frame(now, f) else {
            // Control traffic: keep the reason of a Terminate-Request.
            if let Some(why) = lcp_terminate_text(f) {
                self.peer_reason = Some(why);
            }
            return;
        };
        let pkt = match inbound {
            ppp::Inbound::Ipv4(p) | ppp::Inbound::Ipv6(p) => p,
        };
        if self.server {
            self.packet_from_client(now, pkt);
        } else {
            self.packet_from_server(pkt);
        }
    }

    fn packet_from_client(&mut self, now: Instant, pkt: &[u8]) {
        let verdict = match classify(pkt, self.link.peer_v4, self.link.peer_v6) {
            FromClient::Spoofed if self.link.routed_source(pkt) => FromClient::Forward,
            v => v,
        };
        match verdict {
            FromClient::Forward if self.up.as_mut().is_some_and(|b| !b.allow(now, pkt.len())) => {
                self.counters.rate_dropped += 1;
            }
            FromClient::Forward => {
                self.counters.rx_packets += 1;
                self.counters.rx_bytes += pkt.len() as u64;
                self.tun.push(pkt);
            }
            FromClient::Link => {
                // A Router Solicitation gets an advertisement (RFC 4861
                // §6.2.6); the rest (MLD reports, DAD) ends here.
                self.counters.link_local += 1;
                if let Ok(rs) = ipv6nd::RouterSolicit::parse(pkt) {
                    self.ra_to = Some(rs.reply_to());
                }
            }
            FromClient::Spoofed => {
                self.counters.spoofed += 1;
                if self.counters.spoofed.is_power_of_two() {
                    self.events.push_back(Event::Spoofed {
                        source: ip::source(pkt),
                        dropped: self.counters.spoofed,
                    });
                }
            }
        }
    }

    fn packet_from_server(&mut self, pkt: &[u8]) {
        if ipv6nd::icmpv6::message_type(pkt)
            == Some(ipv6nd::icmpv6::Icmpv6Type::RouterAdvertisement)
        {
            if let Ok(ra) = ipv6nd::nd::RouterAdvert::parse(pkt) {
                self.events.push_back(Event::RouterAdvert(ra));
            }
            return;
        }
        self.counters.rx_packets += 1;
        self.counters.rx_bytes += pkt.len() as u64;
        self.tun.push(pkt);
    }
}

/// Random bytes for the PPP engine (challenges, magic numbers): must be
/// cryptographically secure outside tests.
pub type Rng = Box<dyn ppp::Rng>;

/// An SSTP session ([`crate::Session`]).
pub struct SstpSession {
    sstp: sstp::Connection,
    ppp: ppp::Ppp,
    net: Net,
    tx: Vec<u8>,
    closed: bool,
}

impl std::fmt::Debug for SstpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SstpSession")
            .field("sstp", &self.sstp.state())
            .field("ppp", &self.ppp)
            .finish_non_exhaustive()
    }
}

impl SstpSession {
    fn new(sstp: sstp::Connection, ppp: ppp::Ppp, server: bool, ipv6: Option<Ipv6Params>) -> Self {
        SstpSession {
            sstp,
            ppp,
            net: Net {
                server,
                ipv6,
                link: Link::default(),
                tun: PacketQueue::new(),
                events: VecDeque::new(),
                counters: Counters::default(),
                ra_to: None,
                sstp_reason: None,
                ppp_reason: None,
                peer_reason: None,
                up: None,
                down: None,
                mtu_cap: None,
                scratch: Vec::new(),
                icmp_errors: Default::default(),
            },
            tx: Vec::new(),
            closed: false,
        }
    }

    /// The server's session for a connection whose HTTP request was
    /// accepted (the 200 is the driver's). `nonce` must be random.
    pub fn server(
        sstp_cfg: sstp::ServerConfig,
        ppp_cfg: ppp::Config,
        ipv6: Option<Ipv6Params>,
        now: Instant,
        nonce: [u8; 32],
        rng: Rng,
    ) -> Self {
        let sstp = sstp::Connection::server(sstp_cfg, now, nonce);
        let ppp = ppp::Ppp::new(ppp_cfg, ppp::Role::Authenticator, now, rng);
        Self::new(sstp, ppp, true, ipv6)
    }

    /// The client's session once the server answered 200: sends Call
    /// Connect Request.
    pub fn client(
        sstp_cfg: sstp::ClientConfig,
        ppp_cfg: ppp::Config,
        now: Instant,
        rng: Rng,
    ) -> Self {
        let mut sstp = sstp::Connection::client(sstp_cfg);
        sstp.start(now);
        let ppp = ppp::Ppp::new(ppp_cfg, ppp::Role::Peer, now, rng);
        Self::new(sstp, ppp, false, None)
    }

    /// Server: the verdict on an [`Event::AuthRequest`].
    pub fn auth_verdict(&mut self, now: Instant, id: ppp::AuthRequestId, verdict: ppp::Verdict) {
        // A late verdict (the link went down meanwhile) has nothing to do.
        let _ = self.ppp.auth_verdict(now, id, verdict);
        self.pump(now);
    }

    /// Server: the answer to [`Event::NeedIpv4Address`].
    pub fn assign_ipv4(&mut self, now: Instant, a: ppp::Ipv4Assignment) {
        self.net.link.peer_v4 = Some(a.peer);
        let _ = self.ppp.set_ipv4(now, a);
        self.pump(now);
    }

    /// Server: the largest packet to send the client (RADIUS Framed-MTU;
    /// None: the peer's MRU). Also the MTU its Router Advertisements name.
    pub fn set_mtu_cap(&mut self, mtu: Option<u16>) {
        self.net.mtu_cap = mtu;
    }

    /// Server: IPv4 networks routed to the client (Framed-Route), whose
    /// addresses it may use as sources while its IPv4 is up.
    pub fn set_routed_v4(&mut self, nets: &[(Ipv4Addr, u8)]) {
        self.net.link.routed_v4 = nets
            .iter()
            .map(|&(a, len)| {
                let mask = if len == 0 {
                    0
                } else {
                    u32::MAX << (32 - len.min(32))
                };
                (u32::from(a) & mask, mask)
            })
            .collect();
    }

    /// Server: the /64 advertised to this client (RADIUS
    /// Framed-IPv6-Prefix, RFC 3162 §2.3) instead of the configured one:
    /// its address becomes `prefix::<IPv6CP identifier>`, and any address
    /// of the /64 is an allowed source while its IPv6 is up. Call before
    /// IPv6CP comes up; no effect without IPv6 parameters.
    pub fn set_ipv6_prefix(&mut self, prefix: Prefix64) {
        if let Some(p) = self.net.ipv6.as_mut() {
            p.prefix = prefix;
            self.net.link.framed64 = Some(prefix);
        }
    }

    /// Server: IPv6 networks routed to the client (RADIUS
    /// Delegated-IPv6-Prefix, RFC 4818), whose addresses it may use as
    /// sources while its IPv6 is up.
    pub fn set_routed_v6(&mut self, nets: &[(Ipv6Addr, u8)]) {
        self.net.link.routed_v6 = nets
            .iter()
            .map(|&(a, len)| {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(len.min(128)))
                    .unwrap_or(0);
                (u128::from(a) & mask, mask)
            })
            .collect();
    }

    /// Server: no IPv4 for this client (pool exhausted).
    pub fn deny_ipv4(&mut self, now: Instant) {
        let _ = self.ppp.deny_ipv4(now);
        self.pump(now);
    }

    /// Server: whether the address of [`Event::Ipv6Up`] is routed to this
    /// session. If so, the client gets its Router Advertisement now.
    pub fn confirm_ipv6(&mut self, now: Instant, routed: Option<Ipv6Addr>) {
        self.net.link.peer_v6 = routed;
        if routed.is_some() {
            self.send_ra(ipv6nd::addr::ALL_NODES);
        }
        self.pump(now);
    }

    /// Counters so far.
    pub fn counters(&self) -> &Counters {
        &self.net.counters
    }

    /// Server: polices the client's traffic from now on (None: no limit);
    /// packets over the limit are dropped and counted (`rate_dropped`).
    pub fn set_rate_limit(&mut self, now: Instant, limit: Option<crate::rate::RateLimit>) {
        let (down, up) = limit.map_or((0, 0), |l| (l.down_bps, l.up_bps));
        self.net.down = crate::rate::TokenBucket::new(now, down);
        self.net.up = crate::rate::TokenBucket::new(now, up);
    }

    /// The PPP phase (RFC 1661 §3.2): where a load generator stalls on
    /// purpose, and what a stuck session is waiting for.
    pub fn ppp_phase(&self) -> ppp::Phase {
        self.ppp.phase()
    }

    /// The PPP peer's MRU: the largest packet the device should send.
    pub fn peer_mru(&self) -> u16 {
        self.ppp.peer_mru()
    }

    /// Client: the server does EAP only (it stopped asking for any method
    /// after we declined EAP): connect again with EAP first.
    pub fn server_wants_only_eap(&self) -> bool {
        self.ppp.authenticator_wants_only_eap()
    }

    /// The largest packet the link carries to the peer: its MRU (a server
    /// device's MTU may be larger, for peers that asked for more), or the
    /// Framed-MTU cap below it.
    fn link_mtu(&self) -> u16 {
        let peer_mru = self.ppp.peer_mru();
        self.net.mtu_cap.map_or(peer_mru, |c| c.min(peer_mru))
    }

    /// A packet from the TUN device larger than the link carries (`mtu`):
    /// IPv4 with Don't Fragment gets ICMP Fragmentation Needed (RFC 1191
    /// §4), other IPv4 is fragmented (RFC 791 §3.2) and sent, IPv6 gets
    /// Packet Too Big (RFC 4443 §3.2; routers never fragment IPv6) from
    /// the server's address, at most [`crate::rate::ErrorLimit::PER_SECOND`]
    /// a second. Returns whether it was sent.
    fn send_oversize(&mut self, now: Instant, packet: &[u8], mtu: u16) -> bool {
        if let Some(mut frags) = ip::fragments(packet, mtu) {
            let mut buf = std::mem::take(&mut self.net.scratch);
            let mut sent = true;
            while frags.next_into(&mut buf) {
                sent &= self.send_ip(&buf);
            }
            self.net.scratch = buf;
            return sent;
        }
        if !self.net.icmp_errors.allow(now) {
            return false;
        }
        let answer = match packet.first().map(|b| b >> 4) {
            Some(6) => self
                .packet_too_big_source(packet)
                .and_then(|src| ipv6nd::icmpv6::packet_too_big(src, packet, u32::from(mtu))),
            _ => ip::frag_needed(packet, mtu),
        };
        if let Some(icmp) = answer {
            self.net.tun.push(&icmp);
        }
        false
    }

    /// The source of a Packet Too Big for `packet`: the server's address
    /// on the TUN device; on the client (no such address known), the
    /// packet's destination if it is a global unicast one, as for IPv4.
    fn packet_too_big_source(&self, packet: &[u8]) -> Option<Ipv6Addr> {
        if let Some(p) = &self.net.ipv6 {
            return Some(p.router);
        }
        match ip::destination(packet)? {
            IpAddr::V6(d) if !d.is_multicast() && !d.is_unspecified() && !ip::link_scope(d) => {
                Some(d)
            }
            _ => None,
        }
    }

    /// Frames an IP packet of ours for the peer (dropped and counted when
    /// the link cannot carry it yet, or it exceeds the peer's MRU).
    fn send_ip(&mut self, pkt: &[u8]) -> bool {
        match self.ppp.ip_header(pkt) {
            Ok(h) => self.sstp.send_ppp_data(&h, pkt, &mut self.tx).is_ok(),
            Err(_) => false,
        }
    }

    /// A Router Advertisement of the client's /64 (RFC 4861 §6.2.3).
    fn send_ra(&mut self, to: Ipv6Addr) {
        let (Some(p), Some(src)) = (&self.net.ipv6, self.net.link.local_ll) else {
            return;
        };
        if self.net.link.peer_v6.is_none() {
            return;
        }
        let mut ra = ipv6nd::RouterAdvert::for_client(p.prefix, &p.dns);
        ra.mtu = Some(u32::from(self.link_mtu().min(p.mtu)));
        if let Ok(pkt) = ra.to_packet(src, to) {
            self.send_ip(&pkt);
        }
    }

    /// Moves events between the engines until neither has anything left.
    fn pump(&mut self, now: Instant) {
        loop {
            let mut busy = false;
            while let Some(ev) = self.sstp.poll_event() {
                busy = true;
                self.net.on_sstp_event(now, &mut self.ppp, ev);
            }
            while let Some(f) = self.ppp.poll_transmit() {
                busy = true;
                // Refused only outside the states that allow it: dropped.
                let _ = self.sstp.send_ppp_frame(&f);
            }
            while let Some(ev) = self.ppp.poll_event() {
                busy = true;
                self.on_ppp_event(now, ev);
            }
            if let Some(to) = self.net.ra_to.take() {
                busy = true;
                self.send_ra(to);
            }
            if !busy {
                break;
            }
        }
        if self.sstp.is_closed() && !self.closed {
            self.closed = true;
            self.net.link = Link::default();
            self.net.events.push_back(Event::Closed(Ending {
                sstp: self
                    .net
                    .sstp_reason
                    .clone()
                    .unwrap_or(sstp::CloseReason::LowerLayerClosed),
                ppp: self.net.ppp_reason,
                peer_reason: self.net.peer_reason.clone(),
            }));
        }
    }

    fn on_ppp_event(&mut self, now: Instant, ev: ppp::Event) {
        let out = match ev {
            ppp::Event::AuthRequest(r) => Event::AuthRequest(r),
            ppp::Event::Authenticated {
                hlak,
                alt_hlak,
                username,
                method,
            } => {
                self.sstp
                    .higher_layer_authenticated_or(now, hlak.0, alt_hlak.map(|h| h.0));
                Event::Authenticated { username, method }
            }
            ppp::Event::AuthFailed { username, reason } => Event::AuthFailed { username, reason },
            ppp::Event::NeedIpv4Address { username } => Event::NeedIpv4Address { username },
            ppp::Event::Ipv4Up {
                local,
                peer,
                dns1,
                dns2,
            } => Event::Ipv4Up {
                local,
                peer,
                dns: [dns1, dns2].into_iter().flatten().collect(),
            },
            ppp::Event::Ipv4Down => {
                self.net.link.peer_v4 = None;
                Event::Ipv4Down
            }
            ppp::Event::Ipv6Up {
                local_iid,
                peer_iid,
            } => {
                let local_ll = ip::link_local(local_iid);
                self.net.link.local_ll = Some(local_ll);
                let address = self.net.ipv6.as_ref().and_then(|p| {
                    InterfaceId::new(peer_iid)
                        .ok()
                        .map(|iid| p.prefix.address(iid))
                });
                if !self.net.server {
                    // Ask for the prefix now (RFC 4861 §6.3.7).
                    let rs = ipv6nd::RouterSolicit::build(local_ll);
                    self.send_ip(&rs);
                }
                Event::Ipv6Up {
                    local_iid,
                    peer_iid,
                    address,
                }
            }
            ppp::Event::Ipv6Down => {
                self.net.link.peer_v6 = None;
                self.net.link.local_ll = None;
                Event::Ipv6Down
            }
            ppp::Event::LinkDown { reason } => {
                self.net.ppp_reason = Some(reason);
                self.net.link = Link::default();
                self.sstp.disconnect(now);
                return;
            }
            _ => return,
        };
        self.net.events.push_back(out);
    }
}

impl Session for SstpSession {
    type Event = Event;

    fn handle_stream_bytes(&mut self, now: Instant, bytes: &[u8]) {
        let (ppp, net) = (&mut self.ppp, &mut self.net);
        self.sstp
            .handle_input_with(now, bytes, &mut |out| match out {
                sstp::Output::PppFrame(f) => net.on_ppp_frame(now, ppp, f),
                sstp::Output::Event(e) => net.on_sstp_event(now, ppp, e),
            });
        self.pump(now);
    }

    /// A packet for the peer. One larger than the link carries (the peer's
    /// MRU, or a Framed-MTU below it) is fragmented (IPv4 without Don't
    /// Fragment) or answered with ICMP Fragmentation Needed (IPv4 with DF)
    /// or Packet Too Big (IPv6) and counted in `tx_dropped`.
    fn handle_tun_packet(&mut self, now: Instant, packet: &[u8]) {
        let mtu = self.link_mtu();
        let oversize = packet.len() > usize::from(mtu);
        if oversize && !ip::may_fragment(packet) {
            self.send_oversize(now, packet, mtu);
            self.net.counters.tx_dropped += 1;
            return;
        }
        if let Some(b) = self.net.down.as_mut() {
            if !b.allow(now, packet.len()) {
                self.net.counters.rate_dropped += 1;
                return;
            }
        }
        let sent = if oversize {
            self.send_oversize(now, packet, mtu)
        } else {
            self.send_ip(packet)
        };
        if sent {
            self.net.counters.tx_packets += 1;
            self.net.counters.tx_bytes += packet.len() as u64;
        } else {
            // Not connected yet, NCP down, or over the peer's MRU.
            self.net.counters.tx_dropped += 1;
        }
    }

    fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> bool {
        self.sstp.poll_transmit(&mut self.tx);
        crate::hand_over(&mut self.tx, buf)
    }

    fn poll_tun(&mut self) -> Option<&[u8]> {
        self.net.tun.pop()
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.net.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        [self.sstp.poll_timeout(), self.ppp.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.sstp.handle_timeout(now);
        self.ppp.handle_timeout(now);
        self.pump(now);
    }

    fn close(&mut self, now: Instant, reason: &str) {
        // LCP Terminate first, then Call Disconnect (MS-SSTP §3.2.4.2, §3.3.4).
        self.ppp.close(now, reason);
        self.pump(now);
        self.sstp.disconnect(now);
        self.pump(now);
    }

    fn stream_closed(&mut self, now: Instant) {
        self.ppp.lower_down(now);
        self.sstp.lower_layer_closed(now);
        self.pump(now);
    }

    fn is_closed(&self) -> bool {
        self.closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(src: &str, dst: &str) -> Vec<u8> {
        match (src.parse().unwrap(), dst.parse().unwrap()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let mut p = vec![0x45, 0, 0, 20, 0, 0, 0, 0, 64, 1, 0, 0];
                p.extend_from_slice(&s.octets());
                p.extend_from_slice(&d.octets());
                p
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let mut p = vec![0x60, 0, 0, 0, 0, 0, 58, 255];
                p.extend_from_slice(&s.octets());
                p.extend_from_slice(&d.octets());
                p
            }
            _ => unreachable!(),
        }
    }

    #[test]
    fn anti_spoofing_lets_link_traffic_through_to_the_session_only() {
        let v4: Option<Ipv4Addr> = Some("10.44.0.2".parse().unwrap());
        let v6: Option<Ipv6Addr> = Some("fd44:443::ecab:83cd:3903:83da".parse().unwrap());
        let c = |src: &str, dst: &str| classify(&packet(src, dst), v4, v6);
        // The session's own addresses go to the TUN device.
        assert_eq!(c("10.44.0.2", "10.44.0.1"), FromClient::Forward);
        assert_eq!(
            c("fd44:443::ecab:83cd:3903:83da", "fd44:443::1"),
            FromClient::Forward
        );
        // The client's link-local address, whatever its identifier (the
        // kernel's own, not the IPv6CP one), and `::` (DAD, MLD): the link's.
        for src in [
            "fe80::8660:940e:603c:56c8",
            "fe80::ecab:83cd:3903:83da",
            "::",
        ] {
            for dst in ["ff02::2", "ff02::16", "fe80::1", "fd44:443::1"] {
                assert_eq!(c(src, dst), FromClient::Link, "{src} -> {dst}");
            }
        }
        // Its global address to a link-scope destination is not forwarded.
        assert_eq!(
            c("fd44:443::ecab:83cd:3903:83da", "ff02::1"),
            FromClient::Link
        );
        assert_eq!(
            c("fd44:443::ecab:83cd:3903:83da", "fe80::1"),
            FromClient::Link
        );
        // Anyone else's address is spoofing.
        assert_eq!(c("10.44.0.3", "10.44.0.1"), FromClient::Spoofed);
        assert_eq!(c("fd44:443::1:2", "fd44:443::1"), FromClient::Spoofed);
        assert_eq!(c("2001:db8::1", "ff02::1"), FromClient::Spoofed);
        // Without an IPv6 address, only link traffic is accepted.
        assert_eq!(
            classify(
                &packet("fd44:443::ecab:83cd:3903:83da", "fd44:443::1"),
                v4,
                None
            ),
            FromClient::Spoofed
        );
        assert_eq!(
            classify(&packet("fe80::1:2", "ff02::2"), v4, None),
            FromClient::Link
        );
        assert_eq!(classify(&[0x45, 0], v4, v6), FromClient::Spoofed);
    }

    #[test]
    fn framed_route_networks_are_allowed_sources_while_ipv4_is_up() {
        let mut link = Link {
            routed_v4: vec![(u32::from(Ipv4Addr::new(10, 50, 0, 0)), u32::MAX << 8)],
            ..Default::default()
        };
        let from = |src: &str| packet(src, "10.44.0.1");
        assert!(!link.routed_source(&from("10.50.0.9")), "IPv4 not up yet");
        link.peer_v4 = Some(Ipv4Addr::new(10, 44, 0, 2));
        assert!(link.routed_source(&from("10.50.0.9")));
        assert!(!link.routed_source(&from("10.50.1.9")));
        assert!(!link.routed_source(&packet("fd44:443::2", "fd44:443::1")));
    }

    #[test]
    fn framed_and_delegated_ipv6_prefixes_are_allowed_sources_while_ipv6_is_up() {
        let mut link = Link {
            framed64: Some(Prefix64::of("2001:db8:0:7::".parse().unwrap())),
            routed_v6: vec![(
                u128::from("2001:db8:100::".parse::<Ipv6Addr>().unwrap()),
                u128::MAX << 72,
            )],
            ..Default::default()
        };
        let from = |src: &str| packet(src, "2001:db8:ffff::1");
        assert!(
            !link.routed_source(&from("2001:db8:100:ab::1")),
            "IPv6 not up yet"
        );
        link.peer_v6 = Some("2001:db8:0:7::2".parse().unwrap());
        assert!(
            link.routed_source(&from("2001:db8:100:ab::1")),
            "delegated /56"
        );
        assert!(
            link.routed_source(&from("2001:db8:0:7:1:2:3:4")),
            "its /64, any address"
        );
        assert!(!link.routed_source(&from("2001:db8:101::1")));
        assert!(!link.routed_source(&from("2001:db8:0:8::1")));
        assert!(
            !link.routed_source(&packet("2001:db8:100::1", "ff02::1")),
            "link scope is not forwarded"
        );
    }

    fn lcp(code: u8, data: &[u8]) -> Vec<u8> {
        let mut f = vec![0xff, 0x03, 0xc0, 0x21, code, 7];
        f.extend_from_slice(&((4 + data.len()) as u16).to_be_bytes());
        f.extend_from_slice(data);
        f
    }

    #[test]
    fn terminate_request_text_is_the_reason() {
        assert_eq!(
            lcp_terminate_text(&lcp(5, b"server shutting down")).as_deref(),
            Some("server shutting down")
        );
        assert_eq!(lcp_terminate_text(&lcp(5, b"")), None);
        assert_eq!(lcp_terminate_text(&lcp(6, b"ack")), None, "Terminate-Ack");
        assert_eq!(
            lcp_terminate_text(&lcp(5, b"a\x1b[31mb\n")).as_deref(),
            Some("a[31mb")
        );
        assert_eq!(lcp_terminate_text(b"\xff\x03\xc0"), None);
    }
}
