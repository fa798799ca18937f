//! `tunnel443 proxy`: a CONNECT-only forward proxy.
//!
//! The request checks and policy are `httptunnel::server` (Luotonen's draft:
//! CONNECT, 407 + Basic, allowed ports; MS-SSTP §4.5 for refusing SSTP by its
//! `SSTPVERSION` header). This module is the tokio driver around it:
//!
//! * admission: the server's ([`crate::server::admission`]): caps on
//!   concurrent connections and on connections still sending their head,
//!   overall and per client (IPv4 address or IPv6 /64); over a connection
//!   cap a connection gets `503` (a bounded number of those are answered at
//!   once, the rest are closed and counted); over the head cap the oldest
//!   unfinished head is closed; the head budget shrinks from
//!   `--head-timeout` to 2 s as heads fill the cap; refusals and
//!   evictions are summarised in one `admission:` line per 10 s;
//! * the request head: at most `--max-head-bytes`, within `--head-timeout`
//!   (`431` / `408` otherwise), malformed -> `400`;
//! * the target: every resolved address is checked against the network
//!   policy before connecting (no DNS-rebinding way around it), or the
//!   request goes to `--upstream` through [`crate::dial`];
//! * relaying with Luotonen's close rules and an idle timeout
//!   ([`relay`]);
//! * one access-log line per connection (target `tunnel443::access`) with
//!   client, user, target, status, bytes each way, duration and result.

pub(crate) mod ifaddrs;
pub mod relay;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use httptunnel::{
    Accepted, BasicUsers, Credentials, HeadError, Headers, Host, IpNet, NetDenial, Parsed, PortSet,
    Refusal, RequestHead, ServerPolicy, Status,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::{timeout_at, Instant};
use tracing::{debug, info, warn};

use crate::dial::{DialError, ProxyOpts, ProxyUrl};
use crate::server::admission::{Admission, Limits, Refusal as AdmissionRefusal, Ticket};

fn parse_secs(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("\"{s}\" is not a number of seconds"))?;
    if !(0.0..=1e7).contains(&v) {
        return Err(format!("{s} is out of range (0 to 10000000 seconds)"));
    }
    Ok(Duration::from_secs_f64(v))
}

fn parse_net(s: &str) -> Result<IpNet, String> {
    if let Ok(n) = s.parse::<IpNet>() {
        return Ok(n);
    }
    s.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("\"{s}\" is not an address or CIDR network"))
}

/// Arguments of `tunnel443 proxy`.
#[derive(clap::Args, Debug)]
pub struct ProxyArgs {
    /// Address to listen on (repeatable).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:3128")]
    pub listen: Vec<SocketAddr>,
    /// Also allow tunnels to this port or port range (N or N-M, repeatable);
    /// 443 and 563 are always allowed.
    #[arg(long = "allow-port", value_name = "PORT[-PORT]")]
    pub allow_port: Vec<String>,
    /// Allow targets in this network (CIDR or address, repeatable). Needed
    /// to reach loopback, link-local or this host's own addresses, which are
    /// denied by default. The most specific matching rule wins.
    #[arg(long = "allow-net", value_name = "CIDR", value_parser = parse_net)]
    pub allow_net: Vec<IpNet>,
    /// Deny targets in this network (CIDR or address, repeatable).
    #[arg(long = "deny-net", value_name = "CIDR", value_parser = parse_net)]
    pub deny_net: Vec<IpNet>,
    /// Deny every target address that no --allow-net covers.
    #[arg(long)]
    pub deny_by_default: bool,
    /// Require Basic proxy authentication with this user (NAME:PASSWORD,
    /// repeatable). Visible in the process list: prefer --users-file.
    #[arg(long = "user", value_name = "NAME:PASSWORD")]
    pub user: Vec<String>,
    /// File of NAME:PASSWORD lines (# comments) for Basic authentication.
    #[arg(long, value_name = "FILE")]
    pub users_file: Option<PathBuf>,
    /// Realm sent in the 407 challenge.
    #[arg(long, default_value = "tunnel443")]
    pub realm: String,
    /// Reach targets through this upstream HTTP proxy
    /// (http://[USER:PASS@]HOST:PORT) instead of connecting directly. Ports,
    /// users and IP-literal targets are still checked here; names are
    /// resolved (and their addresses checked) by the upstream proxy.
    #[arg(long, value_name = "URL", value_parser = |s: &str| s.parse::<ProxyUrl>())]
    pub upstream: Option<ProxyUrl>,
    /// Refuse SSTP tunnels (CONNECT requests with an SSTPVERSION header,
    /// MS-SSTP 4.5) with 403.
    #[arg(long)]
    pub refuse_sstp: bool,
    /// Largest accepted request head, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = httphead::DEFAULT_MAX_HEAD)]
    pub max_head_bytes: usize,
    /// Seconds a client has to send its whole request head.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_secs)]
    pub head_timeout: Duration,
    /// Close a tunnel after this many seconds without traffic (0: never).
    #[arg(long, value_name = "SECS", default_value = "300", value_parser = parse_secs)]
    pub idle_timeout: Duration,
    /// Seconds allowed for resolving and connecting to the target.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_secs)]
    pub connect_timeout: Duration,
    /// After one side of a tunnel closes, seconds the other direction may
    /// still send before both are closed (0: close at once, as in the
    /// original CONNECT draft).
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = parse_secs)]
    pub half_close_timeout: Duration,
    /// Most concurrent connections overall.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_tunnels: usize,
    /// Most concurrent connections from one client address (IPv6: one /64).
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_tunnels_per_client: usize,
    /// Most connections still sending their request head; over it the
    /// oldest is closed to make room.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub max_handshakes: usize,
    /// Most connections still sending their request head from one client
    /// address (IPv6: one /64).
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub max_handshakes_per_client: usize,
}

/// How many over-the-cap connections are answered with 503 at once; beyond
/// that they are closed without an answer.
const MAX_PENDING_REFUSALS: usize = 64;

/// Time to write a refusal and let the client read it before closing.
const REFUSAL_LINGER: Duration = Duration::from_secs(2);

struct Shared {
    policy: ServerPolicy,
    upstream: Option<ProxyOpts>,
    max_head: usize,
    head_timeout: Duration,
    connect_timeout: Duration,
    limits: relay::Limits,
    /// The server's admission control: connection and head-phase caps
    /// (per client key), the head budget tightening under pressure,
    /// refusals counted and summarised in one line per interval.
    admission: Arc<Admission>,
    refusals: Arc<Semaphore>,
    stop: watch::Receiver<bool>,
}

fn load_users(args: &ProxyArgs) -> anyhow::Result<Option<BasicUsers>> {
    let mut users = BasicUsers::new();
    for u in &args.user {
        let c = Credentials::from_colon_pair(u)
            .map_err(|e| anyhow::anyhow!("--user: expected NAME:PASSWORD ({e})"))?;
        users.insert(&c);
    }
    if let Some(path) = &args.users_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading users file {}", path.display()))?;
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(m) = std::fs::metadata(path) {
                if m.permissions().mode() & 0o077 != 0 {
                    warn!(file = %path.display(), "users file is readable by group or others; chmod 600 it");
                }
            }
        }
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_end();
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let c = Credentials::from_colon_pair(line).map_err(|e| {
                anyhow::anyhow!("{}:{}: expected NAME:PASSWORD ({e})", path.display(), i + 1)
            })?;
            users.insert(&c);
        }
        if users.is_empty() {
            anyhow::bail!("users file {} has no users", path.display());
        }
    }
    Ok((!users.is_empty()).then_some(users))
}

fn build_policy(args: &ProxyArgs, listen: &[SocketAddr]) -> anyhow::Result<ServerPolicy> {
    let mut ports = PortSet::default();
    for p in &args.allow_port {
        ports
            .add_spec(p)
            .map_err(|e| anyhow::anyhow!("--allow-port: {e}"))?;
    }
    let mut policy = ServerPolicy {
        ports,
        users: load_users(args)?,
        realm: args.realm.clone(),
        refuse_sstp: args.refuse_sstp,
        ..ServerPolicy::default()
    };
    for n in &args.allow_net {
        policy.nets.allow(*n);
    }
    for n in &args.deny_net {
        policy.nets.deny(*n);
    }
    policy.nets.default_deny = args.deny_by_default;
    match ifaddrs::local_addresses() {
        Ok(addrs) => addrs.into_iter().for_each(|a| policy.nets.add_own(a)),
        Err(e) => {
            warn!(error = %e, "cannot list this host's addresses; only the listen addresses are protected")
        }
    }
    for l in listen {
        policy.nets.add_own(l.ip());
    }
    Ok(policy)
}

/// Runs the proxy until SIGINT or SIGTERM.
pub async fn run(args: ProxyArgs) -> anyhow::Result<()> {
    if [
        args.max_tunnels,
        args.max_tunnels_per_client,
        args.max_handshakes,
        args.max_handshakes_per_client,
    ]
    .contains(&0)
    {
        anyhow::bail!("--max-tunnels, --max-tunnels-per-client, --max-handshakes and --max-handshakes-per-client must be at least 1");
    }
    if args.max_head_bytes < 64 {
        anyhow::bail!("--max-head-bytes must be at least 64");
    }
    let mut listeners = Vec::new();
    for addr in &args.listen {
        let l = TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr}"))?;
        listeners.push(l);
    }
    let bound: Vec<SocketAddr> = listeners
        .iter()
        .map(|l| l.local_addr())
        .collect::<io::Result<_>>()?;
    let policy = build_policy(&args, &bound)?;
    let upstream = args.upstream.clone().map(|u| ProxyOpts {
        proxy: vec![u],
        proxy_timeout: Some(args.connect_timeout.as_secs().max(1)),
        ..ProxyOpts::default()
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        policy,
        upstream,
        max_head: args.max_head_bytes,
        head_timeout: args.head_timeout,
        connect_timeout: args.connect_timeout,
        limits: relay::Limits {
            idle: (!args.idle_timeout.is_zero()).then_some(args.idle_timeout),
            half_close: args.half_close_timeout,
        },
        admission: Admission::new(
            Limits {
                max_connections: args.max_tunnels,
                max_per_source: args.max_tunnels_per_client,
                max_handshakes: args.max_handshakes,
                max_handshakes_per_source: args.max_handshakes_per_client,
                handshake_budget: args.head_timeout,
                handshake_budget_min: args.head_timeout.min(Duration::from_secs(2)),
            },
            true,
        ),
        refusals: Arc::new(Semaphore::new(MAX_PENDING_REFUSALS)),
        stop: stop_rx,
    });
    crate::tasks::spawn(shared.admission.clone().run_housekeeping());
    for (l, addr) in listeners.into_iter().zip(&bound) {
        info!(
            addr = %addr,
            auth = shared.policy.users.is_some(),
            upstream = shared.upstream.as_ref().map(|u| display(&u.proxy[0].authority)),
            "CONNECT proxy listening"
        );
        crate::tasks::spawn(accept_loop(shared.clone(), l));
    }

    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    info!("stopping: closing tunnels");
    let _ = stop_tx.send(true);
    let deadline = Instant::now() + Duration::from_secs(5);
    while shared.admission.snapshot().connections > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Key for the per-client cap: the IPv4 address, or the IPv6 /64.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let mut o = v6.octets();
            o[8..].fill(0);
            IpAddr::V6(o.into())
        }
        v4 => v4,
    }
}

/// The access-log result of a refusal.
fn refusal_result(r: AdmissionRefusal) -> &'static str {
    match r {
        AdmissionRefusal::TotalCap => "busy_total",
        AdmissionRefusal::PerSource | AdmissionRefusal::HandshakesPerSource => "busy_client",
    }
}

/// Resolves once the stop flag is set.
async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    let mut stop = std::pin::pin!(stopped(shared.stop.clone()));
    loop {
        let (sock, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut stop => return,
        };
        let _ = sock.set_nodelay(true);
        let admitted = shared
            .admission
            .admit(client_key(peer.ip()), std::time::Instant::now());
        match admitted {
            Ok(ticket) => {
                crate::tasks::spawn(handle(shared.clone(), sock, peer, ticket));
            }
            // A few refusals are answered (503) and logged; beyond that
            // they are closed and only counted (the admission summary).
            Err(why) => {
                if let Ok(p) = shared.refusals.clone().try_acquire_owned() {
                    let why = refusal_result(why);
                    crate::tasks::spawn(refuse_busy(shared.clone(), sock, peer, why, p));
                }
            }
        }
    }
}

#[derive(Default)]
struct AccessEntry {
    client: Option<SocketAddr>,
    /// The authenticated user.
    user: Option<String>,
    /// The user name of credentials that were refused.
    rejected_user: Option<String>,
    target: Option<String>,
    sstp: bool,
    status: Option<u16>,
    up: u64,
    down: u64,
    started: Option<Instant>,
    result: &'static str,
}

/// One line per connection; fields that do not apply (no user, no target
/// yet, no status sent) are left out.
fn access_log(e: &AccessEntry) {
    let duration_ms = e
        .started
        .map(|s| s.elapsed().as_millis() as u64)
        .unwrap_or(0);
    info!(
        target: "tunnel443::access",
        client = e.client.map(display),
        user = e.user.as_deref().map(display),
        rejected_user = e.rejected_user.as_deref().map(display),
        target = e.target.as_deref().map(display),
        status = e.status,
        bytes_up = e.up,
        bytes_down = e.down,
        duration_ms,
        sstp = e.sstp,
        result = %e.result,
        "tunnel"
    );
}

/// Writes `resp`, half-closes, and reads (discarding) for a short while so
/// the client sees the answer instead of a reset.
async fn answer_and_close<S: AsyncRead + AsyncWrite + Unpin>(sock: &mut S, resp: &[u8]) {
    let deadline = Instant::now() + REFUSAL_LINGER;
    if timeout_at(deadline, sock.write_all(resp)).await.is_err() {
        return;
    }
    let _ = timeout_at(deadline, sock.shutdown()).await;
    let mut sink = [0u8; 4096];
    let mut drained = 0usize;
    while drained < 64 * 1024 {
        match timeout_at(deadline, sock.read(&mut sink)).await {
            Ok(Ok(n)) if n > 0 => drained += n,
            _ => break,
        }
    }
}

async fn refuse_busy(
    shared: Arc<Shared>,
    mut sock: TcpStream,
    peer: SocketAddr,
    why: &'static str,
    _permit: OwnedSemaphorePermit,
) {
    let started = Instant::now();
    // Read the request head (briefly) so the 503 is an answer to it.
    let mut buf = Vec::new();
    let deadline = started + REFUSAL_LINGER.min(shared.head_timeout);
    let _ = read_request(&mut sock, &mut buf, shared.max_head, deadline).await;
    let resp = Status::Unavailable.response(
        "Too many tunnels; try again later.",
        headers(&[("Retry-After", "5")]),
    );
    answer_and_close(&mut sock, &resp).await;
    access_log(&AccessEntry {
        client: Some(peer),
        status: Some(503),
        started: Some(started),
        result: why,
        ..AccessEntry::default()
    });
}

fn headers(list: &[(&str, &str)]) -> Headers {
    let mut h = Headers::new();
    for (n, v) in list {
        if let Ok(x) = httptunnel::Header::new(n, v) {
            h.push(x);
        }
    }
    h
}

#[derive(Debug)]
enum ReadFail {
    Timeout,
    TooLarge,
    Malformed(HeadError),
    Closed,
}

/// Reads until a complete request head is in `buf`; returns it and its
/// length (the rest of `buf` is tunnel data).
async fn read_request<S: AsyncRead + Unpin>(
    sock: &mut S,
    buf: &mut Vec<u8>,
    max: usize,
    deadline: Instant,
) -> Result<(RequestHead, usize), ReadFail> {
    loop {
        if !buf.is_empty() {
            match RequestHead::parse(buf, max) {
                Ok(Parsed::Complete { head, len }) => return Ok((head, len)),
                Ok(Parsed::Partial) => {}
                Err(e) if e.is_too_large() => return Err(ReadFail::TooLarge),
                Err(e) => return Err(ReadFail::Malformed(e)),
            }
        }
        let room = (max + 1).saturating_sub(buf.len()).clamp(1, 8192);
        let mut chunk = vec![0u8; room];
        match timeout_at(deadline, sock.read(&mut chunk)).await {
            Err(_) => return Err(ReadFail::Timeout),
            Ok(Ok(0)) | Ok(Err(_)) => return Err(ReadFail::Closed),
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Why the target could not be reached: the status to answer and a label.
struct Unreachable {
    status: Status,
    result: &'static str,
    detail: String,
}

async fn open_target(shared: &Shared, acc: &Accepted) -> Result<Box<dyn Stream>, Unreachable> {
    let deadline = Instant::now() + shared.connect_timeout;
    let target = &acc.target;
    if let Some(up) = &shared.upstream {
        let extra: Vec<(&str, &str)> = acc
            .sstp_version
            .as_deref()
            .map(|v| vec![("SSTPVERSION", v)])
            .unwrap_or_default();
        return match crate::dial::dial(up, &target.host_for_resolver(), target.port(), &extra).await
        {
            Ok(d) => Ok(Box::new(d)),
            Err(e) => {
                let (status, result) = match &e {
                    DialError::ProxyDenied { .. } => (Status::Forbidden, "upstream_denied"),
                    DialError::ProxyTimeout { .. } | DialError::ConnectTimeout { .. } => {
                        (Status::GatewayTimeout, "upstream_timeout")
                    }
                    _ => (Status::BadGateway, "upstream_failed"),
                };
                debug!(error = %e, "upstream dial failed");
                Err(Unreachable {
                    status,
                    result,
                    detail: "The upstream proxy could not open the tunnel.".into(),
                })
            }
        };
    }
    let addrs: Vec<IpAddr> = match target.host() {
        Host::Ip(ip) => vec![*ip],
        Host::Name(name) => {
            match timeout_at(
                deadline,
                tokio::net::lookup_host((name.as_str(), target.port())),
            )
            .await
            {
                Err(_) => {
                    return Err(Unreachable {
                        status: Status::GatewayTimeout,
                        result: "dns_timeout",
                        detail: "Resolving the target timed out.".into(),
                    })
                }
                Ok(Err(_)) => {
                    return Err(Unreachable {
                        status: Status::BadGateway,
                        result: "dns_failed",
                        detail: "The target name does not resolve.".into(),
                    })
                }
                Ok(Ok(it)) => it.map(|a| a.ip()).collect(),
            }
        }
    };
    let mut denial: Option<NetDenial> = None;
    let allowed: Vec<IpAddr> = addrs
        .into_iter()
        .filter(|ip| match shared.policy.nets.check(*ip) {
            Ok(()) => true,
            Err(d) => {
                denial.get_or_insert(d);
                false
            }
        })
        .collect();
    if allowed.is_empty() {
        return Err(match denial {
            Some(d) => {
                let r = Refusal::NetDenied(d);
                Unreachable {
                    status: r.status(),
                    result: r.label(),
                    detail: "Tunnels to this address are not allowed.".into(),
                }
            }
            None => Unreachable {
                status: Status::BadGateway,
                result: "dns_failed",
                detail: "The target name has no addresses.".into(),
            },
        });
    }
    let mut timed_out = false;
    for ip in allowed {
        let addr = SocketAddr::new(ip, target.port());
        match timeout_at(deadline, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                return Ok(Box::new(s));
            }
            Ok(Err(e)) => debug!(%addr, error = %e, "target connect failed"),
            Err(_) => {
                timed_out = true;
                break;
            }
        }
    }
    Err(if timed_out {
        Unreachable {
            status: Status::GatewayTimeout,
            result: "connect_timeout",
            detail: "Connecting to the target timed out.".into(),
        }
    } else {
        Unreachable {
            status: Status::BadGateway,
            result: "connect_failed",
            detail: "The target refused the connection or is unreachable.".into(),
        }
    })
}

async fn handle(shared: Arc<Shared>, mut sock: TcpStream, peer: SocketAddr, ticket: Ticket) {
    let mut log = AccessEntry {
        client: Some(peer),
        started: Some(Instant::now()),
        ..AccessEntry::default()
    };
    let evicted = tokio::select! {
        _ = serve(&shared, &mut sock, &mut log, &ticket) => false,
        _ = ticket.closed() => true,
    };
    // Closed by admission (made room for a newer connection, or over the
    // head budget) before its request: counted and summarised there, not
    // one access line each.
    if !evicted {
        access_log(&log);
    }
    drop(sock);
    drop(ticket);
}

async fn serve(shared: &Shared, sock: &mut TcpStream, log: &mut AccessEntry, ticket: &Ticket) {
    let mut buf = Vec::with_capacity(1024);
    let deadline = Instant::now() + shared.head_timeout;
    let (head, head_len) = match read_request(sock, &mut buf, shared.max_head, deadline).await {
        Ok(x) => x,
        Err(f) => {
            let (status, result, detail) = match f {
                ReadFail::Timeout => (
                    Status::RequestTimeout,
                    "head_timeout",
                    "The request head did not arrive in time.",
                ),
                ReadFail::TooLarge => (
                    Status::HeadTooLarge,
                    "head_too_large",
                    "The request head is too large.",
                ),
                ReadFail::Malformed(e) => {
                    debug!(client = log.client.map(display), error = %e, "malformed request head");
                    (
                        Status::BadRequest,
                        "bad_request",
                        "Malformed request: expected 'CONNECT host:port HTTP/1.1'.",
                    )
                }
                ReadFail::Closed => {
                    log.result = "client_closed";
                    return;
                }
            };
            log.status = Some(status.code());
            log.result = result;
            answer_and_close(sock, &status.response(detail, Headers::new())).await;
            return;
        }
    };
    log.sstp = head.headers().contains("sstpversion");
    if head.method().eq_ignore_ascii_case("CONNECT") {
        log.target = Some(httptunnel::head::sanitize(head.target(), 300));
    }
    // Authenticate first (407), then apply the policy (403): nothing about
    // the port or address rules before the credentials are right, and a
    // refusal names the user who was refused.
    let decided = shared.policy.authenticate(&head).and_then(|who| {
        log.user = who.user.clone();
        shared.policy.authorise(&head, who)
    });
    let acc = match decided {
        Ok(a) => a,
        Err(r) => {
            log.status = Some(r.status().code());
            log.result = r.label();
            if let Refusal::AuthRequired { attempted_user } = &r {
                log.rejected_user = attempted_user.clone();
            }
            answer_and_close(sock, &r.response(&shared.policy.realm)).await;
            return;
        }
    };
    log.target = Some(acc.target.to_string());
    // A complete, allowed request: out of the head-phase caps and budget.
    ticket.established();
    let server = match open_target(shared, &acc).await {
        Ok(s) => s,
        Err(u) => {
            log.status = Some(u.status.code());
            log.result = u.result;
            answer_and_close(sock, &u.status.response(&u.detail, Headers::new())).await;
            return;
        }
    };
    let ok = httptunnel::server::established_response();
    if timeout_at(Instant::now() + shared.head_timeout, sock.write_all(&ok))
        .await
        .map_or(true, |r| r.is_err())
    {
        log.status = Some(200);
        log.result = "client_error";
        return;
    }
    log.status = Some(200);
    let stop = stopped(shared.stop.clone());
    let out = relay::relay(sock, &buf[head_len..], server, shared.limits, stop).await;
    log.up = out.up;
    log.down = out.down;
    log.result = out.end.label();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_keys() {
        let k = |s: &str| client_key(s.parse().unwrap()).to_string();
        assert_eq!(k("192.0.2.1"), "192.0.2.1");
        assert_eq!(k("::ffff:192.0.2.1"), "192.0.2.1");
        assert_eq!(k("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::");
    }

    #[test]
    fn parsers() {
        assert_eq!(parse_secs("0.5").unwrap(), Duration::from_millis(500));
        assert!(parse_secs("-1").is_err());
        assert!(parse_secs("x").is_err());
        assert_eq!(parse_net("10.0.0.1").unwrap().to_string(), "10.0.0.1/32");
        assert_eq!(parse_net("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert!(parse_net("10.0.0.0/33").is_err());
    }

    #[tokio::test]
    async fn read_request_limits() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        b.write_all(b"CONNECT h.example:443 HTTP/1.1\r\n\r\nTLS")
            .await
            .unwrap();
        let mut buf = Vec::new();
        let (h, len) = read_request(
            &mut a,
            &mut buf,
            1024,
            Instant::now() + Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(h.target(), "h.example:443");
        assert_eq!(&buf[len..], b"TLS");

        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        b.write_all(&[b'A'; 2000]).await.unwrap();
        let mut buf = Vec::new();
        let r = read_request(
            &mut a,
            &mut buf,
            1024,
            Instant::now() + Duration::from_secs(5),
        )
        .await;
        assert!(matches!(r, Err(ReadFail::TooLarge)), "{r:?}");
        assert!(buf.len() <= 1025);

        let (mut a, _b) = tokio::io::duplex(64);
        let mut buf = Vec::new();
        let r = read_request(
            &mut a,
            &mut buf,
            1024,
            Instant::now() + Duration::from_millis(50),
        )
        .await;
        assert!(matches!(r, Err(ReadFail::Timeout)), "{r:?}");
    }
}
