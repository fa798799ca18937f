//! End-to-end SSTP tests in network namespaces: our server and our client
//! over real TLS, real TUN devices, real ping/iperf3/tshark.

mod e2e;

use e2e::*;
use std::process::Command;
use std::time::Duration;

const SERVER_TUN: &str = "10.44.0.1";

fn pin(lab: &Lab) -> Vec<String> {
    vec!["--pin-sha256".into(), lab.fingerprint()]
}

fn args<'a>(v: &'a [String], extra: &[&'a str]) -> Vec<&'a str> {
    v.iter()
        .map(String::as_str)
        .chain(extra.iter().copied())
        .collect()
}

#[test]
fn ping_both_ways_and_iperf3() {
    let lab = Lab::new(1);
    let _server = lab.start_server(&[]);
    let p = pin(&lab);
    let _client = lab.start_client(0, "vpn", &lab.password(), &args(&p, &[]));
    assert!(
        wait_ping(&lab.clients[0], SERVER_TUN, 30),
        "tunnel did not come up"
    );
    assert_eq!(
        ping_count(&lab.clients[0], SERVER_TUN, 5),
        5,
        "client -> server"
    );
    assert_eq!(
        ping_count(&lab.server, "10.44.0.2", 5),
        5,
        "server -> client"
    );

    let mut iperf_s = lab.server.command("iperf3");
    iperf_s.args(["-s", "-1", "-B", SERVER_TUN]);
    let _srv = Proc::spawn(iperf_s, lab.dir.path().join("iperf-s.log"), "iperf3 -s");
    wait_listening(&lab.server, 5201, 10, "iperf3 -s");
    let out = lab.clients[0]
        .command("iperf3")
        .args(["-c", SERVER_TUN, "-t", "5", "-f", "m"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "iperf3 failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = text
        .lines()
        .find(|l| l.contains("receiver"))
        .expect("iperf3 summary");
    eprintln!("iperf3 through the SSTP tunnel: {line}");
}

#[test]
fn two_clients_at_once() {
    let lab = Lab::new(2);
    let _server = lab.start_server(&[]);
    let p = pin(&lab);
    let pw = lab.password();
    let _a = lab.start_client(0, "vpn", &pw, &args(&p, &[]));
    let _b = lab.start_client(1, "vpn", &pw, &args(&p, &[]));
    assert!(wait_ping(&lab.clients[0], SERVER_TUN, 30));
    assert!(wait_ping(&lab.clients[1], SERVER_TUN, 30));
    assert!(wait_ping(&lab.server, "10.44.0.2", 5));
    assert!(wait_ping(&lab.server, "10.44.0.3", 5));
}

#[test]
fn wrong_password_is_rejected() {
    let lab = Lab::new(1);
    let server = lab.start_server(&[]);
    let p = pin(&lab);
    let mut c = lab.start_client(0, "vpn", "not-the-password", &args(&p, &[]));
    let st = c.wait_exit(60).expect("client did not give up");
    assert_eq!(
        st.code(),
        Some(4),
        "exit code for an auth failure:\n{}",
        c.output()
    );
    assert!(
        c.output().contains("authentication failed"),
        "{}",
        c.output()
    );
    assert!(!ping_once(&lab.clients[0], SERVER_TUN));
    drop(server);
}

#[test]
fn untrusted_certificate_is_refused_by_default() {
    let lab = Lab::new(1);
    let _server = lab.start_server(&[]);
    let mut c = lab.start_client(0, "vpn", &lab.password(), &[]);
    let st = c.wait_exit(30).expect("client did not give up");
    assert_eq!(
        st.code(),
        Some(3),
        "exit code for a TLS failure:\n{}",
        c.output()
    );
    let mut c = lab.start_client(
        0,
        "vpn",
        &lab.password(),
        &["--pin-sha256", &"00".repeat(32)],
    );
    let st = c.wait_exit(30).expect("client did not give up");
    assert_eq!(st.code(), Some(3), "wrong pin:\n{}", c.output());
}

#[test]
fn pool_address_is_free_again_after_disconnect() {
    let lab = Lab::new(2);
    // A /30 pool has exactly one client address: 10.45.0.2.
    let _server = lab.start_server(&["--pool", "10.45.0.0/30"]);
    let p = pin(&lab);
    let pw = lab.password();
    let mut a = lab.start_client(0, "vpn", &pw, &args(&p, &[]));
    assert!(wait_ping(&lab.clients[0], "10.45.0.1", 30));
    let mut b = lab.start_client(1, "vpn", &pw, &args(&p, &["--no-reconnect"]));
    let st = b
        .wait_exit(60)
        .expect("second client should fail while the pool is empty");
    assert_ne!(st.code(), Some(0), "{}", b.output());
    assert_eq!(
        a.stop().and_then(|s| s.code()),
        Some(0),
        "clean exit on SIGTERM"
    );
    let _b = lab.start_client(1, "vpn", &pw, &args(&p, &[]));
    assert!(
        wait_ping(&lab.clients[1], "10.45.0.1", 30),
        "address not returned to the pool"
    );
    assert!(wait_ping(&lab.server, "10.45.0.2", 5));
}

#[test]
fn client_reconnects_after_server_restart() {
    let lab = Lab::new(1);
    let mut server = lab.start_server(&[]);
    let p = pin(&lab);
    let _c = lab.start_client(0, "vpn", &lab.password(), &args(&p, &[]));
    assert!(wait_ping(&lab.clients[0], SERVER_TUN, 30));
    server.stop();
    assert!(!ping_once(&lab.clients[0], SERVER_TUN));
    let _server = lab.start_server(&[]);
    assert!(
        wait_ping(&lab.clients[0], SERVER_TUN, 60),
        "client did not reconnect"
    );
}

/// `tshark -r CAP` with TLS keys from `keys`, display filter `filter`,
/// printing `fields` (`-T fields`, `|`-separated, one packet per line).
/// Returns (success, stdout, stderr without tshark's notice about running
/// as root).
fn tshark_read(
    cap: &std::path::Path,
    keys: &std::path::Path,
    filter: &str,
    fields: &[&str],
) -> (bool, String, String) {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r")
        .arg(cap)
        .args(["-o", &format!("tls.keylog_file:{}", keys.display())])
        .args(["-Y", filter, "-T", "fields", "-E", "separator=|"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| !l.starts_with("Running as user \"root\""))
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

/// SSTP message types (MS-SSTP §2.2.8) and their tshark names.
const CONNECT_REQUEST: u16 = 1;
const CONNECT_ACK: u16 = 2;
const CONNECT_NAK: u16 = 3;
const CONNECTED: u16 = 4;
const ABORT: u16 = 5;
const DISCONNECT: u16 = 6;
const DISCONNECT_ACK: u16 = 7;

#[test]
fn tshark_dissects_our_session_as_valid_sstp() {
    let lab = Lab::new(1);
    let _server = lab.start_server(&[]);
    let cap = lab.dir.path().join("sstp.pcapng");
    let keys = lab.dir.path().join("keys.log");
    let mut ts = lab.server.command("tshark");
    ts.args([
        "-i",
        &format!("v{}x0a", lab.tag),
        "-f",
        "tcp port 443",
        "-w",
    ])
    .arg(&cap);
    let mut tshark = Proc::spawn(ts, lab.dir.path().join("tshark.log"), "tshark");
    assert!(
        tshark.wait_for_output("Capturing on", 20),
        "{}",
        tshark.output()
    );
    let p = pin(&lab);
    let mut cmd = lab.clients[0].command("env");
    cmd.arg(format!("SSLKEYLOGFILE={}", keys.display()));
    let pwf = lab.dir.path().join("pw");
    std::fs::write(&pwf, lab.password()).unwrap();
    cmd.args([
        BIN,
        "client",
        &format!("sstp://vpn@{}", lab.server_addr(0)),
        "--password-file",
    ])
    .arg(&pwf)
    .args(&p);
    let mut client = Proc::spawn(cmd, lab.dir.path().join("client.log"), "client");
    assert!(wait_ping(&lab.clients[0], SERVER_TUN, 30));
    assert_eq!(ping_count(&lab.clients[0], SERVER_TUN, 3), 3);
    assert_eq!(
        client.stop().and_then(|s| s.code()),
        Some(0),
        "{}",
        client.output()
    );
    // The capture is complete once both ends' FIN are in the file.
    let (server, peer) = (lab.server_addr(0), lab.client_addr(0));
    let fins_from_both = || {
        let (_, out, _) = tshark_read(&cap, &keys, "tcp.flags.fin == 1", &["ip.src"]);
        [&server, &peer]
            .iter()
            .all(|a| out.lines().any(|l| l == a.as_str()))
    };
    assert!(
        wait_until(Duration::from_secs(10), fins_from_both),
        "no FIN from both ends in the capture"
    );
    tshark.signal(libc::SIGINT);
    assert!(tshark.wait_exit(10).is_some(), "tshark did not stop");

    // Every SSTP control message, with its sender.
    let (ok, out, err) = tshark_read(
        &cap,
        &keys,
        "sstp.messagetype",
        &["ip.src", "sstp.messagetype"],
    );
    assert!(ok && err.trim().is_empty(), "tshark failed: {err}");
    let mut seen: Vec<(String, u16)> = Vec::new();
    for line in out.lines() {
        let (src, types) = line.split_once('|').expect("ip.src|sstp.messagetype");
        for t in types.split(',') {
            let t = t.trim().trim_start_matches("0x");
            let t = u16::from_str_radix(t, 16).unwrap_or_else(|_| panic!("type {t:?}"));
            seen.push((src.to_string(), t));
        }
    }
    eprintln!("tshark: SSTP control messages {seen:?}");
    for (from, t, name) in [
        (&peer, CONNECT_REQUEST, "Call Connect Request"),
        (&server, CONNECT_ACK, "Call Connect Ack"),
        (&peer, CONNECTED, "Call Connected"),
        (&peer, DISCONNECT, "Call Disconnect"),
        (&server, DISCONNECT_ACK, "Call Disconnect Ack"),
    ] {
        let n = seen.iter().filter(|(s, x)| s == from && *x == t).count();
        assert_eq!(n, 1, "{name} from {from}: {n} times in {seen:?}");
    }
    for (t, name) in [(CONNECT_NAK, "Call Connect Nak"), (ABORT, "Call Abort")] {
        assert!(
            !seen.iter().any(|(_, x)| *x == t),
            "unexpected {name}: {seen:?}"
        );
    }

    // The data packets decode down to the pings inside PPP.
    let (ok, out, err) = tshark_read(&cap, &keys, "sstp && ppp && icmp", &["icmp.type"]);
    assert!(ok, "tshark failed: {err}");
    let echo = |ty: &str| out.lines().filter(|l| *l == ty).count();
    assert!(
        echo("8") >= 3 && echo("0") >= 3,
        "ICMP echo inside SSTP data packets:\n{out}"
    );

    let (ok, malformed, err) = tshark_read(
        &cap,
        &keys,
        "_ws.malformed || _ws.expert.severity >= error",
        &["frame.number", "_ws.expert.message"],
    );
    assert!(ok, "tshark failed: {err}");
    assert!(
        malformed.trim().is_empty(),
        "malformed packets:\n{malformed}"
    );
}

/// Behind a TLS-terminating load balancer: real haproxy terminates TLS and
/// passes PROXY protocol v2 to our server in plain-HTTP mode, which binds
/// SSTP to the balancer's certificate hash from the config file. Also uses
/// `tunnel443 user add` for the users file and checks the HEAD health check.
#[test]
fn behind_haproxy_plain_http_with_proxy_protocol() {
    let lab = Lab::new(1);
    let d = lab.dir.path();
    let (lb_pem, fp) = self_signed_server_cert(d, "lb", "lb.test");
    let users = d.join("users");
    add_user(&users, "carol", "pa55-w0rd", false);
    assert!(std::fs::read_to_string(&users)
        .unwrap()
        .starts_with("carol:nthash:"));
    let conf = d.join("tunnel443.toml");
    std::fs::write(
        &conf,
        format!(
            "listen = \"127.0.0.1:8080\"\nusers_file = \"{}\"\n[tls]\nplain_http = true\ncert_sha256 = \"{fp}\"\nproxy_protocol = true\n",
            users.display()
        ),
    )
    .unwrap();
    let check = lab
        .server
        .command(BIN)
        .args(["server", "--check-config", "--config"])
        .arg(&conf)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let mut srv = lab.server.command(BIN);
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
             frontend f\n  bind {}:443 ssl crt {}\n  default_backend b\nbackend b\n  server s 127.0.0.1:8080 send-proxy-v2\n",
            lab.server_addr(0),
            lb_pem.display()
        ),
    )
    .unwrap();
    let mut hp = lab.server.command("haproxy");
    hp.args(["-db", "-f"]).arg(d.join("haproxy.cfg"));
    let _haproxy = Proc::spawn(hp, d.join("haproxy.log"), "haproxy");
    wait_listening(&lab.server, 443, 10, "haproxy");
    // Load-balancer style health check through haproxy.
    let head = lab.clients[0]
        .command("curl")
        .args(["-sk", "-o", "/dev/null", "-w", "%{http_code}", "-I"])
        .arg(format!(
            "https://{}/sra_%7BBA195980-CD49-458b-9E23-C84EE0ADCD75%7D/",
            lab.server_addr(0)
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&head.stdout), "200");
    let c = lab.start_client(0, "carol", "pa55-w0rd", &["--pin-sha256", &fp]);
    assert!(
        wait_ping(&lab.clients[0], SERVER_TUN, 30),
        "{}\n{}",
        c.output(),
        server.output()
    );
    // The session log carries the client's real address from PROXY v2.
    let want = format!("peer={}", "10.251.0.2:");
    assert!(server.wait_for_output(&want, 5), "{}", server.output());
}

/// IPv6 over the SSTP tunnel: IPv6CP, then the server's Router
/// Advertisement of its /64; the client forms prefix::<IID> and pings the
/// server's address in the prefix, both ways.
#[test]
fn ipv6_through_ipv6cp_and_router_advertisement() {
    let lab = Lab::new(1);
    let server = lab.start_server(&["--ipv6-prefix", "fd44:443::/64"]);
    let p = pin(&lab);
    let c = lab.start_client(0, "vpn", &lab.password(), &args(&p, &[]));
    assert!(wait_ping(&lab.clients[0], SERVER_TUN, 30), "{}", c.output());
    let ok = wait_until(Duration::from_secs(15), || {
        ping_once(&lab.clients[0], "fd44:443::1")
    });
    assert!(
        ok,
        "no IPv6 ping to the server:\n{}\n{}",
        c.output(),
        server.output()
    );
    let line = c
        .output()
        .lines()
        .find(|l| l.contains("IPv6 address fd44:443::"))
        .map(str::to_string);
    let addr = line
        .expect("client printed its IPv6 address")
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    let back = lab
        .server
        .command("ping")
        .args(["-6", "-c", "3", "-i", "0.2", "-W", "1", "-n", "-q", &addr])
        .output()
        .unwrap();
    assert!(
        back.status.success(),
        "server -> client {addr}: {}",
        String::from_utf8_lossy(&back.stdout)
    );
}

/// `--default-route`: everything goes through the tunnel except the path to
/// the server, which is pinned to the route it had; all of it is undone on
/// exit.
#[test]
fn default_route_keeps_the_server_path_and_is_restored() {
    let lab = Lab::new(1);
    let _server = lab.start_server(&[]);
    let p = pin(&lab);
    let mut c = lab.start_client(0, "vpn", &lab.password(), &args(&p, &["--default-route"]));
    assert!(wait_ping(&lab.clients[0], SERVER_TUN, 30), "{}", c.output());
    let routes = |ns: &Netns| {
        let o = ns.command("ip").args(["route", "show"]).output().unwrap();
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let r = routes(&lab.clients[0]);
    assert!(r.contains("0.0.0.0/1 dev t443c0"), "{r}");
    assert!(r.contains("128.0.0.0/1 dev t443c0"), "{r}");
    assert!(
        r.lines()
            .any(|l| l.starts_with(&format!("{} dev v", lab.server_addr(0)))),
        "server path not pinned:\n{r}"
    );
    // The tunnel keeps working with everything routed into it.
    assert_eq!(ping_count(&lab.clients[0], SERVER_TUN, 3), 3);
    assert_eq!(c.stop().and_then(|s| s.code()), Some(0));
    let r = routes(&lab.clients[0]);
    assert!(
        !r.contains("t443c0")
            && !r
                .lines()
                .any(|l| l.starts_with(&format!("{} ", lab.server_addr(0)))),
        "not restored:\n{r}"
    );
}
