//! `tunnel443`: SSTP, IP-HTTPS and HTTP CONNECT tunnels over port 443.
//!
//! The protocol logic lives in the sans-IO crates (`sstp`, `ppp`,
//! `httptunnel`); this binary holds the tokio drivers, TLS, TUN, config and
//! command line.

mod client;
mod config;
mod connect;
mod ctl;
mod demo;
mod dial;
mod driver;
mod eap_tls;
mod io_util;
mod loadgen;
mod memory;
mod netlink;
mod netns;
mod pool;
mod proxy;
mod server;
mod spares;
mod state;
mod tasks;
mod tls;
mod tun;
mod user_cmd;
mod web_config;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "tunnel443",
    version,
    about = "VPN tunnels over HTTPS port 443: SSTP, IP-HTTPS, HTTP CONNECT"
)]
struct Cli {
    /// Log filter, e.g. `info`, `debug`, `tunnel443=trace` [default: info;
    /// `connect`: warn].
    #[arg(long, global = true, env = "TUNNEL443_LOG")]
    log: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The VPN server: SSTP and IP-HTTPS on one HTTPS listener
    /// (zero-config without a config file).
    Server(server::ServerArgs),
    /// Connect to an SSTP or IP-HTTPS server: sstp://USER@HOST[:PORT] or iphttps://HOST[:PORT]/PATH.
    Client(client::ClientArgs),
    /// Add, remove and list the users of the server's users file.
    User(user_cmd::UserArgs),
    /// An SSTP server and client in two network namespaces: ping and
    /// throughput (root; needs ip and ping).
    Demo(demo::DemoArgs),
    /// A CONNECT-only forward proxy server.
    Proxy(proxy::ProxyArgs),
    /// Carry stdin/stdout (or a local port) to HOST:PORT through a proxy chain.
    Connect(connect::ConnectArgs),
    /// Ask a running server: sessions, show, kill, stats, reload.
    Ctl(ctl::CtlArgs),
    /// Load generator: many SSTP or IP-HTTPS sessions (no TUN), or an
    /// attacker mode; reports setups/s, setup times and failures by stage.
    Loadgen(loadgen::LoadgenArgs),
}

/// The client carries one session: one thread runs it without the
/// cross-thread wake-ups of a work-stealing scheduler (measured in
/// BENCHMARKS.md). The server and the proxies serve many connections on
/// every core.
fn runtime(command: &Command) -> std::io::Result<tokio::runtime::Runtime> {
    match command {
        Command::Client(_) | Command::Connect(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Command::Server(_) => memory::server_runtime(),
        _ => tokio::runtime::Runtime::new(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let long_running = matches!(cli.command, Command::Server(_) | Command::Proxy(_));
    // Before any thread or file exists: the process may execute itself again.
    let reexec_failed = long_running.then(memory::without_thread_cache).flatten();
    let log = cli.log.clone().unwrap_or_else(|| match &cli.command {
        Command::Connect(a) => a.default_log().to_owned(),
        _ => "info".to_owned(),
    });
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&log))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        // A closed stderr (`2>&1 | head -1`) must not turn into a panic.
        .log_internal_errors(false)
        .init();
    if let Some(e) = reexec_failed {
        tracing::warn!(
            "could not restart with glibc's thread cache off ({e}): the RSS may stay up to \
             a few MB higher after a churn of sessions"
        );
    }
    let result = match cli.command {
        Command::User(a) => user_cmd::run(a).map(|()| 0),
        Command::Demo(a) => demo::run(a).map(|()| 0),
        Command::Ctl(a) => Ok(ctl::run(a)),
        command => {
            if long_running {
                memory::tune_allocator();
            }
            runtime(&command)
                .map_err(anyhow::Error::from)
                .and_then(|rt| {
                    rt.block_on(async move {
                        match command {
                            Command::Server(a) => server::run(a).await.map(|()| 0),
                            Command::Client(a) => client::run(a).await,
                            Command::Proxy(a) => proxy::run(a).await.map(|()| 0),
                            Command::Connect(a) => connect::run(a).await,
                            Command::Loadgen(a) => loadgen::run(a).await,
                            Command::User(_) | Command::Demo(_) | Command::Ctl(_) => {
                                unreachable!("handled above")
                            }
                        }
                    })
                })
        }
    };
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "tunnel443: {e:#}");
            ExitCode::from(2)
        }
    }
}
