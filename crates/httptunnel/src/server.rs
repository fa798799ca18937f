//! CONNECT server: request checks and policy decisions for a forward proxy.
//!
//! * Only CONNECT is served (Luotonen, "The CONNECT Method"); other methods
//!   get `405` with `Allow: CONNECT` and a one-line explanation.
//! * The target must be authority-form `host:port` (see [`crate::authority`]);
//!   anything else gets `400`.
//! * Optional Basic users: a missing or wrong `Proxy-Authorization` gets `407`
//!   with `Proxy-Authenticate: Basic realm="..."` (Luotonen, "Extensibility").
//! * Ports: "the proxy configuration should explicitly limit allowed
//!   connections to well-known SSL ports (such as 443 for HTTPS, 563 for
//!   SNEWS)" (Luotonen, "Security Considerations"): 443 and 563 by default.
//! * Networks: loopback, link-local, unspecified, multicast and the proxy's
//!   own addresses are refused unless explicitly allowed, so the proxy is not
//!   a relay into the host or its LAN. The driver checks every resolved
//!   address with [`NetPolicy::check`] before connecting to it.
//! * SSTP: MS-SSTP §4.5 says the `SSTPVERSION` header "can be used by network
//!   administrators through forward proxies to filter the SSTP-based
//!   connection"; [`ServerPolicy::refuse_sstp`] does that.
//! * Refusals answer `403`; the driver uses [`Status`] responses for `408`,
//!   `431`, `502`, `503` and `504`.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::basic::{challenge, BasicUsers, Credentials};
use crate::head::{Header, Headers, RequestHead, ResponseHead};
use crate::Authority;

/// Target ports allowed by default (Luotonen, "Security Considerations").
pub const DEFAULT_PORTS: [u16; 2] = [443, 563];

/// A set of TCP ports as inclusive ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSet(Vec<(u16, u16)>);

impl Default for PortSet {
    fn default() -> Self {
        PortSet(DEFAULT_PORTS.iter().map(|&p| (p, p)).collect())
    }
}

/// Why a port range could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid port or port range \"{0}\" (want N or N-M, 1..65535)")]
pub struct PortRangeError(pub String);

impl PortSet {
    /// An empty set.
    pub fn empty() -> Self {
        PortSet(Vec::new())
    }

    /// Adds an inclusive range.
    pub fn add(&mut self, lo: u16, hi: u16) {
        self.0.push((lo.min(hi), lo.max(hi)));
    }

    /// Adds `N` or `N-M`.
    pub fn add_spec(&mut self, spec: &str) -> Result<(), PortRangeError> {
        let err = || PortRangeError(spec.to_owned());
        let p = |s: &str| match s.trim().parse::<u16>() {
            Ok(0) | Err(_) => Err(err()),
            Ok(v) => Ok(v),
        };
        match spec.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (p(a)?, p(b)?);
                if a > b {
                    return Err(err());
                }
                self.add(a, b)
            }
            None => {
                let a = p(spec)?;
                self.add(a, a)
            }
        }
        Ok(())
    }

    /// True if `port` is in the set.
    pub fn contains(&self, port: u16) -> bool {
        self.0.iter().any(|&(lo, hi)| (lo..=hi).contains(&port))
    }
}

/// Why a target address is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NetDenial {
    /// Matched a `deny` rule (the most specific matching rule).
    #[error("address {0} is in a denied network")]
    DeniedNet(IpAddr),
    /// Loopback, link-local, unspecified, multicast or broadcast, and no
    /// `allow` rule covers it.
    #[error("address {0} is a loopback, link-local or other special address")]
    Special(IpAddr),
    /// One of the proxy's own addresses, and no `allow` rule covers it.
    #[error("address {0} is the proxy's own address")]
    Own(IpAddr),
    /// `default_deny` is set and no `allow` rule covers it.
    #[error("address {0} is not in an allowed network")]
    NotAllowed(IpAddr),
}

/// Networks denied unless an explicit allow rule covers them.
pub fn special_networks() -> Vec<IpNet> {
    [
        "0.0.0.0/8",          // "this network"; 0.0.0.0 reaches the host itself
        "127.0.0.0/8",        // loopback
        "169.254.0.0/16",     // link-local (cloud metadata services live here)
        "224.0.0.0/4",        // multicast
        "255.255.255.255/32", // limited broadcast
        "::/128",             // unspecified
        "::1/128",            // loopback
        "fe80::/10",          // link-local
        "ff00::/8",           // multicast
    ]
    .iter()
    .filter_map(|s| s.parse().ok())
    .collect()
}

/// Allow/deny rules for target addresses.
///
/// Evaluation: IPv4-mapped IPv6 addresses are first turned into IPv4. Then the
/// most specific explicit rule that contains the address decides (a deny wins
/// a tie). With no explicit rule, special networks and the proxy's own
/// addresses are denied; anything else is allowed, or denied when
/// `default_deny` is set.
#[derive(Debug, Clone)]
pub struct NetPolicy {
    rules: Vec<(IpNet, bool)>,
    special: Vec<IpNet>,
    own: Vec<IpAddr>,
    /// Deny everything that no allow rule covers.
    pub default_deny: bool,
}

impl Default for NetPolicy {
    fn default() -> Self {
        NetPolicy {
            rules: Vec::new(),
            special: special_networks(),
            own: Vec::new(),
            default_deny: false,
        }
    }
}

impl NetPolicy {
    /// Adds an allow rule.
    pub fn allow(&mut self, net: IpNet) {
        self.rules.push((canonical_net(net), true));
    }

    /// Adds a deny rule.
    pub fn deny(&mut self, net: IpNet) {
        self.rules.push((canonical_net(net), false));
    }

    /// Records one of the proxy's own addresses (interfaces, listen address).
    pub fn add_own(&mut self, ip: IpAddr) {
        let ip = ip.to_canonical();
        if !ip.is_unspecified() && !self.own.contains(&ip) {
            self.own.push(ip);
        }
    }

    /// Checks one address.
    pub fn check(&self, ip: IpAddr) -> Result<(), NetDenial> {
        let ip = ip.to_canonical();
        let best = self
            .rules
            .iter()
            .filter(|(n, _)| n.contains(&ip))
            .max_by_key(|(n, allow)| (n.prefix_len(), !*allow));
        match best {
            Some((_, true)) => Ok(()),
            Some((_, false)) => Err(NetDenial::DeniedNet(ip)),
            None if self.special.iter().any(|n| n.contains(&ip)) => Err(NetDenial::Special(ip)),
            None if self.own.contains(&ip) => Err(NetDenial::Own(ip)),
            None if self.default_deny => Err(NetDenial::NotAllowed(ip)),
            None => Ok(()),
        }
    }
}

fn canonical_net(net: IpNet) -> IpNet {
    // ::ffff:a.b.c.d/n with n >= 96 is the IPv4 network a.b.c.d/(n-96).
    if let IpNet::V6(v6) = net {
        if let Some(v4) = v6.addr().to_ipv4_mapped() {
            if v6.prefix_len() >= 96 {
                if let Ok(n) = ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96) {
                    return IpNet::V4(n.trunc());
                }
            }
        }
    }
    net.trunc()
}

/// The proxy's policy.
#[derive(Debug)]
pub struct ServerPolicy {
    /// Allowed target ports.
    pub ports: PortSet,
    /// Allowed target networks (applied by the driver after resolution, and
    /// here to IP-literal targets).
    pub nets: NetPolicy,
    /// Users; `None` means no authentication.
    pub users: Option<BasicUsers>,
    /// Realm in the `407` challenge.
    pub realm: String,
    /// Refuse requests carrying `SSTPVERSION` (MS-SSTP §4.5).
    pub refuse_sstp: bool,
}

impl Default for ServerPolicy {
    fn default() -> Self {
        ServerPolicy {
            ports: PortSet::default(),
            nets: NetPolicy::default(),
            users: None,
            realm: "tunnel443".to_owned(),
            refuse_sstp: false,
        }
    }
}

/// A request that passed the method, syntax and credential checks, not yet
/// the target checks ([`ServerPolicy::authorise`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// Where the client wants to go.
    pub target: Authority,
    /// The authenticated user, if users are configured.
    pub user: Option<String>,
}

/// A request the policy accepts: the driver may now resolve and connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// Where to connect.
    pub target: Authority,
    /// The authenticated user, if users are configured.
    pub user: Option<String>,
    /// The `SSTPVERSION` header value, if present.
    pub sstp_version: Option<String>,
}

/// Why a request is refused; each maps to one status code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// 405: not CONNECT.
    #[error("method \"{0}\" not allowed")]
    MethodNotAllowed(String),
    /// 400: malformed request or target.
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// 407: no or wrong credentials.
    #[error("proxy authentication required")]
    AuthRequired {
        /// Credentials were sent but did not match (user name, sanitized).
        attempted_user: Option<String>,
    },
    /// 403: port not allowed.
    #[error("port {0} not allowed")]
    PortDenied(u16),
    /// 403: address not allowed.
    #[error("{0}")]
    NetDenied(NetDenial),
    /// 403: the name resolves to loopback by definition.
    #[error("target {0} is a loopback name")]
    LocalName(String),
    /// 403: SSTP refused by policy.
    #[error("SSTP tunnels are not allowed")]
    SstpRefused,
}

impl Refusal {
    /// The status this refusal is answered with.
    pub fn status(&self) -> Status {
        match self {
            Refusal::MethodNotAllowed(_) => Status::MethodNotAllowed,
            Refusal::BadRequest(_) => Status::BadRequest,
            Refusal::AuthRequired { .. } => Status::ProxyAuthRequired,
            Refusal::PortDenied(_)
            | Refusal::NetDenied(_)
            | Refusal::LocalName(_)
            | Refusal::SstpRefused => Status::Forbidden,
        }
    }

    /// A short label for access logs.
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::MethodNotAllowed(_) => "method_not_allowed",
            Refusal::BadRequest(_) => "bad_request",
            Refusal::AuthRequired { .. } => "auth_required",
            Refusal::PortDenied(_) => "port_denied",
            Refusal::NetDenied(_) | Refusal::LocalName(_) => "net_denied",
            Refusal::SstpRefused => "sstp_refused",
        }
    }

    /// The full response to send before closing.
    pub fn response(&self, realm: &str) -> Vec<u8> {
        let mut extra = Headers::new();
        let detail: String = match self {
            Refusal::MethodNotAllowed(_) => {
                push(&mut extra, "Allow", "CONNECT");
                "This is a CONNECT-only tunnel proxy (RFC 9110 9.3.6): send \
                 'CONNECT host:port HTTP/1.1'. Other methods are not served."
                    .to_owned()
            }
            Refusal::BadRequest(why) => format!("Malformed CONNECT request: {why}."),
            Refusal::AuthRequired { .. } => {
                push(&mut extra, "Proxy-Authenticate", &challenge(realm));
                "Proxy authentication required.".to_owned()
            }
            Refusal::PortDenied(p) => format!("Tunnels to port {p} are not allowed."),
            Refusal::NetDenied(_) | Refusal::LocalName(_) => {
                "Tunnels to this address are not allowed.".to_owned()
            }
            Refusal::SstpRefused => "SSTP tunnels are not allowed by this proxy.".to_owned(),
        };
        self.status().response(&detail, extra)
    }
}

fn push(h: &mut Headers, name: &str, value: &str) {
    if let Ok(v) = Header::new(name, value) {
        h.push(v);
    }
}

/// Status codes the proxy sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Status {
    /// 200 Connection established.
    Established,
    /// 400 Bad Request.
    BadRequest,
    /// 403 Forbidden.
    Forbidden,
    /// 405 Method Not Allowed.
    MethodNotAllowed,
    /// 407 Proxy Authentication Required.
    ProxyAuthRequired,
    /// 408 Request Timeout: the head did not arrive in time.
    RequestTimeout,
    /// 431 Request Header Fields Too Large.
    HeadTooLarge,
    /// 502 Bad Gateway: could not connect or resolve.
    BadGateway,
    /// 503 Service Unavailable: concurrency cap reached.
    Unavailable,
    /// 504 Gateway Timeout: connecting timed out.
    GatewayTimeout,
}

impl Status {
    /// The numeric code.
    pub fn code(self) -> u16 {
        match self {
            Status::Established => 200,
            Status::BadRequest => 400,
            Status::Forbidden => 403,
            Status::MethodNotAllowed => 405,
            Status::ProxyAuthRequired => 407,
            Status::RequestTimeout => 408,
            Status::HeadTooLarge => 431,
            Status::BadGateway => 502,
            Status::Unavailable => 503,
            Status::GatewayTimeout => 504,
        }
    }

    /// The reason phrase.
    pub fn reason(self) -> &'static str {
        match self {
            Status::Established => "Connection established",
            Status::BadRequest => "Bad Request",
            Status::Forbidden => "Forbidden",
            Status::MethodNotAllowed => "Method Not Allowed",
            Status::ProxyAuthRequired => "Proxy Authentication Required",
            Status::RequestTimeout => "Request Timeout",
            Status::HeadTooLarge => "Request Header Fields Too Large",
            Status::BadGateway => "Bad Gateway",
            Status::Unavailable => "Service Unavailable",
            Status::GatewayTimeout => "Gateway Timeout",
        }
    }

    /// A complete error response: the head with `Content-Type`,
    /// `Content-Length` and `Connection: close`, then `detail` and a newline
    /// as a plain-text body. For [`Status::Established`] use
    /// [`established_response`].
    pub fn response(self, detail: &str, extra: Headers) -> Vec<u8> {
        let body = format!("{detail}\n");
        let mut h = extra;
        push(&mut h, "Content-Type", "text/plain; charset=utf-8");
        push(&mut h, "Content-Length", &body.len().to_string());
        push(&mut h, "Connection", "close");
        let mut out = Vec::new();
        ResponseHead::new(self.code(), self.reason(), h).emit(&mut out);
        out.extend_from_slice(body.as_bytes());
        out
    }
}

/// The `200` response that opens a tunnel (no body; everything after it is
/// the target's data).
pub fn established_response() -> Vec<u8> {
    let mut h = Headers::new();
    push(&mut h, "Proxy-Agent", "tunnel443");
    let mut out = Vec::new();
    ResponseHead::new(200, Status::Established.reason(), h).emit(&mut out);
    out
}

impl ServerPolicy {
    /// Decides on a parsed request head: [`ServerPolicy::authenticate`],
    /// then [`ServerPolicy::authorise`].
    pub fn decide(&self, req: &RequestHead) -> Result<Accepted, Refusal> {
        let who = self.authenticate(req)?;
        self.authorise(req, who)
    }

    /// The checks before any policy on the target: method (405), target
    /// syntax and header sanity (400), then credentials (407). A client
    /// learns nothing about the port or address rules before it has
    /// authenticated.
    pub fn authenticate(&self, req: &RequestHead) -> Result<Authenticated, Refusal> {
        if !req.method().eq_ignore_ascii_case("CONNECT") {
            return Err(Refusal::MethodNotAllowed(crate::head::sanitize(
                req.method(),
                32,
            )));
        }
        if req.method() != "CONNECT" {
            // Methods are case-sensitive (RFC 9110 §9.1).
            return Err(Refusal::BadRequest("method must be upper-case CONNECT"));
        }
        let target = Authority::parse(req.target())
            .map_err(|_| Refusal::BadRequest("target is not host:port"))?;
        let auths: Vec<_> = req.headers().get_all("proxy-authorization").collect();
        if auths.len() > 1 {
            return Err(Refusal::BadRequest(
                "more than one Proxy-Authorization header",
            ));
        }
        let user = match &self.users {
            None => None,
            Some(users) => {
                let creds = auths
                    .first()
                    .and_then(|h| Credentials::from_header_value(h.value()).ok());
                match creds {
                    None => {
                        return Err(Refusal::AuthRequired {
                            attempted_user: None,
                        })
                    }
                    Some(c) => match users.verify(&c) {
                        Some(name) => Some(name.to_owned()),
                        None => {
                            return Err(Refusal::AuthRequired {
                                attempted_user: Some(crate::head::sanitize(c.user(), 64)),
                            })
                        }
                    },
                }
            }
        };
        Ok(Authenticated { target, user })
    }

    /// The policy on an authenticated request (403): port, IP literal or
    /// loopback name, SSTP. Resolved addresses are checked by the driver
    /// with [`NetPolicy::check`].
    pub fn authorise(&self, req: &RequestHead, who: Authenticated) -> Result<Accepted, Refusal> {
        let Authenticated { target, user } = who;
        if !self.ports.contains(target.port()) {
            return Err(Refusal::PortDenied(target.port()));
        }
        match target.host() {
            crate::Host::Ip(ip) => self.nets.check(*ip).map_err(Refusal::NetDenied)?,
            h if h.is_localhost_name() => {
                // Loopback by definition (RFC 6761 §6.3): refused unless
                // loopback is explicitly allowed.
                self.nets
                    .check(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
                    .map_err(|_| Refusal::LocalName(target.to_string()))?
            }
            crate::Host::Name(_) => {}
        }
        let sstp_version = req
            .headers()
            .get("sstpversion")
            .map(|h| crate::head::sanitize(&String::from_utf8_lossy(h.value()), 32));
        if self.refuse_sstp && sstp_version.is_some() {
            return Err(Refusal::SstpRefused);
        }
        Ok(Accepted {
            target,
            user,
            sstp_version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::head::Parsed;
    use crate::DEFAULT_MAX_HEAD;

    fn req(raw: &str) -> RequestHead {
        match RequestHead::parse(raw.as_bytes(), DEFAULT_MAX_HEAD).unwrap() {
            Parsed::Complete { head, .. } => head,
            Parsed::Partial => panic!("partial"),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ports() {
        let mut p = PortSet::default();
        assert!(p.contains(443) && p.contains(563) && !p.contains(22) && !p.contains(80));
        p.add_spec("8000-8010").unwrap();
        p.add_spec("22").unwrap();
        assert!(p.contains(8000) && p.contains(8010) && p.contains(22) && !p.contains(8011));
        for bad in ["", "0", "65536", "10-5", "a", "1-", "-1"] {
            assert!(p.add_spec(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn net_defaults() {
        let mut n = NetPolicy::default();
        n.add_own(ip("192.0.2.10"));
        for a in [
            "127.0.0.1",
            "127.9.9.9",
            "::1",
            "169.254.169.254",
            "fe80::1",
            "0.0.0.0",
            "::",
            "224.0.0.1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "192.0.2.10",
            "::ffff:192.0.2.10",
        ] {
            assert!(n.check(ip(a)).is_err(), "{a}");
        }
        for a in ["93.184.216.34", "10.1.2.3", "2001:db8::1", "192.0.2.11"] {
            assert_eq!(n.check(ip(a)), Ok(()), "{a}");
        }
        assert_eq!(
            n.check(ip("::ffff:127.0.0.1")),
            Err(NetDenial::Special(ip("127.0.0.1")))
        );
        assert_eq!(
            n.check(ip("192.0.2.10")),
            Err(NetDenial::Own(ip("192.0.2.10")))
        );
    }

    #[test]
    fn net_rules_most_specific_wins() {
        let mut n = NetPolicy::default();
        n.allow("127.0.0.0/8".parse().unwrap());
        n.deny("10.0.0.0/8".parse().unwrap());
        n.allow("10.1.0.0/16".parse().unwrap());
        n.deny("10.1.2.0/24".parse().unwrap());
        n.deny("::ffff:203.0.113.0/120".parse().unwrap());
        assert_eq!(n.check(ip("127.0.0.1")), Ok(()));
        assert_eq!(n.check(ip("::ffff:127.0.0.1")), Ok(()));
        assert_eq!(n.check(ip("::1")), Err(NetDenial::Special(ip("::1"))));
        assert_eq!(
            n.check(ip("10.9.9.9")),
            Err(NetDenial::DeniedNet(ip("10.9.9.9")))
        );
        assert_eq!(n.check(ip("10.1.9.9")), Ok(()));
        assert!(n.check(ip("10.1.2.3")).is_err());
        assert!(n.check(ip("203.0.113.7")).is_err());
        // Same prefix: deny wins.
        n.allow("198.51.100.0/24".parse().unwrap());
        n.deny("198.51.100.0/24".parse().unwrap());
        assert!(n.check(ip("198.51.100.1")).is_err());
        n.default_deny = true;
        assert_eq!(
            n.check(ip("8.8.8.8")),
            Err(NetDenial::NotAllowed(ip("8.8.8.8")))
        );
        assert_eq!(n.check(ip("10.1.9.9")), Ok(()));
    }

    fn policy_with_users() -> ServerPolicy {
        let mut users = BasicUsers::new();
        users.insert(&Credentials::new("alice", "s3cret").unwrap());
        ServerPolicy {
            users: Some(users),
            realm: "corp \"proxy\"".into(),
            ..ServerPolicy::default()
        }
    }

    #[test]
    fn accepts_sstp_connect() {
        let p = ServerPolicy::default();
        let a = p
            .decide(&req("CONNECT vpn.example.com:443 HTTP/1.1\r\nHost: vpn.example.com:443\r\nSSTPVERSION: 1.0\r\n\r\n"))
            .unwrap();
        assert_eq!(a.target.to_string(), "vpn.example.com:443");
        assert_eq!(a.user, None);
        assert_eq!(a.sstp_version.as_deref(), Some("1.0"));
        let p = ServerPolicy {
            refuse_sstp: true,
            ..ServerPolicy::default()
        };
        let r = p
            .decide(&req(
                "CONNECT vpn.example.com:443 HTTP/1.1\r\nSSTPVERSION: 1.0\r\n\r\n",
            ))
            .unwrap_err();
        assert_eq!(r, Refusal::SstpRefused);
        assert_eq!(r.status().code(), 403);
        assert!(p
            .decide(&req("CONNECT vpn.example.com:443 HTTP/1.0\n\n"))
            .is_ok());
    }

    #[test]
    fn refusals_and_their_responses() {
        let p = ServerPolicy::default();
        let cases = [
            ("GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n", 405),
            ("connect example.com:443 HTTP/1.1\r\n\r\n", 400),
            ("CONNECT /index.html HTTP/1.1\r\n\r\n", 400),
            ("CONNECT example.com HTTP/1.1\r\n\r\n", 400),
            ("CONNECT example.com:22 HTTP/1.1\r\n\r\n", 403),
            ("CONNECT 127.0.0.1:443 HTTP/1.1\r\n\r\n", 403),
            ("CONNECT [::1]:443 HTTP/1.1\r\n\r\n", 403),
            ("CONNECT localhost:443 HTTP/1.1\r\n\r\n", 403),
            ("CONNECT 169.254.169.254:443 HTTP/1.1\r\n\r\n", 403),
            ("CONNECT a:443 HTTP/1.1\r\nProxy-Authorization: Basic YTpi\r\nProxy-Authorization: Basic YTpi\r\n\r\n", 400),
        ];
        for (raw, code) in cases {
            let r = p.decide(&req(raw)).unwrap_err();
            assert_eq!(r.status().code(), code, "{raw:?}");
            let resp = r.response("x");
            let parsed = match crate::ResponseHead::parse(&resp, DEFAULT_MAX_HEAD).unwrap() {
                Parsed::Complete { head, len } => {
                    let cl: usize = head
                        .headers()
                        .get("content-length")
                        .unwrap()
                        .value_str()
                        .unwrap()
                        .parse()
                        .unwrap();
                    assert_eq!(cl, resp.len() - len);
                    head
                }
                Parsed::Partial => panic!(),
            };
            assert_eq!(parsed.status(), code);
            assert!(parsed.headers().has_token("connection", "close"));
        }
        let r = p.decide(&req("POST / HTTP/1.1\r\n\r\n")).unwrap_err();
        let text = String::from_utf8(r.response("x")).unwrap();
        assert!(text.contains("\r\nAllow: CONNECT\r\n"), "{text}");
        assert!(text.contains("CONNECT-only"));
    }

    #[test]
    fn basic_auth() {
        let p = policy_with_users();
        let r = p
            .decide(&req("CONNECT a.example:443 HTTP/1.1\r\n\r\n"))
            .unwrap_err();
        assert_eq!(
            r,
            Refusal::AuthRequired {
                attempted_user: None
            }
        );
        let text = String::from_utf8(r.response(&p.realm)).unwrap();
        assert!(text.starts_with("HTTP/1.1 407 Proxy Authentication Required\r\n"));
        assert!(
            text.contains("\r\nProxy-Authenticate: Basic realm=\"corp \\\"proxy\\\"\"\r\n"),
            "{text}"
        );
        let bad = Credentials::new("alice", "wrong").unwrap().header_value();
        let r = p
            .decide(&req(&format!(
                "CONNECT a.example:443 HTTP/1.1\r\nProxy-Authorization: {bad}\r\n\r\n"
            )))
            .unwrap_err();
        assert_eq!(
            r,
            Refusal::AuthRequired {
                attempted_user: Some("alice".into())
            }
        );
        let r = p
            .decide(&req(
                "CONNECT a.example:443 HTTP/1.1\r\nProxy-Authorization: Digest x\r\n\r\n",
            ))
            .unwrap_err();
        assert_eq!(r.status().code(), 407);
        let good = Credentials::new("alice", "s3cret").unwrap().header_value();
        let a = p
            .decide(&req(&format!(
                "CONNECT a.example:443 HTTP/1.1\r\nproxy-authorization: {good}\r\n\r\n"
            )))
            .unwrap();
        assert_eq!(a.user.as_deref(), Some("alice"));
        // Auth is checked before policy: no leak of the port policy.
        let r = p
            .decide(&req("CONNECT a.example:22 HTTP/1.1\r\n\r\n"))
            .unwrap_err();
        assert_eq!(r.status().code(), 407);
        let r = p
            .decide(&req(&format!(
                "CONNECT a.example:22 HTTP/1.1\r\nProxy-Authorization: {good}\r\n\r\n"
            )))
            .unwrap_err();
        assert_eq!(r, Refusal::PortDenied(22));
        // The two steps apart: the user is known when the policy refuses,
        // so the driver can log who was refused.
        let head = req(&format!(
            "CONNECT 127.0.0.1:443 HTTP/1.1\r\nProxy-Authorization: {good}\r\n\r\n"
        ));
        let who = p.authenticate(&head).unwrap();
        assert_eq!(who.user.as_deref(), Some("alice"));
        assert!(matches!(
            p.authorise(&head, who),
            Err(Refusal::NetDenied(NetDenial::Special(_)))
        ));
        let head = req("CONNECT 127.0.0.1:22 HTTP/1.1\r\n\r\n");
        assert_eq!(p.authenticate(&head).unwrap_err().status().code(), 407);
    }

    #[test]
    fn explicit_allow_opens_loopback() {
        let mut p = ServerPolicy::default();
        p.nets.allow("127.0.0.0/8".parse().unwrap());
        p.ports.add(8443, 8443);
        assert!(p
            .decide(&req("CONNECT 127.0.0.1:8443 HTTP/1.1\r\n\r\n"))
            .is_ok());
        assert!(p
            .decide(&req("CONNECT localhost:443 HTTP/1.1\r\n\r\n"))
            .is_ok());
        assert!(p
            .decide(&req("CONNECT [::1]:443 HTTP/1.1\r\n\r\n"))
            .is_err());
    }

    #[test]
    fn established() {
        let r = established_response();
        assert_eq!(
            r,
            b"HTTP/1.1 200 Connection established\r\nProxy-Agent: tunnel443\r\n\r\n"
        );
        let t = String::from_utf8(Status::Unavailable.response("busy", Headers::new())).unwrap();
        assert!(t.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
        assert!(t.ends_with("\r\n\r\nbusy\n"));
    }
}
