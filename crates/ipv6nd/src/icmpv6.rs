//! ICMPv6 (RFC 4443): message types, a checked view of the 4-byte header,
//! whole-packet builders for Echo Request/Reply (§4.1, §4.2) and Packet Too
//! Big (§3.2).
//!
//! Packet Too Big matters on the IP-HTTPS server: all sessions share one TUN
//! device whose MTU may exceed the 1280 of an IP-HTTPS link (MS-IPHTTPS
//! §3.2.3), so a larger packet routed towards a client must be answered, as a
//! router would, with Packet Too Big (MTU 1280) rather than silently dropped.

use std::net::Ipv6Addr;

use crate::checksum;
use crate::ipv6::{Ipv6Packet, Ipv6Repr, NextHeader, HEADER_LEN, MIN_MTU};

/// Hop limit of locally originated packets (the usual default).
pub const DEFAULT_HOP_LIMIT: u8 = 64;

/// An ICMPv6 message type (IANA "ICMPv6 Parameters").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Icmpv6Type {
    /// 1
    DestinationUnreachable,
    /// 2
    PacketTooBig,
    /// 3
    TimeExceeded,
    /// 4
    ParameterProblem,
    /// 128
    EchoRequest,
    /// 129
    EchoReply,
    /// 133 (RFC 4861 §4.1)
    RouterSolicitation,
    /// 134 (RFC 4861 §4.2)
    RouterAdvertisement,
    /// 135 (RFC 4861 §4.3)
    NeighborSolicitation,
    /// 136 (RFC 4861 §4.4)
    NeighborAdvertisement,
    /// 137 (RFC 4861 §4.5)
    Redirect,
    /// Anything else.
    Unknown(u8),
}

impl From<u8> for Icmpv6Type {
    fn from(v: u8) -> Self {
        match v {
            1 => Icmpv6Type::DestinationUnreachable,
            2 => Icmpv6Type::PacketTooBig,
            3 => Icmpv6Type::TimeExceeded,
            4 => Icmpv6Type::ParameterProblem,
            128 => Icmpv6Type::EchoRequest,
            129 => Icmpv6Type::EchoReply,
            133 => Icmpv6Type::RouterSolicitation,
            134 => Icmpv6Type::RouterAdvertisement,
            135 => Icmpv6Type::NeighborSolicitation,
            136 => Icmpv6Type::NeighborAdvertisement,
            137 => Icmpv6Type::Redirect,
            other => Icmpv6Type::Unknown(other),
        }
    }
}

impl From<Icmpv6Type> for u8 {
    fn from(v: Icmpv6Type) -> u8 {
        match v {
            Icmpv6Type::DestinationUnreachable => 1,
            Icmpv6Type::PacketTooBig => 2,
            Icmpv6Type::TimeExceeded => 3,
            Icmpv6Type::ParameterProblem => 4,
            Icmpv6Type::EchoRequest => 128,
            Icmpv6Type::EchoReply => 129,
            Icmpv6Type::RouterSolicitation => 133,
            Icmpv6Type::RouterAdvertisement => 134,
            Icmpv6Type::NeighborSolicitation => 135,
            Icmpv6Type::NeighborAdvertisement => 136,
            Icmpv6Type::Redirect => 137,
            Icmpv6Type::Unknown(other) => other,
        }
    }
}

impl Icmpv6Type {
    /// Error messages have types 0..=127 (RFC 4443 §2.1).
    pub fn is_error(self) -> bool {
        u8::from(self) < 128
    }
}

/// Why bytes are not a usable ICMPv6 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Icmpv6Error {
    /// The IPv6 packet does not carry ICMPv6 directly (extension headers are
    /// not followed).
    #[error("next header {0:?} is not ICMPv6")]
    NotIcmpv6(NextHeader),
    /// Shorter than the message type needs.
    #[error("{len}-byte message is shorter than {need} bytes")]
    Truncated {
        /// Bytes present.
        len: usize,
        /// Bytes required.
        need: usize,
    },
    /// The checksum does not verify.
    #[error("bad ICMPv6 checksum")]
    Checksum,
}

/// A view of an ICMPv6 message (the IPv6 payload) of at least 4 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Icmpv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    /// Checks that the 4-byte header is present.
    pub fn new_checked(buffer: T) -> Result<Self, Icmpv6Error> {
        let len = buffer.as_ref().len();
        if len < 4 {
            return Err(Icmpv6Error::Truncated { len, need: 4 });
        }
        Ok(Icmpv6Packet { buffer })
    }

    /// Type.
    pub fn msg_type(&self) -> Icmpv6Type {
        Icmpv6Type::from(self.buffer.as_ref()[0])
    }

    /// Code.
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[1]
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[2], b[3]])
    }

    /// Whether the checksum verifies for these addresses.
    pub fn verify_checksum(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        checksum::verify_icmpv6(src, dst, self.buffer.as_ref())
    }

    /// The message after the 4-byte header.
    pub fn body(&self) -> &[u8] {
        &self.buffer.as_ref()[4..]
    }

    /// The whole message.
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// The ICMPv6 message carried by an IPv6 packet, checksum verified.
pub fn icmpv6_of<'a>(ip: &Ipv6Packet<&'a [u8]>) -> Result<Icmpv6Packet<&'a [u8]>, Icmpv6Error> {
    if ip.next_header() != NextHeader::Icmpv6 {
        return Err(Icmpv6Error::NotIcmpv6(ip.next_header()));
    }
    let m = Icmpv6Packet::new_checked(&ip.into_inner()[HEADER_LEN..])?;
    if !m.verify_checksum(&ip.src_addr(), &ip.dst_addr()) {
        return Err(Icmpv6Error::Checksum);
    }
    Ok(m)
}

/// The ICMPv6 type of `packet` if it is IPv6 carrying ICMPv6 directly,
/// without checking anything else: a cheap first look for drivers that
/// divert Router Advertisements (client) or Router/Neighbor Solicitations
/// (server) before parsing them fully.
pub fn message_type(packet: &[u8]) -> Option<Icmpv6Type> {
    if packet.len() <= HEADER_LEN || packet[0] >> 4 != 6 || packet[6] != crate::ipv6::PROTO_ICMPV6 {
        return None;
    }
    Some(Icmpv6Type::from(packet[HEADER_LEN]))
}

/// Builds a complete IPv6 packet carrying the ICMPv6 message `message`
/// (whose checksum field is overwritten). `message` must be at least 4
/// bytes and at most 65535 bytes; callers in this crate guarantee it.
pub(crate) fn build_packet(src: Ipv6Addr, dst: Ipv6Addr, hop_limit: u8, message: &[u8]) -> Vec<u8> {
    debug_assert!(message.len() >= 4 && message.len() <= usize::from(u16::MAX));
    let payload_len = u16::try_from(message.len()).unwrap_or(u16::MAX);
    let mut out = vec![0u8; HEADER_LEN + usize::from(payload_len)];
    let (hdr, body) = out.split_at_mut(HEADER_LEN);
    let hdr: &mut [u8; HEADER_LEN] = hdr.try_into().expect("split at HEADER_LEN");
    Ipv6Repr {
        src,
        dst,
        next_header: NextHeader::Icmpv6,
        payload_len,
        hop_limit,
        traffic_class: 0,
        flow_label: 0,
    }
    .emit(hdr);
    body.copy_from_slice(&message[..body.len()]);
    checksum::fill_icmpv6(&src, &dst, body);
    out
}

/// An Echo Request or Echo Reply (RFC 4443 §4.1, §4.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Echo {
    /// Reply rather than request.
    pub reply: bool,
    /// Identifier.
    pub ident: u16,
    /// Sequence Number.
    pub seq: u16,
    /// Data.
    pub data: Vec<u8>,
}

/// Largest echo data that fits a 1280-byte packet.
pub const MAX_ECHO_DATA: usize = MIN_MTU - HEADER_LEN - 8;

impl Echo {
    /// A whole IPv6 packet carrying this echo message, or `None` if the data
    /// would make it exceed 1280 bytes.
    pub fn build(&self, src: Ipv6Addr, dst: Ipv6Addr, hop_limit: u8) -> Option<Vec<u8>> {
        if self.data.len() > MAX_ECHO_DATA {
            return None;
        }
        let mut m = Vec::with_capacity(8 + self.data.len());
        m.push(if self.reply { 129 } else { 128 });
        m.push(0);
        m.extend_from_slice(&[0, 0]);
        m.extend_from_slice(&self.ident.to_be_bytes());
        m.extend_from_slice(&self.seq.to_be_bytes());
        m.extend_from_slice(&self.data);
        Some(build_packet(src, dst, hop_limit, &m))
    }

    /// Reads an echo message from an IPv6 packet (checksum verified, code
    /// 0). `Ok(None)` for other ICMPv6 messages.
    pub fn parse(ip: &Ipv6Packet<&[u8]>) -> Result<Option<Echo>, Icmpv6Error> {
        let m = icmpv6_of(ip)?;
        let reply = match m.msg_type() {
            Icmpv6Type::EchoRequest => false,
            Icmpv6Type::EchoReply => true,
            _ => return Ok(None),
        };
        if m.code() != 0 {
            return Ok(None);
        }
        let b = m.body();
        if b.len() < 4 {
            return Err(Icmpv6Error::Truncated {
                len: m.as_bytes().len(),
                need: 8,
            });
        }
        Ok(Some(Echo {
            reply,
            ident: u16::from_be_bytes([b[0], b[1]]),
            seq: u16::from_be_bytes([b[2], b[3]]),
            data: b[4..].to_vec(),
        }))
    }
}

/// Builds Packet Too Big (RFC 4443 §3.2) from router address `src` back to
/// the source of `offending`, carrying as much of it as fits in 1280 bytes.
///
/// Returns `None` where RFC 4443 §2.4 (e) forbids an error message: when
/// `offending` is itself an ICMPv6 error, or its source is unspecified,
/// multicast or loopback. (Packet Too Big is allowed for multicast
/// destinations, §2.4 (e.3).) Rate limiting (§2.4 (f)) is the caller's.
pub fn packet_too_big(src: Ipv6Addr, offending: &[u8], mtu: u32) -> Option<Vec<u8>> {
    if offending.len() < HEADER_LEN || offending[0] >> 4 != 6 {
        return None;
    }
    let mut a = [0u8; 16];
    a.copy_from_slice(&offending[8..24]);
    let dst = Ipv6Addr::from(a);
    if dst.is_unspecified() || dst.is_multicast() || dst.is_loopback() {
        return None;
    }
    if offending[6] == crate::ipv6::PROTO_ICMPV6 {
        match offending.get(HEADER_LEN) {
            Some(&t) if Icmpv6Type::from(t).is_error() => return None,
            _ => {}
        }
    }
    let room = MIN_MTU - HEADER_LEN - 8;
    let quoted = &offending[..offending.len().min(room)];
    let mut m = Vec::with_capacity(8 + quoted.len());
    m.extend_from_slice(&[2, 0, 0, 0]);
    m.extend_from_slice(&mtu.to_be_bytes());
    m.extend_from_slice(quoted);
    Some(build_packet(src, dst, DEFAULT_HOP_LIMIT, &m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn echo_request_vector() {
        // Echo Request 2001:db8::1 -> 2001:db8::2, id 0x1234, seq 1, "hi".
        // Checksum cross-checked with Python (one's complement sum of the
        // 16-bit words, end-around carry, complemented):
        //   pseudo-header 2001+0db8+0001 + 2001+0db8+0002 + 000a (length)
        //   + 003a (next header), message 8000 + 0000 + 1234 + 0001 + 6869
        //   = 0x15657 -> fold 0x5658 -> checksum !0x5658 = 0xa9a7.
        let p = Echo {
            reply: false,
            ident: 0x1234,
            seq: 1,
            data: b"hi".to_vec(),
        }
        .build(a("2001:db8::1"), a("2001:db8::2"), 64)
        .unwrap();
        let mut want = vec![0x60, 0, 0, 0, 0, 10, 58, 64];
        want.extend_from_slice(&a("2001:db8::1").octets());
        want.extend_from_slice(&a("2001:db8::2").octets());
        want.extend_from_slice(&[128, 0, 0xa9, 0xa7, 0x12, 0x34, 0, 1, b'h', b'i']);
        assert_eq!(p, want);
        let ip = Ipv6Packet::new_checked(&p[..]).unwrap();
        let e = Echo::parse(&ip).unwrap().unwrap();
        assert_eq!(
            (e.reply, e.ident, e.seq, &e.data[..]),
            (false, 0x1234, 1, &b"hi"[..])
        );
    }

    #[test]
    fn echo_parse_rejects_bad_checksum_and_truncation() {
        let mut p = Echo {
            reply: true,
            ident: 7,
            seq: 9,
            data: vec![],
        }
        .build(a("fe80::1"), a("fe80::2"), 64)
        .unwrap();
        p[HEADER_LEN + 4] ^= 0xff;
        let ip = Ipv6Packet::new_checked(&p[..]).unwrap();
        assert_eq!(Echo::parse(&ip), Err(Icmpv6Error::Checksum));
        // A 6-byte echo message with a correct checksum.
        let m = [129u8, 0, 0, 0, 0, 1];
        let q = build_packet(a("fe80::1"), a("fe80::2"), 64, &m);
        let ip = Ipv6Packet::new_checked(&q[..]).unwrap();
        assert_eq!(
            Echo::parse(&ip),
            Err(Icmpv6Error::Truncated { len: 6, need: 8 })
        );
        assert!(Echo {
            reply: false,
            ident: 0,
            seq: 0,
            data: vec![0; MAX_ECHO_DATA + 1]
        }
        .build(a("::1"), a("::1"), 1)
        .is_none());
    }

    #[test]
    fn packet_too_big_quotes_and_fits_1280() {
        let mut big = Echo {
            reply: false,
            ident: 1,
            seq: 1,
            data: vec![0x5a; 1400],
        };
        big.data.truncate(MAX_ECHO_DATA);
        let mut offending = big
            .build(a("2001:db8:1::5"), a("2001:db8:2::7"), 63)
            .unwrap();
        // Make it larger than 1280 by hand (as if from a 1500-MTU TUN).
        offending.extend_from_slice(&[0x5a; 200]);
        let len = (offending.len() - HEADER_LEN) as u16;
        offending[4..6].copy_from_slice(&len.to_be_bytes());
        let ptb = packet_too_big(a("fe80::1"), &offending, 1280).unwrap();
        assert_eq!(ptb.len(), MIN_MTU);
        let ip = Ipv6Packet::new_checked(&ptb[..]).unwrap();
        assert_eq!(ip.dst_addr(), a("2001:db8:1::5"));
        let m = icmpv6_of(&ip).unwrap();
        assert_eq!((m.msg_type(), m.code()), (Icmpv6Type::PacketTooBig, 0));
        assert_eq!(&m.body()[..4], &1280u32.to_be_bytes());
        assert_eq!(&m.body()[4..], &offending[..MIN_MTU - 48]);
    }

    #[test]
    fn packet_too_big_suppressed_where_rfc4443_forbids() {
        let err = packet_too_big(a("fe80::1"), &[0u8; 40], 1280);
        assert!(err.is_none(), "not IPv6");
        let echo = Echo {
            reply: false,
            ident: 0,
            seq: 0,
            data: vec![],
        };
        for src in ["::", "ff02::1", "::1"] {
            let p = echo.build(a(src), a("2001:db8::1"), 64).unwrap();
            assert!(packet_too_big(a("fe80::1"), &p, 1280).is_none(), "{src}");
        }
        let p = echo.build(a("2001:db8::2"), a("2001:db8::1"), 64).unwrap();
        let ptb = packet_too_big(a("fe80::1"), &p, 1280).unwrap();
        // ... but not in response to that error itself.
        assert!(packet_too_big(a("fe80::1"), &ptb, 1280).is_none());
        // Packet Too Big is allowed for a multicast destination.
        let p = echo.build(a("2001:db8::2"), a("ff05::1"), 64).unwrap();
        assert!(packet_too_big(a("fe80::1"), &p, 1280).is_some());
    }

    #[test]
    fn message_type_peeks() {
        let p = Echo {
            reply: false,
            ident: 0,
            seq: 0,
            data: vec![],
        }
        .build(a("fe80::1"), a("fe80::2"), 64)
        .unwrap();
        assert_eq!(message_type(&p), Some(Icmpv6Type::EchoRequest));
        assert_eq!(message_type(&p[..HEADER_LEN]), None);
        let mut udp = p.clone();
        udp[6] = 17;
        assert_eq!(message_type(&udp), None);
        let mut v4 = p;
        v4[0] = 0x45;
        assert_eq!(message_type(&v4), None);
    }

    #[test]
    fn types_are_open() {
        for v in 0..=255u8 {
            assert_eq!(u8::from(Icmpv6Type::from(v)), v);
        }
        assert!(Icmpv6Type::PacketTooBig.is_error());
        assert!(!Icmpv6Type::EchoRequest.is_error());
        assert!(Icmpv6Packet::new_checked(&[1u8, 2, 3][..]).is_err());
    }
}
