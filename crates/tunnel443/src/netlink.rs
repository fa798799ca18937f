//! Routes via rtnetlink: the one module that talks netlink.
//!
//! The client uses it to add `--route` prefixes through its TUN device and,
//! for `--default-route`, to keep the path to the server (or its proxy) on
//! the current gateway before it sends everything else into the tunnel.

use std::net::Ipv4Addr;

use anyhow::Context;
use futures::TryStreamExt;
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use rtnetlink::RouteMessageBuilder;

use crate::pool::Ipv4Net;

/// Where the kernel would send a packet today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Path4 {
    pub gateway: Option<Ipv4Addr>,
    pub oif: Option<u32>,
}

/// An IPv4 route we added, to be removed again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route4 {
    pub dst: Ipv4Net,
    pub oif: Option<u32>,
    pub gateway: Option<Ipv4Addr>,
}

impl Route4 {
    fn message(&self) -> RouteMessage {
        let mut b = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(self.dst.network(), self.dst.prefix_len());
        if let Some(oif) = self.oif {
            b = b.output_interface(oif);
        }
        if let Some(gw) = self.gateway {
            b = b.gateway(gw);
        }
        b.build()
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
    pub async fn path_to(&self, dst: Ipv4Addr) -> anyhow::Result<Path4> {
        let msg = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(dst, 32)
            .build();
        let mut routes = self.handle.route().get(msg).execute();
        let route = routes
            .try_next()
            .await
            .with_context(|| format!("no route to {dst}"))?
            .with_context(|| format!("no route to {dst}"))?;
        let mut p = Path4 {
            gateway: None,
            oif: None,
        };
        for a in &route.attributes {
            match a {
                RouteAttribute::Gateway(RouteAddress::Inet(g)) => p.gateway = Some(*g),
                RouteAttribute::Oif(i) => p.oif = Some(*i),
                _ => {}
            }
        }
        Ok(p)
    }

    pub async fn add(&self, r: &Route4) -> anyhow::Result<()> {
        self.handle
            .route()
            .add(r.message())
            .replace()
            .execute()
            .await
            .with_context(|| format!("adding route {}", r.dst))
    }

    pub async fn del(&self, r: &Route4) -> anyhow::Result<()> {
        self.handle
            .route()
            .del(r.message())
            .execute()
            .await
            .with_context(|| format!("removing route {}", r.dst))
    }
}
