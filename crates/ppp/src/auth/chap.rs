//! CHAP packet formats (RFC 1994 §4) shared by CHAP-MD5 and MS-CHAPv2
//! (RFC 2759 §3–§6), and the MD5 response of RFC 1994 §4.1.
//!
//! * Challenge (1) / Response (2): Value-Size, Value, Name.
//! * Success (3) / Failure (4): Message.

use md5::{Digest, Md5};

use crate::frame::Protocol;
use crate::wire::control_frame;

/// Challenge.
pub const CHALLENGE: u8 = 1;
/// Response.
pub const RESPONSE: u8 = 2;
/// Success.
pub const SUCCESS: u8 = 3;
/// Failure.
pub const FAILURE: u8 = 4;

/// The Value and Name of a Challenge or Response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueName<'a> {
    /// The Value field.
    pub value: &'a [u8],
    /// The Name field (the rest of the packet).
    pub name: &'a [u8],
}

/// Parses the data of a Challenge or Response.
pub fn parse_value_name(data: &[u8]) -> Option<ValueName<'_>> {
    let (&vs, rest) = data.split_first()?;
    let value = rest.get(..usize::from(vs))?;
    Some(ValueName {
        value,
        name: &rest[usize::from(vs)..],
    })
}

/// Builds a Challenge or Response frame.
pub fn value_name_frame(code: u8, id: u8, value: &[u8], name: &[u8]) -> Vec<u8> {
    let value = &value[..value.len().min(255)];
    let name = &name[..name.len().min(1000)];
    let mut d = Vec::with_capacity(1 + value.len() + name.len());
    d.push(value.len() as u8);
    d.extend_from_slice(value);
    d.extend_from_slice(name);
    control_frame(Protocol::Chap, code, id, &d)
}

/// Builds a Success or Failure frame.
pub fn message_frame(code: u8, id: u8, message: &[u8]) -> Vec<u8> {
    control_frame(
        Protocol::Chap,
        code,
        id,
        &message[..message.len().min(1000)],
    )
}

/// RFC 1994 §4.1: MD5(Identifier | secret | Challenge).
pub fn md5_response(id: u8, secret: &[u8], challenge: &[u8]) -> [u8; 16] {
    let mut h = Md5::new();
    h.update([id]);
    h.update(secret);
    h.update(challenge);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_name_round_trip() {
        let f = value_name_frame(CHALLENGE, 1, &[0xAA; 16], b"srv");
        let p = crate::wire::Packet::parse(&f[4..]).unwrap();
        assert_eq!(p.code, CHALLENGE);
        let vn = parse_value_name(p.data).unwrap();
        assert_eq!(
            vn,
            ValueName {
                value: &[0xAA; 16],
                name: b"srv"
            }
        );
        assert_eq!(parse_value_name(&[3, 1, 2]), None);
        assert_eq!(parse_value_name(&[]), None);
    }

    #[test]
    fn md5_response_matches_rfc1994_definition() {
        // MD5 of 0x01 "secret" 0x00..0x0f, computed independently.
        let mut h = Md5::new();
        h.update(b"\x01secret");
        h.update((0u8..16).collect::<Vec<_>>());
        let want: [u8; 16] = h.finalize().into();
        assert_eq!(
            md5_response(1, b"secret", &(0u8..16).collect::<Vec<_>>()),
            want
        );
        // MD5("") sanity to pin the hash implementation.
        let empty: [u8; 16] = Md5::digest(b"").into();
        assert_eq!(
            crate::keys::hex_lower(&empty),
            "d41d8cd98f00b204e9800998ecf8427e"
        );
    }
}
