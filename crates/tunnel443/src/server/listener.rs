//! The HTTPS listener: accept, optional PROXY protocol header (plain-HTTP
//! mode behind a load balancer), TLS handshake, the request head within a
//! size and time bound, then dispatch on method and path (MS-SSTP §3.3.4):
//! `SSTP_DUPLEX_POST /sra_{…}/` starts an SSTP session, `HEAD` (load
//! balancer health checks) gets a 200, anything else a short 404.
//!
//! With IP-HTTPS enabled, a `POST` to one of its paths goes to an IP-HTTPS
//! session (MS-IPHTTPS §3.2.5.1) after the crate's checks of the head
//! (Content-Length 18446744073709551615, no Transfer-Encoding). The TLS
//! config is chosen at the ClientHello ([`super::tls_setup`]): on a name in
//! `iphttps.server_names` a client without a certificate is refused in the
//! handshake; otherwise the dispatch refuses IP-HTTPS with 403 when no
//! verified certificate was presented (unless `iphttps.auth = "none"`),
//! and with 421 when the names are configured and this is not one of them.
//! A refused client certificate is logged once per connection, at info,
//! with the peer and the reason in plain words.
//!
//! A website can share the port ([`super::web`]): with `[web]
//! sni_passthrough` the ClientHello's name is read first ([`httphead::sni`])
//! and other sites' connections are spliced away before our handshake;
//! after it, every request that is not SSTP, IP-HTTPS or the health check
//! (and, with `[sstp] host`, SSTP for another name) goes to the web side.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::LazyConfigAcceptor;
use tracing::{debug, info, warn};

use crate::io_util::{plain_error, read_head, BoxStream, HeadError};
use crate::server::admission::Ticket;
use crate::server::registry::{cert_subject, tls_version_name, Conn};
use crate::server::stats::{Method, Stage};
use crate::server::{iphttps, sstp, tls_setup, web, Shared};
use httphead::proxy as proxy_protocol;

/// The request head as the listener dispatches it.
enum Dispatch {
    Sstp(sstp::Request),
    Iphttps(Result<::iphttps::mtu::Offer, ::iphttps::preamble::RequestError>),
    Web(Box<httphead::RequestHead>),
}

/// The whole head again, for the web side (the same bytes the SSTP parser
/// has just found complete, so it is complete here too).
fn web_head(b: &[u8], fallback: sstp::Request) -> Dispatch {
    match httphead::RequestHead::parse(b, MAX_HEAD) {
        Ok(httphead::Parsed::Complete { head, .. }) => Dispatch::Web(Box::new(head)),
        _ => Dispatch::Sstp(fallback),
    }
}

/// Largest request head we read (the shared HTTP head limit).
pub const MAX_HEAD: usize = httphead::DEFAULT_MAX_HEAD;

pub async fn run(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        // Refusals are counted and summarised by admission, not logged
        // one by one.
        let Ok(ticket) = shared.admission.admit(peer.ip(), std::time::Instant::now()) else {
            shared.stats.failure(Stage::Tcp);
            drop(tcp);
            continue;
        };
        let shared = shared.clone();
        crate::tasks::spawn(async move {
            tokio::select! {
                _ = handle(tcp, peer, shared, ticket.clone()) => {}
                _ = ticket.closed() => debug!(%peer, "unauthenticated connection closed by admission control"),
            }
        });
    }
}

async fn handle(tcp: TcpStream, mut peer: SocketAddr, shared: Arc<Shared>, ticket: Ticket) {
    crate::io_util::tune_tcp(&tcp);
    let mut conn = Conn::plain(peer);
    conn.called = tcp.local_addr().ok();
    let mut subject: Option<String> = None;
    // Shorter under pressure (admission's budget).
    let timeout = shared
        .settings
        .handshake_timeout
        .min(shared.admission.budget());
    let mut buf = Vec::new();
    let (tls, hashes) = shared.tls_snapshot();
    // SHA-256 of a verified client certificate (rustls has checked the
    // chain against iphttps.client_ca when one is presented).
    let mut client_cert: Option<String> = None;
    // The SNI is one of iphttps.server_names.
    let mut iphttps_name = false;
    // The SNI, lower case ([sstp] host).
    let mut sni_name: Option<String> = None;
    let (mut stream, mut buf): (BoxStream, Vec<u8>) = match tls {
        None => {
            let mut tcp = tcp;
            if shared.proxy_protocol() {
                let r = read_head(&mut tcp, &mut buf, 600, timeout, |b| {
                    proxy_protocol::parse(b).map(|p| match p {
                        proxy_protocol::Parsed::Partial => None,
                        proxy_protocol::Parsed::Done {
                            len,
                            source,
                            destination,
                        } => Some(((source, destination), len)),
                    })
                })
                .await;
                match r {
                    Ok((source, destination)) => {
                        peer = source.unwrap_or(peer);
                        conn.called = destination.or(conn.called);
                    }
                    Err(e) => {
                        info!(%peer, error = %plain_error(&e), "PROXY protocol header rejected; closed");
                        shared.stats.failure(Stage::Tls);
                        return;
                    }
                }
            }
            (Box::new(tcp), buf)
        }
        Some(setup) => {
            let Some(tcp) = web::peek_sni(tcp, peer, &shared.settings.web, timeout).await else {
                return;
            };
            let handshake = async {
                let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp)
                    .await
                    .map_err(|e| (e, None))?;
                let sni = start.client_hello().server_name().map(str::to_owned);
                if let Some(config) = shared
                    .acme
                    .as_ref()
                    .and_then(|c| c.for_hello(&start.client_hello()))
                {
                    // The CA validating a tls-alpn-01 challenge: the
                    // handshake is the whole answer (RFC 8737 §3).
                    let done = start.into_stream(config).await;
                    info!(%peer, sni = sni.as_deref().unwrap_or(""), ok = done.is_ok(), "ACME: answered a tls-alpn-01 validation");
                    return Ok(None);
                }
                sni_name = sni
                    .as_deref()
                    .map(|n| n.trim_end_matches('.').to_ascii_lowercase());
                let chosen = setup.choose(sni.as_deref());
                iphttps_name = chosen.iphttps_name;
                start
                    .into_stream(chosen.config)
                    .await
                    .map(Some)
                    .map_err(|e| (e, sni))
            };
            match tokio::time::timeout(timeout, handshake).await {
                Ok(Ok(None)) => return,
                Ok(Ok(Some(s))) => {
                    let tls = s.get_ref().1;
                    let cert = tls.peer_certificates().and_then(|c| c.first());
                    client_cert =
                        cert.map(|c| hex::encode(&crate::tls::CertHashes::of(c).sha256[..8]));
                    subject = cert.and_then(|c| cert_subject(c));
                    conn.tls_version = tls.protocol_version().map(tls_version_name);
                    conn.tls_suite = tls
                        .negotiated_cipher_suite()
                        .and_then(|c| c.suite().as_str())
                        .map(str::to_owned);
                    (Box::new(s), buf)
                }
                Ok(Err((e, sni))) => {
                    let sni = sni.as_deref().map(tracing::field::display);
                    shared.stats.failure(Stage::Tls);
                    if let Some(reason) = tls_setup::client_cert_refusal(&e) {
                        shared.stats.auth(Method::Certificate, false);
                        // Once per connection, at info: why a client
                        // cannot connect is the first thing an admin asks.
                        info!(%peer, sni, %reason, "IP-HTTPS TLS handshake refused (client certificate)");
                    } else if iphttps_name {
                        info!(%peer, sni, error = %plain_error(&e), "IP-HTTPS TLS handshake refused");
                    } else {
                        debug!(%peer, sni, error = %plain_error(&e), "TLS handshake failed");
                    }
                    return;
                }
                Err(_) => {
                    shared.stats.failure(Stage::Tls);
                    debug!(%peer, "TLS handshake timed out");
                    return;
                }
            }
        }
    };
    conn.peer = peer;
    let ipcfg = shared.iphttps.as_ref().map(|i| &i.paths);
    let webcfg = &shared.settings.web;
    let req = read_head(&mut stream, &mut buf, MAX_HEAD, timeout, |b| {
        let r = sstp::parse_request(b)?;
        Ok::<_, ::sstp::http::HttpError>(r.map(|(req, len)| match (&req, &ipcfg) {
            (sstp::Request::Other { method, path }, Some(cfg)) if cfg.is_iphttps(method, path) => {
                let checked = ::iphttps::preamble::parse_request(b, cfg).map(|p| match p {
                    ::iphttps::Parsed::Complete { value, .. } => value.link_mtu,
                    ::iphttps::Parsed::Partial => ::iphttps::mtu::Offer::Absent,
                });
                (Dispatch::Iphttps(checked), len)
            }
            (sstp::Request::Sstp(r), _)
                if !web::sstp_allowed(webcfg, r.host.as_deref(), sni_name.as_deref()) =>
            {
                (web_head(b, req), len)
            }
            (sstp::Request::Other { .. }, _) => (web_head(b, req), len),
            (sstp::Request::Head { path }, _) if !web::is_health_check("HEAD", path) => {
                (web_head(b, req), len)
            }
            _ => (Dispatch::Sstp(req), len),
        }))
    })
    .await;
    match req {
        Ok(Dispatch::Iphttps(Err(e))) => {
            info!(%peer, error = %e, status = e.status(), "IP-HTTPS request refused");
            shared.stats.failure(Stage::Http);
            reply(&mut stream, &e.response()).await;
        }
        Ok(Dispatch::Iphttps(Ok(link_mtu))) => {
            let Some(service) = shared.iphttps.as_ref() else {
                return;
            };
            if service.names_only && !iphttps_name {
                info!(%peer, "IP-HTTPS request on a name not in iphttps.server_names; 421");
                shared.stats.failure(Stage::Http);
                reply(&mut stream, &::iphttps::preamble::build_refusal(421)).await;
                return;
            }
            let client = match (&client_cert, service.auth_none) {
                (Some(c), _) => format!("cert:{c}"),
                (None, true) => "anonymous".to_string(),
                (None, false) => {
                    warn!(%peer, "IP-HTTPS client presented no verified certificate; 403");
                    shared.stats.failure(Stage::Http);
                    shared.stats.auth(Method::Certificate, false);
                    reply(&mut stream, &::iphttps::preamble::build_refusal(403)).await;
                    return;
                }
            };
            let client = iphttps::Client {
                log: client,
                subject,
                link_mtu,
            };
            ticket.established();
            iphttps::run(stream, buf, conn, client, shared).await;
        }
        Ok(Dispatch::Sstp(sstp::Request::Sstp(req))) => {
            sstp::run(stream, buf, conn, req, hashes, shared, ticket).await;
        }
        Ok(Dispatch::Web(head)) => {
            web::serve(stream, buf, peer, *head, &shared).await;
        }
        Ok(Dispatch::Sstp(sstp::Request::Head { .. })) => {
            reply(
                &mut stream,
                b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await;
        }
        Ok(Dispatch::Sstp(sstp::Request::Other { method, path })) => {
            info!(%peer, %method, %path, "not an SSTP request; 404");
            shared.stats.failure(Stage::Http);
            reply(&mut stream, &web::page(webcfg, 404, false)).await;
        }
        Err(HeadError::Parse(e)) if e.too_large() => {
            info!(%peer, error = %e, "request head too large; 431");
            shared.stats.failure(Stage::Http);
            reply(&mut stream, &::iphttps::preamble::build_refusal(431)).await;
        }
        Err(HeadError::Parse(e)) => {
            info!(%peer, error = %e, "malformed request head; 400");
            shared.stats.failure(Stage::Http);
            reply(&mut stream, &::iphttps::preamble::build_refusal(400)).await;
        }
        Err(e @ HeadError::TooBig(_)) => {
            info!(%peer, error = %e, "request head too large; 431");
            shared.stats.failure(Stage::Http);
            reply(&mut stream, &::iphttps::preamble::build_refusal(431)).await;
        }
        Err(e) => {
            info!(%peer, error = %plain_error(&e), "no request head; closed");
            shared.stats.failure(Stage::Http);
        }
    }
}

/// A short answer, then the end of the connection.
async fn reply(stream: &mut BoxStream, response: &[u8]) {
    let _ = stream.write_all(response).await;
    let _ = stream.shutdown().await;
}
