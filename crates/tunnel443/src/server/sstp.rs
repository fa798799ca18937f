//! One SSTP session on the server: the session crate's sans-IO
//! [`SstpSession`] (SSTP engine per MS-SSTP §3.3, PPP as authenticator,
//! anti-spoofing, IPv6 RA) run by the shared [`Driver`], with what only the
//! server has: the users file, an address from the pool and routes in the
//! shared TUN router.
//!
//! Everything the session holds (lease, routes) is released by drop, so a
//! session that ends in any way leaks nothing.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use session::sstp::Event;
use session::{Session, SstpSession};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, Notify};
use tracing::{info, warn, Instrument};

use crate::driver::{Driver, TunSide, Turn};
use crate::io_util::BoxStream;
use crate::pool::Lease;
use crate::server::admission::Ticket;
use crate::server::radius::auth::Authz;
use crate::server::radius::dae::{Change, Control};
use crate::server::registry::{Conn, EndCause, Protocol, SessionGuard};
use crate::server::router::{self, Registration};
use crate::server::stats::{Method, Stage};
use crate::server::throttle::Gate;
use crate::server::verdict::{self, Decision};
use crate::server::Shared;
use crate::tls::CertHashes;

static ACTIVE: AtomicUsize = AtomicUsize::new(0);

/// Sessions running now.
pub fn active() -> usize {
    ACTIVE.load(Ordering::Relaxed)
}

struct ActiveGuard;
impl ActiveGuard {
    fn new() -> Self {
        ACTIVE.fetch_add(1, Ordering::Relaxed);
        ActiveGuard
    }
}
impl Drop for ActiveGuard {
    fn drop(&mut self) {
        ACTIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What the request head asked for.
pub enum Request {
    Sstp(sstp::http::SstpRequest),
    Head { path: String },
    Other { method: String, path: String },
}

/// Parser for [`crate::io_util::read_head`].
pub fn parse_request(buf: &[u8]) -> Result<Option<(Request, usize)>, sstp::http::HttpError> {
    use sstp::http::RequestKind;
    Ok(sstp::http::parse_request(buf)?.map(|(kind, len)| {
        let r = match kind {
            RequestKind::Sstp(r) => Request::Sstp(r),
            RequestKind::Head { path } => Request::Head { path },
            RequestKind::Other { method, path } => Request::Other { method, path },
        };
        (r, len)
    }))
}

fn ppp_config(shared: &Shared) -> ppp::Config {
    use crate::config::AuthMethod as M;
    let mut c = ppp::Config::server();
    c.auth_protocols = shared
        .settings
        .auth
        .iter()
        .map(|m| match m {
            M::MsChapV2 => ppp::AuthProtocol::MsChapV2,
            M::EapMsChapV2 => ppp::AuthProtocol::Eap,
            M::ChapMd5 => ppp::AuthProtocol::ChapMd5,
            M::Pap => ppp::AuthProtocol::Pap,
            M::EapTls => ppp::AuthProtocol::Eap,
        })
        .collect();
    c.eap_tls = shared.eap_tls();
    c.eap_pass_through = shared
        .radius
        .as_ref()
        .is_some_and(|r| r.settings().eap_pass_through);
    c.mru = shared.settings.sstp_mru();
    c.ipv6 = shared.settings.ipv6_prefix.is_some();
    c
}

fn sstp_config(shared: &Shared, hashes: CertHashes) -> sstp::ServerConfig {
    let mut c = sstp::ServerConfig::new(hashes.sha1, hashes.sha256);
    let offer = shared.settings.hash_offer;
    c.hash_bitmask = if offer.sha1 { sstp::wire::HASH_SHA1 } else { 0 }
        | if offer.sha256 {
            sstp::wire::HASH_SHA256
        } else {
            0
        };
    c
}

/// What the server keeps for one session beside the sans-IO unit: the
/// resources it holds (released by drop) and what its log lines say.
struct Held {
    shared: Arc<Shared>,
    tx: router::PacketTx,
    lease: Option<Lease>,
    route: Option<Registration>,
    /// RADIUS Framed-Route networks routed to the session.
    framed: Option<super::framed_route::Installed>,
    /// RADIUS Framed-IPv6-Prefix and Delegated-IPv6-Prefix routed to the
    /// session (while its IPv6 is up).
    framed6: Option<super::framed_route::Installed>,
    /// IPv6: the client's address and its route.
    ipv6: Option<(Ipv6Addr, Registration)>,
    user: Option<String>,
    /// The session's entry in the registry (`ctl`, accounting).
    reg: SessionGuard,
    /// Call Connected verified / a network layer up: both make it "up".
    connected: bool,
    net_up: bool,
    auth_failed: bool,
    /// Verdicts decided in tasks of their own (RADIUS), and what wakes
    /// the driver when one is ready.
    decisions: (
        mpsc::UnboundedSender<Decision>,
        mpsc::UnboundedReceiver<Decision>,
    ),
    wake: Arc<Notify>,
    /// What RADIUS authorized (None: the users file decided).
    authz: Option<Authz>,
    /// Session-Timeout from RADIUS: the session ends then.
    ends_at: Option<Instant>,
    /// Idle-Timeout from RADIUS, with the packet count seen at the last check.
    idle: Option<(Duration, Instant, u64)>,
    /// Where CoA-Requests reach this session (once RADIUS accepted it).
    control: Option<Arc<Control>>,
    /// Admission's slot and the password throttle's view of the source.
    admitted: Admitted,
    /// The user of the login RADIUS is deciding (for the throttle).
    asked: Option<String>,
}

impl Drop for Held {
    fn drop(&mut self) {
        if let (Some(_), Some(r)) = (&self.control, &self.shared.radius) {
            r.controls.remove(self.reg.id());
        }
    }
}

impl Held {
    /// Marks the session up in the registry once it carries traffic.
    fn maybe_up(&self) {
        if self.connected && self.net_up && self.reg.mark_up() {
            let secs = self.reg.entry.conn.accepted.elapsed().as_secs_f64();
            self.shared.stats.setup(Protocol::Sstp, secs);
        }
    }

    /// Why the session ended, for the registry and the setup-failure stats.
    fn ended(&mut self, end: &session::sstp::Ending) {
        use sstp::CloseReason as R;
        let reason = match &end.peer_reason {
            Some(r) => format!("{}: {r}", end.sstp),
            None => end.sstp.to_string(),
        };
        let cause = match &end.sstp {
            _ if self.auth_failed => EndCause::AuthFailed,
            R::Disconnected { by_peer: true } | R::PeerAbort { .. } => EndCause::PeerClosed,
            R::LowerLayerClosed | R::HelloTimeout | R::Timeout => EndCause::Lost,
            _ => EndCause::Error,
        };
        if !self.reg.entry.is_up() && self.reg.kill_reason().is_none() {
            let stage = match &end.sstp {
                _ if self.auth_failed => Stage::PppAuth,
                R::Binding(_) => Stage::Binding,
                _ if self.user.is_some() && !self.net_up => Stage::Ncp,
                _ => Stage::Sstp,
            };
            self.shared.stats.failure(stage);
        }
        self.reg.set_ending(cause, reason);
    }

    /// Answers the session's questions and logs what happened.
    fn on_event(&mut self, s: &mut SstpSession, ev: Event) {
        let now = Instant::now();
        match ev {
            Event::AuthRequest(req) if verdict::users_only(&self.shared) => {
                let verdict = self
                    .admitted
                    .verify(&self.shared, &req.username, &req.proof);
                let ok = verdict.is_accept();
                if let Some(m) = Method::of(req.method) {
                    self.shared.stats.auth(m, ok);
                }
                info!(user = %req.username, method = %req.method, accepted = ok, "authentication");
                s.auth_verdict(now, req.id, verdict);
            }
            Event::AuthRequest(req) if self.admitted.locked_out(&self.shared, &req.username) => {
                // Refused unchecked: RADIUS never sees a guesser's tries.
                self.admitted.failed(&self.shared, &req.username);
                if let Some(m) = Method::of(req.method) {
                    self.shared.stats.auth(m, false);
                }
                info!(user = %req.username, method = %req.method, accepted = false, "authentication (source throttled)");
                s.auth_verdict(now, req.id, refused());
            }
            Event::AuthRequest(req) => {
                self.asked = Some(req.username.clone());
                let (shared, tx, wake) = (
                    self.shared.clone(),
                    self.decisions.0.clone(),
                    self.wake.clone(),
                );
                let peer = self.reg.entry.conn.peer.ip();
                crate::tasks::spawn(
                    async move {
                        let d = verdict::decide(shared, req, peer).await;
                        let _ = tx.send(d);
                        wake.notify_one();
                    }
                    .in_current_span(),
                );
            }
            Event::Authenticated { username, method } => {
                if method == ppp::AuthMethod::EapTls {
                    // Decided in the engine (no AuthRequest): counted here.
                    self.shared.stats.auth(Method::EapTls, true);
                }
                self.shared.throttle.succeeded(self.admitted.source);
                info!(user = %username, method = %method, "authenticated");
                self.reg.set_user(&username);
                self.reg.set_auth_method(&method.to_string());
                self.user = Some(username);
            }
            Event::AuthFailed { username, reason } => {
                if matches!(reason, ppp::AuthFailure::Tls { .. }) {
                    self.shared.stats.auth(Method::EapTls, false);
                }
                warn!(user = username.as_deref().map(display), reason = %reason, "authentication failed");
                self.auth_failed = true;
            }
            Event::Connected => {
                self.admitted.ticket.established();
                info!(
                    user = self.user.as_deref().map(display),
                    "SSTP call connected (crypto binding verified)"
                );
                self.connected = true;
                self.maybe_up();
            }
            Event::NeedIpv4Address { username } => match self.lease_for(&username) {
                Some(lease) => {
                    let dns = match &self.authz {
                        Some(a) if !a.dns.is_empty() => &a.dns,
                        _ => &self.shared.settings.dns,
                    };
                    let a = ppp::Ipv4Assignment {
                        local: self.shared.settings.pool.first_host(),
                        peer: lease.addr(),
                        dns1: dns.first().copied(),
                        dns2: dns.get(1).copied(),
                    };
                    self.lease = Some(lease);
                    s.assign_ipv4(now, a);
                }
                None => {
                    s.deny_ipv4(now);
                }
            },
            Event::Ipv4Up { peer, .. } => {
                self.route = self
                    .shared
                    .router
                    .register(IpAddr::V4(peer), self.tx.clone());
                if let Some(a) = self.authz.as_ref().filter(|a| !a.framed_routes.is_empty()) {
                    s.set_routed_v4(&a.framed_routes);
                    let user = self.user.as_deref().unwrap_or_default();
                    let f = super::framed_route::install(
                        &self.shared,
                        &a.framed_routes,
                        &self.tx,
                        user,
                    );
                    self.framed = Some(f);
                }
                info!(user = self.user.as_deref().map(display), address = %peer, "session up");
                self.reg.set_ipv4(Some(peer));
                self.net_up = true;
                self.maybe_up();
            }
            Event::Ipv4Down => {
                self.route = None;
                self.framed = None;
                self.reg.set_ipv4(None);
            }
            Event::Ipv6Up {
                address, peer_iid, ..
            } => {
                let routed = address.and_then(|a| self.route_ipv6(a, peer_iid));
                if routed.is_some() {
                    self.route_ipv6_prefixes();
                }
                s.confirm_ipv6(now, routed);
            }
            Event::Ipv6Down => {
                self.framed6 = None;
                self.ipv6 = None;
                self.reg.set_ipv6(None);
            }
            Event::Spoofed { source, dropped } => {
                let assigned = match source {
                    Some(IpAddr::V4(_)) => self.lease.as_ref().map(|l| IpAddr::V4(l.addr())),
                    Some(IpAddr::V6(_)) => self.ipv6.as_ref().map(|(a, _)| IpAddr::V6(*a)),
                    None => None,
                };
                warn!(
                    source = source.map(display),
                    assigned = assigned.map(display),
                    dropped,
                    "packet with a source address not assigned to this session dropped"
                );
            }
            Event::Closed(end) => {
                if let Some(r) = end.ppp {
                    info!(reason = %r, "PPP link down");
                }
                info!(reason = %end.sstp, "SSTP session closed");
                self.ended(&end);
                self.route = None;
                self.framed = None;
                self.framed6 = None;
                self.ipv6 = None;
            }
            _ => {}
        }
    }

    /// The address for the session: the one RADIUS chose (it must be a
    /// free address of a pool), else one from the pool RADIUS named, else
    /// one from the pool.
    fn lease_for(&self, username: &str) -> Option<Lease> {
        let a = self.authz.as_ref();
        crate::pool::lease_for(
            &self.shared.pool,
            &self.shared.named_pools,
            a.and_then(|a| a.framed_ip),
            a.and_then(|a| a.framed_pool.as_deref()),
        )
        .inspect_err(|why| warn!(user = %username, reason = %why, "no IPv4 address; IPv4 refused"))
        .ok()
    }

    /// Applies the verdicts that are ready.
    fn take_decisions(&mut self, s: &mut SstpSession) {
        while let Ok(d) = self.decisions.1.try_recv() {
            let now = Instant::now();
            if d.verdict.is_pending() {
                // EAP pass-through: the RADIUS server's next Request.
                s.auth_verdict(now, d.id, d.verdict);
                continue;
            }
            let ok = d.verdict.is_accept();
            if let Some(m) = Method::of(d.method) {
                self.shared.stats.auth(m, ok);
            }
            if let (false, Some(user)) = (ok, self.asked.take()) {
                self.admitted.failed(&self.shared, &user);
            }
            if ok {
                if let Some(a) = &d.authz {
                    self.arm(a, now);
                    self.set_rate(s, a.rate, now);
                    s.set_mtu_cap(a.framed_mtu);
                    self.use_ipv6_prefixes(s, a);
                    if let Some(r) = &self.shared.radius {
                        let c = Arc::new(Control {
                            wake: self.wake.clone(),
                            pending: Default::default(),
                        });
                        r.controls.insert(self.reg.id(), c.clone());
                        self.control = Some(c);
                        r.extras.set(
                            self.reg.id(),
                            crate::server::radius::acct::Extras {
                                class: a.class.clone(),
                                interim: a.acct_interim,
                                radius: true,
                                framed_ipv6_prefix: a
                                    .framed_ipv6_prefix
                                    .filter(|_| self.shared.settings.ipv6_prefix.is_some()),
                                delegated_ipv6_prefix: a
                                    .delegated_ipv6_prefix
                                    .filter(|_| self.shared.settings.ipv6_prefix.is_some()),
                            },
                        );
                    }
                }
                self.authz = d.authz;
            }
            s.auth_verdict(now, d.id, d.verdict);
        }
        let change = self
            .control
            .as_ref()
            .and_then(|c| c.pending.lock().expect("pending lock").take());
        if let Some(Change {
            rate,
            session_timeout,
        }) = change
        {
            let now = Instant::now();
            info!(
                user = self.user.as_deref().map(display),
                "CoA-Request applied"
            );
            if rate.is_some() {
                self.set_rate(s, rate, now);
            }
            if let Some(t) = session_timeout {
                self.ends_at = Some(now + t);
                self.wake_at(now + t);
            }
        }
    }

    /// Polices the session at `rate` (from RADIUS).
    fn set_rate(&self, s: &mut SstpSession, rate: Option<radius::rate::RateLimit>, now: Instant) {
        if let Some(r) = rate {
            info!(
                user = self.user.as_deref().map(display),
                down_kbps = r.down / 1000,
                up_kbps = r.up / 1000,
                "rate limit"
            );
            s.set_rate_limit(
                now,
                Some(session::rate::RateLimit {
                    down_bps: r.down,
                    up_bps: r.up,
                }),
            );
        }
    }

    /// Starts the Session-Timeout and Idle-Timeout clocks of an accept.
    fn arm(&mut self, a: &Authz, now: Instant) {
        if let Some(t) = a.session_timeout {
            self.ends_at = Some(now + t);
            self.wake_at(now + t);
        }
        if let Some(t) = a.idle_timeout {
            self.idle = Some((t, now + t, 0));
            self.wake_at(now + t);
        }
    }

    fn wake_at(&self, at: Instant) {
        let wake = self.wake.clone();
        crate::tasks::spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            wake.notify_one();
        });
    }

    /// Ends the session when a RADIUS time limit has passed.
    fn check_limits(&mut self, s: &SstpSession) {
        let now = Instant::now();
        if self.ends_at.is_some_and(|t| t <= now) {
            self.ends_at = None;
            info!(
                user = self.user.as_deref().map(display),
                "Session-Timeout reached; closing the session"
            );
            self.reg
                .entry
                .kill(EndCause::SessionTimeout, "session timeout");
        }
        if let Some((t, at, seen)) = self.idle {
            if at <= now {
                let c = s.counters();
                let packets = c.rx_packets + c.tx_packets;
                if packets == seen {
                    self.idle = None;
                    info!(
                        user = self.user.as_deref().map(display),
                        idle_s = t.as_secs(),
                        "Idle-Timeout reached; closing the session"
                    );
                    self.reg.entry.kill(EndCause::IdleTimeout, "idle timeout");
                } else {
                    self.idle = Some((t, now + t, packets));
                    self.wake_at(now + t);
                }
            }
        }
    }

    /// Framed-IPv6-Prefix and Delegated-IPv6-Prefix of an accept: the /64
    /// advertised to the client and the sources it may use (where IPv6 is
    /// on; without it they are ignored, logged).
    fn use_ipv6_prefixes(&self, s: &mut SstpSession, a: &Authz) {
        if a.framed_ipv6_prefix.is_none() && a.delegated_ipv6_prefix.is_none() {
            return;
        }
        if self.shared.settings.ipv6_prefix.is_none() {
            info!(
                user = self.asked.as_deref().map(display),
                "Framed-IPv6-Prefix / Delegated-IPv6-Prefix ignored: IPv6 is off (ipv6.prefix)"
            );
            return;
        }
        if let Some(p) = a.framed_ipv6_prefix {
            s.set_ipv6_prefix(p);
        }
        if let Some(d) = a.delegated_ipv6_prefix {
            s.set_routed_v6(&[d]);
        }
    }

    /// Routes the session's RADIUS IPv6 prefixes here once its IPv6 is up.
    fn route_ipv6_prefixes(&mut self) {
        let Some(a) = self.authz.as_ref() else { return };
        if a.framed_ipv6_prefix.is_none() && a.delegated_ipv6_prefix.is_none() {
            return;
        }
        let user = self.user.as_deref().unwrap_or_default();
        self.framed6 = Some(super::framed_route::install_v6(
            &self.shared,
            a.framed_ipv6_prefix,
            a.delegated_ipv6_prefix,
            &self.tx,
            user,
        ));
    }

    /// Routes the client's IPv6 address (`prefix::<its identifier>`) here.
    fn route_ipv6(&mut self, addr: Ipv6Addr, peer_iid: [u8; 8]) -> Option<Ipv6Addr> {
        let Some(route) = self
            .shared
            .router
            .register(IpAddr::V6(addr), self.tx.clone())
        else {
            let g = |i: usize| u16::from_be_bytes([peer_iid[i], peer_iid[i + 1]]);
            warn!(
                address = %addr,
                iid = %format_args!("{:x}:{:x}:{:x}:{:x}", g(0), g(2), g(4), g(6)),
                "IPv6 address already used by another session; no IPv6 for this one"
            );
            return None;
        };
        info!(user = self.user.as_deref().map(display), address = %addr, "IPv6 up");
        self.ipv6 = Some((addr, route));
        self.reg.set_ipv6(Some((addr, 128)));
        self.net_up = true;
        self.maybe_up();
        Some(addr)
    }
}

/// The answer to a login the throttle refuses unchecked.
fn refused() -> ppp::Verdict {
    ppp::Verdict::reject("Authentication failed")
}

/// What admission control knows of this connection: its slot, its source
/// (after a PROXY header) for password throttling, and a failed login's
/// answer held back ([`crate::server::throttle`]).
struct Admitted {
    ticket: Ticket,
    source: IpAddr,
    delay: Option<std::time::Duration>,
}

impl Admitted {
    /// Whether the throttle refuses this login unchecked (its source, or
    /// the user from a source that failed too, is locked out).
    fn locked_out(&self, shared: &Shared, user: &str) -> bool {
        let stats = shared.admission.stats();
        matches!(
            shared
                .throttle
                .gate(self.source, user, Instant::now(), stats),
            Gate::Refuse
        )
    }

    /// Counts a failed login; its answer is held back.
    fn failed(&mut self, shared: &Shared, user: &str) {
        let stats = shared.admission.stats();
        self.delay = Some(
            shared
                .throttle
                .failed(self.source, user, Instant::now(), stats),
        );
    }

    /// Checks a login against the users file through the throttle: a
    /// locked-out source is refused unchecked; a failure sets the delay of
    /// its answer.
    fn verify(&mut self, shared: &Shared, user: &str, proof: &ppp::Proof) -> ppp::Verdict {
        let verdict = if self.locked_out(shared, user) {
            refused()
        } else {
            shared.users.verify(user, proof)
        };
        if !verdict.is_accept() {
            self.failed(shared, user);
        }
        verdict
    }

    /// Waits out a failed login's delay (or until shutdown).
    async fn hold_back(&mut self, shutdown: &mut tokio::sync::watch::Receiver<bool>) {
        if let Some(d) = self.delay.take() {
            tokio::select! {
                _ = tokio::time::sleep(d) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

/// The span of a session's log lines (`sstp{peer=.. id=.. correlation_id=..}`);
/// [`crate::memory::reserve_span_slots`] sets up its slots at startup.
pub fn span(peer: SocketAddr, id: u64, correlation_id: &str) -> tracing::Span {
    tracing::info_span!("sstp", peer = %peer, id, correlation_id = %correlation_id)
}

/// Runs one session to its end.
pub async fn run(
    stream: BoxStream,
    leftover: Vec<u8>,
    conn: Conn,
    req: sstp::http::SstpRequest,
    hashes: CertHashes,
    shared: Arc<Shared>,
    ticket: Ticket,
) {
    let corr = req.correlation_id.clone().unwrap_or_default();
    let reg = shared.sessions.register(Protocol::Sstp, conn);
    let span = span(reg.entry.conn.peer, reg.id(), &corr);
    let admitted = Admitted {
        ticket,
        source: reg.entry.conn.peer.ip(),
        delay: None,
    };
    run_inner(stream, leftover, hashes, shared, reg, admitted)
        .instrument(span)
        .await
}

async fn run_inner(
    mut stream: BoxStream,
    leftover: Vec<u8>,
    hashes: CertHashes,
    shared: Arc<Shared>,
    mut reg: SessionGuard,
    admitted: Admitted,
) {
    let _active = ActiveGuard::new();
    let started = Instant::now();
    let response = sstp::http::server_response(&super::httpdate());
    if stream.write_all(&response).await.is_err() {
        reg.set_ending(
            EndCause::Lost,
            "the connection closed before the HTTP response",
        );
        shared.stats.failure(Stage::Http);
        return;
    }
    let now = Instant::now();
    let mut nonce = [0u8; 32];
    rand::fill(&mut nonce);
    let ipv6 = shared
        .settings
        .ipv6_prefix
        .map(|prefix| session::sstp::Ipv6Params {
            prefix,
            dns: shared.settings.ipv6_dns.clone(),
            mtu: shared.settings.sstp_mru(),
            router: super::own_ipv6(prefix),
        });
    let mut s = SstpSession::server(
        sstp_config(&shared, hashes),
        ppp_config(&shared),
        ipv6,
        now,
        nonce,
        Box::new(|b: &mut [u8]| rand::fill(b)),
    );
    let (tx, rx) = mpsc::channel(router::SESSION_QUEUE);
    let mut shutdown = reg.stop_signal();
    let tun = TunSide::Routed {
        rx,
        tun: shared.tun.clone(),
        refuse: shared.isolation(&tx),
    };
    let mut d = Driver::new(stream, tun);
    let mut held = Held {
        shared: shared.clone(),
        tx,
        lease: None,
        route: None,
        framed: None,
        framed6: None,
        ipv6: None,
        user: None,
        reg,
        connected: false,
        net_up: false,
        auth_failed: false,
        decisions: mpsc::unbounded_channel(),
        wake: d.wake.clone(),
        authz: None,
        ends_at: None,
        idle: None,
        control: None,
        admitted,
        asked: None,
    };
    if !leftover.is_empty() {
        s.handle_stream_bytes(now, &leftover);
    }
    loop {
        held.take_decisions(&mut s);
        held.check_limits(&s);
        while let Some(ev) = s.poll_event() {
            held.on_event(&mut s, ev);
        }
        held.admitted.hold_back(&mut shutdown).await;
        let turn = d.turn(&mut s, &mut shutdown).await;
        held.reg.store_counters(s.counters());
        match turn {
            Turn::Continue => {}
            // LCP Terminate first, then Call Disconnect (MS-SSTP §3.3.4).
            Turn::Stop => {
                let reason = held
                    .reg
                    .kill_reason()
                    .unwrap_or_else(|| "server shutting down".into());
                info!(reason = %reason, "disconnecting the client");
                s.close(Instant::now(), &reason)
            }
            Turn::Closed => break,
            Turn::TunFailed(e) => {
                warn!(error = %e, "TUN device failed; session ended");
                held.reg
                    .set_ending(EndCause::Error, format!("TUN device failed: {e}"));
                break;
            }
        }
    }
    while let Some(ev) = s.poll_event() {
        held.on_event(&mut s, ev);
    }
    let address = held.lease.take().map(|l| l.addr());
    let c = s.counters();
    info!(
        user = held.user.as_deref().map(display),
        address = address.map(display),
        duration_s = started.elapsed().as_secs(),
        rx_packets = c.rx_packets,
        rx_bytes = c.rx_bytes,
        tx_packets = c.tx_packets,
        tx_bytes = c.tx_bytes,
        spoofed = c.spoofed,
        tun_drops = d.tun_drops,
        tx_dropped = c.tx_dropped,
        pool_in_use = shared.pool.in_use(),
        "session ended"
    );
}
