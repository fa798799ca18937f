//! Stream delineation (MS-SSTP §3.1.5.1): the HTTPS byte stream in arbitrary
//! chunks into the `Decoder`. Checks: no panic; the packets and the point of
//! failure are those of a straightforward reference delineator, however the
//! stream is split; after draining, less than one packet stays buffered
//! (memory is bounded by the chunk, not by the stream); a failed decoder stays
//! failed; every control packet it yields parses or fails cleanly. The
//! zero-copy `Decoder::decode` gives the same packets and failure point for
//! the same chunks.
//!
//! Input: the first byte seeds the chunk sizes, the rest is the stream.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sstp::decoder::{Decoder, Frame};
use sstp::wire::{Attribute, Packet, MAX_PACKET, MAX_PAYLOAD};

/// A frame as (is control, bytes).
type Owned = (bool, Vec<u8>);

fn owned(f: Frame<'_>) -> Owned {
    match f {
        Frame::Data(p) => (false, p.to_vec()),
        Frame::Control(b) => (true, b.to_vec()),
    }
}

/// The reference: walk the stream header by header.
fn reference(stream: &[u8]) -> (Vec<Owned>, bool) {
    let mut frames = Vec::new();
    let mut rest = stream;
    while rest.len() >= 4 {
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]) & 0x0fff);
        if rest[0] != 0x10 || len < 4 {
            return (frames, true);
        }
        if rest.len() < len {
            break;
        }
        let (pkt, tail) = rest.split_at(len);
        frames.push(if pkt[1] & 1 == 0 {
            (false, pkt[4..].to_vec())
        } else {
            (true, pkt.to_vec())
        });
        rest = tail;
    }
    (frames, false)
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, stream)) = data.split_first() else {
        return;
    };
    let (expected, expect_failure) = reference(stream);

    // Chunk sizes from a small xorshift: 0 means "the whole rest".
    let mut x = u32::from(seed) | 0x100;
    let max = 1 + usize::from(seed % 64) * 97;
    let mut d = Decoder::new();
    let mut z = Decoder::new();
    let mut got = Vec::new();
    let mut zgot = Vec::new();
    let mut zfailed = false;
    let mut failed = false;
    let mut at = 0;
    while at < stream.len() && !failed {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let n = if seed == 0 {
            stream.len()
        } else {
            1 + (x as usize) % max
        };
        let end = (at + n).min(stream.len());
        d.push(&stream[at..end]);
        if !zfailed {
            zfailed = z
                .decode(&stream[at..end], |f| {
                    zgot.push(owned(f));
                    true
                })
                .is_err();
        }
        at = end;
        loop {
            match d.next_frame() {
                Ok(Some(f)) => got.push(owned(f)),
                Ok(None) => break,
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        if !failed {
            // At most one partial packet is kept between pushes.
            assert!(d.pending() < MAX_PACKET, "{} bytes pending", d.pending());
        }
    }
    assert_eq!(failed, expect_failure);
    assert_eq!(got, expected);
    assert_eq!(zfailed, expect_failure);
    assert_eq!(zgot, expected);
    if failed {
        d.push(&[0x10, 0x00, 0x00, 0x04]);
        assert!(d.next_frame().is_err(), "a failed decoder stays failed");
    }
    for (control, b) in &got {
        match control {
            false => assert!(b.len() <= MAX_PAYLOAD),
            true => {
                assert!(b.len() <= MAX_PACKET);
                match Packet::parse(b) {
                    Ok(Packet::Control(m)) => {
                        for a in &m.attributes {
                            let _ = Attribute::decode(a);
                        }
                    }
                    Ok(Packet::Data(_)) => panic!("the decoder said control"),
                    Err(_) => {}
                }
            }
        }
    }
});
