//! MS-SSTP protocol engine, sans-IO (`../../shared/spec/MS-SSTP.md`).
//!
//! * [`wire`] — packets, control messages and attributes (§2.2).
//! * [`decoder`] — delineating the HTTPS byte stream into packets (§3.1.5.1).
//! * [`binding`] — PRF+, CMK and Compound MAC of the crypto binding (§3.2.5.2).
//! * [`connection`] — client and server state machines with the shared
//!   Call Abort / Call Disconnect machines and all timers (§3.1–§3.3).
//! * [`http`] — the HTTPS preamble: request and 200 response (§3.2.4.1, §4.1).
//!
//! The crate does no IO, reads no clock and draws no random numbers: time
//! is an argument, nonces come from the caller. The HLAK comes from the PPP
//! layer (`ppp` crate) through [`Connection::higher_layer_authenticated`].

pub mod binding;
pub mod connection;
pub mod decoder;
pub mod http;
pub mod wire;

pub use binding::HashProtocol;
pub use connection::{
    BindingFailure, Client, ClientConfig, CloseReason, Connection, Event, Output, SendError,
    Server, ServerConfig, State, Timers,
};
pub use wire::{AttributeId, Status, StatusInfo};
