//! PEAP version 0 (EAP type 25, MS-PEAP), peer side: the tunneled EAP
//! formats. The outer TLS runs exactly like EAP-TLS ([`super::eap_tls`]:
//! the same Flags octet, whose low three bits carry the PEAP version; the
//! peer always answers with version 0, MS-PEAP §3.1.5.1); the tunneled
//! conversation is handled in `peer.rs` with the MS-CHAPv2 code of the
//! outer EAP-MSCHAPv2.
//!
//! * Inner EAP header compression (MS-PEAP §3.1.5.6): inside the tunnel a
//!   PEAPv0 packet omits Code, Identifier and Length and starts with the
//!   Type, except for the EAP TLV Extensions method (type 33, §2.2.8.1),
//!   which is a whole EAP packet.
//! * Result TLV (§2.2.8.1.2): M bit set, TLV type 3, Length 2, status 1
//!   (success) or 2 (failure). The peer echoes the server's status (a
//!   success only when its own inner method succeeded, §3.2.5.4.7); an
//!   Extensions request without a Result TLV gets an empty answer.
//! * Keys: PEAPv0 without cryptobinding uses the EAP-TLS MSK (TLS 1.2:
//!   PRF(master secret, "client EAP encryption", randoms)). FreeRADIUS 3.2
//!   runs PEAP over TLS 1.2 only (its `eap` module: TLS 1.3 is for EAP-TLS
//!   alone), so with it the MSK is always that one; should a server
//!   negotiate TLS 1.3 we follow RFC 9427 §2.1:
//!   TLS-Exporter("EXPORTER_EAP_TLS_Key_Material", Type-Code 25, 128).
//! * Not implemented: the Cryptobinding TLV and SoH (Windows NPS can
//!   require cryptobinding), fast reconnect.

use super::eap::{Code, EapType};

/// The EAP TLV Extensions method's type (MS-PEAP §2.2.8.1).
pub const TYPE_EXTENSIONS: u8 = 33;
/// Result TLV type (§2.2.8.1.2).
pub const TLV_RESULT: u16 = 3;
/// The TLV M (mandatory) bit.
pub const TLV_MANDATORY: u16 = 0x8000;
/// Result TLV status: success.
pub const RESULT_SUCCESS: u16 = 1;
/// Result TLV status: failure.
pub const RESULT_FAILURE: u16 = 2;

/// One tunneled request, as the server sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inner<'a> {
    /// A header-less request: its Type and Type-Data.
    Method(EapType, &'a [u8]),
    /// An EAP TLV Extensions request (a whole EAP packet): its Identifier
    /// and the Result TLV's status, if it carries one.
    Extensions { id: u8, result: Option<u16> },
}

/// Parses tunneled data; `None` when empty or a malformed Extensions packet.
pub fn parse_inner(data: &[u8]) -> Option<Inner<'_>> {
    if let [code, id, l0, l1, typ, tlvs @ ..] = data {
        let len = usize::from(u16::from_be_bytes([*l0, *l1]));
        if Code::from(*code) == Code::Request && *typ == TYPE_EXTENSIONS && len == data.len() {
            return Some(Inner::Extensions {
                id: *id,
                result: result_status(tlvs)?,
            });
        }
    }
    let (&t, td) = data.split_first()?;
    Some(Inner::Method(EapType::from(t), td))
}

/// The Result TLV's status among `tlvs`; `None` when the TLVs are
/// malformed, `Some(None)` when there is no Result TLV.
fn result_status(mut tlvs: &[u8]) -> Option<Option<u16>> {
    let mut status = None;
    while !tlvs.is_empty() {
        let [t0, t1, l0, l1, rest @ ..] = tlvs else {
            return None;
        };
        let len = usize::from(u16::from_be_bytes([*l0, *l1]));
        let value = rest.get(..len)?;
        if u16::from_be_bytes([*t0, *t1]) & 0x3fff == TLV_RESULT {
            status = Some(u16::from_be_bytes(value.try_into().ok()?));
        }
        tlvs = &rest[len..];
    }
    Some(status)
}

/// A header-less tunneled response (§3.1.5.6).
pub fn method_response(typ: EapType, type_data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(1 + type_data.len());
    v.push(u8::from(typ));
    v.extend_from_slice(type_data);
    v
}

/// An EAP TLV Extensions Response (a whole EAP packet) carrying `tlvs`.
pub fn extensions_response(id: u8, tlvs: &[u8]) -> Vec<u8> {
    let len = (5 + tlvs.len()) as u16;
    let mut v = vec![u8::from(Code::Response), id];
    v.extend_from_slice(&len.to_be_bytes());
    v.push(TYPE_EXTENSIONS);
    v.extend_from_slice(tlvs);
    v
}

/// An EAP TLV Extensions Response with one Result TLV.
pub fn result_response(id: u8, status: u16) -> Vec<u8> {
    let mut tlv = (TLV_MANDATORY | TLV_RESULT).to_be_bytes().to_vec();
    tlv.extend_from_slice(&2u16.to_be_bytes());
    tlv.extend_from_slice(&status.to_be_bytes());
    extensions_response(id, &tlv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_less_requests_and_extensions() {
        assert_eq!(
            parse_inner(&[1]),
            Some(Inner::Method(EapType::Identity, &[]))
        );
        assert_eq!(
            parse_inner(&[26, 1, 7, 0, 4]),
            Some(Inner::Method(EapType::MsChapV2, &[1, 7, 0, 4]))
        );
        // Request, id 9, length 11, type 33, Result TLV success.
        let ext = [1, 9, 0, 11, 33, 0x80, 3, 0, 2, 0, 1];
        assert_eq!(
            parse_inner(&ext),
            Some(Inner::Extensions {
                id: 9,
                result: Some(RESULT_SUCCESS)
            })
        );
        // Another TLV first (cryptobinding, not mandatory), then the Result.
        let ext2 = [
            1, 3, 0, 17, 33, 0x00, 12, 0, 2, 0xaa, 0xbb, 0x80, 3, 0, 2, 0, 2,
        ];
        assert_eq!(
            parse_inner(&ext2),
            Some(Inner::Extensions {
                id: 3,
                result: Some(RESULT_FAILURE)
            })
        );
        // A TLV running past the end.
        assert_eq!(parse_inner(&[1, 9, 0, 9, 33, 0x80, 3, 0, 2]), None);
        assert_eq!(parse_inner(&[]), None);
        // Our answer is a whole EAP Response echoing the status.
        assert_eq!(
            result_response(9, RESULT_SUCCESS),
            [2, 9, 0, 11, 33, 0x80, 3, 0, 2, 0, 1]
        );
        assert_eq!(method_response(EapType::Identity, b"al"), b"\x01al");
    }
}
