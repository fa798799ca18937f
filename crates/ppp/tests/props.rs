//! Property tests: parsers round-trip, and two engines over a lossy link
//! never get stuck — they end up either both in the Network phase with data
//! flowing, or both down; over a link that lost nothing, always up.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ppp::frame::{self, Protocol};
use ppp::wire::{parse_options, RawOption};
use ppp::{
    AuthProtocol, Config, Credentials, Event, Ipv4Assignment, Password, Phase, Ppp, Role, Secret,
    SplitMix64, Users,
};
use proptest::prelude::*;

proptest! {
    #[test]
    fn frame_round_trip(proto in any::<u16>(), payload in proptest::collection::vec(any::<u8>(), 0..64)) {
        // Only valid protocol numbers (low octet odd, high octet even) can round-trip.
        let proto = (proto | 1) & 0xFEFF;
        let f = frame::build(Protocol::from(proto), &payload);
        let p = frame::parse(&f).unwrap();
        prop_assert_eq!(u16::from(p.protocol), proto);
        prop_assert_eq!(p.payload, payload.as_slice());
    }

    #[test]
    fn parsers_never_panic(data in proptest::collection::vec(any::<u8>(), 0..128)) {
        let _ = frame::parse(&data);
        let _ = parse_options(&data);
        let _ = ppp::auth::eap::parse(&data);
        let _ = ppp::auth::eap::parse_mschapv2(&data, true);
        let _ = ppp::auth::eap::parse_mschapv2(&data, false);
        let _ = ppp::wire::Packet::parse(&data);
    }

    #[test]
    fn options_round_trip(opts in proptest::collection::vec((any::<u8>(), proptest::collection::vec(any::<u8>(), 0..20)), 0..8)) {
        let mut buf = Vec::new();
        for (k, d) in &opts {
            RawOption { kind: *k, data: d }.emit(&mut buf);
        }
        let parsed = parse_options(&buf).unwrap();
        prop_assert_eq!(parsed.len(), opts.len());
        for (p, (k, d)) in parsed.iter().zip(&opts) {
            prop_assert_eq!(p.kind, *k);
            prop_assert_eq!(p.data, d.as_slice());
        }
    }

    #[test]
    fn lossy_link_never_gets_stuck(
        // A quarter of the cases lose nothing.
        drops in prop_oneof![
            1 => Just(Vec::new()),
            3 => proptest::collection::vec(any::<bool>(), 0..48),
        ],
        method in 0usize..4,
        seed in any::<u64>(),
    ) {
        let methods = [AuthProtocol::MsChapV2, AuthProtocol::Eap, AuthProtocol::ChapMd5, AuthProtocol::Pap];
        let mut scfg = Config::server();
        scfg.auth_protocols = vec![methods[method]];
        let ccfg = Config::client(Credentials { username: "alice".into(), secret: Secret::Password(Password::new("pw")) });
        let users = Users::parse("alice:plain:pw").unwrap();
        let t0 = Instant::now();
        let mut now = t0;
        let mut s = Ppp::new(scfg, Role::Authenticator, now, Box::new(SplitMix64::new(seed)));
        let mut c = Ppp::new(ccfg, Role::Peer, now, Box::new(SplitMix64::new(!seed)));
        s.open(now);
        c.open(now);
        let (mut to_s, mut to_c) = (VecDeque::new(), VecDeque::new());
        let (mut sent, mut dropped) = (0usize, 0usize);
        let (mut s_v4, mut c_v4) = (false, false);
        while now - t0 < Duration::from_secs(600) {
            let mut moved = false;
            for (from, q) in [(&mut s, &mut to_c), (&mut c, &mut to_s)] {
                while let Some(f) = from.poll_transmit() {
                    moved = true;
                    let drop = drops.get(sent).copied().unwrap_or(false);
                    sent += 1;
                    if drop {
                        dropped += 1;
                    } else {
                        q.push_back(f);
                    }
                }
            }
            if let Some(f) = to_s.pop_front() {
                moved = true;
                let _ = s.handle_frame(now, &f);
            }
            if let Some(f) = to_c.pop_front() {
                moved = true;
                let _ = c.handle_frame(now, &f);
            }
            while let Some(e) = s.poll_event() {
                moved = true;
                match e {
                    Event::AuthRequest(r) => {
                        let v = users.verify(&r.username, &r.proof);
                        s.auth_verdict(now, r.id, v).unwrap();
                    }
                    Event::NeedIpv4Address { .. } => {
                        let a = Ipv4Assignment { local: Ipv4Addr::new(10, 1, 0, 1), peer: Ipv4Addr::new(10, 1, 0, 2), dns1: None, dns2: None };
                        s.set_ipv4(now, a).unwrap();
                    }
                    Event::Ipv4Up { .. } => s_v4 = true,
                    _ => {}
                }
            }
            while let Some(e) = c.poll_event() {
                moved = true;
                if let Event::Ipv4Up { .. } = e {
                    c_v4 = true;
                }
            }
            if s_v4 && c_v4 && s.ipcp_state() == ppp::fsm::State::Opened && c.ipcp_state() == ppp::fsm::State::Opened {
                break;
            }
            if moved {
                continue;
            }
            match [s.poll_timeout(), c.poll_timeout()].into_iter().flatten().min() {
                Some(t) => {
                    now = now.max(t);
                    s.handle_timeout(now);
                    c.handle_timeout(now);
                }
                None => break,
            }
        }
        let up = s.phase() == Phase::Network && c.phase() == Phase::Network && s_v4 && c_v4;
        let down = s.is_down() && c.is_down();
        // A lossless link must come up; a lossy one may also give up cleanly.
        if dropped == 0 {
            prop_assert!(up, "lossless link not up: server {:?} client {:?} after {:?}", s, c, now - t0);
        } else {
            prop_assert!(up || down, "stuck after {} drops: server {:?} client {:?} after {:?}", dropped, s, c, now - t0);
        }
        if up {
            let pkt = [0x45u8, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 10, 1, 0, 2, 10, 1, 0, 1];
            let f = c.send_ip(&pkt).unwrap();
            prop_assert!(s.handle_frame(now, &f).is_some());
        }
    }
}
