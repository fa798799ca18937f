//! The live-session registry: every SSTP and IP-HTTPS session of the
//! server, from the moment its HTTP request is accepted until it ends.
//!
//! What it is for: `tunnel443 ctl` (list, show, kill), the metrics, and
//! RADIUS accounting and Disconnect/CoA (RFC 2866, RFC 5176), which find a
//! session by id, user or address and subscribe to its start and end.
//!
//! * [`Registry::register`] gives a session its [`SessionGuard`]; the guard
//!   removes the entry when dropped, on every exit path, and then sends
//!   [`Notice::Ended`] with the final counters and the [`EndCause`].
//! * The session fills in what it learns (user, auth method, addresses)
//!   with the guard's setters and calls [`SessionGuard::mark_up`] once it
//!   carries traffic ([`Notice::Up`], the moment for Accounting-Start).
//! * Traffic counters are atomics the session's driver loop stores once
//!   per turn (one batch), read without a lock.
//! * [`Entry::kill`] asks the session to end cleanly with a reason: the
//!   session's stop signal ([`SessionGuard::stop_signal`]) fires, SSTP
//!   sends LCP Terminate-Request with the reason and Call Disconnect,
//!   IP-HTTPS a final Router Advertisement with router lifetime 0.
//! * [`Registry::subscribe`] returns an unbounded receiver of every
//!   [`Notice`] from then on: nothing is lost to a slow subscriber.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::{mpsc, watch};

/// A session's number: unique for the life of the server process, never
/// reused. [`Entry::acct_session_id`] makes it unique across restarts.
pub type SessionId = u64;

/// The tunnel protocol of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Sstp,
    Iphttps,
}

impl Protocol {
    pub const ALL: [Protocol; 2] = [Protocol::Sstp, Protocol::Iphttps];

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Sstp => "sstp",
            Protocol::Iphttps => "iphttps",
        }
    }
}

/// What the listener knows of a connection when its session starts.
#[derive(Clone, Debug)]
pub struct Conn {
    /// The client's address: the real one behind a PROXY header.
    pub peer: SocketAddr,
    /// The address the client connected to: ours, or the load balancer's
    /// behind a PROXY header (RADIUS Called-Station-Id).
    pub called: Option<SocketAddr>,
    /// When the TCP connection was accepted (for the handshake latency).
    pub accepted: Instant,
    /// `TLSv1.3`, `TLSv1.2`; `None` in plain-HTTP mode.
    pub tls_version: Option<String>,
    /// The IANA name of the cipher suite, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub tls_suite: Option<String>,
}

impl Conn {
    /// A connection accepted now, without TLS details.
    pub fn plain(peer: SocketAddr) -> Self {
        Conn {
            peer,
            called: None,
            accepted: Instant::now(),
            tls_version: None,
            tls_suite: None,
        }
    }
}

/// `TLSv1.3`, `TLSv1.2` (rustls calls them `TLSv1_3`, ...).
pub fn tls_version_name(v: rustls::ProtocolVersion) -> String {
    match v.as_str() {
        Some(s) => s.replace('_', "."),
        None => format!("0x{:04x}", u16::from(v)),
    }
}

/// The subject of a certificate (DER) as an RFC 4514 string, e.g. `CN=client1`.
pub fn cert_subject(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(cert.subject().to_string())
}

/// Why a session ended (maps onto RADIUS Acct-Terminate-Cause, RFC 2866
/// §5.10, given in [`EndCause::acct_terminate_cause`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EndCause {
    /// The client disconnected (Call Disconnect, LCP Terminate, a close).
    PeerClosed,
    /// The connection was lost (reset, timeout, no close).
    Lost,
    /// Killed by an administrator (`ctl kill`) or a Disconnect-Request.
    AdminReset,
    /// The server is shutting down.
    Shutdown,
    /// Authentication failed.
    AuthFailed,
    /// RADIUS Session-Timeout reached.
    SessionTimeout,
    /// RADIUS Idle-Timeout reached.
    IdleTimeout,
    /// Anything else that ended it (protocol error, no address, ...).
    Error,
}

impl EndCause {
    /// RFC 2866 §5.10 Acct-Terminate-Cause. A shutdown is the
    /// administrator's (SIGTERM, `systemctl stop`): Admin-Reboot; NAS-Reboot
    /// is for a crash, which sends nothing.
    pub fn acct_terminate_cause(self) -> u32 {
        use ::radius::attr::terminate::*;
        match self {
            EndCause::PeerClosed => USER_REQUEST,
            EndCause::Lost => LOST_CARRIER,
            EndCause::AdminReset => ADMIN_RESET,
            EndCause::Shutdown => ADMIN_REBOOT,
            EndCause::AuthFailed => USER_ERROR,
            EndCause::SessionTimeout => SESSION_TIMEOUT,
            EndCause::IdleTimeout => IDLE_TIMEOUT,
            EndCause::Error => NAS_ERROR,
        }
    }
}

/// Traffic counters from the server's view: rx = from the client.
#[derive(Default)]
pub struct Traffic {
    rx_bytes: AtomicU64,
    rx_packets: AtomicU64,
    tx_bytes: AtomicU64,
    tx_packets: AtomicU64,
    spoofed: AtomicU64,
    rate_dropped: AtomicU64,
}

/// A copy of [`Traffic`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TrafficSnapshot {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    /// Packets from the client with a source it was not given (dropped).
    pub spoofed: u64,
    /// Packets over the session's rate limit (dropped, both directions).
    pub rate_dropped: u64,
}

impl Traffic {
    fn store(&self, c: &session::Counters) {
        self.rx_bytes.store(c.rx_bytes, Ordering::Relaxed);
        self.rx_packets.store(c.rx_packets, Ordering::Relaxed);
        self.tx_bytes.store(c.tx_bytes, Ordering::Relaxed);
        self.tx_packets.store(c.tx_packets, Ordering::Relaxed);
        self.spoofed.store(c.spoofed, Ordering::Relaxed);
        self.rate_dropped.store(c.rate_dropped, Ordering::Relaxed);
    }
    fn add(&self, t: TrafficSnapshot) {
        self.rx_bytes.fetch_add(t.rx_bytes, Ordering::Relaxed);
        self.rx_packets.fetch_add(t.rx_packets, Ordering::Relaxed);
        self.tx_bytes.fetch_add(t.tx_bytes, Ordering::Relaxed);
        self.tx_packets.fetch_add(t.tx_packets, Ordering::Relaxed);
        self.spoofed.fetch_add(t.spoofed, Ordering::Relaxed);
        self.rate_dropped
            .fetch_add(t.rate_dropped, Ordering::Relaxed);
    }
    pub fn snapshot(&self) -> TrafficSnapshot {
        TrafficSnapshot {
            rx_bytes: self.rx_bytes.load(Ordering::Relaxed),
            rx_packets: self.rx_packets.load(Ordering::Relaxed),
            tx_bytes: self.tx_bytes.load(Ordering::Relaxed),
            tx_packets: self.tx_packets.load(Ordering::Relaxed),
            spoofed: self.spoofed.load(Ordering::Relaxed),
            rate_dropped: self.rate_dropped.load(Ordering::Relaxed),
        }
    }
}

impl std::ops::Add for TrafficSnapshot {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        TrafficSnapshot {
            rx_bytes: self.rx_bytes + o.rx_bytes,
            rx_packets: self.rx_packets + o.rx_packets,
            tx_bytes: self.tx_bytes + o.tx_bytes,
            tx_packets: self.tx_packets + o.tx_packets,
            spoofed: self.spoofed + o.spoofed,
            rate_dropped: self.rate_dropped + o.rate_dropped,
        }
    }
}

/// What a session learns as it comes up.
#[derive(Clone, Default)]
struct Details {
    user: Option<String>,
    auth_method: Option<String>,
    ipv4: Option<Ipv4Addr>,
    /// SSTP: the client's address (/128); IP-HTTPS: its /64.
    ipv6: Option<(Ipv6Addr, u8)>,
    up: bool,
}

/// One live session.
pub struct Entry {
    pub id: SessionId,
    pub protocol: Protocol,
    pub conn: Conn,
    /// Wall-clock start (the HTTP request accepted).
    pub started: SystemTime,
    started_at: Instant,
    details: Mutex<Details>,
    pub traffic: Traffic,
    /// Set by [`Entry::kill`]: why, and the cause to report.
    kill: Mutex<Option<(EndCause, String)>>,
    stop: watch::Sender<bool>,
    boot: u64,
}

/// A session as `ctl` and the subscribers see it (the JSON of `ctl
/// sessions --json`; fields that do not apply are left out).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SessionInfo {
    pub id: SessionId,
    pub protocol: Protocol,
    /// `setup` until the session carries traffic, then `up`.
    pub state: &'static str,
    /// SSTP: the PPP user; IP-HTTPS: `cert:<subject>` or `anonymous`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `ADDR:PORT` of the client (behind PROXY: the real one).
    pub client: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<Ipv4Addr>,
    /// SSTP: an address; IP-HTTPS: the client's /64 (`prefix/64`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<String>,
    /// Unix time (seconds) of the start.
    pub started: u64,
    pub uptime_s: u64,
    #[serde(flatten)]
    pub traffic: TrafficSnapshot,
    /// `MS-CHAPv2`, `EAP-MSCHAPv2`, `PAP`, `CHAP-MD5`, `certificate`, `none`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_suite: Option<String>,
}

impl Entry {
    /// Asks the session to end cleanly; false if it is already ending.
    /// The reason goes to the client where the protocol has room for it
    /// (SSTP: the LCP Terminate-Request) and into the server's log.
    pub fn kill(&self, cause: EndCause, reason: &str) -> bool {
        {
            let mut k = self.kill.lock().expect("kill lock");
            if k.is_some() {
                return false;
            }
            *k = Some((cause, reason.to_string()));
        }
        self.stop.send_replace(true);
        true
    }

    /// The user (SSTP) or certificate subject (IP-HTTPS), once known.
    pub fn user(&self) -> Option<String> {
        self.details().user
    }

    /// Whether the session carries traffic (Accounting-Start was due).
    pub fn is_up(&self) -> bool {
        self.details().up
    }

    /// A session id unique across server restarts (RADIUS Acct-Session-Id):
    /// the server's start time and the id, in hex.
    pub fn acct_session_id(&self) -> String {
        format!("{:08x}{:08x}", self.boot, self.id)
    }

    /// Whether `a` is this session's IPv4 address, IPv6 address or in its /64.
    pub fn has_address(&self, a: IpAddr) -> bool {
        let d = self.details();
        match a {
            IpAddr::V4(v4) => d.ipv4 == Some(v4),
            IpAddr::V6(v6) => d.ipv6.is_some_and(|(net, len)| {
                let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
                u128::from(v6) & mask == u128::from(net) & mask
            }),
        }
    }

    /// A copy of everything known now.
    pub fn info(&self) -> SessionInfo {
        let d = self.details();
        SessionInfo {
            id: self.id,
            protocol: self.protocol,
            state: if d.up { "up" } else { "setup" },
            user: d.user,
            client: self.conn.peer.to_string(),
            ipv4: d.ipv4,
            ipv6: d.ipv6.map(|(a, len)| {
                if len == 128 {
                    a.to_string()
                } else {
                    format!("{a}/{len}")
                }
            }),
            started: self
                .started
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            uptime_s: self.started_at.elapsed().as_secs(),
            traffic: self.traffic.snapshot(),
            auth_method: d.auth_method,
            tls_version: self.conn.tls_version.clone(),
            tls_suite: self.conn.tls_suite.clone(),
        }
    }

    fn details(&self) -> Details {
        self.details.lock().expect("details lock").clone()
    }
}

/// A session's start or end, for subscribers (accounting).
#[allow(dead_code)] // read by RADIUS accounting (branch radius)
#[derive(Clone, Debug)]
pub enum Notice {
    /// The session carries traffic now (user and addresses are known).
    Up(SessionInfo),
    /// The session is gone; `info` has its final counters.
    Ended {
        info: SessionInfo,
        /// Whether [`Notice::Up`] was sent for it.
        was_up: bool,
        cause: EndCause,
        /// In plain words, e.g. `disconnected by the peer`.
        reason: String,
    },
}

/// Every live session.
pub struct Registry {
    sessions: Mutex<BTreeMap<SessionId, Arc<Entry>>>,
    next: AtomicU64,
    subscribers: Mutex<Vec<mpsc::UnboundedSender<Notice>>>,
    /// Set by [`Registry::close_all`]: sessions registered later are
    /// stopped at once.
    closing: Mutex<Option<(EndCause, String)>>,
    /// Traffic of the sessions that have ended.
    ended: Traffic,
    boot: u64,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            sessions: Mutex::default(),
            next: AtomicU64::new(1),
            subscribers: Mutex::default(),
            closing: Mutex::default(),
            ended: Traffic::default(),
            boot: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        }
    }
}

impl Registry {
    pub fn new() -> Arc<Self> {
        Arc::new(Registry::default())
    }

    /// Adds a session; it stays listed until the guard is dropped.
    pub fn register(self: &Arc<Self>, protocol: Protocol, conn: Conn) -> SessionGuard {
        let (stop, _) = watch::channel(false);
        let entry = Arc::new(Entry {
            id: self.next.fetch_add(1, Ordering::Relaxed),
            protocol,
            conn,
            started: SystemTime::now(),
            started_at: Instant::now(),
            details: Mutex::default(),
            traffic: Traffic::default(),
            kill: Mutex::default(),
            stop,
            boot: self.boot,
        });
        self.lock().insert(entry.id, entry.clone());
        if let Some((cause, reason)) = self.closing.lock().expect("closing lock").clone() {
            entry.kill(cause, &reason);
        }
        SessionGuard {
            registry: self.clone(),
            entry,
            ending: None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<SessionId, Arc<Entry>>> {
        self.sessions.lock().expect("registry lock")
    }

    pub fn get(&self, id: SessionId) -> Option<Arc<Entry>> {
        self.lock().get(&id).cloned()
    }

    /// Every live session, by id.
    pub fn list(&self) -> Vec<Arc<Entry>> {
        self.lock().values().cloned().collect()
    }

    /// The sessions of user `name` (exact match).
    pub fn by_user(&self, name: &str) -> Vec<Arc<Entry>> {
        self.filter(|e| e.user().as_deref() == Some(name))
    }

    /// The session with this RADIUS Acct-Session-Id ([`Entry::acct_session_id`]).
    #[allow(dead_code)] // RFC 5176 Disconnect/CoA (branch radius)
    pub fn by_acct_session_id(&self, acct: &str) -> Option<Arc<Entry>> {
        let id = acct.strip_prefix(&format!("{:08x}", self.boot))?;
        self.get(u64::from_str_radix(id, 16).ok()?)
    }

    /// The sessions that own address `a` (IP-HTTPS: any address of its /64).
    pub fn by_address(&self, a: IpAddr) -> Vec<Arc<Entry>> {
        self.filter(|e| e.has_address(a))
    }

    fn filter(&self, f: impl Fn(&Entry) -> bool) -> Vec<Arc<Entry>> {
        self.list().into_iter().filter(|e| f(e)).collect()
    }

    /// Live sessions of `protocol`.
    pub fn count(&self, protocol: Protocol) -> usize {
        self.lock()
            .values()
            .filter(|e| e.protocol == protocol)
            .count()
    }

    /// Traffic of every session since start: ended ones and live ones.
    pub fn total_traffic(&self) -> TrafficSnapshot {
        // Under the map's lock, as an ending session moves its counters to
        // `ended`: no session is counted twice or missed, so the totals
        // never go down (Prometheus would take that for a reset).
        let map = self.lock();
        let live = map
            .values()
            .fold(TrafficSnapshot::default(), |t, e| t + e.traffic.snapshot());
        live + self.ended.snapshot()
    }

    /// Every [`Notice`] from now on.
    #[allow(dead_code)] // RADIUS accounting (branch radius)
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<Notice> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.subscribers.lock().expect("subscribers lock").push(tx);
        rx
    }

    fn notify(&self, n: Notice) {
        let mut subs = self.subscribers.lock().expect("subscribers lock");
        subs.retain(|s| s.send(n.clone()).is_ok());
    }

    /// Kills every session, now and registered later (server shutdown).
    pub fn close_all(&self, cause: EndCause, reason: &str) {
        *self.closing.lock().expect("closing lock") = Some((cause, reason.to_string()));
        for e in self.list() {
            e.kill(cause, reason);
        }
    }
}

/// A session's hold on its entry: dropped when the session ends.
pub struct SessionGuard {
    registry: Arc<Registry>,
    pub entry: Arc<Entry>,
    ending: Option<(EndCause, String)>,
}

impl SessionGuard {
    pub fn id(&self) -> SessionId {
        self.entry.id
    }

    fn update(&self, f: impl FnOnce(&mut Details)) {
        f(&mut self.entry.details.lock().expect("details lock"));
    }

    pub fn set_user(&self, user: &str) {
        self.update(|d| d.user = Some(user.to_string()));
    }

    pub fn set_auth_method(&self, method: &str) {
        self.update(|d| d.auth_method = Some(method.to_string()));
    }

    pub fn set_ipv4(&self, a: Option<Ipv4Addr>) {
        self.update(|d| d.ipv4 = a);
    }

    /// SSTP: `(address, 128)`; IP-HTTPS: `(its /64, 64)`.
    pub fn set_ipv6(&self, a: Option<(Ipv6Addr, u8)>) {
        self.update(|d| d.ipv6 = a);
    }

    /// The session carries traffic: sends [`Notice::Up`] (once); returns
    /// true the first time.
    pub fn mark_up(&self) -> bool {
        let first = {
            let mut d = self.entry.details.lock().expect("details lock");
            !std::mem::replace(&mut d.up, true)
        };
        if first {
            self.registry.notify(Notice::Up(self.entry.info()));
        }
        first
    }

    /// Stores the session's counters (once per driver turn).
    pub fn store_counters(&self, c: &session::Counters) {
        self.entry.traffic.store(c);
    }

    /// Fires when the session is to end ([`Entry::kill`]); pass it to the
    /// driver as its stop signal.
    pub fn stop_signal(&self) -> watch::Receiver<bool> {
        self.entry.stop.subscribe()
    }

    /// Why the session was told to stop (the text for the client).
    pub fn kill_reason(&self) -> Option<String> {
        self.entry
            .kill
            .lock()
            .expect("kill lock")
            .as_ref()
            .map(|(_, r)| r.clone())
    }

    /// Records why the session ended (a kill's cause wins over this).
    pub fn set_ending(&mut self, cause: EndCause, reason: impl Into<String>) {
        self.ending = Some((cause, reason.into()));
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        let info = self.entry.info();
        {
            let mut map = self.registry.lock();
            map.remove(&self.entry.id);
            self.registry.ended.add(self.entry.traffic.snapshot());
        }
        let killed = self.entry.kill.lock().expect("kill lock").clone();
        let (cause, reason) = killed
            .or_else(|| self.ending.take())
            .unwrap_or((EndCause::Error, "ended during setup".to_string()));
        let was_up = self.entry.is_up();
        self.registry.notify(Notice::Ended {
            info,
            was_up,
            cause,
            reason,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Conn {
        Conn::plain("192.0.2.7:40000".parse().unwrap())
    }

    #[test]
    fn terminate_causes_by_name() {
        let name = |c: EndCause| ::radius::attr::terminate::name(c.acct_terminate_cause());
        assert_eq!(name(EndCause::PeerClosed), Some("User-Request"));
        assert_eq!(name(EndCause::Lost), Some("Lost-Carrier"));
        assert_eq!(name(EndCause::AdminReset), Some("Admin-Reset"));
        assert_eq!(name(EndCause::Shutdown), Some("Admin-Reboot"));
        assert_eq!(name(EndCause::AuthFailed), Some("User-Error"));
        assert_eq!(name(EndCause::SessionTimeout), Some("Session-Timeout"));
        assert_eq!(name(EndCause::IdleTimeout), Some("Idle-Timeout"));
        assert_eq!(name(EndCause::Error), Some("NAS-Error"));
    }

    #[test]
    fn lookup_and_removal_on_drop() {
        let r = Registry::new();
        let g1 = r.register(Protocol::Sstp, conn());
        let g2 = r.register(Protocol::Iphttps, conn());
        assert_ne!(g1.id(), g2.id());
        g1.set_user("alice");
        g1.set_ipv4(Some("10.44.0.2".parse().unwrap()));
        g1.set_ipv6(Some(("fd00::5".parse().unwrap(), 128)));
        g2.set_ipv6(Some(("fd00:1:0:1::".parse().unwrap(), 64)));
        assert_eq!(r.by_user("alice").len(), 1);
        assert!(r.by_user("bob").is_empty());
        let ids = |v: Vec<Arc<Entry>>| v.iter().map(|e| e.id).collect::<Vec<_>>();
        assert_eq!(ids(r.by_address("10.44.0.2".parse().unwrap())), [g1.id()]);
        assert_eq!(ids(r.by_address("fd00::5".parse().unwrap())), [g1.id()]);
        assert!(r.by_address("fd00::6".parse().unwrap()).is_empty());
        assert_eq!(
            ids(r.by_address("fd00:1:0:1:aa::1".parse().unwrap())),
            [g2.id()]
        );
        assert_eq!(r.count(Protocol::Sstp), 1);
        assert_eq!(r.count(Protocol::Iphttps), 1);
        let acct = r.get(g1.id()).unwrap().acct_session_id();
        assert_eq!(acct.len(), 16);
        assert_eq!(r.by_acct_session_id(&acct).unwrap().id, g1.id());
        assert!(r.by_acct_session_id("00000000000000ff").is_none());
        let id = g1.id();
        drop(g1);
        assert!(r.get(id).is_none());
        assert_eq!(r.list().len(), 1);
    }

    #[test]
    fn kill_fires_the_stop_signal_once_with_its_reason() {
        let r = Registry::new();
        let g = r.register(Protocol::Sstp, conn());
        let stop = g.stop_signal();
        assert!(!*stop.borrow());
        let e = r.get(g.id()).unwrap();
        assert!(e.kill(EndCause::AdminReset, "killed by the administrator"));
        assert!(!e.kill(EndCause::AdminReset, "again"));
        assert!(*stop.borrow());
        assert_eq!(
            g.kill_reason().as_deref(),
            Some("killed by the administrator")
        );
    }

    #[test]
    fn notices_carry_final_counters_and_the_cause() {
        let r = Registry::new();
        let mut rx = r.subscribe();
        let mut g = r.register(Protocol::Sstp, conn());
        g.set_user("alice");
        assert!(g.mark_up());
        assert!(!g.mark_up(), "Up is sent once");
        g.store_counters(&session::Counters {
            rx_bytes: 100,
            rx_packets: 2,
            tx_bytes: 300,
            tx_packets: 3,
            ..Default::default()
        });
        g.set_ending(EndCause::PeerClosed, "disconnected by the peer");
        drop(g);
        match rx.try_recv().unwrap() {
            Notice::Up(i) => assert_eq!(i.user.as_deref(), Some("alice")),
            other => panic!("expected Up, got {other:?}"),
        }
        match rx.try_recv().unwrap() {
            Notice::Ended {
                info,
                was_up,
                cause,
                reason,
            } => {
                assert!(was_up);
                assert_eq!(cause, EndCause::PeerClosed);
                assert_eq!(reason, "disconnected by the peer");
                assert_eq!(info.traffic.tx_bytes, 300);
            }
            other => panic!("expected Ended, got {other:?}"),
        }
        assert_eq!(r.total_traffic().rx_bytes, 100);
    }

    #[test]
    fn a_kill_wins_over_the_sessions_own_ending_and_close_all_reaches_late_sessions() {
        let r = Registry::new();
        let mut rx = r.subscribe();
        r.close_all(EndCause::Shutdown, "server shutting down");
        let mut g = r.register(Protocol::Iphttps, conn());
        assert!(*g.stop_signal().borrow(), "registered after close_all");
        g.set_ending(EndCause::PeerClosed, "closed by the client");
        drop(g);
        match rx.try_recv().unwrap() {
            Notice::Ended { cause, was_up, .. } => {
                assert_eq!(cause, EndCause::Shutdown);
                assert!(!was_up);
            }
            other => panic!("expected Ended, got {other:?}"),
        }
    }

    #[test]
    fn json_leaves_out_what_does_not_apply() {
        let r = Registry::new();
        let g = r.register(Protocol::Iphttps, conn());
        g.set_ipv6(Some(("fd00:1:0:1::".parse().unwrap(), 64)));
        let v = serde_json::to_value(g.entry.info()).unwrap();
        assert_eq!(v["protocol"], "iphttps");
        assert_eq!(v["ipv6"], "fd00:1:0:1::/64");
        assert_eq!(v["state"], "setup");
        assert_eq!(v["rx_bytes"], 0);
        assert!(v.get("ipv4").is_none() && v.get("user").is_none());
    }
}
