//! Admission control for the listener: which connections the server takes
//! on, and how long an unauthenticated one may take (MS-SSTP §5.3: the
//! server "can be subjected to denial-of-service attacks" by clients that
//! open connections and never finish; MS-IPHTTPS §4.2).
//!
//! * Caps: connections in total (`limits.max_sessions`) and per source
//!   address (`limits.max_per_source`); connections still in handshake
//!   (accepted, not yet established: TLS, HTTP head, and for SSTP up to
//!   Call Connected with a verified crypto binding) in total
//!   (`limits.max_handshakes`) and per source (`limits.max_handshakes_per_source`).
//! * A connection over a per-source or total cap is closed at once. One
//!   over the total handshake cap takes the place of the oldest
//!   unauthenticated connection, which is closed (oldest first).
//! * The handshake budget (`limits.handshake_budget`, from accept to
//!   established) shrinks linearly to `limits.handshake_budget_min` as the
//!   handshakes in progress go from half the cap to the cap; a sweep closes
//!   those over the current budget, oldest first.
//! * Refusals are counted ([`Stats`]) and logged as one summary line per
//!   [`LOG_INTERVAL`], never one line per connection.
//!
//! Behind a load balancer with the PROXY protocol every connection comes
//! from the balancer: per-source caps are then off (the total caps stay).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tracing::warn;

/// How often refusals and throttling are summarised in the log.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The caps and budgets of `[limits]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub max_per_source: usize,
    pub max_handshakes: usize,
    pub max_handshakes_per_source: usize,
    pub handshake_budget: Duration,
    pub handshake_budget_min: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 16384,
            max_per_source: 256,
            max_handshakes: 2048,
            max_handshakes_per_source: 32,
            handshake_budget: Duration::from_secs(30),
            handshake_budget_min: Duration::from_secs(2),
        }
    }
}

impl Limits {
    /// From the `[limits]` keys, each error naming its field.
    pub fn from_section(s: &crate::config::LimitsSection) -> anyhow::Result<Self> {
        let d = Limits::default();
        let count = |v: Option<usize>, def: usize, name: &str| -> anyhow::Result<usize> {
            match v {
                Some(0) => anyhow::bail!("limits.{name}: must be at least 1"),
                Some(n) => Ok(n),
                None => Ok(def),
            }
        };
        let secs = |v: Option<u64>, def: Duration, name: &str| -> anyhow::Result<Duration> {
            match v {
                Some(0) => anyhow::bail!("limits.{name}: must be at least 1 second"),
                Some(n) => Ok(Duration::from_secs(n)),
                None => Ok(def),
            }
        };
        let l = Limits {
            max_connections: count(s.max_sessions, d.max_connections, "max_sessions")?,
            max_per_source: count(s.max_per_source, d.max_per_source, "max_per_source")?,
            max_handshakes: count(s.max_handshakes, d.max_handshakes, "max_handshakes")?,
            max_handshakes_per_source: count(
                s.max_handshakes_per_source,
                d.max_handshakes_per_source,
                "max_handshakes_per_source",
            )?,
            handshake_budget: secs(s.handshake_budget, d.handshake_budget, "handshake_budget")?,
            handshake_budget_min: secs(
                s.handshake_budget_min,
                d.handshake_budget_min,
                "handshake_budget_min",
            )?,
        };
        if l.handshake_budget_min > l.handshake_budget {
            anyhow::bail!(
                "limits.handshake_budget_min: {} s is more than limits.handshake_budget ({} s)",
                l.handshake_budget_min.as_secs(),
                l.handshake_budget.as_secs()
            );
        }
        Ok(l)
    }
}

/// Counters since start, for `ctl stats` and metrics: read them with
/// [`Admission::stats`].
#[derive(Debug, Default)]
pub struct Stats {
    pub accepted: AtomicU64,
    pub refused_total_cap: AtomicU64,
    pub refused_per_source: AtomicU64,
    pub refused_handshakes_per_source: AtomicU64,
    /// Unauthenticated connections closed to make room (oldest first).
    pub evicted: AtomicU64,
    /// Unauthenticated connections closed for exceeding the budget.
    pub budget_expired: AtomicU64,
    /// Password-guess throttling ([`super::throttle`]).
    pub logins_failed: AtomicU64,
    pub logins_delayed: AtomicU64,
    pub logins_refused: AtomicU64,
}

/// A copy of the counters and the current levels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub connections: usize,
    pub handshakes: usize,
    pub sources: usize,
    pub accepted: u64,
    pub refused_total_cap: u64,
    pub refused_per_source: u64,
    pub refused_handshakes_per_source: u64,
    pub evicted: u64,
    pub budget_expired: u64,
    pub logins_failed: u64,
    pub logins_delayed: u64,
    pub logins_refused: u64,
}

#[derive(Default)]
struct PerSource {
    connections: usize,
    handshakes: usize,
}

struct Pending {
    source: IpAddr,
    since: Instant,
    close: Arc<Notify>,
}

#[derive(Default)]
struct State {
    sources: HashMap<IpAddr, PerSource>,
    connections: usize,
    /// Connections in handshake, oldest first.
    handshakes: BTreeMap<u64, Pending>,
    next_id: u64,
    /// A source refused since the last summary (for the log line).
    refused_example: Option<IpAddr>,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    TotalCap,
    PerSource,
    HandshakesPerSource,
}

/// The listener's admission state; one per server.
pub struct Admission {
    limits: Limits,
    per_source: bool,
    state: Mutex<State>,
    stats: Stats,
}

impl Admission {
    pub fn new(limits: Limits, per_source: bool) -> Arc<Self> {
        Arc::new(Admission {
            limits,
            per_source,
            state: Mutex::new(State::default()),
            stats: Stats::default(),
        })
    }

    /// The counters (live).
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn snapshot(&self) -> Snapshot {
        let g = self.state.lock().expect("admission");
        let s = &self.stats;
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Snapshot {
            connections: g.connections,
            handshakes: g.handshakes.len(),
            sources: g.sources.len(),
            accepted: r(&s.accepted),
            refused_total_cap: r(&s.refused_total_cap),
            refused_per_source: r(&s.refused_per_source),
            refused_handshakes_per_source: r(&s.refused_handshakes_per_source),
            evicted: r(&s.evicted),
            budget_expired: r(&s.budget_expired),
            logins_failed: r(&s.logins_failed),
            logins_delayed: r(&s.logins_delayed),
            logins_refused: r(&s.logins_refused),
        }
    }

    /// The handshake budget with `n` handshakes in progress.
    fn budget_at(&self, n: usize) -> Duration {
        let (full, min) = (
            self.limits.handshake_budget,
            self.limits.handshake_budget_min,
        );
        let half = self.limits.max_handshakes / 2;
        if n <= half {
            return full;
        }
        let span = (self.limits.max_handshakes - half).max(1) as f64;
        let over = ((n - half) as f64 / span).min(1.0);
        full - (full - min).mul_f64(over)
    }

    /// The handshake budget now.
    pub fn budget(&self) -> Duration {
        let n = self.state.lock().expect("admission").handshakes.len();
        self.budget_at(n)
    }

    /// Takes on a connection from `source`, or says why not.
    pub fn admit(self: &Arc<Self>, source: IpAddr, now: Instant) -> Result<Ticket, Refusal> {
        let mut g = self.state.lock().expect("admission");
        let refusal = if g.connections >= self.limits.max_connections {
            Some(Refusal::TotalCap)
        } else if self.per_source {
            let p = g.sources.get(&source);
            let (c, h) = p.map_or((0, 0), |p| (p.connections, p.handshakes));
            if c >= self.limits.max_per_source {
                Some(Refusal::PerSource)
            } else if h >= self.limits.max_handshakes_per_source {
                Some(Refusal::HandshakesPerSource)
            } else {
                None
            }
        } else {
            None
        };
        if let Some(r) = refusal {
            let counter = match r {
                Refusal::TotalCap => &self.stats.refused_total_cap,
                Refusal::PerSource => &self.stats.refused_per_source,
                Refusal::HandshakesPerSource => &self.stats.refused_handshakes_per_source,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            g.refused_example = Some(source);
            return Err(r);
        }
        // Over the handshake cap: the oldest unauthenticated connection
        // makes room.
        if g.handshakes.len() >= self.limits.max_handshakes {
            if let Some((_, old)) = g.handshakes.pop_first() {
                Self::leave_handshake(&mut g, old.source);
                old.close.notify_one();
                self.stats.evicted.fetch_add(1, Ordering::Relaxed);
            }
        }
        let id = g.next_id;
        g.next_id += 1;
        let close = Arc::new(Notify::new());
        g.handshakes.insert(
            id,
            Pending {
                source,
                since: now,
                close: close.clone(),
            },
        );
        g.connections += 1;
        let p = g.sources.entry(source).or_default();
        p.connections += 1;
        p.handshakes += 1;
        self.stats.accepted.fetch_add(1, Ordering::Relaxed);
        Ok(Ticket(Arc::new(TicketInner {
            admission: self.clone(),
            source,
            id,
            close,
            established: AtomicBool::new(false),
        })))
    }

    fn leave_handshake(g: &mut State, source: IpAddr) {
        if let Some(p) = g.sources.get_mut(&source) {
            p.handshakes = p.handshakes.saturating_sub(1);
        }
    }

    /// Closes the handshakes older than the current budget (oldest
    /// first); returns how many.
    pub fn sweep(&self, now: Instant) -> usize {
        let mut g = self.state.lock().expect("admission");
        let mut closed = 0;
        while let Some((&id, p)) = g.handshakes.first_key_value() {
            let budget = self.budget_at(g.handshakes.len());
            if now.saturating_duration_since(p.since) < budget {
                break;
            }
            let p = g.handshakes.remove(&id).expect("present");
            Self::leave_handshake(&mut g, p.source);
            p.close.notify_one();
            closed += 1;
        }
        self.stats
            .budget_expired
            .fetch_add(closed as u64, Ordering::Relaxed);
        closed
    }

    /// Sweeps every second and writes the summary line every
    /// [`LOG_INTERVAL`] when something was refused or throttled.
    pub async fn run_housekeeping(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last = self.snapshot();
        let mut last_log = Instant::now();
        let mut trim = Trim::default();
        loop {
            tick.tick().await;
            let now = Instant::now();
            self.sweep(now);
            if trim.due(now, self.snapshot().connections) {
                crate::memory::release_free_memory();
            }
            if now.duration_since(last_log) < LOG_INTERVAL {
                continue;
            }
            let cur = self.snapshot();
            let example = self.state.lock().expect("admission").refused_example.take();
            if let Some(line) = summary(&last, &cur) {
                warn!(
                    interval_s = LOG_INTERVAL.as_secs(),
                    connections = cur.connections,
                    handshakes = cur.handshakes,
                    example_source = example.map(tracing::field::display),
                    "{line}"
                );
            }
            last = cur;
            last_log = now;
        }
    }
}

/// When to hand freed heap memory back to the system: glibc keeps what
/// sessions freed (measured: a 25 s churn of 4,300 sessions left RSS 23 MB
/// above its baseline, all of it free memory that `malloc_trim` returned).
/// At most every [`TRIM_EVERY`], once connections fell by a quarter of
/// their peak (and by at least 64) since the last trim.
#[derive(Default)]
struct Trim {
    peak: usize,
    last: Option<Instant>,
}

const TRIM_EVERY: Duration = Duration::from_secs(30);

impl Trim {
    fn due(&mut self, now: Instant, connections: usize) -> bool {
        self.peak = self.peak.max(connections);
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < TRIM_EVERY)
        {
            return false;
        }
        let fell = self.peak - connections;
        if fell < 64 || fell * 4 < self.peak {
            return false;
        }
        self.last = Some(now);
        self.peak = connections;
        true
    }
}

/// The summary of what changed between two snapshots, if anything was
/// refused, closed early or throttled.
pub fn summary(a: &Snapshot, b: &Snapshot) -> Option<String> {
    let d = |x: u64, y: u64| y.saturating_sub(x);
    let parts = [
        (
            "refused at the total cap",
            d(a.refused_total_cap, b.refused_total_cap),
        ),
        (
            "refused at the per-source cap",
            d(a.refused_per_source, b.refused_per_source),
        ),
        (
            "refused at the per-source handshake cap",
            d(
                a.refused_handshakes_per_source,
                b.refused_handshakes_per_source,
            ),
        ),
        (
            "unauthenticated closed to make room",
            d(a.evicted, b.evicted),
        ),
        (
            "unauthenticated closed over the handshake budget",
            d(a.budget_expired, b.budget_expired),
        ),
        ("failed logins", d(a.logins_failed, b.logins_failed)),
        (
            "failed logins answered late",
            d(a.logins_delayed, b.logins_delayed),
        ),
        (
            "logins refused while throttled",
            d(a.logins_refused, b.logins_refused),
        ),
    ];
    let text: Vec<String> = parts
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(what, n)| format!("{n} {what}"))
        .collect();
    (!text.is_empty()).then(|| format!("admission: {}", text.join(", ")))
}

struct TicketInner {
    admission: Arc<Admission>,
    source: IpAddr,
    id: u64,
    close: Arc<Notify>,
    established: AtomicBool,
}

impl Drop for TicketInner {
    fn drop(&mut self) {
        let mut g = self.admission.state.lock().expect("admission");
        if g.handshakes.remove(&self.id).is_some() {
            Admission::leave_handshake(&mut g, self.source);
        }
        g.connections = g.connections.saturating_sub(1);
        if let Some(p) = g.sources.get_mut(&self.source) {
            p.connections = p.connections.saturating_sub(1);
            if p.connections == 0 {
                g.sources.remove(&self.source);
                crate::memory::shrink_sparse(&mut g.sources);
            }
        }
    }
}

/// One admitted connection; its slots are given back when the last clone
/// is dropped.
#[derive(Clone)]
pub struct Ticket(Arc<TicketInner>);

impl Ticket {
    /// The connection is authenticated (SSTP: Call Connected verified;
    /// IP-HTTPS: its request accepted): it leaves the handshake caps and
    /// budget.
    pub fn established(&self) {
        if self.0.established.swap(true, Ordering::Relaxed) {
            return;
        }
        let mut g = self.0.admission.state.lock().expect("admission");
        if g.handshakes.remove(&self.0.id).is_some() {
            Admission::leave_handshake(&mut g, self.0.source);
        }
    }

    /// Resolves when admission closes this connection (made room for a
    /// newer one, or over the handshake budget).
    pub async fn closed(&self) {
        self.0.close.notified().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_connections: 10,
            max_per_source: 4,
            max_handshakes: 4,
            max_handshakes_per_source: 3,
            handshake_budget: Duration::from_secs(20),
            handshake_budget_min: Duration::from_secs(2),
        }
    }

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    #[test]
    fn the_source_table_shrinks_when_connections_end() {
        let a = Admission::new(
            Limits {
                max_connections: 10_000,
                max_handshakes: 10_000,
                ..limits()
            },
            true,
        );
        let now = Instant::now();
        let mut t: Vec<_> = (0..2000u32)
            .map(|i| {
                let src = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
                a.admit(src, now).unwrap()
            })
            .collect();
        let peak = a.state.lock().unwrap().sources.capacity();
        t.truncate(10);
        let (len, cap) = {
            let g = a.state.lock().unwrap();
            (g.sources.len(), g.sources.capacity())
        };
        assert_eq!(len, 10);
        assert!(cap < peak / 8, "{cap} of {peak}");
    }

    #[test]
    fn per_source_caps_refuse_that_source_only() {
        let a = Admission::new(limits(), true);
        let now = Instant::now();
        let t: Vec<_> = (0..3).map(|_| a.admit(ip(1), now).unwrap()).collect();
        assert_eq!(
            a.admit(ip(1), now).err(),
            Some(Refusal::HandshakesPerSource)
        );
        t[0].established();
        let t3 = a.admit(ip(1), now).unwrap();
        assert_eq!(a.admit(ip(1), now).err(), Some(Refusal::PerSource));
        // Another source still gets in.
        let other = a.admit(ip(2), now).unwrap();
        let s = a.snapshot();
        assert_eq!(
            (
                s.connections,
                s.refused_per_source,
                s.refused_handshakes_per_source
            ),
            (5, 1, 1)
        );
        drop((t, t3, other));
        let s = a.snapshot();
        assert_eq!((s.connections, s.handshakes, s.sources), (0, 0, 0));
    }

    #[test]
    fn per_source_off_behind_a_balancer() {
        let a = Admission::new(limits(), false);
        let now = Instant::now();
        let t: Vec<_> = (0..10).map(|_| a.admit(ip(1), now).unwrap()).collect();
        assert_eq!(a.admit(ip(1), now).err(), Some(Refusal::TotalCap));
        assert_eq!(t.len(), 10);
    }

    #[tokio::test]
    async fn over_the_handshake_cap_the_oldest_makes_room() {
        let a = Admission::new(limits(), true);
        let now = Instant::now();
        let old = a.admit(ip(1), now).unwrap();
        let done = a.admit(ip(1), now).unwrap();
        done.established();
        let _b = a.admit(ip(2), now).unwrap();
        let _c = a.admit(ip(3), now).unwrap();
        let _d = a.admit(ip(4), now).unwrap();
        // Four in handshake (old, b, c, d): the fifth evicts `old`.
        let _e = a.admit(ip(5), now).unwrap();
        tokio::time::timeout(Duration::from_secs(1), old.closed())
            .await
            .expect("the oldest handshake is closed");
        assert_eq!(a.snapshot().evicted, 1);
        assert_eq!(a.snapshot().handshakes, 4);
        // The established one is never closed by admission.
        assert!(
            tokio::time::timeout(Duration::from_millis(50), done.closed())
                .await
                .is_err()
        );
    }

    #[test]
    fn budget_tightens_from_half_the_cap() {
        let a = Admission::new(limits(), true);
        assert_eq!(a.budget_at(0), Duration::from_secs(20));
        assert_eq!(a.budget_at(2), Duration::from_secs(20));
        assert_eq!(a.budget_at(3), Duration::from_secs(11));
        assert_eq!(a.budget_at(4), Duration::from_secs(2));
    }

    #[tokio::test]
    async fn sweep_closes_handshakes_over_budget_oldest_first() {
        let a = Admission::new(limits(), true);
        let t0 = Instant::now();
        let old = a.admit(ip(1), t0).unwrap();
        let new = a.admit(ip(2), t0 + Duration::from_secs(15)).unwrap();
        assert_eq!(a.sweep(t0 + Duration::from_secs(19)), 0);
        assert_eq!(a.sweep(t0 + Duration::from_secs(21)), 1);
        tokio::time::timeout(Duration::from_secs(1), old.closed())
            .await
            .expect("closed");
        assert!(
            tokio::time::timeout(Duration::from_millis(50), new.closed())
                .await
                .is_err()
        );
        assert_eq!(a.snapshot().budget_expired, 1);
    }

    #[test]
    fn trim_after_connections_fall_by_a_quarter_at_most_every_30_s() {
        let mut t = Trim::default();
        let t0 = Instant::now();
        assert!(!t.due(t0, 1000));
        assert!(!t.due(t0, 800), "a fifth fewer");
        assert!(t.due(t0, 700));
        assert!(
            !t.due(t0 + Duration::from_secs(1), 0),
            "within 30 s of the last"
        );
        assert!(t.due(t0 + TRIM_EVERY, 0));
        // Small numbers never trigger it.
        let mut small = Trim::default();
        assert!(!small.due(t0, 60));
        assert!(!small.due(t0, 0));
    }

    #[test]
    fn summary_names_only_what_happened() {
        let a = Snapshot::default();
        assert_eq!(summary(&a, &a), None);
        let b = Snapshot {
            refused_per_source: 19000,
            logins_refused: 3,
            ..a
        };
        assert_eq!(
            summary(&a, &b).unwrap(),
            "admission: 19000 refused at the per-source cap, 3 logins refused while throttled"
        );
    }

    #[test]
    fn limits_errors_name_the_field() {
        let s = crate::config::LimitsSection {
            max_per_source: Some(0),
            ..Default::default()
        };
        let e = Limits::from_section(&s).unwrap_err().to_string();
        assert!(e.starts_with("limits.max_per_source:"), "{e}");
        let s = crate::config::LimitsSection {
            handshake_budget: Some(5),
            handshake_budget_min: Some(6),
            ..Default::default()
        };
        let e = Limits::from_section(&s).unwrap_err().to_string();
        assert!(e.starts_with("limits.handshake_budget_min:"), "{e}");
    }
}
