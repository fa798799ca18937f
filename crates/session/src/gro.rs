//! Receive offload in user space for a TUN device opened with the virtio
//! net header (`IFF_VNET_HDR`, `TUNSETOFFLOAD`): consecutive TCP segments
//! of one flow, as a session decodes them from the stream, are joined into
//! one large packet that the kernel takes in one write and hands to the
//! receiver as one GSO packet (it is cut again only if it is forwarded).
//! Fewer writes, fewer passes through the inner TCP receive path, fewer
//! ACKs back.
//!
//! The segments are copied once, from wherever the session decoded them
//! straight into the joined packet; nothing is allocated once the buffers
//! have grown to what a turn carries.
//!
//! What is joined is what the kernel's own GRO joins (the facts carried
//! over from `tcp_gro_receive`/`inet_gro_receive` and wireguard-go's TUN
//! offload): IPv4 without options and not a fragment, or IPv6 without
//! extension headers; TCP with only ACK set (PSH allowed on the last
//! segment); the same addresses, ports, ACK number, window, TCP options,
//! TOS/traffic class, TTL/hop limit, DF and flow label; sequence numbers
//! that follow on; no segment larger than the first and nothing after a
//! shorter one; an IPv4 ID that counts up unless DF is set; at most 65,535
//! bytes of IP packet (RFC 791 §3.1 total length, RFC 8200 §3 payload
//! length). Every segment's TCP checksum (RFC 793 §3.1, RFC 8200 §8.1) is
//! checked before it is joined: the joined packet's checksum is the
//! kernel's to complete (`VIRTIO_NET_HDR_F_NEEDS_CSUM`), so a corrupt
//! segment is never joined and made to look valid; it is written alone
//! and the kernel drops it. Everything else passes through unchanged.
//!
//! The virtio header (`struct virtio_net_hdr`, Linux
//! `include/uapi/linux/virtio_net.h`) is in the host's byte order, as the
//! TUN device reads it unless told otherwise (`TUNSETVNETLE/BE`).

use crate::ip::{checksum, fold, sum, tcp_pseudo_sum};

/// Length of the virtio net header before every packet.
pub const VNET_HDR_LEN: usize = 10;

const NEEDS_CSUM: u8 = 1;
const GSO_TCPV4: u8 = 1;
const GSO_TCPV6: u8 = 4;
const TCP_ACK: u8 = 0x10;
const TCP_PSH: u8 = 0x08;
const PROTO_TCP: u8 = 6;
const MAX_IP_LEN: usize = 65535;
/// Joins that are looked for (newest first) before a segment starts a new
/// packet: a turn carries a few flows at most.
const FLOWS_SEARCHED: usize = 8;

/// A TCP segment that may be joined.
struct Segment {
    /// IP header length: 20 (IPv4) or 40 (IPv6).
    iph: usize,
    tcph: usize,
    seq: u32,
    psh: bool,
    payload: usize,
}

impl Segment {
    fn parse(pkt: &[u8]) -> Option<Segment> {
        let iph = match pkt.first()? >> 4 {
            4 => {
                let ok = pkt.len() >= 20
                    && pkt[0] == 0x45
                    && usize::from(u16::from_be_bytes([pkt[2], pkt[3]])) == pkt.len()
                    && pkt[6] & 0x3f == 0
                    && pkt[7] == 0
                    && pkt[9] == PROTO_TCP;
                ok.then_some(20)?
            }
            6 => {
                let ok = pkt.len() >= 40
                    && usize::from(u16::from_be_bytes([pkt[4], pkt[5]])) + 40 == pkt.len()
                    && pkt[6] == PROTO_TCP;
                ok.then_some(40)?
            }
            _ => return None,
        };
        let tcp = pkt.get(iph..iph + 20)?;
        let tcph = usize::from(tcp[12] >> 4) * 4;
        let flags = tcp[13];
        if tcph < 20 || pkt.len() <= iph + tcph || (flags != TCP_ACK && flags != TCP_ACK | TCP_PSH)
        {
            return None;
        }
        Some(Segment {
            iph,
            tcph,
            seq: u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]),
            psh: flags & TCP_PSH != 0,
            payload: pkt.len() - iph - tcph,
        })
    }

    /// Whether `pkt` (this segment) belongs to the same flow and headers
    /// as `first`, the first segment of a joined packet, `joined` segments
    /// later.
    fn matches(&self, pkt: &[u8], first: &[u8], joined: u16) -> bool {
        let (iph, tcph) = (self.iph, self.tcph);
        let v6 = iph == 40;
        if first.len() < iph + tcph || (first[0] >> 4 == 6) != v6 {
            return false;
        }
        let ip_same = if v6 {
            // Version, traffic class, flow label; next header, hop limit;
            // addresses.
            pkt[..4] == first[..4] && pkt[6..40] == first[6..40]
        } else {
            // TOS; DF; TTL, protocol; addresses. The ID counts up unless
            // DF is set (RFC 6864 §4.1).
            let df = pkt[6] & 0x40 != 0;
            let id = u16::from_be_bytes([pkt[4], pkt[5]]);
            let first_id = u16::from_be_bytes([first[4], first[5]]);
            pkt[..2] == first[..2]
                && pkt[6] == first[6]
                && pkt[8..10] == first[8..10]
                && pkt[12..20] == first[12..20]
                && (df || id == first_id.wrapping_add(joined))
        };
        let (t, f) = (&pkt[iph..iph + tcph], &first[iph..iph + tcph]);
        // Ports; ACK number; data offset; window; urgent pointer; options.
        ip_same
            && t[..4] == f[..4]
            && t[8..13] == f[8..13]
            && t[14..16] == f[14..16]
            && t[18..] == f[18..]
    }
}

/// One packet being written: where it is, and how it may grow.
struct Joined {
    buf: usize,
    /// IP header length: 20 (IPv4) or 40 (IPv6).
    iph: usize,
    tcph: usize,
    /// Payload bytes of the first segment (the GSO size).
    gso: usize,
    next_seq: u32,
    /// Segments in it.
    segs: u16,
    /// Nothing more may follow (PSH, or a segment shorter than the first).
    ended: bool,
}

/// Gathers the packets of one turn for a TUN device, joining TCP segments;
/// see the module docs.
#[derive(Default)]
pub struct Coalescer {
    /// Each packet with its virtio header in front; the first `n` are in
    /// use, the rest are kept for the next turn.
    bufs: Vec<Vec<u8>>,
    /// Segments (packets given to [`push`](Self::push)) in each.
    segs: Vec<u16>,
    n: usize,
    joined: Vec<Joined>,
}

impl Coalescer {
    /// Adds a packet.
    pub fn push(&mut self, pkt: &[u8]) {
        let seg = Segment::parse(pkt);
        if let Some(seg) = &seg {
            if self.join(seg, pkt) {
                return;
            }
        }
        // It does not follow on: the open packet of its flow ends here, so
        // that a flow's packets keep their order.
        // Only the newest entries can still grow (see `join`), so only they
        // are looked at: a turn of many flows costs no more per packet.
        if let Some(at) = tcp_flow(pkt).and_then(|key| {
            let newest = self.joined.len().saturating_sub(FLOWS_SEARCHED);
            self.joined[newest..]
                .iter()
                .rposition(|j| tcp_flow(&self.bufs[j.buf][VNET_HDR_LEN..]) == Some(key))
                .map(|i| newest + i)
        }) {
            let j = self.joined.remove(at);
            if j.segs > 1 {
                complete(&mut self.bufs[j.buf], &j);
            }
        }
        let buf = self.store(pkt);
        if let Some(seg) = seg {
            self.joined.push(Joined {
                buf,
                iph: seg.iph,
                tcph: seg.tcph,
                gso: seg.payload,
                next_seq: seg.seq.wrapping_add(seg.payload as u32),
                segs: 1,
                ended: seg.psh,
            });
        }
    }

    /// Appends `pkt` to a packet of its flow if it may follow on.
    fn join(&mut self, seg: &Segment, pkt: &[u8]) -> bool {
        let Coalescer {
            bufs, segs, joined, ..
        } = self;
        let Some(j) = joined.iter_mut().rev().take(FLOWS_SEARCHED).find(|j| {
            !j.ended
                && j.iph == seg.iph
                && j.tcph == seg.tcph
                && j.next_seq == seg.seq
                && seg.payload <= j.gso
                && bufs[j.buf].len() - VNET_HDR_LEN + seg.payload <= MAX_IP_LEN
                && seg.matches(pkt, &bufs[j.buf][VNET_HDR_LEN..], j.segs)
        }) else {
            return false;
        };
        let buf = &mut bufs[j.buf];
        if j.segs == 1 && !tcp_checksum_ok(&buf[VNET_HDR_LEN..], j.iph) {
            // The first is corrupt: it stays alone, as it came.
            j.ended = true;
            return false;
        }
        if !tcp_checksum_ok(pkt, seg.iph) {
            return false;
        }
        let need = buf.len() + seg.payload;
        if buf.capacity() < need {
            // Doubling, but never past the largest packet: memory stays in
            // proportion to what the peer sent.
            let want = (buf.capacity() * 2).clamp(need, VNET_HDR_LEN + MAX_IP_LEN);
            buf.reserve_exact(want - buf.len());
        }
        buf.extend_from_slice(&pkt[seg.iph + seg.tcph..]);
        if seg.psh {
            buf[VNET_HDR_LEN + j.iph + 13] |= TCP_PSH;
        }
        j.segs += 1;
        segs[j.buf] += 1;
        j.next_seq = j.next_seq.wrapping_add(seg.payload as u32);
        j.ended = seg.psh || seg.payload < j.gso;
        true
    }

    /// Copies a packet in as it is (a zero virtio header); returns its
    /// index.
    fn store(&mut self, pkt: &[u8]) -> usize {
        if self.n == self.bufs.len() {
            self.bufs.push(Vec::with_capacity(VNET_HDR_LEN + pkt.len()));
            self.segs.push(0);
        }
        let b = &mut self.bufs[self.n];
        b.clear();
        b.extend_from_slice(&[0; VNET_HDR_LEN]);
        b.extend_from_slice(pkt);
        self.segs[self.n] = 1;
        self.n += 1;
        self.n - 1
    }

    /// Frees the buffers past the first `budget` bytes of capacity (call
    /// between turns): what one turn of many small flows made is not kept.
    pub fn trim(&mut self, budget: usize) {
        let mut held = 0;
        let keep = self
            .bufs
            .iter()
            .position(|b| {
                held += b.capacity();
                held > budget
            })
            .unwrap_or(self.bufs.len());
        self.bufs.truncate(keep);
        self.segs.truncate(keep);
        self.n = self.n.min(keep);
    }

    /// Packets (not segments) gathered.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether nothing is gathered.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Segments pushed, all packets together.
    pub fn segments(&self) -> usize {
        self.segs[..self.n].iter().map(|&s| usize::from(s)).sum()
    }

    /// Completes the headers of joined packets and returns every packet,
    /// virtio header first, in the order their first segments came; the
    /// next [`push`](Self::push) starts a new turn. The second value of
    /// each is how many segments it carries.
    pub fn finish(&mut self) -> impl Iterator<Item = (&[u8], u16)> {
        for j in self.joined.drain(..) {
            if j.segs > 1 {
                complete(&mut self.bufs[j.buf], &j);
            }
        }
        let n = std::mem::take(&mut self.n);
        self.bufs[..n]
            .iter()
            .map(Vec::as_slice)
            .zip(self.segs[..n].iter().copied())
    }
}

/// Addresses and ports of a TCP packet (IPv4 not a fragment, IPv6 with
/// TCP as the next header), whatever its flags.
fn tcp_flow(pkt: &[u8]) -> Option<(&[u8], &[u8])> {
    match pkt.first()? >> 4 {
        4 if pkt.len() >= 20 && pkt[9] == PROTO_TCP && pkt[6] & 0x3f == 0 && pkt[7] == 0 => {
            let iph = usize::from(pkt[0] & 15) * 4;
            Some((&pkt[12..20], pkt.get(iph..iph + 4)?))
        }
        6 if pkt.len() >= 44 && pkt[6] == PROTO_TCP => Some((&pkt[8..40], &pkt[40..44])),
        _ => None,
    }
}

/// Lengths, the IPv4 header checksum, the TCP checksum's pseudo-header
/// part and the virtio header of a packet of several segments.
fn complete(buf: &mut [u8], j: &Joined) {
    let pkt_len = buf.len() - VNET_HDR_LEN;
    let (iph, tcph) = (j.iph, j.tcph);
    let tcp_len = pkt_len - iph;
    let (hdr, pkt) = buf.split_at_mut(VNET_HDR_LEN);
    let v6 = iph == 40;
    if v6 {
        pkt[4..6].copy_from_slice(&((pkt_len - 40) as u16).to_be_bytes());
    } else {
        pkt[2..4].copy_from_slice(&(pkt_len as u16).to_be_bytes());
        pkt[10..12].copy_from_slice(&[0, 0]);
        let c = checksum(&pkt[..20]);
        pkt[10..12].copy_from_slice(&c.to_be_bytes());
    }
    let pseudo = tcp_pseudo_sum(pkt, tcp_len);
    // NEEDS_CSUM: the checksum field holds the pseudo-header sum, not
    // complemented; the kernel adds the rest.
    pkt[iph + 16..iph + 18].copy_from_slice(&fold(pseudo).to_be_bytes());
    hdr[0] = NEEDS_CSUM;
    hdr[1] = if v6 { GSO_TCPV6 } else { GSO_TCPV4 };
    hdr[2..4].copy_from_slice(&((iph + tcph) as u16).to_ne_bytes());
    hdr[4..6].copy_from_slice(&(j.gso as u16).to_ne_bytes());
    hdr[6..8].copy_from_slice(&(iph as u16).to_ne_bytes());
    hdr[8..10].copy_from_slice(&16u16.to_ne_bytes());
}

/// Whether a segment's TCP checksum verifies.
fn tcp_checksum_ok(pkt: &[u8], iph: usize) -> bool {
    fold(sum(tcp_pseudo_sum(pkt, pkt.len() - iph), &pkt[iph..])) == 0xffff
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u8; 4] = [10, 44, 0, 2];
    const B: [u8; 4] = [10, 44, 0, 1];

    /// An IPv4 TCP segment with valid checksums.
    fn v4(id: u16, seq: u32, flags: u8, payload: &[u8], sport: u16) -> Vec<u8> {
        let mut p = vec![0u8; 40];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&((40 + payload.len()) as u16).to_be_bytes());
        p[4..6].copy_from_slice(&id.to_be_bytes());
        p[8] = 64;
        p[9] = PROTO_TCP;
        p[12..16].copy_from_slice(&A);
        p[16..20].copy_from_slice(&B);
        p.extend_from_slice(payload);
        tcp(&mut p, 20, seq, flags, sport);
        p
    }

    fn v6(seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 60];
        p[0] = 0x60;
        p[4..6].copy_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
        p[6] = PROTO_TCP;
        p[7] = 64;
        p[8] = 0xfd;
        p[23] = 2;
        p[24] = 0xfd;
        p[39] = 1;
        p.extend_from_slice(payload);
        tcp(&mut p, 40, seq, flags, 5201);
        p
    }

    fn tcp(p: &mut [u8], iph: usize, seq: u32, flags: u8, sport: u16) {
        let t = iph;
        p[t..t + 2].copy_from_slice(&sport.to_be_bytes());
        p[t + 2..t + 4].copy_from_slice(&40000u16.to_be_bytes());
        p[t + 4..t + 8].copy_from_slice(&seq.to_be_bytes());
        p[t + 8..t + 12].copy_from_slice(&7u32.to_be_bytes());
        p[t + 12] = 5 << 4;
        p[t + 13] = flags;
        p[t + 14..t + 16].copy_from_slice(&512u16.to_be_bytes());
        crate::ip::fill_tcp_checksum(p);
    }

    fn payload(n: usize, seed: u8) -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    /// Cuts every packet back into segments with tun-rs (an independent
    /// implementation of the kernel's GSO), checksums included.
    fn split(c: &mut Coalescer) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for (p, _) in c.finish() {
            let hdr = tun_rs::VirtioNetHdr::decode(p).unwrap();
            if hdr.gso_type == 0 {
                out.push(p[VNET_HDR_LEN..].to_vec());
                continue;
            }
            let mut input = p[VNET_HDR_LEN..].to_vec();
            let mut bufs = vec![vec![0u8; 65535]; 64];
            let mut sizes = vec![0; 64];
            let v6 = p[VNET_HDR_LEN] >> 4 == 6;
            let n = tun_rs::gso_split(&mut input, hdr, &mut bufs, &mut sizes, 0, v6).unwrap();
            out.extend((0..n).map(|i| bufs[i][..sizes[i]].to_vec()));
        }
        out
    }

    #[test]
    fn consecutive_segments_become_one_packet_that_splits_back() {
        let mut c = Coalescer::default();
        let segs: Vec<Vec<u8>> = (0..16u16)
            .map(|i| {
                let flags = if i == 15 { TCP_ACK | TCP_PSH } else { TCP_ACK };
                v4(
                    100 + i,
                    1000 + 3960 * u32::from(i),
                    flags,
                    &payload(3960, i as u8),
                    5201,
                )
            })
            .collect();
        for s in &segs {
            c.push(s);
        }
        assert_eq!((c.len(), c.segments()), (1, 16));
        {
            let (p, n) = c.finish().next().unwrap();
            assert_eq!(n, 16);
            assert_eq!(p.len(), VNET_HDR_LEN + 40 + 16 * 3960);
            let hdr = tun_rs::VirtioNetHdr::decode(p).unwrap();
            assert_eq!(
                (hdr.flags, hdr.gso_type, hdr.hdr_len, hdr.gso_size),
                (NEEDS_CSUM, GSO_TCPV4, 40, 3960)
            );
            assert_eq!((hdr.csum_start, hdr.csum_offset), (20, 16));
        }
        for s in &segs {
            c.push(s);
        }
        assert_eq!(split(&mut c), segs, "split back byte for byte");
    }

    #[test]
    fn ipv6_segments_are_joined_too() {
        let mut c = Coalescer::default();
        let segs: Vec<Vec<u8>> = (0..4u32)
            .map(|i| v6(9 + 1200 * i, TCP_ACK, &payload(1200, i as u8)))
            .collect();
        for s in &segs {
            c.push(s);
        }
        assert_eq!(c.len(), 1);
        assert_eq!(split(&mut c), segs);
    }

    #[test]
    fn interleaved_flows_are_joined_each_on_their_own() {
        let mut c = Coalescer::default();
        let mut a = Vec::new();
        let mut b = Vec::new();
        for i in 0..6u16 {
            let seq = 1 + 1000 * u32::from(i);
            a.push(v4(i, seq, TCP_ACK, &payload(1000, 1), 5201));
            b.push(v4(50 + i, seq, TCP_ACK, &payload(1000, 2), 5202));
            c.push(a.last().unwrap());
            c.push(b.last().unwrap());
        }
        assert_eq!(c.len(), 2);
        let got = split(&mut c);
        assert_eq!(got, [a, b].concat());
    }

    #[test]
    fn what_is_not_joined() {
        let p = payload(500, 0);
        let cases: Vec<(&str, Vec<Vec<u8>>)> = vec![
            (
                "a gap in the sequence",
                vec![v4(1, 0, TCP_ACK, &p, 1), v4(2, 501, TCP_ACK, &p, 1)],
            ),
            (
                "after PSH",
                vec![
                    v4(1, 0, TCP_ACK | TCP_PSH, &p, 1),
                    v4(2, 500, TCP_ACK, &p, 1),
                ],
            ),
            (
                "a larger one",
                vec![v4(1, 0, TCP_ACK, &p[..100], 1), v4(2, 100, TCP_ACK, &p, 1)],
            ),
            (
                "SYN, FIN",
                vec![v4(1, 0, 0x02, &p, 1), v4(2, 500, TCP_ACK | 0x01, &p, 1)],
            ),
            (
                "the IPv4 ID not counting up without DF",
                vec![v4(1, 0, TCP_ACK, &p, 1), v4(9, 500, TCP_ACK, &p, 1)],
            ),
            (
                "another port",
                vec![v4(1, 0, TCP_ACK, &p, 1), v4(2, 500, TCP_ACK, &p, 2)],
            ),
            (
                "pure ACKs",
                vec![v4(1, 0, TCP_ACK, &[], 1), v4(2, 0, TCP_ACK, &[], 1)],
            ),
        ];
        for (what, pkts) in cases {
            let mut c = Coalescer::default();
            for q in &pkts {
                c.push(q);
            }
            assert_eq!(c.len(), pkts.len(), "{what}");
            let out: Vec<Vec<u8>> = c.finish().map(|(q, _)| q.to_vec()).collect();
            for (o, q) in out.iter().zip(&pkts) {
                assert_eq!(&o[..VNET_HDR_LEN], &[0; VNET_HDR_LEN], "{what}");
                assert_eq!(&o[VNET_HDR_LEN..], &q[..], "{what}: unchanged");
            }
        }
    }

    #[test]
    fn nothing_follows_a_shorter_segment() {
        let p = payload(500, 0);
        let mut c = Coalescer::default();
        for (i, (seq, len)) in [(0, 500), (500, 100), (600, 500)].into_iter().enumerate() {
            c.push(&v4(i as u16, seq, TCP_ACK, &p[..len], 1));
        }
        let segs: Vec<u16> = c.finish().map(|(_, n)| n).collect();
        assert_eq!(segs, [2, 1]);
    }

    #[test]
    fn with_df_the_ipv4_id_may_stay() {
        let mut c = Coalescer::default();
        for i in 0..3u32 {
            let mut s = v4(7, 500 * i, TCP_ACK, &payload(500, 0), 1);
            s[6] = 0x40;
            crate::ip::fill_tcp_checksum(&mut s);
            c.push(&s);
        }
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn a_corrupt_segment_is_never_joined() {
        let p = payload(800, 3);
        let good: Vec<Vec<u8>> = (0..3u16)
            .map(|i| v4(i, 800 * u32::from(i), TCP_ACK, &p, 1))
            .collect();
        // The second corrupt: the first and third cannot follow on.
        let mut bad = good.clone();
        bad[1][100] ^= 1;
        let mut c = Coalescer::default();
        for s in &bad {
            c.push(s);
        }
        assert_eq!(c.len(), 3);
        let _ = c.finish().count();
        // The first corrupt: it stays alone, the others are joined.
        let mut bad = good.clone();
        bad[0][100] ^= 1;
        for s in &bad {
            c.push(s);
        }
        let out: Vec<(Vec<u8>, u16)> = c.finish().map(|(q, n)| (q.to_vec(), n)).collect();
        assert_eq!(out.len(), 2);
        assert_eq!(&out[0].0[VNET_HDR_LEN..], &bad[0][..]);
        assert_eq!(out[1].1, 2);
    }

    #[test]
    fn never_more_than_65535_bytes() {
        let mut c = Coalescer::default();
        let segs: Vec<Vec<u8>> = (0..20u16)
            .map(|i| v4(i, 4000 * u32::from(i), TCP_ACK, &payload(4000, 0), 1))
            .collect();
        for s in &segs {
            c.push(s);
        }
        let sizes: Vec<usize> = c.finish().map(|(p, _)| p.len() - VNET_HDR_LEN).collect();
        assert!(sizes.iter().all(|&s| s <= MAX_IP_LEN), "{sizes:?}");
        assert_eq!(sizes.len(), 2);
    }

    #[test]
    fn trimming_keeps_buffers_up_to_the_budget() {
        let mut c = Coalescer::default();
        for i in 0..100u16 {
            // 100 flows of one 1,000-byte segment each.
            c.push(&v4(i, 0, TCP_ACK, &payload(1000, 0), 1000 + i));
        }
        let _ = c.finish().count();
        let held = |c: &Coalescer| c.bufs.iter().map(Vec::capacity).sum::<usize>();
        assert!(held(&c) >= 100 * 1040);
        c.trim(16 * 1024);
        assert!(held(&c) <= 16 * 1024, "{}", held(&c));
        assert!(!c.bufs.is_empty());
        // Still works.
        c.push(&v4(0, 0, TCP_ACK, &payload(10, 0), 1));
        assert_eq!(c.finish().count(), 1);
    }

    #[test]
    fn other_packets_pass_unchanged_in_order() {
        let mut c = Coalescer::default();
        let mut udp = v4(1, 0, TCP_ACK, &payload(100, 0), 1);
        udp[9] = 17;
        let frag = {
            let mut f = v4(1, 0, TCP_ACK, &payload(100, 0), 1);
            f[6] = 0x20;
            f
        };
        let junk = vec![0x45, 0, 0];
        for p in [&udp[..], &frag, &junk, &[]] {
            c.push(p);
        }
        let out: Vec<Vec<u8>> = c
            .finish()
            .map(|(q, _)| q[VNET_HDR_LEN..].to_vec())
            .collect();
        assert_eq!(out, vec![udp, frag, junk, vec![]]);
    }

    proptest::proptest! {
        #[test]
        fn any_stream_of_segments_splits_back_to_itself(
            sizes in proptest::collection::vec((1usize..1500, 0u8..4), 1..60),
        ) {
            // Two flows; some segments PSH, some skip ahead.
            let mut c = Coalescer::default();
            let mut seqs = [0u32; 2];
            let mut ids = [0u16; 2];
            let mut per_flow: [Vec<Vec<u8>>; 2] = Default::default();
            for (i, (len, kind)) in sizes.into_iter().enumerate() {
                let f = i % 3 % 2;
                let flags = if kind == 1 { TCP_ACK | TCP_PSH } else { TCP_ACK };
                if kind == 2 {
                    seqs[f] += 7;
                }
                let s = v4(ids[f], seqs[f], flags, &payload(len, i as u8), 10 + f as u16);
                seqs[f] = seqs[f].wrapping_add(len as u32);
                ids[f] = ids[f].wrapping_add(1);
                c.push(&s);
                per_flow[f].push(s);
            }
            let out = split(&mut c);
            let mut got: [Vec<Vec<u8>>; 2] = Default::default();
            for p in out {
                let f = usize::from(u16::from_be_bytes([p[20], p[21]]) - 10);
                got[f].push(p);
            }
            proptest::prop_assert_eq!(got, per_flow);
        }
    }
}
