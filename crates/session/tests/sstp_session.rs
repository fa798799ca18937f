//! Whole SSTP sessions, server and client, in virtual time: setup with each
//! authentication method, packets both ways, anti-spoofing, IPv6 RA,
//! keepalive timers over a long idle period, and every way a session ends.

mod sim;

use std::time::Duration;

use session::sstp::Event;
use session::Session;
use sim::{v4, v6, with_df, Opts, Pair, CLIENT_V4, SERVER_V4};

#[test]
fn setup_then_packets_both_ways_over_ipv4_and_ipv6() {
    let mut p = Pair::new(Opts::default());
    p.connect();
    // Client: the addresses the server assigned, and the server's RA.
    assert!(p.client_events.iter().any(|e| matches!(e,
        Event::Ipv4Up { local, peer, dns } if *local == CLIENT_V4 && *peer == SERVER_V4 && dns.len() == 1)));
    let ra = p
        .client_events
        .iter()
        .find_map(|e| match e {
            Event::RouterAdvert(ra) => Some(ra),
            _ => None,
        })
        .expect("the client got a Router Advertisement");
    assert_eq!(ra.advert.prefixes.len(), 1);
    assert_eq!(ra.advert.mtu, Some(1500), "the MTU both ends can take");
    let client_v6 = p.client_v6();
    assert!(p.server_events.iter().any(|e| matches!(e,
        Event::Ipv6Up { address: Some(a), .. } if *a == client_v6)));

    // Client -> server.
    let now = p.now;
    let up = v4(CLIENT_V4, "192.0.2.7".parse().unwrap(), 1400, 0xab);
    let up6 = v6(client_v6, "2001:db8::1".parse().unwrap(), 500);
    p.client.handle_tun_packets(now, [&up[..], &up6[..]]);
    // Server -> client.
    let down = v4("192.0.2.7".parse().unwrap(), CLIENT_V4, 900, 0xcd);
    p.server.handle_tun_packet(now, &down);
    p.settle();
    assert_eq!(p.server_tun, vec![up.clone(), up6]);
    assert_eq!(p.client_tun, vec![down]);
    assert_eq!(p.server.counters().rx_packets, 2);
    assert_eq!(p.server.counters().tx_packets, 1);
    assert_eq!(p.client.counters().tx_packets, 2);
    assert_eq!(p.server.counters().spoofed, 0);
}

#[test]
fn byte_at_a_time_delivery_changes_nothing() {
    let mut p = Pair::new(Opts {
        chunk: 1,
        ..Opts::default()
    });
    p.connect();
    let up = v4(CLIENT_V4, SERVER_V4, 300, 1);
    p.client.handle_tun_packet(p.now, &up);
    p.settle();
    assert_eq!(p.server_tun, vec![up]);
}

#[test]
fn every_authentication_method_connects() {
    for m in [
        ppp::AuthProtocol::MsChapV2,
        ppp::AuthProtocol::Eap,
        ppp::AuthProtocol::ChapMd5,
        ppp::AuthProtocol::Pap,
    ] {
        let mut p = Pair::new(Opts {
            server_auth: vec![m],
            ..Opts::default()
        });
        p.connect();
        let method = p.server_events.iter().find_map(|e| match e {
            Event::Authenticated { method, username } => {
                assert_eq!(username, "alice");
                Some(*method)
            }
            _ => None,
        });
        assert!(method.is_some(), "{m:?}: authenticated");
    }
}

#[test]
fn wrong_password_ends_both_sides_with_auth_failure() {
    let mut p = Pair::new(Opts {
        password: "wrong",
        ..Opts::default()
    });
    p.run_for(Duration::from_secs(30));
    assert!(p
        .client_events
        .iter()
        .any(|e| matches!(e, Event::AuthFailed { .. })));
    assert!(p
        .server_events
        .iter()
        .any(|e| matches!(e, Event::AuthFailed { username: Some(u), .. } if u == "alice")));
    assert!(p.client.is_closed() && p.server.is_closed());
    assert_eq!(
        Pair::ending(&p.server_events).unwrap().ppp,
        Some(ppp::LinkDownReason::AuthFailed)
    );
    assert!(!p
        .server_events
        .iter()
        .any(|e| matches!(e, Event::Ipv4Up { .. })));
    assert!(p.server_tun.is_empty(), "no data before auth");
}

#[test]
fn spoofed_sources_are_dropped_and_reported_link_local_is_not_spoofing() {
    let mut p = Pair::new(Opts::default());
    p.connect();
    let now = p.now;
    for _ in 0..3 {
        let bad = v4("10.44.0.99".parse().unwrap(), SERVER_V4, 60, 0);
        p.client.handle_tun_packet(now, &bad);
    }
    // The client's own link-local traffic (MLD, DAD, ...) on the
    // point-to-point link: handled there, never forwarded, never spoofing.
    let ll = v6(
        "fe80::1234".parse().unwrap(),
        "ff02::16".parse().unwrap(),
        8,
    );
    let dad = v6(
        std::net::Ipv6Addr::UNSPECIFIED,
        "ff02::1:ff00:1".parse().unwrap(),
        8,
    );
    p.client.handle_tun_packets(now, [&ll[..], &dad[..]]);
    p.settle();
    assert!(p.server_tun.is_empty());
    assert_eq!(p.server.counters().spoofed, 3);
    assert!(p.server.counters().link_local >= 2);
    let reports: Vec<u64> = p
        .server_events
        .iter()
        .filter_map(|e| match e {
            Event::Spoofed { dropped, .. } => Some(*dropped),
            _ => None,
        })
        .collect();
    assert_eq!(reports, [1, 2], "reported at powers of two");
}

#[test]
fn router_solicitation_gets_an_advertisement() {
    let mut p = Pair::new(Opts::default());
    p.connect();
    let before = p
        .client_events
        .iter()
        .filter(|e| matches!(e, Event::RouterAdvert(_)))
        .count();
    let iid = p
        .client_events
        .iter()
        .find_map(|e| match e {
            Event::Ipv6Up { local_iid, .. } => Some(*local_iid),
            _ => None,
        })
        .unwrap();
    let rs = ipv6nd::RouterSolicit::build(session::ip::link_local(iid));
    p.client.handle_tun_packet(p.now, &rs);
    p.settle();
    let after = p
        .client_events
        .iter()
        .filter(|e| matches!(e, Event::RouterAdvert(_)))
        .count();
    assert_eq!(after, before + 1);
    assert!(p.server_tun.is_empty(), "the RS is not forwarded");
}

#[test]
fn idle_for_an_hour_stays_up_on_keepalives() {
    let mut p = Pair::new(Opts::default());
    p.connect();
    let (s0, c0) = (p.to_server_bytes, p.to_client_bytes);
    p.run_for(Duration::from_secs(3600));
    assert!(!p.server.is_closed() && !p.client.is_closed());
    assert!(Pair::ending(&p.client_events).is_none());
    // Keepalives (SSTP Hello / LCP Echo) went both ways.
    assert!(p.to_server_bytes > s0 && p.to_client_bytes > c0);
    let up = v4(CLIENT_V4, SERVER_V4, 100, 5);
    p.client.handle_tun_packet(p.now, &up);
    p.settle();
    assert_eq!(p.server_tun, vec![up]);
}

#[test]
fn a_cut_link_ends_both_sides_by_timer() {
    let mut p = Pair::new(Opts::default());
    p.connect();
    p.link_up = false;
    p.run_for(Duration::from_secs(300));
    assert!(p.server.is_closed() && p.client.is_closed());
    for end in [
        Pair::ending(&p.server_events).unwrap(),
        Pair::ending(&p.client_events).unwrap(),
    ] {
        let timer = matches!(end.sstp, sstp::CloseReason::HelloTimeout)
            || end.ppp == Some(ppp::LinkDownReason::EchoTimeout);
        assert!(timer, "{end:?}");
    }
}

#[test]
fn server_close_is_a_clean_disconnect_the_client_sees() {
    let mut p = Pair::new(Opts::default());
    p.connect();
    p.server.close(p.now, "server shutting down");
    p.run_for(Duration::from_secs(10));
    assert!(p.server.is_closed() && p.client.is_closed());
    let c = Pair::ending(&p.client_events).unwrap();
    assert_eq!(c.ppp, Some(ppp::LinkDownReason::PeerTerminated));
    let s = Pair::ending(&p.server_events).unwrap();
    assert_eq!(
        s.sstp,
        sstp::CloseReason::Disconnected { by_peer: false },
        "{s:?}"
    );
    // Exactly one Closed each, last.
    for ev in [&p.server_events, &p.client_events] {
        assert_eq!(
            ev.iter().filter(|e| matches!(e, Event::Closed(_))).count(),
            1
        );
        assert!(matches!(ev.last(), Some(Event::Closed(_))));
    }
}

#[test]
fn client_close_and_stream_loss() {
    let mut p = Pair::new(Opts::default());
    p.connect();
    p.client.close(p.now, "user request");
    p.run_for(Duration::from_secs(10));
    assert!(p.server.is_closed() && p.client.is_closed());
    assert_eq!(
        Pair::ending(&p.server_events).unwrap().ppp,
        Some(ppp::LinkDownReason::PeerTerminated)
    );

    let mut p = Pair::new(Opts::default());
    p.connect();
    p.server.stream_closed(p.now);
    assert!(p.server.is_closed());
    p.settle();
    assert_eq!(
        Pair::ending(&p.server_events).unwrap().sstp,
        sstp::CloseReason::LowerLayerClosed
    );
    // Nothing goes to the TUN after the end.
    let up = v4(CLIENT_V4, SERVER_V4, 100, 5);
    p.server.handle_stream_bytes(p.now, &up);
    assert!(p.server.poll_tun().is_none());
}

#[test]
fn data_before_the_call_is_connected_goes_nowhere() {
    let mut p = Pair::new(Opts::default());
    let up = v4(CLIENT_V4, SERVER_V4, 100, 5);
    p.client.handle_tun_packet(p.now, &up);
    p.server.handle_tun_packet(p.now, &up);
    assert_eq!(p.client.counters().tx_dropped, 1);
    assert_eq!(p.server.counters().tx_dropped, 1);
    p.connect();
    assert!(p.server_tun.is_empty() && p.client_tun.is_empty());
}

/// The MTU option of the Router Advertisement the client got.
fn ra_mtu(p: &Pair) -> Option<u32> {
    p.client_events.iter().find_map(|e| match e {
        Event::RouterAdvert(ra) => ra.advert.mtu,
        _ => None,
    })
}

#[test]
fn oversize_packets_with_df_are_dropped_not_sent() {
    let mut p = Pair::new(Opts::default());
    p.connect();
    let mru = usize::from(p.client.peer_mru());
    let big = with_df(v4(CLIENT_V4, SERVER_V4, mru + 1, 1), true);
    p.client.handle_tun_packet(p.now, &big);
    p.settle();
    assert!(p.server_tun.is_empty());
    assert_eq!(p.client.counters().tx_dropped, 1);
}

/// A server device whose MTU is larger than a peer's MRU (a server set up
/// for peers that ask for large packets) answers a larger IPv4 packet with
/// DF with ICMP "fragmentation needed" naming the peer's MRU, and sends
/// one without DF in fragments that fit it (RFC 791 §3.2).
#[test]
fn packets_over_the_peers_mru_get_frag_needed_with_df_and_fragmented_without() {
    let mut p = Pair::new(Opts {
        server_mru: 4000,
        ..Opts::default()
    });
    p.connect();
    let mru = p.server.peer_mru();
    assert_eq!(mru, 1500, "the client asked for nothing: the default");
    let far: std::net::Ipv4Addr = "192.0.2.7".parse().unwrap();
    let df = with_df(v4(far, CLIENT_V4, usize::from(mru) + 1, 3), true);
    let plain = with_df(v4(far, CLIENT_V4, 3000, 4), false);
    p.server.handle_tun_packets(p.now, [&df[..], &plain[..]]);
    p.settle();
    assert_eq!(p.server.counters().tx_dropped, 1, "the DF packet");
    assert_eq!(p.server.counters().tx_packets, 1);
    assert_eq!(p.server_tun.len(), 1, "one ICMP error, for the DF packet");
    let icmp = &p.server_tun[0];
    assert_eq!((icmp[9], icmp[20], icmp[21]), (1, 3, 4), "ICMP frag needed");
    assert_eq!(u16::from_be_bytes([icmp[26], icmp[27]]), mru);
    assert_eq!(icmp[16..20], far.octets(), "back to the sender");
    // The plain one arrives in three fragments of at most the MRU.
    let frags = &p.client_tun;
    assert_eq!(frags.len(), 3);
    assert!(frags.iter().all(|f| f.len() <= usize::from(mru)));
    let data: Vec<u8> = frags.iter().flat_map(|f| f[20..].to_vec()).collect();
    assert_eq!(data, plain[20..], "the data, in order");
    let fields: Vec<u16> = frags
        .iter()
        .map(|f| u16::from_be_bytes([f[6], f[7]]))
        .collect();
    assert_eq!(fields, vec![0x2000, 0x2000 | 185, 370], "offsets and MF");
}

/// A sender that keeps sending packets too large for the client gets at
/// most `ErrorLimit::PER_SECOND` ICMP errors a second back (RFC 1812
/// §4.3.2.8, RFC 4443 §2.4(f)); every such packet is still dropped and
/// counted.
#[test]
fn icmp_errors_about_oversize_packets_are_rate_limited() {
    let mut p = Pair::new(Opts {
        server_mru: 4000,
        ..Opts::default()
    });
    p.connect();
    let far: std::net::Ipv4Addr = "192.0.2.7".parse().unwrap();
    let df = with_df(
        v4(far, CLIENT_V4, usize::from(p.server.peer_mru()) + 1, 3),
        true,
    );
    let limit = session::rate::ErrorLimit::PER_SECOND as usize;
    p.server
        .handle_tun_packets(p.now, std::iter::repeat_n(&df[..], 50));
    p.settle();
    assert_eq!(p.server.counters().tx_dropped, 50);
    assert_eq!(p.server_tun.len(), limit, "one error each, up to the limit");
    p.now += std::time::Duration::from_secs(1);
    p.server.handle_tun_packets(p.now, [&df[..]]);
    p.settle();
    assert_eq!(p.server_tun.len(), limit + 1, "the next second");
}

/// IPv6 packets are never fragmented by a router: one larger than the
/// peer's MRU gets ICMPv6 Packet Too Big (RFC 4443 §3.2) naming it, from
/// the server's own address.
#[test]
fn ipv6_packets_over_the_peers_mru_get_packet_too_big() {
    let mut p = Pair::new(Opts {
        server_mru: 4000,
        ..Opts::default()
    });
    p.connect();
    let client_v6 = p.client_v6();
    let far: std::net::Ipv6Addr = "2001:db8::7".parse().unwrap();
    let big = v6(far, client_v6, 3000 - 40);
    p.server.handle_tun_packet(p.now, &big);
    p.settle();
    assert!(p.client_tun.is_empty());
    assert_eq!(p.server.counters().tx_dropped, 1);
    assert_eq!(p.server_tun.len(), 1);
    let ptb = &p.server_tun[0];
    let router: std::net::Ipv6Addr = sim::SERVER_V6_ROUTER.parse().unwrap();
    assert_eq!(ptb[8..24], router.octets(), "from the server's address");
    assert_eq!(ptb[24..40], far.octets(), "to the sender");
    assert_eq!(ptb.len(), 1280, "as much of the packet as fits 1280 bytes");
    let m = ipv6nd::icmpv6::icmpv6_of(&ipv6nd::ipv6::Ipv6Packet::new_checked(&ptb[..]).unwrap())
        .expect("a valid ICMPv6 message (checksum)");
    assert_eq!(m.msg_type(), ipv6nd::icmpv6::Icmpv6Type::PacketTooBig);
    assert_eq!(ptb[44..48], 1500u32.to_be_bytes(), "the peer's MRU");
    assert_eq!(ptb[48..], big[..1280 - 48], "the quoted packet");
    assert_eq!(ra_mtu(&p), Some(1500), "the RA names the client's MRU");
}

/// Both ends asking for a 4000-byte MRU in LCP (`--mru 4000` and a
/// server `tun.mtu = 4000`) carry 4000-byte packets both ways in one
/// frame each; one byte more (with DF) is not sent.
#[test]
fn a_larger_mru_asked_by_both_ends_carries_larger_packets() {
    let mut p = Pair::new(Opts {
        server_mru: 4000,
        client_mru: 4000,
        ..Opts::default()
    });
    p.connect();
    assert_eq!((p.server.peer_mru(), p.client.peer_mru()), (4000, 4000));
    assert_eq!(ra_mtu(&p), Some(4000));
    let far: std::net::Ipv4Addr = "192.0.2.7".parse().unwrap();
    let up = v4(CLIENT_V4, far, 4000, 1);
    let down = v4(far, CLIENT_V4, 4000, 2);
    p.client.handle_tun_packet(p.now, &up);
    p.server.handle_tun_packet(p.now, &down);
    let over = with_df(v4(far, CLIENT_V4, 4001, 2), true);
    p.server.handle_tun_packet(p.now, &over);
    p.settle();
    assert_eq!(p.server_tun.len(), 2, "an ICMP error and the packet");
    assert_eq!(p.server_tun[1], up);
    assert_eq!(p.server_tun[0][20..22], [3, 4], "frag needed");
    assert_eq!(p.client_tun, vec![down]);
    assert_eq!(p.server.counters().tx_dropped, 1);
}

#[test]
fn without_ipv6_parameters_the_server_routes_no_ipv6() {
    let mut p = Pair::new(Opts {
        ipv6: false,
        ..Opts::default()
    });
    p.connect();
    assert!(!p
        .client_events
        .iter()
        .any(|e| matches!(e, Event::RouterAdvert(_))));
}
