//! Datagrams as a NAS receives them: parse must not panic and must
//! round-trip through emit; the authenticator checks, MPPE key decryption,
//! IPv6 prefix decoding (which must round-trip), rate-limit parsing and
//! the client's reply handling must not panic, and the client must never
//! accept a reply it did not ask for.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use radius::{crypto, rate, Client, ClientConfig, Code, Packet, Request, Secret};

fuzz_target!(|data: &[u8]| {
    let secret = Secret::new("fuzz");
    if let Ok(p) = Packet::parse(data) {
        let mut out = Vec::new();
        p.emit(&mut out).expect("a parsed packet emits");
        assert_eq!(Packet::parse(&out).as_ref(), Ok(&p));
        let _ = rate::from_reply(&p);
        for a in &p.attrs {
            let _ = crypto::salt_decrypt(&a.value, &secret, &[0; 16]);
            let _ = crypto::unhide_password(&a.value, &secret, &[0; 16]);
            if let Some((addr, len)) = radius::packet::decode_ipv6_prefix(&a.value) {
                // Whatever was decoded encodes and decodes to itself.
                let mut q = Packet::new(Code::AccessAccept, 0, [0; 16]);
                q.push_ipv6_prefix(97, addr, len);
                assert_eq!(q.ipv6_prefix(97), Some((addr, len)));
            }
        }
    }
    let _ = crypto::verify_reply(data, &[0; 16], &secret, true);
    let _ = crypto::verify_request(data, &secret, true);
    let _ = crypto::verify_access_request(data, &secret);

    let now = Instant::now();
    let mut c = Client::new(
        ClientConfig {
            secrets: vec![secret.clone()],
            timeout: Duration::from_secs(1),
            tries: 2,
            dead_time: Duration::from_secs(10),
        },
        Box::new(|b: &mut [u8]| b.fill(7)),
    );
    let mut r = Request::new(Code::AccessRequest);
    r.packet.push(1, "u");
    r.password = Some(b"p".to_vec());
    c.send(now, r).unwrap();
    let _ = c.poll_transmit();
    c.handle_datagram(now, 0, Some(0), data);
    // Without the secret, fuzzed bytes never pass as a reply.
    assert_eq!(c.counters().replies, 0);
});
