//! Sans-IO IP-HTTPS for tunnel443 (`spec/MS-IPHTTPS.md`).
pub mod addr;
pub mod checksum;
pub mod frame;
pub mod icmpv6;
pub mod ipv6;
pub mod link;
pub mod nd;
pub mod preamble;
pub use frame::{Decoder, EncodeError, Encoder, Frame, FrameError};
