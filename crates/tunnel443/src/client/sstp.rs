//! One SSTP client connection: dial, TLS, the HTTP preamble (MS-SSTP
//! §3.2.4.1), then the SSTP client engine (§3.2) carrying the PPP engine as
//! the authenticated peer, and a TUN device once IPCP is up.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use session::sstp::Event;
use session::{Session, SstpSession};
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::routes::Routes;
use super::{Failure, Setup};
use crate::driver::{Driver, TunSide, Turn};
use crate::io_util::{read_head, HeadError};
use crate::tls::CertHashes;

/// TLS handshake and HTTP exchange must finish within this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

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

/// What the client does with its session's events.
struct Conn<'a> {
    setup: &'a Setup,
    first_hop: std::net::IpAddr,
    up: Option<Up>,
    /// IPv6CP: our interface identifier, once IPv6CP is up.
    ipv6_iid: Option<[u8; 8]>,
    /// A Router Advertisement that came before the device was up.
    ra: Option<ipv6nd::nd::ReceivedAdvert>,
    failure: Option<Failure>,
}

impl Conn<'_> {
    async fn on_event(&mut self, s: &mut SstpSession, d: &mut Driver, ev: Event) {
        match ev {
            Event::Authenticated { method, .. } => {
                info!(method = %method_name(method), "authenticated")
            }
            Event::AuthFailed { reason, .. } => {
                self.failure.get_or_insert(Failure::auth(&reason));
            }
            Event::Connected => info!("SSTP call connected"),
            Event::Ipv4Up {
                local, peer, dns, ..
            } if self.up.is_none() && self.setup.rootless.is_some() => {
                if let (Some(fwd), TunSide::None) = (&self.setup.rootless, &d.tun) {
                    d.tun = super::userstack::start(
                        super::userstack::Addressing::ipv4(local, &dns),
                        // As a TUN device's MTU: larger packets (MRU 4000
                        // against our server) make the stack faster too.
                        s.peer_mru().min(self.setup.mru),
                        fwd.clone(),
                    );
                    info!(address = %local, peer = %peer, "connected (rootless: user-space stack)");
                    super::say(&format!(
                        "connected: address {local}, server {peer}, user-space stack, dns {}",
                        dns_words(&dns)
                    ));
                }
            }
            Event::Ipv4Up {
                local, peer, dns, ..
            } if self.up.is_none() => {
                let mtu = s.peer_mru().min(self.setup.mru);
                match bring_up(self.setup, local, peer, &dns, self.first_hop, mtu).await {
                    Ok(u) => {
                        d.tun = TunSide::Device(u.tun.clone());
                        self.up = Some(u);
                        self.apply_ra().await;
                    }
                    Err(e) => {
                        warn!(error = %format!("{e:#}"), "could not set up the tunnel device");
                        self.failure = Some(Failure::Other(format!("{e:#}")));
                        s.close(Instant::now(), "client error");
                    }
                }
            }
            Event::Ipv6Up { local_iid, .. } => self.ipv6_iid = Some(local_iid),
            Event::RouterAdvert(ra) => {
                self.ra = Some(ra);
                self.apply_ra().await;
            }
            Event::Closed(end) => {
                let failure = match end.ppp_first() {
                    Some(r) => Failure::ppp_down(r, end.peer_reason.clone()),
                    None => Failure::sstp_closed(&end.sstp, end.peer_reason.clone()),
                };
                info!(reason = %failure, "SSTP closed");
                self.failure.get_or_insert(failure);
            }
            _ => {}
        }
    }

    /// SLAAC address and routes from the server's RA, once the device is up.
    async fn apply_ra(&mut self) {
        let (Some(u), Some(iid)) = (&mut self.up, self.ipv6_iid) else {
            return;
        };
        if let Some(ra) = self.ra.take() {
            match ipv6nd::InterfaceId::new(iid) {
                Ok(iid) => u.routes.router_advert(&u.tun, iid, &ra).await,
                Err(e) => debug!(error = %e, "IPv6CP identifier unusable for SLAAC"),
            }
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
        ppp::AuthMethod::EapTls => "EAP-TLS",
        ppp::AuthMethod::Peap => "PEAP",
        _ => "another method",
    }
}

/// One connection attempt, until the link drops or `stop` is set.
pub async fn run_once(setup: &Setup, mut stop: watch::Receiver<bool>) -> Result<(), Failure> {
    let t = &setup.target;
    let dialed = crate::dial::dial(&setup.proxy, &t.host, t.port, &[("SSTPVERSION", "1.0")])
        .await
        .map_err(Failure::dial)?;
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

    let host = if t.port == 443 {
        t.host.clone()
    } else {
        format!("{}:{}", t.host, t.port)
    };
    let buf = sstp_preamble(&mut tls, &host).await?;
    let mut s = new_session(
        hashes,
        &setup.user,
        &setup.password,
        setup.eap_tls.clone(),
        setup.mru,
        setup.eap_first.load(Ordering::Relaxed),
    );
    if !buf.is_empty() {
        s.handle_stream_bytes(Instant::now(), &buf);
    }
    let mut d = Driver::new(Box::new(tls), TunSide::None);
    let mut c = Conn {
        setup,
        first_hop,
        up: None,
        ipv6_iid: None,
        ra: None,
        failure: None,
    };
    let mut stopping = false;
    let result = loop {
        while let Some(ev) = s.poll_event() {
            c.on_event(&mut s, &mut d, ev).await;
        }
        match d.turn(&mut s, &mut stop).await {
            Turn::Continue => {}
            Turn::Stop => {
                stopping = true;
                info!("disconnecting");
                s.close(Instant::now(), "user request");
            }
            Turn::Closed => {
                while let Some(ev) = s.poll_event() {
                    c.on_event(&mut s, &mut d, ev).await;
                }
                break match (stopping, c.failure.take()) {
                    (false, Some(f)) => Err(f),
                    _ => Ok(()),
                };
            }
            Turn::TunFailed(e) => break Err(Failure::Other(format!("TUN read: {e}"))),
        }
    };
    if let Some(u) = c.up.take() {
        u.routes.remove().await;
    }
    if s.server_wants_only_eap() && !setup.eap_first.swap(true, Ordering::Relaxed) {
        info!("the server asks for EAP only: the next connection accepts EAP (EAP-MSCHAPv2)");
    }
    result
}

/// The HTTP exchange that opens an SSTP call (MS-SSTP §3.2.4.1): the
/// `SSTP_DUPLEX_POST` request with a fresh correlation id, and the server's
/// 200. Returns the bytes read past the response head (the start of the
/// SSTP stream).
pub(crate) async fn sstp_preamble<S>(tls: &mut S, host: &str) -> Result<Vec<u8>, Failure>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut corr = [0u8; 16];
    rand::fill(&mut corr);
    let request = sstp::http::client_request(host, &sstp::http::guid(corr), &Default::default());
    tls.write_all(&request)
        .await
        .map_err(|e| Failure::Other(format!("sending the HTTP request: {e}")))?;
    let mut buf = Vec::new();
    read_head(
        tls,
        &mut buf,
        httphead::DEFAULT_MAX_HEAD,
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
    Ok(buf)
}

/// The client's sans-IO session for a server whose certificate hashes are
/// `hashes` (the crypto binding covers them, MS-SSTP §3.2.5.2). With
/// `eap_first`, a password login Acks the server's first EAP offer (then
/// EAP-MSCHAPv2) instead of asking for MS-CHAPv2.
pub(crate) fn new_session(
    hashes: CertHashes,
    user: &str,
    password: &str,
    eap_tls: Option<std::sync::Arc<dyn ppp::auth::eap_tls::EapTlsConfig>>,
    mru: u16,
    eap_first: bool,
) -> SstpSession {
    let creds = ppp::Credentials {
        username: user.to_owned(),
        secret: ppp::Secret::Password(ppp::Password::new(password.to_owned())),
    };
    let mut config = ppp::Config::client(creds);
    config.mru = mru;
    if eap_first {
        config
            .auth_protocols
            .retain(|p| *p != ppp::AuthProtocol::Eap);
        config.auth_protocols.insert(0, ppp::AuthProtocol::Eap);
    }
    if let Some(e) = eap_tls {
        config.auth_protocols = vec![ppp::AuthProtocol::Eap];
        config.eap_tls = Some(e);
    }
    SstpSession::client(
        sstp::ClientConfig::new(hashes.sha1, hashes.sha256),
        config,
        Instant::now(),
        Box::new(|b: &mut [u8]| rand::fill(b)),
    )
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
    let tun = crate::tun::create(Some(&setup.tun_name), local, 32, peer_opt, mtu)?;
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
        dns_words(dns)
    ));
    Ok(Up { tun, routes })
}

/// The DNS servers IPCP gave (RFC 1877), for the "connected" line: the
/// client does not configure them itself.
fn dns_words(dns: &[std::net::Ipv4Addr]) -> String {
    if dns.is_empty() {
        return "none (the server offered none)".into();
    }
    dns.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}
