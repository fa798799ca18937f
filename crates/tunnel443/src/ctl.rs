//! `tunnel443 ctl`: asks a running server, over its control socket
//! (`server::control`), for its sessions and counters, kills sessions and
//! reloads it. Text output is aligned columns within [`WIDTH`] characters;
//! `--json` prints the server's JSON as it comes (documented in the README).

use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::server::control::{Request, DEFAULT_SOCKET};

/// Widest text line `ctl` prints.
pub const WIDTH: usize = 100;

#[derive(clap::Args, Debug)]
pub struct CtlArgs {
    /// The server's control socket (`control.socket`)
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    #[command(subcommand)]
    command: CtlCommand,
}

#[derive(clap::Subcommand, Debug)]
enum CtlCommand {
    /// One row per live session (SSTP and IP-HTTPS)
    Sessions {
        /// The server's JSON: a list of sessions
        #[arg(long)]
        json: bool,
    },
    /// Everything known about one session
    Show {
        id: u64,
        #[arg(long)]
        json: bool,
    },
    /// End sessions cleanly: SSTP Call Disconnect (with the reason in the
    /// LCP Terminate-Request), IP-HTTPS a final Router Advertisement
    Kill {
        /// The session's id (from `ctl sessions`)
        #[arg(required_unless_present_any = ["user", "ip"], conflicts_with_all = ["user", "ip"])]
        id: Option<u64>,
        /// Every session of this user (IP-HTTPS: the certificate subject)
        #[arg(long, value_name = "NAME", conflicts_with = "ip")]
        user: Option<String>,
        /// The session with this address (IP-HTTPS: any address of its /64)
        #[arg(long, value_name = "ADDR")]
        ip: Option<IpAddr>,
        /// Told to the client and logged [default: disconnected by the administrator]
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Sessions, pools, authentication results, setup failures, traffic
    Stats {
        #[arg(long)]
        json: bool,
    },
    /// Re-read the users file and the certificate (as SIGHUP); prints what changed
    Reload,
}

/// Sends one request; the response's fields (after `"ok": true`).
fn ask(socket: &PathBuf, req: &Request) -> anyhow::Result<Value> {
    let mut s = UnixStream::connect(socket).with_context(|| {
        format!(
            "cannot reach the server's control socket {} (is the server running? --socket PATH)",
            socket.display()
        )
    })?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut line = serde_json::to_string(req)?;
    line.push('\n');
    s.write_all(line.as_bytes())?;
    let mut answer = String::new();
    BufReader::new(&s)
        .read_line(&mut answer)
        .context("reading the server's answer")?;
    let v: Value = serde_json::from_str(&answer).context("the server's answer is not JSON")?;
    if v["ok"] != json!(true) {
        bail!("{}", v["error"].as_str().unwrap_or("the server refused"));
    }
    Ok(v)
}

/// Runs the command; the exit status: 0, or 1 when the server could not
/// be reached or refused (the reason on standard error).
pub fn run(a: CtlArgs) -> i32 {
    match run_inner(a) {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "tunnel443 ctl: {e:#}");
            1
        }
    }
}

fn run_inner(a: CtlArgs) -> anyhow::Result<()> {
    let out = &mut std::io::stdout().lock();
    let print = |out: &mut dyn Write, text: String| -> anyhow::Result<()> {
        match out.write_all(text.as_bytes()) {
            // `| head -1` is no error.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            r => Ok(r?),
        }
    };
    match a.command {
        CtlCommand::Sessions { json } => {
            let v = ask(&a.socket, &Request::Sessions)?;
            let list = v["sessions"].as_array().cloned().unwrap_or_default();
            print(
                out,
                if json {
                    format!("{}\n", serde_json::to_string_pretty(&list)?)
                } else {
                    sessions_table(&list)
                },
            )
        }
        CtlCommand::Show { id, json } => {
            let v = ask(&a.socket, &Request::Show { id })?;
            print(
                out,
                if json {
                    format!("{}\n", serde_json::to_string_pretty(&v["session"])?)
                } else {
                    key_values(&v["session"])
                },
            )
        }
        CtlCommand::Kill {
            id,
            user,
            ip,
            reason,
        } => {
            let v = ask(
                &a.socket,
                &Request::Kill {
                    id,
                    user,
                    ip,
                    reason,
                },
            )?;
            let mut text = String::new();
            for s in v["sessions"].as_array().into_iter().flatten() {
                text += &format!(
                    "session {} ({}{}) disconnected\n",
                    s["id"],
                    str_of(&s["protocol"]),
                    s["user"]
                        .as_str()
                        .map(|u| format!(", {u}"))
                        .unwrap_or_default()
                );
            }
            print(out, text)
        }
        CtlCommand::Stats { json } => {
            let v = ask(&a.socket, &Request::Stats)?;
            print(
                out,
                if json {
                    format!("{}\n", serde_json::to_string_pretty(&v["stats"])?)
                } else {
                    stats_text(&v["stats"])
                },
            )
        }
        CtlCommand::Reload => {
            let v = ask(&a.socket, &Request::Reload)?;
            let text: String = v["changes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|l| format!("{}\n", str_of(l)))
                .collect();
            print(out, text)
        }
    }
}

fn str_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// `1.5K`, `12.0M`: bytes in at most 6 characters.
fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["K", "M", "G", "T", "P"];
    if n < 1024 {
        return format!("{n}B");
    }
    let mut v = n as f64 / 1024.0;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.1}{}", UNITS[i])
}

/// `3:04:05`, `2d03:04:05`.
fn uptime(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d{h:02}:{m:02}:{s:02}")
    } else {
        format!("{h}:{m:02}:{s:02}")
    }
}

/// `text` cut to `w` characters (the last one `~` when cut).
fn fit(text: &str, w: usize) -> String {
    if text.chars().count() <= w {
        text.to_string()
    } else {
        let mut t: String = text.chars().take(w.saturating_sub(1)).collect();
        t.push('~');
        t
    }
}

/// Columns with a header; each column's width is its widest cell up to
/// its cap. The caps sum (with the gaps) to at most [`WIDTH`].
fn table(head: &[(&str, usize)], rows: &[Vec<String>]) -> Vec<String> {
    let widths: Vec<usize> = head
        .iter()
        .enumerate()
        .map(|(i, (h, cap))| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([h.len()])
                .max()
                .unwrap_or(0)
                .min(*cap)
        })
        .collect();
    let line = |cells: Vec<String>| {
        let l = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{:<w$}", fit(c, *w), w = *w))
            .collect::<Vec<_>>()
            .join(" ");
        l.trim_end().to_string()
    };
    let mut out = vec![line(head.iter().map(|(h, _)| h.to_string()).collect())];
    out.extend(rows.iter().map(|r| line(r.clone())));
    out
}

/// The `ctl sessions` table: one row per session, then a detail line
/// (auth method, TLS, packets, and the IPv6 address when the row shows
/// the IPv4 one).
fn sessions_table(list: &[Value]) -> String {
    const HEAD: [(&str, usize); 8] = [
        ("ID", 10),
        ("PROTO", 7),
        ("USER", 13),
        ("CLIENT", 21),
        ("ADDRESS", 18),
        ("UPTIME", 12),
        ("RX", 6),
        ("TX", 6),
    ];
    if list.is_empty() {
        return "no sessions\n".into();
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|s| {
            let addr = s["ipv4"].as_str().or(s["ipv6"].as_str()).unwrap_or("-");
            vec![
                str_of(&s["id"]),
                str_of(&s["protocol"]),
                str_of(&s["user"]),
                str_of(&s["client"]),
                addr.to_string(),
                uptime(s["uptime_s"].as_u64().unwrap_or(0)),
                human(s["rx_bytes"].as_u64().unwrap_or(0)),
                human(s["tx_bytes"].as_u64().unwrap_or(0)),
            ]
        })
        .collect();
    let lines = table(&HEAD, &rows);
    let mut out = format!("{}\n", lines[0]);
    for (s, row) in list.iter().zip(&lines[1..]) {
        let mut detail = format!(
            "       {} {}",
            str_of(&s["state"]),
            str_of(&s["auth_method"])
        );
        if let Some(v) = s["tls_version"].as_str() {
            detail += &format!(" {v} {}", str_of(&s["tls_suite"]));
        }
        detail += &format!(
            " packets rx {} tx {}",
            s["rx_packets"].as_u64().unwrap_or(0),
            s["tx_packets"].as_u64().unwrap_or(0)
        );
        if let (Some(_), Some(v6)) = (s["ipv4"].as_str(), s["ipv6"].as_str()) {
            detail += &format!(" ipv6 {v6}");
        }
        out += &format!("{row}\n{}\n", fit(&detail, WIDTH));
    }
    out
}

/// `key  value` lines of an object (aligned).
fn key_values(v: &Value) -> String {
    let Some(m) = v.as_object() else {
        return String::new();
    };
    let w = m.keys().map(String::len).max().unwrap_or(0);
    m.iter()
        .map(|(k, v)| format!("{k:<w$}  {}\n", fit(&str_of(v), WIDTH - w - 2)))
        .collect()
}

/// `ctl stats` as `name  value` lines.
fn stats_text(s: &Value) -> String {
    let mut rows: Vec<(String, String)> = Vec::new();
    let labeled = |rows: &mut Vec<(String, String)>, key: &str| {
        for l in s[key].as_array().into_iter().flatten() {
            rows.push((format!("{key}.{}", str_of(&l["name"])), str_of(&l["value"])));
        }
    };
    labeled(&mut rows, "sessions");
    labeled(&mut rows, "setups");
    for p in s["pools"].as_array().into_iter().flatten() {
        rows.push((
            format!("pool.{}", str_of(&p["pool"])),
            format!("{} of {} used", p["used"], p["size"]),
        ));
    }
    for a in s["auth"].as_array().into_iter().flatten() {
        let m = str_of(&a["method"]);
        rows.push((format!("auth.{m}.success"), str_of(&a["success"])));
        rows.push((format!("auth.{m}.failure"), str_of(&a["failure"])));
    }
    labeled(&mut rows, "setup_failures");
    for (k, v) in s["traffic"].as_object().into_iter().flatten() {
        if k != "spoofed" && k != "rate_dropped" {
            rows.push((format!("traffic.{k}"), str_of(v)));
        }
    }
    labeled(&mut rows, "drops");
    let a = &s["admission"];
    for l in a["refused"].as_array().into_iter().flatten() {
        rows.push((
            format!("admission.refused.{}", str_of(&l["name"])),
            str_of(&l["value"]),
        ));
    }
    for k in [
        "connections",
        "handshakes",
        "evicted",
        "budget_expired",
        "logins_failed",
        "logins_delayed",
        "logins_refused",
    ] {
        if !a[k].is_null() {
            rows.push((format!("admission.{k}"), str_of(&a[k])));
        }
    }
    let r = &s["radius"];
    for k in ["requests", "retransmits", "replies", "timeouts"] {
        if let Some(v) = r.get(k) {
            rows.push((format!("radius.{k}"), str_of(v)));
        }
    }
    for l in r["dropped"].as_array().into_iter().flatten() {
        rows.push((
            format!("radius.dropped.{}", str_of(&l["name"])),
            str_of(&l["value"]),
        ));
    }
    let n = s["handshakes"].as_u64().unwrap_or(0);
    let sum = s["handshake_seconds_sum"].as_f64().unwrap_or(0.0);
    rows.push((
        "handshakes".into(),
        if n > 0 {
            format!("{n} (mean {:.3} s)", sum / n as f64)
        } else {
            "0".into()
        },
    ));
    for k in ["tasks", "runtime_tasks"] {
        if !s[k].is_null() {
            rows.push((k.into(), str_of(&s[k])));
        }
    }
    let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(k, v)| format!("{k:<w$}  {v}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_text_shows_the_live_task_count() {
        let text = stats_text(&json!({"handshakes": 0, "tasks": 12, "runtime_tasks": 15}));
        for row in [["tasks", "12"], ["runtime_tasks", "15"]] {
            assert!(text.lines().any(|l| l.split_whitespace().eq(row)), "{text}");
        }
    }

    #[test]
    fn stats_text_shows_radius_counters_only_with_radius() {
        let plain = stats_text(&json!({"handshakes": 0}));
        assert!(!plain.contains("radius"), "{plain}");
        let text = stats_text(&json!({
            "radius": {"requests": 4, "retransmits": 1, "replies": 2, "timeouts": 1,
                       "dropped": [{"name": "bad_authenticator", "value": 3}]}
        }));
        let row = |k: &str| {
            text.lines()
                .find(|l| l.split_whitespace().next() == Some(k))
                .and_then(|l| l.split_whitespace().nth(1))
                .map(str::to_string)
        };
        assert_eq!(row("radius.timeouts").as_deref(), Some("1"), "{text}");
        assert_eq!(
            row("radius.dropped.bad_authenticator").as_deref(),
            Some("3"),
            "{text}"
        );
    }

    #[test]
    fn sessions_fit_100_columns_even_with_long_values() {
        let s = json!({
            "id": 1234567890u64, "protocol": "iphttps", "state": "up",
            "user": "CN=a very long certificate subject, O=Example Organisation",
            "client": "[2001:db8:1234:5678:9abc:def0:1234:5678]:65535",
            "ipv6": "2001:db8:1234:5678::/64", "uptime_s": 9_999_999,
            "rx_bytes": 123_456_789_012u64, "tx_bytes": 5, "rx_packets": 1, "tx_packets": 2,
            "auth_method": "certificate", "tls_version": "TLSv1.3",
            "tls_suite": "TLS13_CHACHA20_POLY1305_SHA256"
        });
        let text = sessions_table(&[s.clone(), s]);
        for l in text.lines() {
            assert!(l.chars().count() <= WIDTH, "{} wide: {l}", l.len());
        }
        assert!(text.lines().next().unwrap().starts_with("ID"));
        assert!(text.contains("115.0G"), "{text}");
        assert!(text.contains("1234567890 "), "ids are never cut: {text}");
        assert!(text.contains("115d17:46:39"), "{text}");
    }

    #[test]
    fn stats_text_has_drops_and_admission_not_rate_dropped_twice() {
        let s = json!({
            "traffic": {"rx_bytes": 1, "spoofed": 2, "rate_dropped": 3},
            "drops": [{"name": "rate_limit", "value": 3}, {"name": "client_to_client", "value": 4}],
            "admission": {
                "connections": 5, "handshakes": 1, "evicted": 6, "budget_expired": 0,
                "logins_failed": 7, "logins_delayed": 2, "logins_refused": 1,
                "refused": [{"name": "per_source", "value": 8}]
            }
        });
        let text = stats_text(&s);
        let row = |k: &str| {
            text.lines()
                .find(|l| l.split_whitespace().next() == Some(k))
                .and_then(|l| l.split_whitespace().nth(1))
                .unwrap_or_else(|| panic!("no {k} in {text}"))
                .to_string()
        };
        assert_eq!(row("drops.client_to_client"), "4");
        assert_eq!(row("drops.rate_limit"), "3");
        assert_eq!(row("admission.refused.per_source"), "8");
        assert_eq!(row("admission.evicted"), "6");
        assert_eq!(row("admission.logins_failed"), "7");
        assert_eq!(row("traffic.rx_bytes"), "1");
        assert!(!text.contains("traffic.rate_dropped"), "{text}");
        assert!(!text.contains("traffic.spoofed"), "{text}");
    }

    #[test]
    fn columns_align() {
        let row = |id: u64, user: &str| {
            json!({"id": id, "protocol": "sstp", "state": "up", "user": user,
                   "client": "10.0.0.1:4000", "ipv4": "10.44.0.2", "uptime_s": 61,
                   "rx_bytes": 2048, "tx_bytes": 0, "rx_packets": 1, "tx_packets": 0,
                   "auth_method": "MS-CHAPv2"})
        };
        let text = sessions_table(&[row(1, "vpn"), row(22, "alice")]);
        let lines: Vec<&str> = text.lines().collect();
        let col = |l: &str| l.find("10.0.0.1").or(l.find("CLIENT")).unwrap();
        assert_eq!(col(lines[0]), col(lines[1]));
        assert_eq!(col(lines[1]), col(lines[3]));
        assert!(lines[1].contains("0:01:01") && lines[1].contains("2.0K"));
        assert!(lines[2].contains("MS-CHAPv2"), "{text}");
    }

    #[test]
    fn human_sizes_and_uptimes() {
        assert_eq!(human(0), "0B");
        assert_eq!(human(1023), "1023B");
        assert_eq!(human(1536), "1.5K");
        assert_eq!(human(5 << 20), "5.0M");
        assert_eq!(uptime(3725), "1:02:05");
        assert_eq!(uptime(86400 + 1), "1d00:00:01");
    }
}
