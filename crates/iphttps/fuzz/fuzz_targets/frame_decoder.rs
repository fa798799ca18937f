//! The IP-HTTPS stream decoder against a one-shot reference: for any stream,
//! any chunking (through `extend` or `spare`/`filled`) and any maximum
//! packet size, the decoder must not panic, must deliver exactly the packets
//! and oversize notices the reference finds, fail with the same error, keep
//! its buffer bounded, and deliver only packets the encoder accepts.
#![no_main]

use iphttps::frame::READ_CHUNK;
use iphttps::{Decoder, Encoder, Frame, FrameError};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, PartialEq)]
enum Ev {
    Packet(Vec<u8>),
    Oversize(usize),
}

#[derive(Debug, PartialEq)]
enum End {
    Boundary,
    Partial,
    Fatal(FrameError),
}

fn reference(s: &[u8], max: usize) -> (Vec<Ev>, End) {
    let mut out = Vec::new();
    let mut pos = 0usize;
    loop {
        if pos >= s.len() {
            return (
                out,
                if pos == s.len() {
                    End::Boundary
                } else {
                    End::Partial
                },
            );
        }
        let b = s[pos];
        if b >> 4 != 6 {
            return (
                out,
                End::Fatal(FrameError::NotIpv6 {
                    version: b >> 4,
                    first_byte: b,
                    offset: pos as u64,
                }),
            );
        }
        if s.len() - pos < 40 {
            return (out, End::Partial);
        }
        let plen = usize::from(u16::from_be_bytes([s[pos + 4], s[pos + 5]]));
        if plen == 0 && s[pos + 6] == 0 {
            return (
                out,
                End::Fatal(FrameError::Jumbogram { offset: pos as u64 }),
            );
        }
        let len = 40 + plen;
        if len > max {
            out.push(Ev::Oversize(len));
            pos += len;
            continue;
        }
        if s.len() - pos < len {
            return (out, End::Partial);
        }
        out.push(Ev::Packet(s[pos..pos + len].to_vec()));
        pos += len;
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let max = (1280 + usize::from(data[0]) * 40).min(65_575);
    let mut seed = u32::from(data[1]) | 1;
    let use_spare = data[2] & 1 == 1;
    let stream = &data[3..];

    let (want, want_end) = reference(stream, max);

    let mut dec = Decoder::with_max_packet(max).unwrap();
    let enc = Encoder::with_max_packet(max).unwrap();
    let mut got = Vec::new();
    let mut err = None;
    let mut rest = stream;
    'feed: while !rest.is_empty() {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let want_len = 1 + (seed >> 16) as usize % 300;
        let n = if use_spare {
            let spare = dec.spare();
            assert!(spare.len() >= READ_CHUNK, "spare space after draining");
            let n = want_len.min(rest.len()).min(spare.len());
            spare[..n].copy_from_slice(&rest[..n]);
            dec.filled(n);
            n
        } else {
            dec.extend(&rest[..want_len.min(rest.len())])
        };
        assert!(n > 0);
        rest = &rest[n..];
        loop {
            match dec.next_packet() {
                Ok(Some(Frame::Packet(p))) => {
                    assert!(
                        enc.check(p).is_ok(),
                        "delivered a packet the encoder refuses"
                    );
                    got.push(Ev::Packet(p.to_vec()));
                }
                Ok(Some(Frame::Oversize { len })) => {
                    assert!(len > max);
                    got.push(Ev::Oversize(len));
                }
                Ok(None) => break,
                Err(e) => {
                    assert_eq!(dec.next_packet(), Err(e), "errors are sticky");
                    err = Some(e);
                    break 'feed;
                }
            }
        }
        assert!(dec.buffered() < max + READ_CHUNK);
    }
    assert_eq!(got, want);
    match (want_end, err) {
        (End::Fatal(w), Some(e)) => assert_eq!(w, e),
        (End::Boundary, None) => assert_eq!(dec.finish(), Ok(())),
        (End::Partial, None) => {
            assert!(matches!(dec.finish(), Err(FrameError::Truncated { .. })))
        }
        (w, e) => panic!("reference ended {w:?}, decoder error {e:?}"),
    }
});
