//! Sans-IO RADIUS for a NAS (the VPN server): no sockets, no clock.
//!
//! * [`packet`]: the RFC 2865 §3 packet and §5 attribute format, read with a
//!   bounded reader; [`Code`]s of RFC 2865, RFC 2866 (accounting) and
//!   RFC 5176 (Disconnect/CoA).
//! * [`attr`]: attribute numbers (RFC 2865/2866/2869/3162/3579/5176),
//!   vendor-specific attributes (RFC 2865 §5.26), Microsoft's (RFC 2548)
//!   and MikroTik's.
//! * [`crypto`]: Request/Response Authenticators (RFC 2865 §3, RFC 2866
//!   §3), User-Password hiding (RFC 2865 §5.2), Message-Authenticator
//!   (RFC 3579 §3.2; required in every Access reply against BlastRADIUS),
//!   and the salt encryption of MS-MPPE-Send-Key/Recv-Key (RFC 2548 §2.4.2).
//! * [`client`]: identifiers, retransmission with back-off, failover across
//!   servers and a dead-server hold-down; replies that fail a check are
//!   dropped and counted.
//! * [`rate`]: rate limits from Filter-Id (`DOWN/UP` kbit/s, accel-ppp's
//!   convention) and Mikrotik-Rate-Limit.

pub mod attr;
pub mod client;
pub mod crypto;
pub mod packet;
pub mod rate;

pub use client::{Client, ClientConfig, Counters, Event, Handle, Port, Reply, Request, Transmit};
pub use crypto::{Secret, VerifyError};
pub use packet::{Attr, Code, DecodeError, EncodeError, Packet};
