//! Sans-IO IP-HTTPS for tunnel443 (`spec/MS-IPHTTPS.md`).
//!
//! IP-HTTPS carries IPv6 packets in the bodies of one HTTP POST and its
//! response over TLS (MS-IPHTTPS §1.3, §2.1). This crate holds everything of
//! the protocol that is not IO; the binary's tokio drivers own sockets, TLS,
//! the TUN device and the clock, and pass the current time in.
//!
//! * [`preamble`]: the POST with Content-Length 18446744073709551615 and the
//!   200 response (§3.1.5.2, §3.2.5.1, §4.1), bounded head parsing.
//! * [`frame`]: the packet stream delimited by the IPv6 Payload Length
//!   (§3.1.5.3, §3.2.5.2): incremental [`Decoder`], checking [`Encoder`].
//! * [`link`]: the client's states (§3.1.1) and the reconnect timer
//!   (§3.1.2.1), quinn-style (`poll_event`, `poll_timeout`,
//!   `handle_timeout`).
//! * [`router`]: the server as each client's IPv6 router (§3.2.3): one /64
//!   per client, anti-spoofing, answers to Router and Neighbor
//!   Solicitations, periodic RAs, Packet Too Big towards the link MTU.
//! * [`mtu`]: our extension for a link MTU above the default 1280
//!   (§3.1.5.3) between our own client and server: announced in the POST,
//!   advertised in the RA MTU option (RFC 4861 §4.6.4).
//! * [`nd`], [`host`], [`addr`], [`icmpv6`], [`ipv6`], [`checksum`]: the
//!   IPv6 underneath (Neighbor Discovery, host configuration from RAs,
//!   prefixes and SLAAC, the wire formats), from the `ipv6nd` crate that
//!   SSTP's IPv6 shares; re-exported here under their old paths.
//!
//! Nothing here panics on peer input: every parser returns a typed error.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod frame;
pub mod link;
pub mod mtu;
pub mod preamble;
pub mod router;

pub use ipv6nd::{addr, checksum, host, icmpv6, ipv6, nd};

pub use addr::{InterfaceId, Ipv6Prefix, Prefix64};
pub use frame::{
    Decoder, EncodeError, Encoder, Frame, FrameError, DEFAULT_MAX_PACKET, DEFAULT_MAX_SEND,
};
pub use ipv6::{Ipv6Packet, MIN_MTU};
pub use link::{Backoff, Event as LinkEvent, Failure, Link, LinkConfig, LinkState};
pub use nd::{RouterAdvert, RouterSolicit};
pub use preamble::{
    build_request, build_response, parse_request, parse_response, Parsed, ServerConfig,
};
pub use router::{ClientRouter, Egress, RouterConfig, Verdict};
