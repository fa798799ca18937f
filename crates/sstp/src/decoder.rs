//! Stream delineation (MS-SSTP §3.1.5.1, §3.1.7.2): the HTTPS stream is a
//! sequence of SSTP packets, each announcing its own length. The decoder
//! takes arbitrary chunks (split or coalesced packets) and yields whole
//! packets. A header it cannot delineate (wrong version, length below 4) is
//! a [`WireError`]; the connection is then aborted without a message.
//!
//! Memory is bounded: at most one partial packet (≤ 4095 bytes) is kept
//! between calls, plus the bytes of the chunk being processed.
//!
//! Zero-copy: [`Decoder::decode`] hands out packets that lie whole in the
//! caller's chunk as borrowed slices of that chunk; only a packet split
//! across chunks is assembled in the decoder's own buffer.

use crate::wire::{peek_length, WireError, HEADER_LEN};

/// One delineated packet, borrowed from the input or the decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A data packet's payload (one PPP frame).
    Data(&'a [u8]),
    /// A whole control packet, header included (parse with [`crate::wire::Packet::parse`]).
    Control(&'a [u8]),
}

impl<'a> Frame<'a> {
    fn of(pkt: &'a [u8]) -> Self {
        if pkt[1] & 0x01 == 0 {
            Frame::Data(&pkt[HEADER_LEN..])
        } else {
            Frame::Control(pkt)
        }
    }
}

#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    start: usize,
    failed: bool,
}

/// Whether a whole packet starts `avail`: its length, `None` if more bytes
/// are needed.
fn whole(avail: &[u8]) -> Result<Option<usize>, WireError> {
    match peek_length(avail) {
        None => Ok(None),
        Some(Err(e)) => Err(e),
        Some(Ok(len)) if avail.len() < len => Ok(None),
        Some(Ok(len)) => Ok(Some(len)),
    }
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes (for [`Decoder::next_frame`]).
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed {
            return;
        }
        self.compact();
        self.buf.extend_from_slice(bytes);
    }

    fn compact(&mut self) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 4096 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }

    /// The next whole packet of the pushed bytes, `Ok(None)` if more bytes
    /// are needed. After an error the decoder stays failed.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, WireError> {
        if self.failed {
            return Err(WireError::Truncated);
        }
        let len = match whole(&self.buf[self.start..]) {
            Ok(Some(len)) => len,
            Ok(None) => return Ok(None),
            Err(e) => {
                self.failed = true;
                return Err(e);
            }
        };
        let at = self.start;
        self.start += len;
        Ok(Some(Frame::of(&self.buf[at..at + len])))
    }

    /// Delineates `input` (the next chunk of the stream) and calls `each`
    /// for every whole packet, in order, until it returns false. Packets
    /// that lie whole in `input` are passed without copying; a packet split
    /// across chunks is assembled first. Bytes of an unfinished packet are
    /// kept for the next call (also those after a `false`, so nothing is
    /// lost). After an error the decoder stays failed.
    pub fn decode(
        &mut self,
        mut input: &[u8],
        mut each: impl FnMut(Frame<'_>) -> bool,
    ) -> Result<(), WireError> {
        if self.failed {
            return Err(WireError::Truncated);
        }
        self.compact();
        let fail = |d: &mut Self, e| {
            d.failed = true;
            Err(e)
        };
        // Finish a packet begun in an earlier chunk: take only its bytes.
        while self.pending() > 0 {
            let have = self.pending();
            let need = match peek_length(&self.buf[self.start..]) {
                Some(Err(e)) => return fail(self, e),
                Some(Ok(len)) => len,
                // Not even the length yet: take what completes the header.
                None => HEADER_LEN,
            };
            let take = need.saturating_sub(have).min(input.len());
            self.buf.extend_from_slice(&input[..take]);
            input = &input[take..];
            if self.pending() < need {
                if input.is_empty() {
                    return Ok(());
                }
                continue;
            }
            match self.next_frame() {
                Ok(Some(f)) => {
                    if !each(f) {
                        self.push(input);
                        return Ok(());
                    }
                }
                Ok(None) => {}
                Err(e) => return Err(e),
            }
        }
        while !input.is_empty() {
            match whole(input) {
                Ok(Some(len)) => {
                    let (pkt, rest) = input.split_at(len);
                    input = rest;
                    if !each(Frame::of(pkt)) {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => return fail(self, e),
            }
        }
        self.push(input);
        Ok(())
    }

    /// Bytes buffered but not yet part of a whole packet.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> Vec<u8> {
        let mut v = Vec::new();
        crate::wire::emit_data(&[0xff, 0x03, 0xc0, 0x21, 9], &mut v).unwrap();
        v.extend_from_slice(&[0x10, 0x01, 0x00, 0x08, 0x00, 0x08, 0x00, 0x00]); // echo request
        crate::wire::emit_data(&[0x00, 0x21], &mut v).unwrap();
        v
    }

    /// Owned copies of frames, to compare runs.
    fn owned(f: Frame<'_>) -> (bool, Vec<u8>) {
        match f {
            Frame::Data(d) => (false, d.to_vec()),
            Frame::Control(c) => (true, c.to_vec()),
        }
    }

    fn frames(chunks: &[&[u8]]) -> Vec<(bool, Vec<u8>)> {
        let mut d = Decoder::new();
        let mut out = Vec::new();
        for c in chunks {
            d.push(c);
            while let Some(f) = d.next_frame().unwrap() {
                out.push(owned(f));
            }
        }
        assert_eq!(d.pending(), 0);
        out
    }

    /// The same through [`Decoder::decode`].
    fn decoded(chunks: &[&[u8]]) -> Vec<(bool, Vec<u8>)> {
        let mut d = Decoder::new();
        let mut out = Vec::new();
        for c in chunks {
            d.decode(c, |f| {
                out.push(owned(f));
                true
            })
            .unwrap();
        }
        assert_eq!(d.pending(), 0);
        out
    }

    #[test]
    fn any_split_gives_the_same_packets() {
        let s = stream();
        let whole = frames(&[&s]);
        assert_eq!(whole.len(), 3);
        for i in 0..=s.len() {
            for j in i..=s.len() {
                let parts: [&[u8]; 3] = [&s[..i], &s[i..j], &s[j..]];
                assert_eq!(frames(&parts), whole, "split {i} {j}");
                assert_eq!(decoded(&parts), whole, "decode, split {i} {j}");
            }
        }
        let bytes: Vec<&[u8]> = s.chunks(1).collect();
        assert_eq!(frames(&bytes), whole);
        assert_eq!(decoded(&bytes), whole);
    }

    #[test]
    fn decode_borrows_whole_packets_and_stops_on_request() {
        let s = stream();
        let mut d = Decoder::new();
        let mut seen = Vec::new();
        d.decode(&s, |f| {
            if let Frame::Data(p) = f {
                // Borrowed from the input chunk itself: no copy.
                let inside = s.as_ptr_range().contains(&p.as_ptr());
                seen.push(inside);
            }
            seen.is_empty()
        })
        .unwrap();
        assert_eq!(seen, [true], "stopped after the first packet");
        // The rest was kept and comes out next time.
        let mut rest = Vec::new();
        d.decode(&[], |f| {
            rest.push(owned(f));
            true
        })
        .unwrap();
        assert_eq!(rest, frames(&[&s])[1..]);
    }

    #[test]
    fn decode_fails_for_good() {
        let mut d = Decoder::new();
        assert_eq!(
            d.decode(b"GET / HTTP/1.1\r\n", |_| true),
            Err(WireError::Version(b'G'))
        );
        assert!(d.decode(&stream(), |_| true).is_err());
        let mut d = Decoder::new();
        d.decode(&[0x10], |_| true).unwrap();
        assert_eq!(
            d.decode(&[0x00, 0x00, 0x02], |_| true),
            Err(WireError::BadLength(2))
        );
    }

    #[test]
    fn undelineable_input_fails_for_good() {
        let mut d = Decoder::new();
        d.push(b"GET / HTTP/1.1\r\n");
        assert_eq!(d.next_frame(), Err(WireError::Version(b'G')));
        d.push(&stream());
        assert!(d.next_frame().is_err());
        let mut d = Decoder::new();
        d.push(&[0x10, 0x00, 0x00, 0x02]);
        assert_eq!(d.next_frame(), Err(WireError::BadLength(2)));
    }

    #[test]
    fn buffer_stays_bounded() {
        let mut d = Decoder::new();
        let s = stream();
        for _ in 0..10_000 {
            d.push(&s);
            while d.next_frame().unwrap().is_some() {}
        }
        assert!(d.buf.capacity() < 16384, "{}", d.buf.capacity());
    }
}
