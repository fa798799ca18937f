//! Sans-IO tunnel sessions for tunnel443: one shape for every session, so
//! that one driver runs any of them, on either side.
//!
//! * [`sstp`]: an SSTP session (MS-SSTP §3.2/§3.3 with PPP, addresses,
//!   anti-spoofing and IPv6 RA over IPv6CP), server or client.
//! * [`iphttps`]: IP-HTTPS sessions (MS-IPHTTPS §3.1.5.3, §3.2.3), server
//!   (the client's IPv6 router) and client.
//! * [`packets`]: the allocation-free queue of packets for the TUN device.
//! * [`gro`]: TCP segments joined for a TUN device with the virtio header.
//! * [`ip`]: the few IP header fields routing and anti-spoofing need.
//!
//! The shape is quinn-proto's: the driver feeds stream bytes, TUN packets
//! and time in, and drains bytes to write, packets for the TUN device,
//! events and the next deadline. No sockets, no clock, no allocation per
//! packet once warm.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod gro;
pub mod ip;
pub mod iphttps;
pub mod packets;
pub mod rate;
pub mod sstp;

use std::time::Instant;

pub use crate::iphttps::{IphttpsClient, IphttpsServer};
pub use crate::sstp::SstpSession;

/// Per-session packet counters.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counters {
    /// Packets from the peer passed to the TUN side.
    pub rx_packets: u64,
    /// Their bytes.
    pub rx_bytes: u64,
    /// Packets from the TUN side sent to the peer.
    pub tx_packets: u64,
    /// Their bytes.
    pub tx_bytes: u64,
    /// Packets from the peer dropped for other reasons (oversize, malformed,
    /// a destination that may not be routed).
    pub rx_dropped: u64,
    /// Packets from the peer with a source it was not given (dropped).
    pub spoofed: u64,
    /// Link-local packets from the peer, handled or dropped here.
    pub link_local: u64,
    /// Packets from the TUN side that the link could not carry.
    pub tx_dropped: u64,
    /// Packets dropped by the session's rate limit (both directions).
    pub rate_dropped: u64,
}

/// Moves the bytes of `tx` to the end of `buf` (by swapping buffers when
/// `buf` is empty: no copy); false if there were none.
pub(crate) fn hand_over(tx: &mut Vec<u8>, buf: &mut Vec<u8>) -> bool {
    if tx.is_empty() {
        return false;
    }
    if buf.is_empty() {
        std::mem::swap(buf, tx);
    } else {
        buf.extend_from_slice(tx);
        tx.clear();
    }
    true
}

/// A tunnel session as its driver sees it.
pub trait Session {
    /// What the session tells its driver.
    type Event;

    /// Bytes read from the HTTPS stream.
    fn handle_stream_bytes(&mut self, now: Instant, bytes: &[u8]);
    /// A buffer of the session's own to read the stream into directly
    /// (report the bytes with [`Session::handle_read`]); `None`: read into
    /// any buffer and call [`Session::handle_stream_bytes`].
    fn read_buf(&mut self) -> Option<&mut [u8]> {
        None
    }
    /// `n` bytes were read into [`Session::read_buf`].
    fn handle_read(&mut self, now: Instant, n: usize) {
        let _ = (now, n);
    }
    /// One packet read from the TUN device for this session.
    fn handle_tun_packet(&mut self, now: Instant, packet: &[u8]);
    /// Several packets from the TUN device.
    fn handle_tun_packets<'a>(
        &mut self,
        now: Instant,
        packets: impl IntoIterator<Item = &'a [u8]>,
    ) {
        for p in packets {
            self.handle_tun_packet(now, p);
        }
    }
    /// Appends the bytes to write to the stream to `buf`; false if none.
    fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> bool;
    /// The next packet for the TUN device.
    fn poll_tun(&mut self) -> Option<&[u8]>;
    /// The next event.
    fn poll_event(&mut self) -> Option<Self::Event>;
    /// When [`Session::handle_timeout`] is due next.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Runs the timers that are due.
    fn handle_timeout(&mut self, now: Instant);
    /// Ends the session from our side (a clean disconnect on the wire).
    fn close(&mut self, now: Instant, reason: &str);
    /// The stream is gone (EOF or error): end without a message.
    fn stream_closed(&mut self, now: Instant);
    /// The session is over and its closing event was emitted.
    fn is_closed(&self) -> bool;
}
