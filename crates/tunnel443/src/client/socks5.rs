//! SOCKS5 (RFC 1928) for the rootless client: the local side of `--socks5
//! ADDR`. No authentication (method X'00', §3; the listener is meant for
//! loopback), CONNECT and UDP ASSOCIATE (§4), IPv4 and IPv6 addresses and
//! host names (§5; names are resolved through the tunnel by the user-space
//! stack), replies as in §6, and the UDP request header of §7 (no
//! fragmentation: fragments are dropped).
//!
//! What a request cannot get has a defined reply: unknown address types
//! X'08' (address type not supported), BIND and unknown commands X'07'.
//! The greeting and the request are read exactly, so data a client sends
//! without waiting for the reply is kept for the connection.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Time allowed for the greeting and the request.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Reply codes (§6).
pub const REP_OK: u8 = 0;
/// General SOCKS server failure.
pub const REP_FAILURE: u8 = 1;
/// Host unreachable (also: a name that did not resolve).
pub const REP_HOST_UNREACHABLE: u8 = 4;
/// Connection refused.
pub const REP_REFUSED: u8 = 5;
/// Command not supported.
pub const REP_COMMAND: u8 = 7;
/// Address type not supported.
pub const REP_ADDRESS_TYPE: u8 = 8;

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest {
    /// An IPv4 or IPv6 address.
    Ip(SocketAddr),
    /// A host name to resolve through the tunnel, and a port.
    Name(String, u16),
}

impl std::fmt::Display for Dest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dest::Ip(a) => write!(f, "{a}"),
            Dest::Name(n, p) => write!(f, "{n}:{p}"),
        }
    }
}

/// A request the stack serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// CONNECT to a destination.
    Connect(Dest),
    /// UDP ASSOCIATE.
    UdpAssociate,
}

/// A reply (§6) with the bound address (ATYP 1 or 4).
pub fn reply(rep: u8, bound: SocketAddr) -> Vec<u8> {
    let mut r = vec![5, rep, 0];
    match bound.ip() {
        IpAddr::V4(ip) => {
            r.push(1);
            r.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            r.push(4);
            r.extend_from_slice(&ip.octets());
        }
    }
    r.extend_from_slice(&bound.port().to_be_bytes());
    r
}

/// Why an address could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrError {
    /// More bytes are needed.
    Short,
    /// A reply code to send (type not supported, bad name).
    Reply(u8),
}

/// Reads `ATYP ADDR PORT` (§5) from `b`; the destination and the bytes used.
pub fn parse_addr(b: &[u8]) -> Result<(Dest, usize), AddrError> {
    let atyp = *b.first().ok_or(AddrError::Short)?;
    let (dest_len, start) = match atyp {
        1 => (4, 1),
        3 => (usize::from(*b.get(1).ok_or(AddrError::Short)?), 2),
        4 => (16, 1),
        _ => return Err(AddrError::Reply(REP_ADDRESS_TYPE)),
    };
    let end = start + dest_len;
    let addr = b.get(start..end).ok_or(AddrError::Short)?;
    let port = b.get(end..end + 2).ok_or(AddrError::Short)?;
    let port = u16::from_be_bytes([port[0], port[1]]);
    let dest = if atyp == 1 {
        Dest::Ip(SocketAddr::new(
            Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]).into(),
            port,
        ))
    } else if atyp == 4 {
        let mut o = [0u8; 16];
        o.copy_from_slice(addr);
        Dest::Ip(SocketAddr::new(Ipv6Addr::from(o).into(), port))
    } else {
        let text = std::str::from_utf8(addr).map_err(|_| AddrError::Reply(REP_HOST_UNREACHABLE))?;
        // A name that is an address literal is one.
        match text.parse::<IpAddr>() {
            Ok(ip) => Dest::Ip(SocketAddr::new(ip, port)),
            Err(_) if is_host_name(text) => Dest::Name(text.to_ascii_lowercase(), port),
            Err(_) => return Err(AddrError::Reply(REP_HOST_UNREACHABLE)),
        }
    };
    Ok((dest, end + 2))
}

/// Letters, digits, `-`, `_` and dots, up to 253 characters.
pub fn is_host_name(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.' || c == b'_')
}

/// Reads the UDP request header (§7): the destination and the payload's
/// offset. Fragments (FRAG ≠ 0) and malformed headers give `None`.
pub fn parse_udp(b: &[u8]) -> Option<(Dest, usize)> {
    if b.len() < 4 || b[0] != 0 || b[1] != 0 || b[2] != 0 {
        return None;
    }
    let (dest, n) = parse_addr(&b[3..]).ok()?;
    Some((dest, 3 + n))
}

/// The UDP header for a datagram from `src` back to the client.
pub fn udp_header(src: SocketAddr) -> Vec<u8> {
    let mut h = reply(0, src);
    h[0] = 0;
    h[1] = 0;
    h
}

/// Runs the greeting and reads the request. A request that cannot be
/// served is answered here (the error says why). Exactly the greeting and
/// the request are read: data a client sends right after its CONNECT
/// request stays in the stream for the connection.
pub async fn handshake(s: &mut TcpStream) -> io::Result<Request> {
    tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake_inner(s))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "SOCKS handshake timed out"))?
}

async fn handshake_inner(s: &mut TcpStream) -> io::Result<Request> {
    // Greeting: VER NMETHODS METHODS.
    let mut head = [0u8; 2];
    s.read_exact(&mut head).await?;
    if head[0] != 5 {
        return Err(io::Error::other("not a SOCKS5 client"));
    }
    let mut methods = vec![0u8; usize::from(head[1])];
    s.read_exact(&mut methods).await?;
    if !methods.contains(&0) {
        s.write_all(&[5, 0xff]).await?;
        return Err(io::Error::other(
            "the SOCKS client offers no method we accept (only no-authentication)",
        ));
    }
    s.write_all(&[5, 0]).await?;
    // Request: VER CMD RSV ATYP DST.ADDR DST.PORT, read by its ATYP.
    let mut req = vec![0u8; 4];
    s.read_exact(&mut req).await?;
    let addr_len = match req[3] {
        1 => 4,
        4 => 16,
        3 => {
            let mut n = [0u8; 1];
            s.read_exact(&mut n).await?;
            req.push(n[0]);
            usize::from(n[0])
        }
        // Unknown: refused below; nothing more is read.
        _ => 0,
    };
    let at = req.len();
    req.resize(at + addr_len + 2, 0);
    if matches!(req[3], 1 | 3 | 4) {
        s.read_exact(&mut req[at..]).await?;
    }
    match parse_addr(&req[3..]) {
        Ok((dest, _)) => {
            if req[0] != 5 {
                return Err(io::Error::other("bad SOCKS request version"));
            }
            match req[1] {
                1 => Ok(Request::Connect(dest)),
                3 => Ok(Request::UdpAssociate),
                c => {
                    s.write_all(&reply(REP_COMMAND, unspecified())).await?;
                    Err(io::Error::other(format!("SOCKS command {c} not supported")))
                }
            }
        }
        Err(AddrError::Reply(rep)) => {
            s.write_all(&reply(rep, unspecified())).await?;
            Err(io::Error::other(if rep == REP_ADDRESS_TYPE {
                "SOCKS address type not supported"
            } else {
                "invalid host name in the SOCKS request"
            }))
        }
        Err(AddrError::Short) => Err(io::Error::other("truncated SOCKS request")),
    }
}

/// 0.0.0.0:0.
pub fn unspecified() -> SocketAddr {
    SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            parse_addr(&[1, 10, 44, 0, 1, 0, 80]),
            Ok((Dest::Ip("10.44.0.1:80".parse().unwrap()), 7))
        );
        let mut name = vec![3, 11];
        name.extend_from_slice(b"Web.VPN.test");
        name.truncate(13);
        name.extend_from_slice(&[1, 187]);
        assert_eq!(
            parse_addr(&name),
            Ok((Dest::Name("web.vpn.tes".into(), 443), 15))
        );
        let mut lit = vec![3, 8];
        lit.extend_from_slice(b"10.0.0.1");
        lit.extend_from_slice(&[0, 22]);
        assert_eq!(
            parse_addr(&lit).unwrap().0,
            Dest::Ip("10.0.0.1:22".parse().unwrap())
        );
        let mut v6 = vec![4];
        v6.extend_from_slice(&"fd00:1::1".parse::<Ipv6Addr>().unwrap().octets());
        v6.extend_from_slice(&[0, 80]);
        assert_eq!(
            parse_addr(&v6),
            Ok((Dest::Ip("[fd00:1::1]:80".parse().unwrap()), 19))
        );
        assert_eq!(parse_addr(&v6[..18]), Err(AddrError::Short));
        let mut lit = vec![3, 9];
        lit.extend_from_slice(b"fd00:1::1");
        lit.extend_from_slice(&[0, 22]);
        assert_eq!(
            parse_addr(&lit).unwrap().0,
            Dest::Ip("[fd00:1::1]:22".parse().unwrap())
        );
        assert_eq!(parse_addr(&[1, 10, 44]), Err(AddrError::Short));
        assert_eq!(parse_addr(&[]), Err(AddrError::Short));
        assert_eq!(parse_addr(&[3]), Err(AddrError::Short));
        assert_eq!(parse_addr(&[9; 9]), Err(AddrError::Reply(REP_ADDRESS_TYPE)));
        assert_eq!(
            parse_addr(&[3, 2, b'a', b' ', 0, 1]),
            Err(AddrError::Reply(REP_HOST_UNREACHABLE))
        );
        assert_eq!(
            parse_addr(&[3, 0, 0, 1]),
            Err(AddrError::Reply(REP_HOST_UNREACHABLE))
        );
    }

    #[test]
    fn udp_headers() {
        let src: SocketAddr = "10.44.0.1:53".parse().unwrap();
        let h = udp_header(src);
        assert_eq!(h, [0, 0, 0, 1, 10, 44, 0, 1, 0, 53]);
        let mut d = h.to_vec();
        d.extend_from_slice(b"data");
        assert_eq!(parse_udp(&d), Some((Dest::Ip(src), 10)));
        d[2] = 1; // a fragment
        assert_eq!(parse_udp(&d), None);
        assert_eq!(parse_udp(&[0, 0, 0]), None);
        assert_eq!(reply(REP_OK, src), [5, 0, 0, 1, 10, 44, 0, 1, 0, 53]);
        let v6: SocketAddr = "[fd00:1::1]:53".parse().unwrap();
        let h = udp_header(v6);
        assert_eq!(h.len(), 22);
        assert_eq!(&h[..4], &[0, 0, 0, 4]);
        assert_eq!(parse_udp(&h), Some((Dest::Ip(v6), 22)));
    }

    #[tokio::test]
    async fn handshake_over_a_socket() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let mut c = TcpStream::connect(addr).await.unwrap();
            // Greeting, request and the first data in one write (a
            // client that does not wait for the reply).
            let mut req = vec![5, 2, 2, 0, 5, 1, 0, 3, 4];
            req.extend_from_slice(b"host");
            req.extend_from_slice(&[0, 80]);
            req.extend_from_slice(b"early");
            c.write_all(&req).await.unwrap();
            let mut r = [0u8; 2];
            c.read_exact(&mut r).await.unwrap();
            r
        });
        let (mut s, _) = l.accept().await.unwrap();
        let req = handshake(&mut s).await.unwrap();
        assert_eq!(req, Request::Connect(Dest::Name("host".into(), 80)));
        assert_eq!(client.await.unwrap(), [5, 0]);
        // The data after the request is left for the connection.
        let mut early = [0u8; 5];
        s.read_exact(&mut early).await.unwrap();
        assert_eq!(&early, b"early");

        // No acceptable method, then BIND: defined answers.
        let client = tokio::spawn(async move {
            let mut c = TcpStream::connect(addr).await.unwrap();
            c.write_all(&[5, 1, 2]).await.unwrap();
            let mut r = [0u8; 2];
            c.read_exact(&mut r).await.unwrap();
            let mut c2 = TcpStream::connect(addr).await.unwrap();
            c2.write_all(&[5, 1, 0, 5, 2, 0, 1, 1, 2, 3, 4, 0, 1])
                .await
                .unwrap();
            let mut r2 = [0u8; 12];
            c2.read_exact(&mut r2).await.unwrap();
            (r, r2)
        });
        let (mut s, _) = l.accept().await.unwrap();
        assert!(handshake(&mut s).await.is_err());
        let (mut s2, _) = l.accept().await.unwrap();
        let e = handshake(&mut s2).await.unwrap_err();
        assert!(e.to_string().contains("command 2"), "{e}");
        let (r, r2) = client.await.unwrap();
        assert_eq!(r, [5, 0xff]);
        assert_eq!(&r2[..4], &[5, 0, 5, REP_COMMAND]);
    }
}
