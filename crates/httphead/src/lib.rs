//! Sans-IO HTTP/1.x message heads for tunnel443, with one set of limits,
//! shared by SSTP (MS-SSTP §3.2.4.1), IP-HTTPS (MS-IPHTTPS §3.1.5.2),
//! CONNECT (Luotonen's draft) and the server's web passthrough, and what
//! can come before them on a connection: the PROXY protocol header of a
//! load balancer, and the TLS ClientHello's server name.
//!
//! * [`head`]: request and response heads, parsed within [`DEFAULT_MAX_HEAD`]
//!   (or the caller's bound), [`MAX_HEADERS`] fields and [`MAX_LINE`] bytes
//!   a line; emitted without injection.
//! * [`date`]: the `Date` field's format.
//! * [`framing`]: Content-Length and Transfer-Encoding policy (RFC 9112 §6).
//! * [`proxy`]: PROXY protocol v1 and v2 (HAProxy's `proxy-protocol.txt`).
//! * [`sni`]: the server name of a TLS ClientHello (RFC 6066 §3), read
//!   before the handshake to pass other sites' connections on.
//!
//! Nothing here touches sockets, tasks or clocks, and nothing panics on
//! peer input.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod date;
pub mod framing;
pub mod head;
pub mod proxy;
pub mod sni;

pub use framing::{Body, FramingError};
pub use head::{
    sanitize, HeadError, Header, HeaderError, Headers, Parsed, RequestHead, ResponseHead, Version,
    DEFAULT_MAX_HEAD, MAX_HEADERS, MAX_LINE,
};
