//! End-to-end tests of certificate logins (EAP-TLS, RFC 5216 / RFC 9190)
//! over SSTP, our server (`[sstp] auth = ["eap-tls"]`, `[eap_tls]
//! client_ca`) against our client (`--eap-tls --cert --key --eap-ca`) in
//! network namespaces:
//! * a client certificate from the configured CA logs in; both ends log
//!   EAP-TLS, the server names the user by the certificate's subject CN,
//!   and the tunnel only comes up because the crypto binding over the
//!   EAP-TLS MSK (MS-SSTP §3.2.5.2.2) verifies;
//! * a client certificate from another CA is refused with EAP-Failure, and
//!   both ends say why;
//! * pppd 2.4.9's own EAP-TLS (sstpc in the qemu VM, TLS 1.2) logs in to
//!   our server; our own client does TLS 1.3.

mod e2e;

use e2e::*;
use std::path::{Path, PathBuf};

const SERVER_TUN: &str = "10.44.0.1";

struct Pki {
    ca: PathBuf,
    good: (PathBuf, PathBuf),
    foreign: (PathBuf, PathBuf),
}

/// CA `ca` (server certificate for vpn.test, client certificate CN=alice)
/// and CA `other` (client certificate CN=mallory).
fn pki(d: &Path) -> (Pki, PathBuf, PathBuf) {
    let ca = test_ca(d, "ca");
    test_ca(d, "other");
    let (cert, key) = issue_cert(
        d,
        "ca",
        "server",
        "vpn.test",
        "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:vpn.test\nbasicConstraints=CA:FALSE\n",
    );
    let client_ext = "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n";
    let good = issue_cert(d, "ca", "alice", "alice", client_ext);
    let foreign = issue_cert(d, "other", "mallory", "mallory", client_ext);
    (Pki { ca, good, foreign }, cert, key)
}

fn eap_tls_server(lab: &Lab) -> (Proc, Pki) {
    eap_tls_server_with(lab, None, "", &[])
}

/// [`eap_tls_server`] with `[eap_tls] client_ca` at `client_ca` (a copy of
/// the CA made here), more `[eap_tls]` keys and more server arguments.
fn eap_tls_server_with(
    lab: &Lab,
    client_ca: Option<&Path>,
    eap_tls_keys: &str,
    args: &[&str],
) -> (Proc, Pki) {
    let d = lab.dir.path();
    let (mut pki, cert, key) = pki(d);
    let https_ca = pki.ca.clone();
    if let Some(c) = client_ca {
        std::fs::copy(&pki.ca, c).unwrap();
        pki.ca = c.to_path_buf();
    }
    // Nobody has a password: EAP-TLS needs no users.
    let users = lab.write_file("users", "");
    common::set_mode(&users, 0o600); // the server refuses a users file others can read
    let conf = lab.write_file(
        "tunnel443.toml",
        &format!(
            "users_file = \"{}\"\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n\
             [sstp]\nauth = [\"eap-tls\"]\n[eap_tls]\nclient_ca = \"{}\"\n{eap_tls_keys}\n",
            users.display(),
            cert.display(),
            key.display(),
            pki.ca.display()
        ),
    );
    let mut all = vec!["--config", conf.to_str().unwrap()];
    all.extend_from_slice(args);
    let server = lab.start_server(&all);
    pki.ca = https_ca;
    (server, pki)
}

fn eap_tls_client(lab: &Lab, pki: &Pki, (cert, key): &(PathBuf, PathBuf)) -> Proc {
    eap_tls_client_trusting(lab, pki, (cert, key), &pki.ca)
}

/// The client with `--eap-ca eap_ca` (the HTTPS connection trusts `ca`).
fn eap_tls_client_trusting(
    lab: &Lab,
    pki: &Pki,
    (cert, key): (&PathBuf, &PathBuf),
    eap_ca: &Path,
) -> Proc {
    let ca = pki.ca.to_str().unwrap();
    let mut cmd = lab.clients[0].command(BIN);
    cmd.env("TUNNEL443_LOG", "debug");
    cmd.args(["client", &format!("sstp://{}", lab.server_addr(0))])
        .args(["--eap-tls", "--cert"])
        .arg(cert)
        .arg("--key")
        .arg(key)
        .arg("--eap-ca")
        .arg(eap_ca)
        .args(["--ca", ca, "--server-name", "vpn.test"]);
    Proc::spawn(
        cmd,
        lab.dir.path().join(format!("client-{}.log", tag())),
        "client",
    )
}

#[test]
fn eap_tls_login_with_the_right_ca() {
    let lab = Lab::new(1);
    let (server, pki) = eap_tls_server(&lab);
    let c = eap_tls_client(&lab, &pki, &pki.good);
    assert!(
        wait_ping(&lab.clients[0], SERVER_TUN, 30),
        "no tunnel with EAP-TLS:\n{}\n{}",
        c.output(),
        server.output()
    );
    assert_auth_method(&server.output(), "eaptls", "server");
    assert_auth_method(&c.output(), "eaptls", "client");
    // rustls on both sides: TLS 1.3 (RFC 9190); TLS 1.2 (RFC 5216) is
    // tested against FreeRADIUS (radius_e2e.rs) and pppd (below).
    assert_tls_version(&c.output(), "EAP-TLS", "1.3");
    assert_tls_version(&server.output(), "EAP-TLS", "1.3");
    let s = server.output();
    assert!(s.contains("crypto binding verified"), "{s}");
    assert!(
        s.lines()
            .any(|l| l.contains("authenticated") && l.contains("user=alice")),
        "the user name is the certificate's CN:\n{s}"
    );
}

#[test]
fn eap_tls_refuses_a_certificate_from_another_ca() {
    let lab = Lab::new(1);
    let (server, pki) = eap_tls_server(&lab);
    let mut c = eap_tls_client(&lab, &pki, &pki.foreign);
    let st = c.wait_exit(60).expect("client did not give up");
    let (co, so) = (c.output(), server.output());
    assert_eq!(st.code(), Some(4), "{co}\n{so}");
    assert!(!ping_once(&lab.clients[0], SERVER_TUN));
    assert!(
        so.lines()
            .any(|l| l.contains("authentication failed") && l.contains("EAP-TLS failed")),
        "server log names the EAP-TLS failure:\n{so}"
    );
    assert!(
        co.contains("EAP-TLS failed"),
        "client says EAP-TLS was refused:\n{co}"
    );
    eprintln!(
        "server: {}\nclient: {}",
        so.lines()
            .find(|l| l.contains("EAP-TLS failed"))
            .unwrap_or_default(),
        co.lines().last().unwrap_or_default()
    );
}

/// `[eap_tls] user_name = "san-email"`: the user is the certificate's
/// e-mail SAN, not its CN; a certificate without one is refused, and the
/// server says why.
#[test]
fn eap_tls_user_name_from_the_email_san() {
    let lab = Lab::new(1);
    let (server, pki) = eap_tls_server_with(&lab, None, "user_name = \"san-email\"", &[]);
    let d = lab.dir.path();
    let bob = issue_cert(
        d,
        "ca",
        "bob",
        "bob",
        "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n\
         subjectAltName=email:bob@example.com\n",
    );
    // alice's certificate has no e-mail SAN.
    let mut c = eap_tls_client(&lab, &pki, &pki.good);
    let st = c.wait_exit(60).expect("client did not give up");
    assert_eq!(st.code(), Some(4), "{}\n{}", c.output(), server.output());
    let so = server.output();
    assert!(
        so.lines().any(|l| l.contains("authentication failed")
            && l.contains("the client certificate has no e-mail subject alternative name")),
        "{so}"
    );
    let c = eap_tls_client(&lab, &pki, &bob);
    assert!(
        wait_ping(&lab.clients[0], SERVER_TUN, 30),
        "no tunnel for bob:\n{}\n{}",
        c.output(),
        server.output()
    );
    assert!(
        server
            .output()
            .lines()
            .any(|l| l.contains(" authenticated ") && l.contains("user=bob@example.com")),
        "the user name is the e-mail SAN:\n{}",
        server.output()
    );
}

/// `--eap-ca` naming another CA: the client refuses the server's EAP-TLS
/// certificate (though the HTTPS connection trusted it) and says so.
#[test]
fn eap_tls_client_refuses_a_server_certificate_from_another_ca() {
    let lab = Lab::new(1);
    let (server, pki) = eap_tls_server(&lab);
    let other = lab.dir.path().join("other.pem");
    let mut c = eap_tls_client_trusting(&lab, &pki, (&pki.good.0, &pki.good.1), &other);
    let st = c.wait_exit(60).expect("client did not give up");
    let co = c.output();
    assert_eq!(st.code(), Some(4), "{co}\n{}", server.output());
    assert!(
        co.contains("EAP-TLS failed: the server's certificate was refused"),
        "{co}"
    );
    assert!(
        authenticated_nowhere(&server.output()),
        "{}",
        server.output()
    );
}

fn authenticated_nowhere(log: &str) -> bool {
    !log.lines().any(|l| l.contains(" authenticated "))
}

/// pppd 2.4.9's own EAP-TLS (OpenSSL) as the peer: sstpc + pppd in the qemu
/// VM (`scripts/sstpc-vm.sh --files`, the CA, certificate and key copied
/// into the guest) against our server. The tunnel carries pings only if
/// sstpc's crypto binding, computed from pppd's EAP-TLS keys, verifies.
#[test]
fn sstpc_pppd_eap_tls_against_our_server() {
    let lab = Lab::new(0);
    let (server, pki) = eap_tls_server(&lab);
    let files = lab.dir.path().join("vmfiles");
    std::fs::create_dir_all(&files).unwrap();
    let (cert, key) = &pki.good;
    for (from, to) in [
        (&pki.ca, "ca.pem"),
        (cert, "client.pem"),
        (key, "client.key"),
    ] {
        std::fs::copy(from, files.join(to)).unwrap();
    }
    // sstpc cannot compute EAP-TLS keys when it launches pppd ("EAP TLS not
    // supported in this mode"): --pty makes pppd run sstpc (without
    // --user/--password, which would turn sstpc's plugin socket off), and
    // pppd's sstp-pppd-plugin.so hands sstpc pppd's keys for the binding.
    let pppd_args = "refuse-pap refuse-chap refuse-mschap refuse-mschap-v2 noauth \
                     nodefaultroute remotename vpn.test ca /host/files/ca.pem \
                     cert /host/files/client.pem key /host/files/client.key";
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/sstpc-vm.sh");
    let out = lab
        .server
        .command(script.to_str().unwrap())
        .args(["--port", "443", "--user", "alice", "--password", "unused"])
        .args(["--pty", "eaptls"])
        .args(["--pppd-args", pppd_args])
        .arg("--files")
        .arg(&files)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let verdict = text.lines().last().unwrap_or_default();
    eprintln!("sstpc-vm (pppd EAP-TLS): {verdict}");
    let log = server.output();
    assert!(
        out.status.success() && verdict.starts_with("sstpc-vm: PASS"),
        "sstpc-vm failed:\n{text}\n{}\n--- server ---\n{log}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_auth_method(&log, "eaptls", "server");
    assert!(log.contains("crypto binding verified"), "{log}");
    // pppd 2.4.9 (OpenSSL 3) stops at TLS 1.2: RFC 5216's keys.
    assert_tls_version(&log, "EAP-TLS", "1.2");
}

/// `ctl stats --json`'s (success, failure) for the method `eap-tls`.
fn eap_tls_stats(sock: &Path) -> (u64, u64) {
    let v = ctl_stats(sock);
    let a = v["auth"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["method"] == "eap-tls")
        .unwrap_or_else(|| panic!("no eap-tls in {v}"))
        .clone();
    (
        a["success"].as_u64().unwrap(),
        a["failure"].as_u64().unwrap(),
    )
}

/// Local EAP-TLS logins are counted in `ctl stats` (method `eap-tls`),
/// and SIGHUP reloads `[eap_tls]`: once its client CA file names the other
/// CA, mallory's certificate logs in.
#[test]
fn eap_tls_logins_counted_and_client_ca_reloaded() {
    let lab = Lab::new(1);
    let sock = lab.dir.path().join("ctl.sock");
    let client_ca = lab.dir.path().join("client-ca.pem");
    let (mut server, pki) = eap_tls_server_with(
        &lab,
        Some(&client_ca),
        "",
        &["--control-socket", sock.to_str().unwrap()],
    );
    let mut c = eap_tls_client(&lab, &pki, &pki.good);
    assert!(
        wait_ping(&lab.clients[0], SERVER_TUN, 60),
        "no tunnel with EAP-TLS:\n{}\n{}",
        c.output(),
        server.output()
    );
    c.stop();
    assert_eq!(eap_tls_stats(&sock), (1, 0));
    let mut c = eap_tls_client(&lab, &pki, &pki.foreign);
    let st = c.wait_exit(60).expect("client did not give up");
    assert_eq!(st.code(), Some(4), "{}", c.output());
    assert!(
        wait_until(std::time::Duration::from_secs(10), || eap_tls_stats(&sock)
            == (1, 1)),
        "{:?}",
        eap_tls_stats(&sock)
    );
    // The other CA in the client CA file, and SIGHUP.
    std::fs::copy(lab.dir.path().join("other.pem"), &client_ca).unwrap();
    server.signal(libc::SIGHUP);
    server.wait_log("EAP-TLS certificate, key and client CA reloaded", 20);
    let c = eap_tls_client(&lab, &pki, &pki.foreign);
    assert!(
        wait_ping(&lab.clients[0], SERVER_TUN, 60),
        "the reloaded client CA did not take:\n{}\n{}",
        c.output(),
        server.output()
    );
    assert!(
        server
            .output()
            .lines()
            .any(|l| l.contains("authenticated") && l.contains("user=mallory")),
        "{}",
        server.output()
    );
    assert_eq!(eap_tls_stats(&sock), (2, 1));
}
