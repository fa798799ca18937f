//! Error types, layered: decode errors (frame, packet, option) are returned by
//! the parsers; the engine turns each into its defined on-the-wire outcome
//! (silent discard, Code-Reject, Protocol-Reject) and never panics on them.

use thiserror::Error;

/// A PPP frame could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The frame ends before the protocol field.
    #[error("frame truncated")]
    Truncated,
    /// The frame starts with 0xFF but is not followed by the Control octet 0x03.
    #[error("bad address/control field")]
    BadAddressControl,
    /// The protocol field violates RFC 1661 §2 (low octet even or high octet odd).
    #[error("invalid protocol field {0:#06x}")]
    BadProtocol(u16),
}

/// A control packet (LCP/NCP/PAP/CHAP/EAP header) could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PacketError {
    /// Shorter than the 4-byte Code/Identifier/Length header.
    #[error("packet shorter than its header")]
    Truncated,
    /// The Length field is smaller than the header or larger than the data received.
    #[error("packet length field {length} invalid for {available} bytes received")]
    BadLength {
        /// The value of the Length field.
        length: u16,
        /// The number of bytes actually present.
        available: usize,
    },
    /// The packet body is malformed for its code.
    #[error("malformed packet body")]
    Malformed,
}

/// A Type-Length-Value list (configuration options) is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum OptionError {
    /// An option's Length field is below 2.
    #[error("option {kind} has length {length} < 2")]
    TooShort {
        /// The option type.
        kind: u8,
        /// Its length field.
        length: u8,
    },
    /// An option extends beyond the end of the list (or only one byte is left).
    #[error("option list has trailing or truncated data at offset {offset}")]
    Truncated {
        /// Offset of the offending option.
        offset: usize,
    },
}

/// Why the engine refused to encapsulate an outgoing IP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SendError {
    /// The link is not in the Network phase or the NCP for this IP version is not opened.
    #[error("network protocol not open")]
    NotOpen,
    /// The packet is neither IPv4 nor IPv6.
    #[error("not an IP packet")]
    NotIp,
    /// The packet is larger than the peer's MRU.
    #[error("packet of {len} bytes exceeds peer MRU {mru}")]
    TooBig {
        /// Packet length.
        len: usize,
        /// The peer's MRU.
        mru: u16,
    },
}

/// Misuse of the engine API by the caller (not peer input).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ApiError {
    /// No authentication request with this id is pending (stale or unknown id).
    #[error("no pending authentication request with this id")]
    UnknownRequest,
    /// The engine is not waiting for this call (e.g. an address when none was requested).
    #[error("engine is not waiting for this")]
    NotWaiting,
    /// The verdict does not fit the method (e.g. MS-CHAPv2 accepted without keys).
    #[error("verdict lacks what the authentication method needs")]
    BadVerdict,
}
