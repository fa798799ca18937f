//! Property tests for the wire format (MS-SSTP §2.2), the stream decoder
//! (§3.1.5.1) and the engines' robustness against arbitrary input.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use sstp::connection::connect_request_problems;
use sstp::decoder::{Decoder, Frame};
use sstp::wire::{
    self, Attribute, AttributeId, CryptoBinding, MessageType, Packet, RawAttribute, Status,
    StatusInfo, MAX_PACKET, MAX_STATUS_VALUE, PROTOCOL_PPP,
};
use sstp::{ClientConfig, Connection, Event, ServerConfig};

fn attribute() -> impl Strategy<Value = Attribute> {
    prop_oneof![
        any::<u16>().prop_map(Attribute::EncapsulatedProtocolId),
        (
            any::<u8>(),
            any::<u32>(),
            proptest::collection::vec(any::<u8>(), 0..100)
        )
            .prop_map(|(id, st, v)| Attribute::StatusInfo(StatusInfo {
                attrib_id: AttributeId::from(id),
                status: Status::from(st),
                // Longer than 64 bytes on purpose: only 64 go on the wire.
                value: v,
            })),
        (any::<u8>(), any::<[u8; 32]>()).prop_map(|(hash_bitmask, nonce)| {
            Attribute::CryptoBindingReq {
                hash_bitmask,
                nonce,
            }
        }),
        (
            any::<u8>(),
            any::<[u8; 32]>(),
            any::<[u8; 32]>(),
            any::<[u8; 32]>()
        )
            .prop_map(|(hash_protocol, nonce, cert_hash, compound_mac)| {
                Attribute::CryptoBinding(CryptoBinding {
                    hash_protocol,
                    nonce,
                    cert_hash,
                    compound_mac,
                })
            }),
    ]
}

fn message_type() -> impl Strategy<Value = MessageType> {
    (0u16..12).prop_map(MessageType::from)
}

/// What a decoded attribute must look like after a trip over the wire.
fn on_the_wire(a: &Attribute) -> Attribute {
    match a {
        Attribute::StatusInfo(s) => {
            Attribute::StatusInfo(StatusInfo::new(s.attrib_id, s.status).with_value(&s.value))
        }
        other => other.clone(),
    }
}

/// One packet of a stream: data or control, well formed.
fn packet() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(|p| {
            let mut v = Vec::new();
            wire::emit_data(&p, &mut v).unwrap();
            v
        }),
        (message_type(), proptest::collection::vec(attribute(), 0..4)).prop_map(|(t, attrs)| {
            let mut v = Vec::new();
            wire::emit_control(t, &attrs, &mut v);
            v
        }),
    ]
}

/// A frame as (is control, bytes), to compare runs.
fn owned(f: Frame<'_>) -> (bool, Vec<u8>) {
    match f {
        Frame::Data(p) => (false, p.to_vec()),
        Frame::Control(b) => (true, b.to_vec()),
    }
}

fn drain(d: &mut Decoder, out: &mut Vec<(bool, Vec<u8>)>) -> bool {
    loop {
        match d.next_frame() {
            Ok(Some(f)) => out.push(owned(f)),
            Ok(None) => return true,
            Err(_) => return false,
        }
    }
}

/// Checks that an engine's output is a valid SSTP stream.
fn well_formed(bytes: &[u8]) {
    let mut d = Decoder::new();
    d.push(bytes);
    while let Some(f) = d.next_frame().expect("our output delineates") {
        if let Frame::Control(b) = f {
            let Ok(Packet::Control(m)) = Packet::parse(b) else {
                panic!("our control packet does not parse: {b:02x?}")
            };
            for a in &m.attributes {
                Attribute::decode(a).expect("our attributes decode");
            }
        }
    }
    assert_eq!(d.pending(), 0);
}

proptest! {
    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..5000)) {
        if let Ok(Packet::Control(m)) = Packet::parse(&bytes) {
            for a in &m.attributes {
                let _ = Attribute::decode(a);
            }
            for s in connect_request_problems(&m.attributes) {
                prop_assert!(s.value.len() <= MAX_STATUS_VALUE);
            }
        }
    }

    #[test]
    fn parse_never_panics_on_almost_valid_packets(
        pkt in packet(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
    ) {
        let mut pkt = pkt;
        for (i, x) in flips {
            let n = pkt.len();
            pkt[i % n] ^= x;
        }
        let _ = Packet::parse(&pkt);
    }

    #[test]
    fn attributes_round_trip(t in message_type(), attrs in proptest::collection::vec(attribute(), 0..8)) {
        let mut v = vec![0xa5; 3];
        wire::emit_control(t, &attrs, &mut v);
        prop_assert_eq!(&v[..3], &[0xa5; 3]);
        let v = &v[3..];
        let Ok(Packet::Control(m)) = Packet::parse(v) else {
            return Err(TestCaseError::fail("emitted control packet does not parse"));
        };
        prop_assert_eq!(m.message_type, t);
        let back: Vec<Attribute> = m.attributes.iter().map(|a| Attribute::decode(a).unwrap()).collect();
        let expected: Vec<Attribute> = attrs.iter().map(on_the_wire).collect();
        prop_assert_eq!(&back, &expected);
        // Each attribute's length is what buffer_len says.
        for (raw, a) in m.attributes.iter().zip(&attrs) {
            prop_assert_eq!(raw.value.len() + 4, a.buffer_len());
        }
    }

    #[test]
    fn unknown_attributes_never_decode(id in 5u8.., value in proptest::collection::vec(any::<u8>(), 0..50)) {
        let raw = RawAttribute { id: AttributeId::from(id), value: &value };
        prop_assert!(Attribute::decode(&raw).is_err());
    }

    #[test]
    fn data_packets_round_trip(payload in proptest::collection::vec(any::<u8>(), 0..=wire::MAX_PAYLOAD)) {
        let mut v = Vec::new();
        wire::emit_data(&payload, &mut v).unwrap();
        prop_assert_eq!(v.len(), payload.len() + 4);
        prop_assert_eq!(Packet::parse(&v), Ok(Packet::Data(&payload[..])));
    }

    #[test]
    fn any_split_decodes_the_same(
        packets in proptest::collection::vec(packet(), 0..10),
        cuts in proptest::collection::vec(any::<usize>(), 0..20),
    ) {
        let stream = packets.concat();
        let mut whole = Vec::new();
        let mut d = Decoder::new();
        d.push(&stream);
        prop_assert!(drain(&mut d, &mut whole));
        prop_assert_eq!(whole.len(), packets.len());
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (stream.len() + 1)).collect();
        cuts.push(stream.len());
        cuts.sort_unstable();
        let cut_points = cuts.clone();
        let mut split = Vec::new();
        let mut d = Decoder::new();
        let mut at = 0;
        for c in cuts {
            d.push(&stream[at..c]);
            at = c;
            prop_assert!(drain(&mut d, &mut split));
            prop_assert!(d.pending() < MAX_PACKET);
        }
        prop_assert_eq!(&split, &whole);
        // The zero-copy path gives the same packets for the same cuts.
        let mut decoded = Vec::new();
        let mut d = Decoder::new();
        let mut at = 0;
        for &c in &cut_points {
            d.decode(&stream[at..c], |f| { decoded.push(owned(f)); true }).unwrap();
            at = c;
            prop_assert!(d.pending() < MAX_PACKET);
        }
        prop_assert_eq!(decoded, whole);
    }

    #[test]
    fn decoder_on_garbage_never_panics_and_stays_bounded(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..600), 0..20),
    ) {
        let mut d = Decoder::new();
        let mut frames = Vec::new();
        for c in &chunks {
            d.push(c);
            if !drain(&mut d, &mut frames) {
                // Failed for good.
                prop_assert!(d.next_frame().is_err());
                break;
            }
            prop_assert!(d.pending() < MAX_PACKET);
        }
        for (control, p) in frames {
            if !control {
                prop_assert!(p.len() <= wire::MAX_PAYLOAD);
            }
        }
    }

    #[test]
    fn acceptable_requests_have_no_problems(extra in proptest::collection::vec(0u8..5, 0..5)) {
        // One Encapsulated Protocol ID for PPP plus Status Infos without error
        // anywhere in the list: acceptable (§3.3.5.2.2).
        let mut attrs = Vec::new();
        for (i, _) in extra.iter().enumerate() {
            if i == extra.len() / 2 {
                attrs.push(Attribute::EncapsulatedProtocolId(PROTOCOL_PPP));
            }
            attrs.push(Attribute::StatusInfo(StatusInfo::new(AttributeId::NoError, Status::NoError)));
        }
        if extra.is_empty() {
            attrs.push(Attribute::EncapsulatedProtocolId(PROTOCOL_PPP));
        }
        let mut v = Vec::new();
        wire::emit_control(MessageType::CallConnectRequest, &attrs, &mut v);
        let Ok(Packet::Control(m)) = Packet::parse(&v) else { unreachable!() };
        prop_assert_eq!(connect_request_problems(&m.attributes), vec![]);
    }

    /// Arbitrary well-formed and mangled packets, in arbitrary chunks, at
    /// arbitrary times, into a client and a server: no panic, the output is
    /// always a valid stream, nothing after Closed.
    #[test]
    fn engines_survive_arbitrary_input(
        server in any::<bool>(),
        start in any::<bool>(),
        packets in proptest::collection::vec((packet(), any::<u8>(), 0u64..200), 0..12),
    ) {
        let t0 = Instant::now();
        let mut now = t0;
        let mut c = if server {
            Connection::server(ServerConfig::new([1; 20], [2; 32]), t0, [3; 32])
        } else {
            let mut c = Connection::client(ClientConfig::new([1; 20], [2; 32]));
            if start {
                c.start(t0);
            }
            c
        };
        let mut closed = false;
        for (pkt, mangle, secs) in packets {
            let mut pkt = pkt;
            if mangle & 0x80 != 0 {
                let n = pkt.len();
                pkt[usize::from(mangle) % n] ^= mangle;
            }
            now += Duration::from_secs(secs);
            c.handle_timeout(now);
            prop_assert!(c.poll_timeout().is_none_or(|t| t > now));
            c.handle_input(now, &pkt);
            if start && !server {
                c.higher_layer_authenticated(now, [4; 32]);
            }
            let mut out = Vec::new();
            let sent = c.poll_transmit(&mut out);
            prop_assert!(!(closed && sent), "transmitted after Closed");
            well_formed(&out);
            while let Some(e) = c.poll_event() {
                prop_assert!(!closed, "event after Closed: {:?}", e);
                closed |= matches!(e, Event::Closed { .. });
            }
            prop_assert_eq!(closed, c.is_closed());
            if closed {
                prop_assert_eq!(c.poll_timeout(), None);
            }
        }
    }
}
