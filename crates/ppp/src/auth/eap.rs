//! EAP packet format (RFC 3748 §4–§5) and EAP-MSCHAPv2 (type 26,
//! draft-kamath-pppext-eap-mschapv2-02 §2).
//!
//! EAP: Code (1 Request, 2 Response, 3 Success, 4 Failure), Identifier,
//! Length, then for Request/Response a Type and Type-Data. We implement the
//! types Identity (1), Notification (2), Nak (3, legacy Nak) and MSCHAPv2
//! (26); a Request of any other type (EAP-TLS 13, PEAP 25, MD5 4, expanded
//! 254...) is answered with a legacy Nak proposing 26 (RFC 3748 §5.3.1).
//!
//! EAP-MSCHAPv2 Type-Data: OpCode, MS-CHAPv2-ID, MS-Length (= EAP Length - 5),
//! then per OpCode: Challenge (1) Value-Size 16 + challenge + name;
//! Response (2) Value-Size 49 + the RFC 2759 response + name; Success (3)
//! and Failure (4) requests carry the RFC 2759 message, their responses are
//! the bare OpCode.

use crate::error::PacketError;
use crate::frame::Protocol;
use crate::wire::control_frame;

/// EAP codes (open enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// 1.
    Request,
    /// 2.
    Response,
    /// 3.
    Success,
    /// 4.
    Failure,
    /// Anything else (silently discarded, RFC 3748 §4).
    Unknown(u8),
}

impl From<u8> for Code {
    fn from(v: u8) -> Self {
        match v {
            1 => Code::Request,
            2 => Code::Response,
            3 => Code::Success,
            4 => Code::Failure,
            x => Code::Unknown(x),
        }
    }
}

impl From<Code> for u8 {
    fn from(c: Code) -> u8 {
        match c {
            Code::Request => 1,
            Code::Response => 2,
            Code::Success => 3,
            Code::Failure => 4,
            Code::Unknown(x) => x,
        }
    }
}

/// EAP method types (open enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EapType {
    /// 1.
    Identity,
    /// 2.
    Notification,
    /// 3 (legacy Nak, Response only).
    Nak,
    /// 4.
    Md5,
    /// 13.
    Tls,
    /// 25.
    Peap,
    /// 26.
    MsChapV2,
    /// 254.
    Expanded,
    /// Anything else.
    Unknown(u8),
}

impl From<u8> for EapType {
    fn from(v: u8) -> Self {
        match v {
            1 => EapType::Identity,
            2 => EapType::Notification,
            3 => EapType::Nak,
            4 => EapType::Md5,
            13 => EapType::Tls,
            25 => EapType::Peap,
            26 => EapType::MsChapV2,
            254 => EapType::Expanded,
            x => EapType::Unknown(x),
        }
    }
}

impl From<EapType> for u8 {
    fn from(t: EapType) -> u8 {
        match t {
            EapType::Identity => 1,
            EapType::Notification => 2,
            EapType::Nak => 3,
            EapType::Md5 => 4,
            EapType::Tls => 13,
            EapType::Peap => 25,
            EapType::MsChapV2 => 26,
            EapType::Expanded => 254,
            EapType::Unknown(x) => x,
        }
    }
}

/// A parsed EAP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EapPacket<'a> {
    /// Code.
    pub code: Code,
    /// Identifier.
    pub id: u8,
    /// Type, for Request/Response.
    pub typ: Option<EapType>,
    /// Type-Data (empty for Success/Failure).
    pub type_data: &'a [u8],
}

/// Parses an EAP packet (bytes beyond Length are link padding and ignored).
/// Requests/Responses without a Type, and Success/Failure with data, are malformed.
pub fn parse(buf: &[u8]) -> Result<EapPacket<'_>, PacketError> {
    let p = crate::wire::Packet::parse(buf)?;
    let code = Code::from(p.code);
    match code {
        Code::Request | Code::Response => {
            let (&t, td) = p.data.split_first().ok_or(PacketError::Malformed)?;
            Ok(EapPacket {
                code,
                id: p.id,
                typ: Some(EapType::from(t)),
                type_data: td,
            })
        }
        Code::Success | Code::Failure => {
            if !p.data.is_empty() {
                return Err(PacketError::Malformed);
            }
            Ok(EapPacket {
                code,
                id: p.id,
                typ: None,
                type_data: &[],
            })
        }
        Code::Unknown(_) => Ok(EapPacket {
            code,
            id: p.id,
            typ: None,
            type_data: p.data,
        }),
    }
}

impl EapPacket<'_> {
    /// Serialises the packet (without the PPP header).
    pub fn emit(&self, out: &mut Vec<u8>) {
        let mut data = Vec::with_capacity(1 + self.type_data.len());
        if let Some(t) = self.typ {
            data.push(u8::from(t));
        }
        data.extend_from_slice(self.type_data);
        crate::wire::Packet {
            code: u8::from(self.code),
            id: self.id,
            data: &data,
        }
        .emit(out);
    }
}

/// A full PPP frame carrying an EAP Request/Response.
pub fn typed_frame(code: Code, id: u8, typ: EapType, type_data: &[u8]) -> Vec<u8> {
    let mut d = Vec::with_capacity(1 + type_data.len());
    d.push(u8::from(typ));
    d.extend_from_slice(type_data);
    control_frame(Protocol::Eap, u8::from(code), id, &d)
}

/// A full PPP frame carrying an EAP Success or Failure.
pub fn result_frame(success: bool, id: u8) -> Vec<u8> {
    control_frame(Protocol::Eap, if success { 3 } else { 4 }, id, &[])
}

/// EAP-MSCHAPv2 OpCodes.
pub mod opcode {
    /// Challenge.
    pub const CHALLENGE: u8 = 1;
    /// Response.
    pub const RESPONSE: u8 = 2;
    /// Success.
    pub const SUCCESS: u8 = 3;
    /// Failure.
    pub const FAILURE: u8 = 4;
    /// Change-Password (not supported).
    pub const CHANGE_PASSWORD: u8 = 7;
}

/// A parsed EAP-MSCHAPv2 Type-Data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsChapV2Msg<'a> {
    /// Challenge (Request).
    Challenge {
        /// MS-CHAPv2-ID.
        ms_id: u8,
        /// The 16-byte authenticator challenge.
        challenge: &'a [u8; 16],
        /// Authenticator name.
        name: &'a [u8],
    },
    /// Response (Response).
    Response {
        /// MS-CHAPv2-ID.
        ms_id: u8,
        /// The 49-byte RFC 2759 response value.
        value: &'a [u8; 49],
        /// User name.
        name: &'a [u8],
    },
    /// Success Request carrying `S=... M=...`.
    SuccessRequest {
        /// MS-CHAPv2-ID.
        ms_id: u8,
        /// Message.
        message: &'a [u8],
    },
    /// Failure Request carrying `E=... R=... C=... V=... M=...`.
    FailureRequest {
        /// MS-CHAPv2-ID.
        ms_id: u8,
        /// Message.
        message: &'a [u8],
    },
    /// Success Response (bare OpCode).
    SuccessResponse,
    /// Failure Response (bare OpCode).
    FailureResponse,
}

/// Parses EAP-MSCHAPv2 Type-Data; `request` selects the direction.
pub fn parse_mschapv2(td: &[u8], request: bool) -> Option<MsChapV2Msg<'_>> {
    let (&op, rest) = td.split_first()?;
    if !request && rest.is_empty() {
        return match op {
            opcode::SUCCESS => Some(MsChapV2Msg::SuccessResponse),
            opcode::FAILURE => Some(MsChapV2Msg::FailureResponse),
            _ => None,
        };
    }
    let [ms_id, l0, l1, ref body @ ..] = *rest else {
        return None;
    };
    let ms_len = usize::from(u16::from_be_bytes([l0, l1]));
    // MS-Length covers OpCode..end, i.e. the whole Type-Data.
    if ms_len != td.len() {
        return None;
    }
    match (op, request) {
        (opcode::CHALLENGE, true) => {
            let (&vs, b) = body.split_first()?;
            if vs != 16 {
                return None;
            }
            let challenge: &[u8; 16] = b.get(..16)?.try_into().ok()?;
            Some(MsChapV2Msg::Challenge {
                ms_id,
                challenge,
                name: &b[16..],
            })
        }
        (opcode::RESPONSE, false) => {
            let (&vs, b) = body.split_first()?;
            if vs != 49 {
                return None;
            }
            let value: &[u8; 49] = b.get(..49)?.try_into().ok()?;
            Some(MsChapV2Msg::Response {
                ms_id,
                value,
                name: &b[49..],
            })
        }
        (opcode::SUCCESS, true) => Some(MsChapV2Msg::SuccessRequest {
            ms_id,
            message: body,
        }),
        (opcode::FAILURE, true) => Some(MsChapV2Msg::FailureRequest {
            ms_id,
            message: body,
        }),
        _ => None,
    }
}

/// Builds EAP-MSCHAPv2 Type-Data with a header (OpCode, MS-CHAPv2-ID, MS-Length).
pub fn mschapv2_data(op: u8, ms_id: u8, body: &[u8]) -> Vec<u8> {
    let body = &body[..body.len().min(1400)];
    let len = (4 + body.len()) as u16;
    let mut v = Vec::with_capacity(4 + body.len());
    v.push(op);
    v.push(ms_id);
    v.extend_from_slice(&len.to_be_bytes());
    v.extend_from_slice(body);
    v
}

/// Challenge/Response body: Value-Size, Value, Name.
pub fn value_name(value: &[u8], name: &[u8]) -> Vec<u8> {
    let value = &value[..value.len().min(255)];
    let mut v = Vec::with_capacity(1 + value.len() + name.len());
    v.push(value.len() as u8);
    v.extend_from_slice(value);
    v.extend_from_slice(name);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_round_trip() {
        let f = typed_frame(Code::Response, 4, EapType::Identity, b"alice");
        assert_eq!(&f[..4], &[0xFF, 0x03, 0xC2, 0x27]);
        let p = parse(&f[4..]).unwrap();
        assert_eq!(
            p,
            EapPacket {
                code: Code::Response,
                id: 4,
                typ: Some(EapType::Identity),
                type_data: b"alice"
            }
        );
        let mut re = Vec::new();
        p.emit(&mut re);
        assert_eq!(re, &f[4..]);
    }

    #[test]
    fn malformed_eap() {
        assert!(parse(&[1, 1, 0, 4]).is_err(), "request without type");
        assert!(parse(&[3, 1, 0, 5, 0]).is_err(), "success with data");
        assert!(parse(&[3, 1, 0, 4]).is_ok());
        assert!(parse(&[2, 1, 0, 9, 1]).is_err(), "length beyond data");
        assert_eq!(parse(&[9, 1, 0, 4]).unwrap().code, Code::Unknown(9));
        assert_eq!(
            result_frame(false, 7),
            vec![0xFF, 0x03, 0xC2, 0x27, 4, 7, 0, 4]
        );
    }

    #[test]
    fn mschapv2_challenge_and_response() {
        let td = mschapv2_data(opcode::CHALLENGE, 9, &value_name(&[0x11; 16], b"srv"));
        assert_eq!(u16::from_be_bytes([td[2], td[3]]) as usize, td.len());
        match parse_mschapv2(&td, true).unwrap() {
            MsChapV2Msg::Challenge {
                ms_id,
                challenge,
                name,
            } => {
                assert_eq!((ms_id, challenge, name), (9, &[0x11; 16], &b"srv"[..]));
            }
            m => panic!("{m:?}"),
        }
        assert_eq!(
            parse_mschapv2(&td, false),
            None,
            "challenge is request-only"
        );
        for n in 0..td.len() {
            assert_eq!(parse_mschapv2(&td[..n], true), None, "truncated at {n}");
        }
        let td = mschapv2_data(opcode::RESPONSE, 9, &value_name(&[0x22; 49], b"alice"));
        match parse_mschapv2(&td, false).unwrap() {
            MsChapV2Msg::Response { ms_id, value, name } => {
                assert_eq!((ms_id, value, name), (9, &[0x22; 49], &b"alice"[..]));
            }
            m => panic!("{m:?}"),
        }
        // Wrong Value-Size.
        let bad = mschapv2_data(opcode::RESPONSE, 9, &value_name(&[0x22; 48], b"alice"));
        assert_eq!(parse_mschapv2(&bad, false), None);
        assert_eq!(
            parse_mschapv2(&[opcode::SUCCESS], false),
            Some(MsChapV2Msg::SuccessResponse)
        );
        assert_eq!(
            parse_mschapv2(&[opcode::FAILURE], false),
            Some(MsChapV2Msg::FailureResponse)
        );
        assert_eq!(parse_mschapv2(&[opcode::SUCCESS], true), None);
        let s = mschapv2_data(opcode::SUCCESS, 3, b"S=00 M=x");
        assert_eq!(
            parse_mschapv2(&s, true),
            Some(MsChapV2Msg::SuccessRequest {
                ms_id: 3,
                message: b"S=00 M=x"
            })
        );
    }

    #[test]
    fn codes_and_types_round_trip() {
        for v in 0..=255u8 {
            assert_eq!(u8::from(Code::from(v)), v);
            assert_eq!(u8::from(EapType::from(v)), v);
        }
    }
}
