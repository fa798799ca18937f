//! Automatic certificates: ACME (RFC 8555) with the tls-alpn-01 challenge
//! (RFC 8737) answered on the VPN listener itself, so no port 80 is needed.
//!
//! * The certificate and key live in `STATE_DIR/acme/` (key 0600), the
//!   account key in `STATE_DIR/acme/account-<hash of the directory URL>.json`
//!   (0600). Until the first certificate arrives the listener serves a
//!   self-signed placeholder for the names.
//! * A certificate is renewed at two thirds of its lifetime (day 60 of
//!   Let's Encrypt's 90); a failure is retried with back-off (10 s doubling
//!   to an hour) while the current certificate keeps being served.
//! * A ClientHello whose ALPN offers `acme-tls/1` for a name with a pending
//!   challenge gets the challenge certificate: self-signed for that name,
//!   carrying the critical acmeIdentifier extension with the SHA-256 of the
//!   key authorization (RFC 8737 §3).
//! * A new certificate takes effect the way a SIGHUP reload does: new
//!   sessions bind to its hash (MS-SSTP §3.2.5.2 crypto binding, §3.3.5.2
//!   Compound MAC over the certificate hash), live sessions keep the hash
//!   of the certificate their own handshake used.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context};
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use sha2::Digest;
use tracing::{info, warn};

use super::Shared;
use crate::config::AcmeSettings;

/// The ALPN protocol of tls-alpn-01 (RFC 8737 §6.2).
pub const ALPN: &[u8] = b"acme-tls/1";
const MIN_BACKOFF: Duration = Duration::from_secs(10);
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// The longest sleep before the renewal time is looked at again (clock
/// changes, a certificate replaced by hand).
const MAX_SLEEP: Duration = Duration::from_secs(3600);

/// The challenge certificates being asked for, by name.
#[derive(Default)]
pub struct Challenges(RwLock<HashMap<String, Arc<rustls::ServerConfig>>>);

impl Challenges {
    /// The config answering a tls-alpn-01 validation, if this ClientHello
    /// is one (ALPN `acme-tls/1`) for a name with a pending challenge.
    pub fn for_hello(
        &self,
        hello: &rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::ServerConfig>> {
        let mut alpn = hello.alpn()?;
        if !alpn.any(|p| p == ALPN) {
            return None;
        }
        let sni = hello
            .server_name()?
            .trim_end_matches('.')
            .to_ascii_lowercase();
        self.0.read().expect("challenges lock").get(&sni).cloned()
    }

    fn insert(&self, name: &str, config: Arc<rustls::ServerConfig>) {
        self.0
            .write()
            .expect("challenges lock")
            .insert(name.to_string(), config);
    }

    fn remove(&self, names: &[String]) {
        let mut m = self.0.write().expect("challenges lock");
        for n in names {
            m.remove(n);
        }
    }
}

/// The certificate and key paths ACME maintains (where `tls` points).
fn paths(state_dir: &Path) -> (PathBuf, PathBuf) {
    let d = state_dir.join("acme");
    (d.join("cert.pem"), d.join("key.pem"))
}

/// Before the listener starts: a self-signed placeholder for the names
/// when no certificate was obtained yet, so that the listener can answer
/// the CA's validation.
pub fn ensure_placeholder(state_dir: &Path, acme: &AcmeSettings) -> anyhow::Result<()> {
    let (cert, key) = paths(state_dir);
    if crate::state::ensure_certificate(&cert, &key, &acme.domains)? {
        info!(
            domains = %acme.domains.join(","),
            "ACME: serving a self-signed placeholder until the CA issues the certificate"
        );
    }
    Ok(())
}

/// When the certificate on disk needs replacing.
#[derive(Debug, PartialEq, Eq)]
pub enum Due {
    Now(String),
    At(SystemTime),
}

/// Whether `cert_pem` (the leaf first) must be replaced now, and if not,
/// when: at two thirds of its lifetime.
pub fn due(cert_pem: Option<&[u8]>, domains: &[String]) -> Due {
    let Some(pem) = cert_pem else {
        return Due::Now("no certificate yet".into());
    };
    let Some(der) = rustls_pemfile::certs(&mut &pem[..])
        .next()
        .and_then(Result::ok)
    else {
        return Due::Now("the certificate file holds no certificate".into());
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der) else {
        return Due::Now("the certificate cannot be parsed".into());
    };
    if cert.issuer().as_raw() == cert.subject().as_raw() {
        return Due::Now("the certificate is the self-signed placeholder".into());
    }
    let names: Vec<String> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    x509_parser::extensions::GeneralName::DNSName(d) => {
                        Some(d.to_ascii_lowercase())
                    }
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    if let Some(missing) = domains.iter().find(|d| !names.contains(d)) {
        return Due::Now(format!("the certificate does not cover {missing}"));
    }
    let v = cert.validity();
    let (from, to) = (v.not_before.timestamp(), v.not_after.timestamp());
    let renew = from + (to - from) * 2 / 3;
    Due::At(SystemTime::UNIX_EPOCH + Duration::from_secs(renew.max(0) as u64))
}

/// Keeps the certificate current for the life of the server.
pub async fn run(shared: Arc<Shared>, challenges: Arc<Challenges>) {
    let acme = shared.settings.acme.clone().expect("ACME configured");
    let (cert, key) = paths(&shared.settings.state_dir);
    let mut backoff = MIN_BACKOFF;
    loop {
        let reason = match due(std::fs::read(&cert).ok().as_deref(), &acme.domains) {
            Due::At(at) => {
                let wait = at.duration_since(SystemTime::now()).unwrap_or_default();
                if !wait.is_zero() {
                    info!(renew_in_s = wait.as_secs(), "ACME: certificate current");
                    tokio::time::sleep(wait.min(MAX_SLEEP)).await;
                    continue;
                }
                "renewal time reached (two thirds of the lifetime)".to_string()
            }
            Due::Now(reason) => reason,
        };
        info!(domains = %acme.domains.join(","), directory = %acme.directory, %reason, "ACME: ordering a certificate");
        match obtain(&acme, &shared.settings.state_dir, &challenges).await {
            Ok((chain, key_pem)) => {
                let stored = crate::state::write_replace(&key, key_pem.as_bytes(), 0o600)
                    .and_then(|()| crate::state::write_replace(&cert, chain.as_bytes(), 0o644));
                match stored {
                    Ok(()) => {
                        backoff = MIN_BACKOFF;
                        let sha = crate::tls::load_certs(&cert)
                            .map(|c| hex::encode(crate::tls::CertHashes::of(&c[0]).sha256))
                            .unwrap_or_default();
                        info!(cert = %cert.display(), sha256 = %sha, "ACME: certificate obtained and stored");
                        super::reload_certificates(&shared, "ACME");
                    }
                    Err(e) => {
                        warn!(error = %format!("{e:#}"), "ACME: storing the certificate failed")
                    }
                }
            }
            Err(e) => {
                warn!(
                    error = %format!("{e:#}"),
                    retry_in_s = backoff.as_secs(),
                    "ACME: no certificate this time; still serving the current one"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// One order, start to end: the chain (PEM, leaf first) and its key (PEM).
async fn obtain(
    acme: &AcmeSettings,
    state_dir: &Path,
    challenges: &Challenges,
) -> anyhow::Result<(String, String)> {
    let account = account(acme, state_dir).await?;
    let ids: Vec<Identifier> = acme
        .domains
        .iter()
        .map(|d| Identifier::Dns(d.clone()))
        .collect();
    let mut order = account
        .new_order(&NewOrder::new(&ids))
        .await
        .context("placing the order")?;
    let mut pending = Vec::new();
    let result = async {
        let mut authzs = order.authorizations();
        while let Some(authz) = authzs.next().await {
            let mut authz = authz.context("fetching an authorization")?;
            let name = authz.identifier().to_string();
            match authz.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => bail!("the authorization for {name} is {other:?}"),
            }
            let mut challenge = authz
                .challenge(ChallengeType::TlsAlpn01)
                .with_context(|| format!("the CA offers no tls-alpn-01 challenge for {name}"))?;
            let digest = challenge.key_authorization().digest();
            challenges.insert(&name, challenge_config(&name, digest.as_ref())?);
            pending.push(name.clone());
            info!(domain = %name, "ACME: answering the tls-alpn-01 challenge on this listener");
            challenge
                .set_ready()
                .await
                .context("telling the CA the challenge is ready")?;
        }
        let policy = RetryPolicy::new().timeout(Duration::from_secs(90));
        let status = order
            .poll_ready(&policy)
            .await
            .context("waiting for validation")?;
        if status != OrderStatus::Ready {
            bail!("the order is {status:?} after validation");
        }
        Ok(())
    }
    .await;
    challenges.remove(&pending);
    result?;
    let key = order.finalize().await.context("finalizing the order")?;
    let chain = order
        .poll_certificate(&RetryPolicy::new().timeout(Duration::from_secs(90)))
        .await
        .context("downloading the certificate")?;
    Ok((chain, key))
}

/// The account: restored from its file, else created and stored.
async fn account(acme: &AcmeSettings, state_dir: &Path) -> anyhow::Result<Account> {
    let tag = hex::encode(&sha2::Sha256::digest(acme.directory.as_bytes())[..6]);
    let file = state_dir.join("acme").join(format!("account-{tag}.json"));
    let builder = || match &acme.ca {
        Some(ca) => {
            Account::builder_with_root(ca).with_context(|| format!("tls.acme.ca: {}", ca.display()))
        }
        None => Account::builder().context("HTTPS client for the ACME directory"),
    };
    if let Ok(text) = std::fs::read_to_string(&file) {
        let creds: AccountCredentials =
            serde_json::from_str(&text).with_context(|| format!("reading {}", file.display()))?;
        return builder()?
            .from_credentials(creds)
            .await
            .with_context(|| format!("restoring the ACME account from {}", file.display()));
    }
    let contact: Vec<&str> = acme.contact.iter().map(String::as_str).collect();
    let (account, creds) = builder()?
        .create(
            &NewAccount {
                contact: &contact,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            acme.directory.clone(),
            None,
        )
        .await
        .with_context(|| format!("creating an account at {}", acme.directory))?;
    crate::state::write_replace(&file, serde_json::to_string(&creds)?.as_bytes(), 0o600)?;
    info!(account = %account.id(), "ACME: account created");
    Ok(account)
}

/// The tls-alpn-01 answer for `name` (RFC 8737 §3): a self-signed
/// certificate for it with the acmeIdentifier extension, ALPN `acme-tls/1`.
fn challenge_config(name: &str, digest: &[u8]) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = rcgen::CertificateParams::new(vec![name.to_string()])?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let cert = params.self_signed(&key)?;
    let key = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der())
        .map_err(|e| anyhow::anyhow!("challenge key: {e}"))?;
    let provider = crate::tls::provider();
    let signer = provider.key_provider.load_private_key(key)?;
    // A resolver, not `with_single_cert`: rustls would refuse the
    // certificate's critical acmeIdentifier extension, which only the CA
    // is meant to read.
    let certified = rustls::sign::CertifiedKey::new(vec![cert.der().clone()], signer);
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(crate::tls::VERSIONS)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified)));
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(names: &[&str], self_signed: bool, from: u64, to: u64) -> String {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut p = rcgen::CertificateParams::new(names.clone()).unwrap();
        p.not_before = (SystemTime::UNIX_EPOCH + Duration::from_secs(from)).into();
        p.not_after = (SystemTime::UNIX_EPOCH + Duration::from_secs(to)).into();
        let key = rcgen::KeyPair::generate().unwrap();
        if self_signed {
            return p.self_signed(&key).unwrap().pem();
        }
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "test CA");
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        p.signed_by(&key, &issuer).unwrap().pem()
    }

    #[test]
    fn renewal_is_due_at_two_thirds_of_the_lifetime() {
        let d = vec!["vpn.example.com".to_string()];
        let pem = cert(
            &["vpn.example.com"],
            false,
            1_800_000_000,
            1_800_000_000 + 90 * 86400,
        );
        assert_eq!(
            due(Some(pem.as_bytes()), &d),
            Due::At(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + 60 * 86400))
        );
    }

    #[test]
    fn placeholder_missing_or_narrow_certificates_are_due_now() {
        let d = vec!["vpn.example.com".to_string(), "b.example.com".to_string()];
        let reason = |pem: Option<&str>| match due(pem.map(str::as_bytes), &d) {
            Due::Now(r) => r,
            other => panic!("{other:?}"),
        };
        assert_eq!(reason(None), "no certificate yet");
        assert_eq!(
            reason(Some("junk")),
            "the certificate file holds no certificate"
        );
        let own = cert(
            &["vpn.example.com", "b.example.com"],
            true,
            0,
            4_000_000_000,
        );
        assert_eq!(
            reason(Some(&own)),
            "the certificate is the self-signed placeholder"
        );
        let narrow = cert(&["vpn.example.com"], false, 0, 4_000_000_000);
        assert_eq!(
            reason(Some(&narrow)),
            "the certificate does not cover b.example.com"
        );
    }

    #[test]
    fn challenge_config_builds_despite_the_critical_extension_and_is_removed() {
        let c = Challenges::default();
        c.insert(
            "vpn.example.com",
            challenge_config("vpn.example.com", &[7; 32]).unwrap(),
        );
        assert!(c.0.read().unwrap().contains_key("vpn.example.com"));
        c.remove(&["vpn.example.com".to_string()]);
        assert!(c.0.read().unwrap().is_empty());
    }
}
