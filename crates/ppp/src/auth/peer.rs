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

use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;

use super::authenticator::AuthFailure;
use super::eap::{self, Code, EapType, MsChapV2Msg};
use super::eap_tls::{self, EapTlsConfig, Exchange, Step};
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
                        self.fail(AuthFailure::Rejected {
                            message: msg.unwrap_or_default(),
                        })
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
                    let message = if self.proto == AuthProtocol::MsChapV2 {
                        mschapv2::parse_failure(p.data).message
                    } else {
                        String::from_utf8_lossy(p.data).into_owned()
                    };
                    return self.fail(AuthFailure::Rejected { message });
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
                    EapType::MsChapV2 => match eap::parse_mschapv2(p.type_data, true)? {
                        MsChapV2Msg::Challenge {
                            ms_id, challenge, ..
                        } => match self.mschap_response(challenge, rng) {
                            Ok((v, name)) => {
                                let td = eap::mschapv2_data(
                                    eap::opcode::RESPONSE,
                                    ms_id,
                                    &eap::value_name(&v, &name),
                                );
                                eap::typed_frame(Code::Response, p.id, EapType::MsChapV2, &td)
                            }
                            Err(e) => return self.fail(e),
                        },
                        MsChapV2Msg::SuccessRequest { message, .. } => {
                            if self.verify_success(message).is_none() {
                                return self.fail(AuthFailure::ServerNotAuthenticated);
                            }
                            self.st = St::AwaitEapSuccess;
                            eap::typed_frame(
                                Code::Response,
                                p.id,
                                EapType::MsChapV2,
                                &[eap::opcode::SUCCESS],
                            )
                        }
                        MsChapV2Msg::FailureRequest { message, .. } => {
                            let f = eap::typed_frame(
                                Code::Response,
                                p.id,
                                EapType::MsChapV2,
                                &[eap::opcode::FAILURE],
                            );
                            out.push(f);
                            let message = mschapv2::parse_failure(message).message;
                            return self.fail(AuthFailure::Rejected { message });
                        }
                        _ => return None,
                    },
                    EapType::Tls if self.tls_config.is_some() => {
                        match self.receive_tls(p.type_data) {
                            Ok(td) => eap::typed_frame(Code::Response, p.id, EapType::Tls, &td),
                            Err((reason, alert)) => {
                                if let Some(td) = alert {
                                    out.push(eap::typed_frame(
                                        Code::Response,
                                        p.id,
                                        EapType::Tls,
                                        &td,
                                    ));
                                }
                                return self.fail(AuthFailure::Tls { reason });
                            }
                        }
                    }
                    // EAP-TLS, PEAP, MD5, expanded types...: legacy Nak for
                    // MSCHAPv2 (or EAP-TLS when that is what we do).
                    _ => {
                        let want = if self.tls_config.is_some() {
                            EapType::Tls
                        } else {
                            EapType::MsChapV2
                        };
                        eap::typed_frame(Code::Response, p.id, EapType::Nak, &[u8::from(want)])
                    }
                };
                out.push(frame.clone());
                self.last = Some((p.id, payload.to_vec(), frame));
                None
            }
            Code::Success if self.tls.is_some() => {
                let t = self.tls.as_ref()?.tls();
                match (t.is_done(), t.msk()) {
                    (true, Some(msk)) => {
                        self.succeed(eap_tls::hlak_from_msk(&msk), AuthMethod::EapTls)
                    }
                    _ => self.fail(AuthFailure::ServerNotAuthenticated),
                }
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
            Code::Failure => self.fail(AuthFailure::Rejected {
                message: String::new(),
            }),
            _ => None,
        }
    }

    /// One EAP-TLS Request (RFC 5216 §2.1): Start begins a TLS session,
    /// anything else goes through the exchange. Returns the Response's
    /// Type-Data, or why TLS failed with the alert to send.
    #[allow(clippy::type_complexity)]
    fn receive_tls(&mut self, td: &[u8]) -> Result<Vec<u8>, (String, Option<Vec<u8>>)> {
        let start = eap_tls::parse(td).is_some_and(|f| f.flags & eap_tls::FLAG_START != 0);
        if start {
            let c = self.tls_config.clone().ok_or((String::new(), None))?;
            let s = c.start().map_err(|e| (e, None))?;
            let mut x = Exchange::new(s, self.max_frag);
            let first = x.first_flight();
            self.tls = Some(x);
            return Ok(first);
        }
        let Some(x) = self.tls.as_mut() else {
            return Err(("EAP-TLS data before Start".into(), None));
        };
        match x.receive(td) {
            Step::Send(td) => Ok(td),
            Step::PeerAck => Err(("unexpected EAP-TLS acknowledgement".into(), None)),
            Step::Failed { reason, alert } => Err((reason, alert)),
        }
    }

    /// RFC 3748 §4.2: a lost EAP Success may be inferred from the arrival of
    /// network-layer packets once the method has completed.
    pub(crate) fn implicit_success(&mut self) -> Option<PeerOut> {
        // EAP-TLS: our side of the handshake is complete (the server has
        // verified us before it lets NCP traffic through).
        if let Some(x) = &self.tls {
            if matches!(self.st, St::Done) || !x.tls().is_done() {
                return None;
            }
            let msk = x.tls().msk()?;
            return self.succeed(eap_tls::hlak_from_msk(&msk), AuthMethod::EapTls);
        }
        if !matches!(self.st, St::AwaitEapSuccess) {
            return None;
        }
        let m = self.mschap.as_ref()?;
        let h = keys::hlak_client(&MppeKeys::derive(&m.hash, &m.nt_response, false));
        self.succeed(h, AuthMethod::EapMsChapV2)
    }
}
