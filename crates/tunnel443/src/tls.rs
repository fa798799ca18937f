//! TLS for both ends (rustls with the aws-lc-rs provider, TLS 1.2 and 1.3
//! only: Windows 10's Schannel has no TLS 1.3).
//!
//! The client validates the server as MS-SSTP §3.2.4.1 asks: the chain to a
//! trusted root, the host name, and an extended key usage of
//! `id-kp-serverAuth` or `anyExtendedKeyUsage` (RFC 5280 §4.2.1.12). A pinned
//! SHA-256 of the leaf certificate replaces the chain and name checks (not the
//! EKU check); `--insecure` turns every check off and says so in the log.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha1::Digest as _;

mod text;
pub use text::{describe, explain_with, words};

/// TLS versions we speak.
pub static VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// Installs aws-lc-rs as the process-wide provider (idempotent).
pub fn install_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// SHA-1 and SHA-256 of a certificate's DER: the "cert hash" of the SSTP
/// crypto binding (MS-SSTP §2.2.7, §3.2.5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertHashes {
    pub sha1: [u8; 20],
    pub sha256: [u8; 32],
}

impl CertHashes {
    pub fn of(der: &[u8]) -> Self {
        Self {
            sha1: sha1::Sha1::digest(der).into(),
            sha256: sha2::Sha256::digest(der).into(),
        }
    }
}

/// Reads a PEM certificate chain (leaf first).
pub fn load_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .with_context(|| format!("{}: bad PEM", path.display()))?;
    if certs.is_empty() {
        bail!("{}: no certificate in it", path.display());
    }
    Ok(certs)
}

/// Reads a PEM private key (PKCS#8, PKCS#1 or SEC1).
pub fn load_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .with_context(|| format!("{}: bad PEM", path.display()))?
        .with_context(|| format!("{}: no private key in it", path.display()))
}

/// Whether a server config asks for client certificates (IP-HTTPS mutual
/// TLS, MS-IPHTTPS §1.5 and §4.2) and what they must chain to.
#[derive(Debug, Clone, Copy)]
pub enum ClientCerts<'a> {
    /// No CertificateRequest (SSTP authenticates in PPP).
    None,
    /// A certificate is asked for and verified against these CAs when
    /// presented; clients without one still complete the handshake (SSTP
    /// clients on a listener shared with IP-HTTPS).
    Optional(&'a Path),
    /// A certificate chaining to these CAs is required: the handshake
    /// fails without one.
    Required(&'a Path),
}

/// A server config from a certificate chain and key, plus the leaf's hashes.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client: ClientCerts<'_>,
) -> anyhow::Result<(Arc<rustls::ServerConfig>, CertHashes)> {
    let chain = load_certs(cert)?;
    let key = load_key(key)?;
    let hashes = CertHashes::of(&chain[0]);
    let builder =
        rustls::ServerConfig::builder_with_provider(provider()).with_protocol_versions(VERSIONS)?;
    let builder = match client {
        ClientCerts::None => builder.with_no_client_auth(),
        ClientCerts::Optional(ca) | ClientCerts::Required(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in load_certs(ca)? {
                roots
                    .add(c)
                    .with_context(|| format!("{}: not a usable CA certificate", ca.display()))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider(),
            );
            let verifier = match client {
                ClientCerts::Optional(_) => verifier.allow_unauthenticated(),
                _ => verifier,
            };
            builder.with_client_cert_verifier(verifier.build().context("client CA verifier")?)
        }
    };
    let mut cfg = builder
        .with_single_cert(chain, key)
        .context("certificate and key do not match")?;
    // Resumption by encrypted tickets (keys rotated every 6 hours) rather
    // than rustls's default cache of the last 256 sessions: each cache
    // entry outlived its connection, scattered among the live ones, and
    // kept the heap pages around it (BENCHMARKS.md "Churn soak").
    cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    cfg.ticketer = rustls::crypto::aws_lc_rs::Ticketer::new().context("TLS session tickets")?;
    Ok((Arc::new(cfg), hashes))
}

/// How the client decides to trust the server.
#[derive(Debug, Clone)]
pub enum Trust {
    /// The system's roots (default).
    System,
    /// Roots from a PEM file (`--ca`).
    CaFile(std::path::PathBuf),
    /// SHA-256 of the leaf certificate's DER (`--pin-sha256`).
    Pin([u8; 32]),
    /// No validation at all (`--insecure`).
    Insecure,
}

/// A client config, and what the server presented to it: the SHA-256 of
/// the last leaf certificate the verifier saw, for the hint that follows a
/// refusal (`--pin-sha256 HEX`).
#[derive(Clone)]
pub struct ClientTls {
    pub config: Arc<rustls::ClientConfig>,
    presented: Presented,
}

type Presented = Arc<std::sync::Mutex<Option<[u8; 32]>>>;

impl ClientTls {
    /// SHA-256 of the leaf certificate the server presented last.
    pub fn presented_sha256(&self) -> Option<[u8; 32]> {
        *self.presented.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A handshake error in plain words; when the server's certificate was
    /// not trusted, its SHA-256 and the options that would trust it.
    pub fn explain(&self, e: &rustls::Error) -> String {
        explain_with(e, self.presented_sha256())
    }
}

/// Builds the client config for `trust`.
pub fn client_config(trust: &Trust) -> anyhow::Result<ClientTls> {
    client_config_with_cert(trust, None)
}

/// Builds the client config for `trust`, presenting the certificate chain
/// and key in `identity` (PEM files) when given (IP-HTTPS mutual TLS).
pub fn client_config_with_cert(
    trust: &Trust,
    identity: Option<(&Path, &Path)>,
) -> anyhow::Result<ClientTls> {
    let provider = provider();
    let presented = Presented::default();
    let verifier: Arc<dyn ServerCertVerifier> = match trust {
        Trust::System | Trust::CaFile(_) => {
            let mut roots = rustls::RootCertStore::empty();
            if let Trust::CaFile(path) = trust {
                for c in load_certs(path)? {
                    roots
                        .add(c)
                        .with_context(|| format!("{}: not a usable CA", path.display()))?;
                }
            } else {
                let found = rustls_native_certs::load_native_certs();
                for c in found.certs {
                    let _ = roots.add(c);
                }
                if roots.is_empty() {
                    bail!("no system root certificates found (install ca-certificates, or use --ca/--pin-sha256)");
                }
            }
            let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider.clone(),
            )
            .build()?;
            Arc::new(Verifier {
                mode: Mode::WebPki(inner),
                provider: provider.clone(),
                presented: presented.clone(),
            })
        }
        Trust::Pin(p) => Arc::new(Verifier {
            mode: Mode::Pin(*p),
            provider: provider.clone(),
            presented: presented.clone(),
        }),
        Trust::Insecure => Arc::new(Verifier {
            mode: Mode::Insecure,
            provider: provider.clone(),
            presented: presented.clone(),
        }),
    };
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(VERSIONS)?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut cfg = match identity {
        None => cfg.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = load_certs(cert)?;
            check_client_cert(&chain[0])
                .map_err(|why| anyhow::anyhow!("client certificate {}: {why}", cert.display()))?;
            cfg.with_client_auth_cert(chain, load_key(key)?)
                .map_err(|e| match e {
                    rustls::Error::InconsistentKeys(_) => anyhow::anyhow!(
                        "client certificate {} and key {} do not match",
                        cert.display(),
                        key.display()
                    ),
                    e => anyhow::anyhow!(
                        "client certificate {} with key {}: {}",
                        cert.display(),
                        key.display(),
                        describe(&e)
                    ),
                })?
        }
    };
    // SSLKEYLOGFILE (for tshark to decrypt a capture); a no-op when unset.
    cfg.key_log = Arc::new(rustls::KeyLogFile::new());
    Ok(ClientTls {
        config: Arc::new(cfg),
        presented,
    })
}

/// What rustls (webpki) and an IP-HTTPS server (MS-IPHTTPS §4.2) need of
/// our client certificate: X.509 v3 and, when it restricts its extended
/// key usage, `id-kp-clientAuth` among them (RFC 5280 §4.2.1.12).
pub fn check_client_cert(der: &[u8]) -> Result<(), String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("does not parse as X.509: {e}"))?;
    let version = cert.version().0 + 1;
    if version != 3 {
        return Err(format!(
            "it is an X.509 v{version} certificate; rustls needs v3, with the clientAuth \
             extended key usage (see the openssl recipe in the README, IP-HTTPS)"
        ));
    }
    match cert.extended_key_usage() {
        Ok(Some(eku)) if eku.value.client_auth => Ok(()),
        Ok(Some(eku)) => {
            let mut has = Vec::new();
            if eku.value.server_auth {
                has.push("serverAuth");
            }
            if eku.value.any {
                has.push("anyExtendedKeyUsage");
            }
            let has = if has.is_empty() {
                "other purposes".to_string()
            } else {
                has.join(", ")
            };
            Err(format!(
                "its extended key usage lacks clientAuth (it allows {has}); \
                 reissue it with extendedKeyUsage=clientAuth"
            ))
        }
        Ok(None) => Ok(()),
        Err(e) => Err(format!("its extended key usage is malformed: {e}")),
    }
}

#[derive(Debug)]
enum Mode {
    WebPki(Arc<rustls::client::WebPkiServerVerifier>),
    Pin([u8; 32]),
    Insecure,
}

#[derive(Debug)]
struct Verifier {
    mode: Mode,
    provider: Arc<CryptoProvider>,
    /// SHA-256 of the last leaf presented (for the hint on refusal).
    presented: Presented,
}

/// MS-SSTP §3.2.4.1: the leaf must carry id-kp-serverAuth or anyExtendedKeyUsage.
pub fn check_server_eku(der: &[u8]) -> Result<(), String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("server certificate does not parse: {e}"))?;
    match cert.extended_key_usage() {
        Ok(Some(eku)) if eku.value.server_auth || eku.value.any => Ok(()),
        Ok(Some(_)) => Err("server certificate's extended key usage lacks serverAuth".into()),
        Ok(None) => {
            Err("server certificate has no extended key usage (serverAuth is required)".into())
        }
        Err(e) => Err(format!(
            "server certificate's extended key usage is malformed: {e}"
        )),
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got: [u8; 32] = sha2::Sha256::digest(end_entity.as_ref()).into();
        *self.presented.lock().unwrap_or_else(|e| e.into_inner()) = Some(got);
        match &self.mode {
            Mode::Insecure => return Ok(ServerCertVerified::assertion()),
            Mode::WebPki(v) => {
                v.verify_server_cert(end_entity, intermediates, server_name, ocsp, now)?;
            }
            Mode::Pin(pin) => {
                if !constant_time_eq(&got, pin) {
                    return Err(rustls::Error::General(format!(
                        "the server's certificate has SHA-256 {}, not the pinned {}",
                        hex::encode(got),
                        hex::encode(pin)
                    )));
                }
            }
        }
        check_server_eku(end_entity).map_err(rustls::Error::General)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Parses a hex SHA-256 fingerprint (colons allowed).
pub fn parse_fingerprint(s: &str) -> anyhow::Result<[u8; 32]> {
    let clean: String = s.chars().filter(|c| *c != ':').collect();
    let v = hex::decode(&clean).context("--pin-sha256: not hex")?;
    v.try_into()
        .map_err(|v: Vec<u8>| anyhow::anyhow!("--pin-sha256: {} bytes, want 32", v.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn cert_with(eku: Vec<rcgen::ExtendedKeyUsagePurpose>) -> Vec<u8> {
        let mut p = rcgen::CertificateParams::new(vec!["x.test".to_string()]).unwrap();
        p.extended_key_usages = eku;
        let key = rcgen::KeyPair::generate().unwrap();
        p.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn eku_rules() {
        use rcgen::ExtendedKeyUsagePurpose as E;
        assert!(check_server_eku(&cert_with(vec![E::ServerAuth])).is_ok());
        assert!(check_server_eku(&cert_with(vec![E::Any])).is_ok());
        assert!(check_server_eku(&cert_with(vec![E::ClientAuth])).is_err());
        assert!(check_server_eku(&cert_with(vec![])).is_err());
        assert!(check_server_eku(b"garbage").is_err());
    }

    /// Runs openssl in `dir`; panics with its stderr on failure.
    fn openssl(dir: &Path, args: &[&str]) {
        let out = std::process::Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("openssl is installed (scripts/install-deps)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A client key and a certificate for it made by `openssl x509 -req`
    /// with `ext` as its extensions file (none: an X.509 v1 certificate).
    fn openssl_client_cert(ext: Option<&str>) -> (tempdir::Dir, PathBuf, PathBuf) {
        let d = tempdir::Dir::new();
        let p = d.0.as_path();
        openssl(
            p,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "c.key",
                "-out",
                "c.csr",
                "-subj",
                "/CN=client",
            ],
        );
        let mut args = vec![
            "x509", "-req", "-in", "c.csr", "-signkey", "c.key", "-out", "c.pem", "-days", "2",
        ];
        if let Some(ext) = ext {
            std::fs::write(p.join("c.ext"), ext).unwrap();
            args.extend(["-extfile", "c.ext"]);
        }
        openssl(p, &args);
        let (c, k) = (p.join("c.pem"), p.join("c.key"));
        (d, c, k)
    }

    mod tempdir {
        pub struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub fn new() -> Self {
                static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
                let d = std::env::temp_dir().join(format!(
                    "t443-tls-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                ));
                std::fs::create_dir_all(&d).unwrap();
                Dir(d)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn the_server_keeps_no_tls_session_state() {
        install_provider();
        let d = tempdir::Dir::new();
        let (c, k) = (d.0.join("cert.pem"), d.0.join("key.pem"));
        crate::state::ensure_certificate(&c, &k, &[]).unwrap();
        let (cfg, _) = server_config(&c, &k, ClientCerts::None).unwrap();
        // Resumption state travels in encrypted tickets: nothing a
        // handshake leaves behind in the server's heap.
        assert!(!cfg.session_storage.put(vec![1; 32], vec![2; 64]));
        assert!(cfg.ticketer.enabled());
    }

    fn client_config_error(cert: &Path, key: &Path) -> String {
        install_provider();
        match client_config_with_cert(&Trust::Insecure, Some((cert, key))) {
            Ok(_) => panic!("accepted"),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn client_certificate_faults_are_named() {
        // X.509 v1 (no extensions): its key matches; the version is wrong.
        let (_d, c, k) = openssl_client_cert(None);
        let e = client_config_error(&c, &k);
        assert!(e.contains("X.509 v1") && e.contains("v3"), "{e}");
        assert!(e.contains("clientAuth"), "{e}");
        assert!(
            !e.contains("do not match") && !e.contains("Unsupported"),
            "{e}"
        );

        // Only serverAuth: the EKU is what is wrong.
        let (_d, c, k) = openssl_client_cert(Some("extendedKeyUsage=serverAuth\n"));
        let e = client_config_error(&c, &k);
        assert!(
            e.contains("extended key usage lacks clientAuth") && e.contains("serverAuth"),
            "{e}"
        );

        // clientAuth: accepted.
        let (_d, c, k) = openssl_client_cert(Some("extendedKeyUsage=clientAuth\n"));
        install_provider();
        assert!(client_config_with_cert(&Trust::Insecure, Some((&c, &k))).is_ok());

        // A key that is not the certificate's: that, and only that, is a mismatch.
        let (_d2, _, other_key) = openssl_client_cert(Some("extendedKeyUsage=clientAuth\n"));
        let e = client_config_error(&c, &other_key);
        assert!(e.contains("do not match"), "{e}");
    }

    #[test]
    fn fingerprints() {
        let hex64 = "ab".repeat(32);
        assert_eq!(parse_fingerprint(&hex64).unwrap(), [0xab; 32]);
        let colons: Vec<&str> = std::iter::repeat_n("ab", 32).collect();
        assert_eq!(parse_fingerprint(&colons.join(":")).unwrap(), [0xab; 32]);
        assert!(parse_fingerprint("abcd").is_err());
        assert!(parse_fingerprint("zz").is_err());
    }
}
