//! IP-HTTPS sessions (MS-IPHTTPS): the IPv6 packet stream of one HTTPS
//! connection after the 200, for either end.
//!
//! * [`IphttpsServer`]: the server as the client's IPv6 router (§3.2.3):
//!   framing (§3.2.5.2), anti-spoofing and the answers to Router and
//!   Neighbor Solicitations ([`iphttps::ClientRouter`]), periodic RAs, a
//!   final RA when it closes.
//! * [`IphttpsClient`]: the client's side of one connection (§3.1.5.3):
//!   Router Solicitations out, Router Advertisements reported, everything
//!   else to the TUN device. The reconnect logic (§3.1.1, §3.1.2.1,
//!   [`iphttps::Link`]) spans connections and stays with the driver.
//!
//! Framing is the IPv6 Payload Length; the driver reads straight into the
//! decoder's buffer ([`crate::Session::read_buf`]), so a packet is copied
//! once on its way in, into the TUN queue.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv6Addr};
use std::time::Instant;

use iphttps::nd::ReceivedAdvert;
use iphttps::router::DropReason;
use iphttps::{ClientRouter, Decoder, Encoder, Frame, FrameError, Verdict};

use crate::packets::PacketQueue;
use crate::{Counters, Session};

/// What an IP-HTTPS session tells its driver.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// Client: the server's Router Advertisement, to apply to the device.
    RouterAdvert(ReceivedAdvert),
    /// Server: packets with a source outside the client's /64 were dropped;
    /// reported at 1, 2, 4, 8, ... drops.
    Spoofed {
        /// The last offending source.
        source: IpAddr,
        /// Drops so far.
        dropped: u64,
    },
    /// The session is over (emitted once, last).
    Closed(Ending),
}

/// How an IP-HTTPS session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ending {
    /// We closed it ([`Session::close`]) with this reason.
    Local(String),
    /// The peer closed the stream between packets.
    PeerClosed,
    /// The stream ended inside a packet, or failed.
    StreamLost,
    /// The peer sent something that is not IPv6 (§3.2.5.2).
    Framing(FrameError),
}

impl std::fmt::Display for Ending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ending::Local(r) => f.write_str(r),
            Ending::PeerClosed => f.write_str("closed by the peer"),
            Ending::StreamLost => f.write_str("connection lost"),
            Ending::Framing(e) => write!(f, "not an IPv6 stream: {e}"),
        }
    }
}

/// Where decoded packets go: the TUN queue, events, counters.
#[derive(Debug, Default)]
struct Out {
    tun: PacketQueue,
    events: VecDeque<Event>,
    counters: Counters,
    ended: bool,
}

impl Out {
    fn end(&mut self, how: Ending) {
        if !self.ended {
            self.ended = true;
            self.tun.clear();
            self.events.push_back(Event::Closed(how));
        }
    }

    fn forward(&mut self, p: &[u8]) {
        self.counters.rx_packets += 1;
        self.counters.rx_bytes += p.len() as u64;
        self.tun.push(p);
    }
}

/// What both ends share: framing, the transmit buffer, the outputs.
#[derive(Debug)]
struct Stream {
    dec: Decoder,
    enc: Encoder,
    tx: Vec<u8>,
    out: Out,
}

impl Stream {
    /// Framing for a link MTU of `link_mtu`: packets up to it are sent, and
    /// up to it or [`iphttps::DEFAULT_MAX_PACKET`] taken in.
    fn new(link_mtu: usize) -> Self {
        let dec = Decoder::with_max_packet(link_mtu.max(iphttps::DEFAULT_MAX_PACKET));
        Stream {
            dec: dec.unwrap_or_default(),
            enc: Encoder::with_max_packet(link_mtu).unwrap_or_default(),
            tx: Vec::new(),
            out: Out::default(),
        }
    }

    /// Feeds `bytes` through the decoder, handing each packet to `each`.
    fn input(&mut self, mut bytes: &[u8], each: &mut dyn FnMut(&mut Out, &[u8])) {
        while !self.out.ended {
            let n = self.dec.extend(bytes);
            bytes = &bytes[n..];
            self.drain(each);
            if bytes.is_empty() {
                break;
            }
        }
    }

    /// Decodes what the buffer holds; packets are borrowed from it.
    fn drain(&mut self, each: &mut dyn FnMut(&mut Out, &[u8])) {
        while !self.out.ended {
            match self.dec.next_packet() {
                Ok(Some(Frame::Packet(p))) => each(&mut self.out, p),
                Ok(Some(Frame::Oversize { .. })) => self.out.counters.rx_dropped += 1,
                Ok(None) => break,
                Err(e) => self.out.end(Ending::Framing(e)),
            }
        }
    }

    fn send(&mut self, p: &[u8]) -> bool {
        !self.out.ended && self.enc.encode(p, &mut self.tx).is_ok()
    }

    fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> bool {
        crate::hand_over(&mut self.tx, buf)
    }

    fn stream_closed(&mut self) {
        let how = if self.dec.finish().is_ok() {
            Ending::PeerClosed
        } else {
            Ending::StreamLost
        };
        self.out.end(how);
    }
}

/// The server's IP-HTTPS session ([`Session`]).
#[derive(Debug)]
pub struct IphttpsServer {
    router: ClientRouter,
    s: Stream,
}

impl IphttpsServer {
    /// A session for a client owning `router`'s /64, once the 200 is sent:
    /// the first Router Advertisement goes out at once. Packets up to the
    /// router's link MTU are framed.
    pub fn new(mut router: ClientRouter, now: Instant) -> Self {
        router.link_up(now);
        let s = Stream::new(router.link_mtu());
        let mut s = IphttpsServer { router, s };
        s.flush_router();
        s
    }

    /// Counters so far.
    pub fn counters(&self) -> &Counters {
        &self.s.out.counters
    }

    /// The router's own counters (RAs, solicitations, drops by kind).
    pub fn router_stats(&self) -> iphttps::router::RouterStats {
        self.router.stats()
    }

    fn flush_router(&mut self) {
        while let Some(p) = self.router.poll_transmit() {
            self.s.send(&p);
        }
    }

    fn ingress(router: &mut ClientRouter, now: Instant, s: &mut Out, p: &[u8]) {
        match router.ingress(now, p) {
            Verdict::Forward => s.forward(p),
            Verdict::Local => s.counters.link_local += 1,
            Verdict::Drop(DropReason::SpoofedSource(src)) => {
                s.counters.spoofed += 1;
                if s.counters.spoofed.is_power_of_two() {
                    s.events.push_back(Event::Spoofed {
                        source: IpAddr::V6(src),
                        dropped: s.counters.spoofed,
                    });
                }
            }
            Verdict::Drop(_) => s.counters.rx_dropped += 1,
        }
    }
}

impl Session for IphttpsServer {
    type Event = Event;

    fn handle_stream_bytes(&mut self, now: Instant, bytes: &[u8]) {
        let router = &mut self.router;
        self.s
            .input(bytes, &mut |s, p| Self::ingress(router, now, s, p));
        self.flush_router();
    }

    fn read_buf(&mut self) -> Option<&mut [u8]> {
        Some(self.s.dec.spare())
    }

    fn handle_read(&mut self, now: Instant, n: usize) {
        self.s.dec.filled(n);
        let router = &mut self.router;
        self.s.drain(&mut |s, p| Self::ingress(router, now, s, p));
        self.flush_router();
    }

    fn handle_tun_packet(&mut self, _now: Instant, packet: &[u8]) {
        match self.router.egress(packet) {
            iphttps::Egress::Send if self.s.send(packet) => {
                self.s.out.counters.tx_packets += 1;
                self.s.out.counters.tx_bytes += packet.len() as u64;
            }
            // Towards the sender, through the TUN device (RFC 4443 §3.2).
            iphttps::Egress::TooBig(Some(ptb)) if !self.s.out.ended => {
                self.s.out.tun.push(&ptb);
                self.s.out.counters.tx_dropped += 1;
            }
            _ => self.s.out.counters.tx_dropped += 1,
        }
    }

    fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> bool {
        self.s.poll_transmit(buf)
    }

    fn poll_tun(&mut self) -> Option<&[u8]> {
        self.s.out.tun.pop()
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.s.out.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if self.s.out.ended {
            return None;
        }
        self.router.poll_timeout()
    }

    fn handle_timeout(&mut self, now: Instant) {
        if !self.s.out.ended {
            self.router.handle_timeout(now);
            self.flush_router();
        }
    }

    /// A final Router Advertisement with lifetime 0 (the client drops its
    /// default route at once), then the end.
    fn close(&mut self, _now: Instant, reason: &str) {
        if !self.s.out.ended {
            let ra = self.router.final_advert();
            self.s.send(&ra);
            self.s.out.end(Ending::Local(reason.to_string()));
        }
    }

    fn stream_closed(&mut self, _now: Instant) {
        self.s.stream_closed();
    }

    fn is_closed(&self) -> bool {
        self.s.out.ended
    }
}

/// The client's side of one IP-HTTPS connection ([`Session`]).
#[derive(Debug)]
pub struct IphttpsClient {
    link_local: Ipv6Addr,
    s: Stream,
}

impl IphttpsClient {
    /// A session for a connection the server answered with 200; our
    /// link-local address is `link_local`, and our request announced a
    /// link MTU of `link_mtu` (1280: none, [`iphttps::mtu`]): packets up to
    /// it are framed both ways.
    pub fn new(link_local: Ipv6Addr, link_mtu: usize) -> Self {
        IphttpsClient {
            link_local,
            s: Stream::new(link_mtu),
        }
    }

    /// Sends a Router Solicitation (RFC 4861 §6.3.7).
    pub fn solicit_router(&mut self) {
        let rs = iphttps::RouterSolicit::build(self.link_local);
        self.s.send(&rs);
    }

    /// Counters so far.
    pub fn counters(&self) -> &Counters {
        &self.s.out.counters
    }

    fn ingress(s: &mut Out, p: &[u8]) {
        if iphttps::icmpv6::message_type(p)
            == Some(iphttps::icmpv6::Icmpv6Type::RouterAdvertisement)
        {
            s.counters.link_local += 1;
            if let Ok(ra) = iphttps::RouterAdvert::parse(p) {
                s.events.push_back(Event::RouterAdvert(ra));
            }
            return;
        }
        s.forward(p);
    }
}

impl Session for IphttpsClient {
    type Event = Event;

    fn handle_stream_bytes(&mut self, _now: Instant, bytes: &[u8]) {
        self.s.input(bytes, &mut Self::ingress);
    }

    fn read_buf(&mut self) -> Option<&mut [u8]> {
        Some(self.s.dec.spare())
    }

    fn handle_read(&mut self, _now: Instant, n: usize) {
        self.s.dec.filled(n);
        self.s.drain(&mut Self::ingress);
    }

    fn handle_tun_packet(&mut self, _now: Instant, packet: &[u8]) {
        if self.s.send(packet) {
            self.s.out.counters.tx_packets += 1;
            self.s.out.counters.tx_bytes += packet.len() as u64;
        } else {
            self.s.out.counters.tx_dropped += 1;
        }
    }

    fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> bool {
        self.s.poll_transmit(buf)
    }

    fn poll_tun(&mut self) -> Option<&[u8]> {
        self.s.out.tun.pop()
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.s.out.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    fn handle_timeout(&mut self, _now: Instant) {}

    fn close(&mut self, _now: Instant, reason: &str) {
        self.s.out.end(Ending::Local(reason.to_string()));
    }

    fn stream_closed(&mut self, _now: Instant) {
        self.s.stream_closed();
    }

    fn is_closed(&self) -> bool {
        self.s.out.ended
    }
}
