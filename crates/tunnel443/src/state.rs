//! Zero-config state: on first start the server generates a self-signed
//! certificate and one user with a random password in the state directory
//! (`/var/lib/tunnel443` by default), and reuses them on every later start.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::Context;

/// The user created by the zero-config default.
pub const DEFAULT_USER: &str = "vpn";

/// Refuses a secret file (the users file, a TLS key, a RADIUS secret) that
/// group or others may read or write: the error names `field`, the mode
/// and the `chmod` that fixes it.
pub fn ensure_private(field: &str, path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).with_context(|| format!("{field}: {}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        anyhow::bail!(
            "{field}: {} is accessible to group or others (mode {mode:o}); restrict it with `chmod 600 {}`",
            path.display(),
            path.display()
        );
    }
    Ok(())
}

/// Writes `data` to a new file with mode `mode`, failing if it exists.
pub fn write_new(path: &Path, data: &[u8], mode: u32) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(data)
        .with_context(|| format!("writing {}", path.display()))
}

/// Replaces `path` atomically (a temp file beside it, synced, renamed over
/// it) with `data` and mode `mode`, creating the directory if needed.
pub fn write_replace(path: &Path, data: &[u8], mode: u32) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    write_new(&tmp, data, mode)?;
    // A file handed to the server's user (`user`) stays that user's.
    if let Ok(m) = std::fs::metadata(path) {
        use std::os::unix::fs::MetadataExt;
        std::os::unix::fs::chown(&tmp, Some(m.uid()), Some(m.gid()))
            .with_context(|| format!("keeping the owner of {}", path.display()))?;
    }
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("syncing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
}

/// The kernel's host name (UTS namespace), if set.
pub fn hostname() -> Option<String> {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let h = h.trim();
    (!h.is_empty()).then(|| h.to_string())
}

/// Generates a self-signed certificate (serverAuth EKU, the names and
/// addresses given plus the host name and `localhost` as subjectAltNames)
/// unless `cert` exists. Returns true if it generated one.
pub fn ensure_certificate(cert: &Path, key: &Path, extra_names: &[String]) -> anyhow::Result<bool> {
    if cert.exists() && key.exists() {
        return Ok(false);
    }
    if let Some(dir) = cert.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut names: Vec<String> = vec!["localhost".into()];
    names.extend(hostname());
    names.extend(extra_names.iter().cloned());
    names.sort();
    names.dedup();
    let mut params = rcgen::CertificateParams::new(names).context("certificate names")?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        hostname().unwrap_or_else(|| "tunnel443".into()),
    );
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
    ];
    let now = std::time::SystemTime::now();
    params.not_before = (now - std::time::Duration::from_secs(86400)).into();
    params.not_after = (now + std::time::Duration::from_secs(10 * 365 * 86400)).into();
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let c = params.self_signed(&kp)?;
    write_new(key, kp.serialize_pem().as_bytes(), 0o600)?;
    write_new(cert, c.pem().as_bytes(), 0o644)?;
    Ok(true)
}

/// A random password of 20 characters from an unambiguous alphabet (no
/// quotes or backslashes: sstpc copies passwords into pppd options files).
pub fn random_password() -> String {
    use rand::RngExt;
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_is_generated_once_and_usable() {
        crate::tls::install_provider();
        let dir = tempdir();
        let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
        assert!(ensure_certificate(&c, &k, &["10.0.0.1".into()]).unwrap());
        let first = std::fs::read(&c).unwrap();
        assert!(!ensure_certificate(&c, &k, &[]).unwrap());
        assert_eq!(std::fs::read(&c).unwrap(), first);
        let (_, hashes) = crate::tls::server_config(&c, &k, crate::tls::ClientCerts::None).unwrap();
        let der = crate::tls::load_certs(&c).unwrap().remove(0);
        assert_eq!(hashes, crate::tls::CertHashes::of(&der));
        crate::tls::check_server_eku(&der).unwrap();
        let (_, x) = x509_parser::parse_x509_certificate(&der).unwrap();
        let san = x.subject_alternative_name().unwrap().unwrap();
        let names: Vec<String> = san
            .value
            .general_names
            .iter()
            .map(|n| match n {
                x509_parser::extensions::GeneralName::DNSName(d) => d.to_string(),
                x509_parser::extensions::GeneralName::IPAddress(b) => {
                    let a: [u8; 4] = (*b).try_into().unwrap();
                    std::net::Ipv4Addr::from(a).to_string()
                }
                other => panic!("unexpected name {other}"),
            })
            .collect();
        assert!(names.contains(&"10.0.0.1".to_string()), "{names:?}");
        assert!(names.contains(&"localhost".to_string()), "{names:?}");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&k).unwrap().permissions().mode() & 0o777,
            0o600
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn passwords_are_random_and_safe_for_pppd() {
        let a = random_password();
        assert_eq!(a.len(), 20);
        assert_ne!(a, random_password());
        assert!(!a.contains('"') && !a.contains('\\'));
    }

    fn tempdir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("t443-state-{}", random_password()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
