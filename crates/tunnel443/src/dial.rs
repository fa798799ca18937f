//! Dialing a TCP stream to a target, directly or through a chain of HTTP
//! CONNECT proxies. Every tunnel client (SSTP, IP-HTTPS, `connect`) and the
//! proxy's `--upstream` use [`dial`].
//!
//! * Protocol: `httptunnel::client` (Luotonen's "Tunneling SSL Through a WWW
//!   Proxy": CONNECT, 407 + Basic, "Multiple Proxy Servers"; MS-SSTP §4.5 for
//!   the `SSTPVERSION: 1.0` header the SSTP client passes as an extra header).
//! * Proxy selection: `--proxy URL` (repeatable: a chain, nearest first);
//!   otherwise `https_proxy` / `HTTPS_PROXY`, skipped for targets matched by
//!   `no_proxy` / `NO_PROXY`; `--no-proxy` ignores the environment.
//! * Credentials: from the proxy URL, else `--proxy-credentials-file`
//!   (`user:password` on the first line), else `TUNNEL443_PROXY_USER` and
//!   `TUNNEL443_PROXY_PASSWORD`. They answer a 407 with the strongest
//!   scheme the proxy offers (Digest, NTLM, Basic: `httptunnel::auth`), or
//!   go up front as Basic with `--proxy-auth-upfront`, and are never
//!   logged. What a dial learned (a Digest nonce, that Basic worked) is
//!   kept in [`AuthMemory`] and sent up front by the next dial through the
//!   same proxy, so reconnects save the 407 round trip.
//! * Bytes the last proxy sent after its response head belong to the tunnel:
//!   [`Dialed`] replays them before reading from the socket.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use httptunnel::{
    AuthMemo, Authority, AuthorityError, ChainHandshake, ClientError, Credentials, Event,
    HeadError, Header, HeaderError, Headers, HopError, ProxyHop,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};
use tracing::debug;

/// Default bound on connecting plus the whole proxy handshake.
pub const DEFAULT_PROXY_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest proxy response head accepted.
const MAX_REPLY_HEAD: usize = httphead::DEFAULT_MAX_HEAD;

/// An `http://[USER:PASS@]HOST[:PORT][/]` proxy URL. `Debug` and `Display`
/// never show the password.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    /// Where the proxy listens.
    pub authority: Authority,
    /// Credentials from the URL's user info.
    pub credentials: Option<Credentials>,
}

impl std::fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProxyUrl({self})")
    }
}

impl std::fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.credentials {
            Some(c) => write!(f, "http://{}:***@{}", c.user(), self.authority),
            None => write!(f, "http://{}", self.authority),
        }
    }
}

fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("bad percent-encoding in the user info")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "user info is not UTF-8".to_owned())
}

impl std::str::FromStr for ProxyUrl {
    type Err = String;

    /// Parses a proxy URL. A missing scheme means `http://`; a missing port
    /// means 80. `https://` proxies (TLS to the proxy) are not supported.
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let rest = match s.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) => {
                return Err(format!(
                    "unsupported proxy scheme \"{scheme}\": only http:// proxies are supported"
                ))
            }
            None => s,
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#']) {
            return Err("a proxy URL has no path, query or fragment".into());
        }
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let credentials = match userinfo {
            None => None,
            Some(u) => {
                let (user, pass) = u.split_once(':').unwrap_or((u, ""));
                let user = percent_decode(user)?;
                let pass = percent_decode(pass)?;
                Some(Credentials::new(&user, &pass).map_err(|e| e.to_string())?)
            }
        };
        let authority = match Authority::parse(hostport) {
            Ok(a) => a,
            Err(AuthorityError::MissingPort) => {
                Authority::new(hostport, 80).map_err(|e| format!("\"{hostport}\": {e}"))?
            }
            Err(e) => return Err(format!("\"{hostport}\": {e}")),
        };
        Ok(ProxyUrl {
            authority,
            credentials,
        })
    }
}

fn parse_proxy_url(s: &str) -> Result<ProxyUrl, String> {
    s.parse()
}

/// Proxy options shared by every command that dials out (flatten into the
/// command's clap arguments).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ProxyOpts {
    /// HTTP proxy to tunnel through with CONNECT:
    /// http://[USER:PASS@]HOST:PORT. Repeat for a chain of proxies, nearest
    /// first (the first is asked to CONNECT to the second, and so on).
    /// Default: $https_proxy / $HTTPS_PROXY, unless $no_proxy matches.
    #[arg(long = "proxy", value_name = "URL", value_parser = parse_proxy_url)]
    pub proxy: Vec<ProxyUrl>,
    /// Connect directly: ignore https_proxy / HTTPS_PROXY.
    #[arg(long, conflicts_with = "proxy")]
    pub no_proxy: bool,
    /// File whose first line is USER:PASSWORD for proxies whose URL has no
    /// credentials (keeps them out of argv). Otherwise
    /// TUNNEL443_PROXY_USER / TUNNEL443_PROXY_PASSWORD are used if set.
    #[arg(long, value_name = "FILE")]
    pub proxy_credentials_file: Option<PathBuf>,
    /// Send proxy credentials with the first CONNECT instead of waiting for
    /// a 407 challenge.
    #[arg(long)]
    pub proxy_auth_upfront: bool,
    /// Seconds allowed for reaching the target through the proxies
    /// (TCP connect plus every CONNECT exchange), default 30.
    #[arg(long, value_name = "SECS")]
    pub proxy_timeout: Option<u64>,
    /// What earlier dials learned about proxy authentication; clones of
    /// these options share it.
    #[arg(skip)]
    pub auth_memory: AuthMemory,
}

/// Proxy authentication state carried from one dial to the next, per proxy
/// and user: a Digest nonce with its count, or that Basic worked.
#[derive(Clone, Default)]
pub struct AuthMemory(Arc<Mutex<HashMap<(String, String), AuthMemo>>>);

impl std::fmt::Debug for AuthMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.lock().map(|m| m.len()).unwrap_or(0);
        write!(f, "AuthMemory({n} proxies)")
    }
}

impl AuthMemory {
    fn key(proxy: &Authority, creds: &Credentials) -> (String, String) {
        (proxy.to_string(), creds.user().to_owned())
    }

    /// The memo for a hop, if any; the stored one moves past it.
    fn take(&self, proxy: &Authority, creds: Option<&Credentials>) -> Option<AuthMemo> {
        let key = Self::key(proxy, creds?);
        let mut m = self.0.lock().ok()?;
        m.get_mut(&key).map(AuthMemo::take_next)
    }

    /// Stores what an established handshake learned.
    fn store(&self, hops: &[ProxyHop], memos: Vec<Option<AuthMemo>>) {
        let Ok(mut m) = self.0.lock() else { return };
        for (hop, memo) in hops.iter().zip(memos) {
            let (Some(creds), Some(memo)) = (&hop.credentials, memo) else {
                continue;
            };
            match m.entry(Self::key(&hop.proxy, creds)) {
                std::collections::hash_map::Entry::Occupied(mut e) => e.get_mut().merge(memo),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(memo);
                }
            }
        }
    }
}

impl ProxyOpts {
    fn timeout(&self) -> Duration {
        match self.proxy_timeout {
            Some(0) | None => DEFAULT_PROXY_TIMEOUT,
            Some(s) => Duration::from_secs(s),
        }
    }
}

/// Why [`dial`] failed. Messages name the proxy involved and carry their
/// cause in the text (no error `source` chain, so `{:#}` does not repeat
/// it).
#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum DialError {
    /// The target host or port is not valid.
    #[error("invalid target \"{target}\": {error}")]
    InvalidTarget {
        /// What was asked for.
        target: String,
        /// Why it is invalid.
        error: AuthorityError,
    },
    /// An extra header cannot be sent.
    #[error("invalid CONNECT header: {0}")]
    InvalidHeader(HeaderError),
    /// A proxy URL from the environment is not usable.
    #[error("invalid proxy URL in ${var}: {reason}")]
    BadProxyEnv {
        /// The variable.
        var: &'static str,
        /// Why.
        reason: String,
    },
    /// The credentials file or variables are not usable.
    #[error("proxy credentials: {0}")]
    Credentials(String),
    /// The target's name did not resolve (direct connection).
    #[error("cannot resolve {host}: {error}")]
    Resolve {
        /// The name.
        host: String,
        /// The resolver's error.
        error: io::Error,
    },
    /// The TCP connection to the target failed (direct connection).
    #[error("cannot connect to {peer}: {error}")]
    Connect {
        /// `HOST:PORT`.
        peer: String,
        /// The last connect error.
        error: io::Error,
    },
    /// The first proxy cannot be reached: its name does not resolve or the
    /// TCP connection to it fails.
    #[error("cannot connect to proxy {proxy}: {reason}")]
    ProxyUnreachable {
        /// The proxy.
        proxy: String,
        /// Why, in words.
        reason: String,
    },
    /// Connecting directly to the target timed out.
    #[error("connecting to {peer} timed out after {}", secs(*after))]
    ConnectTimeout {
        /// The target.
        peer: String,
        /// The time allowed.
        after: Duration,
    },
    /// 403: the proxy refuses the tunnel.
    #[error(
        "proxy {proxy} refused the tunnel to {target}: {status} {reason}{}",
        says(body)
    )]
    ProxyDenied {
        /// The proxy that answered.
        proxy: String,
        /// What it was asked to connect to.
        target: String,
        /// Status code.
        status: u16,
        /// Reason phrase (sanitized).
        reason: String,
        /// The first words of the response body (sanitized), may be empty.
        body: String,
    },
    /// 407 with no credentials configured, after our credentials, or with
    /// only non-Basic schemes.
    #[error("proxy {proxy} requires authentication: {detail}")]
    ProxyAuthRequired {
        /// The proxy that answered.
        proxy: String,
        /// Whether credentials were sent and refused.
        had_credentials: bool,
        /// What went wrong, for the message.
        detail: String,
    },
    /// 502/503/504: the proxy could not reach the next hop.
    #[error(
        "proxy {proxy} could not reach {target}: {status} {reason}{}",
        says(body)
    )]
    ProxyUpstream {
        /// The proxy that answered.
        proxy: String,
        /// What it was asked to connect to.
        target: String,
        /// Status code.
        status: u16,
        /// Reason phrase (sanitized).
        reason: String,
        /// The first words of the response body (sanitized), may be empty.
        body: String,
    },
    /// Any other non-2xx status.
    #[error(
        "proxy {proxy} answered {status} {reason} to CONNECT {target}{}",
        says(body)
    )]
    ProxyStatus {
        /// The proxy that answered.
        proxy: String,
        /// What it was asked to connect to.
        target: String,
        /// Status code.
        status: u16,
        /// Reason phrase (sanitized).
        reason: String,
        /// The first words of the response body (sanitized), may be empty.
        body: String,
    },
    /// The proxy handshake did not finish in time.
    #[error("proxy {proxy} did not complete the CONNECT handshake within {}", secs(*after))]
    ProxyTimeout {
        /// The proxy being talked to.
        proxy: String,
        /// The time allowed.
        after: Duration,
    },
    /// The reply is not an HTTP/1.x response head.
    #[error("malformed reply from proxy {proxy}: {error}")]
    MalformedReply {
        /// The proxy that answered.
        proxy: String,
        /// What was wrong.
        error: HeadError,
    },
    /// The proxy closed the connection without answering.
    #[error("proxy {proxy} closed the connection without answering CONNECT")]
    ProxyClosed {
        /// The proxy.
        proxy: String,
    },
    /// Reading from or writing to the proxy failed.
    #[error("talking to proxy {proxy}: {error}")]
    ProxyIo {
        /// The proxy.
        proxy: String,
        /// The error.
        error: io::Error,
    },
}

/// `30 s`, `1.5 s`.
fn secs(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

/// `; the proxy says: ...` after a refusal, when its body had words.
fn says(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!("; the proxy says: {body}")
    }
}

/// What a failed dial means for the user, e.g. for an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialFailure {
    /// The command line or environment is wrong (target, header, proxy
    /// URL, credentials file).
    Usage,
    /// A proxy could not be reached, refused, or could not reach the next
    /// hop.
    Proxy,
    /// The target could not be reached directly.
    Target,
}

impl From<HeaderError> for DialError {
    fn from(e: HeaderError) -> Self {
        DialError::InvalidHeader(e)
    }
}

impl DialError {
    /// What kind of failure this is.
    pub fn failure(&self) -> DialFailure {
        match self {
            DialError::InvalidTarget { .. }
            | DialError::InvalidHeader(_)
            | DialError::BadProxyEnv { .. }
            | DialError::Credentials(_) => DialFailure::Usage,
            DialError::Resolve { .. }
            | DialError::Connect { .. }
            | DialError::ConnectTimeout { .. } => DialFailure::Target,
            DialError::ProxyUnreachable { .. }
            | DialError::ProxyDenied { .. }
            | DialError::ProxyAuthRequired { .. }
            | DialError::ProxyUpstream { .. }
            | DialError::ProxyStatus { .. }
            | DialError::ProxyTimeout { .. }
            | DialError::MalformedReply { .. }
            | DialError::ProxyClosed { .. }
            | DialError::ProxyIo { .. } => DialFailure::Proxy,
        }
    }

    /// `body`: the first words of the refusal's body, if it had one.
    fn from_hop(e: HopError, final_target: &Authority, hops: &[ProxyHop], body: String) -> Self {
        let proxy = e.proxy.to_string();
        let target = hops
            .get(e.hop + 1)
            .map(|h| h.proxy.to_string())
            .unwrap_or_else(|| final_target.to_string());
        match e.error {
            ClientError::Malformed(error) => DialError::MalformedReply { proxy, error },
            ClientError::Denied { status, reason } => DialError::ProxyDenied {
                proxy,
                target,
                status,
                reason,
                body,
            },
            ref err @ ClientError::AuthRequired {
                had_credentials, ..
            } => DialError::ProxyAuthRequired {
                proxy,
                had_credentials,
                detail: err.to_string(),
            },
            ClientError::Upstream { status, reason } => DialError::ProxyUpstream {
                proxy,
                target,
                status,
                reason,
                body,
            },
            ClientError::Status { status, reason } => DialError::ProxyStatus {
                proxy,
                target,
                status,
                reason,
                body,
            },
            ref err @ ClientError::AuthProtocol { .. } => DialError::ProxyAuthRequired {
                proxy,
                had_credentials: true,
                detail: err.to_string(),
            },
            ClientError::Closed | ClientError::Finished => DialError::ProxyClosed { proxy },
            other => DialError::ProxyIo {
                proxy,
                error: io::Error::other(other.to_string()),
            },
        }
    }
}

/// A connected stream to the target: plain TCP, or TCP to the first proxy
/// carrying the CONNECT tunnel. Bytes the proxy sent after its response head
/// are returned first by reads.
#[derive(Debug)]
pub struct Dialed {
    stream: TcpStream,
    pending: Vec<u8>,
    pos: usize,
    first_hop: SocketAddr,
    via_proxy: bool,
}

impl Dialed {
    /// The address actually connected to: the first proxy, or the target
    /// when no proxy is used. Clients keep a route to it outside the tunnel.
    pub fn first_hop(&self) -> SocketAddr {
        self.first_hop
    }

    /// True when the stream goes through at least one proxy.
    pub fn via_proxy(&self) -> bool {
        self.via_proxy
    }
}

impl AsyncRead for Dialed {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pos < this.pending.len() {
            let n = (this.pending.len() - this.pos).min(buf.remaining());
            buf.put_slice(&this.pending[this.pos..this.pos + n]);
            this.pos += n;
            if this.pos == this.pending.len() {
                this.pending = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Dialed {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// True if the `no_proxy` list matches `host` (a name or IP literal, with or
/// without IPv6 brackets). Entries are comma- or space-separated: `*` (every
/// host), a domain (`example.com` or `.example.com`, matching it and its
/// subdomains), an IP address, or a CIDR block; a `:port` suffix is ignored.
pub fn no_proxy_matches(list: &str, host: &str) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let host_ip: Option<std::net::IpAddr> = host.parse().ok();
    for entry in list
        .split([',', ' '])
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        if entry == "*" {
            return true;
        }
        let entry = entry.to_ascii_lowercase();
        // [v6]:port or [v6]
        let bare = if let Some(inner) = entry.strip_prefix('[') {
            inner.split(']').next().unwrap_or_default().to_owned()
        } else if entry.matches(':').count() == 1 {
            entry.split(':').next().unwrap_or_default().to_owned()
        } else {
            entry.clone()
        };
        if let Some(ip) = host_ip {
            if let Ok(e) = bare.parse::<std::net::IpAddr>() {
                if e.to_canonical() == ip.to_canonical() {
                    return true;
                }
                continue;
            }
            if let Ok(net) = bare.parse::<httptunnel::IpNet>() {
                if net.contains(&ip.to_canonical()) || net.contains(&ip) {
                    return true;
                }
                continue;
            }
        }
        let domain = bare
            .trim_start_matches("*.")
            .trim_start_matches('.')
            .trim_end_matches('.');
        if domain.is_empty() {
            continue;
        }
        if host == domain
            || (host.len() > domain.len()
                && host.ends_with(domain)
                && host.as_bytes()[host.len() - domain.len() - 1] == b'.')
        {
            return true;
        }
    }
    false
}

/// The proxies to use for `host`, nearest first; empty means direct.
fn select_proxies(
    opts: &ProxyOpts,
    host: &str,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<Vec<ProxyUrl>, DialError> {
    if !opts.proxy.is_empty() {
        return Ok(opts.proxy.clone());
    }
    if opts.no_proxy {
        return Ok(Vec::new());
    }
    let found = ["https_proxy", "HTTPS_PROXY"]
        .into_iter()
        .find_map(|v| env(v).filter(|s| !s.trim().is_empty()).map(|s| (v, s)));
    let Some((var, url)) = found else {
        return Ok(Vec::new());
    };
    let no_proxy = env("no_proxy")
        .filter(|s| !s.trim().is_empty())
        .or_else(|| env("NO_PROXY"))
        .unwrap_or_default();
    if no_proxy_matches(&no_proxy, host) {
        debug!(host, "no_proxy matches; connecting directly");
        return Ok(Vec::new());
    }
    let p = url
        .parse::<ProxyUrl>()
        .map_err(|reason| DialError::BadProxyEnv { var, reason })?;
    Ok(vec![p])
}

/// Credentials for proxies whose URL has none.
fn fallback_credentials(
    opts: &ProxyOpts,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<Option<Credentials>, DialError> {
    if let Some(path) = &opts.proxy_credentials_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| DialError::Credentials(format!("reading {}: {e}", path.display())))?;
        warn_if_readable_by_others(path);
        let line = text
            .lines()
            .map(str::trim_end)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .ok_or_else(|| DialError::Credentials(format!("{} is empty", path.display())))?;
        let c = Credentials::from_colon_pair(line).map_err(|e| {
            DialError::Credentials(format!("{}: expected USER:PASSWORD ({e})", path.display()))
        })?;
        return Ok(Some(c));
    }
    match env("TUNNEL443_PROXY_USER").filter(|u| !u.is_empty()) {
        Some(user) => {
            let pass = env("TUNNEL443_PROXY_PASSWORD").unwrap_or_default();
            Credentials::new(&user, &pass)
                .map(Some)
                .map_err(|e| DialError::Credentials(format!("TUNNEL443_PROXY_USER/PASSWORD: {e}")))
        }
        None => Ok(None),
    }
}

fn warn_if_readable_by_others(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(path) {
        if m.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                file = %path.display(),
                "proxy credentials file is readable by group or others; chmod 600 it"
            );
        }
    }
}

fn real_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Resolves `host` and connects to the first address that answers, within
/// `deadline`. Sets TCP_NODELAY. `peer` names it in errors; for a proxy the
/// errors are [`DialError::ProxyTimeout`] and [`DialError::ProxyUnreachable`].
async fn connect_tcp(
    host: &str,
    port: u16,
    deadline: Instant,
    peer: &str,
    is_proxy: bool,
    budget: Duration,
) -> Result<(TcpStream, SocketAddr), DialError> {
    let timeout_err = || {
        if is_proxy {
            DialError::ProxyTimeout {
                proxy: peer.to_owned(),
                after: budget,
            }
        } else {
            DialError::ConnectTimeout {
                peer: peer.to_owned(),
                after: budget,
            }
        }
    };
    let fail = |e: DialError| {
        if is_proxy {
            DialError::ProxyUnreachable {
                proxy: peer.to_owned(),
                reason: match e {
                    DialError::Connect { error, .. } => error.to_string(),
                    other => other.to_string(),
                },
            }
        } else {
            e
        }
    };
    let addrs: Vec<SocketAddr> =
        match timeout_at(deadline, tokio::net::lookup_host((host, port))).await {
            Err(_) => return Err(timeout_err()),
            Ok(Err(error)) => {
                return Err(fail(DialError::Resolve {
                    host: host.to_owned(),
                    error,
                }))
            }
            Ok(Ok(it)) => it.collect(),
        };
    if addrs.is_empty() {
        return Err(fail(DialError::Resolve {
            host: host.to_owned(),
            error: io::Error::new(io::ErrorKind::NotFound, "no addresses"),
        }));
    }
    let mut last = None;
    for addr in addrs {
        match timeout_at(deadline, TcpStream::connect(addr)).await {
            Err(_) => return Err(timeout_err()),
            Ok(Ok(s)) => {
                crate::io_util::tune_tcp(&s);
                return Ok((s, addr));
            }
            Ok(Err(e)) => {
                debug!(%addr, error = %e, "connect failed");
                last = Some(e);
            }
        }
    }
    Err(fail(DialError::Connect {
        peer: peer.to_owned(),
        error: last.unwrap_or_else(|| io::Error::other("no address could be tried")),
    }))
}

/// Up to this much of a refusal's body is read, for its first words.
const MAX_REFUSAL_BODY: usize = 8 * 1024;

/// Time allowed for a refusal's body after its head.
const REFUSAL_BODY_TIME: Duration = Duration::from_secs(2);

/// The first words of the body of the refusal whose head starts `buf`
/// (a proxy's 403 page says why), reading what is missing of it within a
/// short time. Empty when there is none.
async fn refusal_excerpt(stream: &mut TcpStream, buf: &[u8], deadline: Instant) -> String {
    let Ok(httptunnel::Parsed::Complete { head, len }) =
        httptunnel::ResponseHead::parse(buf, MAX_REPLY_HEAD)
    else {
        return String::new();
    };
    let h = head.headers();
    let chunked = h.has_token("transfer-encoding", "chunked");
    let want = h
        .get("content-length")
        .and_then(|v| v.value_str()?.trim().parse::<usize>().ok())
        .filter(|_| !chunked)
        .unwrap_or(MAX_REFUSAL_BODY)
        .min(MAX_REFUSAL_BODY);
    let mut body = buf[len..].to_vec();
    let until = deadline.min(Instant::now() + REFUSAL_BODY_TIME);
    while body.len() < want {
        let mut chunk = [0u8; 4096];
        match timeout_at(until, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => body.extend_from_slice(&chunk[..n]),
            _ => break,
        }
        if chunked && body.windows(5).any(|w| w == b"\r\n0\r\n") {
            break;
        }
    }
    body.truncate(want);
    if chunked {
        body = httptunnel::head::dechunk(&body);
    }
    httptunnel::body_excerpt(&body, 240)
}

/// Whether a refusal may carry a body worth showing (not a 407: its
/// message is ours).
fn has_telling_body(e: &HopError) -> bool {
    matches!(
        e.error,
        ClientError::Denied { .. } | ClientError::Upstream { .. } | ClientError::Status { .. }
    )
}

/// Connects to `host:port`, through the configured proxies if any.
/// `extra_headers` go on every CONNECT request (the SSTP client passes
/// `[("SSTPVERSION", "1.0")]`, MS-SSTP §4.5). See the module docs for proxy
/// selection and credentials.
pub async fn dial(
    opts: &ProxyOpts,
    host: &str,
    port: u16,
    extra_headers: &[(&str, &str)],
) -> Result<Dialed, DialError> {
    dial_with_env(opts, host, port, extra_headers, &real_env).await
}

async fn dial_with_env(
    opts: &ProxyOpts,
    host: &str,
    port: u16,
    extra_headers: &[(&str, &str)],
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<Dialed, DialError> {
    let target = Authority::new(host, port).map_err(|error| DialError::InvalidTarget {
        target: httptunnel::head::sanitize(&format!("{host}:{port}"), 300),
        error,
    })?;
    let mut headers = Headers::new();
    for (n, v) in extra_headers {
        headers.push(Header::new(n, v)?);
    }
    let budget = opts.timeout();
    let deadline = Instant::now() + budget;
    let proxies = select_proxies(opts, &target.host_for_resolver(), env)?;
    if proxies.is_empty() {
        let (stream, addr) = connect_tcp(
            &target.host_for_resolver(),
            port,
            deadline,
            &target.to_string(),
            false,
            budget,
        )
        .await?;
        debug!(target = %target, %addr, "connected directly");
        return Ok(Dialed {
            stream,
            pending: Vec::new(),
            pos: 0,
            first_hop: addr,
            via_proxy: false,
        });
    }
    let fallback = if proxies.iter().any(|p| p.credentials.is_none()) {
        fallback_credentials(opts, env)?
    } else {
        None
    };
    let hops: Vec<ProxyHop> = proxies
        .iter()
        .map(|p| {
            let credentials = p.credentials.clone().or_else(|| fallback.clone());
            ProxyHop {
                proxy: p.authority.clone(),
                memo: opts.auth_memory.take(&p.authority, credentials.as_ref()),
                credentials,
                auth_upfront: opts.proxy_auth_upfront,
            }
        })
        .collect();
    let unix_secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut hs = ChainHandshake::with_entropy(
        hops.clone(),
        target.clone(),
        headers,
        MAX_REPLY_HEAD,
        rand::random(),
        unix_secs,
    );
    let first = hs.first_proxy().clone();
    let (first_host, first_name) = (first.host_for_resolver(), first.to_string());
    let connect_first = || {
        connect_tcp(
            &first_host,
            first.port(),
            deadline,
            &first_name,
            true,
            budget,
        )
    };
    let (mut stream, mut addr) = connect_first().await?;
    debug!(proxy = %first, %addr, hops = hops.len(), target = %target, "connected to proxy");
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let timeout = |hs: &ChainHandshake| DialError::ProxyTimeout {
        proxy: hs.current_proxy().to_string(),
        after: budget,
    };
    loop {
        let mut lost = false;
        while let Some(out) = hs.poll_transmit() {
            match timeout_at(deadline, stream.write_all(&out)).await {
                Err(_) => return Err(timeout(&hs)),
                Ok(Ok(())) => {}
                Ok(Err(e)) if is_disconnect(&e) => {
                    lost = true;
                    break;
                }
                Ok(Err(error)) => {
                    return Err(DialError::ProxyIo {
                        proxy: hs.current_proxy().to_string(),
                        error,
                    })
                }
            }
        }
        let event = if lost {
            Some(
                hs.handle_eof()
                    .map_err(|e| DialError::from_hop(e, &target, &hops, String::new()))?,
            )
        } else {
            let p = match hs.handle_input(&buf) {
                Ok(p) => p,
                Err(e) => {
                    let body = if has_telling_body(&e) {
                        refusal_excerpt(&mut stream, &buf, deadline).await
                    } else {
                        String::new()
                    };
                    return Err(DialError::from_hop(e, &target, &hops, body));
                }
            };
            buf.drain(..p.consumed);
            if p.event.is_none() {
                if p.consumed > 0 {
                    continue;
                }
                buf.reserve(4096);
                match timeout_at(deadline, stream.read_buf(&mut buf)).await {
                    Err(_) => return Err(timeout(&hs)),
                    Ok(Ok(0)) => Some(
                        hs.handle_eof()
                            .map_err(|e| DialError::from_hop(e, &target, &hops, String::new()))?,
                    ),
                    Ok(Ok(_)) => None,
                    Ok(Err(e)) if is_disconnect(&e) => Some(
                        hs.handle_eof()
                            .map_err(|e| DialError::from_hop(e, &target, &hops, String::new()))?,
                    ),
                    Ok(Err(error)) => {
                        return Err(DialError::ProxyIo {
                            proxy: hs.current_proxy().to_string(),
                            error,
                        })
                    }
                }
            } else {
                p.event
            }
        };
        match event {
            None => {}
            Some(Event::HopEstablished { hop }) => {
                debug!(hop = hop + 1, proxy = %hops[hop].proxy, "proxy hop established");
            }
            Some(Event::Reconnect) => {
                debug!(proxy = %hs.current_proxy(), "reconnecting to send proxy credentials");
                (stream, addr) = connect_first().await?;
                buf.clear();
            }
            Some(Event::Established { .. }) => {
                debug!(target = %target, via = %first, "tunnel established");
                opts.auth_memory.store(&hops, hs.memos());
                return Ok(Dialed {
                    stream,
                    pending: buf,
                    pos: 0,
                    first_hop: addr,
                    via_proxy: true,
                });
            }
        }
    }
}

fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use tokio::net::TcpListener;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + Sync {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn proxy_url_parsing() {
        let p: ProxyUrl = "http://user:p%40ss%3Aw@proxy.corp:3128/".parse().unwrap();
        assert_eq!(p.authority.to_string(), "proxy.corp:3128");
        let c = p.credentials.as_ref().unwrap();
        assert_eq!((c.user(), c.password()), ("user", "p@ss:w"));
        assert_eq!(p.to_string(), "http://user:***@proxy.corp:3128");
        assert!(!format!("{p:?}").contains("p@ss"));
        let p: ProxyUrl = "proxy.corp".parse().unwrap();
        assert_eq!(p.authority.to_string(), "proxy.corp:80");
        let p: ProxyUrl = "HTTP://[::1]:8080".parse().unwrap();
        assert_eq!(p.authority.to_string(), "[::1]:8080");
        assert!(p.credentials.is_none());
        for bad in [
            "https://proxy:443",
            "socks5://proxy:1080",
            "http://proxy:3128/path",
            "http://proxy:99999",
            "http://:3128",
            "http://u%zz:p@proxy:1",
        ] {
            assert!(bad.parse::<ProxyUrl>().is_err(), "{bad}");
        }
    }

    #[test]
    fn no_proxy_rules() {
        let l = "localhost, .corp.example,intranet.example:8080, 10.0.0.0/8, 192.0.2.7, [::1], *.wild.example";
        for h in [
            "localhost",
            "a.corp.example",
            "corp.example",
            "intranet.example",
            "x.intranet.example",
            "10.1.2.3",
            "192.0.2.7",
            "::1",
            "[::1]",
            "WWW.Wild.Example.",
        ] {
            assert!(no_proxy_matches(l, h), "{h}");
        }
        for h in [
            "example.com",
            "notcorp.example",
            "192.0.2.8",
            "11.0.0.1",
            "::2",
            "localhost.evil",
        ] {
            assert!(!no_proxy_matches(l, h), "{h}");
        }
        assert!(no_proxy_matches("*", "anything"));
        assert!(!no_proxy_matches("", "anything"));
    }

    #[test]
    fn selection_order() {
        let explicit: ProxyUrl = "http://p1:1".parse().unwrap();
        let env = env_of(&[
            ("https_proxy", "http://envp:3128"),
            ("no_proxy", ".internal"),
        ]);
        let opts = ProxyOpts {
            proxy: vec![explicit.clone()],
            ..Default::default()
        };
        // Explicit --proxy wins and ignores no_proxy.
        assert_eq!(
            select_proxies(&opts, "a.internal", &env).unwrap(),
            vec![explicit]
        );
        let opts = ProxyOpts::default();
        assert_eq!(
            select_proxies(&opts, "vpn.example", &env).unwrap()[0]
                .authority
                .to_string(),
            "envp:3128"
        );
        assert!(select_proxies(&opts, "a.internal", &env)
            .unwrap()
            .is_empty());
        let opts = ProxyOpts {
            no_proxy: true,
            ..Default::default()
        };
        assert!(select_proxies(&opts, "vpn.example", &env)
            .unwrap()
            .is_empty());
        let upper = env_of(&[("HTTPS_PROXY", "envq:8080"), ("NO_PROXY", "*")]);
        assert!(select_proxies(&ProxyOpts::default(), "x", &upper)
            .unwrap()
            .is_empty());
        let upper = env_of(&[("HTTPS_PROXY", "envq:8080")]);
        assert_eq!(
            select_proxies(&ProxyOpts::default(), "x", &upper)
                .unwrap()
                .len(),
            1
        );
        let bad = env_of(&[("https_proxy", "https://tls-proxy:443")]);
        assert!(matches!(
            select_proxies(&ProxyOpts::default(), "x", &bad),
            Err(DialError::BadProxyEnv {
                var: "https_proxy",
                ..
            })
        ));
        assert!(select_proxies(&ProxyOpts::default(), "x", &env_of(&[]))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn credentials_sources() {
        let dir = std::env::temp_dir().join(format!("t443-dial-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("creds");
        std::fs::write(&f, "# proxy\nalice:pa:ss\n").unwrap();
        let opts = ProxyOpts {
            proxy_credentials_file: Some(f.clone()),
            ..Default::default()
        };
        let env = env_of(&[
            ("TUNNEL443_PROXY_USER", "bob"),
            ("TUNNEL443_PROXY_PASSWORD", "pw"),
        ]);
        let c = fallback_credentials(&opts, &env).unwrap().unwrap();
        assert_eq!((c.user(), c.password()), ("alice", "pa:ss"));
        let c = fallback_credentials(&ProxyOpts::default(), &env)
            .unwrap()
            .unwrap();
        assert_eq!((c.user(), c.password()), ("bob", "pw"));
        assert!(fallback_credentials(&ProxyOpts::default(), &env_of(&[]))
            .unwrap()
            .is_none());
        std::fs::write(&f, "no-colon\n").unwrap();
        let e = fallback_credentials(&opts, &env).unwrap_err().to_string();
        assert!(e.contains("USER:PASSWORD"), "{e}");
        assert!(
            !e.contains("no-colon"),
            "the file content is not echoed: {e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A scripted proxy: answers each accepted connection with the next
    /// reply and records the requests.
    async fn scripted_proxy(
        replies: Vec<Vec<u8>>,
    ) -> (SocketAddr, tokio::task::JoinHandle<Vec<String>>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let h = tokio::spawn(async move {
            let mut seen = Vec::new();
            for reply in replies {
                let (mut s, _) = l.accept().await.unwrap();
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = s.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                seen.push(String::from_utf8_lossy(&got).into_owned());
                s.write_all(&reply).await.unwrap();
                if reply.windows(5).any(|w| w == b" 200 ") {
                    // Echo one message through the "tunnel".
                    let n = s.read(&mut buf).await.unwrap();
                    s.write_all(&buf[..n]).await.unwrap();
                }
            }
            seen
        });
        (addr, h)
    }

    #[tokio::test]
    async fn dial_replays_bytes_after_the_head() {
        let (addr, h) = scripted_proxy(vec![b"HTTP/1.0 200 OK\n\nEARLY".to_vec()]).await;
        let opts = ProxyOpts {
            proxy: vec![format!("http://{addr}").parse().unwrap()],
            ..Default::default()
        };
        let mut d = dial_with_env(
            &opts,
            "vpn.example.com",
            443,
            &[("SSTPVERSION", "1.0")],
            &env_of(&[]),
        )
        .await
        .unwrap();
        assert!(d.via_proxy());
        assert_eq!(d.first_hop(), addr);
        let mut early = [0u8; 5];
        d.read_exact(&mut early).await.unwrap();
        assert_eq!(&early, b"EARLY");
        d.write_all(b"ping").await.unwrap();
        let mut back = [0u8; 4];
        d.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"ping");
        let seen = h.await.unwrap();
        assert_eq!(
            seen[0],
            "CONNECT vpn.example.com:443 HTTP/1.1\r\nHost: vpn.example.com:443\r\nSSTPVERSION: 1.0\r\n\r\n"
        );
    }

    #[tokio::test]
    async fn dial_retries_407_on_new_connection_with_env_credentials() {
        let (addr, h) = scripted_proxy(vec![
            b"HTTP/1.1 407 Auth\r\nProxy-Authenticate: Basic realm=\"r\"\r\nConnection: close\r\n\r\n".to_vec(),
            b"HTTP/1.1 200 OK\r\n\r\n".to_vec(),
        ])
        .await;
        let opts = ProxyOpts {
            proxy: vec![format!("http://{addr}").parse().unwrap()],
            ..Default::default()
        };
        let env = env_of(&[
            ("TUNNEL443_PROXY_USER", "hello"),
            ("TUNNEL443_PROXY_PASSWORD", "world"),
        ]);
        let mut d = dial_with_env(&opts, "10.0.0.1", 443, &[], &env)
            .await
            .unwrap();
        d.write_all(b"x").await.unwrap();
        let mut b = [0u8; 1];
        d.read_exact(&mut b).await.unwrap();
        let seen = h.await.unwrap();
        assert!(!seen[0].contains("Proxy-Authorization"));
        assert!(seen[1].contains("Proxy-Authorization: Basic aGVsbG86d29ybGQ=\r\n"));
    }

    #[tokio::test]
    async fn dial_errors_name_the_proxy() {
        type Check = fn(&DialError) -> bool;
        let cases: Vec<(&[u8], Check)> = vec![
            (b"HTTP/1.1 403 Forbidden\r\n\r\n", |e| {
                matches!(e, DialError::ProxyDenied { status: 403, .. })
            }),
            (
                b"HTTP/1.1 407 Auth\r\nProxy-Authenticate: Basic realm=\"r\"\r\n\r\n",
                |e| {
                    matches!(
                        e,
                        DialError::ProxyAuthRequired {
                            had_credentials: false,
                            ..
                        }
                    )
                },
            ),
            (b"HTTP/1.1 503 Service Unavailable\r\n\r\n", |e| {
                matches!(e, DialError::ProxyUpstream { status: 503, .. })
            }),
            (b"HTTP/1.1 502 Bad Gateway\r\n\r\n", |e| {
                matches!(e, DialError::ProxyUpstream { status: 502, .. })
            }),
            (b"SSH-2.0-OpenSSH_9.2\r\n", |e| {
                matches!(e, DialError::MalformedReply { .. })
            }),
            (b"", |e| matches!(e, DialError::ProxyClosed { .. })),
        ];
        for (reply, check) in cases {
            let (addr, _h) = scripted_proxy(vec![reply.to_vec()]).await;
            let opts = ProxyOpts {
                proxy: vec![format!("http://{addr}").parse().unwrap()],
                ..Default::default()
            };
            let e = dial_with_env(&opts, "t.example", 443, &[], &env_of(&[]))
                .await
                .unwrap_err();
            assert!(check(&e), "{e:?}");
            assert!(e.to_string().contains(&addr.to_string()), "{e}");
        }
    }

    #[tokio::test]
    async fn refusals_show_the_first_words_of_their_body() {
        let page = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 64\r\n\r\n\
            <html><title>Denied</title><p>Port 22 is not allowed.</p></html>"
            .to_vec();
        let chunked = b"HTTP/1.1 502 Bad Gateway\r\nTransfer-Encoding: chunked\r\n\r\n\
            9\r\nNo route.\r\n0\r\n\r\n"
            .to_vec();
        let bare = b"HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n".to_vec();
        for (reply, says) in [
            (page, "; the proxy says: Denied Port 22 is not allowed."),
            (chunked, "; the proxy says: No route."),
            (bare, ""),
        ] {
            let (addr, _h) = scripted_proxy(vec![reply]).await;
            let opts = ProxyOpts {
                proxy: vec![format!("http://{addr}").parse().unwrap()],
                ..Default::default()
            };
            let e = dial_with_env(&opts, "t.example", 22, &[], &env_of(&[]))
                .await
                .unwrap_err();
            assert_eq!(e.failure(), DialFailure::Proxy);
            let text = e.to_string();
            if says.is_empty() {
                assert!(!text.contains("says"), "{text}");
            } else {
                assert!(text.ends_with(says), "{text}");
            }
        }
    }

    #[tokio::test]
    async fn an_unreachable_proxy_is_a_proxy_failure_said_once() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let opts = ProxyOpts {
            proxy: vec![format!("http://{addr}").parse().unwrap()],
            ..Default::default()
        };
        let e = dial_with_env(&opts, "t.example", 443, &[], &env_of(&[]))
            .await
            .unwrap_err();
        assert!(matches!(e, DialError::ProxyUnreachable { .. }), "{e:?}");
        assert_eq!(e.failure(), DialFailure::Proxy);
        // As anyhow prints it with its causes: the OS error once.
        let text = format!("{:#}", anyhow::Error::new(e));
        assert_eq!(text.matches("os error").count(), 1, "{text}");
        assert!(
            text.starts_with(&format!("cannot connect to proxy {addr}: ")),
            "{text}"
        );
    }

    #[tokio::test]
    async fn dial_times_out_on_a_silent_proxy() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let _keep = tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(10)).await;
            drop(s);
        });
        let opts = ProxyOpts {
            proxy: vec![format!("http://{addr}").parse().unwrap()],
            proxy_timeout: Some(1),
            ..Default::default()
        };
        let t0 = std::time::Instant::now();
        let e = dial_with_env(&opts, "t.example", 443, &[], &env_of(&[]))
            .await
            .unwrap_err();
        assert!(matches!(e, DialError::ProxyTimeout { .. }), "{e:?}");
        assert!(t0.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn dial_direct_and_refused() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let d = dial_with_env(
            &ProxyOpts::default(),
            "127.0.0.1",
            addr.port(),
            &[],
            &env_of(&[]),
        )
        .await
        .unwrap();
        assert!(!d.via_proxy());
        assert_eq!(d.first_hop(), addr);
        drop(l);
        let e = dial_with_env(
            &ProxyOpts::default(),
            "127.0.0.1",
            addr.port(),
            &[],
            &env_of(&[]),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, DialError::Connect { .. }), "{e:?}");
        assert_eq!(e.failure(), DialFailure::Target);
        let text = format!("{:#}", anyhow::Error::new(e));
        assert_eq!(text.matches("os error").count(), 1, "{text}");
        let e = dial_with_env(&ProxyOpts::default(), "bad host", 1, &[], &env_of(&[]))
            .await
            .unwrap_err();
        assert!(matches!(e, DialError::InvalidTarget { .. }), "{e:?}");
        assert_eq!(e.failure(), DialFailure::Usage);
        assert!(
            e.to_string().starts_with("invalid target \"bad host:1\""),
            "{e}"
        );
        let e = dial_with_env(
            &ProxyOpts::default(),
            "h",
            1,
            &[("X", "a\r\nB: c")],
            &env_of(&[]),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, DialError::InvalidHeader(_)), "{e:?}");
    }
}
