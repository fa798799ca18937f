//! Our SSTP client through real web proxies (MS-SSTP §4.5,
//! ssl-tunneling-through-proxy.txt): squid, tinyproxy, squid with Basic,
//! Digest (digest_file_auth) and NTLM (ntlm_fake_auth) auth, and the
//! chains tunnel443 proxy -> squid and squid -> squid with Digest. The proxies run on
//! 127.0.0.1 inside the client's network namespace; the server is in its
//! own namespace behind veth. Each test pings through the tunnel.

mod e2e;

use e2e::common::{Squid, SquidAuth, Tinyproxy};
use e2e::*;

const SERVER_TUN: &str = "10.44.0.1";

fn client_via(lab: &Lab, proxies: &[String], extra_env: &[(&str, &str)]) -> Proc {
    let pwf = lab.dir.path().join(format!("pw-{}", tag()));
    std::fs::write(&pwf, lab.password()).unwrap();
    let mut cmd = lab.clients[0].command(BIN);
    cmd.args(["client", &format!("sstp://vpn@{}", lab.server_addr(0))])
        .arg("--password-file")
        .arg(&pwf)
        .args(["--pin-sha256", &lab.fingerprint()]);
    for p in proxies {
        cmd.args(["--proxy", p]);
    }
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    Proc::spawn(
        cmd,
        lab.dir.path().join(format!("client-{}.log", tag())),
        "client",
    )
}

fn assert_tunnel(lab: &Lab, client: &Proc) {
    assert!(
        wait_ping(&lab.clients[0], SERVER_TUN, 30),
        "no tunnel through the proxy:\n{}",
        client.output()
    );
    assert_eq!(ping_count(&lab.clients[0], SERVER_TUN, 3), 3);
}

#[test]
fn through_squid() {
    let lab = Lab::new(1);
    let _server = lab.start_server(&[]);
    let squid = Squid::start_in(None, Some(&lab.clients[0].name));
    let c = client_via(&lab, &[squid.url()], &[]);
    assert_tunnel(&lab, &c);
    drop(c);
    let line = squid.wait_access("CONNECT", 10);
    assert!(
        line.contains(&format!("{}:443", lab.server_addr(0))),
        "{line}"
    );
}

#[test]
fn through_tinyproxy() {
    let lab = Lab::new(1);
    let _server = lab.start_server(&[]);
    let tp = Tinyproxy::start_in(Some(&lab.clients[0].name));
    let c = client_via(&lab, &[tp.url()], &[]);
    assert_tunnel(&lab, &c);
    assert!(tp.log().contains("CONNECT"), "{}", tp.log());
}

#[test]
fn through_squid_with_basic_auth() {
    let lab = Lab::new(1);
    let _server = lab.start_server(&[]);
    let squid = Squid::start_in(Some(("alice", "s3cret-pw")), Some(&lab.clients[0].name));
    // Wrong credentials: a clear proxy error (exit code 7), no tunnel.
    let bad = format!("http://alice:wrong@{}", squid.addr);
    let mut c = client_via(&lab, &[bad], &[]);
    let st = c.wait_exit(30).expect("client should give up on 407");
    // 407 although we sent credentials is final: no reconnect loop.
    assert_eq!(st.code(), Some(7), "{}", c.output());
    assert!(c.output().contains("407"), "{}", c.output());
    assert!(
        !c.output().contains("wrong"),
        "the password leaked into the output"
    );
    // Credentials from the environment, not argv.
    let c = client_via(
        &lab,
        &[squid.url()],
        &[
            ("TUNNEL443_PROXY_USER", "alice"),
            ("TUNNEL443_PROXY_PASSWORD", "s3cret-pw"),
        ],
    );
    assert_tunnel(&lab, &c);
    assert!(!c.output().contains("s3cret-pw"));
}

#[test]
fn through_squid_with_digest_auth() {
    let lab = Lab::new(1);
    let _server = lab.start_server(&[]);
    let ns = Some(lab.clients[0].name.as_str());
    let squid = Squid::start_with(Some(SquidAuth::Digest("dana", "d1gest-pw", "")), ns);
    // Wrong password: refused after one Digest answer, exit code 7.
    let bad = format!("http://dana:wrong@{}", squid.addr);
    let mut c = client_via(&lab, &[bad], &[]);
    let st = c.wait_exit(30).expect("client should give up on 407");
    assert_eq!(st.code(), Some(7), "{}", c.output());
    assert!(
        c.output().contains("Digest credentials refused (407)"),
        "{}",
        c.output()
    );
    let good = format!("http://dana:d1gest-pw@{}", squid.addr);
    let c = client_via(&lab, &[good], &[]);
    assert_tunnel(&lab, &c);
    assert!(!c.output().contains("d1gest-pw"));
    drop(c);
    let line = squid.wait_access("TCP_TUNNEL", 10);
    assert!(line.contains(" dana "), "{line}");
}

#[test]
fn through_squid_with_ntlm() {
    let lab = Lab::new(1);
    let _server = lab.start_server(&[]);
    let ns = Some(lab.clients[0].name.as_str());
    let squid = Squid::start_with(Some(SquidAuth::NtlmFake), ns);
    let c = client_via(
        &lab,
        &[squid.url()],
        &[
            ("TUNNEL443_PROXY_USER", "CORP\\nina"),
            ("TUNNEL443_PROXY_PASSWORD", "ntlm-pw"),
        ],
    );
    assert_tunnel(&lab, &c);
    drop(c);
    let line = squid.wait_access("TCP_TUNNEL", 10);
    assert!(line.contains("nina"), "authenticated as nina: {line}");
}

/// A chain whose second proxy wants Digest: squid (open) -> squid
/// (digest_file_auth).
#[test]
fn through_squid_chained_to_digest_squid() {
    let lab = Lab::new(1);
    let _server = lab.start_server(&[]);
    let ns = Some(lab.clients[0].name.as_str());
    let first = Squid::start_in(None, ns);
    let second = Squid::start_with(Some(SquidAuth::Digest("dana", "d1gest-pw", "")), ns);
    let c = client_via(
        &lab,
        &[
            first.url(),
            format!("http://dana:d1gest-pw@{}", second.addr),
        ],
        &[],
    );
    assert_tunnel(&lab, &c);
    drop(c);
    let line = second.wait_access("TCP_TUNNEL", 10);
    assert!(line.contains(" dana "), "{line}");
    first.wait_access(&format!("CONNECT {}", second.addr), 10);
}

#[test]
fn through_our_proxy_chained_to_squid() {
    let lab = Lab::new(1);
    let _server = lab.start_server(&[]);
    let squid = Squid::start_in(None, Some(&lab.clients[0].name));
    let (mut proxy, proxy_url) = our_proxy_in(&lab, 0, squid.addr);
    let c = client_via(&lab, &[proxy_url, squid.url()], &[]);
    assert_tunnel(&lab, &c);
    drop(c);
    // The hop to squid went through our proxy, carrying SSTPVERSION: its
    // access-log line (written when the tunnel ends) says so.
    let want = format!("target={}", squid.addr);
    let out = proxy.wait_log(&want, 15);
    let line = out.lines().find(|l| l.contains(&want)).unwrap();
    assert!(line.contains("sstp=true"), "{line}");
    squid.wait_access("CONNECT", 10);
}

/// Nothing listens at the proxy: a proxy failure (exit code 7, as the
/// client's help says), not "other" (1); the OS error is said once.
#[test]
fn unreachable_proxy_is_exit_code_7() {
    let lab = Lab::new(1);
    let pwf = lab.dir.path().join("pw");
    std::fs::write(&pwf, "not-used").unwrap();
    let port = e2e::common::free_port();
    let mut cmd = lab.clients[0].command(BIN);
    cmd.args(["client", &format!("sstp://vpn@{}", lab.server_addr(0))])
        .arg("--password-file")
        .arg(&pwf)
        .args(["--pin-sha256", &"00".repeat(32), "--no-reconnect"])
        .args(["--proxy", &format!("http://127.0.0.1:{port}")]);
    let mut c = Proc::spawn(cmd, lab.dir.path().join("client.log"), "client");
    let st = c.wait_exit(30).expect("client should give up");
    let out = c.output();
    assert_eq!(st.code(), Some(7), "{out}");
    let msg = out
        .lines()
        .find(|l| l.contains("cannot connect to proxy"))
        .unwrap_or_else(|| panic!("no proxy error in:\n{out}"));
    assert_eq!(msg.matches("Connection refused").count(), 1, "{msg}");
}
