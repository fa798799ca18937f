//! What the server's log says about IP-HTTPS clients (MS-IPHTTPS) that an
//! admin has to act on: a refused client certificate (once per connection,
//! with the peer and the reason in plain words), and a client that leaves
//! without TLS close_notify (a normal disconnect, not a read error with a
//! link to the rustls manual).

mod e2e;

use e2e::*;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

const POOL: &str = "fd00:1::/48";
const SERVER_V6: &str = "fd00:1::1";

/// A client certificate `NAME.pem` / `NAME.key` issued by test CA `by`,
/// with extended key usage `eku`.
fn leaf(dir: &Path, name: &str, by: &str, eku: &str) -> (PathBuf, PathBuf) {
    let ext = format!("extendedKeyUsage={eku}\nbasicConstraints=CA:FALSE\n");
    issue_cert(dir, by, name, name, &ext)
}

/// One TLS handshake from client namespace 0 with this certificate
/// (openssl s_client: independent of our client's own checks).
fn handshake_with(lab: &Lab, cert: &Path, key: &Path) {
    let _ = lab.clients[0]
        .command("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("{}:443", lab.server_addr(0)),
        ])
        .arg("-cert")
        .arg(cert)
        .arg("-key")
        .arg(key)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
}

/// Waits until the server's log has a line with every needle.
fn wait_line(server: &Proc, needles: &[&str], secs: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let out = server.output();
        if let Some(l) = out.lines().find(|l| needles.iter().all(|n| l.contains(n))) {
            return l.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no server log line with {needles:?} within {secs} s:\n{out}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn refused_client_certificates_are_logged_once_with_the_reason() {
    let lab = Lab::new(1);
    let d = lab.dir.path();
    let trusted = test_ca(d, "ca");
    test_ca(d, "other-ca");
    let untrusted = leaf(d, "stranger", "other-ca", "clientAuth");
    let server_only = leaf(d, "server-eku", "ca", "serverAuth");
    let server = lab.start_server(&[
        "--iphttps-prefix",
        POOL,
        "--iphttps-client-ca",
        trusted.to_str().unwrap(),
    ]);
    // Client namespace 0 reaches the server from 10.251.0.2 (see `Lab`).
    let peer = "peer=10.251.0.2:";
    let marker = "IP-HTTPS TLS handshake refused (client certificate)";

    handshake_with(&lab, &untrusted.0, &untrusted.1);
    let line = wait_line(&server, &[marker, "not issued by a CA"], 20);
    assert!(line.contains(" INFO "), "{line}");
    assert!(line.contains(peer), "{line}");

    handshake_with(&lab, &server_only.0, &server_only.1);
    let line = wait_line(&server, &[marker, "clientAuth"], 20);
    assert!(line.contains(peer), "{line}");

    let out = server.output();
    assert_eq!(
        out.lines().filter(|l| l.contains(marker)).count(),
        2,
        "one line per refused connection:\n{out}"
    );
    assert!(!out.contains("Other("), "{out}");
    assert!(!out.contains("docs.rs"), "{out}");
}

#[test]
fn a_client_leaving_without_close_notify_is_a_normal_disconnect() {
    let lab = Lab::new(1);
    let d = lab.dir.path();
    let trusted = test_ca(d, "ca");
    let (cert, key) = leaf(d, "client0", "ca", "clientAuth");
    let server = lab.start_server(&[
        "--iphttps-prefix",
        POOL,
        "--iphttps-client-ca",
        trusted.to_str().unwrap(),
    ]);
    let mut cmd = lab.clients[0].command(BIN);
    cmd.env("TUNNEL443_LOG", "debug");
    cmd.args([
        "client",
        &format!("iphttps://{}/IPHTTPS", lab.server_addr(0)),
        "--pin-sha256",
        &lab.fingerprint(),
    ])
    .arg("--cert")
    .arg(&cert)
    .arg("--key")
    .arg(&key);
    let mut client = Proc::spawn(cmd, d.join("ipclient.log"), "ipclient");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !lab.clients[0]
        .command("ping")
        .args(["-6", "-c", "1", "-W", "1", "-n", "-q", SERVER_V6])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
    {
        assert!(
            Instant::now() < deadline,
            "IP-HTTPS link did not come up:\n{}\n{}",
            client.output(),
            server.output()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The process ends without a word: TCP FIN, no TLS close_notify.
    client.signal(libc::SIGKILL);
    let _ = client.wait_exit(10);
    let line = wait_line(&server, &["IP-HTTPS session closed"], 20);
    assert!(line.contains(" INFO "), "{line}");
    assert!(line.contains("reason=closed by the client"), "{line}");
    let out = server.output();
    assert!(!out.contains("docs.rs"), "{out}");
    assert!(!out.contains("read failed"), "{out}");
}
