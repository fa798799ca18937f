//! The client's routes. `--route` prefixes go through the TUN device.
//! `--default-route` first pins the path to the first hop (the server, or
//! the first proxy) to the gateway it uses today, then adds 0.0.0.0/1 and
//! 128.0.0.0/1 through the tunnel: more specific than the existing default
//! route, which is left untouched and takes over again when the TUN device
//! goes away. Routes through the TUN device vanish with it; the pinned host
//! route is removed by [`Routes::remove`].

use std::net::{IpAddr, Ipv4Addr};

use tracing::{info, warn};

use crate::netlink::{Netlink, Route4};
use crate::pool::Ipv4Net;

pub struct Routes {
    nl: Netlink,
    pinned: Option<Route4>,
}

impl Routes {
    pub async fn install(
        tun_index: u32,
        prefixes: &[Ipv4Net],
        default_route: bool,
        first_hop: IpAddr,
    ) -> anyhow::Result<Self> {
        let nl = Netlink::new()?;
        let mut me = Routes { nl, pinned: None };
        let mut all: Vec<Ipv4Net> = prefixes.to_vec();
        if default_route {
            if let IpAddr::V4(hop) = first_hop {
                let path = me.nl.path_to(hop).await?;
                if path.oif != Some(tun_index) {
                    let r = Route4 {
                        dst: Ipv4Net::new(hop, 32).expect("/32"),
                        oif: path.oif,
                        gateway: path.gateway,
                    };
                    me.nl.add(&r).await?;
                    me.pinned = Some(r);
                }
            }
            all.push(Ipv4Net::new(Ipv4Addr::UNSPECIFIED, 1).expect("/1"));
            all.push(Ipv4Net::new(Ipv4Addr::new(128, 0, 0, 0), 1).expect("/1"));
        }
        for p in &all {
            me.nl
                .add(&Route4 {
                    dst: *p,
                    oif: Some(tun_index),
                    gateway: None,
                })
                .await?;
            info!(route = %p, "route through the tunnel");
        }
        Ok(me)
    }

    pub async fn remove(self) {
        if let Some(r) = self.pinned {
            if let Err(e) = self.nl.del(&r).await {
                warn!(error = %format!("{e:#}"), "could not remove the pinned route to the server");
            }
        }
    }
}
