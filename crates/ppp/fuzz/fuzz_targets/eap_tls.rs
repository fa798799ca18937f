//! EAP-TLS framing: Type-Data parsing and reassembly never panic; a
//! message that reassembles fits the limit and the announced length, and
//! fragmenting it again reassembles to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ppp::auth::eap_tls::{self, Fragmenter, Reassembled, Reassembler};

fuzz_target!(|data: &[u8]| {
    // Fragments: a length octet, then that many octets of Type-Data.
    let mut r = Reassembler::default();
    let mut rest = data;
    while let Some((&n, tail)) = rest.split_first() {
        let (td, tail) = tail.split_at(usize::from(n).min(tail.len()));
        rest = tail;
        let Some(f) = eap_tls::parse(td) else { continue };
        match r.push(&f) {
            Ok(Reassembled::Complete(msg)) => {
                assert!(msg.len() <= eap_tls::MAX_MESSAGE);
                let mut fr = Fragmenter::new(msg.clone(), 1 + usize::from(n));
                let mut again = Reassembler::default();
                let got = loop {
                    let td = fr.next_fragment().expect("a fragment");
                    match again.push(&eap_tls::parse(&td).expect("parses")) {
                        Ok(Reassembled::Complete(m)) => break m,
                        Ok(Reassembled::NeedMore) => {}
                        Err(e) => panic!("{e}"),
                    }
                };
                assert_eq!(got, msg);
            }
            Ok(Reassembled::NeedMore) | Err(_) => {}
        }
    }
});
