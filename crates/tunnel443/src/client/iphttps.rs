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
//! A server that shuts down sends a last Router Advertisement with router
//! lifetime 0 (RFC 4861 §6.2.5) and closes TLS cleanly (close_notify): the
//! client says so ("the server shut down the IP-HTTPS connection") and
//! reconnects on the §3.1.2.1 timer, or exits with code 5 under
//! `--no-reconnect`.

use std::net::Ipv6Addr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use iphttps::{Decoder, Encoder, Frame, Link, LinkConfig, LinkEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::routes::Routes;
use super::{ClientArgs, Failure, Protocol, Target};
use crate::io_util::{read_head, BoxStream, HeadError};
use crate::tls::{ClientTls, Trust};

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Most TUN packets framed into one TLS write.
const TUN_BATCH: usize = 64;

type Halves = (ReadHalf<BoxStream>, WriteHalf<BoxStream>);

struct Client<'a> {
    target: &'a Target,
    server_name: String,
    tls: ClientTls,
    /// Whether we present a client certificate (--cert/--key).
    has_identity: bool,
    proxy: &'a crate::dial::ProxyOpts,
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
            .map_err(|e| super::connection::tls_failure(&self.tls, &e))?;
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
        let req = iphttps::build_request(&host, path)
            .map_err(|e| Failure::Other(format!("request: {e}")))?;
        s.write_all(&req)
            .await
            .map_err(|e| Failure::Other(format!("sending the request: {e}")))?;
        let mut buf = Vec::new();
        read_head(s, &mut buf, 8192, HANDSHAKE_TIMEOUT, |b| {
            iphttps::parse_response(b, 8192).map(|p| match p {
                iphttps::Parsed::Complete { value, head_len } => Some((value, head_len)),
                iphttps::Parsed::Partial => None,
            })
        })
        .await
        .map_err(|e| response_failure(e, &self.tls, self.has_identity))?;
        Ok(buf)
    }
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
        HeadError::Io(e) => match super::connection::tls_failure(tls, &e) {
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

/// The TUN device: link-local `fe80::IID`, MTU 1280 (§3.1.5.3), kernel
/// RA processing off.
fn create_tun(name: &str, ll: Ipv6Addr) -> anyhow::Result<crate::tun::Tun> {
    let dev = tun_rs::DeviceBuilder::new()
        .name(name)
        .ipv6(ll, 64)
        .mtu(iphttps::MIN_MTU as u16)
        .enable(false)
        .build_async()
        .with_context(|| format!("creating TUN device {name}"))?;
    crate::tun::up_without_kernel_ra(Arc::new(dev))
}

pub async fn run(
    args: &ClientArgs,
    target: Target,
    trust: Trust,
    mut stop: watch::Receiver<bool>,
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
    };
    let mut iid_bytes = [0u8; 8];
    rand::fill(&mut iid_bytes);
    iid_bytes[0] &= 0xfd; // local (u/l bit clear: not a universal identifier)
    let iid = iphttps::InterfaceId::new(iid_bytes).unwrap_or(
        iphttps::InterfaceId::new([0x02, 0, 0, 0, 0, 0, 0, 0x11]).context("fixed identifier")?,
    );
    let mut tun = None;
    let result = drive(args, &target, &client, iid, &mut stop, &mut tun).await;
    if let Some((_, routes)) = tun {
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

fn lost(e: &std::io::Error) -> Failure {
    Failure::Other(format!("the connection to the server was lost: {e}"))
}

/// The §3.1 link until the user stops it or a failure ends the client.
async fn drive(
    args: &ClientArgs,
    target: &Target,
    client: &Client<'_>,
    iid: iphttps::InterfaceId,
    stop: &mut watch::Receiver<bool>,
    tun: &mut Option<(crate::tun::Tun, Routes)>,
) -> anyhow::Result<i32> {
    let ll = iphttps::addr::link_local(iid);
    let mut link = Link::new(LinkConfig::default());
    let _ = link.enable();
    let _ = link.initialize(Instant::now().into_std());
    let mut first_hop: Option<std::net::IpAddr> = None;
    let mut conn: Option<Halves> = None;
    let mut pending: Vec<u8> = Vec::new();
    let enc = Encoder::new();
    let mut dec = Decoder::new();
    let mut tunbuf = vec![0u8; 65536];
    let mut out = Vec::with_capacity(TUN_BATCH * iphttps::MIN_MTU);
    // Why the last attempt or link failed (for the exit message).
    let mut last: Option<Failure> = None;
    // The router lifetimes of this session's RAs: (any above 0, the last).
    let mut lifetimes: (bool, Option<u16>) = (false, None);
    loop {
        while let Some(ev) = link.poll_event() {
            let now = Instant::now().into_std();
            match ev {
                LinkEvent::Connect { attempt } => {
                    info!(attempt, server = %target.host, port = target.port, "connecting");
                    match client.connect().await {
                        Ok((s, hop)) => {
                            first_hop = Some(hop);
                            let _ = link.transport_connected();
                            let _ = link.tls_established();
                            pending.clear();
                            conn = Some(tokio::io::split(s));
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
                    let Some((rd, wr)) = conn.take() else {
                        let _ = link.link_failed(now, iphttps::Failure::Closed);
                        continue;
                    };
                    let mut s = rd.unsplit(wr);
                    match client.request(&mut s).await {
                        Ok(rest) => {
                            pending = rest;
                            conn = Some(tokio::io::split(s));
                            dec = Decoder::new();
                            lifetimes = (false, None);
                            let _ = link.http_ok(Instant::now().into_std());
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
                        let t = create_tun(&args.tun_name, ll)?;
                        let hop = first_hop.context("link up without a connection")?;
                        // The server is this link's IPv6 router: its
                        // default route is accepted (§3.2.3).
                        let routes = Routes::new(crate::tun::if_index(&t)?, hop, true)?;
                        *tun = Some((t, routes));
                    }
                    last = None;
                    info!(tun = %args.tun_name, link_local = %ll, "IP-HTTPS link up");
                    super::say(&format!(
                        "connected: IP-HTTPS link up, device {}",
                        args.tun_name
                    ));
                }
                LinkEvent::SendRouterSolicitation => {
                    if let Some((_, wr)) = conn.as_mut() {
                        let mut out = Vec::new();
                        let _ = enc.encode(&iphttps::RouterSolicit::build(ll), &mut out);
                        if let Err(e) = wr.write_all(&out).await {
                            debug!(error = %e, "Router Solicitation not sent");
                        }
                    }
                }
                LinkEvent::LinkDown { reason } => {
                    let why = last
                        .as_ref()
                        .map(Failure::to_string)
                        .unwrap_or_else(|| crate::tls::words(&format!("{reason:?}")));
                    warn!(reason = %why, "IP-HTTPS link down");
                    if let Some((t, routes)) = tun.as_mut() {
                        routes.link_down(t).await;
                    }
                }
                LinkEvent::Close => conn = None,
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
        let deadline = link
            .poll_timeout()
            .map(Instant::from_std)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        let up = link.state() == iphttps::LinkState::LinkUp;
        let failed: Option<(iphttps::Failure, Failure)> = match (&mut conn, tun.as_mut()) {
            (Some((rd, wr)), Some((tun, routes))) if up => {
                // Bytes that came with the response head (the first RA).
                let mut fed = false;
                if !pending.is_empty() {
                    let n = dec.extend(&pending);
                    pending.drain(..n);
                    fed = true;
                }
                let got = tokio::select! {
                    r = rd.read(dec.spare()), if !fed => match r {
                        // close_notify: the server ended the link on purpose.
                        Ok(0) => Err((iphttps::Failure::Closed, server_closed(lifetimes))),
                        Ok(n) => { dec.filled(n); Ok(true) }
                        Err(e) => Err((iphttps::Failure::Closed, lost(&e))),
                    },
                    r = tun.recv(&mut tunbuf) => match r {
                        Ok(n) => {
                            // The packets already queued go along: one TLS
                            // write for the batch (DESIGN.md, data plane).
                            out.clear();
                            let _ = enc.encode(&tunbuf[..n], &mut out);
                            for _ in 1..TUN_BATCH {
                                match tun.try_recv(&mut tunbuf) {
                                    Ok(n) => { let _ = enc.encode(&tunbuf[..n], &mut out); }
                                    Err(_) => break,
                                }
                            }
                            if let Err(e) = wr.write_all(&out).await {
                                Err((iphttps::Failure::Closed, lost(&e)))
                            } else {
                                Ok(false)
                            }
                        }
                        Err(e) => return Err(e).context("TUN read"),
                    },
                    _ = tokio::time::sleep_until(deadline) => {
                        link.handle_timeout(Instant::now().into_std());
                        Ok(false)
                    }
                    _ = stop.changed() => {
                        info!("disconnected");
                        return Ok(0);
                    }
                    _ = std::future::ready(()), if fed => Ok(true),
                };
                match got {
                    Err(f) => Some(f),
                    Ok(false) => None,
                    Ok(true) => {
                        let mut fail = None;
                        loop {
                            match dec.next_packet() {
                                Ok(Some(Frame::Packet(p))) => {
                                    if iphttps::icmpv6::message_type(p)
                                        == Some(iphttps::icmpv6::Icmpv6Type::RouterAdvertisement)
                                    {
                                        // Applied here, not by the kernel.
                                        match iphttps::RouterAdvert::parse(p) {
                                            Ok(ra) => {
                                                let l = ra.advert.router_lifetime;
                                                lifetimes = (lifetimes.0 || l > 0, Some(l));
                                                let _ = link.router_advert_received();
                                                routes.router_advert(tun, iid, &ra).await;
                                            }
                                            Err(e) => {
                                                debug!(error = %e, "bad Router Advertisement")
                                            }
                                        }
                                    } else {
                                        let _ = tun.try_send(p);
                                    }
                                }
                                Ok(Some(Frame::Oversize { .. })) => {}
                                Ok(None) => break,
                                Err(e) => {
                                    fail = Some((
                                        iphttps::Failure::Framing,
                                        Failure::Other(format!(
                                            "the server sent non-IPv6 data: {e}"
                                        )),
                                    ));
                                    break;
                                }
                            }
                        }
                        fail
                    }
                }
            }
            _ => {
                tokio::select! {
                    _ = tokio::time::sleep_until(deadline) => {
                        link.handle_timeout(Instant::now().into_std());
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
            let _ = link.link_failed(Instant::now().into_std(), reason);
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
