//! A larger link MTU between tunnel443's own ends (an extension of
//! MS-IPHTTPS).
//!
//! "The default MTU for the IP-HTTPS link is set to the minimum IPv6 MTU of
//! 1280" (MS-IPHTTPS §3.1.5.3, §3.2.5.2; the server as router, §3.2.3).
//! It is a default: a router may announce another link MTU in the MTU
//! option of its Router Advertisements (RFC 4861 §4.6.4), and hosts use it
//! (§6.3.4). Throughput through the tunnel is bounded by per-packet costs,
//! so fewer, larger packets carry more; but a larger MTU is only safe when
//! both ends can take it, and a Windows client must see exactly what the
//! spec describes. So:
//!
//! * our client announces the largest link MTU it accepts in its POST
//!   (§3.1.5.2), in the header [`HEADER`] (`X-Tunnel443-Link-MTU: 65535`).
//!   Servers that do not know the header ignore it, as HTTP wants
//!   (RFC 9110 §5.1), and keep 1280;
//! * our server ([`negotiate`]) gives that session the link MTU
//!   min(announced, its own maximum), its TUN device's MTU by default: in
//!   the RAs' MTU option and as the size above which packets towards the
//!   client get Packet Too Big ([`crate::router`]). A request without the
//!   header, or with an unusable value, gets 1280 and the RAs of today;
//! * our client applies the RA's MTU option to its device only within
//!   1280..=announced ([`accept_advertised`]), and ignores it otherwise.
//!
//! Neither end depends on the other knowing the extension: without it both
//! stay at 1280.

use crate::ipv6::{MAX_PACKET_LEN, MIN_MTU};

/// The request header in which our client announces the largest link MTU
/// it accepts.
pub const HEADER: &str = "X-Tunnel443-Link-MTU";

/// What our client announces by default: the largest MTU a Linux TUN
/// device takes. A 64 KiB link carries a TCP segmentation-offload
/// super-packet whole, so neither end segments or coalesces (the largest
/// throughput gain of the data path's steps, BENCHMARKS.md); an idle
/// session still buffers only what 1500-byte packets need.
pub const DEFAULT_ANNOUNCED: usize = u16::MAX as usize;

/// The largest link MTU the framing can carry: the IPv6 header and the
/// largest Payload Length (§3.1.5.3; jumbograms cannot be delimited).
pub const MAX_LINK_MTU: usize = MAX_PACKET_LEN;

/// Most digits taken in the header's value (a larger number is invalid).
const MAX_DIGITS: usize = 10;

/// What a request said about the link MTU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offer {
    /// No [`HEADER`]: a client that does not know the extension.
    Absent,
    /// A decimal number (checked against the bounds by [`negotiate`]).
    Mtu(u64),
    /// Not a decimal number, or several values that disagree (the value,
    /// sanitized, for the log).
    Invalid(String),
}

/// Reads the announcement from a request's headers.
pub fn offer(headers: &httphead::Headers) -> Offer {
    let mut found = None;
    for h in headers.get_all(HEADER) {
        let text = String::from_utf8_lossy(h.value());
        let text = text.trim();
        let value = match parse_decimal(text) {
            Some(v) => v,
            None => return Offer::Invalid(httphead::sanitize(text, 32)),
        };
        match found {
            Some(v) if v != value => {
                return Offer::Invalid(format!("{v} and {value} in two headers"))
            }
            _ => found = Some(value),
        }
    }
    found.map_or(Offer::Absent, Offer::Mtu)
}

fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > MAX_DIGITS || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The header line our client adds to its request for `mtu`, or nothing at
/// 1280 (nothing to negotiate).
pub fn header_line(mtu: usize) -> Option<String> {
    (mtu > MIN_MTU).then(|| format!("{HEADER}: {}\r\n", mtu.min(MAX_LINK_MTU)))
}

/// The link MTU a server gives one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Negotiated {
    /// No announcement: 1280, as the spec has it.
    Default,
    /// The announcement, capped at the server's maximum.
    Agreed {
        /// What the client announced.
        announced: u64,
        /// The session's link MTU.
        mtu: usize,
    },
    /// An unusable announcement: 1280 (why, in plain words, for the log).
    Ignored(String),
}

impl Negotiated {
    /// The session's link MTU.
    pub fn mtu(&self) -> usize {
        match self {
            Negotiated::Agreed { mtu, .. } => *mtu,
            _ => MIN_MTU,
        }
    }
}

/// The session's link MTU for `offer`, with `server_max` the server's own
/// bound (its TUN device's MTU; 1280 turns the extension off). Bounds:
/// 1280 ..= min(`server_max`, [`MAX_LINK_MTU`]).
pub fn negotiate(offer: &Offer, server_max: usize) -> Negotiated {
    let max = server_max.clamp(MIN_MTU, MAX_LINK_MTU);
    match *offer {
        Offer::Absent => Negotiated::Default,
        Offer::Invalid(ref v) => Negotiated::Ignored(format!("{HEADER} \"{v}\" is not a number")),
        Offer::Mtu(m) if m < MIN_MTU as u64 => Negotiated::Ignored(format!(
            "{HEADER} {m} is below the IPv6 minimum of {MIN_MTU}"
        )),
        Offer::Mtu(m) => Negotiated::Agreed {
            announced: m,
            mtu: usize::try_from(m).map_or(max, |m| m.min(max)),
        },
    }
}

/// Why our client does not apply an RA's MTU option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Unusable {
    /// Below the IPv6 minimum (RFC 4861 §6.3.4 ignores it too).
    #[error("the advertised link MTU {0} is below the IPv6 minimum of 1280")]
    BelowMinimum(u32),
    /// Larger than what we announced (or than 1280, when we announced
    /// nothing): packets that large may not be taken by our end.
    #[error("the advertised link MTU {advertised} is above the {announced} we announced")]
    AboveAnnounced {
        /// The RA's MTU option.
        advertised: u32,
        /// What our request announced (1280: nothing).
        announced: usize,
    },
}

/// The link MTU our client takes from an RA's MTU `option`, having
/// announced `announced` (1280: nothing). `Ok(None)`: no option, keep the
/// current one.
pub fn accept_advertised(option: Option<u32>, announced: usize) -> Result<Option<usize>, Unusable> {
    let Some(m) = option else {
        return Ok(None);
    };
    let mtu = usize::try_from(m).unwrap_or(usize::MAX);
    if mtu < MIN_MTU {
        Err(Unusable::BelowMinimum(m))
    } else if mtu > announced.max(MIN_MTU) {
        Err(Unusable::AboveAnnounced {
            advertised: m,
            announced: announced.max(MIN_MTU),
        })
    } else {
        Ok(Some(mtu))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use httphead::{Header, Headers};

    fn headers(values: &[&str]) -> Headers {
        let mut h = Headers::new();
        h.push(Header::new("Host", "gw").unwrap());
        for v in values {
            h.push(Header::new(HEADER, v).unwrap());
        }
        h
    }

    #[test]
    fn offer_is_parsed_and_bounded() {
        assert_eq!(offer(&headers(&[])), Offer::Absent);
        assert_eq!(offer(&headers(&["4000"])), Offer::Mtu(4000));
        assert_eq!(offer(&headers(&[" 1500 "])), Offer::Mtu(1500));
        assert_eq!(offer(&headers(&["0"])), Offer::Mtu(0));
        assert_eq!(offer(&headers(&["4000", "4000"])), Offer::Mtu(4000));
        for bad in ["", "abc", "+4000", "-1", "4000.0", "0x1000", "99999999999"] {
            assert!(
                matches!(offer(&headers(&[bad])), Offer::Invalid(_)),
                "{bad:?}"
            );
        }
        assert_eq!(
            offer(&headers(&["4000", "1500"])),
            Offer::Invalid("4000 and 1500 in two headers".into())
        );
        // The name is matched without regard to case.
        let mut h = Headers::new();
        h.push(Header::new("x-tunnel443-link-mtu", "2000").unwrap());
        assert_eq!(offer(&h), Offer::Mtu(2000));
    }

    #[test]
    fn server_negotiates_within_bounds() {
        let n = |o: Offer, max| negotiate(&o, max);
        assert_eq!(n(Offer::Absent, 4000), Negotiated::Default);
        assert_eq!(n(Offer::Absent, 4000).mtu(), 1280);
        assert_eq!(n(Offer::Mtu(3000), 4000).mtu(), 3000);
        assert_eq!(
            n(Offer::Mtu(9000), 4000),
            Negotiated::Agreed {
                announced: 9000,
                mtu: 4000
            }
        );
        assert_eq!(n(Offer::Mtu(u64::MAX), 4000).mtu(), 4000);
        // 1280 as the server's maximum turns the extension off.
        assert_eq!(n(Offer::Mtu(4000), 1280).mtu(), 1280);
        // A device below the minimum does not lower the link below it;
        // the framing bounds a device above it.
        assert_eq!(n(Offer::Mtu(4000), 576).mtu(), 1280);
        assert_eq!(n(Offer::Mtu(100_000), 200_000).mtu(), MAX_LINK_MTU);
        for low in [0, 1, 1279] {
            let got = n(Offer::Mtu(low), 4000);
            assert_eq!(got.mtu(), 1280, "{low}");
            assert_eq!(
                got,
                Negotiated::Ignored(format!(
                    "X-Tunnel443-Link-MTU {low} is below the IPv6 minimum of 1280"
                ))
            );
        }
        assert_eq!(n(Offer::Mtu(1280), 4000).mtu(), 1280);
        let garbage = n(Offer::Invalid("abc".into()), 4000);
        assert_eq!(garbage.mtu(), 1280);
        assert_eq!(
            garbage,
            Negotiated::Ignored("X-Tunnel443-Link-MTU \"abc\" is not a number".into())
        );
    }

    #[test]
    fn client_header_line() {
        assert_eq!(header_line(1280), None);
        assert_eq!(header_line(1000), None);
        assert_eq!(
            header_line(4000).as_deref(),
            Some("X-Tunnel443-Link-MTU: 4000\r\n")
        );
        assert_eq!(
            header_line(usize::MAX),
            Some(format!("X-Tunnel443-Link-MTU: {MAX_LINK_MTU}\r\n"))
        );
    }

    #[test]
    fn client_accepts_only_what_it_announced() {
        assert_eq!(accept_advertised(None, 4000), Ok(None));
        assert_eq!(accept_advertised(Some(4000), 4000), Ok(Some(4000)));
        assert_eq!(accept_advertised(Some(1280), 4000), Ok(Some(1280)));
        assert_eq!(accept_advertised(Some(1500), 4000), Ok(Some(1500)));
        assert_eq!(
            accept_advertised(Some(4001), 4000),
            Err(Unusable::AboveAnnounced {
                advertised: 4001,
                announced: 4000
            })
        );
        assert_eq!(
            accept_advertised(Some(1000), 4000),
            Err(Unusable::BelowMinimum(1000))
        );
        assert_eq!(
            accept_advertised(Some(0), 4000),
            Err(Unusable::BelowMinimum(0))
        );
        // Having announced nothing: 1280 only (a server's 1500 is ignored).
        assert_eq!(accept_advertised(Some(1280), 1280), Ok(Some(1280)));
        assert!(accept_advertised(Some(1500), 1280).is_err());
        assert_eq!(
            accept_advertised(Some(u32::MAX), 1280)
                .unwrap_err()
                .to_string(),
            "the advertised link MTU 4294967295 is above the 1280 we announced"
        );
    }
}
