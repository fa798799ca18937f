//! What the zero-config server prints at start: the user it created, the
//! certificate's SHA-256 and a client command that works from elsewhere.
//!
//! A wildcard listen address (`0.0.0.0`, `[::]`) is not something a client
//! can dial, and the host name often resolves to a loopback address
//! (Debian's `/etc/hosts` maps it to 127.0.1.1), so the command names the
//! host's own non-loopback addresses, and the host name only when every
//! address it resolves to is one of them. The same hosts go into the
//! generated certificate's subjectAltName.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::path::Path;

/// Whether a client elsewhere could reach `a`: not loopback, link-local,
/// multicast, broadcast or unspecified.
fn reachable(a: &IpAddr) -> bool {
    match a {
        IpAddr::V4(v4) => {
            !(v4.is_loopback()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_unspecified())
        }
        IpAddr::V6(v6) => {
            !(v6.is_loopback()
                || v6.is_unicast_link_local()
                || v6.is_multicast()
                || v6.is_unspecified())
        }
    }
}

/// The hosts a client may dial to reach a server listening on `listen`,
/// best first: the listen address itself when it is a specific one;
/// otherwise the host name (when all of `hostname`'s resolved addresses are
/// among the candidates), then the `preferred` addresses (the sources of
/// the default routes), then the other `local` addresses that are
/// reachable and of a family the listener accepts (`[::]` accepts both).
/// Empty when the host has no such address.
pub fn select_hosts(
    listen: IpAddr,
    local: &[IpAddr],
    preferred: &[IpAddr],
    hostname: Option<(&str, &[IpAddr])>,
) -> Vec<String> {
    if !listen.is_unspecified() {
        return vec![listen.to_string()];
    }
    let mut addrs: Vec<IpAddr> = local
        .iter()
        .copied()
        .filter(|a| reachable(a) && (listen.is_ipv6() || a.is_ipv4()))
        .collect();
    addrs.sort();
    addrs.dedup();
    for p in preferred.iter().rev() {
        if let Some(i) = addrs.iter().position(|a| a == p) {
            let a = addrs.remove(i);
            addrs.insert(0, a);
        }
    }
    let mut out = Vec::new();
    if let Some((name, resolved)) = hostname {
        if !resolved.is_empty() && resolved.iter().all(|r| addrs.contains(r)) {
            out.push(name.to_string());
        }
    }
    out.extend(addrs.iter().map(IpAddr::to_string));
    out
}

/// A host as it goes into a URL: IPv6 addresses in brackets.
pub fn url_host(host: &str) -> String {
    match host.parse::<std::net::Ipv6Addr>() {
        Ok(_) => format!("[{host}]"),
        Err(_) => host.to_string(),
    }
}

/// The source address this host would use towards the documentation
/// address `probe` (a UDP `connect` sends nothing): the default route's.
fn default_source(probe: SocketAddr) -> Option<IpAddr> {
    let bind: SocketAddr = if probe.is_ipv4() {
        "0.0.0.0:0".parse().ok()?
    } else {
        "[::]:0".parse().ok()?
    };
    let s = UdpSocket::bind(bind).ok()?;
    s.connect(probe).ok()?;
    Some(s.local_addr().ok()?.ip())
}

/// The addresses `name` resolves to; none if the resolver takes longer
/// than two seconds (an unreachable DNS server must not hold up the start).
fn resolve(name: String) -> Vec<IpAddr> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let addrs: Vec<IpAddr> = (name.as_str(), 0)
            .to_socket_addrs()
            .map(|it| it.map(|a| a.ip()).collect())
            .unwrap_or_default();
        let _ = tx.send(addrs);
    });
    rx.recv_timeout(std::time::Duration::from_secs(2))
        .unwrap_or_default()
}

/// [`select_hosts`] for this host: its interface addresses except those
/// `own` says are the server's own (the tunnel pools), its default-route
/// sources, and its host name as the resolver sees it.
pub fn reachable_hosts(listen: IpAddr, own: impl Fn(IpAddr) -> bool) -> Vec<String> {
    let local: Vec<IpAddr> = crate::proxy::ifaddrs::local_addresses()
        .unwrap_or_default()
        .into_iter()
        .filter(|a| !own(*a))
        .collect();
    let preferred: Vec<IpAddr> = ["192.0.2.1:9", "[2001:db8::1]:9"]
        .iter()
        .filter_map(|p| default_source(p.parse().ok()?))
        .collect();
    let name = crate::state::hostname();
    let resolved = name.clone().map(resolve).unwrap_or_default();
    select_hosts(
        listen,
        &local,
        &preferred,
        name.as_deref().map(|n| (n, resolved.as_slice())),
    )
}

/// What the banner says about the users.
pub struct BannerUsers<'a> {
    /// The user and password created just now, if one was.
    pub created: Option<(&'a str, &'a str)>,
    /// The names in the users file.
    pub names: &'a [String],
    pub file: &'a Path,
}

/// The banner's lines (without the `tunnel443: ` prefix each gets).
pub fn lines(users: &BannerUsers, cert_sha256: &str, hosts: &[String], port: u16) -> Vec<String> {
    let file = users.file.display();
    let mut out = Vec::new();
    if let Some((user, password)) = users.created {
        out.push(format!(
            "created user {user} with password {password} (stored in {file})"
        ));
    }
    out.push(format!("certificate SHA-256 {cert_sha256}"));
    let user = match (users.created, users.names) {
        (Some((u, _)), _) => u.to_string(),
        (None, []) => {
            out.push(format!(
                "the users file {file} has no users: add one with `tunnel443 user add NAME --users-file {file}` (a running server picks it up within {} s)",
                super::auth::POLL.as_secs()
            ));
            return out;
        }
        (None, [one]) => one.clone(),
        (None, names) if names.iter().any(|n| n == crate::state::DEFAULT_USER) => {
            crate::state::DEFAULT_USER.to_string()
        }
        (None, names) => {
            out.push(format!(
                "USER below is one of the {} users in {file}",
                names.len()
            ));
            "USER".to_string()
        }
    };
    let port = match port {
        443 => String::new(),
        p => format!(":{p}"),
    };
    let (first, others) = match hosts.split_first() {
        Some((first, others)) => (first.clone(), others),
        None => {
            out.push(
                "this host has no address other than loopback: clients elsewhere need an address it can be reached at"
                    .to_string(),
            );
            ("127.0.0.1".to_string(), &[][..])
        }
    };
    out.push(format!(
        "connect with: tunnel443 client sstp://{user}@{}{port} --pin-sha256 {cert_sha256}",
        url_host(&first)
    ));
    if !others.is_empty() {
        out.push(format!("also reachable as: {}", others.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(v: &[&str]) -> Vec<IpAddr> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn a_specific_listen_address_is_the_one_printed() {
        let local = ips(&["10.0.0.5", "192.168.1.2"]);
        assert_eq!(
            select_hosts("192.168.1.2".parse().unwrap(), &local, &[], None),
            ["192.168.1.2"]
        );
        assert_eq!(
            select_hosts("2001:db8::7".parse().unwrap(), &local, &[], None),
            ["2001:db8::7"]
        );
    }

    #[test]
    fn wildcard_gives_the_non_loopback_addresses_default_route_first() {
        let local = ips(&[
            "127.0.0.1",
            "10.0.0.5",
            "192.168.1.2",
            "169.254.1.1",
            "::1",
            "fe80::1",
            "2001:db8::5",
        ]);
        let pref = ips(&["192.168.1.2", "2001:db8::5"]);
        let any4 = "0.0.0.0".parse().unwrap();
        assert_eq!(
            select_hosts(any4, &local, &pref, None),
            ["192.168.1.2", "10.0.0.5"]
        );
        let any6 = "::".parse().unwrap();
        assert_eq!(
            select_hosts(any6, &local, &pref, None),
            ["192.168.1.2", "2001:db8::5", "10.0.0.5"]
        );
        assert!(select_hosts(any4, &ips(&["127.0.0.1", "::1"]), &[], None).is_empty());
    }

    #[test]
    fn host_name_only_when_it_resolves_to_a_printed_address() {
        let local = ips(&["127.0.0.1", "127.0.1.1", "10.0.0.5"]);
        let any4 = "0.0.0.0".parse().unwrap();
        // Debian's /etc/hosts: the name is 127.0.1.1.
        let loop_ = ips(&["127.0.1.1"]);
        assert_eq!(
            select_hosts(any4, &local, &[], Some(("vpn1", &loop_))),
            ["10.0.0.5"]
        );
        let good = ips(&["10.0.0.5"]);
        assert_eq!(
            select_hosts(any4, &local, &[], Some(("vpn1", &good))),
            ["vpn1", "10.0.0.5"]
        );
        // One of its addresses elsewhere (or of a family not listened on).
        let mixed = ips(&["10.0.0.5", "2001:db8::5"]);
        assert_eq!(
            select_hosts(any4, &local, &[], Some(("vpn1", &mixed))),
            ["10.0.0.5"]
        );
        assert_eq!(
            select_hosts(any4, &local, &[], Some(("vpn1", &[]))),
            ["10.0.0.5"]
        );
    }

    fn banner(created: Option<(&str, &str)>, names: &[&str], hosts: &[&str], port: u16) -> String {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let hosts: Vec<String> = hosts.iter().map(|s| s.to_string()).collect();
        let u = BannerUsers {
            created,
            names: &names,
            file: Path::new("/s/users"),
        };
        lines(&u, "ab12", &hosts, port).join("\n")
    }

    #[test]
    fn banner_lines() {
        assert_eq!(
            banner(
                Some(("vpn", "pw")),
                &["vpn"],
                &["10.0.0.5", "2001:db8::5"],
                443
            ),
            "created user vpn with password pw (stored in /s/users)\n\
             certificate SHA-256 ab12\n\
             connect with: tunnel443 client sstp://vpn@10.0.0.5 --pin-sha256 ab12\n\
             also reachable as: 2001:db8::5"
        );
        let b = banner(None, &["alice"], &["2001:db8::5"], 4443);
        assert!(
            b.ends_with("sstp://alice@[2001:db8::5]:4443 --pin-sha256 ab12"),
            "{b}"
        );
        let b = banner(None, &["alice", "vpn"], &["h"], 443);
        assert!(b.contains("sstp://vpn@h "), "{b}");
        let b = banner(None, &["alice", "bob"], &["h"], 443);
        assert!(
            b.contains("USER below is one of the 2 users in /s/users"),
            "{b}"
        );
        assert!(b.contains("sstp://USER@h "), "{b}");
        let b = banner(None, &[], &["h"], 443);
        assert!(!b.contains("sstp://"), "{b}");
        assert!(
            b.contains(
                "has no users: add one with `tunnel443 user add NAME --users-file /s/users`"
            ),
            "{b}"
        );
        let b = banner(None, &["vpn"], &[], 443);
        assert!(b.contains("no address other than loopback"), "{b}");
        assert!(b.contains("sstp://vpn@127.0.0.1 "), "{b}");
    }
}
