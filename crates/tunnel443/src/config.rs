//! Server configuration: the TOML file (`/etc/tunnel443/tunnel443.toml`),
//! its defaults, and the validation that turns it into [`ServerSettings`].
//!
//! Every key is optional; a missing file means the built-in zero-config
//! default. Unknown keys are errors (`deny_unknown_fields`), and every
//! validation error names the field it is about.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;

use crate::pool::Ipv4Net;

pub mod radius;
pub use radius::{AuthSource, RadiusSettings};

/// Where a packaged install keeps its configuration.
pub const DEFAULT_CONFIG: &str = "/etc/tunnel443/tunnel443.toml";
/// Generated certificate, key, users file.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/tunnel443";
/// `tun.mtu` unless configured: the server's device MTU, and the largest
/// IP-HTTPS link MTU a client of ours gets by default
/// (`iphttps.link_mtu_max`). Fewer, larger packets carry more: a 64 KiB
/// link between our own IP-HTTPS ends needs no segmenting or coalescing
/// (BENCHMARKS.md).
pub const DEFAULT_TUN_MTU: u16 = u16::MAX;

/// The PPP MRU an SSTP server asks for in LCP: min(`tun.mtu`, this). SSTP
/// frames carry at most 4095 bytes (MS-SSTP §2.2.3: a 12-bit length, the
/// 4-byte header and PPP's protocol field included). Peers that ask for
/// less (MRU 1500: Windows, sstpc, SoftEther's client) get packets of at
/// most their MRU: IPv4 fragmented or answered with Fragmentation Needed
/// (DF), IPv6 with Packet Too Big.
pub const SSTP_MAX_MRU: u16 = 4000;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Address and port of the HTTPS listener.
    pub listen: Option<SocketAddr>,
    /// Directory for generated state (certificate, key, users file).
    pub state_dir: Option<PathBuf>,
    /// Users file (see `ppp::users`); default `STATE_DIR/users`.
    pub users_file: Option<PathBuf>,
    /// The user the server becomes after start, keeping only
    /// CAP_NET_ADMIN (unset: it stays root).
    pub user: Option<String>,
    #[serde(default)]
    pub tls: TlsSection,
    #[serde(default)]
    pub sstp: SstpSection,
    #[serde(default)]
    pub ipv4: Ipv4Section,
    #[serde(default)]
    pub ipv6: Ipv6Section,
    #[serde(default)]
    pub tun: TunSection,
    #[serde(default)]
    pub limits: LimitsSection,
    #[serde(default)]
    pub iphttps: IphttpsSection,
    #[serde(default)]
    pub web: crate::web_config::WebSection,
    #[serde(default)]
    pub control: ControlSection,
    #[serde(default)]
    pub metrics: MetricsSection,
    pub radius: Option<radius::RadiusSection>,
    #[serde(default)]
    pub auth: radius::AuthSection,
    #[serde(default)]
    pub eap_tls: EapTlsSection,
}

/// `[control]`: the socket `tunnel443 ctl` talks to.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlSection {
    /// Unix socket path; default `/run/tunnel443/control.sock`; `""` turns it off.
    pub socket: Option<PathBuf>,
}

/// `[metrics]`: the Prometheus endpoint (off unless `listen` is set).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    pub listen: Option<SocketAddr>,
}

/// `[eap_tls]`: local EAP-TLS (`[sstp] auth` lists "eap-tls").
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EapTlsSection {
    /// PEM CA certificates that client certificates must chain to.
    pub client_ca: Option<PathBuf>,
    /// Where the user name comes from: "subject-cn" (default),
    /// "san-email", "san-dns".
    pub user_name: Option<String>,
    /// Our EAP-TLS certificate and key; default the TLS ones.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// Validated `[eap_tls]` settings.
#[derive(Debug, Clone)]
pub struct EapTlsSettings {
    pub client_ca: PathBuf,
    pub user_name: crate::eap_tls::UserNameFrom,
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IphttpsSection {
    /// The pool (a /64 or shorter, e.g. a /48) from which every IP-HTTPS
    /// client gets its own /64. Unset: IP-HTTPS disabled.
    pub prefix: Option<String>,
    /// PEM CA certificates that client certificates must chain to.
    pub client_ca: Option<PathBuf>,
    /// "certificate" (default, mutual TLS) or "none" (explicit opt-in).
    pub auth: Option<String>,
    /// Request paths (default "/IPHTTPS" and "/IPTLS").
    pub paths: Option<Vec<String>>,
    /// TLS server names (SNI) reserved for IP-HTTPS: a handshake for one of
    /// them must present a client certificate, and IP-HTTPS is refused
    /// (421) on every other name. Empty: IP-HTTPS on any name, a missing
    /// certificate refused with 403 after the handshake.
    pub server_names: Option<Vec<String>>,
    /// Advertise the server as the clients' default router (default true).
    pub default_route: Option<bool>,
    /// IPv6 prefixes advertised as routes (RFC 4191 Route Information).
    pub routes: Option<Vec<String>>,
    /// The largest link MTU given to a client of ours that announces a
    /// larger one than 1280 (default: `tun.mtu`; 1280 turns it off).
    pub link_mtu_max: Option<u16>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// PEM certificate chain (leaf first). Default: generated in the state dir.
    pub cert: Option<PathBuf>,
    /// PEM private key.
    pub key: Option<PathBuf>,
    /// Serve plain HTTP (behind a TLS-terminating load balancer).
    #[serde(default)]
    pub plain_http: bool,
    /// In plain-HTTP mode: SHA-256 (hex) of the DER of the certificate the
    /// load balancer presents; the SSTP crypto binding uses it.
    pub cert_sha256: Option<String>,
    /// In plain-HTTP mode: SHA-1 (hex) of the same certificate, for clients
    /// that bind with SHA-1.
    pub cert_sha1: Option<String>,
    /// Expect a PROXY protocol (v1 or v2) header on every connection.
    #[serde(default)]
    pub proxy_protocol: bool,
    /// Obtain and renew the certificate with ACME (see `server::acme`).
    pub acme: Option<AcmeSection>,
}

/// `[tls] acme = { domains = [...], contact = "mailto:...", directory = "https://..." }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcmeSection {
    /// DNS names the certificate is for (no wildcards: tls-alpn-01).
    #[serde(default)]
    pub domains: Vec<String>,
    /// Contact URI for the account (`mailto:admin@example.com`).
    pub contact: Option<String>,
    /// The CA's directory URL; default Let's Encrypt.
    pub directory: Option<String>,
    /// PEM certificate that the directory's own HTTPS certificate chains to
    /// (a test CA such as pebble); default: the system's roots.
    pub ca: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SstpSection {
    /// Hash protocols offered for the crypto binding: "sha256", "sha1".
    pub hash_protocols: Option<Vec<String>>,
    /// Authentication protocols offered in order: "mschapv2", "eap-mschapv2",
    /// "chap-md5", "pap".
    pub auth: Option<Vec<String>>,
    /// The only name (Host header and SNI) SSTP answers on; requests for
    /// other names get the website.
    pub host: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ipv4Section {
    /// Client address pool as a CIDR; the server uses its first host address.
    pub pool: Option<String>,
    /// Named pools RADIUS can choose with Framed-Pool: name = CIDR.
    pub pools: Option<std::collections::BTreeMap<String, String>>,
    /// DNS servers pushed with IPCP (at most two).
    pub dns: Option<Vec<Ipv4Addr>>,
    /// Whether clients may reach each other's tunnel addresses (IPv4 and
    /// IPv6) through the server [default: false].
    pub client_to_client: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ipv6Section {
    /// A /64 shared by the clients: each gets `prefix::<its IPv6CP
    /// interface identifier>`, announced by Router Advertisement. Unset:
    /// no IPv6CP.
    pub prefix: Option<String>,
    /// DNS servers announced with RDNSS.
    pub dns: Option<Vec<Ipv6Addr>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TunSection {
    /// Name of the server's TUN device.
    pub name: Option<String>,
    /// MTU of the TUN device: default [`DEFAULT_TUN_MTU`]. SSTP sessions
    /// ask for min(this, [`SSTP_MAX_MRU`]) as their PPP MRU.
    pub mtu: Option<u16>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Most connections at once.
    pub max_sessions: Option<usize>,
    /// Seconds a client has for the TLS handshake and the HTTP request head.
    pub handshake_timeout: Option<u64>,
    /// Admission control (`crate::server::admission`).
    pub max_per_source: Option<usize>,
    pub max_handshakes: Option<usize>,
    pub max_handshakes_per_source: Option<usize>,
    pub handshake_budget: Option<u64>,
    pub handshake_budget_min: Option<u64>,
}

/// Hash protocols the server offers (MS-SSTP §2.2.8 bitmask values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashOffer {
    pub sha1: bool,
    pub sha256: bool,
}

/// Authentication methods, in the order the server offers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    MsChapV2,
    EapMsChapV2,
    ChapMd5,
    Pap,
    EapTls,
}

impl AuthMethod {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "mschapv2" => Self::MsChapV2,
            "eap-mschapv2" => Self::EapMsChapV2,
            "chap-md5" => Self::ChapMd5,
            "pap" => Self::Pap,
            "eap-tls" => Self::EapTls,
            _ => return None,
        })
    }
}

/// How the certificate hash for the crypto binding is obtained.
#[derive(Debug, Clone)]
pub enum TlsMode {
    /// We terminate TLS with this certificate and key (PEM files).
    Tls { cert: PathBuf, key: PathBuf },
    /// A load balancer terminates TLS; we are told its certificate's hashes.
    PlainHttp {
        cert_sha256: Option<[u8; 32]>,
        cert_sha1: Option<[u8; 20]>,
        proxy_protocol: bool,
    },
}

/// Let's Encrypt's production directory.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// Validated ACME settings; the certificate and key live in
/// `STATE_DIR/acme/` and `tls` points at them.
#[derive(Debug, Clone)]
pub struct AcmeSettings {
    /// Lower case, no trailing dot.
    pub domains: Vec<String>,
    pub contact: Option<String>,
    pub directory: String,
    pub ca: Option<PathBuf>,
}

/// Validated server settings.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    /// `user`: drop to this user after start (`None`: stay root).
    pub user: Option<String>,
    pub state_dir: PathBuf,
    pub users_file: PathBuf,
    pub tls: TlsMode,
    /// True when `tls` points at the generated certificate.
    pub generated_cert: bool,
    /// Set when ACME obtains the certificate `tls` points at.
    pub acme: Option<AcmeSettings>,
    pub hash_offer: HashOffer,
    pub auth: Vec<AuthMethod>,
    pub pool: Ipv4Net,
    /// `ipv4.pools`: named pools for RADIUS's Framed-Pool, in name order.
    pub pools: Vec<(String, Ipv4Net)>,
    pub dns: Vec<Ipv4Addr>,
    /// `[ipv4] client_to_client`: packets from one client to another
    /// client's address are forwarded (else dropped and counted).
    pub client_to_client: bool,
    pub ipv6_prefix: Option<ipv6nd::Prefix64>,
    pub ipv6_dns: Vec<Ipv6Addr>,
    pub tun_name: String,
    pub mtu: u16,
    pub handshake_timeout: Duration,
    /// `[limits]`: connection caps and handshake budgets.
    pub limits: crate::server::admission::Limits,
    /// IP-HTTPS, when a prefix pool is configured.
    pub iphttps: Option<IphttpsSettings>,
    /// The control socket (`None`: off).
    pub control_socket: Option<PathBuf>,
    /// The Prometheus endpoint (`None`: off).
    pub metrics_listen: Option<SocketAddr>,
    /// `[web]` and `[sstp] host`: the website sharing the listener.
    pub web: crate::web_config::WebSettings,
    /// RADIUS, when `[radius]` is configured.
    pub radius: Option<RadiusSettings>,
    /// Who verifies credentials, in order.
    pub auth_order: Vec<AuthSource>,
    /// `[eap_tls]`, when `auth` lists EAP-TLS.
    pub eap_tls: Option<EapTlsSettings>,
}

/// Validated `[iphttps]` settings.
#[derive(Debug, Clone)]
pub struct IphttpsSettings {
    /// The pool; subnet 0 is the server's (its TUN address `pool::1`),
    /// clients get /64s 1, 2, ...
    pub pool: ipv6nd::Ipv6Prefix,
    /// CA for client certificates; `None` only with `auth = "none"`.
    pub client_ca: Option<PathBuf>,
    /// True when `auth = "none"`: no client certificate required.
    pub auth_none: bool,
    pub paths: Vec<String>,
    /// SNI names reserved for IP-HTTPS (lower case, no trailing dot).
    pub server_names: Vec<String>,
    /// Whether RAs make the server the clients' default router.
    pub default_route: bool,
    /// Prefixes advertised as Route Information options.
    pub routes: Vec<ipv6nd::Ipv6Prefix>,
    /// `link_mtu_max`: the largest link MTU a client of ours may get
    /// (1280: every client gets the spec's 1280).
    pub link_mtu_max: u16,
}

/// Command-line values that override the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub user: Option<String>,
    pub state_dir: Option<PathBuf>,
    pub users_file: Option<PathBuf>,
    pub tun_name: Option<String>,
    pub pool: Option<String>,
    pub ipv6_prefix: Option<String>,
    pub iphttps_prefix: Option<String>,
    pub iphttps_client_ca: Option<PathBuf>,
    pub iphttps_server_names: Vec<String>,
    pub control_socket: Option<PathBuf>,
    pub metrics_listen: Option<SocketAddr>,
    pub acme_domains: Vec<String>,
    pub acme_directory: Option<String>,
    pub acme_ca: Option<PathBuf>,
}

/// The configuration file to read: the one given, else
/// [`DEFAULT_CONFIG`] when it exists, else none (the built-in defaults).
pub fn config_path(given: Option<PathBuf>) -> Option<PathBuf> {
    given.or_else(|| {
        let p = PathBuf::from(DEFAULT_CONFIG);
        p.exists().then_some(p)
    })
}

fn read_file(path: Option<&Path>) -> anyhow::Result<FileConfig> {
    match path {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            parse(&text).with_context(|| format!("in {}", p.display()))
        }
        None => Ok(FileConfig::default()),
    }
}

/// Reads `path` (if given) and applies the overrides.
pub fn load(path: Option<&Path>, ov: &Overrides) -> anyhow::Result<ServerSettings> {
    validate(read_file(path)?, ov)
}

/// The state directory and the users file, from what was given (command
/// line first, then the file) and the defaults.
fn state_paths(state_dir: Option<PathBuf>, users_file: Option<PathBuf>) -> (PathBuf, PathBuf) {
    let state_dir = state_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
    let users_file = users_file.unwrap_or_else(|| state_dir.join("users"));
    (state_dir, users_file)
}

/// The users file a server with this configuration file and these
/// command-line values uses (for `tunnel443 user`); only `state_dir` and
/// `users_file` are taken from the file.
pub fn users_file(
    config: Option<&Path>,
    state_dir: Option<PathBuf>,
    users_file: Option<PathBuf>,
) -> anyhow::Result<PathBuf> {
    let f = read_file(config)?;
    Ok(state_paths(state_dir.or(f.state_dir), users_file.or(f.users_file)).1)
}

/// Checks that the files the settings name exist (and can be looked at),
/// naming the field of each missing one. A missing users file is fine only
/// when the server will create it ([`ServerSettings::creates_users_file`]).
pub fn check_files(s: &ServerSettings) -> anyhow::Result<()> {
    let mut files: Vec<(&str, &Path)> = Vec::new();
    match (&s.tls, &s.acme) {
        // ACME writes them; the directory's CA must exist.
        (_, Some(a)) => files.extend(a.ca.as_deref().map(|ca| ("tls.acme.ca", ca))),
        (TlsMode::Tls { cert, key }, None) if !s.generated_cert => {
            files.push(("tls.cert", cert));
            files.push(("tls.key", key));
        }
        _ => {}
    }
    if let Some(ca) = s.iphttps.as_ref().and_then(|i| i.client_ca.as_deref()) {
        files.push(("iphttps.client_ca", ca));
    }
    for (field, path) in files {
        std::fs::metadata(path).with_context(|| format!("{field}: {}", path.display()))?;
    }
    if !s.creates_users_file() && s.auth_order.contains(&AuthSource::Users) {
        std::fs::metadata(&s.users_file).with_context(|| {
            format!(
                "users_file: {} (create it with `tunnel443 user add NAME --users-file {}`)",
                s.users_file.display(),
                s.users_file.display()
            )
        })?;
    }
    // Secrets: refused when group or others may read them.
    if let (TlsMode::Tls { key, .. }, None) = (&s.tls, &s.acme) {
        if key.exists() {
            crate::state::ensure_private("tls.key", key)?;
        }
    }
    if s.auth_order.contains(&AuthSource::Users) && s.users_file.exists() {
        crate::state::ensure_private("users_file", &s.users_file)?;
    }
    if let Some(e) = &s.eap_tls {
        for (field, path) in [
            ("eap_tls.client_ca", &e.client_ca),
            ("eap_tls.cert", &e.cert),
            ("eap_tls.key", &e.key),
        ] {
            std::fs::metadata(path).with_context(|| format!("{field}: {}", path.display()))?;
        }
        crate::state::ensure_private("eap_tls.key", &e.key)?;
    }
    Ok(())
}

impl ServerSettings {
    /// True when a missing users file is created at start with the
    /// zero-config user: the certificate is the generated one too.
    pub fn creates_users_file(&self) -> bool {
        self.generated_cert
    }

    /// The PPP MRU SSTP sessions ask for: min(`tun.mtu`, [`SSTP_MAX_MRU`]).
    pub fn sstp_mru(&self) -> u16 {
        self.mtu.min(SSTP_MAX_MRU)
    }
}

/// Parses an IPv6 prefix for `field`; set host bits are an error that names
/// the network meant.
fn v6_prefix(field: &str, text: &str) -> anyhow::Result<ipv6nd::Ipv6Prefix> {
    let parsed = text.split_once('/').and_then(|(a, l)| {
        let len = l.parse::<u8>().ok().filter(|l| *l <= 128)?;
        Some((a.parse::<Ipv6Addr>().ok()?, len))
    });
    let Some((addr, len)) = parsed else {
        bail!("{field}: {text} is not an IPv6 prefix (address/length, e.g. fd00:1::/48)");
    };
    ipv6nd::Ipv6Prefix::new(addr, len).map_err(|_| {
        anyhow::anyhow!(
            "{field}: {text} has host bits set: the network address is {}",
            ipv6nd::Ipv6Prefix::truncating(addr, len)
        )
    })
}

/// `[tls] acme` and the `--acme-*` overrides; `None` when neither names a
/// domain.
fn acme_settings(f: Option<&AcmeSection>, ov: &Overrides) -> anyhow::Result<Option<AcmeSettings>> {
    let domains: Vec<String> = if ov.acme_domains.is_empty() {
        f.map(|a| a.domains.clone()).unwrap_or_default()
    } else {
        ov.acme_domains.clone()
    };
    if domains.is_empty() {
        if f.is_some() {
            bail!("tls.acme.domains: must name at least one DNS name");
        }
        if ov.acme_directory.is_some() || ov.acme_ca.is_some() {
            bail!("--acme-directory/--acme-ca: need --acme-domain (or tls.acme.domains)");
        }
        return Ok(None);
    }
    let mut clean = Vec::new();
    for d in &domains {
        let d = d.trim_end_matches('.').to_ascii_lowercase();
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if d.parse::<IpAddr>().is_ok() || d.split('.').count() < 2 || !d.split('.').all(label_ok) {
            bail!("tls.acme.domains: \"{d}\" is not a DNS name with a dot (no addresses, no wildcards: tls-alpn-01 validates each name on this listener)");
        }
        if !clean.contains(&d) {
            clean.push(d);
        }
    }
    let directory = ov
        .acme_directory
        .clone()
        .or_else(|| f.and_then(|a| a.directory.clone()))
        .unwrap_or_else(|| LETS_ENCRYPT.to_string());
    if !directory.starts_with("https://") {
        bail!("tls.acme.directory: {directory} is not an https:// URL");
    }
    let contact = f.and_then(|a| a.contact.clone());
    if let Some(c) = &contact {
        if !c.starts_with("mailto:") {
            bail!("tls.acme.contact: {c} is not a mailto: URI (e.g. mailto:admin@example.com)");
        }
    }
    Ok(Some(AcmeSettings {
        domains: clean,
        contact,
        directory,
        ca: ov.acme_ca.clone().or_else(|| f.and_then(|a| a.ca.clone())),
    }))
}

/// Parses the TOML text; errors carry the key and line (from `toml`).
pub fn parse(text: &str) -> anyhow::Result<FileConfig> {
    toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))
}

fn hex_array<const N: usize>(field: &str, s: &str) -> anyhow::Result<[u8; N]> {
    let clean: String = s.chars().filter(|c| *c != ':').collect();
    let v = hex::decode(&clean).with_context(|| format!("{field}: not hex"))?;
    v.try_into()
        .map_err(|v: Vec<u8>| anyhow::anyhow!("{field}: {} bytes, want {N}", v.len()))
}

/// `ipv4.pools`: each a network of at least 4 addresses, overlapping
/// neither `ipv4.pool` nor another named pool.
fn named_pools(
    main: Ipv4Net,
    pools: std::collections::BTreeMap<String, String>,
) -> anyhow::Result<Vec<(String, Ipv4Net)>> {
    let mut out: Vec<(String, Ipv4Net)> = Vec::new();
    let overlap = |a: Ipv4Net, b: Ipv4Net| a.contains(b.network()) || b.contains(a.network());
    for (name, text) in pools {
        let field = format!("ipv4.pools.{name}");
        if name.trim().is_empty() {
            bail!("ipv4.pools: a pool name must not be empty");
        }
        let net = Ipv4Net::parse_network(&text).map_err(|e| anyhow::anyhow!("{field}: {e}"))?;
        if net.prefix_len() > 30 {
            bail!("{field}: {net} is too small: it needs at least 4 addresses (/30 or shorter)");
        }
        if overlap(net, main) {
            bail!("{field}: {net} overlaps ipv4.pool {main}");
        }
        if let Some((other, o)) = out.iter().find(|(_, o)| overlap(net, *o)) {
            bail!("{field}: {net} overlaps ipv4.pools.{other} {o}");
        }
        out.push((name, net));
    }
    Ok(out)
}

pub fn validate(f: FileConfig, ov: &Overrides) -> anyhow::Result<ServerSettings> {
    let (state_dir, users_file) = state_paths(
        ov.state_dir.clone().or(f.state_dir),
        ov.users_file.clone().or(f.users_file),
    );
    let listen = ov
        .listen
        .or(f.listen)
        .unwrap_or_else(|| SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 443));

    let acme = acme_settings(f.tls.acme.as_ref(), ov)?;
    if acme.is_some() {
        if f.tls.cert.is_some() || f.tls.key.is_some() {
            bail!("tls.acme: not with tls.cert/tls.key (ACME obtains the certificate)");
        }
        if f.tls.plain_http {
            bail!(
                "tls.acme: not with tls.plain_http = true (the load balancer has the certificate)"
            );
        }
    }
    let (tls, generated_cert) = if acme.is_some() {
        let dir = state_dir.join("acme");
        (
            TlsMode::Tls {
                cert: dir.join("cert.pem"),
                key: dir.join("key.pem"),
            },
            false,
        )
    } else if f.tls.plain_http {
        if f.tls.cert.is_some() || f.tls.key.is_some() {
            bail!("tls.cert/tls.key: not used with tls.plain_http = true");
        }
        let cert_sha256 = f
            .tls
            .cert_sha256
            .as_deref()
            .map(|s| hex_array::<32>("tls.cert_sha256", s))
            .transpose()?;
        let cert_sha1 = f
            .tls
            .cert_sha1
            .as_deref()
            .map(|s| hex_array::<20>("tls.cert_sha1", s))
            .transpose()?;
        if cert_sha256.is_none() && cert_sha1.is_none() {
            bail!("tls.cert_sha256: required with tls.plain_http = true (the hash of the load balancer's certificate)");
        }
        (
            TlsMode::PlainHttp {
                cert_sha256,
                cert_sha1,
                proxy_protocol: f.tls.proxy_protocol,
            },
            false,
        )
    } else {
        if f.tls.proxy_protocol {
            bail!("tls.proxy_protocol: only with tls.plain_http = true");
        }
        if f.tls.cert_sha256.is_some() || f.tls.cert_sha1.is_some() {
            bail!("tls.cert_sha256: only with tls.plain_http = true (otherwise it is computed from tls.cert)");
        }
        match (f.tls.cert, f.tls.key) {
            (Some(cert), Some(key)) => (TlsMode::Tls { cert, key }, false),
            (None, None) => (
                TlsMode::Tls {
                    cert: state_dir.join("cert.pem"),
                    key: state_dir.join("key.pem"),
                },
                true,
            ),
            (Some(_), None) => bail!("tls.key: required when tls.cert is set"),
            (None, Some(_)) => bail!("tls.cert: required when tls.key is set"),
        }
    };

    let web =
        crate::web_config::validate(f.web, f.sstp.host, matches!(tls, TlsMode::PlainHttp { .. }))?;

    let hash_offer = match f.sstp.hash_protocols {
        None => HashOffer {
            sha1: true,
            sha256: true,
        },
        Some(list) => {
            let mut h = HashOffer {
                sha1: false,
                sha256: false,
            };
            for s in &list {
                match s.as_str() {
                    "sha1" => h.sha1 = true,
                    "sha256" => h.sha256 = true,
                    other => {
                        bail!("sstp.hash_protocols: unknown \"{other}\" (use \"sha256\", \"sha1\")")
                    }
                }
            }
            if !h.sha1 && !h.sha256 {
                bail!("sstp.hash_protocols: must not be empty");
            }
            h
        }
    };

    let auth = match f.sstp.auth {
        None => vec![
            AuthMethod::MsChapV2,
            AuthMethod::EapMsChapV2,
            AuthMethod::Pap,
        ],
        Some(list) => {
            let mut out = Vec::new();
            for s in &list {
                let m = AuthMethod::parse(s).with_context(|| {
                    format!("sstp.auth: unknown \"{s}\" (use \"mschapv2\", \"eap-mschapv2\", \"eap-tls\", \"chap-md5\", \"pap\")")
                })?;
                if out.contains(&m) {
                    bail!("sstp.auth: \"{s}\" listed twice");
                }
                out.push(m);
            }
            if out.is_empty() {
                bail!("sstp.auth: must not be empty");
            }
            if out.contains(&AuthMethod::EapTls) && out.contains(&AuthMethod::EapMsChapV2) {
                bail!("sstp.auth: \"eap-tls\" and \"eap-mschapv2\" both run in PPP's EAP; list one of them");
            }
            out
        }
    };
    let eap_tls = eap_tls_settings(&f.eap_tls, auth.contains(&AuthMethod::EapTls), &tls)?;

    let pool_text = ov
        .pool
        .clone()
        .or(f.ipv4.pool)
        .unwrap_or_else(|| "10.44.0.0/24".to_string());
    let pool = Ipv4Net::parse_network(&pool_text).map_err(|e| anyhow::anyhow!("ipv4.pool: {e}"))?;
    if pool.prefix_len() > 30 {
        bail!("ipv4.pool: {pool} is too small: it needs at least 4 addresses (/30 or shorter)");
    }
    let client_to_client = f.ipv4.client_to_client.unwrap_or(false);
    let pools = named_pools(pool, f.ipv4.pools.unwrap_or_default())?;
    let dns = f.ipv4.dns.unwrap_or_default();
    if dns.len() > 2 {
        bail!("ipv4.dns: at most two servers (IPCP carries a primary and a secondary)");
    }

    let ipv6_prefix = match ov.ipv6_prefix.clone().or(f.ipv6.prefix) {
        None => None,
        Some(text) => {
            let p = v6_prefix("ipv6.prefix", &text)?;
            if p.prefix_len() != 64 {
                bail!("ipv6.prefix: {text} must be a /64 (clients form addresses from their interface identifiers)");
            }
            Some(ipv6nd::Prefix64::of(p.addr()))
        }
    };
    let ipv6_dns = f.ipv6.dns.unwrap_or_default();

    let tun_name = ov
        .tun_name
        .clone()
        .or(f.tun.name)
        .unwrap_or_else(|| "t443s0".to_string());
    if tun_name.is_empty() || tun_name.len() > 15 {
        bail!("tun.name: \"{tun_name}\" must be 1 to 15 characters");
    }
    let mtu = f.tun.mtu.unwrap_or(DEFAULT_TUN_MTU);
    if mtu < 576 {
        bail!("tun.mtu: {mtu} out of range 576..=65535");
    }
    let limits = crate::server::admission::Limits::from_section(&f.limits)?;
    let handshake_timeout = Duration::from_secs(f.limits.handshake_timeout.unwrap_or(10));
    if handshake_timeout.is_zero() {
        bail!("limits.handshake_timeout: must be at least 1 second");
    }

    let iphttps = match ov.iphttps_prefix.clone().or(f.iphttps.prefix) {
        None => {
            if f.iphttps.client_ca.is_some()
                || f.iphttps.auth.is_some()
                || f.iphttps.paths.is_some()
                || f.iphttps.server_names.is_some()
                || f.iphttps.default_route.is_some()
                || f.iphttps.routes.is_some()
                || f.iphttps.link_mtu_max.is_some()
                || !ov.iphttps_server_names.is_empty()
                || ov.iphttps_client_ca.is_some()
            {
                bail!("iphttps.prefix (--iphttps-prefix): required to enable IP-HTTPS; the other [iphttps] keys and --iphttps-* options need it");
            }
            None
        }
        Some(text) => {
            let pool = v6_prefix("iphttps.prefix", &text)?;
            if pool.prefix_len() > 63 {
                bail!("iphttps.prefix: {text} must be shorter than /64 (the server keeps the first /64, each client gets one /64)");
            }
            let auth_none = match f.iphttps.auth.as_deref() {
                None | Some("certificate") => false,
                Some("none") => true,
                Some(o) => bail!("iphttps.auth: \"{o}\" is not \"certificate\" or \"none\""),
            };
            let client_ca = ov.iphttps_client_ca.clone().or(f.iphttps.client_ca);
            if !auth_none && client_ca.is_none() {
                bail!("iphttps.client_ca: required (mutual TLS), or set iphttps.auth = \"none\"");
            }
            if !auth_none && matches!(tls, TlsMode::PlainHttp { .. }) {
                bail!("iphttps.auth: with tls.plain_http the terminator checks client certificates; set iphttps.auth = \"none\"");
            }
            let paths = f
                .iphttps
                .paths
                .unwrap_or_else(|| vec!["/IPHTTPS".into(), "/IPTLS".into()]);
            if paths.is_empty() || paths.iter().any(|p| !p.starts_with('/')) {
                bail!("iphttps.paths: every path must start with '/'");
            }
            if let Some(v6) = ipv6_prefix {
                if pool.contains(v6.network()) {
                    bail!("iphttps.prefix: overlaps ipv6.prefix");
                }
            }
            let names = if ov.iphttps_server_names.is_empty() {
                f.iphttps.server_names.unwrap_or_default()
            } else {
                ov.iphttps_server_names.clone()
            };
            let mut server_names = Vec::new();
            for n in names {
                let n = n.trim_end_matches('.').to_ascii_lowercase();
                if rustls::pki_types::DnsName::try_from(n.as_str()).is_err() {
                    bail!("iphttps.server_names: \"{n}\" is not a DNS name");
                }
                server_names.push(n);
            }
            if !server_names.is_empty() && auth_none {
                bail!("iphttps.server_names: only with auth = \"certificate\" (they make the TLS handshake require a client certificate)");
            }
            let mut routes = Vec::new();
            for r in f.iphttps.routes.unwrap_or_default() {
                routes.push(v6_prefix("iphttps.routes", &r)?);
            }
            let min = ::iphttps::MIN_MTU as u16;
            let link_mtu_max = match f.iphttps.link_mtu_max {
                None => mtu.max(min),
                Some(m) if (min..=mtu.max(min)).contains(&m) => m,
                Some(m) => bail!(
                    "iphttps.link_mtu_max: {m} out of range {min}..={} (at most tun.mtu; {min} turns the larger link MTU off)",
                    mtu.max(min)
                ),
            };
            Some(IphttpsSettings {
                pool,
                client_ca: if auth_none { None } else { client_ca },
                auth_none,
                paths,
                server_names,
                default_route: f.iphttps.default_route.unwrap_or(true),
                routes,
                link_mtu_max,
            })
        }
    };

    let control_socket = match ov.control_socket.clone().or(f.control.socket) {
        None => Some(PathBuf::from(crate::server::control::DEFAULT_SOCKET)),
        Some(p) if p.as_os_str().is_empty() => None,
        Some(p) if p.is_relative() => {
            bail!("control.socket: {} is not an absolute path", p.display())
        }
        Some(p) => Some(p),
    };
    let metrics_listen = ov.metrics_listen.or(f.metrics.listen);
    let (radius, auth_order) = radius::validate(f.radius, f.auth)?;
    let user = ov.user.clone().or(f.user).filter(|u| !u.is_empty());
    if radius.as_ref().is_some_and(|r| r.eap_pass_through) {
        if auth.contains(&AuthMethod::EapTls) {
            bail!("radius.eap: with \"pass-through\" the RADIUS server runs EAP-TLS; remove \"eap-tls\" from sstp.auth");
        }
        if !auth.contains(&AuthMethod::EapMsChapV2) {
            bail!("radius.eap: \"pass-through\" needs \"eap-mschapv2\" in sstp.auth (it offers EAP to the client)");
        }
    }
    Ok(ServerSettings {
        user,
        control_socket,
        metrics_listen,
        listen,
        state_dir,
        users_file,
        tls,
        generated_cert,
        acme,
        hash_offer,
        auth,
        pool,
        pools,
        dns,
        client_to_client,
        ipv6_prefix,
        ipv6_dns,
        tun_name,
        mtu,
        handshake_timeout,
        limits,
        iphttps,
        web,
        radius,
        auth_order,
        eap_tls,
    })
}

fn eap_tls_settings(
    e: &EapTlsSection,
    enabled: bool,
    tls: &TlsMode,
) -> anyhow::Result<Option<EapTlsSettings>> {
    if !enabled {
        if e.client_ca.is_some() || e.user_name.is_some() || e.cert.is_some() || e.key.is_some() {
            bail!("eap_tls: set, but sstp.auth does not list \"eap-tls\"");
        }
        return Ok(None);
    }
    let client_ca = e
        .client_ca
        .clone()
        .context("eap_tls.client_ca: required with sstp.auth \"eap-tls\"")?;
    let user_name = match e.user_name.as_deref() {
        None => crate::eap_tls::UserNameFrom::SubjectCn,
        Some(s) => crate::eap_tls::UserNameFrom::parse(s).with_context(|| {
            format!("eap_tls.user_name: unknown \"{s}\" (use \"subject-cn\", \"san-email\", \"san-dns\")")
        })?,
    };
    let (cert, key) = match (&e.cert, &e.key, tls) {
        (Some(c), Some(k), _) => (c.clone(), k.clone()),
        (None, None, TlsMode::Tls { cert, key }) => (cert.clone(), key.clone()),
        (None, None, TlsMode::PlainHttp { .. }) => {
            bail!("eap_tls.cert: required with tls.plain_http (there is no TLS certificate to use)")
        }
        (Some(_), None, _) => bail!("eap_tls.key: required with eap_tls.cert"),
        (None, Some(_), _) => bail!("eap_tls.cert: required with eap_tls.key"),
    };
    Ok(Some(EapTlsSettings {
        client_ca,
        user_name,
        cert,
        key,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        let f = parse(text).and_then(|f| validate(f, &Overrides::default()));
        format!("{:#}", f.unwrap_err())
    }

    #[test]
    fn control_socket_and_metrics() {
        let ok = |text: &str| validate(parse(text).unwrap(), &Overrides::default()).unwrap();
        let d = ok("");
        assert_eq!(
            d.control_socket.as_deref(),
            Some(Path::new("/run/tunnel443/control.sock"))
        );
        assert_eq!(d.metrics_listen, None, "metrics are off by default");
        assert_eq!(ok("[control]\nsocket = \"\"").control_socket, None);
        let m = ok("[metrics]\nlisten = \"127.0.0.1:9443\"").metrics_listen;
        assert_eq!(m, Some("127.0.0.1:9443".parse().unwrap()));
        assert!(err("[control]\nsocket = \"ctl.sock\"").starts_with("control.socket:"));
        let e = err("[metrics]\nlisten = \"localhost\"");
        assert!(e.contains("listen = \"localhost\""), "{e}");
    }

    #[test]
    fn defaults_without_file() {
        let s = validate(FileConfig::default(), &Overrides::default()).unwrap();
        assert_eq!(s.listen.port(), 443);
        assert_eq!(s.users_file, PathBuf::from("/var/lib/tunnel443/users"));
        assert!(s.generated_cert);
        assert_eq!(s.pool.to_string(), "10.44.0.0/24");
        assert_eq!(s.auth[0], AuthMethod::MsChapV2);
    }

    #[test]
    fn eap_tls_settings_and_their_errors() {
        let ok = "[sstp]\nauth = [\"eap-tls\", \"mschapv2\"]\n[eap_tls]\nclient_ca = \"/ca.pem\"\n";
        let s = validate(parse(ok).unwrap(), &Overrides::default()).unwrap();
        let e = s.eap_tls.expect("eap_tls settings");
        assert_eq!(e.client_ca, PathBuf::from("/ca.pem"));
        assert_eq!(e.user_name, crate::eap_tls::UserNameFrom::SubjectCn);
        // The TLS certificate is the EAP-TLS one by default.
        let TlsMode::Tls { cert, .. } = &s.tls else {
            panic!("TLS mode")
        };
        assert_eq!(&e.cert, cert);
        assert!(err("[sstp]\nauth = [\"eap-tls\"]").contains("eap_tls.client_ca"));
        assert!(err(&format!("{ok}user_name = \"upn\"")).contains("eap_tls.user_name"));
        assert!(err(&format!("{ok}cert = \"/c.pem\"")).contains("eap_tls.key"));
        assert!(err("[eap_tls]\nclient_ca = \"/ca.pem\"").contains("eap_tls"));
        assert!(err("[sstp]\nauth = [\"eap-tls\", \"eap-mschapv2\"]").contains("sstp.auth"));
    }

    #[test]
    fn named_pools_for_framed_pool() {
        let s = validate(
            parse("[ipv4]\npools = { staff = \"10.46.0.0/24\", guests = \"10.47.0.0/25\" }")
                .unwrap(),
            &Overrides::default(),
        )
        .unwrap();
        let names: Vec<_> = s.pools.iter().map(|(n, p)| format!("{n}={p}")).collect();
        assert_eq!(names, ["guests=10.47.0.0/25", "staff=10.46.0.0/24"]);
        assert_eq!(
            err("[ipv4]\npools = { staff = \"10.46.0.9/24\" }"),
            "ipv4.pools.staff: 10.46.0.9/24 has host bits set: the network address is 10.46.0.0/24"
        );
        assert_eq!(
            err("[ipv4]\npools = { staff = \"10.44.0.128/25\" }"),
            "ipv4.pools.staff: 10.44.0.128/25 overlaps ipv4.pool 10.44.0.0/24"
        );
        assert_eq!(
            err("[ipv4]\npools = { a = \"10.46.0.0/16\", b = \"10.46.3.0/24\" }"),
            "ipv4.pools.b: 10.46.3.0/24 overlaps ipv4.pools.a 10.46.0.0/16"
        );
        assert!(err("[ipv4]\npools = { tiny = \"10.46.0.0/31\" }").contains("ipv4.pools.tiny"));
    }

    #[test]
    fn eap_pass_through_needs_eap_offered() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("t443-eapcfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("secret");
        std::fs::write(&f, "s\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        let cfg = |auth: &str| {
            format!(
                "[sstp]\nauth = [{auth}]\n[radius]\nservers = [{{ address = \"127.0.0.1\", secret_file = \"{}\" }}]\neap = \"pass-through\"\n",
                f.display()
            )
        };
        let s = validate(
            parse(&cfg("\"eap-mschapv2\"")).unwrap(),
            &Overrides::default(),
        )
        .unwrap();
        assert!(s.radius.unwrap().eap_pass_through);
        assert!(err(&cfg("\"mschapv2\""))
            .contains("radius.eap: \"pass-through\" needs \"eap-mschapv2\""));
        let tls = format!("{}[eap_tls]\nclient_ca = \"/ca.pem\"\n", cfg("\"eap-tls\""));
        assert!(err(&tls).contains("remove \"eap-tls\" from sstp.auth"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn errors_name_the_field() {
        assert!(err("lisen = \"1.2.3.4:5\"").contains("lisen"));
        assert!(err("[ipv4]\npool = \"10.0.0.0/33\"").contains("ipv4.pool"));
        assert!(err("[ipv4]\npool = \"10.0.0.0/31\"").contains("ipv4.pool"));
        assert!(err("[sstp]\nauth = [\"kerberos\"]").contains("sstp.auth"));
        assert!(err("[sstp]\nhash_protocols = [\"md5\"]").contains("sstp.hash_protocols"));
        assert!(err("[tls]\ncert = \"/x\"").contains("tls.key"));
        assert!(err("[tls]\nplain_http = true").contains("tls.cert_sha256"));
        assert!(err("[tls]\nplain_http = true\ncert_sha256 = \"abcd\"").contains("tls.cert_sha256"));
        assert_eq!(
            err("[tun]\nmtu = 575"),
            "tun.mtu: 575 out of range 576..=65535"
        );
        assert!(err("[ipv6]\nprefix = \"fd00::/48\"").contains("ipv6.prefix"));
        assert!(err("[ipv6]\nprefix = \"fd00::\"").contains("ipv6.prefix"));
        assert!(err("[ipv4]\ndns = [\"1.1.1.1\", \"8.8.8.8\", \"9.9.9.9\"]").contains("ipv4.dns"));
        assert!(err("[iphttps]\nprefix = \"fd00::/48\"").contains("iphttps.client_ca"));
        assert!(
            err("[iphttps]\nprefix = \"fd00::/64\"\nauth = \"none\"").contains("iphttps.prefix")
        );
        assert!(err("[iphttps]\nprefix = \"fd00::/48\"\nauth = \"x\"").contains("iphttps.auth"));
        assert!(err("[iphttps]\nauth = \"none\"").contains("iphttps.prefix"));
        assert!(err("[iphttps]\nroutes = [\"fd99::/32\"]").contains("iphttps.prefix"));
        let none = "[iphttps]\nprefix = \"fd00::/48\"\nauth = \"none\"\n";
        assert!(err(&format!("{none}routes = [\"fd99::/129\"]")).contains("iphttps.routes"));
        for bad in ["1279", "4001", "0"] {
            assert_eq!(
                err(&format!("[tun]\nmtu = 4000\n{none}link_mtu_max = {bad}")),
                format!("iphttps.link_mtu_max: {bad} out of range 1280..=4000 (at most tun.mtu; 1280 turns the larger link MTU off)")
            );
        }
        assert!(err("[iphttps]\nlink_mtu_max = 1280").contains("iphttps.prefix"));
        assert!(
            err(&format!("{none}server_names = [\"da.test\"]")).contains("iphttps.server_names")
        );
        let ca = "[iphttps]\nprefix = \"fd00::/48\"\nclient_ca = \"/ca\"\n";
        assert!(
            err(&format!("{ca}server_names = [\"not a name\"]")).contains("iphttps.server_names")
        );
    }

    #[test]
    fn pool_with_host_bits_names_the_network() {
        let e = err("[ipv4]\npool = \"10.66.0.203/29\"");
        assert_eq!(
            e,
            "ipv4.pool: 10.66.0.203/29 has host bits set: the network address is 10.66.0.200/29"
        );
        let ov = Overrides {
            pool: Some("10.66.0.203/29".into()),
            ..Default::default()
        };
        let e = format!("{:#}", validate(FileConfig::default(), &ov).unwrap_err());
        assert!(e.contains("10.66.0.200/29"), "{e}");
        let s = validate(parse("[ipv4]\npool = \"10.66.0.200/29\"").unwrap(), &ov);
        assert!(s.is_err(), "the override is checked too");
    }

    #[test]
    fn acme_settings_and_their_errors_name_the_field() {
        let s = validate(
            parse("state_dir = \"/srv/s\"\n[tls]\nacme = { domains = [\"VPN.Example.com.\"], contact = \"mailto:a@example.com\" }").unwrap(),
            &Overrides::default(),
        )
        .unwrap();
        let a = s.acme.expect("acme");
        assert_eq!(a.domains, ["vpn.example.com"]);
        assert_eq!(a.directory, LETS_ENCRYPT);
        assert!(!s.generated_cert);
        assert!(
            matches!(&s.tls, TlsMode::Tls { cert, .. } if cert == Path::new("/srv/s/acme/cert.pem"))
        );
        for (text, want) in [
            ("[tls]\nacme = { domains = [] }", "tls.acme.domains: must name at least one"),
            ("[tls]\nacme = { domains = [\"10.0.0.1\"] }", "tls.acme.domains: \"10.0.0.1\" is not a DNS name"),
            ("[tls]\nacme = { domains = [\"*.example.com\"] }", "tls.acme.domains: \"*.example.com\""),
            ("[tls]\nacme = { domains = [\"a.example\"], directory = \"http://ca\" }", "tls.acme.directory: http://ca is not an https:// URL"),
            ("[tls]\nacme = { domains = [\"a.example\"], contact = \"a@example.com\" }", "tls.acme.contact: a@example.com is not a mailto: URI"),
            ("[tls]\ncert = \"/c\"\nkey = \"/k\"\nacme = { domains = [\"a.example\"] }", "tls.acme: not with tls.cert/tls.key"),
            ("[tls]\nplain_http = true\ncert_sha256 = \"00\"\nacme = { domains = [\"a.example\"] }", "tls.acme: not with tls.plain_http"),
        ] {
            let e = err(text);
            assert!(e.starts_with(want), "{text}: {e}");
        }
        let ov = Overrides {
            acme_directory: Some("https://ca.test/dir".into()),
            ..Default::default()
        };
        let e = format!("{:#}", validate(FileConfig::default(), &ov).unwrap_err());
        assert!(
            e.starts_with("--acme-directory/--acme-ca: need --acme-domain"),
            "{e}"
        );
    }

    #[test]
    fn too_small_pool_says_how_many_addresses() {
        assert_eq!(
            err("[ipv4]\npool = \"10.0.0.0/31\""),
            "ipv4.pool: 10.0.0.0/31 is too small: it needs at least 4 addresses (/30 or shorter)"
        );
        let s = parse("[ipv4]\npool = \"10.0.0.0/30\"").unwrap();
        validate(s, &Overrides::default()).unwrap();
    }

    #[test]
    fn ipv6_prefixes_with_host_bits_name_the_network() {
        assert_eq!(
            err("[ipv6]\nprefix = \"fd00:0:0:1::5/64\""),
            "ipv6.prefix: fd00:0:0:1::5/64 has host bits set: the network address is fd00:0:0:1::/64"
        );
        let none = "[iphttps]\nauth = \"none\"\n";
        assert_eq!(
            err(&format!("{none}prefix = \"fd00:1:2::/40\"")),
            "iphttps.prefix: fd00:1:2::/40 has host bits set: the network address is fd00:1::/40"
        );
        assert_eq!(
            err(&format!(
                "{none}prefix = \"fd00:1::/48\"\nroutes = [\"fd99::1/32\"]"
            )),
            "iphttps.routes: fd99::1/32 has host bits set: the network address is fd99::/32"
        );
        assert!(err("[ipv6]\nprefix = \"fd00::/129\"").contains("is not an IPv6 prefix"));
    }

    #[test]
    fn iphttps_client_ca_without_prefix_is_an_error() {
        let ov = Overrides {
            iphttps_client_ca: Some("/ca.pem".into()),
            ..Default::default()
        };
        let e = format!("{:#}", validate(FileConfig::default(), &ov).unwrap_err());
        assert!(
            e.starts_with("iphttps.prefix (--iphttps-prefix): required"),
            "{e}"
        );
    }

    fn temp_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("t443-cfg-{}", crate::state::random_password()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn missing_files_name_their_field() {
        let d = temp_dir();
        let (cert, key, users) = (d.join("cert.pem"), d.join("key.pem"), d.join("users"));
        let text = format!(
            "users_file = \"{}\"\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
            users.display(),
            cert.display(),
            key.display()
        );
        let check = || {
            let s = validate(parse(&text).unwrap(), &Overrides::default()).unwrap();
            check_files(&s).map_err(|e| format!("{e:#}"))
        };
        let e = check().unwrap_err();
        assert!(
            e.starts_with(&format!("tls.cert: {}: No such file", cert.display())),
            "{e}"
        );
        std::fs::write(&cert, "x").unwrap();
        let e = check().unwrap_err();
        assert!(
            e.starts_with(&format!("tls.key: {}: No such file", key.display())),
            "{e}"
        );
        std::fs::write(&key, "x").unwrap();
        let e = check().unwrap_err();
        assert!(
            e.starts_with(&format!("users_file: {} (create it", users.display())),
            "{e}"
        );
        std::fs::write(&users, "").unwrap();
        // Secrets readable by others are refused with the chmod to run.
        use std::os::unix::fs::PermissionsExt;
        let chmod = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        chmod(&key, 0o640);
        chmod(&users, 0o604);
        assert_eq!(
            check().unwrap_err(),
            format!(
                "tls.key: {k} is accessible to group or others (mode 640); restrict it with `chmod 600 {k}`",
                k = key.display()
            )
        );
        chmod(&key, 0o600);
        let e = check().unwrap_err();
        assert!(
            e.starts_with("users_file: ") && e.contains("(mode 604)"),
            "{e}"
        );
        assert!(
            e.ends_with(&format!("`chmod 600 {}`", users.display())),
            "{e}"
        );
        chmod(&users, 0o400);
        check().unwrap();
        // EAP-TLS's own key is held to the same rule.
        let eap_key = d.join("eap.key");
        std::fs::write(&eap_key, "x").unwrap();
        chmod(&eap_key, 0o644);
        let eap = format!(
            "{text}[sstp]\nauth = [\"eap-tls\"]\n[eap_tls]\nclient_ca = \"{c}\"\ncert = \"{c}\"\nkey = \"{k}\"\n",
            c = cert.display(),
            k = eap_key.display()
        );
        let s = validate(parse(&eap).unwrap(), &Overrides::default()).unwrap();
        let e = format!("{:#}", check_files(&s).unwrap_err());
        assert!(
            e.starts_with("eap_tls.key: ") && e.contains("(mode 644)"),
            "{e}"
        );
        chmod(&eap_key, 0o600);
        check_files(&s).unwrap();
        // The zero-config default (generated certificate) creates the users file.
        let ov = Overrides {
            users_file: Some(d.join("absent")),
            state_dir: Some(d.clone()),
            ..Default::default()
        };
        let s = validate(FileConfig::default(), &ov).unwrap();
        assert!(s.creates_users_file());
        check_files(&s).unwrap();
        let f = parse("[iphttps]\nprefix = \"fd00:1::/48\"\nclient_ca = \"/nonexistent/ca.pem\"")
            .unwrap();
        let e = format!("{:#}", check_files(&validate(f, &ov).unwrap()).unwrap_err());
        assert!(
            e.starts_with("iphttps.client_ca: /nonexistent/ca.pem"),
            "{e}"
        );
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn users_file_is_found_like_the_server_finds_it() {
        let d = temp_dir();
        let cfg = d.join("t.toml");
        std::fs::write(
            &cfg,
            "state_dir = \"/srv/s\"\n[ipv4]\npool = \"10.9.0.0/24\"\n",
        )
        .unwrap();
        let uf = |c: Option<&Path>, s: Option<&str>, u: Option<&str>| {
            users_file(c, s.map(PathBuf::from), u.map(PathBuf::from)).unwrap()
        };
        assert_eq!(
            uf(None, None, None),
            PathBuf::from("/var/lib/tunnel443/users")
        );
        assert_eq!(uf(Some(&cfg), None, None), PathBuf::from("/srv/s/users"));
        assert_eq!(uf(Some(&cfg), Some("/o"), None), PathBuf::from("/o/users"));
        assert_eq!(uf(Some(&cfg), Some("/o"), Some("/u")), PathBuf::from("/u"));
        std::fs::write(&cfg, "state_dir = \"/srv/s\"\nusers_file = \"/etc/u\"\n").unwrap();
        assert_eq!(uf(Some(&cfg), Some("/o"), None), PathBuf::from("/etc/u"));
        let e = users_file(Some(&d.join("absent.toml")), None, None).unwrap_err();
        assert!(format!("{e:#}").contains("absent.toml"));
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn tun_mtu_and_the_sstp_mru() {
        let mtu = |text: &str| {
            let s = validate(parse(text).unwrap(), &Overrides::default()).unwrap();
            (s.mtu, s.sstp_mru())
        };
        // A 64 KiB device for IP-HTTPS; SSTP frames stop at 4095 bytes.
        assert_eq!(mtu(""), (65535, 4000));
        assert_eq!(mtu("[tun]\nmtu = 9000"), (9000, 4000));
        assert_eq!(mtu("[tun]\nmtu = 1500"), (1500, 1500));
    }

    #[test]
    fn iphttps_section() {
        let f = parse("[iphttps]\nprefix = \"fd00:1::/48\"\nclient_ca = \"/ca.pem\"").unwrap();
        let s = validate(f, &Overrides::default()).unwrap();
        let i = s.iphttps.unwrap();
        // The larger link MTU for our clients is the device's by default.
        assert_eq!(i.link_mtu_max, s.mtu);
        assert!(!i.auth_none);
        assert_eq!(i.paths, ["/IPHTTPS", "/IPTLS"]);
        assert!(i.default_route && i.routes.is_empty() && i.server_names.is_empty());
        let f = parse(
            "[iphttps]\nprefix = \"fd00:1::/48\"\nclient_ca = \"/ca.pem\"\n\
             server_names = [\"DA.Example.com.\"]\ndefault_route = false\nroutes = [\"fd99::/32\"]",
        )
        .unwrap();
        let i = validate(f, &Overrides::default()).unwrap().iphttps.unwrap();
        assert_eq!(i.server_names, ["da.example.com"]);
        assert!(!i.default_route);
        assert_eq!(i.routes[0].prefix_len(), 32);
        let none = "[iphttps]\nprefix = \"fd00:1::/48\"\nauth = \"none\"\n";
        let mtu = |text: &str| {
            let f = parse(&format!("[tun]\nmtu = 4000\n{none}{text}")).unwrap();
            validate(f, &Overrides::default())
                .unwrap()
                .iphttps
                .unwrap()
                .link_mtu_max
        };
        assert_eq!(mtu(""), 4000);
        assert_eq!(mtu("link_mtu_max = 2000"), 2000);
        assert_eq!(mtu("link_mtu_max = 1280"), 1280);
        // A device below the IPv6 minimum does not lower the link below it.
        let f = parse(&format!("[tun]\nmtu = 1000\n{none}")).unwrap();
        let i = validate(f, &Overrides::default()).unwrap().iphttps.unwrap();
        assert_eq!(i.link_mtu_max, 1280);
        let f = parse("[iphttps]\nprefix = \"fd00:1::/48\"\nauth = \"none\"").unwrap();
        assert!(
            validate(f, &Overrides::default())
                .unwrap()
                .iphttps
                .unwrap()
                .auth_none
        );
        assert!(validate(FileConfig::default(), &Overrides::default())
            .unwrap()
            .iphttps
            .is_none());
    }

    #[test]
    fn shipped_example_is_valid() {
        let f = parse(include_str!("../../../dist/tunnel443.toml")).unwrap();
        validate(f, &Overrides::default()).unwrap();
    }

    #[test]
    fn overrides_win() {
        let ov = Overrides {
            listen: Some("127.0.0.1:4443".parse().unwrap()),
            state_dir: Some("/tmp/x".into()),
            ..Default::default()
        };
        let s = validate(parse("listen = \"0.0.0.0:1\"").unwrap(), &ov).unwrap();
        assert_eq!(s.listen.port(), 4443);
        assert_eq!(s.users_file, PathBuf::from("/tmp/x/users"));
    }
}
