//! Proxy authentication for the CONNECT client: the one place that picks a
//! scheme from a 407's challenges and follows that scheme's exchange.
//!
//! * Choice (RFC 9110 §11.6.1: the client picks among the challenges): the
//!   strongest scheme we support wins: Digest with SHA-512-256 or SHA-256,
//!   then NTLM, then Digest with MD5, then Basic. A 407 without any
//!   `Proxy-Authenticate` is taken as Basic (old proxies).
//! * Basic ([`crate::basic`]): one answer; a second 407 is a refusal.
//! * Digest ([`crate::digest`]): each request with the same nonce counts
//!   `nc` up; a 407 with `stale=true` is answered once more with the new
//!   nonce (at most twice in a row), without asking for credentials again.
//!   A nonce remembered from an earlier connection ([`AuthMemo`]) is sent
//!   up front; if the proxy no longer accepts it, its new challenge is
//!   answered like a stale one.
//! * NTLM ([`crate::ntlm`]): negotiate, then the answer to the proxy's
//!   challenge on the same connection. A new connection starts over.
//! * Credentials that were sent and answered by a 407 for the same scheme
//!   (not a stale nonce) are a refusal; a stronger scheme offered after an
//!   up-front Basic is tried once. Every hop is bounded to a few rounds.

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use crate::basic::Credentials;
use crate::challenge::{scheme_names, Challenge};
use crate::client::ClientError;
use crate::digest::DigestChallenge;
use crate::ntlm::{self, NtlmChallenge};

/// An authentication scheme we can answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// RFC 7617.
    Basic,
    /// RFC 7616.
    Digest,
    /// MS-NLMP over HTTP.
    Ntlm,
}

impl Scheme {
    /// The scheme's name as sent on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Basic => "Basic",
            Scheme::Digest => "Digest",
            Scheme::Ntlm => "NTLM",
        }
    }
}

/// What a hop's authentication can carry over to a later connection: the
/// scheme that worked (Basic), or a Digest nonce and its count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthMemo(Memo);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Memo {
    Basic,
    Digest { challenge: DigestChallenge, nc: u32 },
}

impl AuthMemo {
    /// A copy for the next handshake; this one's Digest count moves past
    /// it, so two handshakes started from one memo never reuse a count.
    pub fn take_next(&mut self) -> AuthMemo {
        let out = self.clone();
        if let Memo::Digest { nc, .. } = &mut self.0 {
            *nc = nc.saturating_add(1);
        }
        out
    }

    /// Keeps whichever of `self` and `newer` is further along (a newer
    /// nonce, or a higher count for the same one).
    pub fn merge(&mut self, newer: AuthMemo) {
        match (&self.0, &newer.0) {
            (
                Memo::Digest {
                    challenge: a,
                    nc: na,
                },
                Memo::Digest {
                    challenge: b,
                    nc: nb,
                },
            ) if a == b && na >= nb => {}
            _ => *self = newer,
        }
    }

    /// The scheme remembered.
    pub fn scheme(&self) -> Scheme {
        match self.0 {
            Memo::Basic => Scheme::Basic,
            Memo::Digest { .. } => Scheme::Digest,
        }
    }
}

/// Random bytes and the time, given by the driver (the crate has no clock
/// or random source): a SHA-256 counter generator over a 32-byte seed.
#[derive(Debug, Clone)]
pub(crate) struct Entropy {
    seed: [u8; 32],
    counter: u64,
    unix_secs: u64,
}

impl Entropy {
    pub(crate) fn new(seed: [u8; 32], unix_secs: u64) -> Self {
        Entropy {
            seed,
            counter: 0,
            unix_secs,
        }
    }

    fn next(&mut self) -> [u8; 32] {
        self.counter += 1;
        let mut h = Sha256::new();
        h.update(self.seed);
        h.update(self.counter.to_le_bytes());
        h.finalize().into()
    }

    fn cnonce(&mut self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.next()[..18])
    }
}

/// Whether the answer to a 407 must go on the same connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Reuse the connection if it stays open, else redial.
    AnyConnection,
    /// NTLM's answer to a challenge: only on this connection.
    SameConnection,
}

#[derive(Debug, Clone)]
enum State {
    Idle,
    Basic,
    Digest {
        challenge: DigestChallenge,
        nc: u32,
        /// The challenge came in this handshake (not from a memo).
        fresh: bool,
        stale_retries: u8,
    },
    NtlmStart,
    NtlmWaitChallenge,
    NtlmAnswer(Vec<u8>),
    NtlmSent,
}

/// Most schemes a hop starts in one handshake.
const MAX_ROUNDS: u8 = 3;
/// Most answers to stale (or forgotten) nonces in a row.
const MAX_STALE: u8 = 2;

/// One hop's authentication state.
#[derive(Debug, Clone)]
pub(crate) struct HopAuth {
    creds: Option<Credentials>,
    upfront: bool,
    state: State,
    sent: Option<Scheme>,
    rounds: u8,
}

enum Choice {
    Basic,
    Digest(DigestChallenge),
    Ntlm,
}

impl Choice {
    fn scheme(&self) -> Scheme {
        match self {
            Choice::Basic => Scheme::Basic,
            Choice::Digest(_) => Scheme::Digest,
            Choice::Ntlm => Scheme::Ntlm,
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Choice::Basic => 10,
            Choice::Digest(d) if d.strength() == 1 => 20,
            Choice::Ntlm => 30,
            Choice::Digest(d) => 30 + d.strength(),
        }
    }
}

fn best_digest(challenges: &[Challenge]) -> Option<DigestChallenge> {
    challenges
        .iter()
        .filter_map(DigestChallenge::from_challenge)
        .max_by_key(DigestChallenge::strength)
}

/// The strongest supported scheme offered.
fn choose(challenges: &[Challenge]) -> Option<Choice> {
    if challenges.is_empty() {
        return Some(Choice::Basic);
    }
    challenges
        .iter()
        .filter_map(|c| {
            if c.is("basic") {
                Some(Choice::Basic)
            } else if c.is("ntlm") {
                Some(Choice::Ntlm)
            } else {
                DigestChallenge::from_challenge(c).map(Choice::Digest)
            }
        })
        .max_by_key(Choice::rank)
}

impl HopAuth {
    pub(crate) fn new(creds: Option<Credentials>, upfront: bool, memo: Option<AuthMemo>) -> Self {
        let state = match (memo.map(|m| m.0), &creds) {
            (Some(Memo::Basic), Some(_)) => State::Basic,
            (Some(Memo::Digest { challenge, nc }), Some(_)) => State::Digest {
                challenge,
                nc,
                fresh: false,
                stale_retries: 0,
            },
            _ => State::Idle,
        };
        HopAuth {
            creds,
            upfront,
            state,
            sent: None,
            rounds: 0,
        }
    }

    /// True if the last request carried a `Proxy-Authorization`.
    pub(crate) fn sent_credentials(&self) -> bool {
        self.sent.is_some()
    }

    /// The `Proxy-Authorization` value for the next request to this hop,
    /// whose request-target is `uri`.
    pub(crate) fn header(&mut self, uri: &str, rng: &mut Entropy) -> Option<String> {
        self.sent = None;
        let creds = self.creds.as_ref()?;
        let (scheme, value) = match &mut self.state {
            State::Idle if !self.upfront => return None,
            State::Idle | State::Basic => {
                self.state = State::Basic;
                (Scheme::Basic, creds.header_value())
            }
            State::Digest { challenge, nc, .. } => {
                *nc = nc.saturating_add(1);
                let cnonce = rng.cnonce();
                let v = challenge.respond(creds, "CONNECT", uri, *nc, &cnonce);
                (Scheme::Digest, v)
            }
            State::NtlmAnswer(m) => {
                let v = ntlm_value(m);
                self.state = State::NtlmSent;
                (Scheme::Ntlm, v)
            }
            State::NtlmStart | State::NtlmWaitChallenge | State::NtlmSent => {
                self.state = State::NtlmWaitChallenge;
                (Scheme::Ntlm, ntlm_value(&ntlm::negotiate()))
            }
        };
        self.sent = Some(scheme);
        Some(value)
    }

    /// The hop is reached over a new connection: NTLM starts over.
    pub(crate) fn on_new_connection(&mut self) {
        if matches!(
            self.state,
            State::NtlmWaitChallenge | State::NtlmAnswer(_) | State::NtlmSent
        ) {
            self.state = State::NtlmStart;
        }
    }

    /// The hop answered 407 with `challenges`: prepare the next answer, or
    /// say why there is none.
    pub(crate) fn on_407(
        &mut self,
        challenges: &[Challenge],
        rng: &mut Entropy,
    ) -> Result<Retry, ClientError> {
        let sent = self.sent.take();
        let offered = scheme_names(challenges);
        let best = choose(challenges);
        let refused = |scheme: Scheme| ClientError::AuthRequired {
            had_credentials: true,
            scheme: Some(scheme.name()),
            offered: offered.clone(),
        };
        let Some(creds) = &self.creds else {
            return Err(ClientError::AuthRequired {
                had_credentials: false,
                scheme: best.map(|c| c.scheme().name()),
                offered,
            });
        };
        match &self.state {
            State::NtlmWaitChallenge if sent == Some(Scheme::Ntlm) => {
                let token = challenges
                    .iter()
                    .find(|c| c.is("ntlm"))
                    .and_then(|c| c.token68.as_deref())
                    .ok_or_else(|| refused(Scheme::Ntlm))?;
                let ch =
                    NtlmChallenge::from_base64(token).map_err(|e| ClientError::AuthProtocol {
                        scheme: Scheme::Ntlm.name(),
                        what: e.to_string(),
                    })?;
                let client_challenge: [u8; 8] = rng.next()[..8].try_into().unwrap_or([0; 8]);
                let m = ntlm::authenticate(
                    &ch,
                    creds.user(),
                    creds.password(),
                    "",
                    client_challenge,
                    ntlm::filetime_from_unix(rng.unix_secs),
                );
                self.state = State::NtlmAnswer(m);
                return Ok(Retry::SameConnection);
            }
            State::Digest {
                fresh,
                stale_retries,
                ..
            } if sent == Some(Scheme::Digest) => {
                let (fresh, stale_retries) = (*fresh, *stale_retries);
                match best_digest(challenges) {
                    Some(d) if (d.stale() || !fresh) && stale_retries < MAX_STALE => {
                        self.state = State::Digest {
                            challenge: d,
                            nc: 0,
                            fresh: true,
                            stale_retries: stale_retries + 1,
                        };
                        return Ok(Retry::AnyConnection);
                    }
                    _ => return Err(refused(Scheme::Digest)),
                }
            }
            _ => {}
        }
        let Some(choice) = best else {
            return Err(ClientError::AuthRequired {
                had_credentials: sent.is_some(),
                scheme: None,
                offered,
            });
        };
        if sent == Some(choice.scheme()) || self.rounds >= MAX_ROUNDS {
            return Err(refused(choice.scheme()));
        }
        self.rounds += 1;
        self.state = match choice {
            Choice::Basic => State::Basic,
            Choice::Digest(challenge) => State::Digest {
                challenge,
                nc: 0,
                fresh: true,
                stale_retries: 0,
            },
            Choice::Ntlm => State::NtlmStart,
        };
        Ok(Retry::AnyConnection)
    }

    /// What to remember once the hop accepted the last request.
    pub(crate) fn memo(&self) -> Option<AuthMemo> {
        match (&self.state, self.sent) {
            (State::Basic, Some(Scheme::Basic)) => Some(AuthMemo(Memo::Basic)),
            (State::Digest { challenge, nc, .. }, Some(Scheme::Digest)) => {
                Some(AuthMemo(Memo::Digest {
                    challenge: challenge.clone(),
                    nc: *nc,
                }))
            }
            _ => None,
        }
    }
}

fn ntlm_value(m: &[u8]) -> String {
    format!(
        "NTLM {}",
        base64::engine::general_purpose::STANDARD.encode(m)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::challenge::parse_all;

    fn chs(values: &[&str]) -> Vec<Challenge> {
        parse_all(values.iter().map(|v| v.as_bytes()))
    }

    fn hop(upfront: bool) -> HopAuth {
        HopAuth::new(Some(Credentials::new("u", "p").unwrap()), upfront, None)
    }

    fn rng() -> Entropy {
        Entropy::new([7; 32], 1_700_000_000)
    }

    #[test]
    fn strongest_scheme_wins() {
        let cases: [(&[&str], &str); 6] = [
            (&["Basic realm=\"r\""], "Basic "),
            (&["Basic realm=\"r\"", "NTLM"], "NTLM "),
            (
                &[
                    "Digest realm=\"r\", nonce=\"n\", qop=\"auth\"",
                    "Basic realm=\"r\"",
                ],
                "Digest ",
            ),
            (
                &["Digest realm=\"r\", nonce=\"n\", qop=\"auth\"", "NTLM"],
                "NTLM ",
            ),
            (
                &[
                    "NTLM",
                    "Digest realm=\"r\", nonce=\"n\", qop=\"auth\", algorithm=SHA-256",
                    "Digest realm=\"r\", nonce=\"n\", qop=\"auth\"",
                ],
                "Digest ",
            ),
            // Unsupported Digest variants fall back to what is left.
            (
                &[
                    "Digest realm=\"r\", nonce=\"n\", algorithm=SHA-1",
                    "Basic realm=\"x\"",
                ],
                "Basic ",
            ),
        ];
        for (offer, want) in cases {
            let mut h = hop(false);
            let mut r = rng();
            assert_eq!(h.header("t:443", &mut r), None);
            h.on_407(&chs(offer), &mut r).unwrap();
            let v = h.header("t:443", &mut r).unwrap();
            assert!(v.starts_with(want), "{offer:?}: {v}");
            if want == "Digest " && offer.len() == 3 {
                assert!(v.contains("algorithm=SHA-256"), "{v}");
            }
        }
    }

    #[test]
    fn basic_refused_after_one_answer() {
        let mut h = hop(false);
        let mut r = rng();
        let offer = chs(&["Basic realm=\"r\""]);
        h.on_407(&offer, &mut r).unwrap();
        h.header("t:443", &mut r).unwrap();
        assert!(h.sent_credentials());
        let e = h.on_407(&offer, &mut r).unwrap_err();
        assert_eq!(
            e.to_string(),
            "proxy authentication failed: Basic credentials refused (407)"
        );
    }

    #[test]
    fn upfront_basic_then_digest_then_refused() {
        let mut h = hop(true);
        let mut r = rng();
        assert!(h.header("t:443", &mut r).unwrap().starts_with("Basic "));
        let offer = chs(&["Digest realm=\"r\", nonce=\"n1\", qop=\"auth\""]);
        assert_eq!(h.on_407(&offer, &mut r), Ok(Retry::AnyConnection));
        let v = h.header("t:443", &mut r).unwrap();
        assert!(v.contains("nc=00000001"), "{v}");
        // Same nonce, not stale: the password is wrong.
        let e = h.on_407(&offer, &mut r).unwrap_err();
        assert!(matches!(
            e,
            ClientError::AuthRequired {
                had_credentials: true,
                scheme: Some("Digest"),
                ..
            }
        ));
    }

    #[test]
    fn digest_stale_retries_and_nonce_count() {
        let mut h = hop(false);
        let mut r = rng();
        h.on_407(
            &chs(&["Digest realm=\"r\", nonce=\"n1\", qop=auth"]),
            &mut r,
        )
        .unwrap();
        assert!(h.header("t:443", &mut r).unwrap().contains("nc=00000001"));
        // Reused on a later request (e.g. a redial): nc counts up.
        let v = h.header("t:443", &mut r).unwrap();
        assert!(
            v.contains("nc=00000002") && v.contains("nonce=\"n1\""),
            "{v}"
        );
        let stale = chs(&["Digest realm=\"r\", nonce=\"n2\", qop=auth, stale=true"]);
        for _ in 0..MAX_STALE {
            assert_eq!(h.on_407(&stale, &mut r), Ok(Retry::AnyConnection));
            let v = h.header("t:443", &mut r).unwrap();
            assert!(
                v.contains("nonce=\"n2\"") && v.contains("nc=00000001"),
                "{v}"
            );
        }
        // Stale forever is a refusal, not a loop.
        assert!(h.on_407(&stale, &mut r).is_err());
    }

    #[test]
    fn memo_round_trip_and_forgotten_nonce() {
        let mut h = hop(false);
        let mut r = rng();
        h.on_407(
            &chs(&["Digest realm=\"r\", nonce=\"n1\", qop=auth"]),
            &mut r,
        )
        .unwrap();
        h.header("t:443", &mut r).unwrap();
        let mut memo = h.memo().unwrap();
        assert_eq!(memo.scheme(), Scheme::Digest);
        let first = memo.take_next();
        let second = memo.take_next();
        let mut a = HopAuth::new(
            Some(Credentials::new("u", "p").unwrap()),
            false,
            Some(first),
        );
        let mut b = HopAuth::new(
            Some(Credentials::new("u", "p").unwrap()),
            false,
            Some(second),
        );
        // Up front, with the remembered nonce and distinct counts.
        assert!(a.header("t:443", &mut r).unwrap().contains("nc=00000002"));
        assert!(b.header("t:443", &mut r).unwrap().contains("nc=00000003"));
        // The proxy forgot the nonce and answers without stale=true: one
        // retry with its new nonce.
        let fresh = chs(&["Digest realm=\"r\", nonce=\"n9\", qop=auth"]);
        a.on_407(&fresh, &mut r).unwrap();
        assert!(a.header("t:443", &mut r).unwrap().contains("nonce=\"n9\""));
        assert!(a.on_407(&fresh, &mut r).is_err());
        // Merge keeps the newer state.
        let mut m = memo.clone();
        m.merge(h.memo().unwrap());
        assert_eq!(m, memo);
        // Basic is remembered too; NTLM is not (bound to its connection).
        let mut h = hop(false);
        h.on_407(&chs(&["Basic realm=\"r\""]), &mut r).unwrap();
        h.header("t:443", &mut r).unwrap();
        assert_eq!(h.memo().unwrap().scheme(), Scheme::Basic);
    }

    #[test]
    fn ntlm_exchange() {
        let mut h = hop(false);
        let mut r = rng();
        assert_eq!(
            h.on_407(&chs(&["NTLM", "Basic realm=\"r\""]), &mut r),
            Ok(Retry::AnyConnection)
        );
        let t1 = h.header("t:443", &mut r).unwrap();
        assert_eq!(t1, ntlm_value(&ntlm::negotiate()));
        // MS-NLMP §4.2.4.3's challenge.
        let challenge = "NTLM TlRMTVNTUAACAAAADAAMADgAAAAzgoriASNFZ4mrze8AAAAAAAAAACQAJABEAAAABgBwFwAAAA9TAGUAcgB2AGUAcgACAAwARABvAG0AYQBpAG4AAQAMAFMAZQByAHYAZQByAAAAAAA=";
        assert_eq!(
            h.on_407(&chs(&[challenge]), &mut r),
            Ok(Retry::SameConnection)
        );
        let t3 = h.header("t:443", &mut r).unwrap();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(t3.strip_prefix("NTLM ").unwrap())
            .unwrap();
        assert_eq!(&raw[..12], b"NTLMSSP\0\x03\0\0\0");
        assert_eq!(h.memo(), None);
        // A 407 after the answer is a refusal.
        let e = h.on_407(&chs(&["NTLM"]), &mut r).unwrap_err();
        assert!(e.to_string().contains("NTLM credentials refused"), "{e}");

        // A new connection restarts with negotiate.
        let mut h = hop(false);
        h.on_407(&chs(&["NTLM"]), &mut r).unwrap();
        h.header("t:443", &mut r).unwrap();
        h.on_new_connection();
        assert_eq!(h.header("t:443", &mut r).unwrap(), t1);
        // A garbled challenge is a defined error.
        let e = h.on_407(&chs(&["NTLM AAAA"]), &mut r).unwrap_err();
        assert_eq!(
            e.to_string(),
            "NTLM proxy authentication failed: the proxy's NTLM challenge is not a CHALLENGE_MESSAGE"
        );
    }

    #[test]
    fn no_credentials_or_unsupported() {
        let mut h = HopAuth::new(None, true, None);
        let mut r = rng();
        assert_eq!(h.header("t:443", &mut r), None);
        let e = h
            .on_407(&chs(&["Digest realm=\"r\", nonce=\"n\""]), &mut r)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "proxy authentication required (Digest) and no credentials are configured"
        );
        let mut h = hop(false);
        let e = h
            .on_407(&chs(&["Negotiate", "Bearer realm=\"x\""]), &mut r)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "proxy authentication required with schemes we do not support (Negotiate, Bearer)"
        );
    }
}
