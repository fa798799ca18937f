//! Response heads as a CONNECT client sees them: parse must not panic and
//! must stay within the input and the limit; the chain handshake, fed the
//! same bytes in fuzzer-chosen pieces, must never consume more than it was
//! given and must end in an event or an error, never a panic or a loop.
#![no_main]

use httptunnel::{Authority, ChainHandshake, Credentials, Headers, Parsed, ProxyHop, ResponseHead};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let max = 1024;
    if let Ok(Parsed::Complete { head, len }) = ResponseHead::parse(data, max) {
        assert!(len <= data.len() && len <= max);
        assert!((100..=999).contains(&head.status()));
    }
    // First byte picks the chunk size, second the chain shape.
    let (chunk, shape, rest) = match data {
        [a, b, rest @ ..] => (usize::from(*a % 16) + 1, *b, rest),
        _ => return,
    };
    let hop = |name: &str, creds: bool| ProxyHop {
        proxy: Authority::parse(name).unwrap(),
        credentials: creds.then(|| Credentials::new("u", "p").unwrap()),
        auth_upfront: shape & 4 != 0,
        memo: None,
    };
    let mut hops = vec![hop("p1:3128", shape & 1 != 0)];
    if shape & 2 != 0 {
        hops.push(hop("p2:3128", shape & 8 != 0));
    }
    let mut hs = ChainHandshake::new(
        hops,
        Authority::parse("t:443").unwrap(),
        Headers::new(),
        max,
    );
    let mut buf: Vec<u8> = Vec::new();
    let mut fed = 0;
    let mut steps = 0;
    loop {
        steps += 1;
        assert!(steps < 100_000, "handshake does not progress");
        while hs.poll_transmit().is_some() {}
        let p = match hs.handle_input(&buf) {
            Ok(p) => p,
            Err(_) => return,
        };
        assert!(p.consumed <= buf.len());
        buf.drain(..p.consumed);
        match p.event {
            Some(httptunnel::Event::Established { .. }) => return,
            Some(httptunnel::Event::Reconnect) => buf.clear(),
            Some(httptunnel::Event::HopEstablished { .. }) => {}
            None if p.consumed > 0 => {}
            None => {
                if fed >= rest.len() {
                    let _ = hs.handle_eof();
                    return;
                }
                let n = chunk.min(rest.len() - fed);
                buf.extend_from_slice(&rest[fed..fed + n]);
                fed += n;
            }
        }
    }
});
