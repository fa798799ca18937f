//! EAP-TLS's TLS engine: rustls driven on buffers for the sans-IO EAP-TLS
//! framing in `ppp::auth::eap_tls` (which must not depend on rustls).
//!
//! * Keys: RFC 5216 §2.3 (TLS 1.2): Key_Material = TLS-PRF-128(master
//!   secret, "client EAP encryption", client.random || server.random);
//!   RFC 9190 §2.3 (TLS 1.3): Key_Material = TLS-Exporter(
//!   "EXPORTER_EAP_TLS_Key_Material", Type-Code 0x0D, 128). Both are the
//!   RFC 5705 / RFC 8446 §7.5 exporter, so rustls' `export_keying_material`
//!   computes them; MSK = the first 64 octets.
//! * TLS 1.3 (RFC 9190 §2.5): after the handshake the server sends the
//!   commitment message, one octet 0x00 of application data, and no session
//!   tickets (resumption is not offered).
//! * Server: the client certificate must chain to `[eap_tls] client_ca`;
//!   the user name is its subject CN or a SAN, as configured.
//! * PEAP client (`ppp::auth::peap`): the same TLS session without a client
//!   certificate, keeping the application data (the tunneled EAP); keys as
//!   above with Type-Code 25 for TLS 1.3 (RFC 9427 §2.1).

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use ppp::auth::eap_tls::{EapTlsConfig, TlsSession};
use rustls::pki_types::ServerName;
use tracing::info;

use crate::tls;

/// Which certificate field names the user (`[eap_tls] user_name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserNameFrom {
    /// The subject's Common Name ("subject-cn", default).
    SubjectCn,
    /// The first rfc822Name SAN ("san-email").
    SanEmail,
    /// The first dNSName SAN ("san-dns").
    SanDns,
}

impl UserNameFrom {
    /// Parses the config value.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "subject-cn" => Self::SubjectCn,
            "san-email" => Self::SanEmail,
            "san-dns" => Self::SanDns,
            _ => return None,
        })
    }

    fn describe(self) -> &'static str {
        match self {
            Self::SubjectCn => "subject Common Name",
            Self::SanEmail => "e-mail subject alternative name",
            Self::SanDns => "DNS subject alternative name",
        }
    }

    /// The user name from a certificate's DER.
    pub fn extract(self, der: &[u8]) -> Option<String> {
        use x509_parser::extensions::GeneralName;
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let name = match self {
            Self::SubjectCn => cert
                .subject()
                .iter_common_name()
                .next()?
                .as_str()
                .ok()?
                .to_string(),
            Self::SanEmail | Self::SanDns => {
                let san = cert.subject_alternative_name().ok()??;
                san.value
                    .general_names
                    .iter()
                    .find_map(|g| match (self, g) {
                        (Self::SanEmail, GeneralName::RFC822Name(s))
                        | (Self::SanDns, GeneralName::DNSName(s)) => Some(s.to_string()),
                        _ => None,
                    })?
            }
        };
        (!name.is_empty() && !name.chars().any(char::is_control)).then_some(name)
    }
}

/// Server side: our certificate, the CA for client certificates, and how
/// the user name is taken.
#[derive(Debug)]
pub struct ServerEapTls {
    config: Arc<rustls::ServerConfig>,
    user_name: UserNameFrom,
}

impl ServerEapTls {
    /// Loads the certificate, key and client CA (PEM files).
    pub fn new(
        cert: &Path,
        key: &Path,
        client_ca: &Path,
        user_name: UserNameFrom,
    ) -> anyhow::Result<Self> {
        let (cfg, _) = tls::server_config(cert, key, tls::ClientCerts::Required(client_ca))?;
        let mut cfg = (*cfg).clone();
        cfg.send_tls13_tickets = 0;
        cfg.alpn_protocols.clear();
        Ok(ServerEapTls {
            config: Arc::new(cfg),
            user_name,
        })
    }
}

impl EapTlsConfig for ServerEapTls {
    fn start(&self) -> Result<Box<dyn TlsSession>, String> {
        let c =
            rustls::ServerConnection::new(self.config.clone()).map_err(|e| tls::describe(&e))?;
        Ok(Box::new(Session {
            conn: c.into(),
            user_name: Some(self.user_name),
            committed: false,
            method: 13,
            app: None,
            logged: false,
        }))
    }
}

/// Client side: the server's name (its EAP certificate is checked against
/// it), our certificate (EAP-TLS) or none (PEAP), and the trust for the
/// server's.
#[derive(Debug)]
pub struct ClientEapTls {
    config: Arc<rustls::ClientConfig>,
    server_name: ServerName<'static>,
    method: ppp::auth::eap::EapType,
}

impl ClientEapTls {
    /// `trust` checks the server's EAP certificate (`--eap-ca`, else the
    /// TLS trust); `cert`/`key` are ours (PEM files).
    pub fn new(host: &str, trust: &tls::Trust, cert: &Path, key: &Path) -> anyhow::Result<Self> {
        Self::build(host, trust, Some((cert, key)), ppp::auth::eap::EapType::Tls)
    }

    /// PEAP (version 0): the server's certificate is checked with `trust`
    /// against `host`; no client certificate.
    pub fn peap(host: &str, trust: &tls::Trust) -> anyhow::Result<Self> {
        Self::build(host, trust, None, ppp::auth::eap::EapType::Peap)
    }

    fn build(
        host: &str,
        trust: &tls::Trust,
        cert: Option<(&Path, &Path)>,
        method: ppp::auth::eap::EapType,
    ) -> anyhow::Result<Self> {
        let c = tls::client_config_with_cert(trust, cert)?;
        let server_name = ServerName::try_from(host.to_string())
            .with_context(|| format!("{host}: not a valid server name"))?;
        Ok(ClientEapTls {
            config: c.config,
            server_name,
            method,
        })
    }
}

impl EapTlsConfig for ClientEapTls {
    fn start(&self) -> Result<Box<dyn TlsSession>, String> {
        let c = rustls::ClientConnection::new(self.config.clone(), self.server_name.clone())
            .map_err(|e| tls::describe(&e))?;
        Ok(Box::new(Session {
            conn: c.into(),
            user_name: None,
            committed: false,
            method: u8::from(self.method),
            app: (self.method == ppp::auth::eap::EapType::Peap).then(Vec::new),
            logged: false,
        }))
    }

    fn method(&self) -> ppp::auth::eap::EapType {
        self.method
    }
}

struct Session {
    conn: rustls::Connection,
    /// Server: how to name the user.
    user_name: Option<UserNameFrom>,
    /// Server, TLS 1.3: the commitment message was queued.
    committed: bool,
    /// The EAP Type-Code (13 EAP-TLS, 25 PEAP): the TLS 1.3 key context.
    method: u8,
    /// PEAP: application data received and not yet taken.
    app: Option<Vec<u8>>,
    /// The end of the handshake was logged.
    logged: bool,
}

impl Session {
    /// Logs once, when the handshake is over, the TLS version and cipher
    /// suite the peers agreed on (the version decides the key derivation:
    /// RFC 5216 §2.3 or RFC 9190 §2.3).
    fn log_handshake_done(&mut self) {
        if self.logged || self.conn.is_handshaking() {
            return;
        }
        self.logged = true;
        let version = match self.conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "1.3",
            Some(rustls::ProtocolVersion::TLSv1_2) => "1.2",
            _ => "other",
        };
        let suite = self
            .conn
            .negotiated_cipher_suite()
            .and_then(|s| s.suite().as_str())
            .unwrap_or("unknown");
        let method = if self.method == 25 { "PEAP" } else { "EAP-TLS" };
        info!(tls = %version, cipher_suite = %suite, "{method}: TLS handshake done");
    }
}

impl TlsSession for Session {
    fn input(&mut self, mut data: &[u8]) -> Result<(), String> {
        while !data.is_empty() {
            match self.conn.read_tls(&mut data) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => return Err(format!("reading TLS data: {e}")),
            }
            if let Err(e) = self.conn.process_new_packets() {
                let why = tls::describe(&e);
                // `describe` speaks of the server's certificate (the client
                // view); the server checks the client's.
                return Err(match self.user_name {
                    Some(_) => {
                        why.replacen("the server's certificate", "the client certificate", 1)
                    }
                    None => why,
                });
            }
        }
        // Application data: PEAP's tunneled EAP is kept; for EAP-TLS (the
        // TLS 1.3 commitment message) it is read and dropped.
        let mut sink = [0u8; 2048];
        while let Ok(n) = self.conn.reader().read(&mut sink) {
            if n == 0 {
                break;
            }
            if let Some(app) = &mut self.app {
                if app.len() + n > ppp::auth::eap_tls::MAX_MESSAGE {
                    return Err("too much data inside the PEAP tunnel".into());
                }
                app.extend_from_slice(&sink[..n]);
            }
        }
        self.log_handshake_done();
        if let Some(from) = self.user_name {
            if !self.conn.is_handshaking() {
                if self.peer_name().is_none() {
                    return Err(format!(
                        "the client certificate has no {} to use as the user name",
                        from.describe()
                    ));
                }
                if self.conn.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3)
                    && !self.committed
                {
                    self.committed = true;
                    self.conn
                        .writer()
                        .write_all(&[0])
                        .map_err(|e| format!("commitment message: {e}"))?;
                }
            }
        }
        Ok(())
    }

    fn take_output(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut out).is_err() {
                break;
            }
        }
        out
    }

    fn is_done(&self) -> bool {
        !self.conn.is_handshaking()
    }

    fn msk(&self) -> Option<[u8; 64]> {
        if self.conn.is_handshaking() {
            return None;
        }
        let km = match self.conn.protocol_version()? {
            rustls::ProtocolVersion::TLSv1_3 => self.conn.export_keying_material(
                [0u8; 128],
                b"EXPORTER_EAP_TLS_Key_Material",
                Some(&[self.method]),
            ),
            _ => self
                .conn
                .export_keying_material([0u8; 128], b"client EAP encryption", None),
        }
        .ok()?;
        let mut msk = [0u8; 64];
        msk.copy_from_slice(&km[..64]);
        Some(msk)
    }

    fn peer_name(&self) -> Option<String> {
        let from = self.user_name?;
        let leaf = self.conn.peer_certificates()?.first()?;
        from.extract(leaf)
    }

    fn take_app(&mut self) -> Vec<u8> {
        self.app.as_mut().map(std::mem::take).unwrap_or_default()
    }

    fn write_app(&mut self, data: &[u8]) -> Result<(), String> {
        if self.app.is_none() {
            return Err("this TLS session carries no application data".into());
        }
        self.conn
            .writer()
            .write_all(data)
            .map_err(|e| format!("writing inside the PEAP tunnel: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;
    use std::sync::Mutex;

    struct Files(std::path::PathBuf);
    impl Drop for Files {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    /// A CA, a server certificate for vpn.test and a client certificate
    /// (CN alice, SAN alice@example.com) from it, as PEM files.
    fn pki(tag: &str) -> Files {
        let dir = std::env::temp_dir().join(format!("t443-eaptls-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "test CA");
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca_cert = ca.clone().self_signed(&ca_key).unwrap();
        std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let leaf = |name: &str, p: rcgen::CertificateParams| {
            let key = rcgen::KeyPair::generate().unwrap();
            let c = p.signed_by(&key, &issuer).unwrap();
            std::fs::write(dir.join(format!("{name}.pem")), c.pem()).unwrap();
            std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
        };
        let mut sp = rcgen::CertificateParams::new(vec!["vpn.test".to_string()]).unwrap();
        sp.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        leaf("server", sp);
        let mut c = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        c.distinguished_name
            .push(rcgen::DnType::CommonName, "alice");
        c.subject_alt_names = vec![rcgen::SanType::Rfc822Name(
            "alice@example.com".try_into().unwrap(),
        )];
        c.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        leaf("client", c);
        Files(dir)
    }

    /// (label, client random, secret) as rustls logs them.
    type Logged = (String, Vec<u8>, Vec<u8>);

    #[derive(Debug, Default)]
    struct Keys(Mutex<Vec<Logged>>);
    impl rustls::KeyLog for Keys {
        fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
            self.0
                .lock()
                .unwrap()
                .push((label.into(), client_random.to_vec(), secret.to_vec()));
        }
        fn will_log(&self, _: &str) -> bool {
            true
        }
    }

    fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
        let mut k = [0u8; 64];
        k[..key.len()].copy_from_slice(key);
        let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
        let inner = sha2::Sha256::new()
            .chain_update(pad(0x36))
            .chain_update(data)
            .finalize();
        sha2::Sha256::new()
            .chain_update(pad(0x5c))
            .chain_update(inner)
            .finalize()
            .into()
    }

    /// RFC 5246 §5 P_SHA256(secret, label || seed), `n` octets.
    fn prf(secret: &[u8], label_seed: &[u8], n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut a = hmac_sha256(secret, label_seed).to_vec();
        while out.len() < n {
            let mut d = a.clone();
            d.extend_from_slice(label_seed);
            out.extend_from_slice(&hmac_sha256(secret, &d));
            a = hmac_sha256(secret, &a).to_vec();
        }
        out.truncate(n);
        out
    }

    /// Runs both sessions against each other; returns the server's
    /// non-empty flights.
    fn handshake(c: &mut dyn TlsSession, s: &mut dyn TlsSession) -> Result<Vec<Vec<u8>>, String> {
        let mut to_server = c.take_output();
        let mut flights = Vec::new();
        for _ in 0..10 {
            if !to_server.is_empty() {
                s.input(&to_server)?;
            }
            let to_client = s.take_output();
            if to_client.is_empty() && c.is_done() && s.is_done() {
                return Ok(flights);
            }
            flights.push(to_client.clone());
            c.input(&to_client)?;
            to_server = c.take_output();
        }
        Err("no end".into())
    }

    fn server(
        f: &Files,
        v: &'static rustls::SupportedProtocolVersion,
        keys: Arc<Keys>,
    ) -> ServerEapTls {
        let s = ServerEapTls::new(
            &f.0.join("server.pem"),
            &f.0.join("server.key"),
            &f.0.join("ca.pem"),
            UserNameFrom::SanEmail,
        )
        .unwrap();
        // The same verifier and certificate, one TLS version.
        let mut roots = rustls::RootCertStore::empty();
        for c in tls::load_certs(&f.0.join("ca.pem")).unwrap() {
            roots.add(c).unwrap();
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            tls::provider(),
        )
        .build()
        .unwrap();
        // One SHA-256 suite: the test's PRF is P_SHA256 (the exporter uses
        // the suite's PRF hash, SHA-384 for the *_SHA384 suites).
        let mut provider = rustls::crypto::aws_lc_rs::default_provider();
        provider.cipher_suites.retain(|s| {
            matches!(
                s.suite(),
                rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                    | rustls::CipherSuite::TLS13_AES_128_GCM_SHA256
            )
        });
        let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&[v])
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                tls::load_certs(&f.0.join("server.pem")).unwrap(),
                tls::load_key(&f.0.join("server.key")).unwrap(),
            )
            .unwrap();
        cfg.send_tls13_tickets = 0;
        cfg.key_log = keys;
        ServerEapTls {
            config: Arc::new(cfg),
            user_name: s.user_name,
        }
    }

    fn client(f: &Files, ca: &str) -> ClientEapTls {
        ClientEapTls::new(
            "vpn.test",
            &tls::Trust::CaFile(f.0.join(ca)),
            &f.0.join("client.pem"),
            &f.0.join("client.key"),
        )
        .unwrap()
    }

    #[test]
    fn msk_tls12_is_the_rfc5216_prf_and_both_sides_agree() {
        let f = pki("12");
        let keys = Arc::new(Keys::default());
        let srv = server(&f, &rustls::version::TLS12, keys.clone());
        let (mut c, mut s) = (client(&f, "ca.pem").start().unwrap(), srv.start().unwrap());
        let flights = handshake(c.as_mut(), s.as_mut()).unwrap();
        let hello = &flights[0];
        let (msk_c, msk_s) = (c.msk().unwrap(), s.msk().unwrap());
        assert_eq!(msk_c, msk_s);
        assert_eq!(s.peer_name().as_deref(), Some("alice@example.com"));
        // RFC 5216 §2.3: PRF(master secret, "client EAP encryption",
        // client.random || server.random), independently computed.
        let log = keys.0.lock().unwrap();
        let (_, client_random, master) = log
            .iter()
            .find(|(l, ..)| l == "CLIENT_RANDOM")
            .expect("TLS 1.2 master secret");
        // Record header (5), handshake header (4), version (2), random.
        let server_random = &hello[11..43];
        let mut seed = b"client EAP encryption".to_vec();
        seed.extend_from_slice(client_random);
        seed.extend_from_slice(server_random);
        assert_eq!(prf(master, &seed, 64), msk_s.to_vec());
    }

    #[test]
    fn tls13_commitment_message_and_keys() {
        let f = pki("13");
        let srv = server(&f, &rustls::version::TLS13, Arc::default());
        let (mut c, mut s) = (client(&f, "ca.pem").start().unwrap(), srv.start().unwrap());
        let flights = handshake(c.as_mut(), s.as_mut()).unwrap();
        // RFC 9190 §2.5: after the client's Finished the server sends one
        // more flight, the commitment message (application data, record
        // type 23), and nothing after it.
        assert_eq!(flights.len(), 2);
        assert_eq!(flights[1][0], 23);
        let msk = s.msk().unwrap();
        assert_eq!(c.msk().unwrap(), msk);
        assert_ne!(msk, [0; 64]);
    }

    #[test]
    fn a_client_certificate_the_ca_did_not_issue_is_refused_in_plain_words() {
        let f = pki("bad");
        let other = pki("other");
        // The client trusts the server, but its certificate is another CA's.
        for n in ["client.pem", "client.key"] {
            std::fs::copy(other.0.join(n), f.0.join(n)).unwrap();
        }
        let srv = server(&f, &rustls::version::TLS13, Arc::default());
        let (mut c, mut s) = (client(&f, "ca.pem").start().unwrap(), srv.start().unwrap());
        let e = handshake(c.as_mut(), s.as_mut()).unwrap_err();
        assert!(e.starts_with("the client certificate was refused"), "{e}");
        assert!(s.msk().is_none());
    }

    #[test]
    fn a_client_certificate_without_the_name_field_is_refused_in_plain_words() {
        let f = pki("noname");
        let mut srv = server(&f, &rustls::version::TLS13, Arc::default());
        // The client certificate has a CN and an e-mail SAN, no DNS SAN.
        srv.user_name = UserNameFrom::SanDns;
        let (mut c, mut s) = (client(&f, "ca.pem").start().unwrap(), srv.start().unwrap());
        let e = handshake(c.as_mut(), s.as_mut()).unwrap_err();
        assert_eq!(
            e,
            "the client certificate has no DNS subject alternative name to use as the user name"
        );
    }

    /// Runs `c` against a rustls server without client authentication
    /// (PEAP's outer TLS, TLS 1.3) until both are done or one fails.
    fn peap_handshake(
        f: &Files,
        name: &str,
    ) -> (
        Box<dyn TlsSession>,
        rustls::ServerConnection,
        Result<(), String>,
    ) {
        let cfg = rustls::ServerConfig::builder_with_provider(tls::provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                tls::load_certs(&f.0.join("server.pem")).unwrap(),
                tls::load_key(&f.0.join("server.key")).unwrap(),
            )
            .unwrap();
        let mut srv = rustls::ServerConnection::new(Arc::new(cfg)).unwrap();
        let peap = ClientEapTls::peap(name, &tls::Trust::CaFile(f.0.join("ca.pem"))).unwrap();
        assert_eq!(peap.method(), ppp::auth::eap::EapType::Peap);
        let mut c = peap.start().unwrap();
        for _ in 0..10 {
            let out = c.take_output();
            if !out.is_empty() {
                srv.read_tls(&mut &out[..]).unwrap();
                srv.process_new_packets().unwrap();
            }
            let mut back = Vec::new();
            while srv.wants_write() {
                srv.write_tls(&mut back).unwrap();
            }
            if back.is_empty() && c.is_done() && !srv.is_handshaking() {
                return (c, srv, Ok(()));
            }
            if let Err(e) = c.input(&back) {
                return (c, srv, Err(e));
            }
        }
        (c, srv, Err("no end".into()))
    }

    #[test]
    fn peap_carries_the_tunneled_eap_and_keys_with_type_code_25() {
        let f = pki("peap");
        let (mut c, mut srv, r) = peap_handshake(&f, "vpn.test");
        r.unwrap();
        // A header-less Identity request in, the answer out.
        srv.writer().write_all(&[1]).unwrap();
        let mut back = Vec::new();
        while srv.wants_write() {
            srv.write_tls(&mut back).unwrap();
        }
        c.input(&back).unwrap();
        assert_eq!(c.take_app(), [1]);
        assert!(c.take_app().is_empty());
        c.write_app(b"\x01alice").unwrap();
        let out = c.take_output();
        srv.read_tls(&mut &out[..]).unwrap();
        srv.process_new_packets().unwrap();
        let mut got = [0u8; 16];
        let n = srv.reader().read(&mut got).unwrap();
        assert_eq!(&got[..n], b"\x01alice");
        // RFC 9427 §2.1: the exporter with PEAP's Type-Code.
        let km = srv
            .export_keying_material([0u8; 128], b"EXPORTER_EAP_TLS_Key_Material", Some(&[25]))
            .unwrap();
        assert_eq!(c.msk().unwrap()[..], km[..64]);
    }

    #[test]
    fn peap_checks_the_server_name() {
        let f = pki("peapname");
        let (c, _, r) = peap_handshake(&f, "other.test");
        let e = r.unwrap_err();
        assert!(e.contains("certificate"), "{e}");
        assert!(c.msk().is_none());
    }

    #[test]
    fn user_names_from_the_certificate() {
        let f = pki("names");
        let der = tls::load_certs(&f.0.join("client.pem")).unwrap();
        assert_eq!(
            UserNameFrom::SubjectCn.extract(&der[0]).as_deref(),
            Some("alice")
        );
        assert_eq!(
            UserNameFrom::SanEmail.extract(&der[0]).as_deref(),
            Some("alice@example.com")
        );
        assert_eq!(UserNameFrom::SanDns.extract(&der[0]), None);
        assert_eq!(UserNameFrom::parse("san-dns"), Some(UserNameFrom::SanDns));
        assert_eq!(UserNameFrom::parse("cn"), None);
    }
}
