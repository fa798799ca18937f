//! `tunnel443 ctl` and the Prometheus endpoint against a running server in
//! a network namespace: live SSTP and IP-HTTPS sessions listed with their
//! fields, killed cleanly (the clients report the server's disconnect),
//! counters that move on a failed login, and `/metrics` parsed by a real
//! OpenMetrics parser (Python `prometheus_client`) agreeing with `ctl stats`.

mod e2e;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use e2e::*;
use serde_json::Value;

const SERVER_TUN: &str = "10.44.0.1";
const POOL: &str = "fd00:1::/48";
const SERVER_V6: &str = "fd00:1::1";
const METRICS: &str = "127.0.0.1:9443";

fn socket(lab: &Lab) -> PathBuf {
    lab.dir.path().join("control.sock")
}

/// A server with SSTP, IP-HTTPS (client certificates from `ca`), its own
/// control socket and the metrics endpoint.
fn start_server(lab: &Lab, ca: &Path) -> Proc {
    let sock = socket(lab);
    lab.start_server(&[
        "--iphttps-prefix",
        POOL,
        "--iphttps-client-ca",
        ca.to_str().unwrap(),
        "--control-socket",
        sock.to_str().unwrap(),
        "--metrics-listen",
        METRICS,
    ])
}

fn ctl(lab: &Lab, args: &[&str]) -> Output {
    std::process::Command::new(BIN)
        .arg("ctl")
        .arg("--socket")
        .arg(socket(lab))
        .args(args)
        .output()
        .unwrap()
}

/// `ctl ARGS` that must succeed; its standard output.
fn ctl_ok(lab: &Lab, args: &[&str]) -> String {
    let out = ctl(lab, args);
    assert!(
        out.status.success(),
        "ctl {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn ctl_json(lab: &Lab, args: &[&str]) -> Value {
    let text = ctl_ok(lab, args);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("ctl {args:?}: {e}:\n{text}"))
}

fn sessions(lab: &Lab) -> Vec<Value> {
    ctl_json(lab, &["sessions", "--json"])
        .as_array()
        .unwrap()
        .clone()
}

fn of(list: &[Value], protocol: &str) -> Option<Value> {
    list.iter().find(|s| s["protocol"] == protocol).cloned()
}

fn iphttps_client(lab: &Lab, i: usize, cert: &(PathBuf, PathBuf)) -> Proc {
    let mut cmd = lab.clients[i].command(BIN);
    cmd.env("TUNNEL443_LOG", "debug");
    cmd.args([
        "client",
        &format!("iphttps://{}/IPHTTPS", lab.server_addr(i)),
        "--pin-sha256",
        &lab.fingerprint(),
        "--no-reconnect",
    ])
    .arg("--cert")
    .arg(&cert.0)
    .arg("--key")
    .arg(&cert.1);
    Proc::spawn(
        cmd,
        lab.dir.path().join(format!("ipclient{i}-{}.log", tag())),
        &format!("ipclient{i}"),
    )
}

fn client_cert(lab: &Lab) -> (PathBuf, (PathBuf, PathBuf)) {
    let d = lab.dir.path();
    let ca = test_ca(d, "ca");
    let id = issue_cert(
        d,
        "ca",
        "c0",
        "client0",
        "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n",
    );
    (ca, id)
}

fn ping6(ns: &Netns, to: &str) -> bool {
    ns.command("ping")
        .args(["-6", "-c", "1", "-W", "1", "-n", "-q", to])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[test]
fn ctl_lists_and_kills_sstp_and_iphttps_sessions() {
    let lab = Lab::new(2);
    let (ca, id) = client_cert(&lab);
    let mut server = start_server(&lab, &ca);
    let pw = lab.password();
    let fp = lab.fingerprint();
    let mut sstp = lab.start_client(0, "vpn", &pw, &["--pin-sha256", &fp, "--no-reconnect"]);
    let mut iph = iphttps_client(&lab, 1, &id);
    assert!(
        wait_ping(&lab.clients[0], SERVER_TUN, 30),
        "{}",
        sstp.output()
    );
    assert!(
        wait_until(Duration::from_secs(30), || ping6(
            &lab.clients[1],
            SERVER_V6
        )),
        "{}",
        iph.output()
    );

    // Both listed, up, with the counters of the pings (stored per batch).
    let mut list = Vec::new();
    let listed = wait_until(Duration::from_secs(10), || {
        list = sessions(&lab);
        list.len() == 2
            && list
                .iter()
                .all(|s| s["state"] == "up" && s["rx_packets"].as_u64() > Some(0))
    });
    assert!(listed, "{list:#?}");
    let s = of(&list, "sstp").unwrap();
    assert_eq!(s["user"], "vpn");
    assert_eq!(s["auth_method"], "MS-CHAPv2");
    assert_eq!(s["ipv4"], "10.44.0.2");
    assert!(s.get("ipv6").is_none(), "{s}");
    let client = s["client"].as_str().unwrap();
    assert!(client.starts_with("10.251.0.2:"), "{client}");
    assert_eq!(s["tls_version"], "TLSv1.3");
    assert!(
        s["tls_suite"].as_str().unwrap().starts_with("TLS13_"),
        "{s}"
    );
    assert!(s["tx_packets"].as_u64() > Some(0), "{s}");
    assert!(s["rx_bytes"].as_u64() > Some(0), "{s}");
    let i = of(&list, "iphttps").unwrap();
    assert_eq!(i["user"], "CN=client0");
    assert_eq!(i["auth_method"], "certificate");
    assert_eq!(i["ipv6"], "fd00:1:0:1::/64");
    assert!(i.get("ipv4").is_none(), "{i}");
    assert!(i["client"].as_str().unwrap().starts_with("10.251.1.2:"));
    assert_eq!(i["tls_version"], "TLSv1.3");

    // Text: a header and aligned rows within 100 columns.
    let text = ctl_ok(&lab, &["sessions"]);
    assert!(text.starts_with("ID "), "{text}");
    assert!(text.lines().all(|l| l.chars().count() <= 100), "{text}");
    assert!(
        text.contains("10.44.0.2") && text.contains("CN=client0"),
        "{text}"
    );

    let sid = s["id"].as_u64().unwrap().to_string();
    let shown = ctl_json(&lab, &["show", &sid, "--json"]);
    assert_eq!(shown["user"], "vpn");
    assert_eq!(shown["acct_session_id"].as_str().unwrap().len(), 16);
    let shown_text = ctl_ok(&lab, &["show", &sid]);
    assert!(
        shown_text
            .lines()
            .any(|l| l.starts_with("user") && l.ends_with("vpn")),
        "{shown_text}"
    );

    // Kill the SSTP session by user, with a reason the client shows.
    let out = ctl_ok(&lab, &["kill", "--user", "vpn", "--reason", "maintenance"]);
    assert!(out.contains(&format!("session {sid} (sstp, vpn)")), "{out}");
    let st = sstp.wait_exit(20).expect("SSTP client still running");
    assert_eq!(st.code(), Some(5), "{}", sstp.output());
    assert!(
        sstp.output()
            .contains("the server shut down the SSTP call (reason: maintenance)"),
        "{}",
        sstp.output()
    );
    server.wait_log("session killed from the control socket", 10);
    server.wait_log("reason=maintenance", 10);

    // Kill the IP-HTTPS session by an address of its /64.
    ctl_ok(&lab, &["kill", "--ip", "fd00:1:0:1::1234"]);
    let st = iph.wait_exit(20).expect("IP-HTTPS client still running");
    assert_eq!(st.code(), Some(5), "{}", iph.output());
    assert!(
        iph.output()
            .contains("the server shut down the IP-HTTPS connection"),
        "{}",
        iph.output()
    );
    assert!(
        wait_until(Duration::from_secs(10), || sessions(&lab).is_empty()),
        "sessions left after the kills"
    );
    assert_eq!(ctl_ok(&lab, &["sessions"]), "no sessions\n");

    // Unknown sessions: an error in plain words, exit status not 0.
    let out = ctl(&lab, &["kill", "4242"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no such session"), "{err}");
    let out = ctl(&lab, &["show", "4242"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no session 4242"));

    // Reload says what changed.
    add_user(
        &lab.dir.path().join("state/users"),
        "alice",
        "pw-alice",
        true,
    );
    let out = ctl_ok(&lab, &["reload"]);
    // The users file watcher may have read it first: then it is unchanged.
    assert!(
        out.contains("users file: 2 users; added alice")
            || out.contains("users file: unchanged (2 users)"),
        "{out}"
    );
    assert!(out.contains("certificate: unchanged"), "{out}");

    // Bad requests get an answer in plain words, then the connection ends.
    for (req, says) in [
        (&b"{\"command\":\"shutdown\"}\n"[..], "not a valid request"),
        (&b"\xff\xfe\n"[..], "one line of JSON"),
    ] {
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(socket(&lab)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(req).unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        let v: Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(v["ok"], false, "{answer}");
        assert!(v["error"].as_str().unwrap().contains(says), "{answer}");
    }

    // The socket is the server's only (mode 0600) and gone after it stops.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(socket(&lab))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    server.stop();
    assert!(!socket(&lab).exists(), "control socket left behind");
}

/// Every sample of `/metrics`, parsed by Python's OpenMetrics parser, as
/// `name{label=value,...}` (labels sorted) -> value. Debian's python3 (where
/// `python3-prometheus-client` installs), not another one on PATH.
fn scrape(lab: &Lab) -> serde_json::Map<String, Value> {
    let script = format!(
        r#"
import json, urllib.request
from prometheus_client.openmetrics.parser import text_string_to_metric_families
r = urllib.request.urlopen("http://{METRICS}/metrics", timeout=5)
assert r.headers["Content-Type"].startswith("application/openmetrics-text"), r.headers["Content-Type"]
out = {{}}
for fam in text_string_to_metric_families(r.read().decode()):
    for s in fam.samples:
        labels = ",".join(f"{{k}}={{v}}" for k, v in sorted(s.labels.items()))
        out[f"{{s.name}}{{{{{{labels}}}}}}"] = s.value
print(json.dumps(out))
"#
    );
    let out = lab
        .server
        .command("/usr/bin/python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scrape failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_object()
        .unwrap()
        .clone()
}

fn metric(m: &serde_json::Map<String, Value>, key: &str) -> f64 {
    m.get(key)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no sample {key} in {m:#?}"))
}

fn labeled(stats: &Value, key: &str, name: &str) -> u64 {
    stats[key]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == name)
        .unwrap_or_else(|| panic!("no {key}.{name} in {stats}"))["value"]
        .as_u64()
        .unwrap()
}

fn auth(stats: &Value, method: &str, result: &str) -> u64 {
    stats["auth"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["method"] == method)
        .unwrap()[result]
        .as_u64()
        .unwrap()
}

#[test]
fn stats_move_on_a_failed_login_and_metrics_agree() {
    let lab = Lab::new(1);
    let (ca, _) = client_cert(&lab);
    let _server = start_server(&lab, &ca);
    let before = ctl_json(&lab, &["stats", "--json"]);
    assert_eq!(auth(&before, "mschapv2", "failure"), 0);
    assert_eq!(labeled(&before, "setup_failures", "ppp-auth"), 0);

    let mut bad = lab.start_client(
        0,
        "vpn",
        "not-the-password",
        &["--pin-sha256", &lab.fingerprint(), "--no-reconnect"],
    );
    assert_eq!(
        bad.wait_exit(60).and_then(|s| s.code()),
        Some(4),
        "{}",
        bad.output()
    );
    let mut stats = Value::Null;
    let moved = wait_until(Duration::from_secs(10), || {
        stats = ctl_json(&lab, &["stats", "--json"]);
        labeled(&stats, "setup_failures", "ppp-auth") == 1
    });
    assert!(moved, "{stats:#}");
    assert_eq!(auth(&stats, "mschapv2", "failure"), 1, "{stats:#}");
    assert_eq!(auth(&stats, "mschapv2", "success"), 0, "{stats:#}");
    assert_eq!(stats["admission"]["logins_failed"], 1, "{stats:#}");

    // A good login: one live SSTP session, one setup, one handshake.
    let pw = lab.password();
    let good = lab.start_client(0, "vpn", &pw, &["--pin-sha256", &lab.fingerprint()]);
    assert!(
        wait_ping(&lab.clients[0], SERVER_TUN, 30),
        "{}",
        good.output()
    );
    let up = wait_until(Duration::from_secs(10), || {
        stats = ctl_json(&lab, &["stats", "--json"]);
        labeled(&stats, "sessions", "sstp") == 1 && labeled(&stats, "setups", "sstp") == 1
    });
    assert!(up, "{stats:#}");
    let text = ctl_ok(&lab, &["stats"]);
    assert!(
        text.lines()
            .any(|l| l.starts_with("auth.mschapv2.failure") && l.ends_with(" 1")),
        "{text}"
    );
    assert!(text.contains("pool.ipv4"), "{text}");

    // The same figures through a real OpenMetrics parser. Counters of the
    // idle session stay put between the two reads; compare them all.
    let m = scrape(&lab);
    let stats = ctl_json(&lab, &["stats", "--json"]);
    for p in ["sstp", "iphttps"] {
        let l = format!("{{protocol={p}}}");
        assert_eq!(
            metric(&m, &format!("tunnel443_sessions{l}")),
            labeled(&stats, "sessions", p) as f64
        );
        assert_eq!(
            metric(&m, &format!("tunnel443_session_setups_total{l}")),
            labeled(&stats, "setups", p) as f64
        );
    }
    for a in stats["auth"].as_array().unwrap() {
        let meth = a["method"].as_str().unwrap();
        for r in ["success", "failure"] {
            assert_eq!(
                metric(
                    &m,
                    &format!("tunnel443_auth_total{{method={meth},result={r}}}")
                ),
                a[r].as_f64().unwrap(),
                "auth {meth} {r}"
            );
        }
    }
    for f in stats["setup_failures"].as_array().unwrap() {
        let stage = f["name"].as_str().unwrap();
        assert_eq!(
            metric(
                &m,
                &format!("tunnel443_session_setup_failures_total{{stage={stage}}}")
            ),
            f["value"].as_f64().unwrap(),
            "stage {stage}"
        );
    }
    for p in stats["pools"].as_array().unwrap() {
        let pool = p["pool"].as_str().unwrap();
        assert_eq!(
            metric(&m, &format!("tunnel443_pool_size{{pool={pool}}}")),
            p["size"].as_f64().unwrap()
        );
        assert_eq!(
            metric(&m, &format!("tunnel443_pool_used{{pool={pool}}}")),
            p["used"].as_f64().unwrap()
        );
    }
    let a = &stats["admission"];
    for r in a["refused"].as_array().unwrap() {
        let reason = r["name"].as_str().unwrap();
        assert_eq!(
            metric(
                &m,
                &format!("tunnel443_connections_refused_total{{reason={reason}}}")
            ),
            r["value"].as_f64().unwrap(),
            "refused {reason}"
        );
    }
    for (name, key) in [
        ("tunnel443_connections{}", "connections"),
        ("tunnel443_connections_evicted_total{}", "evicted"),
        ("tunnel443_logins_failed_total{}", "logins_failed"),
        (
            "tunnel443_logins_throttled_total{action=delayed}",
            "logins_delayed",
        ),
        (
            "tunnel443_logins_throttled_total{action=refused}",
            "logins_refused",
        ),
    ] {
        assert_eq!(metric(&m, name), a[key].as_f64().unwrap(), "{key}");
    }
    assert_eq!(metric(&m, "tunnel443_logins_failed_total{}"), 1.0);
    for d in stats["drops"].as_array().unwrap() {
        let reason = d["name"].as_str().unwrap();
        assert_eq!(
            metric(&m, &format!("tunnel443_drops_total{{reason={reason}}}")),
            d["value"].as_f64().unwrap(),
            "drops {reason}"
        );
    }
    assert_eq!(metric(&m, "tunnel443_pool_used{pool=ipv4}"), 1.0);
    assert_eq!(
        metric(&m, "tunnel443_auth_total{method=mschapv2,result=failure}"),
        1.0
    );
    assert_eq!(metric(&m, "tunnel443_handshake_seconds_count{}"), 1.0);
    assert_eq!(
        metric(&m, "tunnel443_handshake_seconds_bucket{le=+Inf}"),
        1.0
    );
    assert!(metric(&m, "tunnel443_handshake_seconds_sum{}") > 0.0);
    assert_eq!(metric(&m, "tunnel443_build_info{version=0.1.0}"), 1.0);
    for d in ["spoofed", "queue_full", "rate_limit", "no_route"] {
        assert_eq!(
            metric(&m, &format!("tunnel443_drops_total{{reason={d}}}")),
            labeled(&stats, "drops", d) as f64
        );
    }
    assert!(metric(&m, "tunnel443_packets_total{direction=rx}") > 0.0);
    // No label carries a user or an address.
    assert!(
        m.keys()
            .all(|k| !k.contains("vpn") && !k.contains("10.251") && !k.contains("10.44")),
        "{m:#?}"
    );
}
