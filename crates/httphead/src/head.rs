//! HTTP/1.x message heads (RFC 9112 §2-§5): bounded parsing with
//! `httparse`, and emission.
//!
//! A head is a request or status line, zero or more header lines, then an
//! empty line, where every line ends in CR LF *or a single LF* (RFC 9112
//! §2.2, and Luotonen's CONNECT draft), and the version is HTTP/1.0 or
//! HTTP/1.1. Everything after the empty line belongs to the body or the
//! tunnel, so the parsers report how many bytes the head used.
//!
//! One set of limits for every user of the crate (SSTP, IP-HTTPS, CONNECT,
//! the web passthrough): a head of at most the caller's `max` bytes
//! ([`DEFAULT_MAX_HEAD`] unless the caller has a reason), at most
//! [`MAX_HEADERS`] fields and lines of at most [`MAX_LINE`] bytes. A head
//! over a limit is an error as soon as the limit is reached, so a peer
//! cannot make us buffer without bound. What the body framing headers may
//! say is [`crate::framing`]'s business.

use std::fmt;

/// Default upper bound on the size of a message head, in bytes.
pub const DEFAULT_MAX_HEAD: usize = 16 * 1024;

/// Maximum number of header fields accepted in one head.
pub const MAX_HEADERS: usize = 64;

/// Maximum length of one line of a head (request or status line, or one
/// header field), line end included.
pub const MAX_LINE: usize = 8 * 1024;

/// HTTP version of a parsed or emitted head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// `HTTP/1.0`
    Http10,
    /// `HTTP/1.1`
    Http11,
}

impl Version {
    fn from_minor(minor: u8) -> Self {
        if minor == 0 {
            Version::Http10
        } else {
            Version::Http11
        }
    }

    /// The protocol string, e.g. `HTTP/1.1`.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// Why a head could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeadError {
    /// The head did not end within `limit` bytes.
    #[error("message head exceeds {limit} bytes")]
    TooLarge {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// More than [`MAX_HEADERS`] header fields.
    #[error("more than {limit} header fields")]
    TooManyHeaders {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// A line longer than [`MAX_LINE`].
    #[error("a line of the message head exceeds {limit} bytes")]
    LineTooLong {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// The bytes are not an HTTP/1.0 or HTTP/1.1 head.
    #[error("malformed message head: {what}")]
    Malformed {
        /// What was wrong, as reported by the tokenizer.
        what: &'static str,
    },
}

impl HeadError {
    /// Whether a size limit was broken (head, field count or line): HTTP
    /// answers these with 431 rather than 400 (RFC 6585 §5).
    pub fn is_too_large(&self) -> bool {
        matches!(
            self,
            HeadError::TooLarge { .. }
                | HeadError::TooManyHeaders { .. }
                | HeadError::LineTooLong { .. }
        )
    }
}

impl From<httparse::Error> for HeadError {
    fn from(e: httparse::Error) -> Self {
        match e {
            httparse::Error::TooManyHeaders => HeadError::TooManyHeaders { limit: MAX_HEADERS },
            httparse::Error::HeaderName => HeadError::Malformed {
                what: "invalid header name",
            },
            httparse::Error::HeaderValue => HeadError::Malformed {
                what: "invalid header value",
            },
            httparse::Error::NewLine => HeadError::Malformed {
                what: "invalid line ending",
            },
            httparse::Error::Status => HeadError::Malformed {
                what: "invalid status code",
            },
            httparse::Error::Token => HeadError::Malformed {
                what: "invalid token",
            },
            httparse::Error::Version => HeadError::Malformed {
                what: "invalid or unsupported HTTP version",
            },
        }
    }
}

/// Why a header could not be built for emission.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// A request method that is not an RFC 9110 token.
    #[error("invalid method \"{}\"", sanitize(.0, 64))]
    Method(String),
    /// A request target that is empty or not visible ASCII.
    #[error("invalid request target \"{}\"", sanitize(.0, 64))]
    Target(String),
    /// The name is empty or not an RFC 9110 token.
    #[error("invalid header name \"{}\"", sanitize(.0, 64))]
    Name(String),
    /// The value contains CR, LF, NUL or another control character.
    #[error("invalid value for header {}", sanitize(.0, 64))]
    Value(String),
}

/// Is `b` an RFC 9110 `tchar`?
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// One header field. Built with [`Header::new`] (validated) or by parsing.
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    name: String,
    value: Vec<u8>,
}

impl Header {
    /// Builds a header for emission. The name must be a token; the value may
    /// hold visible ASCII, spaces, tabs and obs-text, but no control bytes
    /// (so no CR/LF injection), and is trimmed of surrounding whitespace.
    pub fn new(name: &str, value: &str) -> Result<Self, HeaderError> {
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(HeaderError::Name(name.to_owned()));
        }
        let value = value.trim_matches([' ', '\t']);
        if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(HeaderError::Value(name.to_owned()));
        }
        Ok(Header {
            name: name.to_owned(),
            value: value.as_bytes().to_vec(),
        })
    }

    /// The field name as received or built.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The raw field value.
    pub fn value(&self) -> &[u8] {
        &self.value
    }

    /// The value as text, if it is UTF-8.
    pub fn value_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.value).ok()
    }

    fn buffer_len(&self) -> usize {
        self.name.len() + 2 + self.value.len() + 2
    }

    fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(&self.value);
        out.extend_from_slice(b"\r\n");
    }
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print credentials, even in debug logs.
        let sensitive = self.name.eq_ignore_ascii_case("proxy-authorization")
            || self.name.eq_ignore_ascii_case("authorization");
        if sensitive {
            write!(f, "{}: <redacted>", self.name)
        } else {
            write!(
                f,
                "{}: {:?}",
                self.name,
                String::from_utf8_lossy(&self.value)
            )
        }
    }
}

/// An ordered list of header fields with case-insensitive look-up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers(Vec<Header>);

impl Headers {
    /// An empty list.
    pub fn new() -> Self {
        Headers(Vec::new())
    }

    /// Appends a field.
    pub fn push(&mut self, h: Header) {
        self.0.push(h);
    }

    /// All fields in order.
    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.0.iter()
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no fields.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every field named `name` (case-insensitive).
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Header> + 'a {
        self.0
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
    }

    /// The first field named `name`.
    pub fn get(&self, name: &str) -> Option<&Header> {
        self.0.iter().find(|h| h.name.eq_ignore_ascii_case(name))
    }

    /// True if a field named `name` exists.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// True if some comma-separated element of any `name` field equals
    /// `token` (case-insensitive), as in `Connection: keep-alive, Upgrade`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.get_all(name).any(|h| {
            h.value
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
        })
    }

    fn from_parsed(parsed: &[httparse::Header<'_>]) -> Self {
        Headers(
            parsed
                .iter()
                .map(|h| Header {
                    name: h.name.to_owned(),
                    value: h.value.trim_ascii().to_vec(),
                })
                .collect(),
        )
    }
}

/// Result of feeding bytes to a head parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<T> {
    /// The head is complete and used the first `len` bytes of the input;
    /// the rest of the input is not part of it.
    Complete {
        /// The parsed head.
        head: T,
        /// Bytes used by the head, including its final empty line.
        len: usize,
    },
    /// More bytes are needed.
    Partial,
}

/// A request head (`METHOD target HTTP/1.x` and its header fields).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    method: String,
    target: String,
    version: Version,
    headers: Headers,
}

impl RequestHead {
    /// Builds an `HTTP/1.1` request head. The method must be a token and
    /// the target visible ASCII, so neither can inject anything.
    pub fn new(method: &str, target: &str, headers: Headers) -> Result<Self, HeaderError> {
        if method.is_empty() || !method.bytes().all(is_tchar) {
            return Err(HeaderError::Method(method.to_owned()));
        }
        if target.is_empty() || !target.bytes().all(|b| (0x21..0x7f).contains(&b)) {
            return Err(HeaderError::Target(target.to_owned()));
        }
        Ok(RequestHead {
            method: method.to_owned(),
            target: target.to_owned(),
            version: Version::Http11,
            headers,
        })
    }

    /// Parses a request head from the start of `buf`, refusing heads longer
    /// than `max` bytes (and the crate's header count and line limits).
    pub fn parse(buf: &[u8], max: usize) -> Result<Parsed<Self>, HeadError> {
        let window = &buf[..buf.len().min(max)];
        let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut storage);
        let status = req.parse(window);
        check_lines(window, &status)?;
        match status? {
            httparse::Status::Complete(len) => Ok(Parsed::Complete {
                head: RequestHead {
                    method: req.method.unwrap_or_default().to_owned(),
                    target: req.path.unwrap_or_default().to_owned(),
                    version: Version::from_minor(req.version.unwrap_or(1)),
                    headers: Headers::from_parsed(req.headers),
                },
                len,
            }),
            httparse::Status::Partial if buf.len() >= max => {
                Err(HeadError::TooLarge { limit: max })
            }
            httparse::Status::Partial => Ok(Parsed::Partial),
        }
    }

    /// The method token, e.g. `CONNECT`.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The request target as sent, e.g. `example.com:443`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The protocol version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The header fields.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// Bytes [`emit`](Self::emit) will append.
    pub fn buffer_len(&self) -> usize {
        self.method.len()
            + 1
            + self.target.len()
            + 1
            + 8
            + 2
            + self.headers.iter().map(Header::buffer_len).sum::<usize>()
            + 2
    }

    /// Appends the head, CRLF-terminated, to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.reserve(self.buffer_len());
        out.extend_from_slice(self.method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.target.as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.version.as_str().as_bytes());
        out.extend_from_slice(b"\r\n");
        for h in self.headers.iter() {
            h.emit(out);
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// A response head (`HTTP/1.x status reason` and its header fields).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    version: Version,
    status: u16,
    reason: String,
    headers: Headers,
}

impl ResponseHead {
    /// Builds a response head. `reason` must be printable ASCII (it is one of
    /// our own constants); anything else is replaced.
    pub fn new(status: u16, reason: &str, headers: Headers) -> Self {
        let reason = if reason.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            reason.to_owned()
        } else {
            "Unknown".to_owned()
        };
        ResponseHead {
            version: Version::Http11,
            status: status.clamp(100, 999),
            reason,
            headers,
        }
    }

    /// Parses a response head from the start of `buf`, refusing heads longer
    /// than `max` bytes. Any reason phrase of visible characters, spaces
    /// and obs-text is accepted, or none; a reason with obs-text reads as
    /// empty. Invalid header lines are skipped.
    pub fn parse(buf: &[u8], max: usize) -> Result<Parsed<Self>, HeadError> {
        let window = &buf[..buf.len().min(max)];
        let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut storage);
        // Be liberal in what proxies send: extra spaces in the status line,
        // folded header lines and broken header lines do not matter for
        // CONNECT, where only the status code and a few headers are used.
        let status = httparse::ParserConfig::default()
            .allow_multiple_spaces_in_response_status_delimiters(true)
            .allow_obsolete_multiline_headers_in_responses(true)
            .ignore_invalid_headers_in_responses(true)
            .parse_response(&mut resp, window);
        check_lines(window, &status)?;
        match status? {
            httparse::Status::Complete(_) if resp.code.unwrap_or_default() < 100 => {
                Err(HeadError::Malformed {
                    what: "invalid status code",
                })
            }
            httparse::Status::Complete(len) => Ok(Parsed::Complete {
                head: ResponseHead {
                    version: Version::from_minor(resp.version.unwrap_or(1)),
                    status: resp.code.unwrap_or_default(),
                    reason: resp.reason.unwrap_or_default().to_owned(),
                    headers: Headers::from_parsed(resp.headers),
                },
                len,
            }),
            httparse::Status::Partial if buf.len() >= max => {
                Err(HeadError::TooLarge { limit: max })
            }
            httparse::Status::Partial => Ok(Parsed::Partial),
        }
    }

    /// The protocol version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The three-digit status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The reason phrase as received (may be empty).
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The header fields.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// Bytes [`emit`](Self::emit) will append.
    pub fn buffer_len(&self) -> usize {
        8 + 1
            + 3
            + 1
            + self.reason.len()
            + 2
            + self.headers.iter().map(Header::buffer_len).sum::<usize>()
            + 2
    }

    /// Appends the head, CRLF-terminated, to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.reserve(self.buffer_len());
        out.extend_from_slice(self.version.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(format!("{:03}", self.status).as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.reason.as_bytes());
        out.extend_from_slice(b"\r\n");
        for h in self.headers.iter() {
            h.emit(out);
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// Enforces [`MAX_LINE`] on the part of `window` the tokenizer looked at:
/// the whole head when it is complete, else everything received.
fn check_lines(
    window: &[u8],
    status: &Result<httparse::Status<usize>, httparse::Error>,
) -> Result<(), HeadError> {
    let seen = match status {
        Ok(httparse::Status::Complete(n)) => &window[..*n],
        _ => window,
    };
    if seen.split(|&b| b == b'\n').any(|l| l.len() >= MAX_LINE) {
        return Err(HeadError::LineTooLong { limit: MAX_LINE });
    }
    Ok(())
}

/// Makes a peer-supplied string safe to show in an error message or log:
/// printable ASCII only, at most `max` characters.
pub fn sanitize(s: &str, max: usize) -> String {
    s.chars()
        .take(max)
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete<T: fmt::Debug>(p: Parsed<T>) -> (T, usize) {
        match p {
            Parsed::Complete { head, len } => (head, len),
            Parsed::Partial => panic!("expected a complete head"),
        }
    }

    #[test]
    fn luotonen_request_example_bare_lf() {
        // The draft's example, with single-LF line ends, then tunnel bytes.
        let buf = b"CONNECT home.netscape.com:443 HTTP/1.0\nUser-agent: Mozilla/1.1N\nProxy-authorization: basic aGVsbG86d29ybGQ=\n\n\x16\x03\x01";
        let (h, len) = complete(RequestHead::parse(buf, DEFAULT_MAX_HEAD).unwrap());
        assert_eq!(h.method(), "CONNECT");
        assert_eq!(h.target(), "home.netscape.com:443");
        assert_eq!(h.version(), Version::Http10);
        assert_eq!(h.headers().len(), 2);
        assert_eq!(
            h.headers().get("PROXY-AUTHORIZATION").unwrap().value(),
            b"basic aGVsbG86d29ybGQ="
        );
        assert_eq!(&buf[len..], b"\x16\x03\x01");
    }

    #[test]
    fn sstp_request_example_crlf() {
        // MS-SSTP §4.5.
        let buf = b"CONNECT vpn.example.com:443 HTTP/1.1\r\nHost: vpn.example.com:443\r\nSSTPVERSION: 1.0\r\n\r\n";
        let (h, len) = complete(RequestHead::parse(buf, DEFAULT_MAX_HEAD).unwrap());
        assert_eq!(len, buf.len());
        assert_eq!(h.version(), Version::Http11);
        assert_eq!(
            h.headers().get("sstpversion").unwrap().value_str(),
            Some("1.0")
        );
    }

    #[test]
    fn luotonen_response_example() {
        let buf = b"HTTP/1.0 200 Connection established\nProxy-agent: Netscape-Proxy/1.1\n\nDATA";
        let (h, len) = complete(ResponseHead::parse(buf, DEFAULT_MAX_HEAD).unwrap());
        assert_eq!(h.status(), 200);
        assert_eq!(h.version(), Version::Http10);
        assert_eq!(h.reason(), "Connection established");
        assert_eq!(&buf[len..], b"DATA");
    }

    #[test]
    fn response_without_reason_and_odd_reasons() {
        for (raw, reason) in [
            (&b"HTTP/1.1 200\r\n\r\n"[..], ""),
            (b"HTTP/1.1 200 \r\n\r\n", ""),
            (b"HTTP/1.1 200 OK\r\n\r\n", "OK"),
            (
                b"HTTP/1.1 200 Tunnel ready, go ahead!\r\n\r\n",
                "Tunnel ready, go ahead!",
            ),
            (b"HTTP/1.1  200  Verbindung hergestellt\xe9\n\n", ""),
            (
                b"HTTP/1.0 200 OK\r\nBad Header: x\r\nX: y\r\n  folded\r\n\r\n",
                "OK",
            ),
        ] {
            let (h, len) = complete(ResponseHead::parse(raw, 64).unwrap());
            assert_eq!(h.status(), 200);
            assert_eq!(h.reason(), reason, "{raw:?}");
            assert_eq!(len, raw.len());
        }
    }

    #[test]
    fn sstp_response_example() {
        // MS-SSTP §4.5 response.
        let buf = b"HTTP/1.1 200 Connection Established\r\nProxy-Connection: Keep-Alive\r\nConnection: Keep-Alive\r\n\r\n";
        let (h, _) = complete(ResponseHead::parse(buf, DEFAULT_MAX_HEAD).unwrap());
        assert!(h.headers().has_token("connection", "keep-alive"));
        assert!(h.headers().has_token("proxy-connection", "KEEP-ALIVE"));
    }

    #[test]
    fn every_truncation_is_partial() {
        let buf = b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"x\"\r\n\r\n";
        for n in 0..buf.len() {
            assert_eq!(
                ResponseHead::parse(&buf[..n], DEFAULT_MAX_HEAD).unwrap(),
                Parsed::Partial,
                "prefix of {n} bytes"
            );
        }
        let req = b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n";
        for n in 0..req.len() {
            assert_eq!(
                RequestHead::parse(&req[..n], DEFAULT_MAX_HEAD).unwrap(),
                Parsed::Partial
            );
        }
    }

    #[test]
    fn size_limit() {
        let buf = b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n";
        // Exactly at the limit is fine.
        assert!(matches!(
            RequestHead::parse(buf, buf.len()).unwrap(),
            Parsed::Complete { .. }
        ));
        // One byte short of the limit is too large once the limit is buffered.
        assert_eq!(
            RequestHead::parse(buf, buf.len() - 1),
            Err(HeadError::TooLarge {
                limit: buf.len() - 1
            })
        );
        // A partial head below the limit is just partial.
        assert_eq!(RequestHead::parse(&buf[..10], 20), Ok(Parsed::Partial));
        let resp = b"HTTP/1.1 200 OK\r\nX: yyyyyyyyyyyyyyyyyyyyyyy";
        assert_eq!(
            ResponseHead::parse(resp, 20),
            Err(HeadError::TooLarge { limit: 20 })
        );
    }

    #[test]
    fn too_many_headers() {
        let mut buf = b"CONNECT a:443 HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            buf.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        buf.extend_from_slice(b"\r\n");
        assert_eq!(
            RequestHead::parse(&buf, 1 << 20),
            Err(HeadError::TooManyHeaders { limit: MAX_HEADERS })
        );
    }

    #[test]
    fn malformed() {
        for raw in [
            &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"[..],
            b"CONNECT a:443 HTTP/2.0\r\n\r\n",
            b"CONNECT a:443 FTP/1.0\r\n\r\n",
            b"CONNECT a:443 HTTP/1.1\r\nBad Header: x\r\n\r\n",
            b"CONNECT a:443 HTTP/1.1\r\nX: a\x00b\r\n\r\n",
        ] {
            assert!(
                matches!(
                    RequestHead::parse(raw, DEFAULT_MAX_HEAD),
                    Err(HeadError::Malformed { .. })
                ),
                "{raw:?}"
            );
        }
        for raw in [
            &b"HTTP/1.1 2000 OK\r\n\r\n"[..],
            b"HTTP/3 200 OK\r\n\r\n",
            b"SSH-2.0-OpenSSH_9.2\r\n",
            b"HTTP/1.1 abc OK\r\n\r\n",
            b"HTTP/1.1 099 Low\r\n\r\n",
        ] {
            assert!(
                matches!(
                    ResponseHead::parse(raw, DEFAULT_MAX_HEAD),
                    Err(HeadError::Malformed { .. })
                ),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn emit_request_round_trip() {
        let auth = "[2001:db8::1]:443";
        let mut hs = Headers::new();
        hs.push(Header::new("Host", auth).unwrap());
        hs.push(Header::new("SSTPVERSION", "1.0").unwrap());
        let req = RequestHead::new("CONNECT", auth, hs).unwrap();
        assert!(RequestHead::new("GET / X", "/", Headers::new()).is_err());
        assert!(RequestHead::new("GET", "/a b", Headers::new()).is_err());
        assert!(RequestHead::new("GET", "", Headers::new()).is_err());
        let mut out = vec![0xa5; 3];
        req.emit(&mut out);
        assert_eq!(out.len(), 3 + req.buffer_len());
        assert_eq!(
            &out[3..],
            b"CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\nSSTPVERSION: 1.0\r\n\r\n"
        );
        let (back, len) = complete(RequestHead::parse(&out[3..], DEFAULT_MAX_HEAD).unwrap());
        assert_eq!(len, out.len() - 3);
        assert_eq!(back, req);
    }

    #[test]
    fn emit_response_round_trip() {
        let mut hs = Headers::new();
        hs.push(Header::new("Proxy-Authenticate", "Basic realm=\"tunnel443\"").unwrap());
        hs.push(Header::new("Content-Length", "0").unwrap());
        let resp = ResponseHead::new(407, "Proxy Authentication Required", hs);
        let mut out = Vec::new();
        resp.emit(&mut out);
        assert_eq!(out.len(), resp.buffer_len());
        let (back, _) = complete(ResponseHead::parse(&out, DEFAULT_MAX_HEAD).unwrap());
        assert_eq!(back, resp);
        // A reason with a CR cannot be emitted verbatim.
        let r = ResponseHead::new(200, "OK\r\nX: y", Headers::new());
        assert_eq!(r.reason(), "Unknown");
    }

    #[test]
    fn header_validation() {
        assert!(Header::new("SSTPVERSION", "1.0").is_ok());
        assert!(Header::new("", "x").is_err());
        assert!(Header::new("Bad Name", "x").is_err());
        assert!(Header::new("X", "a\r\nInjected: 1").is_err());
        assert!(Header::new("X", "a\nb").is_err());
        assert!(Header::new("X", "a\0").is_err());
        assert_eq!(Header::new("X", "  v \t").unwrap().value(), b"v");
        let h = Header::new("Proxy-Authorization", "Basic c2VjcmV0").unwrap();
        assert!(!format!("{h:?}").contains("c2VjcmV0"));
    }

    #[test]
    fn line_limit() {
        let long = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(MAX_LINE));
        assert_eq!(
            RequestHead::parse(long.as_bytes(), 1 << 20),
            Err(HeadError::LineTooLong { limit: MAX_LINE })
        );
        // Refused before the line ends, too.
        assert_eq!(
            RequestHead::parse(&long.as_bytes()[..MAX_LINE + 20], 1 << 20),
            Err(HeadError::LineTooLong { limit: MAX_LINE })
        );
        assert!(HeadError::LineTooLong { limit: MAX_LINE }.is_too_large());
        assert!(!HeadError::Malformed { what: "x" }.is_too_large());
        let resp = format!("HTTP/1.1 200 {}\r\n\r\n", "a".repeat(MAX_LINE));
        assert_eq!(
            ResponseHead::parse(resp.as_bytes(), 1 << 20),
            Err(HeadError::LineTooLong { limit: MAX_LINE })
        );
        // Just under the limit is fine; what follows the head is not looked at.
        let ok = format!(
            "GET / HTTP/1.1\r\nX: {}\r\n\r\n{}",
            "a".repeat(MAX_LINE - 6),
            "b".repeat(2 * MAX_LINE)
        );
        assert!(matches!(
            RequestHead::parse(ok.as_bytes(), 1 << 20),
            Ok(Parsed::Complete { .. })
        ));
    }

    #[test]
    fn sanitize_strips_controls() {
        assert_eq!(sanitize("ok\r\nX\u{7f}é", 100), "ok??X??");
        assert_eq!(sanitize("abcdef", 3), "abc");
    }
}
