//! What a load run measured: setup times (p50/p90/p99/max), sessions per
//! second, failures by stage, and how many sessions were still up at the
//! end of the hold; as text or as one JSON object (`--json`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where a connection stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// TCP connect (refused, reset, timed out, no source port).
    Tcp,
    /// TLS handshake.
    Tls,
    /// HTTP request and response.
    Http,
    /// SSTP + PPP (LCP, authentication, IPCP, Call Connected) or the
    /// IP-HTTPS Router Advertisement.
    Session,
    /// The session (or the attacker's connection) ended while held.
    Hold,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Tcp => "tcp",
            Stage::Tls => "tls",
            Stage::Http => "http",
            Stage::Session => "session",
            Stage::Hold => "hold",
        }
    }
}

#[derive(Default)]
struct Inner {
    setups: Vec<Duration>,
    failures: BTreeMap<Stage, (u64, String)>,
    first_start: Option<Instant>,
    last_setup: Option<Instant>,
    /// Password guesses answered with an authentication failure.
    rejected: u64,
    /// Time from connect to that answer.
    reject_times: Vec<Duration>,
}

/// Shared by every connection of a run.
#[derive(Default)]
pub struct Collector {
    inner: Mutex<Inner>,
    started: std::sync::atomic::AtomicU64,
    up: std::sync::atomic::AtomicI64,
}

impl Collector {
    pub fn started(&self, at: Instant) {
        self.started
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut g = self.inner.lock().expect("collector");
        g.first_start.get_or_insert(at);
    }

    /// A connection reached its goal (a session up, or an attacker's
    /// connection accepted as far as its mode goes) after `took`.
    pub fn setup(&self, took: Duration) {
        self.up.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut g = self.inner.lock().expect("collector");
        g.setups.push(took);
        g.last_setup = Some(Instant::now());
    }

    /// A session that was up has ended.
    pub fn down(&self) {
        self.up.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn up(&self) -> i64 {
        self.up.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn failed(&self, stage: Stage, why: &str) {
        let mut g = self.inner.lock().expect("collector");
        let e = g.failures.entry(stage).or_insert((0, String::new()));
        e.0 += 1;
        if e.1.is_empty() {
            e.1 = why.chars().take(160).collect();
        }
    }

    pub fn rejected(&self, took: Duration) {
        let mut g = self.inner.lock().expect("collector");
        g.rejected += 1;
        g.reject_times.push(took);
    }

    pub fn setups_done(&self) -> usize {
        self.inner.lock().expect("collector").setups.len()
    }

    pub fn failures(&self) -> u64 {
        let g = self.inner.lock().expect("collector");
        g.failures.values().map(|f| f.0).sum()
    }

    /// The figures, with `held` = sessions up at the end of the hold.
    pub fn summary(&self, mode: &str, held: i64) -> Summary {
        let g = self.inner.lock().expect("collector");
        let mut s = g.setups.clone();
        s.sort();
        let mut r = g.reject_times.clone();
        r.sort();
        let span = match (g.first_start, g.last_setup) {
            (Some(a), Some(b)) if b > a => b - a,
            _ => Duration::ZERO,
        };
        Summary {
            mode: mode.to_owned(),
            attempted: self.started.load(std::sync::atomic::Ordering::Relaxed),
            established: s.len() as u64,
            held,
            per_second: if span.is_zero() {
                0.0
            } else {
                s.len() as f64 / span.as_secs_f64()
            },
            setup: Percentiles::of(&s),
            failures: g
                .failures
                .iter()
                .map(|(k, (n, why))| (k.name(), *n, why.clone()))
                .collect(),
            rejected: g.rejected,
            reject: Percentiles::of(&r),
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Percentiles {
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Percentiles {
    /// Nearest-rank percentiles of a sorted list.
    pub fn of(sorted: &[Duration]) -> Self {
        let at = |p: f64| -> Duration {
            if sorted.is_empty() {
                return Duration::ZERO;
            }
            let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
            sorted[rank - 1]
        };
        Percentiles {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: sorted.last().copied().unwrap_or_default(),
        }
    }
}

pub struct Summary {
    pub mode: String,
    pub attempted: u64,
    pub established: u64,
    pub held: i64,
    pub per_second: f64,
    pub setup: Percentiles,
    pub failures: Vec<(&'static str, u64, String)>,
    pub rejected: u64,
    pub reject: Percentiles,
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

/// A JSON string literal.
fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

impl Summary {
    pub fn text(&self) -> String {
        let mut o = String::new();
        let p = &self.setup;
        let _ = writeln!(
            o,
            "loadgen: mode {}, {} attempted, {} established, {} up at the end of the hold",
            self.mode, self.attempted, self.established, self.held
        );
        let _ = writeln!(
            o,
            "loadgen: {:.1} setups/s; setup time ms: p50 {} p90 {} p99 {} max {}",
            self.per_second,
            ms(p.p50),
            ms(p.p90),
            ms(p.p99),
            ms(p.max)
        );
        if self.rejected > 0 {
            let r = &self.reject;
            let _ = writeln!(
                o,
                "loadgen: {} logins rejected; time to rejection ms: p50 {} p90 {} p99 {} max {}",
                self.rejected,
                ms(r.p50),
                ms(r.p90),
                ms(r.p99),
                ms(r.max)
            );
        }
        if self.failures.is_empty() {
            let _ = writeln!(o, "loadgen: no failures");
        }
        for (stage, n, why) in &self.failures {
            let _ = writeln!(o, "loadgen: failed at {stage}: {n} (first: {why})");
        }
        o
    }

    pub fn json(&self) -> String {
        let pct = |p: &Percentiles| {
            format!(
                "{{\"p50\":{},\"p90\":{},\"p99\":{},\"max\":{}}}",
                ms(p.p50),
                ms(p.p90),
                ms(p.p99),
                ms(p.max)
            )
        };
        let failures: Vec<String> = self
            .failures
            .iter()
            .map(|(stage, n, why)| {
                format!(
                    "{}:{{\"count\":{n},\"first\":{}}}",
                    json_str(stage),
                    json_str(why)
                )
            })
            .collect();
        format!(
            "{{\"mode\":{},\"attempted\":{},\"established\":{},\"held\":{},\"setups_per_second\":{:.1},\"setup_ms\":{},\"rejected\":{},\"reject_ms\":{},\"failures\":{{{}}}}}",
            json_str(&self.mode),
            self.attempted,
            self.established,
            self.held,
            self.per_second,
            pct(&self.setup),
            self.rejected,
            pct(&self.reject),
            failures.join(",")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let p = Percentiles::of(&v);
        assert_eq!(p.p50, Duration::from_millis(50));
        assert_eq!(p.p90, Duration::from_millis(90));
        assert_eq!(p.p99, Duration::from_millis(99));
        assert_eq!(p.max, Duration::from_millis(100));
        let one = Percentiles::of(&[Duration::from_millis(7)]);
        assert_eq!(one.p50, Duration::from_millis(7));
        assert_eq!(Percentiles::of(&[]).max, Duration::ZERO);
    }

    #[test]
    fn json_and_text_name_failures_by_stage() {
        let c = Collector::default();
        c.started(Instant::now());
        c.started(Instant::now());
        c.setup(Duration::from_millis(12));
        c.failed(Stage::Tls, "alert \"x\"");
        let s = c.summary("sstp", 1);
        let j = s.json();
        assert!(j.contains("\"established\":1"), "{j}");
        assert!(
            j.contains("\"tls\":{\"count\":1,\"first\":\"alert \\\"x\\\"\"}"),
            "{j}"
        );
        let t = s.text();
        assert!(t.contains("failed at tls: 1"), "{t}");
        assert!(t.contains("2 attempted, 1 established"), "{t}");
    }
}
