//! `tunnel443 client sstp://USER@HOST[:PORT]`: the SSTP VPN client.
//!
//! Dials (directly or through CONNECT proxies), validates the server
//! certificate (MS-SSTP §3.2.4.1), runs SSTP + PPP, brings up a TUN device
//! with the assigned address and the requested routes, and reconnects with
//! back-off when the link drops. SIGINT/SIGTERM send Call Disconnect and
//! restore the routes. The exit code says why it stopped (see [`Failure`]).

mod connection;
mod iphttps;
mod routes;
mod target;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::sync::watch;
use tracing::{info, warn};

pub use target::Target;

use crate::pool::Ipv4Net;
use crate::tls::Trust;

#[derive(clap::Args, Debug)]
pub struct ClientArgs {
    /// sstp://USER@HOST[:PORT] or iphttps://HOST[:PORT]/PATH
    pub url: String,
    /// IP-HTTPS: client certificate chain (PEM) for mutual TLS.
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// IP-HTTPS: private key (PEM) of --cert.
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    /// Read the password from the first line of standard input.
    #[arg(long, conflicts_with = "password_file")]
    pub password_stdin: bool,
    /// Read the password from the first line of this file.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// Trust the server only if its certificate chains to a CA in this PEM file.
    #[arg(long, conflicts_with_all = ["pin_sha256", "insecure"])]
    pub ca: Option<PathBuf>,
    /// Trust the server only if the SHA-256 of its certificate is this (hex).
    #[arg(long, conflicts_with = "insecure")]
    pub pin_sha256: Option<String>,
    /// Do not validate the server certificate at all (dangerous).
    #[arg(long)]
    pub insecure: bool,
    /// Host name to validate the certificate against (default: the URL's host).
    #[arg(long)]
    pub server_name: Option<String>,
    /// Route this IPv4 prefix through the tunnel (repeatable).
    #[arg(long = "route", value_name = "CIDR")]
    pub routes: Vec<String>,
    /// Send all IPv4 traffic through the tunnel (the path to the server and
    /// the first proxy stays outside).
    #[arg(long)]
    pub default_route: bool,
    /// Name of the TUN device.
    #[arg(long, default_value = "t443c0")]
    pub tun_name: String,
    /// Exit instead of reconnecting when the link drops.
    #[arg(long)]
    pub no_reconnect: bool,
    /// Most back-off between reconnect attempts, in seconds.
    #[arg(long, default_value_t = 60)]
    pub max_backoff: u64,
    #[command(flatten)]
    pub proxy: crate::dial::ProxyOpts,
}

/// Why a connection attempt failed; the process exit code tells the kind.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("TLS: {0}")]
    Tls(String),
    #[error("authentication failed: {0}")]
    Auth(String),
    #[error("server refused the SSTP call: {0}")]
    Nak(String),
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("proxy: {0}")]
    Proxy(String),
    /// The proxy refused us for good (403, or 407 with our credentials).
    #[error("proxy: {0}")]
    ProxyRefused(String),
    #[error("{0}")]
    Other(String),
}

impl Failure {
    /// Exit codes: 3 TLS, 4 auth, 5 NAK, 6 timeout, 7 proxy, 1 other.
    pub fn exit_code(&self) -> i32 {
        match self {
            Failure::Tls(_) => 3,
            Failure::Auth(_) => 4,
            Failure::Nak(_) => 5,
            Failure::Timeout(_) => 6,
            Failure::Proxy(_) | Failure::ProxyRefused(_) => 7,
            Failure::Other(_) => 1,
        }
    }
    /// Whether trying again could help (a wrong password or an untrusted
    /// certificate will not fix itself).
    pub(super) fn retryable(&self) -> bool {
        !matches!(
            self,
            Failure::Tls(_) | Failure::Auth(_) | Failure::ProxyRefused(_)
        )
    }
}

/// Everything a connection attempt needs.
pub struct Setup {
    pub target: Target,
    pub user: String,
    pub password: String,
    pub tls: std::sync::Arc<rustls::ClientConfig>,
    pub server_name: String,
    pub routes: Vec<Ipv4Net>,
    pub default_route: bool,
    pub tun_name: String,
    pub proxy: crate::dial::ProxyOpts,
}

fn read_password(args: &ClientArgs) -> anyhow::Result<String> {
    let pw = if args.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        line
    } else if let Some(f) = &args.password_file {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        text.lines().next().unwrap_or_default().to_string()
    } else {
        rpassword::prompt_password("password: ")
            .context("reading the password from the terminal")?
    };
    let pw = pw.trim_end_matches(['\r', '\n']).to_string();
    if pw.is_empty() {
        bail!("empty password");
    }
    Ok(pw)
}

/// Runs the client; returns the process exit code.
pub async fn run(args: ClientArgs) -> anyhow::Result<i32> {
    crate::tls::install_provider();
    let target: Target = args.url.parse()?;
    if target.scheme == "iphttps" {
        return iphttps::run(&args, target, trust(&args)?, stop_signal()).await;
    }
    if target.scheme != "sstp" {
        bail!(
            "{}: this command handles sstp:// and iphttps:// URLs",
            args.url
        );
    }
    let user = target
        .user
        .clone()
        .context("the URL needs a user: sstp://USER@HOST")?;
    let trust = trust(&args)?;
    let routes = args
        .routes
        .iter()
        .map(|r| {
            r.parse::<Ipv4Net>()
                .map_err(|e| anyhow::anyhow!("--route {r}: {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let setup = Setup {
        server_name: args
            .server_name
            .clone()
            .unwrap_or_else(|| target.host.clone()),
        target,
        user,
        password: read_password(&args)?,
        tls: crate::tls::client_config(&trust)?,
        routes,
        default_route: args.default_route,
        tun_name: args.tun_name.clone(),
        proxy: args.proxy.clone(),
    };
    let stop_rx = stop_signal();
    run_sstp(&args, &setup, stop_rx).await
}

/// Server validation from the command line (shared by SSTP and IP-HTTPS).
fn trust(args: &ClientArgs) -> anyhow::Result<Trust> {
    Ok(if args.insecure {
        warn!("--insecure: the server certificate is NOT validated; anyone on the path can impersonate the server");
        Trust::Insecure
    } else if let Some(p) = &args.pin_sha256 {
        Trust::Pin(crate::tls::parse_fingerprint(p)?)
    } else if let Some(ca) = &args.ca {
        Trust::CaFile(ca.clone())
    } else {
        Trust::System
    })
}

/// A flag set by SIGINT/SIGTERM.
fn stop_signal() -> watch::Receiver<bool> {
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        let _ = stop_tx.send(true);
    });
    stop_rx
}

async fn run_sstp(
    args: &ClientArgs,
    setup: &Setup,
    stop_rx: watch::Receiver<bool>,
) -> anyhow::Result<i32> {
    let mut backoff = Duration::from_secs(1);
    let max_backoff = Duration::from_secs(args.max_backoff.max(1));
    loop {
        let started = tokio::time::Instant::now();
        let result = connection::run_once(setup, stop_rx.clone()).await;
        if *stop_rx.borrow() {
            info!("disconnected");
            return Ok(0);
        }
        let failure = match result {
            Ok(()) => Failure::Other("the server closed the connection".into()),
            Err(f) => f,
        };
        if args.no_reconnect || !failure.retryable() {
            eprintln!("tunnel443: {failure}");
            return Ok(failure.exit_code());
        }
        if started.elapsed() > Duration::from_secs(60) {
            backoff = Duration::from_secs(1);
        }
        warn!(error = %failure, retry_in = ?backoff, "connection lost; reconnecting");
        let mut stop = stop_rx.clone();
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return Ok(0),
        }
        backoff = (backoff * 2).min(max_backoff);
    }
}
