//! Harness for the end-to-end tests: network namespaces joined by veth (the
//! binary's own `netns` module), our binary started inside them, and waits
//! with deadlines. Needs root (CI runs as root).
#![allow(dead_code)]

#[path = "../../src/netns.rs"]
pub mod netns;

use std::io::Read;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub use netns::{veth, Netns};

pub const BIN: &str = env!("CARGO_BIN_EXE_tunnel443");

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A short unique tag for names (namespaces, devices) of one test.
pub fn tag() -> String {
    format!(
        "{}{}",
        std::process::id() % 10000,
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);
impl TempDir {
    pub fn new(what: &str) -> Self {
        let d = std::env::temp_dir().join(format!("t443-{what}-{}", tag()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process whose output goes to a log file; SIGTERM then SIGKILL on drop.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
    pub name: String,
}

impl Proc {
    pub fn spawn(mut cmd: Command, log: PathBuf, name: &str) -> Self {
        let f = std::fs::File::create(&log).unwrap();
        cmd.stdout(f.try_clone().unwrap())
            .stderr(f)
            .stdin(Stdio::null());
        cmd.env("TUNNEL443_LOG", "debug");
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {name}: {e}"));
        Proc {
            child,
            log,
            name: name.into(),
        }
    }

    pub fn output(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// Waits up to `secs` for exit.
    pub fn wait_exit(&mut self, secs: u64) -> Option<ExitStatus> {
        let end = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < end {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn stop(&mut self) -> Option<ExitStatus> {
        if let Ok(Some(st)) = self.child.try_wait() {
            return Some(st);
        }
        self.signal(libc::SIGTERM);
        let st = self.wait_exit(10);
        if st.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        st
    }

    /// Waits until the output contains `needle`.
    pub fn wait_for_output(&mut self, needle: &str, secs: u64) -> bool {
        let end = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < end {
            if self.output().contains(needle) {
                return true;
            }
            if let Ok(Some(_)) = self.child.try_wait() {
                return self.output().contains(needle);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!(
                "----- {} log ({}) -----\n{}",
                self.name,
                self.log.display(),
                self.output()
            );
        }
    }
}

/// One ping from `ns` to `to`; true if answered.
pub fn ping_once(ns: &Netns, to: &str) -> bool {
    ns.command("ping")
        .args(["-c", "1", "-W", "1", "-n", "-q", to])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Pings until answered or `secs` pass.
pub fn wait_ping(ns: &Netns, to: &str, secs: u64) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if ping_once(ns, to) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// `count` pings; returns how many were answered.
pub fn ping_count(ns: &Netns, to: &str, count: u32) -> u32 {
    let out = ns
        .command("ping")
        .args([
            "-c",
            &count.to_string(),
            "-i",
            "0.2",
            "-W",
            "1",
            "-n",
            "-q",
            to,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.split(',')
        .find_map(|p| {
            p.trim()
                .strip_suffix(" received")
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// A server namespace and one or more client namespaces joined through a
/// bridge-less star: each client gets its own veth to the server.
pub struct Lab {
    pub server: Netns,
    pub clients: Vec<Netns>,
    pub dir: TempDir,
    pub tag: String,
}

pub const SERVER_VETH: Ipv4Addr = Ipv4Addr::new(10, 251, 0, 1);

impl Lab {
    /// Client i reaches the server at 10.251.i.1 from 10.251.i.2.
    pub fn new(clients: usize) -> Self {
        let tag = tag();
        let server = Netns::create(&format!("t443s{tag}")).unwrap();
        let mut cs = Vec::new();
        for i in 0..clients {
            let c = Netns::create(&format!("t443c{tag}x{i}")).unwrap();
            veth(
                &server,
                Ipv4Addr::new(10, 251, i as u8, 1),
                &c,
                Ipv4Addr::new(10, 251, i as u8, 2),
                30,
                &format!("v{tag}x{i}"),
            )
            .unwrap();
            cs.push(c);
        }
        Lab {
            server,
            clients: cs,
            dir: TempDir::new("lab"),
            tag,
        }
    }

    pub fn server_addr(&self, client: usize) -> String {
        format!("10.251.{client}.1")
    }

    /// Starts a zero-config server on 0.0.0.0:443 with `extra` arguments.
    pub fn start_server(&self, extra: &[&str]) -> Proc {
        let mut cmd = self.server.command(BIN);
        cmd.args(["server", "--listen", "0.0.0.0:443", "--state-dir"])
            .arg(self.dir.path().join("state"))
            .args(extra);
        let mut p = Proc::spawn(
            cmd,
            self.dir.path().join(format!("server-{}.log", tag())),
            "server",
        );
        assert!(
            p.wait_for_output("server started", 20),
            "server did not start:\n{}",
            p.output()
        );
        p
    }

    /// The generated user's password, from the zero-config users file.
    pub fn password(&self) -> String {
        let out = self.server_output_password();
        out.expect("no generated password")
    }

    fn server_output_password(&self) -> Option<String> {
        // The zero-config user is `vpn` with a plain password (see server::auth).
        let text = std::fs::read_to_string(self.dir.path().join("state/users")).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("vpn:plain:").map(str::to_string))
    }

    pub fn fingerprint(&self) -> String {
        let out = Command::new("openssl")
            .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
            .arg(self.dir.path().join("state/cert.pem"))
            .output()
            .unwrap();
        let s = String::from_utf8_lossy(&out.stdout);
        s.trim()
            .rsplit('=')
            .next()
            .unwrap()
            .replace(':', "")
            .to_lowercase()
    }

    /// Starts a client in client namespace `i` with `extra` arguments.
    pub fn start_client(&self, i: usize, user: &str, password: &str, extra: &[&str]) -> Proc {
        let pwf = self.dir.path().join(format!("pw-{}", tag()));
        std::fs::write(&pwf, password).unwrap();
        let mut cmd = self.clients[i].command(BIN);
        cmd.args(["client", &format!("sstp://{user}@{}", self.server_addr(i))])
            .arg("--password-file")
            .arg(&pwf)
            .args(extra);
        Proc::spawn(
            cmd,
            self.dir.path().join(format!("client{i}-{}.log", tag())),
            &format!("client{i}"),
        )
    }
}
