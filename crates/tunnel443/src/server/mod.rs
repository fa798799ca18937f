//! `tunnel443 server`: the SSTP VPN server.
//!
//! One HTTPS listener, one TUN device shared by all sessions, an IPv4 pool,
//! a users file. SIGHUP reloads the users file and the certificate without
//! touching running sessions; SIGTERM/SIGINT sends every client a Call
//! Disconnect (and LCP Terminate) and waits briefly for them to finish.

pub mod auth;
mod iphttps;
mod listener;
mod router;
mod session;
mod tls_setup;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::{self, Overrides, ServerSettings, TlsMode};
use crate::pool::Pool;
use crate::tls::CertHashes;
use tls_setup::TlsSetup;

#[derive(clap::Args, Debug)]
pub struct ServerArgs {
    /// Configuration file (TOML). Without one, the built-in defaults apply.
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// Check the configuration (and certificate, users file), then exit.
    #[arg(long)]
    pub check_config: bool,
    /// Listen address (default 0.0.0.0:443).
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// State directory for generated certificate and users (default /var/lib/tunnel443).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Users file (default STATE_DIR/users).
    #[arg(long)]
    pub users_file: Option<PathBuf>,
    /// Client IPv4 pool, CIDR (default 10.44.0.0/24).
    #[arg(long)]
    pub pool: Option<String>,
    /// Name of the TUN device (default t443s0).
    #[arg(long)]
    pub tun_name: Option<String>,
    /// IPv6 /64 for clients (enables IPv6CP and Router Advertisements).
    #[arg(long)]
    pub ipv6_prefix: Option<String>,
    /// IP-HTTPS prefix pool (e.g. fd00:1::/48); each client gets a /64.
    /// Enables IP-HTTPS on the same listener.
    #[arg(long)]
    pub iphttps_prefix: Option<String>,
    /// PEM CA(s) that IP-HTTPS client certificates must chain to.
    #[arg(long)]
    pub iphttps_client_ca: Option<PathBuf>,
    /// TLS server name reserved for IP-HTTPS (repeatable): its handshakes
    /// require a client certificate (`iphttps.server_names`).
    #[arg(long = "iphttps-server-name", value_name = "NAME")]
    pub iphttps_server_names: Vec<String>,
}

/// What the zero-config default made or found.
pub struct ZeroConfig {
    pub user: String,
    /// Set when the user was created just now.
    pub password: Option<String>,
    pub cert_sha256: [u8; 32],
}

/// Creates the certificate and the first user in `state_dir` if missing.
pub fn ensure_zero_config(state_dir: &Path, names: &[String]) -> anyhow::Result<ZeroConfig> {
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("creating state dir {}", state_dir.display()))?;
    let (cert, key) = (state_dir.join("cert.pem"), state_dir.join("key.pem"));
    crate::state::ensure_certificate(&cert, &key, names)?;
    let der = crate::tls::load_certs(&cert)?.remove(0);
    let users = state_dir.join("users");
    let password = if users.exists() {
        None
    } else {
        let pw = crate::state::random_password();
        auth::create_users_file(&users, crate::state::DEFAULT_USER, &pw)?;
        Some(pw)
    };
    Ok(ZeroConfig {
        user: crate::state::DEFAULT_USER.into(),
        password,
        cert_sha256: CertHashes::of(&der).sha256,
    })
}

/// State every session shares.
pub struct Shared {
    pub settings: ServerSettings,
    tls: RwLock<Option<Arc<TlsSetup>>>,
    plain_hashes: Option<CertHashes>,
    pub users: auth::Users,
    pub pool: Pool,
    pub router: Arc<router::Router>,
    pub tun: crate::tun::Tun,
    pub shutdown: watch::Receiver<bool>,
    /// IP-HTTPS (None: disabled).
    pub iphttps: Option<iphttps::Service>,
}

impl Shared {
    /// The TLS configs (None in plain-HTTP mode) and the hashes of the
    /// certificate clients see, taken together so that a SIGHUP reload
    /// between handshake and crypto binding cannot mix them up.
    fn tls_snapshot(&self) -> (Option<Arc<TlsSetup>>, CertHashes) {
        if let Some(h) = self.plain_hashes {
            return (None, h);
        }
        let g = self.tls.read().expect("tls lock");
        let t = g.as_ref().expect("TLS mode has a config");
        (Some(t.clone()), t.hashes)
    }
    fn proxy_protocol(&self) -> bool {
        matches!(
            self.settings.tls,
            TlsMode::PlainHttp {
                proxy_protocol: true,
                ..
            }
        )
    }
}

fn load_tls(settings: &ServerSettings) -> anyhow::Result<Option<Arc<TlsSetup>>> {
    Ok(TlsSetup::load(settings)?.map(Arc::new))
}

/// Logs when the kernel will not forward for the clients: without it they
/// reach this host only, not each other nor the networks behind it.
fn check_forwarding(settings: &ServerSettings) {
    let mut knobs = vec![("net.ipv4.ip_forward", "/proc/sys/net/ipv4/ip_forward")];
    if settings.ipv6_prefix.is_some() || settings.iphttps.is_some() {
        knobs.push((
            "net.ipv6.conf.all.forwarding",
            "/proc/sys/net/ipv6/conf/all/forwarding",
        ));
    }
    for (name, path) in knobs {
        if std::fs::read_to_string(path).is_ok_and(|v| v.trim() == "0") {
            warn!(
                sysctl = name,
                "forwarding is off: clients reach only this host; set {name}=1 to route for them"
            );
        }
    }
}

pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    crate::tls::install_provider();
    let ov = Overrides {
        listen: args.listen,
        state_dir: args.state_dir.clone(),
        users_file: args.users_file.clone(),
        tun_name: args.tun_name.clone(),
        pool: args.pool.clone(),
        ipv6_prefix: args.ipv6_prefix.clone(),
        iphttps_prefix: args.iphttps_prefix.clone(),
        iphttps_client_ca: args.iphttps_client_ca.clone(),
        iphttps_server_names: args.iphttps_server_names.clone(),
    };
    let config_path = args.config.clone().or_else(|| {
        let p = PathBuf::from(config::DEFAULT_CONFIG);
        p.exists().then_some(p)
    });
    let settings = config::load(config_path.as_deref(), &ov)?;

    if args.check_config {
        if !settings.generated_cert {
            load_tls(&settings)?;
        }
        if let Some(i) = &settings.iphttps {
            iphttps::Service::new(i, &settings.ipv6_dns)?;
        }
        if settings.users_file.exists() {
            auth::Users::load(&settings.users_file)?;
        }
        println!("configuration OK");
        return Ok(());
    }

    if settings.generated_cert {
        let names = vec![crate::state::reachable_host(settings.listen)];
        let z = ensure_zero_config(&settings.state_dir, &names)?;
        let host = crate::state::reachable_host(settings.listen);
        let port = match settings.listen.port() {
            443 => String::new(),
            p => format!(":{p}"),
        };
        let fp = hex::encode(z.cert_sha256);
        if let Some(pw) = &z.password {
            println!("tunnel443: created user {:?} with password {pw}", z.user);
            println!("tunnel443: (stored in {})", settings.users_file.display());
        }
        println!("tunnel443: certificate SHA-256 {fp}");
        println!(
            "tunnel443: connect with: tunnel443 client sstp://{}@{host}{port} --pin-sha256 {fp}",
            z.user
        );
    }

    let tls = load_tls(&settings)?;
    let plain_hashes = match &settings.tls {
        TlsMode::PlainHttp {
            cert_sha256,
            cert_sha1,
            ..
        } => Some(CertHashes {
            sha1: cert_sha1.unwrap_or([0; 20]),
            sha256: cert_sha256.unwrap_or([0; 32]),
        }),
        TlsMode::Tls { .. } => None,
    };
    let users = auth::Users::load(&settings.users_file)?;
    let pool = Pool::new(settings.pool);
    let tun = crate::tun::create(
        Some(&settings.tun_name),
        settings.pool.first_host(),
        settings.pool.prefix_len(),
        None,
        settings.mtu,
    )?;
    if let Some(p) = settings.ipv6_prefix {
        let one =
            ::iphttps::InterfaceId::new([0, 0, 0, 0, 0, 0, 0, 1]).expect("::1 is not reserved");
        let addr = p.address(one);
        tun.add_address_v6(addr, 64)
            .with_context(|| format!("adding {addr}/64 to the TUN device"))?;
    }
    let iphttps = match &settings.iphttps {
        Some(i) => {
            let service = iphttps::Service::new(i, &settings.ipv6_dns)?;
            let addr = service.pool.server_addr();
            tun.add_address_v6(addr, i.pool.prefix_len())
                .with_context(|| {
                    format!("adding {addr}/{} to the TUN device", i.pool.prefix_len())
                })?;
            info!(
                pool = %format!("{}/{}", i.pool.addr(), i.pool.prefix_len()),
                auth = if i.auth_none { "none" } else { "certificate" },
                server_names = %i.server_names.join(","),
                default_route = i.default_route,
                routes = i.routes.len(),
                "IP-HTTPS enabled"
            );
            Some(service)
        }
        None => None,
    };
    check_forwarding(&settings);
    let router = Arc::new(router::Router::default());
    tokio::spawn(router.clone().run_tun_reader(tun.clone()));

    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("listening on {}", settings.listen))?;
    let (stop_tx, stop_rx) = watch::channel(false);
    info!(
        listen = %settings.listen,
        tun = %settings.tun_name,
        pool = %settings.pool,
        pool_size = pool.capacity(),
        users_file = %settings.users_file.display(),
        "server started"
    );
    let shared = Arc::new(Shared {
        settings,
        tls: RwLock::new(tls),
        plain_hashes,
        users,
        pool,
        router,
        tun,
        shutdown: stop_rx,
        iphttps,
    });
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    let accept = tokio::spawn(listener::run(listener, shared.clone()));

    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => reload(&shared),
        }
    }
    info!(
        sessions = session::active() + iphttps::active(),
        "shutting down: disconnecting every session"
    );
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    accept.abort();
    let _ = stop_tx.send(true);
    // Sessions finish their Call Disconnect exchange (or time out) on their own.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    while session::active() + iphttps::active() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    info!(left = session::active() + iphttps::active(), "stopped");
    Ok(())
}

fn reload(shared: &Shared) {
    match shared.users.reload(&shared.settings.users_file) {
        Ok(n) => info!(users = n, "users file reloaded"),
        Err(e) => warn!(error = %format!("{e:#}"), "users file reload failed; keeping the old one"),
    }
    if let TlsMode::Tls { .. } = shared.settings.tls {
        match load_tls(&shared.settings) {
            Ok(t) => {
                *shared.tls.write().expect("tls lock") = t;
                info!("certificate reloaded (new sessions use it)");
            }
            Err(e) => {
                warn!(error = %format!("{e:#}"), "certificate reload failed; keeping the old one")
            }
        }
    }
}
