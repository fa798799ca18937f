//! Request heads as every server of tunnel443 sees them: parse must not
//! panic, must report a length within the input and the limits, must
//! round-trip through emit, and the framing policy must decide without
//! panicking.
#![no_main]

use httphead::{framing, Parsed, RequestHead, MAX_HEADERS, MAX_LINE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let max = 1024;
    let Ok(Parsed::Complete { head, len }) = RequestHead::parse(data, max) else {
        return;
    };
    assert!(len <= data.len() && len <= max);
    assert!(head.headers().len() <= MAX_HEADERS);
    assert!(data[..len].split(|&b| b == b'\n').all(|l| l.len() < MAX_LINE));
    let _ = framing::body(head.headers());
    let mut out = Vec::new();
    head.emit(&mut out);
    assert_eq!(out.len(), head.buffer_len());
    match RequestHead::parse(&out, out.len()) {
        Ok(Parsed::Complete { head: again, len }) => {
            assert_eq!(len, out.len());
            assert_eq!(again, head);
        }
        other => panic!("emitted head does not parse back: {other:?}"),
    }
});
