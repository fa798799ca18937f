//! The server's credential store: the users file (format in `ppp::users`),
//! re-read when it changes (the server polls it every [`POLL`]) and on
//! SIGHUP. Verdicts are computed here from the stored secret; the PPP
//! engine never sees the secret itself.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context;

/// How often a running server looks at the users file for changes.
pub const POLL: Duration = Duration::from_secs(2);

pub struct Users {
    current: RwLock<Arc<ppp::Users>>,
    /// The version of the file last read (None: it was missing).
    seen: Mutex<Option<Stamp>>,
}

/// What tells one version of a file from another without reading it:
/// device and inode (a rename put a new file there), size and mtime (it
/// was written in place), mode (a `chmod`: a file others may read is
/// refused, and taken again once it is private).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: i64,
    mtime_nsec: i64,
    mode: u32,
}

impl Stamp {
    fn of(path: &Path) -> Option<Self> {
        let m = std::fs::metadata(path).ok()?;
        Some(Stamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
            mode: m.mode(),
        })
    }
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
    crate::state::write_replace(path, users.to_file_string().as_bytes(), 0o600)
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
        let seen = Stamp::of(path);
        Ok(Self {
            current: RwLock::new(Arc::new(read_users_file(path)?)),
            seen: Mutex::new(seen),
        })
    }

    /// No users (RADIUS alone decides and there is no users file).
    pub fn empty() -> Self {
        Self {
            current: RwLock::new(Arc::new(ppp::Users::new())),
            seen: Mutex::new(None),
        }
    }

    /// Replaces the users with the file's current content; on error (also
    /// when group or others may now access the file, as at start) the old
    /// ones stay. Returns the number of users.
    pub fn reload(&self, path: &Path) -> anyhow::Result<usize> {
        // The stamp is taken before reading: a write during the read shows
        // as a change at the next poll, never as a missed one.
        *self.seen.lock().expect("stamp lock") = Stamp::of(path);
        crate::state::ensure_private("users_file", path)?;
        let u = read_users_file(path)?;
        let n = u.len();
        *self.current.write().expect("users lock") = Arc::new(u);
        Ok(n)
    }

    /// Reloads if the file changed since it was last read (None: it did
    /// not). A file that fails to load is reported once per change.
    pub fn reload_if_changed(&self, path: &Path) -> Option<anyhow::Result<usize>> {
        if *self.seen.lock().expect("stamp lock") == Stamp::of(path) {
            return None;
        }
        Some(self.reload(path))
    }

    /// The user names now in effect, sorted.
    pub fn names(&self) -> Vec<String> {
        let u = self.current.read().expect("users lock").clone();
        u.names().map(str::to_string).collect()
    }

    /// Whether the users file has this user.
    pub fn contains(&self, username: &str) -> bool {
        self.current
            .read()
            .expect("users lock")
            .get(username)
            .is_some()
    }

    pub fn verify(&self, username: &str, proof: &ppp::Proof) -> ppp::Verdict {
        let u = self.current.read().expect("users lock").clone();
        u.verify(username, proof)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_users() -> (std::path::PathBuf, std::path::PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("t443-users-{}", crate::state::random_password()));
        let f = dir.join("users");
        (dir, f)
    }

    #[test]
    fn create_reload_and_keep_old_on_error() {
        let (dir, f) = temp_users();
        create_users_file(&f, "vpn", "secret1").unwrap();
        let users = Users::load(&f).unwrap();
        assert_eq!(users.names(), ["vpn"]);
        assert!(users.contains("vpn") && !users.contains("bob"));
        std::fs::write(
            &f,
            "vpn:plain:a\nbob:nthash:8846f7eaee8fb117ad06bdd830b7586c\n",
        )
        .unwrap();
        assert_eq!(users.reload(&f).unwrap(), 2);
        std::fs::write(&f, "broken line\n").unwrap();
        let e = format!("{:#}", users.reload(&f).unwrap_err());
        assert!(e.contains("line 1"), "{e}");
        assert_eq!(users.names(), ["bob", "vpn"]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn changes_are_noticed_once() {
        let (dir, f) = temp_users();
        create_users_file(&f, "vpn", "secret1").unwrap();
        let users = Users::load(&f).unwrap();
        assert!(users.reload_if_changed(&f).is_none(), "unchanged");
        // What `tunnel443 user add` does: a new file renamed over the old.
        let mut u = read_users_file(&f).unwrap();
        u.insert("bob", ppp::Secret::NtHash(ppp::nt_hash("pw")))
            .unwrap();
        write_users_file(&f, &u).unwrap();
        assert_eq!(users.reload_if_changed(&f).unwrap().unwrap(), 2);
        assert_eq!(users.names(), ["bob", "vpn"]);
        assert!(users.reload_if_changed(&f).is_none(), "reported once");
        // An edit in place that keeps the inode and the size.
        let text = std::fs::read_to_string(&f).unwrap().replace("bob", "eve");
        let mtime = std::fs::metadata(&f).unwrap().modified().unwrap();
        std::fs::write(&f, text).unwrap();
        let file = std::fs::File::options().write(true).open(&f).unwrap();
        file.set_modified(mtime + Duration::from_secs(1)).unwrap();
        assert_eq!(users.reload_if_changed(&f).unwrap().unwrap(), 2);
        assert_eq!(users.names(), ["eve", "vpn"]);
        // Made readable by others (as at start: refused), then private
        // again: both noticed, the old users kept in between.
        use std::os::unix::fs::PermissionsExt;
        let u = read_users_file(&f).unwrap();
        let mut u2 = u.clone();
        u2.insert("mallory", ppp::Secret::NtHash(ppp::nt_hash("x")))
            .unwrap();
        write_users_file(&f, &u2).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = format!("{:#}", users.reload_if_changed(&f).unwrap().unwrap_err());
        assert!(e.contains("users_file") && e.contains("chmod 600"), "{e}");
        assert!(users.reload_if_changed(&f).is_none(), "reported once");
        assert_eq!(users.names(), ["eve", "vpn"]);
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(users.reload_if_changed(&f).unwrap().unwrap(), 3);
        write_users_file(&f, &u).unwrap();
        assert_eq!(users.reload_if_changed(&f).unwrap().unwrap(), 2);
        // A broken or removed file: one error, the old users stay.
        std::fs::remove_file(&f).unwrap();
        assert!(users.reload_if_changed(&f).unwrap().is_err());
        assert!(users.reload_if_changed(&f).is_none(), "reported once");
        assert_eq!(users.names(), ["eve", "vpn"]);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
