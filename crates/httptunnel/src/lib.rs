//! Sans-IO HTTP CONNECT tunnelling for tunnel443.
//!
//! This crate implements Ari Luotonen's "Tunneling SSL Through a WWW Proxy"
//! (`spec/ssl-tunneling-through-proxy.txt`), used as a general byte-stream
//! tunnel as described in `spec/secure-tunnel-proxy.txt` and MS-SSTP §4.5
//! ("Handling HTTP Proxies"). It never touches sockets, tasks or clocks: the
//! binary's drivers feed bytes in and write bytes out, and own all timeouts.
//!
//! * [`head`]: HTTP/1.0 and 1.1 heads, from the shared `httphead` crate
//!   (one set of limits for SSTP, IP-HTTPS, CONNECT and the web
//!   passthrough), and excerpts of a refusal's body.
//! * [`authority`]: the strict `host:port` target syntax.
//! * [`basic`]: Basic proxy credentials and a constant-time user check.
//! * [`challenge`]: `Proxy-Authenticate` challenge lists.
//! * [`digest`], [`ntlm`]: the Digest (RFC 7616) and NTLMv2 (MS-NLMP)
//!   client computations; [`auth`] picks the scheme and runs the exchange.
//! * [`client`]: the CONNECT client: one hop or a chain of proxies, 407
//!   answered with Basic, Digest or NTLM credentials.
//! * [`server`]: the CONNECT proxy's request checks and policy decisions.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod authority;
pub mod basic;
mod body;
pub mod challenge;
pub mod client;
pub mod digest;
pub mod ntlm;

/// HTTP/1.x heads (the `httphead` crate) and body excerpts for messages.
pub mod head {
    pub use crate::body::{body_excerpt, dechunk};
    pub use httphead::head::*;
}
pub mod server;

pub use auth::{AuthMemo, Scheme};
pub use authority::{Authority, AuthorityError, Host};
pub use basic::{BasicError, BasicUsers, Credentials};
pub use client::{ChainHandshake, ClientError, Event, HopError, Progress, ProxyHop};
pub use head::{
    body_excerpt, HeadError, Header, HeaderError, Headers, Parsed, RequestHead, ResponseHead,
    Version, DEFAULT_MAX_HEAD, MAX_HEADERS,
};
/// CIDR networks, as used by [`NetPolicy`].
pub use ipnet::IpNet;
pub use server::{
    Accepted, Authenticated, NetDenial, NetPolicy, PortSet, Refusal, ServerPolicy, Status,
};
