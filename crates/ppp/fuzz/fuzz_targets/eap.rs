//! EAP and EAP-MSCHAPv2 parsers: never panic; parse -> emit -> parse is stable.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ppp::auth::eap;

fuzz_target!(|data: &[u8]| {
    let Ok(p) = eap::parse(data) else { return };
    let mut out = Vec::new();
    p.emit(&mut out);
    assert_eq!(eap::parse(&out).unwrap(), p);
    for request in [true, false] {
        if let Some(m) = eap::parse_mschapv2(p.type_data, request) {
            // Rebuild the Type-Data and check it parses to the same message.
            let td = match m {
                eap::MsChapV2Msg::Challenge { ms_id, challenge, name } => {
                    eap::mschapv2_data(eap::opcode::CHALLENGE, ms_id, &eap::value_name(challenge, name))
                }
                eap::MsChapV2Msg::Response { ms_id, value, name } => {
                    eap::mschapv2_data(eap::opcode::RESPONSE, ms_id, &eap::value_name(value, name))
                }
                eap::MsChapV2Msg::SuccessRequest { ms_id, message } => {
                    eap::mschapv2_data(eap::opcode::SUCCESS, ms_id, message)
                }
                eap::MsChapV2Msg::FailureRequest { ms_id, message } => {
                    eap::mschapv2_data(eap::opcode::FAILURE, ms_id, message)
                }
                eap::MsChapV2Msg::SuccessResponse => vec![eap::opcode::SUCCESS],
                eap::MsChapV2Msg::FailureResponse => vec![eap::opcode::FAILURE],
            };
            if td.len() == p.type_data.len() {
                assert_eq!(eap::parse_mschapv2(&td, request), Some(m));
            }
        }
    }
});
