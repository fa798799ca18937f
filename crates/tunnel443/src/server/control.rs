//! The control socket (`[control] socket`, default
//! `/run/tunnel443/control.sock`, mode 0600): what `tunnel443 ctl` talks to.
//!
//! Protocol: one JSON object per line each way; the server answers every
//! request line with one response line and keeps the connection open for
//! the next. Requests ([`Request`]):
//!
//! ```text
//! {"command":"sessions"}
//! {"command":"show","id":3}
//! {"command":"kill","id":3}          also "user":"NAME" or "ip":"ADDR"; optional "reason"
//! {"command":"stats"}
//! {"command":"reload"}
//! ```
//!
//! Responses: `{"ok":true, ...}` with `sessions` (a list of
//! [`SessionInfo`]), `session` (one, plus `acct_session_id`), `killed` (the
//! ids), `stats` ([`Snapshot`]) or `changes` (lines); or `{"ok":false,
//! "error":"..."}` in plain words. A request line longer than
//! [`MAX_LINE`] or that is not valid JSON gets an error response and the
//! connection is closed.

use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tracing::{debug, info, warn};

use super::registry::{EndCause, Entry, SessionInfo};
use super::stats::Snapshot;
use super::Shared;

/// Where the socket is unless configured.
pub const DEFAULT_SOCKET: &str = "/run/tunnel443/control.sock";

/// Longest request line accepted.
pub const MAX_LINE: usize = 4096;

/// The reason a kill gives when the request names none.
pub const DEFAULT_KILL_REASON: &str = "disconnected by the administrator";

/// One request line.
#[derive(Debug, Deserialize, Serialize, PartialEq)]
#[serde(tag = "command", rename_all = "lowercase", deny_unknown_fields)]
pub enum Request {
    Sessions,
    Show {
        id: u64,
    },
    /// Exactly one of `id`, `user`, `ip`.
    Kill {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ip: Option<IpAddr>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    Stats,
    Reload,
}

/// The socket while it is served; removes the file when dropped.
pub struct ControlSocket {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
    /// `PATH.lock`, locked while this server owns the socket.
    _lock: std::fs::File,
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds the socket at `path` (mode 0600, its directory created) and
/// serves it. A socket another live server owns is left alone: this
/// server then runs without one (logged), so that a second server cannot
/// take the first one's control away.
///
/// Ownership is an exclusive lock on `PATH.lock`, held while the socket is
/// served, so that two servers starting at the same moment cannot both
/// find the path free (or both take a stale socket for their own): the one
/// that gets the lock removes any stale socket and binds, the other runs
/// without one. The lock file itself stays; removing it would reopen the
/// race.
pub async fn start(path: &Path, shared: Arc<Shared>) -> anyhow::Result<Option<ControlSocket>> {
    use anyhow::Context;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("control.socket: creating {}", dir.display()))?;
    }
    let Some(lock) = claim(path)? else {
        warn!(
            socket = %path.display(),
            "another server owns the control socket; this one runs without one (set control.socket or --control-socket)"
        );
        return Ok(None);
    };
    let listener = UnixListener::bind(path)
        .with_context(|| format!("control.socket: binding {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("control.socket: chmod 0600 {}", path.display()))?;
    info!(socket = %path.display(), "control socket ready");
    let task = crate::tasks::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((s, _)) => {
                    crate::tasks::spawn(serve(s, shared.clone()));
                }
                Err(e) => {
                    warn!(error = %e, "control socket accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(Some(ControlSocket {
        path: path.to_path_buf(),
        task,
        _lock: lock,
    }))
}

/// Takes the lock on `PATH.lock` and clears a stale socket at `path`; the
/// locked file, or `None` when another live server holds it.
fn claim(path: &Path) -> anyhow::Result<Option<std::fs::File>> {
    use anyhow::Context;
    let lock_path = lock_path(path);
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
        .with_context(|| format!("control.socket: opening {}", lock_path.display()))?;
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor `lock` owns; no memory is passed.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() == std::io::ErrorKind::WouldBlock {
            return Ok(None);
        }
        return Err(e).with_context(|| format!("control.socket: locking {}", lock_path.display()));
    }
    if path.exists() {
        // A stale socket of a server that is gone (it held the lock).
        std::fs::remove_file(path)
            .with_context(|| format!("control.socket: removing the stale {}", path.display()))?;
    }
    Ok(Some(lock))
}

/// `PATH.lock` next to the socket at `PATH`.
fn lock_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

async fn serve(stream: UnixStream, shared: Arc<Shared>) {
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd).take(MAX_LINE as u64 + 1);
    let mut line = String::new();
    loop {
        line.clear();
        rd.set_limit(MAX_LINE as u64 + 1);
        let (response, keep) = match rd.read_line(&mut line).await {
            Ok(0) => return,
            Ok(_) => answer(&line, &shared),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                info!("control request that is not UTF-8 refused");
                (error("a request is one line of JSON (UTF-8)".into()), false)
            }
            Err(e) => {
                debug!(error = %e, "control connection read failed");
                return;
            }
        };
        let mut out = response.to_string();
        out.push('\n');
        if wr.write_all(out.as_bytes()).await.is_err() || !keep {
            return;
        }
    }
}

/// The response to one request line, and whether to read another.
fn answer(line: &str, shared: &Shared) -> (Value, bool) {
    if line.len() > MAX_LINE {
        info!(max = MAX_LINE, "control request too long; refused");
        return (
            error(format!("request longer than {MAX_LINE} bytes")),
            false,
        );
    }
    match serde_json::from_str::<Request>(line.trim()) {
        Ok(req) => (handle(req, shared), true),
        Err(e) => {
            info!(error = %e, "control request that is not valid refused");
            (error(format!("not a valid request: {e}")), false)
        }
    }
}

fn error(msg: String) -> Value {
    json!({"ok": false, "error": msg})
}

fn infos(list: &[Arc<Entry>]) -> Vec<SessionInfo> {
    list.iter().map(|e| e.info()).collect()
}

/// Answers one request.
pub fn handle(req: Request, shared: &Shared) -> Value {
    let reg = &shared.sessions;
    match req {
        Request::Sessions => json!({"ok": true, "sessions": infos(&reg.list())}),
        Request::Show { id } => match reg.get(id) {
            Some(e) => {
                let mut v = serde_json::to_value(e.info()).unwrap_or(Value::Null);
                v["acct_session_id"] = e.acct_session_id().into();
                json!({"ok": true, "session": v})
            }
            None => error(format!("no session {id}")),
        },
        Request::Kill {
            id,
            user,
            ip,
            reason,
        } => {
            let targets = match (id, user, ip) {
                (Some(id), None, None) => reg.get(id).into_iter().collect::<Vec<_>>(),
                (None, Some(u), None) => reg.by_user(&u),
                (None, None, Some(a)) => reg.by_address(a),
                _ => return error("kill: give exactly one of id, user, ip".into()),
            };
            if targets.is_empty() {
                return error("no such session".into());
            }
            let reason = reason.unwrap_or_else(|| DEFAULT_KILL_REASON.into());
            let mut killed = Vec::new();
            for e in &targets {
                if e.kill(EndCause::AdminReset, &reason) {
                    info!(
                        id = e.id,
                        protocol = e.protocol.as_str(),
                        user = e.user().as_deref(),
                        reason = %reason,
                        "session killed from the control socket"
                    );
                    killed.push(e.id);
                }
            }
            json!({"ok": true, "killed": killed, "sessions": infos(&targets)})
        }
        Request::Stats => {
            let s: Snapshot = shared.stats_snapshot();
            json!({"ok": true, "stats": s})
        }
        Request::Reload => json!({"ok": true, "changes": super::reload(shared, "ctl reload")}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_as_documented() {
        let p = |s: &str| serde_json::from_str::<Request>(s);
        assert_eq!(p(r#"{"command":"sessions"}"#).unwrap(), Request::Sessions);
        assert_eq!(
            p(r#"{"command":"show","id":3}"#).unwrap(),
            Request::Show { id: 3 }
        );
        assert_eq!(
            p(r#"{"command":"kill","ip":"10.44.0.2"}"#).unwrap(),
            Request::Kill {
                id: None,
                user: None,
                ip: Some("10.44.0.2".parse().unwrap()),
                reason: None
            }
        );
        assert!(p(r#"{"command":"kill","id":1,"bogus":2}"#).is_err());
        assert!(p(r#"{"command":"shutdown"}"#).is_err());
        assert!(p(r#"{"command":"show"}"#).is_err(), "show needs an id");
    }

    /// Two servers starting together: one owns the socket path, the other
    /// is told so; once the owner is gone, its stale socket is cleared.
    #[test]
    fn one_owner_of_the_socket_path_and_stale_sockets_cleared() {
        let dir = std::env::temp_dir().join(format!("t443-ctl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("control.sock");
        let first = claim(&path).unwrap().expect("a free path is claimed");
        assert!(claim(&path).unwrap().is_none(), "a held path is refused");
        std::fs::write(&path, b"").unwrap();
        assert!(claim(&path).unwrap().is_none());
        assert!(path.exists(), "the owner's socket is left alone");
        drop(first);
        let second = claim(&path)
            .unwrap()
            .expect("claimed once the owner is gone");
        assert!(!path.exists(), "the stale socket is removed");
        drop(second);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
