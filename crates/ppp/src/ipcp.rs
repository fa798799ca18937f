//! IPCP (RFC 1332) with the DNS extensions of RFC 1877.
//!
//! Options: IP-Address (3), Primary-DNS (129), Secondary-DNS (131).
//! IP-Compression-Protocol (2, Van Jacobson) is always Rejected, as are the
//! deprecated IP-Addresses (1), the NBNS options (130, 132) and unknown ones.
//!
//! * **Server** (the authenticator): requests its own address; Naks a peer
//!   IP-Address that is not the assigned one (0.0.0.0 included) and a DNS
//!   address that is not the configured one, and Rejects DNS options when no
//!   DNS server is configured. A request without IP-Address gets a Nak that
//!   appends the assigned address (RFC 1661 §5.3) until Max-Failure, after
//!   which it is accepted as is (the peer then has the assigned address
//!   implicitly).
//! * **Client**: requests 0.0.0.0 (or a configured address) and 0.0.0.0 for
//!   both DNS servers, adopts the values of a Nak, and stops asking for what
//!   is Rejected. It Acks the server's non-zero IP-Address and Rejects
//!   everything else the server asks for.

use std::net::Ipv4Addr;

use crate::fsm::{Negotiator, ReqVerdict};
use crate::wire::RawOption;

/// IPCP option types.
pub mod opt {
    /// IP-Addresses (deprecated).
    pub const IP_ADDRESSES: u8 = 1;
    /// IP-Compression-Protocol.
    pub const IP_COMPRESSION: u8 = 2;
    /// IP-Address.
    pub const IP_ADDRESS: u8 = 3;
    /// Primary DNS Server Address (RFC 1877).
    pub const PRIMARY_DNS: u8 = 129;
    /// Primary NBNS Server Address (RFC 1877).
    pub const PRIMARY_NBNS: u8 = 130;
    /// Secondary DNS Server Address (RFC 1877).
    pub const SECONDARY_DNS: u8 = 131;
    /// Secondary NBNS Server Address (RFC 1877).
    pub const SECONDARY_NBNS: u8 = 132;
}

/// Addresses the server hands out for one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Assignment {
    /// Our (the server's) address on the link.
    pub local: Ipv4Addr,
    /// The address assigned to the peer.
    pub peer: Ipv4Addr,
    /// Primary DNS server offered (RFC 1877), if any.
    pub dns1: Option<Ipv4Addr>,
    /// Secondary DNS server offered, if any.
    pub dns2: Option<Ipv4Addr>,
}

fn addr(d: &[u8]) -> Option<Ipv4Addr> {
    let b: [u8; 4] = d.try_into().ok()?;
    Some(Ipv4Addr::from(b))
}

#[derive(Debug, Clone)]
pub(crate) enum Ipcp {
    Server(Server),
    Client(Client),
}

#[derive(Debug, Clone)]
pub(crate) struct Server {
    pub(crate) a: Ipv4Assignment,
    request_local: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Client {
    initial: Ipv4Addr,
    want_dns: bool,
    pub(crate) local: Ipv4Addr,
    pub(crate) peer: Ipv4Addr,
    pub(crate) dns: [Option<Ipv4Addr>; 2],
    request_dns: [bool; 2],
    pub(crate) address_rejected: bool,
}

impl Ipcp {
    pub(crate) fn server(a: Ipv4Assignment) -> Self {
        Ipcp::Server(Server {
            a,
            request_local: true,
        })
    }

    pub(crate) fn client(requested: Ipv4Addr, want_dns: bool) -> Self {
        let mut c = Client {
            initial: requested,
            want_dns,
            local: requested,
            peer: Ipv4Addr::UNSPECIFIED,
            dns: [None; 2],
            request_dns: [want_dns; 2],
            address_rejected: false,
        };
        c.reset();
        Ipcp::Client(c)
    }

    /// (local, peer, dns1, dns2) once opened.
    pub(crate) fn result(&self) -> Ipv4Assignment {
        match self {
            Ipcp::Server(s) => s.a,
            Ipcp::Client(c) => Ipv4Assignment {
                local: c.local,
                peer: c.peer,
                dns1: c.dns[0],
                dns2: c.dns[1],
            },
        }
    }
}

impl Client {
    fn reset(&mut self) {
        self.local = self.initial;
        self.dns = [None; 2];
        self.request_dns = [self.want_dns; 2];
        self.address_rejected = false;
        // `peer` is the peer's value: set by check_request, kept across resets.
    }
}

impl Negotiator for Ipcp {
    fn reset(&mut self) {
        match self {
            Ipcp::Server(s) => s.request_local = true,
            Ipcp::Client(c) => c.reset(),
        }
    }

    fn build_request(&mut self, out: &mut Vec<u8>) {
        match self {
            Ipcp::Server(s) => {
                if s.request_local {
                    RawOption {
                        kind: opt::IP_ADDRESS,
                        data: &s.a.local.octets(),
                    }
                    .emit(out);
                }
            }
            Ipcp::Client(c) => {
                if !c.address_rejected {
                    RawOption {
                        kind: opt::IP_ADDRESS,
                        data: &c.local.octets(),
                    }
                    .emit(out);
                }
                for (i, kind) in [opt::PRIMARY_DNS, opt::SECONDARY_DNS]
                    .into_iter()
                    .enumerate()
                {
                    if c.request_dns[i] {
                        let v = c.dns[i].unwrap_or(Ipv4Addr::UNSPECIFIED);
                        RawOption {
                            kind,
                            data: &v.octets(),
                        }
                        .emit(out);
                    }
                }
            }
        }
    }

    fn check_request(
        &mut self,
        opts: &[RawOption<'_>],
        rej: bool,
        reply: &mut Vec<u8>,
    ) -> ReqVerdict {
        let (mut naks, mut rejs) = (Vec::new(), Vec::new());
        match self {
            Ipcp::Server(s) => {
                let mut saw_address = false;
                for o in opts {
                    let want = match o.kind {
                        opt::IP_ADDRESS => {
                            saw_address = true;
                            Some(s.a.peer)
                        }
                        opt::PRIMARY_DNS => s.a.dns1,
                        opt::SECONDARY_DNS => s.a.dns2,
                        _ => None,
                    };
                    match (want, addr(o.data)) {
                        (Some(w), Some(got)) if w == got => {}
                        (Some(w), Some(_)) if !rej => RawOption {
                            kind: o.kind,
                            data: &w.octets(),
                        }
                        .emit(&mut naks),
                        _ => o.emit(&mut rejs),
                    }
                }
                if !saw_address && !rej && rejs.is_empty() {
                    RawOption {
                        kind: opt::IP_ADDRESS,
                        data: &s.a.peer.octets(),
                    }
                    .emit(&mut naks);
                }
            }
            Ipcp::Client(c) => {
                let mut peer = Ipv4Addr::UNSPECIFIED;
                for o in opts {
                    match (o.kind, addr(o.data)) {
                        (opt::IP_ADDRESS, Some(a)) if !a.is_unspecified() => peer = a,
                        _ => o.emit(&mut rejs),
                    }
                }
                if rejs.is_empty() {
                    c.peer = peer;
                }
            }
        }
        if !rejs.is_empty() {
            reply.extend_from_slice(&rejs);
            ReqVerdict::Reject
        } else if !naks.is_empty() {
            reply.extend_from_slice(&naks);
            ReqVerdict::Nak
        } else {
            ReqVerdict::Ack
        }
    }

    fn nak_received(&mut self, opts: &[RawOption<'_>]) -> bool {
        match self {
            // The server keeps its own address: a Nak of it changes nothing
            // (the peer will Ack or Reject eventually, or Max-Configure ends it).
            Ipcp::Server(_) => true,
            Ipcp::Client(c) => {
                for o in opts {
                    let Some(a) = addr(o.data) else { continue };
                    match o.kind {
                        opt::IP_ADDRESS if !c.address_rejected => c.local = a,
                        opt::PRIMARY_DNS if c.request_dns[0] => c.dns[0] = Some(a),
                        opt::SECONDARY_DNS if c.request_dns[1] => c.dns[1] = Some(a),
                        _ => {}
                    }
                }
                true
            }
        }
    }

    fn reject_received(&mut self, opts: &[RawOption<'_>]) -> bool {
        match self {
            Ipcp::Server(s) => {
                if opts.iter().any(|o| o.kind != opt::IP_ADDRESS) {
                    return false;
                }
                s.request_local = false;
                true
            }
            Ipcp::Client(c) => {
                for o in opts {
                    match o.kind {
                        opt::IP_ADDRESS => c.address_rejected = true,
                        opt::PRIMARY_DNS => {
                            c.request_dns[0] = false;
                            c.dns[0] = None;
                        }
                        opt::SECONDARY_DNS => {
                            c.request_dns[1] = false;
                            c.dns[1] = None;
                        }
                        _ => return false,
                    }
                }
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::parse_options;

    const A: Ipv4Assignment = Ipv4Assignment {
        local: Ipv4Addr::new(10, 0, 0, 1),
        peer: Ipv4Addr::new(10, 0, 0, 2),
        dns1: Some(Ipv4Addr::new(1, 1, 1, 1)),
        dns2: None,
    };

    fn check(n: &mut Ipcp, o: &[u8], rej: bool) -> (ReqVerdict, Vec<u8>) {
        let mut r = Vec::new();
        let v = n.check_request(&parse_options(o).unwrap(), rej, &mut r);
        (v, r)
    }

    #[test]
    fn server_naks_wrong_address_and_dns_rejects_compression() {
        let mut s = Ipcp::server(A);
        let (v, r) = check(&mut s, &[3, 6, 0, 0, 0, 0, 129, 6, 0, 0, 0, 0], false);
        assert_eq!(v, ReqVerdict::Nak);
        assert_eq!(r, vec![3, 6, 10, 0, 0, 2, 129, 6, 1, 1, 1, 1]);
        assert_eq!(
            check(&mut s, &[3, 6, 10, 0, 0, 2, 129, 6, 1, 1, 1, 1], false).0,
            ReqVerdict::Ack
        );
        let (v, r) = check(
            &mut s,
            &[3, 6, 10, 0, 0, 2, 2, 6, 0, 0x2d, 15, 1, 131, 6, 0, 0, 0, 0],
            false,
        );
        assert_eq!(v, ReqVerdict::Reject);
        assert_eq!(r, vec![2, 6, 0, 0x2d, 15, 1, 131, 6, 0, 0, 0, 0]);
        // No address at all: prompt with the assigned one, until Max-Failure.
        assert_eq!(
            check(&mut s, &[], false),
            (ReqVerdict::Nak, vec![3, 6, 10, 0, 0, 2])
        );
        assert_eq!(check(&mut s, &[], true).0, ReqVerdict::Ack);
        // Max-Failure: a wrong address is Rejected instead of Nak'd.
        assert_eq!(
            check(&mut s, &[3, 6, 9, 9, 9, 9], true),
            (ReqVerdict::Reject, vec![3, 6, 9, 9, 9, 9])
        );
        let mut req = Vec::new();
        s.build_request(&mut req);
        assert_eq!(req, vec![3, 6, 10, 0, 0, 1]);
    }

    #[test]
    fn client_asks_zero_and_adopts_nak() {
        let mut c = Ipcp::client(Ipv4Addr::UNSPECIFIED, true);
        let mut req = Vec::new();
        c.build_request(&mut req);
        assert_eq!(
            req,
            vec![3, 6, 0, 0, 0, 0, 129, 6, 0, 0, 0, 0, 131, 6, 0, 0, 0, 0]
        );
        assert!(
            c.nak_received(&parse_options(&[3, 6, 192, 168, 30, 10, 129, 6, 8, 8, 8, 8]).unwrap())
        );
        assert!(c.reject_received(&parse_options(&[131, 6, 0, 0, 0, 0]).unwrap()));
        req.clear();
        c.build_request(&mut req);
        assert_eq!(req, vec![3, 6, 192, 168, 30, 10, 129, 6, 8, 8, 8, 8]);
        assert_eq!(
            check(&mut c, &[3, 6, 192, 168, 30, 1], false).0,
            ReqVerdict::Ack
        );
        assert_eq!(
            check(&mut c, &[3, 6, 0, 0, 0, 0], false).0,
            ReqVerdict::Reject
        );
        assert_eq!(check(&mut c, &[2, 4, 0, 0x2d], false).0, ReqVerdict::Reject);
        let r = c.result();
        assert_eq!(r.local, Ipv4Addr::new(192, 168, 30, 10));
        assert_eq!(r.peer, Ipv4Addr::new(192, 168, 30, 1));
        assert_eq!((r.dns1, r.dns2), (Some(Ipv4Addr::new(8, 8, 8, 8)), None));
        assert!(!c.reject_received(&parse_options(&[2, 4, 0, 0x2d]).unwrap()));
    }
}
