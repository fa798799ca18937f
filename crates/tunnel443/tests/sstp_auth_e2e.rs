//! End-to-end tests of what the admin configures for SSTP clients, our
//! server against our client in network namespaces:
//! * every `[sstp] auth` method (PAP, CHAP-MD5, MS-CHAPv2, EAP-MSCHAPv2),
//!   with users from `tunnel443 user add`; the method both ends used is
//!   read from their `authenticated ... method=` log lines, and the crypto
//!   binding (MS-SSTP §3.2.5.2: keyed HLAK or 32 zero bytes, by method)
//!   must verify for the tunnel to come up;
//! * a server certificate issued by a CA, validated by the client with
//!   `--ca` (MS-SSTP §3.2.4.1: the client validates the certificate's name
//!   and its serverAuth EKU): the right CA, another CA, and a host name the
//!   certificate is not for (`--server-name`).

mod e2e;

use e2e::*;
use std::path::PathBuf;

const SERVER_TUN: &str = "10.44.0.1";
const USER: &str = "alice";
const PASSWORD: &str = "s3cret-pass";

/// A server whose config file offers only `method` (`[sstp] auth`), with
/// user `alice` in its own users file (`user add`, `--plain` if `plain`).
fn server_offering(lab: &Lab, method: &str, plain: bool) -> Proc {
    let users = lab.dir.path().join("users");
    add_user(&users, USER, PASSWORD, plain);
    let conf = lab.write_file(
        "tunnel443.toml",
        &format!(
            "users_file = \"{}\"\n[sstp]\nauth = [\"{method}\"]\n",
            users.display()
        ),
    );
    lab.start_server(&["--config", conf.to_str().unwrap()])
}

/// Our client authenticates with the one method the server offers; both
/// ends log it, and the tunnel carries pings.
fn authenticates_with(method: &str, plain: bool, logged: &str) {
    let lab = Lab::new(1);
    let server = server_offering(&lab, method, plain);
    let c = lab.start_client(0, USER, PASSWORD, &["--pin-sha256", &lab.fingerprint()]);
    assert!(
        wait_ping(&lab.clients[0], SERVER_TUN, 30),
        "no tunnel with {method}:\n{}\n{}",
        c.output(),
        server.output()
    );
    assert_eq!(ping_count(&lab.clients[0], SERVER_TUN, 3), 3);
    assert_auth_method(&server.output(), logged, "server");
    assert_auth_method(&c.output(), logged, "client");
}

#[test]
fn auth_pap() {
    authenticates_with("pap", false, "pap");
}

#[test]
fn auth_chap_md5_with_a_plain_user() {
    authenticates_with("chap-md5", true, "chapmd5");
}

#[test]
fn auth_mschapv2() {
    authenticates_with("mschapv2", false, "mschapv2");
}

#[test]
fn auth_eap_mschapv2() {
    authenticates_with("eap-mschapv2", false, "eapmschapv2");
}

/// CHAP-MD5 needs the plaintext password: a user stored as an NT hash
/// (the `user add` default) is refused, and the client says so (exit 4).
#[test]
fn auth_chap_md5_refuses_a_hashed_user() {
    let lab = Lab::new(1);
    let server = server_offering(&lab, "chap-md5", false);
    let mut c = lab.start_client(0, USER, PASSWORD, &["--pin-sha256", &lab.fingerprint()]);
    let st = c.wait_exit(60).expect("client did not give up");
    assert_eq!(st.code(), Some(4), "{}\n{}", c.output(), server.output());
    assert!(!ping_once(&lab.clients[0], SERVER_TUN));
    assert_eq!(auth_method(&server.output()), None, "{}", server.output());
}

/// A test CA `ca`, a second CA `other`, and a server certificate from `ca`
/// for the name `vpn.test` only (serverAuth EKU, SAN DNS:vpn.test); the
/// server runs with it. Returns the server and the two CA files.
fn server_with_ca_cert(lab: &Lab) -> (Proc, PathBuf, PathBuf) {
    let d = lab.dir.path();
    let ca = test_ca(d, "ca");
    let other = test_ca(d, "other");
    let (cert, key) = issue_cert(
        d,
        "ca",
        "server",
        "vpn.test",
        "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:vpn.test\nbasicConstraints=CA:FALSE\n",
    );
    let users = d.join("users");
    add_user(&users, USER, PASSWORD, false);
    let conf = lab.write_file(
        "tunnel443.toml",
        &format!(
            "users_file = \"{}\"\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
            users.display(),
            cert.display(),
            key.display()
        ),
    );
    let server = lab.start_server(&["--config", conf.to_str().unwrap()]);
    (server, ca, other)
}

/// A client run that the TLS validation must refuse: exit 3 at once, no
/// tunnel.
fn refused(lab: &Lab, args: &[&str], why: &str) {
    let mut c = lab.start_client(0, USER, PASSWORD, args);
    let st = c
        .wait_exit(30)
        .unwrap_or_else(|| panic!("{why}: client did not give up"));
    eprintln!("{why}: {}", c.output().lines().last().unwrap_or_default());
    assert_eq!(st.code(), Some(3), "{why}:\n{}", c.output());
    assert!(!ping_once(&lab.clients[0], SERVER_TUN), "{why}");
}

#[test]
fn ca_trusts_the_server_certificate_for_its_name_only() {
    let lab = Lab::new(1);
    let (server, ca, other) = server_with_ca_cert(&lab);
    let ca = ca.to_str().unwrap();
    // The URL names 10.251.0.1; the certificate is for vpn.test only.
    refused(&lab, &["--ca", ca], "host name mismatch");
    // Another CA does not vouch for the certificate, whatever the name.
    refused(
        &lab,
        &["--ca", other.to_str().unwrap(), "--server-name", "vpn.test"],
        "certificate from another CA",
    );
    // The right CA and the certificate's name: the tunnel comes up, with
    // the crypto binding over this certificate.
    let c = lab.start_client(
        0,
        USER,
        PASSWORD,
        &["--ca", ca, "--server-name", "vpn.test"],
    );
    assert!(
        wait_ping(&lab.clients[0], SERVER_TUN, 30),
        "--ca with --server-name:\n{}\n{}",
        c.output(),
        server.output()
    );
    assert!(
        server.output().contains("crypto binding verified"),
        "{}",
        server.output()
    );
}
