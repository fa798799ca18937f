//! HTTP/1.x message heads: bounded parsing with `httparse` and emission.
//!
//! Implements the framing that Luotonen's draft requires of both ends of a
//! CONNECT handshake (`ssl-tunneling-through-proxy.txt`, "The CONNECT Method"
//! and "Proxy Response"): a request or status line, zero or more header lines,
//! then an empty line, where every line ends in CR LF *or a single LF*, and the
//! version is HTTP/1.0 or HTTP/1.1. Everything after the empty line belongs to
//! the tunnel, so the parsers report how many bytes the head used.
//!
//! A head larger than the caller's limit is an error as soon as the limit is
//! reached, so a peer cannot make us buffer without bound.

use std::fmt;

/// Default upper bound on the size of a message head, in bytes.
pub const DEFAULT_MAX_HEAD: usize = 16 * 1024;

/// Maximum number of header fields accepted in one head.
pub const MAX_HEADERS: usize = 64;

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
    /// The bytes are not an HTTP/1.0 or HTTP/1.1 head.
    #[error("malformed message head: {what}")]
    Malformed {
        /// What was wrong, as reported by the tokenizer.
        what: &'static str,
    },
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
    /// Builds a `CONNECT authority HTTP/1.1` request head. The authority is
    /// already validated, so it cannot inject anything.
    pub fn connect(authority: &crate::Authority, headers: Headers) -> Self {
        RequestHead {
            method: "CONNECT".to_owned(),
            target: authority.to_string(),
            version: Version::Http11,
            headers,
        }
    }

    /// Parses a request head from the start of `buf`, refusing heads longer
    /// than `max` bytes.
    pub fn parse(buf: &[u8], max: usize) -> Result<Parsed<Self>, HeadError> {
        let window = &buf[..buf.len().min(max)];
        let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut storage);
        match req.parse(window)? {
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
            .parse_response(&mut resp, window)?;
        match status {
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

/// Makes a peer-supplied string safe to show in an error message or log:
/// printable ASCII only, at most `max` characters.
pub fn sanitize(s: &str, max: usize) -> String {
    s.chars()
        .take(max)
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .collect()
}

/// A short excerpt of an error response's body for a message shown to a
/// user (a proxy's 403 page says why): the text of an HTML page (tags,
/// comments, scripts and styles dropped, a few entities decoded) or the
/// first three lines of plain text, whitespace collapsed, no control
/// characters, at most `max` characters (`...` when cut). Empty when the
/// body has no text.
pub fn body_excerpt(body: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim_start_matches('\u{feff}').trim();
    let flat = if text.starts_with('<') {
        html_text(text)
    } else {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .take(3)
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let flat: String = flat
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let flat = flat.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        return flat;
    }
    let cut: String = flat.chars().take(max.saturating_sub(3)).collect();
    format!("{}...", cut.trim_end())
}

/// The data of the complete chunks at the start of a chunked body (RFC
/// 9112 §7.1), for [`body_excerpt`]; stops at the last chunk, a partial
/// chunk or anything malformed.
pub fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&b[..eol])
            .ok()
            .map(|l| l.split(';').next().unwrap_or_default().trim())
            .and_then(|h| usize::from_str_radix(h, 16).ok());
        let Some(size) = size.filter(|&n| n > 0) else {
            break;
        };
        let data = &b[eol + 2..];
        let take = size.min(data.len());
        out.extend_from_slice(&data[..take]);
        if take < size || data.len() < size + 2 {
            break;
        }
        b = &data[size + 2..];
    }
    out
}

/// The visible text of an HTML page, roughly: good enough for an error
/// page, not a parser.
fn html_text(html: &str) -> String {
    let lower = html.to_ascii_lowercase();
    let mut out = String::new();
    let mut i = 0;
    while i < html.len() {
        let rest = &lower[i..];
        if rest.starts_with("<!--") {
            i += rest.find("-->").map_or(rest.len(), |e| e + 3);
        } else if let Some(end_tag) = ["script", "style"]
            .iter()
            .find(|t| rest.starts_with(&format!("<{t}")))
            .map(|t| format!("</{t}"))
        {
            let skip = rest.find(&end_tag).unwrap_or(rest.len());
            i += skip;
            let r = &lower[i..];
            i += r.find('>').map_or(r.len(), |e| e + 1);
        } else if rest.starts_with('<') {
            i += rest.find('>').map_or(rest.len(), |e| e + 1);
            out.push(' ');
        } else {
            let next = rest.find('<').unwrap_or(rest.len());
            out.push_str(&html[i..i + next]);
            i += next;
        }
    }
    for (entity, c) in [
        ("&nbsp;", " "),
        ("&lt;", "<"),
        ("&gt;", ">"),
        ("&quot;", "\""),
        ("&#39;", "'"),
        ("&amp;", "&"),
    ] {
        out = out.replace(entity, c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dechunking() {
        assert_eq!(
            dechunk(b"4\r\nWiki\r\n6;x=y\r\npedia \r\n0\r\n\r\n"),
            b"Wikipedia "
        );
        assert_eq!(dechunk(b"4\r\nWi"), b"Wi");
        assert_eq!(dechunk(b"zz\r\nWiki\r\n"), b"");
        assert_eq!(dechunk(b""), b"");
        assert_eq!(dechunk(b"ffffffffffffffffff\r\nx"), b"");
    }

    #[test]
    fn body_excerpts() {
        assert_eq!(
            body_excerpt(b"Tunnels to port 22 are not allowed.\n", 200),
            "Tunnels to port 22 are not allowed."
        );
        assert_eq!(
            body_excerpt(b"one\r\n\r\n  two  \nthree\nfour\n", 200),
            "one / two / three"
        );
        let squid = b"<!DOCTYPE html PUBLIC \"-//W3C//DTD HTML 4.01//EN\">\n<html><head>\
            <meta type=\"copyright\" content=\"Copyright (C) 1996-2023\">\
            <title>ERROR: The requested URL could not be retrieved</title>\
            <style type=\"text/css\"><!-- body { color: #000; } --></style>\
            <script>var x = '<b>';</script></head><body>\
            <p><b>Access Denied.</b></p><p>Access&nbsp;control &amp; co.</p></body></html>";
        assert_eq!(
            body_excerpt(squid, 200),
            "ERROR: The requested URL could not be retrieved Access Denied. Access control & co."
        );
        assert_eq!(body_excerpt(b"abcdefghij", 8), "abcde...");
        assert_eq!(
            body_excerpt(b"bell\x07 and\x1b[31m red", 100),
            "bell and [31m red"
        );
        assert_eq!(body_excerpt(b"", 100), "");
        assert_eq!(body_excerpt(b"<html><body></body></html>", 100), "");
        // Unterminated markup does not loop or panic.
        assert_eq!(body_excerpt(b"<b>x<script>never closed", 100), "x");
        assert_eq!(body_excerpt(b"<p>a<!-- open", 100), "a");
        assert_eq!(
            body_excerpt("<p>\u{e9}t\u{e9}</p>".as_bytes(), 100),
            "\u{e9}t\u{e9}"
        );
    }

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
        let auth = crate::Authority::parse("[2001:db8::1]:443").unwrap();
        let mut hs = Headers::new();
        hs.push(Header::new("Host", &auth.to_string()).unwrap());
        hs.push(Header::new("SSTPVERSION", "1.0").unwrap());
        let req = RequestHead::connect(&auth, hs);
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
    fn sanitize_strips_controls() {
        assert_eq!(sanitize("ok\r\nX\u{7f}é", 100), "ok??X??");
        assert_eq!(sanitize("abcdef", 3), "abc");
    }
}
