//! The clients' addresses and routes on their TUN device.
//!
//! IPv4 (SSTP): `--route` prefixes go through the TUN device;
//! `--default-route` adds 0.0.0.0/1 and 128.0.0.0/1.
//!
//! IPv6 (IP-HTTPS, and SSTP with IPv6CP): what the server's Router
//! Advertisements configure, as [`ipv6nd::host::HostConfig`] decides it —
//! SLAAC addresses, advertised routes (RFC 4191) and, when a default route
//! is accepted, `::/1` and `8000::/1` through the router.
//!
//! A default route is a pair of half routes: more specific than the
//! existing default route, which is left untouched and takes over again
//! when the TUN device goes away. Before the first one of a family goes in,
//! the path to the first hop (the server, or the first proxy) is pinned to
//! the gateway it uses today, so that the tunnel does not carry itself.
//!
//! Everything goes again on every exit path: routes and addresses on the
//! TUN device vanish with it (also when the process is killed); the pin is
//! removed by [`Routes::remove`], or by `Drop` on an error or a panic. A
//! pin carries route protocol 243 and the client's pid as its metric
//! ([`crate::netlink`]), so one left by a client killed with SIGKILL is
//! found and removed by the next client at start ([`remove_stale`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipv6nd::host::{Change, HostConfig};
use tracing::{debug, info, warn};

use crate::netlink::{self, Netlink, Route};
use crate::pool::Ipv4Net;

pub struct Routes {
    nl: Netlink,
    tun_index: u32,
    first_hop: IpAddr,
    pinned: Option<Route>,
    v6: HostConfig,
}

/// The two halves that together cover a family's address space.
fn halves(v6: bool) -> [(IpAddr, u8); 2] {
    if v6 {
        [
            (Ipv6Addr::UNSPECIFIED.into(), 1),
            (Ipv6Addr::new(0x8000, 0, 0, 0, 0, 0, 0, 0).into(), 1),
        ]
    } else {
        [
            (Ipv4Addr::UNSPECIFIED.into(), 1),
            (Ipv4Addr::new(128, 0, 0, 0).into(), 1),
        ]
    }
}

/// The kernel routes for an advertised one (a default route is two halves).
fn destinations(r: &ipv6nd::host::Route) -> Vec<(IpAddr, u8)> {
    if r.is_default() {
        halves(true).to_vec()
    } else {
        vec![(r.prefix.into(), r.prefix_len)]
    }
}

impl Routes {
    /// Nothing installed yet. `accept_v6_default`: whether a Router
    /// Advertisement may install an IPv6 default route.
    pub fn new(tun_index: u32, first_hop: IpAddr, accept_v6_default: bool) -> anyhow::Result<Self> {
        Ok(Routes {
            nl: Netlink::new()?,
            tun_index,
            first_hop,
            pinned: None,
            v6: HostConfig::new(accept_v6_default),
        })
    }

    /// The IPv4 routes of the SSTP client.
    pub async fn install_v4(
        &mut self,
        prefixes: &[Ipv4Net],
        default_route: bool,
    ) -> anyhow::Result<()> {
        let mut all: Vec<(IpAddr, u8)> = prefixes
            .iter()
            .map(|p| (p.network().into(), p.prefix_len()))
            .collect();
        if default_route {
            self.pin_first_hop(false).await?;
            all.extend(halves(false));
        }
        for (dst, len) in all {
            self.add_via_tun(dst, len, None).await?;
        }
        Ok(())
    }

    /// Keeps the path to the first hop outside the tunnel, if it is of the
    /// family (`v6`) about to get a default route through it.
    async fn pin_first_hop(&mut self, v6: bool) -> anyhow::Result<()> {
        if self.pinned.is_some() || self.first_hop.is_ipv6() != v6 {
            return Ok(());
        }
        let path = self.nl.path_to(self.first_hop).await?;
        if path.oif != Some(self.tun_index) {
            let r = Route::pin(self.first_hop, path, std::process::id());
            self.nl.add(&r).await?;
            info!(route = %r, "path to the server pinned outside the tunnel");
            self.pinned = Some(r);
        }
        Ok(())
    }

    async fn add_via_tun(
        &self,
        dst: IpAddr,
        prefix_len: u8,
        via: Option<IpAddr>,
    ) -> anyhow::Result<()> {
        let r = Route {
            dst,
            prefix_len,
            oif: Some(self.tun_index),
            gateway: via,
            owner: None,
        };
        self.nl.add(&r).await?;
        info!(route = %r, "route through the tunnel");
        Ok(())
    }

    /// A Router Advertisement from the server: configure what it says.
    pub async fn router_advert(
        &mut self,
        tun: &crate::tun::Tun,
        iid: ipv6nd::InterfaceId,
        ra: &ipv6nd::nd::ReceivedAdvert,
    ) {
        let changes = self.v6.apply(ra, iid);
        self.carry_out(tun, changes).await;
    }

    /// The link went down: remove what its advertisements configured.
    pub async fn link_down(&mut self, tun: &crate::tun::Tun) {
        let changes = self.v6.clear();
        self.carry_out(tun, changes).await;
    }

    async fn carry_out(&mut self, tun: &crate::tun::Tun, changes: Vec<Change>) {
        for c in changes {
            match c {
                Change::AddAddress(a) => match tun.add_address_v6(a, 64) {
                    Ok(()) => {
                        info!(address = %a, "IPv6 address from the Router Advertisement");
                        super::say(&format!("connected: IPv6 address {a}"));
                    }
                    Err(e) => warn!(address = %a, error = %e, "IPv6 address not added"),
                },
                Change::RemoveAddress(a) => match tun.remove_address(a.into()) {
                    Ok(()) => info!(address = %a, "IPv6 address withdrawn"),
                    Err(e) => debug!(address = %a, error = %e, "IPv6 address already gone"),
                },
                Change::AddRoute(r) => {
                    if let Err(e) = self.add_advertised(r).await {
                        warn!(error = %format!("{e:#}"), "IPv6 route from the Router Advertisement not added");
                    }
                }
                Change::RemoveRoute(r) => {
                    for (dst, prefix_len) in destinations(&r) {
                        let route = Route {
                            dst,
                            prefix_len,
                            oif: Some(self.tun_index),
                            gateway: Some(r.via.into()),
                            owner: None,
                        };
                        match self.nl.del(&route).await {
                            Ok(()) => info!(route = %route, "IPv6 route withdrawn"),
                            Err(e) => debug!(error = %format!("{e:#}"), "IPv6 route already gone"),
                        }
                    }
                }
                Change::OverLimit { ignored } => warn!(
                    ignored,
                    max_addresses = ipv6nd::host::MAX_ADDRESSES,
                    max_routes = ipv6nd::host::MAX_ROUTES,
                    "Router Advertisement beyond the limits: addresses/routes ignored"
                ),
                Change::Dns(servers) => {
                    let text: Vec<String> = servers.iter().map(|s| s.to_string()).collect();
                    info!(dns = %text.join(","), "IPv6 DNS servers from the Router Advertisement (RFC 8106)");
                }
            }
        }
    }

    async fn add_advertised(&mut self, r: ipv6nd::host::Route) -> anyhow::Result<()> {
        if r.is_default() {
            self.pin_first_hop(true).await?;
        }
        for (dst, prefix_len) in destinations(&r) {
            self.add_via_tun(dst, prefix_len, Some(r.via.into()))
                .await?;
        }
        Ok(())
    }

    /// Removes the pinned path to the server.
    pub async fn remove(mut self) {
        if let Some(r) = self.pinned.take() {
            match self.nl.del(&r).await {
                Ok(()) => info!(route = %r, "pinned route to the server removed"),
                Err(e) => {
                    warn!(error = %format!("{e:#}"), "could not remove the pinned route to the server")
                }
            }
        }
    }
}

impl Drop for Routes {
    /// An exit without [`Routes::remove`] (an error, a panic): the pin
    /// goes all the same.
    fn drop(&mut self) {
        if let Some(r) = self.pinned.take() {
            netlink::del_blocking(vec![r]);
        }
    }
}

/// Whether process `pid` runs in our network namespace (a client that may
/// still need its pinned route). Our own pid is not: this runs before we
/// pin anything.
fn owner_running(pid: u32) -> bool {
    if pid == std::process::id() {
        return false;
    }
    let netns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/net")).ok();
    match netns(&pid.to_string()) {
        Some(theirs) => Some(theirs) == netns("self"),
        None => false,
    }
}

/// Removes the pinned routes of clients that are gone (killed with
/// SIGKILL, or crashed): host routes marked with our route protocol whose
/// owner no longer runs in this network namespace.
pub async fn remove_stale() -> anyhow::Result<()> {
    let nl = Netlink::new()?;
    for r in nl.ours().await? {
        let host = r.prefix_len == if r.dst.is_ipv4() { 32 } else { 128 };
        let Some(pid) = r.owner else { continue };
        if !host || owner_running(pid) {
            continue;
        }
        match nl.del(&r).await {
            Ok(()) => info!(route = %r, pid, "removed a stale route left by an earlier client"),
            Err(e) => warn!(error = %format!("{e:#}"), "could not remove a stale route"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_that_are_gone_or_ourselves_are_stale() {
        assert!(!owner_running(std::process::id()));
        // pid_max is at most 2^22: this pid cannot exist.
        assert!(!owner_running(u32::MAX - 1));
        // Our parent shares our network namespace.
        assert!(owner_running(std::os::unix::process::parent_id()));
    }
}
