//! ACME end to end against pebble (Let's Encrypt's test CA, Debian package
//! `pebble`): the server obtains its certificate with tls-alpn-01 answered
//! on its own :443 listener; our client connects trusting only pebble's
//! root (no pin, no --insecure); a short-lived certificate (60 s) is
//! renewed at two thirds of its lifetime while a session stays up, and a
//! new session binds (SSTP crypto binding) to the new certificate's hash.
//! Needs root (network namespaces).

mod e2e;

use std::path::Path;
use std::time::Duration;

use e2e::*;

/// `/etc/netns/NS/hosts`: `ip netns exec` mounts it over /etc/hosts, so the
/// client resolves the certificate's name to the server. Removed on drop.
struct Hosts(std::path::PathBuf);

impl Hosts {
    fn new(ns: &Netns, line: &str) -> Self {
        let dir = Path::new("/etc/netns").join(&ns.name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("hosts"), format!("127.0.0.1 localhost\n{line}\n")).unwrap();
        Hosts(dir)
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The SHA-256 (hex) of the leaf certificate the server presents now.
fn served_sha256(ns: &Netns, dir: &Path, addr: &str) -> String {
    let out = ns
        .command("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect {addr}:443 -servername vpn.test </dev/null 2>/dev/null | openssl x509 -outform der | sha256sum"
        ))
        .current_dir(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The `sha256=` of every "certificate obtained" line of the server log.
fn obtained(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("ACME: certificate obtained"))
        .filter_map(|l| l.split("sha256=").nth(1))
        .map(|s| s.split_whitespace().next().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn certificate_from_pebble_then_renewed_under_a_live_session() {
    let lab = Lab::new(1);
    let dir = lab.dir.path();
    // pebble's own HTTPS certificate, from a test CA the server is told to trust.
    test_ca(dir, "pebble-ca");
    let (pcert, pkey) = issue_cert(
        dir,
        "pebble-ca",
        "pebble",
        "pebble",
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    );
    let cfg = lab.write_file(
        "pebble.json",
        &format!(
            r#"{{"pebble": {{"listenAddress": "127.0.0.1:14000", "managementListenAddress": "127.0.0.1:15000",
             "certificate": "{}", "privateKey": "{}", "httpPort": 5002, "tlsPort": 443,
             "ocspResponderURL": "", "externalAccountBindingRequired": false,
             "certificateValidityPeriod": 60}}}}"#,
            pcert.display(),
            pkey.display()
        ),
    );
    // Its DNS: every name is the server's address on the client's link.
    let mut dns = lab.server.command("pebble-challtestsrv");
    dns.args(["-defaultIPv4", &lab.server_addr(0), "-defaultIPv6", ""])
        .args(["-dns01", "127.0.0.1:8053", "-management", "127.0.0.1:8055"])
        .args(["-http01", "", "-https01", "", "-tlsalpn01", ""]);
    let _dns = Proc::spawn(dns, dir.join("challtestsrv.log"), "pebble-challtestsrv");
    let mut ca = lab.server.command("pebble");
    ca.env("PEBBLE_VA_NOSLEEP", "1")
        .env("PEBBLE_WFE_NONCEREJECT", "0")
        .arg("-config")
        .arg(&cfg)
        .args(["-dnsserver", "127.0.0.1:8053"]);
    let mut pebble = Proc::spawn(ca, dir.join("pebble.log"), "pebble");
    pebble.wait_log("ACME directory available", 20);

    let users = dir.join("users");
    add_user(&users, "alice", "secret123", false);
    let mut server = lab.start_server(&[
        "--users-file",
        users.to_str().unwrap(),
        "--acme-domain",
        "vpn.test",
        "--acme-directory",
        "https://127.0.0.1:14000/dir",
        "--acme-ca",
        dir.join("pebble-ca.pem").to_str().unwrap(),
    ]);
    let log = server.wait_log("ACME: certificate obtained", 60);
    assert!(
        log.contains("ACME: answered a tls-alpn-01 validation"),
        "{log}"
    );
    let first = obtained(&log)[0].clone();
    let meta = std::fs::metadata(lab.dir.path().join("state/acme/key.pem")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "the ACME key is private"
    );
    assert_eq!(
        served_sha256(&lab.clients[0], dir, &lab.server_addr(0)),
        first
    );

    // pebble's root, from its management API: the only trust the client gets.
    let root = lab
        .server
        .command("curl")
        .args(["-sfk", "https://127.0.0.1:15000/roots/0"])
        .output()
        .unwrap();
    assert!(root.status.success(), "no root from pebble");
    let root_pem = lab.write_file("pebble-root.pem", &String::from_utf8(root.stdout).unwrap());
    let _hosts = Hosts::new(&lab.clients[0], &format!("{} vpn.test", lab.server_addr(0)));
    let client = |n: u32| {
        let pw = lab.write_file(&format!("pw{n}"), "secret123");
        let mut cmd = lab.clients[0].command(BIN);
        cmd.env("TUNNEL443_LOG", "info")
            .args(["client", "sstp://alice@vpn.test", "--no-reconnect"])
            .args(["--tun-name", &format!("t443a{n}")])
            .arg("--ca")
            .arg(&root_pem)
            .arg("--password-file")
            .arg(pw);
        Proc::spawn(cmd, dir.join(format!("client{n}.log")), "client")
    };
    let mut c1 = client(1);
    c1.wait_log("connected: address", 30);
    assert!(wait_ping(&lab.clients[0], "10.44.0.1", 10));

    // The 60 s certificate is renewed at 40 s; the live session stays up.
    let log = server.wait_log_count("ACME: certificate obtained", 2, 90);
    let second = obtained(&log)[1].clone();
    assert_ne!(first, second, "renewal gave a new certificate");
    assert!(
        log.contains("certificate reloaded (new sessions use it) cause=\"ACME\""),
        "{log}"
    );
    assert!(
        wait_ping(&lab.clients[0], "10.44.0.1", 5),
        "the first session survives the renewal"
    );
    assert!(
        c1.child.try_wait().unwrap().is_none(),
        "client 1 still running"
    );
    assert_eq!(
        served_sha256(&lab.clients[0], dir, &lab.server_addr(0)),
        second
    );

    // A new session binds to the new certificate's hash.
    let bound_before = server.output().matches("crypto binding verified").count();
    let mut c2 = client(2);
    c2.wait_log("connected: address", 30);
    assert!(
        wait_until(Duration::from_secs(5), || {
            server.output().matches("crypto binding verified").count() == bound_before + 1
        }),
        "{}",
        server.output()
    );
    assert_eq!(
        obtained(&server.output()).len(),
        2,
        "no third certificate yet"
    );
}
