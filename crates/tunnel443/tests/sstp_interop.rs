//! Interop with real third-party SSTP peers:
//! * sstpc 1.0.18 + pppd 2.4.9 (Debian's sstp-client) in a qemu VM
//!   (`shared/interop/sstpc-vm.sh`) against our server, MS-CHAPv2 and PAP;
//! * our client against SoftEther VPN Server's SSTP
//!   (`shared/peers/softether-sstp.sh`), which hands out an address from
//!   SecureNAT; we ping its gateway.
//!
//! The scripts live in the shared directory beside the repository
//! (`../shared`, or `$TUNNEL443_SHARED`).

mod e2e;

use e2e::*;
use std::path::PathBuf;

fn shared() -> PathBuf {
    if let Ok(p) = std::env::var("TUNNEL443_SHARED") {
        return p.into();
    }
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let p = repo.join("../shared");
    assert!(
        p.join("interop/sstpc-vm.sh").exists(),
        "no shared dir at {}",
        p.display()
    );
    p
}

/// The VMs run one at a time: two TCG guests on two cores are too slow
/// for sstpc's timing.
static VM: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn sstpc_vm(method_args: &str) {
    let _one = VM.lock().unwrap_or_else(|e| e.into_inner());
    let lab = Lab::new(0);
    let server = lab.start_server(&[]);
    let out = lab
        .server
        .command(shared().join("interop/sstpc-vm.sh").to_str().unwrap())
        .args([
            "--port",
            "443",
            "--user",
            "vpn",
            "--password",
            &lab.password(),
        ])
        .args(["--pppd-args", method_args])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or_default().to_string();
    eprintln!("sstpc-vm ({method_args}): {last}");
    assert!(
        out.status.success() && last.starts_with("sstpc-vm: PASS"),
        "sstpc-vm failed:\n{text}\n{}\n--- server ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.output()
    );
}

#[test]
fn sstpc_pppd_mschapv2() {
    sstpc_vm("require-mschap-v2 noauth nodefaultroute");
}

#[test]
fn sstpc_pppd_pap() {
    sstpc_vm("require-pap noauth nodefaultroute");
}

#[test]
fn our_client_against_softether() {
    let lab = Lab::new(0);
    let script = shared().join("peers/softether-sstp.sh");
    let start = lab
        .server
        .command(script.to_str().unwrap())
        .args(["start", "4443"])
        .output()
        .unwrap();
    assert!(
        start.status.success(),
        "softether start: {}",
        String::from_utf8_lossy(&start.stderr)
    );
    struct Stop(String, PathBuf);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = std::process::Command::new("ip")
                .args(["netns", "exec", &self.0])
                .arg(&self.1)
                .arg("stop")
                .output();
        }
    }
    let _stop = Stop(lab.server.name.clone(), script);
    let pwf = lab.dir.path().join("pw");
    std::fs::write(&pwf, "test123").unwrap();
    let mut cmd = lab.server.command(BIN);
    cmd.args([
        "client",
        "sstp://VPN\\test@127.0.0.1:4443",
        "--insecure",
        "--password-file",
    ])
    .arg(&pwf);
    let client = Proc::spawn(cmd, lab.dir.path().join("client.log"), "client");
    assert!(
        wait_ping(&lab.server, "192.168.30.1", 60),
        "no ping to SoftEther's SecureNAT gateway:\n{}",
        client.output()
    );
    assert!(ping_count(&lab.server, "192.168.30.1", 5) >= 4);
}
