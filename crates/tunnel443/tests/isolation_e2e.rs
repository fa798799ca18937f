//! Client isolation and anti-spoofing over real tunnels (issue 12): two
//! SSTP clients with IPv4 and IPv6 through a server whose host forwards
//! (`ip_forward`, IPv6 forwarding on), so only the server's own check
//! stands between them.
//! * By default (`[ipv4] client_to_client = false`) a client reaches the
//!   server's tunnel addresses but not the other client's (IPv4 and IPv6);
//!   the packets are counted as `drops.client_to_client` in `ctl stats`.
//! * With `client_to_client = true` they reach each other.
//! * Packets a client sends from an address it was not given (IPv4 and
//!   IPv6, added with `ip addr add` and used with `ping -I`) are dropped
//!   and counted as `drops.spoofed`.

mod e2e;

use std::path::PathBuf;
use std::time::Duration;

use e2e::*;
use serde_json::Value;

const SERVER_TUN: &str = "10.44.0.1";
const PREFIX: &str = "fd44:443::/64";
const SERVER_V6: &str = "fd44:443::1";

fn socket(lab: &Lab) -> PathBuf {
    lab.dir.path().join("control.sock")
}

/// A server with IPv6 and a control socket, its host forwarding.
fn server(lab: &Lab, config: &str) -> Proc {
    let conf = lab.write_file("tunnel443.toml", config);
    let sock = socket(lab);
    let p = lab.start_server(&[
        "--config",
        conf.to_str().unwrap(),
        "--ipv6-prefix",
        PREFIX,
        "--control-socket",
        sock.to_str().unwrap(),
    ]);
    for knob in ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"] {
        let st = lab
            .server
            .command("sysctl")
            .args(["-qw", knob])
            .status()
            .unwrap();
        assert!(st.success(), "sysctl {knob}");
    }
    p
}

fn stats(lab: &Lab) -> Value {
    ctl_stats(&socket(lab))
}

fn drops(stats: &Value, reason: &str) -> u64 {
    stats["drops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == reason)
        .unwrap_or_else(|| panic!("no drops.{reason} in {stats}"))["value"]
        .as_u64()
        .unwrap()
}

/// The global address of `family` (`-4`, `-6`) on the client's TUN.
fn tun_addr(ns: &Netns, family: &str) -> String {
    let out = ns
        .command("ip")
        .args([
            "-o", family, "addr", "show", "dev", "t443c0", "scope", "global",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .skip_while(|w| !w.starts_with("inet"))
        .nth(1)
        .and_then(|a| a.split('/').next())
        .unwrap_or_else(|| panic!("no {family} address on t443c0: {text}"))
        .to_string()
}

/// Replies to `count` pings from `ns` to `to` (`-I from` when given).
fn pings(ns: &Netns, to: &str, from: Option<&str>, count: u32) -> u32 {
    let mut cmd = ns.command("ping");
    if to.contains(':') {
        cmd.arg("-6");
    }
    if let Some(f) = from {
        cmd.args(["-I", f]);
    }
    let out = cmd
        .args(["-c", &count.to_string(), "-i", "0.2", "-W", "1", "-n", to])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.split(',')
        .find_map(|p| p.trim().strip_suffix(" received")?.parse().ok())
        .unwrap_or(0)
}

/// Two clients up with IPv4 and IPv6; their (IPv4, IPv6) addresses.
fn two_clients(lab: &Lab, server: &Proc) -> (Vec<Proc>, Vec<(String, String)>) {
    let pin = lab.fingerprint();
    let pw = lab.password();
    let clients: Vec<Proc> = (0..2)
        // The pool through the tunnel: else the other client's address is
        // reached over the namespaces' own link, not through the tunnel.
        .map(|i| {
            let args = ["--pin-sha256", &pin, "--route", "10.44.0.0/24"];
            lab.start_client(i, "vpn", &pw, &args)
        })
        .collect();
    let mut addrs = Vec::new();
    for (i, c) in clients.iter().enumerate() {
        let ns = &lab.clients[i];
        assert!(
            wait_ping(ns, SERVER_TUN, 30),
            "client {i}:\n{}\n{}",
            c.output(),
            server.output()
        );
        let v6_up = wait_until(Duration::from_secs(30), || {
            pings(ns, SERVER_V6, None, 1) == 1
        });
        assert!(v6_up, "client {i}: no IPv6:\n{}", c.output());
        addrs.push((tun_addr(ns, "-4"), tun_addr(ns, "-6")));
    }
    (clients, addrs)
}

#[test]
fn clients_are_isolated_by_default_and_spoofed_sources_are_counted() {
    let lab = Lab::new(2);
    let server = server(&lab, "");
    let (_clients, addrs) = two_clients(&lab, &server);
    let (c0, c1) = (&lab.clients[0], &lab.clients[1]);

    // The other client is out of reach, IPv4 and IPv6; the server is not.
    assert_eq!(pings(c0, &addrs[1].0, None, 3), 0, "client0 -> client1");
    assert_eq!(pings(c1, &addrs[0].1, None, 3), 0, "client1 -> client0 v6");
    assert_eq!(pings(c0, SERVER_TUN, None, 2), 2);
    assert_eq!(pings(c1, SERVER_V6, None, 2), 2);
    let mut s = Value::Null;
    let counted = wait_until(Duration::from_secs(10), || {
        s = stats(&lab);
        drops(&s, "client_to_client") >= 6
    });
    assert!(counted, "{s:#}");
    assert_eq!(drops(&s, "spoofed"), 0, "{s:#}");

    // Client 1 sends from addresses it was not given.
    for (addr, extra) in [
        ("10.44.0.200/32", None),
        ("fd44:443::dead/128", Some("nodad")),
    ] {
        let mut cmd = c1.command("ip");
        cmd.args(["addr", "add", addr, "dev", "t443c0"]);
        cmd.args(extra);
        assert!(cmd.status().unwrap().success(), "ip addr add {addr}");
    }
    assert_eq!(pings(c1, SERVER_TUN, Some("10.44.0.200"), 3), 0);
    assert_eq!(pings(c1, SERVER_V6, Some("fd44:443::dead"), 3), 0);
    let counted = wait_until(Duration::from_secs(10), || {
        s = stats(&lab);
        drops(&s, "spoofed") >= 6
    });
    assert!(counted, "{s:#}");
    // Its own addresses still work.
    assert_eq!(pings(c1, SERVER_TUN, None, 2), 2);
}

#[test]
fn client_to_client_when_the_config_allows_it() {
    let lab = Lab::new(2);
    let server = server(&lab, "[ipv4]\nclient_to_client = true\n");
    let (_clients, addrs) = two_clients(&lab, &server);
    assert_eq!(pings(&lab.clients[0], &addrs[1].0, None, 3), 3);
    assert_eq!(pings(&lab.clients[1], &addrs[0].1, None, 3), 3);
    assert_eq!(drops(&stats(&lab), "client_to_client"), 0);
}
