//! Dialing a TCP stream to a target, directly or through a chain of HTTP
//! CONNECT proxies (placeholder).
