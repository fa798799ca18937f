//! The `[web]` section (a website sharing the VPN's port 443) and the
//! `[sstp] host` key, validated into [`WebSettings`]. Errors name the field.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::bail;
use serde::Deserialize;

/// `[web]` as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSection {
    /// HTTP backend (`host:port`) for every request that is not the VPN's.
    pub backend: Option<String>,
    /// TLS server names whose connections go, untouched, to another
    /// HTTPS server (`host:port`), chosen by the ClientHello's SNI.
    pub sni_passthrough: Option<BTreeMap<String, String>>,
    /// The `Server` header of the pages we answer ourselves (404, 502).
    pub server_header: Option<String>,
    /// An HTML file sent as the 404 page when there is no backend.
    pub not_found_page: Option<PathBuf>,
}

/// Validated web settings.
#[derive(Debug, Clone, Default)]
pub struct WebSettings {
    /// `host:port` of the HTTP backend.
    pub backend: Option<String>,
    /// SNI name (lower case) -> `host:port`.
    pub sni_passthrough: BTreeMap<String, String>,
    /// `Server` header of our own pages (empty: none).
    pub server_header: String,
    /// The 404 page's HTML (read when the configuration is loaded).
    pub not_found_page: Option<Vec<u8>>,
    /// `[sstp] host`: the only name SSTP answers on (lower case).
    pub sstp_host: Option<String>,
}

/// The default `Server` header: what an ordinary web server says.
pub const DEFAULT_SERVER_HEADER: &str = "nginx";

/// Checks a `host:port` for `field`.
fn host_port(field: &str, v: &str) -> anyhow::Result<String> {
    if v.parse::<std::net::SocketAddr>().is_ok() {
        return Ok(v.to_string());
    }
    let ok = v.rsplit_once(':').is_some_and(|(h, p)| {
        !h.is_empty()
            && !h.contains(['/', ' ', '[', ']'])
            && h.bytes().all(|b| b.is_ascii_graphic())
            && p.parse::<u16>().is_ok_and(|p| p != 0)
    });
    if !ok {
        bail!("{field}: \"{v}\" is not host:port (e.g. \"127.0.0.1:8080\")");
    }
    Ok(v.to_string())
}

/// A DNS name for `field`, lower case, without a trailing dot.
fn dns_name(field: &str, v: &str) -> anyhow::Result<String> {
    let n = v.trim_end_matches('.').to_ascii_lowercase();
    if rustls::pki_types::DnsName::try_from(n.as_str()).is_err()
        || n.parse::<std::net::IpAddr>().is_ok()
    {
        bail!("{field}: \"{v}\" is not a DNS name");
    }
    Ok(n)
}

/// Validates `[web]` and `[sstp] host`; `plain_http` is `tls.plain_http`.
pub fn validate(
    w: WebSection,
    sstp_host: Option<String>,
    plain_http: bool,
) -> anyhow::Result<WebSettings> {
    let backend = w
        .backend
        .as_deref()
        .map(|b| host_port("web.backend", b))
        .transpose()?;
    let mut sni = BTreeMap::new();
    for (name, to) in w.sni_passthrough.unwrap_or_default() {
        let n = dns_name("web.sni_passthrough", &name)?;
        let to = host_port(&format!("web.sni_passthrough.\"{name}\""), &to)?;
        sni.insert(n, to);
    }
    if !sni.is_empty() && plain_http {
        bail!("web.sni_passthrough: not with tls.plain_http = true (the load balancer sees the TLS names)");
    }
    let server_header = w
        .server_header
        .unwrap_or_else(|| DEFAULT_SERVER_HEADER.to_string());
    if !server_header.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        bail!("web.server_header: only printable ASCII");
    }
    let sstp_host = sstp_host
        .as_deref()
        .map(|h| dns_name("sstp.host", h))
        .transpose()?;
    if let Some(h) = &sstp_host {
        if sni.contains_key(h) {
            bail!("web.sni_passthrough: \"{h}\" is sstp.host");
        }
    }
    let not_found_page = match &w.not_found_page {
        None => None,
        Some(p) => Some(
            std::fs::read(p)
                .map_err(|e| anyhow::anyhow!("web.not_found_page: {}: {e}", p.display()))?,
        ),
    };
    Ok(WebSettings {
        backend,
        sni_passthrough: sni,
        server_header: server_header.trim().to_string(),
        not_found_page,
        sstp_host,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(toml_text: &str) -> WebSection {
        toml::from_str(toml_text).unwrap()
    }

    fn err(w: &str, host: Option<&str>, plain: bool) -> String {
        format!(
            "{:#}",
            validate(section(w), host.map(str::to_string), plain).unwrap_err()
        )
    }

    #[test]
    fn valid() {
        let w = validate(
            section(
                "backend = \"127.0.0.1:8080\"\nsni_passthrough = { \"WWW.Example.com.\" = \"localhost:8443\" }\nserver_header = \"Apache\"\n",
            ),
            Some("VPN.example.com".into()),
            false,
        )
        .unwrap();
        assert_eq!(w.backend.as_deref(), Some("127.0.0.1:8080"));
        assert_eq!(
            w.sni_passthrough.get("www.example.com").map(String::as_str),
            Some("localhost:8443")
        );
        assert_eq!(w.server_header, "Apache");
        assert_eq!(w.sstp_host.as_deref(), Some("vpn.example.com"));
        let d = validate(WebSection::default(), None, true).unwrap();
        assert_eq!(d.server_header, DEFAULT_SERVER_HEADER);
        assert!(d.backend.is_none() && d.sni_passthrough.is_empty());
    }

    #[test]
    fn errors_name_the_field() {
        for (w, host, plain, field) in [
            ("backend = \"8080\"", None, false, "web.backend:"),
            ("backend = \"h:0\"", None, false, "web.backend:"),
            (
                "sni_passthrough = { \"a b\" = \"h:1\" }",
                None,
                false,
                "web.sni_passthrough:",
            ),
            (
                "sni_passthrough = { \"w.example\" = \"h\" }",
                None,
                false,
                "web.sni_passthrough.\"w.example\":",
            ),
            (
                "sni_passthrough = { \"w.example\" = \"h:1\" }",
                None,
                true,
                "web.sni_passthrough:",
            ),
            (
                "server_header = \"a\\nb\"",
                None,
                false,
                "web.server_header:",
            ),
            ("", Some("10.0.0.1"), false, "sstp.host:"),
            (
                "not_found_page = \"/nonexistent/404.html\"",
                None,
                false,
                "web.not_found_page: /nonexistent/404.html:",
            ),
        ] {
            let e = err(w, host, plain);
            assert!(e.starts_with(field), "{w}: {e}");
        }
    }
}
