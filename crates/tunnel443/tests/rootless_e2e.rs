//! Rootless client mode: `tunnel443 client sstp://… --forward/--socks5`
//! run as `nobody` (setpriv, no capabilities, no TUN device): a local port
//! forwarded, and SOCKS5 CONNECT (by address and by a name resolved through
//! the tunnel's DNS) and UDP ASSOCIATE (to an address and to a name),
//! through a user-space TCP/IP stack to servers that only the VPN server's
//! side can reach.

mod e2e;

use std::process::Command;

use e2e::common::{free_port, payload, set_mode, Squid, SquidAuth};
use e2e::*;

const SERVER_TUN: &str = "10.44.0.1";
/// The IP-HTTPS server's address on its side (the first of its pool).
const SERVER_V6: &str = "fd00:1::1";

/// `setpriv` down to nobody, then `program`, in client namespace 0.
fn as_nobody(lab: &Lab, program: &str) -> Command {
    let mut c = lab.clients[0].command("setpriv");
    c.args([
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        "--inh-caps=-all",
        program,
    ]);
    c
}

#[test]
fn rootless_forward_as_nobody() {
    let lab = Lab::new(1);
    let _server = lab.start_server(&[]);

    // A web server on the server's side (its tunnel address is only
    // reachable through the tunnel).
    let www = lab.dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    let body = payload(600_000);
    std::fs::write(www.join("big.bin"), &body).unwrap();
    let port = free_port();
    let mut http = lab.server.command("/usr/bin/python3");
    http.args(["-m", "http.server", "--bind", "0.0.0.0", &port.to_string()])
        .current_dir(&www);
    let _http = Proc::spawn(http, lab.dir.path().join("http.log"), "http.server");
    wait_listening(&lab.server, port, 20, "http.server");

    // The client, unprivileged, from a copy of the binary nobody can run.
    let bin = lab.dir.path().join("tunnel443");
    std::fs::copy(BIN, &bin).unwrap();
    set_mode(&bin, 0o755);
    let pwf = lab.write_file("pw-rootless", &lab.password());
    set_mode(&pwf, 0o644);
    let lport = free_port();
    let mut cmd = as_nobody(&lab, bin.to_str().unwrap());
    cmd.env("TUNNEL443_LOG", "debug");
    cmd.args(["client", &format!("sstp://vpn@{}", lab.server_addr(0))])
        .arg("--password-file")
        .arg(&pwf)
        .args(["--pin-sha256", &lab.fingerprint()])
        .args(["--forward", &format!("{lport}:{SERVER_TUN}:{port}")]);
    let mut client = Proc::spawn(cmd, lab.dir.path().join("client.log"), "client");
    assert!(
        client.wait_for_output("user-space stack", 30),
        "no tunnel:\n{}",
        client.output()
    );
    // The stack's MTU is the TUN client's: our MRU (4000) and the server's
    // (4000 by default), not Ethernet's 1500.
    let mtu_4000 = wait_until(std::time::Duration::from_secs(10), || {
        client.output().lines().any(|l| {
            l.contains("user-space stack up") && l.split_whitespace().any(|w| w == "mtu=4000")
        })
    });
    assert!(mtu_4000, "{}", client.output());

    // curl, also as nobody, through the forwarded port: twice, the second
    // time with two transfers at once.
    let fetch = || {
        as_nobody(&lab, "curl")
            .args(["-sS", "--max-time", "30"])
            .arg(format!("http://127.0.0.1:{lport}/big.bin"))
            .output()
            .unwrap()
    };
    let out = fetch();
    assert!(
        out.status.success(),
        "curl: {}\nclient:\n{}",
        String::from_utf8_lossy(&out.stderr),
        client.output()
    );
    assert!(
        out.stdout == body,
        "body differs ({} bytes)",
        out.stdout.len()
    );
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(fetch);
        let b = s.spawn(fetch);
        (a.join().unwrap(), b.join().unwrap())
    });
    assert!(a.stdout == body && b.stdout == body, "parallel fetches");

    // No TUN device, no route: the client namespace only has lo and veth.
    let links = lab.clients[0]
        .command("ip")
        .args(["-o", "link"])
        .output()
        .unwrap();
    let links = String::from_utf8_lossy(&links.stdout);
    assert!(!links.contains("t443c"), "{links}");

    // A TUN-only option with --forward is a usage error.
    let st = Command::new(BIN)
        .args([
            "client",
            "sstp://vpn@127.0.0.1",
            "--forward",
            "1:10.0.0.1:1",
        ])
        .args(["--default-route", "--password-file", "/dev/null"])
        .output()
        .unwrap();
    assert_eq!(st.status.code(), Some(2));
    let err = String::from_utf8_lossy(&st.stderr);
    assert!(err.contains("--default-route"), "{err}");
    let log = client.output();
    assert!(log.contains("local connection accepted"), "{log}");
    drop(client);
}

/// A DNS server (python) answering `web.vpn.test` with the server's tunnel
/// address and NXDOMAIN for the rest; with the argument `6`, over IPv6 and
/// with an AAAA record instead of an A record.
const DNS_PY: &str = r#"
import socket, struct, sys
SERVER_V6 = "fd00:1::1"
v6 = sys.argv[1:] == ["6"]
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("::" if v6 else "0.0.0.0", 53))
print("dns ready", flush=True)
while True:
    q, a = s.recvfrom(512)
    i, labels = 12, []
    while q[i] != 0:
        labels.append(q[i + 1:i + 1 + q[i]].decode())
        i += 1 + q[i]
    qtype = struct.unpack(">H", q[i + 1:i + 3])[0]
    question = q[12:i + 5]
    if ".".join(labels).lower() == "web.vpn.test" and qtype == (28 if v6 else 1):
        if v6:
            ans = b"\xc0\x0c" + struct.pack(">HHIH", 28, 1, 60, 16) + socket.inet_pton(socket.AF_INET6, SERVER_V6)
        else:
            ans = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton("10.44.0.1")
        r = q[:2] + b"\x81\x80" + struct.pack(">HHHH", 1, 1, 0, 0) + question + ans
    else:
        r = q[:2] + b"\x81\x83" + struct.pack(">HHHH", 1, 0, 0, 0) + question
    s.sendto(r, a)
"#;

/// A UDP echo server (python) on the port given.
const UDP_ECHO_PY: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
while True:
    d, a = s.recvfrom(65535)
    s.sendto(d, a)
"#;

/// A SOCKS5 UDP ASSOCIATE client (python): sends one datagram to
/// 10.44.0.1:PORT (or NAME:PORT, ATYP 3, with a third argument) through
/// the SOCKS server and prints the reply's payload; the reply comes from
/// 10.44.0.1:PORT.
const SOCKS_UDP_PY: &str = r#"
import socket, struct, sys
sp, up = int(sys.argv[1]), int(sys.argv[2])
c = socket.create_connection(("127.0.0.1", sp))
c.sendall(b"\x05\x01\x00")
assert c.recv(2) == b"\x05\x00"
c.sendall(b"\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00")
r = b""
while len(r) < 10:
    r += c.recv(10 - len(r))
assert r[1] == 0, r
relay = (socket.inet_ntoa(r[4:8]), struct.unpack(">H", r[8:10])[0])
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(3)
hdr = b"\x00\x00\x00\x01" + socket.inet_aton("10.44.0.1") + struct.pack(">H", up)
out = hdr
if len(sys.argv) > 3:
    name = sys.argv[3].encode()
    out = b"\x00\x00\x00\x03" + bytes([len(name)]) + name + struct.pack(">H", up)
for _ in range(5):
    u.sendto(out + b"ping over udp", relay)
    try:
        d, _ = u.recvfrom(65535)
        break
    except socket.timeout:
        pass
else:
    sys.exit("no UDP reply")
assert d[:10] == hdr, d
print(d[10:].decode())
"#;

#[test]
fn rootless_socks5_names_and_udp_as_nobody() {
    let lab = Lab::new(1);
    let conf = lab.write_file("dns.toml", "[ipv4]\ndns = [\"10.44.0.1\"]\n");
    let _server = lab.start_server(&["--config", conf.to_str().unwrap()]);

    let www = lab.dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    let body = payload(300_000);
    std::fs::write(www.join("page.bin"), &body).unwrap();
    let port = free_port();
    let mut http = lab.server.command("/usr/bin/python3");
    http.args(["-m", "http.server", "--bind", "0.0.0.0", &port.to_string()])
        .current_dir(&www);
    let _http = Proc::spawn(http, lab.dir.path().join("http.log"), "http.server");
    let dns_py = lab.write_file("dns.py", DNS_PY);
    let mut dns = lab.server.command("/usr/bin/python3");
    dns.arg(&dns_py);
    let mut dns = Proc::spawn(dns, lab.dir.path().join("dns.log"), "dns");
    let udp_port = free_port();
    let echo_py = lab.write_file("udpecho.py", UDP_ECHO_PY);
    let mut echo = lab.server.command("/usr/bin/python3");
    echo.arg(&echo_py).arg(udp_port.to_string());
    let _echo = Proc::spawn(echo, lab.dir.path().join("udpecho.log"), "udp echo");
    wait_listening(&lab.server, port, 20, "http.server");
    assert!(dns.wait_for_output("dns ready", 20), "{}", dns.output());

    let bin = lab.dir.path().join("tunnel443");
    std::fs::copy(BIN, &bin).unwrap();
    set_mode(&bin, 0o755);
    let pwf = lab.write_file("pw-rootless", &lab.password());
    set_mode(&pwf, 0o644);
    let socks_port = free_port();
    let socks = format!("127.0.0.1:{socks_port}");
    let fwd_port = free_port();
    let mut cmd = as_nobody(&lab, bin.to_str().unwrap());
    cmd.env("TUNNEL443_LOG", "debug");
    cmd.args(["client", &format!("sstp://vpn@{}", lab.server_addr(0))])
        .arg("--password-file")
        .arg(&pwf)
        .args(["--pin-sha256", &lab.fingerprint()])
        .args(["--socks5", &socks])
        .args(["--forward", &format!("{fwd_port}:web.vpn.test:{port}")]);
    let mut client = Proc::spawn(cmd, lab.dir.path().join("client.log"), "client");
    assert!(
        client.wait_for_output("user-space stack", 30),
        "no tunnel:\n{}",
        client.output()
    );
    assert!(
        client.output().contains("dns 10.44.0.1"),
        "{}",
        client.output()
    );

    let curl = |proxy_flag: &str, url: &str| {
        as_nobody(&lab, "curl")
            .args(["-sS", "--max-time", "30", proxy_flag, &socks, url])
            .output()
            .unwrap()
    };
    // A name only the tunnel's DNS knows, resolved by the client.
    let out = curl(
        "--socks5-hostname",
        &format!("http://web.vpn.test:{port}/page.bin"),
    );
    assert!(
        out.status.success(),
        "curl: {}\nclient:\n{}",
        String::from_utf8_lossy(&out.stderr),
        client.output()
    );
    assert!(
        out.stdout == body,
        "body differs ({} bytes)",
        out.stdout.len()
    );
    // By address.
    let out = curl("--socks5", &format!("http://{SERVER_TUN}:{port}/page.bin"));
    assert!(
        out.stdout == body,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A name that does not resolve, and a port nobody listens on: SOCKS
    // errors, not hangs.
    let out = curl(
        "--socks5-hostname",
        &format!("http://nope.vpn.test:{port}/"),
    );
    assert!(!out.status.success());
    let closed = free_port();
    let out = curl("--socks5", &format!("http://{SERVER_TUN}:{closed}/"));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(
        err.contains("refused") || err.contains("connection"),
        "{err}"
    );

    // A forward to a name, resolved through the tunnel per connection.
    let out = as_nobody(&lab, "curl")
        .args(["-sS", "--max-time", "30"])
        .arg(format!("http://127.0.0.1:{fwd_port}/page.bin"))
        .output()
        .unwrap();
    assert!(
        out.stdout == body,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // UDP ASSOCIATE: a datagram to the echo server and back, by address
    // and by a name (ATYP 3) resolved through the tunnel's DNS.
    let udp_py = lab.write_file("socksudp.py", SOCKS_UDP_PY);
    set_mode(&udp_py, 0o644);
    for name in [None, Some("web.vpn.test")] {
        let out = as_nobody(&lab, "/usr/bin/python3")
            .arg(&udp_py)
            .args([socks_port.to_string(), udp_port.to_string()])
            .args(name)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name:?}: {}\nclient:\n{}",
            String::from_utf8_lossy(&out.stderr),
            client.output()
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ping over udp");
    }
    drop(client);
}

/// Rootless through a Digest proxy, across a reconnect: the forward's
/// listener stays, the second dial reuses the Digest nonce (one 407 in
/// all), and the forward works again.
#[test]
fn rootless_through_digest_proxy_and_reconnect() {
    let lab = Lab::new(1);
    let server = lab.start_server(&[]);
    let ns = Some(lab.clients[0].name.as_str());
    let squid = Squid::start_with(Some(SquidAuth::Digest("dana", "d1gest-pw", "")), ns);

    let www = lab.dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("hello.txt"), "hello through the tunnel\n").unwrap();
    let port = free_port();
    let mut http = lab.server.command("/usr/bin/python3");
    http.args(["-m", "http.server", "--bind", "0.0.0.0", &port.to_string()])
        .current_dir(&www);
    let _http = Proc::spawn(http, lab.dir.path().join("http.log"), "http.server");
    wait_listening(&lab.server, port, 20, "http.server");

    let bin = lab.dir.path().join("tunnel443");
    std::fs::copy(BIN, &bin).unwrap();
    set_mode(&bin, 0o755);
    let pwf = lab.write_file("pw-rootless", &lab.password());
    set_mode(&pwf, 0o644);
    let lport = free_port();
    let mut cmd = as_nobody(&lab, bin.to_str().unwrap());
    cmd.env("TUNNEL443_LOG", "debug");
    cmd.args(["client", &format!("sstp://vpn@{}", lab.server_addr(0))])
        .arg("--password-file")
        .arg(&pwf)
        .args(["--pin-sha256", &lab.fingerprint()])
        .args(["--proxy", &format!("http://dana:d1gest-pw@{}", squid.addr)])
        .args(["--forward", &format!("{lport}:{SERVER_TUN}:{port}")]);
    let mut client = Proc::spawn(cmd, lab.dir.path().join("client.log"), "client");
    assert!(
        client.wait_for_output("user-space stack up", 30),
        "no tunnel:\n{}",
        client.output()
    );
    let fetch = || {
        as_nobody(&lab, "curl")
            .args(["-sS", "--max-time", "10"])
            .arg(format!("http://127.0.0.1:{lport}/hello.txt"))
            .output()
            .unwrap()
    };
    assert_eq!(fetch().stdout, b"hello through the tunnel\n");

    // The server goes away and comes back: the client reconnects.
    drop(server);
    let _server = lab.start_server(&[]);
    let back = wait_until(std::time::Duration::from_secs(40), || {
        client.output().matches("user-space stack up").count() >= 2
    });
    assert!(back, "no reconnect:\n{}", client.output());
    let ok = wait_until(std::time::Duration::from_secs(20), || {
        fetch().stdout == b"hello through the tunnel\n"
    });
    assert!(ok, "forward after the reconnect:\n{}", client.output());
    let log = squid.access_log();
    assert!(log.matches("TCP_TUNNEL").count() >= 1, "{log}");
    wait_until(std::time::Duration::from_secs(10), || {
        squid
            .access_log()
            .lines()
            .filter(|l| l.contains("/200 "))
            .count()
            >= 1
    });
    let log = squid.access_log();
    assert_eq!(
        log.lines().filter(|l| l.contains("/407 ")).count(),
        1,
        "the reconnect reused the Digest nonce:\n{log}"
    );
    drop(client);
}

/// iperf3 `-J` result: bits per second received.
fn iperf_bps(out: &std::process::Output) -> f64 {
    let text = String::from_utf8_lossy(&out.stdout);
    let key = "\"sum_received\"";
    let at = text.find(key).unwrap_or_else(|| panic!("iperf3: {text}"));
    let rest = &text[at..];
    let b = rest.find("\"bits_per_second\":").unwrap() + 18;
    rest[b..]
        .trim_start()
        .split([',', '\n', '}'])
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Throughput of the rootless client (a forward to iperf3) against the
/// TUN client in the same lab, upload and download; for BENCHMARKS.md.
/// `cargo test -p tunnel443 --release --test rootless_e2e -- --ignored --nocapture`
#[test]
#[ignore]
fn rootless_throughput_vs_tun() {
    let lab = Lab::new(1);
    let _server = lab.start_server(&[]);
    let mut srv = lab.server.command("iperf3");
    srv.args(["-s", "-p", "5201"]);
    let _iperf = Proc::spawn(srv, lab.dir.path().join("iperf.log"), "iperf3 -s");
    wait_listening(&lab.server, 5201, 20, "iperf3");
    let secs = std::env::var("T443_BENCH_SECS").unwrap_or_else(|_| "5".into());
    let run = |target: &str, port: &str, reverse: bool| {
        let mut c = lab.clients[0].command("iperf3");
        c.args(["-J", "-c", target, "-p", port, "-t", &secs]);
        if reverse {
            c.arg("-R");
        }
        iperf_bps(&c.output().unwrap()) / 1e6
    };
    let pw = lab.password();
    let fp = lab.fingerprint();
    let tun = lab.start_client(0, "vpn", &pw, &["--pin-sha256", &fp]);
    assert!(
        wait_ping(&lab.clients[0], SERVER_TUN, 30),
        "{}",
        tun.output()
    );
    let tun_up = run(SERVER_TUN, "5201", false);
    let tun_down = run(SERVER_TUN, "5201", true);
    drop(tun);
    let lport = free_port();
    let fwd = format!("{lport}:{SERVER_TUN}:5201");
    let mut rl = lab.start_client(0, "vpn", &pw, &["--pin-sha256", &fp, "--forward", &fwd]);
    assert!(
        rl.wait_for_output("user-space stack up", 30),
        "{}",
        rl.output()
    );
    let lp = lport.to_string();
    let rl_up = run("127.0.0.1", &lp, false);
    let rl_down = run("127.0.0.1", &lp, true);
    println!(
        "TUN client: upload {tun_up:.0} Mbit/s, download {tun_down:.0} Mbit/s\n\
         rootless (--forward): upload {rl_up:.0} Mbit/s ({:.0}%), download {rl_down:.0} Mbit/s ({:.0}%)",
        100.0 * rl_up / tun_up,
        100.0 * rl_down / tun_down
    );
}

/// An IP-HTTPS server (a /64 per client from fd00:1::/48, client
/// certificates from `ca`), with `[ipv6] dns` in its configuration when
/// `dns` is set.
fn start_iphttps_server(lab: &Lab, ca: &std::path::Path, dns: bool) -> Proc {
    let conf = lab.write_file(
        "iphttps.toml",
        if dns {
            "[ipv6]\ndns = [\"fd00:1::1\"]\n"
        } else {
            ""
        },
    );
    lab.start_server(&[
        "--config",
        conf.to_str().unwrap(),
        "--iphttps-prefix",
        "fd00:1::/48",
        "--iphttps-client-ca",
        ca.to_str().unwrap(),
    ])
}

#[test]
fn rootless_iphttps_socks5_forward_and_reconnect_as_nobody() {
    let lab = Lab::new(1);
    let d = lab.dir.path();
    let ca = test_ca(d, "ca");
    let (cert, key) = issue_cert(
        d,
        "ca",
        "c0",
        "client0",
        "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n",
    );
    set_mode(&key, 0o644);
    let server = start_iphttps_server(&lab, &ca, true);

    // A web server and a DNS server (RDNSS) on the server's side, reachable
    // only through the tunnel (fd00:1::1 is on the server's device).
    let www = d.join("www");
    std::fs::create_dir_all(&www).unwrap();
    let body = payload(300_000);
    std::fs::write(www.join("big.bin"), &body).unwrap();
    let port = free_port();
    let mut http = lab.server.command("/usr/bin/python3");
    http.args(["-m", "http.server", "--bind", "::", &port.to_string()])
        .current_dir(&www);
    let _http = Proc::spawn(http, d.join("http.log"), "http.server");
    wait_listening(&lab.server, port, 20, "http.server");
    let dns_py = lab.write_file("dns.py", DNS_PY);
    let mut dns = lab.server.command("/usr/bin/python3");
    dns.arg(&dns_py).arg("6");
    let mut dns = Proc::spawn(dns, d.join("dns.log"), "dns");
    assert!(dns.wait_for_output("dns ready", 20), "{}", dns.output());

    let bin = d.join("tunnel443");
    std::fs::copy(BIN, &bin).unwrap();
    set_mode(&bin, 0o755);
    let (socks_port, lport) = (free_port(), free_port());
    let mut cmd = as_nobody(&lab, bin.to_str().unwrap());
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
    .arg(&key)
    .args(["--socks5", &format!("127.0.0.1:{socks_port}")])
    .args(["--forward", &format!("{lport}:[{SERVER_V6}]:{port}")]);
    let mut client = Proc::spawn(cmd, d.join("client.log"), "client");
    assert!(
        client.wait_for_output("user-space stack up", 30),
        "no tunnel:\n{}",
        client.output()
    );
    assert!(
        client.output().contains("dns fd00:1::1"),
        "{}",
        client.output()
    );
    assert!(
        client.output().split_whitespace().any(|w| w == "mtu=1280"),
        "{}",
        client.output()
    );

    let curl = |args: &[&str]| {
        as_nobody(&lab, "curl")
            .args(["-sS", "--max-time", "20"])
            .args(args)
            .output()
            .unwrap()
    };
    let proxy = format!("127.0.0.1:{socks_port}");
    let by_name = format!("http://web.vpn.test:{port}/big.bin");
    let by_addr = format!("http://[{SERVER_V6}]:{port}/big.bin");
    let forwarded = format!("http://127.0.0.1:{lport}/big.bin");
    for args in [
        // The name resolved (AAAA) through the tunnel's DNS server.
        vec!["--socks5-hostname", proxy.as_str(), by_name.as_str()],
        // An IPv6 address in the request (ATYP 4).
        vec!["--socks5", proxy.as_str(), by_addr.as_str()],
        vec![forwarded.as_str()],
    ] {
        let out = curl(&args);
        assert!(
            out.status.success() && out.stdout == body,
            "curl {args:?}: {} ({} bytes)\nclient:\n{}",
            String::from_utf8_lossy(&out.stderr),
            out.stdout.len(),
            client.output()
        );
    }
    // No TUN device in the client's namespace.
    let links = lab.clients[0]
        .command("ip")
        .args(["-o", "link"])
        .output()
        .unwrap();
    let links = String::from_utf8_lossy(&links.stdout);
    assert!(!links.contains("t443c"), "{links}");

    // The server comes back without a DNS server: the client reconnects
    // (MS-IPHTTPS §3.1.2.1: 30 s after the failure), the forward works
    // again, and a name fails in plain words.
    drop(server);
    let _server = start_iphttps_server(&lab, &ca, false);
    let back = wait_until(std::time::Duration::from_secs(60), || {
        client.output().matches("user-space stack up").count() >= 2
    });
    assert!(back, "no reconnect:\n{}", client.output());
    let ok = wait_until(std::time::Duration::from_secs(20), || {
        curl(&[forwarded.as_str()]).stdout == body
    });
    assert!(ok, "forward after the reconnect:\n{}", client.output());
    assert!(
        client.output().contains("no DNS server was given"),
        "{}",
        client.output()
    );
    let out = curl(&["--socks5-hostname", proxy.as_str(), by_name.as_str()]);
    assert!(!out.status.success());
    let log = client.output();
    assert!(
        log.contains("cannot resolve: the server gave no DNS server"),
        "{log}"
    );
    drop(client);
}
