//! Neighbor Discovery parsing and the server's per-client router on
//! arbitrary packets. The first byte selects fix-ups (IPv6 version and
//! payload length, ICMPv6, hop limit 255, checksum) so the fuzzer reaches the
//! option parsers. Nothing may panic; a parsed RA must re-emit (unless too
//! large for the link) and parse back to itself; whatever the router sends
//! must be well-formed IPv6 within the link MTU.
#![no_main]

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use iphttps::nd::{NdError, NeighborSolicit, RouterAdvert, RouterSolicit};
use iphttps::{ClientRouter, Ipv6Packet, Prefix64, RouterConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut p = rest.to_vec();
    if mode & 1 != 0 && p.len() >= 44 && p.len() - 40 <= usize::from(u16::MAX) {
        p[0] = 0x60 | (p[0] & 0x0f);
        let plen = (p.len() - 40) as u16;
        p[4..6].copy_from_slice(&plen.to_be_bytes());
        p[6] = 58;
        if mode & 2 != 0 {
            p[7] = 255;
        }
        if mode & 4 != 0 {
            // Link-local source, as RAs need.
            p[8] = 0xfe;
            p[9] = 0x80;
        }
        if mode & 8 != 0 {
            let mut s = [0u8; 16];
            let mut d = [0u8; 16];
            s.copy_from_slice(&p[8..24]);
            d.copy_from_slice(&p[24..40]);
            iphttps::checksum::fill_icmpv6(&s.into(), &d.into(), &mut p[40..]);
        }
    }

    if let Ok(ra) = RouterAdvert::parse(&p) {
        match ra.advert.to_packet(ra.router, ra.destination) {
            Ok(bytes) => {
                let again = RouterAdvert::parse(&bytes).expect("emitted RA parses");
                assert_eq!(again.advert, ra.advert);
                assert_eq!(again.router, ra.router);
            }
            Err(NdError::TooLarge { .. }) | Err(NdError::BadOption { kind: 1, .. }) => {}
            Err(e) => panic!("parsed RA does not re-emit: {e:?}"),
        }
        let iid = iphttps::InterfaceId::new([1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        for a in ra.advert.slaac_addresses(iid) {
            assert_eq!(u128::from(a) as u64, 0x0102_0304_0506_0708);
        }
        assert!(ra.advert.link_mtu() >= 1280);
        let _ = ra.advert.dns_servers();
    }
    if let Ok(rs) = RouterSolicit::parse(&p) {
        let _ = rs.reply_to();
    }
    if let Ok(ns) = NeighborSolicit::parse(&p) {
        if let Some(na) = ns.answer(&[ns.target]) {
            assert!(Ipv6Packet::new_checked(&na[..]).is_ok());
        }
    }

    let prefix = Prefix64::of(Ipv6Addr::new(0x2001, 0xdb8, 0, 7, 0, 0, 0, 0));
    let mut router = ClientRouter::new(
        prefix,
        RouterConfig {
            dns: vec![Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x53)],
            router_addr: Some(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
            ..RouterConfig::default()
        },
    )
    .unwrap();
    let t0 = Instant::now();
    router.link_up(t0);
    let _ = router.ingress(t0 + Duration::from_secs(1), &p);
    let _ = router.ingress(t0 + Duration::from_secs(5), &p);
    router.handle_timeout(t0 + Duration::from_secs(5));
    let _ = router.egress(&p);
    while let Some(out) = router.poll_transmit() {
        assert!(out.len() <= 1280);
        assert!(Ipv6Packet::new_checked(&out[..]).is_ok());
    }
});
