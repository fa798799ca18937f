//! The server's TLS configurations, and the choice between them when the
//! ClientHello has arrived (its SNI is all there is to go on: the request
//! path comes later).
//!
//! SSTP authenticates in PPP and its clients present no certificate;
//! IP-HTTPS authenticates clients by certificate (MS-IPHTTPS §1.5, §4.2).
//! On one port-443 listener that gives two modes:
//!
//! * `iphttps.server_names` empty (default): one config that asks every
//!   client for a certificate and verifies it against `iphttps.client_ca`
//!   when presented (a bad one fails the handshake). A client without one
//!   completes the handshake; the listener then answers an IP-HTTPS POST
//!   from it with 403 before any IPv6 packet is exchanged.
//! * `iphttps.server_names` set: a handshake for one of those names gets a
//!   config that *requires* a certificate chaining to the CA, so a client
//!   without one is refused in the TLS handshake itself (alert
//!   `certificate_required`). Every other name gets a config without a
//!   CertificateRequest (SSTP clients never see one) and the listener
//!   answers IP-HTTPS there with 421 Misdirected Request.
//!
//! rustls offers neither TLS 1.2 renegotiation nor TLS 1.3 post-handshake
//! authentication, so the certificate cannot be asked for after the path
//! is known: a name is the only way to refuse at TLS on a shared port.

use std::sync::Arc;

use crate::config::{ServerSettings, TlsMode};
use crate::tls::{server_config, CertHashes, ClientCerts};

/// The configs of one certificate, built at start and at every SIGHUP.
pub struct TlsSetup {
    /// For every name not reserved for IP-HTTPS.
    shared: Arc<rustls::ServerConfig>,
    /// The names reserved for IP-HTTPS and their config (certificate required).
    iphttps: Option<(Vec<String>, Arc<rustls::ServerConfig>)>,
    /// The server certificate's hashes (SSTP crypto binding).
    pub hashes: CertHashes,
}

/// The config for one handshake.
pub struct Chosen {
    pub config: Arc<rustls::ServerConfig>,
    /// The SNI is one of `iphttps.server_names`.
    pub iphttps_name: bool,
}

impl TlsSetup {
    /// The configs for `settings`; `None` in plain-HTTP mode.
    pub fn load(settings: &ServerSettings) -> anyhow::Result<Option<Self>> {
        let TlsMode::Tls { cert, key } = &settings.tls else {
            return Ok(None);
        };
        let (ca, names) = match &settings.iphttps {
            Some(i) => (i.client_ca.as_deref(), i.server_names.clone()),
            None => (None, Vec::new()),
        };
        let shared_certs = match ca {
            Some(ca) if names.is_empty() => ClientCerts::Optional(ca),
            _ => ClientCerts::None,
        };
        let (shared, hashes) = server_config(cert, key, shared_certs)?;
        let iphttps = match ca {
            Some(ca) if !names.is_empty() => Some((
                names,
                server_config(cert, key, ClientCerts::Required(ca))?.0,
            )),
            _ => None,
        };
        Ok(Some(TlsSetup {
            shared,
            iphttps,
            hashes,
        }))
    }

    /// The config for a ClientHello with this SNI.
    pub fn choose(&self, sni: Option<&str>) -> Chosen {
        if let (Some((names, config)), Some(sni)) = (&self.iphttps, sni) {
            let sni = sni.trim_end_matches('.');
            if names.iter().any(|n| n.eq_ignore_ascii_case(sni)) {
                return Chosen {
                    config: config.clone(),
                    iphttps_name: true,
                };
            }
        }
        Chosen {
            config: self.shared.clone(),
            iphttps_name: false,
        }
    }
}

/// If a failed server handshake is the refusal of the client's
/// certificate, the reason in plain words (for the log line an admin
/// reads when an IP-HTTPS client cannot connect).
pub fn client_cert_refusal(e: &std::io::Error) -> Option<String> {
    let e = e.get_ref()?.downcast_ref::<rustls::Error>()?;
    match e {
        rustls::Error::NoCertificatesPresented => {
            Some("no client certificate was presented".into())
        }
        rustls::Error::InvalidCertificate(c) => Some(certificate_problem(c)),
        _ => None,
    }
}

/// What is wrong with a client certificate, in plain words.
pub fn certificate_problem(e: &rustls::CertificateError) -> String {
    use rustls::CertificateError as C;
    #[allow(deprecated)]
    let text = match e {
        C::UnknownIssuer => "it is not issued by a CA in iphttps.client_ca",
        C::BadSignature => "its signature does not verify",
        C::Expired | C::ExpiredContext { .. } => "it has expired",
        C::NotValidYet | C::NotValidYetContext { .. } => "it is not valid yet",
        C::Revoked => "it is revoked",
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
            "it is not for client authentication (its extended key usage lacks clientAuth)"
        }
        C::UnhandledCriticalExtension => "it has a critical extension this server does not know",
        C::BadEncoding => "it cannot be parsed",
        C::UnsupportedSignatureAlgorithm
        | C::UnsupportedSignatureAlgorithmContext { .. }
        | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            "it is signed with an algorithm this server does not support"
        }
        C::Other(o) => {
            return match o.to_string().as_str() {
                "CaUsedAsEndEntity" => "it is a CA certificate, not a client certificate".into(),
                "UnsupportedCertVersion" => {
                    "it is not an X.509 v3 certificate (it has no extensions)".into()
                }
                "EndEntityUsedAsCa" => "a client certificate was used as a CA".into(),
                other => format!("it was refused ({})", words(other)),
            }
        }
        _ => "it was refused",
    };
    text.to_owned()
}

/// `CamelCaseName` -> `camel case name`; anything else as it is.
fn words(s: &str) -> String {
    if !s.chars().all(|c| c.is_ascii_alphanumeric()) {
        return s.to_owned();
    }
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push(' ');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_refusals_in_plain_words() {
        use rustls::CertificateError as C;
        let io = |e: rustls::Error| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        assert_eq!(
            client_cert_refusal(&io(C::UnknownIssuer.into())).as_deref(),
            Some("it is not issued by a CA in iphttps.client_ca")
        );
        assert!(client_cert_refusal(&io(C::InvalidPurpose.into()))
            .unwrap()
            .contains("clientAuth"));
        assert_eq!(
            client_cert_refusal(&io(rustls::Error::NoCertificatesPresented)).as_deref(),
            Some("no client certificate was presented")
        );
        #[derive(Debug)]
        struct Webpki(&'static str);
        impl std::fmt::Display for Webpki {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for Webpki {}
        let other = |s| C::Other(rustls::OtherError(Arc::new(Webpki(s))));
        assert_eq!(
            certificate_problem(&other("CaUsedAsEndEntity")),
            "it is a CA certificate, not a client certificate"
        );
        assert_eq!(
            certificate_problem(&other("SomeNewProblem")),
            "it was refused (some new problem)"
        );
        // Not about the client's certificate: nothing to say.
        assert_eq!(
            client_cert_refusal(&io(rustls::Error::HandshakeNotComplete)),
            None
        );
        assert_eq!(client_cert_refusal(&std::io::Error::other("reset")), None);
    }
    use crate::config::{self, Overrides};

    /// A server certificate and a CA in a temporary directory.
    fn files(dir: &std::path::Path) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["vpn.test".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
        std::fs::write(dir.join("ca.pem"), cert.pem()).unwrap();
    }

    fn setup(extra: &str) -> TlsSetup {
        crate::tls::install_provider();
        let dir = std::env::temp_dir().join(format!("t443-tls-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        files(&dir);
        let d = dir.display();
        let text = format!(
            "[tls]\ncert = \"{d}/cert.pem\"\nkey = \"{d}/key.pem\"\n\
             [iphttps]\nprefix = \"fd00:1::/48\"\nclient_ca = \"{d}/ca.pem\"\n{extra}"
        );
        let s = config::validate(config::parse(&text).unwrap(), &Overrides::default()).unwrap();
        let t = TlsSetup::load(&s).unwrap().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        t
    }

    #[test]
    fn without_names_one_config_for_everyone() {
        let t = setup("");
        assert!(t.iphttps.is_none());
        let a = t.choose(Some("da.test"));
        let b = t.choose(None);
        assert!(!a.iphttps_name && !b.iphttps_name);
        assert!(Arc::ptr_eq(&a.config, &b.config));
    }

    #[test]
    fn reserved_names_get_the_strict_config() {
        let t = setup("server_names = [\"da.test\"]\n");
        for sni in ["da.test", "DA.Test", "da.test."] {
            assert!(t.choose(Some(sni)).iphttps_name, "{sni}");
        }
        for sni in [Some("vpn.test"), Some("da.test.example"), None] {
            let c = t.choose(sni);
            assert!(!c.iphttps_name, "{sni:?}");
            assert!(Arc::ptr_eq(&c.config, &t.shared));
        }
    }
}
