//! The HTTP exchange that opens an IP-HTTPS link (MS-IPHTTPS §3.1.5.2,
//! §3.2.5.1, §4.1).
//!
//! The client sends one `POST` to the configured URI with
//! `Content-Length: 18446744073709551615` (ULONGLONG_MAX, §3.1.5.2: "SHOULD
//! use content length encoding ... SHOULD be set to 18446744073709551615"),
//! the server answers `200 OK`, and from then on the request body and the
//! response body are the two directions of the IPv6 packet stream
//! ([`crate::frame`]). The §4.1 example:
//!
//! ```text
//! POST /IPTLS HTTP/1.1                        HTTP/1.1 200 OK
//! Content-Length: 18446744073709551615        Server: Microsoft-HTTPAPI/2.0
//! Host: <IP-address of IP-HTTPS server>       Date: Sun, 10 Aug 2008 03:51:52 GMT
//! ```
//!
//! Windows clients use the path `/IPHTTPS`; the spec's example says
//! `/IPTLS`. The server accepts both by default ([`ServerConfig`]).
//!
//! Heads are parsed by the shared `httphead` crate, with its limits and
//! its Content-Length / Transfer-Encoding policy; parsers return the head's
//! length, because whatever follows it belongs to the packet stream.
//! The 200 response carries no Content-Length, as in §4.1: its body ends
//! when the connection does.
//!
//! Our client may add one header of its own, `X-Tunnel443-Link-MTU`, to
//! announce a link MTU above 1280 ([`crate::mtu`]); other servers ignore
//! it (RFC 9110 §5.1), ours reads it into [`ClientRequest::link_mtu`] and
//! never refuses a request for it.

use std::fmt::Write as _;
use std::time::SystemTime;

/// The request body length the client announces: ULONGLONG_MAX.
pub const CONTENT_LENGTH: u64 = u64::MAX;

/// Paths the server accepts by default: the spec's example (§4.1) and what
/// Windows sends.
pub const DEFAULT_PATHS: [&str; 2] = ["/IPTLS", "/IPHTTPS"];

/// Default bound on a request or response head, in bytes (the shared one).
pub use httphead::DEFAULT_MAX_HEAD;

/// Most header fields accepted in one head (the shared limit).
pub use httphead::MAX_HEADERS;

/// The `Server` header of the §4.1 example, sent by default.
pub const DEFAULT_SERVER: &str = "Microsoft-HTTPAPI/2.0";

/// A head that could not be parsed (the shared head errors).
pub use httphead::HeadError;

use httphead::{framing, FramingError, Headers, RequestHead, ResponseHead};

/// Outcome of parsing a head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<T> {
    /// A complete head of `head_len` bytes; bytes after it are stream data.
    Complete {
        /// What the head said.
        value: T,
        /// Bytes the head (with any interim responses before it) took.
        head_len: usize,
    },
    /// Need more bytes.
    Partial,
}

/// Bytes as printable text for logs and errors: at most 64 characters,
/// control and non-ASCII bytes replaced.
fn sanitize(b: &[u8]) -> String {
    let mut s = httphead::sanitize(&String::from_utf8_lossy(b), 64);
    if b.len() > 64 {
        s.push('…');
    }
    s
}

fn is_visible(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x21..0x7f).contains(&b))
}

/// A path or host that cannot go into a head.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A path must start with `/` and hold visible ASCII only.
    #[error("invalid path {0:?}")]
    Path(String),
    /// A host must be visible ASCII without `/`.
    #[error("invalid host {0:?}")]
    Host(String),
    /// The server needs at least one path.
    #[error("no path configured")]
    NoPaths,
}

fn check_path(path: &str) -> Result<(), BuildError> {
    if path.starts_with('/') && is_visible(path) {
        Ok(())
    } else {
        Err(BuildError::Path(path.to_owned()))
    }
}

// ---------------------------------------------------------------- client

/// The client's request (§3.1.5.2, §4.1): `POST <path> HTTP/1.1`, `Host`,
/// and `Content-Length: 18446744073709551615`. `host` is the authority as
/// the URI gives it (`name`, `name:port`, `[v6]:port`). With `link_mtu`
/// above 1280, the request also announces it ([`crate::mtu`]: our
/// extension, ignored by other servers).
pub fn build_request(host: &str, path: &str, link_mtu: usize) -> Result<Vec<u8>, BuildError> {
    check_path(path)?;
    if !is_visible(host) || host.contains('/') {
        return Err(BuildError::Host(host.to_owned()));
    }
    let mut s = String::with_capacity(80 + host.len() + path.len());
    // Writing to a String cannot fail.
    let _ = write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {CONTENT_LENGTH}\r\n"
    );
    if let Some(line) = crate::mtu::header_line(link_mtu) {
        s.push_str(&line);
    }
    s.push_str("\r\n");
    Ok(s.into_bytes())
}

/// The server's successful answer, as the client parsed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerReply {
    /// 200.
    pub status: u16,
    /// Reason phrase (sanitized).
    pub reason: String,
    /// `Server` header, if any (sanitized), for logs.
    pub server: Option<String>,
    /// Interim (1xx) responses skipped before it.
    pub interim: usize,
}

/// Why the server's answer does not open the link.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// Not a parsable HTTP/1.x response head.
    #[error(transparent)]
    Head(#[from] HeadError),
    /// A status other than 200.
    #[error("server answered {status} {reason}")]
    Status {
        /// Status code.
        status: u16,
        /// Reason phrase (sanitized).
        reason: String,
    },
    /// A chunked body cannot carry the raw packet stream.
    #[error("server answered with Transfer-Encoding {0:?}")]
    TransferEncoding(String),
}

/// Parses the server's response to [`build_request`]. Interim 1xx
/// responses (other than 101) are skipped; 200 opens the link; anything else
/// is [`ResponseError::Status`]. The whole head, interim responses included,
/// must fit in `max_head` bytes.
pub fn parse_response(buf: &[u8], max_head: usize) -> Result<Parsed<ServerReply>, ResponseError> {
    let mut offset = 0;
    let mut interim = 0;
    loop {
        let rest = &buf[offset.min(buf.len())..];
        let (resp, n) = match ResponseHead::parse(rest, max_head - offset) {
            Ok(httphead::Parsed::Complete { head, len }) => (head, len),
            Ok(httphead::Parsed::Partial) => return Ok(Parsed::Partial),
            Err(HeadError::TooLarge { .. }) => {
                return Err(HeadError::TooLarge { limit: max_head }.into())
            }
            Err(e) => return Err(e.into()),
        };
        let status = resp.status();
        let reason = sanitize(resp.reason().as_bytes());
        if (100..200).contains(&status) && status != 101 {
            offset += n;
            interim += 1;
            continue;
        }
        if status != 200 {
            return Err(ResponseError::Status { status, reason });
        }
        if let Some(te) = framing::transfer_encoding(resp.headers()) {
            return Err(ResponseError::TransferEncoding(te));
        }
        return Ok(Parsed::Complete {
            value: ServerReply {
                status,
                reason,
                server: resp.headers().get("server").map(|h| sanitize(h.value())),
                interim,
            },
            head_len: offset + n,
        });
    }
}

// ---------------------------------------------------------------- server

/// What the server accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    paths: Vec<String>,
    max_head: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            paths: DEFAULT_PATHS.iter().map(|p| (*p).to_owned()).collect(),
            max_head: DEFAULT_MAX_HEAD,
        }
    }
}

impl ServerConfig {
    /// Accepts these paths (each must start with `/`; matched exactly,
    /// ASCII case-insensitively, as HTTP.sys does).
    pub fn new<I, S>(paths: I) -> Result<Self, BuildError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let paths: Vec<String> = paths.into_iter().map(Into::into).collect();
        if paths.is_empty() {
            return Err(BuildError::NoPaths);
        }
        for p in &paths {
            check_path(p)?;
        }
        Ok(ServerConfig {
            paths,
            max_head: DEFAULT_MAX_HEAD,
        })
    }

    /// Sets the bound on the request head.
    pub fn with_max_head(mut self, max_head: usize) -> Self {
        self.max_head = max_head;
        self
    }

    /// The accepted paths.
    pub fn paths(&self) -> &[String] {
        &self.paths
    }

    /// The bound on the request head.
    pub fn max_head(&self) -> usize {
        self.max_head
    }

    /// Whether `path` is one of ours.
    pub fn accepts_path(&self, path: &str) -> bool {
        self.paths.iter().any(|p| p.eq_ignore_ascii_case(path))
    }

    /// Dispatch test for a listener shared with SSTP: a `POST` to one of
    /// our paths is IP-HTTPS (whatever its other headers say).
    pub fn is_iphttps(&self, method: &str, path: &str) -> bool {
        method == "POST" && self.accepts_path(path)
    }
}

/// An accepted IP-HTTPS request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRequest {
    /// The path, as sent.
    pub path: String,
    /// `Host` header (sanitized), if any.
    pub host: Option<String>,
    /// HTTP minor version (0 or 1).
    pub minor_version: u8,
    /// The link MTU the client announced ([`crate::mtu`]).
    pub link_mtu: crate::mtu::Offer,
}

/// What is wrong with a Content-Length.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContentLengthProblem {
    /// No Content-Length.
    Missing,
    /// Not a decimal number (sanitized value).
    Invalid(String),
    /// A number other than 18446744073709551615.
    NotMax(u64),
    /// Several Content-Length fields that disagree.
    Conflicting,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// Not a parsable HTTP/1.x request head.
    #[error(transparent)]
    Head(#[from] HeadError),
    /// A method other than POST.
    #[error("method {0:?} is not POST")]
    Method(String),
    /// A path not configured.
    #[error("path {0:?} is not an IP-HTTPS URI")]
    Path(String),
    /// The content length is not ULONGLONG_MAX.
    #[error("content length: {0:?}")]
    ContentLength(ContentLengthProblem),
    /// Transfer-Encoding (chunked) cannot carry the packet stream.
    #[error("Transfer-Encoding {0:?} is not supported")]
    TransferEncoding(String),
}

impl RequestError {
    /// The status to refuse the request with.
    pub fn status(&self) -> u16 {
        match self {
            RequestError::Head(h) if h.is_too_large() => 431,
            RequestError::Head(_) => 400,
            RequestError::Method(_) => 405,
            RequestError::Path(_) => 404,
            RequestError::ContentLength(ContentLengthProblem::Missing) => 411,
            RequestError::ContentLength(_) => 400,
            RequestError::TransferEncoding(_) => 501,
        }
    }

    /// The refusal to send before closing the connection.
    pub fn response(&self) -> Vec<u8> {
        build_refusal(self.status())
    }
}

/// Checks a parsed request head: POST, a configured path, Content-Length
/// 18446744073709551615 (several fields only if they agree: the shared
/// framing policy), no Transfer-Encoding.
pub fn check_request(
    config: &ServerConfig,
    head: &RequestHead,
) -> Result<ClientRequest, RequestError> {
    let (method, path) = (head.method(), head.target());
    if method != "POST" {
        return Err(RequestError::Method(sanitize(method.as_bytes())));
    }
    if !config.accepts_path(path) {
        return Err(RequestError::Path(sanitize(path.as_bytes())));
    }
    let headers: &Headers = head.headers();
    if let Some(te) = framing::transfer_encoding(headers) {
        return Err(RequestError::TransferEncoding(te));
    }
    let length = match framing::body(headers) {
        Ok(framing::Body::Length(v)) => v,
        Ok(_) => return Err(RequestError::ContentLength(ContentLengthProblem::Missing)),
        Err(FramingError::ConflictingLength) => {
            return Err(RequestError::ContentLength(
                ContentLengthProblem::Conflicting,
            ))
        }
        Err(FramingError::InvalidLength(v)) => {
            return Err(RequestError::ContentLength(ContentLengthProblem::Invalid(
                v,
            )))
        }
        // Transfer-Encoding was refused above.
        Err(e) => return Err(RequestError::TransferEncoding(e.to_string())),
    };
    if length != CONTENT_LENGTH {
        return Err(RequestError::ContentLength(ContentLengthProblem::NotMax(
            length,
        )));
    }
    Ok(ClientRequest {
        path: path.to_owned(),
        host: headers.get("host").map(|h| sanitize(h.value())),
        minor_version: match head.version() {
            httphead::Version::Http10 => 0,
            httphead::Version::Http11 => 1,
        },
        link_mtu: crate::mtu::offer(headers),
    })
}

/// Parses and checks a request head (see [`check_request`]), bounded by the
/// configuration's head limit.
pub fn parse_request(
    buf: &[u8],
    config: &ServerConfig,
) -> Result<Parsed<ClientRequest>, RequestError> {
    match RequestHead::parse(buf, config.max_head)? {
        httphead::Parsed::Partial => Ok(Parsed::Partial),
        httphead::Parsed::Complete { head, len } => Ok(Parsed::Complete {
            value: check_request(config, &head)?,
            head_len: len,
        }),
    }
}

/// The server's 200 response (§3.2.5.1, §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response200<'a> {
    /// `Server` header; [`DEFAULT_SERVER`] by default.
    pub server: Option<&'a str>,
    /// `Date` header: the current time, passed in.
    pub date: Option<SystemTime>,
    /// Also send `Content-Length: 18446744073709551615` (not in §4.1; for
    /// intermediaries that insist on a length).
    pub content_length: bool,
}

impl Default for Response200<'_> {
    fn default() -> Self {
        Response200 {
            server: Some(DEFAULT_SERVER),
            date: None,
            content_length: false,
        }
    }
}

impl Response200<'_> {
    /// The response head. A `server` value with control characters is
    /// left out rather than risk header injection.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = String::from("HTTP/1.1 200 OK\r\n");
        if let Some(server) = self.server {
            if server.bytes().all(|b| (0x20..0x7f).contains(&b)) && !server.trim().is_empty() {
                let _ = write!(s, "Server: {}\r\n", server.trim());
            }
        }
        if let Some(t) = self.date {
            let _ = write!(s, "Date: {}\r\n", http_date(t));
        }
        if self.content_length {
            let _ = write!(s, "Content-Length: {CONTENT_LENGTH}\r\n");
        }
        s.push_str("\r\n");
        s.into_bytes()
    }
}

/// The §4.1 response with the `Server` header and `date`.
pub fn build_response(date: Option<SystemTime>) -> Vec<u8> {
    Response200 {
        date,
        ..Response200::default()
    }
    .to_bytes()
}

/// A refusal with `status`, no body, `Connection: close`.
pub fn build_refusal(status: u16) -> Vec<u8> {
    let reason = match status {
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        421 => "Misdirected Request",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let mut s = String::new();
    let _ = write!(s, "HTTP/1.1 {status} {reason}\r\n");
    if status == 405 {
        s.push_str("Allow: POST\r\n");
    }
    s.push_str("Content-Length: 0\r\nConnection: close\r\n\r\n");
    s.into_bytes()
}

/// An IMF-fixdate (RFC 9110 §5.6.7), from the shared `httphead` crate.
pub use httphead::date::http_date;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn complete<T: std::fmt::Debug>(p: Parsed<T>) -> (T, usize) {
        match p {
            Parsed::Complete { value, head_len } => (value, head_len),
            Parsed::Partial => panic!("expected a complete head"),
        }
    }

    #[test]
    fn client_request_bytes() {
        let r = build_request("gw.example.com", "/IPHTTPS", 1280).unwrap();
        assert_eq!(
            r,
            b"POST /IPHTTPS HTTP/1.1\r\nHost: gw.example.com\r\nContent-Length: 18446744073709551615\r\n\r\n"
        );
        assert!(build_request("[2001:db8::1]:8443", "/IPTLS", 1280).is_ok());
        for bad in ["IPHTTPS", "/a b", "/a\r\nX: y", ""] {
            assert_eq!(
                build_request("h", bad, 1280),
                Err(BuildError::Path(bad.to_owned()))
            );
        }
        for bad in ["", "a b", "h\r\nX: y", "h/x"] {
            assert_eq!(
                build_request(bad, "/IPHTTPS", 1280),
                Err(BuildError::Host(bad.to_owned()))
            );
        }
    }

    #[test]
    fn our_request_is_accepted_by_our_server() {
        let cfg = ServerConfig::default();
        let mut buf = build_request("gw", "/IPHTTPS", 1280).unwrap();
        let head = buf.len();
        buf.extend_from_slice(&[0x60, 0, 0, 0]);
        let (req, len) = complete(parse_request(&buf, &cfg).unwrap());
        assert_eq!(len, head);
        assert_eq!(&buf[len..], &[0x60, 0, 0, 0]);
        assert_eq!(req.path, "/IPHTTPS");
        assert_eq!(req.host.as_deref(), Some("gw"));
        assert_eq!(req.minor_version, 1);
        assert_eq!(req.link_mtu, crate::mtu::Offer::Absent);
    }

    #[test]
    fn our_link_mtu_announcement_reaches_our_server() {
        let cfg = ServerConfig::default();
        let buf = build_request("gw", "/IPHTTPS", 4000).unwrap();
        assert_eq!(
            buf,
            b"POST /IPHTTPS HTTP/1.1\r\nHost: gw\r\nContent-Length: 18446744073709551615\r\nX-Tunnel443-Link-MTU: 4000\r\n\r\n"
        );
        let (req, len) = complete(parse_request(&buf, &cfg).unwrap());
        assert_eq!(len, buf.len());
        assert_eq!(req.link_mtu, crate::mtu::Offer::Mtu(4000));
        // Garbage in the header does not refuse the request: the session
        // gets 1280.
        let buf = b"POST /IPHTTPS HTTP/1.1\r\nX-Tunnel443-Link-MTU: lots\r\nContent-Length: 18446744073709551615\r\n\r\n";
        let (req, _) = complete(parse_request(buf, &cfg).unwrap());
        assert_eq!(req.link_mtu, crate::mtu::Offer::Invalid("lots".into()));
        assert_eq!(crate::mtu::negotiate(&req.link_mtu, 4000).mtu(), 1280);
    }

    #[test]
    fn spec_example_request_and_variants() {
        let cfg = ServerConfig::default();
        // §4.1, Content-Length before Host.
        let buf = b"POST /IPTLS HTTP/1.1\r\nContent-Length: 18446744073709551615\r\nHost: 192.0.2.1\r\n\r\n";
        let (req, len) = complete(parse_request(buf, &cfg).unwrap());
        assert_eq!((req.path.as_str(), len), ("/IPTLS", buf.len()));
        // Case-insensitive path, HTTP/1.0, no Host.
        let buf = b"POST /iphttps HTTP/1.0\r\ncontent-length:18446744073709551615\r\n\r\n";
        let (req, _) = complete(parse_request(buf, &cfg).unwrap());
        assert_eq!((req.minor_version, req.host), (0, None));
        // Repeated but equal Content-Length is fine.
        let buf = b"POST /IPTLS HTTP/1.1\r\nContent-Length: 18446744073709551615\r\nContent-Length: 18446744073709551615\r\n\r\n";
        assert!(parse_request(buf, &cfg).is_ok());
    }

    #[test]
    fn partial_heads_need_more_at_every_split() {
        let cfg = ServerConfig::default();
        let buf = build_request("gw", "/IPTLS", 1280).unwrap();
        for cut in 0..buf.len() {
            assert_eq!(
                parse_request(&buf[..cut], &cfg),
                Ok(Parsed::Partial),
                "{cut}"
            );
        }
        let resp = build_response(None);
        for cut in 0..resp.len() {
            assert_eq!(
                parse_response(&resp[..cut], DEFAULT_MAX_HEAD),
                Ok(Parsed::Partial)
            );
        }
    }

    #[test]
    fn request_refusals_and_their_statuses() {
        let cfg = ServerConfig::default();
        let cases: [(&[u8], RequestError, u16); 9] = [
            (
                b"GET /IPHTTPS HTTP/1.1\r\n\r\n",
                RequestError::Method("GET".into()),
                405,
            ),
            (
                b"SSTP_DUPLEX_POST /sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/ HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n",
                RequestError::Method("SSTP_DUPLEX_POST".into()),
                405,
            ),
            (
                b"POST /other HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n",
                RequestError::Path("/other".into()),
                404,
            ),
            (
                b"POST /IPHTTPS HTTP/1.1\r\nHost: x\r\n\r\n",
                RequestError::ContentLength(ContentLengthProblem::Missing),
                411,
            ),
            (
                b"POST /IPHTTPS HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
                RequestError::ContentLength(ContentLengthProblem::NotMax(0)),
                400,
            ),
            (
                b"POST /IPHTTPS HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n",
                RequestError::ContentLength(ContentLengthProblem::Invalid(
                    "18446744073709551616".into(),
                )),
                400,
            ),
            (
                b"POST /IPHTTPS HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
                RequestError::ContentLength(ContentLengthProblem::Invalid("+5".into())),
                400,
            ),
            (
                b"POST /IPHTTPS HTTP/1.1\r\nContent-Length: 18446744073709551615\r\nContent-Length: 5\r\n\r\n",
                RequestError::ContentLength(ContentLengthProblem::Conflicting),
                400,
            ),
            (
                b"POST /IPHTTPS HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 18446744073709551615\r\n\r\n",
                RequestError::TransferEncoding("chunked".into()),
                501,
            ),
        ];
        for (buf, err, status) in cases {
            let got = parse_request(buf, &cfg).unwrap_err();
            assert_eq!(got, err, "{}", String::from_utf8_lossy(buf));
            assert_eq!(got.status(), status);
            let refusal = got.response();
            assert!(refusal.starts_with(format!("HTTP/1.1 {status} ").as_bytes()));
        }
        assert!(matches!(
            parse_request(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", &cfg),
            Err(RequestError::Head(HeadError::Malformed { .. }))
        ));
    }

    #[test]
    fn request_head_is_bounded() {
        let cfg = ServerConfig::default().with_max_head(64);
        let mut buf = b"POST /IPHTTPS HTTP/1.1\r\nX-Pad: ".to_vec();
        buf.resize(64, b'a');
        let e = parse_request(&buf, &cfg).unwrap_err();
        assert_eq!(e, RequestError::Head(HeadError::TooLarge { limit: 64 }));
        assert_eq!(e.status(), 431);
        assert_eq!(parse_request(&buf[..63], &cfg), Ok(Parsed::Partial));
        // A complete head that ends beyond the limit is refused too.
        let ok = build_request("gw", "/IPHTTPS", 1280).unwrap();
        let cfg = ServerConfig::default().with_max_head(ok.len() - 1);
        assert!(parse_request(&ok, &cfg).is_err());
        // One line over the shared line limit: 431 too.
        let long = format!(
            "POST /IPHTTPS HTTP/1.1\r\nX-Pad: {}\r\n\r\n",
            "a".repeat(httphead::MAX_LINE)
        );
        let e = parse_request(long.as_bytes(), &ServerConfig::default()).unwrap_err();
        assert_eq!(e.status(), 431, "{e}");
        let mut many = b"POST /IPHTTPS HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(
            parse_request(&many, &ServerConfig::default()),
            Err(RequestError::Head(HeadError::TooManyHeaders {
                limit: MAX_HEADERS
            }))
        );
    }

    #[test]
    fn server_config_paths() {
        let cfg = ServerConfig::new(["/tunnel"]).unwrap();
        assert!(cfg.is_iphttps("POST", "/TUNNEL"));
        assert!(!cfg.is_iphttps("POST", "/IPHTTPS"));
        assert!(!cfg.is_iphttps("post", "/tunnel"));
        assert_eq!(
            ServerConfig::new(Vec::<String>::new()),
            Err(BuildError::NoPaths)
        );
        assert_eq!(
            ServerConfig::new(["tunnel"]),
            Err(BuildError::Path("tunnel".into()))
        );
        let d = ServerConfig::default();
        assert_eq!(d.paths(), ["/IPTLS", "/IPHTTPS"]);
        assert_eq!(d.max_head(), DEFAULT_MAX_HEAD);
        assert!(d.is_iphttps("POST", "/IPTLS") && d.is_iphttps("POST", "/IPHTTPS"));
    }

    #[test]
    fn spec_example_response() {
        let t = UNIX_EPOCH + Duration::from_secs(1_218_340_312);
        let r = build_response(Some(t));
        assert_eq!(
            r,
            b"HTTP/1.1 200 OK\r\nServer: Microsoft-HTTPAPI/2.0\r\nDate: Sun, 10 Aug 2008 03:51:52 GMT\r\n\r\n"
        );
        let mut buf = r.clone();
        buf.extend_from_slice(&[0x60, 1, 2]);
        let (reply, len) = complete(parse_response(&buf, DEFAULT_MAX_HEAD).unwrap());
        assert_eq!(len, r.len());
        assert_eq!(reply.server.as_deref(), Some("Microsoft-HTTPAPI/2.0"));
        assert_eq!(
            (reply.status, reply.reason.as_str(), reply.interim),
            (200, "OK", 0)
        );

        let bare = Response200 {
            server: None,
            date: None,
            content_length: true,
        }
        .to_bytes();
        assert_eq!(
            bare,
            b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n"
        );
        let injected = Response200 {
            server: Some("x\r\nSet-Cookie: a"),
            ..Response200::default()
        }
        .to_bytes();
        assert_eq!(injected, b"HTTP/1.1 200 OK\r\n\r\n");
    }

    #[test]
    fn response_variants() {
        // SoftEther/sstp style, interim 100 first, LF line ends.
        let buf = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\nContent-Length: 18446744073709551615\n\n\x60";
        let (reply, len) = complete(parse_response(buf, DEFAULT_MAX_HEAD).unwrap());
        assert_eq!(reply.interim, 1);
        assert_eq!(&buf[len..], b"\x60");
        assert_eq!(
            parse_response(b"HTTP/1.1 403 Forbidden\r\n\r\n", 1024),
            Err(ResponseError::Status {
                status: 403,
                reason: "Forbidden".into()
            })
        );
        assert_eq!(
            parse_response(b"HTTP/1.1 101 Switching Protocols\r\n\r\n", 1024),
            Err(ResponseError::Status {
                status: 101,
                reason: "Switching Protocols".into()
            })
        );
        assert_eq!(
            parse_response(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                1024
            ),
            Err(ResponseError::TransferEncoding("chunked".into()))
        );
        assert!(matches!(
            parse_response(b"SSH-2.0-OpenSSH\r\n\r\n", 1024),
            Err(ResponseError::Head(_))
        ));
        let long = [b"HTTP/1.1 200 OK\r\nX: ".as_slice(), &[b'a'; 100]].concat();
        assert_eq!(
            parse_response(&long, 64),
            Err(ResponseError::Head(HeadError::TooLarge { limit: 64 }))
        );
        // Interim responses count against the limit.
        let mut many = Vec::new();
        for _ in 0..10 {
            many.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        assert_eq!(
            parse_response(&many, 100),
            Err(ResponseError::Head(HeadError::TooLarge { limit: 100 }))
        );
    }

    #[test]
    fn refusal_heads() {
        assert_eq!(
            build_refusal(405),
            b"HTTP/1.1 405 Method Not Allowed\r\nAllow: POST\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        assert_eq!(
            build_refusal(404),
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        assert!(build_refusal(599).starts_with(b"HTTP/1.1 599 Error\r\n"));
    }

    #[test]
    fn sanitize_bounds_and_cleans() {
        assert_eq!(sanitize(b"a\r\nb\xff"), "a??b?");
        let s = sanitize(&[b'x'; 100]);
        assert_eq!(s.chars().count(), 65);
    }
}
