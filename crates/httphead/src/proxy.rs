//! PROXY protocol v1 and v2 headers (HAProxy's `proxy-protocol.txt`), sent by
//! a TLS-terminating load balancer in front of a plain-HTTP server so that
//! we learn the client's real address.
//!
//! [`parse`] is sans-IO: it takes the bytes received so far and says whether
//! it needs more, failed, or found a header of `len` bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

const V2_SIG: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// v1 headers are at most 107 bytes (spec §2.1).
const V1_MAX: usize = 107;
/// We accept v2 headers up to this size (TLVs included).
const V2_MAX: usize = 536;

/// Result of feeding bytes to [`parse`].
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Need more bytes.
    Partial,
    /// A header of `len` bytes; the addresses are `None` for LOCAL/UNKNOWN.
    Done {
        /// Bytes the header used; what follows is the proxied stream.
        len: usize,
        /// The client's address, as the load balancer saw it.
        source: Option<SocketAddr>,
        /// The address the client connected to (the load balancer's).
        destination: Option<SocketAddr>,
    },
}

/// A header that is not PROXY protocol v1 or v2 (what is wrong, in words).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("bad PROXY protocol header: {0}")]
pub struct Error(&'static str);

/// Parses a PROXY header at the start of `buf` (v1 lines up to 107 bytes,
/// v2 headers up to 536 bytes with their TLVs).
pub fn parse(buf: &[u8]) -> Result<Parsed, Error> {
    let n = buf.len().min(V2_SIG.len());
    if buf[..n] == V2_SIG[..n] {
        return if buf.len() < 16 {
            Ok(Parsed::Partial)
        } else {
            parse_v2(buf)
        };
    }
    let n = buf.len().min(6);
    if buf[..n] != b"PROXY "[..n] {
        return Err(Error("neither a v1 nor a v2 signature"));
    }
    parse_v1(buf)
}

fn parse_v1(buf: &[u8]) -> Result<Parsed, Error> {
    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
        return if buf.len() >= V1_MAX {
            Err(Error("v1 line too long"))
        } else {
            Ok(Parsed::Partial)
        };
    };
    let len = end + 2;
    if len > V1_MAX {
        return Err(Error("v1 line too long"));
    }
    let line = std::str::from_utf8(&buf[..end]).map_err(|_| Error("v1 line is not text"))?;
    let f: Vec<&str> = line.split(' ').collect();
    match f.as_slice() {
        ["PROXY", "UNKNOWN", ..] => Ok(Parsed::Done {
            len,
            source: None,
            destination: None,
        }),
        ["PROXY", fam @ ("TCP4" | "TCP6"), src, dst, sport, dport] => {
            let ip: IpAddr = src.parse().map_err(|_| Error("v1 source address"))?;
            let dip: IpAddr = dst.parse().map_err(|_| Error("v1 destination address"))?;
            if ip.is_ipv4() != (*fam == "TCP4") || dip.is_ipv4() != (*fam == "TCP4") {
                return Err(Error("v1 address family mismatch"));
            }
            let port: u16 = sport.parse().map_err(|_| Error("v1 source port"))?;
            let dport: u16 = dport.parse().map_err(|_| Error("v1 destination port"))?;
            Ok(Parsed::Done {
                len,
                source: Some(SocketAddr::new(ip, port)),
                destination: Some(SocketAddr::new(dip, dport)),
            })
        }
        _ => Err(Error("v1 fields")),
    }
}

fn parse_v2(buf: &[u8]) -> Result<Parsed, Error> {
    let ver_cmd = buf[12];
    let fam = buf[13];
    let body = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    let len = 16 + body;
    if ver_cmd >> 4 != 2 {
        return Err(Error("v2 version"));
    }
    if len > V2_MAX {
        return Err(Error("v2 header too long"));
    }
    if buf.len() < len {
        return Ok(Parsed::Partial);
    }
    let a = &buf[16..len];
    // Source address, destination address, source port, destination port.
    let (source, destination) = match (ver_cmd & 0x0f, fam) {
        (0, _) => (None, None), // LOCAL: health check from the balancer itself
        (1, 0x11) if a.len() >= 12 => {
            let v4 = |at: usize| IpAddr::V4(Ipv4Addr::new(a[at], a[at + 1], a[at + 2], a[at + 3]));
            (
                Some(SocketAddr::new(v4(0), u16::from_be_bytes([a[8], a[9]]))),
                Some(SocketAddr::new(v4(4), u16::from_be_bytes([a[10], a[11]]))),
            )
        }
        (1, 0x21) if a.len() >= 36 => {
            let v6 = |at: usize| {
                let mut ip = [0u8; 16];
                ip.copy_from_slice(&a[at..at + 16]);
                IpAddr::V6(Ipv6Addr::from(ip))
            };
            (
                Some(SocketAddr::new(v6(0), u16::from_be_bytes([a[32], a[33]]))),
                Some(SocketAddr::new(v6(16), u16::from_be_bytes([a[34], a[35]]))),
            )
        }
        (1, 0x11 | 0x21) => return Err(Error("v2 address block too short")),
        (1, _) => (None, None), // UNSPEC or UNIX: keep the connection's own addresses
        _ => return Err(Error("v2 command")),
    };
    Ok(Parsed::Done {
        len,
        source,
        destination,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1() {
        let h = b"PROXY TCP4 192.0.2.7 198.51.100.1 51000 443\r\nSSTP_DUPLEX_POST";
        assert_eq!(
            parse(h),
            Ok(Parsed::Done {
                len: 45,
                source: Some("192.0.2.7:51000".parse().unwrap()),
                destination: Some("198.51.100.1:443".parse().unwrap())
            })
        );
        for cut in 0..45 {
            assert_eq!(parse(&h[..cut]), Ok(Parsed::Partial), "cut {cut}");
        }
        assert_eq!(
            parse(b"PROXY UNKNOWN\r\n"),
            Ok(Parsed::Done {
                len: 15,
                source: None,
                destination: None
            })
        );
        assert!(parse(b"PROXY TCP4 ::1 ::1 1 2\r\n").is_err());
        assert!(parse(b"PROXY TCP4 1.2.3.4 ::1 1 2\r\n").is_err());
        assert!(parse(b"PROXY TCP4 1.2.3.4 1.2.3.4 1 99999\r\n").is_err());
        assert!(parse(b"PROXY TCP4 1.2.3.4 1.2.3.4 99999 2\r\n").is_err());
        assert!(parse(b"GET / HTTP/1.1\r\n").is_err());
        assert!(parse(&[b'P', b'R', b'O', b'X', b'Y', b' ', b'x'].repeat(20)).is_err());
    }

    #[test]
    fn v2() {
        let mut h = V2_SIG.to_vec();
        h.extend_from_slice(&[
            0x21, 0x11, 0, 12, 192, 0, 2, 7, 10, 0, 0, 1, 0xc7, 0x38, 1, 0xbb,
        ]);
        assert_eq!(
            parse(&h),
            Ok(Parsed::Done {
                len: 28,
                source: Some("192.0.2.7:51000".parse().unwrap()),
                destination: Some("10.0.0.1:443".parse().unwrap())
            })
        );
        for cut in 0..28 {
            assert_eq!(parse(&h[..cut]), Ok(Parsed::Partial), "cut {cut}");
        }
        let mut local = V2_SIG.to_vec();
        local.extend_from_slice(&[0x20, 0x00, 0, 0]);
        assert_eq!(
            parse(&local),
            Ok(Parsed::Done {
                len: 16,
                source: None,
                destination: None
            })
        );
        let mut short = V2_SIG.to_vec();
        short.extend_from_slice(&[0x21, 0x11, 0, 4, 1, 2, 3, 4]);
        assert!(parse(&short).is_err());
        let mut huge = V2_SIG.to_vec();
        huge.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        assert!(parse(&huge).is_err());
    }
}
