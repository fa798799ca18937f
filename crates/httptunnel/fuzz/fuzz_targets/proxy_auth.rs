//! 407 challenges as a CONNECT client sees them: the challenge-list parser,
//! the Digest and NTLM answers and the client's scheme choice must not
//! panic, and every request the client emits must parse back.
#![no_main]

use httptunnel::challenge;
use httptunnel::digest::DigestChallenge;
use httptunnel::ntlm::{self, NtlmChallenge};
use httptunnel::{Authority, ChainHandshake, Credentials, Headers, Parsed, ProxyHop, RequestHead};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let creds = Credentials::new("DOM\\u", "pw").unwrap();
    for c in challenge::parse(data) {
        if let Some(d) = DigestChallenge::from_challenge(&c) {
            let _ = d.respond(&creds, "CONNECT", "h:443", 1, "c");
        }
        if let Some(t) = &c.token68 {
            if let Ok(n) = NtlmChallenge::from_base64(t) {
                let _ = ntlm::authenticate(&n, creds.user(), creds.password(), "", [0; 8], 0);
            }
        }
    }
    if let Ok(n) = NtlmChallenge::parse(data) {
        let _ = ntlm::authenticate(&n, creds.user(), creds.password(), "w", [1; 8], 1);
    }
    // The whole client answering 407s that carry this as challenges.
    let hop = ProxyHop {
        proxy: Authority::parse("p:3128").unwrap(),
        credentials: Some(creds),
        auth_upfront: data.first().is_some_and(|b| b % 2 == 0),
        memo: None,
    };
    let mut hs = ChainHandshake::new(
        vec![hop],
        Authority::parse("t:443").unwrap(),
        Headers::new(),
        64 * 1024,
    );
    let mut reply = b"HTTP/1.1 407 x\r\nContent-Length: 0\r\n".to_vec();
    for line in data.split(|&b| b == b'\n') {
        reply.extend_from_slice(b"Proxy-Authenticate: ");
        reply.extend(line.iter().filter(|&&b| b != b'\r'));
        reply.extend_from_slice(b"\r\n");
    }
    reply.extend_from_slice(b"\r\n");
    for _ in 0..6 {
        if let Some(req) = hs.poll_transmit() {
            assert!(matches!(
                RequestHead::parse(&req, req.len()),
                Ok(Parsed::Complete { .. })
            ));
        }
        if hs.handle_input(&reply).is_err() {
            break;
        }
    }
});
