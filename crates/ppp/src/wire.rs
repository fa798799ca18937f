//! Typed views of the control packets shared by LCP, the NCPs and the
//! authentication protocols, and the bounded configuration-option reader.
//!
//! * Packet format: RFC 1661 §5 (Code, Identifier, Length, Data). Octets
//!   beyond the Length field are padding and are ignored (§5: "Octets outside
//!   the range of the Length field are treated as padding"); a Length larger
//!   than the bytes received, or smaller than 4, makes the packet invalid and
//!   it is silently discarded.
//! * Option format: RFC 1661 §6 (Type, Length, Data). The reader is bounded by
//!   the packet and rejects an option list with truncated or trailing bytes.

use crate::error::{OptionError, PacketError};

/// Length of the Code/Identifier/Length header.
pub const PACKET_HEADER_LEN: usize = 4;

/// A control packet: Code, Identifier and the Data field bounded by Length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    /// The Code field.
    pub code: u8,
    /// The Identifier field.
    pub id: u8,
    /// The Data field (Length - 4 bytes, padding stripped).
    pub data: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Parses a control packet from a frame's information field.
    pub fn parse(buf: &'a [u8]) -> Result<Self, PacketError> {
        let [code, id, l0, l1, ..] = *buf else {
            return Err(PacketError::Truncated);
        };
        let length = u16::from_be_bytes([l0, l1]);
        let len = usize::from(length);
        if len < PACKET_HEADER_LEN || len > buf.len() {
            return Err(PacketError::BadLength {
                length,
                available: buf.len(),
            });
        }
        Ok(Packet {
            code,
            id,
            data: &buf[PACKET_HEADER_LEN..len],
        })
    }

    /// Total length of the packet when emitted.
    pub fn buffer_len(&self) -> usize {
        PACKET_HEADER_LEN + self.data.len()
    }

    /// Appends the packet to `out`. Data longer than 65531 bytes is truncated
    /// (callers never build such packets; the cap keeps Length consistent).
    pub fn emit(&self, out: &mut Vec<u8>) {
        let data = &self.data[..self
            .data
            .len()
            .min(usize::from(u16::MAX) - PACKET_HEADER_LEN)];
        let len = (PACKET_HEADER_LEN + data.len()) as u16;
        out.push(self.code);
        out.push(self.id);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(data);
    }
}

/// One configuration option (RFC 1661 §6): Type and the data after Length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawOption<'a> {
    /// The Type field.
    pub kind: u8,
    /// The Data field (Length - 2 bytes).
    pub data: &'a [u8],
}

impl<'a> RawOption<'a> {
    /// Appends the option to `out`. Data longer than 253 bytes is truncated.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let data = &self.data[..self.data.len().min(253)];
        out.push(self.kind);
        out.push((data.len() + 2) as u8);
        out.extend_from_slice(data);
    }

    /// The option exactly as it appeared on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.data.len() + 2);
        self.emit(&mut v);
        v
    }
}

/// Bounded iterator over an option list; yields an error (once) if the list is
/// malformed, then stops.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    buf: &'a [u8],
    offset: usize,
    failed: bool,
}

impl<'a> Options<'a> {
    /// Iterates the options in `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Options {
            buf,
            offset: 0,
            failed: false,
        }
    }
}

impl<'a> Iterator for Options<'a> {
    type Item = Result<RawOption<'a>, OptionError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let rest = self.buf.get(self.offset..)?;
        if rest.is_empty() {
            return None;
        }
        let offset = self.offset;
        let [kind, length, ..] = *rest else {
            self.failed = true;
            return Some(Err(OptionError::Truncated { offset }));
        };
        if length < 2 {
            self.failed = true;
            return Some(Err(OptionError::TooShort { kind, length }));
        }
        let Some(opt) = rest.get(..usize::from(length)) else {
            self.failed = true;
            return Some(Err(OptionError::Truncated { offset }));
        };
        self.offset += usize::from(length);
        Some(Ok(RawOption {
            kind,
            data: &opt[2..],
        }))
    }
}

/// Parses a whole option list, rejecting malformed lists.
pub fn parse_options(buf: &[u8]) -> Result<Vec<RawOption<'_>>, OptionError> {
    Options::new(buf).collect()
}

/// Builds a control packet with the given code, id and data into a full PPP
/// frame for `protocol`.
pub fn control_frame(protocol: crate::frame::Protocol, code: u8, id: u8, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(crate::frame::HEADER_LEN + PACKET_HEADER_LEN + data.len());
    crate::frame::emit_header(protocol, &mut v);
    Packet { code, id, data }.emit(&mut v);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_parse_and_padding() {
        let p = Packet::parse(&[1, 7, 0, 6, 0xAA, 0xBB, 0xCC, 0xDD]).unwrap();
        assert_eq!(
            p,
            Packet {
                code: 1,
                id: 7,
                data: &[0xAA, 0xBB]
            }
        );
        assert_eq!(p.buffer_len(), 6);
        let mut out = vec![0xa5; 0];
        p.emit(&mut out);
        assert_eq!(out, vec![1, 7, 0, 6, 0xAA, 0xBB]);
    }

    #[test]
    fn packet_truncations() {
        let full = [1u8, 7, 0, 6, 0xAA, 0xBB];
        for n in 0..full.len() {
            assert!(Packet::parse(&full[..n]).is_err(), "len {n}");
        }
        assert_eq!(
            Packet::parse(&[1, 1, 0, 3]),
            Err(PacketError::BadLength {
                length: 3,
                available: 4
            })
        );
    }

    #[test]
    fn option_reader_is_bounded() {
        let ok = [1u8, 4, 5, 220, 5, 6, 1, 2, 3, 4, 7, 2];
        let v = parse_options(&ok).unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(
            v[0],
            RawOption {
                kind: 1,
                data: &[5, 220]
            }
        );
        assert_eq!(v[2], RawOption { kind: 7, data: &[] });
        let mut re = Vec::new();
        for o in &v {
            o.emit(&mut re);
        }
        assert_eq!(re, ok);
        assert_eq!(
            parse_options(&[1]),
            Err(OptionError::Truncated { offset: 0 })
        );
        assert_eq!(
            parse_options(&[1, 4, 5]),
            Err(OptionError::Truncated { offset: 0 })
        );
        assert_eq!(
            parse_options(&[7, 2, 1, 1]),
            Err(OptionError::TooShort { kind: 1, length: 1 })
        );
        assert_eq!(
            parse_options(&[7, 2, 9]),
            Err(OptionError::Truncated { offset: 2 })
        );
        assert!(parse_options(&[]).unwrap().is_empty());
    }

    #[test]
    fn control_frame_layout() {
        let f = control_frame(crate::frame::Protocol::Lcp, 9, 3, &[1, 2, 3, 4]);
        assert_eq!(f, vec![0xFF, 0x03, 0xC0, 0x21, 9, 3, 0, 8, 1, 2, 3, 4]);
    }
}
