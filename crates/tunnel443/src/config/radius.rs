//! The `[radius]` and `[auth]` sections: RADIUS servers (secrets read from
//! files that only root may read), NAS identity, timeouts, and the order in
//! which the server asks RADIUS and the users file.
//!
//! ```toml
//! [radius]
//! servers = [{ address = "127.0.0.1", auth_port = 1812, acct_port = 1813, secret_file = "/etc/tunnel443/radius.secret" }]
//! nas_identifier = "vpn1"
//! [auth]
//! order = ["radius"]          # or ["radius", "users"]
//! ```

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
#[cfg(test)]
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RadiusSection {
    /// Servers in the order they are tried.
    #[serde(default)]
    pub servers: Vec<ServerEntry>,
    /// NAS-Identifier sent in every request (default: the host name).
    pub nas_identifier: Option<String>,
    /// NAS-IP-Address sent in every request (default: none).
    pub nas_ip_address: Option<Ipv4Addr>,
    /// Seconds one server has for one request, retransmissions included (default 3).
    pub timeout: Option<u64>,
    /// Sends per server and request (default 3).
    pub tries: Option<u32>,
    /// Seconds a server that did not answer is passed over (default 30).
    pub dead_time: Option<u64>,
    /// Send accounting (RFC 2866) to the servers' acct_port (default true).
    pub accounting: Option<bool>,
    /// Seconds between Interim-Updates when the Access-Accept has no
    /// Acct-Interim-Interval (default: none).
    pub acct_interim_interval: Option<u64>,
    /// Dynamic authorization (RFC 5176) listener address.
    pub dae_listen: Option<SocketAddr>,
    /// Who may send Disconnect/CoA requests (default: the servers, with
    /// their secrets).
    pub dae_clients: Option<Vec<DaeClientEntry>>,
    /// "local" (default: we run EAP-MSCHAPv2 and send MS-CHAPv2 attributes)
    /// or "pass-through" (RFC 3579: the RADIUS server runs the EAP method).
    pub eap: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaeClientEntry {
    pub address: String,
    pub secret_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerEntry {
    pub address: String,
    pub auth_port: Option<u16>,
    pub acct_port: Option<u16>,
    pub secret_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    /// "radius", "users": who is asked, in order; the next one only when
    /// the one before cannot answer (no RADIUS server answered; the user
    /// is not in the users file).
    pub order: Option<Vec<String>>,
}

/// Where a verdict can come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthSource {
    Radius,
    Users,
}

#[derive(Debug, Clone)]
pub struct RadiusServer {
    pub auth: SocketAddr,
    pub acct: SocketAddr,
    pub secret: ::radius::Secret,
}

#[derive(Debug, Clone)]
pub struct RadiusSettings {
    pub servers: Vec<RadiusServer>,
    pub nas_identifier: String,
    pub nas_ip_address: Option<Ipv4Addr>,
    pub timeout: Duration,
    pub tries: u32,
    pub dead_time: Duration,
    pub accounting: bool,
    pub acct_interim_interval: Option<Duration>,
    pub dae_listen: Option<SocketAddr>,
    pub dae_clients: Vec<crate::server::radius::dae::DaeClient>,
    /// `eap = "pass-through"`.
    pub eap_pass_through: bool,
}

/// Reads a secret file: it must not be accessible to group or others
/// ([`crate::state::ensure_private`]), and holds the secret on its first line.
pub fn read_secret(field: &str, path: &std::path::Path) -> anyhow::Result<::radius::Secret> {
    crate::state::ensure_private(field, path)?;
    let text = std::fs::read(path).with_context(|| format!("{field}: {}", path.display()))?;
    let line = text.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        bail!(
            "{field}: {} is empty (it must hold the shared secret)",
            path.display()
        );
    }
    Ok(::radius::Secret::new(line))
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "tunnel443".into())
}

/// Validates both sections together.
pub fn validate(
    radius: Option<RadiusSection>,
    auth: AuthSection,
) -> anyhow::Result<(Option<RadiusSettings>, Vec<AuthSource>)> {
    let settings = match radius {
        None => None,
        Some(r) => {
            if r.servers.is_empty() {
                bail!("radius.servers: at least one server is needed");
            }
            let mut servers = Vec::new();
            for (i, s) in r.servers.into_iter().enumerate() {
                let f = format!("radius.servers[{i}]");
                let ip: IpAddr = s.address.parse().map_err(|_| {
                    anyhow::anyhow!("{f}.address: \"{}\" is not an IP address", s.address)
                })?;
                let auth_port = s.auth_port.unwrap_or(1812);
                let acct_port = s.acct_port.unwrap_or(1813);
                for (name, port) in [("auth_port", auth_port), ("acct_port", acct_port)] {
                    if port == 0 {
                        bail!("{f}.{name}: 0 is not a port");
                    }
                }
                let Some(file) = s.secret_file else {
                    bail!("{f}.secret_file: required (a file holding the shared secret, mode 600)");
                };
                servers.push(RadiusServer {
                    auth: SocketAddr::new(ip, auth_port),
                    acct: SocketAddr::new(ip, acct_port),
                    secret: read_secret(&format!("{f}.secret_file"), &file)?,
                });
            }
            let nas_identifier = r.nas_identifier.unwrap_or_else(host_name);
            if nas_identifier.is_empty() || nas_identifier.len() > 253 {
                bail!("radius.nas_identifier: must be 1 to 253 bytes");
            }
            let secs = |field: &str, v: Option<u64>, d: u64| -> anyhow::Result<Duration> {
                let v = v.unwrap_or(d);
                if v == 0 || v > 3600 {
                    bail!("radius.{field}: {v} out of range 1..=3600 seconds");
                }
                Ok(Duration::from_secs(v))
            };
            let tries = r.tries.unwrap_or(3);
            if !(1..=10).contains(&tries) {
                bail!("radius.tries: {tries} out of range 1..=10");
            }
            let dae_clients = match r.dae_clients {
                None => servers
                    .iter()
                    .map(|s| crate::server::radius::dae::DaeClient {
                        address: s.auth.ip(),
                        secret: s.secret.clone(),
                    })
                    .collect(),
                Some(list) => {
                    if r.dae_listen.is_none() {
                        bail!("radius.dae_clients: needs radius.dae_listen");
                    }
                    let mut out = Vec::new();
                    for (i, c) in list.into_iter().enumerate() {
                        let f = format!("radius.dae_clients[{i}]");
                        let address: IpAddr = c.address.parse().map_err(|_| {
                            anyhow::anyhow!("{f}.address: \"{}\" is not an IP address", c.address)
                        })?;
                        let Some(file) = c.secret_file else {
                            bail!("{f}.secret_file: required");
                        };
                        out.push(crate::server::radius::dae::DaeClient {
                            address,
                            secret: read_secret(&format!("{f}.secret_file"), &file)?,
                        });
                    }
                    out
                }
            };
            let eap_pass_through = match r.eap.as_deref() {
                None | Some("local") => false,
                Some("pass-through") => true,
                Some(other) => {
                    bail!("radius.eap: \"{other}\" is not \"local\" or \"pass-through\"")
                }
            };
            Some(RadiusSettings {
                eap_pass_through,
                dae_listen: r.dae_listen,
                dae_clients,
                servers,
                nas_identifier,
                nas_ip_address: r.nas_ip_address,
                timeout: secs("timeout", r.timeout, 3)?,
                tries,
                dead_time: secs("dead_time", r.dead_time, 30)?,
                accounting: r.accounting.unwrap_or(true),
                acct_interim_interval: match r.acct_interim_interval {
                    None => None,
                    Some(v) if v < 10 => {
                        bail!("radius.acct_interim_interval: {v} is below 10 seconds")
                    }
                    Some(v) => Some(Duration::from_secs(v)),
                },
            })
        }
    };
    let order = match auth.order {
        None if settings.is_some() => vec![AuthSource::Radius],
        None => vec![AuthSource::Users],
        Some(list) => {
            let mut out = Vec::new();
            for s in &list {
                let src = match s.as_str() {
                    "radius" => AuthSource::Radius,
                    "users" => AuthSource::Users,
                    o => bail!("auth.order: unknown \"{o}\" (use \"radius\", \"users\")"),
                };
                if out.contains(&src) {
                    bail!("auth.order: \"{s}\" listed twice");
                }
                out.push(src);
            }
            if out.is_empty() {
                bail!("auth.order: must not be empty");
            }
            if out.contains(&AuthSource::Radius) && settings.is_none() {
                bail!("auth.order: \"radius\" needs a [radius] section with servers");
            }
            out
        }
    };
    if settings.as_ref().is_some_and(|s| s.eap_pass_through) && order != [AuthSource::Radius] {
        bail!("radius.eap: \"pass-through\" needs auth.order = [\"radius\"] (the users file cannot run the EAP method the RADIUS server chooses)");
    }
    Ok((settings, order))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret_file(mode: u32, text: &str) -> (PathBuf, PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("t443-rsec-{}", crate::state::random_password()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("secret");
        std::fs::write(&f, text).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
        (dir, f)
    }

    fn run(radius: &str, order: &str) -> anyhow::Result<(Option<RadiusSettings>, Vec<AuthSource>)> {
        let text = format!("{radius}\n{order}");
        let f = crate::config::parse(&text)?;
        validate(f.radius, f.auth)
    }

    #[test]
    fn contract_example_and_defaults() {
        let (dir, f) = secret_file(0o600, "s3cret\n");
        let cfg = format!(
            "[radius]\nservers = [{{ address = \"127.0.0.1\", auth_port = 1812, acct_port = 1813, secret_file = \"{}\" }}]\nnas_identifier = \"vpn1\"",
            f.display()
        );
        let (s, order) = run(&cfg, "[auth]\norder = [\"radius\", \"users\"]").unwrap();
        let s = s.unwrap();
        assert_eq!(order, [AuthSource::Radius, AuthSource::Users]);
        assert_eq!(s.servers[0].auth, "127.0.0.1:1812".parse().unwrap());
        assert_eq!(s.servers[0].secret, ::radius::Secret::new("s3cret"));
        assert_eq!(s.nas_identifier, "vpn1");
        assert_eq!((s.timeout, s.tries), (Duration::from_secs(3), 3));
        assert!(
            !format!("{s:?}").contains("s3cret"),
            "the secret never prints"
        );
        let (_, order) = run(&cfg, "").unwrap();
        assert_eq!(order, [AuthSource::Radius]);
        assert_eq!(run("", "").unwrap().1, [AuthSource::Users]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn errors_name_the_field() {
        let e = |r: &str, o: &str| format!("{:#}", run(r, o).unwrap_err());
        let (dir, open) = secret_file(0o644, "x");
        let (dir2, empty) = secret_file(0o600, "\n");
        let srv =
            |extra: &str| format!("[radius]\nservers = [{{ address = \"127.0.0.1\"{extra} }}]");
        assert!(e(&srv(""), "").contains("radius.servers[0].secret_file: required"));
        assert!(
            e(&srv(&format!(", secret_file = \"{}\"", open.display())), "").contains("chmod 600")
        );
        assert!(e(
            &srv(&format!(", secret_file = \"{}\"", empty.display())),
            ""
        )
        .contains("is empty"));
        assert!(e(&srv(", secret_file = \"/nonexistent/x\""), "")
            .contains("radius.servers[0].secret_file"));
        assert!(
            e("[radius]\nservers = [{ address = \"radius.example\" }]", "")
                .contains("radius.servers[0].address")
        );
        assert!(e("[radius]", "").contains("radius.servers"));
        let ok = format!(", secret_file = \"{}\"", empty.display());
        assert!(e(&srv(&format!("{ok}, acct_port = 0")), "")
            .contains("radius.servers[0].acct_port: 0 is not a port"));
        assert!(e(&srv(&format!("{ok}, auth_port = 0")), "")
            .contains("radius.servers[0].auth_port: 0 is not a port"));
        assert!(e("", "[auth]\norder = [\"radius\"]").contains("auth.order"));
        assert!(e("", "[auth]\norder = [\"ldap\"]").contains("auth.order"));
        assert!(e("", "[auth]\norder = []").contains("auth.order"));
        assert!(e("[radius]\ntimeout = 0\nservers=[]", "").contains("radius."));
        std::fs::remove_dir_all(dir).unwrap();
        std::fs::remove_dir_all(dir2).unwrap();
    }

    /// DAE clients: by default the servers' addresses with their secrets;
    /// `dae_clients` replaces them (and needs `dae_listen`).
    #[test]
    fn dae_clients_default_and_override() {
        let (dir, f) = secret_file(0o600, "s3cret\n");
        let (dir2, g) = secret_file(0o600, "dae-secret\n");
        let servers = format!(
            "[radius]\nservers = [{{ address = \"192.0.2.1\", secret_file = \"{}\" }}, {{ address = \"192.0.2.2\", secret_file = \"{}\" }}]\n",
            f.display(),
            g.display()
        );
        let clients = |cfg: &str| {
            run(cfg, "").map(|(s, _)| {
                s.unwrap()
                    .dae_clients
                    .into_iter()
                    .map(|c| (c.address.to_string(), c.secret))
                    .collect::<Vec<_>>()
            })
        };
        let sec = ::radius::Secret::new;
        assert_eq!(
            clients(&servers).unwrap(),
            [
                ("192.0.2.1".to_string(), sec("s3cret")),
                ("192.0.2.2".to_string(), sec("dae-secret"))
            ]
        );
        let over = format!(
            "{servers}dae_listen = \"127.0.0.1:3799\"\ndae_clients = [{{ address = \"198.51.100.9\", secret_file = \"{}\" }}]\n",
            g.display()
        );
        assert_eq!(
            clients(&over).unwrap(),
            [("198.51.100.9".to_string(), sec("dae-secret"))]
        );
        let e = |cfg: &str| format!("{:#}", run(cfg, "").unwrap_err());
        assert!(e(&format!(
            "{servers}dae_clients = [{{ address = \"198.51.100.9\", secret_file = \"{}\" }}]\n",
            g.display()
        ))
        .contains("radius.dae_clients: needs radius.dae_listen"));
        assert!(e(&format!(
            "{servers}dae_listen = \"127.0.0.1:3799\"\ndae_clients = [{{ address = \"nas\", secret_file = \"{}\" }}]\n",
            g.display()
        ))
        .contains("radius.dae_clients[0].address: \"nas\" is not an IP address"));
        assert!(e(&format!(
            "{servers}dae_listen = \"127.0.0.1:3799\"\ndae_clients = [{{ address = \"198.51.100.9\" }}]\n"
        ))
        .contains("radius.dae_clients[0].secret_file: required"));
        std::fs::remove_dir_all(dir).unwrap();
        std::fs::remove_dir_all(dir2).unwrap();
    }

    #[test]
    fn eap_pass_through_option() {
        let (dir, f) = secret_file(0o600, "s3cret\n");
        let cfg = |eap: &str| {
            format!(
                "[radius]\nservers = [{{ address = \"127.0.0.1\", secret_file = \"{}\" }}]\n{eap}",
                f.display()
            )
        };
        let on = |eap: &str, order: &str| {
            run(&cfg(eap), order).map(|(s, _)| s.unwrap().eap_pass_through)
        };
        assert!(!on("", "").unwrap());
        assert!(!on("eap = \"local\"", "").unwrap());
        assert!(on("eap = \"pass-through\"", "").unwrap());
        let e = |eap: &str, order: &str| format!("{:#}", run(&cfg(eap), order).unwrap_err());
        assert!(e("eap = \"relay\"", "").contains("radius.eap: \"relay\" is not"));
        assert!(e(
            "eap = \"pass-through\"",
            "[auth]\norder = [\"radius\", \"users\"]"
        )
        .contains("radius.eap: \"pass-through\" needs auth.order"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
