//! The fixed IPv6 header (RFC 8200 §3) as a typed view over bytes, and its
//! representation for emission.
//!
//! IP-HTTPS carries bare IPv6 packets with no framing of its own, so this
//! header is also the framing (MS-IPHTTPS §3.1.5.3, §3.2.5.2): a packet is the
//! 40-byte header plus `Payload Length` bytes. A Payload Length of zero with a
//! Hop-by-Hop header next is a jumbogram (RFC 2675), whose real length sits in
//! an option; IP-HTTPS links have an MTU of 1280 (MS-IPHTTPS §3.1.5.2,
//! §3.2.3), so jumbograms cannot occur on them and are rejected.

use std::net::Ipv6Addr;

/// Length of the fixed IPv6 header.
pub const HEADER_LEN: usize = 40;

/// The minimum link MTU of IPv6 (RFC 8200 §5), and the MTU of an IP-HTTPS
/// link (MS-IPHTTPS §3.1.5.2, §3.2.3).
pub const MIN_MTU: usize = 1280;

/// Largest packet whose length the Payload Length field can express.
pub const MAX_PACKET_LEN: usize = HEADER_LEN + u16::MAX as usize;

/// Next Header value of ICMPv6.
pub const PROTO_ICMPV6: u8 = 58;

/// An IPv6 Next Header value (IANA "Assigned Internet Protocol Numbers").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NextHeader {
    /// 0: Hop-by-Hop Options.
    HopByHop,
    /// 6: TCP.
    Tcp,
    /// 17: UDP.
    Udp,
    /// 43: Routing header.
    Routing,
    /// 44: Fragment header.
    Fragment,
    /// 58: ICMPv6.
    Icmpv6,
    /// 59: No Next Header.
    NoNextHeader,
    /// 60: Destination Options.
    DestinationOptions,
    /// Anything else.
    Unknown(u8),
}

impl From<u8> for NextHeader {
    fn from(v: u8) -> Self {
        match v {
            0 => NextHeader::HopByHop,
            6 => NextHeader::Tcp,
            17 => NextHeader::Udp,
            43 => NextHeader::Routing,
            44 => NextHeader::Fragment,
            PROTO_ICMPV6 => NextHeader::Icmpv6,
            59 => NextHeader::NoNextHeader,
            60 => NextHeader::DestinationOptions,
            other => NextHeader::Unknown(other),
        }
    }
}

impl From<NextHeader> for u8 {
    fn from(v: NextHeader) -> u8 {
        match v {
            NextHeader::HopByHop => 0,
            NextHeader::Tcp => 6,
            NextHeader::Udp => 17,
            NextHeader::Routing => 43,
            NextHeader::Fragment => 44,
            NextHeader::Icmpv6 => PROTO_ICMPV6,
            NextHeader::NoNextHeader => 59,
            NextHeader::DestinationOptions => 60,
            NextHeader::Unknown(other) => other,
        }
    }
}

/// Why bytes are not one well-formed IPv6 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Ipv6Error {
    /// Fewer than the 40 bytes of the fixed header.
    #[error("{len} bytes is shorter than the 40-byte IPv6 header")]
    Truncated {
        /// Bytes available.
        len: usize,
    },
    /// The version field is not 6.
    #[error("IP version {version}, not 6")]
    Version {
        /// The version nibble.
        version: u8,
    },
    /// Payload Length 0 with a Hop-by-Hop header: a jumbogram (RFC 2675).
    #[error("jumbogram (payload length 0 with a hop-by-hop header)")]
    Jumbogram,
    /// The buffer length differs from 40 + Payload Length.
    #[error("payload length says {declared} bytes in all, the packet has {actual}")]
    LengthMismatch {
        /// 40 + Payload Length.
        declared: usize,
        /// Bytes actually present.
        actual: usize,
    },
}

/// A read-only view of an IPv6 packet whose length matches its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Checks that `buffer` is exactly one IPv6 packet: at least 40 bytes,
    /// version 6, not a jumbogram, and 40 + Payload Length bytes long.
    pub fn new_checked(buffer: T) -> Result<Self, Ipv6Error> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            // Report the version first when we can: garbage is better
            // described as "not IPv6" than as "short".
            if let Some(&first) = b.first() {
                if first >> 4 != 6 {
                    return Err(Ipv6Error::Version {
                        version: first >> 4,
                    });
                }
            }
            return Err(Ipv6Error::Truncated { len: b.len() });
        }
        if b[0] >> 4 != 6 {
            return Err(Ipv6Error::Version { version: b[0] >> 4 });
        }
        let payload_len = usize::from(u16::from_be_bytes([b[4], b[5]]));
        if payload_len == 0 && b[6] == 0 {
            return Err(Ipv6Error::Jumbogram);
        }
        let declared = HEADER_LEN + payload_len;
        if declared != b.len() {
            return Err(Ipv6Error::LengthMismatch {
                declared,
                actual: b.len(),
            });
        }
        Ok(Ipv6Packet { buffer })
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The whole packet.
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Traffic Class.
    pub fn traffic_class(&self) -> u8 {
        (self.b()[0] << 4) | (self.b()[1] >> 4)
    }

    /// Flow Label (20 bits).
    pub fn flow_label(&self) -> u32 {
        u32::from_be_bytes([0, self.b()[1] & 0x0f, self.b()[2], self.b()[3]])
    }

    /// Payload Length.
    pub fn payload_len(&self) -> u16 {
        u16::from_be_bytes([self.b()[4], self.b()[5]])
    }

    /// Next Header.
    pub fn next_header(&self) -> NextHeader {
        NextHeader::from(self.b()[6])
    }

    /// Hop Limit.
    pub fn hop_limit(&self) -> u8 {
        self.b()[7]
    }

    /// Source Address.
    pub fn src_addr(&self) -> Ipv6Addr {
        addr_at(self.b(), 8)
    }

    /// Destination Address.
    pub fn dst_addr(&self) -> Ipv6Addr {
        addr_at(self.b(), 24)
    }

    /// Everything after the fixed header.
    pub fn payload(&self) -> &[u8] {
        &self.b()[HEADER_LEN..]
    }
}

fn addr_at(b: &[u8], at: usize) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o.copy_from_slice(&b[at..at + 16]);
    Ipv6Addr::from(o)
}

/// The fields of a fixed IPv6 header, for emission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6Repr {
    /// Source Address.
    pub src: Ipv6Addr,
    /// Destination Address.
    pub dst: Ipv6Addr,
    /// Next Header.
    pub next_header: NextHeader,
    /// Payload Length.
    pub payload_len: u16,
    /// Hop Limit.
    pub hop_limit: u8,
    /// Traffic Class.
    pub traffic_class: u8,
    /// Flow Label; only the low 20 bits are emitted.
    pub flow_label: u32,
}

impl Ipv6Repr {
    /// Reads the header of a checked packet.
    pub fn parse<T: AsRef<[u8]>>(p: &Ipv6Packet<T>) -> Self {
        Ipv6Repr {
            src: p.src_addr(),
            dst: p.dst_addr(),
            next_header: p.next_header(),
            payload_len: p.payload_len(),
            hop_limit: p.hop_limit(),
            traffic_class: p.traffic_class(),
            flow_label: p.flow_label(),
        }
    }

    /// Bytes [`Ipv6Repr::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header.
    pub fn emit(&self, out: &mut [u8; HEADER_LEN]) {
        let fl = self.flow_label & 0x000f_ffff;
        out[0] = 0x60 | (self.traffic_class >> 4);
        out[1] = (self.traffic_class << 4) | (fl >> 16) as u8;
        out[2] = (fl >> 8) as u8;
        out[3] = fl as u8;
        out[4..6].copy_from_slice(&self.payload_len.to_be_bytes());
        out[6] = self.next_header.into();
        out[7] = self.hop_limit;
        out[8..24].copy_from_slice(&self.src.octets());
        out[24..40].copy_from_slice(&self.dst.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        // Traffic class 0xab, flow label 0x12345, payload 3 bytes of UDP.
        let mut p = vec![
            0x6a, 0xb1, 0x23, 0x45, 0x00, 0x03, 17, 64, // fixed part
        ];
        p.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        p.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
        p.extend_from_slice(&[1, 2, 3]);
        p
    }

    #[test]
    fn view_reads_every_field() {
        let bytes = sample();
        let p = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.traffic_class(), 0xab);
        assert_eq!(p.flow_label(), 0x12345);
        assert_eq!(p.payload_len(), 3);
        assert_eq!(p.next_header(), NextHeader::Udp);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src_addr(), "2001:db8::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.dst_addr(), "2001:db8::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.payload(), &[1, 2, 3]);
    }

    #[test]
    fn repr_round_trips_into_a5_buffer() {
        let bytes = sample();
        let p = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        let r = Ipv6Repr::parse(&p);
        let mut out = [0xa5u8; HEADER_LEN];
        r.emit(&mut out);
        assert_eq!(&out[..], &bytes[..HEADER_LEN]);
        assert_eq!(r.buffer_len(), HEADER_LEN);
    }

    #[test]
    fn flow_label_is_masked_to_20_bits() {
        let r = Ipv6Repr {
            src: Ipv6Addr::UNSPECIFIED,
            dst: Ipv6Addr::UNSPECIFIED,
            next_header: NextHeader::NoNextHeader,
            payload_len: 0,
            hop_limit: 1,
            traffic_class: 0,
            flow_label: 0xfff0_0001,
        };
        let mut out = [0xa5u8; HEADER_LEN];
        r.emit(&mut out);
        assert_eq!(&out[..4], &[0x60, 0x00, 0x00, 0x01]);
    }

    #[test]
    fn rejects_truncated_wrong_version_jumbo_and_length_mismatch() {
        let bytes = sample();
        assert_eq!(
            Ipv6Packet::new_checked(&bytes[..39]),
            Err(Ipv6Error::Truncated { len: 39 })
        );
        assert_eq!(
            Ipv6Packet::new_checked(&[][..]),
            Err(Ipv6Error::Truncated { len: 0 })
        );
        assert_eq!(
            Ipv6Packet::new_checked(&b"GET / HTTP/1.1"[..]),
            Err(Ipv6Error::Version { version: 4 })
        );
        let mut v4 = bytes.clone();
        v4[0] = 0x45;
        assert_eq!(
            Ipv6Packet::new_checked(&v4[..]),
            Err(Ipv6Error::Version { version: 4 })
        );
        assert_eq!(
            Ipv6Packet::new_checked(&bytes[..42]),
            Err(Ipv6Error::LengthMismatch {
                declared: 43,
                actual: 42
            })
        );
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            Ipv6Packet::new_checked(&longer[..]),
            Err(Ipv6Error::LengthMismatch {
                declared: 43,
                actual: 44
            })
        );
        let mut jumbo = bytes[..HEADER_LEN].to_vec();
        jumbo[4] = 0;
        jumbo[5] = 0;
        jumbo[6] = 0;
        assert_eq!(
            Ipv6Packet::new_checked(&jumbo[..]),
            Err(Ipv6Error::Jumbogram)
        );
        // Payload length 0 with No Next Header is a valid 40-byte packet.
        jumbo[6] = 59;
        assert!(Ipv6Packet::new_checked(&jumbo[..]).is_ok());
    }

    #[test]
    fn next_header_is_open() {
        for v in 0..=255u8 {
            assert_eq!(u8::from(NextHeader::from(v)), v);
        }
        assert_eq!(NextHeader::from(253), NextHeader::Unknown(253));
    }
}
