//! The RADIUS packet (RFC 2865 §3): Code, Identifier, Length, a 16-byte
//! Authenticator, then attributes (§5: Type, Length, Value). Octets beyond
//! Length are padding and ignored (§3); every attribute must fit inside
//! Length exactly, or the packet is malformed and silently discarded.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Header size: Code, Identifier, Length, Authenticator.
pub const HEADER_LEN: usize = 20;
/// Largest packet (RFC 2865 §3).
pub const MAX_LEN: usize = 4096;
/// Largest attribute value (Length is one octet and counts the two header octets).
pub const MAX_VALUE: usize = 253;

/// Packet codes (RFC 2865 §3, RFC 2866 §4, RFC 5176 §2.3); open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    AccessRequest,
    AccessAccept,
    AccessReject,
    AccountingRequest,
    AccountingResponse,
    AccessChallenge,
    DisconnectRequest,
    DisconnectAck,
    DisconnectNak,
    CoaRequest,
    CoaAck,
    CoaNak,
    Unknown(u8),
}

impl Code {
    pub fn from_u8(c: u8) -> Self {
        match c {
            1 => Code::AccessRequest,
            2 => Code::AccessAccept,
            3 => Code::AccessReject,
            4 => Code::AccountingRequest,
            5 => Code::AccountingResponse,
            11 => Code::AccessChallenge,
            40 => Code::DisconnectRequest,
            41 => Code::DisconnectAck,
            42 => Code::DisconnectNak,
            43 => Code::CoaRequest,
            44 => Code::CoaAck,
            45 => Code::CoaNak,
            o => Code::Unknown(o),
        }
    }
    pub fn to_u8(self) -> u8 {
        match self {
            Code::AccessRequest => 1,
            Code::AccessAccept => 2,
            Code::AccessReject => 3,
            Code::AccountingRequest => 4,
            Code::AccountingResponse => 5,
            Code::AccessChallenge => 11,
            Code::DisconnectRequest => 40,
            Code::DisconnectAck => 41,
            Code::DisconnectNak => 42,
            Code::CoaRequest => 43,
            Code::CoaAck => 44,
            Code::CoaNak => 45,
            Code::Unknown(o) => o,
        }
    }
    /// A reply to an Access-Request.
    pub fn is_access_reply(self) -> bool {
        matches!(
            self,
            Code::AccessAccept | Code::AccessReject | Code::AccessChallenge
        )
    }
}

/// The RFC's name (`Access-Accept`, ...), for logs.
impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Code::AccessRequest => "Access-Request",
            Code::AccessAccept => "Access-Accept",
            Code::AccessReject => "Access-Reject",
            Code::AccountingRequest => "Accounting-Request",
            Code::AccountingResponse => "Accounting-Response",
            Code::AccessChallenge => "Access-Challenge",
            Code::DisconnectRequest => "Disconnect-Request",
            Code::DisconnectAck => "Disconnect-ACK",
            Code::DisconnectNak => "Disconnect-NAK",
            Code::CoaRequest => "CoA-Request",
            Code::CoaAck => "CoA-ACK",
            Code::CoaNak => "CoA-NAK",
            Code::Unknown(c) => return write!(f, "code {c}"),
        };
        f.write_str(s)
    }
}

/// Why bytes are not a packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    #[error("{0} bytes is shorter than the 20-byte header")]
    Short(usize),
    #[error("length field {length} is outside 20..=4096 or beyond the {got} bytes received")]
    BadLength { length: usize, got: usize },
    #[error("attribute at offset {0} overruns the packet or has a length below 2")]
    BadAttribute(usize),
}

/// Why a packet cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    #[error("attribute {typ} has {len} bytes, more than 253")]
    AttributeTooLong { typ: u8, len: usize },
    #[error("packet of {0} bytes exceeds 4096")]
    PacketTooLong(usize),
}

/// One attribute (RFC 2865 §5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attr {
    pub typ: u8,
    pub value: Vec<u8>,
}

/// A packet with its attributes in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    pub code: Code,
    pub identifier: u8,
    pub authenticator: [u8; 16],
    pub attrs: Vec<Attr>,
}

/// Walks the attributes of `body` (the bytes after the header, up to
/// Length): yields (offset within body, type, value) or the offset of a
/// malformed attribute.
pub(crate) fn walk(body: &[u8]) -> impl Iterator<Item = Result<(usize, u8, &[u8]), usize>> {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at >= body.len() {
            return None;
        }
        let rest = &body[at..];
        let len = match rest.get(1) {
            Some(&l) if l >= 2 && usize::from(l) <= rest.len() => usize::from(l),
            _ => {
                let bad = at;
                at = body.len();
                return Some(Err(bad));
            }
        };
        let item = (at, rest[0], &rest[2..len]);
        at += len;
        Some(Ok(item))
    })
}

/// The packet's bytes up to its Length field, checked.
pub(crate) fn framed(b: &[u8]) -> Result<&[u8], DecodeError> {
    if b.len() < HEADER_LEN {
        return Err(DecodeError::Short(b.len()));
    }
    let length = usize::from(u16::from_be_bytes([b[2], b[3]]));
    if !(HEADER_LEN..=MAX_LEN).contains(&length) || length > b.len() {
        return Err(DecodeError::BadLength {
            length,
            got: b.len(),
        });
    }
    Ok(&b[..length])
}

impl Packet {
    /// A packet without attributes.
    pub fn new(code: Code, identifier: u8, authenticator: [u8; 16]) -> Self {
        Packet {
            code,
            identifier,
            authenticator,
            attrs: Vec::new(),
        }
    }

    /// Reads a packet (bytes after Length are ignored as padding).
    pub fn parse(b: &[u8]) -> Result<Self, DecodeError> {
        let b = framed(b)?;
        let mut attrs = Vec::new();
        for a in walk(&b[HEADER_LEN..]) {
            let (_, typ, value) = a.map_err(|off| DecodeError::BadAttribute(off + HEADER_LEN))?;
            attrs.push(Attr {
                typ,
                value: value.to_vec(),
            });
        }
        Ok(Packet {
            code: Code::from_u8(b[0]),
            identifier: b[1],
            authenticator: b[4..20].try_into().expect("16 bytes"),
            attrs,
        })
    }

    /// Bytes [`Packet::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.attrs.iter().map(|a| 2 + a.value.len()).sum::<usize>()
    }

    /// Appends the packet's bytes to `out` as they are (no authenticator
    /// is computed: see [`crate::crypto`]).
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let len = self.buffer_len();
        if len > MAX_LEN {
            return Err(EncodeError::PacketTooLong(len));
        }
        if let Some(a) = self.attrs.iter().find(|a| a.value.len() > MAX_VALUE) {
            return Err(EncodeError::AttributeTooLong {
                typ: a.typ,
                len: a.value.len(),
            });
        }
        out.reserve(len);
        out.push(self.code.to_u8());
        out.push(self.identifier);
        out.extend_from_slice(&(len as u16).to_be_bytes());
        out.extend_from_slice(&self.authenticator);
        for a in &self.attrs {
            out.push(a.typ);
            out.push((a.value.len() + 2) as u8);
            out.extend_from_slice(&a.value);
        }
        Ok(())
    }

    /// The first attribute of a type.
    pub fn get(&self, typ: u8) -> Option<&[u8]> {
        self.attrs
            .iter()
            .find(|a| a.typ == typ)
            .map(|a| a.value.as_slice())
    }

    /// Every attribute of a type, in order.
    pub fn all(&self, typ: u8) -> impl Iterator<Item = &[u8]> {
        self.attrs
            .iter()
            .filter(move |a| a.typ == typ)
            .map(|a| a.value.as_slice())
    }

    /// The values of every attribute of a type joined (EAP-Message, RFC
    /// 3579 §3.1); None if there is none.
    pub fn concat(&self, typ: u8) -> Option<Vec<u8>> {
        let mut it = self.all(typ).peekable();
        it.peek()?;
        Some(it.flatten().copied().collect())
    }

    /// A 4-octet integer attribute (RFC 2865 §5 "integer").
    pub fn u32(&self, typ: u8) -> Option<u32> {
        Some(u32::from_be_bytes(self.get(typ)?.try_into().ok()?))
    }

    /// An address attribute.
    pub fn ipv4(&self, typ: u8) -> Option<Ipv4Addr> {
        let b: [u8; 4] = self.get(typ)?.try_into().ok()?;
        Some(Ipv4Addr::from(b))
    }

    /// An IPv6 prefix attribute (RFC 3162 §2.3, RFC 4818 §3: a reserved
    /// octet, the prefix length, then at most 16 octets of prefix), with
    /// the bits past the length cleared; `None` when malformed (a length
    /// over 128, or fewer octets than it needs).
    pub fn ipv6_prefix(&self, typ: u8) -> Option<(Ipv6Addr, u8)> {
        self.all(typ).next().and_then(decode_ipv6_prefix)
    }

    /// A text attribute, if it is UTF-8.
    pub fn text(&self, typ: u8) -> Option<&str> {
        std::str::from_utf8(self.get(typ)?).ok()
    }

    /// A vendor-specific attribute's value (RFC 2865 §5.26 with the usual
    /// one-octet vendor type and length, as RFC 2548 uses).
    pub fn vendor(&self, vendor: u32, vtype: u8) -> Option<&[u8]> {
        self.vendor_attrs()
            .find(|(v, t, _)| *v == vendor && *t == vtype)
            .map(|(_, _, d)| d)
    }

    /// Every sub-attribute of every Vendor-Specific attribute.
    pub fn vendor_attrs(&self) -> impl Iterator<Item = (u32, u8, &[u8])> {
        self.all(crate::attr::VENDOR_SPECIFIC).flat_map(|v| {
            let (vendor, subs) = match v.split_first_chunk::<4>() {
                Some((id, rest)) => (u32::from_be_bytes(*id), rest),
                None => (0, &[][..]),
            };
            walk(subs)
                .map_while(Result::ok)
                .map(move |(_, t, d)| (vendor, t, d))
        })
    }

    /// Adds an attribute.
    pub fn push(&mut self, typ: u8, value: impl Into<Vec<u8>>) -> &mut Self {
        self.attrs.push(Attr {
            typ,
            value: value.into(),
        });
        self
    }
    /// Adds an integer attribute.
    pub fn push_u32(&mut self, typ: u8, v: u32) -> &mut Self {
        self.push(typ, v.to_be_bytes())
    }
    /// Adds an address attribute.
    pub fn push_ipv4(&mut self, typ: u8, a: Ipv4Addr) -> &mut Self {
        self.push(typ, a.octets())
    }
    /// Adds an IPv6 prefix attribute (RFC 3162 §2.3), with only the
    /// octets the length needs.
    pub fn push_ipv6_prefix(&mut self, typ: u8, a: Ipv6Addr, len: u8) -> &mut Self {
        let len = len.min(128);
        let mut v = vec![0, len];
        v.extend_from_slice(&a.octets()[..usize::from(len).div_ceil(8)]);
        self.push(typ, v)
    }
    /// Adds `data` split over as many attributes of `typ` as it needs
    /// (EAP-Message, RFC 3579 §3.1).
    pub fn push_split(&mut self, typ: u8, data: &[u8]) -> &mut Self {
        for c in data.chunks(MAX_VALUE) {
            self.push(typ, c);
        }
        self
    }
    /// Adds a vendor-specific attribute with one sub-attribute.
    pub fn push_vendor(&mut self, vendor: u32, vtype: u8, data: &[u8]) -> &mut Self {
        let mut v = Vec::with_capacity(6 + data.len());
        v.extend_from_slice(&vendor.to_be_bytes());
        v.push(vtype);
        v.push((data.len() + 2).min(255) as u8);
        v.extend_from_slice(data);
        self.push(crate::attr::VENDOR_SPECIFIC, v)
    }
}

/// An IPv6 prefix value (RFC 3162 §2.3): the network and its length.
pub fn decode_ipv6_prefix(v: &[u8]) -> Option<(Ipv6Addr, u8)> {
    let (&[_, len], prefix) = v.split_first_chunk::<2>()?;
    if len > 128 || prefix.len() > 16 || prefix.len() < usize::from(len).div_ceil(8) {
        return None;
    }
    let mut b = [0u8; 16];
    b[..prefix.len()].copy_from_slice(prefix);
    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    Some((Ipv6Addr::from(u128::from_be_bytes(b) & mask), len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest::proptest! {
        #[test]
        fn ipv6_prefixes_round_trip(bits in proptest::prelude::any::<u128>(), len in 0u8..=128) {
            let mut p = Packet::new(Code::AccessAccept, 0, [0; 16]);
            p.push_ipv6_prefix(crate::attr::FRAMED_IPV6_PREFIX, Ipv6Addr::from(bits), len);
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            proptest::prop_assert_eq!(
                p.ipv6_prefix(crate::attr::FRAMED_IPV6_PREFIX),
                Some((Ipv6Addr::from(bits & mask), len))
            );
        }
    }

    #[test]
    fn ipv6_prefixes() {
        let d = |v: &[u8]| decode_ipv6_prefix(v).map(|(a, l)| format!("{a}/{l}"));
        // RFC 3162 §2.3: the prefix octets the length needs, or all 16.
        assert_eq!(
            d(&[0, 64, 0x20, 1, 0xd, 0xb8, 0, 1, 0, 2]).as_deref(),
            Some("2001:db8:1:2::/64")
        );
        let mut full = vec![0, 56];
        full.extend_from_slice(&"2001:db8:aa:bbff::1".parse::<Ipv6Addr>().unwrap().octets());
        assert_eq!(
            d(&full).as_deref(),
            Some("2001:db8:aa:bb00::/56"),
            "host bits cleared"
        );
        assert_eq!(d(&[0, 0]).as_deref(), Some("::/0"));
        assert_eq!(d(&[0, 129]), None, "length over 128");
        assert_eq!(d(&[0, 64, 0x20, 1]), None, "too few octets");
        assert_eq!(d(&[0]), None);
        let mut p = Packet::new(Code::AccessAccept, 0, [0; 16]);
        p.push_ipv6_prefix(
            crate::attr::DELEGATED_IPV6_PREFIX,
            "2001:db8:5500::".parse().unwrap(),
            40,
        );
        assert_eq!(p.get(crate::attr::DELEGATED_IPV6_PREFIX).unwrap().len(), 7);
        assert_eq!(
            p.ipv6_prefix(crate::attr::DELEGATED_IPV6_PREFIX),
            Some(("2001:db8:5500::".parse().unwrap(), 40))
        );
        assert_eq!(p.ipv6_prefix(crate::attr::FRAMED_IPV6_PREFIX), None);
    }

    #[test]
    fn malformed_is_an_error() {
        assert_eq!(Packet::parse(&[1; 10]), Err(DecodeError::Short(10)));
        let mut b = vec![1, 0, 0, 19];
        b.resize(20, 0);
        assert!(matches!(
            Packet::parse(&b),
            Err(DecodeError::BadLength { .. })
        ));
        let mut b = vec![1, 0, 0, 23];
        b.resize(20, 0);
        b.extend_from_slice(&[1, 4, 0]);
        assert_eq!(Packet::parse(&b), Err(DecodeError::BadAttribute(20)));
        b[21] = 1;
        assert_eq!(Packet::parse(&b), Err(DecodeError::BadAttribute(20)));
        b[21] = 3;
        assert_eq!(Packet::parse(&b).unwrap().get(1), Some(&[0u8][..]));
        // Padding beyond Length is ignored.
        b.extend_from_slice(&[9, 9, 9]);
        assert_eq!(Packet::parse(&b).unwrap().attrs.len(), 1);
    }

    #[test]
    fn vendor_attributes_and_split() {
        let mut p = Packet::new(Code::AccessAccept, 1, [0; 16]);
        p.push_vendor(311, 26, b"x").push_vendor(14988, 8, b"1M/2M");
        p.push_split(79, &[7; 300]);
        let mut out = Vec::new();
        p.emit(&mut out).unwrap();
        let q = Packet::parse(&out).unwrap();
        assert_eq!(q.vendor(311, 26), Some(&b"x"[..]));
        assert_eq!(q.vendor(14988, 8), Some(&b"1M/2M"[..]));
        assert_eq!(q.vendor(311, 8), None);
        assert_eq!(q.all(79).count(), 2);
        assert_eq!(q.concat(79).unwrap(), vec![7; 300]);
        assert_eq!(q.concat(1), None);
    }

    #[test]
    fn emit_refuses_oversize() {
        let mut p = Packet::new(Code::AccessRequest, 1, [0; 16]);
        p.push(1, vec![0; 254]);
        assert!(matches!(
            p.emit(&mut Vec::new()),
            Err(EncodeError::AttributeTooLong { typ: 1, len: 254 })
        ));
        let mut p = Packet::new(Code::AccessRequest, 1, [0; 16]);
        for _ in 0..17 {
            p.push(1, vec![0; 250]);
        }
        assert!(matches!(
            p.emit(&mut Vec::new()),
            Err(EncodeError::PacketTooLong(_))
        ));
    }

    fn arb_packet() -> impl Strategy<Value = Packet> {
        (
            any::<u8>(),
            any::<u8>(),
            any::<[u8; 16]>(),
            proptest::collection::vec(
                (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..=253)),
                0..12,
            ),
        )
            .prop_map(|(c, id, auth, attrs)| Packet {
                code: Code::from_u8(c),
                identifier: id,
                authenticator: auth,
                attrs: attrs
                    .into_iter()
                    .map(|(typ, value)| Attr { typ, value })
                    .collect(),
            })
    }

    proptest! {
        #[test]
        fn emit_parse_round_trip(p in arb_packet()) {
            let mut out = Vec::new();
            p.emit(&mut out).unwrap();
            prop_assert_eq!(out.len(), p.buffer_len());
            prop_assert_eq!(Packet::parse(&out).unwrap(), p);
        }

        #[test]
        fn parse_never_panics_and_reemits(b in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(p) = Packet::parse(&b) {
                let mut out = Vec::new();
                p.emit(&mut out).unwrap();
                prop_assert_eq!(&out[..], framed(&b).unwrap());
            }
        }
    }
}
