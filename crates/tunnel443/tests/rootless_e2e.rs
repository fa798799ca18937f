//! Rootless client mode: `tunnel443 client sstp://… --forward` run as
//! `nobody` (setpriv, no capabilities, no TUN device), forwarding a local
//! port through a user-space TCP/IP stack to a web server that only the VPN
//! server's side can reach.

mod e2e;

use std::process::Command;

use e2e::common::{free_port, payload, set_mode};
use e2e::*;

const SERVER_TUN: &str = "10.44.0.1";

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
    assert!(log.contains("forwarded connection accepted"), "{log}");
    drop(client);
}
