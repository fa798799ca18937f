//! Dropping root after start (`--user NAME`, `user = "NAME"`; issue 12
//! "Security defaults", SECURITY.md): once :443 is bound, the TUN device is
//! open and its addresses are set, the server becomes NAME (its group, no
//! supplementary groups) and keeps only `CAP_NET_ADMIN` (permitted and
//! effective), for network changes after start.
//!
//! Linux credentials and capabilities belong to threads: every thread of
//! the process (the runtime's workers and blocking threads too) drops
//! itself (`PR_SET_KEEPCAPS`, `setresuid`, then `capset`), run from a
//! signal handler, and the drop is checked in `/proc/self/task/*/status`;
//! threads created later inherit the same sets. So every thread may
//! change routes (Framed-Route) or the TUN device, and none holds more.
//!
//! What still needs access later: the users file is re-read on change and
//! on SIGHUP (it is given to NAME here; `tunnel443 user` keeps its owner
//! when it rewrites it); ACME writes under the state directory (make it
//! NAME's); the control socket stays root's (root's `ctl` still connects).

use std::ffi::CString;
use std::path::Path;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::time::{Duration, Instant};

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

/// Becomes `name` keeping only `CAP_NET_ADMIN`, in every thread of the
/// process; `own` are handed to it first (files it must read later). Must
/// run as root.
pub fn drop_to(name: &str, own: &[&Path]) -> anyhow::Result<()> {
    let (uid, gid) = lookup(name)?;
    for p in own {
        std::os::unix::fs::chown(p, Some(uid), Some(gid))
            .with_context(|| format!("user: giving {} to {name}", p.display()))?;
    }
    TARGET_UID.store(uid, Ordering::SeqCst);
    TARGET_GID.store(gid, Ordering::SeqCst);
    drop_this_thread().map_err(|(what, errno)| {
        anyhow::Error::from(std::io::Error::from_raw_os_error(errno)).context(what)
    })?;
    every_other_thread(name)?;
    // No way back: regaining root must fail.
    // SAFETY: a plain system call (glibc applies it to every thread).
    if unsafe { libc::setuid(0) } == 0 {
        bail!("user: still able to become root after dropping to {name}");
    }
    Ok(())
}

static TARGET_UID: AtomicU32 = AtomicU32::new(0);
static TARGET_GID: AtomicU32 = AtomicU32::new(0);
/// The first error a thread met in the signal handler (errno), 0 if none.
static HANDLER_ERRNO: AtomicI32 = AtomicI32::new(0);

/// Credentials are per thread in the kernel (glibc's `setuid` signals
/// every thread to make them look per process): each thread runs
/// [`drop_this_thread`] itself, in a signal handler, until
/// `/proc/self/task` shows every thread (also those created meanwhile) as
/// the target user with `CAP_NET_ADMIN` only.
fn every_other_thread(name: &str) -> anyhow::Result<()> {
    let sig = libc::SIGRTMIN() + 4;
    // SAFETY: installs an async-signal-safe handler (raw system calls and
    // atomics only) for a real-time signal nothing else uses.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        os("sigaction", libc::sigaction(sig, &sa, std::ptr::null_mut()))?;
    }
    let (uid, pid) = (TARGET_UID.load(Ordering::SeqCst), std::process::id());
    let deadline = Instant::now() + Duration::from_secs(5);
    let outcome = loop {
        let behind = threads_behind(uid);
        if behind.is_empty() {
            break Ok(());
        }
        let errno = HANDLER_ERRNO.load(Ordering::SeqCst);
        if errno != 0 || Instant::now() > deadline {
            let why = if errno != 0 {
                std::io::Error::from_raw_os_error(errno).to_string()
            } else {
                "no answer in 5 s".into()
            };
            break Err(anyhow::anyhow!(
                "user: threads {} did not drop to {name} ({why})",
                behind
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ));
        }
        for tid in behind {
            // SAFETY: a signal to a thread of this process; one that has
            // exited meanwhile makes the call fail harmlessly (ESRCH).
            unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, sig) };
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    // Late duplicates of the signal are ignored from now on.
    // SAFETY: resets the disposition of the same signal.
    unsafe { libc::signal(sig, libc::SIG_IGN) };
    outcome
}

/// Threads of this process not yet `uid` with `CAP_NET_ADMIN` only
/// (permitted and effective).
fn threads_behind(uid: libc::uid_t) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    let want_caps = format!("{:016x}", 1u64 << CAP_NET_ADMIN);
    let mut behind = Vec::new();
    for tid in dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
    {
        // A thread that exited meanwhile has no status left: not behind.
        let Ok(text) = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")) else {
            continue;
        };
        let field = |key: &str| -> Vec<String> {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
                .map(|v| v.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default()
        };
        let done = field("Uid").iter().all(|u| *u == uid.to_string())
            && field("CapPrm") == [want_caps.clone()]
            && field("CapEff") == [want_caps.clone()];
        if !done {
            behind.push(tid);
        }
    }
    behind
}

extern "C" fn on_signal(_: libc::c_int) {
    if let Err((_, errno)) = drop_this_thread() {
        let _ = HANDLER_ERRNO.compare_exchange(0, errno, Ordering::SeqCst, Ordering::SeqCst);
    }
}

/// The calling thread becomes the target user and group (no supplementary
/// groups) keeping only `CAP_NET_ADMIN`. Raw system calls only (they act
/// on the calling thread, and are async-signal-safe); a thread that is
/// already the target user is left as it is.
fn drop_this_thread() -> Result<(), (&'static str, i32)> {
    let (uid, gid) = (
        TARGET_UID.load(Ordering::SeqCst),
        TARGET_GID.load(Ordering::SeqCst),
    );
    let check = |what: &'static str, rc: libc::c_long| {
        if rc == 0 {
            Ok(())
        } else {
            // SAFETY: reads the calling thread's errno.
            Err((what, unsafe { *libc::__errno_location() }))
        }
    };
    // SAFETY: plain system calls on the calling thread; every pointer is
    // valid for its call.
    unsafe {
        if libc::syscall(libc::SYS_getuid) as libc::uid_t == uid && uid != 0 {
            return Ok(());
        }
        check(
            "prctl(PR_SET_KEEPCAPS)",
            libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) as libc::c_long,
        )?;
        check("setgroups", libc::syscall(libc::SYS_setgroups, 1, &gid))?;
        check(
            "setresgid",
            libc::syscall(libc::SYS_setresgid, gid, gid, gid),
        )?;
        check(
            "setresuid",
            libc::syscall(libc::SYS_setresuid, uid, uid, uid),
        )?;
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
        check(
            "capset(CAP_NET_ADMIN)",
            libc::syscall(libc::SYS_capset, &mut hdr, data.as_mut_ptr()),
        )?;
        check(
            "prctl(PR_SET_KEEPCAPS)",
            libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) as libc::c_long,
        )?;
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
