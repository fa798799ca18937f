//! `tunnel443 demo`: a whole SSTP VPN on one machine in a few seconds.
//!
//! Two network namespaces joined by veth; a zero-config server in one, a
//! client in the other; ping both ways through the tunnel; a short TCP
//! throughput test through it; then everything is torn down. The programs
//! it runs (iproute2's `ip`, `ping`) are checked before anything starts.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::netns::{in_netns, veth, Netns};

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Seconds of the throughput test.
    #[arg(long, default_value_t = 3)]
    pub seconds: u64,
}

const SERVER_VETH: Ipv4Addr = Ipv4Addr::new(10, 250, 44, 1);
const CLIENT_VETH: Ipv4Addr = Ipv4Addr::new(10, 250, 44, 2);
const POOL: &str = "10.44.0.0/24";
const SERVER_TUNNEL: Ipv4Addr = Ipv4Addr::new(10, 44, 0, 1);

/// The programs the demo runs, with the Debian package of each.
const TOOLS: &[(&str, &str)] = &[("ip", "iproute2"), ("ping", "iputils-ping")];

/// The `tools` not found as executable files in the directories of `path`
/// (a `PATH` value).
fn missing_tools<'a>(path: &OsStr, tools: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let found = |tool: &str| {
        std::env::split_paths(path).any(|dir| {
            std::fs::metadata(dir.join(tool))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    };
    tools.iter().copied().filter(|(t, _)| !found(t)).collect()
}

/// Fails, naming the programs and their packages, unless every one the
/// demo runs is on `PATH`.
fn check_tools(path: &OsStr) -> anyhow::Result<()> {
    let missing = missing_tools(path, TOOLS);
    if missing.is_empty() {
        return Ok(());
    }
    let what: Vec<String> = missing
        .iter()
        .map(|(t, p)| format!("{t} (Debian package {p})"))
        .collect();
    let packages: Vec<&str> = missing.iter().map(|(_, p)| *p).collect();
    bail!(
        "the demo needs {}, not found on PATH; install with: apt-get install {}",
        what.join(" and "),
        packages.join(" ")
    )
}

/// Kills the child (SIGTERM, then SIGKILL) when dropped.
struct Proc(Child, &'static str);

impl Proc {
    fn terminate(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            // SAFETY: plain kill(2) on our own child's pid.
            unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.0.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.terminate();
    }
}

fn ping(ns: &Netns, target: Ipv4Addr, count: u32) -> anyhow::Result<String> {
    let out = ns
        .command("ping")
        .args(["-c", &count.to_string(), "-i", "0.2", "-W", "1", "-n", "-q"])
        .arg(target.to_string())
        .output()
        .context("running ping")?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        bail!("ping {target} from {} failed:\n{text}", ns.name);
    }
    Ok(text
        .lines()
        .filter(|l| l.contains("packets") || l.contains("rtt"))
        .collect::<Vec<_>>()
        .join("\n    "))
}

/// Waits until `target` answers one ping from `ns`, or the client died.
fn wait_for_tunnel(
    ns: &Netns,
    target: Ipv4Addr,
    client: &mut Proc,
    secs: u64,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if let Ok(Some(st)) = client.0.try_wait() {
            bail!("the client exited early ({st})");
        }
        let ok = ns
            .command("ping")
            .args(["-c", "1", "-W", "1", "-n", "-q", &target.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    bail!("the tunnel did not come up within {secs} s")
}

/// Waits until `addr` accepts TCP connections from `ns`.
fn wait_listening(ns: &Netns, addr: SocketAddr, server: &mut Proc) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(st)) = server.0.try_wait() {
            bail!("the server exited early ({st})");
        }
        let ok = in_netns(&ns.path(), move || {
            Ok(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok())
        })
        .join()
        .expect("probe thread")?;
        if ok {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("the server did not start listening on {addr}")
}

/// Sends bytes from the client namespace to a sink in the server namespace
/// for `secs` seconds; returns megabits per second as the sink counted them.
fn throughput(server: &Netns, client: &Netns, secs: u64) -> anyhow::Result<f64> {
    let addr = SocketAddr::from((SERVER_TUNNEL, 5201));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let sink = in_netns(&server.path(), move || {
        let l = TcpListener::bind(addr)?;
        ready_tx.send(()).ok();
        let (mut s, _) = l.accept()?;
        let start = Instant::now();
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0u64;
        loop {
            let n = s.read(&mut buf)?;
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        Ok((total, start.elapsed()))
    });
    ready_rx
        .recv_timeout(Duration::from_secs(5))
        .context("throughput sink did not start")?;
    let source = in_netns(&client.path(), move || {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        let buf = vec![0x5au8; 1 << 16];
        let end = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < end {
            s.write_all(&buf)?;
        }
        Ok(())
    });
    source.join().expect("source thread")?;
    let (bytes, took) = sink.join().expect("sink thread")?;
    Ok(bytes as f64 * 8.0 / took.as_secs_f64() / 1e6)
}

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    check_tools(&std::env::var_os("PATH").unwrap_or_default())?;
    let exe = std::env::current_exe().context("finding our own binary")?;
    let state = tempdir()?;
    let result = run_in(&exe, state.path(), &args);
    // Namespaces and children are dropped inside run_in; the state goes now.
    drop(state);
    result
}

struct TempDir(std::path::PathBuf);
impl TempDir {
    fn path(&self) -> &Path {
        &self.0
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
fn tempdir() -> anyhow::Result<TempDir> {
    let d = std::env::temp_dir().join(format!("tunnel443-demo-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(TempDir(d))
}

fn run_in(exe: &Path, state: &Path, args: &DemoArgs) -> anyhow::Result<()> {
    println!("demo: creating namespaces t443demo-srv and t443demo-cli joined by veth");
    let srv = Netns::create("t443demo-srv")?;
    let cli = Netns::create("t443demo-cli")?;
    veth(&srv, SERVER_VETH, &cli, CLIENT_VETH, 30, "t443dv")?;

    // The same zero-config state the server would generate, made here so the
    // demo knows the password and the fingerprint.
    let creds =
        crate::server::ensure_zero_config(state, &state.join("users"), &[SERVER_VETH.to_string()])?;
    let password_file = state.join("client-password");
    let password = creds
        .password
        .as_deref()
        .context("the demo's fresh state dir already had a users file")?;
    crate::state::write_new(&password_file, password.as_bytes(), 0o600)?;

    println!("demo: starting the server on {SERVER_VETH}:443 (zero-config, pool {POOL})");
    let mut server = Proc(
        srv.command(exe.to_str().context("binary path")?)
            .args([
                "server",
                "--listen",
                &format!("{SERVER_VETH}:443"),
                "--pool",
                POOL,
            ])
            .arg("--state-dir")
            .arg(state)
            .stdin(Stdio::null())
            .spawn()
            .context("starting the server")?,
        "server",
    );
    wait_listening(&cli, SocketAddr::from((SERVER_VETH, 443)), &mut server)?;
    println!(
        "demo: starting the client: tunnel443 client sstp://{}@{SERVER_VETH} --pin-sha256 {}",
        creds.user,
        hex::encode(creds.cert_sha256)
    );
    let mut client = Proc(
        cli.command(exe.to_str().context("binary path")?)
            .args([
                "client",
                &format!("sstp://{}@{SERVER_VETH}", creds.user),
                "--pin-sha256",
                &hex::encode(creds.cert_sha256),
                "--no-reconnect",
            ])
            .arg("--password-file")
            .arg(&password_file)
            .stdin(Stdio::null())
            .spawn()
            .context("starting the client")?,
        "client",
    );
    wait_for_tunnel(&cli, SERVER_TUNNEL, &mut client, 30)?;
    println!("demo: tunnel up");
    println!(
        "demo: ping client -> server {SERVER_TUNNEL}:\n    {}",
        ping(&cli, SERVER_TUNNEL, 5)?
    );
    let client_addr = Ipv4Addr::new(10, 44, 0, 2);
    println!(
        "demo: ping server -> client {client_addr}:\n    {}",
        ping(&srv, client_addr, 5)?
    );
    let mbps = throughput(&srv, &cli, args.seconds)?;
    println!(
        "demo: TCP throughput client -> server through the tunnel: {mbps:.0} Mbit/s over {} s",
        args.seconds
    );
    client.terminate();
    server.terminate();
    println!("demo: done; namespaces removed");
    let _ = (client.1, server.1);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_tools_are_named_with_their_package() {
        let dir = std::env::temp_dir().join(format!(
            "t443-demo-path-{}",
            crate::state::random_password()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let ip = dir.join("ip");
        std::fs::write(&ip, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&ip, std::fs::Permissions::from_mode(0o755)).unwrap();
        // Not executable: not found either.
        std::fs::write(dir.join("ping"), "").unwrap();
        let path = std::env::join_paths([dir.as_path(), Path::new("/nonexistent")]).unwrap();
        assert_eq!(missing_tools(&path, TOOLS), [("ping", "iputils-ping")]);
        let e = check_tools(&path).unwrap_err().to_string();
        assert_eq!(
            e,
            "the demo needs ping (Debian package iputils-ping), not found on PATH; \
             install with: apt-get install iputils-ping"
        );
        let e = check_tools(OsStr::new("")).unwrap_err().to_string();
        assert!(e.contains("ip (Debian package iproute2) and ping"), "{e}");
        assert!(e.ends_with("apt-get install iproute2 iputils-ping"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
