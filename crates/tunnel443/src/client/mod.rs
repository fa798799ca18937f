//! `tunnel443 client sstp://USER@HOST[:PORT]` (SSTP) and
//! `tunnel443 client iphttps://HOST[:PORT]/PATH` (IP-HTTPS, [`iphttps`]).
//!
//! Dials (directly or through CONNECT proxies), validates the server
//! certificate (MS-SSTP §3.2.4.1), runs SSTP + PPP, brings up a TUN device
//! with the assigned address and the requested routes, and reconnects with
//! back-off when the link drops. SIGINT/SIGTERM/SIGHUP send Call Disconnect
//! and restore the routes. The exit code says why it stopped (see
//! [`Failure`]).
//!
//! Standard output and error may be closed under us (`| head -1`): the
//! client's own lines go through [`say`] and [`report`], which ignore a
//! broken pipe (Rust leaves SIGPIPE ignored, so a write fails with EPIPE
//! instead of killing the process before it can restore the routes).

mod failure;
pub(crate) mod iphttps;
mod routes;
mod socks5;
pub(crate) mod sstp;
mod target;
mod userstack;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::sync::watch;
use tracing::{info, warn};

pub use failure::{Failure, Protocol};
pub use target::Target;

use crate::pool::Ipv4Net;
use crate::tls::Trust;

/// The `client` command's long help, after the options.
/// `--mru` unless given: what our server asks for by default (larger
/// packets, fewer per-packet costs; BENCHMARKS.md "Steps of 2026-12-02").
pub const DEFAULT_MRU: u16 = crate::config::SSTP_MAX_MRU;

const AFTER_HELP: &str = "\
Protocols:
  sstp://USER@HOST[:PORT]      SSTP (MS-SSTP): PPP over HTTPS; the password is asked
                               for, or read with --password-stdin / --password-file.
  iphttps://HOST[:PORT]/PATH   IP-HTTPS (MS-IPHTTPS): IPv6 over HTTPS; mutual TLS with
                               --cert/--key when the server asks for it.

Exit codes:
  0  disconnected on request (SIGINT, SIGTERM, SIGHUP)
  1  other failure (the connection was lost, the TUN device could not be set up)
  2  usage or configuration error
  3  TLS: the server's certificate is not trusted, or the server refused ours
  4  authentication failed
  5  the server refused, aborted or shut down the call
  6  timeout
  7  proxy failure";

// The one-line help is the `client` variant's doc in main.rs.
#[derive(clap::Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub struct ClientArgs {
    /// sstp://USER@HOST[:PORT] or iphttps://HOST[:PORT]/PATH
    pub url: String,
    /// IP-HTTPS: client certificate chain (PEM) for mutual TLS; SSTP with
    /// --eap-tls: the certificate for EAP-TLS.
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// Private key (PEM) of --cert.
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    /// SSTP: log in with EAP-TLS (RFC 5216/9190) using --cert/--key instead
    /// of a password.
    #[arg(long, requires = "cert", conflicts_with_all = ["password_stdin", "password_file"])]
    pub eap_tls: bool,
    /// SSTP: log in with PEAP (version 0, EAP-MSCHAPv2 inside the TLS
    /// tunnel) with the URL's user and the password; the EAP server's
    /// certificate is checked with --eap-ca (default: the system's CAs) and
    /// --eap-server-name.
    #[arg(long, conflicts_with = "eap_tls")]
    pub peap: bool,
    /// SSTP with --eap-tls or --peap: the EAP server's certificate must
    /// chain to a CA in this PEM file (default: for --eap-tls the same trust
    /// as the TLS connection, for --peap the system's CAs).
    #[arg(long)]
    pub eap_ca: Option<PathBuf>,
    /// SSTP with --eap-tls or --peap: the name the EAP server's certificate
    /// must carry (default: --server-name, else the URL's host).
    #[arg(long, value_name = "NAME")]
    pub eap_server_name: Option<String>,
    /// SSTP: read the password from the first line of standard input.
    #[arg(long, conflicts_with = "password_file")]
    pub password_stdin: bool,
    /// SSTP: read the password from the first line of this file.
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
    /// SSTP: route this IPv4 prefix through the tunnel (repeatable).
    #[arg(long = "route", value_name = "CIDR")]
    pub routes: Vec<String>,
    /// Send all IPv4 traffic through the tunnel (the path to the server and
    /// the first proxy stays outside).
    #[arg(long)]
    pub default_route: bool,
    /// Name of the TUN device.
    #[arg(long, default_value = "t443c0")]
    pub tun_name: String,
    /// SSTP: the largest packet to receive (PPP MRU, asked of the server
    /// in LCP when not 1500; 576-4000). The device's MTU is the smaller of
    /// this and the server's MRU: against our server (MRU 4000 by default)
    /// fewer, larger packets cross the tunnel; against Windows, SoftEther
    /// or sstp-server (MRU 1500) it stays 1500. `--mru 1500` asks for
    /// nothing, as before.
    #[arg(long, default_value_t = DEFAULT_MRU,
          value_parser = clap::value_parser!(u16).range(576..=4000))]
    pub mru: u16,
    /// Rootless mode (sstp:// and iphttps://): no TUN device and no
    /// privileges; a user-space TCP/IP stack forwards local port PORT (on
    /// BIND, default 127.0.0.1) to HOST:PORT on the server's side, like ssh
    /// -L. HOST is an IP address of the tunnel's family (IPv6 in brackets)
    /// or a name resolved through the tunnel's DNS. Repeatable.
    #[arg(
        long = "forward",
        value_name = "[BIND:]PORT:HOST:PORT",
        value_parser = clap::value_parser!(userstack::Forward),
        conflicts_with_all = TUN_ONLY
    )]
    pub forwards: Vec<userstack::Forward>,
    /// Rootless mode (sstp:// and iphttps://): a SOCKS5 proxy (no authentication; CONNECT
    /// and UDP ASSOCIATE, host names resolved through the tunnel's DNS) on
    /// this address, e.g. 127.0.0.1:1080, over the user-space stack.
    #[arg(
        long,
        value_name = "ADDR:PORT",
        conflicts_with_all = TUN_ONLY
    )]
    pub socks5: Option<std::net::SocketAddr>,
    /// Exit instead of reconnecting when the link drops.
    #[arg(long)]
    pub no_reconnect: bool,
    /// Most back-off between reconnect attempts, in seconds.
    #[arg(long, default_value_t = 60)]
    pub max_backoff: u64,
    /// IP-HTTPS: the largest link MTU to accept, announced to the server
    /// (a tunnel443 extension; other servers keep 1280). A tunnel443
    /// server answers with min(this, its own maximum) in its Router
    /// Advertisements, and the device takes it. 1280 announces nothing.
    /// Not with rootless mode (--forward, --socks5), which stays at 1280.
    #[arg(long, default_value_t = ::iphttps::mtu::DEFAULT_ANNOUNCED as u16,
          value_parser = clap::value_parser!(u16).range(1280..))]
    pub link_mtu: u16,
    #[command(flatten)]
    pub proxy: crate::dial::ProxyOpts,
}

/// Options that only make sense with a TUN device: rootless mode
/// (`--forward`, `--socks5`) refuses them (exit code 2) rather than
/// ignoring them (`--link-mtu`: the user-space stack stays at 1280).
const TUN_ONLY: [&str; 4] = ["routes", "default_route", "tun_name", "link_mtu"];

/// Everything a connection attempt needs.
pub struct Setup {
    pub target: Target,
    pub user: String,
    pub password: String,
    /// EAP-TLS instead of a password (`--eap-tls`).
    pub eap_tls: Option<std::sync::Arc<dyn ppp::auth::eap_tls::EapTlsConfig>>,
    pub tls: crate::tls::ClientTls,
    pub server_name: String,
    pub routes: Vec<Ipv4Net>,
    pub default_route: bool,
    pub tun_name: String,
    /// Our PPP MRU (`--mru`).
    pub mru: u16,
    pub proxy: crate::dial::ProxyOpts,
    /// Rootless mode: the `--forward` listeners; no TUN device.
    pub rootless: Option<std::sync::Arc<userstack::Listeners>>,
    /// Set once a server turned out to do EAP only (it stopped asking for
    /// authentication after we declined EAP, as pppd with `require-eap`
    /// does): the next connections offer EAP first.
    pub eap_first: std::sync::atomic::AtomicBool,
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

/// A line for the user on standard output; a closed stdout is no error.
pub(crate) fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// Tells the user why the client stops (standard error, which may be
/// closed too) and returns the exit code.
pub(crate) fn report(failure: &Failure) -> i32 {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "tunnel443: {failure}");
    failure.exit_code()
}

/// Refuses options that the URL's protocol would silently ignore.
fn check_options(args: &ClientArgs, target: &Target) -> anyhow::Result<()> {
    let url = &args.url;
    if (args.eap_ca.is_some() || args.eap_server_name.is_some()) && !args.eap_tls && !args.peap {
        bail!("--eap-ca and --eap-server-name are for SSTP with --eap-tls or --peap");
    }
    match target.scheme.as_str() {
        "sstp" => {
            if target.user.is_none() && !args.eap_tls {
                bail!("{url}: the URL needs a user: sstp://USER@HOST[:PORT] (or log in with --eap-tls)");
            }
            if (args.cert.is_some() || args.key.is_some()) && !args.eap_tls {
                bail!(
                    "--cert/--key are for IP-HTTPS (iphttps://), or for SSTP with --eap-tls; \
                     otherwise an SSTP client authenticates with its user's password ({url})"
                );
            }
        }
        "iphttps" => {
            if args.password_stdin || args.password_file.is_some() {
                bail!("--password-stdin/--password-file are for SSTP only; IP-HTTPS uses --cert/--key ({url})");
            }
            if args.eap_tls || args.peap {
                bail!(
                    "--eap-tls and --peap are for SSTP only; IP-HTTPS uses --cert/--key for mutual TLS ({url})"
                );
            }
            if !args.routes.is_empty() {
                bail!("--route is for SSTP (IPv4) only; an IP-HTTPS client takes its routes from the server's Router Advertisements ({url})");
            }
        }
        _ => bail!("{url}: this command handles sstp:// and iphttps:// URLs"),
    }
    Ok(())
}

/// Runs the client; returns the process exit code.
pub async fn run(args: ClientArgs) -> anyhow::Result<i32> {
    crate::tls::install_provider();
    let target: Target = args.url.parse()?;
    check_options(&args, &target)?;
    let rootless = !args.forwards.is_empty() || args.socks5.is_some();
    if !rootless {
        if let Err(e) = routes::remove_stale().await {
            warn!(error = %format!("{e:#}"), "could not look for stale routes of earlier clients");
        }
    }
    if target.scheme == "iphttps" {
        let listeners = if rootless {
            Some(userstack::start_listeners(&args.forwards, args.socks5).await?)
        } else {
            None
        };
        return iphttps::run(&args, target, trust(&args)?, stop_signal(), listeners).await;
    }
    let trust = trust(&args)?;
    let server_name = args
        .server_name
        .clone()
        .unwrap_or_else(|| target.host.clone());
    let eap_name = args.eap_server_name.as_deref().unwrap_or(&server_name);
    let (user, password, eap_tls) = if args.eap_tls {
        let (Some(cert), Some(key)) = (&args.cert, &args.key) else {
            bail!("--eap-tls needs --cert and --key");
        };
        let eap_trust = match &args.eap_ca {
            Some(ca) => Trust::CaFile(ca.clone()),
            None => trust.clone(),
        };
        let c = crate::eap_tls::ClientEapTls::new(eap_name, &eap_trust, cert, key)?;
        // The EAP identity: the URL's user, else the certificate's CN.
        let user = match &target.user {
            Some(u) => u.clone(),
            None => crate::tls::load_certs(cert)?
                .first()
                .and_then(|der| crate::eap_tls::UserNameFrom::SubjectCn.extract(der))
                .with_context(|| {
                    format!(
                        "{}: no subject Common Name for the EAP identity; put a user in the URL",
                        cert.display()
                    )
                })?,
        };
        let c: std::sync::Arc<dyn ppp::auth::eap_tls::EapTlsConfig> = std::sync::Arc::new(c);
        (user, String::new(), Some(c))
    } else if args.peap {
        let eap_trust = match &args.eap_ca {
            Some(ca) => Trust::CaFile(ca.clone()),
            None => Trust::System,
        };
        let c = crate::eap_tls::ClientEapTls::peap(eap_name, &eap_trust)?;
        let c: std::sync::Arc<dyn ppp::auth::eap_tls::EapTlsConfig> = std::sync::Arc::new(c);
        (
            target.user.clone().unwrap_or_default(),
            read_password(&args)?,
            Some(c),
        )
    } else {
        (
            target.user.clone().unwrap_or_default(),
            read_password(&args)?,
            None,
        )
    };
    let routes = args
        .routes
        .iter()
        .map(|r| {
            r.parse::<Ipv4Net>()
                .map_err(|e| anyhow::anyhow!("--route {r}: {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let setup = Setup {
        server_name,
        target,
        user,
        password,
        eap_tls,
        tls: crate::tls::client_config(&trust)?,
        routes,
        default_route: args.default_route,
        tun_name: args.tun_name.clone(),
        mru: args.mru,
        proxy: args.proxy.clone(),
        rootless: if rootless {
            Some(userstack::start_listeners(&args.forwards, args.socks5).await?)
        } else {
            None
        },
        eap_first: Default::default(),
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

/// A flag set by SIGINT, SIGTERM or SIGHUP (a closed terminal): each ends
/// the client cleanly, routes restored.
fn stop_signal() -> watch::Receiver<bool> {
    use tokio::signal::unix::{signal, SignalKind};
    let (stop_tx, stop_rx) = watch::channel(false);
    // Registered before returning: a signal from now on is not lost.
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        warn!("could not install the signal handlers");
        return stop_rx;
    };
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            _ = hup.recv() => {}
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
        let eap_first = setup.eap_first.load(std::sync::atomic::Ordering::Relaxed);
        let result = sstp::run_once(setup, stop_rx.clone()).await;
        if *stop_rx.borrow() {
            info!("disconnected");
            return Ok(0);
        }
        let failure = match result {
            Ok(()) => Failure::Other("the server closed the connection".into()),
            Err(f) => f,
        };
        if !eap_first && setup.eap_first.load(std::sync::atomic::Ordering::Relaxed) {
            // The server does EAP only: part of finding a common method,
            // not a reconnect (also with --no-reconnect), and at once.
            continue;
        }
        if args.no_reconnect || !failure.retryable() {
            return Ok(report(&failure));
        }
        if started.elapsed() > Duration::from_secs(60) {
            backoff = Duration::from_secs(1);
        }
        warn!(error = %failure, retry_in_s = backoff.as_secs(), "connection lost; reconnecting");
        let mut stop = stop_rx.clone();
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return Ok(0),
        }
        backoff = (backoff * 2).min(max_backoff);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        client: ClientArgs,
    }

    fn parse(args: &[&str]) -> Result<ClientArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("client").chain(args.iter().copied())).map(|c| c.client)
    }

    /// Every TUN-only option with `--forward` or `--socks5` is a usage
    /// error naming both; their defaults are no conflict.
    #[test]
    fn tun_only_options_are_refused_in_rootless_mode() {
        for rootless in [
            ["--forward", "8080:10.0.0.1:80"],
            ["--socks5", "127.0.0.1:1080"],
        ] {
            for (url, tun_only) in [
                ("sstp://u@h", &["--route", "10.0.0.0/8"][..]),
                ("sstp://u@h", &["--default-route"]),
                ("sstp://u@h", &["--tun-name", "vpn0"]),
                ("iphttps://h/IPHTTPS", &["--link-mtu", "1400"]),
            ] {
                let mut args = vec![url];
                args.extend_from_slice(&rootless);
                args.extend_from_slice(tun_only);
                let e = parse(&args)
                    .err()
                    .unwrap_or_else(|| panic!("{args:?} accepted"));
                assert_eq!(
                    e.kind(),
                    clap::error::ErrorKind::ArgumentConflict,
                    "{args:?}"
                );
                let text = e.to_string();
                assert!(
                    text.contains(tun_only[0]) && text.contains(rootless[0]),
                    "{args:?}: {text}"
                );
                assert_eq!(e.exit_code(), 2);
            }
            let a = parse(&["iphttps://h/IPHTTPS", rootless[0], rootless[1]]).unwrap();
            assert!(a.routes.is_empty() && !a.default_route);
        }
    }
}
