//! TUN devices (tun-rs): one shared device on the server for all sessions,
//! one per tunnel on the client. Addresses and MTU are set when the device
//! is created; routes are added through [`crate::netlink`].
//!
//! Reads and writes are batched and use the kernel's segmentation and
//! coalescing offloads ([`batch`]).
//!
//! The kernel's own Router Advertisement processing is turned off on every
//! device we create (`accept_ra = 0`, `autoconf = 0`) before it comes up:
//! our clients apply the server's RAs themselves, and a server must not let
//! a client's RA give it a default route or an address.

mod batch;

use std::net::Ipv4Addr;
use std::sync::Arc;

use anyhow::Context;

pub use batch::{Read, TunReader, TunWriter};

pub type Tun = Arc<tun_rs::AsyncDevice>;

/// A builder with what every device of ours has: offloads on (see
/// [`batch`]), down until [`up_without_kernel_ra`].
pub fn builder() -> tun_rs::DeviceBuilder {
    tun_rs::DeviceBuilder::new().offload(true).enable(false)
}

/// A TUN device with `addr/prefix` (and a point-to-point `peer`, if given).
pub fn create(
    name: Option<&str>,
    addr: Ipv4Addr,
    prefix: u8,
    peer: Option<Ipv4Addr>,
    mtu: u16,
) -> anyhow::Result<Tun> {
    let mut b = builder().ipv4(addr, prefix, peer).mtu(mtu);
    if let Some(n) = name {
        b = b.name(n);
    }
    let built = b.build_async();
    let errno = built.as_ref().err().and_then(std::io::Error::raw_os_error);
    let dev = built.with_context(|| create_error(name, errno))?;
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

/// What a failure (errno) to create the TUN device `name` means, in the
/// admin's terms; the OS error follows it.
fn create_error(name: Option<&str>, errno: Option<i32>) -> String {
    let name = name.unwrap_or("(kernel-chosen name)");
    let another_name = "choose another name with --tun-name (server config: tun.name)";
    let hint = match errno {
        Some(libc::EBUSY) => format!(
            ": {name} is in use by another process (another tunnel443?); stop it, or {another_name}"
        ),
        Some(libc::EINVAL) => {
            format!(": a device named {name} exists and is not a TUN device; {another_name}")
        }
        Some(libc::EPERM | libc::EACCES) => ": needs root or CAP_NET_ADMIN".to_string(),
        Some(libc::ENOENT | libc::ENODEV | libc::ENXIO) => {
            ": /dev/net/tun is missing (load the tun module: modprobe tun)".to_string()
        }
        _ => String::new(),
    };
    format!("creating TUN device {name}{hint}")
}

/// Interface index of the device.
pub fn if_index(tun: &Tun) -> anyhow::Result<u32> {
    Ok(tun.if_index()?)
}

/// The device's name.
pub fn name(tun: &Tun) -> String {
    tun.name().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::create_error;

    #[test]
    fn errors_say_what_to_do() {
        let busy = create_error(Some("t443s0"), Some(libc::EBUSY));
        assert!(
            busy.contains("t443s0 is in use by another process"),
            "{busy}"
        );
        assert!(
            busy.contains("--tun-name") && busy.contains("tun.name"),
            "{busy}"
        );
        assert!(!busy.contains("root"), "{busy}");
        let perm = create_error(Some("t443s0"), Some(libc::EPERM));
        assert_eq!(
            perm,
            "creating TUN device t443s0: needs root or CAP_NET_ADMIN"
        );
        let other = create_error(None, Some(libc::EIO));
        assert_eq!(other, "creating TUN device (kernel-chosen name)");
    }
}
