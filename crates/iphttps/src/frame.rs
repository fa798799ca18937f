//! IPv6 packet stream framing (MS-IPHTTPS §3.1.5.3 and §3.2.5.2).
//!
//! Once the HTTP preamble has been exchanged, each direction of an IP-HTTPS
//! connection is a byte stream of back-to-back IPv6 packets. "Framing in the
//! IP-HTTPS Protocol relies exclusively on the length of the IPv6 header": a
//! packet is the 40-byte fixed header plus `Payload Length` bytes, and the
//! next packet starts right after it. TLS records, TCP segments and reads are
//! unrelated to packet boundaries, so the [`Decoder`] accepts any chunking.
//!
//! # Outcomes for bad input
//!
//! * A first byte whose version nibble is not 6 ("non IPv6 packets") means
//!   the stream can no longer be delimited: [`FrameError::NotIpv6`]. The
//!   server "SHOULD terminate the IP-HTTPS session with the offending client"
//!   (§3.2.5.2); the client, which "MUST discard non IPv6 packets"
//!   (§3.1.5.3), has no way to find the next packet either, so both ends
//!   drop the connection (the client then reconnects, §3.1.5.4). The decoder
//!   stays failed and keeps returning the error.
//! * A jumbogram (Payload Length 0 with a Hop-by-Hop header, RFC 2675) cannot
//!   be delimited by this framing and cannot occur on a 1280-MTU link:
//!   [`FrameError::Jumbogram`], fatal in the same way. Payload Length 0 with
//!   any other Next Header is a valid 40-byte packet and is delivered.
//! * A well-formed header whose packet exceeds the configured maximum is
//!   *not* fatal: the framing is still known, so the decoder reports
//!   [`Frame::Oversize`] once and skips the packet's bytes as they arrive,
//!   never buffering them.
//! * End of stream in the middle of a packet: [`Decoder::finish`] reports
//!   [`FrameError::Truncated`].
//!
//! # Maximum packet size
//!
//! The link MTU is 1280 (§3.1.5.2, §3.2.3), both ends configure it and our
//! server advertises it in the RA MTU option, so a conforming peer never
//! sends more. (Between our own ends it may be larger, [`crate::mtu`]: the
//! sessions then size both directions to it.) The decoder nevertheless accepts up to
//! [`DEFAULT_MAX_PACKET`] = 1500 bytes (an MTU counts the 40-byte header):
//! a peer whose tunnel interface was left at the common Ethernet default
//! would otherwise lose every full-size packet, while accepting them costs
//! nothing (the kernel forwards them, or answers Packet Too Big). Above the
//! maximum, packets are skipped. The maximum also bounds what one session
//! buffers: one partial packet plus one read. The buffer starts at what a
//! packet of [`DEFAULT_MAX_PACKET`] needs and grows to the maximum only
//! when a larger packet arrives, so that a large configured maximum costs
//! an idle session nothing.
//!
//! The [`Encoder`] is strict in what it sends: every packet must be one
//! well-formed IPv6 packet no larger than the configured maximum, by default
//! the link MTU of 1280.

use crate::ipv6::{Ipv6Error, Ipv6Packet, HEADER_LEN, MAX_PACKET_LEN, MIN_MTU};

/// Default largest packet the [`Decoder`] delivers (header included).
pub const DEFAULT_MAX_PACKET: usize = 1500;

/// Default largest packet the [`Encoder`] sends: the link MTU.
pub const DEFAULT_MAX_SEND: usize = MIN_MTU;

/// Room for one read beyond a partial packet, in bytes.
pub const READ_CHUNK: usize = 8 * 1024;

/// A configured maximum packet size outside `1280..=65575`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("maximum packet size {0} is outside 1280..=65575")]
pub struct InvalidMaxPacket(pub usize);

fn check_max(max_packet: usize) -> Result<usize, InvalidMaxPacket> {
    if (MIN_MTU..=MAX_PACKET_LEN).contains(&max_packet) {
        Ok(max_packet)
    } else {
        Err(InvalidMaxPacket(max_packet))
    }
}

/// Fatal stream errors: after one of these the session must be terminated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// A packet starts with version `version` instead of 6.
    #[error(
        "non-IPv6 data (version {version}, first byte {first_byte:#04x}) at stream offset {offset}"
    )]
    NotIpv6 {
        /// The version nibble.
        version: u8,
        /// The whole first byte, for logs.
        first_byte: u8,
        /// Stream offset of the byte, counted from the first byte fed in.
        offset: u64,
    },
    /// A jumbogram, which this framing cannot delimit.
    #[error("jumbogram at stream offset {offset}")]
    Jumbogram {
        /// Stream offset of the packet.
        offset: u64,
    },
    /// The stream ended inside a packet.
    #[error("stream ended inside a packet ({buffered} bytes of it received)")]
    Truncated {
        /// Bytes of the incomplete packet that had arrived.
        buffered: usize,
    },
}

/// What [`Decoder::next_packet`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// One complete IPv6 packet (its length matches its header, it is at
    /// most the configured maximum).
    Packet(&'a [u8]),
    /// A packet of `len` bytes over the maximum; it is being skipped.
    Oversize {
        /// Its length, header included.
        len: usize,
    },
}

/// Counters kept by a [`Decoder`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecoderStats {
    /// Packets delivered.
    pub packets: u64,
    /// Bytes of delivered packets.
    pub packet_bytes: u64,
    /// Packets skipped as oversize.
    pub oversize: u64,
    /// Bytes consumed from the stream so far (delivered, skipped, or
    /// belonging to the packet being skipped).
    pub consumed: u64,
}

/// Incremental decoder of an IP-HTTPS packet stream.
///
/// The decoder owns its buffer. A driver reads straight into it:
///
/// ```
/// # fn main() -> Result<(), iphttps::FrameError> {
/// let mut dec = iphttps::Decoder::new();
/// # let mut stream: &[u8] = &[];
/// # let mut read = |buf: &mut [u8]| { let n = stream.len().min(buf.len()); buf[..n].copy_from_slice(&stream[..n]); stream = &stream[n..]; n };
/// loop {
///     let n = read(dec.spare()); // e.g. `tls.read(dec.spare()).await?`
///     if n == 0 {
///         dec.finish()?; // a clean end must fall between packets
///         break;
///     }
///     dec.filled(n);
///     while let Some(frame) = dec.next_packet()? {
///         match frame {
///             iphttps::Frame::Packet(p) => { /* write p to the TUN */ }
///             iphttps::Frame::Oversize { len } => { /* count, log */ }
///         }
///     }
/// }
/// # Ok(()) }
/// ```
///
/// Bytes that arrived with the HTTP head go in with [`Decoder::extend`].
/// Call [`Decoder::next_packet`] until it returns `Ok(None)` before adding
/// more bytes; then at least [`READ_CHUNK`] bytes of space are free.
#[derive(Debug)]
pub struct Decoder {
    buf: Box<[u8]>,
    /// First unconsumed byte.
    start: usize,
    /// End of the received bytes.
    end: usize,
    /// Bytes of an oversize packet still to discard.
    skip: usize,
    max_packet: usize,
    failed: Option<FrameError>,
    stats: DecoderStats,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// A decoder delivering packets of up to [`DEFAULT_MAX_PACKET`] bytes.
    pub fn new() -> Self {
        Self::build(DEFAULT_MAX_PACKET)
    }

    /// A decoder delivering packets of up to `max_packet` bytes (header
    /// included), which must be within `1280..=65575`.
    pub fn with_max_packet(max_packet: usize) -> Result<Self, InvalidMaxPacket> {
        check_max(max_packet).map(Self::build)
    }

    fn build(max_packet: usize) -> Self {
        Decoder {
            buf: vec![0u8; max_packet.min(DEFAULT_MAX_PACKET) + READ_CHUNK].into_boxed_slice(),
            start: 0,
            end: 0,
            skip: 0,
            max_packet,
            failed: None,
            stats: DecoderStats::default(),
        }
    }

    /// The configured maximum packet size.
    pub fn max_packet(&self) -> usize {
        self.max_packet
    }

    /// Counters.
    pub fn stats(&self) -> DecoderStats {
        self.stats
    }

    /// The error the decoder failed with, if it did.
    pub fn error(&self) -> Option<FrameError> {
        self.failed
    }

    /// Bytes received but not yet delivered or skipped.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Whether the stream is between two packets (nothing partial buffered,
    /// no oversize packet being skipped).
    pub fn at_boundary(&self) -> bool {
        self.start == self.end && self.skip == 0
    }

    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    /// Free space to read into; report what was written with
    /// [`Decoder::filled`]. Empty only if [`Decoder::next_packet`] was not
    /// drained first.
    pub fn spare(&mut self) -> &mut [u8] {
        self.compact();
        &mut self.buf[self.end..]
    }

    /// Records that the first `n` bytes of [`Decoder::spare`] were written.
    ///
    /// # Panics
    ///
    /// If `n` exceeds the length of the slice `spare` returned: that is a
    /// bug in the caller, not something a peer can cause.
    pub fn filled(&mut self, n: usize) {
        assert!(
            n <= self.buf.len() - self.end,
            "Decoder::filled({n}) beyond the spare space"
        );
        self.end += n;
    }

    /// Copies as much of `data` as fits and returns how many bytes were
    /// taken; feed the rest after draining [`Decoder::next_packet`].
    pub fn extend(&mut self, data: &[u8]) -> usize {
        let spare = self.spare();
        let n = data.len().min(spare.len());
        spare[..n].copy_from_slice(&data[..n]);
        self.end += n;
        n
    }

    /// Grows the buffer (to the maximum, once) when a partial packet of
    /// `len` bytes would leave less than [`READ_CHUNK`] free.
    fn room_for(&mut self, len: usize) {
        if len + READ_CHUNK > self.buf.len() {
            let mut grown = vec![0u8; self.max_packet + READ_CHUNK].into_boxed_slice();
            let n = self.end - self.start;
            grown[..n].copy_from_slice(&self.buf[self.start..self.end]);
            self.buf = grown;
            self.start = 0;
            self.end = n;
        }
    }

    fn fail(&mut self, e: FrameError) -> Result<Option<Frame<'_>>, FrameError> {
        self.failed = Some(e);
        Err(e)
    }

    /// The next complete packet or oversize notice, `Ok(None)` when more
    /// bytes are needed, or a fatal error (returned again on every later
    /// call).
    pub fn next_packet(&mut self) -> Result<Option<Frame<'_>>, FrameError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if self.skip > 0 {
            let n = self.skip.min(self.end - self.start);
            self.start += n;
            self.skip -= n;
            self.stats.consumed += n as u64;
            if self.skip > 0 {
                return Ok(None);
            }
        }
        let avail = &self.buf[self.start..self.end];
        let Some(&first) = avail.first() else {
            return Ok(None);
        };
        if first >> 4 != 6 {
            let offset = self.stats.consumed;
            return self.fail(FrameError::NotIpv6 {
                version: first >> 4,
                first_byte: first,
                offset,
            });
        }
        if avail.len() < HEADER_LEN {
            return Ok(None);
        }
        let payload_len = usize::from(u16::from_be_bytes([avail[4], avail[5]]));
        if payload_len == 0 && avail[6] == 0 {
            let offset = self.stats.consumed;
            return self.fail(FrameError::Jumbogram { offset });
        }
        let len = HEADER_LEN + payload_len;
        if len > self.max_packet {
            self.skip = len;
            self.stats.oversize += 1;
            return Ok(Some(Frame::Oversize { len }));
        }
        if avail.len() < len {
            self.room_for(len);
            return Ok(None);
        }
        let at = self.start;
        self.start += len;
        self.stats.packets += 1;
        self.stats.packet_bytes += len as u64;
        self.stats.consumed += len as u64;
        Ok(Some(Frame::Packet(&self.buf[at..at + len])))
    }

    /// Call at end of stream: an error if it ended inside a packet (or the
    /// decoder had already failed).
    pub fn finish(&self) -> Result<(), FrameError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if self.at_boundary() {
            Ok(())
        } else {
            Err(FrameError::Truncated {
                buffered: self.buffered(),
            })
        }
    }
}

/// Why a packet was not queued for sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// Not one well-formed IPv6 packet.
    #[error("not a well-formed IPv6 packet: {0}")]
    Invalid(#[from] Ipv6Error),
    /// Larger than the maximum the link carries.
    #[error("{len}-byte packet exceeds the {max}-byte maximum")]
    TooLarge {
        /// The packet's length.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
}

/// Checks packets before they are written to the stream, and appends them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoder {
    max_packet: usize,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder {
            max_packet: DEFAULT_MAX_SEND,
        }
    }
}

impl Encoder {
    /// An encoder sending packets of up to the link MTU, 1280 bytes.
    pub fn new() -> Self {
        Self::default()
    }

    /// An encoder sending packets of up to `max_packet` bytes.
    pub fn with_max_packet(max_packet: usize) -> Result<Self, InvalidMaxPacket> {
        check_max(max_packet).map(|max_packet| Encoder { max_packet })
    }

    /// The configured maximum.
    pub fn max_packet(&self) -> usize {
        self.max_packet
    }

    /// Checks that `packet` is one IPv6 packet (version 6, length equal to
    /// 40 + Payload Length, not a jumbogram) of at most the maximum size.
    pub fn check(&self, packet: &[u8]) -> Result<(), EncodeError> {
        if packet.len() > self.max_packet {
            // Still report "not IPv6" first for garbage.
            Ipv6Packet::new_checked(packet)?;
            return Err(EncodeError::TooLarge {
                len: packet.len(),
                max: self.max_packet,
            });
        }
        Ipv6Packet::new_checked(packet)?;
        Ok(())
    }

    /// Checks `packet` and appends it to `out`, the bytes of the next stream
    /// write (several packets may be batched into one write). On error `out`
    /// is unchanged.
    pub fn encode(&self, packet: &[u8], out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.check(packet)?;
        out.extend_from_slice(packet);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv6 packet of `len` bytes in all; payload bytes are `fill`.
    pub(crate) fn pkt(len: usize, fill: u8) -> Vec<u8> {
        assert!(len >= HEADER_LEN);
        let mut p = vec![fill; len];
        p[..8].copy_from_slice(&[0x60, 0, 0, 0, 0, 0, 59, 64]);
        p[4..6].copy_from_slice(&((len - HEADER_LEN) as u16).to_be_bytes());
        p[8..40].fill(0x20);
        p
    }

    /// Feeds `stream` in chunks of the given sizes (cycled), collecting
    /// every packet and the first error.
    fn decode_chunked(
        dec: &mut Decoder,
        stream: &[u8],
        sizes: &[usize],
    ) -> (Vec<Vec<u8>>, Vec<usize>, Option<FrameError>) {
        let mut packets = Vec::new();
        let mut oversize = Vec::new();
        let mut rest = stream;
        let mut i = 0;
        while !rest.is_empty() {
            let want = sizes[i % sizes.len()].max(1).min(rest.len());
            i += 1;
            let mut chunk = &rest[..want];
            rest = &rest[want..];
            while !chunk.is_empty() {
                let n = dec.extend(chunk);
                assert!(n > 0, "no space after draining");
                chunk = &chunk[n..];
                loop {
                    match dec.next_packet() {
                        Ok(Some(Frame::Packet(p))) => packets.push(p.to_vec()),
                        Ok(Some(Frame::Oversize { len })) => oversize.push(len),
                        Ok(None) => break,
                        Err(e) => return (packets, oversize, Some(e)),
                    }
                }
            }
        }
        (packets, oversize, None)
    }

    #[test]
    fn coalesced_packets_in_one_read() {
        let a = pkt(40, 0);
        let b = pkt(100, 0xbb);
        let c = pkt(1280, 0xcc);
        let stream = [a.clone(), b.clone(), c.clone()].concat();
        let mut dec = Decoder::new();
        let (got, over, err) = decode_chunked(&mut dec, &stream, &[stream.len()]);
        assert_eq!(got, vec![a, b, c]);
        assert!(over.is_empty() && err.is_none());
        assert!(dec.at_boundary());
        assert_eq!(dec.finish(), Ok(()));
        let s = dec.stats();
        assert_eq!((s.packets, s.packet_bytes, s.consumed), (3, 1420, 1420));
    }

    #[test]
    fn every_split_of_a_stream_gives_the_same_packets() {
        let ps = vec![pkt(41, 1), pkt(1500, 2), pkt(40, 3), pkt(333, 4)];
        let stream = ps.concat();
        for size in [
            1usize, 2, 3, 5, 6, 7, 39, 40, 41, 64, 1499, 1500, 1501, 4096,
        ] {
            let mut dec = Decoder::new();
            let (got, over, err) = decode_chunked(&mut dec, &stream, &[size]);
            assert_eq!(got, ps, "chunk size {size}");
            assert!(over.is_empty() && err.is_none());
            assert_eq!(dec.finish(), Ok(()));
        }
        // Irregular chunking, including a split inside the length field.
        let mut dec = Decoder::new();
        let (got, _, err) = decode_chunked(&mut dec, &stream, &[5, 1, 900, 2, 17, 3000]);
        assert_eq!(got, ps);
        assert!(err.is_none());
    }

    #[test]
    fn spare_and_filled_read_path() {
        let ps = [pkt(60, 9), pkt(1280, 8)];
        let stream = ps.concat();
        let mut dec = Decoder::new();
        let mut got = Vec::new();
        for chunk in stream.chunks(7) {
            let spare = dec.spare();
            assert!(spare.len() >= READ_CHUNK);
            spare[..chunk.len()].copy_from_slice(chunk);
            dec.filled(chunk.len());
            while let Some(f) = dec.next_packet().unwrap() {
                if let Frame::Packet(p) = f {
                    got.push(p.to_vec());
                }
            }
        }
        assert_eq!(got, ps);
    }

    #[test]
    #[should_panic(expected = "beyond the spare space")]
    fn filled_beyond_spare_is_a_caller_bug() {
        let mut dec = Decoder::new();
        let n = dec.spare().len();
        dec.filled(n + 1);
    }

    #[test]
    fn truncation_at_end_of_stream() {
        let p = pkt(200, 7);
        for cut in [1usize, 6, 39, 40, 199] {
            let mut dec = Decoder::new();
            let (got, _, err) = decode_chunked(&mut dec, &p[..cut], &[3]);
            assert!(got.is_empty() && err.is_none());
            assert!(!dec.at_boundary());
            assert_eq!(dec.finish(), Err(FrameError::Truncated { buffered: cut }));
        }
        let dec = Decoder::new();
        assert_eq!(dec.finish(), Ok(()));
    }

    #[test]
    fn non_ipv6_is_fatal_and_sticky() {
        let good = pkt(48, 1);
        let mut stream = good.clone();
        stream.extend_from_slice(b"\x45\x00\x00\x14 an IPv4 header");
        let mut dec = Decoder::new();
        let (got, _, err) = decode_chunked(&mut dec, &stream, &[10]);
        assert_eq!(got, vec![good]);
        let e = FrameError::NotIpv6 {
            version: 4,
            first_byte: 0x45,
            offset: 48,
        };
        assert_eq!(err, Some(e));
        assert_eq!(dec.next_packet(), Err(e));
        assert_eq!(dec.finish(), Err(e));
        assert_eq!(dec.error(), Some(e));
        // Detected from the first byte alone, before a header's worth.
        let mut dec = Decoder::new();
        dec.extend(b"G");
        assert!(matches!(
            dec.next_packet(),
            Err(FrameError::NotIpv6 { version: 4, .. })
        ));
        let mut dec = Decoder::new();
        dec.extend(&[0x00]);
        assert!(matches!(
            dec.next_packet(),
            Err(FrameError::NotIpv6 { version: 0, .. })
        ));
    }

    #[test]
    fn jumbogram_is_fatal_but_empty_payload_is_a_packet() {
        let mut j = pkt(40, 0);
        j[6] = 0; // Hop-by-Hop next, payload length 0
        j.extend_from_slice(&[0u8; 16]);
        let mut dec = Decoder::new();
        let (_, _, err) = decode_chunked(&mut dec, &j, &[100]);
        assert_eq!(err, Some(FrameError::Jumbogram { offset: 0 }));

        let empty = pkt(40, 0); // next header 59
        let mut dec = Decoder::new();
        let (got, _, err) = decode_chunked(&mut dec, &empty, &[100]);
        assert_eq!(got, vec![empty]);
        assert!(err.is_none());
    }

    #[test]
    fn oversize_is_skipped_without_buffering_and_framing_resumes() {
        let big = pkt(1501, 0xee);
        let max_len = pkt(1500, 0x11);
        let after = pkt(64, 0x22);
        let stream = [big.clone(), max_len.clone(), big, after.clone()].concat();
        for size in [1usize, 13, 700, 5000] {
            let mut dec = Decoder::new();
            let (got, over, err) = decode_chunked(&mut dec, &stream, &[size]);
            assert_eq!(got, vec![max_len.clone(), after.clone()], "chunk {size}");
            assert_eq!(over, vec![1501, 1501]);
            assert!(err.is_none());
            assert!(dec.buffered() < READ_CHUNK);
            assert_eq!(dec.stats().oversize, 2);
            assert_eq!(dec.stats().consumed, stream.len() as u64);
        }
        // A 64 KiB packet streamed through a 1280-byte decoder.
        let huge = pkt(MAX_PACKET_LEN, 0x33);
        let mut dec = Decoder::with_max_packet(1280).unwrap();
        let stream = [huge, after.clone()].concat();
        let (got, over, err) = decode_chunked(&mut dec, &stream, &[READ_CHUNK]);
        assert_eq!((got, over, err), (vec![after], vec![MAX_PACKET_LEN], None));
        // Truncated inside a skipped packet.
        let mut dec = Decoder::new();
        decode_chunked(&mut dec, &pkt(2000, 1)[..1000], &[100]);
        assert!(matches!(dec.finish(), Err(FrameError::Truncated { .. })));
    }

    #[test]
    fn a_large_maximum_costs_nothing_until_a_large_packet_arrives() {
        let mut dec = Decoder::with_max_packet(65535).unwrap();
        assert_eq!(dec.spare().len(), DEFAULT_MAX_PACKET + READ_CHUNK);
        let small = pkt(1500, 1);
        assert_eq!(decode_chunked(&mut dec, &small, &[700]).0, vec![small]);
        assert_eq!(dec.spare().len(), DEFAULT_MAX_PACKET + READ_CHUNK);
        // Larger packets, split everywhere: the buffer grows once, to the
        // maximum, and a drained decoder always has a read's room.
        let ps = vec![pkt(60_000, 2), pkt(40, 3), pkt(65535, 4), pkt(9000, 5)];
        let stream = ps.concat();
        for size in [1usize, 7, 1499, READ_CHUNK, 20_000, stream.len()] {
            let mut dec = Decoder::with_max_packet(65535).unwrap();
            let (got, over, err) = decode_chunked(&mut dec, &stream, &[size]);
            assert_eq!(got, ps, "chunk size {size}");
            assert!(over.is_empty() && err.is_none());
            assert_eq!(dec.spare().len(), 65535 + READ_CHUNK);
        }
    }

    #[test]
    fn max_packet_bounds() {
        assert_eq!(
            Decoder::with_max_packet(1279).unwrap_err(),
            InvalidMaxPacket(1279)
        );
        assert_eq!(
            Decoder::with_max_packet(MAX_PACKET_LEN + 1).unwrap_err(),
            InvalidMaxPacket(MAX_PACKET_LEN + 1)
        );
        assert_eq!(Decoder::with_max_packet(1280).unwrap().max_packet(), 1280);
        assert_eq!(Decoder::default().max_packet(), DEFAULT_MAX_PACKET);
        assert!(Encoder::with_max_packet(100).is_err());
        assert_eq!(Encoder::default().max_packet(), 1280);
    }

    #[test]
    fn extend_reports_partial_acceptance() {
        let mut dec = Decoder::with_max_packet(1280).unwrap();
        let big = vec![0x60u8; 1280 + READ_CHUNK + 10];
        // Header of a 0x6060+40 byte (oversize) packet, then more.
        let n = dec.extend(&big);
        assert_eq!(n, 1280 + READ_CHUNK);
        assert!(dec.spare().is_empty());
        assert!(matches!(
            dec.next_packet(),
            Ok(Some(Frame::Oversize { .. }))
        ));
        assert_eq!(dec.next_packet(), Ok(None));
        assert_eq!(dec.extend(&big[n..]), 10);
    }

    #[test]
    fn encoder_checks_and_batches() {
        let enc = Encoder::new();
        let mut out = vec![0xa5];
        enc.encode(&pkt(40, 0), &mut out).unwrap();
        enc.encode(&pkt(1280, 1), &mut out).unwrap();
        assert_eq!(out.len(), 1 + 40 + 1280);
        assert_eq!(out[0], 0xa5);
        let before = out.clone();
        assert_eq!(
            enc.encode(&pkt(1281, 1), &mut out),
            Err(EncodeError::TooLarge {
                len: 1281,
                max: 1280
            })
        );
        let mut bad_len = pkt(100, 0);
        bad_len.pop();
        assert_eq!(
            enc.encode(&bad_len, &mut out),
            Err(EncodeError::Invalid(Ipv6Error::LengthMismatch {
                declared: 100,
                actual: 99
            }))
        );
        let mut v4 = pkt(60, 0);
        v4[0] = 0x45;
        assert_eq!(
            enc.encode(&v4, &mut out),
            Err(EncodeError::Invalid(Ipv6Error::Version { version: 4 }))
        );
        let mut v4_big = pkt(2000, 0);
        v4_big[0] = 0x45;
        assert_eq!(
            enc.check(&v4_big),
            Err(EncodeError::Invalid(Ipv6Error::Version { version: 4 }))
        );
        assert_eq!(
            enc.encode(&[], &mut out),
            Err(EncodeError::Invalid(Ipv6Error::Truncated { len: 0 }))
        );
        assert_eq!(out, before);
        // What the encoder emits, the decoder reads back.
        let mut dec = Decoder::new();
        dec.extend(&out[1..]);
        assert!(matches!(dec.next_packet(), Ok(Some(Frame::Packet(p))) if p.len() == 40));
        assert!(matches!(dec.next_packet(), Ok(Some(Frame::Packet(p))) if p.len() == 1280));
        assert_eq!(dec.next_packet(), Ok(None));
    }
}
