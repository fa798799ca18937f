//! Deterministic two-engine simulator with a virtual clock (issue 3's
//! scenarios), plus scripted raw peers that behave like SoftEther and pppd.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ppp::auth::{chap, eap, mschapv2};
use ppp::fsm::State;
use ppp::wire::{control_frame, parse_options, Packet};
use ppp::{
    AuthFailure, AuthMethod, AuthProtocol, Config, Credentials, Event, Inbound, Ipv4Assignment,
    LinkDownReason, Password, Phase, Ppp, Role, Secret, SplitMix64, Users,
};

const ASSIGN: Ipv4Assignment = Ipv4Assignment {
    local: Ipv4Addr::new(10, 0, 0, 1),
    peer: Ipv4Addr::new(10, 0, 0, 2),
    dns1: Some(Ipv4Addr::new(10, 0, 0, 53)),
    dns2: Some(Ipv4Addr::new(9, 9, 9, 9)),
};

const IPV4_PACKET: [u8; 20] = [
    0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1,
];
const IPV6_PACKET: [u8; 40] = {
    let mut p = [0u8; 40];
    p[0] = 0x60;
    p[6] = 59;
    p[7] = 64;
    p
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Dir {
    ToServer,
    ToClient,
}

type Filter = Box<dyn FnMut(Dir, &[u8]) -> Option<Vec<u8>>>;
/// Answers AuthRequests instead of the users file (e.g. an EAP backend).
type Backend = Box<dyn FnMut(&ppp::AuthRequest) -> ppp::Verdict>;

struct Sim {
    t0: Instant,
    now: Instant,
    server: Ppp,
    client: Ppp,
    to_server: VecDeque<Vec<u8>>,
    to_client: VecDeque<Vec<u8>>,
    server_events: Vec<Event>,
    client_events: Vec<Event>,
    users: Users,
    auto_verdict: bool,
    backend: Option<Backend>,
    auto_ipv4: bool,
    /// Transforms or drops (None) each frame on the wire.
    filter: Filter,
    wire: Vec<(Dir, Vec<u8>)>,
    server_rx: Vec<Vec<u8>>,
    client_rx: Vec<Vec<u8>>,
}

fn users() -> Users {
    Users::parse("alice:plain:s3cret pw\nbob:nthash:8846f7eaee8fb117ad06bdd830b7586c\n").unwrap()
}

fn client_cfg(user: &str, pw: &str) -> Config {
    Config::client(Credentials {
        username: user.into(),
        secret: Secret::Password(Password::new(pw)),
    })
}

fn server_cfg(methods: &[AuthProtocol]) -> Config {
    let mut c = Config::server();
    c.auth_protocols = methods.to_vec();
    c
}

impl Sim {
    fn new(scfg: Config, ccfg: Config) -> Self {
        let t0 = Instant::now();
        Sim {
            t0,
            now: t0,
            server: Ppp::new(scfg, Role::Authenticator, t0, Box::new(SplitMix64::new(11))),
            client: Ppp::new(ccfg, Role::Peer, t0, Box::new(SplitMix64::new(22))),
            to_server: VecDeque::new(),
            to_client: VecDeque::new(),
            server_events: Vec::new(),
            client_events: Vec::new(),
            users: users(),
            auto_verdict: true,
            backend: None,
            auto_ipv4: true,
            filter: Box::new(|_, f| Some(f.to_vec())),
            wire: Vec::new(),
            server_rx: Vec::new(),
            client_rx: Vec::new(),
        }
    }

    fn open(&mut self) {
        self.server.open(self.now);
        self.client.open(self.now);
    }

    fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    /// Moves frames and events until `done` or `limit` of virtual time.
    fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Sim) -> bool) -> bool {
        let end = self.t0 + limit;
        for _ in 0..100_000 {
            self.pump();
            if done(self) {
                return true;
            }
            if !self.to_server.is_empty() || !self.to_client.is_empty() {
                continue;
            }
            let next = [self.server.poll_timeout(), self.client.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.server.handle_timeout(self.now);
                    self.client.handle_timeout(self.now);
                }
                _ => return done(self),
            }
        }
        panic!("simulation did not settle");
    }

    fn pump(&mut self) {
        loop {
            let mut moved = false;
            while let Some(f) = self.server.poll_transmit() {
                moved = true;
                self.wire.push((Dir::ToClient, f.clone()));
                if let Some(f) = (self.filter)(Dir::ToClient, &f) {
                    self.to_client.push_back(f);
                }
            }
            while let Some(f) = self.client.poll_transmit() {
                moved = true;
                self.wire.push((Dir::ToServer, f.clone()));
                if let Some(f) = (self.filter)(Dir::ToServer, &f) {
                    self.to_server.push_back(f);
                }
            }
            if let Some(f) = self.to_server.pop_front() {
                moved = true;
                if let Some(ip) = self.server.handle_frame(self.now, &f) {
                    self.server_rx.push(inbound_bytes(ip));
                }
            }
            if let Some(f) = self.to_client.pop_front() {
                moved = true;
                if let Some(ip) = self.client.handle_frame(self.now, &f) {
                    self.client_rx.push(inbound_bytes(ip));
                }
            }
            while let Some(e) = self.server.poll_event() {
                moved = true;
                match &e {
                    Event::AuthRequest(r) if self.auto_verdict => {
                        let v = match &mut self.backend {
                            Some(b) => b(r),
                            None => self.users.verify(&r.username, &r.proof),
                        };
                        self.server.auth_verdict(self.now, r.id, v).unwrap();
                    }
                    Event::NeedIpv4Address { .. } if self.auto_ipv4 => {
                        self.server.set_ipv4(self.now, ASSIGN).unwrap();
                    }
                    _ => {}
                }
                self.server_events.push(e);
            }
            while let Some(e) = self.client.poll_event() {
                moved = true;
                self.client_events.push(e);
            }
            if !moved {
                break;
            }
        }
    }

    fn both_up(&self) -> bool {
        let up = |ev: &[Event]| {
            ev.iter().any(|e| matches!(e, Event::Ipv4Up { .. }))
                && ev.iter().any(|e| matches!(e, Event::Ipv6Up { .. }))
        };
        up(&self.server_events) && up(&self.client_events)
    }

    fn both_down(&self) -> bool {
        self.server.is_down() && self.client.is_down()
    }
}

fn inbound_bytes(i: Inbound<'_>) -> Vec<u8> {
    match i {
        Inbound::Ipv4(p) | Inbound::Ipv6(p) => p.to_vec(),
    }
}

fn authenticated(ev: &[Event]) -> Option<(ppp::Hlak, String, AuthMethod)> {
    ev.iter().find_map(|e| match e {
        Event::Authenticated {
            hlak,
            username,
            method,
            ..
        } => Some((*hlak, username.clone(), *method)),
        _ => None,
    })
}

fn link_down(ev: &[Event]) -> Option<LinkDownReason> {
    let downs: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            Event::LinkDown { reason } => Some(*reason),
            _ => None,
        })
        .collect();
    assert!(downs.len() <= 1, "LinkDown emitted {} times", downs.len());
    if !downs.is_empty() {
        assert!(
            matches!(ev.last(), Some(Event::LinkDown { .. })),
            "LinkDown must be the last event"
        );
    }
    downs.first().copied()
}

fn count_lcp_code(wire: &[(Dir, Vec<u8>)], dir: Dir, code: u8) -> usize {
    wire.iter()
        .filter(|(d, f)| *d == dir && f[2..4] == [0xC0, 0x21] && f.get(4) == Some(&code))
        .count()
}

fn full_session(method: AuthProtocol, user: &str, pw: &str) -> Sim {
    let mut sim = Sim::new(server_cfg(&[method]), client_cfg(user, pw));
    sim.open();
    assert!(
        sim.run_until(Duration::from_secs(5), Sim::both_up),
        "session did not come up with {method:?}"
    );
    // Data flows both ways, only now.
    let f = sim.client.send_ip(&IPV4_PACKET).unwrap();
    assert_eq!(&f[..4], &[0xFF, 0x03, 0x00, 0x21]);
    assert_eq!(
        sim.server.handle_frame(sim.now, &f),
        Some(Inbound::Ipv4(&IPV4_PACKET[..]))
    );
    let f = sim.server.send_ip(&IPV6_PACKET).unwrap();
    assert_eq!(&f[..4], &[0xFF, 0x03, 0x00, 0x57]);
    assert_eq!(
        sim.client.handle_frame(sim.now, &f),
        Some(Inbound::Ipv6(&IPV6_PACKET[..]))
    );
    sim
}

#[test]
fn full_session_with_each_method_then_terminate() {
    for (method, want, keys) in [
        (AuthProtocol::MsChapV2, AuthMethod::MsChapV2, true),
        (AuthProtocol::Eap, AuthMethod::EapMsChapV2, true),
        (AuthProtocol::ChapMd5, AuthMethod::ChapMd5, false),
        (AuthProtocol::Pap, AuthMethod::Pap, false),
    ] {
        let mut sim = full_session(method, "alice", "s3cret pw");
        let (hs, us, ms) = authenticated(&sim.server_events).unwrap();
        let (hc, uc, mc) = authenticated(&sim.client_events).unwrap();
        assert_eq!((ms, mc), (want, want));
        assert_eq!((us.as_str(), uc.as_str()), ("alice", "alice"));
        // Server HLAK = Recv|Send of the server = Send|Recv of the client: equal bytes.
        assert_eq!(hs, hc, "{method:?}");
        assert_eq!(hs.is_zero(), !keys, "{method:?}");
        // Addresses and DNS.
        let v4 = |ev: &[Event]| {
            ev.iter()
                .find_map(|e| match e {
                    Event::Ipv4Up {
                        local,
                        peer,
                        dns1,
                        dns2,
                    } => Some((*local, *peer, *dns1, *dns2)),
                    _ => None,
                })
                .unwrap()
        };
        assert_eq!(
            v4(&sim.server_events),
            (ASSIGN.local, ASSIGN.peer, ASSIGN.dns1, ASSIGN.dns2)
        );
        assert_eq!(
            v4(&sim.client_events),
            (ASSIGN.peer, ASSIGN.local, ASSIGN.dns1, ASSIGN.dns2)
        );
        let v6 = |ev: &[Event]| {
            ev.iter()
                .find_map(|e| match e {
                    Event::Ipv6Up {
                        local_iid,
                        peer_iid,
                    } => Some((*local_iid, *peer_iid)),
                    _ => None,
                })
                .unwrap()
        };
        let (sl, sp) = v6(&sim.server_events);
        let (cl, cp) = v6(&sim.client_events);
        assert_eq!((sl, sp), (cp, cl));
        assert_ne!(sl, cl);
        assert_eq!(sim.server.phase(), Phase::Network);
        // Every frame on the wire was FF 03 + 2-byte protocol.
        assert!(sim
            .wire
            .iter()
            .all(|(_, f)| f[..2] == [0xFF, 0x03] && f[3] & 1 == 1));
        // Terminate from the client.
        sim.client.close(sim.now, "user request");
        assert!(sim.run_until(Duration::from_secs(30), Sim::both_down));
        assert_eq!(
            link_down(&sim.client_events),
            Some(LinkDownReason::LocalClose)
        );
        assert_eq!(
            link_down(&sim.server_events),
            Some(LinkDownReason::PeerTerminated)
        );
        assert!(sim.client.send_ip(&IPV4_PACKET).is_err());
        assert!(sim.server.poll_timeout().is_none() && sim.client.poll_timeout().is_none());
        let ipv4_down = sim
            .server_events
            .iter()
            .any(|e| matches!(e, Event::Ipv4Down));
        assert!(ipv4_down, "Ipv4Down precedes LinkDown");
    }
}

#[test]
fn nt_hash_user_works_for_mschapv2_eap_and_pap_but_not_chap_md5() {
    for m in [AuthProtocol::MsChapV2, AuthProtocol::Eap, AuthProtocol::Pap] {
        let sim = full_session(m, "bob", "password");
        assert!(authenticated(&sim.server_events).is_some());
    }
    let mut sim = Sim::new(
        server_cfg(&[AuthProtocol::ChapMd5]),
        client_cfg("bob", "password"),
    );
    sim.open();
    sim.run_until(Duration::from_secs(30), Sim::both_down);
    assert_eq!(
        link_down(&sim.server_events),
        Some(LinkDownReason::AuthFailed)
    );
}

#[test]
fn wrong_password_fails_on_both_sides_without_network_phase() {
    for m in [
        AuthProtocol::MsChapV2,
        AuthProtocol::Eap,
        AuthProtocol::ChapMd5,
        AuthProtocol::Pap,
    ] {
        let mut sim = Sim::new(server_cfg(&[m]), client_cfg("alice", "wrong"));
        sim.open();
        assert!(
            sim.run_until(Duration::from_secs(30), Sim::both_down),
            "{m:?}"
        );
        let failed = |ev: &[Event]| {
            ev.iter().find_map(|e| match e {
                Event::AuthFailed { reason, .. } => Some(reason.clone()),
                _ => None,
            })
        };
        assert!(
            matches!(
                failed(&sim.server_events),
                Some(AuthFailure::Rejected { .. })
            ),
            "{m:?}"
        );
        assert!(
            matches!(
                failed(&sim.client_events),
                Some(AuthFailure::Rejected { .. })
            ),
            "{m:?}"
        );
        assert_eq!(
            link_down(&sim.server_events),
            Some(LinkDownReason::AuthFailed)
        );
        assert!(authenticated(&sim.server_events).is_none());
        assert!(authenticated(&sim.client_events).is_none());
        assert!(
            !sim.wire
                .iter()
                .any(|(_, f)| f[2..4] == [0x80, 0x21] || f[2..4] == [0x80, 0x57]),
            "no NCP traffic"
        );
        // Unknown users look the same as wrong passwords.
    }
    let mut sim = Sim::new(
        server_cfg(&[AuthProtocol::MsChapV2]),
        client_cfg("mallory", "s3cret pw"),
    );
    sim.open();
    sim.run_until(Duration::from_secs(30), Sim::both_down);
    assert_eq!(
        link_down(&sim.server_events),
        Some(LinkDownReason::AuthFailed)
    );
}

#[test]
fn client_rejects_server_that_cannot_prove_the_password() {
    // The verifier accepts, but with a wrong authenticator response: the
    // client must refuse (RFC 2759 §5 mutual authentication).
    let mut sim = Sim::new(
        server_cfg(&[AuthProtocol::MsChapV2]),
        client_cfg("alice", "s3cret pw"),
    );
    sim.auto_verdict = false;
    sim.open();
    sim.run_until(Duration::from_secs(5), |s| {
        s.server_events
            .iter()
            .any(|e| matches!(e, Event::AuthRequest(_)))
    });
    let Some(Event::AuthRequest(r)) = sim
        .server_events
        .iter()
        .find(|e| matches!(e, Event::AuthRequest(_)))
        .cloned()
    else {
        unreachable!()
    };
    let fake = ppp::MsChapV2Accept {
        authenticator_response: [0x42; 20],
        keys: ppp::MppeKeys {
            send: [1; 16],
            recv: [2; 16],
        },
    };
    sim.server
        .auth_verdict(sim.now, r.id, ppp::Verdict::accept_mschapv2(fake))
        .unwrap();
    sim.run_until(Duration::from_secs(30), Sim::both_down);
    assert!(sim.client_events.iter().any(|e| matches!(
        e,
        Event::AuthFailed {
            reason: AuthFailure::ServerNotAuthenticated,
            ..
        }
    )));
    assert!(authenticated(&sim.client_events).is_none());
}

#[test]
fn verdict_may_arrive_later_and_duplicates_are_not_reverified() {
    let mut sim = Sim::new(
        server_cfg(&[AuthProtocol::MsChapV2]),
        client_cfg("alice", "s3cret pw"),
    );
    sim.auto_verdict = false;
    sim.open();
    sim.run_until(Duration::from_secs(5), |s| {
        s.server_events
            .iter()
            .any(|e| matches!(e, Event::AuthRequest(_)))
    });
    let reqs: Vec<_> = sim
        .server_events
        .iter()
        .filter_map(|e| match e {
            Event::AuthRequest(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].method, AuthMethod::MsChapV2);
    assert!(format!("{:?}", reqs[0].proof).starts_with("Proof::MsChapV2"));
    // 20 s of silence: nothing times out (auth timeout is 60 s), no second request.
    sim.run_until(Duration::from_secs(20), |_| false);
    assert_eq!(
        sim.server_events
            .iter()
            .filter(|e| matches!(e, Event::AuthRequest(_)))
            .count(),
        1
    );
    // A stale id is refused.
    let stale = ppp::AuthRequestId(reqs[0].id.0.wrapping_add(1));
    assert!(sim
        .server
        .auth_verdict(sim.now, stale, ppp::Verdict::reject("x"))
        .is_err());
    let v = sim.users.verify(&reqs[0].username, &reqs[0].proof);
    sim.server.auth_verdict(sim.now, reqs[0].id, v).unwrap();
    assert!(sim.run_until(Duration::from_secs(30), Sim::both_up));
    // MS-CHAPv2 accept without keys is refused as a verdict.
    assert!(sim
        .server
        .auth_verdict(sim.now, reqs[0].id, ppp::Verdict::accept())
        .is_err());
}

#[test]
fn verdict_that_never_comes_times_out() {
    let mut scfg = server_cfg(&[AuthProtocol::Pap]);
    scfg.auth_timeout = Duration::from_secs(15);
    let mut sim = Sim::new(scfg, client_cfg("alice", "s3cret pw"));
    sim.auto_verdict = false;
    sim.open();
    sim.run_until(Duration::from_secs(60), Sim::both_down);
    assert!(sim.server_events.iter().any(|e| matches!(
        e,
        Event::AuthFailed {
            reason: AuthFailure::Timeout,
            ..
        }
    )));
    assert!(sim.elapsed() >= Duration::from_secs(15));
}

#[test]
fn peer_naks_auth_protocol_and_server_moves_on() {
    // The server prefers EAP; our client Naks EAP (not its first choice)
    // with MS-CHAPv2, which the server then uses.
    let mut sim = Sim::new(
        server_cfg(&[AuthProtocol::Eap, AuthProtocol::Pap, AuthProtocol::MsChapV2]),
        client_cfg("alice", "s3cret pw"),
    );
    sim.open();
    assert!(sim.run_until(Duration::from_secs(5), Sim::both_up));
    assert_eq!(
        authenticated(&sim.server_events).unwrap().2,
        AuthMethod::MsChapV2
    );
    assert!(
        count_lcp_code(&sim.wire, Dir::ToServer, 3) >= 1,
        "client sent a Configure-Nak"
    );

    // A client that only does MS-CHAPv2 against a server that only does
    // CHAP-MD5: the list is exhausted and the server terminates.
    let mut ccfg = client_cfg("alice", "s3cret pw");
    ccfg.auth_protocols = vec![AuthProtocol::MsChapV2];
    let mut sim = Sim::new(server_cfg(&[AuthProtocol::ChapMd5]), ccfg);
    sim.open();
    assert!(sim.run_until(Duration::from_secs(60), Sim::both_down));
    assert_eq!(
        link_down(&sim.server_events),
        Some(LinkDownReason::AuthNotNegotiated)
    );
    assert_eq!(
        link_down(&sim.client_events),
        Some(LinkDownReason::PeerTerminated)
    );
}

#[test]
fn server_without_authentication_gives_zero_hlak() {
    let mut sim = Sim::new(server_cfg(&[]), client_cfg("alice", "x"));
    sim.open();
    assert!(sim.run_until(Duration::from_secs(5), Sim::both_up));
    let (h, _, m) = authenticated(&sim.server_events).unwrap();
    assert_eq!(m, AuthMethod::None);
    assert!(h.is_zero());
    assert_eq!(format!("{h:?}"), "Hlak(zero)");
    assert!(!sim.wire.iter().any(|(_, f)| f[2..4] == [0xC2, 0x23]));
}

#[test]
fn lost_packets_are_recovered_by_the_restart_timer() {
    let mut sim = Sim::new(
        server_cfg(&[AuthProtocol::MsChapV2]),
        client_cfg("alice", "s3cret pw"),
    );
    // Drop the first two LCP Configure-Requests each way, the first CHAP
    // Challenge, the first IPCP and IPv6CP packets and the first Terminate-Ack.
    let mut seen = std::collections::HashMap::<(Dir, [u8; 2], u8), u32>::new();
    sim.filter = Box::new(move |d, f| {
        let key = (d, [f[2], f[3]], f[4]);
        let n = seen.entry(key).or_insert(0);
        *n += 1;
        let drop = match ([f[2], f[3]], f[4]) {
            ([0xC0, 0x21], 1) => *n <= 2,
            ([0xC2, 0x23], 1) => *n == 1,
            ([0x80, 0x21] | [0x80, 0x57], 1) => *n == 1,
            ([0xC0, 0x21], 6) => *n == 1,
            _ => false,
        };
        (!drop).then(|| f.to_vec())
    });
    sim.open();
    assert!(sim.run_until(Duration::from_secs(60), Sim::both_up));
    assert!(
        sim.elapsed() >= Duration::from_secs(9),
        "recovered by timeouts, took {:?}",
        sim.elapsed()
    );
    assert!(sim.elapsed() < Duration::from_secs(30));
    assert_eq!(
        authenticated(&sim.server_events).unwrap().0,
        authenticated(&sim.client_events).unwrap().0
    );
    sim.server.close(sim.now, "maintenance");
    assert!(sim.run_until(Duration::from_secs(120), Sim::both_down));
    assert_eq!(
        link_down(&sim.server_events),
        Some(LinkDownReason::LocalClose)
    );
    // The first Terminate-Request (or its Ack) was lost: a second one went out.
    assert!(count_lcp_code(&sim.wire, Dir::ToClient, 5) >= 2);
}

#[test]
fn lcp_gives_up_after_max_configure() {
    let mut sim = Sim::new(
        server_cfg(&[AuthProtocol::MsChapV2]),
        client_cfg("alice", "s3cret pw"),
    );
    sim.filter = Box::new(|d, f| (d == Dir::ToServer).then(|| f.to_vec()));
    sim.open();
    assert!(sim.run_until(Duration::from_secs(120), |s| s.client.is_down()));
    assert_eq!(
        link_down(&sim.client_events),
        Some(LinkDownReason::NegotiationFailed)
    );
    assert_eq!(count_lcp_code(&sim.wire, Dir::ToServer, 1), 10);
    assert_eq!(sim.elapsed(), Duration::from_secs(30));
}

#[test]
fn echo_timeout_declares_the_peer_dead() {
    let mut sim = full_session(AuthProtocol::MsChapV2, "alice", "s3cret pw");
    let up_at = sim.now;
    // From now on nothing reaches the server.
    sim.filter = Box::new(|d, f| (d == Dir::ToClient).then(|| f.to_vec()));
    assert!(sim.run_until(Duration::from_secs(300), |s| s.server.is_down()));
    assert_eq!(
        link_down(&sim.server_events),
        Some(LinkDownReason::EchoTimeout)
    );
    let took = sim.now - up_at;
    // echo every 10 s, 3 failures allowed: dead within (3 + 1) intervals, not before 3.
    assert!(
        took >= Duration::from_secs(30) && took <= Duration::from_secs(50),
        "{took:?}"
    );
    assert_eq!(count_lcp_code(&sim.wire, Dir::ToClient, 9), 3);
}

#[test]
fn peer_that_never_answers_echo_but_talks_stays_up() {
    // SoftEther never answers our Echo-Requests but sends its own: any
    // received frame counts as a sign of life.
    let mut sim = full_session(AuthProtocol::MsChapV2, "alice", "s3cret pw");
    sim.filter = Box::new(|d, f| {
        let echo_reply = f[2..4] == [0xC0, 0x21] && f[4] == 10;
        (!(d == Dir::ToServer && echo_reply)).then(|| f.to_vec())
    });
    assert!(
        !sim.run_until(Duration::from_secs(300), |s| s.server.is_down()
            || s.client.is_down())
    );
    assert!(!sim.server.is_down() && !sim.client.is_down());
}

#[test]
fn magic_number_loopback_is_detected() {
    let t = Instant::now();
    let mut e = Ppp::new(
        server_cfg(&[AuthProtocol::MsChapV2]),
        Role::Authenticator,
        t,
        Box::new(SplitMix64::new(5)),
    );
    e.open(t);
    let mut now = t;
    let mut events = Vec::new();
    for _ in 0..10_000 {
        let mut any = false;
        while let Some(f) = e.poll_transmit() {
            any = true;
            let _ = e.handle_frame(now, &f);
        }
        while let Some(ev) = e.poll_event() {
            events.push(ev);
        }
        if e.is_down() {
            break;
        }
        if !any {
            match e.poll_timeout() {
                Some(x) => {
                    now = x;
                    e.handle_timeout(now);
                }
                None => break,
            }
        }
    }
    assert_eq!(link_down(&events), Some(LinkDownReason::Loopback));
    assert!(
        now - t < Duration::from_secs(10),
        "loop detected quickly, took {:?}",
        now - t
    );
}

#[test]
fn client_restart_mid_session_terminates_the_old_session() {
    let mut sim = full_session(AuthProtocol::MsChapV2, "alice", "s3cret pw");
    // The client process restarts: a fresh engine on the same link.
    sim.client = Ppp::new(
        client_cfg("alice", "s3cret pw"),
        Role::Peer,
        sim.now,
        Box::new(SplitMix64::new(99)),
    );
    sim.client_events.clear();
    sim.client.open(sim.now);
    assert!(sim.run_until(Duration::from_secs(120), Sim::both_down));
    assert_eq!(
        link_down(&sim.server_events),
        Some(LinkDownReason::Renegotiation)
    );
    // The fresh client was told to go away and gave up.
    assert!(count_lcp_code(&sim.wire, Dir::ToClient, 5) >= 1);
    assert!(link_down(&sim.client_events).is_some());
    assert!(authenticated(&sim.client_events).is_none());
}

#[test]
fn server_restart_mid_session_is_noticed_by_the_client() {
    let mut sim = full_session(AuthProtocol::Eap, "alice", "s3cret pw");
    sim.server = Ppp::new(
        server_cfg(&[AuthProtocol::Eap]),
        Role::Authenticator,
        sim.now,
        Box::new(SplitMix64::new(98)),
    );
    sim.server_events.clear();
    // Data from the old client reaches the fresh server before LCP: discarded.
    let f = sim.client.send_ip(&IPV4_PACKET).unwrap();
    sim.server.open(sim.now);
    assert_eq!(sim.server.handle_frame(sim.now, &f), None);
    assert!(sim.run_until(Duration::from_secs(120), |s| s.client.is_down()));
    assert_eq!(
        link_down(&sim.client_events),
        Some(LinkDownReason::Renegotiation)
    );
}

#[test]
fn compressed_frames_from_the_peer_are_accepted() {
    // The client's frames lose FF 03 and get a 1-byte protocol where possible.
    let mut sim = Sim::new(
        server_cfg(&[AuthProtocol::MsChapV2]),
        client_cfg("alice", "s3cret pw"),
    );
    sim.filter = Box::new(|d, f| {
        if d == Dir::ToClient {
            return Some(f.to_vec());
        }
        let mut v = Vec::new();
        if f[2] == 0 {
            v.push(f[3]);
        } else {
            v.extend_from_slice(&f[2..4]);
        }
        v.extend_from_slice(&f[4..]);
        Some(v)
    });
    sim.open();
    assert!(sim.run_until(Duration::from_secs(5), Sim::both_up));
    let f = sim.client.send_ip(&IPV4_PACKET).unwrap();
    assert_eq!(
        sim.server
            .handle_frame(sim.now, &[&[0x21], &f[4..]].concat()),
        Some(Inbound::Ipv4(&IPV4_PACKET[..]))
    );
}

// ---- scripted raw peers ------------------------------------------------------

/// A hand-driven peer: we send raw frames to one engine and read its output.
struct Raw {
    now: Instant,
    e: Ppp,
    events: Vec<Event>,
}

impl Raw {
    fn new(cfg: Config, role: Role) -> Self {
        let now = Instant::now();
        let mut e = Ppp::new(cfg, role, now, Box::new(SplitMix64::new(7)));
        e.open(now);
        Raw {
            now,
            e,
            events: Vec::new(),
        }
    }
    fn send(&mut self, f: &[u8]) -> Vec<Vec<u8>> {
        let _ = self.e.handle_frame(self.now, f);
        self.drain()
    }
    fn drain(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(f) = self.e.poll_transmit() {
            out.push(f);
        }
        while let Some(ev) = self.e.poll_event() {
            self.events.push(ev);
        }
        out
    }
    fn lcp(&mut self, code: u8, id: u8, data: &[u8]) -> Vec<Vec<u8>> {
        self.send(&control_frame(ppp::frame::Protocol::Lcp, code, id, data))
    }
}

fn find(frames: &[Vec<u8>], proto: [u8; 2], code: u8) -> Option<Vec<u8>> {
    frames
        .iter()
        .find(|f| f[2..4] == proto && f[4] == code)
        .cloned()
}

#[test]
fn unknown_options_codes_and_protocols_are_rejected() {
    let mut r = Raw::new(server_cfg(&[AuthProtocol::MsChapV2]), Role::Authenticator);
    let first = r.drain();
    assert!(find(&first, [0xC0, 0x21], 1).is_some());
    // Configure-Request with MRU, Callback (13), an unknown option 0x42 and Quality-Protocol.
    let opts = [
        1, 4, 5, 0xDC, 13, 3, 6, 0x42, 4, 1, 2, 4, 6, 0xC0, 0x25, 0, 0,
    ];
    let out = r.lcp(1, 33, &opts);
    let rej = find(&out, [0xC0, 0x21], 4).expect("Configure-Reject");
    assert_eq!(rej[5], 33);
    assert_eq!(
        &rej[8..],
        &[13, 3, 6, 0x42, 4, 1, 2, 4, 6, 0xC0, 0x25, 0, 0]
    );
    // Unknown LCP code: Code-Reject carrying the packet.
    let out = r.lcp(0x55, 9, &[1, 2, 3]);
    let cj = find(&out, [0xC0, 0x21], 7).expect("Code-Reject");
    assert_eq!(&cj[8..], &[0x55, 9, 0, 7, 1, 2, 3]);
    // Before LCP is opened, unknown protocols are discarded (no Protocol-Reject).
    assert!(r.send(&[0xFF, 0x03, 0x80, 0xFD, 1, 1, 0, 4]).is_empty());
    // Open LCP: Ack their request, Ack ours.
    let req = find(&first, [0xC0, 0x21], 1).unwrap();
    let out = r.lcp(1, 34, &[1, 4, 5, 0xDC]);
    assert!(find(&out, [0xC0, 0x21], 2).is_some());
    r.lcp(2, req[5], &req[8..]);
    assert_eq!(r.e.lcp_state(), State::Opened);
    // CCP (MPPE) is Protocol-Rejected with the rejected protocol and packet.
    let out = r.send(&[0xFF, 0x03, 0x80, 0xFD, 1, 1, 0, 4]);
    let pr = find(&out, [0xC0, 0x21], 8).expect("Protocol-Reject");
    assert_eq!(&pr[8..], &[0x80, 0xFD, 1, 1, 0, 4]);
    // Windows' LCP Identification is silently accepted.
    assert!(r.lcp(12, 1, b"\0\0\0\0MSRASV5.20").is_empty());
    // Echo-Request gets an Echo-Reply with our magic.
    let out = r.lcp(9, 77, &[0xAA, 0xBB, 0xCC, 0xDD, 1, 2]);
    let er = find(&out, [0xC0, 0x21], 10).expect("Echo-Reply");
    assert_eq!(er[5], 77);
    assert_eq!(&er[12..], &[1, 2]);
}

#[test]
fn nak_loop_ends_at_max_failure() {
    let mut cfg = server_cfg(&[AuthProtocol::MsChapV2]);
    cfg.fsm.max_failure = 4;
    let mut r = Raw::new(cfg, Role::Authenticator);
    r.drain();
    // A peer that insists on MRU 64 (too small for us).
    let mut codes = Vec::new();
    for id in 0..7u8 {
        let out = r.lcp(1, id, &[1, 4, 0, 64]);
        let reply = out
            .iter()
            .find(|f| f[2..4] == [0xC0, 0x21] && f[5] == id)
            .unwrap();
        codes.push(reply[4]);
        if reply[4] == 3 {
            assert_eq!(&reply[8..], &[1, 4, 0, 128]);
        }
    }
    // Exactly Max-Failure Naks, then Configure-Reject.
    assert_eq!(codes, vec![3, 3, 3, 3, 4, 4, 4]);
    // The peer gives in (drops MRU): Ack, and the counter starts over.
    let out = r.lcp(1, 50, &[5, 6, 1, 2, 3, 4]);
    assert!(find(&out, [0xC0, 0x21], 2).is_some());
    let out = r.lcp(1, 51, &[1, 4, 0, 64]);
    assert!(find(&out, [0xC0, 0x21], 3).is_some());
}

#[test]
fn ipcp_nak_loop_on_address_ends_in_reject() {
    let mut cfg = server_cfg(&[]);
    cfg.ipv6 = false;
    cfg.fsm.max_failure = 2;
    let mut r = Raw::new(cfg, Role::Authenticator);
    let req = find(&r.drain(), [0xC0, 0x21], 1).unwrap();
    r.lcp(1, 1, &[]);
    r.lcp(2, req[5], &req[8..]);
    assert_eq!(r.e.phase(), Phase::Network);
    assert!(r
        .events
        .iter()
        .any(|e| matches!(e, Event::NeedIpv4Address { .. })));
    // IPCP arriving before the address is known is held, then answered.
    let ipcp = |id, o: &[u8]| control_frame(ppp::frame::Protocol::Ipcp, 1, id, o);
    assert!(r.send(&ipcp(1, &[3, 6, 9, 9, 9, 9])).is_empty());
    r.e.set_ipv4(r.now, ASSIGN).unwrap();
    let out = r.drain();
    let nak = find(&out, [0x80, 0x21], 3).expect("held request answered with Nak");
    assert_eq!(&nak[8..], &[3, 6, 10, 0, 0, 2]);
    assert!(
        find(&out, [0x80, 0x21], 1).is_some(),
        "our own Configure-Request"
    );
    let out = r.send(&ipcp(2, &[3, 6, 9, 9, 9, 9, 2, 6, 0, 0x2d, 15, 1]));
    assert_eq!(
        find(&out, [0x80, 0x21], 4).unwrap()[8..],
        [2, 6, 0, 0x2d, 15, 1],
        "VJ compression rejected"
    );
    let out = r.send(&ipcp(3, &[3, 6, 9, 9, 9, 9]));
    assert!(find(&out, [0x80, 0x21], 3).is_some());
    let out = r.send(&ipcp(4, &[3, 6, 9, 9, 9, 9]));
    assert_eq!(
        find(&out, [0x80, 0x21], 4).unwrap()[8..],
        [3, 6, 9, 9, 9, 9],
        "Max-Failure: Reject"
    );
}

#[test]
fn softether_like_server_interop() {
    // A scripted server behaving like SoftEther: Echo-Requests before LCP is
    // up, Magic-Number rejected, EAP offered first, then MS-CHAPv2, and IPCP
    // Naks 0.0.0.0 with the DHCP address.
    let mut ccfg = client_cfg("test@VPN", "test123");
    ccfg.ipv6 = false;
    let mut r = Raw::new(ccfg, Role::Peer);
    let our_req = find(&r.drain(), [0xC0, 0x21], 1).unwrap();
    assert!(parse_options(&our_req[8..])
        .unwrap()
        .iter()
        .any(|o| o.kind == 5));
    // Echo before LCP is opened: ignored.
    assert!(r.lcp(9, 1, &[0, 0, 0, 0]).is_empty());
    // Reject our Magic-Number.
    let out = r.lcp(4, our_req[5], &our_req[8..]);
    let req2 = find(&out, [0xC0, 0x21], 1).expect("new request without magic");
    assert!(parse_options(&req2[8..])
        .unwrap()
        .iter()
        .all(|o| o.kind != 5));
    r.lcp(2, req2[5], &req2[8..]);
    // Offer EAP: we Nak with MS-CHAPv2.
    let out = r.lcp(1, 10, &[1, 4, 5, 0x78, 3, 4, 0xC2, 0x27]);
    let nak = find(&out, [0xC0, 0x21], 3).expect("Nak of EAP");
    assert_eq!(&nak[8..], &[3, 5, 0xC2, 0x23, 0x81]);
    // SoftEther moves on to MS-CHAPv2: Ack.
    let out = r.lcp(1, 11, &[1, 4, 5, 0x78, 3, 5, 0xC2, 0x23, 0x81]);
    assert!(find(&out, [0xC0, 0x21], 2).is_some());
    assert_eq!(r.e.phase(), Phase::Authenticate);
    // Echo now answered, with magic 0 (ours was rejected).
    let er = find(&r.lcp(9, 2, &[0x11, 0x22, 0x33, 0x44]), [0xC0, 0x21], 10).unwrap();
    assert_eq!(&er[8..12], &[0, 0, 0, 0]);
    // MS-CHAPv2 as SoftEther would do it (the server's side computed with the keys module).
    let ac = [0x5Au8; 16];
    let out = r.send(&chap::value_name_frame(
        chap::CHALLENGE,
        3,
        &ac,
        b"SoftEther",
    ));
    let resp = find(&out, [0xC2, 0x23], 2).expect("Response");
    let p = Packet::parse(&resp[4..]).unwrap();
    let vn = chap::parse_value_name(p.data).unwrap();
    assert_eq!(vn.name, b"test@VPN");
    let rv = mschapv2::parse_response_value(vn.value).unwrap();
    let hash = ppp::nt_hash("test123");
    assert_eq!(
        ppp::keys::generate_nt_response(&ac, &rv.peer_challenge, b"test@VPN", &hash),
        rv.nt_response
    );
    let ar = ppp::keys::authenticator_response(
        &hash,
        &rv.nt_response,
        &rv.peer_challenge,
        &ac,
        b"test@VPN",
    );
    let out = r.send(&chap::message_frame(
        chap::SUCCESS,
        3,
        &mschapv2::success_message(&ar, "OK"),
    ));
    let (hlak, _, m) = authenticated(&r.events).unwrap();
    assert_eq!(m, AuthMethod::MsChapV2);
    let server_keys = ppp::MppeKeys::derive(&hash, &rv.nt_response, true);
    assert_eq!(
        hlak.0,
        ppp::keys::hlak_server(&server_keys),
        "client HLAK equals the server's"
    );
    // IPCP: our request asks for 0.0.0.0 and DNS; SoftEther Naks with the DHCP lease.
    let ipcp_req = find(&out, [0x80, 0x21], 1).expect("IPCP request");
    assert_eq!(
        &ipcp_req[8..],
        &[3, 6, 0, 0, 0, 0, 129, 6, 0, 0, 0, 0, 131, 6, 0, 0, 0, 0]
    );
    let nak = [
        3, 6, 192, 168, 30, 10, 129, 6, 192, 168, 30, 1, 131, 6, 192, 168, 30, 1,
    ];
    let out = r.send(&control_frame(
        ppp::frame::Protocol::Ipcp,
        3,
        ipcp_req[5],
        &nak,
    ));
    let req3 = find(&out, [0x80, 0x21], 1).unwrap();
    assert_eq!(&req3[8..], &nak);
    r.send(&control_frame(
        ppp::frame::Protocol::Ipcp,
        2,
        req3[5],
        &req3[8..],
    ));
    r.send(&control_frame(
        ppp::frame::Protocol::Ipcp,
        1,
        1,
        &[3, 6, 192, 168, 30, 1],
    ));
    let up = r.events.iter().find_map(|e| match e {
        Event::Ipv4Up {
            local, peer, dns1, ..
        } => Some((*local, *peer, *dns1)),
        _ => None,
    });
    assert_eq!(
        up,
        Some((
            Ipv4Addr::new(192, 168, 30, 10),
            Ipv4Addr::new(192, 168, 30, 1),
            Some(Ipv4Addr::new(192, 168, 30, 1))
        ))
    );
}

#[test]
fn eap_tls_request_is_answered_with_legacy_nak_for_mschapv2() {
    // pppd servers and SoftEther start EAP with EAP-TLS.
    let mut ccfg = client_cfg("alice", "s3cret pw");
    ccfg.auth_protocols = vec![AuthProtocol::Eap, AuthProtocol::MsChapV2];
    let mut r = Raw::new(ccfg, Role::Peer);
    let req = find(&r.drain(), [0xC0, 0x21], 1).unwrap();
    r.lcp(2, req[5], &req[8..]);
    let out = r.lcp(1, 1, &[3, 4, 0xC2, 0x27]);
    assert!(
        find(&out, [0xC0, 0x21], 2).is_some(),
        "EAP first in our list: Ack"
    );
    let out = r.send(&eap::typed_frame(
        eap::Code::Request,
        1,
        eap::EapType::Identity,
        &[],
    ));
    let id = find(&out, [0xC2, 0x27], 2).unwrap();
    assert_eq!(&id[8..], b"\x01alice");
    let tls_start = eap::typed_frame(eap::Code::Request, 2, eap::EapType::Tls, &[0x20]);
    let out = r.send(&tls_start);
    let nak = find(&out, [0xC2, 0x27], 2).unwrap();
    assert_eq!(&nak[4..], &[2, 2, 0, 6, 3, 26]);
    // A duplicate Request gets the same Response.
    assert_eq!(r.send(&tls_start), vec![nak]);
    // EAP Success without MS-CHAPv2 mutual authentication is refused.
    r.send(&eap::result_frame(true, 3));
    assert!(r.events.iter().any(|e| matches!(
        e,
        Event::AuthFailed {
            reason: AuthFailure::ServerNotAuthenticated,
            ..
        }
    )));
}

#[test]
fn mschapv2_retry_after_failure_with_r1() {
    let mut cfg = server_cfg(&[AuthProtocol::MsChapV2]);
    cfg.auth_max_attempts = 2;
    cfg.ipv4 = false;
    let mut r = Raw::new(cfg, Role::Authenticator);
    let req = find(&r.drain(), [0xC0, 0x21], 1).unwrap();
    r.lcp(1, 1, &[]);
    let out = r.lcp(2, req[5], &req[8..]);
    let ch = find(&out, [0xC2, 0x23], 1).expect("Challenge");
    let p = Packet::parse(&ch[4..]).unwrap();
    let ac: [u8; 16] = chap::parse_value_name(p.data)
        .unwrap()
        .value
        .try_into()
        .unwrap();
    let users = users();
    let respond = |r: &mut Raw, id: u8, ac: &[u8; 16], pw: &str| {
        let pc = [3u8; 16];
        let nt = ppp::keys::generate_nt_response(ac, &pc, b"alice", &ppp::nt_hash(pw));
        r.send(&chap::value_name_frame(
            chap::RESPONSE,
            id,
            &mschapv2::response_value(&pc, &nt),
            b"alice",
        ));
        let Some(Event::AuthRequest(q)) = r.events.pop() else {
            panic!("no AuthRequest")
        };
        let v = users.verify(&q.username, &q.proof);
        r.e.auth_verdict(r.now, q.id, v).unwrap();
        r.drain()
    };
    let out = respond(&mut r, p.id, &ac, "wrong");
    let fail = find(&out, [0xC2, 0x23], 4).expect("Failure");
    let text = String::from_utf8(fail[8..].to_vec()).unwrap();
    assert!(text.starts_with("E=691 R=1 C="), "{text}");
    let next: [u8; 16] = ppp::keys::hex_decode(&text.as_bytes()[12..44]).unwrap();
    let out = respond(&mut r, p.id.wrapping_add(1), &next, "s3cret pw");
    let ok = find(&out, [0xC2, 0x23], 3).expect("Success");
    assert!(ok[8..].starts_with(b"S="));
    assert_eq!(authenticated(&r.events).unwrap().2, AuthMethod::MsChapV2);
}

/// A backend's MS-CHAPv2 failure text (RADIUS MS-CHAP-Error, RFC 2548
/// §2.1.5) reaches the peer: its E= code and M= text in the Failure
/// packet, its R=0 ends the retries; without a usable E= our E=691 stays.
#[test]
fn mschapv2_failure_carries_the_backend_error_text() {
    let cases: [(&[u8], &str, &str, Option<u32>); 3] = [
        (
            b"E=648 R=0 C=00112233445566778899AABBCCDDEEFF V=3 M=Password expired\r\n",
            "E=648 R=0 C=",
            " V=3 M=Password expired",
            Some(648),
        ),
        (
            b"E=647 R=1 C=00 V=3",
            "E=647 R=1 C=",
            " V=3 M=Authentication failed",
            Some(647),
        ),
        (
            b"Password expired",
            "E=691 R=1 C=",
            " V=3 M=Authentication failed",
            Some(691),
        ),
    ];
    for (backend, head, tail, code) in cases {
        let mut cfg = server_cfg(&[AuthProtocol::MsChapV2]);
        cfg.auth_max_attempts = 2;
        let mut sim = Sim::new(cfg, client_cfg("alice", "s3cret pw"));
        let text = backend.to_vec();
        sim.backend = Some(Box::new(move |_| {
            ppp::Verdict::reject_mschap("Authentication failed", Some(text.clone()))
        }));
        sim.open();
        assert!(sim.run_until(Duration::from_secs(30), Sim::both_down));
        let failure = sim
            .wire
            .iter()
            .find(|(d, f)| matches!(d, Dir::ToClient) && f[2..5] == [0xC2, 0x23, 4])
            .map(|(_, f)| String::from_utf8(f[8..].to_vec()).unwrap())
            .expect("no MS-CHAPv2 Failure");
        assert!(failure.starts_with(head), "{failure}");
        assert!(failure.ends_with(tail), "{failure}");
        assert_eq!(failure.len(), head.len() + 32 + tail.len(), "{failure}");
        let failed = sim.client_events.iter().find_map(|e| match e {
            Event::AuthFailed {
                reason: AuthFailure::Rejected { code, .. },
                ..
            } => Some(*code),
            _ => None,
        });
        assert_eq!(failed, Some(code), "{failure}");
    }
}

#[test]
fn lost_pap_ack_is_resent_for_the_retransmitted_request() {
    let mut sim = Sim::new(
        server_cfg(&[AuthProtocol::Pap]),
        client_cfg("alice", "s3cret pw"),
    );
    let mut dropped = false;
    sim.filter = Box::new(move |d, f| {
        let ack = d == Dir::ToClient && f[2..4] == [0xC0, 0x23] && f[4] == 2;
        if ack && !dropped {
            dropped = true;
            return None;
        }
        Some(f.to_vec())
    });
    sim.open();
    assert!(sim.run_until(Duration::from_secs(30), Sim::both_up));
    // One verification only, although the request came twice.
    assert_eq!(
        sim.server_events
            .iter()
            .filter(|e| matches!(e, Event::AuthRequest(_)))
            .count(),
        1
    );
    let reqs = sim
        .wire
        .iter()
        .filter(|(d, f)| *d == Dir::ToServer && f[2..4] == [0xC0, 0x23])
        .count();
    assert_eq!(reqs, 2);
    assert!(sim.elapsed() >= Duration::from_secs(3));
}

#[test]
fn ncp_renegotiation_keeps_the_link_and_the_addresses() {
    let mut sim = full_session(AuthProtocol::MsChapV2, "alice", "s3cret pw");
    // Replay the client's last IPCP Configure-Request: the server (Opened)
    // goes down and renegotiates (RFC 1661: tld, scr, sca).
    let last_req = sim
        .wire
        .iter()
        .rev()
        .find(|(d, f)| *d == Dir::ToServer && f[2..4] == [0x80, 0x21] && f[4] == 1)
        .unwrap()
        .1
        .clone();
    sim.server_events.clear();
    sim.client_events.clear();
    sim.to_server.push_back(last_req);
    let up4 = |ev: &[Event]| ev.iter().any(|e| matches!(e, Event::Ipv4Up { .. }));
    assert!(
        sim.run_until(Duration::from_secs(10), |s| up4(&s.server_events)
            && up4(&s.client_events))
    );
    for (ev, local, peer) in [
        (&sim.server_events, ASSIGN.local, ASSIGN.peer),
        (&sim.client_events, ASSIGN.peer, ASSIGN.local),
    ] {
        assert!(matches!(ev[0], Event::Ipv4Down), "{ev:?}");
        let got = ev.iter().find_map(|e| match e {
            Event::Ipv4Up { local, peer, .. } => Some((*local, *peer)),
            _ => None,
        });
        assert_eq!(got, Some((local, peer)));
    }
    assert!(!sim.server.is_down() && !sim.client.is_down());
    let f = sim.client.send_ip(&IPV4_PACKET).unwrap();
    assert!(sim.server.handle_frame(sim.now, &f).is_some());
}

struct Pool(Vec<Ipv4Assignment>);

impl ppp::Ipv4Allocator for Pool {
    fn allocate(&mut self, _user: &str) -> Option<Ipv4Assignment> {
        self.0.pop()
    }
}

/// Answers later, like a RADIUS client: remembers requests.
#[derive(Default)]
struct Later(Vec<ppp::AuthRequest>);

impl ppp::Verifier for Later {
    fn check(&mut self, r: &ppp::AuthRequest) -> ppp::Check {
        self.0.push(r.clone());
        ppp::Check::Later
    }
}

#[test]
fn verifier_and_allocator_traits() {
    // Two sessions from one pool with one address: the second gets no IPv4
    // (IPCP Protocol-Rejected) but keeps IPv6.
    let mut pool = Pool(vec![ASSIGN]);
    let mut results = Vec::new();
    for _ in 0..2 {
        let mut sim = Sim::new(
            server_cfg(&[AuthProtocol::MsChapV2]),
            client_cfg("alice", "s3cret pw"),
        );
        sim.auto_verdict = false;
        sim.auto_ipv4 = false;
        sim.open();
        let mut later = Later::default();
        let mut users = users();
        let mut seen = 0;
        sim.run_until(Duration::from_secs(5), |s| {
            s.server_events
                .iter()
                .any(|e| matches!(e, Event::AuthRequest(_)))
        });
        for e in sim.server_events.clone() {
            if let Event::AuthRequest(r) = e {
                // First ask the "RADIUS" verifier (answers later), then answer
                // through the users file.
                assert!(!sim.server.verify_with(sim.now, &r, &mut later).unwrap());
                assert!(sim.server.verify_with(sim.now, &r, &mut users).unwrap());
                seen += 1;
            }
        }
        assert_eq!((seen, later.0.len()), (1, 1));
        sim.run_until(Duration::from_secs(5), |s| {
            s.server_events
                .iter()
                .any(|e| matches!(e, Event::NeedIpv4Address { .. }))
        });
        sim.server.assign_with(sim.now, &mut pool).unwrap();
        assert!(
            sim.server.assign_with(sim.now, &mut pool).is_err(),
            "only once"
        );
        let v6 = |ev: &[Event]| ev.iter().any(|e| matches!(e, Event::Ipv6Up { .. }));
        sim.run_until(Duration::from_secs(60), |s| {
            v6(&s.client_events) && v6(&s.server_events)
        });
        sim.run_until(Duration::from_secs(60), |_| false);
        let v4 = sim
            .client_events
            .iter()
            .any(|e| matches!(e, Event::Ipv4Up { .. }));
        results.push((
            v4,
            v6(&sim.client_events),
            sim.client.is_down(),
            sim.server.is_down(),
        ));
    }
    assert_eq!(
        results,
        vec![(true, true, false, false), (false, true, false, false)]
    );
}

#[test]
fn no_network_protocol_left_ends_the_link() {
    let mut scfg = server_cfg(&[AuthProtocol::MsChapV2]);
    scfg.ipv6 = false;
    let mut sim = Sim::new(scfg, client_cfg("alice", "s3cret pw"));
    sim.auto_ipv4 = false;
    sim.open();
    sim.run_until(Duration::from_secs(5), |s| {
        s.server_events
            .iter()
            .any(|e| matches!(e, Event::NeedIpv4Address { .. }))
    });
    sim.server.deny_ipv4(sim.now).unwrap();
    assert!(sim.run_until(Duration::from_secs(60), Sim::both_down));
    assert_eq!(
        link_down(&sim.server_events),
        Some(LinkDownReason::NoNetworkProtocols)
    );
}

#[test]
fn lost_eap_requests_are_retransmitted() {
    let mut sim = Sim::new(
        server_cfg(&[AuthProtocol::Eap]),
        client_cfg("bob", "password"),
    );
    let (mut ids, mut oks) = (0, 0);
    // Drop the first Request/Identity and the first MS-CHAPv2 Success request.
    sim.filter = Box::new(move |d, f| {
        let eap_req = d == Dir::ToClient && f[2..4] == [0xC2, 0x27] && f[4] == 1;
        let mut drop = false;
        if eap_req && f[8] == 1 {
            ids += 1;
            drop = ids == 1;
        }
        if eap_req && f[8] == 26 && f[9] == eap::opcode::SUCCESS {
            oks += 1;
            drop = oks == 1;
        }
        (!drop).then(|| f.to_vec())
    });
    sim.open();
    assert!(sim.run_until(Duration::from_secs(60), Sim::both_up));
    let (hs, _, m) = authenticated(&sim.server_events).unwrap();
    assert_eq!(m, AuthMethod::EapMsChapV2);
    assert_eq!(Some(hs), authenticated(&sim.client_events).map(|a| a.0));
    assert!(
        sim.elapsed() >= Duration::from_secs(6),
        "{:?}",
        sim.elapsed()
    );
    // One verification only.
    assert_eq!(
        sim.server_events
            .iter()
            .filter(|e| matches!(e, Event::AuthRequest(_)))
            .count(),
        1
    );
}

#[test]
fn lost_eap_success_is_inferred_from_ncp_traffic() {
    // RFC 3748 §4.2: after the method completed (MS-CHAPv2 success verified),
    // NCP packets stand in for a lost EAP Success.
    let mut sim = Sim::new(
        server_cfg(&[AuthProtocol::Eap]),
        client_cfg("alice", "s3cret pw"),
    );
    sim.filter = Box::new(|d, f| {
        let eap_success = d == Dir::ToClient && f[2..4] == [0xC2, 0x27] && f[4] == 3;
        (!eap_success).then(|| f.to_vec())
    });
    sim.open();
    assert!(sim.run_until(Duration::from_secs(30), Sim::both_up));
    assert!(
        sim.elapsed() < Duration::from_secs(3),
        "no timeout needed: {:?}",
        sim.elapsed()
    );
    let (hc, _, m) = authenticated(&sim.client_events).unwrap();
    assert_eq!(m, AuthMethod::EapMsChapV2);
    assert_eq!(hc, authenticated(&sim.server_events).unwrap().0);
}

/// A scripted stand-in for a TLS engine (EAP-TLS tests): it checks every
/// reassembled message byte for byte and answers with the next one.
struct ScriptTls {
    /// (expected input, output after it); the first output needs no input.
    script: VecDeque<(Vec<u8>, Vec<u8>)>,
    out: Vec<u8>,
    server: bool,
}

fn msg(tag: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(7) ^ tag).collect()
}

impl ppp::auth::eap_tls::TlsSession for ScriptTls {
    fn input(&mut self, tls: &[u8]) -> Result<(), String> {
        match self.script.pop_front() {
            Some((want, out)) if want == tls => {
                self.out = out;
                Ok(())
            }
            _ => Err("the certificate is from an unknown CA".into()),
        }
    }
    fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }
    fn is_done(&self) -> bool {
        self.script.is_empty()
    }
    fn msk(&self) -> Option<[u8; 64]> {
        self.is_done().then_some([0x5A; 64])
    }
    fn peer_name(&self) -> Option<String> {
        self.server.then(|| "alice-cert".to_string())
    }
}

/// TLS-1.3-like flights: client 2000 octets (fragmented), server 3000
/// (fragmented), client 500, server's one-octet commitment message.
#[derive(Debug)]
struct ScriptConfig {
    server: bool,
    /// The server refuses the client's second flight.
    refuse: bool,
}

impl ppp::auth::eap_tls::EapTlsConfig for ScriptConfig {
    fn start(&self) -> Result<Box<dyn ppp::auth::eap_tls::TlsSession>, String> {
        let (a, b, c, d) = (msg(1, 2000), msg(2, 3000), msg(3, 500), vec![0]);
        let (script, out) = if self.server {
            let c = if self.refuse { msg(9, 500) } else { c };
            (vec![(a, b), (c, d)], vec![])
        } else {
            (vec![(b, c), (d, vec![])], a)
        };
        Ok(Box::new(ScriptTls {
            script: script.into(),
            out,
            server: self.server,
        }))
    }
}

fn eap_tls_sim(refuse: bool) -> Sim {
    let mut s = server_cfg(&[AuthProtocol::Eap]);
    s.eap_tls = Some(std::sync::Arc::new(ScriptConfig {
        server: true,
        refuse,
    }));
    let mut c = client_cfg("alice", "");
    c.auth_protocols = vec![AuthProtocol::Eap];
    c.eap_tls = Some(std::sync::Arc::new(ScriptConfig {
        server: false,
        refuse,
    }));
    let mut sim = Sim::new(s, c);
    sim.open();
    sim
}

#[test]
fn eap_tls_fragments_flights_and_both_sides_derive_the_hlak_from_the_msk() {
    let mut sim = eap_tls_sim(false);
    assert!(sim.run_until(Duration::from_secs(30), Sim::both_up));
    let (hs, user, m) = authenticated(&sim.server_events).unwrap();
    assert_eq!((user.as_str(), m), ("alice-cert", AuthMethod::EapTls));
    let (hc, _, mc) = authenticated(&sim.client_events).unwrap();
    assert_eq!(mc, AuthMethod::EapTls);
    // MS-SSTP §3.2.5.2.2: the HLAK is the MSK's first 32 octets.
    assert_eq!(hs.as_bytes(), &[0x5A; 32]);
    assert_eq!(hs, hc);
    // Every EAP packet fits the 1500-octet MRU; the big flights went in
    // several fragments, L set on the first.
    let eap_tls: Vec<_> = sim
        .wire
        .iter()
        .filter(|(_, f)| f[2..4] == [0xC2, 0x27] && f.len() > 8 && f[8] == 13)
        .collect();
    assert!(eap_tls.iter().all(|(_, f)| f.len() - 4 <= 1500));
    let firsts = eap_tls
        .iter()
        .filter(|(_, f)| f[9] & ppp::auth::eap_tls::FLAG_LENGTH != 0)
        .count();
    assert_eq!(firsts, 2, "the 2000- and 3000-octet flights");
    assert!(eap_tls.len() >= 10, "{} EAP-TLS packets", eap_tls.len());
}

#[test]
fn eap_tls_lost_success_is_inferred_from_ncp_traffic() {
    let mut sim = eap_tls_sim(false);
    sim.filter = Box::new(|d, f| {
        let eap_success = d == Dir::ToClient && f[2..4] == [0xC2, 0x27] && f[4] == 3;
        (!eap_success).then(|| f.to_vec())
    });
    assert!(sim.run_until(Duration::from_secs(30), Sim::both_up));
    assert!(
        sim.elapsed() < Duration::from_secs(3),
        "{:?}",
        sim.elapsed()
    );
    let (hc, _, m) = authenticated(&sim.client_events).unwrap();
    assert_eq!(m, AuthMethod::EapTls);
    assert_eq!(hc, authenticated(&sim.server_events).unwrap().0);
}

#[test]
fn eap_tls_server_and_a_password_only_peer_end_with_method_refused() {
    let mut s = server_cfg(&[AuthProtocol::Eap]);
    s.eap_tls = Some(std::sync::Arc::new(ScriptConfig {
        server: true,
        refuse: false,
    }));
    let mut sim = Sim::new(s, client_cfg("alice", "s3cret pw"));
    sim.open();
    assert!(sim.run_until(Duration::from_secs(30), Sim::both_down));
    // The peer Naks EAP-TLS (proposing MSCHAPv2); the server has only TLS.
    assert!(sim.server_events.iter().any(|e| matches!(
        e,
        Event::AuthFailed {
            reason: AuthFailure::MethodRefused,
            ..
        }
    )));
    assert!(authenticated(&sim.client_events).is_none());
}

#[test]
fn eap_tls_refused_certificate_fails_both_sides_with_the_reason() {
    let mut sim = eap_tls_sim(true);
    assert!(sim.run_until(Duration::from_secs(30), Sim::both_down));
    let failed = |ev: &[Event]| {
        ev.iter().find_map(|e| match e {
            Event::AuthFailed { reason, .. } => Some(reason.to_string()),
            _ => None,
        })
    };
    assert_eq!(
        failed(&sim.server_events).as_deref(),
        Some("EAP-TLS failed: the certificate is from an unknown CA")
    );
    assert!(failed(&sim.client_events).unwrap().contains("EAP-Failure"));
    assert!(authenticated(&sim.server_events).is_none());
    assert!(authenticated(&sim.client_events).is_none());
    // The server answered with EAP-Failure.
    assert!(sim
        .wire
        .iter()
        .any(|(d, f)| *d == Dir::ToClient && f[2..4] == [0xC2, 0x27] && f[4] == 4));
}

#[test]
fn endless_ncp_nak_loop_is_ended_by_the_setup_timeout() {
    let mut cfg = server_cfg(&[]);
    cfg.ipv6 = false;
    let mut r = Raw::new(cfg, Role::Authenticator);
    let req = find(&r.drain(), [0xC0, 0x21], 1).unwrap();
    r.lcp(1, 1, &[]);
    r.lcp(2, req[5], &req[8..]);
    r.e.set_ipv4(r.now, ASSIGN).unwrap();
    let t0 = r.now;
    let mut pending = r.drain();
    let mut naks = 0;
    for _ in 0..10_000 {
        // 100 ms round trip per exchange.
        r.now += Duration::from_millis(100);
        if r.e.poll_timeout().is_some_and(|t| t <= r.now) {
            r.e.handle_timeout(r.now);
            pending.extend(r.drain());
        }
        for f in std::mem::take(&mut pending) {
            if f[2..4] == [0x80, 0x21] && f[4] == 1 {
                // A hostile peer Naks our address forever.
                naks += 1;
                pending.extend(r.send(&control_frame(
                    ppp::frame::Protocol::Ipcp,
                    3,
                    f[5],
                    &[3, 6, 1, 2, 3, 4],
                )));
            }
        }
        if r.e.is_down() {
            break;
        }
        if pending.is_empty() {
            let Some(t) = r.e.poll_timeout() else { break };
            r.now = t;
            r.e.handle_timeout(t);
            pending = r.drain();
        }
    }
    assert!(naks > 100, "{naks}");
    assert!(r.e.is_down() || r.e.phase() == Phase::Terminate);
    // Let the Terminate-Request time out.
    while let Some(t) = r.e.poll_timeout() {
        r.now = t;
        r.e.handle_timeout(t);
        r.drain();
    }
    assert_eq!(
        link_down(&r.events),
        Some(LinkDownReason::NegotiationFailed)
    );
    assert!(
        r.now - t0 >= Duration::from_secs(119) && r.now - t0 <= Duration::from_secs(130),
        "{:?}",
        r.now - t0
    );
}

#[test]
fn chap_md5_retry_gets_a_new_challenge() {
    let mut cfg = server_cfg(&[AuthProtocol::ChapMd5]);
    cfg.auth_max_attempts = 2;
    let mut r = Raw::new(cfg, Role::Authenticator);
    let req = find(&r.drain(), [0xC0, 0x21], 1).unwrap();
    r.lcp(1, 1, &[]);
    let mut out = r.lcp(2, req[5], &req[8..]);
    let users = users();
    for (attempt, pw) in [(1, "wrong"), (2, "s3cret pw")] {
        let ch = find(&out, [0xC2, 0x23], 1)
            .unwrap_or_else(|| panic!("challenge for attempt {attempt}"));
        let p = Packet::parse(&ch[4..]).unwrap();
        let value = chap::parse_value_name(p.data).unwrap().value.to_vec();
        let resp = chap::md5_response(p.id, pw.as_bytes(), &value);
        r.send(&chap::value_name_frame(
            chap::RESPONSE,
            p.id,
            &resp,
            b"alice",
        ));
        let Some(Event::AuthRequest(q)) = r.events.pop() else {
            panic!("no AuthRequest")
        };
        let v = users.verify(&q.username, &q.proof);
        r.e.auth_verdict(r.now, q.id, v).unwrap();
        out = r.drain();
        if attempt == 1 {
            assert!(find(&out, [0xC2, 0x23], 4).is_some(), "Failure");
            assert_ne!(
                find(&out, [0xC2, 0x23], 1).unwrap()[5],
                p.id,
                "new identifier"
            );
        } else {
            assert!(find(&out, [0xC2, 0x23], 3).is_some(), "Success");
        }
    }
    assert_eq!(authenticated(&r.events).unwrap().2, AuthMethod::ChapMd5);
}

#[test]
fn engine_is_send_for_tokio_tasks() {
    fn assert_send<T: Send + 'static>() {}
    assert_send::<Ppp>();
    assert_send::<Event>();
    assert_send::<Users>();
}

/// What the backend saw: (EAP Identifier, State) per request.
type Seen = std::rc::Rc<std::cell::RefCell<Vec<(u8, Vec<u8>)>>>;

/// A RADIUS-like EAP backend running EAP-MSCHAPv2 with the users file,
/// with State checks; records every request it saw.
fn eap_backend(seen: Seen) -> Backend {
    let users = users();
    let challenge = [0x42u8; 16];
    let mut accept: Option<ppp::MsChapV2Accept> = None;
    let frame = |f: Vec<u8>| f[4..].to_vec();
    Box::new(move |r: &ppp::AuthRequest| {
        assert_eq!(r.method, AuthMethod::EapPassThrough);
        let ppp::Proof::Eap { packet, state } = &r.proof else {
            panic!("not an EAP proof")
        };
        let p = eap::parse(packet).unwrap();
        seen.borrow_mut().push((p.id, state.clone()));
        let id = p.id.wrapping_add(1);
        let failure = || ppp::Verdict::Eap {
            packet: vec![4, p.id, 0, 4],
            msk: None,
            state: vec![],
        };
        match (p.typ, state.as_slice()) {
            (Some(eap::EapType::Identity), b"") => {
                assert_eq!(p.type_data, r.username.as_bytes());
                let td = eap::mschapv2_data(
                    eap::opcode::CHALLENGE,
                    id,
                    &eap::value_name(&challenge, b"backend"),
                );
                ppp::Verdict::Eap {
                    packet: frame(eap::typed_frame(
                        eap::Code::Request,
                        id,
                        eap::EapType::MsChapV2,
                        &td,
                    )),
                    msk: None,
                    state: b"s1".to_vec(),
                }
            }
            (Some(eap::EapType::MsChapV2), b"s1") => {
                let Some(eap::MsChapV2Msg::Response { value, name, .. }) =
                    eap::parse_mschapv2(p.type_data, false)
                else {
                    return failure();
                };
                let rv = mschapv2::parse_response_value(value).unwrap();
                let proof = ppp::Proof::MsChapV2 {
                    authenticator_challenge: challenge,
                    peer_challenge: rv.peer_challenge,
                    nt_response: rv.nt_response,
                    name: name.to_vec(),
                };
                let ppp::Verdict::Accept { mschapv2: Some(a) } =
                    users.verify(&String::from_utf8_lossy(name), &proof)
                else {
                    return failure();
                };
                let msg = mschapv2::success_message(&a.authenticator_response, "ok");
                let td = eap::mschapv2_data(eap::opcode::SUCCESS, p.id, &msg);
                accept = Some(a);
                ppp::Verdict::Eap {
                    packet: frame(eap::typed_frame(
                        eap::Code::Request,
                        id,
                        eap::EapType::MsChapV2,
                        &td,
                    )),
                    msk: None,
                    state: b"s2".to_vec(),
                }
            }
            (Some(eap::EapType::MsChapV2), b"s2") => {
                let keys = accept.as_ref().unwrap().keys.clone();
                // RFC 3579 §2.6.5: MSK = MS-MPPE-Recv-Key | MS-MPPE-Send-Key.
                let mut msk = keys.recv.to_vec();
                msk.extend_from_slice(&keys.send);
                ppp::Verdict::Eap {
                    packet: vec![3, p.id, 0, 4],
                    msk: Some(msk),
                    state: vec![],
                }
            }
            _ => failure(),
        }
    })
}

fn eap_pass_through_sim(pw: &str) -> (Sim, Seen) {
    let mut s = server_cfg(&[AuthProtocol::Eap]);
    s.eap_pass_through = true;
    let mut c = client_cfg("alice", pw);
    c.auth_protocols = vec![AuthProtocol::Eap];
    let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let mut sim = Sim::new(s, c);
    sim.backend = Some(eap_backend(seen.clone()));
    sim.open();
    (sim, seen)
}

#[test]
fn eap_pass_through_relays_the_method_and_takes_the_hlak_from_the_msk() {
    let (mut sim, seen) = eap_pass_through_sim("s3cret pw");
    // The backend's Requests are lost once each: our retransmission
    // repeats them without asking the backend again.
    let mut dropped = std::collections::HashSet::new();
    sim.filter = Box::new(move |d, f| {
        let backend_req = d == Dir::ToClient && f[2..4] == [0xC2, 0x27] && f[4] == 1 && f[8] == 26;
        if backend_req && dropped.insert(f[5]) {
            return None;
        }
        Some(f.to_vec())
    });
    assert!(sim.run_until(Duration::from_secs(30), Sim::both_up));
    let (hs, user, m) = authenticated(&sim.server_events).unwrap();
    assert_eq!((user.as_str(), m), ("alice", AuthMethod::EapPassThrough));
    let (hc, _, mc) = authenticated(&sim.client_events).unwrap();
    assert_eq!(mc, AuthMethod::EapMsChapV2);
    assert_eq!(hs, hc, "the HLAK from the backend's MSK matches the peer's");
    assert_ne!(hs.as_bytes(), &[0; 32]);
    // Identity, Response, Success-Response: each once, State echoed.
    let seen = seen.borrow();
    let states: Vec<&[u8]> = seen.iter().map(|(_, s)| s.as_slice()).collect();
    assert_eq!(states, [&b""[..], b"s1", b"s2"]);
}

#[test]
fn eap_pass_through_wrong_password_ends_with_eap_failure() {
    let (mut sim, _) = eap_pass_through_sim("wrong");
    assert!(sim.run_until(Duration::from_secs(30), Sim::both_down));
    let failed = sim.server_events.iter().any(|e| {
        matches!(
            e,
            Event::AuthFailed {
                reason: AuthFailure::Rejected { .. },
                ..
            }
        )
    });
    assert!(failed, "{:?}", sim.server_events);
    assert!(authenticated(&sim.server_events).is_none());
    assert!(authenticated(&sim.client_events).is_none());
    let eap_failure = sim
        .wire
        .iter()
        .any(|(d, f)| *d == Dir::ToClient && f[2..4] == [0xC2, 0x27] && f[4] == 4);
    assert!(eap_failure);
}

#[test]
fn eap_pass_through_bad_backend_packet_is_refused() {
    let mut s = server_cfg(&[AuthProtocol::Eap]);
    s.eap_pass_through = true;
    let mut c = client_cfg("alice", "s3cret pw");
    c.auth_protocols = vec![AuthProtocol::Eap];
    let mut sim = Sim::new(s, c);
    sim.auto_verdict = false;
    sim.open();
    assert!(sim.run_until(Duration::from_secs(5), |s| s
        .server_events
        .iter()
        .any(|e| matches!(e, Event::AuthRequest(_)))));
    let Some(Event::AuthRequest(r)) = sim.server_events.pop() else {
        panic!("no AuthRequest")
    };
    // A Response is not for the peer; an accept without EAP is no answer.
    for v in [
        ppp::Verdict::Eap {
            packet: vec![2, 1, 0, 5, 1],
            msk: None,
            state: vec![],
        },
        ppp::Verdict::accept(),
    ] {
        assert_eq!(
            sim.server.auth_verdict(sim.now, r.id, v),
            Err(ppp::ApiError::BadVerdict)
        );
    }
}

/// A stale EAP-MSCHAPv2 Challenge that reaches the client after it has
/// verified and acknowledged the server's Success Request (a replayed or
/// misordered frame) is discarded: it must not replace the exchange whose
/// keys EAP Success then turns into the HLAK (found by the `engine_pair`
/// fuzzer: both ends up with EAP-MSCHAPv2, different HLAKs, so the SSTP
/// crypto binding would fail).
#[test]
fn stale_eap_mschapv2_challenge_after_success_request_keeps_the_keys() {
    type Held = std::rc::Rc<std::cell::RefCell<(Option<Vec<u8>>, Vec<Vec<u8>>, bool)>>;
    let held: Held = Default::default();
    let mut sim = Sim::new(
        server_cfg(&[AuthProtocol::Eap]),
        client_cfg("alice", "s3cret pw"),
    );
    let h = held.clone();
    // Keeps a copy of the Challenge; holds EAP Success and all after it.
    sim.filter = Box::new(move |dir, f| {
        let mut h = h.borrow_mut();
        if !matches!(dir, Dir::ToClient) || h.2 {
            return Some(f.to_vec());
        }
        let eap = f.get(2..4) == Some(&[0xc2, 0x27][..]);
        if eap && f.get(4) == Some(&1) && f.get(8) == Some(&0x1a) && f.get(9) == Some(&1) {
            h.0 = Some(f.to_vec());
        }
        if !h.1.is_empty() || (eap && f.get(4) == Some(&3)) {
            h.1.push(f.to_vec());
            return None;
        }
        Some(f.to_vec())
    });
    sim.open();
    sim.run_until(Duration::from_secs(10), |_| !held.borrow().1.is_empty());
    let (challenge, later) = {
        let mut h = held.borrow_mut();
        h.2 = true;
        (
            h.0.take().expect("a Challenge was sent"),
            std::mem::take(&mut h.1),
        )
    };
    sim.to_client.push_back(challenge);
    sim.to_client.extend(later);
    assert!(sim.run_until(Duration::from_secs(30), Sim::both_up));
    let (hs, _, ms) = authenticated(&sim.server_events).unwrap();
    let (hc, _, mc) = authenticated(&sim.client_events).unwrap();
    assert_eq!((ms, mc), (AuthMethod::EapMsChapV2, AuthMethod::EapMsChapV2));
    assert_eq!(hs, hc, "server and client HLAK must agree");
}
