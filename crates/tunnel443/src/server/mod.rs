//! `tunnel443 server`: the SSTP and IP-HTTPS VPN server.
//!
//! One HTTPS listener, one TUN device shared by all sessions, an IPv4 pool,
//! a users file. Start-up binds the listener and opens the TUN device
//! before it prints anything a client would act on. The users file is
//! re-read when it changes (polled every [`auth::POLL`]); SIGHUP reloads
//! it and the certificate without touching running sessions; SIGTERM/SIGINT
//! sends every client a Call Disconnect (and LCP Terminate) and waits
//! briefly for them to finish.

mod acme;
pub mod admission;
pub mod auth;
mod banner;
pub mod control;
mod framed_route;
mod iphttps;
mod listener;
mod metrics;
mod privdrop;
pub mod radius;
pub mod registry;
mod rewind;
mod router;
mod sstp;
pub mod stats;
pub mod throttle;
mod tls_setup;
mod verdict;
mod web;

pub use self::sstp::span as session_span;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use tracing::{info, warn};

use crate::config::{self, Overrides, ServerSettings, TlsMode};
use crate::pool::Pool;
use crate::tls::CertHashes;
use tls_setup::TlsSetup;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Each option overrides the configuration key named in its help; a default applies when neither sets a value. Every key is documented in dist/tunnel443.toml."
)]
pub struct ServerArgs {
    /// Configuration file (TOML); without one, the built-in defaults apply
    /// [default: /etc/tunnel443/tunnel443.toml, read when present]
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Check the configuration, the files it names and the users file,
    /// then exit.
    #[arg(long)]
    pub check_config: bool,
    /// After start, become this user keeping only CAP_NET_ADMIN (`user`)
    /// [default: stay root]
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Listen address (`listen`) [default: 0.0.0.0:443]
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<std::net::SocketAddr>,
    /// State directory for the generated certificate and users file
    /// (`state_dir`) [default: /var/lib/tunnel443]
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Users file (`users_file`); the zero-config default creates it with
    /// user vpn when it is missing [default: STATE_DIR/users]
    #[arg(long, value_name = "FILE")]
    pub users_file: Option<PathBuf>,
    /// Client IPv4 pool, CIDR (`ipv4.pool`) [default: 10.44.0.0/24]
    #[arg(long, value_name = "CIDR")]
    pub pool: Option<String>,
    /// Name of the TUN device (`tun.name`) [default: t443s0]
    #[arg(long, value_name = "NAME")]
    pub tun_name: Option<String>,
    /// IPv6 /64 for SSTP clients (`ipv6.prefix`); enables IPv6CP and Router
    /// Advertisements [default: none]
    #[arg(long, value_name = "PREFIX")]
    pub ipv6_prefix: Option<String>,
    /// IP-HTTPS prefix pool, e.g. fd00:1::/48 (`iphttps.prefix`); each
    /// client gets a /64. Enables IP-HTTPS on the same listener
    /// [default: none, IP-HTTPS off]
    #[arg(long, value_name = "PREFIX")]
    pub iphttps_prefix: Option<String>,
    /// PEM CA(s) that IP-HTTPS client certificates must chain to
    /// (`iphttps.client_ca`); needs --iphttps-prefix
    #[arg(long, value_name = "FILE")]
    pub iphttps_client_ca: Option<PathBuf>,
    /// TLS server name reserved for IP-HTTPS (repeatable): its handshakes
    /// require a client certificate (`iphttps.server_names`).
    #[arg(long = "iphttps-server-name", value_name = "NAME")]
    pub iphttps_server_names: Vec<String>,
    /// Unix socket for `tunnel443 ctl` (`control.socket`)
    /// [default: /run/tunnel443/control.sock]
    #[arg(long, value_name = "PATH")]
    pub control_socket: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR:PORT/metrics
    /// (`metrics.listen`) [default: off]
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Obtain the certificate for this DNS name with ACME (repeatable;
    /// `tls.acme.domains`)
    #[arg(long = "acme-domain", value_name = "NAME")]
    pub acme_domains: Vec<String>,
    /// The ACME CA's directory URL (`tls.acme.directory`; default Let's Encrypt)
    #[arg(long, value_name = "URL")]
    pub acme_directory: Option<String>,
    /// PEM certificate the ACME directory's HTTPS certificate chains to,
    /// for a test CA (`tls.acme.ca`)
    #[arg(long, value_name = "FILE")]
    pub acme_ca: Option<PathBuf>,
}

/// What the zero-config default made or found.
pub struct ZeroConfig {
    pub user: String,
    /// Set when the user was created just now.
    pub password: Option<String>,
    pub cert_sha256: [u8; 32],
}

/// Creates the certificate (for `names`) in `state_dir` and the users file
/// `users` with the first user, each if missing.
pub fn ensure_zero_config(
    state_dir: &Path,
    users: &Path,
    names: &[String],
) -> anyhow::Result<ZeroConfig> {
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("creating state dir {}", state_dir.display()))?;
    let (cert, key) = (state_dir.join("cert.pem"), state_dir.join("key.pem"));
    crate::state::ensure_certificate(&cert, &key, names)?;
    let der = crate::tls::load_certs(&cert)?.remove(0);
    let password = if users.exists() {
        None
    } else {
        let pw = crate::state::random_password();
        auth::create_users_file(users, crate::state::DEFAULT_USER, &pw)?;
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
    /// `ipv4.pools`, for RADIUS's Framed-Pool.
    pub named_pools: Vec<(String, Pool)>,
    pub router: Arc<router::Router>,
    pub tun: crate::tun::Tun,
    /// IP-HTTPS (None: disabled).
    pub iphttps: Option<iphttps::Service>,
    /// Every live session (`ctl`, metrics, accounting).
    pub sessions: Arc<registry::Registry>,
    /// Counters `ctl stats` and the metrics read.
    pub stats: stats::Stats,
    /// Pending tls-alpn-01 challenges (None: no ACME).
    pub acme: Option<Arc<acme::Challenges>>,
    /// The RADIUS client task (None: no `[radius]`).
    pub radius: Option<radius::Radius>,
    /// Connection caps and handshake budgets; its counters are for
    /// `ctl stats` and metrics ([`admission::Admission::snapshot`]).
    pub admission: Arc<admission::Admission>,
    /// Password-guess throttling (counters in `admission`).
    pub throttle: throttle::Throttle,
    /// Local EAP-TLS (`[eap_tls]`), when `[sstp] auth` lists it; a
    /// reload replaces it ([`reload_eap_tls`]).
    eap_tls: RwLock<Option<Arc<dyn ppp::auth::eap_tls::EapTlsConfig>>>,
    /// `[auth] order` now in effect (a reload replaces it).
    auth_order: RwLock<Arc<Vec<config::AuthSource>>>,
    /// Where the configuration came from, for a reload.
    config_path: Option<std::path::PathBuf>,
    overrides: config::Overrides,
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
    /// Local EAP-TLS now in effect (new sessions take it).
    pub fn eap_tls(&self) -> Option<Arc<dyn ppp::auth::eap_tls::EapTlsConfig>> {
        self.eap_tls.read().expect("eap_tls lock").clone()
    }
    /// `[auth] order` now in effect.
    pub fn auth_order(&self) -> Arc<Vec<config::AuthSource>> {
        self.auth_order.read().expect("auth order lock").clone()
    }
    /// The counters now, for `ctl stats` and `/metrics`.
    pub fn stats_snapshot(&self) -> stats::Snapshot {
        use registry::Protocol;
        let mut pools = vec![stats::PoolUse {
            pool: "ipv4",
            size: self.pool.capacity() as u64,
            used: self.pool.in_use() as u64,
        }];
        if let Some(i) = &self.iphttps {
            pools.push(stats::PoolUse {
                pool: "iphttps",
                size: i.pool.capacity(),
                used: i.pool.in_use(),
            });
        }
        use std::sync::atomic::Ordering::Relaxed;
        self.stats.snapshot(stats::Live {
            sessions: Protocol::ALL.map(|p| self.sessions.count(p) as u64),
            pools,
            traffic: self.sessions.total_traffic(),
            queue_full: self.router.queue_full.load(Relaxed),
            no_route: self.router.no_route.load(Relaxed),
            client_to_client: self.router.client_to_client.load(Relaxed),
            admission: self.admission.snapshot(),
            radius: self.radius.as_ref().map(radius::Radius::counters),
            tasks: crate::tasks::live(),
            runtime_tasks: crate::tasks::runtime_alive(),
        })
    }
    fn proxy_protocol(&self) -> bool {
        proxy_protocol_on(&self.settings)
    }
    /// Client isolation for the session whose queue is `tx`: drops its
    /// packets for other clients' addresses unless `[ipv4]
    /// client_to_client` allows them.
    pub fn isolation(&self, tx: &router::PacketTx) -> Option<crate::driver::RefuseFn> {
        if self.settings.client_to_client {
            return None;
        }
        let (router, own) = (self.router.clone(), tx.clone());
        Some(Box::new(move |p: &[u8]| router.to_other_client(p, &own)))
    }
}

/// Connections arrive through a load balancer that names the client in a
/// PROXY header.
fn proxy_protocol_on(settings: &ServerSettings) -> bool {
    matches!(
        settings.tls,
        TlsMode::PlainHttp {
            proxy_protocol: true,
            ..
        }
    )
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

/// The field names behind a TLS setup error.
fn tls_fields(settings: &ServerSettings) -> &'static str {
    match (settings.generated_cert, settings.iphttps.is_some()) {
        (true, false) => "the generated certificate",
        (true, true) => "the generated certificate, iphttps.client_ca",
        (false, false) => "tls.cert, tls.key",
        (false, true) => "tls.cert, tls.key, iphttps.client_ca",
    }
}

/// Local EAP-TLS (`[eap_tls]`), loaded from its files.
fn eap_tls_config(
    settings: &ServerSettings,
) -> anyhow::Result<Option<Arc<dyn ppp::auth::eap_tls::EapTlsConfig>>> {
    let Some(e) = &settings.eap_tls else {
        return Ok(None);
    };
    let c = crate::eap_tls::ServerEapTls::new(&e.cert, &e.key, &e.client_ca, e.user_name)
        .context("eap_tls.client_ca, eap_tls.cert, eap_tls.key (default tls.cert, tls.key)")?;
    Ok(Some(Arc::new(c)))
}

/// `--check-config`: what start would load, without binding or a TUN.
fn check_config(settings: &ServerSettings) -> anyhow::Result<()> {
    // ACME's certificate may not exist yet: the server obtains it.
    if !settings.generated_cert && settings.acme.is_none() {
        load_tls(settings).with_context(|| tls_fields(settings))?;
    }
    if let Some(i) = &settings.iphttps {
        iphttps::Service::new(i, &settings.ipv6_dns)?;
    }
    if !settings.generated_cert || settings.eap_tls.as_ref().is_some_and(|e| e.cert.exists()) {
        eap_tls_config(settings)?;
    }
    let file = settings.users_file.display();
    if settings.users_file.exists() {
        let users = auth::Users::load(&settings.users_file)?;
        if users.names().is_empty() {
            println!("note: the users file {file} has no users: nobody can log in until one is added with `tunnel443 user add`");
        }
    } else {
        println!(
            "note: the users file {file} does not exist yet: the server creates it with user {} and a random password at start",
            crate::state::DEFAULT_USER
        );
    }
    println!("configuration OK");
    Ok(())
}

/// The listener, with an error that says what to do about the usual causes.
async fn bind(listen: std::net::SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    listen_socket(listen).map_err(|e| {
        let why = match e.raw_os_error() {
            Some(libc::EADDRINUSE) => ": the address is already in use (another server running?); choose another with --listen or `listen` in the config",
            Some(libc::EACCES) => ": ports below 1024 need root or CAP_NET_BIND_SERVICE",
            Some(libc::EADDRNOTAVAIL) => ": the address is not one of this host's",
            _ => "",
        };
        anyhow::Error::new(e).context(format!("listening on {listen}{why}"))
    })
}

/// Pending connections the kernel queues for accept (capped by
/// `net.core.somaxconn`): a burst of new clients is not dropped at SYN.
const LISTEN_BACKLOG: u32 = 4096;

fn listen_socket(listen: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let sock = if listen.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    sock.set_reuseaddr(true)?;
    sock.bind(listen)?;
    sock.listen(LISTEN_BACKLOG)
}

/// Whether `a` is one of the server's own tunnel addresses (not something
/// a client can dial before it is connected).
/// The server's own address in the SSTP clients' IPv6 prefix (`prefix::1`,
/// on the TUN device): also the source of its Packet Too Big messages.
pub(crate) fn own_ipv6(p: ::ipv6nd::Prefix64) -> std::net::Ipv6Addr {
    p.address(::ipv6nd::InterfaceId::new([0, 0, 0, 0, 0, 0, 0, 1]).expect("::1 is not reserved"))
}

fn own_tunnel_address(settings: &ServerSettings, a: std::net::IpAddr) -> bool {
    match a {
        std::net::IpAddr::V4(v4) => settings.pool.contains(v4),
        std::net::IpAddr::V6(v6) => {
            settings.ipv6_prefix.is_some_and(|p| p.contains(v6))
                || settings
                    .iphttps
                    .as_ref()
                    .is_some_and(|i| i.pool.contains(v6))
        }
    }
}

/// Routes each of `ipv4.pools` into the TUN device (the main pool is its
/// address's network); the routes go with the device.
async fn route_named_pools(settings: &ServerSettings, tun: &crate::tun::Tun) -> anyhow::Result<()> {
    if settings.pools.is_empty() {
        return Ok(());
    }
    let nl = crate::netlink::Netlink::new()?;
    let oif = crate::tun::if_index(tun)?;
    for (name, net) in &settings.pools {
        let r = crate::netlink::Route {
            dst: std::net::IpAddr::V4(net.network()),
            prefix_len: net.prefix_len(),
            oif: Some(oif),
            gateway: None,
            owner: None,
        };
        nl.add(&r)
            .await
            .with_context(|| format!("ipv4.pools.{name}: routing {net} into the TUN device"))?;
        info!(pool = %name, network = %net, "named pool routed into the TUN device");
    }
    Ok(())
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
        control_socket: args.control_socket.clone(),
        metrics_listen: args.metrics_listen,
        user: args.user.clone(),
        acme_domains: args.acme_domains.clone(),
        acme_directory: args.acme_directory.clone(),
        acme_ca: args.acme_ca.clone(),
    };
    let config_path = config::config_path(args.config.clone());
    let settings = config::load(config_path.as_deref(), &ov)?;
    config::check_files(&settings)?;
    if args.check_config {
        return check_config(&settings);
    }

    // Before the TUN device exists, so its addresses are not among them.
    let hosts = settings.generated_cert.then(|| {
        banner::reachable_hosts(settings.listen.ip(), |a| own_tunnel_address(&settings, a))
    });
    let iphttps = match &settings.iphttps {
        Some(i) => Some(iphttps::Service::new(i, &settings.ipv6_dns)?),
        None => None,
    };
    if let Some(u) = &settings.user {
        privdrop::lookup(u)?;
    }
    // The listener and the TUN device first: a server that cannot start
    // must not have created (and not shown) a user's password.
    let listener = bind(settings.listen).await?;
    let tun = crate::tun::create(
        Some(&settings.tun_name),
        settings.pool.first_host(),
        settings.pool.prefix_len(),
        None,
        settings.mtu,
    )?;
    if let Some(p) = settings.ipv6_prefix {
        let addr = own_ipv6(p);
        tun.add_address_v6(addr, 64)
            .with_context(|| format!("adding {addr}/64 to the TUN device"))?;
    }
    if let (Some(i), Some(service)) = (&settings.iphttps, &iphttps) {
        let addr = service.pool.server_addr();
        tun.add_address_v6(addr, i.pool.prefix_len())
            .with_context(|| format!("adding {addr}/{} to the TUN device", i.pool.prefix_len()))?;
        info!(
            pool = %format!("{}/{}", i.pool.addr(), i.pool.prefix_len()),
            auth = if i.auth_none { "none" } else { "certificate" },
            server_names = %i.server_names.join(","),
            default_route = i.default_route,
            routes = i.routes.len(),
            "IP-HTTPS enabled"
        );
    }
    route_named_pools(&settings, &tun).await?;
    let zero = match hosts {
        Some(hosts) => Some((
            ensure_zero_config(&settings.state_dir, &settings.users_file, &hosts)?,
            hosts,
        )),
        None => None,
    };
    if let Some(a) = &settings.acme {
        acme::ensure_placeholder(&settings.state_dir, a)?;
    }
    let tls = load_tls(&settings).with_context(|| tls_fields(&settings))?;
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
    let uses_users = settings.auth_order.contains(&config::AuthSource::Users);
    let users = if uses_users || settings.users_file.exists() {
        auth::Users::load(&settings.users_file)?
    } else {
        auth::Users::empty()
    };
    let pool = Pool::new(settings.pool);
    let named_pools = settings
        .pools
        .iter()
        .map(|(n, net)| (n.clone(), Pool::new(*net)))
        .collect();
    check_forwarding(&settings);
    let names = users.names();
    if names.is_empty() && uses_users {
        warn!(
            users_file = %settings.users_file.display(),
            "the users file has no users: nobody can log in until one is added with `tunnel443 user add`"
        );
    }
    if let Some((z, hosts)) = &zero {
        let u = banner::BannerUsers {
            created: z.password.as_deref().map(|pw| (z.user.as_str(), pw)),
            names: &names,
            file: &settings.users_file,
        };
        for line in banner::lines(
            &u,
            &hex::encode(z.cert_sha256),
            hosts,
            settings.listen.port(),
        ) {
            println!("tunnel443: {line}");
        }
    }
    let router = Arc::new(router::Router::default());
    crate::tasks::spawn(router.clone().run_tun_reader(tun.clone()));

    info!(
        listen = %settings.listen,
        tun = %settings.tun_name,
        pool = %settings.pool,
        pool_size = pool.capacity(),
        users_file = %settings.users_file.display(),
        "server started"
    );
    let eap_tls = eap_tls_config(&settings)?;
    let acme_challenges = settings
        .acme
        .is_some()
        .then(Arc::<acme::Challenges>::default);
    let radius = settings.radius.clone().map(|r| {
        info!(
            servers = %r.servers.iter().map(|s| s.auth.to_string()).collect::<Vec<_>>().join(","),
            nas_identifier = %r.nas_identifier,
            order = %order_names(&settings.auth_order),
            "RADIUS enabled"
        );
        radius::Radius::start(r)
    });
    let admission =
        admission::Admission::new(settings.limits.clone(), !proxy_protocol_on(&settings));
    crate::tasks::spawn(admission.clone().run_housekeeping());
    let shared = Arc::new(Shared {
        auth_order: RwLock::new(Arc::new(settings.auth_order.clone())),
        config_path: config_path.clone(),
        overrides: ov.clone(),
        admission,
        throttle: throttle::Throttle::default(),
        settings,
        tls: RwLock::new(tls),
        plain_hashes,
        users,
        pool,
        named_pools,
        router,
        tun,
        iphttps,
        sessions: registry::Registry::new(),
        stats: stats::Stats::default(),
        acme: acme_challenges.clone(),
        radius,
        eap_tls: RwLock::new(eap_tls),
    });
    let _control = match &shared.settings.control_socket {
        Some(path) => control::start(path, shared.clone()).await?,
        None => None,
    };
    let metrics = match shared.settings.metrics_listen {
        Some(addr) => Some(metrics::start(addr, shared.clone()).await?),
        None => None,
    };
    let dae = match &shared.radius {
        Some(r) => {
            let first = match r.settings().dae_listen {
                Some(addr) => {
                    let sock = radius::dae::bind(addr).await?;
                    info!(listen = %addr, "RADIUS dynamic authorization (Disconnect/CoA) listening");
                    Some((addr, sock))
                }
                None => None,
            };
            Some(crate::tasks::spawn(radius::dae::serve(
                first,
                r.clone(),
                shared.sessions.clone(),
                r.controls.clone(),
            )))
        }
        None => None,
    };
    let accounting = shared
        .radius
        .clone()
        .filter(|r| r.settings().accounting)
        .map(|r| {
            radius::acct::Accounting::start(
                r,
                shared.sessions.clone(),
                Arc::clone(&shared.radius.as_ref().expect("radius").extras),
                shared.settings.listen,
            )
        });
    if let Some(u) = &shared.settings.user {
        // Everything privileged is done: :443, the TUN device and its
        // addresses, the control socket, the state files.
        let users = shared.settings.users_file.as_path();
        let own: Vec<&std::path::Path> = users.exists().then_some(users).into_iter().collect();
        privdrop::drop_to(u, &own)?;
        info!(user = %u, "privileges dropped: running as {u} with CAP_NET_ADMIN only");
    }
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    let accept = crate::tasks::spawn(listener::run(listener, shared.clone()));
    let watch_users = crate::tasks::spawn(watch_users_file(shared.clone()));
    let renew = acme_challenges.map(|c| crate::tasks::spawn(acme::run(shared.clone(), c)));

    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                reload(&shared, "SIGHUP");
            }
        }
    }
    info!(
        sessions = sstp::active() + iphttps::active(),
        "shutting down: disconnecting every session"
    );
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    accept.abort();
    if let Some(m) = metrics {
        m.abort();
    }
    watch_users.abort();
    if let Some(d) = dae {
        d.abort();
    }
    shared
        .sessions
        .close_all(registry::EndCause::Shutdown, "server shutting down");
    if let Some(r) = renew {
        r.abort();
    }
    // Sessions finish their Call Disconnect exchange (or time out) on their own.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    while sstp::active() + iphttps::active() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if let (Some(a), Some(r)) = (accounting, &shared.radius) {
        // The Stops of the sessions just closed, then Accounting-Off.
        let s = r.settings();
        a.shutdown(s.timeout * s.servers.len() as u32 + Duration::from_secs(1))
            .await;
    }
    info!(left = sstp::active() + iphttps::active(), "stopped");
    Ok(())
}

/// Re-reads the users file whenever it changes, so that `tunnel443 user
/// add` takes effect without a SIGHUP.
async fn watch_users_file(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(auth::POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Some(result) = shared.users.reload_if_changed(&shared.settings.users_file) {
            log_users_reload(&shared, "changed", result);
        }
    }
}

/// One log line per reload; `cause` is one word (`changed`, `SIGHUP`).
fn log_users_reload(shared: &Shared, cause: &str, result: anyhow::Result<usize>) {
    let file = shared.settings.users_file.display();
    match result {
        Ok(0) => {
            warn!(users_file = %file, cause = %cause, "users file reloaded: it has no users, nobody can log in")
        }
        Ok(n) => info!(users = n, users_file = %file, cause = %cause, "users file reloaded"),
        Err(e) => warn!(
            users_file = %file,
            cause = %cause,
            error = %format!("{e:#}"),
            "users file reload failed; keeping the old users"
        ),
    }
}

/// `1 user`, `2 users`.
fn users(n: usize) -> String {
    format!("{n} user{}", if n == 1 { "" } else { "s" })
}

/// SIGHUP and `ctl reload`: re-reads the users file and the certificate;
/// returns what changed, one line each (`cause` names who asked).
pub(crate) fn reload(shared: &Shared, cause: &str) -> Vec<String> {
    let mut changes = Vec::new();
    let before = shared.users.names();
    let result = shared.users.reload(&shared.settings.users_file);
    changes.push(match &result {
        Ok(_) => {
            let after = shared.users.names();
            let added: Vec<_> = after.iter().filter(|u| !before.contains(u)).collect();
            let removed: Vec<_> = before.iter().filter(|u| !after.contains(u)).collect();
            let join = |v: &[&String]| v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
            match (added.is_empty(), removed.is_empty()) {
                (true, true) => format!("users file: unchanged ({})", users(after.len())),
                _ => {
                    let mut line = format!("users file: {}", users(after.len()));
                    if !added.is_empty() {
                        line += &format!("; added {}", join(&added));
                    }
                    if !removed.is_empty() {
                        line += &format!("; removed {}", join(&removed));
                    }
                    line
                }
            }
        }
        Err(e) => format!("users file: reload failed, keeping the old users: {e:#}"),
    });
    log_users_reload(shared, cause, result);
    if let Some(r) = &shared.radius {
        changes.push(match reload_radius(shared, r) {
            Ok(line) => {
                info!(cause = %cause, summary = %line, "RADIUS configuration and secrets re-read");
                format!("radius: {line}")
            }
            Err(e) => {
                warn!(
                    cause = %cause,
                    error = %format!("{e:#}"),
                    "RADIUS reload failed; keeping the old configuration"
                );
                format!("radius: reload failed, keeping the old configuration: {e:#}")
            }
        });
    }
    changes.extend(reload_certificates(shared, cause));
    changes
}

/// The TLS certificate and the EAP-TLS files (SIGHUP, `ctl reload`, or
/// ACME's new certificate).
pub(crate) fn reload_certificates(shared: &Shared, cause: &str) -> Vec<String> {
    reload_tls(shared, cause)
        .into_iter()
        .chain(reload_eap_tls(shared, cause))
        .collect()
}

/// Loads `[eap_tls]`'s certificate, key and client CA again: new sessions
/// use them. What happened, in one line (`None` without local EAP-TLS).
fn reload_eap_tls(shared: &Shared, cause: &str) -> Option<String> {
    shared.settings.eap_tls.as_ref()?;
    Some(match eap_tls_config(&shared.settings) {
        Ok(c) => {
            *shared.eap_tls.write().expect("eap_tls lock") = c;
            info!(
                cause,
                "EAP-TLS certificate, key and client CA reloaded (new sessions use them)"
            );
            "eap-tls: certificate, key and client CA reloaded".to_string()
        }
        Err(e) => {
            warn!(cause, error = %format!("{e:#}"), "EAP-TLS reload failed; keeping the old files");
            format!("eap-tls: reload failed, keeping the old files: {e:#}")
        }
    })
}

/// Reads the configuration file again and applies its `[radius]` section
/// (secrets re-read) and `[auth] order`: new logins use them, live
/// sessions keep going. Nothing changes on any error (it names the field).
fn reload_radius(shared: &Shared, r: &radius::Radius) -> anyhow::Result<String> {
    let s = config::load(shared.config_path.as_deref(), &shared.overrides)?;
    let Some(new) = s.radius else {
        anyhow::bail!("radius: removing the [radius] section needs a restart");
    };
    let line = format!(
        "servers {}; order {}; secrets re-read",
        new.servers
            .iter()
            .map(|s| s.auth.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        order_names(&s.auth_order)
    );
    r.reconfigure(new)?;
    *shared.auth_order.write().expect("auth order lock") = Arc::new(s.auth_order);
    Ok(line)
}

/// `[auth] order` in words: `radius,users`.
fn order_names(order: &[config::AuthSource]) -> String {
    order
        .iter()
        .map(|s| match s {
            config::AuthSource::Radius => "radius",
            config::AuthSource::Users => "users",
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Loads the certificate again (SIGHUP, `ctl reload`, or ACME's new one):
/// new sessions use it, live ones keep the hashes their handshake saw.
/// What changed, in one line (`None` in plain-HTTP mode).
pub(crate) fn reload_tls(shared: &Shared, cause: &str) -> Option<String> {
    let TlsMode::Tls { .. } = shared.settings.tls else {
        return None;
    };
    let old = shared.tls_snapshot().1.sha256;
    Some(match load_tls(&shared.settings) {
        Ok(t) => {
            let new = t.as_ref().map(|t| t.hashes.sha256);
            *shared.tls.write().expect("tls lock") = t;
            info!(cause, "certificate reloaded (new sessions use it)");
            match new {
                Some(h) if h != old => format!(
                    "certificate: changed, new SHA-256 {} (new sessions use it)",
                    hex::encode(h)
                ),
                _ => "certificate: unchanged".to_string(),
            }
        }
        Err(e) => {
            warn!(cause, error = %format!("{e:#}"), "certificate reload failed; keeping the old one");
            format!("certificate: reload failed, keeping the old one: {e:#}")
        }
    })
}

/// The current time as an HTTP date (RFC 9110 §5.6.7), for the server's
/// HTTP answers (SSTP's and the website's).
fn httpdate() -> String {
    httphead::date::http_date(std::time::SystemTime::now())
}
