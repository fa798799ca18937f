//! The server name of a ClientHello: peek must not panic, a name is
//! printable lower-case ASCII, and more bytes never turn an answer back
//! into "need more".
#![no_main]

use httphead::sni::{peek, Peek};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let whole = peek(data);
    if let Peek::Name(n) = &whole {
        assert!(!n.is_empty());
        assert!(n.bytes().all(|b| b.is_ascii_graphic() && !b.is_ascii_uppercase()));
    }
    if whole != Peek::Partial {
        let mut more = data.to_vec();
        more.extend_from_slice(b"\x14\x03\x03\x00\x01\x01");
        assert_eq!(peek(&more), whole);
    }
});
