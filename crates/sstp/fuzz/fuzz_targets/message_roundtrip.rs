//! SSTP packets (MS-SSTP §2.2): `Packet::parse` never panics; a control
//! message re-emitted from its typed attributes parses again to the same
//! message type and attributes, and re-emits byte for byte (canonical form);
//! each typed attribute re-emits its raw value with only the reserved fields
//! zeroed (and a Status Info's AttribValue cut to 64 bytes); a data packet
//! re-emits to the input with the reserved bits cleared. The NAK builder runs
//! on every attribute list as well.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sstp::connection::connect_request_problems;
use sstp::wire::{
    self, Attribute, AttributeId, Packet, RawAttribute, MAX_PACKET, MAX_STATUS_VALUE,
};

/// What `Attribute::emit` must write after the 4-byte header for `raw`.
fn canonical_value(raw: &RawAttribute<'_>) -> Vec<u8> {
    let mut v = raw.value.to_vec();
    match raw.id {
        AttributeId::StatusInfo => {
            v.truncate(8 + MAX_STATUS_VALUE);
            v[..3].fill(0);
        }
        AttributeId::CryptoBindingReq | AttributeId::CryptoBinding => v[..3].fill(0),
        _ => {}
    }
    v
}

fuzz_target!(|data: &[u8]| {
    let m = match Packet::parse(data) {
        Err(_) => return,
        Ok(Packet::Data(payload)) => {
            let mut out = Vec::new();
            wire::emit_data(payload, &mut out).expect("a parsed payload fits");
            let mut canon = data.to_vec();
            canon[1] &= 0x01; // reserved bits of byte 1 (C bit kept, and it is 0)
            canon[2] &= 0x0f; // R bits of the length
            assert_eq!(out, canon);
            return;
        }
        Ok(Packet::Control(m)) => m,
    };
    assert!(data.len() <= MAX_PACKET);

    let mut typed = Vec::new();
    for raw in &m.attributes {
        if let Ok(a) = Attribute::decode(raw) {
            let mut out = Vec::new();
            a.emit(&mut out);
            assert_eq!(out.len(), a.buffer_len());
            assert_eq!(out[1], u8::from(raw.id));
            assert_eq!(&out[4..], &canonical_value(raw)[..], "{a:?}");
            typed.push(a);
        }
    }

    let mut out = Vec::new();
    wire::emit_control(m.message_type, &typed, &mut out);
    assert!(out.len() <= data.len(), "re-emission never grows");
    let Ok(Packet::Control(again)) = Packet::parse(&out) else {
        panic!("re-emitted control packet does not parse: {out:02x?}")
    };
    assert_eq!(again.message_type, m.message_type);
    let typed_again: Vec<Attribute> = again
        .attributes
        .iter()
        .map(|a| Attribute::decode(a).expect("re-emitted attributes decode"))
        .collect();
    assert_eq!(typed_again, typed);
    let mut out2 = Vec::new();
    wire::emit_control(again.message_type, &typed_again, &mut out2);
    assert_eq!(out2, out, "canonical form is stable");

    for s in connect_request_problems(&m.attributes) {
        assert!(s.value.len() <= MAX_STATUS_VALUE);
    }
});
