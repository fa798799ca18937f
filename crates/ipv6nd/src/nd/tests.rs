use super::*;
use crate::addr::InterfaceId;

fn a(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// RA from fe80::1 to ff02::1: hop limit 64, lifetime 1800, MTU 1280,
/// prefix 2001:db8:1:2::/64 (L, A, 86400/14400), RDNSS 2001:db8::53 (1800 s).
///
/// Built field by field in Python with `struct.pack` from the layouts of RFC
/// 4861 §4.2, §4.6.2, §4.6.4 and RFC 8106 §5.1; checksum there as the one's
/// complement of the folded sum of the 16-bit words of pseudo-header
/// (src, dst, length 80, next header 58) and message: sum 0x1e73, checksum
/// 0xe18c. Cross-checked by dissecting a pcap of these bytes with tshark:
/// "Checksum: 0xe18c [correct]", options decoded as listed.
const RA_VECTOR: [u8; 120] = [
    0x60, 0x00, 0x00, 0x00, 0x00, 0x50, 0x3a, 0xff, 0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x86, 0x00, 0xe1, 0x8c, 0x40, 0x00, 0x07, 0x08,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x01, 0x00, 0x00, 0x00, 0x00, 0x05, 0x00,
    0x03, 0x04, 0x40, 0xc0, 0x00, 0x01, 0x51, 0x80, 0x00, 0x00, 0x38, 0x40, 0x00, 0x00, 0x00, 0x00,
    0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x19, 0x03, 0x00, 0x00, 0x00, 0x00, 0x07, 0x08, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x53,
];

fn client_ra() -> RouterAdvert {
    RouterAdvert::for_client(Prefix64::of(a("2001:db8:1:2::")), &[a("2001:db8::53")])
}

/// Rewrites the ICMPv6 checksum of a packet after a test edited it.
fn refill(p: &mut [u8]) {
    let ip = Ipv6Packet::new_checked(&p[..]).unwrap();
    let (s, d) = (ip.src_addr(), ip.dst_addr());
    checksum::fill_icmpv6(&s, &d, &mut p[HEADER_LEN..]);
}

#[test]
fn ra_emits_the_hand_checked_vector_into_a5_buffer() {
    let ra = client_ra();
    assert_eq!(ra.buffer_len().unwrap(), 120);
    let mut out = [0xa5u8; 130];
    let n = ra.emit(a("fe80::1"), ALL_NODES, &mut out).unwrap();
    assert_eq!(n, 120);
    assert_eq!(&out[..n], &RA_VECTOR[..]);
    assert!(out[n..].iter().all(|&b| b == 0xa5), "wrote past the packet");
    assert_eq!(ra.to_packet(a("fe80::1"), ALL_NODES).unwrap(), RA_VECTOR);
}

#[test]
fn ra_vector_parses_to_what_a_client_needs() {
    let r = RouterAdvert::parse(&RA_VECTOR).unwrap();
    assert_eq!(r.router, a("fe80::1"));
    assert_eq!(r.destination, ALL_NODES);
    assert_eq!(r.ignored_options, 0);
    assert_eq!(r.advert, client_ra());
    assert_eq!(r.advert.router_lifetime, 1800);
    assert_eq!(r.advert.link_mtu(), 1280);
    assert_eq!(r.advert.dns_servers(), vec![a("2001:db8::53")]);
    let iid = InterfaceId::new([0, 0, 0, 0, 0, 0, 0x12, 0x34]).unwrap();
    assert_eq!(r.advert.slaac_addresses(iid), vec![a("2001:db8:1:2::1234")]);
}

#[test]
fn ra_round_trips_with_routes_lladdr_and_several_servers() {
    let mut ra = client_ra();
    ra.managed = true;
    ra.other_config = true;
    ra.preference = RoutePreference::High;
    ra.reachable_time = 30_000;
    ra.retrans_timer = 1_000;
    ra.source_lladdr = Some(vec![1, 2, 3, 4, 5, 6]);
    ra.routes = vec![
        RouteInfo {
            prefix: a("::"),
            prefix_len: 0,
            preference: RoutePreference::Low,
            lifetime: 10,
        },
        RouteInfo {
            prefix: a("2001:db8:ff00::"),
            prefix_len: 40,
            preference: RoutePreference::Medium,
            lifetime: u32::MAX,
        },
        RouteInfo {
            prefix: a("2001:db8::8000:0"),
            prefix_len: 97,
            preference: RoutePreference::High,
            lifetime: 0,
        },
    ];
    ra.rdnss.push(Rdnss {
        lifetime: 0,
        servers: vec![a("2001:db8::54"), a("2001:db8::55")],
    });
    let p = ra.to_packet(a("fe80::1"), a("2001:db8:1:2::9")).unwrap();
    let back = RouterAdvert::parse(&p).unwrap();
    assert_eq!(back.advert, ra);
    assert_eq!(back.destination, a("2001:db8:1:2::9"));
    // Lifetime-0 RDNSS servers are not offered for use.
    assert_eq!(back.advert.dns_servers(), vec![a("2001:db8::53")]);
}

#[test]
fn ra_emit_masks_host_bits_and_checks_limits() {
    let mut ra = client_ra();
    ra.prefixes[0].prefix = a("2001:db8:1:2::77");
    ra.routes.push(RouteInfo {
        prefix: a("2001:db8:aaaa:bbbb::1"),
        prefix_len: 32,
        preference: RoutePreference::Medium,
        lifetime: 1,
    });
    let p = ra.to_packet(a("fe80::1"), ALL_NODES).unwrap();
    let back = RouterAdvert::parse(&p).unwrap().advert;
    assert_eq!(back.prefixes[0].prefix, a("2001:db8:1:2::"));
    assert_eq!(back.routes[0].prefix, a("2001:db8::"));

    assert_eq!(
        client_ra().to_packet(a("2001:db8::1"), ALL_NODES),
        Err(NdError::SourceNotLinkLocal(a("2001:db8::1")))
    );
    let mut empty = client_ra();
    empty.rdnss[0].servers.clear();
    assert_eq!(empty.buffer_len(), Err(NdError::EmptyRdnss));
    let mut big = client_ra();
    // 40 + 16 + 8 (MTU) + 32 (prefix) + 8 + 16 n: 73 servers fit, 74 do not.
    big.rdnss[0].servers = vec![a("2001:db8::53"); 74];
    assert_eq!(big.buffer_len(), Err(NdError::TooLarge { len: 1288 }));
    big.rdnss[0].servers.truncate(73);
    assert_eq!(big.buffer_len(), Ok(1272));
    assert!(RouterAdvert::parse(&big.to_packet(a("fe80::1"), ALL_NODES).unwrap()).is_ok());
    let mut small = [0u8; 100];
    assert_eq!(
        client_ra().emit(a("fe80::1"), ALL_NODES, &mut small),
        Err(NdError::BufferTooSmall {
            have: 100,
            need: 120
        })
    );
    let mut ll = client_ra();
    ll.source_lladdr = Some(vec![0; 15]);
    assert!(matches!(
        ll.buffer_len(),
        Err(NdError::BadOption { kind: 1, .. })
    ));
}

#[test]
fn ra_validity_checks_of_rfc4861_6_1_2() {
    let mut p = RA_VECTOR;
    p[7] = 254;
    assert_eq!(RouterAdvert::parse(&p), Err(NdError::HopLimit(254)));

    let mut p = RA_VECTOR;
    p[HEADER_LEN + 4] = 63; // cur hop limit, checksum now stale
    assert_eq!(
        RouterAdvert::parse(&p),
        Err(NdError::Icmpv6(Icmpv6Error::Checksum))
    );

    let mut p = RA_VECTOR;
    p[HEADER_LEN + 1] = 1;
    refill(&mut p);
    assert_eq!(RouterAdvert::parse(&p), Err(NdError::Code(1)));

    let mut p = RA_VECTOR;
    p[8..24].copy_from_slice(&a("2001:db8::1").octets());
    refill(&mut p);
    assert_eq!(
        RouterAdvert::parse(&p),
        Err(NdError::SourceNotLinkLocal(a("2001:db8::1")))
    );

    // Option of length zero.
    let mut p = RA_VECTOR;
    p[HEADER_LEN + 16 + 1] = 0;
    refill(&mut p);
    assert!(matches!(
        RouterAdvert::parse(&p),
        Err(NdError::BadOption { kind: 5, .. })
    ));

    // Option overrunning the message.
    let mut p = RA_VECTOR;
    p[HEADER_LEN + 80 - 24 + 1] = 4;
    refill(&mut p);
    assert!(matches!(
        RouterAdvert::parse(&p),
        Err(NdError::BadOption { kind: 25, .. })
    ));

    // A lone option type byte at the end.
    let mut p = RA_VECTOR.to_vec();
    p.push(7);
    p[5] += 1;
    refill(&mut p);
    assert!(matches!(
        RouterAdvert::parse(&p),
        Err(NdError::BadOption { kind: 7, len: 1 })
    ));

    // Wrong lengths for known options.
    let mut p = RA_VECTOR;
    p[HEADER_LEN + 16 + 8 + 2] = 129; // prefix length
    refill(&mut p);
    assert!(matches!(
        RouterAdvert::parse(&p),
        Err(NdError::BadOption { kind: 3, .. })
    ));

    // Truncated fixed part, wrong type, not ICMPv6, not IPv6.
    let rs = RouterSolicit::build(a("fe80::2"));
    assert_eq!(
        RouterAdvert::parse(&rs),
        Err(NdError::WrongType {
            expected: Icmpv6Type::RouterAdvertisement,
            got: Icmpv6Type::RouterSolicitation
        })
    );
    let mut short = rs.clone();
    short[HEADER_LEN] = 134;
    refill(&mut short);
    assert_eq!(
        RouterAdvert::parse(&short),
        Err(NdError::Truncated { len: 8, need: 16 })
    );
    let mut udp = RA_VECTOR;
    udp[6] = 17;
    assert_eq!(
        RouterAdvert::parse(&udp),
        Err(NdError::Icmpv6(Icmpv6Error::NotIcmpv6(NextHeader::Udp)))
    );
    assert_eq!(
        RouterAdvert::parse(&RA_VECTOR[..100]),
        Err(NdError::Ipv6(Ipv6Error::LengthMismatch {
            declared: 120,
            actual: 100
        }))
    );
}

#[test]
fn ra_skips_unknown_and_reserved_preference_options() {
    let mut ra = client_ra();
    ra.routes.push(RouteInfo {
        prefix: a("2001:db8:9::"),
        prefix_len: 48,
        preference: RoutePreference::Reserved,
        lifetime: 5,
    });
    let mut p = ra.to_packet(a("fe80::1"), ALL_NODES).unwrap();
    // Append an unknown option (type 200) and a DNSSL (31).
    p.extend_from_slice(&[200, 1, 0, 0, 0, 0, 0, 0, 31, 1, 0, 0, 0, 0, 0, 0]);
    let len = (p.len() - HEADER_LEN) as u16;
    p[4..6].copy_from_slice(&len.to_be_bytes());
    refill(&mut p);
    let r = RouterAdvert::parse(&p).unwrap();
    assert_eq!(r.ignored_options, 3);
    assert!(r.advert.routes.is_empty());
    assert_eq!(r.advert.prefixes, client_ra().prefixes);
    // Reserved default router preference reads as medium (RFC 4191 §2.2).
    let mut p = RA_VECTOR;
    p[HEADER_LEN + 5] = 0x10;
    refill(&mut p);
    assert_eq!(
        RouterAdvert::parse(&p).unwrap().advert.preference,
        RoutePreference::Medium
    );
}

#[test]
fn route_information_lengths_follow_rfc4191() {
    for (plen, units, ok) in [
        (0u8, 1u8, true),
        (1, 1, false),
        (64, 2, true),
        (65, 2, false),
        (128, 3, true),
        (0, 3, true),
        (129, 3, false),
        (0, 4, false),
    ] {
        let mut o = vec![24, units, plen, 0, 0, 0, 0, 1];
        o.resize(usize::from(units) * 8, 0);
        assert_eq!(
            RouteInfo::parse(&o).is_ok(),
            ok,
            "plen {plen} units {units}"
        );
    }
}

#[test]
fn prefix_slaac_rules_of_rfc4862() {
    let iid = InterfaceId::new([2, 0, 0, 0, 0, 0, 0, 1]).unwrap();
    let p = PrefixInfo::slaac64(Prefix64::of(a("2001:db8:7::")));
    assert_eq!(p.slaac(iid), Some(a("2001:db8:7:0:200::1")));
    assert_eq!(
        PrefixInfo {
            autonomous: false,
            ..p
        }
        .slaac(iid),
        None
    );
    assert_eq!(
        PrefixInfo {
            preferred_lifetime: p.valid_lifetime + 1,
            ..p
        }
        .slaac(iid),
        None
    );
    assert_eq!(
        PrefixInfo {
            valid_lifetime: 0,
            preferred_lifetime: 0,
            ..p
        }
        .slaac(iid),
        None
    );
    assert_eq!(
        PrefixInfo {
            prefix_len: 48,
            ..p
        }
        .slaac(iid),
        None
    );
    assert_eq!(
        PrefixInfo {
            prefix: a("fe80::"),
            ..p
        }
        .slaac(iid),
        None
    );
}

#[test]
fn mtu_option_below_minimum_is_ignored() {
    let mut ra = client_ra();
    ra.mtu = Some(1000);
    assert_eq!(ra.link_mtu(), 1280);
    ra.mtu = Some(1500);
    assert_eq!(ra.link_mtu(), 1500);
    ra.mtu = None;
    assert_eq!(ra.link_mtu(), 1280);
    let mut p = RA_VECTOR;
    p[HEADER_LEN + 17] = 2; // MTU option claims 16 bytes, swallowing the PI header
    refill(&mut p);
    assert!(RouterAdvert::parse(&p).is_err());
}

#[test]
fn router_solicitation_vector_and_checks() {
    // RS fe80::2 -> ff02::2, no options. Checksum 0x7d35 computed with
    // Python as for the RA vector (sum of pseudo-header with length 8 and
    // the message 8500 0000 0000 0000, folded, complemented).
    let rs = RouterSolicit::build(a("fe80::2"));
    let mut want = vec![0x60, 0, 0, 0, 0, 8, 58, 255];
    want.extend_from_slice(&a("fe80::2").octets());
    want.extend_from_slice(&a("ff02::2").octets());
    want.extend_from_slice(&[133, 0, 0x7d, 0x35, 0, 0, 0, 0]);
    assert_eq!(rs, want);
    let parsed = RouterSolicit::parse(&rs).unwrap();
    assert_eq!(parsed.source, a("fe80::2"));
    assert_eq!(parsed.destination, ALL_ROUTERS);
    assert_eq!(parsed.reply_to(), a("fe80::2"));

    let anon = RouterSolicit::parse(&RouterSolicit::build(Ipv6Addr::UNSPECIFIED)).unwrap();
    assert_eq!(anon.reply_to(), ALL_NODES);

    let mut p = rs.clone();
    p[7] = 1;
    assert_eq!(RouterSolicit::parse(&p), Err(NdError::HopLimit(1)));
    let mut p = rs.clone();
    p[HEADER_LEN + 1] = 9;
    refill(&mut p);
    assert_eq!(RouterSolicit::parse(&p), Err(NdError::Code(9)));
    let mut p = rs.clone();
    p[HEADER_LEN + 7] = 1;
    assert_eq!(
        RouterSolicit::parse(&p),
        Err(NdError::Icmpv6(Icmpv6Error::Checksum))
    );
    assert!(matches!(
        RouterSolicit::parse(&RA_VECTOR),
        Err(NdError::WrongType { .. })
    ));

    // With a source link-layer address option: fine from fe80::2,
    // forbidden from the unspecified address.
    let with_ll = |src: Ipv6Addr| {
        let mut p = RouterSolicit::build(src);
        p.extend_from_slice(&[1, 1, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]);
        p[5] = 16;
        refill(&mut p);
        p
    };
    assert_eq!(
        RouterSolicit::parse(&with_ll(a("fe80::2")))
            .unwrap()
            .source_lladdr,
        Some(vec![0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff])
    );
    assert_eq!(
        RouterSolicit::parse(&with_ll(Ipv6Addr::UNSPECIFIED)),
        Err(NdError::UnspecifiedWithLinkLayer)
    );
}

fn ns(src: Ipv6Addr, dst: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let mut v = vec![0u8; HEADER_LEN + 24];
    emit_nd(
        &mut v,
        src,
        dst,
        Icmpv6Type::NeighborSolicitation,
        24,
        |c| {
            c.zeros(4);
            c.put(&target.octets());
        },
    )
    .unwrap();
    v
}

#[test]
fn neighbor_solicitation_answers() {
    let router = a("fe80::1");
    let client = a("fe80::abcd");
    // Unicast NUD probe for the router: solicited NA back to the client.
    let probe = NeighborSolicit::parse(&ns(client, router, router)).unwrap();
    assert!(!probe.is_dad());
    let na = probe.answer(&[router]).unwrap();
    let ip = Ipv6Packet::new_checked(&na[..]).unwrap();
    assert_eq!(
        (ip.src_addr(), ip.dst_addr(), ip.hop_limit()),
        (router, client, 255)
    );
    let m = crate::icmpv6::icmpv6_of(&ip).unwrap();
    assert_eq!(m.msg_type(), Icmpv6Type::NeighborAdvertisement);
    assert_eq!(m.body()[0], 0xe0, "R, S and O set");
    assert_eq!(&m.body()[4..20], &router.octets());
    assert_eq!(na.len(), 64);
    // Not ours: no answer.
    let other =
        NeighborSolicit::parse(&ns(client, solicited_node(a("fe80::9")), a("fe80::9"))).unwrap();
    assert_eq!(other.answer(&[router]), None);
    // DAD for the router's address: NA to all-nodes with S clear.
    let dad =
        NeighborSolicit::parse(&ns(Ipv6Addr::UNSPECIFIED, solicited_node(router), router)).unwrap();
    assert!(dad.is_dad());
    let na = dad.answer(&[router]).unwrap();
    let ip = Ipv6Packet::new_checked(&na[..]).unwrap();
    assert_eq!(ip.dst_addr(), ALL_NODES);
    assert_eq!(ip.payload()[4], 0xa0, "R and O set, S clear");
}

#[test]
fn neighbor_solicitation_checks_of_rfc4861_7_1_1() {
    assert_eq!(
        NeighborSolicit::parse(&ns(a("fe80::2"), ALL_NODES, ALL_NODES)),
        Err(NdError::MulticastTarget(ALL_NODES))
    );
    assert_eq!(
        NeighborSolicit::parse(&ns(Ipv6Addr::UNSPECIFIED, ALL_NODES, a("fe80::5"))),
        Err(NdError::DadDestination(ALL_NODES))
    );
    let mut p = ns(a("fe80::2"), a("fe80::1"), a("fe80::1"));
    p[7] = 64;
    assert_eq!(NeighborSolicit::parse(&p), Err(NdError::HopLimit(64)));
    let rs = RouterSolicit::build(a("fe80::2"));
    let mut short = rs.clone();
    short[HEADER_LEN] = 135;
    refill(&mut short);
    assert_eq!(
        NeighborSolicit::parse(&short),
        Err(NdError::Truncated { len: 8, need: 24 })
    );
}

#[test]
fn option_types_are_open() {
    for v in 0..=255u8 {
        assert_eq!(u8::from(NdOptionType::from(v)), v);
    }
    for b in 0..4u8 {
        assert_eq!(RoutePreference::from_bits(b).bits(), b);
    }
}

#[test]
fn fixed_size_builders_write_every_byte() {
    // The builders below write into a zeroed vector; emitting the same
    // messages into 0xa5-filled buffers must give the same bytes.
    let mut rs = [0xa5u8; 48];
    emit_nd(
        &mut rs,
        a("fe80::2"),
        ALL_ROUTERS,
        Icmpv6Type::RouterSolicitation,
        8,
        |c| c.zeros(4),
    )
    .unwrap();
    assert_eq!(rs.to_vec(), RouterSolicit::build(a("fe80::2")));

    let na = NeighborAdvert {
        target: a("fe80::1"),
        router: true,
        solicited: true,
        override_flag: false,
    };
    let built = na.build(a("fe80::1"), a("fe80::2"));
    let mut out = [0xa5u8; 64];
    emit_nd(
        &mut out,
        a("fe80::1"),
        a("fe80::2"),
        Icmpv6Type::NeighborAdvertisement,
        24,
        |c| {
            c.u8(0xc0);
            c.zeros(3);
            c.put(&a("fe80::1").octets());
        },
    )
    .unwrap();
    assert_eq!(out.to_vec(), built);
    assert_eq!(built[HEADER_LEN + 4], 0xc0, "R and S set, O clear");
    assert!(crate::checksum::verify_icmpv6(
        &a("fe80::1"),
        &a("fe80::2"),
        &built[HEADER_LEN..]
    ));
}
