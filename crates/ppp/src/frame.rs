//! PPP frame encapsulation for a frame-based link (RFC 1661 §2, RFC 1662 §3.1).
//!
//! SSTP carries one PPP frame per SSTP data packet, with no HDLC flags, no
//! byte stuffing and no FCS (MS-SSTP §2.2.1). What remains of the RFC 1662
//! framing is the optional Address/Control pair `FF 03` and the 1- or 2-byte
//! Protocol field.
//!
//! **Receiving** ([`parse`]): we accept frames with and without `FF 03` and with
//! a compressed (1-byte) or full (2-byte) Protocol field, whatever was
//! negotiated — being liberal costs nothing on a frame-based link and some
//! peers send compressed frames before LCP has opened.
//!
//! **Sending** ([`emit_header`]): we always send `FF 03` followed by the full
//! 2-byte Protocol field, and we never request PFC/ACFC. That is what real
//! peers expect on SSTP:
//! * SoftEther's SSTP server requires frames that start with `FF 03` and use
//!   a 2-byte Protocol field, and sends only that form itself (seen on the
//!   wire with `interop/sstp_relay.py`: a full session with our client);
//! * pppd 2.4.9 under sstpc requests PFC and ACFC, yet sends `FF 03` +
//!   2-byte protocols itself and accepts them from us (full sessions with
//!   MS-CHAPv2, CHAP-MD5 and PAP against our server, pinging through);
//! * Windows RAS accepts the uncompressed form in every state, as RFC 1661
//!   §6.5/§6.6 require ("uncompressed frames MUST always be accepted").
//!
//! Protocol field values follow RFC 1661 §2: the least significant bit of the
//! low octet is 1 and of the high octet is 0; anything else is malformed and
//! the frame is silently discarded.

use crate::error::FrameError;

/// Length of the header [`emit_header`] writes: `FF 03` + 2-byte protocol.
pub const HEADER_LEN: usize = 4;

/// The Address and Control octets of RFC 1662 §3.1.
pub const ADDRESS_CONTROL: [u8; 2] = [0xFF, 0x03];

/// PPP protocol numbers (RFC 1661 §2, IANA "PPP DLL Protocol Numbers"); open enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// 0x0021 Internet Protocol version 4.
    Ipv4,
    /// 0x0057 Internet Protocol version 6.
    Ipv6,
    /// 0x8021 IP Control Protocol (RFC 1332).
    Ipcp,
    /// 0x8057 IPv6 Control Protocol (RFC 5072).
    Ipv6cp,
    /// 0x80FD Compression Control Protocol (RFC 1962) — always Protocol-Rejected.
    Ccp,
    /// 0xC021 Link Control Protocol.
    Lcp,
    /// 0xC023 Password Authentication Protocol (RFC 1334).
    Pap,
    /// 0xC223 Challenge Handshake Authentication Protocol (RFC 1994, RFC 2759).
    Chap,
    /// 0xC227 Extensible Authentication Protocol (RFC 3748).
    Eap,
    /// Any other protocol number.
    Unknown(u16),
}

impl From<u16> for Protocol {
    fn from(v: u16) -> Self {
        match v {
            0x0021 => Protocol::Ipv4,
            0x0057 => Protocol::Ipv6,
            0x8021 => Protocol::Ipcp,
            0x8057 => Protocol::Ipv6cp,
            0x80FD => Protocol::Ccp,
            0xC021 => Protocol::Lcp,
            0xC023 => Protocol::Pap,
            0xC223 => Protocol::Chap,
            0xC227 => Protocol::Eap,
            other => Protocol::Unknown(other),
        }
    }
}

impl From<Protocol> for u16 {
    fn from(p: Protocol) -> u16 {
        match p {
            Protocol::Ipv4 => 0x0021,
            Protocol::Ipv6 => 0x0057,
            Protocol::Ipcp => 0x8021,
            Protocol::Ipv6cp => 0x8057,
            Protocol::Ccp => 0x80FD,
            Protocol::Lcp => 0xC021,
            Protocol::Pap => 0xC023,
            Protocol::Chap => 0xC223,
            Protocol::Eap => 0xC227,
            Protocol::Unknown(v) => v,
        }
    }
}

/// A parsed PPP frame: the protocol number and the information field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The protocol carried.
    pub protocol: Protocol,
    /// The information field (padding, if any, included; the protocol decides).
    pub payload: &'a [u8],
}

/// Parses one PPP frame (no flags, no FCS).
pub fn parse(buf: &[u8]) -> Result<Frame<'_>, FrameError> {
    let rest = match buf {
        [0xFF, 0x03, rest @ ..] => rest,
        [0xFF, ..] => return Err(FrameError::BadAddressControl),
        rest => rest,
    };
    let (protocol, payload) = match rest {
        [] => return Err(FrameError::Truncated),
        [b, payload @ ..] if b & 1 == 1 => (u16::from(*b), payload),
        [hi, lo, payload @ ..] => {
            if lo & 1 == 0 || hi & 1 == 1 {
                return Err(FrameError::BadProtocol(u16::from_be_bytes([*hi, *lo])));
            }
            (u16::from_be_bytes([*hi, *lo]), payload)
        }
        [_] => return Err(FrameError::Truncated),
    };
    Ok(Frame {
        protocol: Protocol::from(protocol),
        payload,
    })
}

/// The 4-byte header we put in front of every frame we send: `FF 03 hi lo`.
pub fn header(protocol: Protocol) -> [u8; HEADER_LEN] {
    let p = u16::from(protocol).to_be_bytes();
    [0xFF, 0x03, p[0], p[1]]
}

/// Appends the header for `protocol` to `out`.
pub fn emit_header(protocol: Protocol, out: &mut Vec<u8>) {
    out.extend_from_slice(&header(protocol));
}

/// Builds a complete frame: header + `payload`.
pub fn build(protocol: Protocol, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(HEADER_LEN + payload.len());
    emit_header(protocol, &mut v);
    v.extend_from_slice(payload);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_four_encodings_parse() {
        let full = [0xFF, 0x03, 0xC0, 0x21, 1, 2];
        let no_ac = [0xC0, 0x21, 1, 2];
        let ip_pfc = [0xFF, 0x03, 0x21, 0x45];
        let ip_pfc_no_ac = [0x21, 0x45];
        assert_eq!(
            parse(&full).unwrap(),
            Frame {
                protocol: Protocol::Lcp,
                payload: &[1, 2]
            }
        );
        assert_eq!(
            parse(&no_ac).unwrap(),
            Frame {
                protocol: Protocol::Lcp,
                payload: &[1, 2]
            }
        );
        assert_eq!(
            parse(&ip_pfc).unwrap(),
            Frame {
                protocol: Protocol::Ipv4,
                payload: &[0x45]
            }
        );
        assert_eq!(
            parse(&ip_pfc_no_ac).unwrap(),
            Frame {
                protocol: Protocol::Ipv4,
                payload: &[0x45]
            }
        );
        assert_eq!(parse(&[0x00, 0x57]).unwrap().protocol, Protocol::Ipv6);
    }

    #[test]
    fn malformed_frames_are_errors() {
        assert_eq!(parse(&[]), Err(FrameError::Truncated));
        assert_eq!(parse(&[0xFF, 0x03]), Err(FrameError::Truncated));
        assert_eq!(parse(&[0xFF, 0x03, 0xC0]), Err(FrameError::Truncated));
        assert_eq!(parse(&[0xFF]), Err(FrameError::BadAddressControl));
        assert_eq!(
            parse(&[0xFF, 0x05, 0xC0, 0x21]),
            Err(FrameError::BadAddressControl)
        );
        // low octet even: invalid.
        assert_eq!(parse(&[0xC0, 0x22]), Err(FrameError::BadProtocol(0xC022)));
        // high octet odd with a 2-byte reading is impossible: the first octet
        // being odd means a 1-byte field, so 0x01 0x21 is protocol 0x0001.
        assert_eq!(parse(&[0x01, 0x21]).unwrap().protocol, Protocol::Unknown(1));
    }

    #[test]
    fn emitted_header_is_ff03_and_two_byte_protocol() {
        assert_eq!(header(Protocol::Ipv4), [0xFF, 0x03, 0x00, 0x21]);
        assert_eq!(header(Protocol::Eap), [0xFF, 0x03, 0xC2, 0x27]);
        let f = build(Protocol::Ipv6cp, &[9]);
        assert_eq!(f, vec![0xFF, 0x03, 0x80, 0x57, 9]);
        assert_eq!(
            parse(&f).unwrap(),
            Frame {
                protocol: Protocol::Ipv6cp,
                payload: &[9]
            }
        );
    }

    #[test]
    fn protocol_numbers_round_trip() {
        for v in [
            0x21u16, 0x57, 0x8021, 0x8057, 0x80FD, 0xC021, 0xC023, 0xC223, 0xC227, 0x1234,
        ] {
            assert_eq!(u16::from(Protocol::from(v)), v);
        }
    }
}
