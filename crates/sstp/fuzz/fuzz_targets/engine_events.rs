//! The client and server engines (MS-SSTP §3.1–§3.3) back to back. The input
//! is a small byte-code script (so seeds can be written by hand, see
//! `corpus/engine_events/`): the fuzzer drives the network between the two
//! (deliver, split, drop, corrupt, inject hand-made or raw packets into either
//! side), the virtual clock (timers run at their exact deadlines) and the
//! driver calls (`start`, `higher_layer_authenticated` with the right or a
//! wrong HLAK, `send_ppp_frame`, `disconnect`, `lower_layer_closed`,
//! `handle_timeout` at any time). Injected packets include a correctly bound
//! Call Connected and a valid Ack, so a lone server or client reaches every
//! state without its peer.
//!
//! Checks, after every step: no panic; what an engine transmits is a valid
//! SSTP stream (delineates, parses, attributes decode); PPP data frames are
//! sent and delivered only after `Event::Connected`, control frames only
//! after `Event::PppControlAllowed`; `Connected` at most once; nothing at all
//! (no event, no byte) after `Event::Closed`; `is_closed()` agrees with the
//! events; a closed engine has no timer; after `handle_timeout(now)` no timer
//! is still due, and no timer is further away than the longest timer value.
#![no_main]
use std::collections::VecDeque;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use sstp::binding::{self, HashProtocol};
use sstp::decoder::{Decoder, Frame};
use sstp::wire::{
    self, Attribute, AttributeId, CryptoBinding, MessageType, Packet, Status, StatusInfo,
    MAX_PACKET,
};
use sstp::{ClientConfig, Connection, Event, ServerConfig, Timers};

const CERT_SHA1: [u8; 20] = [0x11; 20];
const CERT_SHA256: [u8; 32] = [0x22; 32];
const NONCE: [u8; 32] = [0x44; 32];
const HLAK: [u8; 32] = [0x33; 32];

/// Reads the script; zeros once it runs out.
struct Script<'a>(&'a [u8]);

impl Script<'_> {
    fn done(&self) -> bool {
        self.0.is_empty()
    }
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a.to_vec()
    }
}

/// `SSTP_FUZZ_TRACE=1`: print every op, event and state (to triage inputs).
fn trace() -> bool {
    static T: OnceLock<bool> = OnceLock::new();
    *T.get_or_init(|| std::env::var_os("SSTP_FUZZ_TRACE").is_some())
}

fn timer(b: u8, default: u64) -> Duration {
    Duration::from_secs(if b == 0 {
        default
    } else {
        u64::from(b % 120) + 1
    })
}

fn good_binding(sha1: bool) -> CryptoBinding {
    let p = if sha1 {
        HashProtocol::Sha1
    } else {
        HashProtocol::Sha256
    };
    binding::client_binding(p, NONCE, &CERT_SHA1, &CERT_SHA256, &HLAK)
}

fn ppp_frame(control: bool, len: usize) -> Vec<u8> {
    let mut f = if control {
        vec![0xff, 0x03, 0xc0, 0x21, 0x09, 0x01, 0x00, 0x08]
    } else {
        vec![0xff, 0x03, 0x00, 0x21, 0x45, 0x00, 0x00, 0x14]
    };
    f.resize(len.max(2), 0x5a);
    f
}

fn attribute(s: &mut Script) -> Attribute {
    match s.u8() % 5 {
        0 => Attribute::EncapsulatedProtocolId(s.u16()),
        1 => {
            let id = AttributeId::from(s.u8());
            let status = Status::from(u32::from(s.u8() % 13));
            let n = usize::from(s.u8() % 80);
            Attribute::StatusInfo(StatusInfo::new(id, status).with_value(&s.bytes(n)))
        }
        2 => {
            let mut nonce = NONCE;
            nonce[0] ^= s.u8();
            Attribute::CryptoBindingReq {
                hash_bitmask: s.u8(),
                nonce,
            }
        }
        3 => {
            let mut b = good_binding(s.bool());
            let (which, flip) = (s.u8(), s.u8());
            match which % 4 {
                0 => b.nonce[usize::from(flip) % 32] ^= flip,
                1 => b.cert_hash[usize::from(flip) % 32] ^= flip,
                2 => b.compound_mac[usize::from(flip) % 32] ^= flip,
                _ => b.hash_protocol ^= flip,
            }
            Attribute::CryptoBinding(b)
        }
        // A Status Info without error (acceptable in a Call Connect Request
        // and a Call Connected).
        _ => Attribute::StatusInfo(StatusInfo::new(AttributeId::NoError, Status::NoError)),
    }
}

fn control(t: MessageType, attrs: &[Attribute]) -> Vec<u8> {
    let len = 8 + attrs.iter().map(Attribute::buffer_len).sum::<usize>();
    let mut v = Vec::new();
    if len <= MAX_PACKET {
        wire::emit_control(t, attrs, &mut v);
    }
    v
}

/// A hand-made packet for either side.
fn message(s: &mut Script) -> Vec<u8> {
    use MessageType as M;
    let none: [Attribute; 0] = [];
    match s.u8() % 13 {
        0 => control(
            M::CallConnectRequest,
            &[Attribute::EncapsulatedProtocolId(1)],
        ),
        1 => control(
            M::CallConnectAck,
            &[Attribute::CryptoBindingReq {
                hash_bitmask: s.u8(),
                nonce: NONCE,
            }],
        ),
        2 => {
            let n = s.u8() % 4;
            let attrs: Vec<Attribute> = (0..n).map(|_| attribute(s)).collect();
            control(M::CallConnectNak, &attrs)
        }
        3 => control(
            M::CallConnected,
            &[Attribute::CryptoBinding(good_binding(s.bool()))],
        ),
        4 => control(
            M::CallAbort,
            &[Attribute::StatusInfo(StatusInfo::new(
                AttributeId::from(s.u8()),
                Status::from(u32::from(s.u8())),
            ))],
        ),
        5 => control(
            M::CallDisconnect,
            &[Attribute::StatusInfo(StatusInfo::new(
                AttributeId::NoError,
                Status::NoError,
            ))],
        ),
        6 => control(M::CallDisconnectAck, &none),
        7 => control(M::EchoRequest, &none),
        8 => control(M::EchoResponse, &none),
        9 => {
            // Any message type, any typed attributes.
            let t = MessageType::from(u16::from(s.u8() % 11));
            let n = s.u8() % 6;
            let attrs: Vec<Attribute> = (0..n).map(|_| attribute(s)).collect();
            control(t, &attrs)
        }
        10 => {
            // Any message type with raw attributes (unknown IDs, bad lengths);
            // a burst of them for the NAK paths.
            let t = MessageType::from(u16::from(s.u8() % 11));
            let (n, id, stride) = (usize::from(s.u8()), s.u8(), s.u8());
            let vlen = usize::from(s.u8() % 40);
            let value = s.bytes(vlen);
            let mut v = vec![0x10, 0x01, 0, 0];
            v.extend_from_slice(&u16::from(t).to_be_bytes());
            v.extend_from_slice(&(n as u16).to_be_bytes());
            for i in 0..n {
                if v.len() + 4 + value.len() > MAX_PACKET {
                    break;
                }
                v.extend_from_slice(&[0, id.wrapping_add((i as u8) & stride)]);
                v.extend_from_slice(&((4 + value.len()) as u16).to_be_bytes());
                v.extend_from_slice(&value);
            }
            let len = v.len() as u16;
            v[2..4].copy_from_slice(&len.to_be_bytes());
            v
        }
        11 => {
            let control = s.bool();
            let len = usize::from(s.u16() % 4096);
            let mut v = Vec::new();
            let _ = wire::emit_data(&ppp_frame(control, len), &mut v);
            v
        }
        _ => {
            let n = usize::from(s.u8());
            s.bytes(n)
        }
    }
}

#[derive(Default)]
struct Seen {
    control_allowed: bool,
    connected: bool,
    closed: bool,
}

struct Side {
    conn: Connection,
    /// Bytes on their way to this side.
    inbox: VecDeque<u8>,
    seen: Seen,
}

impl Side {
    fn new(conn: Connection) -> Self {
        Side {
            conn,
            inbox: VecDeque::new(),
            seen: Seen::default(),
        }
    }
}

/// Checks what side `me` put out and reported; moves its bytes to `peer`.
fn pump(me: &mut Side, peer: &mut Side, who: &str) {
    let mut out = Vec::new();
    if me.conn.poll_transmit(&mut out) {
        assert!(!me.seen.closed, "{who}: transmitted after Closed");
        let mut d = Decoder::new();
        d.push(&out);
        while let Some(f) = d.next_frame().expect("our output delineates") {
            match f {
                Frame::Data(p) => {
                    if wire::ppp_frame_is_control(&p) {
                        assert!(
                            me.seen.control_allowed,
                            "{who}: PPP control frame too early"
                        );
                    } else {
                        assert!(me.seen.connected, "{who}: PPP data frame before Connected");
                    }
                }
                Frame::Control(b) => {
                    let Ok(Packet::Control(m)) = Packet::parse(&b) else {
                        panic!("{who}: our control packet does not parse: {b:02x?}")
                    };
                    assert!(!matches!(m.message_type, MessageType::Unknown(_)));
                    for a in &m.attributes {
                        Attribute::decode(a).expect("our attributes decode");
                    }
                }
            }
        }
        assert_eq!(d.pending(), 0, "{who}: a partial packet was transmitted");
        peer.inbox.extend(out);
    }
    while let Some(e) = me.conn.poll_event() {
        if trace() {
            eprintln!("  {who}: {e:?}");
        }
        assert!(!me.seen.closed, "{who}: {e:?} after Closed");
        match &e {
            Event::PppControlAllowed => me.seen.control_allowed = true,
            Event::Connected => {
                assert!(!me.seen.connected, "{who}: Connected twice");
                assert!(
                    me.seen.control_allowed,
                    "{who}: Connected before the PPP phase"
                );
                me.seen.connected = true;
            }
            Event::PppFrame(f) => {
                if wire::ppp_frame_is_control(f) {
                    assert!(
                        me.seen.control_allowed,
                        "{who}: control frame delivered too early"
                    );
                } else {
                    assert!(
                        me.seen.connected,
                        "{who}: data frame delivered before Connected"
                    );
                }
            }
            Event::Closed { .. } => me.seen.closed = true,
            _ => {}
        }
    }
    assert_eq!(
        me.conn.is_closed(),
        me.seen.closed,
        "{who}: is_closed() vs events"
    );
    if me.seen.closed {
        assert_eq!(
            me.conn.poll_timeout(),
            None,
            "{who}: a closed engine has a timer"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let mut s = Script(data);
    let cfg = s.bytes(8);
    let b = |i: usize| cfg.get(i).copied().unwrap_or(0);
    let timers = Timers {
        negotiation: timer(b(0), 60),
        hello: timer(b(1), 60),
        abort1: timer(b(2), 3),
        abort2: timer(b(3), 1),
        disconnect1: timer(b(4), 5),
        disconnect2: timer(b(5), 1),
        max_naks: if b(6) == 0 { 3 } else { u32::from(b(6) % 5) },
    };
    let longest = [
        timers.negotiation,
        timers.hello,
        timers.abort1,
        timers.abort2,
        timers.disconnect1,
        timers.disconnect2,
    ]
    .into_iter()
    .max()
    .unwrap();
    let mask = |m: u8| if m == 0 { 3 } else { m };
    let mut scfg = ServerConfig::new(CERT_SHA1, CERT_SHA256);
    scfg.timers = timers;
    scfg.hash_bitmask = mask(b(7) & 3);
    scfg.bypass_hl_auth = b(7) & 0x10 != 0;
    let mut ccfg = ClientConfig::new(CERT_SHA1, CERT_SHA256);
    ccfg.timers = timers;
    ccfg.hash_bitmask = mask((b(7) >> 2) & 3);

    let mut now = Instant::now();
    let mut c = Side::new(Connection::client(ccfg));
    let mut sv = Side::new(Connection::server(scfg, now, NONCE));

    let mut steps = 0;
    while !s.done() && steps < 500 {
        steps += 1;
        let op = s.u8();
        let server = op & 0x80 != 0;
        // The side the op is about (for network ops: the receiving side).
        let me = if server { &mut sv } else { &mut c };
        match op % 13 {
            0 => me.conn.start(now),
            1 | 2 => {
                // Deliver (all, or up to `max` bytes, in chunks of `chunk`).
                let max = if op % 13 == 1 {
                    usize::MAX
                } else {
                    usize::from(s.u16())
                };
                let chunk = usize::from(s.u8()).max(1);
                let n = max.min(me.inbox.len());
                let bytes: Vec<u8> = me.inbox.drain(..n).collect();
                for piece in bytes.chunks(if op % 13 == 1 {
                    bytes.len().max(1)
                } else {
                    chunk
                }) {
                    me.conn.handle_input(now, piece);
                }
            }
            3 => {
                let n = usize::from(s.u8()).min(me.inbox.len());
                me.inbox.drain(..n);
            }
            4 => {
                let (pos, x) = (usize::from(s.u16()), s.u8());
                if !me.inbox.is_empty() {
                    let i = pos % me.inbox.len();
                    me.inbox[i] ^= x;
                }
            }
            5 => {
                let m = message(&mut s);
                me.inbox.extend(m);
            }
            6 => {
                // Advance the clock, running each timer at its deadline.
                let until = now + Duration::from_millis(u64::from(s.u8()) * 250);
                loop {
                    let next = [c.conn.poll_timeout(), sv.conn.poll_timeout()]
                        .into_iter()
                        .flatten()
                        .min();
                    match next {
                        Some(t) if t <= until => {
                            now = now.max(t);
                            c.conn.handle_timeout(now);
                            sv.conn.handle_timeout(now);
                            pump(&mut c, &mut sv, "client");
                            pump(&mut sv, &mut c, "server");
                        }
                        _ => break,
                    }
                }
                now = until;
            }
            7 => {
                me.conn.handle_timeout(now);
                let due = me.conn.poll_timeout().is_some_and(|t| t <= now);
                assert!(!due, "timer still due after handle_timeout");
            }
            8 => {
                let k = s.u8();
                let hlak = if k == 0 { HLAK } else { [k; 32] };
                me.conn.higher_layer_authenticated(now, hlak);
            }
            9 => {
                let control = s.bool();
                let len = usize::from(s.u16() % 4200);
                let frame = ppp_frame(control, len);
                if me.conn.send_ppp_frame(&frame).is_ok() {
                    assert!(frame.len() <= wire::MAX_PAYLOAD);
                    assert!(!me.seen.closed);
                }
            }
            10 => me.conn.disconnect(now),
            11 => me.conn.lower_layer_closed(now),
            _ => {
                // Raw bytes of any shape.
                let n = usize::from(s.u8());
                let raw = s.bytes(n);
                me.inbox.extend(raw);
            }
        }
        pump(&mut c, &mut sv, "client");
        pump(&mut sv, &mut c, "server");
        if trace() {
            eprintln!(
                "op {:>2} {} -> client {:?}, server {:?}",
                op % 13,
                if server { "server" } else { "client" },
                c.conn.state(),
                sv.conn.state()
            );
        }
        for (side, who) in [(&c, "client"), (&sv, "server")] {
            if let Some(t) = side.conn.poll_timeout() {
                assert!(t <= now + longest, "{who}: timer beyond the longest value");
            }
        }
    }
});
