//! The server keeps serving while attacked (issue 12, MS-SSTP §5.3), with
//! `tunnel443 loadgen` as both attacker and legitimate client:
//! * idle TCP connections from one address, and from 50 addresses (scaled
//!   down for CI: 3,000 instead of 20,000, the handshake cap lowered so
//!   that eviction of the oldest unauthenticated connection is exercised);
//! * slowloris on the TLS handshake and on the HTTP request head;
//! * a password guesser, throttled, while a user from another address
//!   logs in.
//!
//! In each, a complete SSTP session (TLS, HTTP, LCP, MS-CHAPv2, IPCP, Call
//! Connected with the crypto binding) from another address must be set up
//! within 2 s. The attackers run in the server's namespace from loopback
//! addresses 127.2.x.y; the legitimate client from a client namespace.

mod e2e;

use e2e::*;
use std::process::Command;

/// Limits for the attack tests: a small handshake cap so that 3,000
/// connections from 50 addresses fill it.
const LIMITS: &str = "[limits]\nmax_handshakes = 400\nmax_handshakes_per_source = 16\n";

fn server(lab: &Lab) -> Proc {
    let conf = lab.write_file("tunnel443.toml", LIMITS);
    let sock = lab.dir.path().join("control.sock");
    lab.start_server(&[
        "--config",
        conf.to_str().unwrap(),
        "--pool",
        "10.60.0.0/20",
        "--control-socket",
        sock.to_str().unwrap(),
    ])
}

/// A counter of the `admission` block of `ctl stats --json`: `evicted`,
/// `logins_refused`, ... or `refused.REASON`.
fn admission(lab: &Lab, key: &str) -> u64 {
    let v = stats(lab);
    let a = &v["admission"];
    let n = match key.strip_prefix("refused.") {
        Some(reason) => a["refused"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["name"] == reason)
            .map(|l| &l["value"]),
        None => a.get(key),
    };
    n.and_then(|n| n.as_u64())
        .unwrap_or_else(|| panic!("no admission.{key} in {v:#}"))
}

/// `ctl stats --json`.
fn stats(lab: &Lab) -> serde_json::Value {
    ctl_stats(&lab.dir.path().join("control.sock"))
}

/// A loadgen in `ns` against `target`, run to its end; its JSON report.
fn loadgen(ns: &Netns, target: &str, args: &[&str]) -> String {
    finish(loadgen_cmd(ns, target, args))
}

fn loadgen_cmd(ns: &Netns, target: &str, args: &[&str]) -> Command {
    let mut cmd = ns.command(BIN);
    cmd.env("TUNNEL443_LOG", "warn")
        .args(["loadgen", target, "--json"])
        .args(args);
    cmd
}

fn finish(mut cmd: Command) -> String {
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "loadgen failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The number after `"key":` in a loadgen JSON report (the first one).
fn field(json: &str, key: &str) -> f64 {
    let k = format!("\"{key}\":");
    let at = json
        .find(&k)
        .unwrap_or_else(|| panic!("no {key} in {json}"))
        + k.len();
    let num: String = json[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    num.parse().unwrap_or_else(|_| panic!("{key} in {json}"))
}

/// A loadgen attacker started in the server's namespace; returns once
/// every one of its connections has been tried.
fn attack(lab: &Lab, args: &[&str]) -> Proc {
    let mut cmd = lab.server.command(BIN);
    cmd.env("TUNNEL443_LOG", "warn")
        .args(["loadgen", "127.0.0.1:443", "--announce", "--hold", "120"])
        .args(args);
    let mut p = Proc::spawn(
        cmd,
        lab.dir.path().join(format!("attacker-{}.log", tag())),
        "attacker",
    );
    assert!(
        p.wait_for_output("loadgen: ready", 60),
        "attacker did not start:\n{}",
        p.output()
    );
    p
}

/// A legitimate SSTP session from client namespace `i` is set up within
/// 2 s.
fn legit_connects(lab: &Lab, i: usize, password: &str, server: &Proc) {
    let target = format!("{}:443", lab.server_addr(i));
    let r = loadgen(
        &lab.clients[i],
        &target,
        &["-n", "1", "--password", password],
    );
    assert_eq!(field(&r, "established"), 1.0, "{r}\n{}", server.output());
    let ms = field(&r, "max");
    assert!(ms < 2000.0, "setup took {ms} ms under attack: {r}");
}

fn fifty_sources() -> Vec<String> {
    (1..=50)
        .flat_map(|i| ["--source".to_string(), format!("127.2.1.{i}")])
        .collect()
}

/// `counter` (see [`admission`]) must have moved in `ctl stats`.
fn under_attack(attack_args: &[&str], expect_in_log: &str, counter: &str) {
    let lab = Lab::new(1);
    let mut s = server(&lab);
    let pw = lab.password();
    let _attacker = attack(&lab, attack_args);
    legit_connects(&lab, 0, &pw, &s);
    // The refusals are summarised, not logged one by one.
    let log = s.wait_log(expect_in_log, 20);
    assert!(log.contains(expect_in_log), "{log}");
    let refused_lines = log.lines().filter(|l| l.contains("admission:")).count();
    assert!(refused_lines <= 3, "refusals logged one by one:\n{log}");
    assert!(
        admission(&lab, counter) > 0,
        "admission.{counter} did not move"
    );
}

#[test]
fn idle_tcp_from_one_address() {
    under_attack(
        &["--mode", "idle-tcp", "-n", "3000", "--source", "127.2.0.1"],
        "refused at the per-source handshake cap",
        "refused.handshakes_per_source",
    );
}

#[test]
fn idle_tcp_from_fifty_addresses() {
    let mut args = vec!["--mode", "idle-tcp", "-n", "3000"];
    let src = fifty_sources();
    args.extend(src.iter().map(String::as_str));
    under_attack(&args, "unauthenticated closed to make room", "evicted");
}

#[test]
fn slowloris_tls_handshake() {
    let mut args = vec!["--mode", "slow-tls", "-n", "1500", "--trickle-ms", "500"];
    let src = fifty_sources();
    args.extend(src.iter().map(String::as_str));
    under_attack(&args, "unauthenticated closed to make room", "evicted");
}

#[test]
fn slowloris_http_head() {
    let mut args = vec![
        "--mode",
        "slow-http",
        "-n",
        "600",
        "--rate",
        "300",
        "--trickle-ms",
        "500",
    ];
    let src = fifty_sources();
    args.extend(src.iter().map(String::as_str));
    under_attack(&args, "unauthenticated closed to make room", "evicted");
}

#[test]
fn password_guesser_is_throttled_while_a_user_elsewhere_logs_in() {
    let lab = Lab::new(2);
    let mut s = server(&lab);
    let pw = lab.password();
    let target = format!("{}:443", lab.server_addr(0));
    let cmd = loadgen_cmd(
        &lab.clients[0],
        &target,
        &[
            "--mode",
            "bad-password",
            "-n",
            "1",
            "--attempts",
            "7",
            "--password",
            &pw,
        ],
    );
    let guesser = std::thread::spawn(move || finish(cmd));
    // The guesser gets locked out ...
    let log = s.wait_log("logins refused while throttled", 40);
    assert!(log.contains("logins refused while throttled"), "{log}");
    assert!(admission(&lab, "logins_refused") > 0);
    assert!(admission(&lab, "logins_delayed") > 0);
    // ... while the same user from another address logs in at once.
    legit_connects(&lab, 1, &pw, &s);
    let r = guesser.join().unwrap();
    assert_eq!(field(&r, "established"), 0.0, "{r}");
    assert_eq!(field(&r, "rejected"), 7.0, "{r}");
    // Answers were held back: the slowest took seconds.
    let slowest = {
        let at = r.find("\"reject_ms\"").unwrap();
        field(&r[at..], "max")
    };
    assert!(slowest >= 2000.0, "rejections were not delayed: {r}");
}

/// Clients that finish TLS and HTTP but never send Call Connect Request,
/// or stall in PPP authentication, are closed when the handshake budget
/// runs out (here 3 s), and counted.
#[test]
fn no_call_connect_and_stalled_auth_are_closed_at_the_budget() {
    let lab = Lab::new(1);
    let conf = lab.write_file(
        "tunnel443.toml",
        "[limits]\nhandshake_budget = 3\nhandshake_budget_min = 1\n",
    );
    let mut s = lab.start_server(&["--config", conf.to_str().unwrap()]);
    let pw = lab.password();
    let target = format!("{}:443", lab.server_addr(0));
    for mode in ["no-call-connect", "stalled-auth"] {
        let r = loadgen(
            &lab.clients[0],
            &target,
            &["--mode", mode, "-n", "20", "--hold", "8", "--password", &pw],
        );
        assert_eq!(field(&r, "established"), 20.0, "{mode}: {r}");
        assert_eq!(
            field(&r, "held"),
            0.0,
            "{mode}: not closed by the server: {r}"
        );
        let at = r.find("\"hold\"").unwrap_or_else(|| panic!("{mode}: {r}"));
        assert_eq!(field(&r[at..], "count"), 20.0, "{mode}: {r}");
    }
    let log = s.wait_log("unauthenticated closed over the handshake budget", 20);
    assert!(log.contains("unauthenticated closed over the handshake budget"));
}

/// What must come back to zero (or to the idle task count) once every
/// connection has ended: live sessions, open connections, handshakes, and
/// the server's tasks.
fn load_left(lab: &Lab) -> (u64, u64, u64, u64) {
    let v = stats(lab);
    let sessions = v["sessions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["value"].as_u64())
        .sum();
    let a = &v["admission"];
    (
        sessions,
        a["connections"].as_u64().unwrap(),
        a["handshakes"].as_u64().unwrap(),
        v["tasks"].as_u64().unwrap(),
    )
}

#[test]
fn malformed_input_at_rate_leaves_nothing_behind() {
    let lab = Lab::new(1);
    let mut s = server(&lab);
    let pw = lab.password();
    legit_connects(&lab, 0, &pw, &s);
    let idle = wait_until(std::time::Duration::from_secs(20), || {
        let (sessions, connections, handshakes, _) = load_left(&lab);
        sessions + connections + handshakes == 0
    });
    assert!(idle, "{:?}", load_left(&lab));
    let idle_tasks = load_left(&lab).3;

    let crates = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let corpus = |kind: &str, dir: &str| format!("{kind}={crates}/{dir}");
    let corpora = [
        corpus("head", "httphead/fuzz/corpus/request_head"),
        corpus("head", "iphttps/fuzz/corpus/preamble"),
        corpus("sstp", "sstp/fuzz/corpus/message_roundtrip"),
        corpus("ppp", "ppp/fuzz/corpus/frame"),
    ];
    let n = std::env::var("MALFORMED_N").unwrap_or_else(|_| "600".into());
    let rate = std::env::var("MALFORMED_RATE").unwrap_or_else(|_| "200".into());
    let mut args = vec![
        "--mode",
        "malformed",
        "-n",
        &n,
        "--rate",
        &rate,
        "--hold",
        "1",
    ];
    // Many sources: the per-source caps are not what is tested here.
    args.extend(["--setup-timeout", "10", "--source", "127.3.0.0/22"]);
    for c in &corpora {
        args.extend(["--corpus", c.as_str()]);
    }
    let t0 = std::time::Instant::now();
    let mut cmd = loadgen_cmd(&lab.server, "127.0.0.1:443", &args);
    let out = cmd.output().unwrap();
    let took = t0.elapsed().as_secs_f64();
    let r = String::from_utf8_lossy(&out.stdout).to_string();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{r}\n{err}");
    let delivered = field(&r, "established");
    eprintln!(
        "malformed: {delivered} of {n} connections delivered their input in {took:.1} s \
         ({:.0}/s); {}",
        delivered / took,
        err.trim()
    );

    // Alive, no panic, and nothing left once the connections are gone.
    assert!(s.child.try_wait().unwrap().is_none(), "{}", s.output());
    let back = wait_until(std::time::Duration::from_secs(30), || {
        load_left(&lab) == (0, 0, 0, idle_tasks)
    });
    assert!(
        back,
        "(sessions, connections, handshakes, tasks) = {:?}, tasks when idle {idle_tasks}",
        load_left(&lab)
    );
    legit_connects(&lab, 0, &pw, &s);
    let log = s.output();
    assert!(!log.contains("panicked"), "{log}");
    // At the default rate every connection gets its input in (above
    // what the machine sets up, admission sheds the excess: MALFORMED_RATE).
    assert!(delivered >= n.parse::<f64>().unwrap() * 0.9, "{r}\n{err}");
}
