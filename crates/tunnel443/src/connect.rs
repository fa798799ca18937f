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

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use httptunnel::Authority;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::dial::{dial, ProxyOpts};
use crate::proxy::relay;

/// Arguments of `tunnel443 connect`.
#[derive(clap::Args, Debug)]
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
    /// Where to connect: HOST:PORT (IPv6 as [ADDR]:PORT).
    #[arg(value_name = "HOST:PORT")]
    pub target: String,
}

fn parse_headers(list: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    list.iter()
        .map(|h| {
            let (n, v) = h
                .split_once(':')
                .with_context(|| format!("--header {h:?}: expected \"NAME: VALUE\""))?;
            httptunnel::Header::new(n.trim(), v.trim())
                .with_context(|| format!("--header {h:?}"))?;
            Ok((n.trim().to_owned(), v.trim().to_owned()))
        })
        .collect()
}

/// Runs `tunnel443 connect`.
pub async fn run(args: ConnectArgs) -> anyhow::Result<()> {
    let target = Authority::parse(&args.target)
        .with_context(|| format!("target {:?}: expected HOST:PORT", args.target))?;
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
) -> anyhow::Result<()> {
    let d = dial(
        opts,
        &target.host_for_resolver(),
        target.port(),
        &header_refs(headers),
    )
    .await
    .with_context(|| format!("connecting to {target}"))?;
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
            eprintln!("tunnel443 connect: {target}: {e}");
            std::process::exit(1)
        }
    }
}

async fn forward(
    opts: ProxyOpts,
    target: Authority,
    headers: Vec<(String, String)>,
    listen: SocketAddr,
    idle: u64,
) -> anyhow::Result<()> {
    let l = TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
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
