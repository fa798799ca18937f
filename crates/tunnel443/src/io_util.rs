//! Small IO helpers shared by the drivers: a boxed duplex stream type, the
//! socket options of a tunnel's TCP connection, a bounded reader for
//! protocol heads (HTTP, PROXY protocol) whose parsers are sans-IO and say
//! how many bytes they used, and the text of an IO error for a log line.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

/// Any byte stream a tunnel runs over (TLS, plain TCP, a proxied stream).
pub trait Duplex: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Duplex for T {}
pub type BoxStream = Box<dyn Duplex>;

/// TCP keepalive of a tunnel's connection: IP-HTTPS has no keepalive of
/// its own, so a peer that vanishes without a FIN or RST (a cut link, a
/// NAT that forgot us) is noticed after about 30 + 3 x 10 s instead of
/// never (and a session's lease is not held for ever).
const KEEPALIVE: socket2::TcpKeepalive = socket2::TcpKeepalive::new()
    .with_time(Duration::from_secs(30))
    .with_interval(Duration::from_secs(10))
    .with_retries(3);

/// No Nagle delay (the tunnel batches itself) and [`KEEPALIVE`].
pub fn tune_tcp(s: &tokio::net::TcpStream) {
    let _ = s.set_nodelay(true);
    let _ = socket2::SockRef::from(s).set_tcp_keepalive(&KEEPALIVE);
}

/// The text of an error for a log line or message, without the link to
/// its manual that rustls appends to some (`peer closed connection without
/// sending TLS close_notify: https://docs.rs/rustls/...`).
pub fn plain_error(e: &dyn std::fmt::Display) -> String {
    let text = e.to_string();
    match text.find(": https://docs.rs/") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// The peer ended the stream: a TCP end of file without TLS close_notify
/// (rustls reports `UnexpectedEof`) is how most clients leave, a reset
/// when they are killed. Either is a disconnect, not a failure.
pub fn is_peer_close(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        e.kind(),
        K::UnexpectedEof | K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe
    )
}

#[derive(Debug, thiserror::Error)]
pub enum HeadError<E> {
    #[error("connection closed before the head was complete")]
    Eof,
    #[error("head larger than {0} bytes")]
    TooBig(usize),
    #[error("head not complete within {} s", .0.as_secs_f32())]
    Timeout(Duration),
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Parse(E),
}

/// Reads from `s` into `buf` until `parse` says the head is complete.
/// `parse` returns `Ok(Some((value, head_len)))` when done, `Ok(None)` for
/// more; the bytes after the head are left in `buf` (drained of the head).
pub async fn read_head<S, T, E, F>(
    s: &mut S,
    buf: &mut Vec<u8>,
    max: usize,
    timeout: Duration,
    mut parse: F,
) -> Result<T, HeadError<E>>
where
    S: AsyncRead + Unpin + ?Sized,
    F: FnMut(&[u8]) -> Result<Option<(T, usize)>, E>,
{
    let fut = async {
        loop {
            if !buf.is_empty() {
                if let Some((v, used)) = parse(buf).map_err(HeadError::Parse)? {
                    buf.drain(..used);
                    return Ok(v);
                }
            }
            if buf.len() >= max {
                return Err(HeadError::TooBig(max));
            }
            let mut chunk = [0u8; 4096];
            let want = chunk.len().min(max - buf.len());
            let n = s.read(&mut chunk[..want]).await?;
            if n == 0 {
                return Err(HeadError::Eof);
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(timeout, fut)
        .await
        .unwrap_or(Err(HeadError::Timeout(timeout)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rustls_manual_links_are_cut() {
        let e = std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "peer closed connection without sending TLS close_notify: \
             https://docs.rs/rustls/latest/rustls/manual/_03_howto/index.html#unexpected-eof",
        );
        assert_eq!(
            plain_error(&e),
            "peer closed connection without sending TLS close_notify"
        );
        assert!(is_peer_close(&e));
        let other = std::io::Error::other("no route to host");
        assert_eq!(plain_error(&other), "no route to host");
        assert!(!is_peer_close(&other));
        assert_eq!(
            HeadError::<String>::Timeout(Duration::from_secs(10)).to_string(),
            "head not complete within 10 s"
        );
    }

    fn crlf2(b: &[u8]) -> Result<Option<((), usize)>, &'static str> {
        Ok(b.windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|p| ((), p + 4)))
    }

    #[tokio::test]
    async fn leaves_the_rest() {
        let (mut a, mut b) = tokio::io::duplex(64);
        tokio::io::AsyncWriteExt::write_all(&mut a, b"GET / HTTP/1.1\r\n\r\nrest")
            .await
            .unwrap();
        let mut buf = Vec::new();
        read_head(&mut b, &mut buf, 100, Duration::from_secs(1), crlf2)
            .await
            .unwrap();
        assert_eq!(buf, b"rest");
    }

    #[tokio::test]
    async fn bounded_and_timed() {
        let (mut a, mut b) = tokio::io::duplex(64);
        tokio::io::AsyncWriteExt::write_all(&mut a, &[b'x'; 50])
            .await
            .unwrap();
        let mut buf = Vec::new();
        let r = read_head(&mut b, &mut buf, 40, Duration::from_secs(1), crlf2).await;
        assert!(matches!(r, Err(HeadError::TooBig(40))));
        let mut buf = Vec::new();
        let (_a, mut b) = tokio::io::duplex(64);
        let r = read_head(&mut b, &mut buf, 40, Duration::from_millis(50), crlf2).await;
        assert!(matches!(r, Err(HeadError::Timeout(_))));
        drop(a);
    }
}
