//! `tunnel443 loadgen`: many SSTP or IP-HTTPS sessions against a server,
//! without TUN devices, to measure how many it holds and how fast it sets
//! them up; and the attacker of the hardening tests.
//!
//! Each session is the real client's: TCP (bound to one of the `--source`
//! addresses), TLS, the HTTP preamble, then the session crate's sans-IO
//! client (SSTP: MS-SSTP §3.2 with LCP, MS-CHAPv2, IPCP and Call Connected
//! with the crypto binding; IP-HTTPS: MS-IPHTTPS §3.1 up to the first
//! Router Advertisement) run by the shared driver. Sessions start at
//! `--rate` per second (0: all at once), are held for `--hold` seconds
//! (their echo timers keep them alive), then closed cleanly. The report
//! gives setups per second, setup time p50/p90/p99/max and failures by
//! stage (`--json` for one JSON object on standard output).
//!
//! Attacker modes stop at a stage and hold there: `idle-tcp` (connect,
//! send nothing), `slow-tls` and `slow-http` (one byte per `--trickle`),
//! `no-call-connect` (HTTP done, no SSTP), `stalled-auth` (stops answering
//! when PPP reaches authentication), `stop-reading` (a full session that
//! stops reading), `bad-password` (`--attempts` wrong logins per slot, each
//! on a new connection, timing each rejection). For these, "established"
//! counts connections that got as far as the mode goes, and a failure at
//! `hold` is the server closing one: what a defended server does.
//! `malformed` sends the fuzz corpora over real connections
//! ([`malformed`]).

mod conn;
mod malformed;
pub mod report;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::sync::watch;

use crate::pool::Ipv4Net;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Full SSTP sessions.
    Sstp,
    /// Full IP-HTTPS sessions.
    Iphttps,
    /// TCP connections that send nothing.
    IdleTcp,
    /// A TLS ClientHello one byte at a time.
    SlowTls,
    /// TLS, then the HTTP request head one byte at a time.
    SlowHttp,
    /// TLS and HTTP, then no Call Connect Request.
    NoCallConnect,
    /// PPP up to authentication, then silence.
    StalledAuth,
    /// A full SSTP session that stops reading.
    StopReading,
    /// Wrong passwords, --attempts per connection slot.
    BadPassword,
    /// Fuzz corpora (--corpus), as they are or mutated, at their stage.
    Malformed,
}

#[derive(clap::Args, Debug)]
pub struct LoadgenArgs {
    /// The server, ADDR:PORT.
    pub target: SocketAddr,
    /// What each connection does.
    #[arg(long, value_enum, default_value = "sstp")]
    pub mode: Mode,
    /// Connections (sessions) to open.
    #[arg(long, short = 'n', default_value_t = 100)]
    pub sessions: usize,
    /// New connections per second (0: all at once).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Source addresses, CIDR or one address (repeatable; used in turn,
    /// host addresses only). Non-loopback ones must be on an interface.
    #[arg(long = "source", value_name = "CIDR")]
    pub sources: Vec<String>,
    /// Seconds to hold the sessions once every setup has finished.
    #[arg(long, default_value_t = 0.0)]
    pub hold: f64,
    /// SSTP user.
    #[arg(long, default_value = "vpn")]
    pub user: String,
    /// SSTP password (or --password-file).
    #[arg(long, env = "TUNNEL443_LOADGEN_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// File whose first line is the SSTP password.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// TLS server name (SNI) [default: the target's address].
    #[arg(long)]
    pub server_name: Option<String>,
    /// IP-HTTPS path.
    #[arg(long, default_value = "/IPHTTPS")]
    pub path: String,
    /// IP-HTTPS client certificate (PEM).
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// Key of --cert (PEM).
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    /// Seconds each stage of a setup may take.
    #[arg(long, default_value_t = 30.0)]
    pub setup_timeout: f64,
    /// Slow modes: milliseconds between bytes.
    #[arg(long, default_value_t = 1000)]
    pub trickle_ms: u64,
    /// bad-password: wrong logins per connection slot.
    #[arg(long, default_value_t = 10)]
    pub attempts: u32,
    /// malformed: KIND=DIR, a directory of inputs (repeatable); KIND is
    /// head (HTTP heads, IP-HTTPS preambles), sstp (SSTP packets) or ppp
    /// (PPP frames).
    #[arg(long, value_name = "KIND=DIR")]
    pub corpus: Vec<String>,
    /// Report as one JSON object on standard output.
    #[arg(long)]
    pub json: bool,
    /// Churn for this many seconds: each connection slot sets up a
    /// session, holds it a random time up to --churn-hold, closes it and
    /// starts again (SSTP and IP-HTTPS modes).
    #[arg(long, default_value_t = 0.0)]
    pub churn: f64,
    /// Churn: longest hold of one session, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub churn_hold: f64,
    /// Print "loadgen: ready N" on standard error once every setup has
    /// finished (for scripts that measure while the sessions are held).
    #[arg(long)]
    pub announce: bool,
}

/// The host addresses of the `--source` ranges, taken in turn.
#[derive(Debug)]
pub struct Sources(Vec<(u32, u32)>);

impl Sources {
    pub fn parse(list: &[String]) -> anyhow::Result<Self> {
        let mut v = Vec::new();
        for s in list {
            let net: Ipv4Net = if s.contains('/') {
                Ipv4Net::parse_network(s).map_err(|e| anyhow::anyhow!("--source {s}: {e}"))?
            } else {
                let a: Ipv4Addr = s
                    .parse()
                    .with_context(|| format!("--source {s}: not an IPv4 address"))?;
                Ipv4Net::new(a, 32).expect("/32")
            };
            let base = u32::from(net.network());
            let (first, count) = match net.prefix_len() {
                32 => (base, 1),
                31 => (base, 2),
                p => (base + 1, (1u32 << (32 - p)) - 2),
            };
            v.push((first, count));
        }
        Ok(Sources(v))
    }

    /// The source of connection `i` (round-robin over all host addresses).
    pub fn get(&self, i: usize) -> Option<IpAddr> {
        let total: u64 = self.0.iter().map(|r| u64::from(r.1)).sum();
        if total == 0 {
            return None;
        }
        let mut k = i as u64 % total;
        for (first, count) in &self.0 {
            if k < u64::from(*count) {
                return Some(IpAddr::V4(Ipv4Addr::from(first + k as u32)));
            }
            k -= u64::from(*count);
        }
        None
    }
}

fn password(args: &LoadgenArgs) -> anyhow::Result<String> {
    if let Some(p) = &args.password {
        return Ok(p.clone());
    }
    if let Some(f) = &args.password_file {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("--password-file {}", f.display()))?;
        return Ok(text.lines().next().unwrap_or("").to_owned());
    }
    match args.mode {
        Mode::Sstp | Mode::StopReading | Mode::BadPassword => {
            bail!("--password or --password-file is needed for this mode")
        }
        _ => Ok(String::new()),
    }
}

fn secs(v: f64, name: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(v).map_err(|_| anyhow::anyhow!("{name}: {v} is not a duration"))
}

pub async fn run(args: LoadgenArgs) -> anyhow::Result<i32> {
    crate::tls::install_provider();
    let sources = Sources::parse(&args.sources)?;
    let identity = match (&args.cert, &args.key) {
        (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
        _ => None,
    };
    let tls = crate::tls::client_config_with_cert(&crate::tls::Trust::Insecure, identity)?;
    let mut config = (*tls.config).clone();
    // Every setup is a full handshake, as for distinct clients.
    config.resumption = rustls::client::Resumption::disabled();
    let name = args
        .server_name
        .clone()
        .unwrap_or_else(|| args.target.ip().to_string());
    let server_name = rustls::pki_types::ServerName::try_from(name.clone())
        .map_err(|_| anyhow::anyhow!("--server-name {name}: not a valid name"))?;
    let host = if args.target.port() == 443 {
        name.clone()
    } else {
        format!("{name}:{}", args.target.port())
    };
    let mode_name = clap::ValueEnum::to_possible_value(&args.mode)
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default();
    let plan = Arc::new(conn::Plan {
        mode: args.mode,
        target: args.target,
        host,
        server_name,
        tls: Arc::new(config),
        user: args.user.clone(),
        password: password(&args)?,
        path: args.path.clone(),
        setup_timeout: secs(args.setup_timeout, "--setup-timeout")?,
        trickle: Duration::from_millis(args.trickle_ms.max(1)),
        attempts: args.attempts,
        stats: report::Collector::default(),
        corpus: if args.mode == Mode::Malformed {
            malformed::Corpus::load(&args.corpus)?
        } else {
            Default::default()
        },
    });
    let hold = secs(args.hold, "--hold")?;
    let (stop_tx, stop_rx) = watch::channel(false);
    if args.churn > 0.0 {
        let held = churn(&args, &plan, &sources, stop_tx, stop_rx).await?;
        return Ok(finish(&args, &plan, &mode_name, held));
    }
    let mut tasks = tokio::task::JoinSet::new();
    let gap = (args.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / args.rate));
    let t0 = tokio::time::Instant::now();
    for i in 0..args.sessions {
        if let Some(g) = gap {
            tokio::time::sleep_until(t0 + g.mul_f64(i as f64)).await;
        }
        tasks.spawn(conn::run(plan.clone(), sources.get(i), stop_rx.clone()));
    }
    // Every setup has finished (up, stalled or failed) ...
    let all_done =
        || plan.stats.setups_done() as u64 + plan.stats.failures() >= args.sessions as u64;
    let done_deadline = tokio::time::Instant::now() + plan.setup_timeout * 4;
    while !all_done() && tokio::time::Instant::now() < done_deadline && !tasks.is_empty() {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            r = tasks.join_next() => if r.is_none() { break },
        }
    }
    if args.announce {
        eprintln!("loadgen: ready {}", plan.stats.up());
    }
    // ... then the hold.
    let until = tokio::time::Instant::now() + hold;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(until) => break,
            r = tasks.join_next() => if r.is_none() {
                // Everything ended by itself (bad passwords, refusals).
                break;
            },
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    let held = plan.stats.up();
    let _ = stop_tx.send(true);
    let close_by = Instant::now() + Duration::from_secs(10);
    while Instant::now() < close_by && !tasks.is_empty() {
        if tokio::time::timeout(Duration::from_secs(1), tasks.join_next())
            .await
            .is_ok_and(|r| r.is_none())
        {
            break;
        }
    }
    tasks.abort_all();
    Ok(finish(&args, &plan, &mode_name, held))
}

/// Prints the report; the exit code.
fn finish(args: &LoadgenArgs, plan: &conn::Plan, mode: &str, held: i64) -> i32 {
    let summary = plan.stats.summary(mode, held);
    if args.mode == Mode::Malformed {
        eprintln!(
            "loadgen: {} malformed inputs sent",
            plan.corpus.sent.load(std::sync::atomic::Ordering::Relaxed)
        );
    }
    if args.json {
        println!("{}", summary.json());
    } else {
        print!("{}", summary.text());
    }
    0
}

/// `--churn`: every slot connects, holds, closes and starts again until
/// the time is up; returns the sessions up at the end.
async fn churn(
    args: &LoadgenArgs,
    plan: &Arc<conn::Plan>,
    sources: &Sources,
    stop_tx: watch::Sender<bool>,
    stop_rx: watch::Receiver<bool>,
) -> anyhow::Result<i64> {
    if !matches!(args.mode, Mode::Sstp | Mode::Iphttps) {
        bail!("--churn works with --mode sstp or iphttps");
    }
    let max_hold = secs(args.churn_hold, "--churn-hold")?.max(Duration::from_millis(100));
    let gap = (args.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / args.rate));
    let mut tasks = tokio::task::JoinSet::new();
    let t0 = tokio::time::Instant::now();
    for i in 0..args.sessions {
        if let Some(g) = gap {
            tokio::time::sleep_until(t0 + g.mul_f64(i as f64)).await;
        }
        let (plan, source, mut global) = (plan.clone(), sources.get(i), stop_rx.clone());
        tasks.spawn(async move {
            while !*global.borrow() {
                let (tx, rx) = watch::channel(false);
                let hold = max_hold.mul_f64(rand::random_range(0.1..1.0));
                let run = conn::run(plan.clone(), source, rx);
                tokio::pin!(run);
                tokio::select! {
                    // Ended by itself (a failure): again, after a pause.
                    _ = &mut run => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                    _ = tokio::time::sleep(hold) => {}
                    _ = global.changed() => {}
                }
                let _ = tx.send(true);
                run.await;
            }
        });
    }
    tokio::select! {
        _ = tokio::time::sleep_until(t0 + secs(args.churn, "--churn")?) => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    let held = plan.stats.up();
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(15), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
    Ok(held)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_round_robin_over_host_addresses() {
        let s = Sources::parse(&["10.9.0.0/30".into(), "127.0.0.5".into()]).unwrap();
        let got: Vec<String> = (0..4).map(|i| s.get(i).unwrap().to_string()).collect();
        assert_eq!(got, ["10.9.0.1", "10.9.0.2", "127.0.0.5", "10.9.0.1"]);
        assert_eq!(Sources::parse(&[]).unwrap().get(3), None);
        let e = Sources::parse(&["10.9.0.1/24".into()]).unwrap_err();
        assert!(e.to_string().contains("--source 10.9.0.1/24"), "{e}");
    }
}
