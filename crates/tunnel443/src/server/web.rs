//! A website on the VPN's port 443 (`[web]`): every request that is not
//! SSTP (MS-SSTP §3.2.4.1), IP-HTTPS (MS-IPHTTPS §3.2.5.1) or the load
//! balancers' `HEAD /sra_…/` health check goes to the HTTP backend, with
//! `X-Forwarded-For`, `X-Forwarded-Proto` and `Forwarded` (RFC 7239) naming
//! the real client (the PROXY protocol's, behind a load balancer). Request
//! and response are streamed both ways; a WebSocket upgrade (RFC 6455
//! §4.1) passes through as the same byte stream. Without a backend, or when
//! it is down, the answer is a page like an ordinary web server's (404 or
//! 502), never anything that names tunnel443.
//!
//! One request per connection to the backend: the forwarded head says
//! `Connection: close` (unless it is an upgrade), so a second request on
//! the client's connection cannot reach the backend without our headers.
//! The head's framing is checked by the shared policy first
//! ([`httphead::framing`]): conflicting lengths or Transfer-Encoding with
//! Content-Length get a 400, so the backend never sees a smuggling attempt.
//!
//! `[web] sni_passthrough` is handled before our TLS handshake
//! ([`peek_sni`], with [`httphead::sni`]).

use std::net::SocketAddr;

use httphead::{framing, Header, Headers, RequestHead, ResponseHead};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tracing::{debug, info, warn};

use crate::io_util::{plain_error, read_head, BoxStream};
use crate::server::rewind::Rewind;
use crate::server::Shared;
use crate::web_config::WebSettings;
use httphead::sni;

/// Whether this is the load balancers' health check (`HEAD` of the SSTP
/// path, MS-SSTP §3.3.4 answers it with 200).
pub fn is_health_check(method: &str, path: &str) -> bool {
    let path = path.split('?').next().unwrap_or_default();
    method.eq_ignore_ascii_case("HEAD")
        && path
            .get(..5)
            .is_some_and(|p| p.eq_ignore_ascii_case("/sra_"))
}

/// Whether an SSTP request for Host `host` on TLS name `sni` gets the VPN:
/// always without `[sstp] host`; with it, the Host header must name it and
/// so must the SNI when the client sent one.
pub fn sstp_allowed(web: &WebSettings, host: Option<&str>, sni: Option<&str>) -> bool {
    match &web.sstp_host {
        None => true,
        Some(h) => host == Some(h.as_str()) && sni.is_none_or(|s| s == h),
    }
}

/// The hop-by-hop fields (RFC 9110 §7.6.1) we never forward, besides those
/// the Connection field names.
const HOP_BY_HOP: [&str; 6] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

/// The fields that say who the client is.
const FORWARDED: [&str; 4] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-real-ip",
];

/// `Forwarded: for=` node (RFC 7239 §6): IPv6 in quotes and brackets.
fn forwarded_node(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(a) => a.to_string(),
        std::net::IpAddr::V6(a) => format!("\"[{a}]\""),
    }
}

/// Why a request is not passed to the backend (answered with 400).
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error(transparent)]
    Framing(#[from] framing::FramingError),
    #[error("request line cannot be forwarded: {0}")]
    Line(#[from] httphead::HeaderError),
}

/// The request head to send to the backend: the client's, without
/// hop-by-hop fields, with the client's address added. `behind_balancer`
/// (plain-HTTP mode): the balancer's own forwarding fields are kept and
/// ours appended; otherwise we are the edge and drop what the client
/// claimed. Refused when the framing cannot be trusted.
pub fn forward_head(
    head: &RequestHead,
    client: SocketAddr,
    behind_balancer: bool,
) -> Result<Vec<u8>, Refused> {
    framing::body(head.headers())?;
    let h = head.headers();
    let upgrade = h.has_token("connection", "upgrade") && h.contains("upgrade");
    let named: Vec<String> = h
        .get_all("connection")
        .flat_map(|c| {
            String::from_utf8_lossy(c.value())
                .split(',')
                .map(|t| t.trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
        .collect();
    let mut out = Headers::new();
    let mut prior_for: Vec<String> = Vec::new();
    let mut prior_fwd: Vec<String> = Vec::new();
    let mut prior_proto = None;
    for f in h.iter() {
        let name = f.name().to_ascii_lowercase();
        if FORWARDED.contains(&name.as_str()) {
            if behind_balancer {
                let v = String::from_utf8_lossy(f.value()).into_owned();
                match name.as_str() {
                    "x-forwarded-for" => prior_for.push(v),
                    "forwarded" => prior_fwd.push(v),
                    "x-forwarded-proto" => prior_proto = prior_proto.or(Some(v)),
                    _ => out.push(f.clone()),
                }
            }
            continue;
        }
        if name == "upgrade" && upgrade {
            out.push(f.clone());
            continue;
        }
        if HOP_BY_HOP.contains(&name.as_str()) || named.contains(&name) {
            continue;
        }
        out.push(f.clone());
    }
    let ip = client.ip().to_canonical();
    prior_for.push(ip.to_string());
    prior_fwd.push(format!("for={};proto=https", forwarded_node(ip)));
    let fields = [
        ("X-Forwarded-For", prior_for.join(", ")),
        (
            "X-Forwarded-Proto",
            prior_proto.unwrap_or_else(|| "https".into()),
        ),
        ("Forwarded", prior_fwd.join(", ")),
        (
            "Connection",
            if upgrade { "upgrade" } else { "close" }.to_string(),
        ),
    ];
    for (n, v) in fields {
        if let Ok(f) = Header::new(n, &v) {
            out.push(f);
        }
    }
    let fwd = RequestHead::new(head.method(), head.target(), out)?;
    let mut bytes = Vec::with_capacity(fwd.buffer_len());
    fwd.emit(&mut bytes);
    Ok(bytes)
}

/// A complete answer of ours: an HTML page like an ordinary web server's,
/// with the configured `Server` field; `head_only` for a HEAD request.
pub fn page(web: &WebSettings, status: u16, head_only: bool) -> Vec<u8> {
    let reason = match status {
        400 => "Bad Request",
        404 => "Not Found",
        502 => "Bad Gateway",
        _ => "Error",
    };
    let footer = if web.server_header.is_empty() {
        String::new()
    } else {
        format!("<hr><center>{}</center>\r\n", web.server_header)
    };
    let custom = web.not_found_page.clone().filter(|_| status == 404);
    let body = custom.unwrap_or_else(|| {
        format!(
            "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n<center><h1>{status} {reason}</h1></center>\r\n{footer}</body>\r\n</html>\r\n"
        )
        .into_bytes()
    });
    let mut hs = Headers::new();
    let date = super::httpdate();
    let content_length = body.len().to_string();
    for (n, v) in [
        ("Server", web.server_header.as_str()),
        ("Date", date.as_str()),
        ("Content-Type", "text/html"),
        ("Content-Length", content_length.as_str()),
        ("Connection", "close"),
    ] {
        if v.is_empty() {
            continue;
        }
        if let Ok(h) = Header::new(n, v) {
            hs.push(h);
        }
    }
    let mut out = Vec::new();
    ResponseHead::new(status, reason, hs).emit(&mut out);
    if !head_only {
        out.extend_from_slice(&body);
    }
    out
}

async fn answer(stream: &mut BoxStream, bytes: &[u8]) {
    let _ = stream.write_all(bytes).await;
    let _ = stream.shutdown().await;
}

/// Serves one web request: to the backend, or our 404 page.
pub async fn serve(
    mut stream: BoxStream,
    rest: Vec<u8>,
    peer: SocketAddr,
    head: RequestHead,
    shared: &Shared,
) {
    let web = &shared.settings.web;
    let head_only = head.method().eq_ignore_ascii_case("HEAD");
    let path = httphead::sanitize(head.target(), 128);
    let Some(backend) = web.backend.as_deref() else {
        debug!(%peer, method = head.method(), %path, "web request without a backend; 404");
        answer(&mut stream, &page(web, 404, head_only)).await;
        return;
    };
    let behind = matches!(
        shared.settings.tls,
        crate::config::TlsMode::PlainHttp { .. }
    );
    let fwd = match forward_head(&head, peer, behind) {
        Ok(f) => f,
        Err(e) => {
            info!(%peer, error = %e, "web request refused; 400");
            answer(&mut stream, &page(web, 400, head_only)).await;
            return;
        }
    };
    let timeout = shared.settings.handshake_timeout;
    let mut conn = match tokio::time::timeout(timeout, TcpStream::connect(backend)).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            warn!(%peer, backend, error = %plain_error(&e), "web backend unreachable; 502");
            answer(&mut stream, &page(web, 502, head_only)).await;
            return;
        }
        Err(_) => {
            warn!(%peer, backend, "web backend did not accept within the handshake timeout; 502");
            answer(&mut stream, &page(web, 502, head_only)).await;
            return;
        }
    };
    let _ = conn.set_nodelay(true);
    debug!(%peer, method = head.method(), %path, backend, "web request passed to the backend");
    if let Err(e) = async {
        conn.write_all(&fwd).await?;
        conn.write_all(&rest).await
    }
    .await
    {
        warn!(%peer, backend, error = %plain_error(&e), "web backend closed; 502");
        answer(&mut stream, &page(web, 502, head_only)).await;
        return;
    }
    if let Err(e) = tokio::io::copy_bidirectional(&mut stream, &mut conn).await {
        debug!(%peer, backend, error = %plain_error(&e), "web connection ended");
    }
}

/// Before our TLS handshake: with `[web] sni_passthrough`, reads the
/// ClientHello and splices a connection for one of those names to its
/// site. The stream to run our handshake on (the bytes read given back),
/// or `None` when the connection was passed on or closed.
pub async fn peek_sni(
    mut tcp: TcpStream,
    peer: SocketAddr,
    web: &WebSettings,
    timeout: std::time::Duration,
) -> Option<Rewind<TcpStream>> {
    let mut hello = Vec::new();
    if web.sni_passthrough.is_empty() {
        return Some(Rewind::new(hello, tcp));
    }
    let name = read_head(&mut tcp, &mut hello, sni::MAX_PEEK, timeout, |b| {
        Ok::<_, std::convert::Infallible>(match sni::peek(b) {
            sni::Peek::Partial => None,
            sni::Peek::NoName => Some((None, 0)),
            sni::Peek::Name(n) => Some((Some(n), 0)),
        })
    })
    .await;
    match name {
        Ok(Some(n)) => {
            if let Some(to) = web.sni_passthrough.get(&n) {
                splice(tcp, hello, peer, &n, to, timeout).await;
                return None;
            }
        }
        Ok(None) => {}
        Err(e) => {
            debug!(%peer, error = %plain_error(&e), "no TLS ClientHello; closed");
            return None;
        }
    }
    Some(Rewind::new(hello, tcp))
}

/// Splices a TLS connection for `name` to `backend` untouched (`[web]
/// sni_passthrough`): the ClientHello bytes already read, then both ways.
pub async fn splice(
    mut client: TcpStream,
    hello: Vec<u8>,
    peer: SocketAddr,
    name: &str,
    backend: &str,
    timeout: std::time::Duration,
) {
    let mut conn = match tokio::time::timeout(timeout, TcpStream::connect(backend)).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            warn!(%peer, sni = name, backend, error = %plain_error(&e), "SNI passthrough backend unreachable; closed");
            return;
        }
        Err(_) => {
            warn!(%peer, sni = name, backend, "SNI passthrough backend did not accept in time; closed");
            return;
        }
    };
    let _ = conn.set_nodelay(true);
    debug!(%peer, sni = name, backend, "TLS connection passed through by SNI");
    if conn.write_all(&hello).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut conn).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use httphead::Parsed;

    fn head(raw: &str) -> RequestHead {
        match RequestHead::parse(raw.as_bytes(), 1 << 14).unwrap() {
            Parsed::Complete { head, .. } => head,
            Parsed::Partial => panic!("partial"),
        }
    }

    fn fwd(raw: &str, peer: &str, behind: bool) -> String {
        String::from_utf8(forward_head(&head(raw), peer.parse().unwrap(), behind).unwrap()).unwrap()
    }

    #[test]
    fn edge_adds_the_client_and_drops_its_claims() {
        let out = fwd(
            "GET /a?b HTTP/1.1\r\nHost: www.example.com\r\nX-Forwarded-For: 6.6.6.6\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: 5\r\nAccept: */*\r\n\r\n",
            "192.0.2.7:5000",
            false,
        );
        assert_eq!(
            out,
            "GET /a?b HTTP/1.1\r\nHost: www.example.com\r\nAccept: */*\r\nX-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: https\r\nForwarded: for=192.0.2.7;proto=https\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn behind_a_balancer_the_chain_grows() {
        let out = fwd(
            "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 198.51.100.1\r\nX-Forwarded-Proto: https\r\n\r\n",
            "[2001:db8::7]:5000",
            true,
        );
        assert!(
            out.contains("X-Forwarded-For: 198.51.100.1, 2001:db8::7\r\n"),
            "{out}"
        );
        assert!(
            out.contains("Forwarded: for=\"[2001:db8::7]\";proto=https\r\n"),
            "{out}"
        );
        // A v4-mapped peer is shown as IPv4.
        let out = fwd("GET / HTTP/1.1\r\n\r\n", "[::ffff:192.0.2.9]:1", false);
        assert!(out.contains("X-Forwarded-For: 192.0.2.9\r\n"), "{out}");
    }

    #[test]
    fn websocket_upgrade_passes() {
        let out = fwd(
            "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            "192.0.2.7:5000",
            false,
        );
        assert!(out.contains("Upgrade: websocket\r\n"), "{out}");
        assert!(out.ends_with("Connection: upgrade\r\n\r\n"), "{out}");
        assert!(out.contains("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"));
        // Upgrade without the Connection token is not an upgrade.
        let out = fwd(
            "GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            "192.0.2.7:1",
            false,
        );
        assert!(!out.contains("Upgrade"), "{out}");
    }

    #[test]
    fn untrustworthy_framing_is_refused() {
        for raw in [
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        ] {
            assert!(
                forward_head(&head(raw), "192.0.2.7:1".parse().unwrap(), false).is_err(),
                "{raw}"
            );
        }
    }

    #[test]
    fn health_check_and_sstp_host() {
        assert!(is_health_check(
            "HEAD",
            "/sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/"
        ));
        assert!(is_health_check("head", "/SRA_%7Bx%7D/?a"));
        assert!(!is_health_check("HEAD", "/"));
        assert!(!is_health_check("GET", "/sra_x/"));
        let mut w = WebSettings::default();
        assert!(sstp_allowed(&w, None, None));
        w.sstp_host = Some("vpn.example.com".into());
        assert!(sstp_allowed(&w, Some("vpn.example.com"), None));
        assert!(sstp_allowed(
            &w,
            Some("vpn.example.com"),
            Some("vpn.example.com")
        ));
        assert!(!sstp_allowed(
            &w,
            Some("vpn.example.com"),
            Some("www.example.com")
        ));
        assert!(!sstp_allowed(&w, Some("10.0.0.1"), None));
        assert!(!sstp_allowed(&w, None, Some("vpn.example.com")));
    }

    #[test]
    fn pages_look_like_a_web_server() {
        let mut w = WebSettings {
            server_header: "nginx".into(),
            ..WebSettings::default()
        };
        let p = String::from_utf8(page(&w, 404, false)).unwrap();
        assert!(p.starts_with("HTTP/1.1 404 Not Found\r\nServer: nginx\r\nDate: "));
        assert!(p.contains("<hr><center>nginx</center>"), "{p}");
        assert!(!p.to_ascii_lowercase().contains("tunnel443"));
        let (head, body) = p.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}\r\n", body.len())));
        let h = String::from_utf8(page(&w, 502, true)).unwrap();
        assert!(h.starts_with("HTTP/1.1 502 Bad Gateway\r\n") && h.ends_with("\r\n\r\n"));
        w.server_header.clear();
        let p = String::from_utf8(page(&w, 404, false)).unwrap();
        assert!(!p.contains("Server:") && !p.contains("<hr>"), "{p}");
    }
}
