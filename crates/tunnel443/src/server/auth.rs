//! The server's credential store: the users file (format in `ppp::users`),
//! reloaded on SIGHUP. Verdicts are computed here from the stored secret;
//! the PPP engine never sees the secret itself.

use std::path::Path;
use std::sync::{Arc, RwLock};

use anyhow::Context;

pub struct Users {
    current: RwLock<Arc<ppp::Users>>,
}

/// Reads and parses a users file.
pub fn read_users_file(path: &Path) -> anyhow::Result<ppp::Users> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "reading users file {} (create it with `tunnel443 user add NAME --password-stdin --users-file {}`)",
            path.display(),
            path.display()
        )
    })?;
    ppp::Users::parse(&text).with_context(|| format!("in {}", path.display()))
}

/// Writes a users file atomically (temp file + rename), mode 0600.
pub fn write_users_file(path: &Path, users: &ppp::Users) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(users.to_file_string().as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
}

/// A new users file with one user stored with a plain password (the
/// zero-config default: plain works with every method, CHAP-MD5 included).
pub fn create_users_file(path: &Path, user: &str, password: &str) -> anyhow::Result<()> {
    let mut u = ppp::Users::new();
    u.insert(user, ppp::Secret::Password(ppp::Password::new(password)))?;
    write_users_file(path, &u)
}

impl Users {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        Ok(Self {
            current: RwLock::new(Arc::new(read_users_file(path)?)),
        })
    }

    /// Replaces the users with the file's current content; on error the old
    /// ones stay. Returns the number of users.
    pub fn reload(&self, path: &Path) -> anyhow::Result<usize> {
        let u = read_users_file(path)?;
        let n = u.len();
        *self.current.write().expect("users lock") = Arc::new(u);
        Ok(n)
    }

    pub fn verify(&self, username: &str, proof: &ppp::Proof) -> ppp::Verdict {
        let u = self.current.read().expect("users lock").clone();
        u.verify(username, proof)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_reload_and_keep_old_on_error() {
        let dir =
            std::env::temp_dir().join(format!("t443-users-{}", crate::state::random_password()));
        let f = dir.join("users");
        create_users_file(&f, "vpn", "secret1").unwrap();
        let users = Users::load(&f).unwrap();
        assert_eq!(users.current.read().unwrap().len(), 1);
        std::fs::write(
            &f,
            "vpn:plain:a\nbob:nthash:8846f7eaee8fb117ad06bdd830b7586c\n",
        )
        .unwrap();
        assert_eq!(users.reload(&f).unwrap(), 2);
        std::fs::write(&f, "broken line\n").unwrap();
        let e = format!("{:#}", users.reload(&f).unwrap_err());
        assert!(e.contains("line 1"), "{e}");
        assert_eq!(users.current.read().unwrap().len(), 2);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
