//! Copying bytes both ways between two streams once a tunnel is open.
//!
//! Luotonen, "Proxy Response": data from either side is forwarded at once;
//! "if at any point either one of the peers gets disconnected, any
//! outstanding data that came from that peer will be passed to the other
//! one, and after that also the other connection will be terminated".
//!
//! Here: when one side reaches end of file, everything it sent is written to
//! the other side, which then gets a FIN (half-close). The other direction
//! may go on for at most `half_close` (so request/response protocols that
//! close their sending side first still get their answer); a zero
//! `half_close` closes both at once, as in the draft. A read or write error
//! on either side closes both immediately. `idle` bounds the time without
//! traffic in either direction.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

const BUF: usize = 16 * 1024;

/// How a relay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Both sides closed cleanly.
    Closed,
    /// One side closed and the other did not within the half-close time.
    HalfCloseTimeout,
    /// No traffic for the idle time.
    IdleTimeout,
    /// A read or write on the client side failed.
    ClientError,
    /// A read or write on the server side failed.
    ServerError,
    /// The caller asked to stop.
    Stopped,
}

impl End {
    /// A short label for access logs.
    pub fn label(self) -> &'static str {
        match self {
            End::Closed => "ok",
            End::HalfCloseTimeout => "half_close_timeout",
            End::IdleTimeout => "idle_timeout",
            End::ClientError => "client_error",
            End::ServerError => "server_error",
            End::Stopped => "stopped",
        }
    }
}

/// Bytes relayed and how it ended.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// Client to server.
    pub up: u64,
    /// Server to client.
    pub down: u64,
    /// Why it stopped.
    pub end: End,
}

/// Limits for one relay.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Close after this long without traffic; `None` for never.
    pub idle: Option<Duration>,
    /// After one side's end of file, how long the other direction may go on.
    pub half_close: Duration,
}

enum DirEnd {
    Eof,
    ReadErr,
    WriteErr,
}

struct Activity {
    base: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn touch(&self) {
        let ms = self.base.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }
    fn last(&self) -> Instant {
        self.base + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

async fn pump<R, W>(mut r: R, mut w: W, first: &[u8], count: &AtomicU64, act: &Activity) -> DirEnd
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    if !first.is_empty() {
        if w.write_all(first).await.is_err() {
            return DirEnd::WriteErr;
        }
        count.fetch_add(first.len() as u64, Ordering::Relaxed);
        act.touch();
    }
    let mut buf = vec![0u8; BUF];
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) => {
                // Everything read so far is written: pass the FIN on.
                let _ = w.shutdown().await;
                return DirEnd::Eof;
            }
            Ok(n) => n,
            Err(_) => return DirEnd::ReadErr,
        };
        act.touch();
        if w.write_all(&buf[..n]).await.is_err() {
            return DirEnd::WriteErr;
        }
        count.fetch_add(n as u64, Ordering::Relaxed);
        act.touch();
    }
}

/// Relays between `client` and `server` until both close, an error, a
/// timeout, or `stop` resolves. `client_first` is written to the server
/// before anything else (bytes that followed the request head).
pub async fn relay<C, S, F>(
    client: C,
    client_first: &[u8],
    server: S,
    limits: Limits,
    stop: F,
) -> Outcome
where
    C: AsyncRead + AsyncWrite + Unpin,
    S: AsyncRead + AsyncWrite + Unpin,
    F: std::future::Future<Output = ()>,
{
    let (cr, cw) = tokio::io::split(client);
    let (sr, sw) = tokio::io::split(server);
    let up = AtomicU64::new(0);
    let down = AtomicU64::new(0);
    let act = Arc::new(Activity {
        base: Instant::now(),
        last_ms: AtomicU64::new(0),
    });
    let mut up_fut = std::pin::pin!(pump(cr, sw, client_first, &up, &act));
    let mut down_fut = std::pin::pin!(pump(sr, cw, &[], &down, &act));
    let mut stop = std::pin::pin!(stop);
    let mut up_done = false;
    let mut down_done = false;
    let mut linger: Option<Instant> = None;
    let far = Duration::from_secs(86400 * 365);
    let end = loop {
        let idle_at = limits.idle.map(|d| act.last() + d);
        let wake = [idle_at, linger]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or_else(|| Instant::now() + far);
        tokio::select! {
            r = &mut up_fut, if !up_done => {
                up_done = true;
                match r {
                    DirEnd::Eof if down_done => break End::Closed,
                    DirEnd::Eof => linger = Some(Instant::now() + limits.half_close),
                    DirEnd::ReadErr => break End::ClientError,
                    DirEnd::WriteErr => break End::ServerError,
                }
            }
            r = &mut down_fut, if !down_done => {
                down_done = true;
                match r {
                    DirEnd::Eof if up_done => break End::Closed,
                    DirEnd::Eof => linger = Some(Instant::now() + limits.half_close),
                    DirEnd::ReadErr => break End::ServerError,
                    DirEnd::WriteErr => break End::ClientError,
                }
            }
            _ = &mut stop => break End::Stopped,
            _ = tokio::time::sleep_until(wake) => {
                let now = Instant::now();
                if linger.is_some_and(|l| now >= l) {
                    break End::HalfCloseTimeout;
                }
                if idle_at.is_some_and(|_| limits.idle.is_some_and(|d| now >= act.last() + d)) {
                    break End::IdleTimeout;
                }
            }
        }
    };
    Outcome {
        up: up.load(Ordering::Relaxed),
        down: down.load(Ordering::Relaxed),
        end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::duplex;

    fn limits(idle: Option<u64>, half_close_ms: u64) -> Limits {
        Limits {
            idle: idle.map(Duration::from_millis),
            half_close: Duration::from_millis(half_close_ms),
        }
    }

    #[tokio::test]
    async fn stop_ends_the_relay() {
        let (client, _cp) = duplex(64);
        let (server, _sp) = duplex(64);
        let o = relay(client, b"", server, limits(None, 1000), async {}).await;
        assert_eq!(o.end, End::Stopped);
    }

    #[tokio::test]
    async fn errors_close_both_sides() {
        let (client, mut client_peer) = duplex(64);
        let (server, server_peer) = duplex(64);
        drop(server_peer);
        let t = crate::tasks::spawn(relay(
            client,
            b"",
            server,
            limits(None, 5000),
            std::future::pending(),
        ));
        client_peer.write_all(b"data").await.unwrap();
        let o = t.await.unwrap();
        assert!(
            matches!(o.end, End::ServerError | End::Closed),
            "{:?}",
            o.end
        );
        let mut rest = Vec::new();
        client_peer.read_to_end(&mut rest).await.unwrap();
    }

    #[tokio::test]
    async fn forwards_both_ways_and_half_closes() {
        let (client, mut client_peer) = duplex(64);
        let (server, mut server_peer) = duplex(64);
        let t = crate::tasks::spawn(relay(
            client,
            b"early",
            server,
            limits(None, 5000),
            std::future::pending(),
        ));
        // The early bytes arrive first, then what the client writes.
        client_peer.write_all(b"+more").await.unwrap();
        client_peer.shutdown().await.unwrap();
        let mut got = Vec::new();
        server_peer.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"early+more");
        // The server can still answer after the client's FIN.
        server_peer.write_all(b"answer").await.unwrap();
        server_peer.shutdown().await.unwrap();
        let mut back = Vec::new();
        client_peer.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"answer");
        let o = t.await.unwrap();
        assert_eq!((o.up, o.down, o.end), (10, 6, End::Closed));
    }

    #[tokio::test]
    async fn large_transfer_is_complete() {
        let (client, mut client_peer) = duplex(1024);
        let (server, mut server_peer) = duplex(1024);
        let t = crate::tasks::spawn(relay(
            client,
            b"",
            server,
            limits(Some(5000), 5000),
            std::future::pending(),
        ));
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let d2 = data.clone();
        let w = crate::tasks::spawn(async move {
            client_peer.write_all(&d2).await.unwrap();
            client_peer.shutdown().await.unwrap();
            client_peer
        });
        let mut got = Vec::new();
        server_peer.read_to_end(&mut got).await.unwrap();
        assert!(got == data);
        drop(server_peer);
        drop(w.await.unwrap());
        let o = t.await.unwrap();
        assert_eq!(o.up, 1_000_000);
    }

    #[tokio::test]
    async fn idle_timeout() {
        let (client, mut client_peer) = duplex(64);
        let (server, _server_peer) = duplex(64);
        let t0 = Instant::now();
        let t = crate::tasks::spawn(relay(
            client,
            b"",
            server,
            limits(Some(300), 5000),
            std::future::pending(),
        ));
        client_peer.write_all(b"x").await.unwrap();
        let o = t.await.unwrap();
        assert_eq!(o.end, End::IdleTimeout);
        assert_eq!(o.up, 1);
        let took = t0.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(3),
            "{took:?}"
        );
    }

    #[tokio::test]
    async fn half_close_timeout_and_strict_mode() {
        for (hc, want) in [(300, End::HalfCloseTimeout), (0, End::HalfCloseTimeout)] {
            let (client, mut client_peer) = duplex(64);
            let (server, _server_peer) = duplex(64);
            let t0 = Instant::now();
            let t = crate::tasks::spawn(relay(
                client,
                b"",
                server,
                limits(None, hc),
                std::future::pending(),
            ));
            client_peer.shutdown().await.unwrap();
            let o = t.await.unwrap();
            assert_eq!(o.end, want);
            assert!(t0.elapsed() >= Duration::from_millis(hc));
            assert!(t0.elapsed() < Duration::from_secs(3));
        }
    }
}
