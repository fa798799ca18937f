//! `server --user nobody` (issue 12 "Security defaults"): after start the
//! server runs as nobody with only CAP_NET_ADMIN, and still serves: a
//! client connects and pings through the tunnel, root's `ctl` talks to the
//! control socket, and a user added with `tunnel443 user add` (as root)
//! is picked up by the users-file reload.

mod e2e;

use std::time::Duration;

use e2e::*;

const SERVER_TUN: &str = "10.44.0.1";

/// `key:` line of /proc/PID/status, its fields.
fn status(pid: u32, key: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {key} in {text}"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn server_runs_as_nobody_with_net_admin_only_and_still_serves() {
    let lab = Lab::new(1);
    let sock = lab.dir.path().join("control.sock");
    let mut server = lab.start_server(&[
        "--user",
        "nobody",
        "--control-socket",
        sock.to_str().unwrap(),
    ]);
    let log = server.wait_log("privileges dropped", 20);
    assert!(log.contains("privileges dropped"), "{log}");
    let pid = server.child.id();
    assert_eq!(status(pid, "Uid"), "65534 65534 65534 65534");
    assert_eq!(status(pid, "Gid"), "65534 65534 65534 65534");
    assert_eq!(status(pid, "Groups"), "65534");
    // Every thread (the runtime's workers too) is nobody with exactly
    // CAP_NET_ADMIN (bit 12), permitted and effective: each may change
    // routes or the TUN device, none holds more.
    assert_every_thread_is_nobody_with_net_admin(pid);

    let pw = lab.password();
    let client = lab.start_client(0, "vpn", &pw, &["--pin-sha256", &lab.fingerprint()]);
    assert!(
        wait_ping(&lab.clients[0], SERVER_TUN, 30),
        "{}\n{}",
        client.output(),
        server.output()
    );
    let out = std::process::Command::new(BIN)
        .args(["ctl", "--socket"])
        .arg(&sock)
        .arg("sessions")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("vpn"), "{text}");

    // The users file is nobody's now; root's `user add` keeps it so, and
    // the server (as nobody) reloads it.
    let users = lab.dir.path().join("state/users");
    add_user(&users, "bob", "b0b-secret", false);
    {
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(&users).unwrap().uid(), 65534);
    }
    let reloaded = wait_until(Duration::from_secs(20), || {
        server.output().contains("users=2")
    });
    assert!(reloaded, "{}", server.output());
    assert!(!server.output().contains("ERROR"), "{}", server.output());
    // Threads started after the drop (the sessions and the reload above
    // ran on them) inherit the same sets.
    assert_every_thread_is_nobody_with_net_admin(pid);
}

fn assert_every_thread_is_nobody_with_net_admin(pid: u32) {
    let tasks: Vec<u32> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
        .collect();
    assert!(tasks.len() > 1, "{tasks:?}");
    for t in tasks {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/task/{t}/status")) else {
            continue; // ended meanwhile
        };
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
                .unwrap_or_else(|| panic!("thread {t}: no {key} in {text}"))
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(field("Uid"), "65534 65534 65534 65534", "thread {t}");
        assert_eq!(field("Gid"), "65534 65534 65534 65534", "thread {t}");
        assert_eq!(field("CapEff"), "0000000000001000", "thread {t}");
        assert_eq!(field("CapPrm"), "0000000000001000", "thread {t}");
        assert_eq!(field("CapInh"), "0000000000000000", "thread {t}");
    }
}
