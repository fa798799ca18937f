//! PPP frame and control-packet parsers: never panic; what parses re-emits
//! to the same bytes and parses again to the same value.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ppp::frame;
use ppp::wire::Packet;

fuzz_target!(|data: &[u8]| {
    let Ok(f) = frame::parse(data) else { return };
    // Re-emit in our canonical form (FF 03 + 2-byte protocol) and re-parse.
    let re = frame::build(f.protocol, f.payload);
    let g = frame::parse(&re).expect("canonical frame parses");
    assert_eq!(g, f);
    if let Ok(p) = Packet::parse(f.payload) {
        assert!(p.buffer_len() <= f.payload.len());
        let mut out = Vec::new();
        p.emit(&mut out);
        assert_eq!(out.as_slice(), &f.payload[..p.buffer_len()]);
        assert_eq!(Packet::parse(&out).unwrap(), p);
    }
    // The PAP/CHAP/MS-CHAPv2 body parsers on the same bytes.
    let _ = ppp::auth::pap::parse_request(f.payload);
    if let Some(vn) = ppp::auth::chap::parse_value_name(f.payload) {
        let _ = ppp::auth::mschapv2::parse_response_value(vn.value);
    }
    let _ = ppp::auth::mschapv2::parse_authenticator_response(f.payload);
    let _ = ppp::auth::mschapv2::parse_failure(f.payload);
});
