//! Routes via rtnetlink: the one module that talks netlink.
//!
//! The clients use it to add routes through their TUN device (`--route`,
//! `--default-route`, and the IPv6 routes a Router Advertisement brings)
//! and to keep the path to the server (or its proxy) on the current gateway
//! before everything else goes into the tunnel. Both address families.
//!
//! Routes through a TUN device vanish with it, also when the process is
//! killed. The one kind that outlives a killed client is the pinned path to
//! the server on the real interface: those carry route protocol
//! [`OUR_PROTOCOL`] (`ip route show proto 243`) and, as their metric, the
//! pid of the client that added them, so that a later client can tell the
//! stale ones (their process is gone) from those of a client still running
//! ([`Netlink::ours`]).

use std::fmt;
use std::net::IpAddr;

use anyhow::Context;
use futures::TryStreamExt;
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol,
};
use rtnetlink::RouteMessageBuilder;

/// The route protocol number of the routes a client pins outside its TUN
/// device (unassigned in iproute2's `rt_protos`).
pub const OUR_PROTOCOL: u8 = 243;

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
    /// The pid of the client that owns it: set, the route is marked with
    /// [`OUR_PROTOCOL`] and the pid is its metric.
    pub owner: Option<u32>,
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.dst, self.prefix_len)?;
        if let Some(g) = self.gateway {
            write!(f, " via {g}")?;
        }
        if let Some(pid) = self.owner {
            write!(f, " proto {OUR_PROTOCOL} metric {pid}")?;
        }
        Ok(())
    }
}

impl Route {
    /// A host route (/32 or /128) to `addr` along `path`, owned by the
    /// process `owner`.
    pub fn pin(addr: IpAddr, path: Path, owner: u32) -> Self {
        Route {
            dst: addr,
            prefix_len: if addr.is_ipv4() { 32 } else { 128 },
            oif: path.oif,
            gateway: path.gateway,
            owner: Some(owner),
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
        if let Some(pid) = self.owner {
            b = b.protocol(RouteProtocol::from(OUR_PROTOCOL)).priority(pid);
        }
        Ok(b.build())
    }

    /// One of ours, from a route dump (main table, [`OUR_PROTOCOL`]).
    fn ours(m: &RouteMessage) -> Option<Route> {
        if m.header.protocol != RouteProtocol::from(OUR_PROTOCOL)
            || m.header.table != RouteHeader::RT_TABLE_MAIN
        {
            return None;
        }
        let mut r = Route {
            dst: match m.header.address_family {
                rtnetlink::packet_route::AddressFamily::Inet6 => {
                    std::net::Ipv6Addr::UNSPECIFIED.into()
                }
                _ => std::net::Ipv4Addr::UNSPECIFIED.into(),
            },
            prefix_len: m.header.destination_prefix_length,
            oif: None,
            gateway: None,
            owner: None,
        };
        for a in &m.attributes {
            match a {
                RouteAttribute::Destination(RouteAddress::Inet(d)) => r.dst = (*d).into(),
                RouteAttribute::Destination(RouteAddress::Inet6(d)) => r.dst = (*d).into(),
                RouteAttribute::Gateway(RouteAddress::Inet(g)) => r.gateway = Some((*g).into()),
                RouteAttribute::Gateway(RouteAddress::Inet6(g)) => r.gateway = Some((*g).into()),
                RouteAttribute::Oif(i) => r.oif = Some(*i),
                RouteAttribute::Priority(p) => r.owner = Some(*p),
                _ => {}
            }
        }
        r.owner.map(|_| r)
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

    /// The routes marked as ours (pinned by this or another client), both
    /// families.
    pub async fn ours(&self) -> anyhow::Result<Vec<Route>> {
        let mut found = Vec::new();
        for msg in [
            RouteMessageBuilder::<std::net::Ipv4Addr>::new().build(),
            RouteMessageBuilder::<std::net::Ipv6Addr>::new().build(),
        ] {
            let mut dump = self.handle.route().get(msg).execute();
            while let Some(m) = dump.try_next().await.context("listing routes")? {
                found.extend(Route::ours(&m));
            }
        }
        Ok(found)
    }
}

/// Removes `routes` from outside any async context (a `Drop`, a panic
/// unwinding): on a thread of its own with its own netlink socket, waited
/// for.
pub fn del_blocking(routes: Vec<Route>) {
    if routes.is_empty() {
        return;
    }
    let worker = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let nl = Netlink::new()?;
            for r in &routes {
                nl.del(r).await?;
                tracing::info!(route = %r, "route removed");
            }
            anyhow::Ok(())
        })
    });
    match worker.join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %format!("{e:#}"), "could not remove a route"),
        Err(_) => tracing::warn!("could not remove the routes: the worker panicked"),
    }
}
