//! The fleet (docs/fleet.md): two tunnel443 servers in two network
//! namespaces behind one haproxy (TCP mode, TLS terminated by haproxy,
//! PROXY protocol v2 to the servers, round robin), each with its own pool,
//! NAS-Identifier and NAS-IP-Address, sharing one FreeRADIUS that keeps
//! accounting in sqlite and checks `Simultaneous-Use := 1` against it
//! (`e2e/freeradius.rs` with `Options { sql: true, .. }`).
//!
//! Layout: clients → (10.251.i.1:443) haproxy + FreeRADIUS in the `lb`
//! namespace → 10.252.1.2:8080 (server a, pool 10.44.0.0/24) and
//! 10.252.2.2:8080 (server b, pool 10.45.0.0/24); the servers ask
//! FreeRADIUS at 10.252.{1,2}.1.
//!
//! Shown: the clients land on both servers; the accounting rows carry both
//! servers (NAS-IP-Address in SQL, NAS-Identifier in the detail file),
//! the clients' real addresses (Calling-Station-Id, from PROXY v2) and the
//! balancer's address they dialed (Called-Station-Id); a second
//! login of a logged-in user is refused on either server while the first
//! is up, and works once the first has disconnected.

mod e2e;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use e2e::freeradius::{FreeRadius, Options};
use e2e::*;

const SECRET: &str = "fleet-secret";
const USERS: &str = "alice Cleartext-Password := \"alice-pass\", Simultaneous-Use := 1\n\nbob Cleartext-Password := \"bob-pass\", Simultaneous-Use := 1";

/// One server of the fleet: its namespace, process and tunnel address.
struct Member {
    _ns: Netns,
    proc: Proc,
}

/// Starts server `n` (1 or 2) in its own namespace, linked to the balancer.
fn member(lab: &Lab, n: u8, fp: &str, secret: &std::path::Path) -> Member {
    let ns = Netns::create(&format!("t443f{}x{n}", lab.tag)).unwrap();
    veth(
        &lab.server,
        Ipv4Addr::new(10, 252, n, 1),
        &ns,
        Ipv4Addr::new(10, 252, n, 2),
        30,
        &format!("f{}x{n}", lab.tag),
    )
    .unwrap();
    let name = if n == 1 { "vpn-a" } else { "vpn-b" };
    let pool = 43 + n;
    let conf = lab.write_file(
        &format!("{name}.toml"),
        &format!(
            "listen = \"10.252.{n}.2:8080\"\nstate_dir = \"{}\"\n\
             [tls]\nplain_http = true\ncert_sha256 = \"{fp}\"\nproxy_protocol = true\n\
             [ipv4]\npool = \"10.{pool}.0.0/24\"\n\
             [radius]\nservers = [{{ address = \"10.252.{n}.1\", secret_file = \"{}\" }}]\n\
             nas_identifier = \"{name}\"\nnas_ip_address = \"10.252.{n}.2\"\ntimeout = 2\n\
             [auth]\norder = [\"radius\"]\n",
            lab.dir.path().join(name).display(),
            secret.display()
        ),
    );
    let mut cmd = ns.command(BIN);
    cmd.env("TUNNEL443_LOG", "debug");
    cmd.args(["server", "--config"]).arg(&conf);
    let mut proc = Proc::spawn(cmd, lab.dir.path().join(format!("{name}.log")), name);
    assert!(
        proc.wait_for_output("server started", 20),
        "{name} did not start:\n{}",
        proc.output()
    );
    Member { _ns: ns, proc }
}

/// haproxy in the balancer namespace: TLS on :443, round robin over the
/// two servers with PROXY v2 (the configuration shown in docs/fleet.md).
fn haproxy(lab: &Lab, pem: &std::path::Path) -> Proc {
    let cfg = lab.write_file(
        "haproxy.cfg",
        &format!(
            "global\n  maxconn 1000\n\
             defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 1h\n  timeout server 1h\n\
             frontend vpn\n  bind :443 ssl crt {}\n  default_backend fleet\n\
             backend fleet\n  balance roundrobin\n\
             \x20 server vpn-a 10.252.1.2:8080 send-proxy-v2\n\
             \x20 server vpn-b 10.252.2.2:8080 send-proxy-v2\n",
            pem.display()
        ),
    );
    let mut hp = lab.server.command("haproxy");
    hp.args(["-db", "-f"]).arg(cfg);
    let p = Proc::spawn(hp, lab.dir.path().join("haproxy.log"), "haproxy");
    wait_listening(&lab.server, 443, 10, "haproxy");
    p
}

/// The client's tunnel address in client namespace `i`, once it has one.
fn tunnel_address(lab: &Lab, i: usize) -> Option<String> {
    let out = lab.clients[i]
        .command("ip")
        .args(["-4", "-o", "addr", "show", "dev", "t443c0"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let inet = text
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)?;
    Some(inet.split('/').next()?.to_string())
}

/// Waits for client `i`'s tunnel and a ping through it to its server; the
/// server's tunnel address (10.44.0.1 on server a, 10.45.0.1 on server b).
fn connected(lab: &Lab, i: usize, c: &Proc, fleet: &[Member]) -> String {
    let mut addr = None;
    let up = wait_until(Duration::from_secs(30), || {
        addr = tunnel_address(lab, i);
        addr.is_some()
    });
    let logs = || {
        format!(
            "{}\n--- vpn-a\n{}\n--- vpn-b\n{}",
            c.output(),
            fleet[0].proc.output(),
            fleet[1].proc.output()
        )
    };
    assert!(up, "client {i} got no tunnel address:\n{}", logs());
    let addr = addr.unwrap();
    let gw = format!("{}.1", addr.rsplit_once('.').unwrap().0);
    assert!(
        wait_ping(&lab.clients[i], &gw, 20),
        "no ping to {gw}:\n{}",
        logs()
    );
    gw
}

/// A login that must be refused (exit 4: authentication failed).
fn refused(lab: &Lab, radius: &FreeRadius, i: usize, user: &str, password: &str, fp: &str) {
    let mut c = lab.start_client(i, user, password, &["--pin-sha256", fp, "--no-reconnect"]);
    let st = c.wait_exit(30);
    assert_eq!(
        st.and_then(|s| s.code()),
        Some(4),
        "{user} not refused:\n{}\nradacct:\n{}\nnasreload:\n{}\n{}",
        c.output(),
        radius.sql("SELECT * FROM radacct"),
        radius.sql("SELECT * FROM nasreload"),
        radius.output()
    );
}

/// Open accounting rows (no Stop yet) of `user`.
fn open_rows(radius: &FreeRadius, user: &str) -> usize {
    radius
        .sql(&format!(
            "SELECT count(*) FROM radacct WHERE username = '{user}' AND acctstoptime IS NULL"
        ))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn fleet_behind_haproxy_shares_freeradius_with_sql_accounting() {
    let lab = Lab::new(3);
    let d = lab.dir.path();
    let radius = FreeRadius::start_with(
        d,
        &lab.server,
        SECRET,
        USERS,
        Options {
            clients: vec!["10.252.0.0/16".into()],
            sql: true,
        },
    );
    let secret: PathBuf = lab.write_file("radius.secret", &format!("{SECRET}\n"));
    common::set_mode(&secret, 0o600);
    let (pem, fp) = self_signed_server_cert(d, "lb", "vpn.test");
    let fleet = [member(&lab, 1, &fp, &secret), member(&lab, 2, &fp, &secret)];
    let _haproxy = haproxy(&lab, &pem);

    // Round robin: alice and bob land on different servers.
    let mut alice = lab.start_client(0, "alice", "alice-pass", &["--pin-sha256", &fp]);
    let gw_alice = connected(&lab, 0, &alice, &fleet);
    let bob = lab.start_client(1, "bob", "bob-pass", &["--pin-sha256", &fp]);
    let gw_bob = connected(&lab, 1, &bob, &fleet);
    let mut gws = [gw_alice.as_str(), gw_bob.as_str()];
    gws.sort();
    assert_eq!(gws, ["10.44.0.1", "10.45.0.1"], "both servers used");

    // Accounting: a Start row per session, with each server's NAS address
    // and the client's real address.
    let rows = || {
        radius.sql(
            "SELECT username, nasipaddress, callingstationid, calledstationid FROM radacct \
             WHERE acctstoptime IS NULL ORDER BY username",
        )
    };
    assert!(
        wait_until(Duration::from_secs(15), || rows().lines().count() == 2),
        "no two open accounting rows:\n{}\n{}",
        rows(),
        radius.output()
    );
    let rows = rows();
    let a = if gw_alice.starts_with("10.44.") { 1 } else { 2 };
    let b = 3 - a;
    assert_eq!(
        rows,
        // Called-Station-Id: the balancer's address each client dialed
        // (the PROXY header's destination), not the server's own.
        format!(
            "alice|10.252.{a}.2|10.251.0.2|10.251.0.1\nbob|10.252.{b}.2|10.251.1.2|10.251.1.1\n"
        ),
        "accounting rows"
    );
    for name in ["vpn-a", "vpn-b"] {
        let starts = radius.records(&format!("NAS-Identifier = \"{name}\""));
        assert!(
            starts
                .iter()
                .any(|r| r.contains("Acct-Status-Type = Start")),
            "no Start from {name}:\n{}",
            radius.detail()
        );
    }

    // A second alice is refused on either server while the first is up.
    refused(&lab, &radius, 2, "alice", "alice-pass", &fp);
    refused(&lab, &radius, 2, "alice", "alice-pass", &fp);
    for m in &fleet {
        let log = m.proc.output();
        assert!(
            log.lines()
                .any(|l| l.contains("user=alice") && l.contains("source=radius accepted=false")),
            "this server did not see a refused alice:\n{log}"
        );
    }
    let log = radius.output();
    assert_eq!(
        log.matches("Multiple logins").count(),
        2,
        "FreeRADIUS did not refuse for Simultaneous-Use:\n{log}"
    );
    assert!(
        ping_once(&lab.clients[0], &gw_alice),
        "first alice still up"
    );

    // The first alice leaves (Stop closes the row); the next login works.
    alice.stop();
    assert!(
        wait_until(Duration::from_secs(15), || open_rows(&radius, "alice") == 0),
        "alice's row not closed:\n{}",
        radius.output()
    );
    let again = lab.start_client(2, "alice", "alice-pass", &["--pin-sha256", &fp]);
    connected(&lab, 2, &again, &fleet);
    assert!(
        wait_until(Duration::from_secs(15), || open_rows(&radius, "alice") == 1),
        "no Start for the new alice:\n{}",
        radius.output()
    );
}
