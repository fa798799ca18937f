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
use std::time::Instant;

use session::sstp::Event;
use session::{Session, SstpSession};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tracing::{info, warn, Instrument};

use crate::driver::{Driver, TunSide, Turn};
use crate::io_util::BoxStream;
use crate::pool::Lease;
use crate::server::router::{self, Registration};
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
    c.eap_tls = shared.eap_tls.clone();
    c.mru = shared.settings.mtu;
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
    /// IPv6: the client's address and its route.
    ipv6: Option<(Ipv6Addr, Registration)>,
    user: Option<String>,
}

impl Held {
    /// Answers the session's questions and logs what happened.
    fn on_event(&mut self, s: &mut SstpSession, ev: Event) {
        let now = Instant::now();
        match ev {
            Event::AuthRequest(req) => {
                let verdict = self.shared.users.verify(&req.username, &req.proof);
                let ok = verdict.is_accept();
                info!(user = %req.username, method = %req.method, accepted = ok, "authentication");
                s.auth_verdict(now, req.id, verdict);
            }
            Event::Authenticated { username, method } => {
                info!(user = %username, method = %method, "authenticated");
                self.user = Some(username);
            }
            Event::AuthFailed { username, reason } => {
                warn!(user = username.as_deref().map(display), reason = %reason, "authentication failed");
            }
            Event::Connected => info!(
                user = self.user.as_deref().map(display),
                "SSTP call connected (crypto binding verified)"
            ),
            Event::NeedIpv4Address { username } => match self.shared.pool.allocate() {
                Some(lease) => {
                    let dns = &self.shared.settings.dns;
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
                    warn!(user = %username, pool = %self.shared.settings.pool, "address pool exhausted; IPv4 refused");
                    s.deny_ipv4(now);
                }
            },
            Event::Ipv4Up { peer, .. } => {
                self.route = self
                    .shared
                    .router
                    .register(IpAddr::V4(peer), self.tx.clone());
                info!(user = self.user.as_deref().map(display), address = %peer, "session up");
            }
            Event::Ipv4Down => self.route = None,
            Event::Ipv6Up {
                address, peer_iid, ..
            } => {
                let routed = address.and_then(|a| self.route_ipv6(a, peer_iid));
                s.confirm_ipv6(now, routed);
            }
            Event::Ipv6Down => self.ipv6 = None,
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
                self.route = None;
                self.ipv6 = None;
            }
            _ => {}
        }
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
        Some(addr)
    }
}

/// Runs one session to its end.
pub async fn run(
    stream: BoxStream,
    leftover: Vec<u8>,
    peer: SocketAddr,
    req: sstp::http::SstpRequest,
    hashes: CertHashes,
    shared: Arc<Shared>,
) {
    let corr = req.correlation_id.clone().unwrap_or_default();
    let span = tracing::info_span!("sstp", %peer, correlation_id = %corr);
    run_inner(stream, leftover, hashes, shared)
        .instrument(span)
        .await
}

async fn run_inner(
    mut stream: BoxStream,
    leftover: Vec<u8>,
    hashes: CertHashes,
    shared: Arc<Shared>,
) {
    let _active = ActiveGuard::new();
    let started = Instant::now();
    let response = sstp::http::server_response(&httpdate());
    if stream.write_all(&response).await.is_err() {
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
            mtu: shared.settings.mtu,
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
    let mut held = Held {
        shared: shared.clone(),
        tx,
        lease: None,
        route: None,
        ipv6: None,
        user: None,
    };
    if !leftover.is_empty() {
        s.handle_stream_bytes(now, &leftover);
    }
    let tun = TunSide::Routed {
        rx,
        tun: shared.tun.clone(),
    };
    let mut d = Driver::new(stream, tun);
    let mut shutdown = shared.shutdown.clone();
    loop {
        while let Some(ev) = s.poll_event() {
            held.on_event(&mut s, ev);
        }
        match d.turn(&mut s, &mut shutdown).await {
            Turn::Continue => {}
            // LCP Terminate first, then Call Disconnect (MS-SSTP §3.3.4).
            Turn::Stop => s.close(Instant::now(), "server shutting down"),
            Turn::Closed | Turn::TunFailed(_) => break,
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

/// The current time as an HTTP date (RFC 9110 §5.6.7).
pub fn httpdate() -> String {
    httphead::date::http_date(std::time::SystemTime::now())
}
