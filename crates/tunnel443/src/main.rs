//! `tunnel443`: SSTP, IP-HTTPS and HTTP CONNECT tunnels over port 443.
//!
//! The protocol logic lives in the sans-IO crates (`sstp`, `ppp`,
//! `httptunnel`); this binary holds the tokio drivers, TLS, TUN, config and
//! command line.

mod connect;
mod dial;
mod proxy;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "tunnel443",
    version,
    about = "VPN tunnels over HTTPS port 443: SSTP, IP-HTTPS, HTTP CONNECT"
)]
struct Cli {
    /// Log filter, e.g. `info`, `debug`, `tunnel443=trace`.
    #[arg(long, global = true, env = "TUNNEL443_LOG", default_value = "info")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// A CONNECT-only forward proxy server.
    Proxy(proxy::ProxyArgs),
    /// Carry stdin/stdout (or a local port) to HOST:PORT through a proxy chain.
    Connect(connect::ConnectArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&cli.log))
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        match cli.command {
            Command::Proxy(a) => proxy::run(a).await,
            Command::Connect(a) => connect::run(a).await,
        }
    })
}
