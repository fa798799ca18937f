//! The SSTP state machines (MS-SSTP §3): client call establishment (§3.2),
//! server call establishment (§3.3), and the Call Abort / Call Disconnect
//! machines both share (§3.1.1.1), with their timers (§3.1.2, §3.2.2,
//! §3.3.2). Sans-IO in quinn-proto's shape: feed stream bytes with
//! [`Connection::handle_input`], time with [`Connection::handle_timeout`],
//! drain [`Connection::poll_transmit`] and [`Connection::poll_event`], sleep
//! until [`Connection::poll_timeout`]. The crate never reads the clock.
//!
//! The "In_Progress" states of §3.1.1.1 are transient: their actions happen
//! inside one call, so the machine only ever rests in the states of
//! [`State`].

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use crate::binding::{self, HashProtocol};
use crate::decoder::{Decoder, Frame};
use crate::wire::{
    self, Attribute, AttributeError, AttributeId, ControlMessage, CryptoBinding, MessageType,
    Packet, RawAttribute, Status, StatusInfo, WireError, HASH_SHA1, HASH_SHA256, PROTOCOL_PPP,
};

/// Timer values and retry limits (defaults are the spec's SHOULDs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// Negotiation timer (§3.2.2.1, §3.3.2.1): 60 s.
    pub negotiation: Duration,
    /// Hello timer (§3.1.2.3): 60 s.
    pub hello: Duration,
    /// TIMER_VAL_ABORT_STATE_TIMER_1: 3 s.
    pub abort1: Duration,
    /// TIMER_VAL_ABORT_STATE_TIMER_2: 1 s.
    pub abort2: Duration,
    /// TIMER_VAL_DISCONNECT_STATE_TIMER_1: 5 s.
    pub disconnect1: Duration,
    /// TIMER_VAL_DISCONNECT_STATE_TIMER_2: 1 s.
    pub disconnect2: Duration,
    /// Call Connect NAKs before the call is aborted (client: NAKs accepted;
    /// server: NAKs sent). Windows uses 3.
    pub max_naks: u32,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            negotiation: Duration::from_secs(60),
            hello: Duration::from_secs(60),
            abort1: Duration::from_secs(3),
            abort2: Duration::from_secs(1),
            disconnect1: Duration::from_secs(5),
            disconnect2: Duration::from_secs(1),
            max_naks: 3,
        }
    }
}

/// Server settings (§3.3.1, §3.3.3).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub timers: Timers,
    /// ServerHashProtocolSupported: bitmask of `HASH_SHA1 | HASH_SHA256`.
    pub hash_bitmask: u8,
    /// ServerCertificateHash, SHA-1 of the leaf certificate's DER.
    pub cert_sha1: [u8; 20],
    /// ServerCertificateHash, SHA-256 of the leaf certificate's DER.
    pub cert_sha256: [u8; 32],
    /// ServerBypassHLAuth for this connection (§3.3.7.3): the HLAK is zero.
    pub bypass_hl_auth: bool,
}

impl ServerConfig {
    pub fn new(cert_sha1: [u8; 20], cert_sha256: [u8; 32]) -> Self {
        Self {
            timers: Timers::default(),
            hash_bitmask: HASH_SHA1 | HASH_SHA256,
            cert_sha1,
            cert_sha256,
            bypass_hl_auth: false,
        }
    }
}

/// Client settings (§3.2.1).
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub timers: Timers,
    /// ClientHashProtocolSupported; SHA-256 is chosen when both are allowed.
    pub hash_bitmask: u8,
    /// ClientCertificateHash as SHA-1 and SHA-256 of the server's leaf DER.
    pub cert_sha1: [u8; 20],
    pub cert_sha256: [u8; 32],
}

impl ClientConfig {
    pub fn new(cert_sha1: [u8; 20], cert_sha256: [u8; 32]) -> Self {
        Self {
            timers: Timers::default(),
            hash_bitmask: HASH_SHA1 | HASH_SHA256,
            cert_sha1,
            cert_sha256,
        }
    }
}

/// Where the state machine rests (§3.1.1, §3.2.1, §3.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    ClientCallDisconnected,
    ClientConnectRequestSent,
    ClientConnectAckReceived,
    ClientCallConnected,
    ServerConnectRequestPending,
    ServerCallConnectedPending,
    ServerCallConnected,
    CallAbortPending,
    CallAbortTimeoutPending,
    CallDisconnectAckPending,
    CallDisconnectTimeoutPending,
    /// Cleaned up; [`Event::Closed`] was emitted.
    Closed,
}

impl State {
    /// The four states in which most messages are ignored.
    fn tearing_down(self) -> bool {
        matches!(
            self,
            State::CallAbortPending
                | State::CallAbortTimeoutPending
                | State::CallDisconnectAckPending
                | State::CallDisconnectTimeoutPending
        )
    }
}

/// Which part of the crypto binding failed (§3.3.5.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindingFailure {
    Missing,
    Nonce,
    CertHash,
    HashProtocol,
    CompoundMac,
}

impl fmt::Display for BindingFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BindingFailure::Missing => "no crypto binding attribute in Call Connected",
            BindingFailure::Nonce => "wrong nonce",
            BindingFailure::CertHash => "certificate hash does not match the server's certificate",
            BindingFailure::HashProtocol => "a hash protocol the server did not offer",
            BindingFailure::CompoundMac => {
                "compound MAC does not verify (a different HLAK: the authentication keys differ)"
            }
        })
    }
}

/// Why the connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// Call Disconnect exchange (either side started it).
    Disconnected { by_peer: bool },
    /// We aborted with this Status Info.
    LocalAbort { status: StatusInfo },
    /// The peer sent Call Abort (with its Status Info, if any).
    PeerAbort { status: Option<StatusInfo> },
    /// The server NAKed our Call Connect Request too often (client).
    Nak { statuses: Vec<StatusInfo> },
    /// The crypto binding did not verify (server).
    Binding(BindingFailure),
    /// The negotiation timer expired.
    Timeout,
    /// No packet within two Hello intervals (§3.1.2.3): no Call Abort sent.
    HelloTimeout,
    /// The stream could not be delineated: no message sent (§3.1.5.1).
    Delineation(WireError),
    /// The HTTPS connection went away.
    LowerLayerClosed,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Disconnected { by_peer: true } => f.write_str("disconnected by the peer"),
            CloseReason::Disconnected { by_peer: false } => f.write_str("disconnected"),
            CloseReason::LocalAbort { status } => write!(f, "aborted: {status}"),
            CloseReason::PeerAbort { status: Some(s) } => write!(f, "aborted by the peer: {s}"),
            CloseReason::PeerAbort { status: None } => f.write_str("aborted by the peer"),
            CloseReason::Nak { statuses } => {
                f.write_str("Call Connect Request refused (NAK)")?;
                for s in statuses {
                    write!(f, ": {s}")?;
                }
                Ok(())
            }
            CloseReason::Binding(b) => write!(f, "crypto binding failed: {b}"),
            CloseReason::Timeout => f.write_str("negotiation timed out"),
            CloseReason::HelloTimeout => f.write_str("peer stopped answering (hello timeout)"),
            CloseReason::Delineation(e) => write!(f, "undecodable stream: {e}"),
            CloseReason::LowerLayerClosed => f.write_str("HTTPS connection closed"),
        }
    }
}

/// What the engine tells the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Lower Link Up (§3.1.7.1): start PPP; control frames flow from now.
    PppControlAllowed,
    /// A PPP frame from the peer, already gated by state.
    PppFrame(Vec<u8>),
    /// Client: Call Connected sent. Server: Call Connected verified. PPP
    /// data frames flow from now.
    Connected,
    /// Server: Call Connected arrived before the HLAK; it is held.
    CallConnectedHeld,
    /// The connection is over (cleaned up). Emitted exactly once.
    Closed { reason: CloseReason },
}

/// What [`Connection::handle_input_with`] hands its sink, in order.
#[derive(Debug)]
pub enum Output<'a> {
    /// A PPP frame from the peer, already gated by state, borrowed.
    PppFrame(&'a [u8]),
    /// An event (never [`Event::PppFrame`]).
    Event(Event),
}

/// Why a PPP frame was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    #[error("PPP {} frames may not be sent in state {state:?}", if *.control { "control" } else { "data" })]
    NotAllowed { state: State, control: bool },
    #[error("PPP frame of {0} bytes exceeds the SSTP maximum of 4091")]
    TooBig(usize),
}

#[derive(Debug, Clone, Copy)]
enum Timer {
    Negotiation = 0,
    Hello = 1,
    Abort = 2,
    Disconnect = 3,
}

#[derive(Debug)]
enum Role {
    Client {
        cfg: ClientConfig,
        naks: u32,
        chosen: Option<HashProtocol>,
        nonce: Option<[u8; 32]>,
        last_nak: Vec<StatusInfo>,
    },
    Server {
        cfg: ServerConfig,
        nonce: [u8; 32],
        naks: u32,
        hlak: Option<[u8; 32]>,
        /// A second HLAK the Compound MAC may be made with (see
        /// [`Connection::higher_layer_authenticated_or`]).
        alt_hlak: Option<[u8; 32]>,
        held: Option<CryptoBinding>,
    },
}

/// One SSTP connection, client or server.
#[derive(Debug)]
pub struct Connection {
    role: Role,
    timers_cfg: Timers,
    state: State,
    timers: [Option<Instant>; 4],
    echo_outstanding: bool,
    decoder: Decoder,
    tx: Vec<u8>,
    events: VecDeque<Event>,
    reason: Option<CloseReason>,
    dropped_frames: u64,
}

/// The server side (§3.3).
pub type Server = Connection;
/// The client side (§3.2).
pub type Client = Connection;

impl Connection {
    /// A server connection for a new HTTPS connection (§3.3.7.2): waits for
    /// Call Connect Request under the negotiation timer. `nonce` must be
    /// random (it goes into the Crypto Binding Request).
    pub fn server(cfg: ServerConfig, now: Instant, nonce: [u8; 32]) -> Self {
        let t = cfg.timers;
        let mut c = Self::new(
            Role::Server {
                cfg,
                nonce,
                naks: 0,
                hlak: None,
                alt_hlak: None,
                held: None,
            },
            t,
            State::ServerConnectRequestPending,
        );
        c.set_in(Timer::Negotiation, now, t.negotiation);
        c
    }

    /// A client connection; call [`Connection::start`] once the HTTPS
    /// exchange is done.
    pub fn client(cfg: ClientConfig) -> Self {
        let t = cfg.timers;
        Self::new(
            Role::Client {
                cfg,
                naks: 0,
                chosen: None,
                nonce: None,
                last_nak: Vec::new(),
            },
            t,
            State::ClientCallDisconnected,
        )
    }

    fn new(role: Role, timers_cfg: Timers, state: State) -> Self {
        Self {
            role,
            timers_cfg,
            state,
            timers: [None; 4],
            echo_outstanding: false,
            decoder: Decoder::new(),
            tx: Vec::new(),
            events: VecDeque::new(),
            reason: None,
            dropped_frames: 0,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// PPP frames dropped because the state did not allow them.
    pub fn dropped_frames(&self) -> u64 {
        self.dropped_frames
    }

    /// Client: sends Call Connect Request (§3.2.4.1).
    pub fn start(&mut self, now: Instant) {
        if self.state == State::ClientCallDisconnected {
            self.send_connect_request();
            self.state = State::ClientConnectRequestSent;
            self.set_in(Timer::Negotiation, now, self.timers_cfg.negotiation);
        }
    }

    // ---- driver interface -------------------------------------------------

    /// Bytes received from the HTTPS stream. PPP frames come out as
    /// [`Event::PppFrame`] (a copy each); see [`Connection::handle_input_with`]
    /// for the zero-copy form.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        self.input(now, bytes, None);
    }

    /// Bytes received from the HTTPS stream, with every output of this call
    /// passed to `sink` in order: PPP frames as slices of `bytes` (or of the
    /// decoder's buffer for a frame split across reads) without a copy, and
    /// the events they caused (also any still queued from before). Events
    /// from later calls (timers, [`Connection::disconnect`]) stay queued for
    /// [`Connection::poll_event`].
    pub fn handle_input_with(
        &mut self,
        now: Instant,
        bytes: &[u8],
        sink: &mut dyn FnMut(Output<'_>),
    ) {
        self.input(now, bytes, Some(sink));
    }

    fn input(&mut self, now: Instant, bytes: &[u8], mut sink: Option<&mut dyn FnMut(Output<'_>)>) {
        if self.state == State::Closed {
            return;
        }
        let mut decoder = std::mem::take(&mut self.decoder);
        let result = decoder.decode(bytes, |f| {
            self.on_frame(now, f, &mut sink);
            self.state != State::Closed
        });
        self.decoder = decoder;
        if let Err(e) = result {
            if self.state != State::Closed {
                self.close(CloseReason::Delineation(e));
            }
        }
        if let Some(sink) = sink {
            while let Some(e) = self.events.pop_front() {
                sink(Output::Event(e));
            }
        }
    }

    /// The earliest timer deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.iter().flatten().min().copied()
    }

    /// Runs the timers that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        for t in [
            Timer::Abort,
            Timer::Disconnect,
            Timer::Negotiation,
            Timer::Hello,
        ] {
            if self.state == State::Closed {
                return;
            }
            if self.timers[t as usize].is_some_and(|d| d <= now) {
                self.timers[t as usize] = None;
                self.on_timer(now, t);
            }
        }
    }

    /// Appends the bytes to write to the HTTPS stream; false if none.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> bool {
        if self.tx.is_empty() {
            return false;
        }
        if out.is_empty() {
            std::mem::swap(out, &mut self.tx);
        } else {
            out.extend_from_slice(&self.tx);
            self.tx.clear();
        }
        true
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// A PPP frame from the local PPP layer (§3.2.7.1, §3.3.7.1): control
    /// frames go out once PPP may run, data frames once connected.
    pub fn send_ppp_frame(&mut self, frame: &[u8]) -> Result<(), SendError> {
        let control = wire::ppp_frame_is_control(frame);
        if !self.ppp_allowed(control) {
            return Err(SendError::NotAllowed {
                state: self.state,
                control,
            });
        }
        wire::emit_data(frame, &mut self.tx).map_err(|_| SendError::TooBig(frame.len()))
    }

    /// Zero-copy form of [`Connection::send_ppp_frame`] for the data path:
    /// appends to `out` the bytes the engine has queued (so their order
    /// holds), then one data packet whose PPP frame is `ppp_header` +
    /// `packet`, written straight into `out`.
    pub fn send_ppp_data(
        &mut self,
        ppp_header: &[u8],
        packet: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), SendError> {
        let control = wire::ppp_frame_is_control(ppp_header);
        if !self.ppp_allowed(control) {
            return Err(SendError::NotAllowed {
                state: self.state,
                control,
            });
        }
        let len = ppp_header.len() + packet.len();
        if len > wire::MAX_PAYLOAD {
            return Err(SendError::TooBig(len));
        }
        self.poll_transmit(out);
        wire::emit_data_header(len, out);
        out.extend_from_slice(ppp_header);
        out.extend_from_slice(packet);
        Ok(())
    }

    /// Inner Authentication Completed (§3.2.7.1, §3.3.7.1) with the HLAK
    /// (32 zero bytes when the method has no keys). Client: sends Call
    /// Connected. Server: verifies a held Call Connected, if any.
    pub fn higher_layer_authenticated(&mut self, now: Instant, hlak: [u8; 32]) {
        self.higher_layer_authenticated_or(now, hlak, None)
    }

    /// [`Self::higher_layer_authenticated`], and on the server a second
    /// HLAK that a Compound MAC may also be made with: the same key material
    /// in the form another implementation derives it (pppd 2.4.9's EAP-TLS,
    /// `ppp::Event::Authenticated::alt_hlak`). The client uses `hlak` only.
    pub fn higher_layer_authenticated_or(
        &mut self,
        now: Instant,
        hlak: [u8; 32],
        alt: Option<[u8; 32]>,
    ) {
        match &mut self.role {
            Role::Client {
                cfg, chosen, nonce, ..
            } => {
                if self.state != State::ClientConnectAckReceived {
                    return;
                }
                let (Some(p), Some(n)) = (*chosen, *nonce) else {
                    return;
                };
                let b = binding::client_binding(p, n, &cfg.cert_sha1, &cfg.cert_sha256, &hlak);
                wire::emit_control(
                    MessageType::CallConnected,
                    &[Attribute::CryptoBinding(b)],
                    &mut self.tx,
                );
                self.state = State::ClientCallConnected;
                self.timers[Timer::Negotiation as usize] = None;
                self.restart_hello(now);
                self.events.push_back(Event::Connected);
            }
            Role::Server {
                cfg,
                hlak: h,
                alt_hlak,
                held,
                ..
            } => {
                *h = Some(if cfg.bypass_hl_auth { [0; 32] } else { hlak });
                *alt_hlak = alt.filter(|_| !cfg.bypass_hl_auth);
                if let Some(b) = held.take() {
                    if self.state == State::ServerCallConnectedPending {
                        self.verify_binding(now, b);
                    }
                }
            }
        }
    }

    /// Disconnect SSTP Tunnel event (§3.2.4.2, §3.3.4): Call Disconnect,
    /// whatever the state (unless already tearing down).
    pub fn disconnect(&mut self, now: Instant) {
        if self.state.tearing_down() || self.state == State::Closed {
            return;
        }
        if self.state == State::ClientCallDisconnected {
            self.close(CloseReason::Disconnected { by_peer: false });
            return;
        }
        self.reason
            .get_or_insert(CloseReason::Disconnected { by_peer: false });
        self.send_control(
            MessageType::CallDisconnect,
            vec![Attribute::StatusInfo(StatusInfo::new(
                AttributeId::NoError,
                Status::NoError,
            ))],
        );
        self.clear_timers();
        self.set_in(Timer::Disconnect, now, self.timers_cfg.disconnect1);
        self.state = State::CallDisconnectAckPending;
    }

    /// The HTTPS connection is gone (§3.1.7.2): clean up, no message.
    pub fn lower_layer_closed(&mut self, _now: Instant) {
        if self.state != State::Closed {
            let r = match &self.reason {
                // A teardown that was already under way ends normally.
                Some(r) => r.clone(),
                None => CloseReason::LowerLayerClosed,
            };
            self.close(r);
        }
    }

    // ---- internals ----------------------------------------------------------

    /// `now + d`, or no deadline at all if that overflows (a configured
    /// "forever").
    fn set_in(&mut self, t: Timer, now: Instant, d: Duration) {
        self.timers[t as usize] = now.checked_add(d);
    }

    fn clear_timers(&mut self) {
        self.timers = [None; 4];
    }

    fn restart_hello(&mut self, now: Instant) {
        self.echo_outstanding = false;
        self.set_in(Timer::Hello, now, self.timers_cfg.hello);
    }

    fn connected(&self) -> bool {
        matches!(
            self.state,
            State::ClientCallConnected | State::ServerCallConnected
        )
    }

    fn ppp_allowed(&self, control: bool) -> bool {
        match self.state {
            State::ClientCallConnected | State::ServerCallConnected => true,
            State::ClientConnectAckReceived | State::ServerCallConnectedPending => control,
            _ => false,
        }
    }

    fn send_control(&mut self, t: MessageType, attrs: Vec<Attribute>) {
        wire::emit_control(t, &attrs, &mut self.tx);
    }

    fn send_connect_request(&mut self) {
        self.send_control(
            MessageType::CallConnectRequest,
            vec![Attribute::EncapsulatedProtocolId(PROTOCOL_PPP)],
        );
    }

    fn close(&mut self, reason: CloseReason) {
        let reason = self.reason.take().unwrap_or(reason);
        self.clear_timers();
        self.state = State::Closed;
        self.events.push_back(Event::Closed { reason });
    }

    /// §3.1.5.1: Call Abort with `status`, TIMER_1, Call_Abort_Pending.
    fn abort(&mut self, now: Instant, status: StatusInfo, reason: Option<CloseReason>) {
        self.reason
            .get_or_insert(reason.unwrap_or(CloseReason::LocalAbort {
                status: status.clone(),
            }));
        self.send_control(MessageType::CallAbort, vec![Attribute::StatusInfo(status)]);
        self.clear_timers();
        self.set_in(Timer::Abort, now, self.timers_cfg.abort1);
        self.state = State::CallAbortPending;
    }

    fn abort_unaccepted(&mut self, now: Instant) {
        self.abort(
            now,
            StatusInfo::new(AttributeId::StatusInfo, Status::UnacceptedFrameReceived),
            None,
        );
    }

    fn on_timer(&mut self, now: Instant, t: Timer) {
        match t {
            // §3.1.6.1, §3.1.6.2: clean up.
            Timer::Abort | Timer::Disconnect => {
                let r = self.reason.clone().unwrap_or(CloseReason::Timeout);
                self.close(r);
            }
            // §3.2.6.1, §3.3.6.1.
            Timer::Negotiation => self.abort(
                now,
                StatusInfo::new(AttributeId::StatusInfo, Status::NegotiationTimeout),
                Some(CloseReason::Timeout),
            ),
            // §3.1.2.3, §3.1.6.3.
            Timer::Hello => {
                if self.echo_outstanding {
                    self.close(CloseReason::HelloTimeout);
                } else {
                    self.send_control(MessageType::EchoRequest, vec![]);
                    self.echo_outstanding = true;
                    self.set_in(Timer::Hello, now, self.timers_cfg.hello);
                }
            }
        }
    }

    fn on_frame(
        &mut self,
        now: Instant,
        f: Frame<'_>,
        sink: &mut Option<&mut dyn FnMut(Output<'_>)>,
    ) {
        if self.connected() {
            self.restart_hello(now);
        }
        match f {
            Frame::Data(payload) => {
                let control = wire::ppp_frame_is_control(payload);
                if !self.ppp_allowed(control) {
                    self.dropped_frames += 1;
                    return;
                }
                match sink {
                    Some(sink) => {
                        // Events before the frame keep their order.
                        while let Some(e) = self.events.pop_front() {
                            sink(Output::Event(e));
                        }
                        sink(Output::PppFrame(payload));
                    }
                    None => self.events.push_back(Event::PppFrame(payload.to_vec())),
                }
            }
            Frame::Control(bytes) => match Packet::parse(bytes) {
                Ok(Packet::Control(m)) => self.on_control(now, &m),
                Ok(Packet::Data(_)) => unreachable!("the decoder classified it as control"),
                Err(_) => {
                    // §3.2.5.3.1, §3.3.5.2.1: invalid message -> abort.
                    if !self.state.tearing_down() {
                        self.abort(
                            now,
                            StatusInfo::new(AttributeId::StatusInfo, Status::InvalidFrameReceived),
                            None,
                        );
                    }
                }
            },
        }
    }

    fn on_control(&mut self, now: Instant, m: &ControlMessage<'_>) {
        use MessageType as M;
        let st = self.state;
        let is_client = matches!(self.role, Role::Client { .. });
        match m.message_type {
            M::CallAbort => self.on_call_abort(now, m),
            M::CallDisconnect => self.on_call_disconnect(now),
            M::CallDisconnectAck => match st {
                State::CallDisconnectAckPending => {
                    self.close(CloseReason::Disconnected { by_peer: false })
                }
                State::CallAbortPending
                | State::CallAbortTimeoutPending
                | State::CallDisconnectTimeoutPending => {}
                _ => self.abort_unaccepted(now),
            },
            _ if st.tearing_down() => {}
            M::EchoRequest if self.connected() => {
                self.send_control(M::EchoResponse, vec![]);
            }
            M::EchoResponse if self.connected() => {}
            M::CallConnectAck if st == State::ClientConnectRequestSent => {
                self.on_connect_ack(now, m)
            }
            M::CallConnectNak if st == State::ClientConnectRequestSent => {
                self.on_connect_nak(now, m)
            }
            M::CallConnectRequest if st == State::ServerConnectRequestPending && !is_client => {
                self.on_connect_request(now, m)
            }
            M::CallConnected if st == State::ServerCallConnectedPending && !is_client => {
                self.on_call_connected(now, m)
            }
            M::Unknown(_) => self.abort(
                now,
                StatusInfo::new(AttributeId::StatusInfo, Status::InvalidFrameReceived),
                None,
            ),
            _ => self.abort_unaccepted(now),
        }
    }

    /// §3.2.5.3.4, §3.3.5.2.4.
    fn on_call_abort(&mut self, now: Instant, m: &ControlMessage<'_>) {
        match self.state {
            State::CallAbortPending => {
                self.timers[Timer::Abort as usize] = None;
                self.set_in(Timer::Abort, now, self.timers_cfg.abort2);
                self.state = State::CallAbortTimeoutPending;
            }
            State::CallAbortTimeoutPending | State::CallDisconnectTimeoutPending => {}
            _ => {
                let status = m
                    .attributes
                    .iter()
                    .find_map(|a| match Attribute::decode(a) {
                        Ok(Attribute::StatusInfo(s)) => Some(s),
                        _ => None,
                    });
                self.reason.get_or_insert(CloseReason::PeerAbort { status });
                self.send_control(
                    MessageType::CallAbort,
                    vec![Attribute::StatusInfo(StatusInfo::new(
                        AttributeId::NoError,
                        Status::NoError,
                    ))],
                );
                self.clear_timers();
                self.set_in(Timer::Abort, now, self.timers_cfg.abort2);
                self.state = State::CallAbortTimeoutPending;
            }
        }
    }

    /// §3.2.5.3.5, §3.3.5.2.5.
    fn on_call_disconnect(&mut self, now: Instant) {
        match self.state {
            State::CallAbortTimeoutPending
            | State::CallAbortPending
            | State::CallDisconnectTimeoutPending => {}
            _ => {
                self.reason
                    .get_or_insert(CloseReason::Disconnected { by_peer: true });
                self.send_control(MessageType::CallDisconnectAck, vec![]);
                self.clear_timers();
                self.set_in(Timer::Disconnect, now, self.timers_cfg.disconnect2);
                self.state = State::CallDisconnectTimeoutPending;
            }
        }
    }

    /// §3.2.5.3.2.
    fn on_connect_ack(&mut self, now: Instant, m: &ControlMessage<'_>) {
        let Role::Client {
            cfg, chosen, nonce, ..
        } = &mut self.role
        else {
            return;
        };
        let req = match m.attributes.as_slice() {
            [a] => Attribute::decode(a).ok(),
            _ => None,
        };
        let Some(Attribute::CryptoBindingReq {
            hash_bitmask,
            nonce: n,
        }) = req
        else {
            self.abort(
                now,
                StatusInfo::new(
                    AttributeId::CryptoBindingReq,
                    Status::AttribNotSupportedInMsg,
                ),
                None,
            );
            return;
        };
        match HashProtocol::choose(hash_bitmask, cfg.hash_bitmask) {
            Some(p) => {
                *chosen = Some(p);
                *nonce = Some(n);
                self.events.push_back(Event::PppControlAllowed);
                self.set_in(Timer::Negotiation, now, self.timers_cfg.negotiation);
                self.state = State::ClientConnectAckReceived;
            }
            None => self.abort(
                now,
                StatusInfo::new(AttributeId::CryptoBindingReq, Status::ValueNotSupported),
                None,
            ),
        }
    }

    /// §3.2.5.3.3.
    fn on_connect_nak(&mut self, now: Instant, m: &ControlMessage<'_>) {
        let Role::Client { naks, last_nak, .. } = &mut self.role else {
            return;
        };
        *naks += 1;
        *last_nak = m
            .attributes
            .iter()
            .filter_map(|a| match Attribute::decode(a) {
                Ok(Attribute::StatusInfo(s)) => Some(s),
                _ => None,
            })
            .collect();
        if *naks > self.timers_cfg.max_naks {
            let statuses = last_nak.clone();
            self.abort(
                now,
                StatusInfo::new(AttributeId::StatusInfo, Status::RetryCountExceeded),
                Some(CloseReason::Nak { statuses }),
            );
        } else {
            self.send_connect_request();
            self.set_in(Timer::Negotiation, now, self.timers_cfg.negotiation);
        }
    }

    /// §3.3.5.2.2: the six NAK cases, the retry counter, the Ack.
    fn on_connect_request(&mut self, now: Instant, m: &ControlMessage<'_>) {
        let problems = connect_request_problems(&m.attributes);
        let Role::Server {
            cfg, nonce, naks, ..
        } = &mut self.role
        else {
            return;
        };
        if problems.is_empty() {
            let attr = Attribute::CryptoBindingReq {
                hash_bitmask: cfg.hash_bitmask,
                nonce: *nonce,
            };
            self.send_control(MessageType::CallConnectAck, vec![attr]);
            self.set_in(Timer::Negotiation, now, self.timers_cfg.negotiation);
            self.state = State::ServerCallConnectedPending;
            self.events.push_back(Event::PppControlAllowed);
        } else if *naks >= self.timers_cfg.max_naks {
            self.abort(
                now,
                StatusInfo::new(AttributeId::StatusInfo, Status::RetryCountExceeded),
                None,
            );
        } else {
            *naks += 1;
            // One Status Info per problem, as many as fit one packet.
            let mut room = wire::MAX_PACKET - wire::HEADER_LEN - 4;
            let attrs = problems
                .into_iter()
                .map(Attribute::StatusInfo)
                .take_while(|a| {
                    let fits = a.buffer_len() <= room;
                    room = room.saturating_sub(a.buffer_len());
                    fits
                })
                .collect();
            self.send_control(MessageType::CallConnectNak, attrs);
        }
    }

    /// §3.3.5.2.3: structure checks now; the binding itself once the HLAK
    /// is known (real clients send Call Connected before PPP auth ends).
    fn on_call_connected(&mut self, now: Instant, m: &ControlMessage<'_>) {
        let mut binding = None;
        let mut bad = false;
        for a in &m.attributes {
            match Attribute::decode(a) {
                Ok(Attribute::CryptoBinding(b)) if binding.is_none() => binding = Some(b),
                Ok(Attribute::StatusInfo(s)) if s.status == Status::NoError => {}
                _ => bad = true,
            }
        }
        let Some(b) = binding.filter(|_| !bad) else {
            self.abort(
                now,
                StatusInfo::new(AttributeId::StatusInfo, Status::AttribNotSupportedInMsg),
                Some(CloseReason::Binding(BindingFailure::Missing)),
            );
            return;
        };
        let Role::Server { hlak, held, .. } = &mut self.role else {
            return;
        };
        if hlak.is_some() {
            self.verify_binding(now, b);
        } else {
            *held = Some(b);
            self.events.push_back(Event::CallConnectedHeld);
        }
    }

    fn verify_binding(&mut self, now: Instant, b: CryptoBinding) {
        let Role::Server {
            cfg,
            nonce,
            hlak,
            alt_hlak,
            ..
        } = &self.role
        else {
            return;
        };
        let hlak = hlak.unwrap_or([0; 32]);
        let mac_ok = |p: HashProtocol, n: usize, key: &[u8; 32]| {
            binding::ct_eq(&b.compound_mac, &binding::compound_mac(p, key, &b), n)
        };
        let failure = match HashProtocol::from_wire(b.hash_protocol)
            .filter(|_| cfg.hash_bitmask & b.hash_protocol != 0)
        {
            None => Some(BindingFailure::HashProtocol),
            Some(p) => {
                let n = p.output_len();
                let cert: &[u8] = match p {
                    HashProtocol::Sha1 => &cfg.cert_sha1,
                    HashProtocol::Sha256 => &cfg.cert_sha256,
                };
                if !binding::ct_eq(&b.nonce, nonce, 32) {
                    Some(BindingFailure::Nonce)
                } else if !binding::ct_eq(&b.cert_hash, cert, n) {
                    Some(BindingFailure::CertHash)
                } else if !mac_ok(p, n, &hlak) && !alt_hlak.is_some_and(|k| mac_ok(p, n, &k)) {
                    Some(BindingFailure::CompoundMac)
                } else {
                    None
                }
            }
        };
        match failure {
            None => {
                self.state = State::ServerCallConnected;
                self.timers[Timer::Negotiation as usize] = None;
                self.restart_hello(now);
                self.events.push_back(Event::Connected);
            }
            Some(f) => self.abort(
                now,
                StatusInfo::new(AttributeId::CryptoBinding, Status::ValueNotSupported),
                Some(CloseReason::Binding(f)),
            ),
        }
    }
}

/// The Status Infos a Call Connect NAK must carry for these attributes
/// (§3.3.5.2.2); empty if the request is acceptable.
///
/// For a missing Encapsulated Protocol ID, §3.3.5.2.2 item 6 names
/// SSTP_ATTRIB_STATUS_INFO as the AttribID while §2.2.8 and §2.2.12 (both
/// MUSTs) name SSTP_ATTRIB_ENCAPSULATED_PROTOCOL_ID; we follow the latter,
/// which also tells the client which attribute is missing.
pub fn connect_request_problems(attrs: &[RawAttribute<'_>]) -> Vec<StatusInfo> {
    let mut out = Vec::new();
    let mut seen_epid = false;
    for a in attrs {
        match Attribute::decode(a) {
            Ok(Attribute::StatusInfo(s)) => {
                if s.status != Status::NoError {
                    out.push(
                        StatusInfo::new(
                            AttributeId::StatusInfo,
                            Status::StatusInfoNotSupportedInMsg,
                        )
                        .with_value(a.value),
                    );
                }
            }
            Ok(Attribute::EncapsulatedProtocolId(p)) => {
                if seen_epid {
                    out.push(StatusInfo::new(a.id, Status::DuplicateAttribute).with_value(a.value));
                } else if p != PROTOCOL_PPP {
                    out.push(StatusInfo::new(a.id, Status::ValueNotSupported).with_value(a.value));
                }
                seen_epid = true;
            }
            Ok(_) => {
                out.push(StatusInfo::new(a.id, Status::AttribNotSupportedInMsg).with_value(a.value))
            }
            Err(AttributeError::Length(id)) => {
                if id == AttributeId::EncapsulatedProtocolId {
                    if seen_epid {
                        out.push(
                            StatusInfo::new(id, Status::DuplicateAttribute).with_value(a.value),
                        );
                    }
                    seen_epid = true;
                }
                out.push(StatusInfo::new(id, Status::InvalidAttribValueLength).with_value(a.value));
            }
            // §2.2.8: no AttribValue for an attribute we do not understand.
            Err(_) => out.push(StatusInfo::new(a.id, Status::UnrecognizedAttribute)),
        }
    }
    if !seen_epid {
        out.push(StatusInfo::new(
            AttributeId::EncapsulatedProtocolId,
            Status::RequiredAttributeMissing,
        ));
    }
    out
}
