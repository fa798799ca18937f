//! ACME (RFC 8555) with tls-alpn-01 (RFC 8737) against Let's Encrypt's
//! test CA, Debian's `pebble`, with `pebble-challtestsrv` as its DNS
//! answering the test name with the server namespace's address: the server
//! obtains a certificate on its own listener, and our client connects
//! trusting only pebble's root (no `--insecure`, no pin).

mod e2e;

use std::time::Duration;

use e2e::common::require;
use e2e::*;

const DOMAIN: &str = "vpn.test";

#[test]
fn certificate_from_pebble_trusted_by_the_client() {
    require("pebble");
    require("pebble-challtestsrv");
    let lab = Lab::new(1);
    let d = lab.dir.path();
    // Pebble's own API certificate, from a CA the server is told to trust.
    test_ca(d, "pca");
    let (pcert, pkey) = issue_cert(
        d,
        "pca",
        "pebble",
        "localhost",
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    );
    let cfg = lab.write_file(
        "pebble.json",
        &format!(
            r#"{{"pebble": {{"listenAddress": "127.0.0.1:14000",
                "managementListenAddress": "127.0.0.1:15000",
                "certificate": "{}", "privateKey": "{}",
                "httpPort": 5002, "tlsPort": 443, "ocspResponderURL": "",
                "externalAccountBindingRequired": false}}}}"#,
            pcert.display(),
            pkey.display()
        ),
    );
    let mut dns = lab.server.command("pebble-challtestsrv");
    dns.args([
        "-defaultIPv4",
        &lab.server_addr(0),
        "-defaultIPv6",
        "",
        "-dns01",
        "127.0.0.1:8053",
        "-http01",
        "",
        "-https01",
        "",
        "-tlsalpn01",
        "",
        "-management",
        "127.0.0.1:8055",
    ]);
    let _dns = Proc::spawn(dns, d.join("challtestsrv.log"), "challtestsrv");
    let mut pebble = lab.server.command("pebble");
    pebble.env("PEBBLE_VA_NOSLEEP", "1").args([
        "-config",
        cfg.to_str().unwrap(),
        "-dnsserver",
        "127.0.0.1:8053",
    ]);
    let _pebble = Proc::spawn(pebble, d.join("pebble.log"), "pebble");
    wait_listening(&lab.server, 14000, 20, "pebble");

    let users = d.join("users");
    add_user(&users, "vpn", "acme-test-pw", true);
    let mut server = lab.start_server(&[
        "--users-file",
        users.to_str().unwrap(),
        "--acme-domain",
        DOMAIN,
        "--acme-directory",
        "https://127.0.0.1:14000/dir",
        "--acme-ca",
        d.join("pca.pem").to_str().unwrap(),
        "--control-socket",
        d.join("ctl.sock").to_str().unwrap(),
    ]);
    let log = server.wait_log("ACME: certificate obtained", 60);
    assert!(log.contains("ACME tls-alpn-01 challenge answered"), "{log}");
    use std::os::unix::fs::PermissionsExt;
    let key = lab.dir.path().join("state/acme/key.pem");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the key is private");

    // Pebble's root, from its management API.
    let root = d.join("root.pem");
    let out = lab
        .server
        .command("curl")
        .args(["-sf", "--cacert"])
        .arg(d.join("pca.pem"))
        .args(["https://127.0.0.1:15000/roots/0", "-o"])
        .arg(&root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let client = lab.start_client(
        0,
        "vpn",
        "acme-test-pw",
        &[
            "--ca",
            root.to_str().unwrap(),
            "--server-name",
            DOMAIN,
            "--no-reconnect",
        ],
    );
    assert!(
        wait_until(Duration::from_secs(30), || ping_once(
            &lab.clients[0],
            "10.44.0.1"
        )),
        "no tunnel with the ACME certificate:\n{}",
        client.output()
    );
    // The crypto binding used the hash of the certificate actually served.
    server.wait_log("SSTP call connected (crypto binding verified)", 10);
}
