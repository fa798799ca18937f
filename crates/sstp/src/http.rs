//! The HTTPS preamble (MS-SSTP §3.2.4.1, §4.1): the client's
//! `SSTP_DUPLEX_POST /sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/` request
//! and the server's 200 response, both with the ULONGLONG_MAX
//! Content-Length. Heads are parsed by the shared `httphead` crate (its
//! limits and its Content-Length policy); parsers return the head length,
//! because the bytes after the head are already the SSTP stream.
//!
//! sstpc 1.0.18 wants `HTTP/1.1 200`, the huge Content-Length and few
//! headers; SoftEther answers `HTTP/1.1 200 OK` with Content-Length, Date
//! and `Server: Microsoft-HTTPAPI/2.0`. We send the same as SoftEther.

/// The SSTP URI path (§3.2.4.1).
pub const SSTP_PATH: &str = "/sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/";
/// The SSTP request method.
pub const SSTP_METHOD: &str = "SSTP_DUPLEX_POST";
/// ULONGLONG_MAX, the Content-Length of both directions.
pub const CONTENT_LENGTH: u64 = u64::MAX;

use httphead::{Body, Headers, Parsed, RequestHead, ResponseHead, DEFAULT_MAX_HEAD};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// Not a head within the shared limits (`httphead`).
    #[error(transparent)]
    Head(#[from] httphead::HeadError),
    #[error("SSTP request without Content-Length 18446744073709551615")]
    ContentLength,
    #[error("HTTP version 1.{0} (SSTP needs HTTP/1.1)")]
    Version(u8),
    #[error("server answered HTTP {code} {reason}")]
    Status { code: u16, reason: String },
}

impl HttpError {
    /// Whether the head broke a size limit (431 rather than 400).
    pub fn too_large(&self) -> bool {
        use httphead::HeadError as H;
        matches!(
            self,
            HttpError::Head(H::TooLarge { .. } | H::TooManyHeaders { .. } | H::LineTooLong { .. })
        )
    }
}

/// What an SSTP request carried (§3.2.4.1, §3.3.7.2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SstpRequest {
    /// SSTPCORRELATIONID, for logs.
    pub correlation_id: Option<String>,
    /// The `tenantid` query variable.
    pub tenant_id: Option<String>,
    /// The Cookie header (ServerHTTPCookie).
    pub cookie: Option<String>,
    /// The Host header without its port (sanitized, lower case), for a
    /// server that answers SSTP on one name only.
    pub host: Option<String>,
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestKind {
    /// `SSTP_DUPLEX_POST` to the SSTP path.
    Sstp(SstpRequest),
    /// A `HEAD` request (load balancer health checks).
    Head {
        /// The path, without the query (at most 128 characters).
        path: String,
    },
    /// Anything else (answer 404).
    Other { method: String, path: String },
}

fn header<'a>(h: &'a Headers, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|x| x.value_str()).map(str::trim)
}

/// The host part of a Host header value (`name`, `name:port`,
/// `[v6]:port`), lower case.
fn host_name(value: &str) -> String {
    let v = value.trim();
    let name = if let Some(rest) = v.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        v.rsplit_once(':').map_or(v, |(h, _)| h)
    };
    httphead::sanitize(name, 255).to_ascii_lowercase()
}

/// Parses a request head (within the shared head limits); `Ok(None)` if
/// incomplete.
pub fn parse_request(buf: &[u8]) -> Result<Option<(RequestKind, usize)>, HttpError> {
    let (req, len) = match RequestHead::parse(buf, DEFAULT_MAX_HEAD)? {
        Parsed::Partial => return Ok(None),
        Parsed::Complete { head, len } => (head, len),
    };
    let method = req.method();
    let target = req.target();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if method.eq_ignore_ascii_case("HEAD") {
        let path = path.chars().take(128).collect();
        return Ok(Some((RequestKind::Head { path }, len)));
    }
    if method != SSTP_METHOD || !path.eq_ignore_ascii_case(SSTP_PATH) {
        return Ok(Some((
            RequestKind::Other {
                method: method.chars().take(32).collect(),
                path: path.chars().take(128).collect(),
            },
            len,
        )));
    }
    if req.version() != httphead::Version::Http11 {
        return Err(HttpError::Version(0));
    }
    if httphead::framing::body(req.headers()) != Ok(Body::Length(CONTENT_LENGTH)) {
        return Err(HttpError::ContentLength);
    }
    let tenant_id = query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        k.eq_ignore_ascii_case("tenantid").then(|| v.to_string())
    });
    let r = SstpRequest {
        correlation_id: header(req.headers(), "sstpcorrelationid")
            .map(|s| s.chars().take(64).collect()),
        tenant_id,
        cookie: header(req.headers(), "cookie").map(str::to_string),
        host: header(req.headers(), "host").map(host_name),
    };
    Ok(Some((RequestKind::Sstp(r), len)))
}

/// A GUID string `{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}` from 16 random
/// bytes (version 4 bits set), for SSTPCORRELATIONID.
pub fn guid(bytes: [u8; 16]) -> String {
    let mut b = bytes;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: Vec<String> = b.iter().map(|x| format!("{x:02X}")).collect();
    format!(
        "{{{}-{}-{}-{}-{}}}",
        h[0..4].concat(),
        h[4..6].concat(),
        h[6..8].concat(),
        h[8..10].concat(),
        h[10..16].concat()
    )
}

/// Options of the client request.
#[derive(Debug, Clone, Default)]
pub struct RequestOptions<'a> {
    /// `tenantid` query variable (§3.2.4.1).
    pub tenant_id: Option<&'a str>,
    /// ClientHTTPCookie, sent when bypassing higher-layer auth.
    pub cookie: Option<&'a str>,
}

/// The client's request head. `host` is the Host header value.
pub fn client_request(host: &str, correlation_id: &str, opts: &RequestOptions<'_>) -> Vec<u8> {
    // No header injection: CR, LF and spaces never reach the head.
    let clean = |v: &str| -> String { v.chars().filter(|c| !c.is_control()).collect() };
    let (host, correlation_id) = (clean(host), clean(correlation_id));
    let tenant = opts.tenant_id.map(|t| clean(t).replace(' ', "%20"));
    let cookie = opts.cookie.map(clean);
    let mut path = SSTP_PATH.to_string();
    if let Some(t) = &tenant {
        path.push_str("?tenantid=");
        path.push_str(t);
    }
    let mut s = format!(
        "{SSTP_METHOD} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {CONTENT_LENGTH}\r\nSSTPCORRELATIONID: {correlation_id}\r\n"
    );
    if let Some(c) = &cookie {
        s.push_str("Cookie: ");
        s.push_str(c);
        s.push_str("\r\n");
    }
    s.push_str("\r\n");
    s.into_bytes()
}

/// The server's 200 response head (§4.1). `date` is an HTTP date.
pub fn server_response(date: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {CONTENT_LENGTH}\r\nServer: Microsoft-HTTPAPI/2.0\r\nDate: {date}\r\n\r\n"
    )
    .into_bytes()
}

/// The server's answer: only 200 lets SSTP start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub code: u16,
}

/// Parses the server's response head (within the shared head limits);
/// non-200 answers are errors.
pub fn parse_response(buf: &[u8]) -> Result<Option<(Response, usize)>, HttpError> {
    let (resp, len) = match ResponseHead::parse(buf, DEFAULT_MAX_HEAD)? {
        Parsed::Partial => return Ok(None),
        Parsed::Complete { head, len } => (head, len),
    };
    let code = resp.status();
    if code != 200 {
        return Err(HttpError::Status {
            code,
            reason: httphead::sanitize(resp.reason(), 64),
        });
    }
    Ok(Some((Response { code }, len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_roundtrip() {
        let r = client_request(
            "vpn.example.com",
            "{1A8EE3C4-0000-4000-8000-000000000001}",
            &RequestOptions {
                tenant_id: Some("t1"),
                cookie: Some("a=b"),
            },
        );
        let mut buf = r.clone();
        buf.extend_from_slice(&[0x10, 0x01]);
        let (k, len) = parse_request(&buf).unwrap().unwrap();
        assert_eq!(len, r.len());
        assert_eq!(
            k,
            RequestKind::Sstp(SstpRequest {
                correlation_id: Some("{1A8EE3C4-0000-4000-8000-000000000001}".into()),
                tenant_id: Some("t1".into()),
                cookie: Some("a=b".into()),
                host: Some("vpn.example.com".into()),
            })
        );
        assert_eq!(host_name("[2001:DB8::1]:443"), "2001:db8::1");
        assert_eq!(host_name("Vpn.Example.com:8443"), "vpn.example.com");
        assert_eq!(host_name("10.0.0.1"), "10.0.0.1");
        for cut in 0..r.len() {
            assert_eq!(parse_request(&r[..cut]), Ok(None), "cut {cut}");
        }
    }

    #[test]
    fn sstpc_request_is_accepted() {
        // What sstpc 1.0.18 sends (lower-case GUID in the path is tolerated too).
        let r = b"SSTP_DUPLEX_POST /sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/ HTTP/1.1\r\nSSTPCORRELATIONID: {62DFA5C0-E2E0-FD50-D286B00}\r\nContent-Length: 18446744073709551615\r\nHost: 10.0.2.2\r\n\r\n";
        assert!(matches!(
            parse_request(r),
            Ok(Some((RequestKind::Sstp(_), _)))
        ));
        let lower = String::from_utf8_lossy(r).replace(
            "BA195980-CD49-458b-9E23-C84EE0ADCD75",
            "ba195980-cd49-458b-9e23-c84ee0adcd75",
        );
        assert!(matches!(
            parse_request(lower.as_bytes()),
            Ok(Some((RequestKind::Sstp(_), _)))
        ));
    }

    #[test]
    fn other_requests() {
        assert!(matches!(
            parse_request(b"HEAD /sra_{x}/ HTTP/1.1\r\n\r\n"),
            Ok(Some((RequestKind::Head { .. }, _)))
        ));
        assert!(matches!(
            parse_request(b"GET / HTTP/1.1\r\n\r\n"),
            Ok(Some((RequestKind::Other { .. }, _)))
        ));
        let no_len = format!("{SSTP_METHOD} {SSTP_PATH} HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(
            parse_request(no_len.as_bytes()),
            Err(HttpError::ContentLength)
        );
        let v10 = format!(
            "{SSTP_METHOD} {SSTP_PATH} HTTP/1.0\r\nContent-Length: 18446744073709551615\r\n\r\n"
        );
        assert_eq!(parse_request(v10.as_bytes()), Err(HttpError::Version(0)));
        assert!(parse_request(b"\x10\x01\x00\x0e garbage\r\n\r\n").is_err());
        // The shared limit: 64 header fields.
        let many: String = (0..=httphead::MAX_HEADERS)
            .map(|i| format!("X-{i}: y\r\n"))
            .collect();
        let e = parse_request(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()).unwrap_err();
        assert!(e.too_large(), "{e}");
        let long = vec![b'a'; DEFAULT_MAX_HEAD];
        assert!(parse_request(&long).unwrap_err().too_large());
        assert!(!parse_request(b"\x10\x01 x\r\n\r\n")
            .unwrap_err()
            .too_large());
    }

    #[test]
    fn responses() {
        let r = server_response("Sun, 22 Nov 2026 22:00:00 GMT");
        assert!(r.starts_with(b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n"));
        let (resp, len) = parse_response(&r).unwrap().unwrap();
        assert_eq!((resp.code, len), (200, r.len()));
        // SoftEther's answer
        let se = b"HTTP/1.1 200 OK\r\nDate: Sun, 22 Nov 2026 22:00:00 GMT\r\nServer: Microsoft-HTTPAPI/2.0\r\nContent-Length: 18446744073709551615\r\n\r\n\x10\x01";
        assert_eq!(parse_response(se).unwrap().unwrap().1, se.len() - 2);
        assert!(matches!(
            parse_response(b"HTTP/1.1 404 Not Found\r\n\r\n"),
            Err(HttpError::Status { code: 404, .. })
        ));
        assert_eq!(parse_response(b"HTTP/1.1 200 OK\r\n"), Ok(None));
    }

    #[test]
    fn no_header_injection() {
        let r = client_request(
            "h\r\nX-Evil: 1",
            "{G}",
            &RequestOptions {
                tenant_id: Some("a b\r\n"),
                cookie: Some("c=d\r\nX: y"),
            },
        );
        let text = String::from_utf8(r).unwrap();
        assert_eq!(text.matches("\r\n").count(), 6, "{text}");
        assert!(text.contains("?tenantid=a%20b "));
    }

    #[test]
    fn guids() {
        let g = guid([0xab; 16]);
        assert_eq!(g.len(), 38);
        assert_eq!(g, "{ABABABAB-ABAB-4BAB-ABAB-ABABABABABAB}");
    }
}
