//! The one tokio driver for every tunnel session (the `session` crate's
//! sans-IO units: SSTP and IP-HTTPS, server and client).
//!
//! Each [`Driver::turn`] writes what the session has to send (all of it in
//! one write), hands the packets it has for the TUN side to the device,
//! then waits for one thing — stream bytes, TUN packets (a batch: the
//! packets already queued come along), the session's next timer, or the
//! stop signal — and feeds it in. The caller drains the session's events
//! between turns and answers them (authentication, addresses, bringing up
//! a device), so everything protocol-specific stays with the caller and
//! everything IO-specific is here, once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;

use session::packets::PacketQueue;
use session::Session;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch, Notify};

use crate::io_util::{is_peer_close, plain_error, BoxStream};
use crate::spares::Spares;
use crate::tun::{Read, Tun, TunReader, TunWriter};

/// TUN packets fed to the session per turn, at most.
const TUN_BATCH: usize = 64;

/// Stream bytes read per turn, for sessions without a buffer of their own:
/// a small buffer first (an idle session holds only this: 10,000 idle
/// sessions must fit in memory), doubled up to [`READ_BUF`] whenever a read
/// fills it (bulk traffic).
const READ_BUF_MIN: usize = 2 * 1024;
const READ_BUF: usize = 64 * 1024;

/// Stream bytes fed to the session per turn, at most: one TLS read gives
/// at most one record (16 KiB), so the records already readable come along
/// in the same turn, up to this (one TUN write and one stream write for
/// all of them).
const READ_GATHER: usize = 64 * 1024;

/// Only a read at least this large (bulk traffic) looks for more: an idle
/// session's small read (one ping) costs no extra syscall.
const GATHER_MIN: usize = 4 * 1024;

/// How long one turn's write may take: a peer that stops reading (its
/// receive window and our send buffer full) is given up after this, so
/// that it cannot hold a session, its address and its socket for ever.
#[cfg(not(test))]
const WRITE_STALL: Duration = Duration::from_secs(60);
#[cfg(test)]
const WRITE_STALL: Duration = Duration::from_millis(300);

/// How long a closing connection waits for the peer's own close.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// The read buffer's next size after a read of `n` bytes into `len`:
/// doubled when the read filled it, up to [`READ_BUF`].
fn grown_read_buf(len: usize, n: usize) -> Option<usize> {
    (n == len && len < READ_BUF).then(|| (len * 2).min(READ_BUF))
}

/// Emptied batches of routed packets, back from the sessions for the TUN
/// reader to fill again: the server's down path allocates nothing per
/// read (freeing a 64 KiB batch per read made glibc give the pages back to
/// the kernel and fault them in again, 7% of the server in a profile).
/// 64 at most: a few MiB.
pub static SPARE_BATCHES: Spares<PacketQueue> = Spares::new(64);

/// A filter on packets from the peer: true drops the packet.
pub type RefuseFn = Box<dyn Fn(&[u8]) -> bool + Send + Sync>;

/// Where a session's packets come from and go to.
pub enum TunSide {
    /// No device yet (a client before its address is known): packets
    /// from the peer are dropped.
    None,
    /// A client's own device: read and written here.
    Device(Tun),
    /// A server session: the router hands it the packets for its
    /// addresses on `rx`, in batches from [`SPARE_BATCHES`] that go back
    /// once drained; its own go to the shared device.
    Routed {
        rx: mpsc::Receiver<PacketQueue>,
        tun: Tun,
        /// Packets from the peer for which this says true are dropped
        /// (client isolation); it counts them itself.
        refuse: Option<RefuseFn>,
    },
    /// A rootless client's user-space TCP/IP stack: the session's packets
    /// go to it on `tx` (dropped when full), its own come on `rx`.
    Stack {
        tx: mpsc::Sender<Vec<u8>>,
        rx: mpsc::Receiver<Vec<u8>>,
    },
}

impl TunSide {
    /// The device packets from the peer go to.
    fn device(&self) -> Option<&Tun> {
        match self {
            TunSide::None | TunSide::Stack { .. } => None,
            TunSide::Device(t) | TunSide::Routed { tun: t, .. } => Some(t),
        }
    }
}

/// How a turn ended.
#[derive(Debug)]
pub enum Turn {
    /// Something was fed in: drain the events and turn again.
    Continue,
    /// The stop signal fired (once): close the session, then turn on.
    Stop,
    /// The session is closed and its last bytes are written.
    Closed,
    /// The TUN device failed.
    TunFailed(std::io::Error),
}

enum Got {
    Read(std::io::Result<usize>),
    Tun(std::io::Result<Read>),
    Routed(Option<PacketQueue>),
    Stack(Option<Vec<u8>>),
    Timer,
    Stop,
    Wake,
}

/// The IO of one session: its stream, its TUN side, and buffers.
pub struct Driver {
    /// Not split: a turn writes, then reads, never both at once.
    stream: BoxStream,
    pub tun: TunSide,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    /// Batched reads of a client's own device (made when it has one).
    reader: Option<Box<TunReader>>,
    writer: TunWriter,
    stopping: bool,
    /// Packets for the TUN side it did not take (queue full, no device).
    pub tun_drops: u64,
    /// Ends a turn from outside (an answer the caller waited for, e.g. a
    /// RADIUS verdict, is ready): the turn returns [`Turn::Continue`].
    pub wake: Arc<Notify>,
}

impl Driver {
    pub fn new(stream: BoxStream, tun: TunSide) -> Self {
        Driver {
            stream,
            tun,
            // Made on first use: sessions that read into their own buffer
            // (IP-HTTPS) never need it.
            rbuf: Vec::new(),
            // Grows to what a turn writes (an echo for an idle session).
            wbuf: Vec::new(),
            reader: None,
            writer: TunWriter::default(),
            stopping: false,
            tun_drops: 0,
            wake: Arc::default(),
        }
    }

    /// The stream back (the load generator's stalled sessions hold it
    /// without a session).
    pub fn into_stream(self) -> BoxStream {
        self.stream
    }

    /// Hands one read's packets to the session; returns how many.
    fn feed<S: Session>(&mut self, s: &mut S, now: Instant, read: Read) -> usize {
        let Some(reader) = self.reader.as_ref() else {
            return 0;
        };
        match read {
            Read::Packets(n) => {
                for i in 0..n {
                    s.handle_tun_packet(now, reader.packet(i));
                }
                n
            }
            Read::Bad(e) => {
                tracing::debug!(error = %e, "TUN packet that could not be segmented dropped");
                self.tun_drops += 1;
                0
            }
        }
    }

    /// close_notify and FIN, then what the peer still sends is read until
    /// its own close, so that the connection ends with a FIN each way, not
    /// a reset for unread data. A peer that stops reading or never closes
    /// holds us at most [`CLOSE_GRACE`].
    async fn close_gracefully(&mut self) {
        let stream = &mut self.stream;
        let mut rbuf = [0u8; 4096];
        let _ = tokio::time::timeout(CLOSE_GRACE, async {
            let _ = stream.shutdown().await;
            while matches!(stream.read(&mut rbuf).await, Ok(n) if n > 0) {}
        })
        .await;
    }

    /// One round of IO for `s` (see the module docs).
    pub async fn turn<S: Session>(&mut self, s: &mut S, stop: &mut watch::Receiver<bool>) -> Turn {
        while let Some(p) = s.poll_tun() {
            match &self.tun {
                TunSide::Stack { tx, .. } => {
                    if tx.try_send(p.to_vec()).is_err() {
                        self.tun_drops += 1;
                    }
                }
                TunSide::Routed {
                    refuse: Some(refuse),
                    ..
                } if refuse(p) => {}
                _ => self.writer.push(p),
            }
        }
        match self.tun.device() {
            Some(t) => self.tun_drops += self.writer.flush(t).await as u64,
            None => {
                self.tun_drops += self.writer.len() as u64;
                self.writer = TunWriter::default();
            }
        }
        self.wbuf.clear();
        while s.poll_transmit(&mut self.wbuf) {}
        if !self.wbuf.is_empty() {
            match tokio::time::timeout(WRITE_STALL, self.stream.write_all(&self.wbuf)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => {
                    s.stream_closed(Instant::now());
                    return Turn::Continue;
                }
                Err(_) => {
                    tracing::info!(
                        stalled_s = WRITE_STALL.as_secs(),
                        "the peer stopped reading; connection closed"
                    );
                    s.stream_closed(Instant::now());
                    return Turn::Continue;
                }
            }
        }
        if s.is_closed() {
            self.close_gracefully().await;
            return Turn::Closed;
        }
        let deadline = s.poll_timeout();
        let own = s.read_buf().is_some();
        if !own && self.rbuf.is_empty() {
            self.rbuf = vec![0; READ_BUF_MIN];
        }
        if matches!(self.tun, TunSide::Device(_)) && self.reader.is_none() {
            self.reader = Some(Box::default());
        }
        let got = {
            let Driver {
                stream,
                tun,
                rbuf,
                reader,
                wake,
                ..
            } = self;
            let buf: &mut [u8] = match s.read_buf() {
                Some(b) => b,
                None => rbuf,
            };
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            let tun_read = async {
                match tun {
                    TunSide::None => std::future::pending().await,
                    TunSide::Device(t) => match reader {
                        Some(r) => Got::Tun(r.recv(t).await),
                        None => std::future::pending().await,
                    },
                    TunSide::Routed { rx, .. } => Got::Routed(rx.recv().await),
                    TunSide::Stack { rx, .. } => Got::Stack(rx.recv().await),
                }
            };
            tokio::select! {
                r = stream.read(buf) => Got::Read(r),
                g = tun_read => g,
                _ = sleep => Got::Timer,
                _ = stop.changed(), if !self.stopping => Got::Stop,
                _ = wake.notified() => Got::Wake,
            }
        };
        let now = Instant::now();
        match got {
            Got::Read(Ok(0)) => s.stream_closed(now),
            Got::Read(Err(e)) => {
                // Most peers leave without TLS close_notify: that is a close.
                if !is_peer_close(&e) {
                    tracing::debug!(error = %plain_error(&e), "stream read failed");
                }
                s.stream_closed(now);
            }
            Got::Read(Ok(n)) if own => {
                s.handle_read(now, n);
                // The records already readable come along (no wait).
                let mut total = n;
                while (GATHER_MIN..READ_GATHER).contains(&total) && !s.is_closed() {
                    let Some(buf) = s.read_buf() else { break };
                    match self.stream.read(buf).now_or_never() {
                        Some(Ok(m)) if m > 0 => {
                            s.handle_read(now, m);
                            total += m;
                        }
                        // EOF or an error: the next turn's read sees it.
                        _ => break,
                    }
                }
            }
            Got::Read(Ok(mut n)) => {
                // The records already readable come along (no wait).
                while n >= GATHER_MIN && n < self.rbuf.len() {
                    match self.stream.read(&mut self.rbuf[n..]).now_or_never() {
                        Some(Ok(m)) if m > 0 => n += m,
                        _ => break,
                    }
                }
                s.handle_stream_bytes(now, &self.rbuf[..n]);
                if let Some(len) = grown_read_buf(self.rbuf.len(), n) {
                    self.rbuf = vec![0; len];
                }
            }
            Got::Tun(Ok(first)) => {
                // The reads already waiting come along (one stream write).
                let mut read = Some(first);
                let mut fed = 0;
                while let Some(r) = read.take() {
                    fed += self.feed(s, now, r);
                    if fed >= TUN_BATCH {
                        break;
                    }
                    read = match (&self.tun, self.reader.as_mut()) {
                        (TunSide::Device(t), Some(reader)) => match reader.try_recv(t) {
                            Ok(r) => r,
                            Err(e) => return Turn::TunFailed(e),
                        },
                        _ => None,
                    };
                }
            }
            Got::Tun(Err(e)) => return Turn::TunFailed(e),
            Got::Routed(Some(mut batch)) => {
                // The batches already queued come along (one stream write).
                let mut fed = 0;
                loop {
                    while let Some(p) = batch.pop() {
                        s.handle_tun_packet(now, p);
                        fed += 1;
                    }
                    let TunSide::Routed { rx, .. } = &mut self.tun else {
                        break;
                    };
                    if fed >= TUN_BATCH {
                        break;
                    }
                    match rx.try_recv() {
                        Ok(b) => SPARE_BATCHES.give(std::mem::replace(&mut batch, b)),
                        Err(_) => break,
                    }
                }
                SPARE_BATCHES.give(batch);
            }
            // The route is gone: the session is being torn down.
            Got::Routed(None) => {
                self.tun = TunSide::None;
                s.close(now, "route removed");
            }
            Got::Stack(Some(p)) => {
                s.handle_tun_packet(now, &p);
                let mut fed = 1;
                while fed < TUN_BATCH {
                    let TunSide::Stack { rx, .. } = &mut self.tun else {
                        break;
                    };
                    match rx.try_recv() {
                        Ok(p) => s.handle_tun_packet(now, &p),
                        Err(_) => break,
                    }
                    fed += 1;
                }
            }
            Got::Stack(None) => {
                self.tun = TunSide::None;
                s.close(now, "user-space stack stopped");
            }
            Got::Timer => s.handle_timeout(now),
            Got::Stop => {
                self.stopping = true;
                return Turn::Stop;
            }
            Got::Wake => {}
        }
        Turn::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session that always has 1 KiB to send.
    #[derive(Default)]
    struct Chatty {
        closed: bool,
    }

    impl Session for Chatty {
        type Event = ();
        fn handle_stream_bytes(&mut self, _: Instant, _: &[u8]) {}
        fn handle_tun_packet(&mut self, _: Instant, _: &[u8]) {}
        fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> bool {
            if buf.is_empty() && !self.closed {
                buf.extend_from_slice(&[0x5a; 1024]);
                return true;
            }
            false
        }
        fn poll_tun(&mut self) -> Option<&[u8]> {
            None
        }
        fn poll_event(&mut self) -> Option<()> {
            None
        }
        fn poll_timeout(&self) -> Option<Instant> {
            Some(Instant::now() + Duration::from_millis(20))
        }
        fn handle_timeout(&mut self, _: Instant) {}
        fn close(&mut self, _: Instant, _: &str) {
            self.closed = true;
        }
        fn stream_closed(&mut self, _: Instant) {
            self.closed = true;
        }
        fn is_closed(&self) -> bool {
            self.closed
        }
    }

    /// A peer that stops reading is given up after WRITE_STALL instead of
    /// holding the session for ever.
    #[tokio::test]
    async fn a_peer_that_stops_reading_is_given_up() {
        let (ours, _theirs) = tokio::io::duplex(4096);
        let mut d = Driver::new(Box::new(ours), TunSide::None);
        let mut s = Chatty::default();
        let (_tx, mut stop) = watch::channel(false);
        let t0 = Instant::now();
        let ended = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match d.turn(&mut s, &mut stop).await {
                    Turn::Closed => break,
                    Turn::Continue => {}
                    other => panic!("{other:?}"),
                }
            }
        })
        .await;
        assert!(ended.is_ok(), "still writing to a peer that does not read");
        assert!(s.closed);
        assert!(t0.elapsed() >= WRITE_STALL);
    }

    #[test]
    fn read_buffer_starts_small_and_grows_with_full_reads() {
        assert_eq!(READ_BUF_MIN, 2048);
        assert_eq!(grown_read_buf(READ_BUF_MIN, 100), None);
        assert_eq!(grown_read_buf(READ_BUF_MIN, READ_BUF_MIN), Some(4096));
        assert_eq!(grown_read_buf(16384, 16384), Some(32768));
        assert_eq!(grown_read_buf(32768, 32768), Some(READ_BUF));
        assert_eq!(grown_read_buf(READ_BUF, READ_BUF), None);
    }
}
