//! Harness for the CONNECT tests: our binary, real squid / tinyproxy /
//! openssl s_server / curl, and small in-test peers, all on loopback with
//! ports chosen by the kernel. Every process is killed on drop; every wait
//! has a deadline. A missing tool is a test failure, not a skip: CI
//! installs them (scripts/install-deps).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_tunnel443");

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Panics unless `tool` is on PATH (or is an existing absolute path).
pub fn require(tool: &str) -> PathBuf {
    if tool.starts_with('/') {
        assert!(
            Path::new(tool).exists(),
            "{tool} is missing (scripts/install-deps installs it)"
        );
        return tool.into();
    }
    let path = std::env::var("PATH").unwrap_or_default();
    for dir in path.split(':').chain(["/usr/sbin", "/sbin"]) {
        let p = Path::new(dir).join(tool);
        if p.is_file() {
            return p;
        }
    }
    panic!("{tool} is not installed (scripts/install-deps installs it)");
}

/// A temporary directory, world-writable so daemons that drop privileges
/// (squid runs as `proxy`) can write there; removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(what: &str) -> Self {
        let d = std::env::temp_dir().join(format!(
            "t443p-{what}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        set_mode(&d, 0o777);
        TempDir(d)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A child process with stdout+stderr in a log file; SIGTERM, then SIGKILL,
/// on drop.
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
        cmd.env("NO_COLOR", "1");
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

    /// Waits until the log contains `needle`; panics with the log after
    /// `secs` or if the process exits first.
    pub fn wait_log(&mut self, needle: &str, secs: u64) -> String {
        self.wait_log_count(needle, 1, secs)
    }

    /// Waits until the log contains `needle` at least `count` times; panics
    /// with the log after `secs` or if the process exits first.
    pub fn wait_log_count(&mut self, needle: &str, count: usize, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let out = self.output();
            if out.matches(needle).count() >= count {
                return out;
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!(
                    "{} exited ({st}) before logging {needle:?} {count} times:\n{out}",
                    self.name
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "{} did not log {needle:?} {count} times within {secs}s:\n{out}",
                    self.name
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the log contains `needle` (false after `secs`, or if the
    /// process exits without having logged it).
    pub fn wait_for_output(&mut self, needle: &str, secs: u64) -> bool {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if self.output().contains(needle) {
                return true;
            }
            if let Ok(Some(_)) = self.child.try_wait() {
                return self.output().contains(needle);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// SIGTERM, up to 10 s for the exit, then SIGKILL; the exit status if
    /// it exited by itself.
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

    pub fn wait_exit(&mut self, secs: u64) -> Option<ExitStatus> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("--- {} log ---\n{}", self.name, self.output());
        }
    }
}

/// Polls `cond` every 50 ms until it holds (true) or `within` has passed
/// (false; `cond` is asked once more at the deadline). The way every test
/// waits: never a fixed sleep before an assertion.
pub fn wait_until(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Extracts `addr=IP:PORT` from a log line containing `marker`.
pub fn logged_addr(log: &str, marker: &str) -> SocketAddr {
    let line = log
        .lines()
        .find(|l| l.contains(marker))
        .unwrap_or_else(|| panic!("no {marker:?} line in:\n{log}"));
    let a = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("addr="))
        .unwrap_or_else(|| panic!("no addr= in {line:?}"));
    a.parse().unwrap_or_else(|e| panic!("{a:?}: {e}"))
}

/// Our proxy on a kernel-chosen loopback port.
pub struct OurProxy {
    pub proc: Proc,
    pub addr: SocketAddr,
    _dir: TempDir,
}

impl OurProxy {
    pub fn start(args: &[&str]) -> Self {
        let dir = TempDir::new("ourproxy");
        let mut cmd = Command::new(BIN);
        cmd.args(["proxy", "--listen", "127.0.0.1:0"]).args(args);
        cmd.env("TUNNEL443_LOG", "info");
        let mut proc = Proc::spawn(cmd, dir.file("proxy.log"), "tunnel443 proxy");
        let log = proc.wait_log("CONNECT proxy listening", 20);
        let addr = logged_addr(&log, "CONNECT proxy listening");
        OurProxy {
            proc,
            addr,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits for an access-log line containing every needle.
    pub fn wait_access(&mut self, needles: &[&str], secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let out = self.proc.output();
            if let Some(l) = out
                .lines()
                .find(|l| l.contains("tunnel443::access") && needles.iter().all(|n| l.contains(n)))
            {
                return l.to_owned();
            }
            if Instant::now() > deadline {
                panic!("no access-log line with {needles:?} within {secs}s:\n{out}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Polls until a TCP connect to `addr` succeeds.
pub fn wait_port(addr: SocketAddr, secs: u64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} not listening on {addr} after {secs}s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A free loopback port (for daemons that cannot report theirs). The small
/// race with other processes is acceptable on a test machine.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An echo server: every connection gets back what it sends, and a FIN
/// after the client's FIN. Runs until the test process exits.
pub fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 16384];
                loop {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
                let _ = s.shutdown(Shutdown::Write);
            });
        }
    });
    addr
}

/// `openssl s_server -www` with a fresh self-signed certificate.
pub struct TlsServer {
    pub proc: Proc,
    pub addr: SocketAddr,
    _dir: TempDir,
}

impl TlsServer {
    pub fn start() -> Self {
        let openssl = require("openssl");
        let dir = TempDir::new("tls");
        let (key, cert) = (dir.file("key.pem"), dir.file("cert.pem"));
        let st = Command::new(&openssl)
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=localhost",
                "-keyout",
            ])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "openssl req failed");
        let port = free_port();
        let mut cmd = Command::new(&openssl);
        cmd.args(["s_server", "-www", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key);
        let proc = Proc::spawn(cmd, dir.file("s_server.log"), "openssl s_server");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        wait_port(addr, 15, "openssl s_server");
        TlsServer {
            proc,
            addr,
            _dir: dir,
        }
    }
}

/// Real squid on a private config, optionally requiring Basic auth through
/// `basic_ncsa_auth` with an htpasswd file made by `htpasswd`.
pub struct Squid {
    pub proc: Proc,
    pub addr: SocketAddr,
    pub dir: TempDir,
}

pub const NCSA_AUTH: &str = "/usr/lib/squid/basic_ncsa_auth";
pub const DIGEST_AUTH: &str = "/usr/lib/squid/digest_file_auth";
pub const NTLM_FAKE_AUTH: &str = "/usr/lib/squid/ntlm_fake_auth";

/// The authentication a test squid requires.
#[derive(Clone, Copy)]
pub enum SquidAuth<'a> {
    /// `basic_ncsa_auth` with one htpasswd user.
    Basic(&'a str, &'a str),
    /// `digest_file_auth` with one user; `extra` is more `auth_param
    /// digest` lines (e.g. `nonce_max_count 1`).
    Digest(&'a str, &'a str, &'a str),
    /// `ntlm_fake_auth`: any NTLM exchange is accepted.
    NtlmFake,
}

/// A command that runs `program` in network namespace `netns` (or here).
pub fn command_in(netns: Option<&str>, program: &Path) -> Command {
    match netns {
        None => Command::new(program),
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(program);
            c
        }
    }
}

/// Whether something accepts TCP connections on `addr` in `netns`.
pub fn port_open_in(netns: Option<&str>, addr: SocketAddr) -> bool {
    match netns {
        None => TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok(),
        Some(ns) => Command::new("ip")
            .args(["netns", "exec", ns, "bash", "-c"])
            .arg(format!("exec 3<>/dev/tcp/{}/{}", addr.ip(), addr.port()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false),
    }
}

impl Squid {
    pub fn start(auth: Option<(&str, &str)>) -> Self {
        Self::start_in(auth, None)
    }

    /// Squid listening on 127.0.0.1 of network namespace `netns`.
    pub fn start_in(auth: Option<(&str, &str)>, netns: Option<&str>) -> Self {
        Self::start_with(auth.map(|(u, p)| SquidAuth::Basic(u, p)), netns)
    }

    /// Squid requiring `auth`, on 127.0.0.1 of `netns` (or here).
    pub fn start_with(auth: Option<SquidAuth>, netns: Option<&str>) -> Self {
        let squid = require("squid");
        let dir = TempDir::new("squid");
        let port = free_port();
        let d = dir.path().display();
        let mut conf = format!(
            "http_port 127.0.0.1:{port}\n\
             pid_filename {d}/squid.pid\n\
             cache_log {d}/cache.log\n\
             access_log stdio:{d}/access.log\n\
             cache_store_log none\n\
             cache deny all\n\
             cache_mem 8 MB\n\
             coredump_dir {d}\n\
             netdb_filename none\n\
             pinger_enable off\n\
             shutdown_lifetime 0 seconds\n\
             cache_effective_user proxy\n\
             acl t443_clients src 127.0.0.0/8\n"
        );
        let require_auth = "acl t443_authed proxy_auth REQUIRED\n\
                            http_access deny !t443_clients\n\
                            http_access allow t443_authed\n\
                            http_access deny all\n";
        match auth {
            Some(SquidAuth::Digest(user, pass, extra)) => {
                require(DIGEST_AUTH);
                let pw = dir.file("digest-users");
                std::fs::write(&pw, format!("{user}:{pass}\n")).unwrap();
                set_mode(&pw, 0o644);
                conf.push_str(&format!(
                    "auth_param digest program {DIGEST_AUTH} {}\n\
                     auth_param digest children 2\n\
                     auth_param digest realm t443-digest\n\
                     {extra}\n{require_auth}",
                    pw.display()
                ));
            }
            Some(SquidAuth::NtlmFake) => {
                require(NTLM_FAKE_AUTH);
                conf.push_str(&format!(
                    "auth_param ntlm program {NTLM_FAKE_AUTH}\n\
                     auth_param ntlm children 2\n{require_auth}"
                ));
            }
            Some(SquidAuth::Basic(user, pass)) => {
                require(NCSA_AUTH);
                let htpasswd = require("htpasswd");
                let pw = dir.file("htpasswd");
                let st = Command::new(htpasswd)
                    .arg("-cbB")
                    .arg(&pw)
                    .args([user, pass])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .unwrap();
                assert!(st.success(), "htpasswd failed");
                set_mode(&pw, 0o644);
                conf.push_str(&format!(
                    "auth_param basic program {NCSA_AUTH} {}\n\
                     auth_param basic children 2\n\
                     auth_param basic realm t443-squid\n\
                     acl t443_authed proxy_auth REQUIRED\n\
                     http_access deny !t443_clients\n\
                     http_access allow t443_authed\n\
                     http_access deny all\n",
                    pw.display()
                ));
            }
            None => conf.push_str("http_access allow t443_clients\nhttp_access deny all\n"),
        }
        let cf = dir.file("squid.conf");
        std::fs::write(&cf, conf).unwrap();
        let mut cmd = command_in(netns, &squid);
        cmd.arg("-N").arg("-f").arg(&cf);
        let proc = Proc::spawn(cmd, dir.file("squid.out"), "squid");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut s = Squid { proc, addr, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !port_open_in(netns, addr) {
            if let Ok(Some(st)) = s.proc.child.try_wait() {
                panic!(
                    "squid exited ({st}):\n{}\n{}",
                    s.proc.output(),
                    s.cache_log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "squid not listening after 30s:\n{}",
                s.cache_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn cache_log(&self) -> String {
        std::fs::read_to_string(self.dir.file("cache.log")).unwrap_or_default()
    }

    /// Squid writes access.log lines when a transaction ends.
    pub fn wait_access(&self, needle: &str, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let log = std::fs::read_to_string(self.dir.file("access.log")).unwrap_or_default();
            if let Some(l) = log.lines().find(|l| l.contains(needle)) {
                return l.to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "squid access.log has no {needle:?}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.file("access.log")).unwrap_or_default()
    }
}

/// Real tinyproxy on a private config.
pub struct Tinyproxy {
    pub proc: Proc,
    pub addr: SocketAddr,
    pub dir: TempDir,
}

impl Tinyproxy {
    pub fn start() -> Self {
        Self::start_in(None)
    }

    /// Tinyproxy listening on 127.0.0.1 of network namespace `netns`.
    pub fn start_in(netns: Option<&str>) -> Self {
        let tp = require("tinyproxy");
        let dir = TempDir::new("tinyproxy");
        let port = free_port();
        let d = dir.path().display();
        let conf = format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 60\nPidFile \"{d}/tinyproxy.pid\"\n\
             LogFile \"{d}/tinyproxy.log\"\nLogLevel Info\nMaxClients 50\nAllow 127.0.0.1\n"
        );
        let cf = dir.file("tinyproxy.conf");
        std::fs::write(&cf, conf).unwrap();
        let mut cmd = command_in(netns, &tp);
        cmd.arg("-d").arg("-c").arg(&cf);
        let proc = Proc::spawn(cmd, dir.file("tinyproxy.out"), "tinyproxy");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !port_open_in(netns, addr) {
            assert!(
                Instant::now() < deadline,
                "tinyproxy not listening on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Tinyproxy { proc, addr, dir }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.file("tinyproxy.log")).unwrap_or_default()
    }
}

/// Sends `req` to a proxy and reads the response head (bounded); returns
/// the status code, the head text, and the stream (positioned after the
/// head, though a few body bytes may have been consumed).
pub fn raw_request(proxy: SocketAddr, req: &[u8]) -> (u16, String, TcpStream) {
    let mut s = TcpStream::connect(proxy).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(req).unwrap();
    let (code, head) = read_head(&mut s);
    (code, head, s)
}

/// Reads one byte at a time until the end of a response head.
pub fn read_head(s: &mut TcpStream) -> (u16, String) {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && !head.ends_with(b"\n\n") {
        match s.read(&mut b) {
            Ok(1) => head.push(b[0]),
            Ok(_) => break,
            Err(e) => panic!(
                "reading response head: {e} (got {:?})",
                String::from_utf8_lossy(&head)
            ),
        }
        assert!(head.len() < 16384, "response head too long");
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    (code, text)
}

/// Writes `msg` and reads exactly as many bytes back.
pub fn echo_roundtrip(s: &mut TcpStream, msg: &[u8]) {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(msg).unwrap();
    let mut back = vec![0u8; msg.len()];
    s.read_exact(&mut back).unwrap();
    assert_eq!(back, msg);
}

/// How `run_connect` ends standard input.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Stdin {
    /// Close it right after writing the input (a half-close through the
    /// tunnel: only proxies that relay half-closes return everything).
    CloseAtOnce,
    /// Keep it open until as many bytes as the input came back on stdout
    /// (an echo), then close it: works through proxies like squid that
    /// close both sides when one side closes.
    CloseAfterEcho,
}

/// Runs `tunnel443 connect ARGS`, feeding `input` on stdin, and returns
/// (status, stdout, stderr), killing it after `secs`.
pub fn run_connect(
    args: &[&str],
    env: &[(&str, &str)],
    input: &[u8],
    stdin_mode: Stdin,
    secs: u64,
) -> (ExitStatus, Vec<u8>, String) {
    let mut cmd = Command::new(BIN);
    cmd.arg("connect").args(args);
    cmd.env_remove("https_proxy").env_remove("HTTPS_PROXY");
    cmd.env_remove("no_proxy").env_remove("NO_PROXY");
    cmd.env("NO_COLOR", "1").env("TUNNEL443_LOG", "debug");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawning tunnel443 connect");
    let mut stdin = child.stdin.take().unwrap();
    let want = input.len();
    let input = input.to_vec();
    let (echoed_tx, echoed_rx) = std::sync::mpsc::channel::<()>();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
        if stdin_mode == Stdin::CloseAfterEcho {
            // Returns on the signal, or when the reader ends (sender dropped).
            let _ = echoed_rx.recv_timeout(Duration::from_secs(secs));
        }
        drop(stdin);
    });
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let r_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let mut buf = [0u8; 16384];
        let mut signalled = false;
        loop {
            match out.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => v.extend_from_slice(&buf[..n]),
            }
            if !signalled && v.len() >= want {
                let _ = echoed_tx.send(());
                signalled = true;
            }
        }
        v
    });
    let r_err = std::thread::spawn(move || {
        let mut v = String::new();
        let _ = err.read_to_string(&mut v);
        v
    });
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let e = r_err.join().unwrap();
            panic!("tunnel443 connect {args:?} did not finish in {secs}s; stderr:\n{e}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    writer.join().unwrap();
    (status, r_out.join().unwrap(), r_err.join().unwrap())
}

/// A payload that is not trivially compressible or repetitive.
pub fn payload(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}
