//! PROXY protocol headers: parse must not panic, a complete header lies
//! within the input, and every prefix of a complete header is partial.
#![no_main]

use httphead::proxy::{parse, Parsed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Parsed::Done { len, .. }) = parse(data) {
        assert!(len <= data.len());
        for cut in 0..len {
            assert_eq!(parse(&data[..cut]), Ok(Parsed::Partial), "prefix {cut}");
        }
    }
});
