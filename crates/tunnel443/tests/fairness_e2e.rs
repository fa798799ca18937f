//! Fair scheduling between sessions (issue 12 "Attacks"): one tunnel
//! flooding (iperf3 at full rate, both directions in turn) does not starve
//! another session's ping. Prints the second session's RTT idle and under
//! each flood (BENCHMARKS.md "Fairness"); fails if that session loses
//! pings or its median RTT under the flood passes 100 ms.

mod e2e;

use std::process::Command;

use e2e::*;

const SERVER_TUN: &str = "10.44.0.1";

/// `ping -c count -i 0.05` from `ns`: (answered, median RTT in ms).
fn ping_rtt(ns: &Netns, count: u32) -> (u32, f64) {
    let out = ns
        .command("ping")
        .args([
            "-c",
            &count.to_string(),
            "-i",
            "0.05",
            "-W",
            "1",
            "-n",
            SERVER_TUN,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut rtts: Vec<f64> = text
        .lines()
        .filter_map(|l| l.split("time=").nth(1)?.split(' ').next()?.parse().ok())
        .collect();
    rtts.sort_by(f64::total_cmp);
    let median = rtts.get(rtts.len() / 2).copied().unwrap_or(f64::INFINITY);
    (rtts.len() as u32, median)
}

fn iperf3(lab: &Lab, reverse: bool, secs: u32) -> Command {
    let mut c = lab.clients[0].command("iperf3");
    c.args(["-c", SERVER_TUN, "-t", &secs.to_string(), "-f", "m"]);
    if reverse {
        c.arg("-R");
    }
    c
}

#[test]
fn a_flooding_tunnel_does_not_starve_another_sessions_ping() {
    let lab = Lab::new(2);
    let server = lab.start_server(&[]);
    let pin = ["--pin-sha256".to_string(), lab.fingerprint()];
    let pin: Vec<&str> = pin.iter().map(String::as_str).collect();
    let pw = lab.password();
    let _flood = lab.start_client(0, "vpn", &pw, &pin);
    let _quiet = lab.start_client(1, "vpn", &pw, &pin);
    assert!(
        wait_ping(&lab.clients[0], SERVER_TUN, 30),
        "{}",
        server.output()
    );
    assert!(
        wait_ping(&lab.clients[1], SERVER_TUN, 30),
        "{}",
        server.output()
    );

    let (n, idle) = ping_rtt(&lab.clients[1], 40);
    assert!(n >= 38, "idle: {n} of 40 answered");
    eprintln!("second session idle: median RTT {idle:.3} ms");
    for (reverse, what) in [(true, "server to client"), (false, "client to server")] {
        let mut s = lab.server.command("iperf3");
        s.args(["-s", "-1", "-B", SERVER_TUN]);
        let _srv = Proc::spawn(s, lab.dir.path().join("iperf-s.log"), "iperf3 -s");
        wait_listening(&lab.server, 5201, 10, "iperf3 -s");
        let mut flood = iperf3(&lab, reverse, 6).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_secs(1)); // the flood ramps up
        let (n, busy) = ping_rtt(&lab.clients[1], 60);
        let out = flood.wait().unwrap();
        assert!(out.success(), "iperf3 {what} failed");
        eprintln!(
            "second session under a flood {what}: {n} of 60 answered, median RTT {busy:.3} ms \
             (idle {idle:.3} ms)"
        );
        assert!(n >= 57, "{what}: {n} of 60 pings answered under the flood");
        assert!(busy < 100.0, "{what}: median RTT {busy} ms under the flood");
    }
}
