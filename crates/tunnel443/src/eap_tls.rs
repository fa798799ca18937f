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

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use ppp::auth::eap_tls::{EapTlsConfig, TlsSession};
use rustls::pki_types::ServerName;

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
            Self::SubjectCn => "a subject Common Name",
            Self::SanEmail => "an e-mail subject alternative name",
            Self::SanDns => "a DNS subject alternative name",
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
        let (cfg, _) = tls::server_config(cert, key, tls::ClientCerts::Required(client_ca))
            .context("eap_tls")?;
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
        }))
    }
}

/// Client side: the server's name (its EAP certificate is checked against
/// it), our certificate, and the trust for the server's.
#[derive(Debug)]
pub struct ClientEapTls {
    config: Arc<rustls::ClientConfig>,
    server_name: ServerName<'static>,
}

impl ClientEapTls {
    /// `trust` checks the server's EAP certificate (`--eap-ca`, else the
    /// TLS trust); `cert`/`key` are ours (PEM files).
    pub fn new(host: &str, trust: &tls::Trust, cert: &Path, key: &Path) -> anyhow::Result<Self> {
        let c = tls::client_config_with_cert(trust, Some((cert, key)))?;
        let server_name = ServerName::try_from(host.to_string())
            .with_context(|| format!("{host}: not a valid server name"))?;
        Ok(ClientEapTls {
            config: c.config,
            server_name,
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
        }))
    }
}

struct Session {
    conn: rustls::Connection,
    /// Server: how to name the user.
    user_name: Option<UserNameFrom>,
    /// Server, TLS 1.3: the commitment message was queued.
    committed: bool,
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
        // Application data (the TLS 1.3 commitment message) is read and dropped.
        let mut sink = [0u8; 256];
        while let Ok(n) = self.conn.reader().read(&mut sink) {
            if n == 0 {
                break;
            }
        }
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
                Some(&[13]),
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
}
