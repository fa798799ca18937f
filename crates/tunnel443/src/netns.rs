//! Network namespaces joined by veth, for `tunnel443 demo` and the
//! end-to-end tests. Everything is made with iproute2's `ip` and removed on
//! drop, so a failed run leaves nothing behind.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use anyhow::{bail, Context};

/// Runs `ip ARGS`, failing with its stderr.
pub fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running ip (install iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// A named network namespace, deleted on drop.
#[derive(Debug)]
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn create(name: &str) -> anyhow::Result<Self> {
        let _ = ip(&["netns", "del", name]);
        ip(&["netns", "add", name])?;
        let ns = Netns { name: name.into() };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// `ip -n NAME ARGS`.
    pub fn ip(&self, args: &[&str]) -> anyhow::Result<()> {
        let mut a = vec!["-n", self.name.as_str()];
        a.extend_from_slice(args);
        ip(&a)
    }

    /// A command that runs inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Path of the namespace's file, for `setns`.
    pub fn path(&self) -> String {
        format!("/var/run/netns/{}", self.name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// Joins `a` and `b` with a veth pair `<prefix>a`/`<prefix>b` addressed
/// `addr_a/prefix_len` and `addr_b/prefix_len`.
pub fn veth(
    a: &Netns,
    addr_a: Ipv4Addr,
    b: &Netns,
    addr_b: Ipv4Addr,
    prefix_len: u8,
    if_prefix: &str,
) -> anyhow::Result<()> {
    let (ia, ib) = (format!("{if_prefix}a"), format!("{if_prefix}b"));
    let _ = ip(&["link", "del", &ia]);
    ip(&[
        "link", "add", &ia, "netns", &a.name, "type", "veth", "peer", "name", &ib, "netns", &b.name,
    ])?;
    for (ns, ifn, addr) in [(a, &ia, addr_a), (b, &ib, addr_b)] {
        ns.ip(&["addr", "add", &format!("{addr}/{prefix_len}"), "dev", ifn])?;
        ns.ip(&["link", "set", ifn, "up"])?;
    }
    Ok(())
}

/// Runs `f` on a new thread that has entered the namespace at `path`
/// (sockets it creates belong to that namespace).
pub fn in_netns<T: Send + 'static>(
    path: &str,
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> std::thread::JoinHandle<anyhow::Result<T>> {
    let path = path.to_string();
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
        use std::os::fd::AsRawFd;
        // SAFETY: setns on a valid namespace fd only changes this thread.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        if rc != 0 {
            bail!("setns {path}: {}", std::io::Error::last_os_error());
        }
        f()
    })
}
