//! The shared-secret cryptography of RADIUS.
//!
//! * Access-Request: a random Request Authenticator (RFC 2865 §3) supplied by
//!   the caller, User-Password hidden with it (§5.2), and always a
//!   Message-Authenticator (RFC 3579 §3.2), first in the packet.
//! * Accounting-, Disconnect- and CoA-Request: Request Authenticator =
//!   MD5(Code+Identifier+Length+16 zero octets+Attributes+Secret) (RFC 2866
//!   §3, RFC 5176 §2.3); a Message-Authenticator in them is computed with
//!   the authenticator zeroed first (RFC 5176 §3.3).
//! * Replies: Response Authenticator = MD5(Code+Identifier+Length+Request
//!   Authenticator+Attributes+Secret) (RFC 2865 §3); their
//!   Message-Authenticator is the HMAC-MD5 over the reply with the Request
//!   Authenticator in place and the attribute zeroed (RFC 3579 §3.2).
//!   BlastRADIUS (2024): an Access reply without a valid one is refused.
//! * MS-MPPE-Send-Key / Recv-Key salt encryption (RFC 2548 §2.4.2).

use std::sync::Arc;

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

use crate::attr::MESSAGE_AUTHENTICATOR;
use crate::packet::{framed, walk, Code, DecodeError, EncodeError, Packet, HEADER_LEN};

/// A shared secret. `Debug` prints nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<[u8]>);

impl Secret {
    pub fn new(s: impl AsRef<[u8]>) -> Self {
        Secret(Arc::from(s.as_ref()))
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Why a received packet was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    #[error("malformed: {0}")]
    Malformed(#[from] DecodeError),
    #[error("the Response Authenticator is wrong")]
    BadAuthenticator,
    #[error("the Message-Authenticator is missing")]
    MissingMessageAuthenticator,
    #[error("the Message-Authenticator is wrong")]
    BadMessageAuthenticator,
}

fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn hmac_md5(key: &[u8], data: &[u8]) -> [u8; 16] {
    let mut m = <Hmac<Md5> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(data);
    m.finalize().into_bytes().into()
}

/// User-Password hiding (RFC 2865 §5.2): padded to a multiple of 16 (at
/// most 128 octets; longer passwords are cut there).
pub fn hide_password(password: &[u8], secret: &Secret, request_auth: &[u8; 16]) -> Vec<u8> {
    let n = password.len().clamp(1, 128).div_ceil(16) * 16;
    let mut out = vec![0u8; n];
    let take = password.len().min(128);
    out[..take].copy_from_slice(&password[..take]);
    let mut prev: [u8; 16] = *request_auth;
    for chunk in out.chunks_mut(16) {
        let b = md5(&[secret.as_bytes(), &prev]);
        for (c, k) in chunk.iter_mut().zip(b) {
            *c ^= k;
        }
        prev.copy_from_slice(chunk);
    }
    out
}

/// The reverse of [`hide_password`] (trailing NULs removed); None unless a
/// non-empty multiple of 16 octets.
pub fn unhide_password(hidden: &[u8], secret: &Secret, request_auth: &[u8; 16]) -> Option<Vec<u8>> {
    if hidden.is_empty() || hidden.len() % 16 != 0 || hidden.len() > 128 {
        return None;
    }
    let mut out = Vec::with_capacity(hidden.len());
    let mut prev: &[u8] = request_auth;
    for chunk in hidden.chunks(16) {
        let b = md5(&[secret.as_bytes(), prev]);
        out.extend(chunk.iter().zip(b).map(|(c, k)| c ^ k));
        prev = chunk;
    }
    while out.last() == Some(&0) {
        out.pop();
    }
    Some(out)
}

/// Salt encryption of MS-MPPE-Send-Key/Recv-Key (RFC 2548 §2.4.2): the
/// Salt (its high bit is set here), then the key length, key and padding
/// encrypted in 16-octet blocks chained from MD5(Secret+Request
/// Authenticator+Salt).
pub fn salt_encrypt(
    key: &[u8],
    secret: &Secret,
    request_auth: &[u8; 16],
    salt: [u8; 2],
) -> Vec<u8> {
    let salt = [salt[0] | 0x80, salt[1]];
    let key = &key[..key.len().min(239)];
    let mut plain = Vec::with_capacity(key.len() + 16);
    plain.push(key.len() as u8);
    plain.extend_from_slice(key);
    plain.resize(plain.len().div_ceil(16) * 16, 0);
    let mut out = salt.to_vec();
    let mut b = md5(&[secret.as_bytes(), request_auth, &salt]);
    for chunk in plain.chunks(16) {
        let c: Vec<u8> = chunk.iter().zip(b).map(|(p, k)| p ^ k).collect();
        b = md5(&[secret.as_bytes(), &c]);
        out.extend_from_slice(&c);
    }
    out
}

/// Decrypts a salt-encrypted value; None if its form is wrong (no whole
/// blocks, a key length beyond the data).
pub fn salt_decrypt(value: &[u8], secret: &Secret, request_auth: &[u8; 16]) -> Option<Vec<u8>> {
    let (salt, data) = value.split_first_chunk::<2>()?;
    if data.is_empty() || data.len() % 16 != 0 {
        return None;
    }
    let mut plain = Vec::with_capacity(data.len());
    let mut b = md5(&[secret.as_bytes(), request_auth, salt]);
    for chunk in data.chunks(16) {
        plain.extend(chunk.iter().zip(b).map(|(c, k)| c ^ k));
        b = md5(&[secret.as_bytes(), chunk]);
    }
    let len = usize::from(plain[0]);
    plain.get(1..1 + len).map(<[u8]>::to_vec)
}

/// Offsets (in the whole packet) of every Message-Authenticator value.
fn ma_offsets(b: &[u8]) -> Result<Vec<(usize, usize)>, DecodeError> {
    let mut v = Vec::new();
    for a in walk(&b[HEADER_LEN..]) {
        let (off, typ, value) = a.map_err(|o| DecodeError::BadAttribute(o + HEADER_LEN))?;
        if typ == MESSAGE_AUTHENTICATOR {
            v.push((HEADER_LEN + off + 2, value.len()));
        }
    }
    Ok(v)
}

/// Writes the HMAC into a zeroed Message-Authenticator of `b` (the
/// authenticator field must already hold what the RFC says it covers).
fn fill_ma(b: &mut [u8], at: usize, secret: &Secret) {
    b[at..at + 16].fill(0);
    let m = hmac_md5(secret.as_bytes(), b);
    b[at..at + 16].copy_from_slice(&m);
}

/// Checks the Message-Authenticator of `b` (whose authenticator field holds
/// what the HMAC covers); `Ok(false)` when there is none.
fn check_ma(b: &[u8], secret: &Secret) -> Result<bool, VerifyError> {
    let offs = ma_offsets(b)?;
    let [(at, 16)] = offs[..] else {
        return if offs.is_empty() {
            Ok(false)
        } else {
            Err(VerifyError::BadMessageAuthenticator)
        };
    };
    let mut copy = b.to_vec();
    copy[at..at + 16].fill(0);
    let want = hmac_md5(secret.as_bytes(), &copy);
    if bool::from(want.ct_eq(&b[at..at + 16])) {
        Ok(true)
    } else {
        Err(VerifyError::BadMessageAuthenticator)
    }
}

/// Ensures the packet has one Message-Authenticator; with `first` a new
/// one goes first (BlastRADIUS advice), else last.
fn ensure_ma(p: &Packet, first: bool) -> Packet {
    let mut p = p.clone();
    if !p.attrs.iter().any(|a| a.typ == MESSAGE_AUTHENTICATOR) {
        let a = crate::packet::Attr {
            typ: MESSAGE_AUTHENTICATOR,
            value: vec![0; 16],
        };
        if first {
            p.attrs.insert(0, a);
        } else {
            p.attrs.push(a);
        }
    }
    p
}

/// Encodes a request. Access-Request: the packet's authenticator is used
/// as the Request Authenticator (make it random) and a
/// Message-Authenticator is always added. Accounting/Disconnect/CoA: the
/// Request Authenticator is computed; `with_ma` adds a
/// Message-Authenticator (required by our DAE peers, optional in accounting).
pub fn encode_request(p: &Packet, secret: &Secret, with_ma: bool) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    if p.code == Code::AccessRequest {
        ensure_ma(p, true).emit(&mut out)?;
        let at = ma_offsets(&out).expect("own packet")[0].0;
        fill_ma(&mut out, at, secret);
        return Ok(out);
    }
    let p = if with_ma {
        ensure_ma(p, false)
    } else {
        p.clone()
    };
    p.emit(&mut out)?;
    out[4..20].fill(0);
    if let Some(&(at, 16)) = ma_offsets(&out).expect("own packet").first() {
        fill_ma(&mut out, at, secret);
    }
    let auth = md5(&[&out, secret.as_bytes()]);
    out[4..20].copy_from_slice(&auth);
    Ok(out)
}

/// Encodes a reply to a request whose authenticator was `request_auth`,
/// with a Message-Authenticator (first) and the Response Authenticator.
pub fn encode_reply(
    p: &Packet,
    request_auth: &[u8; 16],
    secret: &Secret,
) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    ensure_ma(p, true).emit(&mut out)?;
    out[4..20].copy_from_slice(request_auth);
    let at = ma_offsets(&out).expect("own packet")[0].0;
    fill_ma(&mut out, at, secret);
    let auth = md5(&[&out, secret.as_bytes()]);
    out[4..20].copy_from_slice(&auth);
    Ok(out)
}

/// Checks a reply against the request's authenticator: the Response
/// Authenticator always; the Message-Authenticator when present, and its
/// presence when `require_ma`.
pub fn verify_reply(
    b: &[u8],
    request_auth: &[u8; 16],
    secret: &Secret,
    require_ma: bool,
) -> Result<Packet, VerifyError> {
    let b = framed(b)?;
    let p = Packet::parse(b)?;
    let mut copy = b.to_vec();
    copy[4..20].copy_from_slice(request_auth);
    let want = md5(&[&copy, secret.as_bytes()]);
    if !bool::from(want.ct_eq(&b[4..20])) {
        return Err(VerifyError::BadAuthenticator);
    }
    if !check_ma(&copy, secret)? && require_ma {
        return Err(VerifyError::MissingMessageAuthenticator);
    }
    Ok(p)
}

/// Checks an Accounting-, Disconnect- or CoA-Request (RFC 2866 §3, RFC 5176
/// §2.3 and §3.3): its Request Authenticator, and its Message-Authenticator
/// when present (required when `require_ma`).
pub fn verify_request(b: &[u8], secret: &Secret, require_ma: bool) -> Result<Packet, VerifyError> {
    let b = framed(b)?;
    let p = Packet::parse(b)?;
    let mut copy = b.to_vec();
    copy[4..20].fill(0);
    let want = md5(&[&copy, secret.as_bytes()]);
    if !bool::from(want.ct_eq(&b[4..20])) {
        return Err(VerifyError::BadAuthenticator);
    }
    if !check_ma(&copy, secret)? && require_ma {
        return Err(VerifyError::MissingMessageAuthenticator);
    }
    Ok(p)
}

/// Checks the Message-Authenticator of an Access-Request (what a server
/// does; used by tests and simulators).
pub fn verify_access_request(b: &[u8], secret: &Secret) -> Result<Packet, VerifyError> {
    let b = framed(b)?;
    let p = Packet::parse(b)?;
    if !check_ma(b, secret)? {
        return Err(VerifyError::MissingMessageAuthenticator);
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attr;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 2865 §7.1: the Access-Request of user nemo, password
    /// "arctangent", secret "xyzzy5461", and its Access-Accept.
    #[test]
    fn rfc2865_example() {
        let secret = Secret::new("xyzzy5461");
        let req = hex("01 00 00 38 0f 40 3f 94 73 97 80 57 bd 83 d5 cb
             98 f4 22 7a 01 06 6e 65 6d 6f 02 12 0d be 70 8d
             93 d4 13 ce 31 96 e4 3f 78 2a 0a ee 04 06 c0 a8
             01 10 05 06 00 00 00 03");
        let p = Packet::parse(&req).unwrap();
        assert_eq!(p.text(attr::USER_NAME), Some("nemo"));
        let hidden = p.get(attr::USER_PASSWORD).unwrap();
        assert_eq!(
            hide_password(b"arctangent", &secret, &p.authenticator),
            hidden
        );
        assert_eq!(
            unhide_password(hidden, &secret, &p.authenticator).unwrap(),
            b"arctangent"
        );
        let accept = hex("02 00 00 26 86 fe 22 0e 76 24 ba 2a 10 05 f6 bf
             9b 55 e0 b2 06 06 00 00 00 01 0f 06 00 00 00 00
             0e 06 c0 a8 01 03");
        // The RFC's reply predates Message-Authenticator.
        let r = verify_reply(&accept, &p.authenticator, &secret, false).unwrap();
        assert_eq!(r.code, Code::AccessAccept);
        assert_eq!(r.u32(attr::SERVICE_TYPE), Some(1));
        assert_eq!(
            verify_reply(&accept, &p.authenticator, &secret, true),
            Err(VerifyError::MissingMessageAuthenticator)
        );
        assert_eq!(
            verify_reply(&accept, &p.authenticator, &Secret::new("other"), false),
            Err(VerifyError::BadAuthenticator)
        );
        let mut bad = accept.clone();
        bad[25] ^= 1;
        assert_eq!(
            verify_reply(&bad, &p.authenticator, &secret, false),
            Err(VerifyError::BadAuthenticator)
        );
    }

    #[test]
    fn message_authenticator_round_trip_and_tamper() {
        let secret = Secret::new("s3cret");
        let mut p = Packet::new(Code::AccessRequest, 9, [3; 16]);
        p.push(attr::USER_NAME, "bob");
        let bytes = encode_request(&p, &secret, false).unwrap();
        assert_eq!(bytes[20], attr::MESSAGE_AUTHENTICATOR, "first attribute");
        let got = verify_access_request(&bytes, &secret).unwrap();
        assert_eq!(got.text(attr::USER_NAME), Some("bob"));
        let mut bad = bytes.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(
            verify_access_request(&bad, &secret),
            Err(VerifyError::BadMessageAuthenticator)
        );

        let mut r = Packet::new(Code::AccessAccept, 9, [0; 16]);
        r.push_u32(attr::SESSION_TIMEOUT, 60);
        let reply = encode_reply(&r, &[3; 16], &secret).unwrap();
        assert!(verify_reply(&reply, &[3; 16], &secret, true).is_ok());
        assert_eq!(
            verify_reply(&reply, &[4; 16], &secret, true),
            Err(VerifyError::BadAuthenticator)
        );
        // A changed Message-Authenticator with a Response Authenticator
        // recomputed to match (what a forger without the secret cannot do
        // for the HMAC but can try for MD5 prefixes): still refused.
        let mut forged = reply.clone();
        forged[24] ^= 1;
        let mut c = forged.clone();
        c[4..20].copy_from_slice(&[3; 16]);
        let a = md5(&[&c, secret.as_bytes()]);
        forged[4..20].copy_from_slice(&a);
        assert_eq!(
            verify_reply(&forged, &[3; 16], &secret, true),
            Err(VerifyError::BadMessageAuthenticator)
        );
        // Two Message-Authenticators: refused.
        let mut two = r.clone();
        two.push(attr::MESSAGE_AUTHENTICATOR, vec![0; 16]);
        two.push(attr::MESSAGE_AUTHENTICATOR, vec![0; 16]);
        let b = encode_reply(&two, &[3; 16], &secret).unwrap();
        assert_eq!(
            verify_reply(&b, &[3; 16], &secret, true),
            Err(VerifyError::BadMessageAuthenticator)
        );
    }

    #[test]
    fn accounting_and_dae_requests() {
        let secret = Secret::new("xyz");
        let mut p = Packet::new(Code::AccountingRequest, 1, [0xAA; 16]);
        p.push_u32(attr::ACCT_STATUS_TYPE, attr::status::START);
        let b = encode_request(&p, &secret, false).unwrap();
        assert!(verify_request(&b, &secret, false).is_ok());
        assert_eq!(
            verify_request(&b, &secret, true),
            Err(VerifyError::MissingMessageAuthenticator)
        );
        assert_eq!(
            verify_request(&b, &Secret::new("abc"), false),
            Err(VerifyError::BadAuthenticator)
        );
        let mut d = Packet::new(Code::DisconnectRequest, 2, [0; 16]);
        d.push(attr::USER_NAME, "alice");
        let b = encode_request(&d, &secret, true).unwrap();
        assert!(verify_request(&b, &secret, true).is_ok());
    }

    #[test]
    fn password_hiding_lengths() {
        let s = Secret::new("k");
        for n in [0, 1, 15, 16, 17, 128] {
            let pw = vec![b'x'; n];
            let h = hide_password(&pw, &s, &[1; 16]);
            assert_eq!(h.len(), n.max(1).div_ceil(16) * 16);
            assert_eq!(unhide_password(&h, &s, &[1; 16]).unwrap(), pw);
        }
        assert_eq!(unhide_password(&[0; 15], &s, &[1; 16]), None);
    }

    proptest::proptest! {
        #[test]
        fn hiding_and_salt_round_trip(
            pw in proptest::collection::vec(1u8..=255, 1..=128),
            key in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..=64),
            secret in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..=40),
            auth in proptest::prelude::any::<[u8; 16]>(),
            salt in proptest::prelude::any::<[u8; 2]>(),
        ) {
            let s = Secret::new(secret);
            let h = hide_password(&pw, &s, &auth);
            proptest::prop_assert_eq!(unhide_password(&h, &s, &auth).unwrap(), pw);
            let e = salt_encrypt(&key, &s, &auth, salt);
            proptest::prop_assert_eq!(salt_decrypt(&e, &s, &auth).unwrap(), key);
        }

        #[test]
        fn signed_packets_verify_and_any_flip_fails(
            attrs in proptest::collection::vec(
                (1u8..=79, proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)),
                0..6,
            ),
            flip in proptest::prelude::any::<proptest::sample::Index>(),
        ) {
            let s = Secret::new("k");
            let mut p = Packet::new(Code::AccessAccept, 3, [0; 16]);
            for (t, v) in attrs {
                p.push(t, v);
            }
            let b = encode_reply(&p, &[9; 16], &s).unwrap();
            proptest::prop_assert!(verify_reply(&b, &[9; 16], &s, true).is_ok());
            let mut bad = b.clone();
            let i = flip.index(bad.len());
            bad[i] ^= 0x01;
            proptest::prop_assert!(verify_reply(&bad, &[9; 16], &s, true).is_err());
        }
    }

    #[test]
    fn mppe_salt_round_trip() {
        let s = Secret::new("secret");
        let key = [0x5Au8; 16];
        let enc = salt_encrypt(&key, &s, &[7; 16], [0x12, 0x34]);
        assert_eq!(enc.len(), 2 + 32, "1+16 octets pad to two blocks");
        assert_eq!(enc[0], 0x92, "salt high bit set");
        assert_eq!(salt_decrypt(&enc, &s, &[7; 16]).unwrap(), key);
        assert_ne!(salt_decrypt(&enc, &s, &[8; 16]).as_deref(), Some(&key[..]));
        assert_eq!(salt_decrypt(&enc[..20], &s, &[7; 16]), None);
    }
}
