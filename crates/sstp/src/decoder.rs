//! Stream delineation (MS-SSTP §3.1.5.1, §3.1.7.2): the HTTPS stream is a
//! sequence of SSTP packets, each announcing its own length. The decoder
//! takes arbitrary chunks (split or coalesced packets) and yields whole
//! packets. A header it cannot delineate (wrong version, length below 4) is
//! a [`WireError`]; the connection is then aborted without a message.
//!
//! Memory is bounded: at most one partial packet (≤ 4095 bytes) is kept
//! between calls, plus the bytes of the chunk being processed.

use crate::wire::{peek_length, WireError, HEADER_LEN};

/// One delineated packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A data packet's payload (one PPP frame).
    Data(Vec<u8>),
    /// A whole control packet, header included (parse with [`crate::wire::Packet::parse`]).
    Control(Vec<u8>),
}

#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    start: usize,
    failed: bool,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed {
            return;
        }
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 4096 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole packet, `Ok(None)` if more bytes are needed. After an
    /// error the decoder stays failed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, WireError> {
        if self.failed {
            return Err(WireError::Truncated);
        }
        let avail = &self.buf[self.start..];
        let len = match peek_length(avail) {
            None => return Ok(None),
            Some(Err(e)) => {
                self.failed = true;
                return Err(e);
            }
            Some(Ok(len)) => len,
        };
        if avail.len() < len {
            return Ok(None);
        }
        let pkt = &avail[..len];
        let frame = if pkt[1] & 0x01 == 0 {
            Frame::Data(pkt[HEADER_LEN..].to_vec())
        } else {
            Frame::Control(pkt.to_vec())
        };
        self.start += len;
        Ok(Some(frame))
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

    fn frames(chunks: &[&[u8]]) -> Vec<Frame> {
        let mut d = Decoder::new();
        let mut out = Vec::new();
        for c in chunks {
            d.push(c);
            while let Some(f) = d.next_frame().unwrap() {
                out.push(f);
            }
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
                assert_eq!(
                    frames(&[&s[..i], &s[i..j], &s[j..]]),
                    whole,
                    "split {i} {j}"
                );
            }
        }
        let bytes: Vec<&[u8]> = s.chunks(1).collect();
        assert_eq!(frames(&bytes), whole);
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
