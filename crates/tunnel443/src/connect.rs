//! `tunnel443 connect`: a generic CONNECT forwarder.
//!
//! `spec/secure-tunnel-proxy.txt`: the CONNECT handshake is "a general
//! purpose tunnel mechanism for permitting non-HTTP protocols ... to traverse
//! an HTTP proxy". This command opens such a tunnel to `HOST:PORT` with
//! [`crate::dial`] (so `--proxy` chains, `https_proxy`, credentials and
//! timeouts work as for the VPN clients) and then either
//!
//! * carries stdin/stdout, for use as an ssh `ProxyCommand`
//!   (`ProxyCommand tunnel443 connect --proxy http://proxy:3128 %h:%p`), or
//! * with `--listen LOCAL:PORT`, forwards every connection accepted there
//!   through its own tunnel (a port forwarder).
//!
//! End of file on stdin is passed on as a half-close; the command exits when
//! the remote side closes.
//!
//! It is quiet by default (warnings and errors only: as a ProxyCommand its
//! stderr is the user's terminal); `-v` or `--log` turn the log up. Exit
//! codes: 0 the remote side closed, 1 the target could not be reached
//! directly or the connection failed, 2 usage (bad arguments, proxy URL or
//! credentials file), 7 a proxy could not be reached or refused.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use httptunnel::Authority;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::dial::{dial, DialFailure, ProxyOpts};
use crate::proxy::relay;

/// Exit code: the target could not be reached, or the connection failed.
pub const EXIT_FAILED: i32 = 1;
/// Exit code: a proxy could not be reached, refused, or could not reach
/// the next hop (as for `tunnel443 client`).
pub const EXIT_PROXY: i32 = 7;

const EXIT_CODES: &str = "Exit codes:
  0  the remote side closed the connection
  1  the target could not be reached directly, or the connection failed
  2  usage: bad arguments, proxy URL or credentials file
  7  a proxy could not be reached, refused the tunnel, or could not reach the next hop";

/// Arguments of `tunnel443 connect`.
#[derive(clap::Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub struct ConnectArgs {
    #[command(flatten)]
    pub proxy: ProxyOpts,
    /// Listen here and forward each accepted connection, instead of using
    /// stdin/stdout.
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// Extra header for the CONNECT requests, e.g. "SSTPVERSION: 1.0"
    /// (repeatable).
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub header: Vec<String>,
    /// Close a forwarded connection after this many seconds without
    /// traffic (--listen mode; 0: never).
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub idle_timeout: u64,
    /// Log more: -v for each tunnel opened and closed, -vv for the proxy
    /// exchange. By default only warnings and errors are printed.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Where to connect: HOST:PORT (IPv6 as [ADDR]:PORT).
    #[arg(value_name = "HOST:PORT")]
    pub target: String,
}

impl ConnectArgs {
    /// The log filter when neither --log nor TUNNEL443_LOG is given: quiet,
    /// because as an ssh ProxyCommand stderr is the user's terminal.
    pub fn default_log(&self) -> &'static str {
        match self.verbose {
            0 => "warn",
            1 => "info",
            _ => "debug",
        }
    }
}

/// Reports a failed dial and returns the exit code, or the error itself
/// for a usage error (the caller exits 2).
fn dial_failed(target: &Authority, e: crate::dial::DialError) -> anyhow::Result<i32> {
    let code = match e.failure() {
        DialFailure::Usage => return Err(anyhow::Error::new(e)),
        DialFailure::Proxy => EXIT_PROXY,
        DialFailure::Target => EXIT_FAILED,
    };
    eprintln!("tunnel443: connecting to {target}: {e}");
    Ok(code)
}

fn parse_headers(list: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    list.iter()
        .map(|h| {
            let (n, v) = h
                .split_once(':')
                .with_context(|| format!("--header \"{h}\": expected \"NAME: VALUE\""))?;
            httptunnel::Header::new(n.trim(), v.trim())
                .with_context(|| format!("--header \"{h}\""))?;
            Ok((n.trim().to_owned(), v.trim().to_owned()))
        })
        .collect()
}

/// Runs `tunnel443 connect`; returns the exit code, or an error for a
/// usage error.
pub async fn run(args: ConnectArgs) -> anyhow::Result<i32> {
    let target = Authority::parse(&args.target)
        .with_context(|| format!("target \"{}\": expected HOST:PORT", args.target))?;
    let headers = parse_headers(&args.header)?;
    match args.listen {
        Some(listen) => forward(args.proxy, target, headers, listen, args.idle_timeout).await,
        None => stdio(&args.proxy, &target, &headers).await,
    }
}

fn header_refs(h: &[(String, String)]) -> Vec<(&str, &str)> {
    h.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect()
}

async fn stdio(
    opts: &ProxyOpts,
    target: &Authority,
    headers: &[(String, String)],
) -> anyhow::Result<i32> {
    let d = match dial(
        opts,
        &target.host_for_resolver(),
        target.port(),
        &header_refs(headers),
    )
    .await
    {
        Ok(d) => d,
        Err(e) => return dial_failed(target, e),
    };
    info!(target = %target, via = %d.first_hop(), proxied = d.via_proxy(), "tunnel open");
    let (mut rd, mut wr) = tokio::io::split(d);
    let up = async move {
        let mut stdin = tokio::io::stdin();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match stdin.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if wr.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
        // Half-close: the remote side sees end of file and may still answer.
        let _ = wr.shutdown().await;
        // Keep the write half alive until the download ends.
        std::future::pending::<()>().await;
    };
    let down = async move {
        let mut stdout = tokio::io::stdout();
        let r = tokio::io::copy(&mut rd, &mut stdout).await;
        let _ = stdout.flush().await;
        r
    };
    let result = tokio::select! {
        r = down => r,
        _ = up => Ok(0),
    };
    // tokio's stdin reader is a blocking thread that cannot be interrupted;
    // exit now rather than wait for it on runtime shutdown.
    match result {
        Ok(_) => std::process::exit(0),
        Err(e) => {
            eprintln!("tunnel443: {target}: {}", crate::io_util::plain_error(&e));
            std::process::exit(EXIT_FAILED)
        }
    }
}

async fn forward(
    opts: ProxyOpts,
    target: Authority,
    headers: Vec<(String, String)>,
    listen: SocketAddr,
    idle: u64,
) -> anyhow::Result<i32> {
    let l = match TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("tunnel443: listening on {listen}: {e}");
            return Ok(EXIT_FAILED);
        }
    };
    let local = l.local_addr()?;
    info!(addr = %local, target = %target, "forwarder listening");
    let limits = relay::Limits {
        idle: (idle > 0).then(|| Duration::from_secs(idle)),
        half_close: Duration::from_secs(30),
    };
    let opts = std::sync::Arc::new(opts);
    let headers = std::sync::Arc::new(headers);
    loop {
        let (sock, peer) = match l.accept().await {
            Ok(x) => x,
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = sock.set_nodelay(true);
        let (opts, headers, target) = (opts.clone(), headers.clone(), target.clone());
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let d = match dial(
                &opts,
                &target.host_for_resolver(),
                target.port(),
                &header_refs(&headers),
            )
            .await
            {
                Ok(d) => d,
                Err(e) => {
                    warn!(client = %peer, target = %target, error = %e, "cannot open the tunnel");
                    return;
                }
            };
            let out = relay::relay(sock, &[], d, limits, std::future::pending()).await;
            info!(
                client = %peer,
                target = %target,
                bytes_up = out.up,
                bytes_down = out.down,
                duration_ms = started.elapsed().as_millis() as u64,
                result = %out.end.label(),
                "forwarded connection closed"
            );
        });
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn headers() {
        let h = super::parse_headers(&["SSTPVERSION: 1.0".into(), "X-A:b".into()]).unwrap();
        assert_eq!(
            h,
            vec![
                ("SSTPVERSION".into(), "1.0".into()),
                ("X-A".into(), "b".into())
            ]
        );
        assert!(super::parse_headers(&["nocolon".into()]).is_err());
        assert!(super::parse_headers(&["Bad Name: x".into()]).is_err());
    }
}
