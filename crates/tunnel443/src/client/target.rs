//! Parsing `sstp://USER@HOST[:PORT]` (and `iphttps://HOST[:PORT]/PATH`).
//! The user may itself contain `@` or `\` (SoftEther's `test@VPN`,
//! `VPN\test`): the host is what follows the last `@`. Percent-escapes in
//! the user part are decoded.

use anyhow::{bail, Context};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub scheme: String,
    pub user: Option<String>,
    pub host: String,
    pub port: u16,
    pub path: String,
}

fn percent_decode(s: &str) -> anyhow::Result<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .context("truncated %-escape in the user name")?;
            out.push(u8::from_str_radix(hex, 16).context("bad %-escape in the user name")?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).context("user name is not UTF-8")
}

impl std::str::FromStr for Target {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        let (scheme, rest) = s
            .split_once("://")
            .with_context(|| format!("{s}: expected sstp://USER@HOST[:PORT]"))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "sstp" && scheme != "iphttps" {
            bail!("{s}: unknown scheme {scheme} (sstp or iphttps)");
        }
        // The authority ends at the first '/' after the last '@'.
        let from = rest.rfind('@').map_or(0, |a| a + 1);
        let cut = rest[from..].find('/').map_or(rest.len(), |x| x + from);
        let (authority, path) = rest.split_at(cut);
        let (user, hostport) = match authority.rfind('@') {
            Some(at) => (
                Some(percent_decode(&authority[..at])?),
                &authority[at + 1..],
            ),
            None => (None, authority),
        };
        if user.as_deref() == Some("") {
            bail!("{s}: empty user name");
        }
        let (host, port) = if let Some(r) = hostport.strip_prefix('[') {
            let (h, after) = r.split_once(']').context("unclosed [ in the host")?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => bail!("{s}: junk after ]"),
            };
            (h.to_string(), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (hostport.to_string(), None),
            }
        };
        if host.is_empty() {
            bail!("{s}: no host");
        }
        let port = match port {
            Some(p) => p.parse().with_context(|| format!("{s}: bad port {p}"))?,
            None => 443,
        };
        Ok(Target {
            scheme,
            user,
            host,
            port,
            path: path.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Target {
        s.parse().unwrap()
    }

    #[test]
    fn forms() {
        let a = t("sstp://vpn@10.0.0.1");
        assert_eq!(
            (a.user.as_deref(), a.host.as_str(), a.port),
            (Some("vpn"), "10.0.0.1", 443)
        );
        let b = t("sstp://test@VPN@host.example:4443");
        assert_eq!(
            (b.user.as_deref(), b.host.as_str(), b.port),
            (Some("test@VPN"), "host.example", 4443)
        );
        let c = t("sstp://VPN\\test@[::1]:8443");
        assert_eq!(
            (c.user.as_deref(), c.host.as_str(), c.port),
            (Some("VPN\\test"), "::1", 8443)
        );
        let d = t("sstp://a%40b@h");
        assert_eq!(d.user.as_deref(), Some("a@b"));
        let e = t("iphttps://gw.example/IPHTTPS");
        assert_eq!(
            (e.user, e.host.as_str(), e.path.as_str()),
            (None, "gw.example", "/IPHTTPS")
        );
    }

    #[test]
    fn errors() {
        for bad in [
            "vpn@h",
            "http://h",
            "sstp://@h",
            "sstp://u@",
            "sstp://u@h:x",
            "sstp://u@h:70000",
            "sstp://u@[::1",
            "sstp://a%4@h",
        ] {
            assert!(bad.parse::<Target>().is_err(), "{bad}");
        }
    }
}
