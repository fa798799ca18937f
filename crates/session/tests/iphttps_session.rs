//! Whole IP-HTTPS sessions, server and client, in virtual time: the first
//! RA, solicitations, packets both ways (also byte by byte), anti-spoofing,
//! periodic RAs, Packet Too Big, a link MTU above 1280, the final RA at close, and a stream that
//! is not IPv6.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use iphttps::{ClientRouter, InterfaceId, Prefix64, RouterConfig};
use session::iphttps::{Ending, Event};
use session::{IphttpsClient, IphttpsServer, Session};

fn prefix() -> Prefix64 {
    Prefix64::of("fd00:1:0:5::".parse().unwrap())
}

fn v6(src: Ipv6Addr, dst: Ipv6Addr, payload: usize) -> Vec<u8> {
    let mut p = vec![0x5a; 40 + payload];
    p[..4].copy_from_slice(&[0x60, 0, 0, 0]);
    p[4..6].copy_from_slice(&(payload as u16).to_be_bytes());
    p[6] = 59;
    p[7] = 64;
    p[8..24].copy_from_slice(&src.octets());
    p[24..40].copy_from_slice(&dst.octets());
    p
}

struct Pair {
    now: Instant,
    server: IphttpsServer,
    client: IphttpsClient,
    server_events: Vec<Event>,
    client_events: Vec<Event>,
    server_tun: Vec<Vec<u8>>,
    client_tun: Vec<Vec<u8>>,
    chunk: usize,
}

impl Pair {
    fn new(chunk: usize) -> Pair {
        Pair::with_link_mtu(chunk, 1280)
    }

    /// Client and server of a link whose MTU they agreed at `link_mtu`
    /// (the client announced it, the server allowed it).
    fn with_link_mtu(chunk: usize, link_mtu: usize) -> Pair {
        let now = Instant::now();
        let cfg = RouterConfig {
            router_addr: Some("fd00:1::1".parse().unwrap()),
            dns: vec!["fd00:1::53".parse().unwrap()],
            link_mtu,
            ..RouterConfig::default()
        };
        let router = ClientRouter::new(prefix(), cfg).unwrap();
        let ll = iphttps::addr::link_local(InterfaceId::new([2, 0, 0, 0, 0, 0, 0, 7]).unwrap());
        let mut client = IphttpsClient::new(ll, link_mtu);
        client.solicit_router();
        Pair {
            now,
            server: IphttpsServer::new(router, now),
            client,
            server_events: Vec::new(),
            client_events: Vec::new(),
            server_tun: Vec::new(),
            client_tun: Vec::new(),
            chunk,
        }
    }

    fn settle(&mut self) {
        for _ in 0..1000 {
            let mut busy = false;
            let mut buf = Vec::new();
            if self.client.poll_transmit(&mut buf) {
                busy = true;
                let n = if self.chunk == 0 {
                    buf.len()
                } else {
                    self.chunk
                };
                for c in buf.chunks(n) {
                    self.server.handle_stream_bytes(self.now, c);
                }
            }
            let mut buf = Vec::new();
            if self.server.poll_transmit(&mut buf) {
                busy = true;
                // The client reads straight into its decoder's buffer.
                let mut rest = &buf[..];
                while !rest.is_empty() && !self.client.is_closed() {
                    let dst = self.client.read_buf().expect("IP-HTTPS reads in place");
                    let n = dst.len().min(rest.len());
                    dst[..n].copy_from_slice(&rest[..n]);
                    self.client.handle_read(self.now, n);
                    rest = &rest[n..];
                }
            }
            while let Some(e) = self.server.poll_event() {
                busy = true;
                self.server_events.push(e);
            }
            while let Some(e) = self.client.poll_event() {
                busy = true;
                self.client_events.push(e);
            }
            while let Some(p) = self.server.poll_tun() {
                busy = true;
                self.server_tun.push(p.to_vec());
            }
            while let Some(p) = self.client.poll_tun() {
                busy = true;
                self.client_tun.push(p.to_vec());
            }
            if !busy {
                return;
            }
        }
        panic!("never settles");
    }

    fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        loop {
            self.settle();
            match self.server.poll_timeout() {
                Some(t) if t <= until => {
                    self.now = self.now.max(t);
                    self.server.handle_timeout(self.now);
                }
                _ => break,
            }
        }
        self.now = until;
        self.settle();
    }

    fn adverts(&self) -> Vec<&iphttps::nd::ReceivedAdvert> {
        self.client_events
            .iter()
            .filter_map(|e| match e {
                Event::RouterAdvert(ra) => Some(ra),
                _ => None,
            })
            .collect()
    }

    fn client_addr(&self) -> Ipv6Addr {
        prefix().address(InterfaceId::new([2, 0, 0, 0, 0, 0, 0, 9]).unwrap())
    }
}

#[test]
fn first_ra_solicited_ra_and_packets_both_ways() {
    let mut p = Pair::new(0);
    p.settle();
    let ras = p.adverts();
    assert!(!ras.is_empty(), "the link-up RA (and the solicited one)");
    assert_eq!(ras[0].advert.prefixes.len(), 1);
    assert!(ras[0].advert.router_lifetime > 0);
    assert!(p.server_tun.is_empty(), "the RS is not forwarded");

    let me = p.client_addr();
    let up = v6(me, "2001:db8::1".parse().unwrap(), 1000);
    let down = v6("2001:db8::1".parse().unwrap(), me, 1200);
    p.client.handle_tun_packet(p.now, &up);
    p.server.handle_tun_packet(p.now, &down);
    p.settle();
    assert_eq!(p.server_tun, vec![up]);
    assert_eq!(p.client_tun, vec![down]);
    assert_eq!(p.server.counters().rx_packets, 1);
    assert_eq!(p.server.counters().tx_packets, 1);
}

#[test]
fn byte_at_a_time_changes_nothing() {
    let mut p = Pair::new(1);
    p.settle();
    let me = p.client_addr();
    let pkts: Vec<Vec<u8>> = (0..5)
        .map(|i| v6(me, "2001:db8::1".parse().unwrap(), 100 + i))
        .collect();
    p.client
        .handle_tun_packets(p.now, pkts.iter().map(|p| &p[..]));
    p.settle();
    assert_eq!(p.server_tun, pkts);
}

#[test]
fn spoofed_sources_dropped_and_reported() {
    let mut p = Pair::new(0);
    p.settle();
    for _ in 0..4 {
        let bad = v6(
            "fd00:1:0:6::9".parse().unwrap(),
            "2001:db8::1".parse().unwrap(),
            10,
        );
        p.client.handle_tun_packet(p.now, &bad);
    }
    p.settle();
    assert!(p.server_tun.is_empty());
    assert_eq!(p.server.counters().spoofed, 4);
    let reports: Vec<u64> = p
        .server_events
        .iter()
        .filter_map(|e| match e {
            Event::Spoofed { dropped, .. } => Some(*dropped),
            _ => None,
        })
        .collect();
    assert_eq!(reports, [1, 2, 4]);
}

#[test]
fn periodic_ras_over_an_hour() {
    let mut p = Pair::new(0);
    p.settle();
    let before = p.adverts().len();
    p.run_for(Duration::from_secs(3600));
    assert!(p.adverts().len() > before + 3, "{}", p.adverts().len());
    assert!(!p.server.is_closed() && !p.client.is_closed());
}

#[test]
fn oversize_towards_the_client_gives_packet_too_big_to_the_tun() {
    let mut p = Pair::new(0);
    p.settle();
    let big = v6("2001:db8::1".parse().unwrap(), p.client_addr(), 1400);
    p.server.handle_tun_packet(p.now, &big);
    p.settle();
    assert!(p.client_tun.is_empty());
    assert_eq!(p.server_tun.len(), 1, "a Packet Too Big back to the TUN");
    assert_eq!(
        iphttps::icmpv6::message_type(&p.server_tun[0]),
        Some(iphttps::icmpv6::Icmpv6Type::PacketTooBig)
    );
    assert_eq!(&p.server_tun[0][44..48], &1280u32.to_be_bytes());
    assert_eq!(p.adverts()[0].advert.mtu, Some(1280));
}

#[test]
fn a_larger_link_mtu_carries_larger_packets_both_ways() {
    let mut p = Pair::with_link_mtu(7, 4000);
    p.settle();
    assert_eq!(p.adverts()[0].advert.mtu, Some(4000));
    let me = p.client_addr();
    let far: Ipv6Addr = "2001:db8::1".parse().unwrap();
    let up = v6(me, far, 4000 - 40);
    let down = v6(far, me, 4000 - 40);
    p.client.handle_tun_packet(p.now, &up);
    p.server.handle_tun_packet(p.now, &down);
    p.settle();
    assert_eq!(p.server_tun, vec![up]);
    assert_eq!(p.client_tun, vec![down]);
    // One byte over the session's link MTU: Packet Too Big with 4000.
    p.server_tun.clear();
    p.server.handle_tun_packet(p.now, &v6(far, me, 4001 - 40));
    p.settle();
    assert_eq!(p.client_tun.len(), 1, "nothing more reached the client");
    assert_eq!(
        iphttps::icmpv6::message_type(&p.server_tun[0]),
        Some(iphttps::icmpv6::Icmpv6Type::PacketTooBig)
    );
    assert_eq!(&p.server_tun[0][44..48], &4000u32.to_be_bytes());
}

#[test]
fn close_sends_a_final_ra_with_lifetime_zero() {
    let mut p = Pair::new(0);
    p.settle();
    p.server.close(p.now, "server shutting down");
    assert!(p.server.is_closed());
    p.settle();
    let last = p.adverts().last().copied().unwrap().clone();
    assert_eq!(last.advert.router_lifetime, 0);
    assert!(matches!(
        p.server_events.last(),
        Some(Event::Closed(Ending::Local(r))) if r == "server shutting down"
    ));
    // Nothing more leaves a closed session.
    let me = p.client_addr();
    p.server
        .handle_tun_packet(p.now, &v6("2001:db8::1".parse().unwrap(), me, 10));
    let mut buf = Vec::new();
    assert!(!p.server.poll_transmit(&mut buf));
}

#[test]
fn non_ipv6_input_ends_the_session() {
    let mut p = Pair::new(0);
    p.settle();
    p.server
        .handle_stream_bytes(p.now, b"GET / HTTP/1.1\r\n\r\n");
    assert!(p.server.is_closed());
    p.settle();
    assert!(matches!(
        p.server_events.last(),
        Some(Event::Closed(Ending::Framing(_)))
    ));
}

#[test]
fn end_of_stream_between_packets_is_clean_inside_one_is_not() {
    let mut p = Pair::new(0);
    p.settle();
    p.server.stream_closed(p.now);
    p.settle();
    assert!(matches!(
        p.server_events.last(),
        Some(Event::Closed(Ending::PeerClosed))
    ));

    let mut p = Pair::new(0);
    p.settle();
    let me = p.client_addr();
    let pkt = v6(me, "2001:db8::1".parse().unwrap(), 100);
    p.server.handle_stream_bytes(p.now, &pkt[..50]);
    p.server.stream_closed(p.now);
    p.settle();
    assert!(matches!(
        p.server_events.last(),
        Some(Event::Closed(Ending::StreamLost))
    ));
}
