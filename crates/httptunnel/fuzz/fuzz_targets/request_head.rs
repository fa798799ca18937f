//! Request heads as a CONNECT proxy sees them: parse must not panic, must
//! report a length within the input and the limit, must round-trip through
//! emit, and the server policy must decide without panicking.
#![no_main]

use httptunnel::{Parsed, RequestHead, ServerPolicy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let max = 1024;
    let Ok(Parsed::Complete { head, len }) = RequestHead::parse(data, max) else {
        return;
    };
    assert!(len <= data.len() && len <= max);
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
    let mut policy = ServerPolicy::default();
    policy.refuse_sstp = data.len() % 2 == 0;
    if data.len() % 3 == 0 {
        let mut users = httptunnel::BasicUsers::new();
        users.insert(&httptunnel::Credentials::new("u", "p").unwrap());
        policy.users = Some(users);
    }
    match policy.decide(&head) {
        Ok(a) => {
            // What the policy accepted re-parses to itself.
            assert_eq!(
                httptunnel::Authority::parse(&a.target.to_string()).unwrap(),
                a.target
            );
        }
        Err(r) => {
            let resp = r.response(&policy.realm);
            assert!(matches!(
                httptunnel::ResponseHead::parse(&resp, resp.len()),
                Ok(Parsed::Complete { .. })
            ));
        }
    }
});
