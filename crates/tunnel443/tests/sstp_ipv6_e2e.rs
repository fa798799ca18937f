//! SSTP with IPv6 (IPv6CP, RFC 5072) seen from the server's log: two clients
//! with IPv4 and IPv6 send their own link-local traffic (Router
//! Solicitations, MLD, DAD from `::`) and global traffic; none of it is
//! counted as spoofed, and the shutdown line counts two sessions, not their
//! four addresses.

mod e2e;

use e2e::*;
use std::time::{Duration, Instant};

const SERVER_TUN: &str = "10.44.0.1";
const SERVER_V6: &str = "fd44:443::1";

fn ping6_once(ns: &Netns, to: &str) -> bool {
    ns.command("ping")
        .args(["-6", "-c", "1", "-W", "1", "-n", "-q", to])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn wait_ping6(ns: &Netns, to: &str, secs: u64) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if ping6_once(ns, to) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// The value of `key=` in a log line.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

#[test]
fn ipv6_clients_are_not_spoofers_and_shutdown_counts_sessions() {
    let lab = Lab::new(2);
    let mut server = lab.start_server(&["--ipv6-prefix", "fd44:443::/64"]);
    let pin = lab.fingerprint();
    let pw = lab.password();
    let clients: Vec<Proc> = (0..2)
        .map(|i| lab.start_client(i, "vpn", &pw, &["--pin-sha256", &pin]))
        .collect();
    for (i, c) in clients.iter().enumerate() {
        assert!(
            wait_ping(&lab.clients[i], SERVER_TUN, 30),
            "client {i}: no IPv4 tunnel:\n{}",
            c.output()
        );
        assert!(
            wait_ping6(&lab.clients[i], SERVER_V6, 30),
            "client {i}: no IPv6 through the tunnel:\n{}\n{}",
            c.output(),
            server.output()
        );
        // Link-local traffic of the client's own: all-routers multicast
        // from its fe80:: address (answered by nobody, dropped quietly).
        let _ = lab.clients[i]
            .command("ping")
            .args([
                "-6", "-c", "2", "-i", "0.2", "-W", "1", "-I", "t443c0", "ff02::2",
            ])
            .output();
    }
    // Both sessions are up with IPv6; stop the server.
    server.signal(libc::SIGTERM);
    assert!(
        server.wait_exit(20).is_some(),
        "server did not stop:\n{}",
        server.output()
    );
    let log = server.output();
    assert!(
        !log.contains("not assigned"),
        "a client's own traffic was taken for spoofing:\n{log}"
    );
    let shutdown = log
        .lines()
        .find(|l| l.contains("shutting down"))
        .unwrap_or_else(|| panic!("no shutdown line:\n{log}"));
    assert_eq!(field(shutdown, "sessions"), Some("2"), "{shutdown}");
    let ended: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("session ended"))
        .collect();
    assert_eq!(ended.len(), 2, "{log}");
    for l in ended {
        assert_eq!(field(l, "spoofed"), Some("0"), "{l}");
        assert!(!l.contains("Some("), "debug form in {l}");
        assert_eq!(field(l, "user"), Some("vpn"), "{l}");
    }
    drop(clients);
}

/// A client with `--mru 1500` against a server with the default MRU of
/// 4000: a 3000-byte IPv6 packet from the server's namespace to the client
/// is answered with ICMPv6 Packet Too Big naming 1500 (RFC 4443 §3.2; no
/// router fragments IPv6), and the sender's next packets, fragmented by its
/// own kernel, get through (the echo replies come back).
#[test]
fn ipv6_packets_over_the_clients_mru_get_packet_too_big() {
    let lab = Lab::new(1);
    let server = lab.start_server(&["--ipv6-prefix", "fd44:443::/64"]);
    let pin = lab.fingerprint();
    let c = lab.start_client(
        0,
        "vpn",
        &lab.password(),
        &["--pin-sha256", &pin, "--mru", "1500"],
    );
    let ns = &lab.clients[0];
    assert!(
        wait_ping6(ns, SERVER_V6, 30),
        "no IPv6 through the tunnel:\n{}\n{}",
        c.output(),
        server.output()
    );
    // The client's global address (prefix::<its IPv6CP identifier>).
    let out = ns
        .command("ip")
        .args([
            "-6", "-o", "addr", "show", "dev", "t443c0", "scope", "global",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let addr = text
        .split_whitespace()
        .skip_while(|w| *w != "inet6")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .unwrap_or_else(|| panic!("no global address: {text}"))
        .to_string();
    // 2952 bytes of ICMPv6 data + 8 + 40 = a 3000-byte packet.
    let ping = lab
        .server
        .command("ping")
        .args([
            "-6", "-n", "-c", "3", "-i", "0.3", "-W", "2", "-s", "2952", &addr,
        ])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&ping.stdout).into_owned() + &String::from_utf8_lossy(&ping.stderr);
    assert!(
        text.contains("mtu=1500") || text.contains("mtu = 1500"),
        "no Packet Too Big naming 1500:\n{text}\n{}",
        server.output()
    );
    assert!(
        !text.contains(" 0 received"),
        "nothing got through after it:\n{text}"
    );
}
