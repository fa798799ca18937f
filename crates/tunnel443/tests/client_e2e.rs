//! End-to-end tests of what the clients (SSTP and IP-HTTPS) leave behind
//! and say: a closed standard output, routes after a SIGKILL, a server that
//! shuts down, kernel RA processing on the TUN devices, the hints and
//! wording of their error messages, and the command-line help. Network
//! namespaces, our server, real TLS and TUN devices; needs root.

mod e2e;

use e2e::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SERVER_TUN: &str = "10.44.0.1";
const IPHTTPS_POOL: &str = "fd00:7::/48";
const IPHTTPS_SERVER: &str = "fd00:7::1";

/// Polls `f` until it is true; false after `secs`.
fn wait_until(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// stdout of `ip ARGS` in `ns`.
fn ip(ns: &Netns, args: &[&str]) -> String {
    let out = ns.command("ip").args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// A sysctl of network device `dev` in `ns` (`/proc/sys/net/ipv6/conf/DEV/KEY`).
fn ipv6_conf(ns: &Netns, dev: &str, key: &str) -> String {
    let out = ns
        .command("cat")
        .arg(format!("/proc/sys/net/ipv6/conf/{dev}/{key}"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Our client in client namespace `i` with standard output a pipe whose
/// reading end is already closed (`| true`): every line it prints meets
/// EPIPE. Standard error goes to the log.
fn client_with_closed_stdout(lab: &Lab, i: usize, args: &[&str], name: &str) -> Proc {
    let log = lab.dir.path().join(format!("{name}-{}.log", tag()));
    let mut cmd = lab.clients[i].command(BIN);
    cmd.env("TUNNEL443_LOG", "debug")
        .env("NO_COLOR", "1")
        .args(["client"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap());
    let mut child = cmd.spawn().unwrap();
    drop(child.stdout.take());
    Proc {
        child,
        log,
        name: name.into(),
    }
}

fn password_file(lab: &Lab) -> PathBuf {
    let pwf = lab.dir.path().join(format!("pw-{}", tag()));
    std::fs::write(&pwf, lab.password()).unwrap();
    pwf
}

fn openssl(dir: &Path, args: &[&str]) {
    let st = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "openssl {args:?}");
}

/// A CA and one client certificate (clientAuth) signed by it: (ca, cert, key).
fn client_pki(lab: &Lab) -> (PathBuf, PathBuf, PathBuf) {
    let d = lab.dir.path();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=test CA",
    ]);
    openssl(d, &ca);
    std::fs::write(d.join("c.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    let mut req = vec!["req"];
    req.extend(ec);
    req.extend(["-keyout", "c.key", "-out", "c.csr", "-subj", "/CN=client"]);
    openssl(d, &req);
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "c.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "c.pem",
            "-days",
            "2",
            "-extfile",
            "c.ext",
        ],
    );
    (d.join("ca.pem"), d.join("c.pem"), d.join("c.key"))
}

fn iphttps_server(lab: &Lab, ca: &Path) -> Proc {
    lab.start_server(&[
        "--iphttps-prefix",
        IPHTTPS_POOL,
        "--iphttps-client-ca",
        ca.to_str().unwrap(),
    ])
}

fn iphttps_url(lab: &Lab, i: usize) -> String {
    format!("iphttps://{}/IPHTTPS", lab.server_addr(i))
}

fn start_iphttps_client(lab: &Lab, i: usize, id: Option<(&Path, &Path)>, extra: &[&str]) -> Proc {
    let mut cmd = lab.clients[i].command(BIN);
    cmd.env("TUNNEL443_LOG", "debug");
    cmd.args([
        "client",
        &iphttps_url(lab, i),
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

fn ping6(ns: &Netns, to: &str) -> bool {
    ns.command("ping")
        .args(["-6", "-c", "1", "-W", "1", "-n", "-q", to])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// `| true` on an SSTP client with `--default-route` and IPv6: no panic
/// (exit 0 on SIGTERM, not 101), and nothing of what it configured is left.
/// The kernel's RA processing is off on both ends' TUN devices.
#[test]
fn sstp_closed_stdout_no_panic_no_leftovers_no_kernel_ra() {
    let lab = Lab::new(1);
    let _server = lab.start_server(&["--ipv6-prefix", "fd44:7::/64"]);
    let pwf = password_file(&lab);
    let url = format!("sstp://vpn@{}", lab.server_addr(0));
    let fp = lab.fingerprint();
    let mut c = client_with_closed_stdout(
        &lab,
        0,
        &[
            &url,
            "--password-file",
            pwf.to_str().unwrap(),
            "--pin-sha256",
            &fp,
            "--default-route",
        ],
        "client",
    );
    assert!(
        wait_ping(&lab.clients[0], SERVER_TUN, 30),
        "tunnel did not come up:\n{}",
        c.output()
    );
    let ns = &lab.clients[0];
    let pinned = ip(ns, &["route", "show", "proto", "243"]);
    assert!(
        pinned.contains(&lab.server_addr(0)),
        "server path not pinned with our route protocol: {pinned:?}\n{}",
        c.output()
    );
    // IPv6 came up through IPv6CP and the RA; the kernel did not act on it.
    assert!(
        wait_until(20, || ping6(ns, "fd44:7::1")),
        "no IPv6:\n{}",
        c.output()
    );
    for (n, dev) in [(ns, "t443c0"), (&lab.server, "t443s0")] {
        assert_eq!(ipv6_conf(n, dev, "accept_ra"), "0", "{dev} accept_ra");
        assert_eq!(ipv6_conf(n, dev, "autoconf"), "0", "{dev} autoconf");
    }
    assert_eq!(
        c.stop().and_then(|s| s.code()),
        Some(0),
        "exit on SIGTERM with stdout closed:\n{}",
        c.output()
    );
    assert!(!c.output().contains("panicked"), "{}", c.output());
    let left = ip(ns, &["route", "show"]) + &ip(ns, &["-6", "route", "show"]);
    assert!(
        !left.contains("t443c0") && !left.contains("proto 243"),
        "routes left behind:\n{left}"
    );
    assert!(
        !ip(ns, &["route", "show"]).contains(&format!("{} ", lab.server_addr(0))),
        "pinned route left behind"
    );
}

/// A client killed with SIGKILL cannot clean up: the next client removes
/// its pinned route (route protocol 243, metric = the dead client's pid)
/// at start, and leaves the pins of running clients alone.
#[test]
fn stale_pinned_route_of_a_killed_client_is_removed_at_start() {
    let lab = Lab::new(1);
    let _server = lab.start_server(&[]);
    let pw = lab.password();
    let fp = lab.fingerprint();
    let ns = &lab.clients[0];
    let mut old = lab.start_client(0, "vpn", &pw, &["--pin-sha256", &fp, "--default-route"]);
    assert!(wait_ping(ns, SERVER_TUN, 30), "{}", old.output());
    let old_pid = old.child.id();
    let pin = format!("{} ", lab.server_addr(0));
    let ours = || ip(ns, &["route", "show", "proto", "243"]);
    let r = ours();
    assert!(
        r.contains(&pin) && r.contains(&format!("metric {old_pid}")),
        "pin of pid {old_pid}: {r:?}"
    );
    old.signal(libc::SIGKILL);
    old.wait_exit(10).expect("SIGKILL");
    // The TUN device (and every route through it) went with the process;
    // the pin on the real interface did not.
    assert!(wait_until(10, || !ip(ns, &["link"]).contains("t443c0")));
    assert!(ours().contains(&format!("metric {old_pid}")), "{}", ours());

    let mut new = lab.start_client(0, "vpn", &pw, &["--pin-sha256", &fp, "--default-route"]);
    let out = new.wait_log("removed a stale route left by an earlier client", 20);
    assert!(out.contains(&format!("pid={old_pid}")), "{out}");
    assert!(wait_ping(ns, SERVER_TUN, 30), "{}", new.output());
    let r = ours();
    assert!(!r.contains(&format!("metric {old_pid}")), "{r}");
    assert!(
        r.contains(&format!("metric {}", new.child.id())),
        "the new client pinned its own: {r}"
    );
    assert_eq!(new.stop().and_then(|s| s.code()), Some(0));
    assert_eq!(ours().trim(), "", "all pins removed");
}

/// SIGTERM on the server: an SSTP client with --no-reconnect says the
/// server shut down, with the reason from the LCP Terminate-Request, and
/// exits 5; one without it says the same and reconnects when the server is
/// back.
#[test]
fn sstp_server_shutdown_is_reported_and_reconnected() {
    let lab = Lab::new(2);
    let mut server = lab.start_server(&[]);
    let pw = lab.password();
    let fp = lab.fingerprint();
    let mut once = lab.start_client(0, "vpn", &pw, &["--pin-sha256", &fp, "--no-reconnect"]);
    let mut again = lab.start_client(1, "vpn", &pw, &["--pin-sha256", &fp]);
    assert!(
        wait_ping(&lab.clients[0], SERVER_TUN, 30),
        "{}",
        once.output()
    );
    assert!(
        wait_ping(&lab.clients[1], SERVER_TUN, 30),
        "{}",
        again.output()
    );
    server.stop();
    let st = once.wait_exit(20).expect("client 0 should exit");
    let out = once.output();
    assert_eq!(st.code(), Some(5), "{out}");
    assert!(
        out.contains(
            "tunnel443: the server shut down the SSTP call (reason: server shutting down)"
        ),
        "{out}"
    );
    assert!(!out.contains("PeerTerminated"), "{out}");
    again.wait_log("the server shut down the SSTP call", 20);
    let _server = lab.start_server(&[]);
    assert!(
        wait_ping(&lab.clients[1], SERVER_TUN, 60),
        "no reconnect:\n{}",
        again.output()
    );
}

/// IP-HTTPS: a refusal speaks of IP-HTTPS (not SSTP); the server's
/// shutdown (final RA, close) is reported with exit 5 under
/// --no-reconnect (by a client whose stdout is closed), and a client
/// without it reconnects (MS-IPHTTPS
/// §3.1.2.1: 30 s later). The kernel did not process the RAs: no SLAAC
/// address or route of its own on the client's device.
#[test]
fn iphttps_refusal_wording_server_shutdown_and_no_kernel_ra() {
    let lab = Lab::new(2);
    let (ca, cert, key) = client_pki(&lab);
    let mut server = iphttps_server(&lab, &ca);

    // No client certificate: 403, in IP-HTTPS's words.
    let mut bare = start_iphttps_client(&lab, 0, None, &["--no-reconnect"]);
    let st = bare.wait_exit(30).expect("refused client should exit");
    let out = bare.output();
    assert_eq!(st.code(), Some(5), "{out}");
    assert!(
        out.contains("tunnel443: the server refused the IP-HTTPS connection: HTTP 403"),
        "{out}"
    );
    assert!(!out.contains("SSTP"), "{out}");

    let id = Some((cert.as_path(), key.as_path()));
    // `| true`: the link-up line and the address line meet a closed pipe.
    let fp = lab.fingerprint();
    let url = iphttps_url(&lab, 0);
    let mut once = client_with_closed_stdout(
        &lab,
        0,
        &[
            &url,
            "--pin-sha256",
            &fp,
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "--no-reconnect",
        ],
        "ipclient0",
    );
    let mut again = start_iphttps_client(&lab, 1, id, &[]);
    for (i, c) in [(0, &once), (1, &again)] {
        assert!(
            wait_until(30, || ping6(&lab.clients[i], IPHTTPS_SERVER)),
            "link {i} did not come up:\n{}",
            c.output()
        );
    }
    let ns = &lab.clients[0];
    assert_eq!(ipv6_conf(ns, "t443c0", "accept_ra"), "0");
    assert_eq!(ipv6_conf(ns, "t443c0", "autoconf"), "0");
    let routes = ip(ns, &["-6", "route", "show"]);
    assert!(!routes.contains("proto ra"), "kernel RA routes: {routes}");
    let addrs = ip(ns, &["-6", "addr", "show", "dev", "t443c0"]);
    assert!(
        !addrs.contains("dynamic") && !addrs.contains("mngtmpaddr"),
        "kernel SLAAC address: {addrs}"
    );

    server.stop();
    let st = once.wait_exit(20).expect("client 0 should exit");
    let out = once.output();
    assert_eq!(st.code(), Some(5), "{out}");
    assert!(
        out.contains("tunnel443: the server shut down the IP-HTTPS connection (reason: its last Router Advertisement withdrew the default router)"),
        "{out}"
    );
    assert!(
        !out.contains("the link failed") && !out.contains("panicked"),
        "{out}"
    );
    let left = ip(ns, &["-6", "route", "show"]);
    assert!(!left.contains("t443c0"), "routes left behind: {left}");
    again.wait_log("the server shut down the IP-HTTPS connection", 20);
    let _server = iphttps_server(&lab, &ca);
    assert!(
        wait_until(60, || ping6(&lab.clients[1], IPHTTPS_SERVER)),
        "no reconnect:\n{}",
        again.output()
    );
}

/// An untrusted server certificate: exit 3, the certificate's SHA-256 and
/// the options that would trust it. A wrong password: the server's words,
/// no Rust debug form.
#[test]
fn untrusted_certificate_hint_and_plain_auth_failure() {
    let lab = Lab::new(1);
    let _server = lab.start_server(&[]);
    let mut c = lab.start_client(0, "vpn", &lab.password(), &["--no-reconnect"]);
    let st = c.wait_exit(30).expect("client did not give up");
    let out = c.output();
    assert_eq!(st.code(), Some(3), "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("tunnel443: TLS:"))
        .unwrap_or_else(|| panic!("no TLS failure line:\n{out}"));
    assert!(line.contains("not issued by a CA we trust"), "{line}");
    assert!(
        line.contains(&format!("--pin-sha256 {}", lab.fingerprint())),
        "fingerprint of the server's certificate: {line}"
    );
    assert!(line.contains("--ca FILE"), "{line}");
    assert!(!line.contains("UnknownIssuer"), "{line}");

    let mut c = lab.start_client(
        0,
        "vpn",
        "not-the-password",
        &["--pin-sha256", &lab.fingerprint(), "--no-reconnect"],
    );
    let st = c.wait_exit(60).expect("client did not give up");
    let out = c.output();
    assert_eq!(st.code(), Some(4), "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("tunnel443: authentication failed"))
        .unwrap_or_else(|| panic!("no authentication line:\n{out}"));
    assert!(line.contains("the server said \""), "{line}");
    assert!(!line.contains("Rejected") && !line.contains('{'), "{line}");
}

/// `client --help` describes both protocols and lists the exit codes;
/// `--cert`/`--key` with an sstp:// URL is a usage error (exit 2).
#[test]
fn client_help_and_options_that_do_not_apply() {
    let out = Command::new(BIN)
        .args(["client", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(help.contains("SSTP") && help.contains("IP-HTTPS"), "{help}");
    assert!(help.contains("Exit codes:"), "{help}");
    for code in ["0", "1", "2", "3", "4", "5", "6", "7"] {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{code}  "))),
            "exit code {code} in:\n{help}"
        );
    }
    let top = Command::new(BIN).arg("--help").output().unwrap();
    let top = String::from_utf8_lossy(&top.stdout);
    let client_line = top
        .lines()
        .find(|l| l.trim_start().starts_with("client"))
        .unwrap();
    assert!(client_line.contains("IP-HTTPS"), "{client_line}");

    for (args, needle) in [
        (
            vec!["sstp://vpn@127.0.0.1", "--cert", "c.pem", "--key", "c.key"],
            "--cert/--key are for IP-HTTPS",
        ),
        (
            vec!["iphttps://127.0.0.1/IPHTTPS", "--password-stdin"],
            "are for SSTP only",
        ),
        (
            vec!["iphttps://127.0.0.1/IPHTTPS", "--peap"],
            "--eap-tls and --peap are for SSTP only",
        ),
        (
            vec!["sstp://vpn@127.0.0.1", "--eap-ca", "ca.pem"],
            "--eap-ca and --eap-server-name are for SSTP with --eap-tls or --peap",
        ),
    ] {
        let out = Command::new(BIN)
            .arg("client")
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

/// With the defaults on both ends (server: min(`tun.mtu`, 4000), client
/// `--mru` 4000) both ask for 4000 bytes in LCP, the client's device gets MTU 4000,
/// and a 4000-byte packet with DF crosses the tunnel whole, both ways (an
/// echo request and its reply).
#[test]
fn the_default_mru_gives_the_client_device_mtu_4000() {
    let lab = Lab::new(1);
    let _server = lab.start_server(&[]);
    let fp = lab.fingerprint();
    let c = lab.start_client(0, "vpn", &lab.password(), &["--pin-sha256", &fp]);
    let ns = &lab.clients[0];
    assert!(
        wait_ping(ns, SERVER_TUN, 30),
        "tunnel did not come up:\n{}",
        c.output()
    );
    let link = ip(ns, &["link", "show", "t443c0"]);
    assert!(link.contains("mtu 4000"), "{link}\n{}", c.output());
    // 3972 bytes of ICMP data + 8 + 20 = a 4000-byte packet, DF set.
    let big = ns
        .command("ping")
        .args(["-c", "1", "-W", "2", "-M", "do", "-s", "3972", SERVER_TUN])
        .output()
        .unwrap();
    assert!(
        big.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&big.stdout),
        c.output()
    );
}

/// Sends one UDP datagram of `data` from `ns` to `to:port` with Don't
/// Fragment clear (IP_PMTUDISC_DONT).
fn send_udp_no_df(ns: &Netns, to: &str, port: u16, data: &str) {
    let script = format!(
        "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); \
         s.setsockopt(socket.IPPROTO_IP, 10, 0); \
         s.sendto(bytes.fromhex('{data}'), ('{to}', {port}))"
    );
    let st = ns
        .command("/usr/bin/python3")
        .args(["-c", &script])
        .status()
        .unwrap();
    assert!(st.success());
}

/// A client with `--mru 1500` against a server with the default MRU of
/// 4000 (device MTU 65535): the server's device routes larger packets to it, and the session
/// keeps them within the client's MRU. A 3000-byte UDP datagram without DF
/// from the server's namespace arrives whole (fragmented on the way, put
/// together by the client's kernel), so does a 3000-byte ping without DF
/// (its reply too); one with DF gets ICMP Fragmentation Needed naming 1500.
#[test]
fn a_client_with_mru_1500_gets_large_packets_fragmented_or_frag_needed() {
    let lab = Lab::new(1);
    let server = lab.start_server(&[]);
    let fp = lab.fingerprint();
    let c = lab.start_client(
        0,
        "vpn",
        &lab.password(),
        &["--pin-sha256", &fp, "--mru", "1500"],
    );
    let ns = &lab.clients[0];
    assert!(
        wait_ping(ns, SERVER_TUN, 30),
        "tunnel did not come up:\n{}",
        c.output()
    );
    let link = ip(ns, &["link", "show", "t443c0"]);
    assert!(link.contains("mtu 1500"), "{link}\n{}", c.output());
    const CLIENT_TUN: &str = "10.44.0.2";
    // No path MTU learned yet: the server's kernel sends 3000-byte packets
    // to its device whole, so the fragments below are the session's.
    let route = ip(&lab.server, &["-4", "route", "get", CLIENT_TUN]);
    assert!(!route.contains("mtu"), "{route}");

    // UDP: a receiver that prints the length and content of one datagram.
    let data: String = (0..3000)
        .map(|i| format!("{:02x}", (i * 7 % 251) as u8))
        .collect();
    let recv_log = lab.dir.path().join("udp-recv.log");
    let mut rcmd = ns.command("/usr/bin/python3");
    rcmd.args([
        "-c",
        "import socket, sys\n\
         s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         s.bind(('0.0.0.0', 9999))\n\
         s.settimeout(30)\n\
         d = s.recv(65535)\n\
         print('received', len(d), d.hex(), flush=True)",
    ]);
    let mut receiver = Proc::spawn(rcmd, recv_log, "udp receiver");
    // The receiver binds after it starts: send until it has one datagram.
    let got = wait_until(20, || {
        send_udp_no_df(&lab.server, CLIENT_TUN, 9999, &data);
        receiver.output().contains("received")
    });
    let out = receiver.output();
    assert!(got, "no datagram arrived:\n{out}\n{}", server.output());
    assert!(
        out.contains(&format!("received 3000 {data}")),
        "the datagram arrived changed:\n{out}"
    );
    let _ = receiver.wait_exit(5);

    let ping = |df: &str| {
        let out = lab
            .server
            .command("ping")
            .args([
                "-n", "-c", "1", "-W", "2", "-M", df, "-s", "2972", CLIENT_TUN,
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    let plain = ping("dont");
    assert!(plain.contains("1 received"), "{plain}\n{}", server.output());
    let df = ping("do");
    assert!(
        df.contains("mtu = 1500") || df.contains("mtu=1500"),
        "{df}\n{}",
        server.output()
    );
}
