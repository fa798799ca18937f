//! Per-session rate limits: a token bucket per direction that polices
//! packets (a packet over the limit is dropped and counted, never queued),
//! refilled from the time passed in — no clock of its own; and the limit
//! on the ICMP errors a session sends ([`ErrorLimit`]).
//!
//! The bucket holds 250 ms of traffic at the rate, at least 16 KiB: with
//! 100 ms a TCP flow through the tunnel reached only half the rate (its
//! losses come in bursts); with 250 ms iperf3 measures 97-100% of it.

use std::time::{Duration, Instant};

/// Limits in bit/s, towards the client (`down`) and from it (`up`); 0 is
/// no limit in that direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Towards the client.
    pub down_bps: u64,
    /// From the client.
    pub up_bps: u64,
}

/// One direction's bucket.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    /// Bytes per second.
    rate: u64,
    burst: u64,
    tokens: u64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket for `bps` bit/s; None for 0 (no limit).
    pub fn new(now: Instant, bps: u64) -> Option<Self> {
        if bps == 0 {
            return None;
        }
        let rate = (bps / 8).max(1);
        let burst = (rate / 4).max(16 * 1024);
        Some(TokenBucket {
            rate,
            burst,
            tokens: burst,
            last: now,
        })
    }

    /// Takes `len` bytes if the bucket has them.
    pub fn allow(&mut self, now: Instant, len: usize) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_nanos();
        let add = elapsed.saturating_mul(u128::from(self.rate)) / 1_000_000_000;
        if add > 0 {
            // Time that produced no whole byte stays credited.
            self.tokens = (u128::from(self.tokens) + add).min(u128::from(self.burst)) as u64;
            self.last = now;
        }
        let len = len as u64;
        if self.tokens >= len {
            self.tokens -= len;
            true
        } else {
            false
        }
    }
}

/// The ICMP errors a session sends about packets it cannot carry
/// (Fragmentation Needed, Packet Too Big): at most [`Self::PER_SECOND`] in
/// any one-second window. RFC 4443 §2.4(f) requires a limit on ICMPv6
/// errors and RFC 1812 §4.3.2.8 on ICMP ones, so that a sender that keeps
/// sending packets too large for a client does not get one back each (the
/// oversize packets are still dropped and counted). A path MTU change needs
/// one per flow.
#[derive(Debug, Clone, Default)]
pub struct ErrorLimit {
    window: Option<Instant>,
    sent: u32,
}

impl ErrorLimit {
    /// Errors allowed in each one-second window.
    pub const PER_SECOND: u32 = 10;

    /// Whether one more error may be sent now (and counts it).
    pub fn allow(&mut self, now: Instant) -> bool {
        let fresh = self
            .window
            .is_none_or(|start| now.saturating_duration_since(start) >= Duration::from_secs(1));
        if fresh {
            self.window = Some(now);
            self.sent = 0;
        }
        if self.sent < Self::PER_SECOND {
            self.sent += 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn long_run_rate_is_the_limit() {
        let t0 = Instant::now();
        assert!(TokenBucket::new(t0, 0).is_none());
        // 8 Mbit/s = 1 MB/s; offer 1500-byte packets every 0.5 ms (3 MB/s) for 10 s.
        let mut b = TokenBucket::new(t0, 8_000_000).unwrap();
        let mut passed = 0u64;
        for i in 0..20_000u64 {
            if b.allow(t0 + Duration::from_micros(500 * i), 1500) {
                passed += 1500;
            }
        }
        let want = 10_000_000u64 + 250_000; // 10 s at the rate plus the burst
        assert!(passed <= want && passed >= want * 98 / 100, "{passed}");
    }

    #[test]
    fn slow_packets_all_pass_and_tokens_are_not_lost() {
        let t0 = Instant::now();
        // 100 kbit/s = 12500 B/s; 100-byte packets every 10 ms = 10000 B/s.
        let mut b = TokenBucket::new(t0, 100_000).unwrap();
        for i in 0..5_000u64 {
            assert!(
                b.allow(t0 + Duration::from_millis(10 * i), 100),
                "packet {i}"
            );
        }
        // Many tiny steps each below one byte of credit still add up.
        let mut b = TokenBucket::new(t0, 8).unwrap();
        b.tokens = 0;
        let mut t = t0;
        for _ in 0..1000 {
            t += Duration::from_millis(1);
            b.allow(t, 0);
        }
        assert!(b.allow(t, 1), "1 s at 1 byte/s gives one byte");
    }

    #[test]
    fn icmp_errors_are_limited_per_second() {
        let t0 = Instant::now();
        let mut l = ErrorLimit::default();
        let first: usize = (0..50).filter(|_| l.allow(t0)).count();
        assert_eq!(first, ErrorLimit::PER_SECOND as usize);
        assert!(!l.allow(t0 + Duration::from_millis(999)));
        assert!(l.allow(t0 + Duration::from_secs(1)), "a new second");
    }
}
