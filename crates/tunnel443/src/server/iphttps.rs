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

use std::collections::BTreeSet;
use std::net::{Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use iphttps::nd::{RouteInfo, RoutePreference, DEFAULT_ROUTER_LIFETIME};
use iphttps::{ClientRouter, Decoder, Encoder, Frame, Ipv6Prefix, Prefix64, RouterConfig, Verdict};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::config::IphttpsSettings;
use crate::io_util::{is_peer_close, plain_error, BoxStream};
use crate::server::router::SESSION_QUEUE;
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

/// Runs one IP-HTTPS session. `rest` holds bytes read after the head.
pub async fn run(
    mut stream: BoxStream,
    rest: Vec<u8>,
    peer: SocketAddr,
    client: String,
    shared: Arc<Shared>,
) {
    let _active = ActiveGuard::new();
    let Some(service) = shared.iphttps.as_ref() else {
        return;
    };
    let alloc = &service.pool;
    let Some(lease) = alloc.lease() else {
        warn!(%peer, "IP-HTTPS pool exhausted; 503");
        let _ = stream
            .write_all(&iphttps::preamble::build_refusal(503))
            .await;
        return;
    };
    let prefix = lease.prefix;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(SESSION_QUEUE);
    let Some(_route) = shared.router.register64(prefix, tx) else {
        warn!(%peer, prefix = %prefix.prefix(), "prefix already routed; closed");
        return;
    };
    let mut router = match ClientRouter::new(prefix, service.router.clone()) {
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
        return;
    }
    info!(%peer, %client, prefix = %prefix.prefix(), "IP-HTTPS session up");
    let started = Instant::now();
    router.link_up(started.into_std());

    let mut dec = Decoder::new();
    let enc = Encoder::new();
    let mut out = Vec::with_capacity(16 * 1024);
    let mut pending: &[u8] = &rest;
    let (mut rx_pkts, mut tx_pkts, mut spoofed) = (0u64, 0u64, 0u64);
    let mut shutdown = shared.shutdown.clone();
    let reason: String = 'session: loop {
        // Packets the router itself sends (RAs, NAs, echo replies).
        while let Some(p) = router.poll_transmit() {
            let _ = enc.encode(&p, &mut out);
        }
        if !out.is_empty() {
            if let Err(e) = stream.write_all(&out).await {
                break if is_peer_close(&e) {
                    "closed by the client".into()
                } else {
                    format!("write failed: {}", plain_error(&e))
                };
            }
            out.clear();
        }
        // Bytes read earlier (the head's tail) go in first.
        let got_input = if !pending.is_empty() {
            let n = dec.extend(pending);
            pending = &pending[n..];
            true
        } else {
            let deadline = router
                .poll_timeout()
                .map(Instant::from_std)
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                r = stream.read(dec.spare()) => match r {
                    Ok(0) => break 'session "closed by the client".into(),
                    Ok(n) => { dec.filled(n); true }
                    // Most clients leave without TLS close_notify.
                    Err(e) if is_peer_close(&e) => break 'session "closed by the client".into(),
                    Err(e) => break 'session format!("read failed: {}", plain_error(&e)),
                },
                pkt = rx.recv() => {
                    let Some(pkt) = pkt else { break 'session "route removed".into() };
                    let mut batch = vec![pkt];
                    while batch.len() < 64 {
                        match rx.try_recv() {
                            Ok(p) => batch.push(p),
                            Err(_) => break,
                        }
                    }
                    for pkt in batch {
                        match router.egress(&pkt) {
                            iphttps::Egress::Send if enc.encode(&pkt, &mut out).is_ok() => {
                                tx_pkts += 1;
                            }
                            iphttps::Egress::TooBig(Some(ptb)) => {
                                let _ = shared.tun.try_send(&ptb);
                            }
                            _ => {}
                        }
                    }
                    false
                }
                _ = tokio::time::sleep_until(deadline) => {
                    router.handle_timeout(Instant::now().into_std());
                    false
                }
                _ = shutdown.changed() => {
                    let _ = enc.encode(&router.final_advert(), &mut out);
                    let _ = stream.write_all(&out).await;
                    break 'session "server shutting down".into();
                }
            }
        };
        if got_input {
            let now = Instant::now().into_std();
            loop {
                match dec.next_packet() {
                    Ok(Some(Frame::Packet(p))) => match router.ingress(now, p) {
                        Verdict::Forward => {
                            rx_pkts += 1;
                            let _ = shared.tun.try_send(p);
                        }
                        Verdict::Local => {}
                        Verdict::Drop(iphttps::router::DropReason::SpoofedSource(src)) => {
                            spoofed += 1;
                            if spoofed.is_power_of_two() {
                                info!(%peer, %src, count = spoofed, "spoofed source dropped");
                            }
                        }
                        Verdict::Drop(r) => debug!(%peer, reason = ?r, "packet dropped"),
                    },
                    Ok(Some(Frame::Oversize { len })) => {
                        debug!(%peer, len, "oversize packet skipped")
                    }
                    Ok(None) => break,
                    Err(e) => {
                        warn!(%peer, error = %e, "non-IPv6 input; IP-HTTPS session terminated");
                        break 'session format!("framing error: {e}");
                    }
                }
            }
        }
    };
    let _ = stream.shutdown().await;
    info!(
        %peer,
        %client,
        prefix = %prefix.prefix(),
        reason = %reason,
        rx_pkts,
        tx_pkts,
        spoofed,
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
