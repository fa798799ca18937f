//! Sans-IO HTTP CONNECT tunnelling for tunnel443.
//!
//! This crate implements Ari Luotonen's "Tunneling SSL Through a WWW Proxy"
//! (`spec/ssl-tunneling-through-proxy.txt`), used as a general byte-stream
//! tunnel as described in `spec/secure-tunnel-proxy.txt` and MS-SSTP §4.5
//! ("Handling HTTP Proxies"). It never touches sockets, tasks or clocks: the
//! binary's drivers feed bytes in and write bytes out, and own all timeouts.
//!
//! * [`head`]: bounded HTTP/1.0 and 1.1 head parsing (CRLF or bare LF, any
//!   reason phrase) and emission; parsers report the bytes the head used,
//!   because what follows belongs to the tunnel.
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
pub mod challenge;
pub mod client;
pub mod digest;
pub mod head;
pub mod ntlm;
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
