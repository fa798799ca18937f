//! LCP option negotiation (RFC 1661 §6) and packet codes (§5.7–§5.9).
//!
//! Options we handle:
//! * MRU (1): requested only when ours differs from 1500; a Nak of ours
//!   with a value from 128 up to ours (or 1500) is asked for next, any other
//!   Nak or a Reject stops the request (the peer assumes 1500); each new
//!   negotiation asks for the configured value again. A peer MRU below 128
//!   is Nak'd with 128; the peer's MRU limits the IP packets we send.
//! * ACCM (2): meaningless on a frame-based (SSTP) link — no byte stuffing
//!   happens — so any value is acknowledged and ignored; never requested.
//! * Authentication-Protocol (3): the authenticator requests methods from an
//!   ordered list and, when the peer Naks, moves to the method the peer
//!   suggested if it is in the list and not yet tried, else to the next one;
//!   the list is offered a second time (a peer may accept on the second
//!   offer what it Nak'd hoping for better, as our client does with EAP);
//!   when it is exhausted again, or the peer Rejects the option, the link is
//!   closed (we never open a link without the authentication we require).
//!   The peer side Acks a method it has credentials for and allows, and Naks
//!   with its preferred one otherwise — except that EAP is Acked only if EAP
//!   is first in its list (SoftEther and RRAS offer EAP-TLS/PEAP first; we
//!   answer with MS-CHAPv2, which both then use, like pppd with `refuse-eap`).
//!   An authenticator that then stops asking for authentication at all
//!   (pppd with only `require-eap`) is remembered
//!   ([`crate::Ppp::authenticator_wants_only_eap`]) so that the next
//!   connection puts EAP first.
//! * Magic-Number (5): requested with a random value; a peer request with our
//!   own value is Nak'd with a fresh one and counted as a possible loopback
//!   (§6.4); `max_loopback` counts end the link. If the peer Rejects it
//!   (SoftEther does), we stop sending it and loopback detection is off.
//! * PFC (7) and ACFC (8): acknowledged (we accept compressed frames anyway)
//!   but never requested, and we never compress what we send (see
//!   [`crate::frame`]).
//! * Anything else (Quality-Protocol, Callback, Multilink, ...) is Rejected.

use crate::auth::AuthProtocol;
use crate::fsm::{Negotiator, ReqVerdict};
use crate::rng::SplitMix64;
use crate::wire::RawOption;

/// Echo-Request etc. codes (RFC 1661 §5.7–§5.9; RFC 1570).
pub mod code {
    /// Protocol-Reject.
    pub const PROTOCOL_REJ: u8 = 8;
    /// Echo-Request.
    pub const ECHO_REQ: u8 = 9;
    /// Echo-Reply.
    pub const ECHO_REPLY: u8 = 10;
    /// Discard-Request.
    pub const DISCARD_REQ: u8 = 11;
    /// Identification (RFC 1570; Windows sends it).
    pub const IDENTIFICATION: u8 = 12;
    /// Time-Remaining (RFC 1570).
    pub const TIME_REMAINING: u8 = 13;
}

/// LCP option types.
pub mod opt {
    /// Maximum-Receive-Unit.
    pub const MRU: u8 = 1;
    /// Async-Control-Character-Map.
    pub const ACCM: u8 = 2;
    /// Authentication-Protocol.
    pub const AUTH: u8 = 3;
    /// Quality-Protocol.
    pub const QUALITY: u8 = 4;
    /// Magic-Number.
    pub const MAGIC: u8 = 5;
    /// Protocol-Field-Compression.
    pub const PFC: u8 = 7;
    /// Address-and-Control-Field-Compression.
    pub const ACFC: u8 = 8;
}

/// Smallest peer MRU we accept without Nak (pppd's MINMRU).
pub const MIN_MRU: u16 = 128;
/// The default MRU (RFC 1661 §6.1).
pub const DEFAULT_MRU: u16 = 1500;

/// Which end of the authentication we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Authenticator,
    Peer,
}

#[derive(Debug, Clone)]
pub(crate) struct Lcp {
    side: Side,
    /// Our MRU: the one configured, or the value a peer's Nak suggested.
    mru: u16,
    /// The configured MRU, asked for again at each negotiation.
    configured_mru: u16,
    request_mru: bool,
    use_magic: bool,
    request_magic: bool,
    pub(crate) magic: u32,
    /// Authenticator: the methods to offer, in order. Peer: the methods allowed, in preference order.
    methods: Vec<AuthProtocol>,
    tried: Vec<AuthProtocol>,
    offering: Option<AuthProtocol>,
    /// Peer side: the method the authenticator asked for and we acked.
    peer_auth: Option<AuthProtocol>,
    pub(crate) peer_mru: u16,
    pub(crate) peer_magic: u32,
    pub(crate) loops: u32,
    /// Authenticator: the peer Rejected Authentication-Protocol or refused every method.
    pub(crate) auth_refused: bool,
    /// Peer side: we already Nak'd an EAP offer in this negotiation.
    eap_declined: bool,
    /// Peer side: after our Nak of EAP the authenticator stopped asking for
    /// any method (pppd with only `require-eap` does so, then ends the link
    /// as "peer refused to authenticate"). Kept across restarts: the driver
    /// reads it at the end to offer EAP first on the next connection.
    pub(crate) authenticator_wants_only_eap: bool,
    /// Authenticator: the offer list was gone through once already.
    second_round: bool,
    rng: SplitMix64,
}

impl Lcp {
    pub(crate) fn new(
        side: Side,
        mru: u16,
        use_magic: bool,
        methods: Vec<AuthProtocol>,
        rng: SplitMix64,
    ) -> Self {
        let mut l = Lcp {
            side,
            mru,
            configured_mru: mru,
            request_mru: false,
            use_magic,
            request_magic: false,
            magic: 0,
            methods,
            tried: Vec::new(),
            offering: None,
            peer_auth: None,
            peer_mru: DEFAULT_MRU,
            peer_magic: 0,
            loops: 0,
            auth_refused: false,
            eap_declined: false,
            authenticator_wants_only_eap: false,
            second_round: false,
            rng,
        };
        l.reset();
        l
    }

    /// The authentication method agreed, once LCP is opened.
    pub(crate) fn agreed_auth(&self) -> Option<AuthProtocol> {
        match self.side {
            Side::Authenticator => self.offering,
            Side::Peer => self.peer_auth,
        }
    }

    /// Our magic number as sent in Echo packets (0 if not negotiated).
    pub(crate) fn our_magic(&self) -> u32 {
        if self.request_magic {
            self.magic
        } else {
            0
        }
    }

    fn next_untried(&self) -> Option<AuthProtocol> {
        self.methods
            .iter()
            .copied()
            .find(|m| !self.tried.contains(m))
    }

    fn peer_acceptable(&self, p: AuthProtocol) -> bool {
        if !self.methods.contains(&p) {
            return false;
        }
        p != AuthProtocol::Eap
            || self.methods.first() == Some(&AuthProtocol::Eap)
            || self.eap_declined
    }
}

impl Negotiator for Lcp {
    fn reset(&mut self) {
        self.mru = self.configured_mru;
        self.request_mru = self.mru != DEFAULT_MRU;
        self.request_magic = self.use_magic;
        if self.use_magic {
            self.magic = self.rng.nonzero_u32();
        }
        self.tried.clear();
        self.offering = None;
        self.auth_refused = false;
        self.eap_declined = false;
        self.second_round = false;
        if self.side == Side::Authenticator {
            self.offering = self.next_untried();
            if let Some(m) = self.offering {
                self.tried.push(m);
            }
        }
        // Peer-derived values (peer_auth, peer_mru, peer_magic) are not
        // reset here: a Stopped or Opened automaton judges the peer's request
        // *before* its scr resets our side (RFC 1661 table: irc,scr,sca), and
        // every acknowledged request sets all of them anyway.
        self.loops = 0;
    }

    fn build_request(&mut self, out: &mut Vec<u8>) {
        if self.request_mru {
            RawOption {
                kind: opt::MRU,
                data: &self.mru.to_be_bytes(),
            }
            .emit(out);
        }
        if let Some(m) = self.offering {
            RawOption {
                kind: opt::AUTH,
                data: m.option_data(),
            }
            .emit(out);
        }
        if self.request_magic {
            RawOption {
                kind: opt::MAGIC,
                data: &self.magic.to_be_bytes(),
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
        let (mut naks, mut rejs) = (Vec::new(), Vec::new());
        let mut mru = DEFAULT_MRU;
        let mut magic = 0;
        let mut auth = None;
        for o in opts {
            match (o.kind, o.data) {
                (opt::MRU, &[a, b]) => {
                    let v = u16::from_be_bytes([a, b]);
                    if v < MIN_MRU {
                        if rej {
                            o.emit(&mut rejs);
                        } else {
                            RawOption {
                                kind: opt::MRU,
                                data: &MIN_MRU.to_be_bytes(),
                            }
                            .emit(&mut naks);
                        }
                    } else {
                        mru = v;
                    }
                }
                (opt::ACCM, d) if d.len() == 4 => {}
                (opt::PFC | opt::ACFC, []) => {}
                (opt::MAGIC, &[a, b, c, d]) => {
                    let v = u32::from_be_bytes([a, b, c, d]);
                    if self.request_magic && v == self.magic {
                        // Looped back (or an unlucky collision): Nak with a
                        // fresh value and nothing else (RFC 1661 §6.4).
                        self.loops = self.loops.saturating_add(1);
                        reply.clear();
                        let fresh = self.rng.nonzero_u32();
                        RawOption {
                            kind: opt::MAGIC,
                            data: &fresh.to_be_bytes(),
                        }
                        .emit(reply);
                        return ReqVerdict::Nak;
                    }
                    if v == 0 {
                        // "A Magic-Number of zero is illegal and MUST always be Nak'd".
                        let fresh = self.rng.nonzero_u32();
                        RawOption {
                            kind: opt::MAGIC,
                            data: &fresh.to_be_bytes(),
                        }
                        .emit(&mut naks);
                    } else {
                        magic = v;
                    }
                }
                (opt::AUTH, d) if self.side == Side::Peer => {
                    match AuthProtocol::from_option_data(d) {
                        Some(p) if self.peer_acceptable(p) => auth = Some(p),
                        other => {
                            if other == Some(AuthProtocol::Eap) {
                                self.eap_declined = true;
                            }
                            let pref = self.methods.first().copied();
                            match pref {
                                Some(p) if !rej => RawOption {
                                    kind: opt::AUTH,
                                    data: p.option_data(),
                                }
                                .emit(&mut naks),
                                _ => o.emit(&mut rejs),
                            }
                        }
                    }
                }
                _ => o.emit(&mut rejs),
            }
        }
        if !rejs.is_empty() {
            reply.extend_from_slice(&rejs);
            return ReqVerdict::Reject;
        }
        if !naks.is_empty() {
            reply.extend_from_slice(&naks);
            return ReqVerdict::Nak;
        }
        if self.side == Side::Peer && auth.is_none() && self.eap_declined {
            self.authenticator_wants_only_eap = true;
        }
        self.peer_mru = mru;
        self.peer_magic = magic;
        self.peer_auth = auth;
        ReqVerdict::Ack
    }

    fn nak_received(&mut self, opts: &[RawOption<'_>]) -> bool {
        for o in opts {
            match (o.kind, o.data) {
                (opt::MRU, &[a, b]) if self.request_mru => {
                    // A smaller MRU the peer suggests (pppd Naks a large
                    // one with 1500) is asked for next; one below 128 or
                    // above what we are configured for (and above 1500):
                    // stop asking, the peer then assumes 1500 (§6.1).
                    let v = u16::from_be_bytes([a, b]);
                    if (MIN_MRU..=self.configured_mru.max(DEFAULT_MRU)).contains(&v) {
                        self.mru = v;
                    } else {
                        self.request_mru = false;
                        self.mru = DEFAULT_MRU;
                    }
                }
                (opt::MAGIC, &[_, _, _, _]) if self.request_magic => {
                    self.magic = self.rng.nonzero_u32();
                    self.loops = self.loops.saturating_add(1);
                }
                (opt::AUTH, d) if self.side == Side::Authenticator && self.offering.is_some() => {
                    let suggested = AuthProtocol::from_option_data(d)
                        .filter(|p| self.methods.contains(p) && !self.tried.contains(p));
                    let mut next = suggested.or_else(|| self.next_untried());
                    if next.is_none() && !self.second_round {
                        // Offer the list once more: a peer that Nak'd a method
                        // hoping for a better one may accept it when it sees
                        // we insist (our own client does so for EAP).
                        self.second_round = true;
                        self.tried.clear();
                        next = self.next_untried();
                    }
                    match next {
                        Some(p) => {
                            self.offering = Some(p);
                            self.tried.push(p);
                        }
                        None => self.auth_refused = true,
                    }
                }
                // Options we did not request: the peer may append them to a
                // Nak to prompt us (§5.3); we do not want any of them.
                _ => {}
            }
        }
        true
    }

    fn reject_received(&mut self, opts: &[RawOption<'_>]) -> bool {
        for o in opts {
            let sent = match o.kind {
                opt::MRU => self.request_mru,
                opt::MAGIC => self.request_magic,
                opt::AUTH => self.offering.is_some(),
                _ => false,
            };
            if !sent {
                return false;
            }
        }
        for o in opts {
            match o.kind {
                opt::MRU => {
                    self.request_mru = false;
                    self.mru = DEFAULT_MRU;
                }
                opt::MAGIC => self.request_magic = false,
                _ => self.auth_refused = true,
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::parse_options;

    fn lcp(side: Side, methods: Vec<AuthProtocol>) -> Lcp {
        Lcp::new(side, DEFAULT_MRU, true, methods, SplitMix64::new(9))
    }

    fn req(l: &mut Lcp) -> Vec<u8> {
        let mut v = Vec::new();
        l.build_request(&mut v);
        v
    }

    fn check(l: &mut Lcp, opts: &[u8]) -> (ReqVerdict, Vec<u8>) {
        let o = parse_options(opts).unwrap();
        let mut r = Vec::new();
        let v = l.check_request(&o, false, &mut r);
        (v, r)
    }

    #[test]
    fn authenticator_request_and_move_on_at_nak() {
        let mut l = lcp(
            Side::Authenticator,
            vec![AuthProtocol::MsChapV2, AuthProtocol::Eap, AuthProtocol::Pap],
        );
        let r = req(&mut l);
        assert_eq!(&r[..5], &[3, 5, 0xC2, 0x23, 0x81]);
        assert_eq!(r[5..7], [5, 6]);
        // Peer Naks suggesting PAP: jump to PAP (in our list, untried).
        l.nak_received(&parse_options(&[3, 4, 0xC0, 0x23]).unwrap());
        assert_eq!(l.agreed_auth(), Some(AuthProtocol::Pap));
        // Nak suggesting MS-CHAPv2 again (already tried): next untried = EAP.
        l.nak_received(&parse_options(&[3, 5, 0xC2, 0x23, 0x81]).unwrap());
        assert_eq!(l.agreed_auth(), Some(AuthProtocol::Eap));
        assert!(!l.auth_refused);
        // Exhausted: a second round in list order, then give up.
        let chap_md5 = parse_options(&[3, 5, 0xC2, 0x23, 0x05]).unwrap();
        for want in [AuthProtocol::MsChapV2, AuthProtocol::Eap, AuthProtocol::Pap] {
            l.nak_received(&chap_md5);
            assert_eq!(l.agreed_auth(), Some(want));
        }
        assert!(!l.auth_refused);
        l.nak_received(&chap_md5);
        assert!(l.auth_refused);
        // Our request still carries an Authentication-Protocol.
        assert!(req(&mut l).windows(2).any(|w| w == [3, 4]));
    }

    #[test]
    fn peer_acks_allowed_and_naks_eap_unless_preferred() {
        let mut l = lcp(
            Side::Peer,
            vec![AuthProtocol::MsChapV2, AuthProtocol::Eap, AuthProtocol::Pap],
        );
        assert_eq!(
            check(&mut l, &[3, 4, 0xC2, 0x27]),
            (ReqVerdict::Nak, vec![3, 5, 0xC2, 0x23, 0x81])
        );
        // An authenticator that insists on EAP after our Nak gets it.
        assert_eq!(check(&mut l, &[3, 4, 0xC2, 0x27]).0, ReqVerdict::Ack);
        assert_eq!(l.agreed_auth(), Some(AuthProtocol::Eap));
        assert_eq!(check(&mut l, &[3, 4, 0xC0, 0x23]).0, ReqVerdict::Ack);
        assert_eq!(l.agreed_auth(), Some(AuthProtocol::Pap));
        assert_eq!(
            check(&mut l, &[3, 5, 0xC2, 0x23, 0x80]).0,
            ReqVerdict::Nak,
            "MS-CHAPv1 unsupported"
        );
        assert!(!l.authenticator_wants_only_eap);
        let mut e = lcp(Side::Peer, vec![AuthProtocol::Eap, AuthProtocol::MsChapV2]);
        assert_eq!(check(&mut e, &[3, 4, 0xC2, 0x27]).0, ReqVerdict::Ack);
        // With Max-Failure reached the Nak becomes a Reject.
        let o = parse_options(&[3, 4, 0xC0, 0x23]).unwrap();
        let mut r = Vec::new();
        assert_eq!(e.check_request(&o, true, &mut r), ReqVerdict::Reject);
        assert_eq!(r, vec![3, 4, 0xC0, 0x23]);
    }

    #[test]
    fn an_authenticator_that_drops_auth_after_our_eap_nak_is_remembered() {
        let mut l = lcp(Side::Peer, vec![AuthProtocol::MsChapV2, AuthProtocol::Eap]);
        // No auth asked at all, before any EAP offer: nothing to remember.
        assert_eq!(check(&mut l, &[]).0, ReqVerdict::Ack);
        assert!(!l.authenticator_wants_only_eap);
        l.reset();
        assert_eq!(check(&mut l, &[3, 4, 0xC2, 0x27]).0, ReqVerdict::Nak);
        // pppd with only require-eap: the next request has no auth option.
        assert_eq!(check(&mut l, &[]).0, ReqVerdict::Ack);
        assert!(l.authenticator_wants_only_eap);
        l.reset();
        assert!(l.authenticator_wants_only_eap, "kept across restarts");
    }

    #[test]
    fn authenticator_rejects_auth_requests_and_unknown_options() {
        let mut l = lcp(Side::Authenticator, vec![AuthProtocol::MsChapV2]);
        let (v, r) = check(&mut l, &[1, 4, 5, 0xDC, 3, 4, 0xC0, 0x23, 13, 3, 6, 7, 2]);
        assert_eq!(v, ReqVerdict::Reject);
        assert_eq!(r, vec![3, 4, 0xC0, 0x23, 13, 3, 6]);
    }

    #[test]
    fn reset_keeps_what_the_peer_negotiated() {
        // Stopped + RCR+: check_request, then scr (reset), then sca.
        let mut l = lcp(Side::Peer, vec![AuthProtocol::MsChapV2]);
        assert_eq!(
            check(
                &mut l,
                &[1, 4, 5, 0x78, 3, 5, 0xC2, 0x23, 0x81, 5, 6, 1, 2, 3, 4]
            )
            .0,
            ReqVerdict::Ack
        );
        l.reset();
        assert_eq!(l.agreed_auth(), Some(AuthProtocol::MsChapV2));
        assert_eq!((l.peer_mru, l.peer_magic), (1400, 0x01020304));
        // A later acknowledged request without the options clears them.
        assert_eq!(check(&mut l, &[]).0, ReqVerdict::Ack);
        assert_eq!(
            (l.agreed_auth(), l.peer_mru, l.peer_magic),
            (None, DEFAULT_MRU, 0)
        );
    }

    fn our_mru(l: &mut Lcp) -> Option<u16> {
        let r = req(l);
        parse_options(&r)
            .unwrap()
            .iter()
            .find(|o| o.kind == opt::MRU)
            .map(|o| u16::from_be_bytes([o.data[0], o.data[1]]))
    }

    #[test]
    fn a_larger_mru_nakd_or_rejected_ends_at_a_value_the_peer_takes() {
        let mut l = Lcp::new(Side::Peer, 4000, true, vec![], SplitMix64::new(9));
        l.reset();
        assert_eq!(our_mru(&mut l), Some(4000));
        // The peer suggests 1500 (pppd does for anything above its MRU).
        assert!(l.nak_received(&parse_options(&[1, 4, 0x05, 0xdc]).unwrap()));
        assert_eq!(our_mru(&mut l), Some(1500));
        // A new negotiation asks for the configured value again.
        l.reset();
        assert_eq!(our_mru(&mut l), Some(4000));
        // A smaller one within range is taken.
        assert!(l.nak_received(&parse_options(&[1, 4, 0x05, 0x78]).unwrap()));
        assert_eq!(our_mru(&mut l), Some(1400));
        // Below 128 or above ours: stop asking (the peer assumes 1500).
        for nak in [[1u8, 4, 0, 64], [1, 4, 0x23, 0x28]] {
            l.reset();
            assert!(l.nak_received(&parse_options(&nak).unwrap()));
            assert_eq!(our_mru(&mut l), None, "{nak:?}");
        }
        // A Reject: stop asking.
        l.reset();
        assert!(l.reject_received(&parse_options(&[1, 4, 0x0f, 0xa0]).unwrap()));
        assert_eq!(our_mru(&mut l), None);
        l.reset();
        assert_eq!(our_mru(&mut l), Some(4000));
    }

    #[test]
    fn mru_accm_pfc_acfc_and_magic() {
        let mut l = lcp(Side::Authenticator, vec![]);
        let (v, _) = check(
            &mut l,
            &[
                1, 4, 0x0F, 0xFB, 2, 6, 0, 0, 0, 0, 5, 6, 1, 2, 3, 4, 7, 2, 8, 2,
            ],
        );
        assert_eq!(v, ReqVerdict::Ack);
        assert_eq!(l.peer_mru, 4091);
        assert_eq!(l.peer_magic, 0x01020304);
        assert_eq!(
            check(&mut l, &[1, 4, 0, 64]),
            (ReqVerdict::Nak, vec![1, 4, 0, 128])
        );
        let (v, r) = check(&mut l, &[5, 6, 0, 0, 0, 0]);
        assert_eq!(v, ReqVerdict::Nak);
        assert_eq!(r[..2], [5, 6]);
        assert_ne!(r[2..], [0, 0, 0, 0]);
        // Malformed lengths are rejected.
        assert_eq!(check(&mut l, &[1, 3, 5]).0, ReqVerdict::Reject);
        assert_eq!(check(&mut l, &[7, 3, 0]).0, ReqVerdict::Reject);
    }

    #[test]
    fn own_magic_is_loopback_suspect_and_reject_stops_magic() {
        let mut l = lcp(Side::Authenticator, vec![AuthProtocol::MsChapV2]);
        let mine = req(&mut l);
        let (v, r) = check(&mut l, &mine);
        assert_eq!(v, ReqVerdict::Nak);
        assert_eq!(r.len(), 6, "only the magic number is Nak'd");
        assert_eq!(l.loops, 1);
        // SoftEther rejects Magic-Number: stop sending it.
        assert!(l.reject_received(&parse_options(&[5, 6, 0, 0, 0, 1]).unwrap()));
        assert_eq!(l.our_magic(), 0);
        assert!(parse_options(&req(&mut l))
            .unwrap()
            .iter()
            .all(|o| o.kind != 5));
        // Rejecting something we never sent is invalid.
        assert!(!l.reject_received(&parse_options(&[7, 2]).unwrap()));
    }
}
