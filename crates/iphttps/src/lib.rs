//! Sans-IO IP-HTTPS for tunnel443 (`spec/MS-IPHTTPS.md`).
pub mod checksum;
pub mod frame;
pub mod ipv6;
pub use frame::{Decoder, EncodeError, Encoder, Frame, FrameError};
