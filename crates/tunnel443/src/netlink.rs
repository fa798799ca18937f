//! Routes via rtnetlink: the one module that talks netlink.
//!
//! The clients use it to add routes through their TUN device (`--route`,
//! `--default-route`, and the IPv6 routes a Router Advertisement brings)
//! and to keep the path to the server (or its proxy) on the current gateway
//! before everything else goes into the tunnel. Both address families.

use std::fmt;
use std::net::IpAddr;

use anyhow::Context;
use futures::TryStreamExt;
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use rtnetlink::RouteMessageBuilder;

/// Where the kernel would send a packet today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Path {
    pub gateway: Option<IpAddr>,
    pub oif: Option<u32>,
}

/// A route we added, to be removed again. `gateway` is of the same family
/// as `dst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub dst: IpAddr,
    pub prefix_len: u8,
    pub oif: Option<u32>,
    pub gateway: Option<IpAddr>,
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.dst, self.prefix_len)?;
        if let Some(g) = self.gateway {
            write!(f, " via {g}")?;
        }
        Ok(())
    }
}

impl Route {
    /// A host route (/32 or /128) to `addr` along `path`.
    pub fn host(addr: IpAddr, path: Path) -> Self {
        Route {
            dst: addr,
            prefix_len: if addr.is_ipv4() { 32 } else { 128 },
            oif: path.oif,
            gateway: path.gateway,
        }
    }

    fn message(&self) -> anyhow::Result<RouteMessage> {
        let mut b = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(self.dst, self.prefix_len)
            .with_context(|| format!("route {self}: bad destination"))?;
        if let Some(oif) = self.oif {
            b = b.output_interface(oif);
        }
        if let Some(gw) = self.gateway {
            b = b
                .gateway(gw)
                .with_context(|| format!("route {self}: gateway of another family"))?;
        }
        Ok(b.build())
    }
}

pub struct Netlink {
    handle: rtnetlink::Handle,
}

impl Netlink {
    pub fn new() -> anyhow::Result<Self> {
        let (conn, handle, _) = rtnetlink::new_connection().context("opening netlink socket")?;
        tokio::spawn(conn);
        Ok(Self { handle })
    }

    /// Like `ip route get DST`.
    pub async fn path_to(&self, dst: IpAddr) -> anyhow::Result<Path> {
        let len = if dst.is_ipv4() { 32 } else { 128 };
        let msg = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(dst, len)
            .context("route lookup")?
            .build();
        let mut routes = self.handle.route().get(msg).execute();
        let route = routes
            .try_next()
            .await
            .with_context(|| format!("no route to {dst}"))?
            .with_context(|| format!("no route to {dst}"))?;
        let mut p = Path {
            gateway: None,
            oif: None,
        };
        for a in &route.attributes {
            match a {
                RouteAttribute::Gateway(RouteAddress::Inet(g)) => p.gateway = Some((*g).into()),
                RouteAttribute::Gateway(RouteAddress::Inet6(g)) => p.gateway = Some((*g).into()),
                RouteAttribute::Oif(i) => p.oif = Some(*i),
                _ => {}
            }
        }
        Ok(p)
    }

    /// Adds (or replaces) `r`.
    pub async fn add(&self, r: &Route) -> anyhow::Result<()> {
        self.handle
            .route()
            .add(r.message()?)
            .replace()
            .execute()
            .await
            .with_context(|| format!("adding route {r}"))
    }

    pub async fn del(&self, r: &Route) -> anyhow::Result<()> {
        self.handle
            .route()
            .del(r.message()?)
            .execute()
            .await
            .with_context(|| format!("removing route {r}"))
    }
}
