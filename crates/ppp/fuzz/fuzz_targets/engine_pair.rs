//! A server and a client engine back to back; the fuzzer drives the network
//! (deliver, drop, duplicate, corrupt, reorder, inject), the clock and the
//! driver calls. This reaches deep states (authentication, NCPs, data,
//! termination) that raw frames rarely do. Checks: no panic, LinkDown at most
//! once, data only in the Network phase, and when both sides authenticated
//! with MS-CHAPv2 or EAP-MSCHAPv2 without tampering, their HLAKs agree.
#![no_main]
use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use ppp::{
    AuthMethod, AuthProtocol, Config, Credentials, Event, Hlak, Ipv4Assignment, Password, Phase, Ppp, Role,
    Secret, SplitMix64, Verdict,
};

#[derive(Arbitrary, Debug)]
enum Op {
    Deliver(bool),
    DeliverAll,
    Drop(bool),
    Duplicate(bool),
    Swap(bool),
    Corrupt { to_client: bool, pos: u16, xor: u8 },
    Truncate { to_client: bool, len: u16 },
    Inject { to_client: bool, frame: Vec<u8> },
    Advance(u16),
    Verdict(bool),
    SetIpv4,
    DenyIpv4,
    Data(bool),
    Close(bool),
}

#[derive(Arbitrary, Debug)]
struct Input {
    seed: u64,
    server_methods: u8,
    client_methods: u8,
    client_hash_only: bool,
    wrong_password: bool,
    ops: Vec<Op>,
}

const ALL: [AuthProtocol; 4] = [AuthProtocol::MsChapV2, AuthProtocol::Eap, AuthProtocol::ChapMd5, AuthProtocol::Pap];

fn pick(mask: u8) -> Vec<AuthProtocol> {
    // Use the mask's bits both to select and (via rotation) to order.
    let rot = usize::from(mask >> 4) % 4;
    (0..4).map(|i| ALL[(i + rot) % 4]).filter(|m| mask & (1 << ALL.iter().position(|x| x == m).unwrap()) != 0).collect()
}

struct Side {
    e: Ppp,
    inbox: VecDeque<Vec<u8>>,
    down: bool,
    hlak: Option<(Hlak, AuthMethod)>,
}

fuzz_target!(|input: Input| {
    let mut now = Instant::now();
    let mut scfg = Config::server();
    scfg.auth_protocols = pick(input.server_methods);
    let secret = if input.client_hash_only {
        Secret::NtHash(ppp::nt_hash("pw"))
    } else {
        Secret::Password(Password::new(if input.wrong_password { "bad" } else { "pw" }))
    };
    let mut ccfg = Config::client(Credentials { username: "DOM\\user".into(), secret });
    ccfg.auth_protocols = pick(input.client_methods);
    let mut s = Side {
        e: Ppp::new(scfg, Role::Authenticator, now, Box::new(SplitMix64::new(input.seed))),
        inbox: VecDeque::new(),
        down: false,
        hlak: None,
    };
    let mut c = Side {
        e: Ppp::new(ccfg, Role::Peer, now, Box::new(SplitMix64::new(input.seed ^ 0x55))),
        inbox: VecDeque::new(),
        down: false,
        hlak: None,
    };
    s.e.open(now);
    c.e.open(now);
    let mut pending = Vec::new();
    let mut tampered = false;
    let stored = Secret::Password(Password::new("pw"));
    for op in input.ops.iter().take(400) {
        match op {
            Op::Deliver(to_client) => {
                let (from, to) = if *to_client { (&mut s, &mut c) } else { (&mut c, &mut s) };
                let _ = from;
                if let Some(f) = to.inbox.pop_front() {
                    if to.e.handle_frame(now, &f).is_some() {
                        assert_eq!(to.e.phase(), Phase::Network);
                    }
                }
            }
            Op::DeliverAll => {
                for _ in 0..64 {
                    let mut any = false;
                    for to in [&mut s, &mut c] {
                        if let Some(f) = to.inbox.pop_front() {
                            any = true;
                            let _ = to.e.handle_frame(now, &f);
                        }
                    }
                    if !any {
                        break;
                    }
                    drain(&mut s, &mut c, &mut pending);
                }
            }
            Op::Drop(to_client) => {
                let to = if *to_client { &mut c } else { &mut s };
                to.inbox.pop_front();
            }
            Op::Duplicate(to_client) => {
                let to = if *to_client { &mut c } else { &mut s };
                if let Some(f) = to.inbox.front().cloned() {
                    to.inbox.push_back(f);
                }
            }
            Op::Swap(to_client) => {
                let to = if *to_client { &mut c } else { &mut s };
                if to.inbox.len() >= 2 {
                    to.inbox.swap(0, 1);
                }
            }
            Op::Corrupt { to_client, pos, xor } => {
                let to = if *to_client { &mut c } else { &mut s };
                if let Some(f) = to.inbox.front_mut() {
                    if !f.is_empty() && *xor != 0 {
                        let i = usize::from(*pos) % f.len();
                        f[i] ^= xor;
                        tampered = true;
                    }
                }
            }
            Op::Truncate { to_client, len } => {
                let to = if *to_client { &mut c } else { &mut s };
                if let Some(f) = to.inbox.front_mut() {
                    let l = usize::from(*len) % (f.len() + 1);
                    f.truncate(l);
                    tampered = true;
                }
            }
            Op::Inject { to_client, frame } => {
                let to = if *to_client { &mut c } else { &mut s };
                to.inbox.push_back(frame.clone());
                tampered = true;
            }
            Op::Advance(ms) => {
                now += Duration::from_millis(u64::from(*ms));
                for side in [&mut s, &mut c] {
                    if let Some(t) = side.e.poll_timeout() {
                        if t <= now {
                            side.e.handle_timeout(now);
                        }
                    }
                }
            }
            Op::Verdict(accept) => {
                if let Some((id, proof)) = pending.pop() {
                    let v = if *accept { ppp::verify(&proof, &stored) } else { Verdict::reject("no") };
                    let _ = s.e.auth_verdict(now, id, v);
                }
            }
            Op::SetIpv4 => {
                let _ = s.e.set_ipv4(
                    now,
                    Ipv4Assignment {
                        local: Ipv4Addr::new(10, 9, 0, 1),
                        peer: Ipv4Addr::new(10, 9, 0, 2),
                        dns1: Some(Ipv4Addr::new(10, 9, 0, 1)),
                        dns2: Some(Ipv4Addr::new(10, 9, 0, 3)),
                    },
                );
            }
            Op::DenyIpv4 => {
                let _ = s.e.deny_ipv4(now);
            }
            Op::Data(from_client) => {
                let from = if *from_client { &mut c } else { &mut s };
                let pkt = [0x45u8, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 10, 9, 0, 2, 10, 9, 0, 1];
                if let Ok(f) = from.e.send_ip(&pkt) {
                    let to = if *from_client { &mut s } else { &mut c };
                    to.inbox.push_back(f);
                }
            }
            Op::Close(client) => {
                let side = if *client { &mut c } else { &mut s };
                side.e.close(now, "fuzz");
            }
        }
        drain(&mut s, &mut c, &mut pending);
    }
    // Settle: a clean network, verdicts accepted, addresses assigned, up to
    // 15 virtual minutes. Whatever the ops did, the pair must end both down
    // or both in the Network phase: nothing may hang half-open.
    let deadline = now + Duration::from_secs(900);
    for _ in 0..100_000 {
        let mut moved = false;
        for to in [&mut s, &mut c] {
            while let Some(f) = to.inbox.pop_front() {
                moved = true;
                let _ = to.e.handle_frame(now, &f);
            }
        }
        drain(&mut s, &mut c, &mut pending);
        while let Some((id, proof)) = pending.pop() {
            moved = true;
            let _ = s.e.auth_verdict(now, id, ppp::verify(&proof, &stored));
            drain(&mut s, &mut c, &mut pending);
        }
        let a = Ipv4Assignment {
            local: Ipv4Addr::new(10, 9, 0, 1),
            peer: Ipv4Addr::new(10, 9, 0, 2),
            dns1: None,
            dns2: None,
        };
        if s.e.set_ipv4(now, a).is_ok() {
            moved = true;
        }
        drain(&mut s, &mut c, &mut pending);
        if moved || !s.inbox.is_empty() || !c.inbox.is_empty() {
            continue;
        }
        match [s.e.poll_timeout(), c.e.poll_timeout()].into_iter().flatten().min() {
            Some(t) if t <= deadline => {
                now = now.max(t);
                s.e.handle_timeout(now);
                c.e.handle_timeout(now);
                drain(&mut s, &mut c, &mut pending);
            }
            _ => break,
        }
    }
    assert_eq!(s.down, c.down, "one side down, the other not: server {:?} client {:?}", s.e, c.e);
    if !s.down {
        assert_eq!((s.e.phase(), c.e.phase()), (Phase::Network, Phase::Network));
    }
    if !tampered {
        if let (Some((hs, ms)), Some((hc, mc))) = (s.hlak, c.hlak) {
            assert_eq!(ms, mc);
            assert_eq!(hs, hc, "server and client HLAK must agree");
            if matches!(ms, AuthMethod::Pap | AuthMethod::ChapMd5 | AuthMethod::None) {
                assert!(hs.is_zero());
            }
        }
    }
});

fn drain(s: &mut Side, c: &mut Side, pending: &mut Vec<(ppp::AuthRequestId, ppp::Proof)>) {
    while let Some(f) = s.e.poll_transmit() {
        assert_eq!(&f[..2], &[0xFF, 0x03]);
        c.inbox.push_back(f);
    }
    while let Some(f) = c.e.poll_transmit() {
        assert_eq!(&f[..2], &[0xFF, 0x03]);
        s.inbox.push_back(f);
    }
    for side in [&mut *s, &mut *c] {
        while let Some(ev) = side.e.poll_event() {
            assert!(!side.down, "event after LinkDown: {ev:?}");
            match ev {
                Event::AuthRequest(r) => pending.push((r.id, r.proof)),
                Event::Authenticated { hlak, method, .. } => side.hlak = Some((hlak, method)),
                Event::LinkDown { .. } => side.down = true,
                _ => {}
            }
        }
    }
    // Bound memory: a fuzzer-driven link can generate frames forever.
    s.inbox.truncate(256);
    c.inbox.truncate(256);
}
