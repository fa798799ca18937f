//! One SSTP client connection: dial, TLS, the HTTP preamble (MS-SSTP
//! §3.2.4.1), then the SSTP client engine (§3.2) carrying the PPP engine as
//! the authenticated peer, and a TUN device once IPCP is up.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::failure::lcp_terminate_reason;
use super::routes::Routes;
use super::{Failure, Setup};
use crate::io_util::{read_head, HeadError};
use crate::tls::CertHashes;

/// TLS handshake and HTTP exchange must finish within this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

struct OsRng;
impl ppp::Rng for OsRng {
    fn fill(&mut self, buf: &mut [u8]) {
        rand::fill(buf);
    }
}

/// A failed TLS handshake (or a TLS alert soon after it) in plain words,
/// with the fingerprint hint for an untrusted server certificate.
pub(super) fn tls_failure(tls: &crate::tls::ClientTls, e: &std::io::Error) -> Failure {
    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(t) => Failure::Tls(tls.explain(t)),
        None => Failure::Other(format!("TLS handshake: {e}")),
    }
}

/// The tunnel once IPCP is up.
struct Up {
    tun: crate::tun::Tun,
    routes: Routes,
}

struct Conn<'a> {
    setup: &'a Setup,
    sstp: sstp::Client,
    ppp: ppp::Ppp,
    out: Vec<u8>,
    frame: Vec<u8>,
    /// Set when the tunnel should come up (IPCP opened): local, peer, dns.
    ipv4: Option<(
        std::net::Ipv4Addr,
        std::net::Ipv4Addr,
        Vec<std::net::Ipv4Addr>,
    )>,
    failure: Option<Failure>,
    inbound: Vec<Vec<u8>>,
    /// IPv6CP: our interface identifier, once IPv6CP is up.
    ipv6_iid: Option<[u8; 8]>,
    /// The last Router Advertisement not yet applied to the TUN device.
    ra: Option<iphttps::nd::ReceivedAdvert>,
    /// The text of the server's LCP Terminate-Request, once one came.
    terminate_reason: Option<String>,
}

impl Conn<'_> {
    fn pump(&mut self, now: Instant) {
        loop {
            let mut busy = false;
            while let Some(ev) = self.sstp.poll_event() {
                busy = true;
                match ev {
                    sstp::Event::PppFrame(f) => {
                        if let Some(why) = lcp_terminate_reason(&f) {
                            self.terminate_reason = Some(why);
                        }
                        if let Some(p) = self.ppp.handle_frame(now, &f) {
                            let pkt = match p {
                                ppp::Inbound::Ipv4(p) | ppp::Inbound::Ipv6(p) => p,
                            };
                            if iphttps::icmpv6::message_type(pkt)
                                == Some(iphttps::icmpv6::Icmpv6Type::RouterAdvertisement)
                            {
                                match iphttps::nd::RouterAdvert::parse(pkt) {
                                    Ok(ra) => self.ra = Some(ra),
                                    Err(e) => debug!(error = %e, "bad Router Advertisement"),
                                }
                            } else {
                                self.inbound.push(pkt.to_vec());
                            }
                        }
                    }
                    sstp::Event::PppControlAllowed => self.ppp.open(now),
                    sstp::Event::Connected => info!("SSTP call connected"),
                    sstp::Event::Closed { reason } => {
                        let failure = Failure::sstp_closed(&reason, self.terminate_reason.clone());
                        info!(reason = %failure, "SSTP closed");
                        if self.failure.is_none() {
                            self.failure = Some(failure);
                        }
                        self.ppp.lower_down(now);
                    }
                    other => debug!(event = ?other, "SSTP event"),
                }
            }
            while let Some(f) = self.ppp.poll_transmit() {
                busy = true;
                if let Err(e) = self.sstp.send_ppp_frame(&f) {
                    debug!(error = %e, "PPP frame not sent");
                }
            }
            while let Some(ev) = self.ppp.poll_event() {
                busy = true;
                match ev {
                    ppp::Event::Authenticated { hlak, method, .. } => {
                        info!(method = %method_name(method), "authenticated");
                        self.sstp.higher_layer_authenticated(now, hlak.0);
                    }
                    ppp::Event::AuthFailed { reason, .. } => {
                        self.failure = Some(Failure::auth(&reason));
                    }
                    ppp::Event::Ipv6Up { local_iid, .. } => {
                        self.ipv6_iid = Some(local_iid);
                        // Ask for the prefix now (RFC 4861 §6.3.7).
                        let rs = iphttps::RouterSolicit::build(crate::tun::link_local(local_iid));
                        self.send_ip(&rs);
                    }
                    ppp::Event::Ipv4Up {
                        local,
                        peer,
                        dns1,
                        dns2,
                    } => {
                        let dns = [dns1, dns2].into_iter().flatten().collect();
                        self.ipv4 = Some((local, peer, dns));
                    }
                    ppp::Event::LinkDown { reason } => {
                        let failure = Failure::ppp_down(reason, self.terminate_reason.clone());
                        info!(reason = %failure, "PPP link down");
                        if self.failure.is_none() {
                            self.failure = Some(failure);
                        }
                        self.sstp.disconnect(now);
                    }
                    other => debug!(event = ?other, "PPP event"),
                }
            }
            if !busy {
                break;
            }
        }
        while self.sstp.poll_transmit(&mut self.out) {}
    }

    fn send_ip(&mut self, pkt: &[u8]) {
        self.frame.clear();
        if self.ppp.encapsulate_ip(pkt, &mut self.frame).is_ok() {
            let _ = self.sstp.send_ppp_frame(&self.frame);
        }
    }
}

/// An authentication method's usual name.
fn method_name(m: ppp::AuthMethod) -> &'static str {
    match m {
        ppp::AuthMethod::None => "none",
        ppp::AuthMethod::Pap => "PAP",
        ppp::AuthMethod::ChapMd5 => "CHAP-MD5",
        ppp::AuthMethod::MsChapV2 => "MS-CHAPv2",
        ppp::AuthMethod::EapMsChapV2 => "EAP-MSCHAPv2",
        _ => "another method",
    }
}

/// One connection attempt, until the link drops or `stop` is set.
pub async fn run_once(setup: &Setup, mut stop: watch::Receiver<bool>) -> Result<(), Failure> {
    let t = &setup.target;
    let dialed = crate::dial::dial(&setup.proxy, &t.host, t.port, &[("SSTPVERSION", "1.0")])
        .await
        .map_err(|e| match e {
            crate::dial::DialError::Connect { .. } => Failure::Other(e.to_string()),
            crate::dial::DialError::ProxyDenied { .. }
            | crate::dial::DialError::ProxyAuthRequired { .. } => {
                Failure::ProxyRefused(e.to_string())
            }
            e => Failure::Proxy(e.to_string()),
        })?;
    let first_hop = dialed.first_hop().ip();
    let name = rustls::pki_types::ServerName::try_from(setup.server_name.clone())
        .map_err(|_| Failure::Other(format!("{} is not a valid server name", setup.server_name)))?;
    let connector = tokio_rustls::TlsConnector::from(setup.tls.config.clone());
    let mut tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(name, dialed))
        .await
        .map_err(|_| Failure::Timeout("TLS handshake".into()))?
        .map_err(|e| tls_failure(&setup.tls, &e))?;
    let leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or_else(|| Failure::Tls("the server sent no certificate".into()))?;
    let hashes = CertHashes::of(leaf);

    let mut corr = [0u8; 16];
    rand::fill(&mut corr);
    let host = if t.port == 443 {
        t.host.clone()
    } else {
        format!("{}:{}", t.host, t.port)
    };
    let request = sstp::http::client_request(&host, &sstp::http::guid(corr), &Default::default());
    tls.write_all(&request)
        .await
        .map_err(|e| Failure::Other(format!("sending the HTTP request: {e}")))?;
    let mut buf = Vec::new();
    read_head(
        &mut tls,
        &mut buf,
        8192,
        HANDSHAKE_TIMEOUT,
        sstp::http::parse_response,
    )
    .await
    .map_err(|e| match e {
        HeadError::Timeout(_) => Failure::Timeout("HTTP response".into()),
        HeadError::Parse(sstp::http::HttpError::Status { code, reason }) => Failure::Refused(
            super::Protocol::Sstp,
            format!("HTTP {code} {}", reason.trim()),
        ),
        HeadError::Parse(p) => Failure::Other(format!("HTTP response: {p}")),
        e => Failure::Other(format!("HTTP response: {e}")),
    })?;

    let now = Instant::now();
    let creds = ppp::Credentials {
        username: setup.user.clone(),
        secret: ppp::Secret::Password(ppp::Password::new(setup.password.clone())),
    };
    let mut c = Conn {
        setup,
        sstp: sstp::Connection::client(sstp::ClientConfig::new(hashes.sha1, hashes.sha256)),
        ppp: ppp::Ppp::new(
            ppp::Config::client(creds),
            ppp::Role::Peer,
            now,
            Box::new(OsRng),
        ),
        out: Vec::with_capacity(16384),
        frame: Vec::with_capacity(4096),
        ipv4: None,
        failure: None,
        inbound: Vec::new(),
        ipv6_iid: None,
        ra: None,
        terminate_reason: None,
    };
    c.sstp.start(now);
    if !buf.is_empty() {
        c.sstp.handle_input(now, &buf);
    }
    let (mut rd, mut wr) = tokio::io::split(tls);
    let mut rbuf = vec![0u8; 32768];
    let mut tbuf = vec![0u8; 65536];
    let mut up: Option<Up> = None;
    let mut stopping = false;
    let result = loop {
        c.pump(Instant::now());
        if let Some(u) = &up {
            for pkt in c.inbound.drain(..) {
                let _ = u.tun.try_send(&pkt);
            }
        } else {
            c.inbound.clear();
        }
        if let (None, Some((local, peer, dns))) = (&up, c.ipv4.take()) {
            match bring_up(c.setup, local, peer, &dns, first_hop, c.ppp.peer_mru()).await {
                Ok(u) => up = Some(u),
                Err(e) => {
                    warn!(error = %format!("{e:#}"), "could not set up the tunnel device");
                    c.failure = Some(Failure::Other(format!("{e:#}")));
                    c.ppp.close(Instant::now(), "client error");
                    c.sstp.disconnect(Instant::now());
                    continue;
                }
            }
        }
        if let (Some(u), Some(iid)) = (&mut up, c.ipv6_iid) {
            if let Some(ra) = c.ra.take() {
                match iphttps::InterfaceId::new(iid) {
                    Ok(iid) => u.routes.router_advert(&u.tun, iid, &ra).await,
                    Err(e) => debug!(error = %e, "IPv6CP identifier unusable for SLAAC"),
                }
            }
        }
        if !c.out.is_empty() {
            if let Err(e) = wr.write_all(&c.out).await {
                break Err(Failure::Other(format!("connection lost: {e}")));
            }
            c.out.clear();
        }
        if c.sstp.is_closed() {
            break match (stopping, c.failure.take()) {
                (true, _) => Ok(()),
                (false, Some(f)) => Err(f),
                (false, None) => Ok(()),
            };
        }
        let deadline = [c.sstp.poll_timeout(), c.ppp.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        let tun = up.as_ref().map(|u| u.tun.clone());
        let tun_read = async {
            match &tun {
                Some(t) => t.recv(&mut tbuf).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = rd.read(&mut rbuf) => match r {
                Ok(0) | Err(_) => {
                    break Err(c.failure.take().unwrap_or_else(|| Failure::Other("the server closed the connection".into())));
                }
                Ok(n) => c.sstp.handle_input(Instant::now(), &rbuf[..n]),
            },
            r = tun_read => match r {
                Ok(n) => {
                    let first = tbuf[..n].to_vec();
                    c.send_ip(&first);
                    if let Some(t) = &tun {
                        for _ in 0..63 {
                            match t.try_recv(&mut tbuf) {
                                Ok(n) => { let p = tbuf[..n].to_vec(); c.send_ip(&p); }
                                Err(_) => break,
                            }
                        }
                    }
                }
                Err(e) => break Err(Failure::Other(format!("TUN read: {e}"))),
            },
            _ = sleep => {
                let now = Instant::now();
                c.sstp.handle_timeout(now);
                c.ppp.handle_timeout(now);
            }
            _ = stop.changed(), if !stopping => {
                stopping = true;
                info!("disconnecting");
                // LCP Terminate first, then Call Disconnect (MS-SSTP §3.2.4.2).
                let now = Instant::now();
                c.ppp.close(now, "user request");
                c.pump(now);
                c.sstp.disconnect(now);
            }
        }
    };
    let _ = wr.shutdown().await;
    if let Some(u) = up {
        u.routes.remove().await;
    }
    result
}

async fn bring_up(
    setup: &Setup,
    local: std::net::Ipv4Addr,
    peer: std::net::Ipv4Addr,
    dns: &[std::net::Ipv4Addr],
    first_hop: std::net::IpAddr,
    mtu: u16,
) -> anyhow::Result<Up> {
    let peer_opt = (!peer.is_unspecified()).then_some(peer);
    let tun = crate::tun::create(Some(&setup.tun_name), local, 32, peer_opt, mtu.min(1500))?;
    let idx = crate::tun::if_index(&tun)?;
    // --default-route covers both families: an IPv6 default route from
    // the server's Router Advertisement is accepted only with it.
    let mut routes = Routes::new(idx, first_hop, setup.default_route)?;
    routes
        .install_v4(&setup.routes, setup.default_route)
        .await?;
    let dns_text: Vec<String> = dns.iter().map(|d| d.to_string()).collect();
    info!(address = %local, peer = %peer, tun = %crate::tun::name(&tun), dns = %dns_text.join(","), "connected");
    super::say(&format!(
        "connected: address {local}, server {peer}, device {}, dns {}",
        crate::tun::name(&tun),
        if dns_text.is_empty() {
            "-".to_string()
        } else {
            dns_text.join(" ")
        }
    ));
    Ok(Up { tun, routes })
}
