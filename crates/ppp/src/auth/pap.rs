//! PAP packet formats (RFC 1334 §2.2).
//!
//! * Authenticate-Request (1): Peer-ID Length, Peer-ID, Passwd-Length, Password.
//! * Authenticate-Ack (2) / Authenticate-Nak (3): Msg-Length, Message.

use crate::frame::Protocol;
use crate::wire::control_frame;

/// Authenticate-Request.
pub const AUTH_REQ: u8 = 1;
/// Authenticate-Ack.
pub const AUTH_ACK: u8 = 2;
/// Authenticate-Nak.
pub const AUTH_NAK: u8 = 3;

/// Parses the data of an Authenticate-Request into (peer-id, password).
pub fn parse_request(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&ul, rest) = data.split_first()?;
    let user = rest.get(..usize::from(ul))?;
    let rest = &rest[usize::from(ul)..];
    let (&pl, rest) = rest.split_first()?;
    let pass = rest.get(..usize::from(pl))?;
    // Anything after the password is padding-like trailing data: reject.
    if rest.len() != usize::from(pl) {
        return None;
    }
    Some((user, pass))
}

/// Builds an Authenticate-Request frame. Fields longer than 255 bytes are truncated.
pub fn request_frame(id: u8, user: &[u8], password: &[u8]) -> Vec<u8> {
    let user = &user[..user.len().min(255)];
    let password = &password[..password.len().min(255)];
    let mut d = Vec::with_capacity(2 + user.len() + password.len());
    d.push(user.len() as u8);
    d.extend_from_slice(user);
    d.push(password.len() as u8);
    d.extend_from_slice(password);
    let f = control_frame(Protocol::Pap, AUTH_REQ, id, &d);
    zeroize::Zeroize::zeroize(&mut d);
    f
}

/// Builds an Authenticate-Ack or -Nak frame with a message.
pub fn reply_frame(code: u8, id: u8, message: &[u8]) -> Vec<u8> {
    let m = &message[..message.len().min(255)];
    let mut d = Vec::with_capacity(1 + m.len());
    d.push(m.len() as u8);
    d.extend_from_slice(m);
    control_frame(Protocol::Pap, code, id, &d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trip_and_truncation() {
        let f = request_frame(5, b"bob", b"pw");
        assert_eq!(&f[4..], &[1, 5, 0, 11, 3, b'b', b'o', b'b', 2, b'p', b'w']);
        assert_eq!(parse_request(&f[8..]), Some((&b"bob"[..], &b"pw"[..])));
        let d = &f[8..];
        for n in 0..d.len() {
            assert_eq!(parse_request(&d[..n]), None, "{n}");
        }
        let mut long = d.to_vec();
        long.push(0);
        assert_eq!(parse_request(&long), None);
    }

    #[test]
    fn reply_layout() {
        assert_eq!(
            &reply_frame(AUTH_NAK, 9, b"no")[4..],
            &[3, 9, 0, 7, 2, b'n', b'o']
        );
    }
}
