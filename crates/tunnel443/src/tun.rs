//! TUN devices (tun-rs): one shared device on the server for all sessions,
//! one per tunnel on the client. Addresses and MTU are set when the device
//! is created; routes are added through [`crate::netlink`].
//!
//! The kernel's own Router Advertisement processing is turned off on every
//! device we create (`accept_ra = 0`, `autoconf = 0`) before it comes up:
//! our clients apply the server's RAs themselves, and a server must not let
//! a client's RA give it a default route or an address.

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
        .mtu(mtu)
        .enable(false);
    if let Some(n) = name {
        b = b.name(n);
    }
    let dev = b.build_async().with_context(|| {
        format!(
            "creating TUN device {} (needs root or CAP_NET_ADMIN and /dev/net/tun)",
            name.unwrap_or("")
        )
    })?;
    up_without_kernel_ra(Arc::new(dev))
}

/// Turns the kernel's RA processing off on a new (still down) device, then
/// brings it up. A sysctl that cannot be written is logged, not fatal.
pub fn up_without_kernel_ra(tun: Tun) -> anyhow::Result<Tun> {
    let name = name(&tun);
    for (key, value) in [("accept_ra", "0"), ("autoconf", "0")] {
        let path = format!("/proc/sys/net/ipv6/conf/{name}/{key}");
        match std::fs::write(&path, value) {
            Ok(()) => {}
            // No IPv6 on this device (disabled, or an MTU below 1280).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::debug!(path, "no IPv6 configuration for the device")
            }
            // Not worth failing for (a read-only /proc/sys): say so.
            Err(e) => tracing::warn!(
                path,
                error = %e,
                "could not turn off the kernel's Router Advertisement processing"
            ),
        }
    }
    tun.enabled(true)
        .with_context(|| format!("bringing up TUN device {name}"))?;
    Ok(tun)
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
