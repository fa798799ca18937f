//! MS-CHAPv2 message formats (RFC 2759 §4–§6).
//!
//! * Challenge: Value-Size 16.
//! * Response: Value-Size 49 = Peer-Challenge (16), Reserved (8, zero),
//!   NT-Response (24), Flags (1, zero).
//! * Success message: `S=<40 hex digits> M=<text>` (we send upper-case hex:
//!   pppd compares the string byte for byte).
//! * Failure message: `E=691 R=<0|1> C=<32 hex digits> V=3 M=<text>`
//!   (RFC 2759 §6; other E= codes: 646 restricted logon hours, 647 account
//!   disabled, 648 password expired, 649 no dial-in permission, 709 error
//!   changing the password). A backend's failure text (RADIUS MS-CHAP-Error,
//!   RFC 2548 §2.1.5) gives the E= code and M= text; R= and C= stay ours.

use crate::keys::{hex_decode, hex_upper};

/// The 49-byte Response value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseValue {
    /// Peer-Challenge.
    pub peer_challenge: [u8; 16],
    /// NT-Response.
    pub nt_response: [u8; 24],
    /// Flags (must be zero; kept for fidelity).
    pub flags: u8,
}

/// Parses the Response value; it must be exactly 49 bytes.
pub fn parse_response_value(v: &[u8]) -> Option<ResponseValue> {
    if v.len() != 49 {
        return None;
    }
    Some(ResponseValue {
        peer_challenge: v[..16].try_into().ok()?,
        nt_response: v[24..48].try_into().ok()?,
        flags: v[48],
    })
}

/// Builds the 49-byte Response value.
pub fn response_value(peer_challenge: &[u8; 16], nt_response: &[u8; 24]) -> [u8; 49] {
    let mut v = [0u8; 49];
    v[..16].copy_from_slice(peer_challenge);
    v[24..48].copy_from_slice(nt_response);
    v
}

/// `S=<hex> M=<message>`.
pub fn success_message(authenticator_response: &[u8; 20], message: &str) -> Vec<u8> {
    format!("S={} M={}", hex_upper(authenticator_response), message).into_bytes()
}

/// `E=691 R=<retry> C=<challenge hex> V=3 M=<message>`.
pub fn failure_message(retry: bool, next_challenge: &[u8; 16], message: &str) -> Vec<u8> {
    failure_message_code(AUTHENTICATION_FAILURE, retry, next_challenge, message)
}

/// E= code of a wrong user name or password (RFC 2759 §6).
pub const AUTHENTICATION_FAILURE: u32 = 691;

/// `E=<code> R=<retry> C=<challenge hex> V=3 M=<message>`.
pub fn failure_message_code(
    code: u32,
    retry: bool,
    next_challenge: &[u8; 16],
    message: &str,
) -> Vec<u8> {
    format!(
        "E={code} R={} C={} V=3 M={}",
        u8::from(retry),
        hex_upper(next_challenge),
        message
    )
    .into_bytes()
}

/// Extracts the authenticator response from a message starting with
/// `S=<40 hex digits>` (followed by nothing or by a space).
pub fn parse_authenticator_response(msg: &[u8]) -> Option<[u8; 20]> {
    let rest = msg.strip_prefix(b"S=")?;
    let hex = rest.get(..40)?;
    match rest.get(40) {
        None | Some(b' ') => {}
        Some(_) => return None,
    }
    hex_decode::<20>(hex)
}

/// The fields of a Failure message we care about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// E= error code (691 = authentication failure, 648 = password expired...).
    pub error: Option<u32>,
    /// R= retry allowed.
    pub retry: bool,
    /// M= text, if present.
    pub message: String,
}

/// Longest M= text taken from a backend.
const MAX_BACKEND_MESSAGE: usize = 200;

/// A backend's failure text (RADIUS MS-CHAP-Error after its Ident byte,
/// RFC 2548 §2.1.5), if it carries a numeric E= code (at most 4 digits):
/// its fields, with the M= text made safe to send on (control characters
/// dropped, trimmed, at most 200 characters). `None`: malformed.
pub fn backend_failure(text: &[u8]) -> Option<Failure> {
    let mut f = parse_failure(text);
    if f.error? > 9999 {
        return None;
    }
    f.message = f
        .message
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_BACKEND_MESSAGE)
        .collect::<String>()
        .trim()
        .to_string();
    Some(f)
}

/// The E= code in plain words (RFC 2759 §6), for the codes users meet.
pub fn error_words(code: u32) -> Option<&'static str> {
    Some(match code {
        646 => "restricted logon hours",
        647 => "account disabled",
        648 => "password expired",
        649 => "no dial-in permission",
        691 => "wrong user name or password",
        709 => "password change failed",
        _ => return None,
    })
}

/// Parses a Failure message leniently (unknown fields are ignored).
pub fn parse_failure(msg: &[u8]) -> Failure {
    let text = String::from_utf8_lossy(msg);
    let mut f = Failure {
        error: None,
        retry: false,
        message: String::new(),
    };
    let (head, m) = match text.find("M=") {
        Some(i) => (&text[..i], text[i + 2..].to_string()),
        None => (&text[..], String::new()),
    };
    f.message = m;
    for tok in head.split_whitespace() {
        if let Some(e) = tok.strip_prefix("E=") {
            f.error = e.parse().ok();
        } else if let Some(r) = tok.strip_prefix("R=") {
            f.retry = r == "1";
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_value_round_trip() {
        let v = response_value(&[1; 16], &[2; 24]);
        assert_eq!(&v[16..24], &[0; 8]);
        let r = parse_response_value(&v).unwrap();
        assert_eq!(r.peer_challenge, [1; 16]);
        assert_eq!(r.nt_response, [2; 24]);
        assert_eq!(r.flags, 0);
        assert!(parse_response_value(&v[..48]).is_none());
    }

    #[test]
    fn success_and_failure_messages() {
        let mut ar = [0u8; 20];
        ar[0] = 0x40;
        ar[19] = 0xab;
        let m = success_message(&ar, "Welcome");
        assert!(m.starts_with(b"S=40"));
        assert_eq!(&m[40..50], b"AB M=Welco");
        assert_eq!(parse_authenticator_response(&m), Some(ar));
        assert_eq!(parse_authenticator_response(&m[..42]), Some(ar));
        assert_eq!(parse_authenticator_response(&m[..41]), None);
        let lower = String::from_utf8(m.clone())
            .unwrap()
            .to_lowercase()
            .replacen("s=", "S=", 1);
        assert_eq!(parse_authenticator_response(lower.as_bytes()), Some(ar));
        let f = failure_message(true, &[0xCD; 16], "bad password");
        assert_eq!(
            String::from_utf8(f.clone()).unwrap(),
            format!("E=691 R=1 C={} V=3 M=bad password", "CD".repeat(16))
        );
        let p = parse_failure(&f);
        assert_eq!(
            p,
            Failure {
                error: Some(691),
                retry: true,
                message: "bad password".into()
            }
        );
        assert_eq!(parse_failure(b"garbage").error, None);
    }

    #[test]
    fn backend_failure_text() {
        let f = backend_failure(
            b"E=648 R=0 C=00112233445566778899AABBCCDDEEFF V=3 M=Password \x1b[31mexpired\r\n",
        )
        .unwrap();
        assert_eq!(f.error, Some(648));
        assert!(!f.retry);
        assert_eq!(f.message, "Password [31mexpired");
        let long = format!("E=691 R=1 M={}", "x".repeat(500));
        let f = backend_failure(long.as_bytes()).unwrap();
        assert!(f.retry);
        assert_eq!(f.message.len(), 200);
        assert_eq!(backend_failure(b"E=648").unwrap().message, "");
        for bad in [
            &b"M=E=648"[..],
            b"E=abc R=0",
            b"E=99999 R=0",
            b"",
            b"R=1 C=00",
        ] {
            assert_eq!(
                backend_failure(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            failure_message_code(648, false, &[0; 16], "expired"),
            format!("E=648 R=0 C={} V=3 M=expired", "00".repeat(16)).into_bytes()
        );
        assert_eq!(error_words(648), Some("password expired"));
        assert_eq!(error_words(123), None);
    }
}
