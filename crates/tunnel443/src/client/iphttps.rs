//! `tunnel443 client iphttps://HOST[:PORT]/PATH`: the IP-HTTPS client
//! (MS-IPHTTPS §3.1).
//!
//! The `iphttps` crate's [`Link`] holds the §3.1.1 states (Enabled,
//! LinkDown, Established, LinkUp, Disabled) and the §3.1.2.1 reconnect timer
//! (30 s, then the time elapsed since the first failure, at most 15
//! minutes, reset when the link comes up); this driver carries out its
//! events: dial (directly or through the CONNECT proxy chain of
//! [`crate::dial`]), TLS with the client certificate, the POST, a TUN
//! device with MTU 1280, a Router Solicitation at link up, and SLAAC plus
//! the default route from the Router Advertisement. The client applies the
//! Router Advertisements itself: they are not passed to the kernel, whose
//! RA processing is off on the device ([`crate::tun`]).
//!
//! Link MTU: the POST announces `--link-mtu` (default 65535) in
//! `X-Tunnel443-Link-MTU` ([`iphttps::mtu`], our extension; other servers
//! ignore it and keep the default 1280 of §3.1.5.3). The RA's MTU option
//! (RFC 4861 §4.6.4, §6.3.4) sets the device's MTU when it lies within
//! 1280..=announced, and is ignored with a log line otherwise; the device
//! goes back to 1280 when the link goes down. Rootless mode announces
//! nothing: its user-space stack stays at 1280.
//!
//! Rootless (`--socks5`, `--forward`): no TUN device; each connection gets
//! a user-space stack ([`super::userstack`]) once its first Router
//! Advertisement gave an address (SLAAC, the /64 on-link, the default
//! route through the advertising router, DNS from RDNSS, RFC 8106). The
//! listeners outlive reconnects, as with SSTP.
//!
//! A server that shuts down sends a last Router Advertisement with router
//! lifetime 0 (RFC 4861 §6.2.5) and closes TLS cleanly (close_notify): the
//! client says so ("the server shut down the IP-HTTPS connection") and
//! reconnects on the §3.1.2.1 timer, or exits with code 5 under
//! `--no-reconnect`.

use std::net::Ipv6Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use iphttps::{Link, LinkConfig, LinkEvent};
use session::iphttps::{Ending, Event};
use session::{IphttpsClient, Session};
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;
use tracing::{info, warn};

use super::routes::Routes;
use super::userstack::{self, Addressing, Listeners};
use super::{ClientArgs, Failure, Protocol, Target};
use crate::driver::{Driver, TunSide, Turn};
use crate::io_util::{read_head, BoxStream, HeadError};
use crate::tls::{ClientTls, Trust};
use ipv6nd::host::{Change, HostConfig};

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

struct Client<'a> {
    target: &'a Target,
    server_name: String,
    tls: ClientTls,
    /// Whether we present a client certificate (--cert/--key).
    has_identity: bool,
    proxy: &'a crate::dial::ProxyOpts,
    /// The link MTU our requests announce (1280: none).
    link_mtu: usize,
}

impl Client<'_> {
    /// Dial and TLS: the transport of one attempt, and its first hop (the
    /// server or the first proxy).
    async fn connect(&self) -> Result<(BoxStream, std::net::IpAddr), Failure> {
        let t = self.target;
        let dialed = crate::dial::dial(self.proxy, &t.host, t.port, &[])
            .await
            .map_err(Failure::dial)?;
        let first_hop = dialed.first_hop().ip();
        let name =
            rustls::pki_types::ServerName::try_from(self.server_name.clone()).map_err(|_| {
                Failure::Other(format!("{} is not a valid server name", self.server_name))
            })?;
        let connector = tokio_rustls::TlsConnector::from(self.tls.config.clone());
        let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(name, dialed))
            .await
            .map_err(|_| Failure::Timeout("TLS handshake".into()))?
            .map_err(|e| super::sstp::tls_failure(&self.tls, &e))?;
        Ok((Box::new(tls), first_hop))
    }

    /// The POST and the 200 (§3.1.5.2); returns bytes read past the head.
    async fn request(&self, s: &mut BoxStream) -> Result<Vec<u8>, Failure> {
        let t = self.target;
        let host = if t.port == 443 {
            t.host.clone()
        } else {
            format!("{}:{}", t.host, t.port)
        };
        let path = if t.path.is_empty() {
            "/IPHTTPS"
        } else {
            &t.path
        };
        iphttps_preamble(s, &host, path, self.link_mtu)
            .await
            .map_err(|e| response_failure(e, &self.tls, self.has_identity))
    }
}

/// The POST that opens an IP-HTTPS link and the server's 200 (MS-IPHTTPS
/// §3.1.5.2), announcing `link_mtu` when above 1280; returns the bytes read
/// past the response head.
pub(crate) async fn iphttps_preamble(
    s: &mut BoxStream,
    host: &str,
    path: &str,
    link_mtu: usize,
) -> Result<Vec<u8>, HeadError<iphttps::preamble::ResponseError>> {
    let req = iphttps::build_request(host, path, link_mtu)
        .map_err(|e| HeadError::Io(std::io::Error::other(format!("request: {e}"))))?;
    s.write_all(&req).await.map_err(HeadError::Io)?;
    let mut buf = Vec::new();
    read_head(
        s,
        &mut buf,
        httphead::DEFAULT_MAX_HEAD,
        HANDSHAKE_TIMEOUT,
        |b| {
            iphttps::parse_response(b, httphead::DEFAULT_MAX_HEAD).map(|p| match p {
                iphttps::Parsed::Complete { value, head_len } => Some((value, head_len)),
                iphttps::Parsed::Partial => None,
            })
        },
    )
    .await?;
    Ok(buf)
}

/// Why the POST did not open the link (§3.1.5.2), in IP-HTTPS's words.
fn response_failure(
    e: HeadError<iphttps::preamble::ResponseError>,
    tls: &ClientTls,
    has_identity: bool,
) -> Failure {
    use iphttps::preamble::ResponseError as R;
    match e {
        HeadError::Timeout(_) => Failure::Timeout("HTTP response".into()),
        HeadError::Parse(R::Status { status, reason }) => {
            let hint = if status == 403 && !has_identity {
                " (no client certificate was presented: --cert and --key)"
            } else {
                ""
            };
            Failure::Refused(
                Protocol::IpHttps,
                format!("HTTP {status} {}{hint}", reason.trim()),
            )
        }
        HeadError::Parse(R::TransferEncoding(te)) => Failure::Refused(
            Protocol::IpHttps,
            format!("the response has Transfer-Encoding {te}, which cannot carry the packets"),
        ),
        HeadError::Parse(p) => Failure::Other(format!("the server's HTTP response: {p}")),
        HeadError::Eof => Failure::Refused(
            Protocol::IpHttps,
            "the server closed the connection without answering the request".into(),
        ),
        // With TLS 1.3 the server checks our certificate after the
        // handshake has completed here: its refusal arrives as an alert.
        HeadError::Io(e) => match super::sstp::tls_failure(tls, &e) {
            Failure::Tls(t) => Failure::Tls(t),
            _ => Failure::Other(format!("the server's HTTP response: {e}")),
        },
        e => Failure::Other(format!("the server's HTTP response: {e}")),
    }
}

fn link_failure(f: &Failure) -> iphttps::Failure {
    match f {
        Failure::Tls(_) => iphttps::Failure::Tls,
        Failure::Refused(..) | Failure::Aborted(..) => iphttps::Failure::Http(None),
        Failure::ServerShutdown(..) => iphttps::Failure::Closed,
        Failure::Timeout(_) => iphttps::Failure::AttemptTimeout,
        Failure::Proxy(_) | Failure::ProxyRefused(_) => iphttps::Failure::Connect,
        _ => iphttps::Failure::Other,
    }
}

/// The TUN device: link-local `fe80::IID`, MTU 1280 (§3.1.5.3) until an
/// RA raises it ([`apply_link_mtu`]), kernel RA processing off.
fn create_tun(name: &str, ll: Ipv6Addr) -> anyhow::Result<crate::tun::Tun> {
    let dev = crate::tun::builder()
        .name(name)
        .ipv6(ll, 64)
        .mtu(iphttps::MIN_MTU as u16)
        .build_async()
        .with_context(|| format!("creating TUN device {name}"))?;
    crate::tun::up_without_kernel_ra(Arc::new(dev))
}

/// Sets the device's MTU from an RA's MTU option, if we may
/// ([`iphttps::mtu::accept_advertised`]): within 1280..=`announced`.
fn apply_link_mtu(t: &crate::tun::Tun, option: Option<u32>, announced: usize) {
    let mtu = match iphttps::mtu::accept_advertised(option, announced) {
        Ok(Some(m)) => u16::try_from(m).unwrap_or(u16::MAX),
        Ok(None) => return,
        Err(e) => {
            info!(reason = %e, "link MTU of the Router Advertisement ignored");
            return;
        }
    };
    set_mtu(t, mtu, "from the Router Advertisement");
}

/// The device's MTU to `mtu` (`why`, for the log), if it is not that
/// already.
fn set_mtu(t: &crate::tun::Tun, mtu: u16, why: &str) {
    if t.mtu().ok() == Some(mtu) {
        return;
    }
    match t.set_mtu(mtu) {
        Ok(()) => info!(link_mtu = mtu, "device MTU set {why}"),
        Err(e) => warn!(link_mtu = mtu, error = %e, "could not set the device's MTU"),
    }
}

/// Where the link's packets go.
enum Dev {
    /// A TUN device and the routes its advertisements configured.
    Tun(crate::tun::Tun, Routes),
    /// Rootless: a user-space stack per connection, addressed from the
    /// advertisements.
    Stack {
        host: HostConfig,
        /// The advertised DNS servers (RDNSS).
        dns: Vec<Ipv6Addr>,
        listeners: Arc<Listeners>,
    },
}

impl Dev {
    /// Applies an advertisement: to the device and its routes, or to the
    /// stack's configuration (the stack of `d` starts at the first
    /// address).
    async fn router_advert(
        &mut self,
        d: &mut Driver,
        iid: iphttps::InterfaceId,
        ra: &ipv6nd::nd::ReceivedAdvert,
        announced: usize,
    ) {
        let (host, dns, listeners) = match self {
            Dev::Tun(t, routes) => {
                apply_link_mtu(t, ra.advert.mtu, announced);
                return routes.router_advert(t, iid, ra).await;
            }
            Dev::Stack {
                host,
                dns,
                listeners,
            } => (host, dns, listeners),
        };
        for c in host.apply(ra, iid) {
            match c {
                Change::Dns(servers) => *dns = servers,
                Change::AddAddress(a) if !matches!(d.tun, TunSide::None) => {
                    info!(address = %a, "IPv6 address from the Router Advertisement not used: the user-space stack has one")
                }
                Change::RemoveAddress(a) => info!(address = %a, "IPv6 address withdrawn"),
                _ => {}
            }
        }
        if !matches!(d.tun, TunSide::None) {
            return;
        }
        let Some(local) = host.addresses().next() else {
            return;
        };
        let gateway = host
            .routes()
            .find(|r| r.is_default())
            .map_or(ra.router, |r| r.via);
        d.tun = userstack::start(
            Addressing {
                local: local.into(),
                prefix_len: 64,
                gateway: gateway.into(),
                dns: dns.iter().map(|&a| a.into()).collect(),
            },
            iphttps::MIN_MTU as u16,
            listeners.clone(),
        );
        let dns: Vec<String> = dns.iter().map(|d| d.to_string()).collect();
        info!(address = %local, "connected (rootless: user-space stack)");
        super::say(&format!(
            "connected: IPv6 address {local}, user-space stack, dns {}",
            if dns.is_empty() {
                "- (no DNS server was given: host names will not resolve)".to_string()
            } else {
                dns.join(" ")
            }
        ));
    }

    /// The link went down: what its advertisements configured is gone.
    async fn link_down(&mut self) {
        match self {
            Dev::Tun(t, routes) => {
                // The next link starts at the default until its RA.
                set_mtu(
                    t,
                    iphttps::MIN_MTU as u16,
                    "back to the default at link down",
                );
                routes.link_down(t).await
            }
            Dev::Stack { host, dns, .. } => {
                host.clear();
                dns.clear();
            }
        }
    }
}

pub async fn run(
    args: &ClientArgs,
    target: Target,
    trust: Trust,
    mut stop: watch::Receiver<bool>,
    rootless: Option<Arc<Listeners>>,
) -> anyhow::Result<i32> {
    let identity = match (&args.cert, &args.key) {
        (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
        _ => {
            warn!("no --cert/--key: the server must allow IP-HTTPS without client certificates");
            None
        }
    };
    let client = Client {
        server_name: args
            .server_name
            .clone()
            .unwrap_or_else(|| target.host.clone()),
        target: &target,
        tls: crate::tls::client_config_with_cert(&trust, identity)?,
        has_identity: identity.is_some(),
        proxy: &args.proxy,
        // Rootless: the user-space stack stays at 1280, so nothing larger
        // is announced.
        link_mtu: if rootless.is_some() {
            iphttps::MIN_MTU
        } else {
            usize::from(args.link_mtu)
        },
    };
    let mut iid_bytes = [0u8; 8];
    rand::fill(&mut iid_bytes);
    iid_bytes[0] &= 0xfd; // local (u/l bit clear: not a universal identifier)
    let iid = iphttps::InterfaceId::new(iid_bytes).unwrap_or(
        iphttps::InterfaceId::new([0x02, 0, 0, 0, 0, 0, 0, 0x11]).context("fixed identifier")?,
    );
    let mut dev = None;
    let result = drive(args, &target, &client, iid, &mut stop, &mut dev, rootless).await;
    if let Some(Dev::Tun(_, routes)) = dev {
        routes.remove().await;
    }
    result
}

/// The server closed TLS cleanly; `lifetimes` as [`drive`] keeps them.
fn server_closed(lifetimes: (bool, Option<u16>)) -> Failure {
    let withdrew = lifetimes.0 && lifetimes.1 == Some(0);
    Failure::ServerShutdown(
        Protocol::IpHttps,
        withdrew.then(|| "its last Router Advertisement withdrew the default router".into()),
    )
}

fn lost() -> Failure {
    Failure::Other("the connection to the server was lost".into())
}

/// The session of one connection and the link whose timers (§3.1.2)
/// run beside it: the driver sees both as one [`Session`].
struct Linked<'a> {
    s: &'a mut IphttpsClient,
    link: &'a mut Link,
}

impl Session for Linked<'_> {
    type Event = session::iphttps::Event;
    fn handle_stream_bytes(&mut self, now: std::time::Instant, bytes: &[u8]) {
        self.s.handle_stream_bytes(now, bytes)
    }
    fn read_buf(&mut self) -> Option<&mut [u8]> {
        self.s.read_buf()
    }
    fn handle_read(&mut self, now: std::time::Instant, n: usize) {
        self.s.handle_read(now, n)
    }
    fn handle_tun_packet(&mut self, now: std::time::Instant, packet: &[u8]) {
        self.s.handle_tun_packet(now, packet)
    }
    fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> bool {
        self.s.poll_transmit(buf)
    }
    fn poll_tun(&mut self) -> Option<&[u8]> {
        self.s.poll_tun()
    }
    fn poll_event(&mut self) -> Option<Self::Event> {
        self.s.poll_event()
    }
    fn poll_timeout(&self) -> Option<std::time::Instant> {
        self.link.poll_timeout()
    }
    fn handle_timeout(&mut self, now: std::time::Instant) {
        self.link.handle_timeout(now)
    }
    fn close(&mut self, now: std::time::Instant, reason: &str) {
        self.s.close(now, reason)
    }
    fn stream_closed(&mut self, now: std::time::Instant) {
        self.s.stream_closed(now)
    }
    fn is_closed(&self) -> bool {
        self.s.is_closed()
    }
}

/// One connection once the server answered 200: its session and driver.
struct Conn {
    s: IphttpsClient,
    d: Driver,
    /// The router lifetimes of this connection's RAs: (any above 0, the last).
    lifetimes: (bool, Option<u16>),
}

impl Conn {
    /// Applies the session's events: RAs to the device (here, not by the
    /// kernel); the end of the connection as the link's failure.
    async fn events(
        &mut self,
        link: &mut Link,
        dev: &mut Dev,
        iid: iphttps::InterfaceId,
        announced: usize,
    ) -> Option<(iphttps::Failure, Failure)> {
        let mut failed = None;
        while let Some(ev) = self.s.poll_event() {
            match ev {
                Event::RouterAdvert(ra) => {
                    let l = ra.advert.router_lifetime;
                    self.lifetimes = (self.lifetimes.0 || l > 0, Some(l));
                    let _ = link.router_advert_received();
                    dev.router_advert(&mut self.d, iid, &ra, announced).await;
                }
                Event::Closed(end) => {
                    failed = Some(match end {
                        // close_notify: the server ended the link on purpose.
                        Ending::PeerClosed => {
                            (iphttps::Failure::Closed, server_closed(self.lifetimes))
                        }
                        Ending::Framing(e) => (
                            iphttps::Failure::Framing,
                            Failure::Other(format!("the server sent non-IPv6 data: {e}")),
                        ),
                        _ => (iphttps::Failure::Closed, lost()),
                    })
                }
                _ => {}
            }
        }
        failed
    }
}

/// The §3.1 link until the user stops it or a failure ends the client.
async fn drive(
    args: &ClientArgs,
    target: &Target,
    client: &Client<'_>,
    iid: iphttps::InterfaceId,
    stop: &mut watch::Receiver<bool>,
    tun: &mut Option<Dev>,
    rootless: Option<Arc<Listeners>>,
) -> anyhow::Result<i32> {
    let ll = iphttps::addr::link_local(iid);
    let mut link = Link::new(LinkConfig::default());
    let _ = link.enable();
    let _ = link.initialize(Instant::now());
    let mut first_hop: Option<std::net::IpAddr> = None;
    // Connected and TLS up, before the request.
    let mut stream: Option<BoxStream> = None;
    let mut conn: Option<Conn> = None;
    // Why the last attempt or link failed (for the exit message).
    let mut last: Option<Failure> = None;
    loop {
        while let Some(ev) = link.poll_event() {
            let now = Instant::now();
            match ev {
                LinkEvent::Connect { attempt } => {
                    info!(attempt, server = %target.host, port = target.port, "connecting");
                    match client.connect().await {
                        Ok((s, hop)) => {
                            first_hop = Some(hop);
                            let _ = link.transport_connected();
                            let _ = link.tls_established();
                            stream = Some(s);
                        }
                        Err(f) => {
                            if args.no_reconnect || !f.retryable() {
                                return Ok(super::report(&f));
                            }
                            warn!(error = %f, "connection attempt failed");
                            let _ = link.link_failed(now, link_failure(&f));
                            last = Some(f);
                        }
                    }
                }
                LinkEvent::SendRequest => {
                    let Some(mut st) = stream.take() else {
                        let _ = link.link_failed(now, iphttps::Failure::Closed);
                        continue;
                    };
                    match client.request(&mut st).await {
                        Ok(rest) => {
                            let mut s = IphttpsClient::new(ll, client.link_mtu);
                            s.handle_stream_bytes(Instant::now(), &rest);
                            let t = match tun {
                                Some(Dev::Tun(t, _)) => TunSide::Device(t.clone()),
                                _ => TunSide::None,
                            };
                            conn = Some(Conn {
                                s,
                                d: Driver::new(st, t),
                                lifetimes: (false, None),
                            });
                            let _ = link.http_ok(Instant::now());
                        }
                        Err(f) => {
                            // A certificate refused after a TLS 1.3
                            // handshake will not fix itself either.
                            if args.no_reconnect || !f.retryable() {
                                return Ok(super::report(&f));
                            }
                            warn!(error = %f, "IP-HTTPS request failed");
                            let _ = link.link_failed(now, link_failure(&f));
                            last = Some(f);
                        }
                    }
                }
                LinkEvent::LinkUp => {
                    if tun.is_none() {
                        *tun = Some(match &rootless {
                            Some(l) => Dev::Stack {
                                host: HostConfig::new(true),
                                dns: Vec::new(),
                                listeners: l.clone(),
                            },
                            None => {
                                let t = create_tun(&args.tun_name, ll)?;
                                let hop = first_hop.context("link up without a connection")?;
                                // The server is this link's IPv6 router: its
                                // default route is accepted (§3.2.3).
                                let routes = Routes::new(crate::tun::if_index(&t)?, hop, true)?;
                                Dev::Tun(t, routes)
                            }
                        });
                    }
                    last = None;
                    if let (Some(c), Some(Dev::Tun(t, _))) = (conn.as_mut(), tun.as_ref()) {
                        c.d.tun = TunSide::Device(t.clone());
                        info!(tun = %args.tun_name, link_local = %ll, "IP-HTTPS link up");
                        super::say(&format!(
                            "connected: IP-HTTPS link up, device {}",
                            args.tun_name
                        ));
                    } else {
                        info!(link_local = %ll, "IP-HTTPS link up (rootless: waiting for the Router Advertisement)");
                    }
                }
                LinkEvent::SendRouterSolicitation => {
                    if let Some(c) = conn.as_mut() {
                        c.s.solicit_router();
                    }
                }
                LinkEvent::LinkDown { reason } => {
                    let why = last
                        .as_ref()
                        .map(Failure::to_string)
                        .unwrap_or_else(|| crate::tls::words(&format!("{reason:?}")));
                    warn!(reason = %why, "IP-HTTPS link down");
                    if let Some(dev) = tun.as_mut() {
                        dev.link_down().await;
                    }
                }
                LinkEvent::Close => {
                    stream = None;
                    conn = None;
                }
                LinkEvent::ReconnectScheduled { after, .. } => {
                    if args.no_reconnect {
                        // Without a failure of ours, the link's attempt
                        // timer ran out.
                        let f = last.take().unwrap_or_else(|| {
                            Failure::Timeout("the IP-HTTPS connection attempt".into())
                        });
                        return Ok(super::report(&f));
                    }
                    info!(
                        retry_in_s = after.as_secs(),
                        "reconnect scheduled (MS-IPHTTPS §3.1.2.1)"
                    );
                }
            }
        }
        let up = link.state() == iphttps::LinkState::LinkUp;
        let failed = match (conn.as_mut(), tun.as_mut()) {
            (Some(c), Some(dev)) if up => {
                // Events first: bytes that came with the 200 (the first RA)
                // are in the session before any turn.
                match c.events(&mut link, dev, iid, client.link_mtu).await {
                    Some(f) => Some(f),
                    None => {
                        let turn = {
                            let mut w = Linked {
                                s: &mut c.s,
                                link: &mut link,
                            };
                            c.d.turn(&mut w, stop).await
                        };
                        match turn {
                            Turn::Stop => {
                                info!("disconnected");
                                return Ok(0);
                            }
                            Turn::TunFailed(e) => return Err(e).context("TUN read"),
                            Turn::Continue | Turn::Closed => {}
                        }
                        c.events(&mut link, dev, iid, client.link_mtu).await
                    }
                }
            }
            _ => {
                let deadline = link
                    .poll_timeout()
                    .map(tokio::time::Instant::from_std)
                    .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
                tokio::select! {
                    _ = tokio::time::sleep_until(deadline) => {
                        link.handle_timeout(Instant::now());
                    }
                    _ = stop.changed() => {
                        info!("disconnected");
                        return Ok(0);
                    }
                }
                None
            }
        };
        if let Some((reason, f)) = failed {
            conn = None;
            warn!(error = %f, "IP-HTTPS link lost");
            last = Some(f);
            let _ = link.link_failed(Instant::now(), reason);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_speak_of_ip_https() {
        crate::tls::install_provider();
        let tls = crate::tls::client_config(&Trust::Insecure).unwrap();
        let status = |status, reason: &str| {
            HeadError::Parse(iphttps::preamble::ResponseError::Status {
                status,
                reason: reason.into(),
            })
        };
        let f = response_failure(status(403, "Forbidden"), &tls, false);
        assert_eq!(
            f.to_string(),
            "the server refused the IP-HTTPS connection: HTTP 403 Forbidden \
             (no client certificate was presented: --cert and --key)"
        );
        assert_eq!(f.exit_code(), 5);
        let f = response_failure(status(421, "Misdirected Request"), &tls, true);
        assert_eq!(
            f.to_string(),
            "the server refused the IP-HTTPS connection: HTTP 421 Misdirected Request"
        );
        let f = response_failure(HeadError::Eof, &tls, true);
        assert!(f.to_string().contains("IP-HTTPS"), "{f}");
        assert!(!f.to_string().contains("SSTP"), "{f}");
    }

    #[test]
    fn a_clean_close_after_the_final_advert_is_a_shutdown() {
        let f = server_closed((true, Some(0)));
        assert_eq!(
            f.to_string(),
            "the server shut down the IP-HTTPS connection (reason: its last Router \
             Advertisement withdrew the default router)"
        );
        assert!(f.retryable());
        // A split tunnel never advertises a default router.
        let f = server_closed((false, Some(0)));
        assert_eq!(
            f.to_string(),
            "the server shut down the IP-HTTPS connection"
        );
    }
}
