//! IPv6CP (RFC 5072 §4): Interface-Identifier negotiation.
//!
//! * Our identifier is 64 random bits from the caller's RNG, fresh for each
//!   session (so identifiers are unique per session with overwhelming
//!   probability), or fixed by configuration.
//! * A peer identifier of zero is Nak'd with a random non-zero suggestion;
//!   one equal to ours (a collision, §4.1) is Nak'd with a different random
//!   suggestion. A Nak of ours adopts the suggestion if it is non-zero and
//!   differs from the peer's, else picks a new random one.
//! * IPv6-Compression-Protocol (2) and unknown options are Rejected.

use crate::fsm::{Negotiator, ReqVerdict};
use crate::rng::SplitMix64;
use crate::wire::RawOption;

/// Interface-Identifier option type.
pub const OPT_IID: u8 = 1;
/// IPv6-Compression-Protocol option type.
pub const OPT_COMPRESSION: u8 = 2;

#[derive(Debug, Clone)]
pub(crate) struct Ipv6cp {
    initial: [u8; 8],
    pub(crate) local: [u8; 8],
    pub(crate) peer: [u8; 8],
    request_iid: bool,
    rng: SplitMix64,
}

impl Ipv6cp {
    pub(crate) fn new(local: [u8; 8], rng: SplitMix64) -> Self {
        let mut s = Ipv6cp {
            initial: local,
            local,
            peer: [0; 8],
            request_iid: true,
            rng,
        };
        if s.initial == [0; 8] {
            s.initial = s.fresh(&[0; 8]);
            s.local = s.initial;
        }
        s
    }

    fn fresh(&mut self, avoid: &[u8; 8]) -> [u8; 8] {
        loop {
            let v = self.rng.next_u64().to_be_bytes();
            if v != [0; 8] && &v != avoid && v != self.local {
                return v;
            }
        }
    }
}

impl Negotiator for Ipv6cp {
    fn reset(&mut self) {
        self.local = self.initial;
        // `peer` is set by check_request and kept across resets (see lcp.rs).
        self.request_iid = true;
    }

    fn build_request(&mut self, out: &mut Vec<u8>) {
        if self.request_iid {
            RawOption {
                kind: OPT_IID,
                data: &self.local,
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
        let mut peer = [0u8; 8];
        for o in opts {
            match (o.kind, <[u8; 8]>::try_from(o.data)) {
                (OPT_IID, Ok(iid)) => {
                    if iid == [0; 8] || (self.request_iid && iid == self.local) {
                        if rej {
                            o.emit(&mut rejs);
                        } else {
                            let s = self.fresh(&iid);
                            RawOption {
                                kind: OPT_IID,
                                data: &s,
                            }
                            .emit(&mut naks);
                        }
                    } else {
                        peer = iid;
                    }
                }
                _ => o.emit(&mut rejs),
            }
        }
        if !rejs.is_empty() {
            reply.extend_from_slice(&rejs);
            ReqVerdict::Reject
        } else if !naks.is_empty() {
            reply.extend_from_slice(&naks);
            ReqVerdict::Nak
        } else {
            self.peer = peer;
            ReqVerdict::Ack
        }
    }

    fn nak_received(&mut self, opts: &[RawOption<'_>]) -> bool {
        for o in opts {
            if let (OPT_IID, Ok(s)) = (o.kind, <[u8; 8]>::try_from(o.data)) {
                if !self.request_iid {
                    continue;
                }
                self.local = if s != [0; 8] && s != self.peer {
                    s
                } else {
                    self.fresh(&self.peer.clone())
                };
            }
        }
        true
    }

    fn reject_received(&mut self, opts: &[RawOption<'_>]) -> bool {
        if opts.iter().any(|o| o.kind != OPT_IID) || !self.request_iid {
            return false;
        }
        self.request_iid = false;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::parse_options;

    fn check(n: &mut Ipv6cp, o: &[u8]) -> (ReqVerdict, Vec<u8>) {
        let mut r = Vec::new();
        let v = n.check_request(&parse_options(o).unwrap(), false, &mut r);
        (v, r)
    }

    #[test]
    fn zero_and_colliding_identifiers_are_naked() {
        let mut n = Ipv6cp::new([1, 2, 3, 4, 5, 6, 7, 8], SplitMix64::new(3));
        let (v, r) = check(&mut n, &[1, 10, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(v, ReqVerdict::Nak);
        assert_ne!(&r[2..], &[0; 8]);
        let (v, r) = check(&mut n, &[1, 10, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(v, ReqVerdict::Nak);
        assert_ne!(&r[2..], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(
            check(&mut n, &[1, 10, 9, 9, 9, 9, 9, 9, 9, 9]).0,
            ReqVerdict::Ack
        );
        assert_eq!(n.peer, [9; 8]);
        assert_eq!(check(&mut n, &[2, 4, 0, 0x4f]).0, ReqVerdict::Reject);
        assert_eq!(
            check(&mut n, &[1, 9, 0, 0, 0, 0, 0, 0, 1]).0,
            ReqVerdict::Reject
        );
    }

    #[test]
    fn nak_of_ours_adopts_suggestion_unless_it_collides() {
        let mut n = Ipv6cp::new([1; 8], SplitMix64::new(3));
        n.peer = [9; 8];
        n.nak_received(&parse_options(&[1, 10, 5, 5, 5, 5, 5, 5, 5, 5]).unwrap());
        assert_eq!(n.local, [5; 8]);
        n.nak_received(&parse_options(&[1, 10, 9, 9, 9, 9, 9, 9, 9, 9]).unwrap());
        assert!(n.local != [9; 8] && n.local != [0; 8] && n.local != [5; 8]);
        let mut z = Ipv6cp::new([0; 8], SplitMix64::new(4));
        assert_ne!(z.local, [0; 8]);
        let mut req = Vec::new();
        z.build_request(&mut req);
        assert_eq!(req[..2], [1, 10]);
        assert!(z.reject_received(&parse_options(&req).unwrap()));
        req.clear();
        z.build_request(&mut req);
        assert!(req.is_empty());
    }
}
