//! Automatic certificates: ACME (RFC 8555) with the tls-alpn-01
//! challenge (RFC 8737) answered on the VPN listener itself, so no port 80
//! is needed.
//!
//! * `instant-acme` runs the account, order and finalize protocol; the
//!   account credentials and the certificate live in `STATE_DIR/acme/`
//!   (`account.json`, `key.pem` mode 0600, `cert.pem`).
//! * Until the first certificate arrives the server serves a self-signed
//!   placeholder for the names; the listener answers a ClientHello that
//!   offers ALPN `acme-tls/1` with the challenge certificate for its SNI
//!   (self-signed, with the critical acmeIdentifier extension holding the
//!   SHA-256 of the key authorization, RFC 8737 §3), made by `rcgen`.
//! * Renewal at two thirds of the certificate's lifetime; on failure the
//!   old certificate stays in service and the next attempt follows a
//!   back-off (1 min doubling to 1 h). Every step is logged.
//! * A new certificate is swapped in like a SIGHUP reload: new sessions
//!   get it and bind (SSTP crypto binding) to its hash; live sessions keep
//!   the hash of the certificate they saw.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context};
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tracing::{info, warn};

use super::Shared;
use crate::config::AcmeSettings;

/// The ALPN protocol of tls-alpn-01 (RFC 8737 §6.2).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// First retry after a failed attempt; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// Where ACME keeps its files.
pub fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("acme")
}

/// The challenge certificates being served, by domain.
#[derive(Debug, Default)]
pub struct Challenges {
    certs: RwLock<HashMap<String, Arc<CertifiedKey>>>,
}

impl ResolvesServerCert for Challenges {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let sni = hello
            .server_name()?
            .trim_end_matches('.')
            .to_ascii_lowercase();
        self.certs
            .read()
            .expect("challenges lock")
            .get(&sni)
            .cloned()
    }
}

impl Challenges {
    /// The TLS config for a ClientHello offering `acme-tls/1` (RFC 8737
    /// §3: such a handshake only proves control; no data follows).
    pub fn config_for(
        self: &Arc<Self>,
        hello: &ClientHello<'_>,
    ) -> Option<Arc<rustls::ServerConfig>> {
        let mut alpn = hello.alpn()?;
        if !alpn.any(|p| p == ACME_TLS_ALPN) {
            return None;
        }
        let mut c = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        c.alpn_protocols = vec![ACME_TLS_ALPN.to_vec()];
        Some(Arc::new(c))
    }

    fn set(&self, domain: &str, key: Arc<CertifiedKey>) {
        self.certs
            .write()
            .expect("challenges lock")
            .insert(domain.to_ascii_lowercase(), key);
    }

    fn clear(&self) {
        self.certs.write().expect("challenges lock").clear();
    }
}

/// The tls-alpn-01 certificate for `domain` (RFC 8737 §3).
fn challenge_cert(domain: &str, digest: &[u8]) -> anyhow::Result<Arc<CertifiedKey>> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = rcgen::CertificateParams::new(vec![domain.to_string()])?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let cert = params.self_signed(&key)?;
    let der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let signing = rustls::crypto::aws_lc_rs::default_provider()
        .key_provider
        .load_private_key(der)?;
    Ok(Arc::new(CertifiedKey::new(
        vec![cert.der().clone()],
        signing,
    )))
}

/// Before TLS is loaded: a self-signed placeholder for the names, unless a
/// certificate is already there.
pub fn ensure_placeholder(cert: &Path, key: &Path, a: &AcmeSettings) -> anyhow::Result<()> {
    crate::state::ensure_certificate(cert, key, &a.domains)?;
    Ok(())
}

/// When the certificate in `cert` should be renewed: at two thirds of its
/// lifetime; now for a self-signed one (the placeholder) or one that
/// cannot be read.
pub fn renewal_due(cert: &Path) -> SystemTime {
    let now = SystemTime::now();
    let Ok(der) = crate::tls::load_certs(cert).map(|mut c| c.remove(0)) else {
        return now;
    };
    let Ok((_, x)) = x509_parser::parse_x509_certificate(&der) else {
        return now;
    };
    if x.issuer() == x.subject() {
        return now;
    }
    let secs = |t: x509_parser::time::ASN1Time| t.timestamp().max(0) as u64;
    let (from, to) = (secs(x.validity().not_before), secs(x.validity().not_after));
    SystemTime::UNIX_EPOCH + Duration::from_secs(from + to.saturating_sub(from) * 2 / 3)
}

/// Writes `bytes` to `path`, mode 0600 (a key, account credentials).
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))
}

/// The next wait after a failure (`prev`: the last one).
pub fn backoff(prev: Option<Duration>) -> Duration {
    prev.map_or(FIRST_BACKOFF, |d| (d * 2).min(MAX_BACKOFF))
}

async fn account(a: &AcmeSettings, dir: &Path) -> anyhow::Result<Account> {
    let builder = || match &a.ca {
        Some(ca) => Account::builder_with_root(ca).context("tls.acme: --acme-ca"),
        None => Account::builder().map_err(anyhow::Error::from),
    };
    let file = dir.join("account.json");
    if let Ok(text) = std::fs::read_to_string(&file) {
        let creds: AccountCredentials =
            serde_json::from_str(&text).with_context(|| format!("reading {}", file.display()))?;
        return Ok(builder()?.from_credentials(creds).await?);
    }
    let contact: Vec<&str> = a.contact.iter().map(String::as_str).collect();
    let (acct, creds) = builder()?
        .create(
            &NewAccount {
                contact: &contact,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            a.directory.clone(),
            None,
        )
        .await
        .with_context(|| format!("creating an ACME account at {}", a.directory))?;
    write_private(&file, serde_json::to_string(&creds)?.as_bytes())?;
    info!(directory = %a.directory, "ACME account created");
    Ok(acct)
}

/// One order: challenges answered, certificate chain and key (PEM).
async fn obtain(
    a: &AcmeSettings,
    acct: &Account,
    challenges: &Challenges,
) -> anyhow::Result<(String, String)> {
    let ids: Vec<Identifier> = a.domains.iter().cloned().map(Identifier::Dns).collect();
    let mut order = acct.new_order(&NewOrder::new(&ids)).await?;
    {
        let mut authzs = order.authorizations();
        while let Some(authz) = authzs.next().await {
            let mut authz = authz?;
            match authz.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => bail!("authorization is {other:?}"),
            }
            let mut ch = authz
                .challenge(ChallengeType::TlsAlpn01)
                .context("the CA offers no tls-alpn-01 challenge")?;
            let domain = ch.identifier().to_string();
            let digest = ch.key_authorization().digest();
            challenges.set(&domain, challenge_cert(&domain, digest.as_ref())?);
            info!(domain = %domain, "ACME tls-alpn-01 challenge ready");
            ch.set_ready().await?;
        }
    }
    let retry = RetryPolicy::default().timeout(Duration::from_secs(120));
    let status = order.poll_ready(&retry).await?;
    if status != OrderStatus::Ready {
        bail!("the order is {status:?}, not ready (validation failed?)");
    }
    let key = order.finalize().await?;
    let chain = order.poll_certificate(&retry).await?;
    Ok((chain, key))
}

/// Obtains and renews the certificate for as long as the server runs.
pub async fn run(a: AcmeSettings, cert: PathBuf, key: PathBuf, shared: Arc<Shared>) {
    let dir = dir(&shared.settings.state_dir);
    let mut failed: Option<Duration> = None;
    let mut acct = None;
    loop {
        let due = renewal_due(&cert);
        if let Ok(wait) = due.duration_since(SystemTime::now()) {
            info!(in_s = wait.as_secs(), "ACME: next renewal");
            tokio::time::sleep(wait).await;
        }
        info!(domains = %a.domains.join(","), directory = %a.directory, "ACME: ordering a certificate");
        let result = async {
            if acct.is_none() {
                acct = Some(account(&a, &dir).await?);
            }
            let acct = acct.as_ref().expect("set above");
            let r = obtain(&a, acct, &shared.acme).await;
            shared.acme.clear();
            let (chain, pem_key) = r?;
            write_private(&key, pem_key.as_bytes())?;
            std::fs::write(&cert, chain.as_bytes())
                .with_context(|| format!("writing {}", cert.display()))?;
            super::reload_tls(&shared)
        }
        .await;
        match result {
            Ok(hashes) => {
                failed = None;
                info!(
                    sha256 = %hex::encode(hashes.sha256),
                    cert = %cert.display(),
                    "ACME: certificate obtained and in service (new sessions use it)"
                );
            }
            Err(e) => {
                let wait = backoff(failed);
                failed = Some(wait);
                warn!(
                    error = %format!("{e:#}"),
                    retry_in_s = wait.as_secs(),
                    "ACME: no certificate this time; keeping the current one"
                );
                tokio::time::sleep(wait).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_an_hour() {
        assert_eq!(backoff(None), Duration::from_secs(60));
        assert_eq!(
            backoff(Some(Duration::from_secs(60))),
            Duration::from_secs(120)
        );
        assert_eq!(backoff(Some(Duration::from_secs(3000))), MAX_BACKOFF);
    }

    #[test]
    fn self_signed_is_renewed_now_a_ca_issued_one_at_two_thirds() {
        let d = std::env::temp_dir().join(format!("t443-acme-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let (c, k) = (d.join("cert.pem"), d.join("key.pem"));
        crate::state::ensure_certificate(&c, &k, &["vpn.test".into()]).unwrap();
        assert!(renewal_due(&c) <= SystemTime::now());
        assert!(renewal_due(&d.join("missing.pem")) <= SystemTime::now());
        // A CA-issued certificate valid for 90 days from now - 1 day.
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "test CA");
        let issuer = rcgen::Issuer::new(ca, &ca_key);
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let mut leaf = rcgen::CertificateParams::new(vec!["vpn.test".to_string()]).unwrap();
        let now = SystemTime::now();
        leaf.not_before = (now - Duration::from_secs(86400)).into();
        leaf.not_after = (now + Duration::from_secs(89 * 86400)).into();
        let leaf = leaf.signed_by(&leaf_key, &issuer).unwrap();
        std::fs::write(&c, leaf.pem()).unwrap();
        let due = renewal_due(&c).duration_since(now).unwrap().as_secs();
        let expect = 59 * 86400;
        assert!(due.abs_diff(expect) < 5, "{due} vs {expect}");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn challenge_certificate_carries_the_critical_acme_identifier() {
        let ck = challenge_cert("vpn.test", &[7u8; 32]).unwrap();
        let (_, x) = x509_parser::parse_x509_certificate(&ck.cert[0]).unwrap();
        // id-pe-acmeIdentifier, RFC 8737 §6.1.
        let ext = x
            .extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.1.31")
            .expect("acmeIdentifier");
        assert!(ext.critical);
        assert_eq!(&ext.value[2..], &[7u8; 32], "an OCTET STRING of the digest");
    }
}
