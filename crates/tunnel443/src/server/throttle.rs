//! Password-guess throttling (MS-SSTP §5.3: the server authenticates
//! users it cannot see; online guessing is the attack that remains).
//!
//! Per source address first: each failed login from a source answers
//! later (the reject is held back [`DELAY_STEP`] per recent failure, at most
//! [`MAX_DELAY`]); from [`SOURCE_THRESHOLD`] recent failures on, the source
//! is refused (no password check at all) for a lockout that doubles with
//! each further failure, from [`LOCKOUT_BASE`] up to [`LOCKOUT_MAX`].
//!
//! Per user second: from [`USER_THRESHOLD`] recent failures of one user
//! (from any sources), that user is refused for the same exponential
//! lockout, but only to sources that have failed themselves: a user
//! logging in from a clean address is not locked out by someone else's
//! guesses. Failures are forgotten after [`FORGET`] without a new one; a
//! success clears its source's record.
//!
//! Counters go to [`super::admission::Stats`] (summarised in its log line).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::admission::Stats;

pub const DELAY_STEP: Duration = Duration::from_millis(500);
pub const MAX_DELAY: Duration = Duration::from_secs(4);
pub const SOURCE_THRESHOLD: u32 = 5;
pub const USER_THRESHOLD: u32 = 20;
pub const LOCKOUT_BASE: Duration = Duration::from_secs(30);
pub const LOCKOUT_MAX: Duration = Duration::from_secs(900);
pub const FORGET: Duration = Duration::from_secs(900);
/// Records kept at most (oldest forgotten first when full).
const MAX_RECORDS: usize = 65536;

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

impl Record {
    fn fail(&mut self, now: Instant, threshold: u32) {
        if now.duration_since(self.last) > FORGET {
            self.failures = 0;
        }
        self.failures = self.failures.saturating_add(1);
        self.last = now;
        if self.failures >= threshold {
            let doublings = (self.failures - threshold).min(16);
            let lock = LOCKOUT_BASE.saturating_mul(1 << doublings).min(LOCKOUT_MAX);
            self.locked_until = Some(now + lock);
        }
    }
    fn locked(&self, now: Instant) -> bool {
        self.locked_until.is_some_and(|t| now < t)
    }
    fn recent(&self, now: Instant) -> u32 {
        if now.duration_since(self.last) > FORGET {
            0
        } else {
            self.failures
        }
    }
}

/// What to do with a login before its password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Check the password.
    Check,
    /// Refuse without checking (locked out).
    Refuse,
}

#[derive(Default)]
pub struct Throttle {
    sources: Mutex<HashMap<IpAddr, Record>>,
    users: Mutex<HashMap<String, Record>>,
}

fn remember<K: std::hash::Hash + Eq + Clone>(
    map: &mut HashMap<K, Record>,
    key: &K,
    now: Instant,
    threshold: u32,
) -> Record {
    if map.len() >= MAX_RECORDS && !map.contains_key(key) {
        map.retain(|_, r| now.duration_since(r.last) <= FORGET);
        if map.len() >= MAX_RECORDS {
            if let Some(k) = map
                .iter()
                .min_by_key(|(_, r)| r.last)
                .map(|(k, _)| k.clone())
            {
                map.remove(&k);
            }
        }
    }
    let r = map.entry(key.clone()).or_insert(Record {
        failures: 0,
        last: now,
        locked_until: None,
    });
    r.fail(now, threshold);
    *r
}

impl Throttle {
    /// Before checking `user`'s password from `source`.
    pub fn gate(&self, source: IpAddr, user: &str, now: Instant, stats: &Stats) -> Gate {
        let src = self.sources.lock().expect("throttle").get(&source).copied();
        let refuse = match src {
            Some(s) if s.locked(now) => true,
            Some(s) if s.recent(now) > 0 => self
                .users
                .lock()
                .expect("throttle")
                .get(user)
                .is_some_and(|u| u.locked(now)),
            _ => false,
        };
        if refuse {
            stats.logins_refused.fetch_add(1, Ordering::Relaxed);
            Gate::Refuse
        } else {
            Gate::Check
        }
    }

    /// A failed login (or one refused by [`Self::gate`]): records it and
    /// returns how long to hold the answer back.
    pub fn failed(&self, source: IpAddr, user: &str, now: Instant, stats: &Stats) -> Duration {
        stats.logins_failed.fetch_add(1, Ordering::Relaxed);
        let s = remember(
            &mut self.sources.lock().expect("throttle"),
            &source,
            now,
            SOURCE_THRESHOLD,
        );
        remember(
            &mut self.users.lock().expect("throttle"),
            &user.to_owned(),
            now,
            USER_THRESHOLD,
        );
        let delay = DELAY_STEP.saturating_mul(s.failures).min(MAX_DELAY);
        stats.logins_delayed.fetch_add(1, Ordering::Relaxed);
        delay
    }

    /// A successful login clears its source's record.
    pub fn succeeded(&self, source: IpAddr) {
        self.sources.lock().expect("throttle").remove(&source);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, n])
    }

    #[test]
    fn a_guessing_source_is_delayed_then_locked_out_exponentially() {
        let (t, st) = (Throttle::default(), Stats::default());
        let now = Instant::now();
        let mut delays = Vec::new();
        for _ in 0..SOURCE_THRESHOLD {
            assert_eq!(t.gate(ip(1), "vpn", now, &st), Gate::Check);
            delays.push(t.failed(ip(1), "vpn", now, &st));
        }
        assert_eq!(delays[0], DELAY_STEP);
        assert!(delays.windows(2).all(|w| w[0] <= w[1]), "{delays:?}");
        assert_eq!(t.gate(ip(1), "vpn", now, &st), Gate::Refuse);
        // First lockout: LOCKOUT_BASE; the next failure doubles it.
        assert_eq!(t.gate(ip(1), "vpn", now + LOCKOUT_BASE, &st), Gate::Check);
        let later = now + LOCKOUT_BASE;
        t.failed(ip(1), "vpn", later, &st);
        assert_eq!(
            t.gate(ip(1), "vpn", later + LOCKOUT_BASE, &st),
            Gate::Refuse
        );
        assert_eq!(
            t.gate(ip(1), "vpn", later + LOCKOUT_BASE * 2, &st),
            Gate::Check
        );
        // Another source is untouched.
        assert_eq!(t.gate(ip(2), "vpn", now, &st), Gate::Check);
        assert_eq!(st.logins_refused.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_user_under_distributed_guessing_stays_open_to_clean_sources() {
        let (t, st) = (Throttle::default(), Stats::default());
        let now = Instant::now();
        for n in 0..USER_THRESHOLD {
            t.failed(ip(10 + n as u8), "vpn", now, &st);
        }
        // A guessing source (one failure) is refused for this user ...
        assert_eq!(t.gate(ip(10), "vpn", now, &st), Gate::Refuse);
        // ... not for another user, and a clean source gets in.
        assert_eq!(t.gate(ip(10), "other", now, &st), Gate::Check);
        assert_eq!(t.gate(ip(200), "vpn", now, &st), Gate::Check);
    }

    #[test]
    fn failures_are_forgotten_and_success_clears_the_source() {
        let (t, st) = (Throttle::default(), Stats::default());
        let now = Instant::now();
        for _ in 0..SOURCE_THRESHOLD - 1 {
            t.failed(ip(1), "vpn", now, &st);
        }
        t.succeeded(ip(1));
        assert_eq!(t.failed(ip(1), "vpn", now, &st), DELAY_STEP);
        let much_later = now + FORGET + Duration::from_secs(1);
        assert_eq!(t.failed(ip(1), "vpn", much_later, &st), DELAY_STEP);
    }
}
