//! Authentication: the methods (RFC 1334 PAP, RFC 1994 CHAP-MD5, RFC 2759
//! MS-CHAPv2, RFC 3748 EAP with draft-kamath-pppext-eap-mschapv2, EAP-TLS
//! framing per RFC 5216/9190 with the TLS engine supplied by the caller), the
//! credentials a caller checks, and the verdict it gives back.
//!
//! On the authenticator (server) side the engine never sees a stored secret:
//! it emits [`crate::Event::AuthRequest`] with a method-specific [`Proof`] and
//! waits — possibly for a long time, e.g. a RADIUS round trip — for
//! [`crate::Ppp::auth_verdict`]. [`verify`] computes that [`Verdict`]
//! synchronously from a stored [`Secret`]; a RADIUS backend builds it with
//! [`Verdict::accept_mschapv2`] from MS-CHAP2-Success and
//! MS-MPPE-Send-Key/Recv-Key (RFC 2548).
//!
//! Secrets ([`Password`], [`NtHash`]) print nothing under `Debug`, are
//! compared in constant time (`subtle`) and are zeroized on drop.

pub mod chap;
pub mod eap;
pub mod eap_relay;
pub mod eap_tls;
pub mod mschapv2;
pub mod pap;
pub mod peap;

pub(crate) mod authenticator;
pub use authenticator::AuthFailure;
pub(crate) mod peer;

use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::keys::{self, nt_password_hash};
pub use crate::keys::{MppeKeys, NtHash};

/// A method negotiated with LCP's Authentication-Protocol option (RFC 1661 §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthProtocol {
    /// PAP, 0xC023.
    Pap,
    /// CHAP with MD5, 0xC223 algorithm 0x05.
    ChapMd5,
    /// MS-CHAPv2, 0xC223 algorithm 0x81.
    MsChapV2,
    /// EAP, 0xC227; we run Identity then EAP-MSCHAPv2 (type 26), or
    /// EAP-TLS (13) when `Config::eap_tls` is set.
    Eap,
}

impl AuthProtocol {
    /// The option data (protocol + algorithm) for LCP.
    pub fn option_data(self) -> &'static [u8] {
        match self {
            AuthProtocol::Pap => &[0xC0, 0x23],
            AuthProtocol::ChapMd5 => &[0xC2, 0x23, 0x05],
            AuthProtocol::MsChapV2 => &[0xC2, 0x23, 0x81],
            AuthProtocol::Eap => &[0xC2, 0x27],
        }
    }

    /// Parses LCP option data; `None` for anything we do not implement
    /// (e.g. CHAP with MS-CHAPv1, SHA-1, or trailing bytes after PAP/EAP).
    pub fn from_option_data(d: &[u8]) -> Option<Self> {
        match d {
            [0xC0, 0x23] => Some(AuthProtocol::Pap),
            [0xC2, 0x23, 0x05] => Some(AuthProtocol::ChapMd5),
            [0xC2, 0x23, 0x81] => Some(AuthProtocol::MsChapV2),
            [0xC2, 0x27] => Some(AuthProtocol::Eap),
            _ => None,
        }
    }
}

/// The protocol's usual name (`MS-CHAPv2`, `CHAP-MD5`, ...).
impl std::fmt::Display for AuthProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AuthProtocol::Pap => "PAP",
            AuthProtocol::ChapMd5 => "CHAP-MD5",
            AuthProtocol::MsChapV2 => "MS-CHAPv2",
            AuthProtocol::Eap => "EAP",
        })
    }
}

/// The method an authentication actually used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthMethod {
    /// No authentication was negotiated.
    None,
    /// PAP.
    Pap,
    /// CHAP-MD5.
    ChapMd5,
    /// MS-CHAPv2.
    MsChapV2,
    /// EAP-MSCHAPv2.
    EapMsChapV2,
    /// EAP-TLS (RFC 5216, RFC 9190).
    EapTls,
    /// PEAP version 0 with EAP-MSCHAPv2 inside ([`peap`]).
    Peap,
    /// EAP relayed to a backend that runs the method (RFC 3579
    /// pass-through; [`eap_relay`]).
    EapPassThrough,
}

/// The method's usual name (`none`, `EAP-MSCHAPv2`, ...).
impl std::fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AuthMethod::None => "none",
            AuthMethod::Pap => "PAP",
            AuthMethod::ChapMd5 => "CHAP-MD5",
            AuthMethod::MsChapV2 => "MS-CHAPv2",
            AuthMethod::EapMsChapV2 => "EAP-MSCHAPv2",
            AuthMethod::EapTls => "EAP-TLS",
            AuthMethod::Peap => "PEAP",
            AuthMethod::EapPassThrough => "EAP-pass-through",
        })
    }
}

/// A plaintext password. `Debug` prints nothing; zeroized on drop; `==` is
/// constant-time in the contents.
#[derive(Clone)]
pub struct Password(Vec<u8>);

impl Password {
    /// Wraps password bytes.
    pub fn new(p: impl Into<Vec<u8>>) -> Self {
        Password(p.into())
    }
    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    /// The password as UTF-8 text, if it is.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

impl Drop for Password {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl PartialEq for Password {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}
impl Eq for Password {}

/// A stored credential.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Secret {
    /// The plaintext password: works with every method.
    Password(Password),
    /// Only the NT hash: works with PAP, MS-CHAPv2 and EAP-MSCHAPv2, not CHAP-MD5.
    NtHash(NtHash),
}

impl Secret {
    /// The NT hash, computed from a UTF-8 password if needed.
    pub fn nt_hash(&self) -> Option<NtHash> {
        match self {
            Secret::Password(p) => p.as_str().map(nt_password_hash),
            Secret::NtHash(h) => Some(h.clone()),
        }
    }
}

/// Client-side credentials.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// User name as sent (may include `DOMAIN\` or `@realm`).
    pub username: String,
    /// The password, or only its NT hash (then PAP and CHAP-MD5 are impossible).
    pub secret: Secret,
}

/// What the peer presented, method by method. `Debug` shows only the method:
/// responses allow offline dictionary attacks and must not be logged.
#[derive(Clone)]
#[non_exhaustive]
pub enum Proof {
    /// PAP: the password in clear (RFC 1334 §2.2.1).
    Pap {
        /// The password the peer sent.
        password: Password,
    },
    /// CHAP-MD5 (RFC 1994 §4.1): Response = MD5(Identifier | secret | Challenge).
    ChapMd5 {
        /// The Identifier of the Challenge/Response.
        id: u8,
        /// The challenge we sent.
        challenge: Vec<u8>,
        /// The peer's 16-byte response.
        response: [u8; 16],
    },
    /// MS-CHAPv2 (RFC 2759 §4), also inside EAP-MSCHAPv2.
    MsChapV2 {
        /// Our 16-byte challenge.
        authenticator_challenge: [u8; 16],
        /// The peer's 16-byte challenge.
        peer_challenge: [u8; 16],
        /// The 24-byte NT-Response.
        nt_response: [u8; 24],
        /// The Name field of the Response, as sent (ChallengeHash uses it
        /// without the domain).
        name: Vec<u8>,
    },
    /// EAP pass-through ([`eap_relay`]): the peer's EAP-Response as
    /// received (without the PPP header), for a backend that runs the method.
    Eap {
        /// The EAP packet.
        packet: Vec<u8>,
        /// Opaque to the engine: the `state` of the previous
        /// [`Verdict::Eap`] of this exchange (e.g. RADIUS State, RFC 2865
        /// §5.24), empty on the first request.
        state: Vec<u8>,
    },
}

impl std::fmt::Debug for Proof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Proof::Pap { .. } => "Proof::Pap(..)",
            Proof::ChapMd5 { .. } => "Proof::ChapMd5(..)",
            Proof::MsChapV2 { .. } => "Proof::MsChapV2(..)",
            Proof::Eap { .. } => "Proof::Eap(..)",
        })
    }
}

/// An accepted MS-CHAPv2 exchange: what the authenticator needs to send
/// Success and derive the HLAK.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsChapV2Accept {
    /// The 20-byte authenticator response (sent as `S=` + 40 hex digits).
    pub authenticator_response: [u8; 20],
    /// The authenticator's master keys: `send` = MS-MPPE-Send-Key,
    /// `recv` = MS-MPPE-Recv-Key as RADIUS sends them to the NAS.
    pub keys: MppeKeys,
}

impl MsChapV2Accept {
    /// Computes the accept from the NT hash (what a local verifier does).
    pub fn from_nt_hash(hash: &NtHash, proof: &Proof) -> Option<Self> {
        let Proof::MsChapV2 {
            authenticator_challenge,
            peer_challenge,
            nt_response,
            name,
        } = proof
        else {
            return None;
        };
        Some(MsChapV2Accept {
            authenticator_response: keys::authenticator_response(
                hash,
                nt_response,
                peer_challenge,
                authenticator_challenge,
                name,
            ),
            keys: MppeKeys::derive(hash, nt_response, true),
        })
    }

    /// Builds the accept from RADIUS attributes: the MS-CHAP2-Success value
    /// (RFC 2548 §2.3.3: Ident + `S=` + 40 hex digits) and the decrypted
    /// MS-MPPE-Send-Key / MS-MPPE-Recv-Key (first 16 bytes each).
    pub fn from_radius(ms_chap2_success: &[u8], send_key: &[u8], recv_key: &[u8]) -> Option<Self> {
        let s = ms_chap2_success.get(1..)?;
        let authenticator_response = mschapv2::parse_authenticator_response(s)?;
        Some(MsChapV2Accept {
            authenticator_response,
            keys: MppeKeys {
                send: send_key.get(..16)?.try_into().ok()?,
                recv: recv_key.get(..16)?.try_into().ok()?,
            },
        })
    }
}

/// The answer to an [`crate::Event::AuthRequest`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// The credentials are right.
    Accept {
        /// Required for MS-CHAPv2 and EAP-MSCHAPv2, ignored otherwise.
        mschapv2: Option<MsChapV2Accept>,
    },
    /// The credentials are wrong (or the user unknown).
    Reject {
        /// Text for the peer (PAP/CHAP message, MS-CHAPv2 `M=`); no secrets.
        message: String,
        /// MS-CHAPv2 only: the backend's failure text (RADIUS MS-CHAP-Error
        /// after its Ident byte, RFC 2548 §2.1.5). Its E= code and M= text
        /// go to the peer, and its R=0 ends the retries; ignored when it
        /// has no numeric E= (then E=691 with `message`).
        mschap_error: Option<Vec<u8>>,
    },
    /// EAP pass-through: the backend's EAP packet for the peer. A Request
    /// is relayed and its Response comes back as a new request; Success
    /// ends with the HLAK from `msk`; Failure ends the login.
    Eap {
        /// The EAP packet (without the PPP header).
        packet: Vec<u8>,
        /// The MSK (RFC 3579 §2.6.5: MS-MPPE-Recv-Key | MS-MPPE-Send-Key),
        /// with Success; none gives a zero HLAK.
        msk: Option<Vec<u8>>,
        /// Echoed in the next [`Proof::Eap`] of this exchange.
        state: Vec<u8>,
    },
}

impl Verdict {
    /// Accept for PAP or CHAP-MD5.
    pub fn accept() -> Self {
        Verdict::Accept { mschapv2: None }
    }
    /// Accept for MS-CHAPv2/EAP-MSCHAPv2.
    pub fn accept_mschapv2(a: MsChapV2Accept) -> Self {
        Verdict::Accept { mschapv2: Some(a) }
    }
    /// Reject with a message.
    pub fn reject(message: impl Into<String>) -> Self {
        Verdict::Reject {
            message: message.into(),
            mschap_error: None,
        }
    }
    /// Reject carrying the backend's MS-CHAPv2 failure text (see
    /// [`Verdict::Reject`]).
    pub fn reject_mschap(message: impl Into<String>, mschap_error: Option<Vec<u8>>) -> Self {
        Verdict::Reject {
            message: message.into(),
            mschap_error,
        }
    }
    /// EAP pass-through: a Request for the peer; the exchange goes on, this
    /// is no result yet.
    pub fn is_pending(&self) -> bool {
        matches!(self, Verdict::Eap { packet, .. } if packet.first() == Some(&1))
    }
    /// True for an accept (for EAP pass-through: an EAP Success).
    pub fn is_accept(&self) -> bool {
        match self {
            Verdict::Accept { .. } => true,
            Verdict::Eap { packet, .. } => packet.first() == Some(&3),
            Verdict::Reject { .. } => false,
        }
    }
}

/// Checks a proof against a stored secret, in constant time where the
/// comparison involves the secret. CHAP-MD5 needs the plaintext password:
/// with only an NT hash it is rejected.
pub fn verify(proof: &Proof, secret: &Secret) -> Verdict {
    const BAD: &str = "Authentication failed";
    match proof {
        Proof::Pap { password } => {
            let ok = match secret {
                Secret::Password(p) => p == password,
                Secret::NtHash(h) => match password.as_str() {
                    Some(s) => nt_password_hash(s) == *h,
                    None => false,
                },
            };
            if ok {
                Verdict::accept()
            } else {
                Verdict::reject(BAD)
            }
        }
        Proof::ChapMd5 {
            id,
            challenge,
            response,
        } => match secret {
            Secret::Password(p) => {
                let want = chap::md5_response(*id, p.as_bytes(), challenge);
                if bool::from(want.ct_eq(response)) {
                    Verdict::accept()
                } else {
                    Verdict::reject(BAD)
                }
            }
            Secret::NtHash(_) => Verdict::reject(BAD),
        },
        Proof::MsChapV2 {
            authenticator_challenge,
            peer_challenge,
            nt_response,
            name,
        } => {
            let Some(hash) = secret.nt_hash() else {
                return Verdict::reject(BAD);
            };
            // RFC 2759 strips only `DOMAIN\`; SoftEther-derived clients also
            // strip `@realm` before ChallengeHash. Try both forms (the same
            // password either way, so nothing is weakened).
            let stripped = keys::strip_domain(name);
            let mut candidates = vec![stripped];
            if let Some(i) = stripped.iter().rposition(|&b| b == b'@') {
                candidates.push(&stripped[..i]);
            }
            let mut found = None;
            for c in candidates {
                let want =
                    keys::generate_nt_response(authenticator_challenge, peer_challenge, c, &hash);
                if bool::from(want.ct_eq(nt_response)) && found.is_none() {
                    found = Some(c.to_vec());
                }
            }
            let Some(matched) = found else {
                return Verdict::reject(BAD);
            };
            let p = Proof::MsChapV2 {
                authenticator_challenge: *authenticator_challenge,
                peer_challenge: *peer_challenge,
                nt_response: *nt_response,
                name: matched,
            };
            match MsChapV2Accept::from_nt_hash(&hash, &p) {
                Some(a) => Verdict::accept_mschapv2(a),
                None => Verdict::reject(BAD),
            }
        }
        // Pass-through needs a backend that runs the EAP method.
        Proof::Eap { .. } => Verdict::reject(BAD),
    }
}

/// The outcome of a successful authentication: the only way into the
/// Network phase (a "proof token" — it cannot be built outside this crate).
#[derive(Clone, Debug)]
pub(crate) struct AuthSuccess {
    pub(crate) hlak: [u8; 32],
    /// Authenticator: another HLAK the peer's binding may use (pppd's EAP-TLS form).
    pub(crate) alt_hlak: Option<[u8; 32]>,
    pub(crate) username: String,
    pub(crate) method: AuthMethod,
}

impl AuthSuccess {
    pub(crate) fn new(hlak: [u8; 32], username: String, method: AuthMethod) -> Self {
        AuthSuccess {
            hlak,
            alt_hlak: None,
            username,
            method,
        }
    }

    pub(crate) fn with_alt_hlak(mut self, alt: [u8; 32]) -> Self {
        self.alt_hlak = Some(alt);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_for_logs() {
        assert_eq!(AuthProtocol::MsChapV2.to_string(), "MS-CHAPv2");
        assert_eq!(AuthMethod::EapMsChapV2.to_string(), "EAP-MSCHAPv2");
        assert_eq!(AuthMethod::None.to_string(), "none");
        let r = AuthFailure::Rejected {
            message: "Authentication failed\r\n".into(),
            code: None,
        };
        assert_eq!(
            r.to_string(),
            "credentials rejected (Authentication failed)"
        );
        let r = AuthFailure::Rejected {
            message: "bad\u{1b}[31m".into(),
            code: None,
        };
        assert_eq!(r.to_string(), "credentials rejected (bad?[31m)");
        let r = AuthFailure::Rejected {
            message: "Password expired".into(),
            code: Some(648),
        };
        assert_eq!(
            r.to_string(),
            "credentials rejected: password expired (E=648) (Password expired)"
        );
        assert_eq!(
            crate::LinkDownReason::PeerTerminated.to_string(),
            "the peer ended the link"
        );
    }

    fn mschap_proof(password: &str, user: &[u8]) -> Proof {
        let ac = [7u8; 16];
        let pc = [9u8; 16];
        let nt = keys::generate_nt_response(&ac, &pc, user, &nt_password_hash(password));
        Proof::MsChapV2 {
            authenticator_challenge: ac,
            peer_challenge: pc,
            nt_response: nt,
            name: user.to_vec(),
        }
    }

    #[test]
    fn verify_each_method_against_each_secret_kind() {
        let plain = Secret::Password(Password::new("s3cret"));
        let hash = Secret::NtHash(nt_password_hash("s3cret"));
        let pap_ok = Proof::Pap {
            password: Password::new("s3cret"),
        };
        let pap_bad = Proof::Pap {
            password: Password::new("s3creT"),
        };
        assert!(verify(&pap_ok, &plain).is_accept());
        assert!(verify(&pap_ok, &hash).is_accept());
        assert!(!verify(&pap_bad, &plain).is_accept());
        assert!(!verify(&pap_bad, &hash).is_accept());
        assert!(!verify(
            &Proof::Pap {
                password: Password::new(vec![0xFF])
            },
            &hash
        )
        .is_accept());

        let ch = vec![1, 2, 3, 4];
        let chap_ok = Proof::ChapMd5 {
            id: 3,
            challenge: ch.clone(),
            response: chap::md5_response(3, b"s3cret", &ch),
        };
        assert!(verify(&chap_ok, &plain).is_accept());
        assert!(
            !verify(&chap_ok, &hash).is_accept(),
            "CHAP-MD5 needs plaintext"
        );
        let chap_bad = Proof::ChapMd5 {
            id: 4,
            challenge: ch.clone(),
            response: chap::md5_response(3, b"s3cret", &ch),
        };
        assert!(!verify(&chap_bad, &plain).is_accept());

        let ms = mschap_proof("s3cret", b"DOM\\alice");
        for s in [&plain, &hash] {
            match verify(&ms, s) {
                Verdict::Accept { mschapv2: Some(a) } => {
                    let h = nt_password_hash("s3cret");
                    let Proof::MsChapV2 { nt_response, .. } = &ms else {
                        unreachable!()
                    };
                    assert_eq!(a.keys, MppeKeys::derive(&h, nt_response, true));
                }
                v => panic!("{v:?}"),
            }
        }
        assert!(!verify(&mschap_proof("other", b"alice"), &plain).is_accept());
    }

    #[test]
    fn mschapv2_accepts_realm_stripped_challenge_hash() {
        // A client that hashed "alice" while sending "alice@HUB" (SoftEther style).
        let ac = [7u8; 16];
        let pc = [9u8; 16];
        let h = nt_password_hash("pw");
        let secret = Secret::Password(Password::new("pw"));
        let nt = keys::generate_nt_response(&ac, &pc, b"alice", &h);
        let p = Proof::MsChapV2 {
            authenticator_challenge: ac,
            peer_challenge: pc,
            nt_response: nt,
            name: b"alice@HUB".to_vec(),
        };
        match verify(&p, &secret) {
            Verdict::Accept { mschapv2: Some(a) } => {
                // The authenticator response uses the name form that matched.
                let want = keys::authenticator_response(&h, &nt, &pc, &ac, b"alice");
                assert_eq!(a.authenticator_response, want);
            }
            v => panic!("{v:?}"),
        }
        // The RFC form (the full "alice@HUB" hashed) works too.
        let nt2 = keys::generate_nt_response(&ac, &pc, b"alice@HUB", &h);
        let p2 = Proof::MsChapV2 {
            authenticator_challenge: ac,
            peer_challenge: pc,
            nt_response: nt2,
            name: b"alice@HUB".to_vec(),
        };
        assert!(verify(&p2, &secret).is_accept());
        let p3 = Proof::MsChapV2 {
            authenticator_challenge: ac,
            peer_challenge: pc,
            nt_response: nt2,
            name: b"bob@HUB".to_vec(),
        };
        assert!(!verify(&p3, &secret).is_accept());
    }

    #[test]
    fn radius_accept_parses_success_attribute() {
        let mut attr = vec![7u8];
        attr.extend_from_slice(b"S=407A5589115FD0D6209F510FE9C04566932CDA56");
        let a = MsChapV2Accept::from_radius(&attr, &[1; 16], &[2; 32]).unwrap();
        assert_eq!(a.authenticator_response[0], 0x40);
        assert_eq!(a.keys.send, [1; 16]);
        assert_eq!(a.keys.recv, [2; 16]);
        assert!(MsChapV2Accept::from_radius(&attr[..20], &[1; 16], &[2; 16]).is_none());
        assert!(MsChapV2Accept::from_radius(&attr, &[1; 15], &[2; 16]).is_none());
    }

    #[test]
    fn secrets_do_not_print() {
        let p = Password::new("hunter2");
        assert_eq!(format!("{p:?}"), "Password(..)");
        let s = Secret::Password(p);
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn auth_protocol_option_round_trip() {
        for p in [
            AuthProtocol::Pap,
            AuthProtocol::ChapMd5,
            AuthProtocol::MsChapV2,
            AuthProtocol::Eap,
        ] {
            assert_eq!(AuthProtocol::from_option_data(p.option_data()), Some(p));
        }
        assert_eq!(AuthProtocol::from_option_data(&[0xC2, 0x23, 0x80]), None);
        assert_eq!(AuthProtocol::from_option_data(&[0xC0, 0x23, 0]), None);
    }
}
