//! IP-HTTPS sessions (MS-IPHTTPS §3.2): after the listener has matched a
//! `POST` to a configured path with Content-Length 18446744073709551615
//! (and, unless `auth = "none"`, a verified client certificate), the server
//! answers 200 (§4.1) and acts as the client's IPv6 router (§3.2.3).
//!
//! Addressing: every client gets its own /64 from the configured pool
//! (`[iphttps] prefix`). Why a /64 per client rather than one shared /64
//! with neighbour discovery: the link is point-to-point, so a private /64
//! needs no ND proxying or duplicate address detection across sessions;
//! SLAAC (any interface identifier, privacy addresses) works unchanged;
//! routing is one lookup of the destination's upper 64 bits; and
//! anti-spoofing is one prefix check (source in the client's /64 or its
//! link-local address) — a client can never claim another's address
//! because the addresses of different clients never share a prefix. The
//! pool's first /64 is the server's own (`pool::1` on the TUN device, with
//! the pool's length, so the kernel routes the whole pool into the TUN).
//!
//! Routes: by default the RAs make the server each client's default router;
//! with `default_route = false` they carry Route Information options
//! (RFC 4191) for the pool and `iphttps.routes` instead (a split tunnel).
//!
//! Framing (§3.2.5.2) is the `iphttps` crate's decoder: a byte stream that
//! is not IPv6 terminates that session only, with a log line.
//!
//! Link MTU: 1280 (§3.1.5.3, §3.2.5.2), unless the client is one of ours
//! and announced a larger one in its POST (`X-Tunnel443-Link-MTU`,
//! [`iphttps::mtu`]): then min(announced, `iphttps.link_mtu_max`, by
//! default `tun.mtu`), in the session's RAs (MTU option, RFC 4861 §4.6.4)
//! and as the bound above which packets towards the client get Packet Too
//! Big.

use std::collections::BTreeSet;
use std::net::{Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use anyhow::Context;
use iphttps::nd::{RouteInfo, RoutePreference, DEFAULT_ROUTER_LIFETIME};
use iphttps::{ClientRouter, Ipv6Prefix, Prefix64, RouterConfig};
use session::iphttps::{Ending, Event};
use session::{IphttpsServer, Session};
use tokio::io::AsyncWriteExt;
use tracing::{info, warn};

use crate::config::IphttpsSettings;
use crate::driver::{Driver, TunSide, Turn};
use crate::io_util::BoxStream;
use crate::server::registry::{Conn, EndCause, Protocol};
use crate::server::router::SESSION_QUEUE;
use crate::server::stats::{Method, Stage};
use crate::server::Shared;

static ACTIVE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// IP-HTTPS sessions running (shutdown waits for their final RA).
pub fn active() -> usize {
    ACTIVE.load(std::sync::atomic::Ordering::Relaxed)
}

struct ActiveGuard;
impl ActiveGuard {
    fn new() -> Self {
        ACTIVE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ActiveGuard
    }
}
impl Drop for ActiveGuard {
    fn drop(&mut self) {
        ACTIVE.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// IP-HTTPS as the server runs it: built once from `[iphttps]`.
pub struct Service {
    pub pool: Arc<Allocator>,
    pub paths: iphttps::ServerConfig,
    pub router: RouterConfig,
    /// `auth = "none"`.
    pub auth_none: bool,
    /// `server_names` is set: IP-HTTPS only on those names.
    pub names_only: bool,
    /// `link_mtu_max`: the largest link MTU a client of ours gets.
    pub link_mtu_max: usize,
}

impl Service {
    pub fn new(i: &IphttpsSettings, dns: &[Ipv6Addr]) -> anyhow::Result<Self> {
        let pool = Allocator::new(i.pool);
        let router = router_config(i, dns, pool.server_addr())?;
        Ok(Service {
            paths: iphttps::ServerConfig::new(i.paths.iter().map(String::as_str))
                .context("iphttps.paths")?,
            pool,
            router,
            auth_none: i.auth_none,
            names_only: !i.server_names.is_empty(),
            link_mtu_max: usize::from(i.link_mtu_max),
        })
    }
}

/// What every client's router advertises, checked by building one RA.
fn router_config(
    i: &IphttpsSettings,
    dns: &[Ipv6Addr],
    server_addr: Ipv6Addr,
) -> anyhow::Result<RouterConfig> {
    let mut routes = Vec::new();
    if !i.default_route {
        // Without a default route the clients still need the pool: the
        // server's own address and the other clients.
        routes.push(i.pool);
    }
    routes.extend(i.routes.iter().copied());
    let cfg = RouterConfig {
        router_addr: Some(server_addr),
        dns: dns.to_vec(),
        router_lifetime: if i.default_route {
            DEFAULT_ROUTER_LIFETIME
        } else {
            0
        },
        routes: routes
            .into_iter()
            .map(|p| RouteInfo {
                prefix: p.addr(),
                prefix_len: p.prefix_len(),
                preference: RoutePreference::Medium,
                lifetime: u32::from(DEFAULT_ROUTER_LIFETIME),
            })
            .collect(),
        ..RouterConfig::default()
    };
    let first = i
        .pool
        .subnet64(1)
        .ok()
        .flatten()
        .context("iphttps.prefix: no /64 for clients")?;
    ClientRouter::new(first, cfg.clone())
        .map_err(|e| anyhow::anyhow!("iphttps.routes / ipv6.dns: {e}"))?;
    Ok(cfg)
}

/// Hands out /64s 1, 2, ... of the pool (0 is the server's).
pub struct Allocator {
    pool: Ipv6Prefix,
    used: Mutex<BTreeSet<u64>>,
}

/// A /64 taken from the pool; returned when dropped.
pub struct Lease {
    alloc: Arc<Allocator>,
    index: u64,
    pub prefix: Prefix64,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.alloc
            .used
            .lock()
            .expect("pool lock")
            .remove(&self.index);
    }
}

impl Allocator {
    pub fn new(pool: Ipv6Prefix) -> Arc<Self> {
        Arc::new(Allocator {
            pool,
            used: Mutex::new(BTreeSet::new()),
        })
    }

    /// The server's own address: `pool::1` (in /64 number 0).
    pub fn server_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.pool.addr()) | 1)
    }

    /// The lowest free /64, if any.
    /// Client /64s in the pool (the server's own not counted).
    pub fn capacity(&self) -> u64 {
        self.pool.subnet64_count().map_or(0, |c| {
            u64::try_from(c).unwrap_or(u64::MAX).saturating_sub(1)
        })
    }

    /// Client /64s leased now.
    pub fn in_use(&self) -> u64 {
        self.used.lock().expect("pool lock").len() as u64
    }

    pub fn lease(self: &Arc<Self>) -> Option<Lease> {
        let mut used = self.used.lock().expect("pool lock");
        let count = self.pool.subnet64_count()?;
        let limit = u64::try_from(count).unwrap_or(u64::MAX);
        let mut index = 1u64;
        for &u in used.iter() {
            if u == index {
                index += 1;
            } else if u > index {
                break;
            }
        }
        if index >= limit {
            return None;
        }
        let prefix = self.pool.subnet64(index).ok()??;
        used.insert(index);
        Some(Lease {
            alloc: self.clone(),
            index,
            prefix,
        })
    }
}

/// Who the client is: `subject` of its verified certificate (the registry's
/// user), `client` for the log lines (`cert:<hash>` or `anonymous`), and
/// the link MTU its request announced.
pub struct Client {
    pub log: String,
    pub subject: Option<String>,
    pub link_mtu: iphttps::mtu::Offer,
}

/// Runs one IP-HTTPS session. `rest` holds bytes read after the head.
pub async fn run(
    mut stream: BoxStream,
    rest: Vec<u8>,
    conn: Conn,
    client: Client,
    shared: Arc<Shared>,
) {
    let _active = ActiveGuard::new();
    let peer: SocketAddr = conn.peer;
    let mut reg = shared.sessions.register(Protocol::Iphttps, conn);
    if let Some(subject) = &client.subject {
        reg.set_user(subject);
        reg.set_auth_method("certificate");
        shared.stats.auth(Method::Certificate, true);
    } else {
        reg.set_auth_method("none");
    }
    let (client, offer) = (client.log, client.link_mtu);
    reg.set_ending(EndCause::Error, "ended during setup");
    let Some(service) = shared.iphttps.as_ref() else {
        return;
    };
    let alloc = &service.pool;
    let Some(lease) = alloc.lease() else {
        warn!(%peer, "IP-HTTPS pool exhausted; 503");
        reg.set_ending(EndCause::Error, "address pool exhausted");
        shared.stats.failure(Stage::Ncp);
        let _ = stream
            .write_all(&iphttps::preamble::build_refusal(503))
            .await;
        return;
    };
    let prefix = lease.prefix;
    let (tx, rx) = tokio::sync::mpsc::channel(SESSION_QUEUE);
    let refuse = shared.isolation(&tx);
    let Some(_route) = shared.router.register64(prefix, tx) else {
        warn!(%peer, prefix = %prefix.prefix(), "prefix already routed; closed");
        return;
    };
    let link_mtu = iphttps::mtu::negotiate(&offer, service.link_mtu_max);
    match &link_mtu {
        iphttps::mtu::Negotiated::Default => {}
        iphttps::mtu::Negotiated::Agreed { announced, mtu } => {
            info!(%peer, announced, link_mtu = mtu, "IP-HTTPS link MTU above 1280 (tunnel443 extension)")
        }
        iphttps::mtu::Negotiated::Ignored(why) => {
            info!(%peer, reason = %why, "IP-HTTPS link MTU announcement ignored; 1280")
        }
    }
    let config = RouterConfig {
        link_mtu: link_mtu.mtu(),
        ..service.router.clone()
    };
    let router = match ClientRouter::new(prefix, config) {
        Ok(r) => r,
        Err(e) => {
            warn!(%peer, error = %e, "IP-HTTPS router setup failed");
            return;
        }
    };
    if stream
        .write_all(&iphttps::build_response(Some(SystemTime::now())))
        .await
        .is_err()
    {
        reg.set_ending(
            EndCause::Lost,
            "the connection closed before the HTTP response",
        );
        shared.stats.failure(Stage::Http);
        return;
    }
    info!(%peer, %client, id = reg.id(), prefix = %prefix.prefix(), "IP-HTTPS session up");
    reg.set_ipv6(Some((prefix.network(), 64)));
    if reg.mark_up() {
        let secs = reg.entry.conn.accepted.elapsed().as_secs_f64();
        shared.stats.setup(Protocol::Iphttps, secs);
    }
    let started = Instant::now();
    let mut s = IphttpsServer::new(router, started);
    // Bytes read with the head go in first.
    s.handle_stream_bytes(started, &rest);
    let tun = TunSide::Routed {
        rx,
        tun: shared.tun.clone(),
        refuse,
    };
    let mut d = Driver::new(stream, tun);
    let mut shutdown = reg.stop_signal();
    let mut ending = None;
    while ending.is_none() {
        while let Some(ev) = s.poll_event() {
            match ev {
                Event::Spoofed { source, dropped } => {
                    info!(%peer, src = %source, count = dropped, "spoofed source dropped")
                }
                Event::Closed(end) => ending = Some(end),
                _ => {}
            }
        }
        let turn = d.turn(&mut s, &mut shutdown).await;
        reg.store_counters(s.counters());
        match turn {
            Turn::Continue => {}
            // A final RA with router lifetime 0, then the close.
            Turn::Stop => {
                let reason = reg
                    .kill_reason()
                    .unwrap_or_else(|| "server shutting down".into());
                info!(%peer, id = reg.id(), reason = %reason, "disconnecting the client");
                s.close(Instant::now(), &reason)
            }
            Turn::Closed | Turn::TunFailed(_) => {
                while let Some(ev) = s.poll_event() {
                    if let Event::Closed(end) = ev {
                        ending = Some(end);
                    }
                }
                ending.get_or_insert(Ending::StreamLost);
            }
        }
    }
    let cause = match &ending {
        Some(Ending::PeerClosed) => EndCause::PeerClosed,
        Some(Ending::StreamLost) | None => EndCause::Lost,
        Some(_) => EndCause::Error,
    };
    let reason = match ending {
        // Most clients leave without TLS close_notify: that is a close too.
        Some(Ending::PeerClosed) => "closed by the client".to_string(),
        Some(Ending::Framing(e)) => {
            warn!(%peer, error = %e, "non-IPv6 input; IP-HTTPS session terminated");
            format!("framing error: {e}")
        }
        Some(other) => other.to_string(),
        None => "closed".to_string(),
    };
    reg.set_ending(cause, reason.clone());
    let c = s.counters();
    info!(
        %peer,
        %client,
        prefix = %prefix.prefix(),
        reason = %reason,
        rx_pkts = c.rx_packets,
        tx_pkts = c.tx_packets,
        spoofed = c.spoofed,
        tun_drops = d.tun_drops,
        secs = started.elapsed().as_secs(),
        "IP-HTTPS session closed"
    );
    drop(lease);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_skip_the_servers_64_and_are_reused() {
        let a = Allocator::new(Ipv6Prefix::parse("fd00:1::/62").unwrap());
        assert_eq!(a.server_addr(), "fd00:1::1".parse::<Ipv6Addr>().unwrap());
        let l1 = a.lease().unwrap();
        let l2 = a.lease().unwrap();
        let l3 = a.lease().unwrap();
        assert_eq!(
            l1.prefix.network(),
            "fd00:1:0:1::".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            l3.prefix.network(),
            "fd00:1:0:3::".parse::<Ipv6Addr>().unwrap()
        );
        assert!(a.lease().is_none(), "a /62 holds 3 client /64s");
        drop(l2);
        assert_eq!(
            a.lease().unwrap().prefix.network(),
            "fd00:1:0:2::".parse::<Ipv6Addr>().unwrap()
        );
    }
}
