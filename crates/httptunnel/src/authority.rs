//! The `host:port` target of a CONNECT request (authority-form).
//!
//! Luotonen's draft, "The CONNECT Method": "the hostname and port number are
//! separated by a colon, and both of them must be specified". RFC 9112 §3.2.3
//! calls this the authority-form; IPv6 literals are bracketed (RFC 3986 §3.2.2).
//!
//! The parser is strict on purpose: it is the input to a proxy's access policy.
//! Zone identifiers, user info, percent-encoding, empty labels and names that
//! a resolver would read as a numeric address (`127.1`, `0x7f.1`) are refused,
//! so what the policy sees is what gets connected to.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

/// Why an authority was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthorityError {
    /// No `:port` part.
    #[error("missing port")]
    MissingPort,
    /// The port is not a decimal number in 1..=65535.
    #[error("invalid port")]
    InvalidPort,
    /// The host part is empty or not a valid name or address.
    #[error("invalid host")]
    InvalidHost,
}

/// The host part of an authority.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A DNS name, lower-cased, without a trailing dot.
    Name(String),
    /// An IPv4 or IPv6 literal.
    Ip(IpAddr),
}

impl Host {
    /// Parses a bare host: a DNS name, an IPv4 literal, or an IPv6 literal
    /// with or without brackets.
    pub fn parse(s: &str) -> Result<Self, AuthorityError> {
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or(AuthorityError::InvalidHost)?;
            return Ipv6Addr::from_str(inner)
                .map(|a| Host::Ip(IpAddr::V6(a)))
                .map_err(|_| AuthorityError::InvalidHost);
        }
        if let Ok(ip) = IpAddr::from_str(s) {
            return Ok(Host::Ip(ip));
        }
        validate_name(s).map(Host::Name)
    }

    /// True for names a resolver would map to loopback (`localhost`,
    /// `*.localhost`, RFC 6761 §6.3).
    pub fn is_localhost_name(&self) -> bool {
        match self {
            Host::Name(n) => n == "localhost" || n.ends_with(".localhost"),
            Host::Ip(_) => false,
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::Ip(IpAddr::V4(a)) => write!(f, "{a}"),
            Host::Ip(IpAddr::V6(a)) => write!(f, "[{a}]"),
        }
    }
}

fn validate_name(s: &str) -> Result<String, AuthorityError> {
    let s = s.strip_suffix('.').unwrap_or(s);
    if s.is_empty() || s.len() > 253 {
        return Err(AuthorityError::InvalidHost);
    }
    let mut last = "";
    for label in s.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(AuthorityError::InvalidHost);
        }
        last = label;
    }
    // A numeric last label (or a hex one like 0x7f) means inet_aton would
    // read the whole name as an address: refuse rather than guess.
    let numeric = last.bytes().all(|b| b.is_ascii_digit())
        || ((last.starts_with("0x") || last.starts_with("0X"))
            && last[2..].bytes().all(|b| b.is_ascii_hexdigit()));
    if numeric {
        return Err(AuthorityError::InvalidHost);
    }
    Ok(s.to_ascii_lowercase())
}

/// A validated `host:port`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Authority {
    host: Host,
    port: u16,
}

impl Authority {
    /// Builds an authority from a host (name, IPv4, IPv6 with or without
    /// brackets) and a port.
    pub fn new(host: &str, port: u16) -> Result<Self, AuthorityError> {
        if port == 0 {
            return Err(AuthorityError::InvalidPort);
        }
        Ok(Authority {
            host: Host::parse(host)?,
            port,
        })
    }

    /// Parses `host:port` or `[v6]:port`.
    pub fn parse(s: &str) -> Result<Self, AuthorityError> {
        let (host, port) = if s.starts_with('[') {
            let end = s.find(']').ok_or(AuthorityError::InvalidHost)?;
            let rest = &s[end + 1..];
            let port = rest.strip_prefix(':').ok_or(AuthorityError::MissingPort)?;
            (&s[..=end], port)
        } else {
            let (h, p) = s.rsplit_once(':').ok_or(AuthorityError::MissingPort)?;
            if h.contains(':') {
                // An unbracketed IPv6 literal is ambiguous.
                return Err(AuthorityError::InvalidHost);
            }
            (h, p)
        };
        let port = parse_port(port)?;
        Ok(Authority {
            host: Host::parse(host)?,
            port,
        })
    }

    /// The host part.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The host as a string suitable for a resolver (IPv6 without brackets).
    pub fn host_for_resolver(&self) -> String {
        match &self.host {
            Host::Name(n) => n.clone(),
            Host::Ip(ip) => ip.to_string(),
        }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

fn parse_port(s: &str) -> Result<u16, AuthorityError> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AuthorityError::InvalidPort);
    }
    match s.parse::<u16>() {
        Ok(0) | Err(_) => Err(AuthorityError::InvalidPort),
        Ok(p) => Ok(p),
    }
}

impl fmt::Display for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl FromStr for Authority {
    type Err = AuthorityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Authority::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid() {
        for (s, disp) in [
            ("home.netscape.com:443", "home.netscape.com:443"),
            ("VPN.Example.COM.:443", "vpn.example.com:443"),
            ("10.0.0.1:8443", "10.0.0.1:8443"),
            ("[::1]:443", "[::1]:443"),
            ("[2001:DB8::1]:563", "[2001:db8::1]:563"),
            ("_srv.example.com:1", "_srv.example.com:1"),
            ("a-b.c:65535", "a-b.c:65535"),
            ("1.2.3.4.example:443", "1.2.3.4.example:443"),
        ] {
            let a = Authority::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(a.to_string(), disp);
            assert_eq!(Authority::parse(&a.to_string()).unwrap(), a);
        }
        assert_eq!(
            Authority::parse("[::1]:443").unwrap().host_for_resolver(),
            "::1"
        );
    }

    #[test]
    fn invalid() {
        for (s, e) in [
            ("example.com", AuthorityError::MissingPort),
            ("example.com:", AuthorityError::InvalidPort),
            ("example.com:0", AuthorityError::InvalidPort),
            ("example.com:65536", AuthorityError::InvalidPort),
            ("example.com:+443", AuthorityError::InvalidPort),
            ("example.com:0443x", AuthorityError::InvalidPort),
            ("example.com:000443", AuthorityError::InvalidPort),
            (":443", AuthorityError::InvalidHost),
            ("::1:443", AuthorityError::InvalidHost),
            ("[::1]443", AuthorityError::MissingPort),
            ("[::1:443", AuthorityError::InvalidHost),
            ("[fe80::1%eth0]:443", AuthorityError::InvalidHost),
            ("[1.2.3.4]:443", AuthorityError::InvalidHost),
            ("user@host:443", AuthorityError::InvalidHost),
            ("ho%73t:443", AuthorityError::InvalidHost),
            ("a..b:443", AuthorityError::InvalidHost),
            ("-a.b:443", AuthorityError::InvalidHost),
            ("127.1:443", AuthorityError::InvalidHost),
            ("0x7f.1:443", AuthorityError::InvalidHost),
            ("2130706433:443", AuthorityError::InvalidHost),
            ("010.0.0.1:443", AuthorityError::InvalidHost),
            ("http://a:443", AuthorityError::InvalidHost),
            ("/index.html", AuthorityError::MissingPort),
        ] {
            assert_eq!(Authority::parse(s), Err(e), "{s}");
        }
        let long = format!("{}.com:443", "a".repeat(64));
        assert_eq!(Authority::parse(&long), Err(AuthorityError::InvalidHost));
    }

    #[test]
    fn new_and_localhost() {
        assert_eq!(Authority::new("::1", 443).unwrap().to_string(), "[::1]:443");
        assert_eq!(
            Authority::new("[::1]", 443).unwrap().to_string(),
            "[::1]:443"
        );
        assert!(Authority::new("a", 0).is_err());
        assert!(Host::parse("LOCALHOST").unwrap().is_localhost_name());
        assert!(Host::parse("x.localhost").unwrap().is_localhost_name());
        assert!(!Host::parse("localhost.example")
            .unwrap()
            .is_localhost_name());
    }
}
