//! The server's counters, in one place: `tunnel443 ctl stats` and the
//! Prometheus endpoint both read a [`Snapshot`] of them, so the two always
//! agree. Labels are low-cardinality by construction (enums: a protocol,
//! an auth method, a setup stage, a drop reason; never a user or address).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use prometheus_client::metrics::histogram::exponential_buckets;
use serde::Serialize;

use super::registry::{Protocol, TrafficSnapshot};

/// Where a session setup failed (the stages, in connection order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Accepting: refused at the connection cap, accept errors.
    Tcp,
    /// The TLS handshake (or PROXY header) failed or timed out.
    Tls,
    /// No valid request head: malformed, too large, 404, IP-HTTPS refusals.
    Http,
    /// SSTP control: aborts, timeouts, a lost connection before PPP was up.
    Sstp,
    /// PPP authentication failed.
    PppAuth,
    /// The SSTP crypto binding did not verify.
    Binding,
    /// Authenticated, but no network layer came up (no address, IPCP/IPv6CP).
    Ncp,
}

impl Stage {
    pub const ALL: [Stage; 7] = [
        Stage::Tcp,
        Stage::Tls,
        Stage::Http,
        Stage::Sstp,
        Stage::PppAuth,
        Stage::Binding,
        Stage::Ncp,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Tcp => "tcp",
            Stage::Tls => "tls",
            Stage::Http => "http",
            Stage::Sstp => "sstp",
            Stage::PppAuth => "ppp-auth",
            Stage::Binding => "binding",
            Stage::Ncp => "ncp",
        }
    }
}

/// How a client authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Pap,
    ChapMd5,
    MsChapV2,
    EapMsChapV2,
    /// EAP relayed to RADIUS (`[radius] eap = "pass-through"`): RADIUS
    /// runs the method.
    EapPassThrough,
    /// Local EAP-TLS (`[sstp] auth` lists "eap-tls").
    EapTls,
    /// IP-HTTPS client certificate.
    Certificate,
}

impl Method {
    pub const ALL: [Method; 7] = [
        Method::Pap,
        Method::ChapMd5,
        Method::MsChapV2,
        Method::EapMsChapV2,
        Method::EapPassThrough,
        Method::EapTls,
        Method::Certificate,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Pap => "pap",
            Method::ChapMd5 => "chap-md5",
            Method::MsChapV2 => "mschapv2",
            Method::EapMsChapV2 => "eap-mschapv2",
            Method::EapPassThrough => "eap-pass-through",
            Method::EapTls => "eap-tls",
            Method::Certificate => "certificate",
        }
    }
    /// The PPP method, if it is one of ours.
    pub fn of(m: ppp::AuthMethod) -> Option<Self> {
        Some(match m {
            ppp::AuthMethod::Pap => Method::Pap,
            ppp::AuthMethod::ChapMd5 => Method::ChapMd5,
            ppp::AuthMethod::MsChapV2 => Method::MsChapV2,
            ppp::AuthMethod::EapMsChapV2 => Method::EapMsChapV2,
            ppp::AuthMethod::EapPassThrough => Method::EapPassThrough,
            ppp::AuthMethod::EapTls => Method::EapTls,
            _ => return None,
        })
    }
}

/// Packets the server dropped, by why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drop {
    /// From a client, with a source address it was not given.
    Spoofed,
    /// For a client whose queue was full (TCP-over-TCP: drop, not buffer).
    QueueFull,
    /// Over a session's rate limit (RADIUS-assigned).
    RateLimit,
    /// From the TUN device with no session for their destination.
    NoRoute,
    /// From a client to another client (`[ipv4] client_to_client = false`).
    ClientToClient,
}

impl Drop {
    pub const ALL: [Drop; 5] = [
        Drop::Spoofed,
        Drop::QueueFull,
        Drop::RateLimit,
        Drop::NoRoute,
        Drop::ClientToClient,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Drop::Spoofed => "spoofed",
            Drop::QueueFull => "queue_full",
            Drop::RateLimit => "rate_limit",
            Drop::NoRoute => "no_route",
            Drop::ClientToClient => "client_to_client",
        }
    }
}

/// Counters that only ever grow, plus the handshake latency histogram.
pub struct Stats {
    setups: [AtomicU64; 2],
    failures: [AtomicU64; Stage::ALL.len()],
    auth_ok: [AtomicU64; Method::ALL.len()],
    auth_failed: [AtomicU64; Method::ALL.len()],
    /// From TCP accept to the session carrying traffic, in seconds.
    handshake: Mutex<Histogram>,
}

/// A classic histogram: per-bucket counts (not cumulative), the last
/// bucket +Inf. Observed once per session setup: a lock is fine.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    pub sum: f64,
    pub count: u64,
    /// (upper bound, observations in this bucket only).
    pub buckets: Vec<(f64, u64)>,
}

impl Histogram {
    fn new(bounds: impl Iterator<Item = f64>) -> Self {
        Histogram {
            sum: 0.0,
            count: 0,
            buckets: bounds.chain([f64::INFINITY]).map(|b| (b, 0)).collect(),
        }
    }
    fn observe(&mut self, v: f64) {
        self.sum += v;
        self.count += 1;
        if let Some(b) = self.buckets.iter_mut().find(|(le, _)| v <= *le) {
            b.1 += 1;
        }
    }
}

/// Upper bounds of the handshake latency buckets, in seconds (10 ms to
/// about 20 s; Windows waits 60 s, so slow ones land in +Inf).
pub fn handshake_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.01, 2.0, 12)
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            setups: Default::default(),
            failures: Default::default(),
            auth_ok: Default::default(),
            auth_failed: Default::default(),
            handshake: Mutex::new(Histogram::new(handshake_buckets())),
        }
    }
}

fn index<T: PartialEq>(all: &[T], v: &T) -> usize {
    all.iter().position(|x| x == v).expect("listed in ALL")
}

impl Stats {
    /// A session came up after `secs` from its TCP accept.
    pub fn setup(&self, p: Protocol, secs: f64) {
        self.setups[index(&Protocol::ALL, &p)].fetch_add(1, Ordering::Relaxed);
        self.handshake.lock().expect("histogram lock").observe(secs);
    }

    pub fn failure(&self, s: Stage) {
        self.failures[index(&Stage::ALL, &s)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn auth(&self, m: Method, ok: bool) {
        let a = if ok { &self.auth_ok } else { &self.auth_failed };
        a[index(&Method::ALL, &m)].fetch_add(1, Ordering::Relaxed);
    }
}

/// One value with its label.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Labeled<T> {
    pub name: &'static str,
    pub value: T,
}

/// Admission control and password throttling (`[limits]`,
/// [`super::admission`], [`super::throttle`]).
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct AdmissionCounts {
    /// Connections open now.
    pub connections: u64,
    /// Of them still in handshake (not yet authenticated).
    pub handshakes: u64,
    /// Connections refused at accept since start, by cap: `total_cap`,
    /// `per_source`, `handshakes_per_source`.
    pub refused: Vec<Labeled<u64>>,
    /// Unauthenticated connections closed to make room (oldest first).
    pub evicted: u64,
    /// Unauthenticated connections closed at the handshake budget.
    pub budget_expired: u64,
    /// Failed logins (password checks that failed).
    pub logins_failed: u64,
    /// Failed logins answered late (throttled).
    pub logins_delayed: u64,
    /// Logins refused without a password check (locked out).
    pub logins_refused: u64,
}

impl From<super::admission::Snapshot> for AdmissionCounts {
    fn from(a: super::admission::Snapshot) -> Self {
        let refused = [
            ("total_cap", a.refused_total_cap),
            ("per_source", a.refused_per_source),
            ("handshakes_per_source", a.refused_handshakes_per_source),
        ];
        AdmissionCounts {
            connections: a.connections as u64,
            handshakes: a.handshakes as u64,
            refused: refused
                .into_iter()
                .map(|(name, value)| Labeled { name, value })
                .collect(),
            evicted: a.evicted,
            budget_expired: a.budget_expired,
            logins_failed: a.logins_failed,
            logins_delayed: a.logins_delayed,
            logins_refused: a.logins_refused,
        }
    }
}

/// Authentication results of one method.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct AuthCount {
    pub method: &'static str,
    pub success: u64,
    pub failure: u64,
}

/// A pool's size and use.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PoolUse {
    /// `ipv4` (SSTP addresses) or `iphttps` (client /64s).
    pub pool: &'static str,
    pub size: u64,
    pub used: u64,
}

/// The RADIUS client's requests and replies (present with `[radius]`).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct RadiusCounts {
    pub requests: u64,
    pub retransmits: u64,
    /// Verified replies.
    pub replies: u64,
    /// Requests no server answered in time.
    pub timeouts: u64,
    /// Replies dropped, by reason: `malformed`, `unknown_id` (no request in
    /// flight), `bad_authenticator`, `bad_message_authenticator` (wrong or
    /// missing).
    pub dropped: Vec<Labeled<u64>>,
}

impl From<radius::Counters> for RadiusCounts {
    fn from(c: radius::Counters) -> Self {
        let l = |name, value| Labeled { name, value };
        RadiusCounts {
            requests: c.requests,
            retransmits: c.retransmits,
            replies: c.replies,
            timeouts: c.no_response,
            dropped: vec![
                l("malformed", c.malformed),
                l("unknown_id", c.unknown_identifier),
                l("bad_authenticator", c.bad_authenticator),
                l("bad_message_authenticator", c.bad_message_authenticator),
            ],
        }
    }
}

/// Everything `ctl stats --json` prints and `/metrics` exports.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Snapshot {
    /// Live sessions by protocol.
    pub sessions: Vec<Labeled<u64>>,
    /// Sessions that came up since start, by protocol.
    pub setups: Vec<Labeled<u64>>,
    /// Setup failures (handshake failures) by stage.
    pub setup_failures: Vec<Labeled<u64>>,
    pub auth: Vec<AuthCount>,
    pub pools: Vec<PoolUse>,
    /// Bytes and packets of every session since start (rx: from clients).
    pub traffic: TrafficSnapshot,
    pub drops: Vec<Labeled<u64>>,
    pub admission: AdmissionCounts,
    /// Handshake latency (TCP accept to session up): how many, and their
    /// sum in seconds.
    pub handshakes: u64,
    pub handshake_seconds_sum: f64,
    #[serde(skip)]
    pub handshake_seconds: Histogram,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub radius: Option<RadiusCounts>,
    /// Tasks the server spawned that are still running (`crate::tasks`):
    /// back to its idle figure once every session has ended.
    pub tasks: u64,
    /// tokio's own count of the runtime's live tasks (those of the
    /// libraries too: hyper's, the control socket's), the same check.
    pub runtime_tasks: u64,
}

/// What the snapshot needs from outside this module.
pub struct Live {
    pub sessions: [u64; 2],
    pub pools: Vec<PoolUse>,
    pub traffic: TrafficSnapshot,
    pub queue_full: u64,
    pub no_route: u64,
    pub client_to_client: u64,
    pub admission: super::admission::Snapshot,
    pub radius: Option<radius::Counters>,
    pub tasks: u64,
    pub runtime_tasks: u64,
}

impl Stats {
    pub fn snapshot(&self, live: Live) -> Snapshot {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let hist = self.handshake.lock().expect("histogram lock").clone();
        let per_protocol = |v: [u64; 2]| {
            Protocol::ALL
                .iter()
                .zip(v)
                .map(|(p, value)| Labeled {
                    name: p.as_str(),
                    value,
                })
                .collect()
        };
        let drop_value = |d: Drop| match d {
            Drop::Spoofed => live.traffic.spoofed,
            Drop::QueueFull => live.queue_full,
            Drop::RateLimit => live.traffic.rate_dropped,
            Drop::NoRoute => live.no_route,
            Drop::ClientToClient => live.client_to_client,
        };
        Snapshot {
            sessions: per_protocol(live.sessions),
            setups: per_protocol([load(&self.setups[0]), load(&self.setups[1])]),
            setup_failures: Stage::ALL
                .iter()
                .zip(&self.failures)
                .map(|(s, v)| Labeled {
                    name: s.as_str(),
                    value: load(v),
                })
                .collect(),
            auth: Method::ALL
                .iter()
                .enumerate()
                .map(|(i, m)| AuthCount {
                    method: m.as_str(),
                    success: load(&self.auth_ok[i]),
                    failure: load(&self.auth_failed[i]),
                })
                .collect(),
            pools: live.pools,
            traffic: live.traffic,
            drops: Drop::ALL
                .iter()
                .map(|&d| Labeled {
                    name: d.as_str(),
                    value: drop_value(d),
                })
                .collect(),
            admission: live.admission.into(),
            handshakes: hist.count,
            handshake_seconds_sum: hist.sum,
            handshake_seconds: hist,
            radius: live.radius.map(RadiusCounts::from),
            tasks: live.tasks,
            runtime_tasks: live.runtime_tasks,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live() -> Live {
        Live {
            sessions: [2, 1],
            pools: vec![],
            traffic: TrafficSnapshot {
                spoofed: 5,
                rate_dropped: 3,
                ..Default::default()
            },
            queue_full: 4,
            no_route: 5,
            client_to_client: 6,
            admission: super::super::admission::Snapshot {
                refused_per_source: 7,
                ..Default::default()
            },
            radius: None,
            tasks: 0,
            runtime_tasks: 0,
        }
    }

    #[test]
    fn radius_counters_only_with_radius() {
        let s = Stats::default();
        let json = serde_json::to_value(s.snapshot(live())).unwrap();
        assert!(json.get("radius").is_none(), "{json}");
        let c = radius::Counters {
            requests: 7,
            no_response: 2,
            unknown_identifier: 3,
            bad_message_authenticator: 1,
            ..Default::default()
        };
        let snap = s.snapshot(Live {
            radius: Some(c),
            ..live()
        });
        let r = snap.radius.unwrap();
        assert_eq!((r.requests, r.timeouts), (7, 2));
        let drop = |n| r.dropped.iter().find(|l| l.name == n).unwrap().value;
        assert_eq!(drop("unknown_id"), 3);
        assert_eq!(drop("bad_message_authenticator"), 1);
        assert_eq!(drop("bad_authenticator"), 0);
    }

    #[test]
    fn counters_land_under_their_labels() {
        let s = Stats::default();
        s.auth(Method::MsChapV2, false);
        s.auth(Method::MsChapV2, true);
        s.auth(Method::MsChapV2, false);
        s.failure(Stage::PppAuth);
        s.setup(Protocol::Iphttps, 0.5);
        let snap = s.snapshot(live());
        let ms = snap.auth.iter().find(|a| a.method == "mschapv2").unwrap();
        assert_eq!((ms.success, ms.failure), (1, 2));
        let stage = |n| {
            snap.setup_failures
                .iter()
                .find(|l| l.name == n)
                .unwrap()
                .value
        };
        assert_eq!(stage("ppp-auth"), 1);
        assert_eq!(stage("tls"), 0);
        assert_eq!(snap.setups[1].name, "iphttps");
        assert_eq!(snap.setups[1].value, 1);
        assert_eq!(snap.sessions[0].value, 2);
        assert_eq!(snap.drops[2].name, "rate_limit");
        assert_eq!(snap.drops[2].value, 3);
        assert_eq!(snap.drops[4].name, "client_to_client");
        assert_eq!(snap.drops[4].value, 6);
        assert_eq!(snap.admission.refused[1].name, "per_source");
        assert_eq!(snap.admission.refused[1].value, 7);
        assert_eq!(snap.drops[0].name, "spoofed");
        assert_eq!(snap.drops[0].value, 5);
        assert_eq!(snap.handshakes, 1);
        assert!((snap.handshake_seconds_sum - 0.5).abs() < 1e-9);
        let b = &snap.handshake_seconds.buckets;
        assert_eq!(b.last().unwrap().0, f64::INFINITY);
        let (le, n) = b.iter().find(|(_, n)| *n > 0).unwrap();
        assert_eq!((*le, *n), (0.64, 1), "0.5 s lands in the 0.64 s bucket");
    }
}
