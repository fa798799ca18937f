//! Arbitrary frames, timer firings and API calls against a server and a
//! client engine. Checks: no panic; LinkDown at most once and last; data is
//! only released in the Network phase with the NCP open; every transmitted
//! frame is in our canonical form and parses; after each step the next timer
//! lies in the future (expired timers were fired, not left behind).
#![no_main]
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use ppp::{
    Config, Credentials, Event, Ipv4Assignment, Password, Phase, Ppp, Role, Secret, SplitMix64, Verdict,
};

#[derive(Arbitrary, Debug)]
enum Op {
    Frame(Vec<u8>),
    /// A frame with a valid header for one of the protocols we handle.
    Control { proto: u8, body: Vec<u8> },
    Advance(u16),
    Accept,
    Reject,
    SetIpv4,
    DenyIpv4,
    SendIp(Vec<u8>),
    Close,
    LowerDown,
}

#[derive(Arbitrary, Debug)]
struct Input {
    server: bool,
    seed: u64,
    methods: u8,
    ops: Vec<Op>,
}

const PROTOS: [u16; 9] = [0xC021, 0xC023, 0xC223, 0xC227, 0x8021, 0x8057, 0x0021, 0x0057, 0x80FD];

fuzz_target!(|input: Input| {
    let t0 = Instant::now();
    let mut now = t0;
    let mut cfg = if input.server {
        Config::server()
    } else {
        Config::client(Credentials { username: "u".into(), secret: Secret::Password(Password::new("p")) })
    };
    let all = [
        ppp::AuthProtocol::MsChapV2,
        ppp::AuthProtocol::Eap,
        ppp::AuthProtocol::ChapMd5,
        ppp::AuthProtocol::Pap,
    ];
    cfg.auth_protocols = all.iter().enumerate().filter(|(i, _)| input.methods & (1 << i) != 0).map(|(_, m)| *m).collect();
    let role = if input.server { Role::Authenticator } else { Role::Peer };
    let mut e = Ppp::new(cfg, role, now, Box::new(SplitMix64::new(input.seed)));
    e.open(now);
    let mut pending = Vec::new();
    let mut down = false;
    for op in input.ops.iter().take(256) {
        match op {
            Op::Frame(f) => {
                let r = e.handle_frame(now, f);
                if r.is_some() {
                    assert_eq!(e.phase(), Phase::Network);
                }
            }
            Op::Control { proto, body } => {
                let p = PROTOS[usize::from(*proto) % PROTOS.len()];
                let mut f = vec![0xFF, 0x03];
                f.extend_from_slice(&p.to_be_bytes());
                f.extend_from_slice(body);
                if e.handle_frame(now, &f).is_some() {
                    assert_eq!(e.phase(), Phase::Network);
                }
            }
            Op::Advance(ms) => {
                now += Duration::from_millis(u64::from(*ms) * 10);
                if let Some(t) = e.poll_timeout() {
                    if t <= now {
                        e.handle_timeout(now);
                    }
                }
            }
            Op::Accept | Op::Reject => {
                if let Some((id, proof)) = pending.pop() {
                    let v = if matches!(op, Op::Accept) {
                        ppp::verify(&proof, &Secret::Password(Password::new("p")))
                    } else {
                        Verdict::reject("no")
                    };
                    let _ = e.auth_verdict(now, id, v);
                }
            }
            Op::SetIpv4 => {
                let _ = e.set_ipv4(
                    now,
                    Ipv4Assignment {
                        local: Ipv4Addr::new(10, 0, 0, 1),
                        peer: Ipv4Addr::new(10, 0, 0, 2),
                        dns1: Some(Ipv4Addr::new(10, 0, 0, 1)),
                        dns2: None,
                    },
                );
            }
            Op::DenyIpv4 => {
                let _ = e.deny_ipv4(now);
            }
            Op::SendIp(p) => {
                if let Ok(f) = e.send_ip(p) {
                    assert_eq!(e.phase(), Phase::Network);
                    assert_eq!(&f[4..], p.as_slice());
                }
            }
            Op::Close => e.close(now, "bye"),
            Op::LowerDown => e.lower_down(now),
        }
        let was_down = down;
        while let Some(f) = e.poll_transmit() {
            assert!(!was_down, "frame sent after LinkDown was reported");
            assert_eq!(&f[..2], &[0xFF, 0x03]);
            assert!(ppp::frame::parse(&f).is_ok());
        }
        while let Some(ev) = e.poll_event() {
            assert!(!down, "event after LinkDown: {ev:?}");
            match ev {
                Event::AuthRequest(r) => pending.push((r.id, r.proof)),
                Event::LinkDown { .. } => down = true,
                _ => {}
            }
        }
        if let Some(t) = e.poll_timeout() {
            assert!(!down, "timer armed after LinkDown");
            // Every timer that came due fired in the `handle_timeout` of the
            // last Advance, and every timer armed since lies ahead: a driver
            // that sleeps until `poll_timeout()` never spins on a stale one.
            assert!(t > now, "timer due {:?} before now, not fired", now - t);
        }
    }
});
