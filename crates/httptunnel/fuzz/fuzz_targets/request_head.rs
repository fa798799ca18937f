//! Request heads as a CONNECT proxy sees them: the server policy must
//! decide without panicking, and what it accepts or answers must parse
//! again. (Parsing itself, limits and the emit round trip are httphead's
//! `request_head` target.)
#![no_main]

use httptunnel::{Parsed, RequestHead, ServerPolicy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let max = 1024;
    let Ok(Parsed::Complete { head, .. }) = RequestHead::parse(data, max) else {
        return;
    };
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
