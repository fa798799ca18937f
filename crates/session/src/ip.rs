//! Just enough of the IPv4 (RFC 791) and IPv6 (RFC 8200 §3) headers for
//! routing and anti-spoofing (the version, source and destination), and
//! for packets larger than the peer can receive: ICMP Fragmentation Needed
//! (RFC 1191 §4) and IPv4 fragmentation (RFC 791 §3.2). (IPv6 routers never
//! fragment: Packet Too Big is `ipv6nd::icmpv6::packet_too_big`.)

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

pub(crate) use ipv6nd::checksum::{add as sum, fold};

/// The Internet checksum (RFC 1071) of `data`.
pub(crate) fn checksum(data: &[u8]) -> u16 {
    !fold(sum(0, data))
}

/// The sum of the TCP pseudo-header (RFC 793 §3.1, RFC 8200 §8.1) of an
/// IPv4 packet with a 20-byte header or an IPv6 packet without extension
/// headers, for `tcp_len` bytes of TCP.
pub(crate) fn tcp_pseudo_sum(pkt: &[u8], tcp_len: usize) -> u64 {
    let addrs = if pkt[0] >> 4 == 6 {
        &pkt[8..40]
    } else {
        &pkt[12..20]
    };
    sum(0, addrs) + 6 + tcp_len as u64
}

/// Sets the TCP checksum (and the IPv4 header checksum) of a TCP packet
/// (IPv4 with a 20-byte header, or IPv6 without extension headers) built
/// by hand, e.g. in tests and benchmarks.
pub fn fill_tcp_checksum(pkt: &mut [u8]) {
    let iph = if pkt[0] >> 4 == 6 { 40 } else { 20 };
    if iph == 20 {
        pkt[10..12].copy_from_slice(&[0, 0]);
        let c = checksum(&pkt[..20]);
        pkt[10..12].copy_from_slice(&c.to_be_bytes());
    }
    pkt[iph + 16..iph + 18].copy_from_slice(&[0, 0]);
    let c = !fold(sum(tcp_pseudo_sum(pkt, pkt.len() - iph), &pkt[iph..]));
    pkt[iph + 16..iph + 18].copy_from_slice(&c.to_be_bytes());
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

/// The fragments of an IPv4 packet too large for a link (RFC 791 §3.2
/// "Fragmentation and reassembly", RFC 815): each carries a multiple of 8
/// bytes of the data but the last, the offset (in 8-byte units) counted
/// from the original datagram's (an already-fragmented packet keeps its
/// place), More Fragments on all but the last (and on the last too when
/// the packet was not the datagram's last), the options flagged "copied"
/// in every fragment but all options in the first only, and the header
/// checksum computed anew. Written one at a time into a caller's buffer:
/// no allocation once that buffer has grown.
#[derive(Debug)]
pub struct Fragments<'a> {
    /// The packet, up to its Total Length.
    pkt: &'a [u8],
    /// Its header length.
    ihl: usize,
    /// The header of the fragments after the first: the fixed 20 bytes and
    /// the copied options, padded to 4 bytes with End of Option List.
    later: [u8; 60],
    later_len: usize,
    /// Data bytes of the first fragment, and of each one after it.
    first_max: usize,
    later_max: usize,
    /// Data bytes already emitted.
    pos: usize,
    /// The packet's own offset in bytes and its More Fragments flag.
    offset: usize,
    more: bool,
}

/// Whether `pkt` is IPv4 with Don't Fragment clear (RFC 791 §3.1).
pub fn may_fragment(pkt: &[u8]) -> bool {
    pkt.len() >= 20 && pkt[0] >> 4 == 4 && pkt[6] & 0x40 == 0
}

/// The fragments of `pkt` (IPv4, Don't Fragment clear) for a link whose
/// largest packet is `mtu` bytes; `None` for a packet that fits, has DF
/// set, is not IPv4, is malformed (header, options or Total Length), or
/// for an `mtu` that leaves no 8 bytes of data beside the header.
pub fn fragments(pkt: &[u8], mtu: u16) -> Option<Fragments<'_>> {
    let mtu = usize::from(mtu);
    if !may_fragment(pkt) {
        return None;
    }
    let ihl = usize::from(pkt[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([pkt[2], pkt[3]]));
    if ihl < 20 || total < ihl || total > pkt.len() || total <= mtu {
        return None;
    }
    let mut later = [0u8; 60];
    later[..20].copy_from_slice(&pkt[..20]);
    let mut later_len = 20;
    let mut i = 20;
    while i < ihl {
        match pkt[i] {
            0 => break,
            1 => i += 1,
            kind => {
                let len = usize::from(*pkt.get(i + 1)?);
                if len < 2 || i + len > ihl {
                    return None;
                }
                if kind & 0x80 != 0 {
                    later[later_len..later_len + len].copy_from_slice(&pkt[i..i + len]);
                    later_len += len;
                }
                i += len;
            }
        }
    }
    later_len = later_len.div_ceil(4) * 4;
    later[0] = 0x40 | (later_len / 4) as u8;
    let first_max = mtu.saturating_sub(ihl) / 8 * 8;
    let later_max = mtu.saturating_sub(later_len) / 8 * 8;
    let field = u16::from_be_bytes([pkt[6], pkt[7]]);
    let offset = usize::from(field & 0x1fff) * 8;
    if first_max == 0 || later_max == 0 || offset + (total - ihl) > 0xffff {
        return None;
    }
    Some(Fragments {
        pkt: &pkt[..total],
        ihl,
        later,
        later_len,
        first_max,
        later_max,
        pos: 0,
        offset,
        more: field & 0x2000 != 0,
    })
}

impl Fragments<'_> {
    /// Writes the next fragment into `out` (replacing its contents); false
    /// when all were written.
    pub fn next_into(&mut self, out: &mut Vec<u8>) -> bool {
        let data = &self.pkt[self.ihl..];
        if self.pos >= data.len() {
            return false;
        }
        let (header, max) = if self.pos == 0 {
            (&self.pkt[..self.ihl], self.first_max)
        } else {
            (&self.later[..self.later_len], self.later_max)
        };
        let take = max.min(data.len() - self.pos);
        let last = self.pos + take == data.len();
        out.clear();
        out.extend_from_slice(header);
        out.extend_from_slice(&data[self.pos..self.pos + take]);
        let total = out.len() as u16;
        out[2..4].copy_from_slice(&total.to_be_bytes());
        // Reserved bit and DF (clear) kept; MF and the offset are ours.
        let mut field = u16::from(out[6] & 0x80) << 8 | ((self.offset + self.pos) / 8) as u16;
        if !last || self.more {
            field |= 0x2000;
        }
        out[6..8].copy_from_slice(&field.to_be_bytes());
        out[10..12].copy_from_slice(&[0, 0]);
        let hl = header.len();
        let c = checksum(&out[..hl]);
        out[10..12].copy_from_slice(&c.to_be_bytes());
        self.pos += take;
        true
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

    /// An IPv4 packet of `len` bytes with `options` (padded by the caller),
    /// fragment field `frag`, and a valid header checksum.
    fn v4_packet(len: usize, options: &[u8], frag: u16) -> Vec<u8> {
        let ihl = 20 + options.len();
        let mut p: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
        p[..20].copy_from_slice(&[
            0x40 | (ihl / 4) as u8,
            0,
            0,
            0,
            0x12,
            0x34,
            0,
            0,
            64,
            17,
            0,
            0,
            192,
            0,
            2,
            7,
            10,
            44,
            0,
            2,
        ]);
        p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        p[6..8].copy_from_slice(&frag.to_be_bytes());
        p[20..ihl].copy_from_slice(options);
        let c = checksum(&p[..ihl]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p
    }

    fn all_fragments(p: &[u8], mtu: u16) -> Vec<Vec<u8>> {
        let mut f = fragments(p, mtu).expect("fragmentable");
        let mut out = Vec::new();
        let mut buf = Vec::new();
        while f.next_into(&mut buf) {
            out.push(buf.clone());
        }
        out
    }

    /// Reassembles fragments (RFC 815, any order) into one packet with the
    /// first fragment's header: what the receiving host does.
    fn reassemble(frags: &[Vec<u8>]) -> Vec<u8> {
        let mut data = vec![None::<u8>; 65536];
        let (mut end, mut first, mut lowest) = (0, None, usize::MAX);
        let mut last_more = false;
        for f in frags {
            assert_eq!(
                checksum(&f[..usize::from(f[0] & 15) * 4]),
                0,
                "header checksum"
            );
            let hl = usize::from(f[0] & 15) * 4;
            assert_eq!(usize::from(u16::from_be_bytes([f[2], f[3]])), f.len());
            let field = u16::from_be_bytes([f[6], f[7]]);
            let off = usize::from(field & 0x1fff) * 8;
            for (i, b) in f[hl..].iter().enumerate() {
                assert!(data[off + i].is_none(), "fragments overlap");
                data[off + i] = Some(*b);
            }
            if off < lowest {
                lowest = off;
                first = Some(f[..hl].to_vec());
            }
            if off + f.len() - hl > end {
                end = off + f.len() - hl;
                last_more = field & 0x2000 != 0;
            }
        }
        let mut p = first.unwrap();
        let hl = p.len();
        let body: Vec<u8> = data[lowest..end]
            .iter()
            .map(|b| b.expect("no hole"))
            .collect();
        p.extend_from_slice(&body);
        let total = p.len() as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        let field = (lowest / 8) as u16 | if last_more { 0x2000 } else { 0 };
        p[6..8].copy_from_slice(&field.to_be_bytes());
        p[10..12].copy_from_slice(&[0, 0]);
        let c = checksum(&p[..hl]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p
    }

    #[test]
    fn a_fragmented_packet_reassembles_to_the_original() {
        let p = v4_packet(3000, &[], 0);
        let f = all_fragments(&p, 1500);
        assert_eq!(f.len(), 3);
        assert!(f.iter().all(|f| f.len() <= 1500));
        assert_eq!(f[0].len(), 20 + 1480);
        assert_eq!(
            u16::from_be_bytes([f[1][6], f[1][7]]),
            0x2000 | 185,
            "offset 1480/8, MF"
        );
        assert_eq!(
            u16::from_be_bytes([f[2][6], f[2][7]]),
            370,
            "the last: no MF"
        );
        assert_eq!(reassemble(&f), p);
        // Any order.
        assert_eq!(reassemble(&[f[2].clone(), f[0].clone(), f[1].clone()]), p);
    }

    #[test]
    fn a_fragment_is_fragmented_again_in_its_place() {
        // The middle piece of a larger datagram: offset 800 bytes, MF set.
        let p = v4_packet(2020, &[], 0x2000 | 100);
        let f = all_fragments(&p, 1000);
        assert_eq!(f.len(), 3);
        for x in &f {
            assert_ne!(
                x[6] & 0x20,
                0,
                "every piece has MF: more of the datagram follows"
            );
        }
        assert_eq!(u16::from_be_bytes([f[0][6], f[0][7]]) & 0x1fff, 100);
        assert_eq!(reassemble(&f), p);
        // The last piece of a datagram keeps MF clear on its last fragment.
        let p = v4_packet(2020, &[], 100);
        let f = all_fragments(&p, 1000);
        assert_eq!(f.last().unwrap()[6] & 0x20, 0);
        assert_eq!(reassemble(&f), p);
    }

    #[test]
    fn copied_options_go_into_every_fragment_the_others_into_the_first() {
        // Record Route (7, not copied), NOP, Security-like option 130
        // (copied), End of Option List: 20 bytes of options.
        let mut opts = vec![
            7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 1, 130, 4, 0xaa, 0xbb, 0, 0, 0, 0,
        ];
        opts.truncate(20);
        let p = v4_packet(2000, &opts, 0);
        let f = all_fragments(&p, 1000);
        assert_eq!(f[0][0] & 15, 10, "the first fragment: all options");
        assert_eq!(&f[0][20..40], &opts[..]);
        for x in &f[1..] {
            assert_eq!(x[0] & 15, 6, "later fragments: the copied option, padded");
            assert_eq!(&x[20..24], &[130, 4, 0xaa, 0xbb]);
        }
        for x in &f {
            assert!(x.len() <= 1000);
            let hl = usize::from(x[0] & 15) * 4;
            let field = u16::from_be_bytes([x[6], x[7]]);
            if field & 0x2000 != 0 {
                assert_eq!(
                    (x.len() - hl) % 8,
                    0,
                    "all but the last carry multiples of 8"
                );
            }
        }
        assert_eq!(reassemble(&f), p);
    }

    #[test]
    fn what_is_not_fragmented() {
        let p = v4_packet(3000, &[], 0);
        assert!(fragments(&p, 3000).is_none(), "fits");
        assert!(
            fragments(&v4_packet(3000, &[], 0x4000), 1500).is_none(),
            "DF"
        );
        assert!(
            fragments(&p[..2000], 1500).is_none(),
            "shorter than its Total Length"
        );
        assert!(fragments(&p, 27).is_none(), "no room for 8 bytes of data");
        assert!(
            fragments(&v4_packet(3000, &[7, 40, 0, 0], 0), 1500).is_none(),
            "bad option"
        );
        let mut v6 = p.clone();
        v6[0] = 0x60;
        assert!(fragments(&v6, 1500).is_none(), "IPv6");
        // Trailing bytes past Total Length are not data.
        let mut padded = p.clone();
        padded.extend_from_slice(&[0xee; 10]);
        assert_eq!(reassemble(&all_fragments(&padded, 1500)), p);
        // The offset of the datagram's end would not fit the field.
        assert!(fragments(&v4_packet(3000, &[], 0x1fff), 1500).is_none());
    }

    proptest::proptest! {
        #[test]
        fn fragments_always_reassemble(
            len in 21usize..6000,
            mtu in 68u16..4001,
            copied in proptest::bool::ANY,
            offset in 0u16..200,
            more in proptest::bool::ANY,
        ) {
            let opts: &[u8] = if copied { &[130, 4, 1, 2] } else { &[7, 3, 4, 0] };
            let len = len.max(24);
            let frag = offset | if more { 0x2000 } else { 0 };
            let p = v4_packet(len, opts, frag);
            match fragments(&p, mtu) {
                None => proptest::prop_assert!(p.len() <= usize::from(mtu)),
                Some(_) => {
                    let f = all_fragments(&p, mtu);
                    proptest::prop_assert!(f.iter().all(|x| x.len() <= usize::from(mtu)));
                    proptest::prop_assert_eq!(reassemble(&f), p);
                }
            }
        }
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
