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

/// The Internet checksum (RFC 1071) of `data`.
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An ICMP Destination Unreachable, Fragmentation Needed (RFC 792, RFC
/// 1191 §4: the next-hop `mtu`) for an IPv4 packet with Don't Fragment
/// set that is larger than `mtu`; `None` for any other packet (no DF,
/// not IPv4, an ICMP error itself). It comes from the packet's
/// destination (the tunnel's far end), so the host that sent it does not
/// see its own address as the source.
pub fn frag_needed(pkt: &[u8], mtu: u16) -> Option<Vec<u8>> {
    if pkt.len() < 20 || pkt[0] >> 4 != 4 || pkt.len() <= usize::from(mtu) {
        return None;
    }
    let ihl = usize::from(pkt[0] & 0x0f) * 4;
    let df = pkt[6] & 0x40 != 0;
    let icmp_error = pkt[9] == 1 && matches!(pkt.get(ihl), Some(3 | 4 | 5 | 11 | 12));
    if !df || icmp_error || ihl < 20 || pkt.len() < ihl {
        return None;
    }
    let quoted = &pkt[..pkt.len().min(ihl + 8)];
    let mut icmp = vec![3, 4, 0, 0, 0, 0];
    icmp.extend_from_slice(&mtu.to_be_bytes());
    icmp.extend_from_slice(quoted);
    let c = checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let total = (20 + icmp.len()) as u16;
    let mut out = vec![0x45, 0];
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0, 64, 1, 0, 0]);
    out.extend_from_slice(&pkt[16..20]);
    out.extend_from_slice(&pkt[12..16]);
    let c = checksum(&out);
    out[10..12].copy_from_slice(&c.to_be_bytes());
    out.extend_from_slice(&icmp);
    Some(out)
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
    fn frag_needed_for_big_df_packets_only() {
        let mut p = vec![0u8; 1300];
        p[..20].copy_from_slice(&[
            0x45, 0, 0x05, 0x14, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 251, 0, 1, 10, 44, 0, 2,
        ]);
        let icmp = frag_needed(&p, 1200).unwrap();
        assert_eq!(icmp.len(), 20 + 8 + 28);
        assert_eq!(checksum(&icmp[..20]), 0, "IPv4 header checksum");
        assert_eq!(checksum(&icmp[20..]), 0, "ICMP checksum");
        assert_eq!(&icmp[12..16], &[10, 44, 0, 2], "from the tunnel's far end");
        assert_eq!(&icmp[16..20], &[10, 251, 0, 1], "to the sender");
        assert_eq!(&icmp[20..22], &[3, 4]);
        assert_eq!(u16::from_be_bytes([icmp[26], icmp[27]]), 1200);
        assert_eq!(&icmp[28..48], &p[..20], "the quoted header");
        assert!(frag_needed(&p[..1200], 1200).is_none(), "fits");
        p[6] = 0;
        assert!(frag_needed(&p, 1200).is_none(), "no DF: not ours to answer");
    }

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
