//! NTLM proxy authentication, client side: NTLMv2 only (MS-NLMP).
//!
//! * §2.2.1.1 NEGOTIATE_MESSAGE, §2.2.1.2 CHALLENGE_MESSAGE, §2.2.1.3
//!   AUTHENTICATE_MESSAGE; §2.2.2.1 AV_PAIR; §2.2.2.5 flags.
//! * §3.3.2 NTLMv2: `NTOWFv2 = HMAC_MD5(MD4(UNICODE(password)),
//!   UNICODE(UPPER(user) || domain))`, `NTProofStr = HMAC_MD5(key,
//!   server_challenge || temp)`, the LMv2 response, and the rule that a
//!   challenge carrying `MsvAvTimestamp` takes that time and a zero LM
//!   response.
//! * §4.2.4: the NTLMv2 test vectors checked below.
//!
//! Over HTTP (the "NTLM" scheme) the three messages travel base64-encoded in
//! `Proxy-Authorization` / `Proxy-Authenticate` and the handshake is bound to
//! one connection: negotiate, challenge and authenticate must use the same
//! TCP connection. No session security is set up (no KEY_EXCH, SIGN, SEAL):
//! CONNECT only needs the authentication.
//!
//! A user given as `DOMAIN\user` is split into domain and user; otherwise
//! the domain is empty (a `user@domain` name works as is).

use hmac::{Hmac, Mac};
use md4::{Digest as _, Md4};
use md5::Md5;

const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";

/// NTLMSSP_NEGOTIATE_UNICODE.
const UNICODE: u32 = 0x0000_0001;
/// NTLM_NEGOTIATE_OEM.
const OEM: u32 = 0x0000_0002;
/// NTLMSSP_REQUEST_TARGET.
const REQUEST_TARGET: u32 = 0x0000_0004;
/// NTLMSSP_NEGOTIATE_NTLM.
const NTLM: u32 = 0x0000_0200;
/// NTLMSSP_NEGOTIATE_ALWAYS_SIGN.
const ALWAYS_SIGN: u32 = 0x0000_8000;
/// NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY.
const EXTENDED_SESSIONSECURITY: u32 = 0x0008_0000;
/// NTLMSSP_NEGOTIATE_TARGET_INFO.
const TARGET_INFO: u32 = 0x0080_0000;
/// NTLMSSP_NEGOTIATE_128.
const N128: u32 = 0x2000_0000;
/// NTLMSSP_NEGOTIATE_56.
const N56: u32 = 0x8000_0000;

/// The flags we ask for and accept.
const OUR_FLAGS: u32 = UNICODE
    | OEM
    | REQUEST_TARGET
    | NTLM
    | ALWAYS_SIGN
    | EXTENDED_SESSIONSECURITY
    | TARGET_INFO
    | N128
    | N56;

/// MsvAvEOL.
const AV_EOL: u16 = 0;
/// MsvAvTimestamp.
const AV_TIMESTAMP: u16 = 7;

/// Seconds from 1601-01-01 (FILETIME's epoch) to 1970-01-01.
const FILETIME_UNIX_OFFSET: u64 = 11_644_473_600;

/// Why a CHALLENGE_MESSAGE was not usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NtlmError {
    /// Not base64, or not an NTLMSSP message of type 2.
    #[error("the proxy's NTLM challenge is not a CHALLENGE_MESSAGE")]
    NotChallenge,
    /// A field points outside the message, or the target info is malformed.
    #[error("the proxy's NTLM challenge is malformed")]
    Malformed,
}

/// The parts of a CHALLENGE_MESSAGE (§2.2.1.2) an NTLMv2 answer needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NtlmChallenge {
    flags: u32,
    server_challenge: [u8; 8],
    target_info: Vec<u8>,
    timestamp: Option<[u8; 8]>,
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(i..i + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?))
}

/// The bytes a `len, maxlen, offset` field (§2.2.1.2) points at.
fn field(b: &[u8], at: usize) -> Option<&[u8]> {
    let len = usize::from(u16_at(b, at)?);
    let off = usize::try_from(u32_at(b, at + 4)?).ok()?;
    b.get(off..off.checked_add(len)?)
}

impl NtlmChallenge {
    /// Parses a CHALLENGE_MESSAGE. Old servers send 32 or 40 bytes without
    /// target info, or (squid's `ntlm_fake_auth`) a 32-byte header, 8
    /// bytes of context and a payload, so that bytes 40..48 are not a
    /// TargetInfoFields: target info that does not lie inside the message
    /// is taken as absent. Without it the NTLMv2 blob carries an empty AV
    /// list.
    pub fn parse(b: &[u8]) -> Result<Self, NtlmError> {
        if b.len() < 32 || &b[..8] != SIGNATURE || u32_at(b, 8) != Some(2) {
            return Err(NtlmError::NotChallenge);
        }
        let flags = u32_at(b, 20).ok_or(NtlmError::Malformed)?;
        let server_challenge: [u8; 8] = b[24..32].try_into().map_err(|_| NtlmError::Malformed)?;
        let mut target_info = Vec::new();
        if b.len() >= 48 && flags & TARGET_INFO != 0 {
            target_info = field(b, 40).map(<[u8]>::to_vec).unwrap_or_default();
        }
        let timestamp = scan_av(&target_info)?;
        if target_info.is_empty() {
            // An empty AV list still ends with MsvAvEOL.
            target_info = vec![0; 4];
        }
        Ok(NtlmChallenge {
            flags,
            server_challenge,
            target_info,
            timestamp,
        })
    }

    /// Parses the base64 token of a `Proxy-Authenticate: NTLM <token>`.
    pub fn from_base64(token: &str) -> Result<Self, NtlmError> {
        use base64::Engine as _;
        if token.len() > 8192 {
            return Err(NtlmError::NotChallenge);
        }
        let raw = base64::engine::general_purpose::STANDARD
            .decode(token.trim())
            .map_err(|_| NtlmError::NotChallenge)?;
        Self::parse(&raw)
    }
}

/// Walks an AV_PAIR list (§2.2.2.1): it must end with MsvAvEOL inside the
/// bytes given. Returns MsvAvTimestamp's value if present.
fn scan_av(b: &[u8]) -> Result<Option<[u8; 8]>, NtlmError> {
    if b.is_empty() {
        return Ok(None);
    }
    let mut i = 0;
    let mut ts = None;
    loop {
        let id = u16_at(b, i).ok_or(NtlmError::Malformed)?;
        let len = usize::from(u16_at(b, i + 2).ok_or(NtlmError::Malformed)?);
        let v = b.get(i + 4..i + 4 + len).ok_or(NtlmError::Malformed)?;
        if id == AV_EOL {
            return Ok(ts);
        }
        if id == AV_TIMESTAMP {
            ts = Some(v.try_into().map_err(|_| NtlmError::Malformed)?);
        }
        i += 4 + len;
    }
}

/// The NEGOTIATE_MESSAGE (§2.2.1.1): no domain or workstation supplied.
pub fn negotiate() -> Vec<u8> {
    let mut m = Vec::with_capacity(32);
    m.extend_from_slice(SIGNATURE);
    m.extend_from_slice(&1u32.to_le_bytes());
    m.extend_from_slice(&OUR_FLAGS.to_le_bytes());
    for _ in 0..2 {
        // DomainNameFields, WorkstationFields: empty, offset at the end.
        m.extend_from_slice(&[0, 0, 0, 0]);
        m.extend_from_slice(&32u32.to_le_bytes());
    }
    m
}

fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    let mut mac = <Hmac<Md5> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// NTOWFv2 (§3.3.2); LMOWFv2 is the same.
pub fn ntowf_v2(password: &str, user: &str, domain: &str) -> [u8; 16] {
    let nt_hash: [u8; 16] = Md4::digest(utf16le(password)).into();
    let who = utf16le(&format!("{}{domain}", user.to_uppercase()));
    hmac_md5(&nt_hash, &[&who])
}

/// What an NTLMv2 answer computes (§3.3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V2Responses {
    /// LmChallengeResponse (24 bytes).
    pub lm: Vec<u8>,
    /// NtChallengeResponse: NTProofStr followed by the client blob.
    pub nt: Vec<u8>,
    /// SessionBaseKey.
    pub session_base_key: [u8; 16],
}

/// NTLMv2 responses to `challenge` for the key from [`ntowf_v2`], the
/// client's 8 random bytes and the time as a FILETIME (used only when the
/// challenge has no MsvAvTimestamp).
pub fn v2_responses(
    challenge: &NtlmChallenge,
    key: &[u8; 16],
    client_challenge: [u8; 8],
    filetime: u64,
) -> V2Responses {
    let time = challenge.timestamp.unwrap_or(filetime.to_le_bytes());
    let mut temp = Vec::with_capacity(28 + challenge.target_info.len() + 4);
    temp.extend_from_slice(&[1, 1, 0, 0, 0, 0, 0, 0]);
    temp.extend_from_slice(&time);
    temp.extend_from_slice(&client_challenge);
    temp.extend_from_slice(&[0; 4]);
    temp.extend_from_slice(&challenge.target_info);
    temp.extend_from_slice(&[0; 4]);
    let proof = hmac_md5(key, &[&challenge.server_challenge, &temp]);
    let mut nt = proof.to_vec();
    nt.extend_from_slice(&temp);
    let lm = if challenge.timestamp.is_some() {
        vec![0; 24]
    } else {
        let mut lm = hmac_md5(key, &[&challenge.server_challenge, &client_challenge]).to_vec();
        lm.extend_from_slice(&client_challenge);
        lm
    };
    V2Responses {
        lm,
        nt,
        session_base_key: hmac_md5(key, &[&proof]),
    }
}

/// Converts seconds since 1970 to a FILETIME (100 ns since 1601).
pub fn filetime_from_unix(secs: u64) -> u64 {
    secs.saturating_add(FILETIME_UNIX_OFFSET)
        .saturating_mul(10_000_000)
}

/// `DOMAIN\user` → (`DOMAIN`, `user`); anything else → (``, user).
pub fn split_user(user: &str) -> (&str, &str) {
    match user.split_once('\\') {
        Some((d, u)) => (d, u),
        None => ("", user),
    }
}

/// The AUTHENTICATE_MESSAGE (§2.2.1.3) answering `challenge`. Strings are
/// UTF-16LE when the challenge negotiated Unicode, else 8-bit (non-ASCII
/// characters become `?`).
pub fn authenticate(
    challenge: &NtlmChallenge,
    user: &str,
    password: &str,
    workstation: &str,
    client_challenge: [u8; 8],
    filetime: u64,
) -> Vec<u8> {
    let (domain, user) = split_user(user);
    let key = ntowf_v2(password, user, domain);
    let r = v2_responses(challenge, &key, client_challenge, filetime);
    let mut flags = challenge.flags & OUR_FLAGS;
    let unicode = flags & UNICODE != 0;
    if unicode {
        // §2.2.2.5: A set means Unicode whatever B says, but a challenge
        // may carry both (squid's helpers echo our negotiate flags), and
        // squid's parser reads the names as OEM when B is set: claim only
        // the encoding we used.
        flags &= !OEM;
    }
    let enc = |s: &str| {
        if unicode {
            utf16le(s)
        } else {
            s.chars()
                .map(|c| if c.is_ascii() { c as u8 } else { b'?' })
                .collect()
        }
    };
    // Header: 64 bytes of fields, then an all-zero Version (8 bytes).
    const HEADER: usize = 72;
    let payloads = [
        enc(domain),
        enc(user),
        enc(workstation),
        r.lm,
        r.nt,
        Vec::new(), // EncryptedRandomSessionKey: no KEY_EXCH.
    ];
    let mut fields = [(0u16, 0u32); 6];
    let mut off = HEADER;
    for (f, p) in fields.iter_mut().zip(&payloads) {
        // Each payload is bounded (names come from credentials limited by
        // the header size, the NT response by the 8 KiB challenge).
        *f = (
            u16::try_from(p.len()).unwrap_or(u16::MAX),
            u32::try_from(off).unwrap_or(u32::MAX),
        );
        off += p.len();
    }
    let mut m = Vec::with_capacity(off);
    m.extend_from_slice(SIGNATURE);
    m.extend_from_slice(&3u32.to_le_bytes());
    // Field order in the header: LM, NT, domain, user, workstation, key.
    for i in [3, 4, 0, 1, 2, 5] {
        let (len, o) = fields[i];
        m.extend_from_slice(&len.to_le_bytes());
        m.extend_from_slice(&len.to_le_bytes());
        m.extend_from_slice(&o.to_le_bytes());
    }
    m.extend_from_slice(&flags.to_le_bytes());
    m.extend_from_slice(&[0; 8]);
    for p in &payloads {
        m.extend_from_slice(p);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// MS-NLMP §4.2.4.3: the CHALLENGE_MESSAGE of the NTLMv2 example
    /// (target name "Server", target info NbDomainName "Domain",
    /// NbComputerName "Server").
    const CHALLENGE_4_2_4: &str = "4e544c4d53535000020000000c000c003800000033828ae20123456789abcdef00000000000000002400240044000000060070170000000f53006500720076006500720002000c0044006f006d00610069006e0001000c0053006500720076006500720000000000";

    #[test]
    fn ms_nlmp_4_2_4_ntlmv2_vectors() {
        // §4.2.4.1.1: NTOWFv2(Password, User, Domain).
        let key = ntowf_v2("Password", "User", "Domain");
        assert_eq!(key.to_vec(), unhex("0c868a403bfd7a93a3001ef22ef02e3f"));
        // The user name is upper-cased, the domain is not.
        assert_eq!(ntowf_v2("Password", "user", "Domain"), key);
        assert_ne!(ntowf_v2("Password", "User", "domain"), key);

        let ch = NtlmChallenge::parse(&unhex(CHALLENGE_4_2_4)).unwrap();
        assert_eq!(ch.flags, 0xe28a_8233);
        assert_eq!(ch.server_challenge.to_vec(), unhex("0123456789abcdef"));
        assert_eq!(ch.timestamp, None);
        // §4.2.4.2.1-2, §4.2.4.1.2: Time = 0, ClientChallenge = aa * 8.
        let r = v2_responses(&ch, &key, [0xaa; 8], 0);
        assert_eq!(
            r.lm,
            unhex("86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa")
        );
        assert_eq!(
            r.nt,
            unhex("68cd0ab851e51c96aabc927bebef6a1c01010000000000000000000000000000aaaaaaaaaaaaaaaa0000000002000c0044006f006d00610069006e0001000c005300650072007600650072000000000000000000")
        );
        assert_eq!(
            r.session_base_key.to_vec(),
            unhex("8de40ccadbc14a82f15cb0ad0de95ca3")
        );

        // §4.2.4.3's AUTHENTICATE_MESSAGE carries, from offset 0x48, the
        // domain, user and workstation, then the LM and NT responses: ours
        // has the same payload (without the encrypted session key, as we
        // do not negotiate KEY_EXCH).
        let m = authenticate(&ch, "Domain\\User", "Password", "COMPUTER", [0xaa; 8], 0);
        let spec_payload = unhex("44006f006d00610069006e00550073006500720043004f004d005000550054004500520086c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa68cd0ab851e51c96aabc927bebef6a1c01010000000000000000000000000000aaaaaaaaaaaaaaaa0000000002000c0044006f006d00610069006e0001000c005300650072007600650072000000000000000000");
        assert_eq!(&m[0x48..], &spec_payload[..]);
        // The field table (§4.2.4.3: LM 0x18 at 0x6c, NT 0x54 at 0x84,
        // domain 0x0c at 0x48, user 0x08 at 0x54, workstation 0x10 at 0x5c).
        assert_eq!(
            &m[..0x34],
            &unhex("4e544c4d5353500003000000180018006c00000054005400840000000c000c00480000000800080054000000100010005c000000")[..]
        );
        // Flags: the challenge's, limited to ours (no SIGN, SEAL, KEY_EXCH,
        // VERSION), and OEM cleared as the strings are Unicode (the spec's
        // message keeps both; A wins either way, §2.2.2.5).
        assert_eq!(u32_at(&m, 60), Some(0xe28a_8233 & OUR_FLAGS & !OEM));
    }

    #[test]
    fn negotiate_message() {
        let m = negotiate();
        assert_eq!(m.len(), 32);
        assert_eq!(&m[..12], b"NTLMSSP\0\x01\0\0\0");
        assert_eq!(u32_at(&m, 12), Some(0xa088_8207));
    }

    #[test]
    fn timestamp_means_zero_lm_and_server_time() {
        // A target info with MsvAvTimestamp (id 7) then EOL.
        let mut ti = vec![7, 0, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8];
        ti.extend_from_slice(&[0, 0, 0, 0]);
        let mut b = unhex(CHALLENGE_4_2_4)[..48].to_vec();
        b[40..42].copy_from_slice(&(ti.len() as u16).to_le_bytes());
        b[42..44].copy_from_slice(&(ti.len() as u16).to_le_bytes());
        b[44..48].copy_from_slice(&48u32.to_le_bytes());
        b.extend_from_slice(&ti);
        let ch = NtlmChallenge::parse(&b).unwrap();
        assert_eq!(ch.timestamp, Some([1, 2, 3, 4, 5, 6, 7, 8]));
        let r = v2_responses(&ch, &[0; 16], [0xaa; 8], 99);
        assert_eq!(r.lm, vec![0; 24]);
        assert_eq!(&r.nt[24..32], &[1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn short_and_malformed_challenges() {
        let full = unhex(CHALLENGE_4_2_4);
        // 32 bytes: no target info, the blob gets an empty AV list.
        let ch = NtlmChallenge::parse(&full[..32]).unwrap();
        assert_eq!(ch.target_info, vec![0; 4]);
        assert_eq!(
            NtlmChallenge::parse(&full[..31]),
            Err(NtlmError::NotChallenge)
        );
        assert_eq!(
            NtlmChallenge::parse(&negotiate()),
            Err(NtlmError::NotChallenge)
        );
        // Target info pointing past the end: the old form without it.
        let ch = NtlmChallenge::parse(&full[..full.len() - 1]).unwrap();
        assert_eq!(ch.target_info, vec![0; 4]);
        // squid's ntlm_fake_auth (squid 5.7): 32-byte header, context, then
        // the target name "WORKGROUP" where target info fields would be.
        let fake = unhex("4e544c4d535350000200000009000900aeaaaaaa078288a00a6ba6a74479d94f0000000000003a00574f524b47524f5550");
        let ch = NtlmChallenge::parse(&fake).unwrap();
        assert_eq!(ch.server_challenge.to_vec(), unhex("0a6ba6a74479d94f"));
        assert_eq!(ch.target_info, vec![0; 4]);
        // It offers both Unicode and OEM: the answer is UTF-16 and says so
        // alone (squid reads the names as OEM if that flag is set too).
        let m = authenticate(&ch, "CORP\\nina", "pw", "", [0; 8], 0);
        let flags = u32_at(&m, 60).unwrap();
        assert_eq!(flags & (UNICODE | OEM), UNICODE, "{flags:#x}");
        assert_eq!(&m[0x48..0x48 + 8], &utf16le("CORP")[..]);
        // An AV list without EOL.
        let mut b = full.clone();
        let n = b.len();
        b[n - 4] = 9;
        assert_eq!(NtlmChallenge::parse(&b), Err(NtlmError::Malformed));
        assert_eq!(
            NtlmChallenge::from_base64("!!!"),
            Err(NtlmError::NotChallenge)
        );
        // Every prefix: an answer or an error, never a panic.
        for i in 0..full.len() {
            let _ = NtlmChallenge::parse(&full[..i]);
        }
    }

    #[test]
    fn oem_strings_and_names() {
        let mut b = unhex(CHALLENGE_4_2_4);
        // Clear UNICODE in the challenge flags.
        b[20] &= !1;
        let ch = NtlmChallenge::parse(&b).unwrap();
        let m = authenticate(&ch, "Dom\\Üser", "pw", "", [0; 8], 0);
        assert_eq!(&m[0x48..0x48 + 7], b"Dom?ser");
        assert_eq!(u32_at(&m, 60).unwrap() & (UNICODE | OEM), OEM);
        assert_eq!(split_user("user@example.com"), ("", "user@example.com"));
        assert_eq!(filetime_from_unix(0), 116_444_736_000_000_000);
    }
}
