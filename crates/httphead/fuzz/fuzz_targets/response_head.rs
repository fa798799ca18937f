//! Response heads as every client of tunnel443 sees them: parse must not
//! panic, must stay within the input and the limit, and what it emits
//! again must parse with the same status (the liberal parser keeps folded
//! lines, so the header fields need not round-trip).
#![no_main]

use httphead::{framing, Parsed, ResponseHead};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let max = 1024;
    let Ok(Parsed::Complete { head, len }) = ResponseHead::parse(data, max) else {
        return;
    };
    assert!(len <= data.len() && len <= max);
    assert!((100..=999).contains(&head.status()));
    let _ = framing::body(head.headers());
    let mut out = Vec::new();
    head.emit(&mut out);
    assert_eq!(out.len(), head.buffer_len());
    if let Ok(Parsed::Complete { head: again, .. }) = ResponseHead::parse(&out, out.len()) {
        assert_eq!(again.status(), head.status());
    }
});
