//! The authenticator (server) side of PAP, CHAP-MD5, MS-CHAPv2 and
//! EAP(-MSCHAPv2). Verification is asynchronous: a received proof becomes an
//! [`AuthOut::Request`]; the engine hands the caller's verdict back through
//! [`Authenticator::verdict`].
//!
//! Timers: requests we send (CHAP Challenge, EAP Requests) are retransmitted
//! every Restart period up to Max-Configure times (RFC 1994 §4.1, RFC 3748
//! §4.3); the whole exchange, including the wait for a verdict, is bounded by
//! the authentication timeout.
//!
//! EAP-TLS (when `Config::eap_tls` is set): after Identity we send Start
//! and run the exchange of [`super::eap_tls`]; the TLS engine's verdict
//! (client certificate verified, a user name taken from it) is final: no
//! [`AuthOut::Request`], EAP Success once the peer acknowledged our last
//! flight, EAP-Failure with the reason otherwise (RFC 5216 §2.1.3).
//!
//! EAP pass-through (when `Config::eap_pass_through` is set,
//! [`super::eap_relay`]): after Identity every EAP-Response of the peer
//! becomes an [`AuthOut::Request`] with [`Proof::Eap`] and the caller's
//! [`Verdict::Eap`] is relayed (Request: wait for the next Response;
//! Success/Failure: the end).
//!
//! Retries: after a rejected PAP request, CHAP-MD5 or MS-CHAPv2 response the
//! peer may try again until `max_attempts` failures (PAP: the peer sends a
//! new Authenticate-Request; CHAP-MD5: we send a new Challenge; MS-CHAPv2:
//! the Failure carries `R=1` and the next challenge `C=` (RFC 2759 §6) and we
//! accept a Response with the next Identifier). EAP ends at its first
//! Failure. Duplicate responses after a result are answered with the same
//! result (RFC 1994 §4.2), never re-verified.

use std::time::{Duration, Instant};

use super::eap::{self, Code, EapType, MsChapV2Msg};
use super::eap_tls::{EapTlsConfig, Exchange};
use super::{
    chap, mschapv2, pap, AuthMethod, AuthProtocol, AuthSuccess, MsChapV2Accept, Proof, Verdict,
};
use crate::error::ApiError;
use crate::keys;
use crate::rng::Rng;
use crate::wire::Packet;

/// Why authentication failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthFailure {
    /// The credentials were rejected (message as sent or received).
    Rejected {
        /// The text of the rejection.
        message: String,
        /// The MS-CHAPv2 E= code (RFC 2759 §6), when the rejection had one.
        code: Option<u32>,
    },
    /// No answer (or no verdict) within the limits.
    Timeout,
    /// The peer refused every method we can do (LCP or EAP Nak).
    MethodRefused,
    /// Client side: the server failed to prove it knows the password (bad or
    /// missing MS-CHAPv2 authenticator response, or EAP Success too early).
    ServerNotAuthenticated,
    /// Client side: our credentials do not suit the method (e.g. only an NT
    /// hash for PAP or CHAP-MD5), or there are none.
    NoCredentials,
    /// EAP-TLS failed: the TLS handshake or its framing (plain words,
    /// e.g. the certificate's CA is unknown).
    Tls {
        /// What went wrong.
        reason: String,
    },
    /// PEAP failed outside the inner method: the TLS handshake (e.g. the
    /// server's certificate is not trusted), its framing, or the tunneled
    /// conversation (plain words).
    Peap {
        /// What went wrong.
        reason: String,
    },
}

/// Plain words: the rejection's own text, or what went wrong.
impl std::fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthFailure::Rejected {
                message,
                code: Some(code),
            } => {
                let words = super::mschapv2::error_words(*code).unwrap_or("rejected");
                write!(f, "credentials rejected: {words} (E={code})")?;
                if !message.trim().is_empty() {
                    write!(f, " ({})", printable(message))?;
                }
                Ok(())
            }
            AuthFailure::Rejected { message, .. } if message.trim().is_empty() => {
                f.write_str("credentials rejected")
            }
            AuthFailure::Rejected { message, .. } => {
                write!(f, "credentials rejected ({})", printable(message))
            }
            AuthFailure::Timeout => f.write_str("no answer in time"),
            AuthFailure::MethodRefused => f.write_str("every offered method was refused"),
            AuthFailure::ServerNotAuthenticated => {
                f.write_str("the server did not prove it knows the password")
            }
            AuthFailure::NoCredentials => f.write_str("no credentials suit the method"),
            AuthFailure::Tls { reason } => write!(f, "EAP-TLS failed: {reason}"),
            AuthFailure::Peap { reason } => write!(f, "PEAP failed: {reason}"),
        }
    }
}

impl AuthFailure {
    /// A rejection without an E= code.
    pub(crate) fn rejected(message: impl Into<String>) -> Self {
        AuthFailure::Rejected {
            message: message.into(),
            code: None,
        }
    }
}

/// What an MS-CHAPv2 Failure says for a rejection with `message` and the
/// backend's failure text (see [`Verdict::Reject`]): the E= code, the M=
/// text and whether the backend allows a retry. Without a usable text:
/// E=691, `message`, retry allowed.
fn mschap_failure(message: String, backend: Option<&[u8]>) -> (u32, String, bool) {
    match backend.and_then(mschapv2::backend_failure) {
        None => (mschapv2::AUTHENTICATION_FAILURE, message, true),
        Some(f) => {
            let text = if f.message.is_empty() {
                message
            } else {
                f.message
            };
            (
                f.error.unwrap_or(mschapv2::AUTHENTICATION_FAILURE),
                text,
                f.retry,
            )
        }
    }
}

/// The text may come from the peer: trimmed, no control characters, at
/// most 200 characters.
fn printable(message: &str) -> String {
    message
        .trim()
        .chars()
        .take(200)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub(crate) restart: Duration,
    pub(crate) max_transmits: u32,
    pub(crate) timeout: Duration,
    pub(crate) max_attempts: u32,
}

/// What the authenticator reports to the engine.
#[derive(Debug)]
pub(crate) enum AuthOut {
    Request {
        id: u64,
        username: String,
        method: AuthMethod,
        proof: Proof,
    },
    Success(AuthSuccess),
    Failure {
        username: Option<String>,
        reason: AuthFailure,
    },
}

#[derive(Debug)]
enum St {
    /// Waiting for a PAP request / CHAP response / EAP-MSCHAPv2 response.
    WaitResponse,
    /// EAP: waiting for Response/Identity.
    EapIdentity,
    /// Waiting for the caller's verdict.
    WaitVerdict {
        req: u64,
        pkt_id: u8,
    },
    /// EAP: MS-CHAPv2 Success request sent, waiting for the peer's Success response.
    EapSuccessSent {
        success: AuthSuccess,
    },
    /// EAP: MS-CHAPv2 Failure request sent.
    EapFailureSent {
        message: String,
    },
    /// EAP-TLS running (the exchange is in `Authenticator::tls`).
    EapTls,
    /// EAP pass-through: a backend Request relayed, waiting for the Response.
    EapRelay {
        state: Vec<u8>,
    },
    Done,
}

pub(crate) struct Authenticator {
    proto: AuthProtocol,
    name: Vec<u8>,
    t: Timing,
    st: St,
    id: u8,
    challenge: [u8; 16],
    retransmit_at: Option<Instant>,
    transmits_left: u32,
    deadline: Instant,
    last_request: Option<Vec<u8>>,
    attempts: u32,
    next_req: u64,
    username: Option<String>,
    result: Option<(u8, Vec<u8>)>,
    tls_config: Option<std::sync::Arc<dyn EapTlsConfig>>,
    tls: Option<Exchange>,
    max_frag: usize,
    pass_through: bool,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("proto", &self.proto)
            .field("st", &self.st)
            .finish_non_exhaustive()
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Authenticator {
    pub(crate) fn start(
        now: Instant,
        proto: AuthProtocol,
        name: &str,
        t: Timing,
        first_req: u64,
        rng: &mut dyn Rng,
        out: &mut Vec<Vec<u8>>,
    ) -> Self {
        let mut b = [0u8; 17];
        rng.fill(&mut b);
        let mut a = Authenticator {
            proto,
            name: name.as_bytes().to_vec(),
            t,
            st: St::WaitResponse,
            id: b[16],
            challenge: b[..16].try_into().unwrap_or([0; 16]),
            retransmit_at: None,
            transmits_left: 0,
            deadline: now + t.timeout,
            last_request: None,
            attempts: 0,
            next_req: first_req,
            username: None,
            result: None,
            tls_config: None,
            tls: None,
            max_frag: 1000,
            pass_through: false,
        };
        match proto {
            AuthProtocol::Pap => {}
            AuthProtocol::ChapMd5 | AuthProtocol::MsChapV2 => {
                let f = chap::value_name_frame(chap::CHALLENGE, a.id, &a.challenge, &a.name);
                a.send_request(now, f, out);
            }
            AuthProtocol::Eap => {
                a.st = St::EapIdentity;
                let f = eap::typed_frame(Code::Request, a.id, EapType::Identity, &[]);
                a.send_request(now, f, out);
            }
        }
        a
    }

    /// EAP: run EAP-TLS (instead of EAP-MSCHAPv2) after Identity, with
    /// fragments of at most `max_frag` TLS octets.
    pub(crate) fn with_eap_tls(
        mut self,
        config: Option<std::sync::Arc<dyn EapTlsConfig>>,
        max_frag: usize,
    ) -> Self {
        self.tls_config = config;
        self.max_frag = max_frag;
        self
    }

    /// EAP: relay the method to the caller (EAP pass-through).
    pub(crate) fn with_eap_pass_through(mut self, on: bool) -> Self {
        self.pass_through = on;
        self
    }

    /// The next request id this authenticator would use (so the engine can
    /// keep ids unique across restarts of authentication).
    pub(crate) fn next_request_id(&self) -> u64 {
        self.next_req
    }

    fn send_request(&mut self, now: Instant, frame: Vec<u8>, out: &mut Vec<Vec<u8>>) {
        out.push(frame.clone());
        self.last_request = Some(frame);
        self.transmits_left = self.t.max_transmits.saturating_sub(1);
        self.retransmit_at = Some(now + self.t.restart);
    }

    fn stop_retransmit(&mut self) {
        self.retransmit_at = None;
        self.last_request = None;
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        if matches!(self.st, St::Done) {
            return None;
        }
        Some(match self.retransmit_at {
            Some(r) => r.min(self.deadline),
            None => self.deadline,
        })
    }

    fn fail(&mut self, reason: AuthFailure) -> Option<AuthOut> {
        self.st = St::Done;
        self.stop_retransmit();
        Some(AuthOut::Failure {
            username: self.username.clone(),
            reason,
        })
    }

    pub(crate) fn handle_timeout(
        &mut self,
        now: Instant,
        out: &mut Vec<Vec<u8>>,
    ) -> Option<AuthOut> {
        if matches!(self.st, St::Done) {
            return None;
        }
        if now >= self.deadline {
            return self.fail(AuthFailure::Timeout);
        }
        match self.retransmit_at {
            Some(r) if r <= now => {
                if self.transmits_left == 0 {
                    return self.fail(AuthFailure::Timeout);
                }
                self.transmits_left -= 1;
                self.retransmit_at = Some(now + self.t.restart);
                if let Some(f) = &self.last_request {
                    out.push(f.clone());
                }
                None
            }
            _ => None,
        }
    }

    fn request(&mut self, username: String, proof: Proof, pkt_id: u8) -> Option<AuthOut> {
        let req = self.next_req;
        self.next_req = self.next_req.wrapping_add(1);
        self.stop_retransmit();
        self.username = Some(username.clone());
        let method = match (self.proto, &proof) {
            (_, Proof::Eap { .. }) => AuthMethod::EapPassThrough,
            (AuthProtocol::Eap, _) => AuthMethod::EapMsChapV2,
            (_, Proof::Pap { .. }) => AuthMethod::Pap,
            (_, Proof::ChapMd5 { .. }) => AuthMethod::ChapMd5,
            (_, Proof::MsChapV2 { .. }) => AuthMethod::MsChapV2,
        };
        self.st = St::WaitVerdict { req, pkt_id };
        Some(AuthOut::Request {
            id: req,
            username,
            method,
            proof,
        })
    }

    /// Handles a PAP/CHAP/EAP packet (the frame's information field).
    pub(crate) fn receive(
        &mut self,
        now: Instant,
        payload: &[u8],
        out: &mut Vec<Vec<u8>>,
    ) -> Option<AuthOut> {
        match self.proto {
            AuthProtocol::Pap => self.receive_pap(payload, out),
            AuthProtocol::ChapMd5 | AuthProtocol::MsChapV2 => self.receive_chap(payload, out),
            AuthProtocol::Eap => self.receive_eap(now, payload, out),
        }
    }

    fn resend_result(&self, id: u8, out: &mut Vec<Vec<u8>>) {
        if let Some((rid, f)) = &self.result {
            if *rid == id {
                out.push(f.clone());
            }
        }
    }

    fn receive_pap(&mut self, payload: &[u8], out: &mut Vec<Vec<u8>>) -> Option<AuthOut> {
        let p = Packet::parse(payload).ok()?;
        if p.code != pap::AUTH_REQ {
            return None;
        }
        match self.st {
            St::WaitResponse => {
                let (user, pass) = pap::parse_request(p.data)?;
                let proof = Proof::Pap {
                    password: super::Password::new(pass),
                };
                self.request(lossy(user), proof, p.id)
            }
            St::Done => {
                self.resend_result(p.id, out);
                None
            }
            _ => None,
        }
    }

    fn receive_chap(&mut self, payload: &[u8], out: &mut Vec<Vec<u8>>) -> Option<AuthOut> {
        let p = Packet::parse(payload).ok()?;
        if p.code != chap::RESPONSE {
            return None;
        }
        match self.st {
            St::WaitResponse if p.id == self.id => {
                let vn = chap::parse_value_name(p.data)?;
                let proof = if self.proto == AuthProtocol::ChapMd5 {
                    Proof::ChapMd5 {
                        id: p.id,
                        challenge: self.challenge.to_vec(),
                        response: vn.value.try_into().ok()?,
                    }
                } else {
                    let r = mschapv2::parse_response_value(vn.value)?;
                    Proof::MsChapV2 {
                        authenticator_challenge: self.challenge,
                        peer_challenge: r.peer_challenge,
                        nt_response: r.nt_response,
                        name: vn.name.to_vec(),
                    }
                };
                self.request(lossy(vn.name), proof, p.id)
            }
            St::Done | St::WaitResponse => {
                self.resend_result(p.id, out);
                None
            }
            _ => None,
        }
    }

    fn receive_eap(
        &mut self,
        now: Instant,
        payload: &[u8],
        out: &mut Vec<Vec<u8>>,
    ) -> Option<AuthOut> {
        let p = eap::parse(payload).ok()?;
        if p.code != Code::Response || p.id != self.id {
            return None;
        }
        let typ = p.typ?;
        match &self.st {
            St::EapIdentity => {
                if typ != EapType::Identity {
                    return None;
                }
                self.username = Some(lossy(p.type_data));
                if self.pass_through {
                    return self.relay_response(payload, p.id, Vec::new());
                }
                self.id = self.id.wrapping_add(1);
                if let Some(c) = &self.tls_config {
                    return self.start_tls(now, c.clone(), out);
                }
                let body = eap::value_name(&self.challenge, &self.name);
                let td = eap::mschapv2_data(eap::opcode::CHALLENGE, self.id, &body);
                let f = eap::typed_frame(Code::Request, self.id, EapType::MsChapV2, &td);
                self.st = St::WaitResponse;
                self.send_request(now, f, out);
                None
            }
            St::WaitResponse => match typ {
                EapType::MsChapV2 => match eap::parse_mschapv2(p.type_data, false)? {
                    MsChapV2Msg::Response { ms_id, value, name } if ms_id == self.id => {
                        let r = mschapv2::parse_response_value(value)?;
                        let proof = Proof::MsChapV2 {
                            authenticator_challenge: self.challenge,
                            peer_challenge: r.peer_challenge,
                            nt_response: r.nt_response,
                            name: name.to_vec(),
                        };
                        self.request(lossy(name), proof, p.id)
                    }
                    _ => None,
                },
                EapType::Nak => {
                    // The peer wants another method (EAP-TLS, PEAP...): we have none.
                    out.push(eap::result_frame(false, p.id));
                    self.fail(AuthFailure::MethodRefused)
                }
                _ => None,
            },
            St::EapSuccessSent { success } => {
                let ok = typ == EapType::MsChapV2
                    && eap::parse_mschapv2(p.type_data, false)
                        == Some(MsChapV2Msg::SuccessResponse);
                let success = success.clone();
                out.push(eap::result_frame(ok, p.id));
                self.st = St::Done;
                self.stop_retransmit();
                if ok {
                    Some(AuthOut::Success(success))
                } else {
                    self.fail(AuthFailure::rejected(
                        "EAP-MSCHAPv2 success not acknowledged",
                    ))
                }
            }
            St::EapFailureSent { message } => {
                let message = message.clone();
                out.push(eap::result_frame(false, p.id));
                self.fail(AuthFailure::rejected(message))
            }
            St::EapTls => self.receive_tls(now, p.id, typ, p.type_data, out),
            St::EapRelay { state } => {
                let state = state.clone();
                self.relay_response(payload, p.id, state)
            }
            _ => None,
        }
    }

    /// Pass-through: the peer's Response (up to its Length) as a request.
    fn relay_response(&mut self, payload: &[u8], pkt_id: u8, state: Vec<u8>) -> Option<AuthOut> {
        let len = usize::from(u16::from_be_bytes([*payload.get(2)?, *payload.get(3)?]));
        let packet = payload.get(..len)?.to_vec();
        let user = self.username.clone().unwrap_or_default();
        self.request(user, Proof::Eap { packet, state }, pkt_id)
    }

    /// Pass-through: relays the caller's EAP packet (see the module docs).
    fn relay_verdict(
        &mut self,
        now: Instant,
        pkt_id: u8,
        v: Verdict,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<Option<AuthOut>, ApiError> {
        let username = self.username.clone().unwrap_or_default();
        let (packet, msk, state) = match v {
            Verdict::Eap { packet, msk, state } => (packet, msk, state),
            Verdict::Reject { message, .. } => {
                let f = eap::result_frame(false, pkt_id);
                out.push(f.clone());
                self.result = Some((pkt_id, f));
                return Ok(self.fail(AuthFailure::rejected(message)));
            }
            Verdict::Accept { .. } => return Err(ApiError::BadVerdict),
        };
        let r = super::eap_relay::relay(&packet).ok_or(ApiError::BadVerdict)?;
        match r.code {
            Code::Request => {
                self.id = r.id;
                self.st = St::EapRelay { state };
                self.send_request(now, r.frame, out);
                Ok(None)
            }
            Code::Success => {
                let hlak = super::eap_relay::hlak_from_keys(msk.as_deref().unwrap_or_default());
                let s = AuthSuccess::new(hlak, username, AuthMethod::EapPassThrough);
                Ok(self.succeed(pkt_id, eap::result_frame(true, pkt_id), s, out))
            }
            _ => {
                let f = eap::result_frame(false, pkt_id);
                out.push(f.clone());
                self.result = Some((pkt_id, f));
                Ok(self.fail(AuthFailure::rejected(
                    "EAP Failure from the authentication server",
                )))
            }
        }
    }

    fn start_tls(
        &mut self,
        now: Instant,
        c: std::sync::Arc<dyn EapTlsConfig>,
        out: &mut Vec<Vec<u8>>,
    ) -> Option<AuthOut> {
        match c.start() {
            Ok(s) => {
                self.tls = Some(Exchange::new(s, self.max_frag));
                self.st = St::EapTls;
                let f = eap::typed_frame(
                    Code::Request,
                    self.id,
                    EapType::Tls,
                    &super::eap_tls::start(),
                );
                self.send_request(now, f, out);
                None
            }
            Err(reason) => {
                out.push(eap::result_frame(false, self.id.wrapping_sub(1)));
                self.fail(AuthFailure::Tls { reason })
            }
        }
    }

    /// RFC 5216 §2.1: answers one EAP-TLS Response; Success once the peer
    /// acknowledged our last flight of a finished handshake (for TLS 1.3
    /// that flight is the commitment message, RFC 9190 §2.5).
    fn receive_tls(
        &mut self,
        now: Instant,
        pkt_id: u8,
        typ: EapType,
        td: &[u8],
        out: &mut Vec<Vec<u8>>,
    ) -> Option<AuthOut> {
        use super::eap_tls::Step;
        if typ == EapType::Nak {
            out.push(eap::result_frame(false, pkt_id));
            return self.fail(AuthFailure::MethodRefused);
        }
        if typ != EapType::Tls {
            return None;
        }
        let step = self.tls.as_mut()?.receive(td);
        match step {
            Step::Send(td) => {
                self.id = self.id.wrapping_add(1);
                let f = eap::typed_frame(Code::Request, self.id, EapType::Tls, &td);
                self.send_request(now, f, out);
                None
            }
            Step::PeerAck => {
                let t = self.tls.as_ref()?.tls();
                let done = t.is_done().then(|| (t.msk(), t.peer_name()));
                match done {
                    Some((Some(msk), Some(user))) => {
                        self.username = Some(user.clone());
                        let hlak = super::eap_tls::hlak_from_msk(&msk);
                        let s = AuthSuccess::new(hlak, user, AuthMethod::EapTls)
                            .with_alt_hlak(super::eap_tls::hlak_from_msk_pppd(&msk));
                        self.succeed(pkt_id, eap::result_frame(true, pkt_id), s, out)
                    }
                    _ => {
                        out.push(eap::result_frame(false, pkt_id));
                        self.fail(AuthFailure::Tls {
                            reason: "the peer stopped before the TLS handshake finished".into(),
                        })
                    }
                }
            }
            Step::Failed { reason, .. } => {
                // RFC 5216 §2.1.3 lets the server end with EAP-Failure.
                let f = eap::result_frame(false, pkt_id);
                out.push(f.clone());
                self.result = Some((pkt_id, f));
                self.fail(AuthFailure::Tls { reason })
            }
        }
    }

    /// Applies the caller's verdict for request `req`.
    pub(crate) fn verdict(
        &mut self,
        now: Instant,
        req: u64,
        v: Verdict,
        rng: &mut dyn Rng,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<Option<AuthOut>, ApiError> {
        let pkt_id = match &self.st {
            St::WaitVerdict { req: r, pkt_id, .. } if *r == req => *pkt_id,
            _ => return Err(ApiError::UnknownRequest),
        };
        if self.pass_through && self.proto == AuthProtocol::Eap {
            return self.relay_verdict(now, pkt_id, v, out);
        }
        let username = self.username.clone().unwrap_or_default();
        let mschap = |v: &Verdict| -> Result<Option<MsChapV2Accept>, ApiError> {
            match v {
                Verdict::Accept { mschapv2: Some(a) } => Ok(Some(a.clone())),
                Verdict::Accept { mschapv2: None } => Err(ApiError::BadVerdict),
                Verdict::Reject { .. } => Ok(None),
                Verdict::Eap { .. } => Err(ApiError::BadVerdict),
            }
        };
        match (self.proto, v) {
            (_, Verdict::Eap { .. }) => Err(ApiError::BadVerdict),
            (AuthProtocol::Pap, Verdict::Accept { .. }) => {
                let f = pap::reply_frame(pap::AUTH_ACK, pkt_id, b"Login OK");
                Ok(self.succeed(
                    pkt_id,
                    f,
                    AuthSuccess::new([0; 32], username, AuthMethod::Pap),
                    out,
                ))
            }
            (AuthProtocol::Pap, Verdict::Reject { message, .. }) => {
                let f = pap::reply_frame(pap::AUTH_NAK, pkt_id, message.as_bytes());
                out.push(f.clone());
                self.result = Some((pkt_id, f));
                self.after_reject(now, message, rng, out)
            }
            (AuthProtocol::ChapMd5, Verdict::Accept { .. }) => {
                let f = chap::message_frame(chap::SUCCESS, pkt_id, b"Welcome");
                Ok(self.succeed(
                    pkt_id,
                    f,
                    AuthSuccess::new([0; 32], username, AuthMethod::ChapMd5),
                    out,
                ))
            }
            (AuthProtocol::ChapMd5, Verdict::Reject { message, .. }) => {
                let f = chap::message_frame(chap::FAILURE, pkt_id, message.as_bytes());
                out.push(f.clone());
                self.result = Some((pkt_id, f));
                self.after_reject(now, message, rng, out)
            }
            (AuthProtocol::MsChapV2, v) => {
                let acc = mschap(&v)?;
                match (acc, v) {
                    (Some(a), _) => {
                        let msg = mschapv2::success_message(&a.authenticator_response, "Welcome");
                        let f = chap::message_frame(chap::SUCCESS, pkt_id, &msg);
                        let s = AuthSuccess::new(
                            keys::hlak_server(&a.keys),
                            username,
                            AuthMethod::MsChapV2,
                        );
                        Ok(self.succeed(pkt_id, f, s, out))
                    }
                    (
                        None,
                        Verdict::Reject {
                            message,
                            mschap_error,
                        },
                    ) => {
                        let (code, message, may_retry) =
                            mschap_failure(message, mschap_error.as_deref());
                        self.attempts = self.attempts.saturating_add(1);
                        let retry = may_retry && self.attempts < self.t.max_attempts;
                        let mut next = [0u8; 16];
                        rng.fill(&mut next);
                        let body = mschapv2::failure_message_code(code, retry, &next, &message);
                        let f = chap::message_frame(chap::FAILURE, pkt_id, &body);
                        out.push(f.clone());
                        self.result = Some((pkt_id, f));
                        if retry {
                            // RFC 2759 §6: the retry Response uses Identifier + 1
                            // and answers the challenge given in C=.
                            self.challenge = next;
                            self.id = pkt_id.wrapping_add(1);
                            self.st = St::WaitResponse;
                            Ok(None)
                        } else {
                            Ok(self.fail(AuthFailure::Rejected {
                                message,
                                code: Some(code),
                            }))
                        }
                    }
                    (None, _) => Err(ApiError::BadVerdict),
                }
            }
            (AuthProtocol::Eap, v) => {
                let acc = mschap(&v)?;
                let ms_id = self.id;
                self.id = self.id.wrapping_add(1);
                match (acc, v) {
                    (Some(a), _) => {
                        let msg = mschapv2::success_message(&a.authenticator_response, "Welcome");
                        let td = eap::mschapv2_data(eap::opcode::SUCCESS, ms_id, &msg);
                        let f = eap::typed_frame(Code::Request, self.id, EapType::MsChapV2, &td);
                        // The EAP-MSCHAPv2 MSK is server Recv-Key | Send-Key: the
                        // same 32 bytes as the MS-CHAPv2 server HLAK.
                        let success = AuthSuccess::new(
                            keys::hlak_server(&a.keys),
                            username,
                            AuthMethod::EapMsChapV2,
                        );
                        self.st = St::EapSuccessSent { success };
                        self.send_request(now, f, out);
                        Ok(None)
                    }
                    (
                        None,
                        Verdict::Reject {
                            message,
                            mschap_error,
                        },
                    ) => {
                        let (code, message, _) = mschap_failure(message, mschap_error.as_deref());
                        let mut next = [0u8; 16];
                        rng.fill(&mut next);
                        let body = mschapv2::failure_message_code(code, false, &next, &message);
                        let td = eap::mschapv2_data(eap::opcode::FAILURE, ms_id, &body);
                        let f = eap::typed_frame(Code::Request, self.id, EapType::MsChapV2, &td);
                        self.st = St::EapFailureSent { message };
                        self.send_request(now, f, out);
                        Ok(None)
                    }
                    (None, _) => Err(ApiError::BadVerdict),
                }
            }
        }
    }

    fn succeed(
        &mut self,
        pkt_id: u8,
        f: Vec<u8>,
        s: AuthSuccess,
        out: &mut Vec<Vec<u8>>,
    ) -> Option<AuthOut> {
        out.push(f.clone());
        self.result = Some((pkt_id, f));
        self.st = St::Done;
        self.stop_retransmit();
        Some(AuthOut::Success(s))
    }

    fn after_reject(
        &mut self,
        now: Instant,
        message: String,
        rng: &mut dyn Rng,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<Option<AuthOut>, ApiError> {
        self.attempts = self.attempts.saturating_add(1);
        if self.attempts >= self.t.max_attempts {
            return Ok(self.fail(AuthFailure::rejected(message)));
        }
        self.st = St::WaitResponse;
        if self.proto == AuthProtocol::ChapMd5 {
            let mut b = [0u8; 16];
            rng.fill(&mut b);
            self.challenge = b;
            self.id = self.id.wrapping_add(1);
            let f = chap::value_name_frame(chap::CHALLENGE, self.id, &self.challenge, &self.name);
            self.send_request(now, f, out);
        }
        Ok(None)
    }
}
