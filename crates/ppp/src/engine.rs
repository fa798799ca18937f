//! The PPP engine: phases (RFC 1661 §3.2), LCP, authentication, IPCP and
//! IPv6CP wired together, in the quinn-proto style: the driver feeds frames
//! and time in and drains frames, events and the next deadline out.
//!
//! ```text
//!   Dead --open--> Establish --LCP Up--> Authenticate --success--> Network
//!    ^                 |                      |                      |
//!    +---- LinkDown <--+---- Terminate <------+----------------------+
//! ```
//!
//! * **Establish**: only LCP is processed; everything else is silently
//!   discarded (RFC 1661 §3.2). SoftEther sends LCP Echo-Requests before LCP
//!   is opened: they are discarded, as §5.8 says.
//! * **Authenticate**: LCP and the negotiated authentication protocol only.
//!   The result is an internal proof token ([`crate::auth`]) without which
//!   the Network phase cannot be entered.
//! * **Network**: NCP packets are processed; IP packets are released (by
//!   [`Ppp::handle_frame`]) and accepted (by [`Ppp::send_ip`]) only while the
//!   NCP for that IP version is Opened.
//! * **Terminate**: after [`Ppp::close`], an authentication failure, a
//!   loopback, or when no NCP is left, LCP sends Terminate-Request and
//!   [`Event::LinkDown`] follows the Terminate-Ack (or Max-Terminate
//!   timeouts). When the peer terminates, [`Event::LinkDown`] is emitted at
//!   once, after the Terminate-Ack was queued: drain [`Ppp::poll_transmit`]
//!   before acting on events.
//!
//! A Terminate-Request received while LCP is still being negotiated is
//! acknowledged (as the RFC 1661 table says) and then ends the link at once
//! instead of negotiating on with a peer that has given up.
//!
//! A Terminate-Request received while LCP is still being negotiated is
//! acknowledged (as the RFC 1661 table says) and then ends the link at once
//! instead of negotiating on with a peer that has given up.
//!
//! LCP renegotiation after authentication (a peer that restarted) is not
//! followed: SSTP's crypto binding ties the tunnel to the first
//! authentication, so the engine sends Terminate-Request and reports
//! [`LinkDownReason::Renegotiation`]; the peer reconnects.
//!
//! Dead-peer detection: every `echo_interval` the engine checks whether any
//! frame arrived since the last check; if not it sends an LCP Echo-Request,
//! and after `echo_failures` unanswered ones the link is down
//! ([`LinkDownReason::EchoTimeout`]) — between `echo_failures + 1` and
//! `echo_failures + 2` intervals after the last frame received. Any received
//! frame counts as a sign of life because SoftEther never answers our
//! Echo-Requests (it sends its own).
//!
//! IPv4 addresses on the server: after authentication the engine emits
//! [`Event::NeedIpv4Address`] and holds IPCP (a Configure-Request that
//! arrives meanwhile is kept and replayed) until the driver calls
//! [`Ppp::set_ipv4`] with the lease it took from its pool (or a RADIUS
//! Framed-IP-Address), or [`Ppp::deny_ipv4`].

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::auth::authenticator::{AuthOut, Authenticator, Timing};
use crate::auth::peer::{PeerAuth, PeerOut};
use crate::auth::{
    AuthFailure, AuthMethod, AuthProtocol, AuthSuccess, Credentials, Proof, Verdict,
};
use crate::error::{ApiError, SendError};
use crate::frame::{self, Protocol};
use crate::fsm::{Fsm, FsmConfig, LayerEvent, Out, State};
use crate::ipcp::{Ipcp, Ipv4Assignment};
use crate::ipv6cp::Ipv6cp;
use crate::lcp::{self, Lcp, Side};
use crate::rng::{Rng, SplitMix64};
use crate::wire::{control_frame, Packet};

/// Which end of the link we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The server: authenticates the peer and assigns its addresses.
    Authenticator,
    /// The client: authenticates itself and accepts addresses.
    Peer,
}

/// RFC 1661 §3.2 link phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Link Dead.
    Dead,
    /// Link Establishment (LCP).
    Establish,
    /// Authentication.
    Authenticate,
    /// Network-Layer Protocol.
    Network,
    /// Link Termination.
    Terminate,
}

/// Engine configuration. Start from [`Config::server`] or [`Config::client`].
#[derive(Debug, Clone)]
pub struct Config {
    /// Restart timer and counters for LCP, IPCP, IPv6CP and authentication retransmissions.
    pub fsm: FsmConfig,
    /// Our MRU (requested only if not 1500). SSTP frames can carry up to 4091 bytes.
    pub mru: u16,
    /// Negotiate a Magic-Number (loopback detection).
    pub magic_number: bool,
    /// Loopback suspicions (own magic number seen) before the link is closed.
    pub max_loopback: u32,
    /// Keepalive period; `None` disables dead-peer detection.
    pub echo_interval: Option<Duration>,
    /// Unanswered Echo-Requests after which the peer is declared dead.
    pub echo_failures: u32,
    /// Bound on link setup: if no network protocol is up this long after
    /// [`Ppp::open`], the link is closed ([`LinkDownReason::NegotiationFailed`]).
    /// It ends Nak loops a peer could otherwise keep going forever.
    pub setup_timeout: Duration,
    /// Authenticator: methods to offer, in order (empty: no authentication).
    /// Peer: methods we allow, in order of preference.
    pub auth_protocols: Vec<AuthProtocol>,
    /// Upper bound for the whole authentication exchange (verdict wait included).
    pub auth_timeout: Duration,
    /// Authenticator: failed attempts allowed before giving up (1 = no retry).
    pub auth_max_attempts: u32,
    /// Our name in CHAP Challenges and EAP-MSCHAPv2.
    pub name: String,
    /// Peer: our credentials.
    pub credentials: Option<Credentials>,
    /// Run IPCP.
    pub ipv4: bool,
    /// Run IPv6CP.
    pub ipv6: bool,
    /// Peer: ask for DNS servers (RFC 1877).
    pub request_dns: bool,
    /// Peer: the IPv4 address to request (0.0.0.0: let the server choose).
    pub requested_ipv4: Ipv4Addr,
    /// Our IPv6 interface identifier; `None` (or zero): random per session.
    pub ipv6_interface_id: Option<[u8; 8]>,
    /// EAP-TLS ([`crate::auth::eap_tls`]): authenticator: run it after
    /// EAP Identity instead of EAP-MSCHAPv2; peer: answer EAP-TLS with it.
    pub eap_tls: Option<std::sync::Arc<dyn crate::auth::eap_tls::EapTlsConfig>>,
    /// Authenticator: EAP pass-through ([`crate::auth::eap_relay`]): after
    /// Identity, relay the method to the caller instead of running it.
    pub eap_pass_through: bool,
}

impl Config {
    /// Server defaults: offers MS-CHAPv2 then EAP(-MSCHAPv2); echo every 10 s.
    pub fn server() -> Self {
        Config {
            fsm: FsmConfig::default(),
            mru: lcp::DEFAULT_MRU,
            magic_number: true,
            max_loopback: 10,
            echo_interval: Some(Duration::from_secs(10)),
            echo_failures: 3,
            setup_timeout: Duration::from_secs(120),
            auth_protocols: vec![AuthProtocol::MsChapV2, AuthProtocol::Eap],
            auth_timeout: Duration::from_secs(60),
            auth_max_attempts: 1,
            name: "tunnel443".to_string(),
            credentials: None,
            ipv4: true,
            ipv6: true,
            request_dns: false,
            requested_ipv4: Ipv4Addr::UNSPECIFIED,
            ipv6_interface_id: None,
            eap_tls: None,
            eap_pass_through: false,
        }
    }

    /// Client defaults: allows MS-CHAPv2, EAP-MSCHAPv2, CHAP-MD5 and PAP
    /// (MS-CHAPv2 preferred); asks for an address and DNS.
    pub fn client(credentials: Credentials) -> Self {
        Config {
            auth_protocols: vec![
                AuthProtocol::MsChapV2,
                AuthProtocol::Eap,
                AuthProtocol::ChapMd5,
                AuthProtocol::Pap,
            ],
            credentials: Some(credentials),
            request_dns: true,
            ..Config::server()
        }
    }
}

/// Identifies one pending [`Event::AuthRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AuthRequestId(pub u64);

/// A proof to verify (authenticator side).
#[derive(Debug, Clone)]
pub struct AuthRequest {
    /// Pass back to [`Ppp::auth_verdict`].
    pub id: AuthRequestId,
    /// The user name the peer sent (lossy UTF-8; for MS-CHAPv2 the Name field).
    pub username: String,
    /// The method in use.
    pub method: AuthMethod,
    /// What to verify.
    pub proof: Proof,
}

/// The answer of a [`Verifier`]: now, or later through [`Ppp::auth_verdict`].
#[derive(Debug, Clone)]
pub enum Check {
    /// The verdict is known now.
    Ready(Verdict),
    /// The verifier will answer later (e.g. a RADIUS round trip); the driver
    /// then calls [`Ppp::auth_verdict`] with the request's id.
    Later,
}

/// Checks credentials for the authenticator. The users file ([`crate::Users`])
/// answers at once; a RADIUS client answers later.
pub trait Verifier {
    /// Starts checking `request`.
    fn check(&mut self, request: &AuthRequest) -> Check;
}

impl Verifier for crate::Users {
    fn check(&mut self, request: &AuthRequest) -> Check {
        Check::Ready(self.verify(&request.username, &request.proof))
    }
}

/// Hands out IPv4 addresses for the authenticator (an alternative to
/// answering [`Event::NeedIpv4Address`] by hand).
pub trait Ipv4Allocator {
    /// The addresses for `username`'s session, or `None` to refuse IPv4.
    fn allocate(&mut self, username: &str) -> Option<Ipv4Assignment>;
}

/// The 32-byte SSTP Higher-Layer Authentication Key (MS-SSTP §3.2.5.2.2).
/// `Debug` does not print it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Hlak(pub [u8; 32]);

impl Hlak {
    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
    /// True for the all-zero HLAK of methods without keys.
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 32]
    }
}

impl std::fmt::Debug for Hlak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_zero() {
            "Hlak(zero)"
        } else {
            "Hlak(..)"
        })
    }
}

/// Why the link went down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkDownReason {
    /// [`Ppp::close`] was called.
    LocalClose,
    /// The peer sent Terminate-Request.
    PeerTerminated,
    /// LCP could not be negotiated (Max-Configure, catastrophic Code-Reject...).
    NegotiationFailed,
    /// Echo-Requests went unanswered.
    EchoTimeout,
    /// The link appears looped back (Magic-Number).
    Loopback,
    /// Authentication failed.
    AuthFailed,
    /// The peer refused every authentication method we offered.
    AuthNotNegotiated,
    /// The peer restarted LCP after authentication.
    Renegotiation,
    /// No network protocol could be opened.
    NoNetworkProtocols,
    /// [`Ppp::lower_down`] was called (the transport is gone).
    LowerLayerDown,
}

impl LinkDownReason {
    fn text(self) -> &'static [u8] {
        match self {
            LinkDownReason::LocalClose => b"Administrative close",
            LinkDownReason::PeerTerminated => b"Peer terminated",
            LinkDownReason::NegotiationFailed => b"Negotiation failed",
            LinkDownReason::EchoTimeout => b"Peer not responding",
            LinkDownReason::Loopback => b"Loopback detected",
            LinkDownReason::AuthFailed => b"Authentication failed",
            LinkDownReason::AuthNotNegotiated => b"No common authentication protocol",
            LinkDownReason::Renegotiation => b"LCP renegotiation not supported",
            LinkDownReason::NoNetworkProtocols => b"No network protocols running",
            LinkDownReason::LowerLayerDown => b"Lower layer down",
        }
    }
}

/// Plain words for logs and messages.
impl std::fmt::Display for LinkDownReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LinkDownReason::LocalClose => "closed locally",
            LinkDownReason::PeerTerminated => "the peer ended the link",
            LinkDownReason::NegotiationFailed => "LCP negotiation failed",
            LinkDownReason::EchoTimeout => "the peer stopped answering LCP echoes",
            LinkDownReason::Loopback => "the link is looped back",
            LinkDownReason::AuthFailed => "authentication failed",
            LinkDownReason::AuthNotNegotiated => "no common authentication method",
            LinkDownReason::Renegotiation => "the peer restarted LCP",
            LinkDownReason::NoNetworkProtocols => "no network protocol could be opened",
            LinkDownReason::LowerLayerDown => "the connection is gone",
        })
    }
}

/// What the engine tells the driver.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// Authenticator: verify this and call [`Ppp::auth_verdict`].
    AuthRequest(AuthRequest),
    /// Authentication completed (or none was negotiated): hand the HLAK to SSTP.
    Authenticated {
        /// Server HLAK (authenticator) or client HLAK (peer); zero without keys.
        hlak: Hlak,
        /// Authenticator: a second HLAK the peer's Crypto Binding may be
        /// made with (EAP-TLS: the one pppd 2.4.9 and so sstpc derive,
        /// `auth::eap_tls::hlak_from_msk_pppd`); `None` for other methods.
        alt_hlak: Option<Hlak>,
        /// The authenticated user (authenticator) or our user name (peer); empty without auth.
        username: String,
        /// The method used.
        method: AuthMethod,
    },
    /// Authentication failed; [`Event::LinkDown`] follows.
    AuthFailed {
        /// The user name, if one was received.
        username: Option<String>,
        /// Why.
        reason: AuthFailure,
    },
    /// Authenticator: assign addresses with [`Ppp::set_ipv4`] (or [`Ppp::deny_ipv4`]).
    NeedIpv4Address {
        /// The authenticated user.
        username: String,
    },
    /// IPCP opened.
    Ipv4Up {
        /// Our address.
        local: Ipv4Addr,
        /// The peer's address (0.0.0.0 if a server did not tell it).
        peer: Ipv4Addr,
        /// Primary DNS (given by us, or learned).
        dns1: Option<Ipv4Addr>,
        /// Secondary DNS.
        dns2: Option<Ipv4Addr>,
    },
    /// IPCP left the Opened state.
    Ipv4Down,
    /// IPv6CP opened.
    Ipv6Up {
        /// Our interface identifier.
        local_iid: [u8; 8],
        /// The peer's interface identifier.
        peer_iid: [u8; 8],
    },
    /// IPv6CP left the Opened state.
    Ipv6Down,
    /// The link is down; the engine is dead. Emitted exactly once.
    LinkDown {
        /// Why.
        reason: LinkDownReason,
    },
}

/// A network-layer packet received in the Network phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound<'a> {
    /// An IPv4 packet.
    Ipv4(&'a [u8]),
    /// An IPv6 packet.
    Ipv6(&'a [u8]),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NcpStatus {
    Disabled,
    WaitingAddress,
    Running,
    Denied,
}

/// The PPP engine for one link.
pub struct Ppp {
    cfg: Config,
    role: Role,
    rng: Box<dyn Rng>,
    phase: Phase,
    started: bool,
    down: bool,
    out: Out,
    scratch: Vec<Vec<u8>>,
    events: VecDeque<Event>,
    lcp: Fsm,
    lcp_neg: Lcp,
    ipcp: Fsm,
    ipcp_neg: Ipcp,
    ipcp_status: NcpStatus,
    pending_ipcp: Option<Vec<u8>>,
    ipv6cp: Fsm,
    ipv6cp_neg: Ipv6cp,
    ipv6_status: NcpStatus,
    authenticator: Option<Authenticator>,
    peer_auth: Option<PeerAuth>,
    next_auth_req: u64,
    username: String,
    terminate_reason: Option<LinkDownReason>,
    echo_at: Option<Instant>,
    setup_deadline: Option<Instant>,
    echo_failures: u32,
    rx_since_echo: bool,
    ipv4_up: bool,
    ipv6_up: bool,
}

impl std::fmt::Debug for Ppp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ppp")
            .field("role", &self.role)
            .field("phase", &self.phase)
            .field("lcp", &self.lcp.state())
            .field("ipcp", &self.ipcp.state())
            .field("ipv6cp", &self.ipv6cp.state())
            .finish_non_exhaustive()
    }
}

impl Ppp {
    /// A new engine in the Dead phase. `rng` must be cryptographically secure
    /// in production (challenges come from it).
    pub fn new(config: Config, role: Role, _now: Instant, mut rng: Box<dyn Rng>) -> Self {
        let mut ids = [0u8; 3];
        rng.fill(&mut ids);
        let side = match role {
            Role::Authenticator => Side::Authenticator,
            Role::Peer => Side::Peer,
        };
        let lcp_neg = Lcp::new(
            side,
            config.mru,
            config.magic_number,
            config.auth_protocols.clone(),
            SplitMix64::from_rng(rng.as_mut()),
        );
        let ipcp_neg = match role {
            Role::Authenticator => Ipcp::server(Ipv4Assignment {
                local: Ipv4Addr::UNSPECIFIED,
                peer: Ipv4Addr::UNSPECIFIED,
                dns1: None,
                dns2: None,
            }),
            Role::Peer => Ipcp::client(config.requested_ipv4, config.request_dns),
        };
        let iid = match config.ipv6_interface_id {
            Some(i) if i != [0; 8] => i,
            _ => {
                let mut b = [0u8; 8];
                rng.fill(&mut b);
                b
            }
        };
        let ipv6cp_neg = Ipv6cp::new(iid, SplitMix64::from_rng(rng.as_mut()));
        let mut first_req = [0u8; 4];
        rng.fill(&mut first_req);
        Ppp {
            lcp: Fsm::new(Protocol::Lcp, config.fsm, ids[0]),
            ipcp: Fsm::new(Protocol::Ipcp, config.fsm, ids[1]),
            ipv6cp: Fsm::new(Protocol::Ipv6cp, config.fsm, ids[2]),
            ipcp_status: if config.ipv4 {
                NcpStatus::Running
            } else {
                NcpStatus::Disabled
            },
            ipv6_status: if config.ipv6 {
                NcpStatus::Running
            } else {
                NcpStatus::Disabled
            },
            lcp_neg,
            ipcp_neg,
            ipv6cp_neg,
            cfg: config,
            role,
            rng,
            phase: Phase::Dead,
            started: false,
            down: false,
            out: Out::default(),
            scratch: Vec::new(),
            events: VecDeque::new(),
            pending_ipcp: None,
            authenticator: None,
            peer_auth: None,
            next_auth_req: u64::from(u32::from_le_bytes(first_req)),
            username: String::new(),
            terminate_reason: None,
            echo_at: None,
            setup_deadline: None,
            echo_failures: 0,
            rx_since_echo: false,
            ipv4_up: false,
            ipv6_up: false,
        }
    }

    /// Current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Our role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// LCP automaton state (for diagnostics).
    pub fn lcp_state(&self) -> State {
        self.lcp.state()
    }

    /// IPCP automaton state.
    pub fn ipcp_state(&self) -> State {
        self.ipcp.state()
    }

    /// IPv6CP automaton state.
    pub fn ipv6cp_state(&self) -> State {
        self.ipv6cp.state()
    }

    /// True once [`Event::LinkDown`] has been emitted.
    pub fn is_down(&self) -> bool {
        self.down
    }

    /// The peer's MRU (limits packets accepted by [`Ppp::send_ip`]).
    pub fn peer_mru(&self) -> u16 {
        self.lcp_neg.peer_mru
    }

    /// Peer side: the authenticator stopped asking for authentication after
    /// we Nak'd its EAP offer, so EAP is all it does (see [`crate::lcp`]);
    /// a client should put EAP first when it connects again.
    pub fn authenticator_wants_only_eap(&self) -> bool {
        self.lcp_neg.authenticator_wants_only_eap
    }

    /// Starts the link: the transport (SSTP) is up; LCP begins (Open + Up).
    /// Calling it again, or after the link went down, does nothing.
    pub fn open(&mut self, now: Instant) {
        if self.started {
            return;
        }
        self.started = true;
        self.phase = Phase::Establish;
        self.setup_deadline = Some(now + self.cfg.setup_timeout);
        self.lcp.open(now, &mut self.lcp_neg, &mut self.out);
        self.lcp.up(now, &mut self.lcp_neg, &mut self.out);
        self.process(now);
    }

    /// Closes the link gracefully (LCP Terminate-Request); [`Event::LinkDown`]
    /// with [`LinkDownReason::LocalClose`] follows the Terminate-Ack or the
    /// Max-Terminate timeouts. `reason` is sent in the Terminate-Request.
    pub fn close(&mut self, now: Instant, reason: &str) {
        self.terminate(now, LinkDownReason::LocalClose, Some(reason.as_bytes()));
        self.process(now);
    }

    /// The transport is gone: the link is down at once.
    pub fn lower_down(&mut self, now: Instant) {
        if self.down {
            return;
        }
        self.terminate_reason = Some(LinkDownReason::LowerLayerDown);
        self.phase = Phase::Terminate;
        self.lcp.down(now, &mut self.lcp_neg, &mut self.out);
        self.out.frames.clear();
        self.finish(LinkDownReason::LowerLayerDown);
        self.process(now);
    }

    /// The next frame to send: a complete PPP frame, always `FF 03` + 2-byte
    /// protocol (see [`crate::frame`]).
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.out.frames.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Ppp::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.down || !self.started {
            return None;
        }
        let mut t = [
            self.lcp.poll_timeout(),
            self.ipcp.poll_timeout(),
            self.ipv6cp.poll_timeout(),
            self.authenticator
                .as_ref()
                .and_then(Authenticator::poll_timeout),
            self.peer_auth.as_ref().and_then(PeerAuth::poll_timeout),
            self.echo_at,
            self.setup_deadline,
        ]
        .into_iter()
        .flatten();
        let first = t.next()?;
        Some(t.fold(first, Instant::min))
    }

    /// Fires every timer that expired at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.down || !self.started {
            return;
        }
        self.lcp
            .handle_timeout(now, &mut self.lcp_neg, &mut self.out);
        self.process(now);
        if self.down {
            return;
        }
        self.ipcp
            .handle_timeout(now, &mut self.ipcp_neg, &mut self.out);
        self.ipv6cp
            .handle_timeout(now, &mut self.ipv6cp_neg, &mut self.out);
        self.process(now);
        if self.down {
            return;
        }
        if self.phase == Phase::Authenticate {
            if let Some(a) = self.authenticator.as_mut() {
                let r = a.handle_timeout(now, &mut self.scratch);
                self.flush_scratch();
                if let Some(o) = r {
                    self.on_auth_out(now, o);
                }
            }
            if let Some(p) = self.peer_auth.as_mut() {
                let r = p.handle_timeout(now, &mut self.scratch);
                self.flush_scratch();
                if let Some(o) = r {
                    self.on_peer_out(now, o);
                }
            }
        }
        if self.setup_deadline.is_some_and(|t| t <= now) {
            self.setup_deadline = None;
            self.terminate(now, LinkDownReason::NegotiationFailed, None);
            self.process(now);
            return;
        }
        if let Some(t) = self.echo_at {
            if t <= now && !self.down {
                self.echo_tick(now);
            }
        }
        self.process(now);
    }

    /// Handles one received PPP frame. Control traffic is consumed; an IP
    /// packet received in the Network phase with its NCP opened is returned
    /// (borrowed from `frame`, no copy). Malformed frames are discarded.
    pub fn handle_frame<'a>(&mut self, now: Instant, frame: &'a [u8]) -> Option<Inbound<'a>> {
        if self.down || !self.started {
            return None;
        }
        let f = frame::parse(frame).ok()?;
        self.rx_since_echo = true;
        let r = self.dispatch(now, f.protocol, f.payload);
        self.process(now);
        r
    }

    fn dispatch<'a>(
        &mut self,
        now: Instant,
        proto: Protocol,
        payload: &'a [u8],
    ) -> Option<Inbound<'a>> {
        let lcp_open = self.lcp.state() == State::Opened;
        match proto {
            Protocol::Lcp => self.rx_lcp(now, payload),
            Protocol::Pap | Protocol::Chap | Protocol::Eap => {
                // In the Network phase the authenticator still answers a
                // duplicate request/response with the same result (a lost
                // PAP Ack or CHAP Success, RFC 1334 §2.2.2, RFC 1994 §4.2).
                let active = self.phase == Phase::Authenticate
                    || (self.phase == Phase::Network && self.authenticator.is_some());
                if active && Some(proto) == self.auth_wire_protocol() {
                    self.rx_auth(now, payload);
                }
            }
            Protocol::Ipv4 => {
                if self.ipv4_up && self.phase == Phase::Network {
                    return Some(Inbound::Ipv4(payload));
                }
                if lcp_open && self.ipcp_status == NcpStatus::Disabled {
                    self.protocol_reject(proto, payload);
                }
            }
            Protocol::Ipv6 => {
                if self.ipv6_up && self.phase == Phase::Network {
                    return Some(Inbound::Ipv6(payload));
                }
                if lcp_open && self.ipv6_status == NcpStatus::Disabled {
                    self.protocol_reject(proto, payload);
                }
            }
            Protocol::Ipcp | Protocol::Ipv6cp => {
                let status = if proto == Protocol::Ipcp {
                    self.ipcp_status
                } else {
                    self.ipv6_status
                };
                if matches!(status, NcpStatus::Disabled | NcpStatus::Denied) {
                    if lcp_open {
                        self.protocol_reject(proto, payload);
                    }
                    return None;
                }
                if self.phase == Phase::Authenticate {
                    // RFC 3748 §4.2: NCP traffic implies the lost EAP Success.
                    if let Some(o) = self.peer_auth.as_mut().and_then(PeerAuth::implicit_success) {
                        self.on_peer_out(now, o);
                    }
                }
                if self.phase != Phase::Network {
                    return None;
                }
                if proto == Protocol::Ipcp {
                    if self.ipcp_status == NcpStatus::WaitingAddress {
                        if payload.first() == Some(&crate::fsm::code::CONF_REQ) {
                            self.pending_ipcp = Some(payload.to_vec());
                        }
                        return None;
                    }
                    if let Some(p) =
                        self.ipcp
                            .receive(now, payload, &mut self.ipcp_neg, &mut self.out)
                    {
                        let raw = &payload[..p.buffer_len()];
                        self.ipcp
                            .unknown_code(now, raw, &mut self.ipcp_neg, &mut self.out);
                    }
                } else if let Some(p) =
                    self.ipv6cp
                        .receive(now, payload, &mut self.ipv6cp_neg, &mut self.out)
                {
                    let raw = &payload[..p.buffer_len()];
                    self.ipv6cp
                        .unknown_code(now, raw, &mut self.ipv6cp_neg, &mut self.out);
                }
            }
            Protocol::Ccp | Protocol::Unknown(_) => {
                if lcp_open {
                    self.protocol_reject(proto, payload);
                }
            }
        }
        None
    }

    fn auth_wire_protocol(&self) -> Option<Protocol> {
        Some(match self.lcp_neg.agreed_auth()? {
            AuthProtocol::Pap => Protocol::Pap,
            AuthProtocol::ChapMd5 | AuthProtocol::MsChapV2 => Protocol::Chap,
            AuthProtocol::Eap => Protocol::Eap,
        })
    }

    fn rx_lcp(&mut self, now: Instant, payload: &[u8]) {
        let terminate_req = self.phase == Phase::Establish
            && Packet::parse(payload).is_ok_and(|p| p.code == crate::fsm::code::TERM_REQ);
        let pkt = self
            .lcp
            .receive(now, payload, &mut self.lcp_neg, &mut self.out);
        if let Some(p) = pkt {
            self.rx_lcp_extra(now, payload, p);
        }
        self.process(now);
        if terminate_req && !self.down {
            // RFC 1661 keeps negotiating after a Terminate-Request received
            // in Req-Sent/Ack-*; on SSTP nobody would ever answer again
            // (the peer has given up), so after the Terminate-Ack we stop.
            self.phase = Phase::Terminate;
            self.finish(LinkDownReason::PeerTerminated);
            return;
        }
        if self.phase != Phase::Terminate && !self.down {
            if self.lcp_neg.loops >= self.cfg.max_loopback {
                self.terminate(now, LinkDownReason::Loopback, None);
            } else if self.lcp_neg.auth_refused {
                self.terminate(now, LinkDownReason::AuthNotNegotiated, None);
            }
        }
    }

    fn rx_lcp_extra(&mut self, now: Instant, payload: &[u8], p: Packet<'_>) {
        let opened = self.lcp.state() == State::Opened;
        match p.code {
            lcp::code::PROTOCOL_REJ => {
                if let (true, [hi, lo, ..]) = (opened, p.data) {
                    self.on_protocol_reject(now, Protocol::from(u16::from_be_bytes([*hi, *lo])));
                }
            }
            lcp::code::ECHO_REQ => {
                let Some(magic) = p.data.get(..4) else { return };
                if !opened {
                    return; // RFC 1661 §5.8: discard outside Opened.
                }
                let ours = self.lcp_neg.our_magic();
                if ours != 0 && magic == ours.to_be_bytes() {
                    self.terminate(now, LinkDownReason::Loopback, None);
                    return;
                }
                let mut d = ours.to_be_bytes().to_vec();
                let max = usize::from(self.lcp_neg.peer_mru).saturating_sub(8);
                let rest = &p.data[4..];
                d.extend_from_slice(&rest[..rest.len().min(max)]);
                self.out.frames.push_back(control_frame(
                    Protocol::Lcp,
                    lcp::code::ECHO_REPLY,
                    p.id,
                    &d,
                ));
            }
            lcp::code::ECHO_REPLY
            | lcp::code::DISCARD_REQ
            | lcp::code::IDENTIFICATION
            | lcp::code::TIME_REMAINING => {}
            _ => {
                let raw = &payload[..p.buffer_len()];
                self.lcp
                    .unknown_code(now, raw, &mut self.lcp_neg, &mut self.out);
            }
        }
    }

    fn protocol_reject(&mut self, proto: Protocol, payload: &[u8]) {
        if self.lcp.state() != State::Opened {
            return;
        }
        let max = usize::from(self.lcp_neg.peer_mru).saturating_sub(6).max(16);
        let mut d = u16::from(proto).to_be_bytes().to_vec();
        d.extend_from_slice(&payload[..payload.len().min(max)]);
        let id = self.lcp.take_id();
        self.out.frames.push_back(control_frame(
            Protocol::Lcp,
            lcp::code::PROTOCOL_REJ,
            id,
            &d,
        ));
    }

    fn on_protocol_reject(&mut self, now: Instant, proto: Protocol) {
        match proto {
            Protocol::Lcp => self.lcp.rejected(now, &mut self.lcp_neg, &mut self.out),
            Protocol::Ipcp | Protocol::Ipv4 if self.ipcp_status != NcpStatus::Disabled => {
                self.ipcp_status = NcpStatus::Denied;
                self.pending_ipcp = None;
                self.ipcp.rejected(now, &mut self.ipcp_neg, &mut self.out);
                self.process(now);
                self.check_ncps(now);
            }
            Protocol::Ipv6cp | Protocol::Ipv6 if self.ipv6_status != NcpStatus::Disabled => {
                self.ipv6_status = NcpStatus::Denied;
                self.ipv6cp
                    .rejected(now, &mut self.ipv6cp_neg, &mut self.out);
                self.process(now);
                self.check_ncps(now);
            }
            _ => {}
        }
    }

    fn rx_auth(&mut self, now: Instant, payload: &[u8]) {
        if let Some(a) = self.authenticator.as_mut() {
            let r = a.receive(now, payload, &mut self.scratch);
            self.flush_scratch();
            if let Some(o) = r {
                self.on_auth_out(now, o);
            }
        } else if let Some(p) = self.peer_auth.as_mut() {
            let r = p.receive(payload, self.rng.as_mut(), &mut self.scratch);
            self.flush_scratch();
            if let Some(o) = r {
                self.on_peer_out(now, o);
            }
        }
    }

    fn flush_scratch(&mut self) {
        self.out.frames.extend(self.scratch.drain(..));
    }

    fn on_auth_out(&mut self, now: Instant, o: AuthOut) {
        match o {
            AuthOut::Request {
                id,
                username,
                method,
                proof,
            } => {
                self.events.push_back(Event::AuthRequest(AuthRequest {
                    id: AuthRequestId(id),
                    username,
                    method,
                    proof,
                }));
            }
            AuthOut::Success(s) => self.enter_network(now, s),
            AuthOut::Failure { username, reason } => {
                self.events
                    .push_back(Event::AuthFailed { username, reason });
                self.terminate(now, LinkDownReason::AuthFailed, None);
            }
        }
    }

    fn on_peer_out(&mut self, now: Instant, o: PeerOut) {
        match o {
            PeerOut::Success(s) => self.enter_network(now, s),
            PeerOut::Failure(reason) => {
                let username = self.cfg.credentials.as_ref().map(|c| c.username.clone());
                self.events
                    .push_back(Event::AuthFailed { username, reason });
                self.terminate(now, LinkDownReason::AuthFailed, None);
            }
        }
    }

    /// Gives the verdict for an [`Event::AuthRequest`].
    pub fn auth_verdict(
        &mut self,
        now: Instant,
        id: AuthRequestId,
        verdict: Verdict,
    ) -> Result<(), ApiError> {
        if self.phase != Phase::Authenticate || self.down {
            return Err(ApiError::UnknownRequest);
        }
        let a = self
            .authenticator
            .as_mut()
            .ok_or(ApiError::UnknownRequest)?;
        let r = a.verdict(now, id.0, verdict, self.rng.as_mut(), &mut self.scratch)?;
        self.flush_scratch();
        if let Some(o) = r {
            self.on_auth_out(now, o);
        }
        self.process(now);
        Ok(())
    }

    /// Passes an [`Event::AuthRequest`] to `verifier`; a [`Check::Ready`]
    /// answer is applied at once. Returns true if it was.
    pub fn verify_with(
        &mut self,
        now: Instant,
        request: &AuthRequest,
        verifier: &mut dyn Verifier,
    ) -> Result<bool, ApiError> {
        match verifier.check(request) {
            Check::Ready(v) => self.auth_verdict(now, request.id, v).map(|()| true),
            Check::Later => Ok(false),
        }
    }

    /// Answers [`Event::NeedIpv4Address`] from `allocator`: [`Ppp::set_ipv4`]
    /// with its assignment, or [`Ppp::deny_ipv4`] if it has none.
    pub fn assign_with(
        &mut self,
        now: Instant,
        allocator: &mut dyn Ipv4Allocator,
    ) -> Result<(), ApiError> {
        if self.role != Role::Authenticator
            || self.ipcp_status != NcpStatus::WaitingAddress
            || self.down
        {
            return Err(ApiError::NotWaiting);
        }
        match allocator.allocate(&self.username) {
            Some(a) => self.set_ipv4(now, a),
            None => self.deny_ipv4(now),
        }
    }

    /// Authenticator: the addresses for this session, after
    /// [`Event::NeedIpv4Address`]. IPCP starts now.
    pub fn set_ipv4(&mut self, now: Instant, a: Ipv4Assignment) -> Result<(), ApiError> {
        if self.role != Role::Authenticator
            || self.ipcp_status != NcpStatus::WaitingAddress
            || self.down
        {
            return Err(ApiError::NotWaiting);
        }
        self.ipcp_neg = Ipcp::server(a);
        self.ipcp_status = NcpStatus::Running;
        self.ipcp.up(now, &mut self.ipcp_neg, &mut self.out);
        self.ipcp.open(now, &mut self.ipcp_neg, &mut self.out);
        if let Some(p) = self.pending_ipcp.take() {
            if let Some(pk) = self
                .ipcp
                .receive(now, &p, &mut self.ipcp_neg, &mut self.out)
            {
                let raw = p[..pk.buffer_len()].to_vec();
                self.ipcp
                    .unknown_code(now, &raw, &mut self.ipcp_neg, &mut self.out);
            }
        }
        self.process(now);
        Ok(())
    }

    /// Authenticator: no IPv4 for this session (pool exhausted, policy).
    /// IPCP is Protocol-Rejected; the link stays up if IPv6CP runs.
    pub fn deny_ipv4(&mut self, now: Instant) -> Result<(), ApiError> {
        if self.role != Role::Authenticator
            || self.ipcp_status != NcpStatus::WaitingAddress
            || self.down
        {
            return Err(ApiError::NotWaiting);
        }
        self.ipcp_status = NcpStatus::Denied;
        if let Some(p) = self.pending_ipcp.take() {
            self.protocol_reject(Protocol::Ipcp, &p);
        }
        self.check_ncps(now);
        self.process(now);
        Ok(())
    }

    /// The 4-byte header to put before `packet` (IPv4 or IPv6) — for drivers
    /// that assemble frames in their own buffers without copying.
    pub fn ip_header(&self, packet: &[u8]) -> Result<[u8; frame::HEADER_LEN], SendError> {
        let proto = match packet.first().map(|b| b >> 4) {
            Some(4) => Protocol::Ipv4,
            Some(6) => Protocol::Ipv6,
            _ => return Err(SendError::NotIp),
        };
        let up = if proto == Protocol::Ipv4 {
            self.ipv4_up
        } else {
            self.ipv6_up
        };
        if !up || self.phase != Phase::Network || self.down {
            return Err(SendError::NotOpen);
        }
        let mru = self.lcp_neg.peer_mru;
        if packet.len() > usize::from(mru) {
            return Err(SendError::TooBig {
                len: packet.len(),
                mru,
            });
        }
        Ok(frame::header(proto))
    }

    /// Appends the frame for an IP packet to `out` (header + packet).
    pub fn encapsulate_ip(&self, packet: &[u8], out: &mut Vec<u8>) -> Result<(), SendError> {
        let h = self.ip_header(packet)?;
        out.extend_from_slice(&h);
        out.extend_from_slice(packet);
        Ok(())
    }

    /// The frame for an IP packet, as a new buffer.
    pub fn send_ip(&self, packet: &[u8]) -> Result<Vec<u8>, SendError> {
        let mut v = Vec::with_capacity(frame::HEADER_LEN + packet.len());
        self.encapsulate_ip(packet, &mut v)?;
        Ok(v)
    }

    // ---- internals -------------------------------------------------------

    fn echo_tick(&mut self, now: Instant) {
        let Some(interval) = self.cfg.echo_interval else {
            self.echo_at = None;
            return;
        };
        self.echo_at = Some(now + interval);
        if self.lcp.state() != State::Opened || self.phase == Phase::Terminate {
            return;
        }
        if self.rx_since_echo {
            self.rx_since_echo = false;
            self.echo_failures = 0;
            return;
        }
        if self.echo_failures >= self.cfg.echo_failures {
            // Best effort: tell the peer, then go down without waiting.
            self.terminate(now, LinkDownReason::EchoTimeout, None);
            self.finish(LinkDownReason::EchoTimeout);
            return;
        }
        self.echo_failures += 1;
        let id = self.lcp.take_id();
        let magic = self.lcp_neg.our_magic().to_be_bytes();
        self.out.frames.push_back(control_frame(
            Protocol::Lcp,
            lcp::code::ECHO_REQ,
            id,
            &magic,
        ));
    }

    fn process(&mut self, now: Instant) {
        while let Some((proto, ev)) = self.out.layer.pop_front() {
            match (proto, ev) {
                (Protocol::Lcp, LayerEvent::Up) => self.lcp_up(now),
                (Protocol::Lcp, LayerEvent::Down) => self.lcp_down(now),
                (Protocol::Lcp, LayerEvent::Finished) => {
                    let r = self
                        .terminate_reason
                        .unwrap_or(LinkDownReason::NegotiationFailed);
                    self.finish(r);
                }
                (Protocol::Ipcp, LayerEvent::Up) => {
                    let a = self.ipcp_neg.result();
                    if self.role == Role::Peer && a.local.is_unspecified() {
                        self.ipcp.close(
                            now,
                            b"No address assigned",
                            &mut self.ipcp_neg,
                            &mut self.out,
                        );
                    } else {
                        self.ipv4_up = true;
                        self.setup_deadline = None;
                        self.events.push_back(Event::Ipv4Up {
                            local: a.local,
                            peer: a.peer,
                            dns1: a.dns1,
                            dns2: a.dns2,
                        });
                    }
                }
                (Protocol::Ipcp, LayerEvent::Down) if self.ipv4_up => {
                    self.ipv4_up = false;
                    self.events.push_back(Event::Ipv4Down);
                }
                (Protocol::Ipv6cp, LayerEvent::Up) => {
                    self.ipv6_up = true;
                    self.setup_deadline = None;
                    self.events.push_back(Event::Ipv6Up {
                        local_iid: self.ipv6cp_neg.local,
                        peer_iid: self.ipv6cp_neg.peer,
                    });
                }
                (Protocol::Ipv6cp, LayerEvent::Down) if self.ipv6_up => {
                    self.ipv6_up = false;
                    self.events.push_back(Event::Ipv6Down);
                }
                (Protocol::Ipcp | Protocol::Ipv6cp, LayerEvent::Finished) => self.check_ncps(now),
                _ => {}
            }
        }
    }

    fn lcp_up(&mut self, now: Instant) {
        if self.down || self.phase == Phase::Terminate {
            return;
        }
        self.phase = Phase::Authenticate;
        self.echo_failures = 0;
        self.rx_since_echo = false;
        self.echo_at = self.cfg.echo_interval.map(|i| now + i);
        let agreed = self.lcp_neg.agreed_auth();
        let timing = Timing {
            restart: self.cfg.fsm.restart,
            max_transmits: self.cfg.fsm.max_configure,
            timeout: self.cfg.auth_timeout,
            max_attempts: self.cfg.auth_max_attempts.max(1),
        };
        match (self.role, agreed) {
            (Role::Authenticator, Some(p)) => {
                let a = Authenticator::start(
                    now,
                    p,
                    &self.cfg.name,
                    timing,
                    self.next_auth_req,
                    self.rng.as_mut(),
                    &mut self.scratch,
                )
                .with_eap_tls(self.cfg.eap_tls.clone(), self.eap_tls_frag())
                .with_eap_pass_through(self.cfg.eap_pass_through);
                self.next_auth_req = a.next_request_id();
                self.authenticator = Some(a);
                self.flush_scratch();
            }
            (Role::Authenticator, None) => {
                if self.cfg.auth_protocols.is_empty() {
                    self.enter_network(
                        now,
                        AuthSuccess::new([0; 32], String::new(), AuthMethod::None),
                    );
                } else {
                    self.terminate(now, LinkDownReason::AuthNotNegotiated, None);
                }
            }
            (Role::Peer, Some(p)) => {
                let (mut pa, r) = PeerAuth::start(
                    now,
                    p,
                    self.cfg.credentials.clone(),
                    timing.restart,
                    timing.max_transmits,
                    timing.timeout,
                    self.rng.as_mut(),
                    &mut self.scratch,
                );
                pa.with_eap_tls(self.cfg.eap_tls.clone(), self.eap_tls_frag());
                self.peer_auth = Some(pa);
                self.flush_scratch();
                if let Some(o) = r {
                    self.on_peer_out(now, o);
                }
            }
            (Role::Peer, None) => {
                let user = self
                    .cfg
                    .credentials
                    .as_ref()
                    .map(|c| c.username.clone())
                    .unwrap_or_default();
                self.enter_network(now, AuthSuccess::new([0; 32], user, AuthMethod::None));
            }
        }
    }

    /// EAP-TLS fragment size: what fits the peer's MRU.
    fn eap_tls_frag(&self) -> usize {
        crate::auth::eap_tls::Exchange::max_frag_for_mru(self.lcp_neg.peer_mru)
    }

    fn lcp_down(&mut self, now: Instant) {
        self.ipcp.down(now, &mut self.ipcp_neg, &mut self.out);
        self.ipv6cp.down(now, &mut self.ipv6cp_neg, &mut self.out);
        self.authenticator = None;
        self.peer_auth = None;
        self.echo_at = None;
        if self.phase == Phase::Terminate || self.down {
            return;
        }
        match self.lcp.state() {
            State::Stopping => {
                // Peer's Terminate-Request (Terminate-Ack already queued) or
                // a catastrophic Code-/Protocol-Reject of LCP.
                self.phase = Phase::Terminate;
                self.finish(LinkDownReason::PeerTerminated);
            }
            _ => {
                // The peer restarted LCP negotiation after we were up.
                self.phase = Phase::Terminate;
                self.terminate_reason = Some(LinkDownReason::Renegotiation);
                let why = LinkDownReason::Renegotiation.text();
                self.lcp.close(now, why, &mut self.lcp_neg, &mut self.out);
                self.finish(LinkDownReason::Renegotiation);
            }
        }
    }

    fn enter_network(&mut self, now: Instant, s: AuthSuccess) {
        if self.down || self.phase != Phase::Authenticate {
            return;
        }
        self.phase = Phase::Network;
        self.username = s.username.clone();
        self.events.push_back(Event::Authenticated {
            hlak: Hlak(s.hlak),
            alt_hlak: s.alt_hlak.map(Hlak),
            username: s.username,
            method: s.method,
        });
        if self.cfg.ipv4 {
            match self.role {
                Role::Authenticator => {
                    self.ipcp_status = NcpStatus::WaitingAddress;
                    self.events.push_back(Event::NeedIpv4Address {
                        username: self.username.clone(),
                    });
                }
                Role::Peer => {
                    self.ipcp.up(now, &mut self.ipcp_neg, &mut self.out);
                    self.ipcp.open(now, &mut self.ipcp_neg, &mut self.out);
                }
            }
        }
        if self.cfg.ipv6 {
            self.ipv6cp.up(now, &mut self.ipv6cp_neg, &mut self.out);
            self.ipv6cp.open(now, &mut self.ipv6cp_neg, &mut self.out);
        }
        self.check_ncps(now);
    }

    fn ncp_alive(status: NcpStatus, st: State) -> bool {
        match status {
            NcpStatus::WaitingAddress => true,
            NcpStatus::Running => matches!(
                st,
                State::ReqSent | State::AckRcvd | State::AckSent | State::Opened
            ),
            NcpStatus::Disabled | NcpStatus::Denied => false,
        }
    }

    fn check_ncps(&mut self, now: Instant) {
        if self.phase != Phase::Network || self.down {
            return;
        }
        let v4 = Self::ncp_alive(self.ipcp_status, self.ipcp.state());
        let v6 = Self::ncp_alive(self.ipv6_status, self.ipv6cp.state());
        if !v4 && !v6 {
            self.terminate(now, LinkDownReason::NoNetworkProtocols, None);
        }
    }

    /// Graceful termination: LCP Terminate-Request, LinkDown at Finished.
    fn terminate(&mut self, now: Instant, reason: LinkDownReason, text: Option<&[u8]>) {
        if self.down || self.phase == Phase::Terminate || !self.started {
            return;
        }
        self.phase = Phase::Terminate;
        self.terminate_reason = Some(reason);
        let text = text.unwrap_or(reason.text());
        self.lcp.close(now, text, &mut self.lcp_neg, &mut self.out);
        if matches!(self.lcp.state(), State::Closed | State::Initial) {
            self.finish(reason);
        }
    }

    fn finish(&mut self, reason: LinkDownReason) {
        if self.down {
            return;
        }
        self.down = true;
        self.phase = Phase::Dead;
        if std::mem::take(&mut self.ipv4_up) {
            self.events.push_back(Event::Ipv4Down);
        }
        if std::mem::take(&mut self.ipv6_up) {
            self.events.push_back(Event::Ipv6Down);
        }
        self.echo_at = None;
        self.events.push_back(Event::LinkDown { reason });
    }
}
