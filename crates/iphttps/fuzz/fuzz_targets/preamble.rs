//! The HTTP preamble parsers on arbitrary bytes: no panic, a reported head
//! length within the input and the limit, and an accepted request that
//! really is a POST to a configured path.
#![no_main]

use iphttps::preamble::{parse_request, parse_response, Parsed, ServerConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let max = 512;
    let cfg = ServerConfig::default().with_max_head(max);
    match parse_request(data, &cfg) {
        Ok(Parsed::Complete { value, head_len }) => {
            assert!(head_len <= data.len() && head_len <= max);
            assert!(cfg.accepts_path(&value.path));
            assert!(data.windows(5).any(|w| w == b"POST "));
        }
        Ok(Parsed::Partial) => assert!(data.len() < max),
        Err(e) => {
            let status = e.status();
            assert!((400..600).contains(&status));
            assert!(e.response().starts_with(b"HTTP/1.1 "));
        }
    }
    match parse_response(data, max) {
        Ok(Parsed::Complete { value, head_len }) => {
            assert!(head_len <= data.len() && head_len <= max);
            assert_eq!(value.status, 200);
        }
        Ok(Parsed::Partial) => assert!(data.len() < max),
        Err(_) => {}
    }
});
