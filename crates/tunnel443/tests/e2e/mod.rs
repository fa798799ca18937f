//! Harness for the end-to-end tests: network namespaces joined by veth (the
//! binary's own `netns` module), our binary started inside them, and waits
//! with deadlines. Needs root (CI runs as root).
#![allow(dead_code)]

#[path = "../common_proxy/mod.rs"]
pub mod common;
#[path = "../../src/netns.rs"]
pub mod netns;

pub mod freeradius;

pub use common::{wait_until, Proc, TempDir};

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub use netns::{veth, Netns};

pub const BIN: &str = env!("CARGO_BIN_EXE_tunnel443");

static SEQ: AtomicU32 = AtomicU32::new(0);

/// `ctl stats --json` through the server's control socket `sock`.
pub fn ctl_stats(sock: &Path) -> serde_json::Value {
    let out = Command::new(BIN)
        .args(["ctl", "--socket"])
        .arg(sock)
        .args(["stats", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ctl stats: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A short unique tag for names (namespaces, devices) of one test.
pub fn tag() -> String {
    format!(
        "{}{}",
        std::process::id() % 10000,
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
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

/// Our CONNECT proxy on a free loopback port in client namespace `i`,
/// allowed to reach `upstream` (a proxy on that namespace's loopback):
/// the first hop of a proxy chain.
pub fn our_proxy_in(lab: &Lab, i: usize, upstream: std::net::SocketAddr) -> (Proc, String) {
    let ns = &lab.clients[i];
    let port = common::free_port();
    let mut cmd = ns.command(BIN);
    cmd.args(["proxy", "--listen", &format!("127.0.0.1:{port}")])
        .args([
            "--allow-net",
            "127.0.0.0/8",
            "--allow-port",
            &upstream.port().to_string(),
        ]);
    let proxy = Proc::spawn(
        cmd,
        lab.dir.path().join(format!("ourproxy-{}.log", tag())),
        "tunnel443 proxy",
    );
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !common::port_open_in(Some(&ns.name), addr) {
        assert!(Instant::now() < deadline, "{}", proxy.output());
        std::thread::sleep(Duration::from_millis(50));
    }
    (proxy, format!("http://{addr}"))
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

    /// Client namespace `i`'s own address on its link to the server.
    pub fn client_addr(&self, i: usize) -> String {
        format!("10.251.{i}.2")
    }

    /// Starts a zero-config server on 0.0.0.0:443 with `extra` arguments.
    pub fn start_server(&self, extra: &[&str]) -> Proc {
        let mut cmd = self.server.command(BIN);
        cmd.env("TUNNEL443_LOG", "debug");
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

    /// Writes `text` to file `name` in the lab's directory; its path.
    pub fn write_file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
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

    /// SHA-256 (hex) of the zero-config server certificate.
    pub fn fingerprint(&self) -> String {
        cert_sha256(&self.dir.path().join("state/cert.pem"))
    }

    /// Starts a client in client namespace `i` with `extra` arguments.
    pub fn start_client(&self, i: usize, user: &str, password: &str, extra: &[&str]) -> Proc {
        let pwf = self.dir.path().join(format!("pw-{}", tag()));
        std::fs::write(&pwf, password).unwrap();
        let mut cmd = self.clients[i].command(BIN);
        cmd.env("TUNNEL443_LOG", "debug");
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

/// Whether a TCP socket listens on `port` in `ns` (`ss`, so that a
/// one-shot server such as `iperf3 -s -1` is not woken by a probe).
pub fn listening(ns: &Netns, port: u16) -> bool {
    let out = ns
        .command("ss")
        .args(["-Hltn", &format!("sport = :{port}")])
        .output()
        .unwrap();
    !String::from_utf8_lossy(&out.stdout).trim().is_empty()
}

/// Waits until something listens on `port` in `ns`; panics after `secs`.
pub fn wait_listening(ns: &Netns, port: u16, secs: u64, what: &str) {
    assert!(
        wait_until(Duration::from_secs(secs), || listening(ns, port)),
        "{what} not listening on port {port} in {} after {secs}s",
        ns.name
    );
}

/// Runs `openssl ARGS` in `dir`; panics with its stderr on failure.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed P-256 test CA `NAME.pem` / `NAME.key` in `dir`.
pub fn test_ca(dir: &Path, name: &str) -> PathBuf {
    let (key, pem) = (format!("{name}.key"), format!("{name}.pem"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &pem,
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
        ],
    );
    dir.join(pem)
}

/// A certificate `NAME.pem` / `NAME.key` for `/CN=CN` issued by test CA
/// `ca` (made by [`test_ca`] in the same `dir`), with the X.509 v3
/// extensions in `ext` (openssl `-extfile` syntax). Returns (cert, key).
pub fn issue_cert(dir: &Path, ca: &str, name: &str, cn: &str, ext: &str) -> (PathBuf, PathBuf) {
    let (key, csr, crt, extf) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
        format!("{name}.ext"),
    );
    std::fs::write(dir.join(&extf), ext).unwrap();
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={cn}"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "2",
            "-extfile",
            &extf,
        ],
    );
    (dir.join(crt), dir.join(key))
}

/// `tunnel443 user add NAME --password-stdin --users-file FILE [--plain]`.
pub fn add_user(users: &Path, name: &str, password: &str, plain: bool) {
    use std::io::Write;
    let mut cmd = Command::new(BIN);
    cmd.args(["user", "add", name, "--password-stdin", "--users-file"])
        .arg(users)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if plain {
        cmd.arg("--plain");
    }
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "user add {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The PPP authentication method of the last `authenticated` log line
/// (`... authenticated user=U method=M`), in a comparable form: lower
/// case, letters and digits only (`Pap`, `pap`, `"PAP"` -> `pap`;
/// `EAP-MSCHAPv2` -> `eapmschapv2`).
pub fn auth_method(log: &str) -> Option<String> {
    log.lines()
        .rev()
        .filter(|l| l.contains("authenticated"))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("method="))
                .map(|m| {
                    m.chars()
                        .filter(char::is_ascii_alphanumeric)
                        .collect::<String>()
                        .to_lowercase()
                })
        })
        .next()
}

/// Asserts that `log` (the server's or the client's) reports the
/// authentication `method` (comparable form, see [`auth_method`]).
pub fn assert_auth_method(log: &str, method: &str, who: &str) {
    assert_eq!(
        auth_method(log).as_deref(),
        Some(method),
        "{who} did not authenticate with {method}:\n{log}"
    );
}

/// Asserts that `log` says the TLS handshake of `method` (`EAP-TLS`,
/// `PEAP`) ended with TLS `version` (`1.2`, `1.3`).
pub fn assert_tls_version(log: &str, method: &str, version: &str) {
    let done = format!("{method}: TLS handshake done");
    let tls = format!("tls={version}");
    assert!(
        log.lines()
            .any(|l| l.contains(&done) && l.split_whitespace().any(|w| w == tls)),
        "no {method} handshake with TLS {version}:\n{log}"
    );
}

/// SHA-256 (lower-case hex) of the DER of the PEM certificate at `cert`.
pub fn cert_sha256(cert: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(cert)
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl x509 {}", cert.display());
    let s = String::from_utf8_lossy(&out.stdout);
    s.trim()
        .rsplit('=')
        .next()
        .unwrap()
        .replace(':', "")
        .to_lowercase()
}

/// A self-signed P-256 server certificate `NAME.crt` / `NAME.key` for
/// `/CN=CN` (serverAuth EKU) in `dir`, and `NAME.pem` with both (haproxy's
/// `crt` format). Returns the path of `NAME.pem` and the certificate's
/// SHA-256.
pub fn self_signed_server_cert(dir: &Path, name: &str, cn: &str) -> (PathBuf, String) {
    let (key, crt) = (format!("{name}.key"), format!("{name}.crt"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            &format!("/CN={cn}"),
            "-addext",
            "extendedKeyUsage=serverAuth",
            "-keyout",
            &key,
            "-out",
            &crt,
            "-days",
            "2",
        ],
    );
    let pem = [
        std::fs::read(dir.join(&crt)).unwrap(),
        std::fs::read(dir.join(&key)).unwrap(),
    ]
    .concat();
    let both = dir.join(format!("{name}.pem"));
    std::fs::write(&both, pem).unwrap();
    (both, cert_sha256(&dir.join(crt)))
}
