//! RADIUS Framed-Route (RFC 2865 §5.22): IPv4 networks behind an SSTP
//! client. While the session's IPv4 is up, each network is routed into the
//! TUN device (a kernel route) and from there to the session (the router's
//! prefix table), and its addresses are allowed as the client's sources.
//! Everything is removed when the session's IPv4 goes down or it ends.
//!
//! The same for IPv6 ([`install_v6`]): the client's own /64 (RADIUS
//! Framed-IPv6-Prefix, RFC 3162 §2.3) and a delegated prefix
//! (Delegated-IPv6-Prefix, RFC 4818), while the session's IPv6 is up.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use tokio::sync::oneshot;
use tracing::{info, warn};

use super::router::PacketTx;
use super::Shared;
use crate::netlink::{Netlink, Route};

/// The routes of one session; dropping it removes them.
pub struct Installed {
    _router: Vec<Box<dyn Send + Sync>>,
    /// Dropped: the kernel routes are deleted.
    _kernel: Option<oneshot::Sender<()>>,
}

/// Parses a Framed-Route value, `prefix[/len] gateway [metrics]` (the
/// gateway and metrics are not used: the route goes to the session).
pub fn parse(text: &str) -> Option<(Ipv4Addr, u8)> {
    let prefix = text.split_whitespace().next()?;
    let (addr, len): (Ipv4Addr, u8) = match prefix.split_once('/') {
        Some((a, l)) => (a.parse().ok()?, l.parse().ok().filter(|l| *l <= 32)?),
        None => (prefix.parse().ok()?, 32),
    };
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Some((Ipv4Addr::from(u32::from(addr) & mask), len))
}

/// Routes `nets` to the session behind `tx`. A network another session
/// holds is skipped with a log line.
pub fn install(shared: &Shared, nets: &[(Ipv4Addr, u8)], tx: &PacketTx, user: &str) -> Installed {
    let mut regs = Vec::new();
    let mut kernel = Vec::new();
    for &(addr, len) in nets {
        match shared.router.register_v4_net(addr, len, tx.clone()) {
            Some(r) => {
                regs.push(Box::new(r) as Box<dyn Send + Sync>);
                kernel.push(addr_route(shared, IpAddr::V4(addr), len));
                info!(user = %user, route = %format!("{addr}/{len}"), "Framed-Route installed");
            }
            None => warn!(
                user = %user,
                route = %format!("{addr}/{len}"),
                "Framed-Route held by another session; not installed"
            ),
        }
    }
    finish(regs, kernel)
}

/// Routes a session's IPv6 networks to the session behind `tx`: `own64`
/// (its Framed-IPv6-Prefix) and `delegated` (its Delegated-IPv6-Prefix).
/// A network another session holds is skipped with a log line.
pub fn install_v6(
    shared: &Shared,
    own64: Option<ipv6nd::Prefix64>,
    delegated: Option<(Ipv6Addr, u8)>,
    tx: &PacketTx,
    user: &str,
) -> Installed {
    let mut regs: Vec<Box<dyn Send + Sync>> = Vec::new();
    let mut kernel = Vec::new();
    let taken = |what: &str, net: String| warn!(user = %user, prefix = %net, "{what} held by another session; not installed");
    if let Some(p) = own64 {
        match shared.router.register64(p, tx.clone()) {
            Some(r) => {
                regs.push(Box::new(r));
                kernel.push(addr_route(shared, IpAddr::V6(p.network()), 64));
                info!(user = %user, prefix = %p, "Framed-IPv6-Prefix installed");
            }
            None => taken("Framed-IPv6-Prefix", p.to_string()),
        }
    }
    if let Some((addr, len)) = delegated {
        match shared.router.register_v6_net(addr, len, tx.clone()) {
            Some(r) => {
                regs.push(Box::new(r));
                kernel.push(addr_route(shared, IpAddr::V6(addr), len));
                info!(user = %user, prefix = %format!("{addr}/{len}"), "Delegated-IPv6-Prefix installed");
            }
            None => taken("Delegated-IPv6-Prefix", format!("{addr}/{len}")),
        }
    }
    finish(regs, kernel)
}

/// Starts the kernel routes' task.
fn finish(regs: Vec<Box<dyn Send + Sync>>, kernel: Vec<Option<Route>>) -> Installed {
    let kernel: Vec<Route> = kernel.into_iter().flatten().collect();
    let stop = (!kernel.is_empty()).then(|| {
        let (stop, stopped) = oneshot::channel::<()>();
        crate::tasks::spawn(kernel_routes(kernel, stopped));
        stop
    });
    Installed {
        _router: regs,
        _kernel: stop,
    }
}

fn addr_route(shared: &Shared, addr: IpAddr, len: u8) -> Option<Route> {
    let oif = crate::tun::if_index(&shared.tun)
        .inspect_err(
            |e| warn!(error = %e, "TUN device index unknown; RADIUS route not in the kernel"),
        )
        .ok()?;
    Some(Route {
        dst: addr,
        prefix_len: len,
        oif: Some(oif),
        gateway: None,
        owner: None,
    })
}

/// Adds `routes`, waits until the session lets go, deletes them (one task,
/// so that a delete never overtakes its add).
async fn kernel_routes(routes: Vec<Route>, stopped: oneshot::Receiver<()>) {
    let nl = match Netlink::new() {
        Ok(nl) => nl,
        Err(e) => {
            warn!(error = %format!("{e:#}"), "RADIUS routes not in the kernel");
            return;
        }
    };
    for r in &routes {
        if let Err(e) = nl.add(r).await {
            warn!(route = %r, error = %format!("{e:#}"), "RADIUS route not in the kernel");
        }
    }
    let _ = stopped.await;
    for r in &routes {
        let _ = nl.del(r).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framed_route_values() {
        let a = |s: &str| parse(s).map(|(a, l)| format!("{a}/{l}"));
        assert_eq!(a("10.50.0.0/24 0.0.0.0 1").as_deref(), Some("10.50.0.0/24"));
        assert_eq!(
            a("10.50.0.9/24 10.44.0.2 1 2").as_deref(),
            Some("10.50.0.0/24")
        );
        assert_eq!(a("192.0.2.7 0.0.0.0 1").as_deref(), Some("192.0.2.7/32"));
        assert_eq!(a("10.50.0.0/33 0.0.0.0 1"), None);
        assert_eq!(a("2001:db8::/32 :: 1"), None);
        assert_eq!(a(""), None);
    }
}
