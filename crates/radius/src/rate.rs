//! Per-user rate limits from reply attributes, in bit/s from the NAS's
//! view: `down` towards the user, `up` from the user.
//!
//! * Filter-Id `DOWN/UP` in kbit/s (accel-ppp's convention), e.g. `10240/2048`.
//! * Mikrotik-Rate-Limit `rx/tx` with optional `k`/`M`/`G` suffixes and
//!   further burst fields after a space (ignored); rx is what the router
//!   receives from the user (up), tx what it sends (down).

use crate::attr::{mikrotik, FILTER_ID};
use crate::Packet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Towards the user, bit/s.
    pub down: u64,
    /// From the user, bit/s.
    pub up: u64,
}

fn number(s: &str, unit: u64) -> Option<u64> {
    let s = s.trim();
    let (digits, mult) = match s.as_bytes().last()? {
        b'k' | b'K' => (&s[..s.len() - 1], 1_000),
        b'm' | b'M' => (&s[..s.len() - 1], 1_000_000),
        b'g' | b'G' => (&s[..s.len() - 1], 1_000_000_000),
        _ => (s, unit),
    };
    digits.parse::<u64>().ok()?.checked_mul(mult)
}

/// Filter-Id `DOWN/UP` (kbit/s).
pub fn from_filter_id(s: &str) -> Option<RateLimit> {
    let (d, u) = s.split_once('/')?;
    let kbit = |x: &str| x.trim().parse::<u64>().ok()?.checked_mul(1000);
    Some(RateLimit {
        down: kbit(d)?,
        up: kbit(u)?,
    })
}

/// Mikrotik-Rate-Limit `rx[/tx] [bursts...]` (bit/s, k/M/G suffixes).
pub fn from_mikrotik(s: &str) -> Option<RateLimit> {
    let first = s.split_whitespace().next()?;
    let (rx, tx) = match first.split_once('/') {
        Some((rx, tx)) => (number(rx, 1)?, number(tx, 1)?),
        None => {
            let r = number(first, 1)?;
            (r, r)
        }
    };
    Some(RateLimit { down: tx, up: rx })
}

/// The limit a reply sets: Mikrotik-Rate-Limit first, else a Filter-Id of
/// the `DOWN/UP` form.
pub fn from_reply(p: &Packet) -> Option<RateLimit> {
    if let Some(m) = p.vendor(mikrotik::VENDOR, mikrotik::RATE_LIMIT) {
        if let Some(r) = std::str::from_utf8(m).ok().and_then(from_mikrotik) {
            return Some(r);
        }
    }
    p.all(FILTER_ID)
        .filter_map(|f| std::str::from_utf8(f).ok())
        .find_map(from_filter_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(
            from_filter_id("10240/2048"),
            Some(RateLimit {
                down: 10_240_000,
                up: 2_048_000
            })
        );
        assert_eq!(from_filter_id("x/1"), None);
        assert_eq!(from_filter_id("staff"), None);
        assert_eq!(
            from_mikrotik("2M/10M"),
            Some(RateLimit {
                down: 10_000_000,
                up: 2_000_000
            })
        );
        assert_eq!(
            from_mikrotik("512k"),
            Some(RateLimit {
                down: 512_000,
                up: 512_000
            })
        );
        assert_eq!(
            from_mikrotik("1M/2M 4M/8M 1M/2M 10/10"),
            Some(RateLimit {
                down: 2_000_000,
                up: 1_000_000
            })
        );
        assert_eq!(from_mikrotik("fast"), None);
        assert_eq!(from_mikrotik("99999999999999999999G"), None);
        let mut p = Packet::new(crate::Code::AccessAccept, 0, [0; 16]);
        p.push(FILTER_ID, "staff").push(FILTER_ID, "1000/500");
        assert_eq!(
            from_reply(&p),
            Some(RateLimit {
                down: 1_000_000,
                up: 500_000
            })
        );
        p.push_vendor(mikrotik::VENDOR, mikrotik::RATE_LIMIT, b"1k/2k");
        assert_eq!(
            from_reply(&p),
            Some(RateLimit {
                down: 2_000,
                up: 1_000
            })
        );
    }
}
