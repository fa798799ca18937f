//! Sans-IO PPP stack for SSTP (and any frame-based link): LCP, PAP, CHAP-MD5,
//! MS-CHAPv2, EAP-MSCHAPv2, IPCP, IPv6CP, and the SSTP HLAK.
//!
//! No sockets, no tokio, no clock, no OS randomness: time is passed in as
//! [`std::time::Instant`] and randomness comes from a caller-supplied
//! [`Rng`]. The engine ([`Ppp`]) follows quinn-proto's shape:
//!
//! ```
//! use std::time::Instant;
//! use ppp::{Config, Ppp, Role, SplitMix64};
//!
//! let now = Instant::now();
//! // Production: pass a cryptographic RNG (challenges come from it).
//! let mut server = Ppp::new(Config::server(), Role::Authenticator, now, Box::new(SplitMix64::new(1)));
//! server.open(now);
//! while let Some(frame) = server.poll_transmit() {
//!     // send `frame` in an SSTP data packet
//!     assert_eq!(&frame[..4], &[0xFF, 0x03, 0xC0, 0x21]);
//! }
//! // on receipt: if let Some(ip) = server.handle_frame(now, &bytes) { tun.write(ip) }
//! // on timer:   server.handle_timeout(now); re-arm at server.poll_timeout()
//! // events:     while let Some(ev) = server.poll_event() { ... }
//! ```
//!
//! Modules, each citing what it implements:
//! * [`frame`] — PPP framing on a frame-based link (RFC 1661 §2, RFC 1662 §3.1);
//!   what we send and accept, and why.
//! * [`wire`] — control packets and the bounded option reader (RFC 1661 §5–§6).
//! * [`fsm`] — the RFC 1661 §4 option negotiation automaton.
//! * [`lcp`], [`ipcp`], [`ipv6cp`] — LCP (RFC 1661 §6), IPCP (RFC 1332, 1877),
//!   IPv6CP (RFC 5072).
//! * [`auth`] — PAP (RFC 1334), CHAP-MD5 (RFC 1994), MS-CHAPv2 (RFC 2759),
//!   EAP (RFC 3748) with EAP-MSCHAPv2; verdicts and secrets.
//! * [`keys`] — RFC 2759 §8 crypto, RFC 3079 master keys, MS-SSTP §3.2.5.2.2 HLAK.
//! * [`users`] — the users file.
//! * [`engine`] — phases and the driver API.
//!
//! # Interop (checked against real peers with `interop/sstp_relay.py`)
//!
//! * **Frames.** We always send `FF 03` + a 2-byte protocol field and never
//!   request PFC/ACFC. pppd 2.4.9 (sstpc) requests PFC and ACFC (we Ack) but
//!   still sends `FF 03` + 2-byte protocols; SoftEther sends and requires
//!   that form. We accept every RFC 1662 form on receive.
//! * **sstpc + pppd 2.4.9** (client, against our server): LCP asks for
//!   ACCM 0, Magic-Number, PFC, ACFC (all Acked); MS-CHAPv2 (default
//!   `require-mschap-v2`), CHAP-MD5 (`require-chap`) and PAP
//!   (`require-pap`) work; with EAP offered first pppd would try EAP-TLS, so
//!   our server offers MS-CHAPv2 first (with `refuse-eap` pppd Naks EAP and
//!   we move on). pppd sends CCP (MPPE) after authentication: we
//!   Protocol-Reject it. Its IPCP asks for VJ compression (Rejected) and
//!   0.0.0.0 (Nak'd with the assigned address). sstpc's Crypto Binding
//!   (SHA-256 Compound MAC) verifies with our server HLAK, which checks the
//!   MS-SSTP §3.2.5.2.2 key order against a real client.
//! * **SoftEther** (server, against our client): Rejects Magic-Number (we
//!   stop sending it; loopback detection is then off), sends LCP
//!   Echo-Requests before LCP is opened (discarded, RFC 1661 §5.8), offers
//!   EAP first — we Nak with MS-CHAPv2 and it moves on (Acking EAP would get
//!   EAP-TLS, which we could only answer with a legacy Nak). Its MS-CHAPv2
//!   hashes the user name without `@HUB` as well as without `HUB\`, so use
//!   the `HUB\user` form with SoftEther (`user@HUB` fails MS-CHAPv2 there; our
//!   own server accepts both). IPCP: it Naks 0.0.0.0 and the primary DNS with
//!   its DHCP lease and Rejects the secondary DNS; IPv6CP: it Naks our
//!   interface identifier with one of its own (adopted). It never answers
//!   our Echo-Requests, so dead-peer detection counts any received frame.
//! * **Windows** (not available here): expected to use MS-CHAPv2 or
//!   EAP-MSCHAPv2 (PEAP is out of scope: an EAP peer asking for it gets EAP
//!   Failure). Windows sends LCP Identification (code 12), which is
//!   accepted silently. EAP-MSCHAPv2 follows draft-kamath-pppext-eap-mschapv2
//!   with the hostapd/Windows MSK order (server Recv-Key | Send-Key).

pub mod auth;
pub mod engine;
pub mod error;
pub mod frame;
pub mod fsm;
pub mod ipcp;
pub mod ipv6cp;
pub mod keys;
pub mod lcp;
pub mod rng;
pub mod users;
pub mod wire;

pub use auth::{
    verify, AuthFailure, AuthMethod, AuthProtocol, Credentials, MppeKeys, MsChapV2Accept, NtHash,
    Password, Proof, Secret, Verdict,
};
pub use engine::{
    AuthRequest, AuthRequestId, Check, Config, Event, Hlak, Inbound, Ipv4Allocator, LinkDownReason,
    Phase, Ppp, Role, Verifier,
};
pub use error::{ApiError, FrameError, OptionError, PacketError, SendError};
pub use fsm::FsmConfig;
pub use ipcp::Ipv4Assignment;
pub use rng::{Rng, SplitMix64};
pub use users::{Users, UsersError, UsersErrorKind};

/// The NT hash of a password, MD4(UTF-16LE(password)) (RFC 2759 §8.3), as
/// stored in the users file (`name:nthash:<hex>`).
pub fn nt_hash(password: &str) -> NtHash {
    keys::nt_password_hash(password)
}
