//! One SSTP session on the server: the TLS (or plain-HTTP) stream, the SSTP
//! engine (MS-SSTP §3.3), the PPP engine as authenticator, an address from
//! the pool and a route in the shared TUN router.
//!
//! The loop is: read the stream -> SSTP -> PPP -> TUN; TUN queue -> PPP
//! framing -> SSTP -> one write; timers of both engines on one sleep.
//! Everything the session holds (lease, route) is released by drop, so a
//! session that ends in any way leaks nothing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tracing::{debug, info, warn, Instrument};

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
    Head,
    Other { method: String, path: String },
}

/// Parser for [`crate::io_util::read_head`].
pub fn parse_request(buf: &[u8]) -> Result<Option<(Request, usize)>, sstp::http::HttpError> {
    use sstp::http::RequestKind;
    Ok(sstp::http::parse_request(buf)?.map(|(kind, len)| {
        let r = match kind {
            RequestKind::Sstp(r) => Request::Sstp(r),
            RequestKind::Head => Request::Head,
            RequestKind::Other { method, path } => Request::Other { method, path },
        };
        (r, len)
    }))
}

/// Random bytes from the OS for the engines (nonces, challenges, magic numbers).
struct OsRng;
impl ppp::Rng for OsRng {
    fn fill(&mut self, buf: &mut [u8]) {
        rand::fill(buf);
    }
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
        })
        .collect();
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

/// IPv6 over IPv6CP (RFC 5072): the client forms `prefix::<peer IID>` from
/// our Router Advertisement; we route exactly that address to the session.
struct Ipv6Link {
    addr: Ipv6Addr,
    local_ll: Ipv6Addr,
    _route: Registration,
}

/// Where a packet from the client goes (anti-spoofing, DESIGN "Data plane").
#[derive(Debug, PartialEq, Eq)]
enum FromClient {
    /// From the session's own address, to a routable destination: to the
    /// TUN device.
    Forward,
    /// Traffic of the point-to-point link itself: an IPv6 link-local or
    /// unspecified source (the client's kernel picks its own link-local
    /// address, which need not be `fe80::<IPv6CP identifier>`; DAD and MLD
    /// use `::`), or a link-scope destination. "Routers must not forward
    /// any packets with Link-Local source or destination addresses"
    /// (RFC 4291 §2.5.6): handled here, never counted as spoofing.
    Link,
    /// Any other source: dropped and counted.
    Spoofed,
}

/// Whether `a` belongs to the link rather than the network: link-local
/// unicast (fe80::/10) or multicast of interface- or link-local scope.
fn link_scope(a: Ipv6Addr) -> bool {
    let o = a.octets();
    (o[0] == 0xfe && o[1] & 0xc0 == 0x80) || (o[0] == 0xff && o[1] & 0x0f <= 2)
}

/// Decides on a packet the client sent, given the session's addresses.
fn classify(pkt: &[u8], v4: Option<Ipv4Addr>, v6: Option<Ipv6Addr>) -> FromClient {
    let (Some(src), Some(dst)) = (router::source(pkt), router::destination(pkt)) else {
        return FromClient::Spoofed;
    };
    match (src, dst) {
        (IpAddr::V6(s), _) if s.is_unspecified() || link_scope(s) => FromClient::Link,
        (IpAddr::V6(s), IpAddr::V6(d)) if Some(s) == v6 => {
            if link_scope(d) {
                FromClient::Link
            } else {
                FromClient::Forward
            }
        }
        (IpAddr::V4(s), _) if Some(s) == v4 => FromClient::Forward,
        _ => FromClient::Spoofed,
    }
}

/// Per-session counters, logged when it ends.
#[derive(Default, Debug)]
struct Counters {
    rx_packets: u64,
    rx_bytes: u64,
    tx_packets: u64,
    tx_bytes: u64,
    spoofed: u64,
    tun_drops: u64,
    tx_dropped: u64,
}

struct Session {
    shared: Arc<Shared>,
    sstp: sstp::Server,
    ppp: ppp::Ppp,
    lease: Option<Lease>,
    route: Option<Registration>,
    /// IPv6: the client's address, its route, and both link-local addresses.
    ipv6: Option<Ipv6Link>,
    tx: mpsc::Sender<Vec<u8>>,
    user: Option<String>,
    counters: Counters,
    out: Vec<u8>,
    frame: Vec<u8>,
}

impl Session {
    /// Moves events between the engines until neither has anything left,
    /// then collects the bytes to send.
    fn pump(&mut self, now: Instant) {
        loop {
            let mut busy = false;
            while let Some(ev) = self.sstp.poll_event() {
                busy = true;
                self.on_sstp_event(now, ev);
            }
            while let Some(f) = self.ppp.poll_transmit() {
                busy = true;
                if let Err(e) = self.sstp.send_ppp_frame(&f) {
                    debug!(error = %e, "PPP frame not sent");
                }
            }
            while let Some(ev) = self.ppp.poll_event() {
                busy = true;
                self.on_ppp_event(now, ev);
            }
            if !busy {
                break;
            }
        }
        while self.sstp.poll_transmit(&mut self.out) {}
    }

    fn on_sstp_event(&mut self, now: Instant, ev: sstp::Event) {
        match ev {
            sstp::Event::PppFrame(f) => self.on_ppp_frame(now, &f),
            sstp::Event::PppControlAllowed => self.ppp.open(now),
            sstp::Event::Connected => {
                info!(
                    user = self.user.as_deref().map(display),
                    "SSTP call connected (crypto binding verified)"
                )
            }
            sstp::Event::Closed { reason } => {
                info!(reason = %reason, "SSTP session closed");
                self.ppp.lower_down(now);
            }
            other => debug!(event = ?other, "SSTP event"),
        }
    }

    fn on_ppp_frame(&mut self, now: Instant, f: &[u8]) {
        let Some(inbound) = self.ppp.handle_frame(now, f) else {
            return;
        };
        let pkt = match inbound {
            ppp::Inbound::Ipv4(p) | ppp::Inbound::Ipv6(p) => p,
        };
        let v4 = self.lease.as_ref().map(|l| l.addr());
        let v6 = self.ipv6.as_ref().map(|l| l.addr);
        match classify(pkt, v4, v6) {
            FromClient::Forward => {
                self.counters.rx_packets += 1;
                self.counters.rx_bytes += pkt.len() as u64;
                if self.shared.tun.try_send(pkt).is_err() {
                    self.counters.tun_drops += 1;
                }
            }
            FromClient::Link => {
                // A Router Solicitation gets an advertisement (RFC 4861
                // §6.2.6); the rest (MLD reports, DAD) ends here.
                if let Ok(rs) = iphttps::RouterSolicit::parse(pkt) {
                    self.send_ra(rs.reply_to());
                }
            }
            FromClient::Spoofed => {
                self.counters.spoofed += 1;
                if self.counters.spoofed.is_power_of_two() {
                    let assigned = match router::source(pkt) {
                        Some(IpAddr::V4(_)) => v4.map(IpAddr::V4),
                        Some(IpAddr::V6(_)) => v6.map(IpAddr::V6),
                        None => None,
                    };
                    warn!(
                        source = router::source(pkt).map(display),
                        assigned = assigned.map(display),
                        dropped = self.counters.spoofed,
                        "packet with a source address not assigned to this session dropped"
                    );
                }
            }
        }
    }

    fn on_ppp_event(&mut self, now: Instant, ev: ppp::Event) {
        match ev {
            ppp::Event::AuthRequest(req) => {
                let verdict = self.shared.users.verify(&req.username, &req.proof);
                let ok = verdict.is_accept();
                info!(user = %req.username, method = %req.method, accepted = ok, "authentication");
                if let Err(e) = self.ppp.auth_verdict(now, req.id, verdict) {
                    debug!(error = %e, "late verdict");
                }
            }
            ppp::Event::Authenticated {
                hlak,
                username,
                method,
            } => {
                info!(user = %username, method = %method, "authenticated");
                self.user = Some(username);
                self.sstp.higher_layer_authenticated(now, hlak.0);
            }
            ppp::Event::AuthFailed { username, reason } => {
                warn!(user = username.as_deref().map(display), reason = %reason, "authentication failed");
            }
            ppp::Event::NeedIpv4Address { username } => match self.shared.pool.allocate() {
                Some(lease) => {
                    let dns = &self.shared.settings.dns;
                    let a = ppp::Ipv4Assignment {
                        local: self.shared.settings.pool.first_host(),
                        peer: lease.addr(),
                        dns1: dns.first().copied(),
                        dns2: dns.get(1).copied(),
                    };
                    self.lease = Some(lease);
                    let _ = self.ppp.set_ipv4(now, a);
                }
                None => {
                    warn!(user = %username, pool = %self.shared.settings.pool, "address pool exhausted; IPv4 refused");
                    let _ = self.ppp.deny_ipv4(now);
                }
            },
            ppp::Event::Ipv4Up { peer, .. } => {
                self.route = self
                    .shared
                    .router
                    .register(IpAddr::V4(peer), self.tx.clone());
                info!(user = self.user.as_deref().map(display), address = %peer, "session up");
            }
            ppp::Event::Ipv6Up {
                local_iid,
                peer_iid,
            } => self.ipv6_up(local_iid, peer_iid),
            ppp::Event::Ipv6Down => self.ipv6 = None,
            ppp::Event::Ipv4Down => {
                self.route = None;
            }
            ppp::Event::LinkDown { reason } => {
                info!(reason = %reason, "PPP link down");
                self.route = None;
                self.sstp.disconnect(now);
            }
            other => debug!(event = ?other, "PPP event"),
        }
    }

    fn ipv6_up(&mut self, local_iid: [u8; 8], peer_iid: [u8; 8]) {
        let Some(prefix) = self.shared.settings.ipv6_prefix else {
            return;
        };
        let Ok(iid) = iphttps::InterfaceId::new(peer_iid) else {
            let g = |i: usize| u16::from_be_bytes([peer_iid[i], peer_iid[i + 1]]);
            warn!(
                iid = %format_args!("{:x}:{:x}:{:x}:{:x}", g(0), g(2), g(4), g(6)),
                "reserved IPv6 interface identifier; no IPv6 for this session"
            );
            return;
        };
        let addr = prefix.address(iid);
        let Some(route) = self
            .shared
            .router
            .register(IpAddr::V6(addr), self.tx.clone())
        else {
            warn!(address = %addr, "IPv6 address already used by another session; no IPv6 for this one");
            return;
        };
        info!(user = self.user.as_deref().map(display), address = %addr, "IPv6 up");
        self.ipv6 = Some(Ipv6Link {
            addr,
            local_ll: crate::tun::link_local(local_iid),
            _route: route,
        });
        self.send_ra(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1));
    }

    /// A Router Advertisement of the session's /64 (RFC 4861 §6.2.3).
    fn send_ra(&mut self, to: Ipv6Addr) {
        let (Some(l), Some(prefix)) = (&self.ipv6, self.shared.settings.ipv6_prefix) else {
            return;
        };
        let mut ra = iphttps::RouterAdvert::for_client(prefix, &self.shared.settings.ipv6_dns);
        ra.mtu = Some(u32::from(self.shared.settings.mtu));
        let Ok(pkt) = ra.to_packet(l.local_ll, to) else {
            return;
        };
        self.frame.clear();
        if self.ppp.encapsulate_ip(&pkt, &mut self.frame).is_ok() {
            let _ = self.sstp.send_ppp_frame(&self.frame);
        }
    }

    /// Frames packets from the TUN for this session (a batch of them).
    fn on_tun_packets(&mut self, first: Vec<u8>, rx: &mut mpsc::Receiver<Vec<u8>>) {
        let mut next = Some(first);
        let mut n = 0;
        while let Some(pkt) = next.take() {
            self.frame.clear();
            if self.ppp.encapsulate_ip(&pkt, &mut self.frame).is_ok()
                && self.sstp.send_ppp_frame(&self.frame).is_ok()
            {
                self.counters.tx_packets += 1;
                self.counters.tx_bytes += pkt.len() as u64;
            } else {
                // Not yet connected, NCP down, or over the peer's MRU.
                self.counters.tx_dropped += 1;
            }
            n += 1;
            if n < 64 {
                next = rx.try_recv().ok();
            }
        }
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
    run_inner(stream, leftover, req, hashes, shared)
        .instrument(span)
        .await
}

async fn run_inner(
    mut stream: BoxStream,
    leftover: Vec<u8>,
    _req: sstp::http::SstpRequest,
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
    let (tx, mut rx) = mpsc::channel(router::SESSION_QUEUE);
    let mut s = Session {
        sstp: sstp::Connection::server(sstp_config(&shared, hashes), now, nonce),
        ppp: ppp::Ppp::new(
            ppp_config(&shared),
            ppp::Role::Authenticator,
            now,
            Box::new(OsRng),
        ),
        shared: shared.clone(),
        lease: None,
        route: None,
        ipv6: None,
        tx,
        user: None,
        counters: Counters::default(),
        out: Vec::with_capacity(16384),
        frame: Vec::with_capacity(4096),
    };
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut shutdown = shared.shutdown.clone();
    let mut rbuf = vec![0u8; 32768];
    if !leftover.is_empty() {
        s.sstp.handle_input(now, &leftover);
    }
    let mut stopping = false;
    loop {
        s.pump(Instant::now());
        if !s.out.is_empty() {
            if let Err(e) = wr.write_all(&s.out).await {
                debug!(error = %e, "write failed");
                break;
            }
            s.out.clear();
        }
        if s.sstp.is_closed() {
            break;
        }
        let deadline = [s.sstp.poll_timeout(), s.ppp.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = rd.read(&mut rbuf) => match r {
                Ok(0) | Err(_) => {
                    debug!("connection closed by the client");
                    s.ppp.lower_down(Instant::now());
                    s.sstp.lower_layer_closed(Instant::now());
                    s.pump(Instant::now());
                    break;
                }
                Ok(n) => s.sstp.handle_input(Instant::now(), &rbuf[..n]),
            },
            Some(pkt) = rx.recv() => s.on_tun_packets(pkt, &mut rx),
            _ = sleep => {
                let now = Instant::now();
                s.sstp.handle_timeout(now);
                s.ppp.handle_timeout(now);
            }
            _ = shutdown.changed(), if !stopping => {
                stopping = true;
                // LCP Terminate first, then Call Disconnect (MS-SSTP §3.3.4).
                let now = Instant::now();
                s.ppp.close(now, "server shutting down");
                s.pump(now);
                s.sstp.disconnect(now);
            }
        }
    }
    let _ = wr.shutdown().await;
    s.route = None;
    s.ipv6 = None;
    let address = s.lease.take().map(|l| l.addr());
    let c = &s.counters;
    info!(
        user = s.user.as_deref().map(display),
        address = address.map(display),
        duration_s = started.elapsed().as_secs(),
        rx_packets = c.rx_packets,
        rx_bytes = c.rx_bytes,
        tx_packets = c.tx_packets,
        tx_bytes = c.tx_bytes,
        spoofed = c.spoofed,
        tun_drops = c.tun_drops,
        tx_dropped = c.tx_dropped,
        pool_in_use = shared.pool.in_use(),
        "session ended"
    );
}

/// The current time as an HTTP date (RFC 7231 §7.1.1.1).
pub fn httpdate() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    httpdate_at(secs)
}

fn httpdate_at(secs: u64) -> String {
    let days = secs / 86400;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    let wd = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    let mon = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(mo - 1) as usize];
    format!("{wd}, {d:02} {mon} {y} {h:02}:{m:02}:{s:02} GMT")
}

#[cfg(test)]
mod tests {
    use super::{classify, FromClient};
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    fn packet(src: &str, dst: &str) -> Vec<u8> {
        match (src.parse().unwrap(), dst.parse().unwrap()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let mut p = vec![0x45, 0, 0, 20, 0, 0, 0, 0, 64, 1, 0, 0];
                p.extend_from_slice(&s.octets());
                p.extend_from_slice(&d.octets());
                p
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let mut p = vec![0x60, 0, 0, 0, 0, 0, 58, 255];
                p.extend_from_slice(&s.octets());
                p.extend_from_slice(&d.octets());
                p
            }
            _ => unreachable!(),
        }
    }

    #[test]
    fn anti_spoofing_lets_link_traffic_through_to_the_session_only() {
        let v4: Option<Ipv4Addr> = Some("10.44.0.2".parse().unwrap());
        let v6: Option<Ipv6Addr> = Some("fd44:443::ecab:83cd:3903:83da".parse().unwrap());
        let c = |src: &str, dst: &str| classify(&packet(src, dst), v4, v6);
        // The session's own addresses go to the TUN device.
        assert_eq!(c("10.44.0.2", "10.44.0.1"), FromClient::Forward);
        assert_eq!(
            c("fd44:443::ecab:83cd:3903:83da", "fd44:443::1"),
            FromClient::Forward
        );
        // The client's link-local address, whatever its identifier (the
        // kernel's own, not the IPv6CP one), and `::` (DAD, MLD): the link's.
        for src in [
            "fe80::8660:940e:603c:56c8",
            "fe80::ecab:83cd:3903:83da",
            "::",
        ] {
            for dst in ["ff02::2", "ff02::16", "fe80::1", "fd44:443::1"] {
                assert_eq!(c(src, dst), FromClient::Link, "{src} -> {dst}");
            }
        }
        // Its global address to a link-scope destination is not forwarded.
        assert_eq!(
            c("fd44:443::ecab:83cd:3903:83da", "ff02::1"),
            FromClient::Link
        );
        assert_eq!(
            c("fd44:443::ecab:83cd:3903:83da", "fe80::1"),
            FromClient::Link
        );
        // Anyone else's address is spoofing.
        assert_eq!(c("10.44.0.3", "10.44.0.1"), FromClient::Spoofed);
        assert_eq!(c("fd44:443::1:2", "fd44:443::1"), FromClient::Spoofed);
        assert_eq!(c("2001:db8::1", "ff02::1"), FromClient::Spoofed);
        // Without an IPv6 address, only link traffic is accepted.
        assert_eq!(
            classify(
                &packet("fd44:443::ecab:83cd:3903:83da", "fd44:443::1"),
                v4,
                None
            ),
            FromClient::Spoofed
        );
        assert_eq!(
            classify(&packet("fe80::1:2", "ff02::2"), v4, None),
            FromClient::Link
        );
        assert_eq!(classify(&[0x45, 0], v4, v6), FromClient::Spoofed);
    }

    #[test]
    fn httpdate_format() {
        assert_eq!(super::httpdate_at(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            super::httpdate_at(1_700_000_000),
            "Tue, 14 Nov 2023 22:13:20 GMT"
        );
        assert_eq!(
            super::httpdate_at(951_782_400),
            "Tue, 29 Feb 2000 00:00:00 GMT"
        );
        assert_eq!(super::httpdate().len(), 29);
    }
}
