//! Batched TUN I/O with the kernel's offloads (`IFF_VNET_HDR`, the virtio
//! net header): one read returns a TSO super-packet of up to 64 KiB, which
//! tun-rs cuts into MTU-sized segments here, in user space (SSTP frames are
//! at most 4 KiB, IP-HTTPS packets follow the link MTU); on the way in,
//! consecutive TCP segments of one flow are joined ([`session::gro`]) so
//! the kernel takes them in one write. What goes on the wire is unchanged:
//! ordinary packets no larger than the device MTU.
//!
//! Every read and write of an offloaded device carries the 10-byte virtio
//! header, so all TUN I/O goes through [`TunReader`] and [`TunWriter`].

use session::gro::Coalescer;
use tun_rs::VIRTIO_NET_HDR_LEN;

use crate::spares::Spares;

use super::Tun;

/// Segments per read at most: a 64 KiB super-packet at an MSS of 1220
/// (IPv6 at MTU 1280) is 54 of them.
const SEGMENTS: usize = 64;

/// Room for any one packet or segment.
const PACKET_ROOM: usize = 65535;

/// What one read returned.
pub enum Read {
    /// This many packets, see [`TunReader::packet`].
    Packets(usize),
    /// Something the device gave that could not be taken apart (logged by
    /// the caller, counted, not fatal).
    Bad(std::io::Error),
}

/// Reads batches of packets from a device.
pub struct TunReader {
    original: Vec<u8>,
    bufs: Vec<Vec<u8>>,
    sizes: Vec<usize>,
}

impl Default for TunReader {
    fn default() -> Self {
        TunReader {
            original: vec![0; VIRTIO_NET_HDR_LEN + PACKET_ROOM],
            bufs: vec![vec![0; PACKET_ROOM]; SEGMENTS],
            sizes: vec![0; SEGMENTS],
        }
    }
}

/// Whether an error of a TUN read is the device's (fatal) rather than one
/// packet's (tun-rs reports what it cannot segment as "other").
fn per_packet(e: &std::io::Error) -> bool {
    e.raw_os_error().is_none() && e.kind() == std::io::ErrorKind::Other
}

impl TunReader {
    /// Waits for the next read.
    pub async fn recv(&mut self, tun: &Tun) -> std::io::Result<Read> {
        let r = tun
            .recv_multiple(&mut self.original, &mut self.bufs, &mut self.sizes, 0)
            .await;
        Self::outcome(r)
    }

    /// The next read if one is ready now; `None` if not.
    pub fn try_recv(&mut self, tun: &Tun) -> std::io::Result<Option<Read>> {
        match tun.try_recv_multiple(&mut self.original, &mut self.bufs, &mut self.sizes, 0) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
            r => Self::outcome(r).map(Some),
        }
    }

    fn outcome(r: std::io::Result<usize>) -> std::io::Result<Read> {
        match r {
            Ok(n) => Ok(Read::Packets(n)),
            Err(e) if per_packet(&e) => Ok(Read::Bad(e)),
            Err(e) => Err(e),
        }
    }

    /// Packet `i` of the last read.
    pub fn packet(&self, i: usize) -> &[u8] {
        &self.bufs[i][..self.sizes[i]]
    }
}

/// The coalescers of the turns in progress: a session borrows one from its
/// first packet for the device until the write, so an idle session holds
/// none and a busy one no more than its turn needs. 16 kept at most, each
/// trimmed to [`COALESCER_BUDGET`] when given back: 4 MiB in all.
static COALESCERS: Spares<Box<Coalescer>> = Spares::new(16);
/// Buffer capacity a coalescer keeps between turns: a turn of one bulk
/// flow (a 64 KiB packet and its neighbours) keeps all it had.
const COALESCER_BUDGET: usize = 256 * 1024;

/// Gathers packets for a device and writes them, TCP segments joined
/// ([`session::gro`]).
#[derive(Default)]
pub struct TunWriter {
    gro: Option<Box<Coalescer>>,
}

impl TunWriter {
    /// Queues a copy of `packet`.
    pub fn push(&mut self, packet: &[u8]) {
        self.gro
            .get_or_insert_with(|| COALESCERS.take())
            .push(packet);
    }

    /// Packets queued (segments, as pushed).
    pub fn len(&self) -> usize {
        self.gro.as_ref().map_or(0, |g| g.segments())
    }

    /// Writes the queued packets; returns how many could not be written
    /// (the device's queue was full: dropped, as TCP-over-TCP wants).
    pub async fn flush(&mut self, tun: &Tun) -> usize {
        let Some(mut gro) = self.gro.take() else {
            return 0;
        };
        let mut lost = 0;
        for (p, segs) in gro.finish() {
            if let Err(e) = tun.send(p).await {
                tracing::debug!(error = %e, "TUN write failed");
                lost += usize::from(segs);
            }
        }
        gro.trim(COALESCER_BUDGET);
        COALESCERS.give(gro);
        lost
    }
}

impl Drop for TunWriter {
    fn drop(&mut self) {
        if let Some(mut gro) = self.gro.take() {
            // Packets never written (the session ended): dropped.
            gro.finish().for_each(drop);
            gro.trim(COALESCER_BUDGET);
            COALESCERS.give(gro);
        }
    }
}
