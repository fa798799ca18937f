//! TUN devices (tun-rs): one shared device on the server for all sessions,
//! one per tunnel on the client. Addresses and MTU are set when the device
//! is created; routes are added through [`crate::netlink`].

use std::net::Ipv4Addr;
use std::sync::Arc;

use anyhow::Context;

pub type Tun = Arc<tun_rs::AsyncDevice>;

/// A TUN device with `addr/prefix` (and a point-to-point `peer`, if given).
pub fn create(
    name: Option<&str>,
    addr: Ipv4Addr,
    prefix: u8,
    peer: Option<Ipv4Addr>,
    mtu: u16,
) -> anyhow::Result<Tun> {
    let mut b = tun_rs::DeviceBuilder::new()
        .ipv4(addr, prefix, peer)
        .mtu(mtu);
    if let Some(n) = name {
        b = b.name(n);
    }
    let dev = b.build_async().with_context(|| {
        format!(
            "creating TUN device {} (needs root or CAP_NET_ADMIN and /dev/net/tun)",
            name.unwrap_or("")
        )
    })?;
    Ok(Arc::new(dev))
}

/// Interface index of the device.
pub fn if_index(tun: &Tun) -> anyhow::Result<u32> {
    Ok(tun.if_index()?)
}

/// The device's name.
pub fn name(tun: &Tun) -> String {
    tun.name().unwrap_or_default()
}

/// The link-local address `fe80::<iid>` of an IPv6CP interface identifier
/// (RFC 5072 §5).
pub fn link_local(iid: [u8; 8]) -> std::net::Ipv6Addr {
    let mut b = [0u8; 16];
    b[..2].copy_from_slice(&[0xfe, 0x80]);
    b[8..].copy_from_slice(&iid);
    std::net::Ipv6Addr::from(b)
}
