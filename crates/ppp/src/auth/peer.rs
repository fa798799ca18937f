//! The peer (client) side of PAP, CHAP-MD5, MS-CHAPv2 and EAP-MSCHAPv2.
//!
//! * PAP: we send Authenticate-Request and retransmit it every Restart
//!   period up to Max-Configure times (RFC 1334 §2.2.1).
//! * CHAP: we answer every Challenge; a retransmitted Challenge (same
//!   Identifier and value) gets the identical Response.
//! * MS-CHAPv2: the Success message must carry the authenticator response
//!   that proves the server knows our password (RFC 2759 §5); if it is
//!   missing or wrong, authentication fails (`ServerNotAuthenticated`).
//!   A Failure ends authentication even with `R=1`: retrying with the same
//!   password cannot succeed.
//! * EAP: Identity and Notification are answered; a Request of a type other
//!   than MSCHAPv2 (26) — EAP-TLS from SoftEther or pppd servers, PEAP from
//!   RRAS — is answered with a legacy Nak proposing 26 (RFC 3748 §5.3.1). A
//!   duplicate Request gets the previous Response again (§4.1). EAP Success
//!   is accepted only after the MS-CHAPv2 Success was verified.
//! * EAP-TLS (when `Config::eap_tls` is set; [`super::eap_tls`]): Start
//!   begins the TLS session, every later Request goes through its exchange,
//!   other methods are Nak'ed with 13; EAP Success is accepted only once
//!   the handshake is complete (the server's certificate verified), and the
//!   HLAK is the MSK's first 32 octets.
//! * PEAPv0 (when `Config::eap_tls` is a PEAP configuration; [`super::peap`]):
//!   the outer TLS runs like EAP-TLS; inside, Identity and EAP-MSCHAPv2 are
//!   answered with the code of the outer EAP-MSCHAPv2, and the Result TLV
//!   is echoed (success only once the server proved it knows the
//!   password). A plain EAP-MSCHAPv2 request outside the tunnel is Nak'ed
//!   (no downgrade). EAP Success is accepted only after the Result TLV
//!   success; the HLAK is the MSK's first 32 octets.

use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;

use super::authenticator::AuthFailure;
use super::eap::{self, Code, EapType, MsChapV2Msg};
use super::eap_tls::{self, EapTlsConfig, Exchange, Step, TlsSession};
use super::peap::{self, Inner};
use super::{
    chap, mschapv2, pap, AuthMethod, AuthProtocol, AuthSuccess, Credentials, NtHash, Secret,
};
use crate::keys::{self, MppeKeys};
use crate::rng::Rng;
use crate::wire::Packet;

pub(crate) enum PeerOut {
    Success(AuthSuccess),
    Failure(AuthFailure),
}

/// What an EAP-MSCHAPv2 request asks of us (outside or inside PEAP).
enum MsAnswer {
    /// Answer with this Type-Data.
    Reply(Vec<u8>),
    /// The server proved it knows the password; answer with this.
    Verified(Vec<u8>),
    /// Answer with this (if any), then fail.
    Fail(Option<Vec<u8>>, AuthFailure),
}

/// PEAP phase 2 progress.
#[derive(Default)]
struct PeapState {
    /// The inner MS-CHAPv2 Success was verified.
    inner_ok: bool,
    /// We answered the server's Result TLV success.
    result_ok: bool,
    /// Inner authentication failed: fail once the answer is sent.
    failed: Option<AuthFailure>,
}

struct MsChap {
    expected: [u8; 20],
    hash: NtHash,
    nt_response: [u8; 24],
}

enum St {
    Running,
    /// EAP: MS-CHAPv2 success verified and acknowledged; waiting for EAP Success.
    AwaitEapSuccess,
    Done,
}

pub(crate) struct PeerAuth {
    proto: AuthProtocol,
    creds: Option<Credentials>,
    st: St,
    restart: Duration,
    transmits_left: u32,
    retransmit_at: Option<Instant>,
    deadline: Instant,
    /// (identifier, request fingerprint, response frame) of the last answer.
    last: Option<(u8, Vec<u8>, Vec<u8>)>,
    mschap: Option<MsChap>,
    tls_config: Option<std::sync::Arc<dyn EapTlsConfig>>,
    tls: Option<Exchange>,
    max_frag: usize,
    peap: PeapState,
}

impl Drop for PeerAuth {
    fn drop(&mut self) {
        // The last frame may be a PAP Authenticate-Request with the password.
        if let Some((_, fp, f)) = self.last.as_mut() {
            zeroize::Zeroize::zeroize(fp);
            zeroize::Zeroize::zeroize(f);
        }
    }
}

impl std::fmt::Debug for PeerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerAuth")
            .field("proto", &self.proto)
            .finish_non_exhaustive()
    }
}

fn password(c: &Credentials) -> Option<&[u8]> {
    match &c.secret {
        Secret::Password(p) => Some(p.as_bytes()),
        Secret::NtHash(_) => None,
    }
}

impl PeerAuth {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start(
        now: Instant,
        proto: AuthProtocol,
        creds: Option<Credentials>,
        restart: Duration,
        max_transmits: u32,
        timeout: Duration,
        rng: &mut dyn Rng,
        out: &mut Vec<Vec<u8>>,
    ) -> (Self, Option<PeerOut>) {
        let mut p = PeerAuth {
            proto,
            creds,
            st: St::Running,
            restart,
            transmits_left: 0,
            retransmit_at: None,
            deadline: now + timeout,
            last: None,
            mschap: None,
            tls_config: None,
            tls: None,
            max_frag: 1000,
            peap: PeapState::default(),
        };
        if p.creds.is_none() {
            p.st = St::Done;
            return (p, Some(PeerOut::Failure(AuthFailure::NoCredentials)));
        }
        if proto == AuthProtocol::Pap {
            let c = p.creds.as_ref().map(|c| {
                (
                    c.username.as_bytes().to_vec(),
                    password(c).map(<[u8]>::to_vec),
                )
            });
            let Some((user, Some(pw))) = c else {
                p.st = St::Done;
                return (p, Some(PeerOut::Failure(AuthFailure::NoCredentials)));
            };
            let mut id = [0u8; 1];
            rng.fill(&mut id);
            let f = pap::request_frame(id[0], &user, &pw);
            out.push(f.clone());
            p.last = Some((id[0], Vec::new(), f));
            p.transmits_left = max_transmits.saturating_sub(1);
            p.retransmit_at = Some(now + restart);
        }
        (p, None)
    }

    /// EAP: answer EAP-TLS (and Nak other methods with 13) using `config`,
    /// with fragments of at most `max_frag` TLS octets.
    pub(crate) fn with_eap_tls(
        &mut self,
        config: Option<std::sync::Arc<dyn EapTlsConfig>>,
        max_frag: usize,
    ) {
        self.tls_config = config;
        self.max_frag = max_frag;
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        if matches!(self.st, St::Done) {
            return None;
        }
        Some(
            self.retransmit_at
                .map_or(self.deadline, |r| r.min(self.deadline)),
        )
    }

    fn fail(&mut self, r: AuthFailure) -> Option<PeerOut> {
        self.st = St::Done;
        self.retransmit_at = None;
        Some(PeerOut::Failure(r))
    }

    fn succeed(&mut self, hlak: [u8; 32], method: AuthMethod) -> Option<PeerOut> {
        self.st = St::Done;
        self.retransmit_at = None;
        let user = self
            .creds
            .as_ref()
            .map(|c| c.username.clone())
            .unwrap_or_default();
        Some(PeerOut::Success(AuthSuccess::new(hlak, user, method)))
    }

    pub(crate) fn handle_timeout(
        &mut self,
        now: Instant,
        out: &mut Vec<Vec<u8>>,
    ) -> Option<PeerOut> {
        if matches!(self.st, St::Done) {
            return None;
        }
        if now >= self.deadline {
            return self.fail(AuthFailure::Timeout);
        }
        if let Some(r) = self.retransmit_at {
            if r <= now {
                if self.transmits_left == 0 {
                    return self.fail(AuthFailure::Timeout);
                }
                self.transmits_left -= 1;
                self.retransmit_at = Some(now + self.restart);
                if let Some((_, _, f)) = &self.last {
                    out.push(f.clone());
                }
            }
        }
        None
    }

    pub(crate) fn receive(
        &mut self,
        payload: &[u8],
        rng: &mut dyn Rng,
        out: &mut Vec<Vec<u8>>,
    ) -> Option<PeerOut> {
        if matches!(self.st, St::Done) {
            return None;
        }
        match self.proto {
            AuthProtocol::Pap => {
                let p = Packet::parse(payload).ok()?;
                let (id, _, _) = self.last.as_ref()?;
                if p.id != *id {
                    return None;
                }
                match p.code {
                    pap::AUTH_ACK => self.succeed([0; 32], AuthMethod::Pap),
                    pap::AUTH_NAK => {
                        let msg = p
                            .data
                            .get(1..)
                            .map(|m| String::from_utf8_lossy(m).into_owned());
                        self.fail(AuthFailure::rejected(msg.unwrap_or_default()))
                    }
                    _ => None,
                }
            }
            AuthProtocol::ChapMd5 | AuthProtocol::MsChapV2 => self.receive_chap(payload, rng, out),
            AuthProtocol::Eap => self.receive_eap(payload, rng, out),
        }
    }

    /// Computes an MS-CHAPv2 response; returns (response value, name) or a failure.
    fn mschap_response(
        &mut self,
        challenge: &[u8; 16],
        rng: &mut dyn Rng,
    ) -> Result<([u8; 49], Vec<u8>), AuthFailure> {
        let c = self.creds.as_ref().ok_or(AuthFailure::NoCredentials)?;
        let hash = c.secret.nt_hash().ok_or(AuthFailure::NoCredentials)?;
        let user = c.username.as_bytes().to_vec();
        let mut pc = [0u8; 16];
        rng.fill(&mut pc);
        let nt = keys::generate_nt_response(challenge, &pc, &user, &hash);
        let expected = keys::authenticator_response(&hash, &nt, &pc, challenge, &user);
        self.mschap = Some(MsChap {
            expected,
            hash,
            nt_response: nt,
        });
        Ok((mschapv2::response_value(&pc, &nt), user))
    }

    /// Checks `S=` in a Success message; returns the client HLAK.
    fn verify_success(&self, msg: &[u8]) -> Option<[u8; 32]> {
        let m = self.mschap.as_ref()?;
        let got = mschapv2::parse_authenticator_response(msg)?;
        if !bool::from(got.ct_eq(&m.expected)) {
            return None;
        }
        Some(keys::hlak_client(&MppeKeys::derive(
            &m.hash,
            &m.nt_response,
            false,
        )))
    }

    fn receive_chap(
        &mut self,
        payload: &[u8],
        rng: &mut dyn Rng,
        out: &mut Vec<Vec<u8>>,
    ) -> Option<PeerOut> {
        let p = Packet::parse(payload).ok()?;
        match p.code {
            chap::CHALLENGE => {
                let vn = chap::parse_value_name(p.data)?;
                if let Some((id, fp, f)) = &self.last {
                    if *id == p.id && fp.as_slice() == vn.value {
                        out.push(f.clone());
                        return None;
                    }
                }
                let frame = if self.proto == AuthProtocol::ChapMd5 {
                    let c = self.creds.as_ref()?;
                    let Some(pw) = password(c) else {
                        return self.fail(AuthFailure::NoCredentials);
                    };
                    let r = chap::md5_response(p.id, pw, vn.value);
                    chap::value_name_frame(chap::RESPONSE, p.id, &r, c.username.as_bytes())
                } else {
                    let ch: &[u8; 16] = vn.value.try_into().ok()?;
                    match self.mschap_response(ch, rng) {
                        Ok((v, name)) => chap::value_name_frame(chap::RESPONSE, p.id, &v, &name),
                        Err(e) => return self.fail(e),
                    }
                };
                out.push(frame.clone());
                self.last = Some((p.id, vn.value.to_vec(), frame));
                None
            }
            chap::SUCCESS | chap::FAILURE => {
                let (id, _, _) = self.last.as_ref()?;
                if *id != p.id {
                    return None;
                }
                if p.code == chap::FAILURE {
                    return self.fail(if self.proto == AuthProtocol::MsChapV2 {
                        mschap_rejected(p.data)
                    } else {
                        AuthFailure::rejected(String::from_utf8_lossy(p.data))
                    });
                }
                if self.proto == AuthProtocol::ChapMd5 {
                    return self.succeed([0; 32], AuthMethod::ChapMd5);
                }
                match self.verify_success(p.data) {
                    Some(h) => self.succeed(h, AuthMethod::MsChapV2),
                    None => self.fail(AuthFailure::ServerNotAuthenticated),
                }
            }
            _ => None,
        }
    }

    fn receive_eap(
        &mut self,
        payload: &[u8],
        rng: &mut dyn Rng,
        out: &mut Vec<Vec<u8>>,
    ) -> Option<PeerOut> {
        let p = eap::parse(payload).ok()?;
        match p.code {
            Code::Request => {
                if let Some((id, fp, f)) = &self.last {
                    if *id == p.id && fp.as_slice() == payload {
                        out.push(f.clone());
                        return None;
                    }
                }
                let typ = p.typ?;
                let frame = match typ {
                    EapType::Identity => {
                        let user = self.creds.as_ref()?.username.as_bytes().to_vec();
                        eap::typed_frame(Code::Response, p.id, EapType::Identity, &user)
                    }
                    EapType::Notification => {
                        eap::typed_frame(Code::Response, p.id, EapType::Notification, &[])
                    }
                    EapType::MsChapV2 if self.tls_config.is_none() => {
                        match self.eap_mschapv2(p.type_data, rng)? {
                            MsAnswer::Reply(td) => {
                                eap::typed_frame(Code::Response, p.id, EapType::MsChapV2, &td)
                            }
                            MsAnswer::Verified(td) => {
                                self.st = St::AwaitEapSuccess;
                                eap::typed_frame(Code::Response, p.id, EapType::MsChapV2, &td)
                            }
                            MsAnswer::Fail(td, e) => {
                                if let Some(td) = td {
                                    out.push(eap::typed_frame(
                                        Code::Response,
                                        p.id,
                                        EapType::MsChapV2,
                                        &td,
                                    ));
                                }
                                return self.fail(e);
                            }
                        }
                    }
                    t if Some(t) == self.tls_method() => match self.receive_tls(p.type_data, rng) {
                        Ok(td) => eap::typed_frame(Code::Response, p.id, t, &td),
                        Err((reason, alert)) => {
                            if let Some(td) = alert {
                                out.push(eap::typed_frame(Code::Response, p.id, t, &td));
                            }
                            return self.fail(if t == EapType::Peap {
                                AuthFailure::Peap { reason }
                            } else {
                                AuthFailure::Tls { reason }
                            });
                        }
                    },
                    // EAP-TLS, PEAP, MD5, expanded types...: legacy Nak for
                    // MSCHAPv2 (or EAP-TLS/PEAP when that is what we do).
                    _ => {
                        let want = self.tls_method().unwrap_or(EapType::MsChapV2);
                        eap::typed_frame(Code::Response, p.id, EapType::Nak, &[u8::from(want)])
                    }
                };
                out.push(frame.clone());
                self.last = Some((p.id, payload.to_vec(), frame));
                if let Some(e) = self.peap.failed.take() {
                    return self.fail(e);
                }
                None
            }
            Code::Success if self.tls.is_some() => {
                let r = self.tls_success();
                r.or_else(|| self.fail(AuthFailure::ServerNotAuthenticated))
            }
            Code::Failure if self.tls.is_some() && self.tls_method() == Some(EapType::Peap) => {
                self.fail(AuthFailure::rejected(String::new()))
            }
            Code::Failure if self.tls.is_some() => self.fail(AuthFailure::Tls {
                reason: "the server refused the login (EAP-Failure); check our certificate".into(),
            }),
            Code::Success => {
                if !matches!(self.st, St::AwaitEapSuccess) {
                    return self.fail(AuthFailure::ServerNotAuthenticated);
                }
                let m = self.mschap.as_ref()?;
                let h = keys::hlak_client(&MppeKeys::derive(&m.hash, &m.nt_response, false));
                self.succeed(h, AuthMethod::EapMsChapV2)
            }
            Code::Failure => self.fail(AuthFailure::rejected(String::new())),
            _ => None,
        }
    }

    /// The TLS-based method we run (EAP-TLS or PEAP), if any.
    fn tls_method(&self) -> Option<EapType> {
        self.tls_config.as_ref().map(|c| c.method())
    }

    /// Success of the TLS-based method, if it is complete: the handshake
    /// (the server's certificate verified), and for PEAP the inner method
    /// and the Result TLV.
    fn tls_success(&mut self) -> Option<PeerOut> {
        let t = self.tls.as_ref()?.tls();
        if !t.is_done() {
            return None;
        }
        let msk = t.msk()?;
        let method = match self.tls_method()? {
            EapType::Peap if !self.peap.result_ok => return None,
            EapType::Peap => AuthMethod::Peap,
            _ => AuthMethod::EapTls,
        };
        self.succeed(eap_tls::hlak_from_msk(&msk), method)
    }

    /// An EAP-MSCHAPv2 request's Type-Data; `None` for a malformed or
    /// unexpected one.
    fn eap_mschapv2(&mut self, td: &[u8], rng: &mut dyn Rng) -> Option<MsAnswer> {
        Some(match eap::parse_mschapv2(td, true)? {
            // The server's Success was verified and acknowledged: the
            // exchange is settled, and EAP Success will turn its keys into
            // the HLAK. A late or replayed Challenge is discarded (RFC 3748
            // §4.1: only the current Request is answered) rather than let
            // it replace them.
            MsChapV2Msg::Challenge { .. } if matches!(self.st, St::AwaitEapSuccess) => return None,
            MsChapV2Msg::Challenge {
                ms_id, challenge, ..
            } => match self.mschap_response(challenge, rng) {
                Ok((v, name)) => MsAnswer::Reply(eap::mschapv2_data(
                    eap::opcode::RESPONSE,
                    ms_id,
                    &eap::value_name(&v, &name),
                )),
                Err(e) => MsAnswer::Fail(None, e),
            },
            MsChapV2Msg::SuccessRequest { message, .. } => {
                if self.verify_success(message).is_none() {
                    return Some(MsAnswer::Fail(None, AuthFailure::ServerNotAuthenticated));
                }
                MsAnswer::Verified(vec![eap::opcode::SUCCESS])
            }
            MsChapV2Msg::FailureRequest { message, .. } => {
                MsAnswer::Fail(Some(vec![eap::opcode::FAILURE]), mschap_rejected(message))
            }
            _ => return None,
        })
    }

    /// PEAP phase 2: answers the tunneled request the TLS session received
    /// (if any) through the tunnel (MS-PEAP §3.1.5.6, §2.2.8.1.2).
    fn peap_inner(&mut self, t: &mut dyn TlsSession, rng: &mut dyn Rng) -> Result<(), String> {
        let data = t.take_app();
        if data.is_empty() {
            return Ok(());
        }
        let reply = match peap::parse_inner(&data) {
            None => return Err("malformed data inside the PEAP tunnel".into()),
            Some(Inner::Method(EapType::Identity, _)) => {
                let user = self.creds.as_ref().map(|c| c.username.clone());
                peap::method_response(EapType::Identity, user.unwrap_or_default().as_bytes())
            }
            Some(Inner::Method(EapType::Notification, _)) => {
                peap::method_response(EapType::Notification, &[])
            }
            Some(Inner::Method(EapType::MsChapV2, td)) => {
                let td = match self.eap_mschapv2(td, rng) {
                    None => return Err("malformed EAP-MSCHAPv2 inside the PEAP tunnel".into()),
                    Some(MsAnswer::Reply(td)) => td,
                    Some(MsAnswer::Verified(td)) => {
                        self.peap.inner_ok = true;
                        td
                    }
                    Some(MsAnswer::Fail(td, e)) => {
                        self.peap.failed = Some(e);
                        match td {
                            Some(td) => td,
                            None => return Ok(()),
                        }
                    }
                };
                peap::method_response(EapType::MsChapV2, &td)
            }
            Some(Inner::Method(_, _)) => {
                peap::method_response(EapType::Nak, &[u8::from(EapType::MsChapV2)])
            }
            Some(Inner::Extensions { id, result: None }) => {
                // No Result TLV (an SoH request, MS-PEAP §2.2.8.2): none of
                // ours to give; the server decides.
                peap::extensions_response(id, &[])
            }
            Some(Inner::Extensions { id, result }) => {
                let ok = result == Some(peap::RESULT_SUCCESS) && self.peap.inner_ok;
                if ok {
                    self.peap.result_ok = true;
                } else if self.peap.failed.is_none() {
                    // FreeRADIUS refuses a wrong password with this alone.
                    self.peap.failed = Some(AuthFailure::rejected(String::new()));
                }
                let status = if ok {
                    peap::RESULT_SUCCESS
                } else {
                    peap::RESULT_FAILURE
                };
                peap::result_response(id, status)
            }
        };
        t.write_app(&reply)
    }

    /// One EAP-TLS Request (RFC 5216 §2.1): Start begins a TLS session,
    /// anything else goes through the exchange. Returns the Response's
    /// Type-Data, or why TLS failed with the alert to send.
    #[allow(clippy::type_complexity)]
    fn receive_tls(
        &mut self,
        td: &[u8],
        rng: &mut dyn Rng,
    ) -> Result<Vec<u8>, (String, Option<Vec<u8>>)> {
        let start = eap_tls::parse(td).is_some_and(|f| f.flags & eap_tls::FLAG_START != 0);
        if start {
            let c = self.tls_config.clone().ok_or((String::new(), None))?;
            let s = c.start().map_err(|e| (e, None))?;
            let mut x = Exchange::new(s, self.max_frag);
            let first = x.first_flight();
            self.tls = Some(x);
            return Ok(first);
        }
        let Some(mut x) = self.tls.take() else {
            return Err(("EAP-TLS data before Start".into(), None));
        };
        let step = if self.tls_method() == Some(EapType::Peap) {
            x.receive_with(td, |t| self.peap_inner(t, rng))
        } else {
            x.receive(td)
        };
        self.tls = Some(x);
        match step {
            Step::Send(td) => Ok(td),
            Step::PeerAck => Err(("unexpected EAP-TLS acknowledgement".into(), None)),
            Step::Failed { reason, alert } => Err((reason, alert)),
        }
    }

    /// RFC 3748 §4.2: a lost EAP Success may be inferred from the arrival of
    /// network-layer packets once the method has completed.
    pub(crate) fn implicit_success(&mut self) -> Option<PeerOut> {
        // EAP-TLS: our side of the handshake is complete (the server has
        // verified us before it lets NCP traffic through); PEAP: the
        // Result TLV success was answered.
        if self.tls.is_some() {
            if matches!(self.st, St::Done) {
                return None;
            }
            return self.tls_success();
        }
        if !matches!(self.st, St::AwaitEapSuccess) {
            return None;
        }
        let m = self.mschap.as_ref()?;
        let h = keys::hlak_client(&MppeKeys::derive(&m.hash, &m.nt_response, false));
        self.succeed(h, AuthMethod::EapMsChapV2)
    }
}

/// An MS-CHAPv2 Failure message (RFC 2759 §6) as a rejection: its M=
/// text and E= code.
fn mschap_rejected(msg: &[u8]) -> AuthFailure {
    let f = mschapv2::parse_failure(msg);
    AuthFailure::Rejected {
        message: f.message,
        code: f.error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Password, Secret};
    use std::sync::Arc;

    /// A stand-in for TLS: one round of handshake ("HELLO" out, "DONE"
    /// in), then every input is application data and application data
    /// written comes out as is.
    struct Clear {
        out: Vec<u8>,
        app: Vec<u8>,
        done: bool,
    }

    impl TlsSession for Clear {
        fn input(&mut self, tls: &[u8]) -> Result<(), String> {
            if self.done {
                self.app.extend_from_slice(tls);
            } else if tls == b"DONE" {
                self.done = true;
            } else {
                return Err("the server's certificate is not trusted".into());
            }
            Ok(())
        }
        fn take_output(&mut self) -> Vec<u8> {
            std::mem::take(&mut self.out)
        }
        fn is_done(&self) -> bool {
            self.done
        }
        fn msk(&self) -> Option<[u8; 64]> {
            self.done.then_some([7; 64])
        }
        fn peer_name(&self) -> Option<String> {
            None
        }
        fn take_app(&mut self) -> Vec<u8> {
            std::mem::take(&mut self.app)
        }
        fn write_app(&mut self, data: &[u8]) -> Result<(), String> {
            self.out.extend_from_slice(data);
            Ok(())
        }
    }

    #[derive(Debug)]
    struct PeapCfg;
    impl EapTlsConfig for PeapCfg {
        fn start(&self) -> Result<Box<dyn TlsSession>, String> {
            Ok(Box::new(Clear {
                out: b"HELLO".to_vec(),
                app: Vec::new(),
                done: false,
            }))
        }
        fn method(&self) -> EapType {
            EapType::Peap
        }
    }

    fn rng() -> impl Rng {
        |b: &mut [u8]| b.fill(0x5a)
    }

    fn peer() -> PeerAuth {
        let creds = Credentials {
            username: "alice".into(),
            secret: Secret::Password(Password::new("pw")),
        };
        let now = Instant::now();
        let d = Duration::from_secs(3);
        let (mut p, r) = PeerAuth::start(
            now,
            AuthProtocol::Eap,
            Some(creds),
            d,
            3,
            d * 10,
            &mut rng(),
            &mut Vec::new(),
        );
        assert!(r.is_none());
        p.with_eap_tls(Some(Arc::new(PeapCfg)), 1000);
        p
    }

    /// Sends an EAP Request; returns the Response's (Type, Type-Data), or
    /// the outcome.
    fn req(p: &mut PeerAuth, id: u8, typ: EapType, td: &[u8]) -> Result<(u8, Vec<u8>), bool> {
        let f = eap::typed_frame(Code::Request, id, typ, td);
        let mut out = Vec::new();
        match p.receive(&f[crate::frame::HEADER_LEN..], &mut rng(), &mut out) {
            Some(PeerOut::Success(_)) => return Err(true),
            Some(PeerOut::Failure(_)) => return Err(false),
            None => {}
        }
        let e = eap::parse(&out.last().expect("a response")[crate::frame::HEADER_LEN..]).unwrap();
        Ok((u8::from(e.typ.unwrap()), e.type_data.to_vec()))
    }

    /// Tunneled data in a PEAP Request (version 0, no fragmentation).
    fn tunneled(p: &mut PeerAuth, id: u8, inner: &[u8]) -> Result<Vec<u8>, bool> {
        let mut td = vec![0];
        td.extend_from_slice(inner);
        let (t, r) = req(p, id, EapType::Peap, &td)?;
        assert_eq!(t, 25);
        assert_eq!(r[0], 0, "PEAP version 0, no flags");
        Ok(r[1..].to_vec())
    }

    /// Runs phase 1, the inner identity and MS-CHAPv2 up to its Success;
    /// `good_proof`: whether the server's S= is right.
    fn through_mschapv2(p: &mut PeerAuth, good_proof: bool) -> Result<(), bool> {
        // Outer EAP-MSCHAPv2 is refused: PEAP is asked for instead.
        let (t, nak) = req(p, 1, EapType::MsChapV2, &[1, 1, 0, 5, 0]).unwrap();
        assert_eq!((t, nak), (3, vec![25]));
        let (t, hello) = req(p, 2, EapType::Peap, &[eap_tls::FLAG_START]).unwrap();
        assert_eq!((t, hello), (25, b"\0HELLO".to_vec()));
        assert_eq!(tunneled(p, 3, b"DONE").unwrap(), b"", "an acknowledgement");
        assert_eq!(tunneled(p, 4, &[1]).unwrap(), b"\x01alice");
        let ch = [9u8; 16];
        let mut chal = vec![26];
        chal.extend(eap::mschapv2_data(
            eap::opcode::CHALLENGE,
            5,
            &eap::value_name(&ch, b"srv"),
        ));
        let resp = tunneled(p, 5, &chal).unwrap();
        let Some(MsChapV2Msg::Response { value, name, .. }) =
            eap::parse_mschapv2(&resp[1..], false)
        else {
            panic!("{resp:?}")
        };
        assert_eq!((resp[0], name), (26, &b"alice"[..]));
        let v = mschapv2::parse_response_value(value).unwrap();
        let hash = crate::keys::nt_password_hash("pw");
        let mut ar =
            keys::authenticator_response(&hash, &v.nt_response, &v.peer_challenge, &ch, b"alice");
        if !good_proof {
            ar[0] ^= 1;
        }
        let mut ok = vec![26];
        ok.extend(eap::mschapv2_data(
            eap::opcode::SUCCESS,
            5,
            &mschapv2::success_message(&ar, "hi"),
        ));
        assert_eq!(tunneled(p, 6, &ok)?, [26, eap::opcode::SUCCESS]);
        Ok(())
    }

    #[test]
    fn peap_phase2_result_tlv_then_success_with_the_msk() {
        let mut p = peer();
        through_mschapv2(&mut p, true).unwrap();
        // Extensions without a Result TLV (SoH-like): an empty answer.
        let soh = [1, 6, 0, 11, 33, 0x00, 7, 0, 2, 0, 0];
        assert_eq!(tunneled(&mut p, 6, &soh).unwrap(), [2, 6, 0, 5, 33]);
        let ext = [1, 7, 0, 11, 33, 0x80, 3, 0, 2, 0, 1];
        assert_eq!(
            tunneled(&mut p, 7, &ext).unwrap(),
            peap::result_response(7, peap::RESULT_SUCCESS)
        );
        let mut out = Vec::new();
        match p.receive(
            &eap::result_frame(true, 8)[crate::frame::HEADER_LEN..],
            &mut rng(),
            &mut out,
        ) {
            Some(PeerOut::Success(s)) => {
                assert_eq!(s.method, AuthMethod::Peap);
                assert_eq!(s.hlak, [7; 32], "HLAK = MSK[0..32]");
            }
            _ => panic!("no success"),
        }
    }

    #[test]
    fn peap_success_needs_the_inner_method_and_the_result_tlv() {
        // EAP Success before the Result TLV.
        let mut p = peer();
        through_mschapv2(&mut p, true).unwrap();
        let mut out = Vec::new();
        assert!(matches!(
            p.receive(
                &eap::result_frame(true, 8)[crate::frame::HEADER_LEN..],
                &mut rng(),
                &mut out
            ),
            Some(PeerOut::Failure(AuthFailure::ServerNotAuthenticated))
        ));
        assert!(p.implicit_success().is_none());
        // A wrong authenticator response fails at once.
        let mut p = peer();
        assert_eq!(through_mschapv2(&mut p, false), Err(false));
        // A Result TLV success without the inner success is answered with
        // failure, and the login fails.
        let mut p = peer();
        req(&mut p, 2, EapType::Peap, &[eap_tls::FLAG_START]).unwrap();
        tunneled(&mut p, 3, b"DONE").unwrap();
        let ext = [1, 7, 0, 11, 33, 0x80, 3, 0, 2, 0, 1];
        assert_eq!(tunneled(&mut p, 7, &ext), Err(false));
    }

    #[test]
    fn peap_tls_failure_is_a_peap_failure() {
        let mut p = peer();
        req(&mut p, 2, EapType::Peap, &[eap_tls::FLAG_START]).unwrap();
        let f = eap::typed_frame(Code::Request, 3, EapType::Peap, b"\0FORGED");
        let mut out = Vec::new();
        match p.receive(&f[crate::frame::HEADER_LEN..], &mut rng(), &mut out) {
            Some(PeerOut::Failure(e @ AuthFailure::Peap { .. })) => assert_eq!(
                e.to_string(),
                "PEAP failed: the server's certificate is not trusted"
            ),
            _ => panic!("not a PEAP failure"),
        }
    }

    #[test]
    fn peap_inner_failure_is_answered_then_rejected() {
        let mut p = peer();
        req(&mut p, 2, EapType::Peap, &[eap_tls::FLAG_START]).unwrap();
        tunneled(&mut p, 3, b"DONE").unwrap();
        let mut fail = vec![26];
        fail.extend(eap::mschapv2_data(
            eap::opcode::FAILURE,
            5,
            b"E=691 R=0 C=00000000000000000000000000000000 V=3 M=bad password",
        ));
        let f = eap::typed_frame(Code::Request, 4, EapType::Peap, &[&[0][..], &fail].concat());
        let mut out = Vec::new();
        match p.receive(&f[crate::frame::HEADER_LEN..], &mut rng(), &mut out) {
            Some(PeerOut::Failure(AuthFailure::Rejected { message, .. })) => {
                assert_eq!(message, "bad password")
            }
            _ => panic!("not rejected"),
        }
        // The inner Failure Response went out first.
        let e = eap::parse(&out[0][crate::frame::HEADER_LEN..]).unwrap();
        assert_eq!(e.type_data, [0, 26, eap::opcode::FAILURE]);
    }
}
