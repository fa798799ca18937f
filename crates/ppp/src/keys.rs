//! MS-CHAPv2 cryptography (RFC 2759 §8), MPPE master keys (RFC 3079 §3.3–3.4)
//! and the SSTP Higher-Layer Authentication Key (MS-SSTP §3.2.5.2.2).
//!
//! * [`nt_password_hash`]: MD4 of the UTF-16LE password (RFC 2759 §8.3).
//! * [`generate_nt_response`], [`challenge_response`] (§8.1, §8.5),
//!   [`authenticator_response`] (§8.7).
//! * [`master_key`], [`asymmetric_start_key`] (RFC 3079 §3.4) and
//!   [`MppeKeys`]: the 16-byte MasterSendKey/MasterReceiveKey of one side.
//! * [`hlak_server`] / [`hlak_client`]: MS-SSTP §3.2.5.2.2 — server HLAK =
//!   MasterReceiveKey | MasterSendKey, client HLAK = MasterSendKey |
//!   MasterReceiveKey. The server's receive key is the client's send key, so
//!   both ends compute the same 32 bytes. EAP-MSCHAPv2's MSK (RFC 3748 via
//!   draft-kamath-pppext-eap-mschapv2, as hostapd and Windows derive it) is
//!   server Recv-Key | server Send-Key, i.e. the same 32 bytes; methods that
//!   derive no keys (PAP, CHAP-MD5, none) give 32 zero bytes.

use md4::{Digest as _, Md4};
use sha1::Sha1;
use zeroize::Zeroize;

/// "Magic server to client signing constant" (RFC 2759 §8.7).
const AUTH_MAGIC1: &[u8; 39] = b"Magic server to client signing constant";
/// "Pad to make it do more than one iteration" (RFC 2759 §8.7).
const AUTH_MAGIC2: &[u8; 41] = b"Pad to make it do more than one iteration";
/// RFC 3079 §3.4 GetMasterKey Magic1.
const MPPE_MASTER_MAGIC: &[u8; 27] = b"This is the MPPE Master Key";
/// RFC 3079 §3.4 GetAsymmetricStartKey Magic2.
const MPPE_MAGIC2: &[u8; 84] =
    b"On the client side, this is the send key; on the server side, it is the receive key.";
/// RFC 3079 §3.4 GetAsymmetricStartKey Magic3.
const MPPE_MAGIC3: &[u8; 84] =
    b"On the client side, this is the receive key; on the server side, it is the send key.";
const SHS_PAD1: [u8; 40] = [0x00; 40];
const SHS_PAD2: [u8; 40] = [0xF2; 40];

/// An NT password hash, MD4(UTF-16LE(password)). Debug prints nothing; the
/// bytes are zeroized on drop.
#[derive(Clone)]
pub struct NtHash(pub(crate) [u8; 16]);

impl NtHash {
    /// Wraps raw hash bytes.
    pub fn from_bytes(b: [u8; 16]) -> Self {
        NtHash(b)
    }
    /// The hash bytes (handle with care).
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
    /// Lower-case hex, as stored in the users file.
    pub fn to_hex(&self) -> String {
        hex_lower(&self.0)
    }
}

impl std::fmt::Debug for NtHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NtHash(..)")
    }
}

impl Drop for NtHash {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl PartialEq for NtHash {
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        self.0.ct_eq(&other.0).into()
    }
}
impl Eq for NtHash {}

/// NtPasswordHash (RFC 2759 §8.3): MD4 of the password in UTF-16LE.
pub fn nt_password_hash(password: &str) -> NtHash {
    let mut h = Md4::new();
    let mut unit = [0u8; 2];
    for u in password.encode_utf16() {
        unit = u.to_le_bytes();
        h.update(unit);
    }
    unit.zeroize();
    NtHash(h.finalize().into())
}

/// HashNtPasswordHash (RFC 2759 §8.4).
pub fn hash_nt_password_hash(hash: &NtHash) -> [u8; 16] {
    Md4::digest(hash.0).into()
}

/// ChallengeHash (RFC 2759 §8.2). `username` must already be stripped of any
/// `DOMAIN\` prefix (see [`strip_domain`]).
pub fn challenge_hash(
    peer_challenge: &[u8; 16],
    auth_challenge: &[u8; 16],
    username: &[u8],
) -> [u8; 8] {
    let mut h = Sha1::new();
    h.update(peer_challenge);
    h.update(auth_challenge);
    h.update(username);
    let d = h.finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&d[..8]);
    out
}

/// RFC 2759 §8.2: only the user name, without a prepended `DOMAIN\`, goes
/// into ChallengeHash (pppd and Windows strip up to the last backslash).
pub fn strip_domain(username: &[u8]) -> &[u8] {
    match username.iter().rposition(|&b| b == b'\\') {
        Some(i) => &username[i + 1..],
        None => username,
    }
}

/// DesEncrypt with a 7-byte key (RFC 2759 §8.6): the key is spread over 8
/// bytes (parity bits ignored by DES).
fn des_encrypt(clear: &[u8; 8], key7: &[u8]) -> [u8; 8] {
    use des::cipher::{generic_array::GenericArray, BlockEncrypt, KeyInit};
    let k = key7;
    let mut key = [
        k[0],
        (k[0] << 7) | (k[1] >> 1),
        (k[1] << 6) | (k[2] >> 2),
        (k[2] << 5) | (k[3] >> 3),
        (k[3] << 4) | (k[4] >> 4),
        (k[4] << 3) | (k[5] >> 5),
        (k[5] << 2) | (k[6] >> 6),
        k[6] << 1,
    ];
    let cipher = des::Des::new(GenericArray::from_slice(&key));
    key.zeroize();
    let mut block = GenericArray::clone_from_slice(clear);
    cipher.encrypt_block(&mut block);
    block.into()
}

/// ChallengeResponse (RFC 2759 §8.5).
pub fn challenge_response(challenge: &[u8; 8], hash: &NtHash) -> [u8; 24] {
    let mut z = [0u8; 21];
    z[..16].copy_from_slice(&hash.0);
    let mut out = [0u8; 24];
    out[..8].copy_from_slice(&des_encrypt(challenge, &z[0..7]));
    out[8..16].copy_from_slice(&des_encrypt(challenge, &z[7..14]));
    out[16..].copy_from_slice(&des_encrypt(challenge, &z[14..21]));
    z.zeroize();
    out
}

/// GenerateNTResponse (RFC 2759 §8.1) from the password hash.
pub fn generate_nt_response(
    auth_challenge: &[u8; 16],
    peer_challenge: &[u8; 16],
    username: &[u8],
    hash: &NtHash,
) -> [u8; 24] {
    let ch = challenge_hash(peer_challenge, auth_challenge, strip_domain(username));
    challenge_response(&ch, hash)
}

/// GenerateAuthenticatorResponse (RFC 2759 §8.7): the 20-byte digest; the
/// wire form is `S=` + 40 upper-case hex digits ([`authenticator_response_string`]).
pub fn authenticator_response(
    hash: &NtHash,
    nt_response: &[u8; 24],
    peer_challenge: &[u8; 16],
    auth_challenge: &[u8; 16],
    username: &[u8],
) -> [u8; 20] {
    let mut hh = hash_nt_password_hash(hash);
    let mut h = Sha1::new();
    h.update(hh);
    h.update(nt_response);
    h.update(AUTH_MAGIC1);
    let digest = h.finalize();
    hh.zeroize();
    let ch = challenge_hash(peer_challenge, auth_challenge, strip_domain(username));
    let mut h = Sha1::new();
    h.update(digest);
    h.update(ch);
    h.update(AUTH_MAGIC2);
    h.finalize().into()
}

/// `S=` followed by 40 upper-case hex digits (pppd compares it byte for byte).
pub fn authenticator_response_string(digest: &[u8; 20]) -> String {
    let mut s = String::with_capacity(42);
    s.push_str("S=");
    s.push_str(&hex_upper(digest));
    s
}

/// GetMasterKey (RFC 3079 §3.4).
pub fn master_key(password_hash_hash: &[u8; 16], nt_response: &[u8; 24]) -> [u8; 16] {
    let mut h = Sha1::new();
    h.update(password_hash_hash);
    h.update(nt_response);
    h.update(MPPE_MASTER_MAGIC);
    let d = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}

/// GetAsymmetricStartKey (RFC 3079 §3.4) for a 16-byte (128-bit) key.
pub fn asymmetric_start_key(master: &[u8; 16], is_send: bool, is_server: bool) -> [u8; 16] {
    let magic = if is_send == is_server {
        MPPE_MAGIC3
    } else {
        MPPE_MAGIC2
    };
    let mut h = Sha1::new();
    h.update(master);
    h.update(SHS_PAD1);
    h.update(magic);
    h.update(SHS_PAD2);
    let d = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}

/// The MPPE master keys of one side (RFC 3079 §3): what RADIUS calls
/// MS-MPPE-Send-Key and MS-MPPE-Recv-Key (RFC 2548 §2.4.2–2.4.3), from the
/// point of view of the side holding them. Zeroized on drop; Debug prints nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct MppeKeys {
    /// MasterSendKey.
    pub send: [u8; 16],
    /// MasterReceiveKey.
    pub recv: [u8; 16],
}

impl std::fmt::Debug for MppeKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MppeKeys(..)")
    }
}

impl Drop for MppeKeys {
    fn drop(&mut self) {
        self.send.zeroize();
        self.recv.zeroize();
    }
}

impl MppeKeys {
    /// Derives one side's keys from the NT hash and the NT-Response
    /// (RFC 3079 §3.3–3.4, 128-bit keys).
    pub fn derive(hash: &NtHash, nt_response: &[u8; 24], is_server: bool) -> Self {
        let mut hh = hash_nt_password_hash(hash);
        let mut mk = master_key(&hh, nt_response);
        let keys = MppeKeys {
            send: asymmetric_start_key(&mk, true, is_server),
            recv: asymmetric_start_key(&mk, false, is_server),
        };
        hh.zeroize();
        mk.zeroize();
        keys
    }
}

/// Server HLAK = MasterReceiveKey | MasterSendKey (MS-SSTP §3.2.5.2.2).
pub fn hlak_server(keys: &MppeKeys) -> [u8; 32] {
    let mut h = [0u8; 32];
    h[..16].copy_from_slice(&keys.recv);
    h[16..].copy_from_slice(&keys.send);
    h
}

/// Client HLAK = MasterSendKey | MasterReceiveKey (MS-SSTP §3.2.5.2.2).
pub fn hlak_client(keys: &MppeKeys) -> [u8; 32] {
    let mut h = [0u8; 32];
    h[..16].copy_from_slice(&keys.send);
    h[16..].copy_from_slice(&keys.recv);
    h
}

pub(crate) fn hex_upper(b: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789ABCDEF";
    b.iter()
        .flat_map(|x| {
            [
                D[usize::from(x >> 4)] as char,
                D[usize::from(x & 15)] as char,
            ]
        })
        .collect()
}

pub(crate) fn hex_lower(b: &[u8]) -> String {
    hex_upper(b).to_ascii_lowercase()
}

/// Decodes exactly `N` bytes of hex (either case).
pub fn hex_decode<const N: usize>(s: &[u8]) -> Option<[u8; N]> {
    if s.len() != N * 2 {
        return None;
    }
    let nib = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    };
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = (nib(s[2 * i])? << 4) | nib(s[2 * i + 1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 2759 §9.2 and RFC 3079 §3.5.3.
    const USER: &[u8] = b"User";
    const PASSWORD: &str = "clientPass";
    const AUTH_CHALLENGE: [u8; 16] = [
        0x5B, 0x5D, 0x7C, 0x7D, 0x7B, 0x3F, 0x2F, 0x3E, 0x3C, 0x2C, 0x60, 0x21, 0x32, 0x26, 0x26,
        0x28,
    ];
    const PEER_CHALLENGE: [u8; 16] = [
        0x21, 0x40, 0x23, 0x24, 0x25, 0x5E, 0x26, 0x2A, 0x28, 0x29, 0x5F, 0x2B, 0x3A, 0x33, 0x7C,
        0x7E,
    ];
    const CHALLENGE: [u8; 8] = [0xD0, 0x2E, 0x43, 0x86, 0xBC, 0xE9, 0x12, 0x26];
    const PASSWORD_HASH: [u8; 16] = [
        0x44, 0xEB, 0xBA, 0x8D, 0x53, 0x12, 0xB8, 0xD6, 0x11, 0x47, 0x44, 0x11, 0xF5, 0x69, 0x89,
        0xAE,
    ];
    const NT_RESPONSE: [u8; 24] = [
        0x82, 0x30, 0x9E, 0xCD, 0x8D, 0x70, 0x8B, 0x5E, 0xA0, 0x8F, 0xAA, 0x39, 0x81, 0xCD, 0x83,
        0x54, 0x42, 0x33, 0x11, 0x4A, 0x3D, 0x85, 0xD6, 0xDF,
    ];
    const PASSWORD_HASH_HASH: [u8; 16] = [
        0x41, 0xC0, 0x0C, 0x58, 0x4B, 0xD2, 0xD9, 0x1C, 0x40, 0x17, 0xA2, 0xA1, 0x2F, 0xA5, 0x9F,
        0x3F,
    ];
    const AUTH_RESPONSE: &str = "S=407A5589115FD0D6209F510FE9C04566932CDA56";
    const MASTER_KEY: [u8; 16] = [
        0xFD, 0xEC, 0xE3, 0x71, 0x7A, 0x8C, 0x83, 0x8C, 0xB3, 0x88, 0xE5, 0x27, 0xAE, 0x3C, 0xDD,
        0x31,
    ];
    const SEND_START_KEY_128: [u8; 16] = [
        0x8B, 0x7C, 0xDC, 0x14, 0x9B, 0x99, 0x3A, 0x1B, 0xA1, 0x18, 0xCB, 0x15, 0x3F, 0x56, 0xDC,
        0xCB,
    ];

    #[test]
    fn rfc2759_section_9_2() {
        assert_eq!(
            challenge_hash(&PEER_CHALLENGE, &AUTH_CHALLENGE, USER),
            CHALLENGE
        );
        let h = nt_password_hash(PASSWORD);
        assert_eq!(h.0, PASSWORD_HASH);
        assert_eq!(hash_nt_password_hash(&h), PASSWORD_HASH_HASH);
        assert_eq!(
            generate_nt_response(&AUTH_CHALLENGE, &PEER_CHALLENGE, USER, &h),
            NT_RESPONSE
        );
        let ar = authenticator_response(&h, &NT_RESPONSE, &PEER_CHALLENGE, &AUTH_CHALLENGE, USER);
        assert_eq!(authenticator_response_string(&ar), AUTH_RESPONSE);
    }

    #[test]
    fn domain_is_stripped_for_challenge_hash() {
        let h = nt_password_hash(PASSWORD);
        assert_eq!(
            generate_nt_response(&AUTH_CHALLENGE, &PEER_CHALLENGE, b"CORP\\User", &h),
            NT_RESPONSE
        );
        assert_eq!(strip_domain(b"a\\b\\c"), b"c");
        assert_eq!(strip_domain(b"user@realm"), b"user@realm");
    }

    #[test]
    fn rfc3079_section_3_5_3() {
        assert_eq!(master_key(&PASSWORD_HASH_HASH, &NT_RESPONSE), MASTER_KEY);
        // The RFC's SendStartKey is the server's send key (IsSend, IsServer).
        assert_eq!(
            asymmetric_start_key(&MASTER_KEY, true, true),
            SEND_START_KEY_128
        );
        // ... which is what the client receives with.
        assert_eq!(
            asymmetric_start_key(&MASTER_KEY, false, false),
            SEND_START_KEY_128
        );
        let h = nt_password_hash(PASSWORD);
        let server = MppeKeys::derive(&h, &NT_RESPONSE, true);
        let client = MppeKeys::derive(&h, &NT_RESPONSE, false);
        assert_eq!(server.send, SEND_START_KEY_128);
        assert_eq!(client.recv, server.send);
        assert_eq!(client.send, server.recv);
        assert_ne!(server.send, server.recv);
    }

    #[test]
    fn hlak_orders_are_reversed_and_agree() {
        let h = nt_password_hash(PASSWORD);
        let server = MppeKeys::derive(&h, &NT_RESPONSE, true);
        let client = MppeKeys::derive(&h, &NT_RESPONSE, false);
        let hs = hlak_server(&server);
        assert_eq!(&hs[..16], &server.recv);
        assert_eq!(&hs[16..], &SEND_START_KEY_128);
        let hc = hlak_client(&client);
        assert_eq!(&hc[..16], &client.send);
        assert_eq!(hs, hc);
    }

    #[test]
    fn nt_hash_of_non_ascii_uses_utf16() {
        // "ü" is U+00FC -> FC 00 in UTF-16LE; differs from the Latin-1 single byte.
        let a = nt_password_hash("\u{fc}");
        let mut h = Md4::new();
        h.update([0xFC, 0x00]);
        let want: [u8; 16] = h.finalize().into();
        assert_eq!(a.0, want);
        assert_eq!(format!("{a:?}"), "NtHash(..)");
    }

    #[test]
    fn hex_helpers() {
        assert_eq!(hex_upper(&[0x0A, 0xFF]), "0AFF");
        assert_eq!(hex_decode::<2>(b"0aFf"), Some([0x0A, 0xFF]));
        assert_eq!(hex_decode::<2>(b"0aF"), None);
        assert_eq!(hex_decode::<1>(b"0g"), None);
    }
}
