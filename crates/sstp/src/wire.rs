//! SSTP wire format (MS-SSTP §2.2): the packet header (§2.2.1), control
//! packets (§2.2.2), data packets (§2.2.3) and attributes (§2.2.4–§2.2.8).
//!
//! Parsing is in two steps: [`Packet::parse`] checks the header and, for a
//! control packet, the attribute list as a bounded TLV sequence (every
//! length checked against the buffer, the count must match, no trailing
//! bytes). Attribute *values* are interpreted later by [`Attribute::decode`],
//! because what a bad value means depends on the message (a NAK for a Call
//! Connect Request, an abort otherwise, §3.3.5.2.2). Reserved bits are
//! ignored on receipt and zero on send. Nothing here can panic on peer input.

use std::fmt;

/// `Version` field: major 1, minor 0.
pub const VERSION: u8 = 0x10;
/// Header length (Version, Reserved/C, LengthPacket).
pub const HEADER_LEN: usize = 4;
/// The 12-bit length field's maximum (whole packet).
pub const MAX_PACKET: usize = 0x0fff;
/// Largest PPP frame a data packet carries.
pub const MAX_PAYLOAD: usize = MAX_PACKET - HEADER_LEN;
/// `SSTP_ENCAPSULATED_PROTOCOL_PPP` (§2.2.5).
pub const PROTOCOL_PPP: u16 = 0x0001;
/// Largest AttribValue we keep in a Status Info (§2.2.8: up to 64 bytes).
pub const MAX_STATUS_VALUE: usize = 64;

/// `CERT_HASH_PROTOCOL_SHA1` (§2.2.6).
pub const HASH_SHA1: u8 = 0x01;
/// `CERT_HASH_PROTOCOL_SHA256` (§2.2.6).
pub const HASH_SHA256: u8 = 0x02;

/// Errors in the bytes of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    #[error("packet shorter than its header or length field")]
    Truncated,
    #[error("unsupported SSTP version {0:#04x}")]
    Version(u8),
    #[error("length field {0} is smaller than the header")]
    BadLength(usize),
    #[error("control packet too short for a message header")]
    ShortControl,
    #[error("attribute {index} overruns the packet")]
    AttributeOverrun { index: usize },
    #[error("attribute {index} has length {len}, below its 4-byte header")]
    AttributeLength { index: usize, len: usize },
    #[error("{count} attributes announced, {found} present")]
    AttributeCount { count: usize, found: usize },
    #[error("{0} bytes after the last attribute")]
    TrailingBytes(usize),
    #[error("payload of {0} bytes does not fit a 12-bit length")]
    TooLong(usize),
}

macro_rules! open_enum {
    ($(#[$m:meta])* $name:ident : $t:ty { $($(#[$vm:meta])* $v:ident = $n:expr),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $v,)* Unknown($t) }
        impl From<$t> for $name {
            fn from(x: $t) -> Self { match x { $($n => Self::$v,)* other => Self::Unknown(other) } }
        }
        impl From<$name> for $t {
            fn from(x: $name) -> $t { match x { $($name::$v => $n,)* $name::Unknown(o) => o } }
        }
    };
}

open_enum!(
    /// Control message types (§2.2.2).
    MessageType: u16 {
        CallConnectRequest = 0x0001,
        CallConnectAck = 0x0002,
        CallConnectNak = 0x0003,
        CallConnected = 0x0004,
        CallAbort = 0x0005,
        CallDisconnect = 0x0006,
        CallDisconnectAck = 0x0007,
        EchoRequest = 0x0008,
        EchoResponse = 0x0009,
    }
);

open_enum!(
    /// Attribute IDs (§2.2.4; 0 is `SSTP_ATTRIB_NO_ERROR` in Status Info).
    AttributeId: u8 {
        NoError = 0x00,
        EncapsulatedProtocolId = 0x01,
        StatusInfo = 0x02,
        CryptoBinding = 0x03,
        CryptoBindingReq = 0x04,
    }
);

open_enum!(
    /// Status values of the Status Info attribute (§2.2.8).
    Status: u32 {
        NoError = 0x0,
        DuplicateAttribute = 0x1,
        UnrecognizedAttribute = 0x2,
        InvalidAttribValueLength = 0x3,
        ValueNotSupported = 0x4,
        UnacceptedFrameReceived = 0x5,
        RetryCountExceeded = 0x6,
        InvalidFrameReceived = 0x7,
        NegotiationTimeout = 0x8,
        AttribNotSupportedInMsg = 0x9,
        RequiredAttributeMissing = 0xa,
        StatusInfoNotSupportedInMsg = 0xb,
    }
);

/// One SSTP packet, borrowed from the receive buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet<'a> {
    /// A data packet: its payload is one PPP frame.
    Data(&'a [u8]),
    /// A control packet.
    Control(ControlMessage<'a>),
}

/// A control message with its attributes still raw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlMessage<'a> {
    pub message_type: MessageType,
    pub attributes: Vec<RawAttribute<'a>>,
}

/// An attribute: its ID and value (the bytes after the 4-byte header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawAttribute<'a> {
    pub id: AttributeId,
    pub value: &'a [u8],
}

/// Reads the 12-bit length of a packet header; `None` if fewer than 4 bytes.
pub fn peek_length(buf: &[u8]) -> Option<Result<usize, WireError>> {
    if buf.len() < HEADER_LEN {
        return None;
    }
    if buf[0] != VERSION {
        return Some(Err(WireError::Version(buf[0])));
    }
    let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]) & 0x0fff);
    if len < HEADER_LEN {
        return Some(Err(WireError::BadLength(len)));
    }
    Some(Ok(len))
}

impl<'a> Packet<'a> {
    /// Parses exactly one packet; `buf` must hold the whole packet and
    /// nothing else.
    pub fn parse(buf: &'a [u8]) -> Result<Self, WireError> {
        let len = peek_length(buf).ok_or(WireError::Truncated)??;
        if buf.len() < len {
            return Err(WireError::Truncated);
        }
        if buf.len() > len {
            return Err(WireError::TrailingBytes(buf.len() - len));
        }
        let body = &buf[HEADER_LEN..len];
        if buf[1] & 0x01 == 0 {
            return Ok(Packet::Data(body));
        }
        if body.len() < 4 {
            return Err(WireError::ShortControl);
        }
        let message_type = MessageType::from(u16::from_be_bytes([body[0], body[1]]));
        let count = usize::from(u16::from_be_bytes([body[2], body[3]]));
        let mut rest = &body[4..];
        // Each attribute takes at least 4 bytes: bound the allocation by the buffer.
        let mut attributes = Vec::with_capacity(count.min(rest.len() / 4));
        while !rest.is_empty() {
            let index = attributes.len();
            if rest.len() < 4 {
                return Err(WireError::AttributeOverrun { index });
            }
            let alen = usize::from(u16::from_be_bytes([rest[2], rest[3]]) & 0x0fff);
            if alen < 4 {
                return Err(WireError::AttributeLength { index, len: alen });
            }
            if alen > rest.len() {
                return Err(WireError::AttributeOverrun { index });
            }
            if attributes.len() == count {
                return Err(WireError::TrailingBytes(rest.len()));
            }
            attributes.push(RawAttribute {
                id: AttributeId::from(rest[1]),
                value: &rest[4..alen],
            });
            rest = &rest[alen..];
        }
        if attributes.len() != count {
            return Err(WireError::AttributeCount {
                count,
                found: attributes.len(),
            });
        }
        Ok(Packet::Control(ControlMessage {
            message_type,
            attributes,
        }))
    }
}

/// A Status Info attribute's content (§2.2.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusInfo {
    /// The attribute the status is about.
    pub attrib_id: AttributeId,
    pub status: Status,
    /// The offending value (at most 64 bytes are kept and sent).
    pub value: Vec<u8>,
}

impl StatusInfo {
    pub fn new(attrib_id: AttributeId, status: Status) -> Self {
        Self {
            attrib_id,
            status,
            value: Vec::new(),
        }
    }
    pub fn with_value(mut self, v: &[u8]) -> Self {
        self.value = v[..v.len().min(MAX_STATUS_VALUE)].to_vec();
        self
    }
}

impl fmt::Display for StatusInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} (attribute {:?})", self.status, self.attrib_id)
    }
}

/// The Crypto Binding attribute (§2.2.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CryptoBinding {
    pub hash_protocol: u8,
    pub nonce: [u8; 32],
    /// SHA-1 hashes use the first 20 bytes (the rest is padding).
    pub cert_hash: [u8; 32],
    /// HMAC-SHA1 MACs use the first 20 bytes (the rest is padding).
    pub compound_mac: [u8; 32],
}

/// A decoded attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    EncapsulatedProtocolId(u16),
    StatusInfo(StatusInfo),
    CryptoBindingReq { hash_bitmask: u8, nonce: [u8; 32] },
    CryptoBinding(CryptoBinding),
}

/// Why an attribute value did not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttributeError {
    #[error("attribute {0:?}: wrong length")]
    Length(AttributeId),
    #[error("attribute {0:?}: not recognized")]
    Unrecognized(AttributeId),
}

fn arr32(b: &[u8]) -> [u8; 32] {
    let mut a = [0u8; 32];
    a.copy_from_slice(&b[..32]);
    a
}

impl Attribute {
    /// Interprets a raw attribute; the value length must be exactly the
    /// one its section gives (Status Info: 8 plus up to 64 bytes kept).
    pub fn decode(raw: &RawAttribute<'_>) -> Result<Self, AttributeError> {
        let v = raw.value;
        match raw.id {
            AttributeId::EncapsulatedProtocolId => {
                if v.len() != 2 {
                    return Err(AttributeError::Length(raw.id));
                }
                Ok(Attribute::EncapsulatedProtocolId(u16::from_be_bytes([
                    v[0], v[1],
                ])))
            }
            AttributeId::StatusInfo => {
                if v.len() < 8 {
                    return Err(AttributeError::Length(raw.id));
                }
                Ok(Attribute::StatusInfo(
                    StatusInfo::new(
                        AttributeId::from(v[3]),
                        Status::from(u32::from_be_bytes([v[4], v[5], v[6], v[7]])),
                    )
                    .with_value(&v[8..]),
                ))
            }
            AttributeId::CryptoBindingReq => {
                if v.len() != 36 {
                    return Err(AttributeError::Length(raw.id));
                }
                Ok(Attribute::CryptoBindingReq {
                    hash_bitmask: v[3],
                    nonce: arr32(&v[4..]),
                })
            }
            AttributeId::CryptoBinding => {
                if v.len() != 100 {
                    return Err(AttributeError::Length(raw.id));
                }
                Ok(Attribute::CryptoBinding(CryptoBinding {
                    hash_protocol: v[3],
                    nonce: arr32(&v[4..36]),
                    cert_hash: arr32(&v[36..68]),
                    compound_mac: arr32(&v[68..100]),
                }))
            }
            other => Err(AttributeError::Unrecognized(other)),
        }
    }

    /// Length of the attribute on the wire, header included.
    pub fn buffer_len(&self) -> usize {
        4 + match self {
            Attribute::EncapsulatedProtocolId(_) => 2,
            Attribute::StatusInfo(s) => 8 + s.value.len().min(MAX_STATUS_VALUE),
            Attribute::CryptoBindingReq { .. } => 36,
            Attribute::CryptoBinding(_) => 100,
        }
    }

    fn id(&self) -> AttributeId {
        match self {
            Attribute::EncapsulatedProtocolId(_) => AttributeId::EncapsulatedProtocolId,
            Attribute::StatusInfo(_) => AttributeId::StatusInfo,
            Attribute::CryptoBindingReq { .. } => AttributeId::CryptoBindingReq,
            Attribute::CryptoBinding(_) => AttributeId::CryptoBinding,
        }
    }

    /// Appends the attribute to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let len = self.buffer_len();
        out.push(0);
        out.push(u8::from(self.id()));
        out.extend_from_slice(&(len as u16).to_be_bytes());
        match self {
            Attribute::EncapsulatedProtocolId(p) => out.extend_from_slice(&p.to_be_bytes()),
            Attribute::StatusInfo(s) => {
                out.extend_from_slice(&[0, 0, 0, u8::from(s.attrib_id)]);
                out.extend_from_slice(&u32::from(s.status).to_be_bytes());
                out.extend_from_slice(&s.value[..s.value.len().min(MAX_STATUS_VALUE)]);
            }
            Attribute::CryptoBindingReq {
                hash_bitmask,
                nonce,
            } => {
                out.extend_from_slice(&[0, 0, 0, *hash_bitmask]);
                out.extend_from_slice(nonce);
            }
            Attribute::CryptoBinding(b) => {
                out.extend_from_slice(&[0, 0, 0, b.hash_protocol]);
                out.extend_from_slice(&b.nonce);
                out.extend_from_slice(&b.cert_hash);
                out.extend_from_slice(&b.compound_mac);
            }
        }
    }
}

/// Appends a control message to `out` (§2.2.2).
pub fn emit_control(message_type: MessageType, attributes: &[Attribute], out: &mut Vec<u8>) {
    let len = HEADER_LEN + 4 + attributes.iter().map(Attribute::buffer_len).sum::<usize>();
    debug_assert!(len <= MAX_PACKET, "our own control messages are small");
    out.push(VERSION);
    out.push(0x01);
    out.extend_from_slice(&((len as u16) & 0x0fff).to_be_bytes());
    out.extend_from_slice(&u16::from(message_type).to_be_bytes());
    out.extend_from_slice(&(attributes.len() as u16).to_be_bytes());
    for a in attributes {
        a.emit(out);
    }
}

/// Appends a data packet carrying `payload` to `out` (§2.2.3).
pub fn emit_data(payload: &[u8], out: &mut Vec<u8>) -> Result<(), WireError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(WireError::TooLong(payload.len()));
    }
    emit_data_header(payload.len(), out);
    out.extend_from_slice(payload);
    Ok(())
}

/// Appends the header of a data packet whose payload is `payload_len`
/// (≤ [`MAX_PAYLOAD`]) bytes, for callers that write the payload themselves.
pub fn emit_data_header(payload_len: usize, out: &mut Vec<u8>) {
    debug_assert!(payload_len <= MAX_PAYLOAD);
    let len = ((HEADER_LEN + payload_len) as u16) & 0x0fff;
    out.extend_from_slice(&[VERSION, 0x00]);
    out.extend_from_slice(&len.to_be_bytes());
}

/// MS-SSTP §3.1.7 "Check PPP frame type": PPP protocol numbers 0x8000–0xFFFF
/// (NCPs, LCP, authentication) are control frames; 0x0000–0x7FFF (IP, …)
/// are data frames (RFC 1661 §2). Copes with and without the FF 03
/// address/control bytes and with 1- or 2-byte protocol fields; an empty or
/// unreadable frame counts as data (so it never passes before Call
/// Connected).
pub fn ppp_frame_is_control(frame: &[u8]) -> bool {
    let f = match frame {
        [0xff, 0x03, rest @ ..] => rest,
        other => other,
    };
    match f {
        // A protocol field's low bit is 1 only in its last byte: odd first
        // byte means a compressed 1-byte field, always < 0x80 (data).
        [p, ..] if p & 1 == 1 => false,
        [hi, _, ..] => *hi >= 0x80,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        // Emit after 0xa5 bytes: the emitter must not touch what is before.
        let mut v = vec![0xa5; 7];
        f(&mut v);
        assert_eq!(&v[..7], &[0xa5; 7]);
        v.split_off(7)
    }

    /// MS-SSTP §4.7: the Call Connect Request.
    pub const CONNECT_REQUEST: [u8; 14] = [
        0x10, 0x01, 0x00, 0x0e, 0x00, 0x01, 0x00, 0x01, 0x00, 0x01, 0x00, 0x06, 0x00, 0x01,
    ];

    #[test]
    fn connect_request_vector() {
        let v = filled(|o| {
            emit_control(
                MessageType::CallConnectRequest,
                &[Attribute::EncapsulatedProtocolId(PROTOCOL_PPP)],
                o,
            )
        });
        assert_eq!(v, CONNECT_REQUEST);
        let Packet::Control(m) = Packet::parse(&CONNECT_REQUEST).unwrap() else {
            panic!("not control")
        };
        assert_eq!(m.message_type, MessageType::CallConnectRequest);
        assert_eq!(
            Attribute::decode(&m.attributes[0]),
            Ok(Attribute::EncapsulatedProtocolId(1))
        );
    }

    #[test]
    fn every_truncation_is_an_error() {
        for cut in 0..CONNECT_REQUEST.len() {
            assert!(Packet::parse(&CONNECT_REQUEST[..cut]).is_err(), "cut {cut}");
        }
    }

    #[test]
    fn malformed_attribute_lists() {
        // count says 2, one present
        let mut m = CONNECT_REQUEST;
        m[7] = 2;
        assert!(matches!(
            Packet::parse(&m),
            Err(WireError::AttributeCount { .. })
        ));
        // count says 0, one present
        m[7] = 0;
        assert!(matches!(
            Packet::parse(&m),
            Err(WireError::TrailingBytes(6))
        ));
        // attribute length 3
        let mut m = CONNECT_REQUEST;
        m[11] = 3;
        assert!(matches!(
            Packet::parse(&m),
            Err(WireError::AttributeLength { .. })
        ));
        // attribute longer than the packet
        let mut m = CONNECT_REQUEST;
        m[11] = 7;
        assert!(matches!(
            Packet::parse(&m),
            Err(WireError::AttributeOverrun { .. })
        ));
        // bad version, bad length
        let mut m = CONNECT_REQUEST;
        m[0] = 0x11;
        assert_eq!(Packet::parse(&m), Err(WireError::Version(0x11)));
        assert_eq!(
            peek_length(&[0x10, 1, 0, 3]),
            Some(Err(WireError::BadLength(3)))
        );
        // huge announced count with no attributes must not allocate much
        let m = [0x10, 0x01, 0x00, 0x08, 0x00, 0x05, 0xff, 0xff];
        assert!(matches!(
            Packet::parse(&m),
            Err(WireError::AttributeCount {
                count: 65535,
                found: 0
            })
        ));
    }

    #[test]
    fn reserved_bits_ignored_on_receipt() {
        let mut m = CONNECT_REQUEST;
        m[1] |= 0xfe;
        m[2] |= 0xf0;
        m[8] = 0xff; // attribute Reserved
        m[10] |= 0xf0; // attribute R bits
        assert!(matches!(Packet::parse(&m), Ok(Packet::Control(_))));
    }

    #[test]
    fn data_packets() {
        let v = filled(|o| emit_data(&[0xff, 0x03, 0xc0, 0x21], o).unwrap());
        assert_eq!(v, [0x10, 0x00, 0x00, 0x08, 0xff, 0x03, 0xc0, 0x21]);
        assert_eq!(
            Packet::parse(&v),
            Ok(Packet::Data(&[0xff, 0x03, 0xc0, 0x21][..]))
        );
        let mut big = Vec::new();
        assert!(emit_data(&vec![0; MAX_PAYLOAD], &mut big).is_ok());
        assert_eq!(big.len(), MAX_PACKET);
        assert!(emit_data(&vec![0; MAX_PAYLOAD + 1], &mut Vec::new()).is_err());
    }

    #[test]
    fn attribute_roundtrips_and_lengths() {
        let attrs = [
            Attribute::EncapsulatedProtocolId(1),
            Attribute::StatusInfo(
                StatusInfo::new(AttributeId::CryptoBinding, Status::ValueNotSupported)
                    .with_value(&[1; 100]),
            ),
            Attribute::CryptoBindingReq {
                hash_bitmask: 3,
                nonce: [7; 32],
            },
            Attribute::CryptoBinding(CryptoBinding {
                hash_protocol: 2,
                nonce: [1; 32],
                cert_hash: [2; 32],
                compound_mac: [3; 32],
            }),
        ];
        for a in &attrs {
            let v = filled(|o| a.emit(o));
            assert_eq!(v.len(), a.buffer_len());
            let raw = RawAttribute {
                id: AttributeId::from(v[1]),
                value: &v[4..],
            };
            assert_eq!(&Attribute::decode(&raw).unwrap(), a);
        }
        let bad = RawAttribute {
            id: AttributeId::CryptoBinding,
            value: &[0; 99],
        };
        assert_eq!(
            Attribute::decode(&bad),
            Err(AttributeError::Length(AttributeId::CryptoBinding))
        );
        let unk = RawAttribute {
            id: AttributeId::Unknown(9),
            value: &[],
        };
        assert!(matches!(
            Attribute::decode(&unk),
            Err(AttributeError::Unrecognized(_))
        ));
        // Status Info keeps at most 64 bytes of AttribValue
        assert_eq!(attrs[1].buffer_len(), 12 + 64);
    }

    #[test]
    fn ppp_frame_types() {
        assert!(ppp_frame_is_control(&[0xff, 0x03, 0xc0, 0x21, 1]));
        assert!(ppp_frame_is_control(&[0xc0, 0x21, 1]));
        assert!(ppp_frame_is_control(&[0x80, 0x21, 1]));
        assert!(!ppp_frame_is_control(&[0xff, 0x03, 0x00, 0x21, 0x45]));
        assert!(!ppp_frame_is_control(&[0x00, 0x21, 0x45]));
        assert!(!ppp_frame_is_control(&[0x21, 0x45]));
        assert!(!ppp_frame_is_control(&[0x57, 0x60]));
        assert!(!ppp_frame_is_control(&[]));
        assert!(!ppp_frame_is_control(&[0xff, 0x03, 0xc0]));
    }
}
