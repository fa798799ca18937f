//! The option negotiation automaton of RFC 1661 §4, shared by LCP, IPCP and
//! IPv6CP.
//!
//! * [`transition`] is the state transition table of §4.1, verbatim: ten
//!   states, sixteen events, thirteen actions. It is tested against the table
//!   text of the RFC in `tests::rfc1661_table`.
//! * [`Fsm`] executes the actions (§4.4) with the counters and timer of §4.6:
//!   the Restart timer, Max-Terminate, Max-Configure and Max-Failure, all
//!   configurable in [`FsmConfig`]. Time is passed in; the automaton never
//!   reads a clock.
//! * What is protocol-specific (which options to request, how to judge the
//!   peer's) is behind the [`Negotiator`] trait; LCP, IPCP and IPv6CP
//!   implement it.
//!
//! Implementation choices where the RFC leaves room:
//! * the "restart option" (`3r`, `5r`, `9r`) and the "passive option" (`3p`)
//!   are not taken: Open in Stopped/Stopping/Opened changes nothing, TO- goes
//!   to Stopped and reports This-Layer-Finished;
//! * every Configure-Request carries a fresh Identifier; a Configure-Ack must
//!   match the last request's Identifier and options exactly (§5.2), and once
//!   an Ack for an Identifier has been seen, later Ack/Nak/Reject packets with
//!   that Identifier (duplicates) are ignored, as pppd does;
//! * Max-Failure counts Configure-Naks sent since the last Configure-Ack sent
//!   or the start of the negotiation; once reached, the [`Negotiator`] is asked
//!   to Reject instead of Nak (§4.6);
//! * Code-Reject of codes 1–7 is catastrophic (RXJ-); of anything else it is
//!   permitted (RXJ+) (§5.7).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::frame::Protocol;
use crate::wire::{self, Packet, RawOption};

/// Automaton states (RFC 1661 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// 0: lower layer down, no Open.
    Initial,
    /// 1: Open, lower layer down.
    Starting,
    /// 2: lower layer up, no Open.
    Closed,
    /// 3: waiting for the peer after termination or failure.
    Stopped,
    /// 4: Terminate-Request sent, closing.
    Closing,
    /// 5: Terminate-Request sent, stopping.
    Stopping,
    /// 6: Configure-Request sent.
    ReqSent,
    /// 7: Configure-Ack received.
    AckRcvd,
    /// 8: Configure-Ack sent.
    AckSent,
    /// 9: both Acks exchanged.
    Opened,
}

impl State {
    /// All states in RFC order (0..=9).
    pub const ALL: [State; 10] = [
        State::Initial,
        State::Starting,
        State::Closed,
        State::Stopped,
        State::Closing,
        State::Stopping,
        State::ReqSent,
        State::AckRcvd,
        State::AckSent,
        State::Opened,
    ];

    fn negotiating(self) -> bool {
        matches!(self, State::ReqSent | State::AckRcvd | State::AckSent)
    }
}

/// Automaton events (RFC 1661 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// Lower layer is Up.
    Up,
    /// Lower layer is Down.
    Down,
    /// Administrative Open.
    Open,
    /// Administrative Close.
    Close,
    /// Timeout with counter > 0.
    ToPlus,
    /// Timeout with counter expired.
    ToMinus,
    /// Receive-Configure-Request (Good).
    RcrPlus,
    /// Receive-Configure-Request (Bad).
    RcrMinus,
    /// Receive-Configure-Ack.
    Rca,
    /// Receive-Configure-Nak/Rej.
    Rcn,
    /// Receive-Terminate-Request.
    Rtr,
    /// Receive-Terminate-Ack.
    Rta,
    /// Receive-Unknown-Code.
    Ruc,
    /// Receive-Code-Reject (permitted) or Receive-Protocol-Reject.
    RxjPlus,
    /// Receive-Code-Reject (catastrophic) or Receive-Protocol-Reject.
    RxjMinus,
    /// Receive-Echo-Request, Receive-Echo-Reply or Receive-Discard-Request.
    Rxr,
}

impl Event {
    /// All events in RFC order.
    pub const ALL: [Event; 16] = [
        Event::Up,
        Event::Down,
        Event::Open,
        Event::Close,
        Event::ToPlus,
        Event::ToMinus,
        Event::RcrPlus,
        Event::RcrMinus,
        Event::Rca,
        Event::Rcn,
        Event::Rtr,
        Event::Rta,
        Event::Ruc,
        Event::RxjPlus,
        Event::RxjMinus,
        Event::Rxr,
    ];
}

/// Automaton actions (RFC 1661 §4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// This-Layer-Up.
    Tlu,
    /// This-Layer-Down.
    Tld,
    /// This-Layer-Started.
    Tls,
    /// This-Layer-Finished.
    Tlf,
    /// Initialize-Restart-Count.
    Irc,
    /// Zero-Restart-Count.
    Zrc,
    /// Send-Configure-Request.
    Scr,
    /// Send-Configure-Ack.
    Sca,
    /// Send-Configure-Nak/Rej.
    Scn,
    /// Send-Terminate-Request.
    Str,
    /// Send-Terminate-Ack.
    Sta,
    /// Send-Code-Reject.
    Scj,
    /// Send-Echo-Reply.
    Ser,
}

/// The RFC 1661 §4.1 state transition table. `None` is the table's "-"
/// (an event that cannot occur in that state); such events are ignored.
pub fn transition(state: State, event: Event) -> Option<(&'static [Action], State)> {
    use Action::*;
    use Event as E;
    use State as S;
    let r: (&'static [Action], State) = match (state, event) {
        // Initial (0)
        (S::Initial, E::Up) => (&[], S::Closed),
        (S::Initial, E::Open) => (&[Tls], S::Starting),
        (S::Initial, E::Close) => (&[], S::Initial),
        (S::Initial, _) => return None,
        // Starting (1)
        (S::Starting, E::Up) => (&[Irc, Scr], S::ReqSent),
        (S::Starting, E::Open) => (&[], S::Starting),
        (S::Starting, E::Close) => (&[Tlf], S::Initial),
        (S::Starting, _) => return None,
        // Up never occurs once the lower layer is up.
        (_, E::Up) => return None,
        // Down
        (S::Closed, E::Down) => (&[], S::Initial),
        (S::Stopped, E::Down) => (&[Tls], S::Starting),
        (S::Closing, E::Down) => (&[], S::Initial),
        (S::Stopping | S::ReqSent | S::AckRcvd | S::AckSent, E::Down) => (&[], S::Starting),
        (S::Opened, E::Down) => (&[Tld], S::Starting),
        // Open
        (S::Closed, E::Open) => (&[Irc, Scr], S::ReqSent),
        (s, E::Open) => (&[], if s == S::Closing { S::Stopping } else { s }),
        // Close
        (S::Closed | S::Stopped, E::Close) => (&[], S::Closed),
        (S::Closing | S::Stopping, E::Close) => (&[], S::Closing),
        (S::ReqSent | S::AckRcvd | S::AckSent, E::Close) => (&[Irc, Str], S::Closing),
        (S::Opened, E::Close) => (&[Tld, Irc, Str], S::Closing),
        // TO+
        (S::Closing, E::ToPlus) => (&[Str], S::Closing),
        (S::Stopping, E::ToPlus) => (&[Str], S::Stopping),
        (S::ReqSent | S::AckRcvd, E::ToPlus) => (&[Scr], S::ReqSent),
        (S::AckSent, E::ToPlus) => (&[Scr], S::AckSent),
        // TO-
        (S::Closing, E::ToMinus) => (&[Tlf], S::Closed),
        (S::Stopping | S::ReqSent | S::AckRcvd | S::AckSent, E::ToMinus) => (&[Tlf], S::Stopped),
        (_, E::ToPlus | E::ToMinus) => return None,
        // RCR+
        (S::Closed, E::RcrPlus | E::RcrMinus | E::Rca | E::Rcn) => (&[Sta], S::Closed),
        (S::Stopped, E::RcrPlus) => (&[Irc, Scr, Sca], S::AckSent),
        (S::Stopped, E::RcrMinus) => (&[Irc, Scr, Scn], S::ReqSent),
        (S::Stopped, E::Rca | E::Rcn) => (&[Sta], S::Stopped),
        (S::Closing | S::Stopping, E::RcrPlus | E::RcrMinus | E::Rca | E::Rcn) => (&[], state),
        (S::ReqSent, E::RcrPlus) => (&[Sca], S::AckSent),
        (S::AckRcvd, E::RcrPlus) => (&[Sca, Tlu], S::Opened),
        (S::AckSent, E::RcrPlus) => (&[Sca], S::AckSent),
        (S::Opened, E::RcrPlus) => (&[Tld, Scr, Sca], S::AckSent),
        // RCR-
        (S::ReqSent, E::RcrMinus) => (&[Scn], S::ReqSent),
        (S::AckRcvd, E::RcrMinus) => (&[Scn], S::AckRcvd),
        (S::AckSent, E::RcrMinus) => (&[Scn], S::ReqSent),
        (S::Opened, E::RcrMinus) => (&[Tld, Scr, Scn], S::ReqSent),
        // RCA
        (S::ReqSent, E::Rca) => (&[Irc], S::AckRcvd),
        (S::AckRcvd, E::Rca) => (&[Scr], S::ReqSent),
        (S::AckSent, E::Rca) => (&[Irc, Tlu], S::Opened),
        (S::Opened, E::Rca) => (&[Tld, Scr], S::ReqSent),
        // RCN
        (S::ReqSent, E::Rcn) => (&[Irc, Scr], S::ReqSent),
        (S::AckRcvd, E::Rcn) => (&[Scr], S::ReqSent),
        (S::AckSent, E::Rcn) => (&[Irc, Scr], S::AckSent),
        (S::Opened, E::Rcn) => (&[Tld, Scr], S::ReqSent),
        // RTR
        (S::AckRcvd | S::AckSent, E::Rtr) => (&[Sta], S::ReqSent),
        (S::Opened, E::Rtr) => (&[Tld, Zrc, Sta], S::Stopping),
        (s, E::Rtr) => (&[Sta], s),
        // RTA
        (S::Closing, E::Rta) => (&[Tlf], S::Closed),
        (S::Stopping, E::Rta) => (&[Tlf], S::Stopped),
        (S::AckRcvd, E::Rta) => (&[], S::ReqSent),
        (S::Opened, E::Rta) => (&[Tld, Scr], S::ReqSent),
        (s, E::Rta) => (&[], s),
        // RUC
        (s, E::Ruc) => (&[Scj], s),
        // RXJ+
        (S::AckRcvd, E::RxjPlus) => (&[], S::ReqSent),
        (s, E::RxjPlus) => (&[], s),
        // RXJ-
        (S::Closed | S::Closing, E::RxjMinus) => (&[Tlf], S::Closed),
        (S::Stopped | S::Stopping | S::ReqSent | S::AckRcvd | S::AckSent, E::RxjMinus) => {
            (&[Tlf], S::Stopped)
        }
        (S::Opened, E::RxjMinus) => (&[Tld, Irc, Str], S::Stopping),
        // RXR
        (S::Opened, E::Rxr) => (&[Ser], S::Opened),
        (s, E::Rxr) => (&[], s),
    };
    Some(r)
}

/// Timer and counter settings (RFC 1661 §4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsmConfig {
    /// Restart timer period (default 3 s).
    pub restart: Duration,
    /// Max-Terminate: Terminate-Requests sent without an Ack (default 2).
    pub max_terminate: u32,
    /// Max-Configure: Configure-Requests sent without a valid reply (default 10).
    pub max_configure: u32,
    /// Max-Failure: Configure-Naks sent before Naks become Rejects (default 5).
    pub max_failure: u32,
}

impl Default for FsmConfig {
    fn default() -> Self {
        FsmConfig {
            restart: Duration::from_secs(3),
            max_terminate: 2,
            max_configure: 10,
            max_failure: 5,
        }
    }
}

/// What a [`Negotiator`] decided about a received Configure-Request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReqVerdict {
    /// Every option acceptable: send Configure-Ack (RCR+).
    Ack,
    /// Send Configure-Nak with the reply options (RCR-).
    Nak,
    /// Send Configure-Reject with the reply options (RCR-).
    Reject,
}

/// The protocol-specific half of a control protocol (LCP, IPCP, IPv6CP).
pub trait Negotiator {
    /// Starts a negotiation afresh: restore the options we want to request.
    fn reset(&mut self);
    /// Appends the options of our next Configure-Request.
    fn build_request(&mut self, out: &mut Vec<u8>);
    /// Judges a peer's Configure-Request. For Nak and Reject, writes the
    /// options to send back into `reply` (for Ack, `reply` is ignored and the
    /// request is echoed). `reject_if_disagree` is set once Max-Failure Naks
    /// were sent: Naks must then become Rejects where possible.
    fn check_request(
        &mut self,
        opts: &[RawOption<'_>],
        reject_if_disagree: bool,
        reply: &mut Vec<u8>,
    ) -> ReqVerdict;
    /// Our request (options as sent) was acknowledged.
    fn ack_received(&mut self, _opts: &[u8]) {}
    /// A Configure-Nak for our last request; return false if it is invalid
    /// (the packet is then silently discarded).
    fn nak_received(&mut self, opts: &[RawOption<'_>]) -> bool;
    /// A Configure-Reject for our last request; return false if invalid
    /// (e.g. it names options we did not send).
    fn reject_received(&mut self, opts: &[RawOption<'_>]) -> bool;
}

/// Layer events the automaton reports to the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerEvent {
    /// This-Layer-Up.
    Up,
    /// This-Layer-Down.
    Down,
    /// This-Layer-Started.
    Started,
    /// This-Layer-Finished.
    Finished,
}

/// Where the automaton puts its output.
#[derive(Debug, Default)]
pub struct Out {
    /// Complete PPP frames to transmit, in order.
    pub frames: VecDeque<Vec<u8>>,
    /// Layer events, in order.
    pub layer: VecDeque<(Protocol, LayerEvent)>,
}

/// Control packet codes shared by all control protocols (RFC 1661 §5).
pub mod code {
    /// Configure-Request.
    pub const CONF_REQ: u8 = 1;
    /// Configure-Ack.
    pub const CONF_ACK: u8 = 2;
    /// Configure-Nak.
    pub const CONF_NAK: u8 = 3;
    /// Configure-Reject.
    pub const CONF_REJ: u8 = 4;
    /// Terminate-Request.
    pub const TERM_REQ: u8 = 5;
    /// Terminate-Ack.
    pub const TERM_ACK: u8 = 6;
    /// Code-Reject.
    pub const CODE_REJ: u8 = 7;
}

/// Largest Code-Reject data we send (a rejected packet is truncated to it).
const MAX_REJECT_DATA: usize = 1500 - 8;

/// Data an action needs from the event that triggered it.
#[derive(Default)]
struct Ctx<'a> {
    rcvd_id: u8,
    /// For Sca/Scn: the code and options to send back.
    reply: Option<(u8, &'a [u8])>,
    /// For Scj: the received packet.
    rejected: &'a [u8],
}

/// One running instance of the automaton.
#[derive(Debug, Clone)]
pub struct Fsm {
    protocol: Protocol,
    state: State,
    cfg: FsmConfig,
    restart_count: u32,
    naks_sent: u32,
    timer: Option<Instant>,
    next_id: u8,
    req_id: u8,
    seen_ack: bool,
    last_request: Vec<u8>,
    term_data: Vec<u8>,
}

impl Fsm {
    /// A new automaton in the Initial state. `first_id` seeds the Identifier
    /// sequence (use a random value so identifiers differ across sessions).
    pub fn new(protocol: Protocol, cfg: FsmConfig, first_id: u8) -> Self {
        Fsm {
            protocol,
            state: State::Initial,
            cfg,
            restart_count: 0,
            naks_sent: 0,
            timer: None,
            next_id: first_id,
            req_id: 0,
            seen_ack: false,
            last_request: Vec::new(),
            term_data: Vec::new(),
        }
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The protocol this automaton runs.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// When the Restart timer expires, if running.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timer
    }

    /// Allocates a fresh Identifier (also used by LCP for Echo/Protocol-Reject).
    pub fn take_id(&mut self) -> u8 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    /// Lower layer Up.
    pub fn up(&mut self, now: Instant, neg: &mut dyn Negotiator, out: &mut Out) {
        self.run(now, Event::Up, Ctx::default(), neg, out);
    }

    /// Lower layer Down.
    pub fn down(&mut self, now: Instant, neg: &mut dyn Negotiator, out: &mut Out) {
        self.run(now, Event::Down, Ctx::default(), neg, out);
    }

    /// Administrative Open.
    pub fn open(&mut self, now: Instant, neg: &mut dyn Negotiator, out: &mut Out) {
        self.run(now, Event::Open, Ctx::default(), neg, out);
    }

    /// Administrative Close; `reason` goes into the Terminate-Request data.
    pub fn close(&mut self, now: Instant, reason: &[u8], neg: &mut dyn Negotiator, out: &mut Out) {
        self.term_data = reason.to_vec();
        self.run(now, Event::Close, Ctx::default(), neg, out);
    }

    /// Feeds a Protocol-Reject of this protocol (or another catastrophic
    /// rejection) as RXJ-.
    pub fn rejected(&mut self, now: Instant, neg: &mut dyn Negotiator, out: &mut Out) {
        self.run(now, Event::RxjMinus, Ctx::default(), neg, out);
    }

    /// Feeds RXJ+ (a permitted Code-Reject or Protocol-Reject).
    pub fn rejected_permitted(&mut self, now: Instant, neg: &mut dyn Negotiator, out: &mut Out) {
        self.run(now, Event::RxjPlus, Ctx::default(), neg, out);
    }

    /// Fires the Restart timer if it has expired.
    pub fn handle_timeout(&mut self, now: Instant, neg: &mut dyn Negotiator, out: &mut Out) {
        match self.timer {
            Some(t) if t <= now => {
                self.timer = None;
                let ev = if self.restart_count > 0 {
                    Event::ToPlus
                } else {
                    Event::ToMinus
                };
                self.run(now, ev, Ctx::default(), neg, out);
            }
            _ => {}
        }
    }

    /// Sends Code-Reject for a packet with an unknown code (RUC).
    pub fn unknown_code(
        &mut self,
        now: Instant,
        packet: &[u8],
        neg: &mut dyn Negotiator,
        out: &mut Out,
    ) {
        let ctx = Ctx {
            rejected: packet,
            ..Ctx::default()
        };
        self.run(now, Event::Ruc, ctx, neg, out);
    }

    /// Handles a received control packet (the frame's information field).
    /// Codes 1–7 are consumed; a packet with another code is returned for the
    /// caller to handle (LCP's Echo etc.) or to pass to [`Fsm::unknown_code`].
    /// Malformed packets are silently discarded (returns `None`).
    pub fn receive<'p>(
        &mut self,
        now: Instant,
        payload: &'p [u8],
        neg: &mut dyn Negotiator,
        out: &mut Out,
    ) -> Option<Packet<'p>> {
        let pkt = Packet::parse(payload).ok()?;
        if matches!(self.state, State::Initial | State::Starting) {
            // Lower layer is not up: nothing can be received (table "-").
            return None;
        }
        let base = Ctx {
            rcvd_id: pkt.id,
            ..Ctx::default()
        };
        match pkt.code {
            code::CONF_REQ => {
                let ev_state = self.state;
                if matches!(ev_state, State::Closed | State::Closing | State::Stopping) {
                    // The table says sta / ignore without judging the options.
                    self.run(now, Event::RcrPlus, base, neg, out);
                    return None;
                }
                let opts = wire::parse_options(pkt.data).ok()?;
                // A Stopped automaton starts a negotiation afresh (irc, scr):
                // reset before judging so the judgement sees fresh state.
                let mut reply = Vec::new();
                let verdict =
                    neg.check_request(&opts, self.naks_sent >= self.cfg.max_failure, &mut reply);
                let (ev, reply) = match verdict {
                    ReqVerdict::Ack => (Event::RcrPlus, (code::CONF_ACK, pkt.data)),
                    ReqVerdict::Nak => (Event::RcrMinus, (code::CONF_NAK, &reply[..])),
                    ReqVerdict::Reject => (Event::RcrMinus, (code::CONF_REJ, &reply[..])),
                };
                let ctx = Ctx {
                    reply: Some(reply),
                    ..base
                };
                self.run(now, ev, ctx, neg, out);
            }
            code::CONF_ACK | code::CONF_NAK | code::CONF_REJ => {
                let answering = matches!(
                    self.state,
                    State::ReqSent | State::AckRcvd | State::AckSent | State::Opened
                );
                if answering {
                    if pkt.id != self.req_id || self.seen_ack {
                        return None;
                    }
                    let ok = match pkt.code {
                        code::CONF_ACK => {
                            if pkt.data != self.last_request.as_slice() {
                                false
                            } else {
                                neg.ack_received(pkt.data);
                                true
                            }
                        }
                        code::CONF_NAK => match wire::parse_options(pkt.data) {
                            Ok(o) => neg.nak_received(&o),
                            Err(_) => false,
                        },
                        _ => match wire::parse_options(pkt.data) {
                            Ok(o) => neg.reject_received(&o),
                            Err(_) => false,
                        },
                    };
                    if !ok {
                        return None;
                    }
                    if pkt.code == code::CONF_ACK {
                        self.seen_ack = true;
                    } else {
                        // A valid Nak/Reject answers this request; a
                        // duplicate must not be applied twice.
                        self.seen_ack = true;
                    }
                }
                let ev = if pkt.code == code::CONF_ACK {
                    Event::Rca
                } else {
                    Event::Rcn
                };
                self.run(now, ev, base, neg, out);
            }
            code::TERM_REQ => self.run(now, Event::Rtr, base, neg, out),
            code::TERM_ACK => self.run(now, Event::Rta, base, neg, out),
            code::CODE_REJ => {
                let rejected_code = pkt.data.first().copied()?;
                let ev = if (1..=7).contains(&rejected_code) {
                    Event::RxjMinus
                } else {
                    Event::RxjPlus
                };
                self.run(now, ev, base, neg, out);
            }
            _ => return Some(pkt),
        }
        None
    }

    fn run(
        &mut self,
        now: Instant,
        ev: Event,
        ctx: Ctx<'_>,
        neg: &mut dyn Negotiator,
        out: &mut Out,
    ) {
        let Some((actions, next)) = transition(self.state, ev) else {
            return;
        };
        let before = self.state;
        for a in actions {
            match a {
                Action::Tlu => out.layer.push_back((self.protocol, LayerEvent::Up)),
                Action::Tld => out.layer.push_back((self.protocol, LayerEvent::Down)),
                Action::Tls => out.layer.push_back((self.protocol, LayerEvent::Started)),
                Action::Tlf => out.layer.push_back((self.protocol, LayerEvent::Finished)),
                Action::Irc => {
                    self.restart_count = if matches!(next, State::Closing | State::Stopping) {
                        self.cfg.max_terminate
                    } else {
                        self.cfg.max_configure
                    };
                }
                Action::Zrc => {
                    self.restart_count = 0;
                    self.timer = Some(now + self.cfg.restart);
                }
                Action::Scr => {
                    if !before.negotiating() {
                        neg.reset();
                        self.naks_sent = 0;
                    }
                    let mut opts = Vec::new();
                    neg.build_request(&mut opts);
                    self.req_id = self.take_id();
                    self.seen_ack = false;
                    out.frames.push_back(wire::control_frame(
                        self.protocol,
                        code::CONF_REQ,
                        self.req_id,
                        &opts,
                    ));
                    self.last_request = opts;
                    self.restart_count = self.restart_count.saturating_sub(1);
                    self.timer = Some(now + self.cfg.restart);
                }
                Action::Sca | Action::Scn => {
                    if let Some((c, data)) = ctx.reply {
                        match c {
                            code::CONF_ACK => self.naks_sent = 0,
                            code::CONF_NAK => self.naks_sent = self.naks_sent.saturating_add(1),
                            _ => {}
                        }
                        out.frames.push_back(wire::control_frame(
                            self.protocol,
                            c,
                            ctx.rcvd_id,
                            data,
                        ));
                    }
                }
                Action::Str => {
                    let id = self.take_id();
                    out.frames.push_back(wire::control_frame(
                        self.protocol,
                        code::TERM_REQ,
                        id,
                        &self.term_data,
                    ));
                    self.restart_count = self.restart_count.saturating_sub(1);
                    self.timer = Some(now + self.cfg.restart);
                }
                Action::Sta => {
                    out.frames.push_back(wire::control_frame(
                        self.protocol,
                        code::TERM_ACK,
                        ctx.rcvd_id,
                        &[],
                    ));
                }
                Action::Scj => {
                    let id = self.take_id();
                    let data = &ctx.rejected[..ctx.rejected.len().min(MAX_REJECT_DATA)];
                    out.frames.push_back(wire::control_frame(
                        self.protocol,
                        code::CODE_REJ,
                        id,
                        data,
                    ));
                }
                // Echo-Reply needs LCP's magic number: LCP answers Echo-Requests itself.
                Action::Ser => {}
            }
        }
        self.state = next;
        if matches!(
            next,
            State::Initial | State::Starting | State::Closed | State::Stopped | State::Opened
        ) {
            self.timer = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1661 §4.1, cell for cell as printed in the RFC (split in two here).
    const RFC_TABLE_1: &str = "
      | State
      |    0         1
Events| Initial   Starting
------+-----------------
 Up   |    2     irc,scr/6
 Down |    -         -
 Open |  tls/1       1
 Close|    0       tlf/0
  TO+ |    -         -
  TO- |    -         -
 RCR+ |    -         -
 RCR- |    -         -
 RCA  |    -         -
 RCN  |    -         -
 RTR  |    -         -
 RTA  |    -         -
 RUC  |    -         -
 RXJ+ |    -         -
 RXJ- |    -         -
 RXR  |    -         -
";

    const RFC_TABLE_2: &str = "
      | State
      |    2         3         4         5         6         7         8           9
Events| Closed    Stopped   Closing   Stopping  Req-Sent  Ack-Rcvd  Ack-Sent    Opened
------+-----------------------------------------------------------------------------
 Up   |    -         -         -         -         -         -         -           -
 Down |    0       tls/1       0         1         1         1         1         tld/1
 Open | irc,scr/6   3r        5r        5r        6         7         8           9r
 Close|    2         2         4         4    irc,str/4 irc,str/4 irc,str/4 tld,irc,str/4
  TO+ |    -         -       str/4     str/5     scr/6     scr/6     scr/8         -
  TO- |    -         -       tlf/2     tlf/3     tlf/3p    tlf/3p    tlf/3p        -
 RCR+ |  sta/2 irc,scr,sca/8   4         5       sca/8   sca,tlu/9   sca/8   tld,scr,sca/8
 RCR- |  sta/2 irc,scr,scn/6   4         5       scn/6     scn/7     scn/6   tld,scr,scn/6
 RCA  |  sta/2     sta/3       4         5       irc/7     scr/6x  irc,tlu/9   tld,scr/6x
 RCN  |  sta/2     sta/3       4         5     irc,scr/6   scr/6x  irc,scr/8   tld,scr/6x
 RTR  |  sta/2     sta/3     sta/4     sta/5     sta/6     sta/6     sta/6   tld,zrc,sta/5
 RTA  |    2         3       tlf/2     tlf/3       6         6         8       tld,scr/6
 RUC  |  scj/2     scj/3     scj/4     scj/5     scj/6     scj/7     scj/8       scj/9
 RXJ+ |    2         3         4         5         6         6         8           9
 RXJ- |  tlf/2     tlf/3     tlf/2     tlf/3     tlf/3     tlf/3     tlf/3   tld,irc,str/5
 RXR  |    2         3         4         5         6         7         8         ser/9
";

    fn parse_cell(cell: &str) -> Option<(Vec<Action>, State)> {
        if cell == "-" {
            return None;
        }
        let (acts, st) = match cell.rsplit_once('/') {
            Some((a, s)) => (a, s),
            None => ("", cell),
        };
        let digit: usize = st.trim_end_matches(['r', 'p', 'x']).parse().unwrap();
        let actions = acts
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|a| match a {
                "tlu" => Action::Tlu,
                "tld" => Action::Tld,
                "tls" => Action::Tls,
                "tlf" => Action::Tlf,
                "irc" => Action::Irc,
                "zrc" => Action::Zrc,
                "scr" => Action::Scr,
                "sca" => Action::Sca,
                "scn" => Action::Scn,
                "str" => Action::Str,
                "sta" => Action::Sta,
                "scj" => Action::Scj,
                "ser" => Action::Ser,
                other => panic!("unknown action {other}"),
            })
            .collect();
        Some((actions, State::ALL[digit]))
    }

    fn check_table(text: &str, first_state: usize) -> usize {
        let mut checked = 0;
        for line in text.lines() {
            let Some((ev, cells)) = line.split_once('|') else {
                continue;
            };
            let ev = match ev.trim() {
                "Up" => Event::Up,
                "Down" => Event::Down,
                "Open" => Event::Open,
                "Close" => Event::Close,
                "TO+" => Event::ToPlus,
                "TO-" => Event::ToMinus,
                "RCR+" => Event::RcrPlus,
                "RCR-" => Event::RcrMinus,
                "RCA" => Event::Rca,
                "RCN" => Event::Rcn,
                "RTR" => Event::Rtr,
                "RTA" => Event::Rta,
                "RUC" => Event::Ruc,
                "RXJ+" => Event::RxjPlus,
                "RXJ-" => Event::RxjMinus,
                "RXR" => Event::Rxr,
                _ => continue,
            };
            for (i, cell) in cells.split_whitespace().enumerate() {
                let state = State::ALL[first_state + i];
                let want = parse_cell(cell);
                let got = transition(state, ev).map(|(a, s)| (a.to_vec(), s));
                assert_eq!(got, want, "state {state:?} event {ev:?} (cell {cell})");
                checked += 1;
            }
        }
        checked
    }

    #[test]
    fn rfc1661_table() {
        assert_eq!(check_table(RFC_TABLE_1, 0), 32);
        assert_eq!(check_table(RFC_TABLE_2, 2), 128);
    }

    /// A negotiator with one 1-byte option (type 1): it requests `want`,
    /// accepts only `accept` from the peer and adopts Nak'd values.
    struct Toy {
        want: u8,
        initial: u8,
        accept: u8,
        requesting: bool,
        rejects: u32,
    }

    impl Negotiator for Toy {
        fn reset(&mut self) {
            self.want = self.initial;
            self.requesting = true;
        }
        fn build_request(&mut self, out: &mut Vec<u8>) {
            if self.requesting {
                RawOption {
                    kind: 1,
                    data: &[self.want],
                }
                .emit(out);
            }
        }
        fn check_request(
            &mut self,
            opts: &[RawOption<'_>],
            rej: bool,
            reply: &mut Vec<u8>,
        ) -> ReqVerdict {
            for o in opts {
                if o.kind != 1 || o.data != [self.accept] {
                    if rej {
                        self.rejects += 1;
                        o.emit(reply);
                        return ReqVerdict::Reject;
                    }
                    RawOption {
                        kind: 1,
                        data: &[self.accept],
                    }
                    .emit(reply);
                    return ReqVerdict::Nak;
                }
            }
            ReqVerdict::Ack
        }
        fn nak_received(&mut self, opts: &[RawOption<'_>]) -> bool {
            for o in opts {
                if let [v] = o.data {
                    self.want = *v;
                }
            }
            true
        }
        fn reject_received(&mut self, _opts: &[RawOption<'_>]) -> bool {
            self.requesting = false;
            true
        }
    }

    fn toy(want: u8, accept: u8) -> Toy {
        Toy {
            want,
            initial: want,
            accept,
            requesting: true,
            rejects: 0,
        }
    }

    fn payload(frame: &[u8]) -> &[u8] {
        &frame[4..]
    }

    /// Runs two automata back to back until quiet; returns frames exchanged.
    fn pump(
        t: Instant,
        a: &mut Fsm,
        na: &mut Toy,
        oa: &mut Out,
        b: &mut Fsm,
        nb: &mut Toy,
        ob: &mut Out,
    ) -> usize {
        let mut n = 0;
        while !oa.frames.is_empty() || !ob.frames.is_empty() {
            while let Some(f) = oa.frames.pop_front() {
                n += 1;
                b.receive(t, payload(&f), nb, ob);
            }
            while let Some(f) = ob.frames.pop_front() {
                n += 1;
                a.receive(t, payload(&f), na, oa);
            }
            assert!(n < 1000, "no convergence");
        }
        n
    }

    #[test]
    fn two_automata_open_and_close() {
        let t = Instant::now();
        let cfg = FsmConfig::default();
        let (mut a, mut b) = (
            Fsm::new(Protocol::Lcp, cfg, 1),
            Fsm::new(Protocol::Lcp, cfg, 100),
        );
        let (mut na, mut nb) = (toy(5, 7), toy(7, 5));
        let (mut oa, mut ob) = (Out::default(), Out::default());
        a.open(t, &mut na, &mut oa);
        b.open(t, &mut nb, &mut ob);
        assert_eq!(a.state(), State::Starting);
        a.up(t, &mut na, &mut oa);
        b.up(t, &mut nb, &mut ob);
        pump(t, &mut a, &mut na, &mut oa, &mut b, &mut nb, &mut ob);
        assert_eq!((a.state(), b.state()), (State::Opened, State::Opened));
        assert!(a.poll_timeout().is_none());
        assert!(oa.layer.contains(&(Protocol::Lcp, LayerEvent::Up)));
        a.close(t, b"bye", &mut na, &mut oa);
        assert_eq!(a.state(), State::Closing);
        pump(t, &mut a, &mut na, &mut oa, &mut b, &mut nb, &mut ob);
        assert_eq!(a.state(), State::Closed);
        assert_eq!(b.state(), State::Stopping);
        // b waits one restart period in Stopping, then finishes.
        b.handle_timeout(t + cfg.restart, &mut nb, &mut ob);
        assert_eq!(b.state(), State::Stopped);
        assert_eq!(
            ob.layer.back(),
            Some(&(Protocol::Lcp, LayerEvent::Finished))
        );
    }

    #[test]
    fn nak_adopted_and_restart_timer_retransmits() {
        let t = Instant::now();
        let cfg = FsmConfig {
            max_configure: 3,
            ..FsmConfig::default()
        };
        let mut a = Fsm::new(Protocol::Ipcp, cfg, 1);
        let mut na = toy(5, 7);
        let mut oa = Out::default();
        a.up(t, &mut na, &mut oa);
        a.open(t, &mut na, &mut oa);
        assert_eq!(oa.frames.len(), 1);
        // No answer: 2 more retransmissions, then TO- -> Stopped + Finished.
        let mut now;
        for _ in 0..2 {
            now = a.poll_timeout().unwrap();
            a.handle_timeout(now, &mut na, &mut oa);
        }
        assert_eq!(oa.frames.len(), 3);
        assert_eq!(a.state(), State::ReqSent);
        now = a.poll_timeout().unwrap();
        a.handle_timeout(now, &mut na, &mut oa);
        assert_eq!(a.state(), State::Stopped);
        assert_eq!(
            oa.layer.back(),
            Some(&(Protocol::Ipcp, LayerEvent::Finished))
        );
        assert_eq!(now, t + cfg.restart * 3);
    }

    #[test]
    fn ack_must_match_request_exactly_and_duplicates_are_ignored() {
        let t = Instant::now();
        let mut a = Fsm::new(Protocol::Ipcp, FsmConfig::default(), 1);
        let mut na = toy(5, 7);
        let mut oa = Out::default();
        a.up(t, &mut na, &mut oa);
        a.open(t, &mut na, &mut oa);
        let req = oa.frames.pop_front().unwrap();
        let id = req[5];
        // Wrong id, wrong options: discarded.
        a.receive(t, &[2, id.wrapping_add(1), 0, 7, 1, 3, 5], &mut na, &mut oa);
        a.receive(t, &[2, id, 0, 7, 1, 3, 6], &mut na, &mut oa);
        assert_eq!(a.state(), State::ReqSent);
        a.receive(t, &[2, id, 0, 7, 1, 3, 5], &mut na, &mut oa);
        assert_eq!(a.state(), State::AckRcvd);
        // A duplicate Ack must not drive AckRcvd -> ReqSent.
        a.receive(t, &[2, id, 0, 7, 1, 3, 5], &mut na, &mut oa);
        assert_eq!(a.state(), State::AckRcvd);
    }

    #[test]
    fn max_failure_turns_naks_into_rejects() {
        let t = Instant::now();
        let cfg = FsmConfig {
            max_failure: 2,
            ..FsmConfig::default()
        };
        let mut a = Fsm::new(Protocol::Ipcp, cfg, 1);
        let mut na = toy(5, 7);
        let mut oa = Out::default();
        a.up(t, &mut na, &mut oa);
        a.open(t, &mut na, &mut oa);
        oa.frames.clear();
        let codes: Vec<u8> = (0..4)
            .map(|i| {
                a.receive(t, &[1, i, 0, 7, 1, 3, 9], &mut na, &mut oa);
                oa.frames.pop_back().unwrap()[4]
            })
            .collect();
        assert_eq!(codes, vec![3, 3, 4, 4]);
        assert_eq!(na.rejects, 2);
    }

    #[test]
    fn unknown_code_is_code_rejected_and_catastrophic_code_reject_stops() {
        let t = Instant::now();
        let mut a = Fsm::new(Protocol::Ipv6cp, FsmConfig::default(), 1);
        let mut na = toy(5, 7);
        let mut oa = Out::default();
        a.up(t, &mut na, &mut oa);
        a.open(t, &mut na, &mut oa);
        oa.frames.clear();
        let unknown = [42u8, 9, 0, 5, 0xEE];
        let back = a.receive(t, &unknown, &mut na, &mut oa).unwrap();
        a.unknown_code(t, &unknown, &mut na, &mut oa);
        assert_eq!(back.code, 42);
        let f = oa.frames.pop_front().unwrap();
        assert_eq!(&f[..5], &[0xFF, 0x03, 0x80, 0x57, code::CODE_REJ]);
        assert_eq!(&f[8..], &unknown);
        // Code-Reject of Echo-style codes is permitted; of Configure-Request is not.
        a.receive(t, &[7, 1, 0, 8, 9, 1, 0, 4], &mut na, &mut oa);
        assert_eq!(a.state(), State::ReqSent);
        a.receive(t, &[7, 2, 0, 8, 1, 1, 0, 4], &mut na, &mut oa);
        assert_eq!(a.state(), State::Stopped);
    }

    #[test]
    fn closed_answers_everything_with_terminate_ack() {
        let t = Instant::now();
        let mut a = Fsm::new(Protocol::Lcp, FsmConfig::default(), 1);
        let mut na = toy(5, 7);
        let mut oa = Out::default();
        a.up(t, &mut na, &mut oa);
        assert_eq!(a.state(), State::Closed);
        a.receive(t, &[1, 77, 0, 4], &mut na, &mut oa);
        let f = oa.frames.pop_front().unwrap();
        assert_eq!(&f[4..], &[code::TERM_ACK, 77, 0, 4]);
        // Before Up nothing is processed.
        let mut b = Fsm::new(Protocol::Lcp, FsmConfig::default(), 1);
        b.receive(t, &[1, 77, 0, 4], &mut na, &mut oa);
        assert!(oa.frames.is_empty());
    }
}
