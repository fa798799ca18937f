//! Sans-IO IPv6 on tunnel443's point-to-point links, shared by SSTP (IPv6
//! over IPv6CP, RFC 5072) and IP-HTTPS (MS-IPHTTPS §3.2.3): both servers
//! act as their clients' IPv6 router and both clients configure themselves
//! from Router Advertisements.
//!
//! * [`nd`]: Router Solicitation/Advertisement and Neighbor
//!   Solicitation/Advertisement (RFC 4861) with Prefix Information, MTU,
//!   Route Information (RFC 4191) and RDNSS (RFC 8106).
//! * [`host`]: what a client configures from the advertisements (SLAAC
//!   addresses, default and advertised routes, DNS) as a list of changes.
//! * [`addr`]: prefixes, the per-client /64, interface identifiers, SLAAC
//!   (RFC 4862 §5.5.3).
//! * [`icmpv6`], [`ipv6`], [`checksum`]: the wire formats underneath.
//!
//! Nothing here panics on peer input: every parser returns a typed error.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod addr;
pub mod checksum;
pub mod host;
pub mod icmpv6;
pub mod ipv6;
pub mod nd;

pub use addr::{InterfaceId, Ipv6Prefix, Prefix64};
pub use ipv6::{Ipv6Packet, MIN_MTU};
pub use nd::{RouterAdvert, RouterSolicit};
