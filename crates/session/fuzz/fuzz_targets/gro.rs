//! The TUN coalescer (`session::gro`) on any packets a peer could send:
//! no panic; every packet it gives is the 10-byte virtio header and at
//! most 65,535 bytes of IP; it accounts for every packet pushed; a joined
//! packet's IP length field is its length, its payload is what the
//! segments carried, in order, and its GSO size is no smaller than any
//! segment after the first.
//!
//! Input: packets, each a 2-byte little-endian length and its bytes. A
//! length with the top bit set asks for the packet to be made well formed
//! first (IP length field and checksums filled in), so that the fuzzer
//! reaches the joining rules, which a random checksum would stop.
#![no_main]

use libfuzzer_sys::fuzz_target;
use session::gro::{Coalescer, VNET_HDR_LEN};

fn well_formed(p: &mut [u8]) {
    let len = p.len();
    match p.first().map(|b| b >> 4) {
        Some(4) if p[0] == 0x45 && len >= 40 => {
            p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            p[9] = 6;
        }
        Some(6) if len >= 60 => {
            p[4..6].copy_from_slice(&((len - 40) as u16).to_be_bytes());
            p[6] = 6;
        }
        _ => return,
    }
    session::ip::fill_tcp_checksum(p);
}

/// The TCP payload of an IPv4 (20-byte header) or IPv6 TCP packet.
fn payload(ip: &[u8]) -> &[u8] {
    let iph = if ip[0] >> 4 == 6 { 40 } else { 20 };
    &ip[iph + usize::from(ip[iph + 12] >> 4) * 4..]
}

fuzz_target!(|data: &[u8]| {
    let mut c = Coalescer::default();
    let mut pushed: Vec<Vec<u8>> = Vec::new();
    let mut rest = data;
    while rest.len() >= 2 {
        let word = u16::from_le_bytes([rest[0], rest[1]]);
        rest = &rest[2..];
        let n = usize::from(word & 0x7fff).min(9000).min(rest.len());
        let mut p = rest[..n].to_vec();
        rest = &rest[n..];
        if word & 0x8000 != 0 {
            well_formed(&mut p);
        }
        c.push(&p);
        pushed.push(p);
    }
    assert_eq!(c.segments(), pushed.len());
    let bytes_in: usize = pushed.iter().map(Vec::len).sum();
    let (mut bytes_out, mut accounted) = (0, 0);
    for (p, segs) in c.finish() {
        assert!(p.len() >= VNET_HDR_LEN && p.len() <= VNET_HDR_LEN + 65535);
        let (ip, segs) = (&p[VNET_HDR_LEN..], usize::from(segs));
        accounted += segs;
        bytes_out += ip.len();
        if p[1] == 0 {
            assert_eq!(segs, 1, "a packet with no GSO is one segment");
            continue;
        }
        assert!(segs > 1);
        let len = if ip[0] >> 4 == 4 {
            usize::from(u16::from_be_bytes([ip[2], ip[3]]))
        } else {
            40 + usize::from(u16::from_be_bytes([ip[4], ip[5]]))
        };
        assert_eq!(len, ip.len(), "IP length field");
        // Each segment after the first repeated the headers; the first
        // set the GSO size, none after it was larger, only the last shorter.
        let hdr_len = usize::from(u16::from_ne_bytes([p[2], p[3]]));
        bytes_out += (segs - 1) * hdr_len;
        let gso = usize::from(u16::from_ne_bytes([p[4], p[5]]));
        let body = payload(ip).len();
        assert!(
            gso + (segs - 1) <= body && body <= segs * gso,
            "{gso} {segs} {body}"
        );
    }
    assert_eq!(accounted, pushed.len(), "every packet accounted for");
    assert_eq!(bytes_out, bytes_in, "no byte lost or made up");
});
