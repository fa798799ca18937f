//! MS-SSTP protocol engine (sans-IO). See `../../shared/spec/MS-SSTP.md`.
