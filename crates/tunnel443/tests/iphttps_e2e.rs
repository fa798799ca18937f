//! End-to-end IP-HTTPS tests (MS-IPHTTPS) in network namespaces: our server
//! (mutual TLS, a /64 per client from fd00:1::/48) and our client, real TLS,
//! real TUN devices, ping -6, iperf3, squid.

mod e2e;

use e2e::common::Squid;
use e2e::*;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

const POOL: &str = "fd00:1::/48";
const SERVER_V6: &str = "fd00:1::1";

/// A CA and `n` client certificates signed by it, in the lab's directory.
/// Returns the CA path and (cert, key) pairs.
fn pki(lab: &Lab, n: usize) -> (PathBuf, Vec<(PathBuf, PathBuf)>) {
    let d = lab.dir.path();
    let ca = test_ca(d, "ca");
    let ids = (0..n)
        .map(|i| {
            issue_cert(
                d,
                "ca",
                &format!("c{i}"),
                &format!("client{i}"),
                "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n",
            )
        })
        .collect();
    (ca, ids)
}

fn start_server(lab: &Lab, ca: &Path) -> Proc {
    start_server_with(lab, ca, &[])
}

fn start_server_with(lab: &Lab, ca: &Path, extra: &[&str]) -> Proc {
    let mut args = vec![
        "--iphttps-prefix",
        POOL,
        "--iphttps-client-ca",
        ca.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    lab.start_server(&args)
}

/// `ip -6 route show DST` in `ns`.
fn route6(ns: &Netns, dst: &str) -> String {
    let out = ns
        .command("ip")
        .args(["-6", "route", "show", dst])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// What `openssl s_client` says about the server's certificate request
/// for a handshake with this SNI.
fn cert_request(lab: &Lab, sni: &str) -> String {
    let out = lab.clients[0]
        .command("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("{}:443", lab.server_addr(0)),
            "-servername",
            sni,
            "-tls1_2",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn start_client(lab: &Lab, i: usize, id: Option<&(PathBuf, PathBuf)>, extra: &[&str]) -> Proc {
    let mut cmd = lab.clients[i].command(BIN);
    cmd.env("TUNNEL443_LOG", "debug");
    cmd.args([
        "client",
        &format!("iphttps://{}/IPHTTPS", lab.server_addr(i)),
        "--pin-sha256",
        &lab.fingerprint(),
    ]);
    if let Some((c, k)) = id {
        cmd.arg("--cert").arg(c).arg("--key").arg(k);
    }
    cmd.args(extra);
    Proc::spawn(
        cmd,
        lab.dir.path().join(format!("ipclient{i}-{}.log", tag())),
        &format!("ipclient{i}"),
    )
}

/// The client's global address (from SLAAC) on its TUN device.
fn global_addr(ns: &Netns) -> String {
    let mut addr = None;
    let found = wait_until(Duration::from_secs(10), || {
        let out = ns
            .command("ip")
            .args([
                "-6", "-o", "addr", "show", "dev", "t443c0", "scope", "global",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        addr = text
            .split_whitespace()
            .skip_while(|w| *w != "inet6")
            .nth(1)
            .map(|a| a.split('/').next().unwrap().to_string());
        addr.is_some()
    });
    assert!(found, "no global IPv6 address on the client");
    addr.unwrap()
}

fn up(lab: &Lab, i: usize, client: &Proc) -> String {
    assert!(
        wait_ping(&lab.clients[i], SERVER_V6, 30),
        "IP-HTTPS link did not come up:\n{}",
        client.output()
    );
    global_addr(&lab.clients[i])
}

#[test]
fn ping6_both_ways_iperf3_refusals_and_garbage() {
    let lab = Lab::new(3);
    let (ca, ids) = pki(&lab, 1);
    let mut server = start_server(&lab, &ca);
    let c0 = start_client(&lab, 0, Some(&ids[0]), &[]);
    let a0 = up(&lab, 0, &c0);
    assert!(a0.starts_with("fd00:1:0:1:"), "first client /64: {a0}");
    // A fresh namespace does not forward: the server says so at start.
    assert!(
        server
            .output()
            .contains("sysctl=\"net.ipv6.conf.all.forwarding\""),
        "{}",
        server.output()
    );
    assert_eq!(
        ping_count(&lab.clients[0], SERVER_V6, 5),
        5,
        "client -> server"
    );
    assert_eq!(ping_count(&lab.server, &a0, 5), 5, "server -> client");
    // Both ends of the HTTPS connection run TCP keepalive (IP-HTTPS has
    // none of its own).
    for ns in [&lab.server, &lab.clients[0]] {
        let out = ns
            .command("ss")
            .args([
                "-tnoH",
                "state",
                "established",
                "( sport = :443 or dport = :443 )",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("timer:(keepalive"), "{}: {text}", ns.name);
    }
    // The RA's default router: ::/1 and 8000::/1 through the tunnel.
    for half in ["::/1", "8000::/1"] {
        let r = route6(&lab.clients[0], half);
        assert!(r.contains("dev t443c0"), "{half}: {r:?}");
    }

    // iperf3 through the tunnel.
    let mut iperf_s = lab.server.command("iperf3");
    iperf_s.args(["-s", "-1", "-B", SERVER_V6]);
    let _srv = Proc::spawn(iperf_s, lab.dir.path().join("iperf6-s.log"), "iperf3 -s");
    wait_listening(&lab.server, 5201, 10, "iperf3 -s");
    let out = lab.clients[0]
        .command("iperf3")
        .args(["-6", "-c", SERVER_V6, "-t", "5", "-f", "m"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "iperf3 failed:\n{text}");
    let line = text.lines().find(|l| l.contains("receiver")).unwrap();
    println!("IP-HTTPS iperf3 client -> server: {line}");

    // No client certificate: refused (403 after TLS), no tunnel.
    let mut c1 = start_client(&lab, 1, None, &["--no-reconnect"]);
    let st = c1
        .wait_exit(30)
        .expect("client without a certificate should give up");
    assert!(!st.success(), "{}", c1.output());
    assert!(
        server.output().contains("no verified certificate"),
        "{}",
        server.output()
    );

    // Garbage after the POST head: that session ends, the other continues.
    let (c, k) = &ids[0];
    let mut s = lab.clients[2]
        .command("openssl")
        .args([
            "s_client",
            "-quiet",
            "-connect",
            &format!("{}:443", lab.server_addr(2)),
        ])
        .arg("-cert")
        .arg(c)
        .arg("-key")
        .arg(k)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = s.stdin.take().unwrap();
        stdin
            .write_all(
                b"POST /IPHTTPS HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551615\r\n\r\n",
            )
            .unwrap();
        // The garbage comes after the server took the head and set the
        // session up, not in the same read as the head.
        let peer = format!("peer={}:", lab.client_addr(2));
        assert!(
            wait_until(Duration::from_secs(20), || server
                .output()
                .lines()
                .any(|l| l.contains("IP-HTTPS session up") && l.contains(&peer))),
            "no session for the garbage sender:\n{}",
            server.output()
        );
        let _ = stdin.write_all(b"this is not IPv6 at all, just garbage bytes......\n");
        assert!(
            server.wait_for_output("non-IPv6 input; IP-HTTPS session terminated", 20),
            "{}",
            server.output()
        );
    }
    let _ = s.kill();
    let _ = s.wait();
    assert_eq!(
        ping_count(&lab.clients[0], SERVER_V6, 3),
        3,
        "other client unaffected"
    );
}

#[test]
fn two_clients_through_the_server_without_spoofing() {
    let lab = Lab::new(2);
    let (ca, ids) = pki(&lab, 2);
    let conf = lab.write_file("tunnel443.toml", "[ipv4]\nclient_to_client = true\n");
    let mut server = start_server_with(&lab, &ca, &["--config", conf.to_str().unwrap()]);
    // Client-to-client traffic is forwarded by the server host's kernel
    // (TUN in, TUN out), as for SSTP: the admin enables forwarding and
    // allows it (`[ipv4] client_to_client`).
    let st = lab
        .server
        .command("sysctl")
        .args(["-qw", "net.ipv6.conf.all.forwarding=1"])
        .status()
        .unwrap();
    assert!(st.success());
    let c0 = start_client(&lab, 0, Some(&ids[0]), &[]);
    let c1 = start_client(&lab, 1, Some(&ids[1]), &[]);
    let a0 = up(&lab, 0, &c0);
    let a1 = up(&lab, 1, &c1);
    assert_ne!(a0.split(':').nth(3), a1.split(':').nth(3), "one /64 each");
    assert_eq!(ping_count(&lab.clients[0], &a1, 3), 3, "client0 -> client1");
    assert_eq!(ping_count(&lab.clients[1], &a0, 3), 3, "client1 -> client0");

    // Client 1 claims client 0's address: the server drops it (client 0
    // would otherwise answer the server's reply... the echo request never
    // reaches the server's stack, so nothing comes back anywhere).
    let st = lab.clients[1]
        .command("ip")
        .args([
            "-6",
            "addr",
            "add",
            &format!("{a0}/128"),
            "dev",
            "t443c0",
            "nodad",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let out = lab.clients[1]
        .command("ping")
        .args([
            "-6", "-c", "3", "-i", "0.2", "-W", "1", "-I", &a0, SERVER_V6,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "spoofed pings must not be answered");
    assert!(
        server.wait_for_output("spoofed source dropped", 10),
        "{}",
        server.output()
    );
    assert_eq!(ping_count(&lab.clients[0], SERVER_V6, 3), 3);
}

#[test]
fn reconnects_after_server_restart() {
    let lab = Lab::new(1);
    let (ca, ids) = pki(&lab, 1);
    let mut server = start_server(&lab, &ca);
    let c0 = start_client(&lab, 0, Some(&ids[0]), &[]);
    up(&lab, 0, &c0);
    server.stop();
    // The final RA withdrew the default route, the link going down the
    // address (the next session may get another /64).
    wait_until(Duration::from_secs(10), || {
        let out = c0.output();
        out.contains("IPv6 route withdrawn") && out.contains("IPv6 address withdrawn")
    });
    let out = c0.output();
    assert!(out.contains("IPv6 route withdrawn"), "{out}");
    assert!(out.contains("IPv6 address withdrawn"), "{out}");
    assert_eq!(route6(&lab.clients[0], "::/1"), "");
    let _server = start_server(&lab, &ca);
    // §3.1.2.1: the first retry comes 30 s after the failure.
    assert!(
        wait_ping(&lab.clients[0], SERVER_V6, 60),
        "no reconnect:\n{}",
        c0.output()
    );
    assert!(
        c0.output().contains("reconnect scheduled"),
        "{}",
        c0.output()
    );
}

/// A full link through `proxies` (nearest first, squid last), pinged and
/// closed; squid's access log shows the CONNECT to the server.
fn link_through(lab: &Lab, id: &(PathBuf, PathBuf), proxies: &[String], squid: &Squid) {
    let mut args = Vec::new();
    for p in proxies {
        args.extend(["--proxy", p.as_str()]);
    }
    let c0 = start_client(lab, 0, Some(id), &args);
    up(lab, 0, &c0);
    assert_eq!(ping_count(&lab.clients[0], SERVER_V6, 3), 3);
    drop(c0);
    let line = squid.wait_access("CONNECT", 10);
    assert!(
        line.contains(&format!("{}:443", lab.server_addr(0))),
        "{line}"
    );
}

#[test]
fn through_squid() {
    let lab = Lab::new(1);
    let (ca, ids) = pki(&lab, 1);
    let _server = start_server(&lab, &ca);
    let squid = Squid::start_in(None, Some(&lab.clients[0].name));
    link_through(&lab, &ids[0], &[squid.url()], &squid);
}

#[test]
fn through_a_proxy_chain() {
    // Client -> tunnel443 proxy -> squid -> server.
    let lab = Lab::new(1);
    let (ca, ids) = pki(&lab, 1);
    let _server = start_server(&lab, &ca);
    let squid = Squid::start_in(None, Some(&lab.clients[0].name));
    let (mut proxy, proxy_url) = our_proxy_in(&lab, 0, squid.addr);
    link_through(&lab, &ids[0], &[proxy_url, squid.url()], &squid);
    // Our proxy's access line (written when the tunnel ends) names squid.
    proxy.wait_log(&format!("target={}", squid.addr), 15);
}

#[test]
fn plain_http_behind_haproxy_with_auth_none() {
    let lab = Lab::new(1);
    let d = lab.dir.path();
    let (lb_pem, fp) = self_signed_server_cert(d, "lb", "lb.test");
    std::fs::write(d.join("users"), "").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::Permissions::from_mode(0o600);
        std::fs::set_permissions(d.join("users"), mode).unwrap();
    }
    let conf = d.join("tunnel443.toml");
    std::fs::write(
        &conf,
        format!(
            "listen = \"127.0.0.1:8080\"\nusers_file = \"{}\"\n[tls]\nplain_http = true\ncert_sha256 = \"{fp}\"\n\
             [iphttps]\nprefix = \"{POOL}\"\nauth = \"none\"\n",
            d.join("users").display()
        ),
    )
    .unwrap();
    let mut srv = lab.server.command(BIN);
    srv.env("TUNNEL443_LOG", "debug");
    srv.args(["server", "--config"]).arg(&conf);
    let mut server = Proc::spawn(srv, d.join("server.log"), "server");
    assert!(
        server.wait_for_output("server started", 20),
        "{}",
        server.output()
    );
    std::fs::write(
        d.join("haproxy.cfg"),
        format!(
            "global\n  maxconn 100\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 1h\n  timeout server 1h\n\
             frontend f\n  bind {}:443 ssl crt {}\n  default_backend b\nbackend b\n  server s 127.0.0.1:8080\n",
            lab.server_addr(0),
            lb_pem.display()
        ),
    )
    .unwrap();
    let mut hp = lab.server.command("haproxy");
    hp.args(["-db", "-f"]).arg(d.join("haproxy.cfg"));
    let _haproxy = Proc::spawn(hp, d.join("haproxy.log"), "haproxy");
    wait_listening(&lab.server, 443, 10, "haproxy");
    let mut cmd = lab.clients[0].command(BIN);
    cmd.args([
        "client",
        &format!("iphttps://{}/IPTLS", lab.server_addr(0)),
        "--pin-sha256",
        &fp,
    ]);
    let c0 = Proc::spawn(cmd, d.join("client.log"), "client");
    up(&lab, 0, &c0);
    assert_eq!(ping_count(&lab.clients[0], SERVER_V6, 3), 3);
    assert!(
        server.output().contains("client=anonymous"),
        "{}",
        server.output()
    );
}

#[test]
fn reserved_name_refuses_a_client_without_certificate_at_tls() {
    let lab = Lab::new(1);
    let (ca, ids) = pki(&lab, 1);
    let server = start_server_with(&lab, &ca, &["--iphttps-server-name", "ipv6.test"]);
    // Only the reserved name asks for a certificate; SSTP names do not.
    assert!(
        cert_request(&lab, "ipv6.test").contains("Acceptable client certificate CA names"),
        "reserved name must request a client certificate"
    );
    assert!(
        cert_request(&lab, "vpn.test").contains("No client certificate CA names sent"),
        "other names must not request one"
    );

    // No certificate, reserved name: the TLS handshake fails (exit 3, at
    // once: a refused certificate is not worth a reconnect).
    let mut bare = start_client(&lab, 0, None, &["--server-name", "ipv6.test"]);
    let st = bare.wait_exit(30).expect("refused client should exit");
    assert_eq!(st.code(), Some(3), "{}", bare.output());
    assert!(bare.output().contains("TLS"), "{}", bare.output());
    assert!(
        server.output().contains("IP-HTTPS TLS handshake refused"),
        "{}",
        server.output()
    );
    assert!(!server.output().contains("IP-HTTPS session up"));

    // A certificate, but IP-HTTPS on another name (here: no SNI at all): 421.
    let mut other = start_client(&lab, 0, Some(&ids[0]), &["--no-reconnect"]);
    let st = other.wait_exit(30).expect("misdirected client should exit");
    assert!(!st.success(), "{}", other.output());
    assert!(
        server.output().contains("not in iphttps.server_names; 421"),
        "{}",
        server.output()
    );

    // With the certificate on the reserved name the link comes up.
    let c0 = start_client(&lab, 0, Some(&ids[0]), &["--server-name", "ipv6.test"]);
    up(&lab, 0, &c0);
    assert_eq!(ping_count(&lab.clients[0], SERVER_V6, 3), 3);
    drop(c0);

    // SSTP on the same listener is untouched.
    let sstp = lab.start_client(
        0,
        "vpn",
        &lab.password(),
        &["--pin-sha256", &lab.fingerprint()],
    );
    assert!(
        wait_ping(&lab.clients[0], "10.44.0.1", 30),
        "SSTP beside reserved IP-HTTPS names:\n{}",
        sstp.output()
    );
}

#[test]
fn split_tunnel_routes_instead_of_a_default_route() {
    let lab = Lab::new(1);
    let (ca, ids) = pki(&lab, 1);
    let conf = lab.dir.path().join("split.toml");
    std::fs::write(
        &conf,
        "[iphttps]\ndefault_route = false\nroutes = [\"fd99:1::/48\"]\n",
    )
    .unwrap();
    let _server = start_server_with(&lab, &ca, &["--config", conf.to_str().unwrap()]);
    let c0 = start_client(&lab, 0, Some(&ids[0]), &[]);
    up(&lab, 0, &c0);
    assert_eq!(route6(&lab.clients[0], "::/1"), "", "no default route");
    for dst in ["fd99:1::/48", POOL] {
        let r = route6(&lab.clients[0], dst);
        assert!(r.contains("dev t443c0"), "{dst}: {r:?}");
    }
}

/// The MTU of the client's TUN device.
fn tun_mtu(ns: &Netns) -> u32 {
    let out = ns
        .command("cat")
        .arg("/sys/class/net/t443c0/mtu")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// A ping of `size` data bytes that may not be fragmented (`-M do`):
/// whether it was answered.
fn big_ping(ns: &Netns, to: &str, size: usize) -> bool {
    ns.command("ping")
        .args(["-6", "-c", "2", "-i", "0.2", "-W", "2", "-M", "do", "-s"])
        .arg(size.to_string())
        .arg(to)
        .output()
        .unwrap()
        .status
        .success()
}

/// Our client and server agree on a link MTU above 1280 (the tunnel443
/// extension, `X-Tunnel443-Link-MTU`), by default the largest a TUN device
/// takes: the device takes the RA's MTU and packets of 2,948 and 60,048
/// bytes cross unfragmented both ways; a client announcing nothing
/// (`--link-mtu 1280`) keeps the spec's 1280.
#[test]
fn larger_link_mtu_between_our_own_ends() {
    let lab = Lab::new(2);
    let (ca, ids) = pki(&lab, 2);
    let server = start_server_with(&lab, &ca, &[]);
    let c0 = start_client(&lab, 0, Some(&ids[0]), &[]);
    let a0 = up(&lab, 0, &c0);
    assert!(
        wait_until(Duration::from_secs(10), || tun_mtu(&lab.clients[0])
            == 65535),
        "device MTU {}:\n{}",
        tun_mtu(&lab.clients[0]),
        c0.output()
    );
    assert!(
        server.output().contains("announced=65535 link_mtu=65535"),
        "{}",
        server.output()
    );
    for size in [2900, 60_000] {
        assert!(
            big_ping(&lab.clients[0], SERVER_V6, size),
            "client -> server, {size}"
        );
        assert!(big_ping(&lab.server, &a0, size), "server -> client, {size}");
    }

    let c1 = start_client(&lab, 1, Some(&ids[1]), &["--link-mtu", "1280"]);
    let a1 = up(&lab, 1, &c1);
    assert_eq!(tun_mtu(&lab.clients[1]), 1280);
    assert!(!big_ping(&lab.clients[1], SERVER_V6, 2900));
    // Towards it the server's link MTU is 1280: Packet Too Big, no echo.
    assert!(!big_ping(&lab.server, &a1, 2900));
    assert_eq!(ping_count(&lab.server, &a1, 3), 3, "server -> client 1");
    assert_eq!(ping_count(&lab.clients[1], SERVER_V6, 3), 3);
    // The other client is not affected.
    assert!(big_ping(&lab.server, &a0, 2900), "server -> client 0");
}
