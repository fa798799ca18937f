//! Just enough of the IPv4 (RFC 791) and IPv6 (RFC 8200 §3) headers for
//! routing and anti-spoofing: the version, source and destination.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The destination address of an IPv4 or IPv6 packet.
pub fn destination(pkt: &[u8]) -> Option<IpAddr> {
    match pkt.first()? >> 4 {
        4 if pkt.len() >= 20 => Some(IpAddr::V4(Ipv4Addr::new(
            pkt[16], pkt[17], pkt[18], pkt[19],
        ))),
        6 if pkt.len() >= 40 => {
            let b: [u8; 16] = pkt[24..40].try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => None,
    }
}

/// The source address of an IPv4 or IPv6 packet.
pub fn source(pkt: &[u8]) -> Option<IpAddr> {
    match pkt.first()? >> 4 {
        4 if pkt.len() >= 20 => Some(IpAddr::V4(Ipv4Addr::new(
            pkt[12], pkt[13], pkt[14], pkt[15],
        ))),
        6 if pkt.len() >= 40 => {
            let b: [u8; 16] = pkt[8..24].try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => None,
    }
}

/// The link-local address `fe80::<iid>` of an IPv6CP interface identifier
/// (RFC 5072 §5).
pub fn link_local(iid: [u8; 8]) -> Ipv6Addr {
    let mut b = [0u8; 16];
    b[..2].copy_from_slice(&[0xfe, 0x80]);
    b[8..].copy_from_slice(&iid);
    Ipv6Addr::from(b)
}

/// Whether `a` belongs to the link rather than the network: link-local
/// unicast (fe80::/10) or multicast of interface- or link-local scope (or
/// the reserved scope 0).
pub fn link_scope(a: Ipv6Addr) -> bool {
    ipv6nd::addr::is_link_local(a) || (a.octets()[0] == 0xff && a.octets()[1] & 0x0f <= 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let mut p = vec![0x45, 0, 0, 20, 0, 0, 0, 0, 64, 1, 0, 0];
        p.extend_from_slice(&[10, 0, 0, 2, 10, 0, 0, 1]);
        assert_eq!(source(&p), Some("10.0.0.2".parse().unwrap()));
        assert_eq!(destination(&p), Some("10.0.0.1".parse().unwrap()));
        assert_eq!(destination(&p[..19]), None);
        assert_eq!(source(&[]), None);
        let mut v6 = vec![0x60; 40];
        v6[8..24].copy_from_slice(&Ipv6Addr::LOCALHOST.octets());
        v6[24..40].copy_from_slice(&"fd00::1".parse::<Ipv6Addr>().unwrap().octets());
        assert_eq!(source(&v6), Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        assert_eq!(destination(&v6), Some("fd00::1".parse().unwrap()));
        assert_eq!(
            link_local([0, 0, 0, 0, 0, 0, 0, 9]),
            "fe80::9".parse::<Ipv6Addr>().unwrap()
        );
        assert!(link_scope("febf::1".parse().unwrap()));
        assert!(!link_scope("fec0::1".parse().unwrap()));
        assert!(link_scope("ff02::16".parse().unwrap()));
        assert!(link_scope("ff01::1".parse().unwrap()));
        assert!(!link_scope("ff05::2".parse().unwrap()));
        assert!(!link_scope("fd00::1".parse().unwrap()));
    }
}
