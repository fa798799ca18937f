//! A server and a client [`SstpSession`] joined by a virtual byte pipe and a
//! virtual clock, with a driver that answers the server's questions the way
//! the binary does (users file, a pool of one address, IPv6 always routed).
#![allow(dead_code)]

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use session::sstp::{Event, Ipv6Params, SstpSession};
use session::Session;

pub const CERT_SHA1: [u8; 20] = [7; 20];
pub const CERT_SHA256: [u8; 32] = [9; 32];
pub const SERVER_V4: Ipv4Addr = Ipv4Addr::new(10, 44, 0, 1);
pub const CLIENT_V4: Ipv4Addr = Ipv4Addr::new(10, 44, 0, 2);
/// The server's own IPv6 address (`prefix::1`).
pub const SERVER_V6_ROUTER: &str = "fd00:44::1";

pub fn prefix() -> ipv6nd::Prefix64 {
    ipv6nd::Prefix64::of("fd00:44::".parse().unwrap())
}

/// A UDP-ish IPv4 packet from `src` to `dst` with `len` bytes in all.
pub fn v4(src: Ipv4Addr, dst: Ipv4Addr, len: usize, fill: u8) -> Vec<u8> {
    let mut p = vec![fill; len.max(20)];
    p[0] = 0x45;
    p[1] = 0;
    let total = p.len() as u16;
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p[9] = 17;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    p
}

/// `packet` (IPv4) with Don't Fragment set or, if not `df`, with no flag
/// and no offset (`v4` fills those bytes like the rest).
pub fn with_df(mut packet: Vec<u8>, df: bool) -> Vec<u8> {
    packet[6..8].copy_from_slice(if df { &[0x40, 0] } else { &[0, 0] });
    packet
}

/// An IPv6 packet (no next header) from `src` to `dst`.
pub fn v6(src: Ipv6Addr, dst: Ipv6Addr, payload: usize) -> Vec<u8> {
    let mut p = vec![0u8; 40 + payload];
    p[0] = 0x60;
    p[4..6].copy_from_slice(&(payload as u16).to_be_bytes());
    p[6] = 59;
    p[7] = 64;
    p[8..24].copy_from_slice(&src.octets());
    p[24..40].copy_from_slice(&dst.octets());
    p
}

fn rng(seed: u64) -> session::sstp::Rng {
    Box::new(ppp::SplitMix64::new(seed))
}

pub struct Opts {
    pub password: &'static str,
    pub server_auth: Vec<ppp::AuthProtocol>,
    pub ipv6: bool,
    /// Bytes per delivery on the pipe (0: everything at once).
    pub chunk: usize,
    /// Each side's PPP MRU (1500: not asked for in LCP).
    pub server_mru: u16,
    pub client_mru: u16,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            password: "right",
            server_auth: vec![ppp::AuthProtocol::MsChapV2],
            ipv6: true,
            chunk: 0,
            server_mru: ppp::lcp::DEFAULT_MRU,
            client_mru: ppp::lcp::DEFAULT_MRU,
        }
    }
}

pub struct Pair {
    pub t0: Instant,
    pub now: Instant,
    pub server: SstpSession,
    pub client: SstpSession,
    pub server_events: Vec<Event>,
    pub client_events: Vec<Event>,
    /// Packets each side's TUN device received.
    pub server_tun: Vec<Vec<u8>>,
    pub client_tun: Vec<Vec<u8>>,
    users: ppp::Users,
    chunk: usize,
    /// When false, bytes on the pipe are lost (a cut link).
    pub link_up: bool,
    buf: Vec<u8>,
    /// Bytes that went over the pipe each way.
    pub to_server_bytes: usize,
    pub to_client_bytes: usize,
}

impl Pair {
    pub fn new(o: Opts) -> Pair {
        let t0 = Instant::now();
        let mut scfg = ppp::Config::server();
        scfg.auth_protocols = o.server_auth;
        scfg.ipv6 = o.ipv6;
        scfg.mru = o.server_mru;
        let mut ccfg = ppp::Config::client(ppp::Credentials {
            username: "alice".into(),
            secret: ppp::Secret::Password(ppp::Password::new(o.password)),
        });
        ccfg.mru = o.client_mru;
        let ipv6 = o.ipv6.then(|| Ipv6Params {
            prefix: prefix(),
            dns: vec!["fd00:44::53".parse().unwrap()],
            mtu: o.server_mru,
            router: SERVER_V6_ROUTER.parse().unwrap(),
        });
        Pair {
            t0,
            now: t0,
            server: SstpSession::server(
                sstp::ServerConfig::new(CERT_SHA1, CERT_SHA256),
                scfg,
                ipv6,
                t0,
                [3; 32],
                rng(1),
            ),
            client: SstpSession::client(
                sstp::ClientConfig::new(CERT_SHA1, CERT_SHA256),
                ccfg,
                t0,
                rng(2),
            ),
            server_events: Vec::new(),
            client_events: Vec::new(),
            server_tun: Vec::new(),
            client_tun: Vec::new(),
            users: ppp::Users::parse("alice:plain:right\n").unwrap(),
            chunk: o.chunk,
            link_up: true,
            buf: Vec::new(),
            to_server_bytes: 0,
            to_client_bytes: 0,
        }
    }

    fn deliver(&mut self, to_server: bool) -> bool {
        self.buf.clear();
        let from = if to_server {
            &mut self.client
        } else {
            &mut self.server
        };
        if !from.poll_transmit(&mut self.buf) {
            return false;
        }
        if !self.link_up {
            return true;
        }
        let bytes = std::mem::take(&mut self.buf);
        if to_server {
            self.to_server_bytes += bytes.len();
        } else {
            self.to_client_bytes += bytes.len();
        }
        let to = if to_server {
            &mut self.server
        } else {
            &mut self.client
        };
        let n = if self.chunk == 0 {
            bytes.len().max(1)
        } else {
            self.chunk
        };
        for c in bytes.chunks(n) {
            to.handle_stream_bytes(self.now, c);
        }
        self.buf = bytes;
        true
    }

    /// Drains events and TUN packets, answering the server as the binary does.
    fn drain(&mut self) -> bool {
        let mut busy = false;
        while let Some(ev) = self.server.poll_event() {
            busy = true;
            match &ev {
                Event::AuthRequest(r) => {
                    let v = self.users.verify(&r.username, &r.proof);
                    self.server.auth_verdict(self.now, r.id, v);
                }
                Event::NeedIpv4Address { .. } => self.server.assign_ipv4(
                    self.now,
                    ppp::Ipv4Assignment {
                        local: SERVER_V4,
                        peer: CLIENT_V4,
                        dns1: Some(Ipv4Addr::new(10, 44, 0, 53)),
                        dns2: None,
                    },
                ),
                Event::Ipv6Up { address, .. } => self.server.confirm_ipv6(self.now, *address),
                _ => {}
            }
            self.server_events.push(ev);
        }
        while let Some(ev) = self.client.poll_event() {
            busy = true;
            self.client_events.push(ev);
        }
        while let Some(p) = self.server.poll_tun() {
            busy = true;
            self.server_tun.push(p.to_vec());
        }
        while let Some(p) = self.client.poll_tun() {
            busy = true;
            self.client_tun.push(p.to_vec());
        }
        busy
    }

    /// Runs until nothing moves, without advancing the clock.
    pub fn settle(&mut self) {
        for _ in 0..10_000 {
            let a = self.deliver(true);
            let b = self.deliver(false);
            let c = self.drain();
            if !(a || b || c) {
                return;
            }
        }
        panic!("the sessions never settle");
    }

    /// Advances the clock to `until`, firing timers on the way.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        loop {
            self.settle();
            let next = [self.server.poll_timeout(), self.client.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= until => {
                    self.now = self.now.max(t);
                    self.server.handle_timeout(self.now);
                    self.client.handle_timeout(self.now);
                }
                _ => break,
            }
        }
        self.now = until;
        self.settle();
    }

    /// Until both sides are up (IPv4, and IPv6 when asked for).
    pub fn connect(&mut self) {
        self.run_for(Duration::from_secs(5));
        assert!(
            self.client_events
                .iter()
                .any(|e| matches!(e, Event::Ipv4Up { .. })),
            "client IPv4 up: {:?}",
            self.client_events
        );
        assert!(self
            .server_events
            .iter()
            .any(|e| matches!(e, Event::Connected)));
    }

    /// The client's global IPv6 address once the RA arrived.
    pub fn client_v6(&self) -> Ipv6Addr {
        let iid = self
            .client_events
            .iter()
            .find_map(|e| match e {
                Event::Ipv6Up { local_iid, .. } => Some(*local_iid),
                _ => None,
            })
            .expect("IPv6CP up");
        prefix().address(ipv6nd::InterfaceId::new(iid).unwrap())
    }

    pub fn ending(events: &[Event]) -> Option<&session::sstp::Ending> {
        events.iter().find_map(|e| match e {
            Event::Closed(end) => Some(end),
            _ => None,
        })
    }
}
