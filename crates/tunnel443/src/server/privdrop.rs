//! Dropping root after start (`--user NAME`, `user = "NAME"`; issue 12
//! "Security defaults", SECURITY.md): once :443 is bound, the TUN device is
//! open and its addresses are set, the server becomes NAME (its group, no
//! supplementary groups) and keeps only `CAP_NET_ADMIN` (permitted and
//! effective), for network changes after start.
//!
//! Linux capabilities belong to threads: `setuid` is applied to every
//! thread (glibc), but `CAP_NET_ADMIN` stays with the calling thread only
//! (`PR_SET_KEEPCAPS`, then `capset`); the others have none. The server
//! makes no network configuration change after start today.
//!
//! What still needs access later: the users file is re-read on change and
//! on SIGHUP (it is given to NAME here; `tunnel443 user` keeps its owner
//! when it rewrites it); ACME writes under the state directory (make it
//! NAME's); the control socket stays root's (root's `ctl` still connects).

use std::ffi::CString;
use std::path::Path;

use anyhow::{bail, Context};

/// NAME's user and group ids.
pub fn lookup(name: &str) -> anyhow::Result<(libc::uid_t, libc::gid_t)> {
    let c = CString::new(name).context("user: contains a NUL byte")?;
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; `buf` outlives `pw`'s use.
    let rc =
        unsafe { libc::getpwnam_r(c.as_ptr(), &mut pw, buf.as_mut_ptr(), buf.len(), &mut out) };
    if rc != 0 || out.is_null() {
        bail!("user: no user named {name} (add it, e.g. `useradd --system {name}`)");
    }
    Ok((pw.pw_uid, pw.pw_gid))
}

/// The capability sets of the calling thread (`capset(2)`, version 3).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;
const CAP_NET_ADMIN: u32 = 12;

fn os(what: &str, rc: libc::c_int) -> anyhow::Result<()> {
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| what.to_string());
    }
    Ok(())
}

/// Becomes `name` keeping only `CAP_NET_ADMIN`; `own` are handed to it
/// first (files it must read later). Must run as root.
pub fn drop_to(name: &str, own: &[&Path]) -> anyhow::Result<()> {
    let (uid, gid) = lookup(name)?;
    for p in own {
        std::os::unix::fs::chown(p, Some(uid), Some(gid))
            .with_context(|| format!("user: giving {} to {name}", p.display()))?;
    }
    // SAFETY: plain system calls on the calling thread/process.
    unsafe {
        os(
            "prctl(PR_SET_KEEPCAPS)",
            libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0),
        )?;
        os("setgroups", libc::setgroups(1, &gid))?;
        os("setgid", libc::setgid(gid))?;
        os("setuid", libc::setuid(uid))?;
        let mut hdr = CapHeader {
            version: CAPABILITY_VERSION_3,
            pid: 0,
        };
        let bit = 1u32 << CAP_NET_ADMIN;
        let mut data = [
            CapData {
                effective: bit,
                permitted: bit,
                inheritable: 0,
            },
            CapData::default(),
        ];
        os(
            "capset(CAP_NET_ADMIN)",
            libc::syscall(libc::SYS_capset, &mut hdr, data.as_mut_ptr()) as libc::c_int,
        )?;
        os(
            "prctl(PR_SET_KEEPCAPS)",
            libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0),
        )?;
        // No way back: regaining root must fail.
        if libc::setuid(0) == 0 {
            bail!("user: still able to become root after dropping to {name}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_user_names_the_field() {
        let e = format!("{:#}", lookup("no-such-user-t443").unwrap_err());
        assert!(
            e.starts_with("user: no user named no-such-user-t443"),
            "{e}"
        );
        assert_eq!(lookup("root").unwrap(), (0, 0));
    }
}
